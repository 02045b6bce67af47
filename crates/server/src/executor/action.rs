//! Carrying out a resolved step: the only place where an execution touches the outside world.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::json;
use switchyard_core::config::ClusterConfig;
use switchyard_core::detection::{Consensus, SiteState};
use switchyard_core::execution::{ExecutionId, StepOutcome, idempotency_key};
use switchyard_core::id::{ServiceId, StepId, ZoneName};
use switchyard_core::plan::{ResolvedAction, ResolvedCondition, ResolvedWebhook};
use switchyard_core::routing::{Rrset, RrsetKey};
use switchyard_core::runbook::SiteStateName;
use switchyard_core::state::{Actor, Command, CommandKind, Outcome, State};

use switchyard_core::Timestamp;

use crate::clock::{now, timestamp};
use crate::dns;
use crate::node::NodeContext;

/// How often `verify_dns` asks each server again, and `check` re-reads the state.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Largest webhook response body read, for the evidence.
const WEBHOOK_BODY_MAX: usize = 4096;

fn failed(error: impl Into<String>) -> StepOutcome {
    StepOutcome::Failed {
        error: error.into(),
        evidence: serde_json::Value::Null,
    }
}

fn succeeded(evidence: serde_json::Value) -> StepOutcome {
    StepOutcome::Succeeded {
        evidence,
        converged_at: None,
    }
}

/// Which attempt of which step is acting.
#[derive(Debug)]
pub struct Attempt<'a> {
    pub execution: ExecutionId,
    pub step: &'a StepId,
    pub number: u32,
    /// When the step's first intent was committed (by this leader or an earlier one).
    pub first_intent: Timestamp,
}

pub async fn act(
    context: &NodeContext,
    http: &reqwest::Client,
    current: Attempt<'_>,
    action: &ResolvedAction,
    budget: Duration,
) -> StepOutcome {
    let Attempt {
        execution,
        step,
        number: attempt,
        first_intent,
    } = current;
    match action {
        ResolvedAction::ShiftTraffic(change) => {
            let reason = format!("execution {} step {step} attempt {attempt}", execution.0);
            let command = Command {
                time: now(),
                actor: Actor::Node(context.node),
                kind: CommandKind::Routing {
                    change: change.clone(),
                    reason,
                },
            };
            match context.raft.propose(command).await {
                Ok(applied) => match applied.outcome {
                    Outcome::Accepted => {
                        let routing = context
                            .raft
                            .read_state(|state| state.routing().routing.clone());
                        succeeded(json!({ "routing_index": applied.index, "routing": routing }))
                    }
                    Outcome::Rejected(rejection) => {
                        failed(format!("routing change refused: {rejection}"))
                    }
                },
                Err(error) => failed(format!("cannot commit the routing change: {error}")),
            }
        }
        ResolvedAction::VerifyDns(verify) => {
            verify_dns(context, &verify.services, verify.resolvers, budget).await
        }
        ResolvedAction::Webhook(webhook) => {
            call_webhook(
                http,
                webhook,
                &idempotency_key(execution, step, attempt),
                budget,
            )
            .await
        }
        ResolvedAction::Wait(wait) => {
            let elapsed = now().since(first_intent);
            tokio::time::sleep(wait.duration.saturating_sub(elapsed)).await;
            succeeded(json!({ "waited_ms": wait.duration.as_millis() as u64 }))
        }
        ResolvedAction::Check(condition) => check(context, condition).await,
        ResolvedAction::SetRecords(set) => {
            let reason = format!("execution {} step {step} attempt {attempt}", execution.0);
            let command = Command {
                time: now(),
                actor: Actor::Node(context.node),
                kind: CommandKind::SetRecords {
                    zone: set.zone.clone(),
                    records: set.records.clone(),
                    reason,
                },
            };
            match context.raft.propose(command).await {
                Ok(applied) => match applied.outcome {
                    Outcome::Accepted => {
                        let pins = context.raft.read_state(|state| pins_of(state, &set.zone));
                        succeeded(json!({ "records_index": applied.index, "pins": pins }))
                    }
                    Outcome::Rejected(rejection) => {
                        failed(format!("record change refused: {rejection}"))
                    }
                },
                Err(error) => failed(format!("cannot commit the record change: {error}")),
            }
        }
        ResolvedAction::Approval { .. } => failed("approval steps are not yet supported"),
        ResolvedAction::Haproxy { .. } => failed("haproxy steps are not yet supported"),
    }
}

/// The RRsets pinned in `zone` after a `set_records` step, as evidence.
fn pins_of(state: &State, zone: &ZoneName) -> Vec<serde_json::Value> {
    state
        .routing()
        .pins
        .iter()
        .filter(|(key, _)| &key.zone == zone)
        .map(|(key, rrset)| {
            json!({
                "name": key.name,
                "type": key.record_type.as_str(),
                "ttl_s": rrset.ttl.as_secs(),
                "values": rrset.values.iter().map(ToString::to_string).collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// What `verify_dns` asks of one zone, and whom: each zone is checked against its own servers.
struct Targets {
    expected: BTreeMap<RrsetKey, Rrset>,
    servers: Vec<SocketAddr>,
    resolvers: Vec<SocketAddr>,
}

/// Per zone holding a record of `services`: the RRsets it must serve under the routing in force,
/// its authoritative servers (every node for an embedded zone) and its resolvers.
fn verification_targets(
    state: &State,
    services: &[ServiceId],
) -> Option<BTreeMap<ZoneName, Targets>> {
    let config: &ClusterConfig = &state.config()?.config;
    let answers = state.routing().answers(config);
    let mut zones: BTreeMap<ZoneName, Targets> = BTreeMap::new();
    for service in services {
        for (zone, record) in config.records_of(service) {
            let targets = zones.entry(zone.name.clone()).or_insert_with(|| Targets {
                expected: BTreeMap::new(),
                servers: if dns::is_embedded(config, zone) {
                    config.nodes.iter().map(|node| node.dns_addr).collect()
                } else {
                    zone.nameservers.clone()
                },
                resolvers: zone.resolvers.clone(),
            });
            let key = RrsetKey {
                zone: zone.name.clone(),
                name: record.fqdn(&zone.name),
                record_type: record.record_type,
            };
            if let Some(rrset) = answers.get(&key) {
                targets.expected.insert(key, rrset.clone());
            }
        }
    }
    Some(zones)
}

async fn verify_dns(
    context: &NodeContext,
    services: &[ServiceId],
    with_resolvers: bool,
    budget: Duration,
) -> StepOutcome {
    let Some(zones) = context
        .raft
        .read_state(|state| verification_targets(state, services))
    else {
        return failed("no configuration is replicated yet");
    };
    let started = std::time::SystemTime::now();
    // Leave a little of the budget to commit the outcome.
    let timeout = budget
        .saturating_sub(Duration::from_millis(200))
        .max(POLL_INTERVAL);
    let verifications = zones.values().map(|targets| {
        let resolvers: &[SocketAddr] = if with_resolvers {
            &targets.resolvers
        } else {
            &[]
        };
        switchyard_providers::verify(
            &targets.expected,
            &targets.servers,
            resolvers,
            timeout,
            POLL_INTERVAL,
        )
    });
    let reports = futures::future::join_all(verifications).await;
    let servers: BTreeSet<SocketAddr> = zones
        .values()
        .flat_map(|targets| targets.servers.iter().copied())
        .collect();
    let report = switchyard_providers::VerifyReport {
        converged: reports.iter().all(|report| report.converged),
        elapsed: reports
            .iter()
            .map(|report| report.elapsed)
            .max()
            .unwrap_or_default(),
        checks: reports
            .into_iter()
            .flat_map(|report| report.checks)
            .collect(),
    };
    let checks: Vec<serde_json::Value> = report
        .checks
        .iter()
        .map(|check| {
            json!({
                "server": check.server.to_string(),
                "role": format!("{:?}", check.role).to_lowercase(),
                "name": check.key.name,
                "type": check.key.record_type.as_str(),
                "expected": check.expected.values.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "answer": check.answer.as_ref().map(|answer| answer.iter().map(ToString::to_string).collect::<Vec<_>>()),
                "rcode": check.rcode,
                "ttl_s": check.ttl.map(|ttl| ttl.as_secs()),
                "first_seen_ms": check.first_seen.map(|seen| seen.as_millis() as u64),
                "converged": check.converged,
                "last_error": check.last_error,
            })
        })
        .collect();
    let evidence = json!({ "servers": servers.len(), "elapsed_ms": report.elapsed.as_millis() as u64, "checks": checks });
    if report.converged {
        let last_seen = report
            .checks
            .iter()
            .filter_map(|check| check.first_seen)
            .max()
            .unwrap_or_default();
        StepOutcome::Succeeded {
            evidence,
            converged_at: Some(timestamp(started + last_seen)),
        }
    } else {
        let pending: Vec<String> = report
            .pending()
            .map(|check| {
                format!(
                    "{} for {} {}",
                    check.server,
                    check.key.name,
                    check.key.record_type.as_str()
                )
            })
            .collect();
        StepOutcome::Failed {
            error: format!("not served as planned by: {}", pending.join(", ")),
            evidence,
        }
    }
}

async fn call_webhook(
    http: &reqwest::Client,
    webhook: &ResolvedWebhook,
    key: &str,
    budget: Duration,
) -> StepOutcome {
    let Ok(method) = reqwest::Method::from_bytes(webhook.method.as_bytes()) else {
        return failed(format!("invalid HTTP method `{}`", webhook.method));
    };
    let mut request = http
        .request(method, &webhook.url)
        .timeout(budget)
        .header("idempotency-key", key);
    for (name, value) in &webhook.headers {
        request = request.header(name, value);
    }
    if let Some(body) = &webhook.body {
        request = request.json(body);
    }
    let started = Instant::now();
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => return failed(format!("webhook {} failed: {error}", webhook.url)),
    };
    let status = response.status().as_u16();
    let body = response
        .bytes()
        .await
        .map(|bytes| bytes.to_vec())
        .unwrap_or_default();
    let body = String::from_utf8_lossy(&body[..body.len().min(WEBHOOK_BODY_MAX)]).into_owned();
    let evidence = json!({ "url": webhook.url, "status": status, "idempotency_key": key, "elapsed_ms": started.elapsed().as_millis() as u64, "body": body });
    if webhook.expected_status.contains(&status) {
        succeeded(evidence)
    } else {
        StepOutcome::Failed {
            error: format!(
                "webhook {} answered {status}, expected one of {:?}",
                webhook.url, webhook.expected_status
            ),
            evidence,
        }
    }
}

/// Waits until the condition holds; the step's timeout ends the wait.
async fn check(context: &NodeContext, condition: &ResolvedCondition) -> StepOutcome {
    loop {
        let held = context.raft.read_state(|state| holds(state, condition));
        if let Some(evidence) = held {
            return succeeded(evidence);
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

fn holds(state: &State, condition: &ResolvedCondition) -> Option<serde_json::Value> {
    let detector = state.detector()?;
    match condition {
        ResolvedCondition::SiteState { site, states } => {
            let current = detector.site(site)?.state;
            let name = match current {
                SiteState::Healthy => SiteStateName::Healthy,
                SiteState::Suspect => SiteStateName::Suspect,
                SiteState::Lost | SiteState::ServicesDown => SiteStateName::Lost,
                SiteState::Recovering => SiteStateName::Recovering,
            };
            states
                .contains(&name)
                .then(|| json!({ "site": site, "state": format!("{current:?}").to_lowercase() }))
        }
        ResolvedCondition::ServiceHealthy { service, sites_min } => {
            let healthy: Vec<String> = detector
                .service_health()
                .into_iter()
                .filter(|health| &health.service == service && health.consensus == Consensus::Up)
                .map(|health| health.site.to_string())
                .collect();
            (healthy.len() >= *sites_min as usize)
                .then(|| json!({ "service": service, "healthy_sites": healthy }))
        }
    }
}
