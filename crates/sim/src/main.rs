//! Prints the trace of one simulated run: `cargo run -p switchyard-sim -- --seed N`.
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seed = match args.as_slice() {
        [flag, value] if flag == "--seed" => value.parse::<u64>().ok(),
        _ => None,
    };
    let Some(seed) = seed else {
        eprintln!("usage: switchyard-sim --seed N");
        return ExitCode::from(2);
    };
    let report = switchyard_sim::run_seed(seed, true);
    for line in &report.trace {
        println!("{line}");
    }
    println!(
        "seed {seed}: {} transitions, {} rejected proposals, {} losses over {}ms",
        report.transitions, report.rejections, report.losses, report.simulated_ms
    );
    match report.violation {
        Some(violation) => {
            println!("FAILED: {violation}");
            ExitCode::FAILURE
        }
        None => {
            println!("ok");
            ExitCode::SUCCESS
        }
    }
}
