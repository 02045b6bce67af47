//! Why detection refused a command: a value, not an error, since the leader simply retries later.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::id::{EndpointId, NodeId, ServiceId, SiteId};
use crate::time::Timestamp;

use super::service_state::ServiceState;
use super::site_state::SiteState;

/// Why no transition is due for a site right now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Blocked {
    /// Witness sites have no endpoints and are never judged.
    Witness,
    /// The evidence does not call for a change from the current state.
    NoChange,
    /// The evidence holds but not yet for long enough.
    HoldPending { until: Timestamp },
    /// Declaring this site down would leave no judged site serving; while every judged site looks
    /// down this is a global outage.
    LastServingSite,
    /// A service is judged on its own only while its site is `healthy` and does not look down.
    SiteNotHealthy,
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Blocked::Witness => f.write_str("witness sites are never judged"),
            Blocked::NoChange => f.write_str("the evidence calls for no change"),
            Blocked::HoldPending { until } => write!(f, "the evidence must hold until {until}"),
            Blocked::LastServingSite => f.write_str("no other judged site would be left serving"),
            Blocked::SiteNotHealthy => f.write_str("the site itself is not healthy"),
        }
    }
}

/// Why [`super::Detector::apply`] refused a command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    UnknownNode {
        node: NodeId,
    },
    UnknownEndpoint {
        endpoint: EndpointId,
    },
    UnknownSite {
        site: SiteId,
    },
    /// The site is no longer in the state the proposal started from.
    Stale {
        site: SiteId,
        current: SiteState,
        proposed_from: SiteState,
    },
    /// Replaying the evidence at the proposal's time calls for no transition.
    NotDue {
        site: SiteId,
        blocked: Blocked,
    },
    /// Replaying the evidence calls for another target state.
    OtherTarget {
        site: SiteId,
        expected: SiteState,
        proposed: SiteState,
    },
    /// Same transition, but the evidence changed since the proposal was made.
    EvidenceChanged {
        site: SiteId,
    },
    /// The service has no endpoints in that site.
    UnknownService {
        service: ServiceId,
        site: SiteId,
    },
    /// The service is no longer in the state the proposal started from.
    ServiceStale {
        service: ServiceId,
        site: SiteId,
        current: ServiceState,
        proposed_from: ServiceState,
    },
    /// Replaying the evidence at the proposal's time calls for no service transition.
    ServiceNotDue {
        service: ServiceId,
        site: SiteId,
        blocked: Blocked,
    },
    /// Replaying the evidence gives another service transition or other evidence.
    ServiceEvidenceChanged {
        service: ServiceId,
        site: SiteId,
    },
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::UnknownNode { node } => write!(f, "unknown node {node}"),
            Rejection::UnknownEndpoint { endpoint } => write!(f, "unknown endpoint `{endpoint}`"),
            Rejection::UnknownSite { site } => write!(f, "unknown site `{site}`"),
            Rejection::Stale {
                site,
                current,
                proposed_from,
            } => write!(
                f,
                "stale proposal: site `{site}` is {current}, not {proposed_from}"
            ),
            Rejection::NotDue { site, blocked } => {
                write!(f, "no transition due for site `{site}`: {blocked}")
            }
            Rejection::OtherTarget {
                site,
                expected,
                proposed,
            } => write!(f, "site `{site}` should go to {expected}, not {proposed}"),
            Rejection::EvidenceChanged { site } => {
                write!(
                    f,
                    "the evidence on site `{site}` changed since the proposal"
                )
            }
            Rejection::UnknownService { service, site } => {
                write!(f, "service `{service}` has no endpoints in site `{site}`")
            }
            Rejection::ServiceStale {
                service,
                site,
                current,
                proposed_from,
            } => write!(
                f,
                "stale proposal: service `{service}` in site `{site}` is {current}, not {proposed_from}"
            ),
            Rejection::ServiceNotDue {
                service,
                site,
                blocked,
            } => write!(
                f,
                "no transition due for service `{service}` in site `{site}`: {blocked}"
            ),
            Rejection::ServiceEvidenceChanged { service, site } => write!(
                f,
                "the evidence on service `{service}` in site `{site}` changed since the proposal"
            ),
        }
    }
}
