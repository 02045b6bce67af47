//! A proposed or committed change of one site's (or one service's) state, with the evidence that
//! justifies it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::id::{ServiceId, SiteId};
use crate::time::Timestamp;

use super::evidence::Evidence;
use super::service_state::ServiceState;
use super::site_state::SiteState;

/// The leader proposes it ([`super::Detector::propose`]); every replica applies it only if it
/// derives exactly the same transition from its own state at `at` (the pair check).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteTransition {
    pub site: SiteId,
    pub from: SiteState,
    pub to: SiteState,
    pub evidence: Evidence,
    /// Leader time of the proposal; hold periods are measured up to it.
    pub at: Timestamp,
}

impl fmt::Display for SiteTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} -> {} at {}: {}",
            self.site, self.from, self.to, self.at, self.evidence
        )
    }
}

/// A proposed or committed change of one service's state in one site; pair-checked at apply
/// like a [`SiteTransition`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceTransition {
    pub service: ServiceId,
    pub site: SiteId,
    pub from: ServiceState,
    pub to: ServiceState,
    /// The evidence on the service's endpoints in the site only.
    pub evidence: Evidence,
    /// Leader time of the proposal.
    pub at: Timestamp,
}

impl fmt::Display for ServiceTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "service {} in {} {} -> {} at {}: {}",
            self.service, self.site, self.from, self.to, self.at, self.evidence
        )
    }
}
