//! Facts detection reports when it applies a command, each carrying its evidence.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::id::SiteId;
use crate::time::Timestamp;

use super::transition::{ServiceTransition, SiteTransition};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectionEvent {
    /// `healthy -> suspect`: enough observer sites see the site down.
    SiteSuspected(SiteTransition),
    /// `suspect -> healthy`: the evidence cleared before `hold` passed.
    SuspicionCleared(SiteTransition),
    /// `suspect | services_down -> lost`: site-lost runbooks may run (see `cooldown_until`).
    SiteLost(SiteTransition),
    /// `suspect -> services_down`: under `lost_requires_controller_down`, the site's services are
    /// down while its controller still replicates; service-unhealthy runbooks may run.
    ServicesDown(SiteTransition),
    /// `lost | services_down -> recovering`: enough observer sites see the site up again.
    SiteRecovering(SiteTransition),
    /// `recovering -> lost | services_down`: the site went down again before `recover_hold`.
    RecoveryAborted(SiteTransition),
    /// `recovering -> healthy`: up for `recover_hold` without a break. Failback stays manual.
    SiteRecovered(SiteTransition),
    /// Every non-lost, judged site looks down at once: no site will be declared lost while this
    /// lasts. An alert, not a failover.
    GlobalOutageDetected {
        at: Timestamp,
        sites: Vec<SiteId>,
    },
    GlobalOutageCleared {
        at: Timestamp,
    },
    /// Service `healthy -> unhealthy`: the quorum saw the service's endpoints in the site down for
    /// `hold` while the site itself is healthy; service-unhealthy runbooks may run.
    ServiceUnhealthy(ServiceTransition),
    /// Service `unhealthy -> healthy`: its endpoints were up for `recover_hold`. Failback stays
    /// manual.
    ServiceRecovered(ServiceTransition),
}

impl DetectionEvent {
    /// The transition behind this event, if it reports one.
    pub fn transition(&self) -> Option<&SiteTransition> {
        match self {
            DetectionEvent::SiteSuspected(transition)
            | DetectionEvent::SuspicionCleared(transition)
            | DetectionEvent::SiteLost(transition)
            | DetectionEvent::ServicesDown(transition)
            | DetectionEvent::SiteRecovering(transition)
            | DetectionEvent::RecoveryAborted(transition)
            | DetectionEvent::SiteRecovered(transition) => Some(transition),
            DetectionEvent::GlobalOutageDetected { .. }
            | DetectionEvent::GlobalOutageCleared { .. }
            | DetectionEvent::ServiceUnhealthy(_)
            | DetectionEvent::ServiceRecovered(_) => None,
        }
    }

    /// The per-service transition behind this event, if it reports one.
    pub fn service_transition(&self) -> Option<&ServiceTransition> {
        match self {
            DetectionEvent::ServiceUnhealthy(transition)
            | DetectionEvent::ServiceRecovered(transition) => Some(transition),
            _ => None,
        }
    }

    /// The site the event is about and its time, for site and service events alike.
    pub fn site_and_time(&self) -> Option<(&SiteId, Timestamp)> {
        if let Some(transition) = self.transition() {
            return Some((&transition.site, transition.at));
        }
        self.service_transition()
            .map(|transition| (&transition.site, transition.at))
    }

    pub fn name(&self) -> &'static str {
        match self {
            DetectionEvent::SiteSuspected(_) => "SiteSuspected",
            DetectionEvent::SuspicionCleared(_) => "SuspicionCleared",
            DetectionEvent::SiteLost(_) => "SiteLost",
            DetectionEvent::ServicesDown(_) => "ServicesDown",
            DetectionEvent::SiteRecovering(_) => "SiteRecovering",
            DetectionEvent::RecoveryAborted(_) => "RecoveryAborted",
            DetectionEvent::SiteRecovered(_) => "SiteRecovered",
            DetectionEvent::GlobalOutageDetected { .. } => "GlobalOutageDetected",
            DetectionEvent::GlobalOutageCleared { .. } => "GlobalOutageCleared",
            DetectionEvent::ServiceUnhealthy(_) => "ServiceUnhealthy",
            DetectionEvent::ServiceRecovered(_) => "ServiceRecovered",
        }
    }
}

impl fmt::Display for DetectionEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DetectionEvent::GlobalOutageDetected { at, sites } => {
                let sites: Vec<&str> = sites.iter().map(SiteId::as_str).collect();
                write!(f, "GlobalOutageDetected at {at}: [{}]", sites.join(", "))
            }
            DetectionEvent::GlobalOutageCleared { at } => write!(f, "GlobalOutageCleared at {at}"),
            DetectionEvent::ServiceUnhealthy(transition)
            | DetectionEvent::ServiceRecovered(transition) => {
                write!(f, "{} {transition}", self.name())
            }
            other => match other.transition() {
                Some(transition) => write!(f, "{} {transition}", other.name()),
                None => f.write_str(other.name()),
            },
        }
    }
}
