//! One execution's record and its transitions: step states, attempts, intents and outcomes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::id::{RunbookId, ServiceId, SiteId, StepId};
use crate::runbook::{Action, OnFailure, Runbook, Step};
use crate::state::Actor;
use crate::time::Timestamp;

use super::command::ExecutionStart;
use super::query::PreparedStart;
use super::rejection::Rejection;
use super::timeline::{Milestone, MilestoneKind, RecoveryTimes};
use super::trigger::ExecutionTrigger;
use super::{ExecutionId, Phase, StepRef};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    pub id: ExecutionId,
    pub runbook: RunbookId,
    /// The runbook version it runs, pinned at start.
    pub version: u32,
    pub trigger: ExecutionTrigger,
    /// The site it acts on (`parameters["site"]`), if any.
    pub site: Option<SiteId>,
    /// Every parameter resolved: built-ins (`site`, `execution`), declared defaults, given values.
    pub parameters: BTreeMap<String, String>,
    pub state: ExecutionState,
    pub started_by: Actor,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// Set by an abort while a step was in flight; the execution ends when its outcome arrives.
    pub abort: Option<AbortRequest>,
    /// The failure that halted the execution or started its rollback.
    pub failure: Option<StepFailure>,
    /// The services its `shift_traffic` steps name: locked while it is active.
    pub services: BTreeSet<ServiceId>,
    /// The runbook's declared recovery time objective.
    pub rto: Option<Duration>,
    pub steps: Vec<StepRecord>,
    pub rollback: Vec<StepRecord>,
    /// Milestones in the order they were recorded (the detection ones first).
    pub timeline: Vec<Milestone>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionState {
    /// Main steps are running.
    Running,
    /// A step failed under `on_failure: rollback`; rollback steps are running.
    RollingBack,
    /// Every main step ended; under `on_failure: continue` some may have failed.
    Succeeded,
    /// Halted by a failed step (main step under `halt`, or any rollback step).
    Failed,
    /// Every rollback step succeeded after a main step failed.
    RolledBack,
    Aborted,
}

impl ExecutionState {
    /// Whether steps may still start or finish (and the execution holds its service locks).
    pub fn is_active(self) -> bool {
        matches!(self, ExecutionState::Running | ExecutionState::RollingBack)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionState::Running => "running",
            ExecutionState::RollingBack => "rolling_back",
            ExecutionState::Succeeded => "succeeded",
            ExecutionState::Failed => "failed",
            ExecutionState::RolledBack => "rolled_back",
            ExecutionState::Aborted => "aborted",
        }
    }
}

impl fmt::Display for ExecutionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbortRequest {
    pub by: Actor,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepFailure {
    pub step: StepId,
    pub phase: Phase,
    pub error: String,
}

/// One step of an execution, with every attempt made at it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub id: StepId,
    /// The action's kind (`shift_traffic`, `verify_dns`, ...).
    pub kind: String,
    /// Further attempts allowed after a failed one.
    pub retries: u32,
    /// The whole step, retries included, should fail after this long (the executor enforces it).
    pub timeout: Duration,
    /// What its last failed attempt does: the step's own `on_failure`, else the runbook's
    /// (always `halt` for rollback steps).
    pub on_failure: OnFailure,
    pub state: StepState,
    pub attempts: Vec<Attempt>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Not started, or waiting for its next attempt after a failed one (see `attempts`).
    Pending,
    /// An intent is committed and no outcome yet. `term` and `started_at` are the latest intent's.
    Running {
        attempt: u32,
        term: u64,
        started_at: Timestamp,
    },
    Succeeded,
    /// Its last attempt failed and it has no retries left (or the execution was aborted).
    Failed {
        error: String,
    },
    /// Never started: the execution ended before it.
    Skipped,
}

/// One attempt at a step: its intents (one per leader that acted on it) and its outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// Counts from 1; part of the idempotency key.
    pub number: u32,
    /// The original intent, then one per resume by a new leader; the last is authoritative.
    pub intents: Vec<Intent>,
    pub finished_at: Option<Timestamp>,
    pub outcome: Option<StepOutcome>,
}

impl Attempt {
    /// The term of the latest intent.
    pub fn term(&self) -> u64 {
        self.intents.last().map_or(0, |intent| intent.term)
    }

    pub fn started_at(&self) -> Timestamp {
        self.intents
            .first()
            .map_or(Timestamp(0), |intent| intent.at)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    pub term: u64,
    pub at: Timestamp,
}

/// What an attempt achieved, reported by the executor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    Succeeded {
        /// Whatever shows the effect: per-server DNS answers, the webhook's status, ...
        evidence: serde_json::Value,
        /// For `verify_dns`: when every authoritative server was first seen answering as planned.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        converged_at: Option<Timestamp>,
    },
    Failed {
        error: String,
        evidence: serde_json::Value,
    },
}

impl StepRecord {
    fn new(step: &Step, on_failure: OnFailure) -> Self {
        Self {
            id: step.id.clone(),
            kind: step.action.kind().to_owned(),
            retries: step.retries,
            timeout: step.timeout,
            on_failure: step.on_failure.unwrap_or(on_failure),
            state: StepState::Pending,
            attempts: Vec::new(),
        }
    }

    /// The attempt number its next (or current) attempt has.
    pub fn next_attempt(&self) -> u32 {
        match self.state {
            StepState::Running { attempt, .. } => attempt,
            _ => u32::try_from(self.attempts.len()).unwrap_or(u32::MAX) + 1,
        }
    }

    /// Its first attempt's first intent plus `timeout`: the whole step, retries included, should
    /// have ended by then.
    pub fn deadline(&self) -> Option<Timestamp> {
        let first = self.attempts.first()?;
        Some(first.started_at().after(self.timeout))
    }

    /// When its latest attempt ended, if it did.
    pub fn last_finished_at(&self) -> Option<Timestamp> {
        self.attempts.last().and_then(|attempt| attempt.finished_at)
    }
}

impl Execution {
    /// A new, running execution from a start that passed [`super::check_start`]; the detection
    /// milestones (if any) open its timeline.
    pub(crate) fn new(
        id: ExecutionId,
        start: &ExecutionStart,
        prepared: PreparedStart<'_>,
        started_by: Actor,
    ) -> Self {
        let PreparedStart {
            runbook,
            parameters,
            mut timeline,
        } = prepared;
        let started_at = start.at;
        timeline.push(Milestone {
            at: started_at,
            kind: MilestoneKind::ExecutionStarted,
        });
        let mut execution = Self {
            id,
            runbook: runbook.name.clone(),
            version: start.version,
            trigger: start.trigger.clone(),
            site: parameters.get("site").map(|site| SiteId::new(site.clone())),
            parameters,
            state: ExecutionState::Running,
            started_by,
            started_at,
            finished_at: None,
            abort: None,
            failure: None,
            services: shifted_services(runbook),
            rto: runbook.rto,
            steps: runbook
                .steps
                .iter()
                .map(|step| StepRecord::new(step, runbook.on_failure))
                .collect(),
            rollback: runbook
                .rollback
                .iter()
                .map(|step| StepRecord::new(step, OnFailure::Halt))
                .collect(),
            timeline,
        };
        if execution.steps.is_empty() {
            execution.finish(ExecutionState::Succeeded, started_at);
        }
        execution
    }

    pub fn is_active(&self) -> bool {
        self.state.is_active()
    }

    /// The phase whose steps run now.
    fn phase(&self) -> Phase {
        if self.state == ExecutionState::RollingBack {
            Phase::Rollback
        } else {
            Phase::Main
        }
    }

    fn records(&self, phase: Phase) -> &[StepRecord] {
        match phase {
            Phase::Main => &self.steps,
            Phase::Rollback => &self.rollback,
        }
    }

    fn records_mut(&mut self, phase: Phase) -> &mut Vec<StepRecord> {
        match phase {
            Phase::Main => &mut self.steps,
            Phase::Rollback => &mut self.rollback,
        }
    }

    /// The step named `step`, main steps first.
    pub fn step(&self, step: &StepId) -> Option<(StepRef, &StepRecord)> {
        [Phase::Main, Phase::Rollback]
            .into_iter()
            .find_map(|phase| {
                self.records(phase)
                    .iter()
                    .enumerate()
                    .find(|(_, record)| &record.id == step)
                    .map(|(position, record)| {
                        let step_ref = StepRef {
                            id: record.id.clone(),
                            phase,
                            position,
                        };
                        (step_ref, record)
                    })
            })
    }

    /// The step with an intent and no outcome, if any.
    pub fn in_flight(&self) -> Option<(StepRef, &StepRecord)> {
        let phase = self.phase();
        self.records(phase)
            .iter()
            .enumerate()
            .find(|(_, record)| matches!(record.state, StepState::Running { .. }))
            .map(|(position, record)| {
                let step_ref = StepRef {
                    id: record.id.clone(),
                    phase,
                    position,
                };
                (step_ref, record)
            })
    }

    /// The step that may start next: the first pending one of the current phase, while the
    /// execution is active, not being aborted and has nothing in flight.
    pub fn next_step(&self) -> Option<(StepRef, &StepRecord)> {
        if !self.is_active() || self.abort.is_some() || self.in_flight().is_some() {
            return None;
        }
        let phase = self.phase();
        self.records(phase)
            .iter()
            .enumerate()
            .find(|(_, record)| record.state == StepState::Pending)
            .map(|(position, record)| {
                let step_ref = StepRef {
                    id: record.id.clone(),
                    phase,
                    position,
                };
                (step_ref, record)
            })
    }

    /// Records an intent: a new attempt at the next step, or a resume of the one in flight by a
    /// leader of a newer term.
    pub(crate) fn start_step(
        &mut self,
        step: &StepId,
        attempt: u32,
        term: u64,
        at: Timestamp,
    ) -> Result<(), Rejection> {
        self.check_known(step)?;
        self.check_active()?;
        if let Some((step_ref, record)) = self.in_flight() {
            if &step_ref.id != step {
                return Err(self.not_runnable(step));
            }
            let expected = record.next_attempt();
            if attempt != expected {
                return Err(Rejection::WrongAttempt {
                    step: step.clone(),
                    given: attempt,
                    expected,
                });
            }
            let current = record.attempts.last().map_or(0, Attempt::term);
            if term <= current {
                return Err(Rejection::AlreadyStarted {
                    step: step.clone(),
                    attempt,
                    intent_term: current,
                });
            }
            let record = &mut self.records_mut(step_ref.phase)[step_ref.position];
            if let Some(last) = record.attempts.last_mut() {
                last.intents.push(Intent { term, at });
            }
            record.state = StepState::Running {
                attempt,
                term,
                started_at: at,
            };
            self.timeline.push(Milestone {
                at,
                kind: MilestoneKind::StepResumed {
                    step: step.clone(),
                    attempt,
                    term,
                },
            });
            return Ok(());
        }
        if self.abort.is_some() {
            return Err(Rejection::Aborting { execution: self.id });
        }
        let Some((step_ref, record)) = self.next_step() else {
            return Err(self.not_runnable(step));
        };
        if &step_ref.id != step {
            return Err(self.not_runnable(step));
        }
        let expected = record.next_attempt();
        if attempt != expected {
            return Err(Rejection::WrongAttempt {
                step: step.clone(),
                given: attempt,
                expected,
            });
        }
        let record = &mut self.records_mut(step_ref.phase)[step_ref.position];
        record.attempts.push(Attempt {
            number: attempt,
            intents: vec![Intent { term, at }],
            finished_at: None,
            outcome: None,
        });
        record.state = StepState::Running {
            attempt,
            term,
            started_at: at,
        };
        self.timeline.push(Milestone {
            at,
            kind: MilestoneKind::StepStarted {
                step: step.clone(),
                attempt,
            },
        });
        Ok(())
    }

    /// Records the outcome of the attempt in flight and moves the execution on.
    pub(crate) fn finish_step(
        &mut self,
        step: &StepId,
        attempt: u32,
        term: u64,
        outcome: &StepOutcome,
        at: Timestamp,
    ) -> Result<(), Rejection> {
        self.check_known(step)?;
        let Some((step_ref, record)) = self.in_flight().filter(|(found, _)| &found.id == step)
        else {
            return Err(Rejection::NotInFlight { step: step.clone() });
        };
        let expected = record.next_attempt();
        if attempt != expected {
            return Err(Rejection::WrongAttempt {
                step: step.clone(),
                given: attempt,
                expected,
            });
        }
        let intent_term = record.attempts.last().map_or(0, Attempt::term);
        if term < intent_term {
            return Err(Rejection::StaleOutcome {
                step: step.clone(),
                given: term,
                intent_term,
            });
        }
        if term > intent_term {
            return Err(Rejection::NoSuchIntent {
                step: step.clone(),
                given: term,
                intent_term,
            });
        }
        let aborting = self.abort.is_some();
        let phase = step_ref.phase;
        let record = &mut self.records_mut(phase)[step_ref.position];
        if let Some(last) = record.attempts.last_mut() {
            last.finished_at = Some(at);
            last.outcome = Some(outcome.clone());
        }
        let retry_left = record.attempts.len() <= record.retries as usize;
        let on_failure = record.on_failure;
        let succeeded = matches!(outcome, StepOutcome::Succeeded { .. });
        record.state = match outcome {
            StepOutcome::Succeeded { .. } => StepState::Succeeded,
            StepOutcome::Failed { .. } if retry_left && !aborting => StepState::Pending,
            StepOutcome::Failed { error, .. } => StepState::Failed {
                error: error.clone(),
            },
        };
        // Only the main steps' convergence measures recovery; a rollback's undoes it.
        if let StepOutcome::Succeeded {
            converged_at: Some(converged_at),
            ..
        } = outcome
            && phase == Phase::Main
        {
            self.timeline.push(Milestone {
                at: *converged_at,
                kind: MilestoneKind::DnsConverged { step: step.clone() },
            });
        }
        self.timeline.push(Milestone {
            at,
            kind: MilestoneKind::StepFinished {
                step: step.clone(),
                attempt,
                succeeded,
            },
        });
        if aborting {
            self.finish(ExecutionState::Aborted, at);
            return Ok(());
        }
        match outcome {
            StepOutcome::Succeeded { .. } => {}
            StepOutcome::Failed { .. } if retry_left => {}
            StepOutcome::Failed { error, .. } => {
                let failure = StepFailure {
                    step: step.clone(),
                    phase,
                    error: error.clone(),
                };
                match (phase, on_failure) {
                    (Phase::Main, OnFailure::Continue) => {}
                    (Phase::Main, OnFailure::Rollback) => {
                        self.failure = Some(failure);
                        skip_pending(&mut self.steps);
                        self.state = ExecutionState::RollingBack;
                    }
                    (Phase::Main, OnFailure::Halt) | (Phase::Rollback, _) => {
                        self.failure = Some(failure);
                        self.finish(ExecutionState::Failed, at);
                        return Ok(());
                    }
                }
            }
        }
        let phase = self.phase();
        let done = self
            .records(phase)
            .iter()
            .all(|record| record.state != StepState::Pending);
        if done {
            let end = match phase {
                Phase::Main => ExecutionState::Succeeded,
                Phase::Rollback => ExecutionState::RolledBack,
            };
            self.finish(end, at);
        }
        Ok(())
    }

    /// Stops the execution now, or once the step in flight reports its outcome.
    pub(crate) fn request_abort(&mut self, by: Actor, at: Timestamp) -> Result<(), Rejection> {
        self.check_active()?;
        if self.abort.is_some() {
            return Err(Rejection::AlreadyAborting { execution: self.id });
        }
        self.abort = Some(AbortRequest { by, at });
        self.timeline.push(Milestone {
            at,
            kind: MilestoneKind::AbortRequested,
        });
        if self.in_flight().is_none() {
            self.finish(ExecutionState::Aborted, at);
        }
        Ok(())
    }

    /// Recovery durations from the timeline (see [`RecoveryTimes`]).
    pub fn recovery_times(&self) -> RecoveryTimes {
        RecoveryTimes::from_timeline(&self.timeline, self.rto)
    }

    fn finish(&mut self, state: ExecutionState, at: Timestamp) {
        skip_pending(&mut self.steps);
        skip_pending(&mut self.rollback);
        self.state = state;
        self.finished_at = Some(at);
        self.timeline.push(Milestone {
            at,
            kind: MilestoneKind::Finished { state },
        });
    }

    fn check_known(&self, step: &StepId) -> Result<(), Rejection> {
        match self.step(step) {
            Some(_) => Ok(()),
            None => Err(Rejection::UnknownStep {
                execution: self.id,
                step: step.clone(),
            }),
        }
    }

    fn check_active(&self) -> Result<(), Rejection> {
        if self.is_active() {
            Ok(())
        } else {
            Err(Rejection::NotRunning {
                execution: self.id,
                state: self.state,
            })
        }
    }

    fn not_runnable(&self, step: &StepId) -> Rejection {
        Rejection::NotRunnable {
            execution: self.id,
            step: step.clone(),
        }
    }
}

fn skip_pending(records: &mut [StepRecord]) {
    for record in records {
        if record.state == StepState::Pending {
            record.state = StepState::Skipped;
        }
    }
}

/// The services named by the runbook's `shift_traffic` steps, main and rollback.
pub(crate) fn shifted_services(runbook: &Runbook) -> BTreeSet<ServiceId> {
    runbook
        .all_steps()
        .filter_map(|step| match &step.action {
            Action::ShiftTraffic(shift) => Some(shift.services.iter().cloned()),
            _ => None,
        })
        .flatten()
        .collect()
}
