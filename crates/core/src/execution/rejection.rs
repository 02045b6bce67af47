//! Why the state machine refused an execution command. A refusal changes nothing.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::id::{PrincipalName, RunbookId, ServiceId, SiteId, StepId};
use crate::time::Timestamp;

use super::ExecutionId;
use super::record::ExecutionState;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    #[error("runbook `{runbook}` has no version {version}")]
    UnknownRunbook { runbook: RunbookId, version: u32 },
    #[error("runbook `{runbook}` is not pre-approved, so it cannot start automatically")]
    NotPreApproved { runbook: RunbookId },
    #[error("runbook `{runbook}` declares no `{trigger}` trigger matching this start")]
    TriggerNotDeclared { runbook: RunbookId, trigger: String },
    #[error("no {expected} event for site `{site}` at log index {event_index}")]
    UnknownEvent {
        expected: String,
        site: SiteId,
        event_index: u64,
    },
    #[error("site `{site}` is {current} now, no longer {expected}")]
    TriggerNotCurrent {
        site: SiteId,
        expected: String,
        current: String,
    },
    #[error(
        "the event at log index {event_index} for site `{site}` already has execution {holder}"
    )]
    EventHandled {
        site: SiteId,
        event_index: u64,
        holder: ExecutionId,
    },
    #[error("service `{service}` is locked by running execution {holder}")]
    ServiceLocked {
        service: ServiceId,
        holder: ExecutionId,
    },
    #[error(
        "site `{site}` is in failover_cooldown until {until} ({cooldown:?} after its last automatic failover or loss)"
    )]
    Cooldown {
        site: SiteId,
        until: Timestamp,
        cooldown: Duration,
    },
    #[error("a drill rehearses on a healthy site, and site `{site}` is {state}")]
    DrillOfUnhealthySite { site: SiteId, state: String },
    #[error("parameter `site` is `{given}` but the trigger names site `{trigger}`")]
    SiteMismatch { given: String, trigger: SiteId },
    #[error("the trigger names principal `{trigger}` but the command comes from someone else")]
    PrincipalMismatch { trigger: PrincipalName },
    /// A parameter or template did not resolve (the `PlanError`'s message; kept as text so
    /// the rejection stays serialisable like every other).
    #[error("runbook cannot run with these parameters: {error}")]
    Plan { error: String },
    #[error("no execution {execution}")]
    UnknownExecution { execution: ExecutionId },
    #[error("execution {execution} has no step `{step}`")]
    UnknownStep {
        execution: ExecutionId,
        step: StepId,
    },
    #[error("execution {execution} is {state}, not running")]
    NotRunning {
        execution: ExecutionId,
        state: ExecutionState,
    },
    #[error("execution {execution} is being aborted: no step may start")]
    Aborting { execution: ExecutionId },
    #[error("step `{step}` is not the next runnable step of execution {execution}")]
    NotRunnable {
        execution: ExecutionId,
        step: StepId,
    },
    #[error("step `{step}`: attempt {given} given, the current attempt is {expected}")]
    WrongAttempt {
        step: StepId,
        given: u32,
        expected: u32,
    },
    #[error(
        "step `{step}`: intent for term {given} is stale, the command was committed in term {current}"
    )]
    StaleIntent {
        step: StepId,
        given: u64,
        current: u64,
    },
    #[error("step `{step}`: attempt {attempt} already has an intent in term {intent_term}")]
    AlreadyStarted {
        step: StepId,
        attempt: u32,
        intent_term: u64,
    },
    #[error(
        "step `{step}`: outcome from term {given} ignored, the latest intent is from term {intent_term}"
    )]
    StaleOutcome {
        step: StepId,
        given: u64,
        intent_term: u64,
    },
    #[error("step `{step}`: no intent in term {given} (the latest is from term {intent_term})")]
    NoSuchIntent {
        step: StepId,
        given: u64,
        intent_term: u64,
    },
    #[error("step `{step}` is not in flight, so it has no outcome to record")]
    NotInFlight { step: StepId },
    #[error("execution {execution} is already being aborted")]
    AlreadyAborting { execution: ExecutionId },
}
