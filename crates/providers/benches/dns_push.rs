//! Benchmark: time to push 1, 100 and 10,000 records in one change to a real BIND 9 with
//! TSIG-signed RFC 2136 updates, and to verify that BIND serves them. Prints figures; asserts
//! only that the push succeeded and verification converged.
//!
//! Run with `cargo bench -p switchyard-providers --bench dns_push`.
#![forbid(unsafe_code)]

// The bench shares the integration tests' BIND harness; it does not use all of it.
#[allow(dead_code)]
#[path = "../tests/dns/harness.rs"]
mod harness;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use switchyard_core::config::RecordType;
use switchyard_core::id::ZoneName;
use switchyard_core::routing::{Rrset, RrsetKey};
use switchyard_providers::{Rfc2136Provider, RrsetChange, verify};

use harness::{DnsServer, ZONE};

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    println!(
        "push and verify N records (one A record per name) in one change to BIND 9, TSIG hmac-sha256"
    );
    for count in [1_u32, 100, 10_000] {
        let bind = DnsServer::bind();
        runtime.block_on(run(&bind, count));
    }
}

async fn run(bind: &DnsServer, count: u32) {
    let zone = ZoneName::new(ZONE);
    let ttl = Duration::from_secs(30);
    let expected: BTreeMap<RrsetKey, Rrset> = (0..count)
        .map(|n| {
            let address = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n + 1));
            (
                RrsetKey {
                    zone: zone.clone(),
                    name: format!("host{n}.{ZONE}"),
                    record_type: RecordType::A,
                },
                Rrset {
                    ttl,
                    values: [address].into_iter().collect(),
                },
            )
        })
        .collect();
    let changes = RrsetChange::by_zone(&expected)
        .remove(&zone)
        .unwrap_or_default();
    let provider = Rfc2136Provider::new(bind.addr(), bind.update_key(), Duration::from_secs(30))
        .expect("provider");

    let started = Instant::now();
    let report = provider.push(&zone, &changes).await.expect("push accepted");
    let pushed = started.elapsed();
    let verified = verify(
        &expected,
        &[bind.addr()],
        &[],
        Duration::from_secs(120),
        Duration::from_millis(20),
    )
    .await;
    let total = started.elapsed();
    assert!(
        verified.converged,
        "verification did not converge for {count} records"
    );
    let queries: u32 = verified.checks.iter().map(|check| check.queries).sum();
    let transport = report
        .transport
        .map_or_else(|| "-".to_owned(), |transport| transport.to_string());
    println!(
        "{count:>6} records: push {pushed:>10.1?} ({} message(s), {} bytes, {transport}) | verify {:>10.1?} ({queries} queries) | push+verify {total:>10.1?}",
        report.messages, report.message_bytes, verified.elapsed,
    );
}
