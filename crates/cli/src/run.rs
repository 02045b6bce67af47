//! `switchyard run RUNBOOK --site S [--drill] [--param k=v]… [--wait]`: start a manual run or a
//! drill of a runbook (operator role), and optionally follow it to its end.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use switchyard_api::NewExecution;
use switchyard_core::execution::ExecutionState;
use switchyard_core::id::{RunbookId, SiteId};

use crate::client::{ServerArgs, outcome_of, runtime};
use crate::executions::print_detail;
use crate::runbook::print_json;
use crate::{Outcome, Output, UsageError};

/// How often `--wait` asks for the execution's state.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Debug, clap::Args)]
// `--version` picks the runbook version here, so the program's own version flag yields.
#[command(disable_version_flag = true)]
pub struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// The runbook's name, as applied with `switchyard runbook apply`.
    runbook: String,
    /// The site it acts on (the runbook's `${site}`).
    #[arg(long, value_name = "SITE")]
    site: String,
    /// Rehearse on a healthy site: traffic really moves away from it.
    #[arg(long)]
    drill: bool,
    /// A value for one of the runbook's declared parameters; repeat for more.
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param)]
    params: Vec<(String, String)>,
    /// Run this version of the runbook instead of the latest.
    #[arg(long, value_name = "N")]
    version: Option<u32>,
    /// Follow the execution until it ends and print its timeline; exit 0 only if it succeeded.
    #[arg(long)]
    wait: bool,
    /// Give up waiting after this long (with `--wait`); the execution keeps running.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration, value_name = "DURATION")]
    wait_timeout: Duration,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

fn parse_param(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("`{text}` is not NAME=VALUE")),
    }
}

pub fn run(args: Args) -> Result<Outcome, UsageError> {
    let runtime = runtime()?;
    let client = args.server.client();
    let request = NewExecution {
        runbook: RunbookId::new(args.runbook.clone()),
        site: SiteId::new(args.site.clone()),
        drill: args.drill,
        parameters: args.params.iter().cloned().collect::<BTreeMap<_, _>>(),
        version: args.version,
    };
    let started = match runtime.block_on(client.start_execution(&request)) {
        Ok(started) => started,
        Err(error) => return outcome_of(error),
    };
    if !args.wait {
        match args.output {
            Output::Json => print_json(&started)?,
            Output::Text => println!(
                "execution {} started: {} v{} {}for site {} (follow it with `switchyard executions show {}`)",
                started.id,
                started.runbook,
                started.version,
                if args.drill { "(drill) " } else { "" },
                args.site,
                started.id
            ),
        }
        return Ok(Outcome::Success);
    }
    if args.output == Output::Text {
        println!(
            "execution {} started: {} v{}; waiting for it to end",
            started.id, started.runbook, started.version
        );
    }
    let deadline = Instant::now() + args.wait_timeout;
    let detail = loop {
        let detail = match runtime.block_on(client.execution(started.id.0)) {
            Ok(detail) => Some(detail),
            // The node answering may not have applied the start yet: ask again.
            Err(error)
                if error
                    .api_error()
                    .is_some_and(|error| error.code == switchyard_api::ErrorCode::NotFound) =>
            {
                None
            }
            Err(error) => return outcome_of(error),
        };
        if let Some(detail) = detail.filter(|detail| !detail.summary.state.is_active()) {
            break detail;
        }
        if Instant::now() >= deadline {
            return Err(UsageError(anyhow!(
                "execution {} has not ended after {}; it keeps running (see `switchyard executions show {}`)",
                started.id,
                humantime::format_duration(args.wait_timeout),
                started.id
            )));
        }
        std::thread::sleep(POLL_INTERVAL);
    };
    match args.output {
        Output::Json => print_json(&detail)?,
        Output::Text => print_detail(&detail),
    }
    Ok(if detail.summary.state == ExecutionState::Succeeded {
        Outcome::Success
    } else {
        Outcome::Rejected
    })
}
