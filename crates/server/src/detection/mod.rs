//! Probing every endpoint from this node and turning verdict flips and leader decisions into
//! Raft commands (issue 4 fills this in).

use prometheus_client::registry::Registry;
use tokio::task::JoinSet;

use crate::node::NodeContext;

/// The detection metric families.
#[derive(Clone, Debug, Default)]
pub struct DetectionMetrics {}

pub fn register(_registry: &mut Registry) -> DetectionMetrics {
    DetectionMetrics::default()
}

pub fn spawn(
    _context: &NodeContext,
    _metrics: DetectionMetrics,
    _tasks: &mut JoinSet<anyhow::Result<()>>,
) {
}
