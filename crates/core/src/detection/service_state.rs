//! One service's detection state in one site: per-service failover while the site is fine.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

use super::evidence::Consensus;

/// The state of one service in one site.
///
/// ```text
/// healthy -> unhealthy -> healthy
/// ```
///
/// `healthy -> unhealthy` needs the quorum to see the service's endpoints down for `hold` while
/// the site itself is `healthy` and not looking down (a whole-site loss is the site's business);
/// `unhealthy -> healthy` needs the quorum to see them up for `recover_hold`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceState {
    Healthy,
    Unhealthy,
}

impl ServiceState {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceState::Healthy => "healthy",
            ServiceState::Unhealthy => "unhealthy",
        }
    }
}

impl fmt::Display for ServiceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What detection keeps for one service in one site.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub state: ServiceState,
    /// When `state` was entered (the `at` of the transition; 0 for the initial state).
    pub since: Timestamp,
    /// The observer sites' current consensus on the service's endpoints in the site.
    pub consensus: Consensus,
    /// Since when `consensus` has been `down` without a break.
    pub down_since: Option<Timestamp>,
    /// Since when `consensus` has been `up` without a break.
    pub up_since: Option<Timestamp>,
}

impl ServiceStatus {
    pub(crate) fn new() -> Self {
        Self {
            state: ServiceState::Healthy,
            since: Timestamp(0),
            consensus: Consensus::Up,
            down_since: None,
            up_since: Some(Timestamp(0)),
        }
    }
}
