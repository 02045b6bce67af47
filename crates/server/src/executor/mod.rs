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

use std::collections::BTreeSet;
use std::time::Duration;

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

async fn run(context: NodeContext) {
    let mut applied = context.raft.subscribe_applied();
    let mut tick = tokio::time::interval(TICK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let http = step::webhook_client();
    let mut steps: JoinSet<InFlight> = JoinSet::new();
    let mut in_flight: BTreeSet<InFlight> = BTreeSet::new();
    let mut proposed_starts: BTreeSet<String> = BTreeSet::new();
    loop {
        tokio::select! {
            () = context.shutdown.cancelled() => break,
            _ = tick.tick() => {}
            changed = applied.changed() => if changed.is_err() { break },
            Some(done) = steps.join_next() => {
                if let Ok(done) = done {
                    in_flight.remove(&done);
                }
                continue;
            }
        }
        let status = context.raft.status();
        if status.role != Role::Leader {
            // A deposed leader's step tasks notice at their next commit and stop on their own.
            proposed_starts.clear();
            continue;
        }
        let term = status.term;
        let at = now();
        let starts = context
            .raft
            .read_state(|state| automatic_starts(state, state.site_events(), at));
        for start in starts {
            // One proposal per trigger per leadership: a refusal at apply is final for it.
            let key = format!("{term}:{:?}", start.trigger);
            if !proposed_starts.insert(key) {
                continue;
            }
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
                    tracing::warn!(%runbook, outcome = ?applied.outcome, "automatic start refused")
                }
                Err(error) => {
                    tracing::warn!(%runbook, %error, "cannot start an automatic execution")
                }
            }
        }
        for runnable in context.raft.read_state(runnable) {
            let key = (
                runnable.execution,
                runnable.step.id.clone(),
                runnable.attempt,
            );
            if runnable.intent_term == Some(term) || in_flight.contains(&key) {
                continue;
            }
            if runnable
                .not_before
                .is_some_and(|not_before| not_before > at)
            {
                continue;
            }
            in_flight.insert(key.clone());
            let task = step::StepTask {
                context: context.clone(),
                runnable,
                term,
                http: http.clone(),
            };
            steps.spawn(async move {
                task.run().await;
                key
            });
        }
    }
    steps.shutdown().await;
}
