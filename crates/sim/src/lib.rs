//! Seeded, deterministic simulation of site-loss detection.
//!
//! One seed chooses everything: the sites (some witnesses), their nodes and endpoints, the
//! detection policy and a schedule of faults (single failed probes, flapping endpoints, an
//! observer site whose probes are cut off, a site whose controller is partitioned away, whole-site
//! losses and their recovery). A simulated clock advances in `confirm_interval` steps; every node
//! probes every endpoint through the real [`switchyard_core::detection::VerdictCounter`], commits
//! verdict flips while it replicates, and the simulation plays leader over the real
//! [`switchyard_core::detection::Detector`]. The invariants in [`invariants`] are checked after
//! every applied command. A safety phase with faults is followed by a liveness phase without
//! them, where everything must heal.
//!
//! Replay one seed: `SIM_SEED=123 cargo test -p switchyard-sim`, or print its trace with
//! `cargo run -p switchyard-sim -- --seed 123`.
#![forbid(unsafe_code)]

pub mod fault;
pub mod invariants;
pub mod params;
pub mod run;
pub mod world;

pub use run::{RunReport, Violation, run_seed};
