//! One attempt of one step: intent, leadership check, action, outcome.

use std::time::Duration;

use switchyard_core::Timestamp;
use switchyard_core::execution::{
    ExecutionId, Runnable, StepFinish, StepOutcome, StepStart, resolve_step,
};
use switchyard_core::id::StepId;
use switchyard_core::plan::ResolvedAction;
use switchyard_core::state::{Actor, Command, CommandKind, Outcome, State};

use super::action;
use crate::clock::now;
use crate::node::NodeContext;

/// The longest any single attempt may run, whatever its step says: bounds every task.
const ATTEMPT_TIMEOUT_MAX: Duration = Duration::from_secs(3600);

pub fn webhook_client() -> reqwest::Client {
    switchyard_api::ensure_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        // Only TLS back-end initialisation can fail here, and a provider is installed.
        .expect("webhook client builds")
}

#[derive(Debug)]
pub struct StepTask {
    pub context: NodeContext,
    pub runnable: Runnable,
    /// This leader's term: the intent and the outcome carry it.
    pub term: u64,
    pub http: reqwest::Client,
    /// This leader already committed the intent in its term; its task ended without an
    /// outcome, so this one acts on that intent without committing another.
    pub intent_committed: bool,
}

impl StepTask {
    pub async fn run(self) {
        let runnable = &self.runnable;
        let raft = &self.context.raft;
        let execution = runnable.execution;
        let step = runnable.step.id.clone();
        let started = now();
        let intent = StepStart {
            execution,
            step: step.clone(),
            attempt: runnable.attempt,
            term: self.term,
            at: started,
        };
        if !self.intent_committed {
            match raft
                .propose(self.command(CommandKind::StepStarted(intent)))
                .await
            {
                Ok(applied) if applied.outcome == Outcome::Accepted => {}
                Ok(applied) => {
                    tracing::debug!(%execution, %step, outcome = ?applied.outcome, "step intent refused");
                    return;
                }
                Err(error) => {
                    tracing::debug!(%execution, %step, %error, "cannot commit the step intent");
                    return;
                }
            }
        }
        // A leader that lost a majority between the intent and the action must not act.
        if let Err(error) = raft.ensure_linearizable().await {
            tracing::warn!(%execution, %step, %error, "no longer leader: leaving the step to the next one");
            return;
        }
        let resolved = raft.read_state(|state| resolve_step(state, execution, &step));
        let outcome = match resolved {
            Err(rejection) => StepOutcome::Failed {
                error: format!("cannot resolve the step: {rejection}"),
                evidence: serde_json::Value::Null,
            },
            Ok(resolved) => {
                let deadline = runnable
                    .deadline
                    .unwrap_or_else(|| started.after(resolved.definition.timeout));
                let budget = until(deadline).min(ATTEMPT_TIMEOUT_MAX);
                tracing::info!(%execution, %step, attempt = runnable.attempt, kind = resolved.definition.action.kind(), "step started");
                // A resumed step keeps its pace: a wait ends where it would have ended had
                // the first intent's leader finished it.
                let first_intent = raft
                    .read_state(|state| first_intent_at(state, execution, &step))
                    .unwrap_or(started);
                let acting = action::act(
                    &self.context,
                    &self.http,
                    action::Attempt {
                        execution,
                        step: &step,
                        number: runnable.attempt,
                        first_intent,
                    },
                    &resolved.action,
                    budget,
                );
                // A change committed through Raft is not cut short: dropping its proposal would
                // not withdraw it, and the step would report failed while the change is in
                // force. The proposal has its own commit timeout.
                let bounded = !matches!(
                    resolved.action,
                    ResolvedAction::ShiftTraffic(_) | ResolvedAction::SetRecords(_)
                );
                if bounded {
                    match tokio::time::timeout(budget, acting).await {
                        Ok(outcome) => outcome,
                        Err(_) => StepOutcome::Failed {
                            error: format!(
                                "step timed out after {}",
                                humantime::format_duration(resolved.definition.timeout)
                            ),
                            evidence: serde_json::Value::Null,
                        },
                    }
                } else {
                    acting.await
                }
            }
        };
        let succeeded = matches!(outcome, StepOutcome::Succeeded { .. });
        let finish = StepFinish {
            execution,
            step: step.clone(),
            attempt: runnable.attempt,
            term: self.term,
            outcome,
            at: now(),
        };
        match raft
            .propose(self.command(CommandKind::StepFinished(finish)))
            .await
        {
            Ok(applied) if applied.outcome == Outcome::Accepted => {
                tracing::info!(%execution, %step, attempt = runnable.attempt, succeeded, "step finished");
            }
            Ok(applied) => {
                tracing::warn!(%execution, %step, outcome = ?applied.outcome, "step outcome refused")
            }
            Err(error) => {
                tracing::warn!(%execution, %step, %error, "cannot commit the step outcome; the next leader resumes it")
            }
        }
    }

    fn command(&self, kind: CommandKind) -> Command {
        Command {
            time: now(),
            actor: Actor::Node(self.context.node),
            kind,
        }
    }
}

/// When the first attempt's first intent of `step` was committed, if it was.
fn first_intent_at(state: &State, execution: ExecutionId, step: &StepId) -> Option<Timestamp> {
    let record = state.execution(execution)?;
    let step = record
        .steps
        .iter()
        .chain(&record.rollback)
        .find(|candidate| &candidate.id == step)?;
    Some(step.attempts.first()?.intents.first()?.at)
}

/// How long until `deadline`, zero if it has passed.
fn until(deadline: Timestamp) -> Duration {
    deadline.since(now())
}
