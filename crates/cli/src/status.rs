//! `switchyard status`: the cluster as one node sees it.

use anyhow::Context as _;

use crate::client::{ServerArgs, outcome_of, runtime};
use crate::{Outcome, Output, UsageError};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// Confirm with a quorum first (linearizable), instead of this node's possibly stale view.
    #[arg(long)]
    consistent: bool,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

pub fn run(args: Args) -> Result<Outcome, UsageError> {
    let client = args.server.client();
    let status = match runtime()?.block_on(client.status(args.consistent)) {
        Ok(status) => status,
        Err(error) => return outcome_of(error),
    };
    match args.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&status).context("cannot encode status")?
        ),
        Output::Text => {
            let leader = match &status.leader {
                Some(leader) => format!("node {} in site {}", leader.node, leader.site),
                None => "none (no quorum?)".to_owned(),
            };
            println!(
                "cluster {}: node {} in site {} is {:?}",
                status.cluster, status.node, status.site, status.role
            );
            println!("leader: {leader}, term {}", status.term);
            println!(
                "log: last index {}, applied {}",
                status
                    .last_log_index
                    .map_or("-".to_owned(), |index| index.to_string()),
                status
                    .last_applied_index
                    .map_or("-".to_owned(), |index| index.to_string())
            );
            println!("audit head: {}", status.audit_head);
            println!("members:");
            for member in &status.members {
                let contact = member
                    .last_contact_ms
                    .map_or("-".to_owned(), |ms| format!("{ms} ms ago"));
                let matched = member
                    .matched_index
                    .map_or("-".to_owned(), |index| index.to_string());
                let kind = if member.voter { "voter" } else { "non-voter" };
                println!(
                    "  node {} site {} {kind} api {} last contact {contact} matched {matched}",
                    member.node, member.site, member.api_addr
                );
            }
        }
    }
    Ok(Outcome::Success)
}
