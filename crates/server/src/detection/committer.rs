//! [`VerdictCommitter`]: sends this node's pending verdict changes to the leader, one at a
//! time, oldest first, retrying with bounded backoff while nothing can be committed.

use std::time::Duration;

use switchyard_core::detection::DetectionInput;
use switchyard_core::state::{Actor, Command, CommandKind, Outcome};
use switchyard_raft::ProposeError;

use super::pending::PendingVerdicts;
use crate::clock::now;
use crate::node::NodeContext;

/// First wait after a failed proposal.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
/// Longest wait between two attempts: once a quorum is back, a verdict waits at most this long.
const BACKOFF_MAX: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct VerdictCommitter {
    pub context: NodeContext,
    pub pending: PendingVerdicts,
}

impl VerdictCommitter {
    pub async fn run(self) -> anyhow::Result<()> {
        let shutdown = &self.context.shutdown;
        let mut backoff = BACKOFF_MIN;
        while !shutdown.is_cancelled() {
            let Some(next) = self.pending.oldest() else {
                tokio::select! {
                    () = self.pending.pushed() => {}
                    () = shutdown.cancelled() => {}
                }
                continue;
            };
            let command = Command {
                time: now(),
                actor: Actor::Node(self.context.node),
                kind: CommandKind::Detection(DetectionInput::VerdictChanged(next.change.clone())),
            };
            let result = tokio::select! {
                result = self.context.raft.propose_anywhere(command) => result,
                () = shutdown.cancelled() => break,
            };
            match result {
                Ok(applied) => {
                    backoff = BACKOFF_MIN;
                    if let Outcome::Rejected(rejection) = &applied.outcome {
                        // Deterministic: sending it again would be refused again.
                        tracing::warn!(
                            endpoint = %next.change.endpoint,
                            %rejection,
                            "verdict change refused"
                        );
                    } else {
                        tracing::debug!(
                            endpoint = %next.change.endpoint,
                            index = applied.index,
                            "verdict change committed"
                        );
                    }
                    self.pending.committed(&next);
                }
                Err(error) => {
                    match &error {
                        ProposeError::Fatal { .. } => {
                            tracing::error!(%error, "cannot commit a verdict change")
                        }
                        _ => tracing::debug!(
                            %error,
                            pending = self.pending.len(),
                            retry_ms = backoff.as_millis() as u64,
                            "cannot commit a verdict change yet"
                        ),
                    }
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = shutdown.cancelled() => {}
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        Ok(())
    }
}
