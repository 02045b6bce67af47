//! The embedded authoritative server, queried with the real `dig`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use switchyard_core::config::{
    ClusterConfig, DetectionPolicy, Endpoint, HealthCheck, Node, RaftTimings, Record, RecordType,
    SafetyRules, Service, Site, Zone,
};
use switchyard_core::id::{EndpointId, NodeId, ProviderId, ServiceId, SiteId, ZoneName};
use switchyard_core::routing::{Routing, RoutingChange, Rrset};
use switchyard_providers::{EmbeddedDns, NameServer, ZoneData, ZoneSnapshot};

use crate::harness::{ZONE, dig, dig_short};
use crate::sorted;

fn rrset(ttl: u64, values: &[&str]) -> Rrset {
    Rrset {
        ttl: Duration::from_secs(ttl),
        values: values
            .iter()
            .map(|value| value.parse::<IpAddr>().unwrap())
            .collect(),
    }
}

fn zone_data(serial: u32, www: &[&str]) -> ZoneData {
    let mut rrsets = BTreeMap::new();
    rrsets.insert(
        ("www.test.example.".to_owned(), RecordType::A),
        rrset(20, www),
    );
    rrsets.insert(
        ("www.test.example.".to_owned(), RecordType::Aaaa),
        rrset(20, &["2001:db8::1"]),
    );
    // A fail-closed record with no site left: the name exists, with nothing to answer.
    rrsets.insert(
        ("closed.test.example.".to_owned(), RecordType::A),
        rrset(20, &[]),
    );
    // `sub.test.example.` exists only as the parent of this one (an empty non-terminal).
    rrsets.insert(
        ("deep.sub.test.example.".to_owned(), RecordType::A),
        rrset(20, &["192.0.2.9"]),
    );
    // Too large for a 512-byte UDP answer.
    let big: Vec<String> = (1..=100).map(|n| format!("10.0.0.{n}")).collect();
    let big: Vec<&str> = big.iter().map(String::as_str).collect();
    rrsets.insert(
        ("big.test.example.".to_owned(), RecordType::A),
        rrset(20, &big),
    );
    ZoneData {
        zones: BTreeMap::from([(
            ZoneName::new(ZONE),
            ZoneSnapshot {
                serial,
                nameservers: vec![
                    NameServer {
                        name: "ns1.test.example.".to_owned(),
                        address: "127.0.0.1".parse().unwrap(),
                    },
                    NameServer {
                        name: "ns2.test.example.".to_owned(),
                        address: "127.0.0.2".parse().unwrap(),
                    },
                ],
                rrsets,
            },
        )]),
    }
}

/// `dig` runs blocking, off the runtime threads that serve it.
async fn dig_async(port: u16, args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        dig(port, &args)
    })
    .await
    .unwrap()
}

async fn dig_short_async(port: u16, name: &str, record_type: &str) -> Vec<String> {
    let (name, record_type) = (name.to_owned(), record_type.to_owned());
    tokio::task::spawn_blocking(move || dig_short(port, &name, &record_type))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_server_answers_dig_like_an_authority() {
    let server = EmbeddedDns::spawn(
        "127.0.0.1:0".parse().unwrap(),
        zone_data(7, &["192.0.2.1", "192.0.2.2"]),
    )
    .await
    .expect("spawn");
    let port = server.local_addr().port();

    assert_eq!(
        dig_short_async(port, "www.test.example.", "A").await,
        sorted(&["192.0.2.1", "192.0.2.2"])
    );
    assert_eq!(
        dig_short_async(port, "www.test.example.", "AAAA").await,
        sorted(&["2001:db8::1"])
    );
    assert_eq!(
        dig_short_async(port, "ns2.test.example.", "A").await,
        sorted(&["127.0.0.2"])
    );
    assert_eq!(
        dig_short_async(port, ZONE, "NS").await,
        sorted(&["ns1.test.example.", "ns2.test.example."])
    );
    let soa = dig_short_async(port, ZONE, "SOA").await;
    assert_eq!(
        soa,
        vec!["ns1.test.example. hostmaster.test.example. 7 3600 600 86400 30".to_owned()]
    );

    let answer = dig_async(
        port,
        &["+noall", "+comments", "+answer", "www.test.example.", "A"],
    )
    .await;
    assert!(answer.contains("status: NOERROR"), "{answer}");
    assert!(
        answer.contains("flags: qr aa"),
        "authoritative answer: {answer}"
    );
    assert!(
        answer.contains("www.test.example.\t20\tIN\tA\t192.0.2.1"),
        "record TTL: {answer}"
    );

    let nxdomain = dig_async(port, &["nope.test.example.", "A"]).await;
    assert!(nxdomain.contains("status: NXDOMAIN"), "{nxdomain}");
    assert!(nxdomain.contains("flags: qr aa"), "{nxdomain}");
    assert!(
        nxdomain.contains("AUTHORITY: 1"),
        "SOA in authority: {nxdomain}"
    );

    for (name, record_type) in [
        ("www.test.example.", "MX"),
        ("closed.test.example.", "A"),
        ("sub.test.example.", "A"),
    ] {
        let nodata = dig_async(port, &[name, record_type]).await;
        assert!(
            nodata.contains("status: NOERROR"),
            "{name} {record_type}: {nodata}"
        );
        assert!(
            nodata.contains("ANSWER: 0, AUTHORITY: 1"),
            "{name} {record_type}: {nodata}"
        );
        assert!(
            nodata.contains("IN\tSOA\tns1.test.example."),
            "{name} {record_type}: {nodata}"
        );
    }

    let tcp = dig_async(
        port,
        &[
            "+tcp",
            "+noall",
            "+comments",
            "+answer",
            "www.test.example.",
            "A",
        ],
    )
    .await;
    assert!(
        tcp.contains("flags: qr aa") && tcp.contains("192.0.2.2"),
        "over tcp: {tcp}"
    );

    let truncated = dig_async(port, &["+noedns", "+ignore", "big.test.example.", "A"]).await;
    assert!(
        truncated.contains("flags: qr aa tc"),
        "truncated over udp: {truncated}"
    );
    let big = dig_short_async(port, "big.test.example.", "A").await;
    assert_eq!(
        big.len(),
        100,
        "dig retries over tcp and gets every address"
    );

    let refused = dig_async(port, &["www.example.org.", "A"]).await;
    assert!(
        refused.contains("status: REFUSED"),
        "zone not served: {refused}"
    );

    server
        .update(&zone_data(8, &["192.0.2.3"]))
        .expect("update");
    assert_eq!(
        dig_short_async(port, "www.test.example.", "A").await,
        sorted(&["192.0.2.3"])
    );
    assert_eq!(server.serial(&ZoneName::new(ZONE)), Some(8));
    let soa = dig_short_async(port, ZONE, "SOA").await;
    assert!(soa[0].contains(" 8 "), "new serial: {soa:?}");

    let counts = server.query_counts();
    let count = |zone: Option<&str>, rcode: &str| {
        counts
            .iter()
            .find(|count| count.zone.as_ref().map(ZoneName::as_str) == zone && count.rcode == rcode)
            .map_or(0, |count| count.count)
    };
    assert!(count(Some(ZONE), "NOERROR") >= 12, "{counts:?}");
    assert_eq!(count(Some(ZONE), "NXDOMAIN"), 1, "{counts:?}");
    assert_eq!(count(None, "REFUSED"), 1, "{counts:?}");
    server.shutdown().await;
}

fn config(dns_addr: SocketAddr) -> ClusterConfig {
    let endpoint = |site: &str, address: &str| Endpoint {
        id: EndpointId::of(&ServiceId::new("www"), &SiteId::new(site), 1),
        site: SiteId::new(site),
        address: address.parse().unwrap(),
        port: 80,
        weight: 1,
    };
    ClusterConfig {
        name: "test".to_owned(),
        secret_file: PathBuf::from("/dev/null"),
        sites: ["a", "b"]
            .iter()
            .map(|site| Site {
                id: SiteId::new(*site),
                witness: false,
            })
            .collect(),
        nodes: vec![Node {
            id: NodeId(1),
            site: SiteId::new("a"),
            raft_addr: "127.0.0.1:1".parse().unwrap(),
            api_addr: "127.0.0.1:2".parse().unwrap(),
            dns_addr,
            voter: true,
        }],
        raft: RaftTimings::default(),
        detection: DetectionPolicy::default(),
        services: vec![Service {
            id: ServiceId::new("www"),
            check: HealthCheck::Tcp,
            endpoints: vec![endpoint("a", "192.0.2.1"), endpoint("b", "198.51.100.1")],
        }],
        providers: Vec::new(),
        zones: vec![Zone {
            name: ZoneName::new(ZONE),
            provider: ProviderId::new("embedded"),
            records: vec![Record {
                name: "www".to_owned(),
                record_type: RecordType::A,
                ttl: Duration::from_secs(15),
                service: ServiceId::new("www"),
                fail_mode: None,
            }],
            nameservers: vec![dns_addr],
            resolvers: Vec::new(),
        }],
        safety: SafetyRules::default(),
        principals: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_server_serves_the_routing_and_its_changes() {
    let server = EmbeddedDns::spawn("127.0.0.1:0".parse().unwrap(), ZoneData::default())
        .await
        .expect("spawn");
    let port = server.local_addr().port();
    let config = config(server.local_addr());
    let routing = Routing::initial(&config);
    server
        .update(&ZoneData::embedded(&config, &routing.answers(&config), 41))
        .unwrap();
    assert_eq!(
        dig_short_async(port, "www.test.example.", "A").await,
        sorted(&["192.0.2.1", "198.51.100.1"])
    );
    assert_eq!(
        dig_short_async(port, ZONE, "NS").await,
        sorted(&["ns1.test.example."])
    );

    let change = RoutingChange::AwayFrom {
        services: vec![ServiceId::new("www")],
        site: SiteId::new("b"),
    };
    let routing = routing
        .with_change(&config, &change, &BTreeSet::new())
        .expect("safe change");
    server
        .update(&ZoneData::embedded(&config, &routing.answers(&config), 42))
        .unwrap();
    assert_eq!(
        dig_short_async(port, "www.test.example.", "A").await,
        sorted(&["192.0.2.1"])
    );
    let soa = dig_short_async(port, ZONE, "SOA").await;
    assert!(soa[0].contains(" 42 "), "serial is the log index: {soa:?}");
}
