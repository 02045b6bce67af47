//! Applying execution commands: starts (with the exclusion rules), intents, outcomes and aborts.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Actor, Outcome, Rejection, State};
use crate::execution::{
    self, Execution, ExecutionAbort, ExecutionId, ExecutionStart, StepFinish, StepStart,
};
use crate::id::{ServiceId, SiteId};
use crate::time::Timestamp;

/// Every execution, and the indexes the exclusion rules read.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecutionsState {
    /// Every execution ever started, by id (log index of its start).
    executions: BTreeMap<ExecutionId, Execution>,
    /// The executions still running or rolling back: they hold their service locks.
    active: BTreeSet<ExecutionId>,
    /// site → site-state event index → the execution it started (one per event).
    by_event: BTreeMap<SiteId, BTreeMap<u64, ExecutionId>>,
    /// site → when its last automatically triggered execution ended (for `failover_cooldown`).
    automatic_ended: BTreeMap<SiteId, Timestamp>,
}

impl ExecutionsState {
    pub fn get(&self, id: ExecutionId) -> Option<&Execution> {
        self.executions.get(&id)
    }

    /// Every execution, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Execution> {
        self.executions.values()
    }

    /// The executions still running or rolling back, oldest first.
    pub fn active(&self) -> impl Iterator<Item = &Execution> {
        self.active.iter().filter_map(|id| self.executions.get(id))
    }

    /// The active execution that holds `service`'s lock, if any.
    pub fn lock_holder(&self, service: &ServiceId) -> Option<ExecutionId> {
        self.active()
            .find(|execution| execution.services.contains(service))
            .map(|execution| execution.id)
    }

    /// The execution started for the site-state event at `event_index` on `site`, if any.
    pub fn for_event(&self, site: &SiteId, event_index: u64) -> Option<ExecutionId> {
        self.by_event.get(site)?.get(&event_index).copied()
    }

    /// When the last automatically triggered execution for `site` ended.
    pub fn last_automatic_end(&self, site: &SiteId) -> Option<Timestamp> {
        self.automatic_ended.get(site).copied()
    }

    /// Keeps the indexes in step after `id` changed: an ended execution leaves `active`, and an
    /// automatic one starts its site's cooldown.
    fn note_changed(&mut self, id: ExecutionId) {
        let Some(execution) = self.executions.get(&id) else {
            return;
        };
        if execution.is_active() {
            return;
        }
        self.active.remove(&id);
        if let (Some((_, site)), Some(finished_at)) =
            (execution.trigger.event(), execution.finished_at)
        {
            self.automatic_ended.insert(site.clone(), finished_at);
        }
    }
}

pub(super) fn summary_started(start: &ExecutionStart) -> String {
    let site = start
        .parameters
        .get("site")
        .map(|site| format!(" site {site}"))
        .or_else(|| {
            start
                .trigger
                .event()
                .map(|(_, site)| format!(" site {site}"))
        })
        .unwrap_or_default();
    format!(
        "execution started: {} v{} ({}){site}",
        start.runbook,
        start.version,
        start.trigger.kind()
    )
}

pub(super) fn summary_step_started(start: &StepStart) -> String {
    format!(
        "step started: execution {} step {} attempt {} term {}",
        start.execution, start.step, start.attempt, start.term
    )
}

pub(super) fn summary_step_finished(finish: &StepFinish) -> String {
    let outcome = match &finish.outcome {
        execution::StepOutcome::Succeeded { .. } => "succeeded".to_owned(),
        execution::StepOutcome::Failed { error, .. } => format!("failed: {error}"),
    };
    format!(
        "step finished: execution {} step {} attempt {} term {}: {outcome}",
        finish.execution, finish.step, finish.attempt, finish.term
    )
}

pub(super) fn summary_aborted(abort: &ExecutionAbort) -> String {
    format!("execution aborted: {}", abort.execution)
}

impl State {
    pub(super) fn apply_execution_started(
        &mut self,
        index: u64,
        actor: &Actor,
        start: &ExecutionStart,
    ) -> Outcome {
        let prepared = match execution::check_start(self, start, actor, index) {
            Ok(prepared) => prepared,
            Err(rejection) => return Outcome::Rejected(rejection),
        };
        let id = ExecutionId(index);
        let execution = Execution::new(id, start, prepared, actor.clone());
        let executions = &mut self.executions;
        if let Some((event_index, site)) = start.trigger.event() {
            executions
                .by_event
                .entry(site.clone())
                .or_default()
                .insert(event_index, id);
        }
        executions.active.insert(id);
        executions.executions.insert(id, execution);
        executions.note_changed(id);
        Outcome::Accepted
    }

    pub(super) fn apply_step_started(&mut self, term: u64, start: &StepStart) -> Outcome {
        if start.term != term {
            // Proposed by a leader of an older term and committed by a newer one (forwarded):
            // that leader can no longer act, so its intent must not stand.
            return execution_rejected(execution::Rejection::StaleIntent {
                step: start.step.clone(),
                given: start.term,
                current: term,
            });
        }
        self.with_execution(start.execution, |execution| {
            execution.start_step(&start.step, start.attempt, start.term, start.at)
        })
    }

    pub(super) fn apply_step_finished(&mut self, finish: &StepFinish) -> Outcome {
        self.with_execution(finish.execution, |execution| {
            execution.finish_step(
                &finish.step,
                finish.attempt,
                finish.term,
                &finish.outcome,
                finish.at,
            )
        })
    }

    pub(super) fn apply_execution_aborted(&mut self, abort: &ExecutionAbort) -> Outcome {
        self.with_execution(abort.execution, |execution| {
            execution.request_abort(abort.by.clone(), abort.at)
        })
    }

    fn with_execution(
        &mut self,
        id: ExecutionId,
        change: impl FnOnce(&mut Execution) -> Result<(), execution::Rejection>,
    ) -> Outcome {
        let Some(execution) = self.executions.executions.get_mut(&id) else {
            return execution_rejected(execution::Rejection::UnknownExecution { execution: id });
        };
        // Every transition validates before it mutates, so a refusal leaves the record as it was.
        match change(execution) {
            Ok(()) => {
                self.executions.note_changed(id);
                Outcome::Accepted
            }
            Err(rejection) => execution_rejected(rejection),
        }
    }

    pub fn executions(&self) -> &ExecutionsState {
        &self.executions
    }

    pub fn execution(&self, id: ExecutionId) -> Option<&Execution> {
        self.executions.get(id)
    }
}

fn execution_rejected(rejection: execution::Rejection) -> Outcome {
    Outcome::Rejected(Rejection::Execution(rejection))
}
