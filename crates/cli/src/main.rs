//! The `switchyard` command: one binary for serving a node and for every operator task.
//!
//! Exit codes are the same for every subcommand: 0 success, 1 the input or the cluster said no
//! (invalid configuration, failed check, refused request), 2 usage or I/O error (bad flags,
//! unreadable file, unreachable server).
#![forbid(unsafe_code)]

mod audit;
mod client;
mod demo;
mod dns;
mod executions;
mod plan;
mod route;
mod run;
mod runbook;
mod serve;
mod status;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Switchyard: multi-datacenter failover orchestrator.
///
/// Controller nodes in several sites form one Raft group, health-check every site from every
/// site, and run declarative runbooks that move DNS and traffic away from a lost site.
#[derive(Debug, Parser)]
#[command(
    name = "switchyard",
    version,
    propagate_version = true,
    max_term_width = 100
)]
#[command(after_help = "Exit codes: 0 success, 1 invalid input or refused, 2 usage or I/O error.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a cluster configuration and runbooks, reporting every problem at once.
    ///
    /// Problems are printed as `file:line:col: error: message`. Warnings do not fail validation.
    Validate(validate::Args),
    /// Show what a runbook would do for a site, without doing it.
    ///
    /// Prints each step with its parameters resolved, and the routing and DNS answers it would
    /// change. Nothing is contacted and nothing is changed.
    Plan(plan::Args),
    /// Run one controller node (Raft member, API, probes) in the foreground.
    ///
    /// A fresh cluster bootstraps itself once a majority of its voters are up; a node restarted
    /// with its data directory rejoins and catches up. SIGTERM or SIGINT stops it cleanly.
    Serve(serve::Args),
    /// Show the cluster as one node sees it: roles, leader, term, log, members.
    Status(status::Args),
    /// Read or verify the hash-chained audit log.
    #[command(subcommand)]
    Audit(audit::Command),
    /// Add a note to the incident timeline (recorded in the audit chain).
    Annotate(audit::AnnotateArgs),
    /// Run a local three-site demo cluster and narrate what it does, then clean up.
    ///
    /// Needs nothing but this binary: the demo configuration and runbooks are built in, and the
    /// nodes listen on 127.0.0.1 ports 7101-7103 (Raft) and 7201-7203 (API).
    Demo(demo::Args),
    /// The demo's stand-in application (started by `demo`).
    #[command(hide = true)]
    DemoService(demo::ServiceArgs),
    /// Show the DNS answers the routing calls for, or check what every server really serves.
    #[command(subcommand)]
    Dns(dns::Command),
    /// Change which sites are in rotation for services (operator role).
    #[command(subcommand)]
    Route(route::Command),
    /// Store runbooks in the running cluster (validated against its configuration), list them,
    /// and show any stored version.
    #[command(subcommand)]
    Runbook(runbook::Command),
    /// Start a manual run or a drill of a runbook for a site (operator role).
    ///
    /// Prints the execution id; with `--wait`, follows the execution until it ends, prints its
    /// timeline and recovery time, and exits 0 only if it succeeded.
    Run(run::Args),
    /// List runbook executions or show one with its timeline and measured recovery time.
    #[command(subcommand)]
    Executions(executions::Command),
    /// Abort a running execution (operator role): no new step starts, and it ends `aborted`
    /// once the step in flight (if any) reports its outcome.
    Abort(executions::AbortArgs),
}

/// How results are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Human-readable text.
    #[default]
    Text,
    /// One JSON document on stdout.
    Json,
}

/// What a subcommand tells `main` to exit with.
#[derive(Debug)]
pub enum Outcome {
    Success,
    /// The input was read but is not acceptable (invalid, refused, check failed).
    Rejected,
}

/// A failure to even look at the input: a usage or I/O error, exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct UsageError(#[from] anyhow::Error);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Plan(args) => plan::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Status(args) => status::run(args),
        Command::Audit(command) => audit::run(command),
        Command::Annotate(args) => audit::annotate(args),
        Command::Demo(args) => demo::run(args),
        Command::DemoService(args) => demo::service(args),
        Command::Dns(command) => dns::run(command),
        Command::Route(command) => route::run(command),
        Command::Runbook(command) => runbook::run(command),
        Command::Run(args) => run::run(args),
        Command::Executions(command) => executions::run(command),
        Command::Abort(args) => executions::abort(args),
    };
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Rejected) => ExitCode::from(1),
        Err(error) => {
            eprintln!("switchyard: error: {error}");
            ExitCode::from(2)
        }
    }
}
