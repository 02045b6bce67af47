//! Running counts behind the consensus, kept up to date one verdict at a time.
//!
//! With thousands of endpoints, recounting the whole matrix on every verdict change would cost
//! endpoints × nodes per change, and a site loss brings thousands of changes at once. The tally
//! keeps, per observer site, how many of its replicating nodes see each endpoint down and how many
//! endpoints of each judged site it therefore sees down, so one change costs a few map updates.
//! It is derived state: [`Tally::rebuild_observer`] recomputes an observer site's part from the
//! matrix, and the detector checks it against a full recount whenever it builds evidence.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::id::{EndpointId, NodeId, ServiceId, SiteId};

use super::topology::Topology;
use super::verdict::{Verdict, VerdictRecord};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// observer site → endpoint → how many of its replicating nodes hold `down` on it.
    down_nodes: BTreeMap<SiteId, BTreeMap<EndpointId, u32>>,
    /// observer site → judged site → how many of that site's endpoints it sees down (strict
    /// majority of its replicating nodes).
    down_endpoints: BTreeMap<SiteId, BTreeMap<SiteId, u32>>,
    /// observer site → how many of its nodes replicate.
    replicating: BTreeMap<SiteId, u32>,
    /// observer site → service → judged site → how many of that service's endpoints there it
    /// sees down (per-service failover).
    #[serde(default)]
    down_service_endpoints: BTreeMap<SiteId, BTreeMap<ServiceId, BTreeMap<SiteId, u32>>>,
}

impl Tally {
    /// How many of `target`'s endpoints `observer` sees down.
    pub fn endpoints_down(&self, observer: &SiteId, target: &SiteId) -> u32 {
        self.down_endpoints
            .get(observer)
            .and_then(|per_site| per_site.get(target))
            .copied()
            .unwrap_or(0)
    }

    /// How many of `service`'s endpoints in `target` `observer` sees down.
    pub fn service_endpoints_down(
        &self,
        observer: &SiteId,
        service: &ServiceId,
        target: &SiteId,
    ) -> u32 {
        self.down_service_endpoints
            .get(observer)
            .and_then(|per_service| per_service.get(service))
            .and_then(|per_site| per_site.get(target))
            .copied()
            .unwrap_or(0)
    }

    /// How many of `observer`'s nodes replicate.
    pub fn replicating(&self, observer: &SiteId) -> u32 {
        self.replicating.get(observer).copied().unwrap_or(0)
    }

    /// Recounts `observer`'s part from the matrix, counting only `nodes` (its replicating ones).
    pub fn rebuild_observer(
        &mut self,
        observer: &SiteId,
        nodes: &[NodeId],
        matrix: &BTreeMap<NodeId, BTreeMap<EndpointId, VerdictRecord>>,
        topology: &Topology,
    ) {
        let mut down_nodes: BTreeMap<EndpointId, u32> = BTreeMap::new();
        for node in nodes {
            let Some(verdicts) = matrix.get(node) else {
                continue;
            };
            for (endpoint, record) in verdicts {
                if record.verdict == Verdict::Down {
                    *down_nodes.entry(endpoint.clone()).or_default() += 1;
                }
            }
        }
        let replicating = u32::try_from(nodes.len()).unwrap_or(u32::MAX);
        let mut down_endpoints: BTreeMap<SiteId, u32> = BTreeMap::new();
        let mut down_service_endpoints: BTreeMap<ServiceId, BTreeMap<SiteId, u32>> =
            BTreeMap::new();
        for (endpoint, count) in &down_nodes {
            if majority(*count, replicating)
                && let Some(site) = topology.endpoint_sites.get(endpoint)
            {
                *down_endpoints.entry(site.clone()).or_default() += 1;
                if let Some(service) = topology.endpoint_services.get(endpoint) {
                    *down_service_endpoints
                        .entry(service.clone())
                        .or_default()
                        .entry(site.clone())
                        .or_default() += 1;
                }
            }
        }
        self.down_nodes.insert(observer.clone(), down_nodes);
        self.down_endpoints.insert(observer.clone(), down_endpoints);
        self.down_service_endpoints
            .insert(observer.clone(), down_service_endpoints);
        self.replicating.insert(observer.clone(), replicating);
    }

    /// One replicating node of `observer` flipped its verdict on `endpoint` (of `service`, in
    /// `target`).
    pub fn record_flip(
        &mut self,
        observer: &SiteId,
        endpoint: &EndpointId,
        (service, target): (Option<&ServiceId>, &SiteId),
        verdict: Verdict,
    ) {
        let replicating = self.replicating(observer);
        let counts = self.down_nodes.entry(observer.clone()).or_default();
        let count = counts.entry(endpoint.clone()).or_default();
        let before = majority(*count, replicating);
        match verdict {
            Verdict::Down => *count += 1,
            Verdict::Up => *count = count.saturating_sub(1),
        }
        let after = majority(*count, replicating);
        if *count == 0 {
            counts.remove(endpoint);
        }
        if before != after {
            let per_site = self.down_endpoints.entry(observer.clone()).or_default();
            step(per_site.entry(target.clone()).or_default(), after);
            if let Some(service) = service {
                let per_service = self
                    .down_service_endpoints
                    .entry(observer.clone())
                    .or_default();
                let per_site = per_service.entry(service.clone()).or_default();
                step(per_site.entry(target.clone()).or_default(), after);
            }
        }
    }
}

/// One more endpoint seen down (`up`), or one fewer.
fn step(count: &mut u32, up: bool) {
    if up {
        *count += 1;
    } else {
        *count = count.saturating_sub(1);
    }
}

/// Whether `down` of `nodes` is a strict majority.
pub fn majority(down: u32, nodes: u32) -> bool {
    2 * u64::from(down) > u64::from(nodes)
}
