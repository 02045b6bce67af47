//! One seeded run, start to finish.

use std::fmt;

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::fault::FaultPlan;
use crate::invariants;
use crate::params::SimParams;
use crate::world::World;

/// An invariant broken during a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub invariant: &'static str,
    /// Simulated time of the violation, in ms.
    pub at: u64,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invariant `{}` violated at {}ms: {}",
            self.invariant, self.at, self.message
        )
    }
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub seed: u64,
    pub violation: Option<Violation>,
    /// The trace, when asked for: parameters, faults, verdict flips, events, rejections.
    pub trace: Vec<String>,
    pub transitions: u64,
    pub rejections: u64,
    pub losses: u64,
    /// `ServiceUnhealthy` events (a flapping endpoint down for longer than `hold`).
    pub service_failovers: u64,
    /// For each site declared down during a real loss: the time from the loss to the declaration,
    /// and the part of it beyond `hold`.
    pub detection_latencies_ms: Vec<(u64, u64)>,
    /// Simulated time covered, in ms.
    pub simulated_ms: u64,
}

impl RunReport {
    /// How to replay this run.
    pub fn replay_hint(&self) -> String {
        format!(
            "replay: SIM_SEED={seed} cargo test -p switchyard-sim   \
             (trace: cargo run -p switchyard-sim -- --seed {seed})",
            seed = self.seed
        )
    }
}

/// Runs the simulation for `seed`: everything it does follows from the seed.
pub fn run_seed(seed: u64, trace: bool) -> RunReport {
    let mut rng = StdRng::seed_from_u64(seed);
    let params = SimParams::generate(seed, &mut rng);
    let faults = FaultPlan::generate(&params, &mut rng);
    let end = faults.end;
    let mut world = World::new(params, faults, rng, trace);
    let mut invariants = invariants::all();
    let mut violation = None;
    // Bounded: the clock advances one step per iteration up to `end`.
    while world.now < end {
        if let Err(broken) = world.step(&mut invariants) {
            violation = Some(broken);
            break;
        }
    }
    if violation.is_none() {
        for invariant in &mut invariants {
            if let Err(message) = invariant.at_end(&world) {
                violation = Some(Violation {
                    invariant: invariant.name(),
                    at: world.now,
                    message,
                });
                break;
            }
        }
    }
    RunReport {
        seed,
        violation,
        trace: world.trace.take().unwrap_or_default(),
        transitions: world.transitions,
        rejections: world.rejections,
        losses: world.losses,
        service_failovers: world.service_failovers,
        detection_latencies_ms: std::mem::take(&mut world.detection_latencies_ms),
        simulated_ms: world.now,
    }
}
