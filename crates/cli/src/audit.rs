//! `switchyard audit list|verify` and `switchyard annotate`: the hash-chained audit log.

use anyhow::Context as _;

use crate::client::{ServerArgs, outcome_of, runtime};
use crate::{Outcome, Output, UsageError};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print entries of the audit chain.
    List {
        #[command(flatten)]
        server: ServerArgs,
        /// First log index to print.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Most entries to print (the server caps a page at 1000).
        #[arg(long, default_value_t = 100)]
        limit: u64,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Recheck every link of the chain on the server; exit 1 if any is broken.
    Verify {
        #[command(flatten)]
        server: ServerArgs,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
}

pub fn run(command: Command) -> Result<Outcome, UsageError> {
    let runtime = runtime()?;
    match command {
        Command::List {
            server,
            from,
            limit,
            output,
        } => {
            let page = match runtime.block_on(server.client().audit(from, limit, false)) {
                Ok(page) => page,
                Err(error) => return outcome_of(error),
            };
            match output {
                Output::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&page).context("cannot encode page")?
                ),
                Output::Text => {
                    for entry in &page.entries {
                        println!(
                            "{:>6} term {:<3} {} {:?}: {} [{}]",
                            entry.index,
                            entry.term,
                            entry.time,
                            entry.actor,
                            entry.summary,
                            &entry.hash[..12.min(entry.hash.len())]
                        );
                    }
                    println!(
                        "{} of {} entries; head {}",
                        page.entries.len(),
                        page.total,
                        page.head
                    );
                }
            }
            Ok(Outcome::Success)
        }
        Command::Verify { server, output } => {
            let page = match runtime.block_on(server.client().audit(0, 0, true)) {
                Ok(page) => page,
                Err(error) => return outcome_of(error),
            };
            let verification = page
                .verification
                .context("server did not verify the chain")?;
            match output {
                Output::Json => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&verification)
                            .context("cannot encode result")?
                    )
                }
                Output::Text if verification.valid => {
                    println!(
                        "ok: {} entries verified; head {}",
                        verification.entries_checked, page.head
                    )
                }
                Output::Text => println!("broken: {}", verification.error.unwrap_or_default()),
            }
            Ok(if verification.valid {
                Outcome::Success
            } else {
                Outcome::Rejected
            })
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct AnnotateArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The note, recorded in the audit chain with your principal's name.
    text: String,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

pub fn annotate(args: AnnotateArgs) -> Result<Outcome, UsageError> {
    let result = match runtime()?.block_on(args.server.client().annotate(&args.text)) {
        Ok(result) => result,
        Err(error) => return outcome_of(error),
    };
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&result).context("cannot encode result")?
        ),
        Output::Text => println!(
            "annotation committed at index {} by leader {}",
            result.index, result.leader
        ),
    }
    Ok(Outcome::Success)
}
