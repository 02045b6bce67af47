//! A service is declared unhealthy in a site only while the site itself is healthy, and only
//! after the observers agreed, without a break, for at least `hold` that its endpoints there are
//! down (the site rule restated on that service's endpoints).

use std::collections::BTreeMap;

use switchyard_core::detection::{DetectionEvent, DetectionInput, ServiceState, SiteState};
use switchyard_core::{EndpointId, ServiceId, SiteId};

use crate::fault::duration_ms;
use crate::world::World;

use super::Invariant;
use super::quorum_agreed::agreed_down_on;

#[derive(Debug, Default)]
pub struct ServiceJudgedAlone {
    /// Since when the observers have agreed each (service, site) is down, without a break.
    down_since: BTreeMap<(ServiceId, SiteId), u64>,
}

impl Invariant for ServiceJudgedAlone {
    fn name(&self) -> &'static str {
        "service_judged_alone"
    }

    fn after_apply(
        &mut self,
        world: &World,
        input: &DetectionInput,
        events: &[DetectionEvent],
    ) -> Result<(), String> {
        let hold = duration_ms(world.params.policy.hold);
        for transition in events.iter().filter_map(DetectionEvent::service_transition) {
            if transition.to != ServiceState::Unhealthy {
                continue;
            }
            let site_state = world.detector.site(&transition.site).map(|s| s.state);
            if site_state != Some(SiteState::Healthy) {
                return Err(format!(
                    "service {} declared unhealthy in site {} while the site is {site_state:?}",
                    transition.service, transition.site
                ));
            }
            let key = (transition.service.clone(), transition.site.clone());
            let Some(since) = self.down_since.get(&key) else {
                return Err(format!(
                    "service {} in site {} declared unhealthy without observer agreement",
                    transition.service, transition.site
                ));
            };
            if world.now - since < hold {
                return Err(format!(
                    "service {} in site {} declared unhealthy after {}ms of agreement, less than \
                     hold {hold}ms",
                    transition.service,
                    transition.site,
                    world.now - since
                ));
            }
        }
        if matches!(input, DetectionInput::Tick { .. }) {
            return Ok(());
        }
        for (key, endpoints) in service_endpoints(world) {
            if agreed_down_on(world, &key.1, &endpoints) {
                self.down_since.entry(key).or_insert(world.now);
            } else {
                self.down_since.remove(&key);
            }
        }
        Ok(())
    }
}

/// (service, site) → that service's endpoints in the site.
fn service_endpoints(world: &World) -> BTreeMap<(ServiceId, SiteId), Vec<EndpointId>> {
    let mut map = BTreeMap::new();
    for site in world.params.judged_sites() {
        for (service, count) in &site.endpoints {
            let endpoints = (1..=*count)
                .map(|ordinal| EndpointId::of(service, &site.id, ordinal))
                .collect();
            map.insert((service.clone(), site.id.clone()), endpoints);
        }
    }
    map
}
