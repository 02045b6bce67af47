//! Keeping the replicated configuration equal to the leader's configuration file.
//!
//! Every replica judges with the configuration in the Raft state, never with its own file, so
//! replicas cannot disagree. The leader proposes its file's configuration whenever the replicated
//! one differs (on the first election, and after a rolling configuration change); followers whose
//! file differs say so in their log.

use std::time::Duration;

use switchyard_core::config::ClusterConfig;
use switchyard_core::id::NodeId;
use switchyard_core::state::{Actor, Command, CommandKind, Outcome, config_digest};
use switchyard_raft::{RaftNode, Role};
use tokio_util::sync::CancellationToken;

use crate::clock::now;

/// How often the replicated configuration is compared with the file's.
const CHECK_INTERVAL: Duration = Duration::from_millis(250);

pub async fn keep_config_applied(
    raft: RaftNode,
    config: ClusterConfig,
    node: NodeId,
    shutdown: CancellationToken,
) {
    let digest = config_digest(&config);
    let mut interval = tokio::time::interval(CHECK_INTERVAL);
    let mut warned = false;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let replicated =
            raft.read_state(|state| state.config().map(|config| config.digest.clone()));
        if replicated.as_deref() == Some(digest.as_str()) {
            warned = false;
            continue;
        }
        if raft.status().role != Role::Leader {
            if replicated.is_some() && !warned {
                tracing::warn!(
                    "this node's configuration file differs from the replicated one (digest {}); the replicated one is in force",
                    replicated.as_deref().unwrap_or_default()
                );
                warned = true;
            }
            continue;
        }
        let command = Command {
            time: now(),
            actor: Actor::Node(node),
            kind: CommandKind::ConfigApplied {
                config: Box::new(config.clone()),
                digest: digest.clone(),
            },
        };
        match raft.propose(command).await {
            Ok(applied) if applied.outcome == Outcome::Accepted => {
                tracing::info!(index = applied.index, %digest, "configuration applied to the replicated state");
            }
            Ok(applied) => tracing::error!(outcome = ?applied.outcome, "configuration refused"),
            Err(error) => tracing::debug!(%error, "cannot apply the configuration yet"),
        }
    }
}
