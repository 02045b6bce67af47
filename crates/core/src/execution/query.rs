//! Pure queries over the replicated state: the start checks (shared by apply and by the leader's
//! proposals), what the executor may run next, the resolved action of a step, and the automatic
//! starts that new site-state events call for.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::detection::{DetectionEvent, ServiceState, SiteState};
use crate::id::{ServiceId, SiteId, StepId};
use crate::plan::{ResolvedAction, resolve_action, resolve_parameters};
use crate::runbook::{Runbook, Step, Trigger};
use crate::state::{Actor, Rejection as StateRejection, SiteEventRecord, State};
use crate::time::Timestamp;

use super::record::{StepState, shifted_services};
use super::rejection::Rejection;
use super::timeline::{Milestone, MilestoneKind};
use super::trigger::ExecutionTrigger;
use super::{ExecutionId, ExecutionStart, StepRef};

/// What a start becomes once checked: the pinned runbook, the resolved parameters and the
/// detection milestones that open the timeline.
#[derive(Debug)]
pub struct PreparedStart<'a> {
    pub runbook: &'a Runbook,
    pub parameters: BTreeMap<String, String>,
    pub timeline: Vec<Milestone>,
}

fn rejected(rejection: Rejection) -> StateRejection {
    StateRejection::Execution(rejection)
}

/// Every rule a start must pass, checked when the leader proposes it and again at apply:
/// the runbook version exists; an automatic trigger names a current, unhandled site-state event
/// whose site is out of `failover_cooldown` and a `pre_approved` runbook declaring a matching
/// trigger; a manual run or drill comes from the principal it names and the runbook declares
/// `manual`; the parameters and every step resolve; no active execution holds a lock on a
/// service this one shifts. `index` is the log index it will get (its id, `${execution}`).
pub fn check_start<'a>(
    state: &'a State,
    start: &ExecutionStart,
    actor: &Actor,
    index: u64,
) -> Result<PreparedStart<'a>, StateRejection> {
    let Some(config) = state.config() else {
        return Err(StateRejection::NoConfig);
    };
    let Some(version) = state.runbook(&start.runbook, Some(start.version)) else {
        return Err(rejected(Rejection::UnknownRunbook {
            runbook: start.runbook.clone(),
            version: start.version,
        }));
    };
    let runbook = &version.runbook;
    let mut given = start.parameters.clone();
    let mut timeline = Vec::new();
    match &start.trigger {
        ExecutionTrigger::SiteLost { site, event_index }
        | ExecutionTrigger::ServiceUnhealthy {
            site, event_index, ..
        } => {
            if !runbook.pre_approved {
                return Err(rejected(Rejection::NotPreApproved {
                    runbook: runbook.name.clone(),
                }));
            }
            if !declares(runbook, &start.trigger) {
                return Err(rejected(Rejection::TriggerNotDeclared {
                    runbook: runbook.name.clone(),
                    trigger: start.trigger.kind().to_owned(),
                }));
            }
            let record = current_event(state, &start.trigger, site, *event_index)?;
            if let Some(holder) = state.executions().for_event(site, *event_index) {
                return Err(rejected(Rejection::EventHandled {
                    site: site.clone(),
                    event_index: *event_index,
                    holder,
                }));
            }
            check_cooldown(state, site, record, start.at)?;
            match given.get("site") {
                Some(given) if given != site.as_str() => {
                    return Err(rejected(Rejection::SiteMismatch {
                        given: given.clone(),
                        trigger: site.clone(),
                    }));
                }
                Some(_) => {}
                None => {
                    given.insert("site".to_owned(), site.to_string());
                }
            }
            timeline = detection_milestones(state, site, record);
        }
        ExecutionTrigger::Manual { principal } | ExecutionTrigger::Drill { principal } => {
            if actor != &Actor::Principal(principal.clone()) {
                return Err(rejected(Rejection::PrincipalMismatch {
                    trigger: principal.clone(),
                }));
            }
            if !runbook.triggers.contains(&Trigger::Manual) {
                return Err(rejected(Rejection::TriggerNotDeclared {
                    runbook: runbook.name.clone(),
                    trigger: start.trigger.kind().to_owned(),
                }));
            }
            if let ExecutionTrigger::Drill { .. } = &start.trigger
                && let Some(site) = given.get("site")
            {
                let site = SiteId::new(site.clone());
                let status = state
                    .detector()
                    .and_then(|detector| detector.site(&site))
                    .map(|status| status.state);
                if let Some(current) = status.filter(|current| *current != SiteState::Healthy) {
                    return Err(rejected(Rejection::DrillOfUnhealthySite {
                        site,
                        state: current.to_string(),
                    }));
                }
            }
        }
    }
    given.insert("execution".to_owned(), index.to_string());
    let parameters = resolve_parameters(runbook, &given).map_err(|error| {
        rejected(Rejection::Plan {
            error: error.to_string(),
        })
    })?;
    for step in runbook.all_steps() {
        resolve_action(&config.config, step, &parameters).map_err(|error| {
            rejected(Rejection::Plan {
                error: error.to_string(),
            })
        })?;
    }
    for service in shifted_services(runbook) {
        if let Some(holder) = state.executions().lock_holder(&service) {
            return Err(rejected(Rejection::ServiceLocked { service, holder }));
        }
    }
    Ok(PreparedStart {
        runbook,
        parameters,
        timeline,
    })
}

/// Whether `runbook` declares a trigger matching an automatic `trigger`: `site_lost` with no
/// sites or naming the site; `service_unhealthy` with no services or naming one of them.
fn declares(runbook: &Runbook, trigger: &ExecutionTrigger) -> bool {
    runbook
        .triggers
        .iter()
        .any(|declared| match (declared, trigger) {
            (Trigger::SiteLost { sites }, ExecutionTrigger::SiteLost { site, .. }) => {
                sites.is_empty() || sites.contains(site)
            }
            (
                Trigger::ServiceUnhealthy { services },
                ExecutionTrigger::ServiceUnhealthy { services: down, .. },
            ) => services.is_empty() || services.iter().any(|service| down.contains(service)),
            _ => false,
        })
}

/// Whether the runbook's trigger names the site or service explicitly (preferred over a
/// catch-all when several runbooks match one event).
fn declares_explicitly(runbook: &Runbook, trigger: &ExecutionTrigger) -> bool {
    runbook
        .triggers
        .iter()
        .any(|declared| match (declared, trigger) {
            (Trigger::SiteLost { sites }, ExecutionTrigger::SiteLost { site, .. }) => {
                sites.contains(site)
            }
            (
                Trigger::ServiceUnhealthy { services },
                ExecutionTrigger::ServiceUnhealthy { services: down, .. },
            ) => services.iter().any(|service| down.contains(service)),
            _ => false,
        })
}

/// The event at `event_index` must be the kind the trigger names, for `site`, and still the
/// site's latest transition (the site has not recovered or moved on since). A `service_unhealthy`
/// trigger names either a site's `ServicesDown` or one service's `ServiceUnhealthy`, which must
/// be that service's latest event in the site while the site is still `healthy`.
fn current_event<'a>(
    state: &'a State,
    trigger: &ExecutionTrigger,
    site: &SiteId,
    event_index: u64,
) -> Result<&'a SiteEventRecord, StateRejection> {
    if let ExecutionTrigger::ServiceUnhealthy { services, .. } = trigger
        && let Some(record) = state.site_events().iter().find(|record| {
            record.index == event_index
                && matches!(&record.event, DetectionEvent::ServiceUnhealthy(_))
        })
    {
        return current_service_event(state, record, site, services);
    }
    let expected = match trigger {
        ExecutionTrigger::ServiceUnhealthy { .. } => "ServicesDown",
        _ => "SiteLost",
    };
    let matches = |record: &&SiteEventRecord| {
        record.index == event_index
            && record.event.name() == expected
            && record
                .event
                .transition()
                .is_some_and(|transition| &transition.site == site)
    };
    let Some(record) = state.site_events().iter().find(matches) else {
        return Err(rejected(Rejection::UnknownEvent {
            expected: expected.to_owned(),
            site: site.clone(),
            event_index,
        }));
    };
    let latest = state
        .site_events()
        .iter()
        .rev()
        .find(|other| {
            other
                .event
                .transition()
                .is_some_and(|transition| &transition.site == site)
        })
        .filter(|latest| latest.index == record.index);
    if latest.is_none() {
        let current = state
            .detector()
            .and_then(|detector| detector.site(site))
            .map_or_else(|| "unknown".to_owned(), |status| status.state.to_string());
        return Err(rejected(Rejection::TriggerNotCurrent {
            site: site.clone(),
            expected: expected.to_owned(),
            current,
        }));
    }
    Ok(record)
}

/// `record` (a `ServiceUnhealthy`) must be about `site` and exactly the service the trigger
/// names, still that service's latest event there, with the site still `healthy`.
fn current_service_event<'a>(
    state: &State,
    record: &'a SiteEventRecord,
    site: &SiteId,
    services: &[ServiceId],
) -> Result<&'a SiteEventRecord, StateRejection> {
    const EXPECTED: &str = "ServiceUnhealthy";
    let Some(transition) = record.event.service_transition() else {
        return Err(rejected(Rejection::UnknownEvent {
            expected: EXPECTED.to_owned(),
            site: site.clone(),
            event_index: record.index,
        }));
    };
    if &transition.site != site || services != std::slice::from_ref(&transition.service) {
        return Err(rejected(Rejection::UnknownEvent {
            expected: EXPECTED.to_owned(),
            site: site.clone(),
            event_index: record.index,
        }));
    }
    let latest = state.site_events().iter().rev().find(|other| {
        other.event.service_transition().is_some_and(|other| {
            other.site == transition.site && other.service == transition.service
        })
    });
    let site_state = state
        .detector()
        .and_then(|detector| detector.site(site))
        .map(|status| status.state);
    let service_state = state
        .detector()
        .and_then(|detector| detector.service(&transition.service, site))
        .map(|status| status.state);
    let current = latest.is_some_and(|latest| latest.index == record.index)
        && site_state == Some(SiteState::Healthy)
        && service_state == Some(ServiceState::Unhealthy);
    if !current {
        let current = match (site_state, service_state) {
            (Some(SiteState::Healthy), Some(service)) => format!("service {service}"),
            (Some(site), _) => site.to_string(),
            (None, _) => "unknown".to_owned(),
        };
        return Err(rejected(Rejection::TriggerNotCurrent {
            site: site.clone(),
            expected: EXPECTED.to_owned(),
            current,
        }));
    }
    Ok(record)
}

/// `failover_cooldown`, from two records: the detector's (the loss came within the cooldown of
/// the site's previous loss: the event's evidence carries `cooldown_until`), and ours (an
/// automatic execution for the site ended less than the cooldown before `at`; for a
/// `ServiceUnhealthy` event, one for the same service in the site).
fn check_cooldown(
    state: &State,
    site: &SiteId,
    record: &SiteEventRecord,
    at: Timestamp,
) -> Result<(), StateRejection> {
    let cooldown = state
        .detector()
        .map(|detector| detector.policy().failover_cooldown)
        .unwrap_or_default();
    let from_detection = record
        .event
        .transition()
        .map(|transition| &transition.evidence)
        .or_else(|| {
            record
                .event
                .service_transition()
                .map(|transition| &transition.evidence)
        })
        .and_then(|evidence| evidence.cooldown_until);
    // Per-service failover is independent per service: only an earlier automatic execution
    // for the same service in the same site starts its cooldown.
    let last_end = match record.event.service_transition() {
        Some(transition) => state
            .executions()
            .iter()
            .filter(|execution| match &execution.trigger {
                ExecutionTrigger::ServiceUnhealthy {
                    site: other,
                    services,
                    ..
                } => other == site && services.contains(&transition.service),
                _ => false,
            })
            .filter_map(|execution| execution.finished_at)
            .max(),
        // A whole-site event is held back only by an earlier whole-site failover of the site
        // (site lost, or all its services down): a single service's failover there must never
        // delay evacuating the whole site.
        None => state
            .executions()
            .iter()
            .filter(|execution| match &execution.trigger {
                ExecutionTrigger::SiteLost { site: other, .. } => other == site,
                ExecutionTrigger::ServiceUnhealthy {
                    site: other,
                    event_index,
                    ..
                } => {
                    other == site
                        && state.site_events().iter().any(|record| {
                            record.index == *event_index
                                && matches!(record.event, DetectionEvent::ServicesDown(_))
                        })
                }
                _ => false,
            })
            .filter_map(|execution| execution.finished_at)
            .max(),
    };
    let from_executions = last_end
        .map(|ended| ended.after(cooldown))
        .filter(|until| *until > at);
    match from_detection.into_iter().chain(from_executions).max() {
        Some(until) => Err(rejected(Rejection::Cooldown {
            site: site.clone(),
            until,
            cooldown,
        })),
        None => Ok(()),
    }
}

/// First failure, suspect and loss, from the event and the suspect event before it. For a
/// `ServiceUnhealthy` event: first failure and the event itself (as `lost`: the decision).
fn detection_milestones(state: &State, site: &SiteId, record: &SiteEventRecord) -> Vec<Milestone> {
    let mut milestones = Vec::new();
    if let Some(transition) = record.event.service_transition() {
        if let Some(first_failure) = transition.evidence.first_failure {
            milestones.push(Milestone {
                at: first_failure,
                kind: MilestoneKind::FirstFailure,
            });
        }
        milestones.push(Milestone {
            at: transition.at,
            kind: MilestoneKind::Lost {
                event_index: record.index,
            },
        });
        return milestones;
    }
    let Some(transition) = record.event.transition() else {
        return milestones;
    };
    if let Some(first_failure) = transition.evidence.first_failure {
        milestones.push(Milestone {
            at: first_failure,
            kind: MilestoneKind::FirstFailure,
        });
    }
    let suspected = state.site_events().iter().rev().find(|other| {
        other.index < record.index
            && matches!(&other.event, DetectionEvent::SiteSuspected(suspect) if &suspect.site == site)
    });
    if let Some(suspected) = suspected
        && let Some(suspect) = suspected.event.transition()
    {
        milestones.push(Milestone {
            at: suspect.at,
            kind: MilestoneKind::Suspected {
                event_index: suspected.index,
            },
        });
    }
    milestones.push(Milestone {
        at: transition.at,
        kind: MilestoneKind::Lost {
            event_index: record.index,
        },
    });
    milestones
}

/// A step the executor may act on now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runnable {
    pub execution: ExecutionId,
    pub step: StepRef,
    /// The attempt to commit an intent for (or, in flight, the one already committed).
    pub attempt: u32,
    /// For a step in flight: the term of its latest intent. The leader of that term is acting
    /// on it already; a leader of a newer term resumes it with a new intent (same attempt).
    /// `None` for a step to start.
    pub intent_term: Option<u64>,
    /// For a retry: not before this time ([`retry_backoff`] after the failed attempt ended).
    pub not_before: Option<Timestamp>,
    /// The step's `timeout` counted from its first attempt's first intent (retries included);
    /// `None` before the first attempt. Past it, the executor reports the attempt failed.
    pub deadline: Option<Timestamp>,
}

/// The wait before attempt `attempt` (from 2) of a step: 500 ms, doubling, at most 10 s.
/// Deterministic, so a new leader keeps the old one's pace.
pub fn retry_backoff(attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(2).min(5);
    Duration::from_millis(500 << doublings).min(Duration::from_secs(10))
}

/// For every active execution: the step in flight (to resume, or to await), else the next step
/// to start. Aborting executions list only their step in flight, whose outcome is still needed.
pub fn runnable(state: &State) -> Vec<Runnable> {
    state
        .executions()
        .active()
        .filter_map(|execution| {
            if let Some((step, record)) = execution.in_flight() {
                let StepState::Running { attempt, term, .. } = record.state else {
                    return None;
                };
                return Some(Runnable {
                    execution: execution.id,
                    step,
                    attempt,
                    intent_term: Some(term),
                    not_before: None,
                    deadline: record.deadline(),
                });
            }
            let (step, record) = execution.next_step()?;
            let attempt = record.next_attempt();
            let not_before = (attempt > 1)
                .then(|| record.last_finished_at())
                .flatten()
                .map(|ended| ended.after(retry_backoff(attempt)));
            Some(Runnable {
                execution: execution.id,
                step,
                attempt,
                intent_term: None,
                not_before,
                deadline: record.deadline(),
            })
        })
        .collect()
}

/// A step of an execution with its action resolved against the execution's parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResolvedStep {
    pub step: StepRef,
    /// The step as the pinned runbook version declares it (timeout, retries, on_failure).
    pub definition: Step,
    pub action: ResolvedAction,
}

/// The resolved action of `step` in `execution`, against the pinned runbook version, the
/// execution's parameters and the replicated configuration: what the executor carries out.
pub fn resolve_step(
    state: &State,
    execution: ExecutionId,
    step: &StepId,
) -> Result<ResolvedStep, StateRejection> {
    let Some(config) = state.config() else {
        return Err(StateRejection::NoConfig);
    };
    let Some(record) = state.execution(execution) else {
        return Err(rejected(Rejection::UnknownExecution { execution }));
    };
    let unknown_step = || {
        rejected(Rejection::UnknownStep {
            execution,
            step: step.clone(),
        })
    };
    let (step_ref, _) = record.step(step).ok_or_else(unknown_step)?;
    let Some(version) = state.runbook(&record.runbook, Some(record.version)) else {
        return Err(rejected(Rejection::UnknownRunbook {
            runbook: record.runbook.clone(),
            version: record.version,
        }));
    };
    let definition = version
        .runbook
        .all_steps()
        .find(|candidate| &candidate.id == step)
        .ok_or_else(unknown_step)?
        .clone();
    let action =
        resolve_action(&config.config, &definition, &record.parameters).map_err(|error| {
            rejected(Rejection::Plan {
                error: error.to_string(),
            })
        })?;
    Ok(ResolvedStep {
        step: step_ref,
        definition,
        action,
    })
}

/// The starts that site-state events call for, to be proposed by the leader as
/// `CommandKind::ExecutionStarted` stamped `at`.
///
/// Pass every recent event (`state.site_events()`), not only the newest: an event whose start
/// was never committed (the leader changed, or a service lock was held) is then picked up again.
/// For each `SiteLost` (trigger `site_lost`), `ServicesDown` (trigger `service_unhealthy`, with
/// the services that have endpoints in the site) and `ServiceUnhealthy` (trigger
/// `service_unhealthy` with that one service) that is still current and has no
/// execution, the latest version of each `pre_approved` runbook with a matching trigger is a
/// candidate; explicit matches (naming the site or a service) come before catch-alls, then by
/// name; the first that passes [`check_start`] is proposed: one execution per event. Starts in
/// the returned list never lock the same service twice.
pub fn automatic_starts(
    state: &State,
    events: &[SiteEventRecord],
    at: Timestamp,
) -> Vec<ExecutionStart> {
    let Some(config) = state.config() else {
        return Vec::new();
    };
    let mut claimed: BTreeSet<ServiceId> = BTreeSet::new();
    let mut starts = Vec::new();
    let index = state.last_applied_index() + 1;
    for record in events {
        let trigger = match &record.event {
            DetectionEvent::SiteLost(transition) => ExecutionTrigger::SiteLost {
                site: transition.site.clone(),
                event_index: record.index,
            },
            DetectionEvent::ServicesDown(transition) => ExecutionTrigger::ServiceUnhealthy {
                site: transition.site.clone(),
                services: config
                    .config
                    .services
                    .iter()
                    .filter(|service| service.sites().contains(&transition.site))
                    .map(|service| service.id.clone())
                    .collect(),
                event_index: record.index,
            },
            DetectionEvent::ServiceUnhealthy(transition) => ExecutionTrigger::ServiceUnhealthy {
                site: transition.site.clone(),
                services: vec![transition.service.clone()],
                event_index: record.index,
            },
            _ => continue,
        };
        let mut candidates: Vec<_> = state
            .runbooks()
            .filter(|version| version.runbook.pre_approved && declares(&version.runbook, &trigger))
            .collect();
        candidates.sort_by_key(|version| {
            (
                !declares_explicitly(&version.runbook, &trigger),
                version.runbook.name.clone(),
            )
        });
        for version in candidates {
            let services = shifted_services(&version.runbook);
            if services.iter().any(|service| claimed.contains(service)) {
                continue;
            }
            let start = ExecutionStart {
                runbook: version.runbook.name.clone(),
                version: version.version,
                trigger: trigger.clone(),
                parameters: BTreeMap::new(),
                at,
            };
            if check_start(state, &start, &Actor::System, index).is_ok() {
                claimed.extend(services);
                starts.push(start);
                break;
            }
        }
    }
    starts
}
