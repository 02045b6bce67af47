//! Integration tests of the DNS providers against real programs: BIND 9 (`named`), Knot DNS
//! (`knotd`) and `dig`. Missing programs fail the tests with the Debian package to install.

mod bind;
mod contract;
mod embedded;
mod harness;
mod knot;
mod verify;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use switchyard_core::config::RecordType;
use switchyard_providers::RrsetChange;

/// A change of `name` (relative to the test zone) to `values`, TTL 30 s.
pub fn change(name: &str, record_type: RecordType, values: &[&str]) -> RrsetChange {
    RrsetChange {
        name: format!("{name}.{}", harness::ZONE),
        record_type,
        ttl: Duration::from_secs(30),
        values: values
            .iter()
            .map(|value| value.parse::<IpAddr>().expect("address"))
            .collect::<BTreeSet<_>>(),
    }
}

/// Sorted strings, to compare with `dig +short` output.
pub fn sorted(values: &[&str]) -> Vec<String> {
    let mut values: Vec<String> = values.iter().map(|value| (*value).to_owned()).collect();
    values.sort();
    values
}

#[test]
fn missing_program_fails_with_the_package_to_install() {
    let panic =
        std::panic::catch_unwind(|| harness::require("switchyard-no-such-program", "some-package"))
            .expect_err("a missing program must fail the test");
    let message = panic.downcast_ref::<String>().expect("panic message");
    assert!(
        message.contains("apt-get install -y some-package"),
        "{message}"
    );
}
