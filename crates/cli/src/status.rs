//! `switchyard status`: the cluster as one node sees it.

use anyhow::Context as _;

use switchyard_api::{Services, Sites};
use switchyard_core::Timestamp;
use switchyard_core::detection::Verdict;

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
    let runtime = runtime()?;
    let status = match runtime.block_on(client.status(args.consistent)) {
        Ok(status) => status,
        Err(error) => return outcome_of(error),
    };
    // Site states come from the same node right after; they may be one apply newer than the
    // status, never older.
    let (sites, services) = match runtime.block_on(async {
        let sites = client.sites(args.consistent).await?;
        let services = client.services(args.consistent).await?;
        Ok::<_, switchyard_api::ClientError>((sites, services))
    }) {
        Ok(answers) => answers,
        Err(error) => return outcome_of(error),
    };
    match args.output {
        Output::Json => {
            // The status fields stay at the top level; `sites` and `services` are added.
            let mut json = serde_json::to_value(&status).context("cannot encode status")?;
            if let Some(object) = json.as_object_mut() {
                object.insert(
                    "sites".to_owned(),
                    serde_json::to_value(&sites).context("cannot encode sites")?,
                );
                object.insert(
                    "services".to_owned(),
                    serde_json::to_value(&services).context("cannot encode services")?,
                );
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&json).context("cannot encode status")?
            );
        }
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
            print_sites(&sites, &services);
        }
    }
    Ok(Outcome::Success)
}

/// A leader timestamp as RFC 3339 UTC; 0 (the initial state) as "start".
fn time(timestamp: Timestamp) -> String {
    if timestamp.as_millis() == 0 {
        return "start".to_owned();
    }
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(timestamp.as_millis());
    humantime::format_rfc3339_millis(at).to_string()
}

fn print_sites(sites: &Sites, services: &Services) {
    if !sites.configured {
        println!("sites: no replicated configuration yet");
        return;
    }
    if let Some(outage) = &sites.global_outage {
        let names: Vec<&str> = outage.iter().map(|site| site.as_str()).collect();
        println!(
            "GLOBAL OUTAGE: every site looks down ({}); no failover",
            names.join(", ")
        );
    }
    println!("sites:");
    for site in &sites.sites {
        let mut line = format!(
            "  {} {} since {} (observers see it {})",
            site.site,
            site.state,
            time(site.since),
            site.consensus
        );
        if site.witness {
            line.push_str(", witness");
        }
        if !site.controller_reachable {
            line.push_str(", controller unreachable");
        }
        if let Some(until) = site.cooldown_until {
            line.push_str(&format!(", failover cooldown until {}", time(until)));
        }
        println!("{line}");
        for observer in &site.observers {
            let down: Vec<String> = observer
                .endpoints
                .iter()
                .filter(|endpoint| endpoint.verdict == Verdict::Down)
                .map(|endpoint| endpoint.endpoint.to_string())
                .collect();
            if !down.is_empty() {
                println!(
                    "    {} sees down: {}",
                    observer.observer_site,
                    down.join(", ")
                );
            }
        }
    }
    if !services.services.is_empty() {
        println!("services:");
        for health in &services.services {
            println!(
                "  {} in {}: {}",
                health.service, health.site, health.consensus
            );
        }
    }
}
