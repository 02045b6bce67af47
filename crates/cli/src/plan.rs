//! `switchyard plan`: print what a runbook would do for a site, with no side effects.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use switchyard_core::config::ClusterConfig;
use switchyard_core::plan::{Plan, PlannedStep};
use switchyard_core::routing::{Routing, RrsetDiff};
use switchyard_core::runbook::{OnFailure, Runbook};

use crate::{Outcome, Output, UsageError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The cluster configuration file.
    #[arg(long, short = 'c', env = "SWITCHYARD_CONFIG", value_name = "FILE")]
    config: PathBuf,
    /// A runbook file, or the name of one in the runbooks directory.
    #[arg(long, short = 'r', value_name = "FILE_OR_NAME")]
    runbook: String,
    /// Where to look for a runbook given by name.
    #[arg(long, value_name = "DIR", default_value = "runbooks")]
    runbooks_dir: PathBuf,
    /// The site the runbook acts on (its `${site}` parameter).
    #[arg(long, short = 's')]
    site: String,
    /// Another runbook parameter, as NAME=VALUE; repeat for several.
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE", value_parser = parse_param)]
    params: Vec<(String, String)>,
    /// Print text for people or one JSON document for programs.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

fn parse_param(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, got `{text}`"))?;
    Ok((name.to_owned(), value.to_owned()))
}

pub fn run(args: Args) -> Result<Outcome, UsageError> {
    let config = load_valid_config(&args.config)?;
    let runbook_path = find_runbook(&args.runbook, &args.runbooks_dir)?;
    let loaded = switchyard_spec::load_runbook(&runbook_path, &config)
        .with_context(|| format!("cannot load runbook {}", runbook_path.display()))?;
    let Some(runbook) = loaded.value else {
        for diagnostic in &loaded.diagnostics {
            eprintln!("{diagnostic}");
        }
        eprintln!(
            "switchyard: runbook {} is invalid; nothing planned",
            runbook_path.display()
        );
        return Ok(Outcome::Rejected);
    };
    let plan = make_plan(&config, &runbook, &args.site, &args.params)?;
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&plan).context("cannot encode plan")?
        ),
        Output::Text => print!("{}", render_text(&plan, &runbook_path)),
    }
    Ok(if plan.refused() {
        Outcome::Rejected
    } else {
        Outcome::Success
    })
}

/// Loads a configuration that must be valid, printing its diagnostics otherwise.
pub fn load_valid_config(path: &Path) -> Result<ClusterConfig, UsageError> {
    let loaded = switchyard_spec::load_config(path)
        .with_context(|| format!("cannot load configuration {}", path.display()))?;
    for diagnostic in &loaded.diagnostics {
        eprintln!("{diagnostic}");
    }
    loaded
        .value
        .ok_or_else(|| UsageError(anyhow!("configuration {} is invalid", path.display())))
}

/// A path if it names a file, else `DIR/NAME.yaml`.
fn find_runbook(runbook: &str, runbooks_dir: &Path) -> Result<PathBuf, UsageError> {
    let direct = PathBuf::from(runbook);
    if direct.is_file() {
        return Ok(direct);
    }
    let named = runbooks_dir.join(format!("{runbook}.yaml"));
    if named.is_file() {
        return Ok(named);
    }
    Err(UsageError(anyhow!(
        "no runbook `{runbook}`: neither a file nor {} exists",
        named.display()
    )))
}

pub fn make_plan(
    config: &ClusterConfig,
    runbook: &Runbook,
    site: &str,
    params: &[(String, String)],
) -> Result<Plan, UsageError> {
    let mut given: BTreeMap<String, String> = params.iter().cloned().collect();
    given.insert("site".to_owned(), site.to_owned());
    given
        .entry("execution".to_owned())
        .or_insert_with(|| "plan".to_owned());
    let parameters = switchyard_core::plan::resolve_parameters(runbook, &given)
        .map_err(|error| UsageError(error.into()))?;
    switchyard_core::plan::plan(
        config,
        runbook,
        &parameters,
        &Routing::initial(config),
        &BTreeSet::new(),
    )
    .map_err(|error| UsageError(error.into()))
}

pub fn render_text(plan: &Plan, runbook_path: &Path) -> String {
    let mut out = String::new();
    let parameters: Vec<String> = plan
        .parameters
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    let _ = writeln!(
        out,
        "plan for runbook {} ({})",
        plan.runbook,
        runbook_path.display()
    );
    let _ = writeln!(out, "parameters: {}", parameters.join(" "));
    if let Some(rto) = plan.rto {
        let _ = writeln!(out, "declared rto: {}", humantime::format_duration(rto));
    }
    let _ = writeln!(out, "\nsteps:");
    render_steps(&mut out, &plan.steps);
    if !plan.rollback.is_empty() {
        let _ = writeln!(
            out,
            "\nrollback (if a step fails under on_failure: rollback):"
        );
        render_steps(&mut out, &plan.rollback);
    }
    let _ = writeln!(out, "\nrouting after the steps:");
    for (service, sites) in &plan.routing_after.services {
        let sites: Vec<&str> = sites.keys().map(|site| site.as_str()).collect();
        let _ = writeln!(out, "  {service}: [{}]", sites.join(", "));
    }
    let _ = writeln!(out, "\ndns changes:");
    if plan.dns_diff.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    for diff in &plan.dns_diff {
        render_diff(&mut out, "  ", diff);
    }
    if plan.refused() {
        let _ = writeln!(
            out,
            "\nrefused: at least one step would be stopped by a safety rule (see above)"
        );
    }
    out
}

fn render_steps(out: &mut String, steps: &[PlannedStep]) {
    for (number, step) in steps.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {}. {} [{}] {} (timeout {}, retries {}, on failure {})",
            number + 1,
            step.id,
            step.kind,
            step.summary,
            humantime::format_duration(step.timeout),
            step.retries,
            on_failure_name(step.on_failure),
        );
        for diff in &step.dns_changes {
            render_diff(out, "       ", diff);
        }
        for violation in &step.refused {
            let _ = writeln!(out, "       refused: {violation}");
        }
    }
}

fn on_failure_name(on_failure: OnFailure) -> &'static str {
    match on_failure {
        OnFailure::Halt => "halt",
        OnFailure::Continue => "continue",
        OnFailure::Rollback => "rollback",
    }
}

fn render_diff(out: &mut String, indent: &str, diff: &RrsetDiff) {
    let list = |values: &BTreeSet<std::net::IpAddr>| {
        values
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let _ = writeln!(
        out,
        "{indent}{} {} ttl {}: [{}] -> [{}]",
        diff.key.name,
        diff.key.record_type.as_str(),
        humantime::format_duration(diff.ttl),
        list(&diff.before),
        list(&diff.after),
    );
}
