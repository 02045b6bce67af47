//! Sites move only along the state machine's edges, one at a time, and never faster than the
//! hysteresis allows: `recovering -> healthy` only after `recover_hold` in `recovering`.

use std::collections::BTreeMap;

use switchyard_core::SiteId;
use switchyard_core::detection::{DetectionEvent, DetectionInput, SiteState};

use crate::fault::duration_ms;
use crate::world::World;

use super::Invariant;

#[derive(Debug, Default)]
pub struct Hysteresis {
    /// Each site's state as seen through the events, and when it was entered.
    entered: BTreeMap<SiteId, (SiteState, u64)>,
}

fn allowed(from: SiteState, to: SiteState) -> bool {
    use SiteState::*;
    matches!(
        (from, to),
        (Healthy, Suspect)
            | (Suspect, Healthy | Lost | ServicesDown)
            | (ServicesDown, Lost | Recovering)
            | (Lost, Recovering)
            | (Recovering, Healthy | Lost | ServicesDown)
    )
}

impl Invariant for Hysteresis {
    fn name(&self) -> &'static str {
        "hysteresis"
    }

    fn after_apply(
        &mut self,
        world: &World,
        _input: &DetectionInput,
        events: &[DetectionEvent],
    ) -> Result<(), String> {
        let recover_hold = duration_ms(world.params.policy.recover_hold);
        for transition in events.iter().filter_map(DetectionEvent::transition) {
            let (state, entered) = self
                .entered
                .get(&transition.site)
                .copied()
                .unwrap_or((SiteState::Healthy, 0));
            if state != transition.from || !allowed(transition.from, transition.to) {
                return Err(format!(
                    "site {} went {} -> {} while it was {state}",
                    transition.site, transition.from, transition.to
                ));
            }
            if transition.from == SiteState::Recovering
                && transition.to == SiteState::Healthy
                && world.now - entered < recover_hold
            {
                return Err(format!(
                    "site {} recovered after {}ms in recovering, less than recover_hold {}ms",
                    transition.site,
                    world.now - entered,
                    recover_hold
                ));
            }
            if transition.at.as_millis() != world.now {
                return Err(format!(
                    "transition of {} stamped {} applied at {}ms",
                    transition.site, transition.at, world.now
                ));
            }
            self.entered
                .insert(transition.site.clone(), (transition.to, world.now));
        }
        Ok(())
    }
}
