//! The properties every simulated run must keep, one file per property.

mod detected_in_window;
mod heals;
mod hysteresis;
mod isolated_observer_harmless;
mod quorum_agreed;
mod service_judged_alone;
mod survivor_kept;

use switchyard_core::detection::{DetectionEvent, DetectionInput};

use crate::world::World;

pub use detected_in_window::DetectedInWindow;
pub use heals::Heals;
pub use hysteresis::Hysteresis;
pub use isolated_observer_harmless::IsolatedObserverHarmless;
pub use quorum_agreed::QuorumAgreed;
pub use service_judged_alone::ServiceJudgedAlone;
pub use survivor_kept::SurvivorKept;

/// A property of the run. Each hook returns a description of the violation, if any.
pub trait Invariant {
    fn name(&self) -> &'static str;

    /// After every applied command, with the facts it produced.
    fn after_apply(
        &mut self,
        _world: &World,
        _input: &DetectionInput,
        _events: &[DetectionEvent],
    ) -> Result<(), String> {
        Ok(())
    }

    /// After every step of the clock.
    fn after_step(&mut self, _world: &World) -> Result<(), String> {
        Ok(())
    }

    /// Once, at the end of the liveness phase.
    fn at_end(&mut self, _world: &World) -> Result<(), String> {
        Ok(())
    }
}

/// Every invariant, fresh for one run.
pub fn all() -> Vec<Box<dyn Invariant>> {
    vec![
        Box::new(QuorumAgreed::default()),
        Box::new(SurvivorKept),
        Box::new(Hysteresis::default()),
        Box::new(DetectedInWindow::default()),
        Box::new(IsolatedObserverHarmless),
        Box::new(Heals),
        Box::new(ServiceJudgedAlone::default()),
    ]
}
