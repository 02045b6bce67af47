//! The embedded DNS served by every node from the replicated routing (issue 5): real `dig`
//! against every node, a routing change committed through a follower, the safety refusal at
//! proposal, and `switchyard dns check` against running and stopped nodes.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use switchyard_api::{ErrorCode, RoutingChangeRequest, WriteResult};
use switchyard_core::id::{ServiceId, SiteId};
use switchyard_tests::{Bind, ClusterOptions, TestCluster, add_bind_zone, dig, wait_until};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::task::JoinSet;

const OPERATOR_TOKEN: &str = "test-operator-token";
const ADMIN_TOKEN: &str = "test-admin-token";
const NAME: &str = "www.test.example.";

/// What one server answers for `www`: the header flags, the status and the addresses.
#[derive(Debug)]
struct Answer {
    flags: String,
    status: String,
    addresses: BTreeSet<IpAddr>,
}

fn parse_answer(text: &str) -> Option<Answer> {
    let status = text
        .lines()
        .find_map(|line| line.split("status: ").nth(1))?
        .split(',')
        .next()?
        .to_owned();
    let flags = text
        .lines()
        .find_map(|line| line.split(";; flags: ").nth(1))?
        .split(';')
        .next()?
        .to_owned();
    let mut in_answer = false;
    let mut addresses = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with(";; ANSWER SECTION") {
            in_answer = true;
            continue;
        }
        if in_answer {
            if line.trim().is_empty() {
                break;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() == 5 && fields[3] == "A" {
                addresses.insert(fields[4].parse().ok()?);
            }
        }
    }
    Some(Answer {
        flags,
        status,
        addresses,
    })
}

async fn query(server: SocketAddr, name: &str, record_type: &str, tcp: bool) -> Option<Answer> {
    let mut args = vec![name, record_type, "+norecurse"];
    if tcp {
        args.push("+tcp");
    }
    parse_answer(&dig(server, &args).await)
}

async fn soa_serial(server: SocketAddr) -> Option<u32> {
    let text = dig(server, &["+short", "test.example.", "SOA"]).await;
    text.lines().next()?.split_whitespace().nth(2)?.parse().ok()
}

/// Answers every connection to the `www` endpoint of each site with `200 ok`, so detection sees
/// every site healthy while routing is changed by hand.
async fn serve_healthy_endpoints(cluster: &TestCluster, sites: usize) -> JoinSet<()> {
    let mut tasks = JoinSet::new();
    for site in 1..=sites {
        let listener = tokio::net::TcpListener::bind(cluster.endpoint(site))
            .await
            .expect("bind the endpoint address");
        tasks.spawn(async move {
            // Bounded by the test: the set aborts this task when dropped.
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
    tasks
}

fn addresses(cluster: &TestCluster, sites: &[usize]) -> BTreeSet<IpAddr> {
    sites
        .iter()
        .map(|site| cluster.endpoint(*site).ip())
        .collect()
}

/// Waits until `node`'s embedded server answers `www` with exactly `expected` and serial
/// `serial` (any serial when `None`), authoritatively, over UDP and TCP.
async fn wait_serving(
    cluster: &TestCluster,
    node: u64,
    expected: &BTreeSet<IpAddr>,
    serial: Option<u32>,
) {
    let server = cluster.dns_addr(node);
    wait_until(
        &format!("node {node} to serve {expected:?} with serial {serial:?}"),
        Duration::from_secs(20),
        || async move {
            let udp = query(server, NAME, "A", false).await?;
            let tcp = query(server, NAME, "A", true).await?;
            let served = soa_serial(server).await?;
            let fine = udp.status == "NOERROR"
                && udp.flags.split_whitespace().any(|flag| flag == "aa")
                && &udp.addresses == expected
                && tcp.addresses == udp.addresses
                && serial.is_none_or(|serial| serial == served);
            fine.then_some(())
        },
    )
    .await;
}

/// Runs the `switchyard` command; returns its exit code and its stdout then stderr.
fn switchyard(args: &[&str]) -> (i32, String) {
    let output = Command::new(switchyard_tests::switchyard_bin())
        .args(args)
        .output()
        .expect("run switchyard");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

fn dns_check(cluster: &TestCluster) -> (i32, String) {
    let config = cluster.config_path().display().to_string();
    switchyard(&[
        "dns",
        "check",
        "--wait",
        "2s",
        "--config",
        &config,
        "--token",
        ADMIN_TOKEN,
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_serves_the_routing_it_applied_and_unsafe_changes_are_refused() {
    let mut cluster = TestCluster::new(ClusterOptions {
        with_service: true,
        ..ClusterOptions::default()
    });
    let _endpoints = serve_healthy_endpoints(&cluster, 3).await;
    cluster.start_all();
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;
    let nodes = cluster.node_ids();

    let every_site = addresses(&cluster, &[1, 2, 3]);
    for node in &nodes {
        wait_serving(&cluster, *node, &every_site, None).await;
    }
    let server = cluster.dns_addr(nodes[0]);
    let missing = query(server, "nope.test.example.", "A", false)
        .await
        .expect("answer for a missing name");
    assert_eq!(missing.status, "NXDOMAIN");
    let nodata = query(server, NAME, "AAAA", false)
        .await
        .expect("answer for a missing type");
    assert_eq!(
        (nodata.status.as_str(), nodata.addresses.len()),
        ("NOERROR", 0)
    );
    let outside = query(server, "www.elsewhere.example.", "A", false)
        .await
        .expect("answer outside the zone");
    assert_eq!(outside.status, "REFUSED");

    let follower = *nodes
        .iter()
        .find(|node| **node != leader)
        .expect("a follower");
    let operator = cluster.client(follower, Some(OPERATOR_TOKEN));
    let away_from = |site: &str| RoutingChangeRequest::AwayFrom {
        services: vec![ServiceId::new("www")],
        site: SiteId::new(site),
    };
    let committed = operator
        .change_routing(away_from("site1"), "dns integration test")
        .await
        .expect("routing change committed through a follower");
    assert_eq!(
        committed.leader.0, leader,
        "the follower forwarded to the leader"
    );
    let serial = u32::try_from(committed.index).expect("small log index");
    let without_site1 = addresses(&cluster, &[2, 3]);
    for node in &nodes {
        wait_serving(&cluster, *node, &without_site1, Some(serial)).await;
    }
    for node in &nodes {
        let view = cluster.admin(*node).routing(false).await.expect("routing");
        assert_eq!(view.changed_index, committed.index, "node {node}");
        assert_eq!(view.serial, serial, "node {node}");
        let www = &view.zones[0].rrsets[0];
        assert_eq!(
            www.values.iter().copied().collect::<BTreeSet<_>>(),
            without_site1
        );
    }

    operator
        .change_routing(away_from("site2"), "down to one site")
        .await
        .expect("one site left is allowed");
    let refused = operator
        .change_routing(away_from("site3"), "would leave no site")
        .await
        .expect_err("zero sites refused");
    let error = refused.api_error().expect("an api error");
    assert_eq!(error.code, ErrorCode::Rejected, "{refused}");
    assert!(
        error.message.contains("rule min_sites_in_rotation"),
        "{refused}"
    );
    assert!(refused.to_string().contains("409"), "{refused}");
    // Refused at proposal: nothing about it reached the log.
    let audit = cluster
        .admin(leader)
        .audit(0, 1000, false)
        .await
        .expect("audit");
    assert!(
        audit
            .entries
            .iter()
            .all(|entry| !entry.summary.contains("would leave no site")),
        "the refused change was committed"
    );
    let viewer = cluster.client(follower, Some("test-viewer-token"));
    let forbidden = viewer
        .change_routing(away_from("site3"), "viewer")
        .await
        .expect_err("viewers cannot change routing");
    assert_eq!(
        forbidden.api_error().map(|error| error.code),
        Some(ErrorCode::Forbidden)
    );

    // The same through the command line, as an operator would.
    let (code, text) = switchyard(&[
        "route",
        "away",
        "--service",
        "www",
        "--site",
        "site3",
        "--reason",
        "cli",
        "--server",
        &cluster.api_url(follower),
        "--token",
        OPERATOR_TOKEN,
    ]);
    assert_eq!(code, 1, "refused change exits 1:\n{text}");
    assert!(text.contains("rule min_sites_in_rotation"), "{text}");
    let (code, text) = switchyard(&[
        "route",
        "restore",
        "--service",
        "www",
        "--site",
        "site1",
        "--reason",
        "back",
        "--server",
        &cluster.api_url(follower),
        "--token",
        OPERATOR_TOKEN,
        "--output",
        "json",
    ]);
    assert_eq!(code, 0, "route restore:\n{text}");
    let restored: WriteResult = serde_json::from_str(&text).expect("write result");
    let serial = u32::try_from(restored.index).expect("small log index");
    let sites_1_3 = addresses(&cluster, &[1, 3]);
    for node in &nodes {
        wait_serving(&cluster, *node, &sites_1_3, Some(serial)).await;
    }
    let (code, text) = dns_check(&cluster);
    assert_eq!(code, 0, "dns check after convergence:\n{text}");
    let config = cluster.config_path().display().to_string();
    let (code, text) = switchyard(&["dns", "show", "--config", &config, "--token", ADMIN_TOKEN]);
    assert_eq!(code, 0, "dns show:\n{text}");
    let expected_line = format!(
        "{NAME} 5 A {} {}",
        cluster.endpoint(1).ip(),
        cluster.endpoint(3).ip()
    );
    assert!(text.contains(&expected_line), "dns show:\n{text}");
    assert!(
        text.contains(&format!("serial {serial}")),
        "dns show:\n{text}"
    );

    let stopped = follower;
    cluster.kill(stopped);
    let (code, text) = dns_check(&cluster);
    assert_eq!(code, 1, "dns check with node {stopped} stopped:\n{text}");
    let stopped_addr = cluster.dns_addr(stopped).to_string();
    assert!(
        text.lines()
            .any(|line| line.contains("FAIL") && line.contains(&stopped_addr)),
        "the stopped node's server is reported:\n{text}"
    );
}

async fn metrics(cluster: &TestCluster, node: u64) -> String {
    reqwest::get(format!("{}/metrics", cluster.api_url(node)))
        .await
        .expect("get /metrics")
        .text()
        .await
        .expect("metrics text")
}

/// The value of the sample named `name` carrying every label of `labels`.
fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|line| line.starts_with(name) && labels.iter().all(|label| line.contains(label)))
        .find_map(|line| line.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_pushes_routing_to_a_real_bind_over_tsig_and_retries_when_it_is_down() {
    let mut cluster = TestCluster::new(ClusterOptions {
        with_service: true,
        ..ClusterOptions::default()
    });
    let bind_dir = cluster.dir().join("bind");
    std::fs::create_dir_all(&bind_dir).expect("bind dir");
    let mut bind = Bind::start(&bind_dir);
    add_bind_zone(&cluster, &bind);
    let _endpoints = serve_healthy_endpoints(&cluster, 3).await;
    let bind_addr = bind.addr();
    let ext_serving = |expected: BTreeSet<IpAddr>, what: String| async move {
        wait_until(&what, Duration::from_secs(30), || {
            let expected = expected.clone();
            async move {
                let answer = query(bind_addr, "www.ext.example.", "A", false).await?;
                (answer.status == "NOERROR" && answer.addresses == expected).then_some(())
            }
        })
        .await;
    };
    cluster.start_all();
    let leader = cluster.wait_for_leader(Duration::from_secs(30)).await;

    // On becoming leader, the leader pushes the whole routing to converge.
    ext_serving(
        addresses(&cluster, &[1, 2, 3]),
        format!("bind to serve every site; named log:\n{}", bind.log()),
    )
    .await;
    let operator = cluster.client(leader, Some(OPERATOR_TOKEN));
    operator
        .change_routing(
            RoutingChangeRequest::AwayFrom {
                services: vec![ServiceId::new("www")],
                site: SiteId::new("site2"),
            },
            "bind test",
        )
        .await
        .expect("routing change");
    ext_serving(
        addresses(&cluster, &[1, 3]),
        "bind to follow the change".to_owned(),
    )
    .await;
    let output = Command::new(switchyard_tests::switchyard_bin())
        .args(["dns", "check", "--zone", "ext.example", "--config"])
        .arg(cluster.config_path())
        .args(["--token", ADMIN_TOKEN])
        .output()
        .expect("run dns check");
    assert!(
        output.status.success(),
        "dns check of the bind zone:\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    query(cluster.dns_addr(leader), NAME, "A", false)
        .await
        .expect("the leader's embedded server answers");
    let text = metrics(&cluster, leader).await;
    assert!(
        sample(
            &text,
            "switchyard_dns_updates_pushed_total",
            &["provider=\"bind\"", "outcome=\"ok\""]
        )
        .is_some_and(|count| count >= 2.0),
        "pushes counted:\n{text}"
    );
    assert!(
        sample(
            &text,
            "switchyard_dns_queries_total",
            &["zone=\"test.example.\"", "rcode=\"NOERROR\""]
        )
        .is_some(),
        "queries counted:\n{text}"
    );

    // BIND down: the change commits, the push fails and is retried until BIND is back.
    bind.stop();
    operator
        .change_routing(
            RoutingChangeRequest::Restore {
                services: vec![ServiceId::new("www")],
                site: SiteId::new("site2"),
            },
            "while bind is down",
        )
        .await
        .expect("routing change commits while bind is down");
    wait_until(
        "a failed push to be counted",
        Duration::from_secs(20),
        || async {
            let text = metrics(&cluster, leader).await;
            let failed = text.lines().any(|line| {
                line.starts_with("switchyard_dns_updates_pushed_total")
                    && line.contains("provider=\"bind\"")
                    && !line.contains("outcome=\"ok\"")
            });
            failed.then_some(())
        },
    )
    .await;
    bind.run();
    ext_serving(
        addresses(&cluster, &[1, 2, 3]),
        "bind to converge after it came back".to_owned(),
    )
    .await;
}
