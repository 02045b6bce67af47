//! `switchyard dns show|check`: the DNS answers the routing in force calls for, and what every
//! authoritative server of each zone really serves.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use serde::Serialize;
use switchyard_api::{Client, ClientError, RoutingView, ZoneAnswers};
use switchyard_core::config::ClusterConfig;
use switchyard_server::dns_tools::{RrsetCheck, ServerRole, VerifyReport, verify};

use crate::client::{outcome_of, runtime};
use crate::plan::load_valid_config;
use crate::{Outcome, Output, UsageError};

/// How often `check` asks each server again until it serves the expected answers.
const CHECK_POLL_INTERVAL: Duration = Duration::from_millis(200);

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print the RRsets every zone must serve under the routing in force.
    ///
    /// The routing is fetched from the cluster's API (`--server`, else each node of the
    /// configuration in turn).
    Show {
        #[command(flatten)]
        source: SourceArgs,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
    /// Query every authoritative server of each zone directly and compare with the routing.
    ///
    /// Embedded zones are asked at every node's DNS address, other zones at their nameservers.
    /// Exit 1 when any server serves something else or does not answer before `--wait` ends.
    Check {
        #[command(flatten)]
        source: SourceArgs,
        /// How long to wait for every server to serve the expected answers.
        #[arg(long, default_value = "3s", value_parser = humantime::parse_duration, value_name = "DURATION")]
        wait: Duration,
        #[arg(long, value_enum, default_value_t)]
        output: Output,
    },
}

/// Where the expected answers come from.
#[derive(Debug, clap::Args)]
pub struct SourceArgs {
    /// The cluster configuration file (for the nodes' API addresses).
    #[arg(long, short = 'c', env = "SWITCHYARD_CONFIG", value_name = "FILE")]
    config: PathBuf,
    /// Only this zone.
    #[arg(long, value_name = "ZONE")]
    zone: Option<String>,
    /// API address of a node; by default each node of the configuration is tried in turn.
    #[arg(long, env = "SWITCHYARD_SERVER", value_name = "URL")]
    server: Option<String>,
    /// Bearer token of an API principal (never logged).
    #[arg(
        long,
        env = "SWITCHYARD_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    token: Option<String>,
    /// Give up on one API server after this long.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    timeout: Duration,
}

pub fn run(command: Command) -> Result<Outcome, UsageError> {
    match command {
        Command::Show { source, output } => show(&source, output),
        Command::Check {
            source,
            wait,
            output,
        } => check(&source, wait, output),
    }
}

/// The routing fetched from the cluster, with the zones filtered; `Err(outcome)` when the
/// cluster answered with a refusal.
fn fetch(
    source: &SourceArgs,
    runtime: &tokio::runtime::Runtime,
) -> Result<Result<RoutingView, Outcome>, UsageError> {
    let config = load_valid_config(&source.config)?;
    let zone = source.zone.as_deref().map(normalise_zone);
    if let Some(zone) = &zone
        && !config.zones.iter().any(|known| known.name.as_str() == zone)
    {
        return Err(UsageError(anyhow!(
            "zone {zone} is not in {}",
            source.config.display()
        )));
    }
    let servers = match &source.server {
        Some(server) => vec![server.clone()],
        None => api_urls(&config),
    };
    let mut unreachable = Vec::new();
    for server in servers {
        let client = Client::new(server, source.token.clone(), source.timeout);
        match runtime.block_on(client.routing(false)) {
            Ok(mut view) => {
                if let Some(zone) = &zone {
                    view.zones.retain(|known| known.zone.as_str() == zone);
                }
                return Ok(Ok(view));
            }
            Err(error @ ClientError::Api { .. }) => return outcome_of(error).map(Err),
            Err(error) => unreachable.push(error.to_string()),
        }
    }
    Err(UsageError(anyhow!(
        "no node answered:\n  {}",
        unreachable.join("\n  ")
    )))
}

fn api_urls(config: &ClusterConfig) -> Vec<String> {
    config
        .nodes
        .iter()
        .map(|node| format!("http://{}", node.api_addr))
        .collect()
}

/// `example.com` and `Example.COM.` both name zone `example.com.`.
fn normalise_zone(zone: &str) -> String {
    let lower = zone.to_ascii_lowercase();
    if lower.ends_with('.') {
        lower
    } else {
        format!("{lower}.")
    }
}

fn show(source: &SourceArgs, output: Output) -> Result<Outcome, UsageError> {
    let runtime = runtime()?;
    let view = match fetch(source, &runtime)? {
        Ok(view) => view,
        Err(outcome) => return Ok(outcome),
    };
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&view).context("cannot encode the routing")?
        ),
        Output::Text => print!("{}", render_show(&view)),
    }
    Ok(Outcome::Success)
}

fn render_show(view: &RoutingView) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "routing changed at log index {}, configuration at {}: serial {}",
        view.changed_index, view.config_index, view.serial
    );
    if !view.lost_sites.is_empty() {
        let lost: Vec<String> = view.lost_sites.iter().map(ToString::to_string).collect();
        let _ = writeln!(text, "lost sites: {}", lost.join(", "));
    }
    for service in &view.services {
        let sites: Vec<String> = service
            .sites
            .iter()
            .map(|site| format!("{} (weight {})", site.site, site.weight))
            .collect();
        let _ = write!(
            text,
            "service {}: in rotation in {}",
            service.service,
            if sites.is_empty() {
                "no site".to_owned()
            } else {
                sites.join(", ")
            }
        );
        if !service.sites_out.is_empty() {
            let out: Vec<String> = service.sites_out.iter().map(ToString::to_string).collect();
            let _ = write!(text, "; out: {}", out.join(", "));
        }
        let _ = writeln!(text);
    }
    for zone in &view.zones {
        let servers: Vec<String> = zone.nameservers.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            text,
            "zone {} ({}{}), served by {}",
            zone.zone,
            zone.provider,
            if zone.embedded {
                format!(", serial {}", view.serial)
            } else {
                String::new()
            },
            servers.join(", ")
        );
        for rrset in &zone.rrsets {
            let values: Vec<String> = rrset.values.iter().map(ToString::to_string).collect();
            let _ = writeln!(
                text,
                "  {} {} {} {}",
                rrset.name,
                rrset.ttl_seconds,
                rrset.record_type.as_str(),
                if values.is_empty() {
                    "(no records)".to_owned()
                } else {
                    values.join(" ")
                }
            );
        }
    }
    text
}

/// What `check --output json` prints for one zone.
#[derive(Debug, Serialize)]
struct ZoneCheck {
    zone: String,
    converged: bool,
    elapsed_ms: u64,
    checks: Vec<CheckLine>,
}

#[derive(Debug, Serialize)]
struct CheckLine {
    server: String,
    role: &'static str,
    name: String,
    #[serde(rename = "type")]
    record_type: &'static str,
    expected: Vec<String>,
    expected_ttl_seconds: u64,
    served: Option<Vec<String>>,
    ttl_seconds: Option<u64>,
    rcode: Option<String>,
    first_seen_ms: Option<u64>,
    converged: bool,
    error: Option<String>,
}

fn check(source: &SourceArgs, wait: Duration, output: Output) -> Result<Outcome, UsageError> {
    let runtime = runtime()?;
    let view = match fetch(source, &runtime)? {
        Ok(view) => view,
        Err(outcome) => return Ok(outcome),
    };
    let mut zones = Vec::new();
    for zone in &view.zones {
        zones.push(check_zone(zone, wait, &runtime));
    }
    let converged = zones.iter().all(|zone| zone.converged);
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&zones).context("cannot encode the check")?
        ),
        Output::Text => print!("{}", render_check(&zones, view.serial)),
    }
    Ok(if converged {
        Outcome::Success
    } else {
        Outcome::Rejected
    })
}

fn check_zone(zone: &ZoneAnswers, wait: Duration, runtime: &tokio::runtime::Runtime) -> ZoneCheck {
    let expected = zone.expected();
    let report: VerifyReport = runtime.block_on(verify(
        &expected,
        &zone.nameservers,
        &zone.resolvers,
        wait,
        CHECK_POLL_INTERVAL,
    ));
    ZoneCheck {
        zone: zone.zone.to_string(),
        converged: report.converged,
        elapsed_ms: millis(report.elapsed),
        checks: report.checks.iter().map(check_line).collect(),
    }
}

fn check_line(check: &RrsetCheck) -> CheckLine {
    let addresses = |values: &std::collections::BTreeSet<std::net::IpAddr>| {
        values.iter().map(ToString::to_string).collect::<Vec<_>>()
    };
    CheckLine {
        server: check.server.to_string(),
        role: match check.role {
            ServerRole::Authoritative => "authoritative",
            ServerRole::Resolver => "resolver",
        },
        name: check.key.name.clone(),
        record_type: check.key.record_type.as_str(),
        expected: addresses(&check.expected.values),
        expected_ttl_seconds: check.expected.ttl.as_secs(),
        served: check.answer.as_ref().map(addresses),
        ttl_seconds: check.ttl.map(|ttl| ttl.as_secs()),
        rcode: check.rcode.clone(),
        first_seen_ms: check.first_seen.map(millis),
        converged: check.converged,
        error: check.last_error.clone(),
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn render_check(zones: &[ZoneCheck], serial: u32) -> String {
    let mut text = String::new();
    for zone in zones {
        let _ = writeln!(
            text,
            "zone {}: {} (expected serial {serial}, checked for {} ms)",
            zone.zone,
            if zone.converged {
                "every server serves the expected answers"
            } else {
                "MISMATCH"
            },
            zone.elapsed_ms
        );
        for line in &zone.checks {
            let served = match &line.served {
                Some(values) if values.is_empty() => "(no records)".to_owned(),
                Some(values) => values.join(" "),
                None => "(no answer)".to_owned(),
            };
            let expected = if line.expected.is_empty() {
                "(no records)".to_owned()
            } else {
                line.expected.join(" ")
            };
            let _ = write!(
                text,
                "  {:<5} {} {} {} {}: serves {served}",
                if line.converged { "ok" } else { "FAIL" },
                line.server,
                line.role,
                line.name,
                line.record_type,
            );
            if let Some(ttl) = line.ttl_seconds {
                let _ = write!(text, " ttl {ttl}");
            }
            if !line.converged {
                let _ = write!(
                    text,
                    "; expected {expected} ttl {}",
                    line.expected_ttl_seconds
                );
                if let Some(rcode) = &line.rcode {
                    let _ = write!(text, "; rcode {rcode}");
                }
                if let Some(error) = &line.error {
                    let _ = write!(text, "; {error}");
                }
            }
            let _ = writeln!(text);
        }
    }
    if zones.is_empty() {
        let _ = writeln!(text, "no zone to check");
    }
    text
}
