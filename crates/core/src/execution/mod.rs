//! Runbook executions: the replicated state machine of one run of a runbook, and the pure
//! queries the leader-only executor asks of it.
//!
//! An execution moves only through committed commands ([`ExecutionStart`], [`StepStart`],
//! [`StepFinish`], [`ExecutionAbort`]), applied by `State::apply` on every replica:
//!
//! - **Intent before effect**: the executor commits a [`StepStart`] (with its Raft term and the
//!   attempt number) before it acts, and a [`StepFinish`] with the outcome after.
//! - **Resume**: a step with an intent and no outcome stays in flight. A new leader commits a new
//!   intent for the *same* attempt in its own term and acts again; the idempotency key
//!   `execution/step/attempt` is unchanged, so a receiver can tell a repeat from a new attempt.
//!   An outcome from an older term than the latest intent is refused at apply.
//! - **Failures**: a failed attempt with retries left makes the step runnable again with the next
//!   attempt number; the last failed attempt applies the step's `on_failure` (or the runbook's):
//!   `halt` ends the execution `failed`, `continue` goes on, `rollback` runs the rollback steps
//!   and ends `rolled_back` (a failing rollback step halts it, ending `failed`).
//! - **Abort**: no new step starts; the outcome of a step in flight is still recorded, then the
//!   execution ends `aborted`.
//! - **Exclusion**: one execution per site-loss event; a lock per service, held by every active
//!   execution on the services its `shift_traffic` steps (main and rollback) name; automatic
//!   starts honour `failover_cooldown` and run only `pre_approved` runbooks whose triggers match.
//! - **Timeline**: each execution keeps its milestones, from the first failed observation of the
//!   site to DNS convergence, and derives its recovery times from them ([`RecoveryTimes`]).

mod command;
mod query;
mod record;
mod rejection;
mod timeline;
mod trigger;

#[cfg(test)]
mod execution_test;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::id::StepId;

pub use command::{ExecutionAbort, ExecutionStart, StepFinish, StepStart};
pub use query::{
    PreparedStart, ResolvedStep, Runnable, automatic_starts, check_start, resolve_step,
    retry_backoff, runnable,
};
pub use record::{
    AbortRequest, Attempt, Execution, ExecutionState, Intent, StepFailure, StepOutcome, StepRecord,
    StepState,
};
pub use rejection::Rejection;
pub use timeline::{Milestone, MilestoneKind, RecoveryTimes, RtoVerdict};
pub use trigger::ExecutionTrigger;

/// An execution's identifier: the log index of the command that started it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct ExecutionId(pub u64);

impl fmt::Display for ExecutionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Which list of the runbook a step belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The runbook's `steps`.
    Main,
    /// The runbook's `rollback` steps, run after a failure under `on_failure: rollback`.
    Rollback,
}

/// Where a step sits in its execution. Step ids are unique within a runbook (rollback steps
/// included), so `id` alone names it in commands; `phase` and `position` save a lookup.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StepRef {
    pub id: StepId,
    pub phase: Phase,
    /// Index in the phase's list.
    pub position: usize,
}

/// The idempotency key of one attempt, `execution/step/attempt`: the same across a resume by a
/// new leader, different for each retry. Webhooks carry it in a header.
pub fn idempotency_key(execution: ExecutionId, step: &StepId, attempt: u32) -> String {
    format!("{execution}/{step}/{attempt}")
}
