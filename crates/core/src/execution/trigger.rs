//! What started an execution.

use serde::{Deserialize, Serialize};

use crate::id::{PrincipalName, ServiceId, SiteId};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionTrigger {
    /// The `SiteLost` event committed at log index `event_index`. At most one execution per event.
    SiteLost { site: SiteId, event_index: u64 },
    /// The `ServicesDown` event committed at `event_index`: `services` (those with endpoints in
    /// `site`) are down there while the site's controller still replicates.
    ServiceUnhealthy {
        site: SiteId,
        services: Vec<ServiceId>,
        event_index: u64,
    },
    /// An operator's run (the server checks the role; later, the work plan).
    Manual { principal: PrincipalName },
    /// A rehearsal on a healthy site, started by an operator: it really shifts traffic.
    Drill { principal: PrincipalName },
}

impl ExecutionTrigger {
    /// Whether the system started it on its own (no principal).
    pub fn is_automatic(&self) -> bool {
        matches!(
            self,
            ExecutionTrigger::SiteLost { .. } | ExecutionTrigger::ServiceUnhealthy { .. }
        )
    }

    /// The site-state event behind an automatic trigger: `(log index, site)`.
    pub fn event(&self) -> Option<(u64, &SiteId)> {
        match self {
            ExecutionTrigger::SiteLost { site, event_index }
            | ExecutionTrigger::ServiceUnhealthy {
                site, event_index, ..
            } => Some((*event_index, site)),
            ExecutionTrigger::Manual { .. } | ExecutionTrigger::Drill { .. } => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            ExecutionTrigger::SiteLost { .. } => "site_lost",
            ExecutionTrigger::ServiceUnhealthy { .. } => "service_unhealthy",
            ExecutionTrigger::Manual { .. } => "manual",
            ExecutionTrigger::Drill { .. } => "drill",
        }
    }
}
