//! One contract every `DnsProvider` meets, run against the fake and against real BIND and Knot:
//! a push replaces each RRset whole, leaves other RRsets alone, and an empty set deletes.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use switchyard_core::config::RecordType;
use switchyard_core::id::ZoneName;
use switchyard_providers::{DnsProvider, FakeProvider, Rfc2136Provider};

use crate::change;
use crate::harness::{DnsServer, ZONE, dig_short};

fn addresses(values: &[&str]) -> BTreeSet<IpAddr> {
    values.iter().map(|value| value.parse().unwrap()).collect()
}

/// Runs the contract; `observe` says what the provider's server serves for a name and type.
async fn contract(
    provider: &dyn DnsProvider,
    observe: &dyn Fn(&str, RecordType) -> BTreeSet<IpAddr>,
) {
    let zone = ZoneName::new(ZONE);
    let name = "svc.test.example.";
    let first = provider
        .push(
            &zone,
            &[
                change("svc", RecordType::A, &["192.0.2.1", "192.0.2.2"]),
                change("svc", RecordType::Aaaa, &["2001:db8::1"]),
            ],
        )
        .await
        .expect("first push");
    assert_eq!((first.rrsets, first.records), (2, 3));
    assert_eq!(
        observe(name, RecordType::A),
        addresses(&["192.0.2.1", "192.0.2.2"])
    );
    assert_eq!(observe(name, RecordType::Aaaa), addresses(&["2001:db8::1"]));

    provider
        .push(&zone, &[change("svc", RecordType::A, &["192.0.2.3"])])
        .await
        .expect("second push");
    assert_eq!(
        observe(name, RecordType::A),
        addresses(&["192.0.2.3"]),
        "replaced, not added to"
    );
    assert_eq!(
        observe(name, RecordType::Aaaa),
        addresses(&["2001:db8::1"]),
        "other RRset untouched"
    );

    provider
        .push(&zone, &[change("svc", RecordType::A, &[])])
        .await
        .expect("emptying push");
    assert!(
        observe(name, RecordType::A).is_empty(),
        "empty set deletes the RRset"
    );
    assert_eq!(observe(name, RecordType::Aaaa), addresses(&["2001:db8::1"]));
}

fn observe_with_dig(port: u16) -> impl Fn(&str, RecordType) -> BTreeSet<IpAddr> {
    move |name, record_type| {
        dig_short(port, name, record_type.as_str())
            .iter()
            .map(|line| line.parse().expect("dig +short address"))
            .collect()
    }
}

#[tokio::test]
async fn contract_holds_for_the_fake_provider() {
    let fake = FakeProvider::new();
    let zone = ZoneName::new(ZONE);
    let observe = |name: &str, record_type| {
        fake.served(&zone, name, record_type)
            .map(|rrset| rrset.values)
            .unwrap_or_default()
    };
    contract(&fake, &observe).await;
}

#[tokio::test]
async fn contract_holds_for_rfc2136_to_bind() {
    let bind = DnsServer::bind();
    let provider =
        Rfc2136Provider::new(bind.addr(), bind.update_key(), Duration::from_secs(2)).unwrap();
    contract(&provider, &observe_with_dig(bind.port)).await;
}

#[tokio::test]
async fn contract_holds_for_rfc2136_to_knot() {
    let knot = DnsServer::knot();
    let provider =
        Rfc2136Provider::new(knot.addr(), knot.update_key(), Duration::from_secs(2)).unwrap();
    contract(&provider, &observe_with_dig(knot.port)).await;
}
