//! Runs the detection simulation over many seeds (`SIM_SEEDS`, default 2,000) or replays one
//! (`SIM_SEED`), failing with the seed and how to replay it.

use std::time::Instant;

use switchyard_sim::{RunReport, Violation, run_seed};

const DEFAULT_SEEDS: u64 = 2_000;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
}

fn failure_text(report: &RunReport) -> Option<String> {
    let violation = report.violation.as_ref()?;
    Some(format!(
        "seed {}: {violation}\n{}",
        report.seed,
        report.replay_hint()
    ))
}

/// Runs one seed, turning a panic (a broken assertion inside the detector) into a violation that
/// names the seed.
fn run_catching(seed: u64) -> RunReport {
    match std::panic::catch_unwind(|| run_seed(seed, false)) {
        Ok(report) => report,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_owned()))
                .unwrap_or_default();
            RunReport {
                seed,
                violation: Some(Violation {
                    invariant: "no_panic",
                    at: 0,
                    message: format!("the run panicked: {message}"),
                }),
                trace: Vec::new(),
                transitions: 0,
                rejections: 0,
                losses: 0,
                service_failovers: 0,
                detection_latencies_ms: Vec::new(),
                simulated_ms: 0,
            }
        }
    }
}

#[test]
fn detection_invariants_hold_for_every_seed() {
    if let Some(seed) = env_u64("SIM_SEED") {
        let report = run_seed(seed, true);
        if let Some(failure) = failure_text(&report) {
            panic!("{}\n{failure}", report.trace.join("\n"));
        }
        return;
    }
    let count = env_u64("SIM_SEEDS").unwrap_or(DEFAULT_SEEDS);
    let started = Instant::now();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(2)) as u64;
    let reports: Vec<RunReport> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                scope.spawn(move || {
                    (0..count)
                        .filter(|seed| seed % threads == thread)
                        .map(run_catching)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| handle.join().expect("a simulation thread panicked"))
            .collect()
    });
    for (label, pick) in [
        ("loss to declaration", 0),
        ("loss to declaration minus hold", 1),
    ] {
        let mut latencies: Vec<u64> = reports
            .iter()
            .flat_map(|report| report.detection_latencies_ms.iter())
            .map(|pair| if pick == 0 { pair.0 } else { pair.1 })
            .collect();
        latencies.sort_unstable();
        if let Some(max) = latencies.last() {
            let at = |fraction: f64| latencies[((latencies.len() - 1) as f64 * fraction) as usize];
            println!(
                "{label} over {} real losses: median {}ms, p99 {}ms, max {max}ms",
                latencies.len(),
                at(0.5),
                at(0.99)
            );
        }
    }
    let failures: Vec<String> = reports.iter().filter_map(failure_text).collect();
    let losses: u64 = reports.iter().map(|report| report.losses).sum();
    let transitions: u64 = reports.iter().map(|report| report.transitions).sum();
    let rejections: u64 = reports.iter().map(|report| report.rejections).sum();
    let service_failovers: u64 = reports.iter().map(|report| report.service_failovers).sum();
    println!(
        "{count} seeds in {:.1?}: {transitions} transitions, {losses} losses, \
         {service_failovers} service failovers, {rejections} rejected proposals, {} failures",
        started.elapsed(),
        failures.len()
    );
    assert_eq!(reports.len() as u64, count);
    assert!(
        failures.is_empty(),
        "{} of {count} seeds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The faults must really exercise detection: some runs lose sites.
    assert!(count < 50 || losses > 0, "no seed ever lost a site");
    // And some flapping endpoint stays down past `hold`: per-service failover is exercised.
    assert!(
        count < 50 || service_failovers > 0,
        "no seed ever failed a service over"
    );
}

#[test]
fn a_seed_replays_identically() {
    let first = run_seed(11, true);
    let second = run_seed(11, true);
    assert!(!first.trace.is_empty());
    assert_eq!(first.trace, second.trace);
    assert_eq!(first.violation, second.violation);
}
