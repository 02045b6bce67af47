//! Every node's embedded authoritative server: the embedded zones of the replicated configuration,
//! answered from this node's replica and rebuilt as soon as the node applies a routing change.

use std::sync::Arc;
use std::time::Duration;

use switchyard_providers::{EmbeddedDns, ZoneData, soa_serial};

use super::metrics::DnsMetrics;
use super::{answers_index, expected_answers};
use crate::node::NodeContext;

/// First wait before binding the DNS address again after a failure; doubled up to the maximum.
const BIND_RETRY_INITIAL: Duration = Duration::from_secs(1);
const BIND_RETRY_MAX: Duration = Duration::from_secs(30);

/// Runs the embedded server on this node's `dns_addr` until shutdown.
pub async fn serve_embedded(context: NodeContext, metrics: DnsMetrics) {
    let Some(addr) = context.config.node(context.node).map(|node| node.dns_addr) else {
        // `serve` refuses to start a node missing from its own configuration.
        return;
    };
    let Some(server) = bind(&context, addr).await else {
        return;
    };
    let server = Arc::new(server);
    metrics.server.set(&server);
    let mut applied = context.raft.subscribe_applied();
    // The index the served zones derive from, and the configuration index they were built with.
    let mut built: Option<(u64, u64)> = None;
    let mut waiting_logged = false;
    // Bounded by shutdown: every iteration waits for a new applied index first.
    loop {
        let rebuilt = context.raft.read_state(|state| {
            let config = state.config()?;
            let key = (answers_index(state), config.index);
            if built == Some(key) {
                return Some((key, None));
            }
            let (index, answers) = expected_answers(state)?;
            Some((
                key,
                Some(ZoneData::embedded(&config.config, &answers, index)),
            ))
        });
        match rebuilt {
            None if !waiting_logged => {
                tracing::info!(
                    %addr,
                    "no replicated configuration yet: the embedded dns server refuses every query until one is applied"
                );
                waiting_logged = true;
            }
            None | Some((_, None)) => {}
            Some((key, Some(data))) => {
                let serial = soa_serial(key.0);
                match server.update(&data) {
                    Ok(()) => {
                        for zone in data.zones.keys() {
                            metrics
                                .zone_serial
                                .get_or_create(&[("zone", zone.to_string())])
                                .set(i64::from(serial));
                        }
                        tracing::info!(
                            serial,
                            zones = data.zones.len(),
                            "embedded dns zones now serve the routing at log index {}",
                            key.0
                        );
                    }
                    // Only a configuration the validator should have refused gets here (a record
                    // outside its zone); the previous zones stay served.
                    Err(error) => {
                        tracing::error!(%error, serial, "cannot serve the embedded zones")
                    }
                }
                built = Some(key);
            }
        }
        tokio::select! {
            changed = applied.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            () = context.shutdown.cancelled() => break,
        }
    }
    match Arc::try_unwrap(server) {
        Ok(server) => server.shutdown().await,
        // The metrics collector holds only a weak reference, so this is a scrape in progress;
        // dropping our reference stops the server once it ends.
        Err(server) => drop(server),
    }
}

/// Binds UDP and TCP on `addr`, retrying with bounded backoff while the address is taken, so a
/// node whose DNS port is briefly busy still comes up and serves once it frees.
async fn bind(context: &NodeContext, addr: std::net::SocketAddr) -> Option<EmbeddedDns> {
    let mut backoff = BIND_RETRY_INITIAL;
    // Bounded by shutdown.
    loop {
        match EmbeddedDns::spawn(addr, ZoneData::default()).await {
            Ok(server) => return Some(server),
            Err(error) => {
                tracing::error!(%error, retry_in = ?backoff, "embedded dns server cannot start");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = context.shutdown.cancelled() => return None,
        }
        backoff = (backoff * 2).min(BIND_RETRY_MAX);
    }
}
