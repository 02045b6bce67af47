//! Evidence: what the observer sites saw of a site, recomputed exactly from the verdict matrix.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::id::{EndpointId, NodeId, ServiceId, SiteId};
use crate::time::Timestamp;

use super::verdict::Verdict;

/// What the observer sites agree on about one site (or one service in one site).
///
/// With `against` observer sites counting the site down and `for` seeing it up:
/// `down` when `against >= observer_sites_min` and `against > for`; `up` when
/// `for >= observer_sites_min` and `for > against`; otherwise `undecided`. The majority clause is
/// what makes one isolated observer harmless: it sees everything down, but every other observer
/// outvotes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Consensus {
    Up,
    Down,
    Undecided,
}

impl fmt::Display for Consensus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Consensus::Up => "up",
            Consensus::Down => "down",
            Consensus::Undecided => "undecided",
        })
    }
}

/// What one observer site sees of one judged site.
///
/// Several nodes in one observer site combine by strict majority: an endpoint is down for the
/// observer site when more than half of its *replicating* nodes hold a `down` verdict on it.
/// Nodes the leader does not hear from are left out, since their verdicts are stale; a site with
/// none left has no view and is not listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObserverView {
    pub site: SiteId,
    /// The replicating nodes whose verdicts were combined.
    pub nodes: Vec<NodeId>,
    /// The judged site's endpoints this observer site sees down.
    pub endpoints_down: Vec<EndpointId>,
    pub endpoints_total: u32,
    /// Whether `endpoints_down` reaches `endpoints_down_fraction` of `endpoints_total`.
    pub counts_against: bool,
}

/// The evidence committed with a site transition. Every field is a function of the replicated
/// inputs, so apply recomputes it and accepts a proposal only when both agree (the pair check).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub consensus: Consensus,
    /// Since when `consensus` has held without a break (leader time).
    pub consensus_since: Option<Timestamp>,
    /// Every other, non-lost observer site with a view, in site order.
    pub observers: Vec<ObserverView>,
    /// The earliest `since` among the `down` verdicts of the observer sites counting against.
    pub first_failure: Option<Timestamp>,
    /// Whether any of the judged site's own controller nodes still replicates.
    pub controller_reachable: bool,
    /// While the `failover_cooldown` of the site's last loss still runs at the transition's time:
    /// when it ends. A `SiteLost` carrying it should not start automatic failover again.
    pub cooldown_until: Option<Timestamp>,
}

impl Evidence {
    /// The observer sites counting against the judged site.
    pub fn sites_against(&self) -> impl Iterator<Item = &SiteId> {
        self.observers
            .iter()
            .filter(|view| view.counts_against)
            .map(|view| &view.site)
    }

    /// The observer sites seeing the judged site up.
    pub fn sites_for(&self) -> impl Iterator<Item = &SiteId> {
        self.observers
            .iter()
            .filter(|view| !view.counts_against)
            .map(|view| &view.site)
    }
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "consensus={}", self.consensus)?;
        if let Some(since) = self.consensus_since {
            write!(f, " since={since}")?;
        }
        f.write_str(" observers=[")?;
        for (index, view) in self.observers.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            let nodes: Vec<String> = view.nodes.iter().map(ToString::to_string).collect();
            write!(
                f,
                "{}{}(n{}) {}/{} down",
                if view.counts_against { "-" } else { "+" },
                view.site,
                nodes.join(","),
                view.endpoints_down.len(),
                view.endpoints_total
            )?;
            if !view.endpoints_down.is_empty() {
                let endpoints: Vec<&str> =
                    view.endpoints_down.iter().map(EndpointId::as_str).collect();
                write!(f, " {{{}}}", endpoints.join(" "))?;
            }
        }
        f.write_str("]")?;
        if let Some(first_failure) = self.first_failure {
            write!(f, " first_failure={first_failure}")?;
        }
        write!(f, " controller_reachable={}", self.controller_reachable)?;
        if let Some(until) = self.cooldown_until {
            write!(f, " cooldown_until={until}")?;
        }
        Ok(())
    }
}

/// The health of one service in one site, judged like a site but on that service's endpoints only
/// (the basis of per-service failover, trigger `service_unhealthy`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceHealth {
    pub service: ServiceId,
    pub site: SiteId,
    pub consensus: Consensus,
    pub observers: Vec<ObserverView>,
}

/// One observer site's row of the evidence matrix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObserverRow {
    /// The site's replicating nodes; their verdicts are combined by strict majority.
    pub nodes: Vec<NodeId>,
    /// Whether this site's view counts at all: it has a replicating node and is not lost.
    pub counted: bool,
    /// The combined verdict on every endpoint of every other site (empty without nodes).
    pub verdicts: BTreeMap<EndpointId, Verdict>,
}

/// Observer site × endpoint → combined verdict: the view the API shows under `GET /v1/sites`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceMatrix {
    pub observers: BTreeMap<SiteId, ObserverRow>,
}
