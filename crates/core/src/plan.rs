//! Planning: what a runbook would do, step by step, with parameters resolved and the routing and
//! DNS changes it would make, computed without side effects.
//!
//! `switchyard plan` prints this; the executor uses the same resolution so a plan shows exactly
//! what a run would do.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::ClusterConfig;
use crate::id::{RunbookId, SiteId, StepId};
use crate::routing::{
    Routing, RoutingChange, Rrset, RrsetDiff, RrsetKey, SafetyViolation, diff_answers,
};
use crate::runbook::{
    Action, BUILTIN_PARAMETERS, Condition, HaproxyAction, OnFailure, Runbook, ShiftDirection, Step,
    Template, TemplateError,
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

    fn resolve(&self, step: &Step, template: &Template) -> Result<String, PlanError> {
        template
            .resolve(self.parameters)
            .map_err(|source| PlanError::Template {
                step: step.id.clone(),
                source,
            })
    }

    fn site(&self, step: &Step, template: &Template) -> Result<SiteId, PlanError> {
        let site = SiteId::new(self.resolve(step, template)?);
        match self.config.site(&site) {
            Some(_) => Ok(site),
            None => Err(PlanError::UnknownSite {
                site: site.to_string(),
            }),
        }
    }

    fn plan_step(&mut self, step: &Step, on_failure: OnFailure) -> Result<PlannedStep, PlanError> {
        let before = self.answers();
        let mut routing_change = None;
        let mut refused = Vec::new();
        let summary = match &step.action {
            Action::ShiftTraffic(shift) => {
                let services = shift.services.clone();
                let names = join(&services);
                let (change, summary) = match &shift.direction {
                    ShiftDirection::AwayFrom(site) => {
                        let site = self.site(step, site)?;
                        let summary = format!("take site {site} out of rotation for {names}");
                        (RoutingChange::AwayFrom { services, site }, summary)
                    }
                    ShiftDirection::Restore(site) => {
                        let site = self.site(step, site)?;
                        let summary = format!("put site {site} back into rotation for {names}");
                        (RoutingChange::Restore { services, site }, summary)
                    }
                    ShiftDirection::To(sites) => {
                        let sites = sites
                            .iter()
                            .map(|site| self.site(step, site))
                            .collect::<Result<Vec<_>, _>>()?;
                        let summary = format!("route {names} to exactly [{}]", join(&sites));
                        (RoutingChange::To { services, sites }, summary)
                    }
                };
                match self.routing.with_change(self.config, &change, self.lost) {
                    Ok(next) => self.routing = next,
                    Err(violations) => refused = violations,
                }
                routing_change = Some(change);
                summary
            }
            Action::SetRecords(set) => {
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
                    self.pins.insert(
                        key,
                        Rrset {
                            ttl: record.ttl,
                            values: record.values.iter().copied().collect(),
                        },
                    );
                }
                format!(
                    "set {} record set(s) in zone {}",
                    set.records.len(),
                    set.zone
                )
            }
            Action::VerifyDns(verify) => {
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
            Action::Webhook(webhook) => {
                format!(
                    "{} {} expecting {:?}",
                    webhook.method,
                    self.resolve(step, &webhook.url)?,
                    webhook.expected_status
                )
            }
            Action::Wait(wait) => format!("wait {}", humanize(wait.duration)),
            Action::Check(check) => match &check.condition {
                Condition::SiteState { site, states } => {
                    format!("wait until site {} is {:?}", self.site(step, site)?, states)
                }
                Condition::ServiceHealthy { service, sites_min } => {
                    format!("wait until {service} is healthy in at least {sites_min} site(s)")
                }
            },
            Action::Approval(approval) => {
                let message = match &approval.message {
                    Some(message) => format!(": {}", self.resolve(step, message)?),
                    None => String::new(),
                };
                format!(
                    "pause until {} approver(s) on shift approve{message}",
                    approval.approvers_min
                )
            }
            Action::Haproxy(haproxy) => {
                let action = match haproxy.action {
                    HaproxyAction::Ready => "ready".to_owned(),
                    HaproxyAction::Drain => "drain".to_owned(),
                    HaproxyAction::Maint => "maint".to_owned(),
                    HaproxyAction::Weight(weight) => format!("weight {weight}"),
                };
                format!(
                    "set HAProxy server {}/{} to {action}",
                    haproxy.backend,
                    self.resolve(step, &haproxy.server)?
                )
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
