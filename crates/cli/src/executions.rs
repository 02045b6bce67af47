//! `switchyard executions list|show` and `switchyard abort`: runbook executions, their timelines
//! and measured recovery times.

use switchyard_api::{ExecutionDetail, ExecutionSummary, RecoveryView};
use switchyard_core::Timestamp;
use switchyard_core::execution::{MilestoneKind, RtoVerdict, StepRecord, StepState};

use crate::client::{ServerArgs, outcome_of, runtime};
use crate::runbook::{author, print_json};
use crate::{Outcome, Output, UsageError};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List executions, newest first, with their state and recovery time against the rto.
    List {
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Print one execution: its steps, the timeline of milestones, and the measured detection,
    /// decision, actuation and total recovery time against the runbook's rto.
    Show {
        #[command(flatten)]
        server: ServerArgs,
        /// The execution id (the log index it started at).
        id: u64,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
}

pub fn run(command: Command) -> Result<Outcome, UsageError> {
    let runtime = runtime()?;
    match command {
        Command::List { server, output } => {
            let list = match runtime.block_on(server.client().executions()) {
                Ok(list) => list,
                Err(error) => return outcome_of(error),
            };
            match output {
                Output::Json => print_json(&list)?,
                Output::Text if list.executions.is_empty() => println!("no executions yet"),
                Output::Text => {
                    println!(
                        "{:>6} {:<28} {:<26} {:<12} {:<10} {:<24} {:<10} RTO",
                        "ID", "RUNBOOK", "TRIGGER", "SITE", "STATE", "STARTED", "RECOVERY"
                    );
                    for execution in &list.executions {
                        print_row(execution);
                    }
                }
            }
            Ok(Outcome::Success)
        }
        Command::Show { server, id, output } => {
            let detail = match runtime.block_on(server.client().execution(id)) {
                Ok(detail) => detail,
                Err(error) => return outcome_of(error),
            };
            match output {
                Output::Json => print_json(&detail)?,
                Output::Text => print_detail(&detail),
            }
            Ok(Outcome::Success)
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct AbortArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The execution id (the log index it started at).
    id: u64,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

pub fn abort(args: AbortArgs) -> Result<Outcome, UsageError> {
    let client = args.server.client();
    let result = match runtime()?.block_on(client.abort_execution(args.id)) {
        Ok(result) => result,
        Err(error) => return outcome_of(error),
    };
    match args.output {
        Output::Json => print_json(&result)?,
        Output::Text if result.state.is_active() => println!(
            "abort of execution {} committed at index {}: no new step starts; it ends aborted once the step in flight reports",
            result.id, result.index
        ),
        Output::Text => println!(
            "execution {} {} (abort committed at index {})",
            result.id, result.state, result.index
        ),
    }
    Ok(Outcome::Success)
}

fn trigger_text(execution: &ExecutionSummary) -> String {
    match &execution.principal {
        Some(principal) => format!("{} by {principal}", execution.trigger),
        None => execution.trigger.clone(),
    }
}

fn print_row(execution: &ExecutionSummary) {
    let state = if execution.aborting && execution.state.is_active() {
        format!("{}*", execution.state)
    } else {
        execution.state.to_string()
    };
    println!(
        "{:>6} {:<28} {:<26} {:<12} {:<10} {:<24} {:<10} {}",
        execution.id.to_string(),
        format!("{}@v{}", execution.runbook, execution.version),
        trigger_text(execution),
        execution
            .site
            .as_ref()
            .map_or("-".to_owned(), ToString::to_string),
        state,
        time(execution.started_at),
        execution.recovery_ms.map_or("-".to_owned(), format_ms),
        rto_text(execution.rto_ms, execution.rto_verdict),
    );
}

fn rto_text(rto_ms: Option<u64>, verdict: RtoVerdict) -> String {
    let verdict = match verdict {
        RtoVerdict::Met => "met",
        RtoVerdict::Missed => "missed",
        RtoVerdict::Unknown => "unknown",
    };
    match rto_ms {
        Some(rto) => format!("{} {verdict}", format_ms(rto)),
        None => "none declared".to_owned(),
    }
}

/// The text form of `executions show` (and of `run --wait` once the execution ended).
pub fn print_detail(detail: &ExecutionDetail) {
    let summary = &detail.summary;
    let execution = &detail.execution;
    println!(
        "execution {}: {} v{} ({}), site {}",
        summary.id,
        summary.runbook,
        summary.version,
        trigger_text(summary),
        summary
            .site
            .as_ref()
            .map_or("-".to_owned(), ToString::to_string)
    );
    let ended = summary
        .finished_at
        .map_or(String::new(), |at| format!(", ended {}", time(at)));
    println!(
        "state: {}{} (started {} by {}{ended})",
        summary.state,
        if summary.aborting && summary.state.is_active() {
            ", abort requested"
        } else {
            ""
        },
        time(summary.started_at),
        author(&summary.started_by)
    );
    if let Some(failure) = &execution.failure {
        println!(
            "failure: step `{}` ({:?}): {}",
            failure.step, failure.phase, failure.error
        );
    }
    let parameters: Vec<String> = execution
        .parameters
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    println!("parameters: {}", parameters.join(" "));
    println!("steps:");
    for step in &execution.steps {
        print_step(step);
    }
    if !execution.rollback.is_empty() {
        println!("rollback steps:");
        for step in &execution.rollback {
            print_step(step);
        }
    }
    println!("timeline:");
    let origin = execution.timeline.first().map(|milestone| milestone.at);
    for milestone in &execution.timeline {
        let offset = origin.map_or(0, |origin| {
            milestone.at.as_millis().saturating_sub(origin.as_millis())
        });
        println!(
            "  {}  +{:<9} {}",
            time(milestone.at),
            format_ms(offset),
            milestone_text(&milestone.kind)
        );
    }
    print_recovery(&detail.recovery);
}

fn print_step(step: &StepRecord) {
    let state = match &step.state {
        StepState::Pending => "pending".to_owned(),
        StepState::Running { attempt, term, .. } => {
            format!("running (attempt {attempt}, term {term})")
        }
        StepState::Succeeded => "succeeded".to_owned(),
        StepState::Failed { error } => format!("failed: {error}"),
        StepState::Skipped => "skipped".to_owned(),
    };
    println!(
        "  {:<20} {:<14} {} ({} attempt{})",
        step.id.as_str(),
        step.kind,
        state,
        step.attempts.len(),
        if step.attempts.len() == 1 { "" } else { "s" }
    );
}

fn milestone_text(kind: &MilestoneKind) -> String {
    match kind {
        MilestoneKind::FirstFailure => "first failed observation of the site".to_owned(),
        MilestoneKind::Suspected { event_index } => {
            format!("site suspected (log index {event_index})")
        }
        MilestoneKind::Lost { event_index } => {
            format!("site loss committed (log index {event_index})")
        }
        MilestoneKind::ExecutionStarted => "execution started".to_owned(),
        MilestoneKind::StepStarted { step, attempt } => {
            format!("step `{step}` attempt {attempt} started")
        }
        MilestoneKind::StepResumed {
            step,
            attempt,
            term,
        } => format!("step `{step}` attempt {attempt} resumed by the leader of term {term}"),
        MilestoneKind::StepFinished {
            step,
            attempt,
            succeeded,
        } => format!(
            "step `{step}` attempt {attempt} {}",
            if *succeeded { "succeeded" } else { "failed" }
        ),
        MilestoneKind::DnsConverged { step } => {
            format!("DNS changed on every authoritative server (verified by `{step}`)")
        }
        MilestoneKind::AbortRequested => "abort requested".to_owned(),
        MilestoneKind::Finished { state } => format!("finished: {state}"),
    }
}

fn print_recovery(recovery: &RecoveryView) {
    let show = |value: Option<u64>| value.map_or("-".to_owned(), format_ms);
    println!("recovery:");
    println!(
        "  detection  {:<10} (first failed observation -> loss committed)",
        show(recovery.detection_ms)
    );
    println!(
        "  decision   {:<10} (loss committed -> execution started)",
        show(recovery.decision_ms)
    );
    println!(
        "  actuation  {:<10} (execution started -> DNS changed everywhere)",
        show(recovery.actuation_ms)
    );
    println!(
        "  total      {:<10} (first failed observation -> DNS changed everywhere)",
        show(recovery.total_ms)
    );
    println!(
        "  recovery   {:<10} vs rto {}",
        show(recovery.recovery_ms),
        rto_text(recovery.rto_ms, recovery.rto_verdict)
    );
}

/// A leader timestamp as RFC 3339 UTC with milliseconds.
pub fn time(timestamp: Timestamp) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(timestamp.as_millis());
    humantime::format_rfc3339_millis(at).to_string()
}

/// Milliseconds for people: `850ms`, `30s`, `2.35s`, `1m 30s`.
pub fn format_ms(millis: u64) -> String {
    if millis < 1000 {
        format!("{millis}ms")
    } else if millis < 60_000 && millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else if millis < 60_000 {
        format!("{:.2}s", millis as f64 / 1000.0)
    } else {
        humantime::format_duration(std::time::Duration::from_secs(millis / 1000)).to_string()
    }
}
