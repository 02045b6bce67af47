//! The commands detection applies; each becomes a Raft command, stamped by whoever proposes it.

use serde::{Deserialize, Serialize};

use crate::id::{EndpointId, NodeId};
use crate::time::Timestamp;

use super::transition::{ServiceTransition, SiteTransition};
use super::verdict::Verdict;

/// A command for [`super::Detector::apply`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectionInput {
    VerdictChanged(VerdictChanged),
    ControllerContact(ControllerContact),
    /// The leader's clock moved on. Hold periods count from detection's clock, which only leader
    /// stamps advance (ticks, contacts, transitions), so the leader should tick about every
    /// `confirm_interval` while anything is in flight; evidence timed between two ticks then counts
    /// from the earlier tick or from its own `since`, whichever is later.
    Tick {
        now: Timestamp,
    },
    SiteTransition(SiteTransition),
    /// Per-service failover; the leader proposes it from [`super::Detector::propose_services`].
    ServiceTransition(ServiceTransition),
}

/// A node's verdict on an endpoint flipped. Nodes propose only flips, so the log holds who saw
/// what, when, at low volume. A verdict equal to the one already recorded is a no-op (a retry).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerdictChanged {
    pub observer: NodeId,
    pub endpoint: EndpointId,
    pub verdict: Verdict,
    /// The observer's time of the probe that completed the rise/fall count.
    pub since: Timestamp,
    pub last_error: Option<String>,
    pub latency_ms: Option<u32>,
}

/// The leader started or stopped hearing from a controller node. A node's verdicts count only
/// while it replicates, and a site's controller is reachable while any of its nodes is.
/// Every node is assumed reachable until told otherwise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerContact {
    pub node: NodeId,
    pub reachable: bool,
    /// Leader time.
    pub at: Timestamp,
}
