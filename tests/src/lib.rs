//! Shared harness for the integration tests: a cluster of real `switchyard serve` processes on
//! loopback ports, with helpers to kill, restart and wait on them.
//!
//! The tests run the `switchyard` binary that `scripts/test` builds first
//! (`cargo build -p switchyard-cli`); `SWITCHYARD_BIN` points elsewhere when set.
#![forbid(unsafe_code)]

mod bind;
mod cluster;
mod dig;
mod http_service;
mod wait;
mod webhook;

pub use bind::{Bind, add_bind_zone, require};
pub use cluster::{ClusterOptions, TestCluster, cluster_with_services};
pub use dig::{a_records, dig, dig_program};
pub use http_service::HttpService;
pub use wait::{Deadline, wait_until};
pub use webhook::{WebhookCall, WebhookReceiver};

use std::path::PathBuf;

/// The `switchyard` binary under test.
///
/// Panics with instructions when it has not been built: a test that cannot run its subject
/// must fail loudly, never pass.
pub fn switchyard_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("SWITCHYARD_BIN") {
        return PathBuf::from(path);
    }
    // The test executable lives in target/<profile>/deps/; the binary in target/<profile>/.
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps layout");
    let bin = profile_dir.join("switchyard");
    assert!(
        bin.is_file(),
        "{} is missing: build it first with `cargo build -p switchyard-cli` (scripts/test does), or set SWITCHYARD_BIN",
        bin.display()
    );
    bin
}
