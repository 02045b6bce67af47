//! Time from a committed routing change to every embedded DNS server answering it (issue 5).
//!
//! Run with `cargo build --release -p switchyard-cli && cargo bench -p switchyard-tests --bench
//! dns_propagation`. It starts three real `switchyard serve` processes with service `www` in
//! zone `test.example.`, alternately routes `www` away from site 1 and back through the API of a
//! follower, and after each change asks every node's DNS server directly (raw UDP queries, no
//! cache, every millisecond) until all three answer the new address set. `BENCH_CHANGES` sets
//! the number of changes (default 50, at least 20).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use switchyard_api::RoutingChangeRequest;
use switchyard_core::id::{ServiceId, SiteId};
use switchyard_tests::{ClusterOptions, TestCluster, wait_until};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::UdpSocket;

const NAME: &str = "www.test.example.";
/// Longest wait for one server to serve one change.
const PROPAGATION_TIMEOUT: Duration = Duration::from_secs(10);
const POLL_INTERVAL: Duration = Duration::from_millis(1);

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// A DNS query for `name` A, with id `id`, recursion not desired.
fn query_packet(id: u16, name: &str) -> Vec<u8> {
    let mut packet = Vec::with_capacity(64);
    packet.extend_from_slice(&id.to_be_bytes());
    packet.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        packet.push(label.len() as u8);
        packet.extend_from_slice(label.as_bytes());
    }
    packet.extend_from_slice(&[0, 0, 1, 0, 1]);
    packet
}

/// Skips a possibly compressed name at `at`; returns the offset after it.
fn skip_name(packet: &[u8], mut at: usize) -> Option<usize> {
    // Bounded by the packet length: every step moves forward.
    loop {
        let length = *packet.get(at)?;
        if length & 0xc0 == 0xc0 {
            return Some(at + 2);
        }
        at += 1;
        if length == 0 {
            return Some(at);
        }
        at += usize::from(length);
    }
}

/// The A records of a response to query `id`, or `None` if it is not one.
fn a_records(packet: &[u8], id: u16) -> Option<BTreeSet<IpAddr>> {
    if packet.len() < 12 || u16::from_be_bytes([packet[0], packet[1]]) != id {
        return None;
    }
    let questions = u16::from_be_bytes([packet[4], packet[5]]);
    let answers = u16::from_be_bytes([packet[6], packet[7]]);
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(packet, at)? + 4;
    }
    let mut addresses = BTreeSet::new();
    for _ in 0..answers {
        at = skip_name(packet, at)?;
        let header = packet.get(at..at + 10)?;
        let record_type = u16::from_be_bytes([header[0], header[1]]);
        let length = usize::from(u16::from_be_bytes([header[8], header[9]]));
        let data = packet.get(at + 10..at + 10 + length)?;
        if record_type == 1 && length == 4 {
            addresses.insert(IpAddr::V4(Ipv4Addr::new(
                data[0], data[1], data[2], data[3],
            )));
        }
        at += 10 + length;
    }
    Some(addresses)
}

/// Asks `server` every millisecond until it answers `expected`; returns when it first did.
async fn wait_for_answer(server: SocketAddr, expected: BTreeSet<IpAddr>) -> Instant {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
    socket.connect(server).await.expect("connect udp");
    let deadline = Instant::now() + PROPAGATION_TIMEOUT;
    let mut buffer = [0u8; 512];
    let mut id: u16 = 1;
    while Instant::now() < deadline {
        id = id.wrapping_add(1);
        let _ = socket.send(&query_packet(id, NAME)).await;
        let received =
            tokio::time::timeout(Duration::from_millis(50), socket.recv(&mut buffer)).await;
        if let Ok(Ok(length)) = received
            && a_records(&buffer[..length], id).as_ref() == Some(&expected)
        {
            return Instant::now();
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    panic!("{server} did not answer {expected:?} within {PROPAGATION_TIMEOUT:?}");
}

/// Keeps every site's `www` endpoint healthy so that detection never takes a site away.
async fn serve_healthy_endpoints(cluster: &TestCluster) {
    for site in 1..=3 {
        let listener = tokio::net::TcpListener::bind(cluster.endpoint(site))
            .await
            .expect("bind the endpoint address");
        tokio::spawn(async move {
            // Ends with the runtime at the end of the benchmark.
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let mut buffer = [0u8; 1024];
                    let _ = stream.read(&mut buffer).await;
                    let _ = stream
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        )
                        .await;
                });
            }
        });
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn main() {
    let changes: usize = std::env::var("BENCH_CHANGES")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(50)
        .max(20);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut cluster = TestCluster::new(ClusterOptions {
            with_service: true,
            ..ClusterOptions::default()
        });
        serve_healthy_endpoints(&cluster).await;
        cluster.start_all();
        let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
        let nodes = cluster.node_ids();
        let follower = *nodes.iter().find(|node| **node != leader).expect("a follower");
        let client = cluster.client(follower, Some("test-operator-token"));
        let servers: Vec<SocketAddr> = nodes.iter().map(|node| cluster.dns_addr(*node)).collect();
        let all: BTreeSet<IpAddr> = (1..=3).map(|site| cluster.endpoint(site).ip()).collect();
        let without_site1: BTreeSet<IpAddr> = (2..=3).map(|site| cluster.endpoint(site).ip()).collect();
        wait_until("every node to serve the zone", Duration::from_secs(30), || {
            let servers = servers.clone();
            let all = all.clone();
            async move {
                for server in servers {
                    tokio::time::timeout(Duration::from_secs(1), wait_for_answer(server, all.clone()))
                        .await
                        .ok()?;
                }
                Some(())
            }
        })
        .await;

        let service = vec![ServiceId::new("www")];
        let site1 = SiteId::new("site1");
        // From the API's answer (the change committed) and from sending the request.
        let mut after_commit = Vec::with_capacity(changes);
        let mut after_request = Vec::with_capacity(changes);
        // How long after the API answer the slowest server was still serving the old set.
        for n in 0..changes {
            let (request, expected) = if n % 2 == 0 {
                (
                    RoutingChangeRequest::AwayFrom { services: service.clone(), site: site1.clone() },
                    without_site1.clone(),
                )
            } else {
                (
                    RoutingChangeRequest::Restore { services: service.clone(), site: site1.clone() },
                    all.clone(),
                )
            };
            let sent = Instant::now();
            let committed_at = {
                client
                    .change_routing(request, &format!("benchmark change {n}"))
                    .await
                    .expect("routing change committed");
                Instant::now()
            };
            let waits: Vec<_> = servers
                .iter()
                .map(|server| tokio::spawn(wait_for_answer(*server, expected.clone())))
                .collect();
            let mut last = committed_at;
            for wait in waits {
                last = last.max(wait.await.expect("poller"));
            }
            after_commit.push(last.saturating_duration_since(committed_at));
            after_request.push(last.saturating_duration_since(sent));
        }
        after_commit.sort();
        after_request.sort();

        println!(
            "dns propagation, 3 nodes on loopback: a routing change through a follower's API until every embedded server answers it"
        );
        println!("(polled every {POLL_INTERVAL:?} per server over raw UDP; a change already served when the API answers counts 0)");
        println!("| measure | from the API answer | from sending the request |");
        println!("| --- | --- | --- |");
        println!("| changes | {changes} | {changes} |");
        for (label, fraction) in [("p50", 0.50), ("p90", 0.90), ("p99", 0.99)] {
            println!(
                "| {label} | {:.2} ms | {:.2} ms |",
                ms(percentile(&after_commit, fraction)),
                ms(percentile(&after_request, fraction))
            );
        }
        println!(
            "| max | {:.2} ms | {:.2} ms |",
            ms(*after_commit.last().expect("changes")),
            ms(*after_request.last().expect("changes"))
        );
    });
}
