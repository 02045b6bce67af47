//! The commands that move executions; each is one `CommandKind` variant of the Raft log.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::id::{RunbookId, StepId};
use crate::state::Actor;
use crate::time::Timestamp;

use super::ExecutionId;
use super::record::StepOutcome;
use super::trigger::ExecutionTrigger;

/// Start a run of version `version` of `runbook`. Its id is the log index it is applied at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutionStart {
    pub runbook: RunbookId,
    pub version: u32,
    pub trigger: ExecutionTrigger,
    /// Given parameters: `site` and the runbook's declared ones. Apply resolves them again with
    /// `execution` set to the new id and the declared defaults. For an automatic trigger, `site`
    /// may be left out and is taken from the trigger; if given, it must match.
    pub parameters: BTreeMap<String, String>,
    pub at: Timestamp,
}

/// Intent: the leader of `term` is about to act on attempt `attempt` of `step`. Committed before
/// the action; refused unless the step is the next runnable one (or, for a resume, the one in
/// flight with an older term) and `term` is the term the command is committed in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepStart {
    pub execution: ExecutionId,
    pub step: StepId,
    pub attempt: u32,
    pub term: u64,
    pub at: Timestamp,
}

/// Outcome of the attempt whose intent was committed in `term`. Refused when `term` is older than
/// the step's latest intent (the old leader's late report) or `attempt` is not the current one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepFinish {
    pub execution: ExecutionId,
    pub step: StepId,
    pub attempt: u32,
    pub term: u64,
    pub outcome: StepOutcome,
    pub at: Timestamp,
}

/// Stop an execution: no new step starts; one in flight still records its outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutionAbort {
    pub execution: ExecutionId,
    pub by: Actor,
    pub at: Timestamp,
}
