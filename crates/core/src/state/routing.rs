//! Applying routing changes: the second half of the pair check on the safety rules.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{Outcome, Rejection, State};
use crate::detection::SiteState;
use crate::id::SiteId;
use crate::routing::{Routing, RoutingChange};

/// The routing in force, the sites it must avoid, and the log index of its last change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingState {
    pub routing: Routing,
    /// Sites currently `lost`: never routed to.
    pub lost: BTreeSet<SiteId>,
    /// Log index of the last accepted routing change (0 before any): the zones' SOA serial.
    pub changed_index: u64,
}

impl RoutingState {
    pub(super) fn note_site_state(&mut self, site: &SiteId, state: SiteState) {
        if state == SiteState::Lost {
            self.lost.insert(site.clone());
        } else {
            self.lost.remove(site);
        }
    }
}

pub(super) fn summary(change: &RoutingChange, reason: &str) -> String {
    let described = match change {
        RoutingChange::AwayFrom { services, site } => {
            format!("{} away from {site}", join(services))
        }
        RoutingChange::Restore { services, site } => {
            format!("{} restored to {site}", join(services))
        }
        RoutingChange::To { services, sites } => format!("{} to [{}]", join(services), join(sites)),
    };
    format!("routing: {described} ({reason})")
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl State {
    pub(super) fn apply_routing(&mut self, index: u64, change: &RoutingChange) -> Outcome {
        let Some(config) = self.config.as_ref() else {
            return Outcome::Rejected(Rejection::NoConfig);
        };
        let state = &mut self.routing;
        match state
            .routing
            .with_change(&config.config, change, &state.lost)
        {
            Ok(next) => {
                state.routing = next;
                state.changed_index = index;
                Outcome::Accepted
            }
            Err(violations) => Outcome::Rejected(Rejection::Safety(violations)),
        }
    }
}
