//! Serving the embedded DNS zones from the replicated routing state on every node, and pushing
//! routing changes to external DNS providers from the leader.
//!
//! Both follow the same loop: wake on every applied log index, read the replica, and act when the
//! routing or the configuration moved. The answers and the SOA serial come from the replica only,
//! so every node that applied the same index serves the same zones with the same serial.

mod metrics;
pub(crate) mod push;
mod serve;
pub mod tools;

use std::collections::BTreeMap;

use futures::FutureExt as _;
use prometheus_client::registry::Registry;
use switchyard_core::config::{ClusterConfig, EMBEDDED_PROVIDER, ProviderKind, Zone};
use switchyard_core::routing::{Rrset, RrsetKey};
use switchyard_core::state::State;
use tokio::task::JoinSet;

use crate::node::NodeContext;

pub use metrics::DnsMetrics;

pub fn register(registry: &mut Registry) -> DnsMetrics {
    metrics::register(registry)
}

pub fn spawn(context: &NodeContext, metrics: DnsMetrics, tasks: &mut JoinSet<anyhow::Result<()>>) {
    tasks.spawn(serve::serve_embedded(context.clone(), metrics.clone()).map(Ok));
    tasks.spawn(push::push_routing(context.clone(), metrics).map(Ok));
}

/// The log index the zones' content and SOA serial derive from: the last routing change or the
/// last configuration change, whichever is later (a new configuration can change records, TTLs
/// and endpoints without any routing change).
pub fn answers_index(state: &State) -> u64 {
    let config_index = state.config().map_or(0, |config| config.index);
    state.routing().changed_index.max(config_index)
}

/// The answers of every record in force (the routing's, with pinned RRsets in their place), with
/// the index they derive from; `None` before a configuration is replicated.
pub fn expected_answers(state: &State) -> Option<(u64, BTreeMap<RrsetKey, Rrset>)> {
    let config = &state.config()?.config;
    Some((answers_index(state), state.routing().answers(config)))
}

/// Whether every node serves `zone` itself, rather than an external provider.
pub fn is_embedded(config: &ClusterConfig, zone: &Zone) -> bool {
    match config.provider(&zone.provider) {
        Some(provider) => matches!(provider.kind, ProviderKind::Embedded),
        None => zone.provider.as_str() == EMBEDDED_PROVIDER,
    }
}
