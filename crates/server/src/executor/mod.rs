//! The leader-only executor: starts pre-approved runbooks on site loss, and carries out every
//! runnable step of every execution through the providers.
//!
//! Every external action is recorded twice: the intent (`StepStarted`, with this leader's term)
//! is committed before it, and the outcome (`StepFinished`) after. The executor confirms it is
//! still leader (a linearizable read) between the intent and the action, so a deposed leader
//! never acts. A new leader finds steps with an intent and no outcome in `runnable` and resumes
//! them under its own term; the state machine ignores late outcomes from older terms.

mod action;
mod step;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use switchyard_core::execution::{ExecutionId, automatic_starts, runnable};
use switchyard_core::id::StepId;
use switchyard_core::state::{Actor, Command, CommandKind, Outcome};
use switchyard_raft::Role;
use tokio::task::JoinSet;

use crate::clock::now;
use crate::node::NodeContext;

/// How often the leader looks for work when nothing is applied.
const TICK_INTERVAL: Duration = Duration::from_millis(100);

pub fn spawn(context: &NodeContext, tasks: &mut JoinSet<anyhow::Result<()>>) {
    tasks.spawn(run(context.clone()).map(Ok));
}

/// A step this leader is acting on, so that one tick does not start it twice.
type InFlight = (ExecutionId, StepId, u32);

/// How long a refused or failed automatic start waits before it is proposed again: the event
/// may still be current later (a lock is released, a leader settles), and retrying every tick
/// would fill the audit chain with refusals.
const START_RETRY_INTERVAL: Duration = Duration::from_secs(2);

async fn run(context: NodeContext) {
    let mut applied = context.raft.subscribe_applied();
    let mut tick = tokio::time::interval(TICK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let http = step::webhook_client();
    let mut steps: JoinSet<()> = JoinSet::new();
    // Keyed by task id, so that a task that panicked still frees its step.
    let mut in_flight: HashMap<tokio::task::Id, InFlight> = HashMap::new();
    let mut start_retry_at: HashMap<String, Instant> = HashMap::new();
    loop {
        tokio::select! {
            () = context.shutdown.cancelled() => break,
            _ = tick.tick() => {}
            changed = applied.changed() => if changed.is_err() { break },
            Some(done) = steps.join_next_with_id() => {
                let id = match done {
                    Ok((id, ())) => id,
                    Err(error) => {
                        tracing::error!(%error, "a step task failed; the step will be resumed");
                        error.id()
                    }
                };
                in_flight.remove(&id);
                continue;
            }
        }
        let status = context.raft.status();
        if status.role != Role::Leader {
            // A deposed leader's step tasks notice at their next commit and stop on their own.
            start_retry_at.clear();
            continue;
        }
        let term = status.term;
        let at = now();
        let starts = context
            .raft
            .read_state(|state| automatic_starts(state, state.site_events(), at));
        for start in starts {
            let key = format!("{term}:{:?}:{}", start.trigger, start.runbook);
            if start_retry_at
                .get(&key)
                .is_some_and(|retry_at| Instant::now() < *retry_at)
            {
                continue;
            }
            start_retry_at.insert(key, Instant::now() + START_RETRY_INTERVAL);
            let runbook = start.runbook.clone();
            let command = Command {
                time: at,
                actor: Actor::Node(context.node),
                kind: CommandKind::ExecutionStarted(start),
            };
            match context.raft.propose(command).await {
                Ok(applied) if applied.outcome == Outcome::Accepted => {
                    tracing::info!(execution = applied.index, %runbook, "automatic execution started");
                }
                Ok(applied) => {
                    tracing::warn!(%runbook, outcome = ?applied.outcome, "automatic start refused; retrying later if still current")
                }
                Err(error) => {
                    tracing::warn!(%runbook, %error, "cannot start an automatic execution; retrying later")
                }
            }
        }
        for runnable in context.raft.read_state(runnable) {
            let key = (
                runnable.execution,
                runnable.step.id.clone(),
                runnable.attempt,
            );
            if in_flight.values().any(|acting| *acting == key) {
                continue;
            }
            if runnable
                .not_before
                .is_some_and(|not_before| not_before > at)
            {
                continue;
            }
            // An intent of this very term with no task acting on it means this leader's task
            // gave up (a timeout, a lost quorum that came back, a panic): act again on that
            // intent rather than leave the step running until the next election.
            let intent_committed = runnable.intent_term == Some(term);
            let task = step::StepTask {
                context: context.clone(),
                runnable,
                term,
                http: http.clone(),
                intent_committed,
            };
            let handle = steps.spawn(task.run());
            in_flight.insert(handle.id(), key);
        }
    }
    steps.shutdown().await;
}
