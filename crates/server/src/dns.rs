//! Serving the embedded DNS zones from the replicated routing state, and pushing routing changes
//! to external DNS providers from the leader (issue 5 fills this in).

use prometheus_client::registry::Registry;
use tokio::task::JoinSet;

use crate::node::NodeContext;

/// The DNS metric families.
#[derive(Clone, Debug, Default)]
pub struct DnsMetrics {}

pub fn register(_registry: &mut Registry) -> DnsMetrics {
    DnsMetrics::default()
}

pub fn spawn(
    _context: &NodeContext,
    _metrics: DnsMetrics,
    _tasks: &mut JoinSet<anyhow::Result<()>>,
) {
}
