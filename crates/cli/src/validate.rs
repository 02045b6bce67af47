//! `switchyard validate`: check a configuration and runbooks, reporting every problem at once.

use std::path::PathBuf;

use anyhow::Context as _;
use serde::Serialize;
use switchyard_spec::{Diagnostic, Severity};

use crate::{Outcome, Output, UsageError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The cluster configuration file.
    #[arg(long, short = 'c', env = "SWITCHYARD_CONFIG", value_name = "FILE")]
    config: PathBuf,
    /// Runbook files, each checked against the configuration.
    #[arg(value_name = "RUNBOOK")]
    runbooks: Vec<PathBuf>,
    /// Print text for people or one JSON document for programs.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

#[derive(Debug, Serialize)]
struct Report {
    valid: bool,
    errors: usize,
    warnings: usize,
    files: Vec<FileReport>,
}

#[derive(Debug, Serialize)]
struct FileReport {
    file: PathBuf,
    kind: &'static str,
    /// False when the file could not be checked because the configuration has errors.
    checked: bool,
    diagnostics: Vec<Diagnostic>,
}

pub fn run(args: Args) -> Result<Outcome, UsageError> {
    let config = switchyard_spec::load_config(&args.config)
        .with_context(|| format!("cannot load configuration {}", args.config.display()))?;
    let mut files = vec![FileReport {
        file: args.config.clone(),
        kind: "config",
        checked: true,
        diagnostics: config.diagnostics,
    }];
    for runbook in &args.runbooks {
        let report = match &config.value {
            Some(cluster) => {
                let loaded = switchyard_spec::load_runbook(runbook, cluster)
                    .with_context(|| format!("cannot load runbook {}", runbook.display()))?;
                FileReport {
                    file: runbook.clone(),
                    kind: "runbook",
                    checked: true,
                    diagnostics: loaded.diagnostics,
                }
            }
            None => FileReport {
                file: runbook.clone(),
                kind: "runbook",
                checked: false,
                diagnostics: Vec::new(),
            },
        };
        files.push(report);
    }
    let count = |severity: Severity| {
        files
            .iter()
            .flat_map(|file| &file.diagnostics)
            .filter(|diagnostic| diagnostic.severity == severity)
            .count()
    };
    let (errors, warnings) = (count(Severity::Error), count(Severity::Warning));
    let unchecked = files.iter().any(|file| !file.checked);
    let report = Report {
        valid: errors == 0 && !unchecked,
        errors,
        warnings,
        files,
    };
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).context("cannot encode report")?
        ),
        Output::Text => print_text(&report),
    }
    Ok(if report.valid {
        Outcome::Success
    } else {
        Outcome::Rejected
    })
}

fn print_text(report: &Report) {
    for file in &report.files {
        for diagnostic in &file.diagnostics {
            eprintln!("{diagnostic}");
            if let Some(snippet) = snippet(diagnostic) {
                eprintln!("{snippet}");
            }
        }
        if !file.checked {
            eprintln!(
                "{}: note: not checked, because the configuration has errors",
                file.file.display()
            );
        }
    }
    let names: Vec<String> = report
        .files
        .iter()
        .map(|file| file.file.display().to_string())
        .collect();
    if report.valid {
        println!("ok: {} ({} warning(s))", names.join(", "), report.warnings);
    } else {
        println!(
            "invalid: {} error(s), {} warning(s)",
            report.errors, report.warnings
        );
    }
}

/// The offending line with a caret under the column, read back from the file.
fn snippet(diagnostic: &Diagnostic) -> Option<String> {
    let text = std::fs::read_to_string(&diagnostic.file).ok()?;
    let line = text.lines().nth(diagnostic.line.checked_sub(1)?)?;
    let gutter = diagnostic.line.to_string().len();
    let caret = " ".repeat(diagnostic.column.saturating_sub(1));
    Some(format!(
        "{:gutter$} |\n{} | {line}\n{:gutter$} | {caret}^",
        "", diagnostic.line, ""
    ))
}
