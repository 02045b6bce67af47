//! At least one judged site is always left standing (neither lost nor services-down), and
//! witness sites are never judged.

use switchyard_core::detection::SiteState;

use crate::world::World;

use super::Invariant;

#[derive(Debug)]
pub struct SurvivorKept;

impl Invariant for SurvivorKept {
    fn name(&self) -> &'static str {
        "survivor_kept"
    }

    fn after_step(&mut self, world: &World) -> Result<(), String> {
        let mut standing = 0;
        for site in &world.params.sites {
            let state = world
                .detector
                .site(&site.id)
                .map(|status| status.state)
                .ok_or_else(|| format!("site {} unknown to the detector", site.id))?;
            if site.witness && state != SiteState::Healthy {
                return Err(format!("witness site {} is {state}", site.id));
            }
            if !site.witness && !state.is_down() {
                standing += 1;
            }
        }
        if standing == 0 {
            return Err("every judged site is lost or services-down".to_owned());
        }
        Ok(())
    }
}
