//! An isolated observer never causes a loss: a site is declared down only if enough of its
//! endpoints truly failed recently, unless several faults combined (two structural faults at once, or another site
//! already down so that fewer observers are left to outvote a misled one).

use switchyard_core::detection::{DetectionEvent, DetectionInput};

use crate::fault::duration_ms;
use crate::world::World;

use super::Invariant;

#[derive(Debug)]
pub struct IsolatedObserverHarmless;

impl Invariant for IsolatedObserverHarmless {
    fn name(&self) -> &'static str {
        "isolated_observer_harmless"
    }

    fn after_apply(
        &mut self,
        world: &World,
        _input: &DetectionInput,
        events: &[DetectionEvent],
    ) -> Result<(), String> {
        let policy = &world.params.policy;
        let interval = duration_ms(policy.probe_interval);
        // Verdicts lag the truth by up to `rise` probes (plus a phase) on the way back up, and the
        // evidence must then hold for `hold`.
        let lag = duration_ms(policy.hold) + u64::from(policy.rise + 2) * interval + 1000;
        for transition in events.iter().filter_map(DetectionEvent::transition) {
            if !transition.to.is_down() {
                continue;
            }
            let from = world.now.saturating_sub(lag);
            let truly_down = world.site_truly_down_within(&transition.site, from, world.now);
            if truly_down {
                continue;
            }
            let structural: Vec<String> = world
                .faults
                .faults
                .iter()
                .filter(|fault| fault.structural() && fault.overlaps(from, world.now))
                .map(ToString::to_string)
                .collect();
            let other_down = world.params.judged_sites().any(|site| {
                site.id != transition.site
                    && world
                        .detector
                        .site(&site.id)
                        .is_some_and(|status| status.state.is_down())
            });
            if structural.len() < 2 && !other_down {
                return Err(format!(
                    "site {} went {} -> {} but was truly up since {from}ms; faults: [{}]; \
                     evidence: {}",
                    transition.site,
                    transition.from,
                    transition.to,
                    structural.join("; "),
                    transition.evidence
                ));
            }
        }
        Ok(())
    }
}
