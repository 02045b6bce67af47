//! `switchyard route away|restore|to`: propose a routing change, which the cluster commits only
//! if the safety rules allow it (checked when proposed and again when applied).

use anyhow::Context as _;
use switchyard_api::RoutingChangeRequest;
use switchyard_core::id::{ServiceId, SiteId};

use crate::client::{ServerArgs, outcome_of, runtime};
use crate::{Outcome, Output, UsageError};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Take a site out of rotation for some services.
    Away {
        #[command(flatten)]
        change: ChangeArgs,
        /// The site to route away from.
        #[arg(long)]
        site: String,
    },
    /// Put a site back in rotation for some services, with its configured weight.
    Restore {
        #[command(flatten)]
        change: ChangeArgs,
        /// The site to restore.
        #[arg(long)]
        site: String,
    },
    /// Route some services to exactly these sites.
    To {
        #[command(flatten)]
        change: ChangeArgs,
        /// A site to route to; repeat for several.
        #[arg(long = "site", required = true)]
        sites: Vec<String>,
    },
}

#[derive(Debug, clap::Args)]
pub struct ChangeArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// A service to change; repeat for several.
    #[arg(long = "service", required = true)]
    services: Vec<String>,
    /// Why (recorded in the audit log).
    #[arg(long)]
    reason: String,
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

pub fn run(command: Command) -> Result<Outcome, UsageError> {
    let services = |change: &ChangeArgs| -> Vec<ServiceId> {
        change.services.iter().map(ServiceId::new).collect()
    };
    let (change, request) = match command {
        Command::Away { change, site } => {
            let request = RoutingChangeRequest::AwayFrom {
                services: services(&change),
                site: SiteId::new(site),
            };
            (change, request)
        }
        Command::Restore { change, site } => {
            let request = RoutingChangeRequest::Restore {
                services: services(&change),
                site: SiteId::new(site),
            };
            (change, request)
        }
        Command::To { change, sites } => {
            let request = RoutingChangeRequest::To {
                services: services(&change),
                sites: sites.into_iter().map(SiteId::new).collect(),
            };
            (change, request)
        }
    };
    let client = change.server.client();
    let result = match runtime()?.block_on(client.change_routing(request, &change.reason)) {
        Ok(result) => result,
        Err(error) => return outcome_of(error),
    };
    match change.output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&result).context("cannot encode the result")?
        ),
        Output::Text => println!(
            "routing change committed at log index {} by leader node {}; the embedded zones now serve serial {}",
            result.index,
            result.leader,
            result.index & u64::from(u32::MAX)
        ),
    }
    Ok(Outcome::Success)
}
