//! No site is declared down unless at least `observer_sites_min` other, non-lost observer sites
//! (and a majority of those with a view) agreed, without a break, for at least `hold`.
//!
//! The agreement is recomputed here from what the simulation committed, independently of the
//! detector's own bookkeeping.

use std::collections::BTreeMap;

use switchyard_core::detection::{DetectionEvent, DetectionInput, SiteState, Verdict};
use switchyard_core::{EndpointId, SiteId};

use crate::fault::duration_ms;
use crate::world::World;

use super::Invariant;

#[derive(Debug, Default)]
pub struct QuorumAgreed {
    /// Since when the observers have agreed each site is down, without a break.
    down_since: BTreeMap<SiteId, u64>,
}

impl Invariant for QuorumAgreed {
    fn name(&self) -> &'static str {
        "quorum_agreed"
    }

    fn after_apply(
        &mut self,
        world: &World,
        input: &DetectionInput,
        events: &[DetectionEvent],
    ) -> Result<(), String> {
        let hold = duration_ms(world.params.policy.hold);
        for transition in events.iter().filter_map(DetectionEvent::transition) {
            if !transition.to.is_down() {
                continue;
            }
            let Some(since) = self.down_since.get(&transition.site) else {
                return Err(format!(
                    "site {} went {} -> {} without observer agreement",
                    transition.site, transition.from, transition.to
                ));
            };
            if world.now - since < hold {
                return Err(format!(
                    "site {} went {} -> {} after {}ms of agreement, less than hold {}ms",
                    transition.site,
                    transition.from,
                    transition.to,
                    world.now - since,
                    hold
                ));
            }
        }
        // Ticks only move the clock: agreement cannot change.
        if matches!(input, DetectionInput::Tick { .. }) {
            return Ok(());
        }
        for site in world.params.judged_sites() {
            if agreed_down(world, &site.id) {
                self.down_since.entry(site.id.clone()).or_insert(world.now);
            } else {
                self.down_since.remove(&site.id);
            }
        }
        Ok(())
    }
}

/// The rule, restated: other non-lost sites with a replicating node vote, each by strict majority
/// of its replicating nodes per endpoint and `endpoints_down_fraction` per site.
fn agreed_down(world: &World, target: &SiteId) -> bool {
    let endpoints = world
        .site_endpoints
        .get(target)
        .map_or(&[][..], Vec::as_slice);
    agreed_down_on(world, target, endpoints)
}

/// The same rule on some of `target`'s endpoints (one service's, for per-service failover).
pub(super) fn agreed_down_on(world: &World, target: &SiteId, endpoints: &[EndpointId]) -> bool {
    let policy = &world.params.policy;
    let (mut against, mut agree_for) = (0_u32, 0_u32);
    for (observer, nodes) in &world.site_nodes {
        let lost = world
            .detector
            .site(observer)
            .is_some_and(|status| status.state == SiteState::Lost);
        if observer == target || lost {
            continue;
        }
        let live: Vec<_> = nodes
            .iter()
            .filter(|node| world.reachable.get(node) == Some(&true))
            .collect();
        if live.is_empty() {
            continue;
        }
        let down = endpoints
            .iter()
            .filter(|endpoint| {
                let saying_down = live
                    .iter()
                    .filter(|node| {
                        world
                            .committed
                            .get(node)
                            .and_then(|verdicts| verdicts.get(*endpoint))
                            == Some(&Verdict::Down)
                    })
                    .count();
                2 * saying_down > live.len()
            })
            .count();
        if down > 0 && down as f64 >= policy.endpoints_down_fraction * endpoints.len() as f64 {
            against += 1;
        } else {
            agree_for += 1;
        }
    }
    against >= policy.observer_sites_min.max(1) && against > agree_for
}
