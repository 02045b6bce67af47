//! `switchyard runbook apply|list|show`: runbook versions stored in the running cluster.

use std::path::PathBuf;

use anyhow::Context as _;
use serde::Serialize;
use switchyard_api::{RunbookApplied, RunbookInvalid, RunbookSummary};
use switchyard_core::state::Actor;

use crate::client::{ServerArgs, outcome_of, runtime};
use crate::executions::{format_ms, time};
use crate::{Outcome, Output, UsageError};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Validate runbook files against the running cluster's configuration and store each as a
    /// new version (operator role). Unchanged text creates no new version.
    ///
    /// Every problem is printed as `file:line:col: error: message`; exit 1 if any file is
    /// invalid (the valid ones are still stored).
    Apply {
        #[command(flatten)]
        server: ServerArgs,
        /// Runbook YAML files.
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// List the latest version of every runbook.
    List {
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Print one runbook version with its YAML source.
    // `--version` picks the runbook version here, so the program's own version flag yields.
    #[command(disable_version_flag = true)]
    Show {
        #[command(flatten)]
        server: ServerArgs,
        /// The runbook's name.
        name: String,
        /// The version to show; the latest when left out.
        #[arg(long, value_name = "N")]
        version: Option<u32>,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
}

/// What happened to one file, for `--output json`.
#[derive(Debug, Serialize)]
struct FileResult {
    file: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    applied: Option<RunbookApplied>,
    #[serde(skip_serializing_if = "Option::is_none")]
    invalid: Option<RunbookInvalid>,
}

pub fn run(command: Command) -> Result<Outcome, UsageError> {
    match command {
        Command::Apply {
            server,
            files,
            output,
        } => apply(&server, &files, output),
        Command::List { server, output } => {
            let list = match runtime()?.block_on(server.client().runbooks()) {
                Ok(list) => list,
                Err(error) => return outcome_of(error),
            };
            match output {
                Output::Json => print_json(&list)?,
                Output::Text if list.runbooks.is_empty() => println!("no runbooks applied yet"),
                Output::Text => {
                    println!(
                        "{:<24} {:>4} {:<12} {:<24} {:<24} {:<8} {:<7} TRIGGERS",
                        "NAME", "VER", "HASH", "APPLIED", "AUTHOR", "APPROVED", "RTO"
                    );
                    for runbook in &list.runbooks {
                        print_summary_row(runbook);
                    }
                }
            }
            Ok(Outcome::Success)
        }
        Command::Show {
            server,
            name,
            version,
            output,
        } => {
            let detail = match runtime()?.block_on(server.client().runbook(&name, version)) {
                Ok(detail) => detail,
                Err(error) => return outcome_of(error),
            };
            match output {
                Output::Json => print_json(&detail)?,
                Output::Text => {
                    let summary = &detail.summary;
                    let versions: Vec<String> =
                        detail.versions.iter().map(ToString::to_string).collect();
                    println!("runbook:     {}", summary.name);
                    println!("description: {}", summary.description);
                    println!(
                        "version:     {} (of {})",
                        summary.version,
                        versions.join(", ")
                    );
                    println!("hash:        {}", summary.content_hash);
                    println!(
                        "applied:     {} by {} (log index {})",
                        time(summary.applied_at),
                        author(&summary.author),
                        detail.index
                    );
                    println!("pre-approved: {}", summary.pre_approved);
                    println!("triggers:    {}", summary.triggers.join(", "));
                    println!(
                        "rto:         {}",
                        summary.rto_ms.map_or("-".to_owned(), format_ms)
                    );
                    println!("---");
                    print!("{}", detail.source);
                    if !detail.source.ends_with('\n') {
                        println!();
                    }
                }
            }
            Ok(Outcome::Success)
        }
    }
}

fn apply(server: &ServerArgs, files: &[PathBuf], output: Output) -> Result<Outcome, UsageError> {
    let runtime = runtime()?;
    let client = server.client();
    let mut results = Vec::new();
    let mut all_valid = true;
    for file in files {
        let source = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read runbook {}", file.display()))?;
        let name = file.display().to_string();
        let answer = match runtime.block_on(client.apply_runbook(&source, Some(&name))) {
            Ok(answer) => answer,
            Err(error) => return outcome_of(error),
        };
        match answer {
            Ok(applied) => {
                if output == Output::Text {
                    for warning in &applied.warnings {
                        eprintln!("{warning}");
                    }
                    let what = if applied.created {
                        "applied as version"
                    } else {
                        "unchanged, still version"
                    };
                    println!(
                        "{}: {} {what} {} (sha256 {})",
                        file.display(),
                        applied.name,
                        applied.version,
                        &applied.content_hash[..applied.content_hash.len().min(16)]
                    );
                }
                results.push(FileResult {
                    file: file.clone(),
                    applied: Some(applied),
                    invalid: None,
                });
            }
            Err(invalid) => {
                all_valid = false;
                if output == Output::Text {
                    for diagnostic in &invalid.diagnostics {
                        eprintln!("{}", diagnostic.rendered);
                    }
                    let errors = invalid
                        .diagnostics
                        .iter()
                        .filter(|diagnostic| diagnostic.severity == "error")
                        .count();
                    eprintln!("{}: invalid ({errors} errors), not applied", file.display());
                }
                results.push(FileResult {
                    file: file.clone(),
                    applied: None,
                    invalid: Some(invalid),
                });
            }
        }
    }
    if output == Output::Json {
        print_json(&results)?;
    }
    Ok(if all_valid {
        Outcome::Success
    } else {
        Outcome::Rejected
    })
}

fn print_summary_row(runbook: &RunbookSummary) {
    println!(
        "{:<24} {:>4} {:<12} {:<24} {:<24} {:<8} {:<7} {}",
        runbook.name.as_str(),
        runbook.version,
        &runbook.content_hash[..runbook.content_hash.len().min(12)],
        time(runbook.applied_at),
        author(&runbook.author),
        if runbook.pre_approved { "yes" } else { "no" },
        runbook.rto_ms.map_or("-".to_owned(), format_ms),
        runbook.triggers.join(",")
    );
}

/// Who caused a command, as one word.
pub fn author(actor: &Actor) -> String {
    match actor {
        Actor::Principal(name) => name.to_string(),
        Actor::Node(node) => format!("node {node}"),
        Actor::System => "system".to_owned(),
    }
}

pub fn print_json<T: Serialize>(value: &T) -> Result<(), UsageError> {
    println!(
        "{}",
        serde_json::to_string_pretty(value).context("cannot encode the answer as JSON")?
    );
    Ok(())
}
