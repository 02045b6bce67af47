//! Planning: what a runbook would do, step by step, with parameters resolved and the routing and
//! DNS changes it would make, computed without side effects.
//!
//! `switchyard plan` prints this; the executor uses the same resolution so a plan shows exactly
//! what a run would do.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::ClusterConfig;
use crate::id::{RunbookId, ServiceId, SiteId, StepId};
use crate::routing::{
    Routing, RoutingChange, Rrset, RrsetDiff, RrsetKey, SafetyViolation, diff_answers,
};
use crate::runbook::{
    Action, BUILTIN_PARAMETERS, Condition, HaproxyAction, OnFailure, Runbook, SetRecords,
    ShiftDirection, SiteStateName, Step, Template, TemplateError, VerifyDns, Wait,
};

/// A runbook resolved against one set of parameters and one starting routing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub runbook: RunbookId,
    pub parameters: BTreeMap<String, String>,
    pub rto: Option<Duration>,
    pub steps: Vec<PlannedStep>,
    /// The rollback steps, planned as if every main step had succeeded first.
    pub rollback: Vec<PlannedStep>,
    /// Every RRset that differs between the starting routing and the end of the main steps.
    pub dns_diff: Vec<RrsetDiff>,
    /// Routing at the end of the main steps.
    pub routing_after: Routing,
}

impl Plan {
    /// Whether any step would be refused by a safety rule.
    pub fn refused(&self) -> bool {
        self.steps
            .iter()
            .chain(&self.rollback)
            .any(|step| !step.refused.is_empty())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedStep {
    pub id: StepId,
    pub kind: String,
    pub timeout: Duration,
    pub retries: u32,
    pub on_failure: OnFailure,
    /// One line saying what the step does, parameters resolved.
    pub summary: String,
    pub routing_change: Option<RoutingChange>,
    pub dns_changes: Vec<RrsetDiff>,
    /// Safety rules that would refuse this step; a refused step changes nothing.
    pub refused: Vec<SafetyViolation>,
}

/// Why a runbook could not be planned at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("parameter `{name}` is required and has no default")]
    MissingParameter { name: String },
    #[error("parameter `{name}` is not declared by runbook `{runbook}`")]
    UnknownParameter { name: String, runbook: RunbookId },
    #[error("step `{step}`: {source}")]
    Template { step: StepId, source: TemplateError },
    #[error("unknown site `{site}`")]
    UnknownSite { site: String },
}

/// The values of every parameter: built-ins, then declared defaults, then `given`.
pub fn resolve_parameters(
    runbook: &Runbook,
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, PlanError> {
    for name in given.keys() {
        if !BUILTIN_PARAMETERS.contains(&name.as_str()) && !runbook.parameters.contains_key(name) {
            return Err(PlanError::UnknownParameter {
                name: name.clone(),
                runbook: runbook.name.clone(),
            });
        }
    }
    let mut values = BTreeMap::new();
    for (name, parameter) in &runbook.parameters {
        match (given.get(name), &parameter.default) {
            (Some(value), _) | (None, Some(value)) => values.insert(name.clone(), value.clone()),
            (None, None) => return Err(PlanError::MissingParameter { name: name.clone() }),
        };
    }
    for name in BUILTIN_PARAMETERS {
        if let Some(value) = given.get(name) {
            values.insert(name.to_owned(), value.clone());
        }
    }
    Ok(values)
}

/// Plans `runbook` from `routing` with `parameters` (already resolved, see [`resolve_parameters`]).
pub fn plan(
    config: &ClusterConfig,
    runbook: &Runbook,
    parameters: &BTreeMap<String, String>,
    routing: &Routing,
    lost: &BTreeSet<SiteId>,
) -> Result<Plan, PlanError> {
    let mut state = Planner {
        config,
        parameters,
        lost,
        routing: routing.clone(),
        pins: BTreeMap::new(),
    };
    let before = state.answers();
    let steps = runbook
        .steps
        .iter()
        .map(|step| state.plan_step(step, runbook.on_failure))
        .collect::<Result<Vec<_>, _>>()?;
    let after = state.answers();
    let routing_after = state.routing.clone();
    let rollback = runbook
        .rollback
        .iter()
        .map(|step| state.plan_step(step, OnFailure::Halt))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Plan {
        runbook: runbook.name.clone(),
        parameters: parameters.clone(),
        rto: runbook.rto,
        steps,
        rollback,
        dns_diff: diff_answers(&before, &after),
        routing_after,
    })
}

struct Planner<'a> {
    config: &'a ClusterConfig,
    parameters: &'a BTreeMap<String, String>,
    lost: &'a BTreeSet<SiteId>,
    routing: Routing,
    /// RRsets set explicitly by `set_records`, which override what the routing derives.
    pins: BTreeMap<RrsetKey, Rrset>,
}

impl Planner<'_> {
    fn answers(&self) -> BTreeMap<RrsetKey, Rrset> {
        let mut answers = self.routing.answers(self.config);
        answers.extend(self.pins.clone());
        answers
    }

    fn plan_step(&mut self, step: &Step, on_failure: OnFailure) -> Result<PlannedStep, PlanError> {
        let before = self.answers();
        let mut routing_change = None;
        let mut refused = Vec::new();
        let summary = match resolve_action(self.config, step, self.parameters)? {
            ResolvedAction::ShiftTraffic(change) => {
                let summary = match &change {
                    RoutingChange::AwayFrom { services, site } => {
                        format!("take site {site} out of rotation for {}", join(services))
                    }
                    RoutingChange::Restore { services, site } => {
                        format!("put site {site} back into rotation for {}", join(services))
                    }
                    RoutingChange::To { services, sites } => {
                        format!("route {} to exactly [{}]", join(services), join(sites))
                    }
                };
                match self.routing.with_change(self.config, &change, self.lost) {
                    Ok(next) => self.routing = next,
                    Err(violations) => refused = violations,
                }
                routing_change = Some(change);
                summary
            }
            ResolvedAction::SetRecords(set) => {
                for record in &set.records {
                    let name = if record.name == "@" {
                        set.zone.to_string()
                    } else {
                        format!("{}.{}", record.name, set.zone)
                    };
                    let key = RrsetKey {
                        zone: set.zone.clone(),
                        name,
                        record_type: record.record_type,
                    };
                    // As in the replicated state: an empty list removes the pin, and the routing
                    // answers for the record again.
                    if record.values.is_empty() {
                        self.pins.remove(&key);
                    } else {
                        self.pins.insert(
                            key,
                            Rrset {
                                ttl: record.ttl,
                                values: record.values.iter().copied().collect(),
                            },
                        );
                    }
                }
                format!(
                    "set {} record set(s) in zone {}",
                    set.records.len(),
                    set.zone
                )
            }
            ResolvedAction::VerifyDns(verify) => {
                let whom = if verify.resolvers {
                    "every authoritative server and the listed resolvers"
                } else {
                    "every authoritative server"
                };
                format!(
                    "query {whom} until {} answer as planned",
                    join(&verify.services)
                )
            }
            ResolvedAction::Webhook(webhook) => {
                format!(
                    "{} {} expecting {:?}",
                    webhook.method, webhook.url, webhook.expected_status
                )
            }
            ResolvedAction::Wait(wait) => format!("wait {}", humanize(wait.duration)),
            ResolvedAction::Check(condition) => match condition {
                ResolvedCondition::SiteState { site, states } => {
                    format!("wait until site {site} is {states:?}")
                }
                ResolvedCondition::ServiceHealthy { service, sites_min } => {
                    format!("wait until {service} is healthy in at least {sites_min} site(s)")
                }
            },
            ResolvedAction::Approval {
                approvers_min,
                message,
            } => {
                let message = match message {
                    Some(message) => format!(": {message}"),
                    None => String::new(),
                };
                format!("pause until {approvers_min} approver(s) on shift approve{message}")
            }
            ResolvedAction::Haproxy {
                backend,
                server,
                action,
            } => {
                let action = match action {
                    HaproxyAction::Ready => "ready".to_owned(),
                    HaproxyAction::Drain => "drain".to_owned(),
                    HaproxyAction::Maint => "maint".to_owned(),
                    HaproxyAction::Weight(weight) => format!("weight {weight}"),
                };
                format!("set HAProxy server {backend}/{server} to {action}")
            }
        };
        Ok(PlannedStep {
            id: step.id.clone(),
            kind: step.action.kind().to_owned(),
            timeout: step.timeout,
            retries: step.retries,
            on_failure: step.on_failure.unwrap_or(on_failure),
            summary,
            routing_change,
            dns_changes: diff_answers(&before, &self.answers()),
            refused,
        })
    }
}

/// A step's action with every `${param}` resolved and every site checked against the
/// configuration: what the executor carries out, and what [`plan`] describes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResolvedAction {
    /// Committed as a `CommandKind::Routing`; the providers follow the replicated routing.
    ShiftTraffic(RoutingChange),
    SetRecords(SetRecords),
    VerifyDns(VerifyDns),
    Webhook(ResolvedWebhook),
    Wait(Wait),
    Check(ResolvedCondition),
    Approval {
        approvers_min: u32,
        message: Option<String>,
    },
    Haproxy {
        backend: String,
        server: String,
        action: HaproxyAction,
    },
}

/// A webhook with its URL, headers and body's string leaves resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedWebhook {
    pub method: String,
    pub url: String,
    pub headers: BTreeMap<String, String>,
    pub body: Option<serde_json::Value>,
    pub expected_status: Vec<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResolvedCondition {
    SiteState {
        site: SiteId,
        states: Vec<SiteStateName>,
    },
    ServiceHealthy {
        service: ServiceId,
        sites_min: u32,
    },
}

/// Resolves `step`'s action against `parameters` (see [`resolve_parameters`]); sites must exist
/// in `config`. Shared by planning and execution so a plan shows exactly what a run does.
pub fn resolve_action(
    config: &ClusterConfig,
    step: &Step,
    parameters: &BTreeMap<String, String>,
) -> Result<ResolvedAction, PlanError> {
    let resolve = |template: &Template| {
        template
            .resolve(parameters)
            .map_err(|source| PlanError::Template {
                step: step.id.clone(),
                source,
            })
    };
    let site = |template: &Template| {
        let site = SiteId::new(resolve(template)?);
        match config.site(&site) {
            Some(_) => Ok(site),
            None => Err(PlanError::UnknownSite {
                site: site.to_string(),
            }),
        }
    };
    Ok(match &step.action {
        Action::ShiftTraffic(shift) => {
            let services = shift.services.clone();
            ResolvedAction::ShiftTraffic(match &shift.direction {
                ShiftDirection::AwayFrom(template) => RoutingChange::AwayFrom {
                    services,
                    site: site(template)?,
                },
                ShiftDirection::Restore(template) => RoutingChange::Restore {
                    services,
                    site: site(template)?,
                },
                ShiftDirection::To(templates) => RoutingChange::To {
                    services,
                    sites: templates.iter().map(site).collect::<Result<Vec<_>, _>>()?,
                },
            })
        }
        Action::SetRecords(set) => ResolvedAction::SetRecords(set.clone()),
        Action::VerifyDns(verify) => ResolvedAction::VerifyDns(verify.clone()),
        Action::Webhook(webhook) => ResolvedAction::Webhook(ResolvedWebhook {
            method: webhook.method.clone(),
            url: resolve(&webhook.url)?,
            headers: webhook
                .headers
                .iter()
                .map(|(name, value)| Ok((name.clone(), resolve(value)?)))
                .collect::<Result<_, PlanError>>()?,
            body: webhook
                .body
                .as_ref()
                .map(|body| resolve_json(body, &resolve))
                .transpose()?,
            expected_status: webhook.expected_status.clone(),
        }),
        Action::Wait(wait) => ResolvedAction::Wait(wait.clone()),
        Action::Check(check) => ResolvedAction::Check(match &check.condition {
            Condition::SiteState {
                site: template,
                states,
            } => ResolvedCondition::SiteState {
                site: site(template)?,
                states: states.clone(),
            },
            Condition::ServiceHealthy { service, sites_min } => ResolvedCondition::ServiceHealthy {
                service: service.clone(),
                sites_min: *sites_min,
            },
        }),
        Action::Approval(approval) => ResolvedAction::Approval {
            approvers_min: approval.approvers_min,
            message: approval.message.as_ref().map(resolve).transpose()?,
        },
        Action::Haproxy(haproxy) => ResolvedAction::Haproxy {
            backend: haproxy.backend.clone(),
            server: resolve(&haproxy.server)?,
            action: haproxy.action,
        },
    })
}

/// `value` with `${param}` references resolved in every string leaf (keys stay as written).
fn resolve_json(
    value: &serde_json::Value,
    resolve: &impl Fn(&Template) -> Result<String, PlanError>,
) -> Result<serde_json::Value, PlanError> {
    use serde_json::Value;
    Ok(match value {
        Value::String(text) => Value::String(resolve(&Template::new(text.clone()))?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| resolve_json(item, resolve))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, item)| Ok((key.clone(), resolve_json(item, resolve)?)))
                .collect::<Result<_, PlanError>>()?,
        ),
        other => other.clone(),
    })
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn humanize(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}
