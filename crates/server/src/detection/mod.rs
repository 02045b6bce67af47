//! Detection on this node: probing every endpoint and committing this node's verdict flips
//! (on every node), and committing site transitions and controller contact changes (on the
//! leader only).
//!
//! - [`Observer`] runs the prober over the replicated configuration; each flip becomes a
//!   pending `VerdictChanged`.
//! - [`VerdictCommitter`] sends pending verdicts to the leader (`propose_anywhere`), keeping only
//!   the latest per endpoint while no quorum is reachable.
//! - [`LeaderDuty`] proposes due site transitions and contact changes while this node leads.
//!
//! No `Tick` is ever committed: transitions carry the leader's time (`at`) and hold periods are
//! measured up to it, so the detector's clock needs no timer of its own.
//!
//! The prober may hold one socket per endpoint at once, so `spawn` raises the soft
//! `RLIMIT_NOFILE` to the hard limit (see [`fd_limit`]); the hard limit itself is the
//! operator's (`LimitNOFILE=`).

mod committer;
mod fd_limit;
mod leader_duty;
mod metrics;
mod observer;
mod pending;

use prometheus_client::registry::Registry;
use tokio::task::JoinSet;

use crate::node::NodeContext;
pub use committer::VerdictCommitter;
pub use leader_duty::LeaderDuty;
pub use metrics::DetectionMetrics;
pub use observer::Observer;
pub use pending::PendingVerdicts;

/// Registers the detection metric families (see [`DetectionMetrics`]).
pub fn register(registry: &mut Registry) -> DetectionMetrics {
    DetectionMetrics::register(registry)
}

/// Starts the observer, the verdict committer and the leader duty; each stops on shutdown.
pub fn spawn(
    context: &NodeContext,
    metrics: DetectionMetrics,
    tasks: &mut JoinSet<anyhow::Result<()>>,
) {
    fd_limit::raise_nofile_soft_limit();
    let pending = PendingVerdicts::default();
    tasks.spawn(
        Observer {
            context: context.clone(),
            metrics,
            pending: pending.clone(),
        }
        .run(),
    );
    tasks.spawn(
        VerdictCommitter {
            context: context.clone(),
            pending,
        }
        .run(),
    );
    tasks.spawn(
        LeaderDuty {
            context: context.clone(),
        }
        .run(),
    );
}
