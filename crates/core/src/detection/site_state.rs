//! A site's detection state and the record kept for it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

use super::evidence::Consensus;

/// The state of one site.
///
/// ```text
/// healthy -> suspect -> lost ----------> recovering -> healthy
///               |    \-> services_down -/     |
///               v           |                 +-> lost | services_down (recovery aborted)
///            healthy        +-> lost (its controller stopped replicating)
/// ```
///
/// `services_down` exists only under `lost_requires_controller_down: true`: the site's services
/// are down by the same evidence as a loss, but its controller still replicates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SiteState {
    Healthy,
    Suspect,
    Lost,
    ServicesDown,
    Recovering,
}

impl SiteState {
    /// Whether this is one of the two states a loss decision leads to.
    pub fn is_down(self) -> bool {
        matches!(self, SiteState::Lost | SiteState::ServicesDown)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SiteState::Healthy => "healthy",
            SiteState::Suspect => "suspect",
            SiteState::Lost => "lost",
            SiteState::ServicesDown => "services_down",
            SiteState::Recovering => "recovering",
        }
    }
}

impl fmt::Display for SiteState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What detection keeps for one site.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteStatus {
    pub state: SiteState,
    /// When `state` was entered (the `at` of the transition; 0 for the initial state).
    pub since: Timestamp,
    /// The observer sites' current consensus on this site (`up` for a witness).
    pub consensus: Consensus,
    /// Since when `consensus` has been `down` without a break.
    pub down_since: Option<Timestamp>,
    /// Since when `consensus` has been `up` without a break.
    pub up_since: Option<Timestamp>,
    /// The last time this site was declared lost (from `suspect` or `services_down`).
    pub last_lost_at: Option<Timestamp>,
}

impl SiteStatus {
    pub(crate) fn new() -> Self {
        Self {
            state: SiteState::Healthy,
            since: Timestamp(0),
            consensus: Consensus::Up,
            down_since: None,
            up_since: Some(Timestamp(0)),
            last_lost_at: None,
        }
    }
}
