//! Verification against real BIND and the embedded server.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use switchyard_core::config::RecordType;
use switchyard_core::id::ZoneName;
use switchyard_core::routing::{Rrset, RrsetKey};
use switchyard_providers::{
    EmbeddedDns, Rfc2136Provider, ServerRole, ZoneData, ZoneSnapshot, verify,
};

use crate::change;
use crate::harness::{DnsServer, ZONE};

fn expected(values: &[&str]) -> BTreeMap<RrsetKey, Rrset> {
    BTreeMap::from([(
        RrsetKey {
            zone: ZoneName::new(ZONE),
            name: "www.test.example.".to_owned(),
            record_type: RecordType::A,
        },
        Rrset {
            ttl: Duration::from_secs(30),
            values: values
                .iter()
                .map(|value| value.parse::<IpAddr>().unwrap())
                .collect(),
        },
    )])
}

async fn push(server: &DnsServer, values: &[&str]) {
    Rfc2136Provider::new(server.addr(), server.update_key(), Duration::from_secs(2))
        .unwrap()
        .push(
            &ZoneName::new(ZONE),
            &[change("www", RecordType::A, values)],
        )
        .await
        .expect("update accepted");
}

#[tokio::test]
async fn verification_converges_against_bind_after_an_update() {
    let bind = DnsServer::bind();
    let expected = expected(&["192.0.2.30", "192.0.2.31"]);
    let before = verify(
        &expected,
        &[bind.addr()],
        &[],
        Duration::from_millis(300),
        Duration::from_millis(100),
    )
    .await;
    assert!(!before.converged, "BIND still serves 192.0.2.1");
    assert_eq!(
        before.checks[0].answer,
        Some(
            ["192.0.2.1".parse::<IpAddr>().unwrap()]
                .into_iter()
                .collect()
        )
    );
    assert_eq!(before.checks[0].ttl, Some(Duration::from_secs(300)));

    push(&bind, &["192.0.2.30", "192.0.2.31"]).await;
    // BIND also stands in for a resolver: asked with recursion desired, it answers from its zone.
    let report = verify(
        &expected,
        &[bind.addr()],
        &[bind.addr()],
        Duration::from_secs(5),
        Duration::from_millis(100),
    )
    .await;
    assert!(report.converged, "{report:#?}");
    let roles: Vec<ServerRole> = report.checks.iter().map(|check| check.role).collect();
    assert_eq!(roles, vec![ServerRole::Authoritative, ServerRole::Resolver]);
    for check in &report.checks {
        assert_eq!(
            check.answer.as_ref(),
            Some(&expected.values().next().unwrap().values)
        );
        assert_eq!(check.ttl, Some(Duration::from_secs(30)));
        assert_eq!(check.rcode.as_deref(), Some("NOERROR"));
        assert!(
            check.first_seen.is_some() && check.last_error.is_none(),
            "{check:?}"
        );
    }
}

#[tokio::test]
async fn verification_times_out_with_a_per_server_report_when_one_server_is_stopped() {
    let up = DnsServer::bind();
    let mut down = DnsServer::bind();
    push(&up, &["192.0.2.40"]).await;
    push(&down, &["192.0.2.40"]).await;
    down.stop();
    let timeout = Duration::from_millis(1500);
    let report = verify(
        &expected(&["192.0.2.40"]),
        &[up.addr(), down.addr()],
        &[],
        timeout,
        Duration::from_millis(200),
    )
    .await;
    assert!(!report.converged);
    assert!(
        report.elapsed >= timeout && report.elapsed < timeout * 3,
        "{:?}",
        report.elapsed
    );
    let servers = report.by_server();
    assert!(
        servers[&up.addr()].0 && servers[&up.addr()].1.is_some(),
        "{servers:?}"
    );
    assert_eq!(servers[&down.addr()], (false, None));
    let pending: Vec<_> = report.pending().collect();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].server, down.addr());
    assert!(pending[0].answer.is_none());
    assert!(pending[0].last_error.is_some(), "{:?}", pending[0]);
    assert!(
        pending[0].queries >= 2,
        "polled until the timeout: {:?}",
        pending[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_records_when_the_embedded_server_starts_serving_the_change() {
    let data = |serial, values: &[&str]| ZoneData {
        zones: BTreeMap::from([(
            ZoneName::new(ZONE),
            ZoneSnapshot {
                serial,
                nameservers: Vec::new(),
                rrsets: expected(values)
                    .into_iter()
                    .map(|(key, rrset)| ((key.name, key.record_type), rrset))
                    .collect(),
            },
        )]),
    };
    let server = EmbeddedDns::spawn("127.0.0.1:0".parse().unwrap(), data(1, &["192.0.2.1"]))
        .await
        .unwrap();
    let addr = server.local_addr();
    let expected = expected(&["192.0.2.50"]);
    let verification = tokio::spawn(async move {
        verify(
            &expected,
            &[addr],
            &[],
            Duration::from_secs(5),
            Duration::from_millis(50),
        )
        .await
    });
    // Change the answer only once verification has seen the old one.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while server
        .query_counts()
        .iter()
        .map(|count| count.count)
        .sum::<u64>()
        == 0
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "verification never queried"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.update(&data(2, &["192.0.2.50"])).unwrap();
    let report = verification.await.unwrap();
    assert!(report.converged, "{report:#?}");
    assert!(report.checks[0].queries >= 2, "{:?}", report.checks[0]);
    assert!(report.checks[0].first_seen.unwrap() > Duration::ZERO);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_falls_back_to_tcp_for_truncated_answers() {
    let big: Vec<String> = (1..=150).map(|n| format!("10.0.0.{n}")).collect();
    let big: Vec<&str> = big.iter().map(String::as_str).collect();
    let expected = expected(&big);
    let data = ZoneData {
        zones: BTreeMap::from([(
            ZoneName::new(ZONE),
            ZoneSnapshot {
                serial: 1,
                nameservers: Vec::new(),
                rrsets: expected
                    .clone()
                    .into_iter()
                    .map(|(key, rrset)| ((key.name, key.record_type), rrset))
                    .collect(),
            },
        )]),
    };
    let server = EmbeddedDns::spawn("127.0.0.1:0".parse().unwrap(), data)
        .await
        .unwrap();
    let report = verify(
        &expected,
        &[server.local_addr()],
        &[],
        Duration::from_secs(5),
        Duration::from_millis(50),
    )
    .await;
    assert!(report.converged, "{report:#?}");
    assert_eq!(
        report.checks[0].answer.as_ref().map(BTreeSet::len),
        Some(150)
    );
}
