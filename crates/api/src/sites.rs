//! `GET /v1/sites` and `GET /v1/services`: site states with the evidence behind them, and the
//! health of each service in each site, as one node's replica holds them.

use serde::{Deserialize, Serialize};
use switchyard_core::Timestamp;
use switchyard_core::detection::{Consensus, ServiceState, SiteState, Verdict};
use switchyard_core::id::{EndpointId, NodeId, ServiceId, SiteId};

/// `GET /v1/sites`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sites {
    /// The node that answered; its replica may lag the leader's.
    pub node: NodeId,
    /// The log index the answer reflects.
    pub applied_index: u64,
    /// Whether a replicated configuration (and so detection) exists yet; `sites` is empty
    /// until it does.
    pub configured: bool,
    /// While every judged site looks down at once: those sites. No site is declared lost then.
    pub global_outage: Option<Vec<SiteId>>,
    pub sites: Vec<SiteView>,
}

/// One site's state and the evidence on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteView {
    pub site: SiteId,
    pub state: SiteState,
    /// When `state` was entered (leader time, milliseconds since the epoch; 0 initially).
    pub since: Timestamp,
    /// What the other observer sites currently agree on.
    pub consensus: Consensus,
    /// Since when `consensus` has been `down` without a break.
    pub down_since: Option<Timestamp>,
    /// Since when `consensus` has been `up` without a break.
    pub up_since: Option<Timestamp>,
    /// While the `failover_cooldown` of the site's last loss runs: when it ends.
    pub cooldown_until: Option<Timestamp>,
    /// Whether this site is one of those in the current global outage.
    pub global_outage: bool,
    /// A witness site observes others but has no endpoints and is never judged.
    pub witness: bool,
    /// Whether any of the site's own controller nodes still replicates.
    pub controller_reachable: bool,
    /// The evidence matrix for this site: one row per other observer site.
    pub observers: Vec<ObserverEvidence>,
}

/// What one observer site sees of the judged site's endpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObserverEvidence {
    pub observer_site: SiteId,
    /// Whether this observer's view counts (it has a replicating node and is not lost).
    pub counted: bool,
    /// The observer's replicating nodes, whose verdicts are combined by strict majority.
    pub nodes: Vec<NodeId>,
    pub endpoints: Vec<EndpointEvidence>,
}

/// One cell of the evidence matrix: an observer site's combined verdict on one endpoint, and
/// each of its nodes' committed verdicts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointEvidence {
    pub endpoint: EndpointId,
    pub verdict: Verdict,
    pub node_verdicts: Vec<NodeVerdict>,
}

/// One node's latest committed verdict on one endpoint. A node that never flipped it is `up`
/// with no `since`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeVerdict {
    pub node: NodeId,
    pub verdict: Verdict,
    /// The observer's time of the probe that completed the rise/fall count.
    pub since: Option<Timestamp>,
    pub last_error: Option<String>,
    pub latency_ms: Option<u32>,
}

/// `GET /v1/services`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Services {
    pub node: NodeId,
    pub applied_index: u64,
    pub configured: bool,
    pub services: Vec<ServiceSiteHealth>,
}

/// The health of one service in one site, judged like a site but on that service's endpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSiteHealth {
    pub service: ServiceId,
    pub site: SiteId,
    /// Per-service failover state: `unhealthy` once the quorum saw the service's endpoints
    /// there down for `hold` while the site itself was healthy.
    pub state: ServiceState,
    /// When `state` was entered (leader time; 0 initially).
    pub since: Timestamp,
    pub consensus: Consensus,
    /// Since when `consensus` has been `down` without a break.
    pub down_since: Option<Timestamp>,
    /// Since when `consensus` has been `up` without a break.
    pub up_since: Option<Timestamp>,
    /// Per other observer site: the service's endpoints it sees down, out of how many.
    pub observers: Vec<ServiceObserver>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceObserver {
    pub observer_site: SiteId,
    pub nodes: Vec<NodeId>,
    pub endpoints_down: Vec<EndpointId>,
    pub endpoints_total: u32,
    pub counts_against: bool,
}
