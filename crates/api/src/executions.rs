//! `/v1/executions` bodies: starting a manual run or a drill, listing executions, one execution's
//! full record with its timeline and recovery times, and aborting one.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchyard_core::Timestamp;
use switchyard_core::execution::{
    Execution, ExecutionId, ExecutionState, RecoveryTimes, RtoVerdict,
};
use switchyard_core::id::{NodeId, RunbookId, SiteId};
use switchyard_core::state::Actor;

/// `POST /v1/executions` (operator role): run a runbook for a site, by hand or as a drill.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewExecution {
    pub runbook: RunbookId,
    /// The site it acts on (the runbook's `${site}`).
    pub site: SiteId,
    /// A rehearsal on a healthy site: it really shifts traffic.
    #[serde(default)]
    pub drill: bool,
    /// Values of the runbook's declared parameters (`site` is given above).
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
    /// The runbook version to run; the latest when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
}

/// The answer to `POST /v1/executions`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionStarted {
    /// The new execution's id: the log index of its start.
    pub id: ExecutionId,
    pub runbook: RunbookId,
    /// The runbook version it is pinned to.
    pub version: u32,
    pub audit_head: String,
    /// The node that committed it (the leader at the time).
    pub leader: NodeId,
}

/// The answer to `POST /v1/executions/{id}/abort`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionAbortResult {
    pub id: ExecutionId,
    /// The state right after the abort: `aborted`, or still `running` while a step in flight
    /// reports its outcome (the execution ends `aborted` then).
    pub state: ExecutionState,
    pub index: u64,
    pub audit_head: String,
    pub leader: NodeId,
}

/// Measured recovery, in milliseconds (see `switchyard_core::execution::RecoveryTimes`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryView {
    pub first_failure: Option<Timestamp>,
    pub lost: Option<Timestamp>,
    pub started: Option<Timestamp>,
    pub dns_converged: Option<Timestamp>,
    pub finished: Option<Timestamp>,
    /// First failed observation → loss committed.
    pub detection_ms: Option<u64>,
    /// Loss committed → execution started.
    pub decision_ms: Option<u64>,
    /// Execution started → DNS converged on every authoritative server.
    pub actuation_ms: Option<u64>,
    /// First failed observation → DNS converged (automatic triggers only).
    pub total_ms: Option<u64>,
    /// What is compared with the rto: `total`, or `actuation` for manual runs and drills.
    pub recovery_ms: Option<u64>,
    pub rto_ms: Option<u64>,
    pub rto_verdict: RtoVerdict,
}

impl From<&RecoveryTimes> for RecoveryView {
    fn from(times: &RecoveryTimes) -> Self {
        Self {
            first_failure: times.first_failure,
            lost: times.lost,
            started: times.started,
            dns_converged: times.dns_converged,
            finished: times.finished,
            detection_ms: times.detection.map(duration_millis),
            decision_ms: times.decision.map(duration_millis),
            actuation_ms: times.actuation.map(duration_millis),
            total_ms: times.total.map(duration_millis),
            recovery_ms: times.recovery.map(duration_millis),
            rto_ms: times.rto.map(duration_millis),
            rto_verdict: times.rto_verdict,
        }
    }
}

/// A duration in whole milliseconds, saturating.
pub fn duration_millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// One execution in `GET /v1/executions`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionSummary {
    pub id: ExecutionId,
    pub runbook: RunbookId,
    pub version: u32,
    /// `site_lost`, `service_unhealthy`, `manual` or `drill`.
    pub trigger: String,
    /// The operator behind a manual run or drill.
    pub principal: Option<String>,
    pub site: Option<SiteId>,
    pub state: ExecutionState,
    /// Whether an abort was requested (it may still be waiting for a step in flight).
    pub aborting: bool,
    pub started_by: Actor,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub recovery_ms: Option<u64>,
    pub rto_ms: Option<u64>,
    pub rto_verdict: RtoVerdict,
}

impl From<&Execution> for ExecutionSummary {
    fn from(execution: &Execution) -> Self {
        use switchyard_core::execution::ExecutionTrigger;
        let recovery = execution.recovery_times();
        let principal = match &execution.trigger {
            ExecutionTrigger::Manual { principal } | ExecutionTrigger::Drill { principal } => {
                Some(principal.to_string())
            }
            _ => None,
        };
        Self {
            id: execution.id,
            runbook: execution.runbook.clone(),
            version: execution.version,
            trigger: execution.trigger.kind().to_owned(),
            principal,
            site: execution.site.clone(),
            state: execution.state,
            aborting: execution.abort.is_some(),
            started_by: execution.started_by.clone(),
            started_at: execution.started_at,
            finished_at: execution.finished_at,
            recovery_ms: recovery.recovery.map(duration_millis),
            rto_ms: recovery.rto.map(duration_millis),
            rto_verdict: recovery.rto_verdict,
        }
    }
}

/// `GET /v1/executions`: every execution on the answering node's replica, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionList {
    pub node: NodeId,
    pub applied_index: u64,
    pub executions: Vec<ExecutionSummary>,
}

/// `GET /v1/executions/{id}`: the full record (steps, attempts with evidence, milestones) and
/// the recovery times measured from its timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExecutionDetail {
    pub node: NodeId,
    pub applied_index: u64,
    pub summary: ExecutionSummary,
    pub recovery: RecoveryView,
    pub execution: Execution,
}
