//! Liveness: once the faults are gone, every site heals. At the end of the run every judged site
//! is healthy, every observer agrees, and no global outage is flagged.

use switchyard_core::detection::{Consensus, SiteState};

use crate::world::World;

use super::Invariant;

#[derive(Debug)]
pub struct Heals;

impl Invariant for Heals {
    fn name(&self) -> &'static str {
        "heals"
    }

    fn at_end(&mut self, world: &World) -> Result<(), String> {
        if let Some(sites) = world.detector.global_outage() {
            return Err(format!("a global outage of {sites:?} is still flagged"));
        }
        for site in world.params.judged_sites() {
            let status = world
                .detector
                .site(&site.id)
                .ok_or_else(|| format!("site {} unknown to the detector", site.id))?;
            if status.state != SiteState::Healthy || status.consensus != Consensus::Up {
                return Err(format!(
                    "site {} is still {} (consensus {}) after the faults ended",
                    site.id, status.state, status.consensus
                ));
            }
        }
        Ok(())
    }
}
