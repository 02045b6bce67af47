//! Site-loss detection across real node processes (issue 4): every node probes every site, a
//! site whose services stop is declared `lost` on every node within the detection window, and
//! comes back through `recovering` to `healthy` when they return.

use std::time::{Duration, Instant};

use switchyard_api::{AuditPage, Client, Sites};
use switchyard_core::detection::{SiteState, Verdict};
use switchyard_core::id::SiteId;
use switchyard_tests::{ClusterOptions, Deadline, HttpService, TestCluster};

/// The harness's admin token (`tests/src/cluster.rs`).
const ADMIN_TOKEN: &str = "test-admin-token";
/// The test cluster's timings (see `ClusterOptions::with_service`).
const PROBE_INTERVAL: Duration = Duration::from_millis(500);
const FALL: u32 = 3;
const HOLD: Duration = Duration::from_secs(1);
/// The acceptance bound: `probe_interval × fall + hold + 2 s`.
fn detection_bound() -> Duration {
    PROBE_INTERVAL * FALL + HOLD + Duration::from_secs(2)
}

fn state_of(sites: &Sites, site: &str) -> Option<SiteState> {
    sites
        .sites
        .iter()
        .find(|view| view.site.as_str() == site)
        .map(|view| view.state)
}

/// Whether every site is healthy with every observer seeing every endpoint up.
fn all_healthy(sites: &Sites) -> bool {
    sites.configured
        && sites.sites.len() == 3
        && sites.sites.iter().all(|site| {
            site.state == SiteState::Healthy
                && site.observers.len() == 2
                && site.observers.iter().all(|observer| {
                    observer.counted
                        && observer.endpoints.len() == 1
                        && observer
                            .endpoints
                            .iter()
                            .all(|endpoint| endpoint.verdict == Verdict::Up)
                })
        })
}

/// The `verdict: node N sees E up` lines every node must have committed: proof that every node
/// probes every site (an `up` equal to the initial assumption changes no state, so only the
/// audit log shows it).
fn missing_up_verdicts(audit: &AuditPage) -> Vec<String> {
    let mut missing = Vec::new();
    for node in 1..=3 {
        for site in 1..=3 {
            let line = format!("verdict: node {node} sees www/site{site}/1 up");
            if !audit.entries.iter().any(|entry| entry.summary == line) {
                missing.push(line);
            }
        }
    }
    missing
}

async fn services_on(cluster: &TestCluster) -> Vec<HttpService> {
    let mut services = Vec::new();
    for site in 1..=3 {
        services.push(
            HttpService::start(cluster.endpoint(site))
                .await
                .expect("start the site's http service"),
        );
    }
    services
}

/// Polls every node until it reports `site` in `state`; returns how long each took from
/// `started`, by node.
async fn time_until_state(
    clients: &[(u64, Client)],
    site: &str,
    state: SiteState,
    started: Instant,
    timeout: Duration,
) -> Vec<(u64, Duration)> {
    let deadline = Deadline::after(timeout);
    let mut reached: Vec<(u64, Duration)> = Vec::new();
    while reached.len() < clients.len() {
        for (id, client) in clients {
            if reached.iter().any(|(done, _)| done == id) {
                continue;
            }
            if let Ok(sites) = client.sites(false).await
                && state_of(&sites, site) == Some(state)
            {
                reached.push((*id, started.elapsed()));
            }
        }
        assert!(
            reached.len() == clients.len() || !deadline.passed(),
            "timed out after {timeout:?} waiting for every node to report {site} {state}; reached: {reached:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    reached.sort();
    reached
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_whose_services_stop_is_lost_on_every_node_and_recovers() {
    let mut cluster = TestCluster::new(ClusterOptions {
        with_service: true,
        ..ClusterOptions::default()
    });
    let mut services = services_on(&cluster).await;
    cluster.start_all();
    cluster.wait_for_leader(Duration::from_secs(30)).await;
    let clients: Vec<(u64, Client)> = cluster
        .node_ids()
        .into_iter()
        .map(|id| (id, cluster.admin(id)))
        .collect();

    // Healthy first, with every node's first verdict on every endpoint committed.
    for (id, client) in &clients {
        let deadline = Deadline::after(Duration::from_secs(30));
        loop {
            let sites = client.sites(false).await;
            let audit = client.audit(0, 10_000, false).await;
            let missing = audit.as_ref().map(missing_up_verdicts);
            if sites.as_ref().is_ok_and(all_healthy)
                && missing.as_ref().is_ok_and(|missing| missing.is_empty())
            {
                break;
            }
            assert!(
                !deadline.passed(),
                "node {id} never saw every site healthy with every verdict up: missing {missing:?}, {sites:#?}\n{}",
                cluster.log(*id)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let services_view = clients[0].1.services(true).await.expect("services");
    assert_eq!(services_view.services.len(), 3, "{services_view:?}");
    assert!(
        services_view
            .services
            .iter()
            .all(|health| health.service.as_str() == "www"
                && health.consensus == switchyard_core::detection::Consensus::Up),
        "{services_view:?}"
    );

    // Stop site 1's service: every node must call site1 lost within the bound.
    services[0].stop().await;
    let stopped = Instant::now();
    let bound = detection_bound();
    let lost = time_until_state(&clients, "site1", SiteState::Lost, stopped, bound * 2).await;
    for (id, elapsed) in &lost {
        println!("detection: node {id} reported site1 lost {elapsed:?} after the stop");
    }
    for (id, elapsed) in &lost {
        assert!(
            *elapsed <= bound,
            "node {id} reported site1 lost after {elapsed:?}, more than {bound:?}"
        );
    }

    // The evidence names the observer sites and the endpoint, with each node's error (read
    // through the leader, to exercise `?consistent=true`).
    for (id, client) in &clients {
        let sites = client.sites(true).await.expect("sites");
        let site1 = sites
            .sites
            .iter()
            .find(|view| view.site == SiteId::from("site1"))
            .expect("site1");
        assert!(site1.cooldown_until.is_some(), "node {id}: {site1:?}");
        let observers: Vec<&str> = site1
            .observers
            .iter()
            .map(|observer| observer.observer_site.as_str())
            .collect();
        assert_eq!(observers, ["site2", "site3"], "node {id}");
        for observer in &site1.observers {
            assert!(observer.counted, "node {id}: {observer:?}");
            assert_eq!(observer.endpoints.len(), 1, "node {id}: {observer:?}");
            let endpoint = &observer.endpoints[0];
            assert_eq!(endpoint.verdict, Verdict::Down, "node {id}: {observer:?}");
            assert!(
                endpoint.endpoint.as_str().contains("site1"),
                "node {id}: {endpoint:?}"
            );
            assert!(
                endpoint
                    .node_verdicts
                    .iter()
                    .all(|node| node.verdict == Verdict::Down
                        && node.since.is_some()
                        && node.last_error.is_some()),
                "node {id}: {endpoint:?}"
            );
        }
        for other in ["site2", "site3"] {
            assert_eq!(
                state_of(&sites, other),
                Some(SiteState::Healthy),
                "node {id}"
            );
        }
    }

    // The CLI shows the site states.
    let output = std::process::Command::new(switchyard_tests::switchyard_bin())
        .args(["status", "--server", &cluster.api_url(2), "--token"])
        .arg(ADMIN_TOKEN)
        .output()
        .expect("run switchyard status");
    let text = String::from_utf8_lossy(&output.stdout);
    println!("switchyard status:\n{text}");
    assert!(output.status.success(), "{text}");
    assert!(text.contains("sites:"), "{text}");
    assert!(text.contains("site1 lost"), "{text}");
    assert!(text.contains("site2 healthy"), "{text}");
    let output = std::process::Command::new(switchyard_tests::switchyard_bin())
        .args([
            "status",
            "--output",
            "json",
            "--server",
            &cluster.api_url(3),
        ])
        .arg("--token")
        .arg(ADMIN_TOKEN)
        .output()
        .expect("run switchyard status --output json");
    assert!(output.status.success());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert!(json["cluster"].is_string(), "{json}");
    let states: Vec<(&str, &str)> = json["sites"]["sites"]
        .as_array()
        .expect("sites array")
        .iter()
        .map(|site| {
            (
                site["site"].as_str().unwrap_or_default(),
                site["state"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("site1", "lost"),
            ("site2", "healthy"),
            ("site3", "healthy")
        ]
    );

    // /metrics serves the detection families as OpenMetrics.
    let response = reqwest::get(format!("{}/metrics", cluster.api_url(1)))
        .await
        .expect("metrics");
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let metrics = response.text().await.expect("metrics body");
    for family in [
        "switchyard_probe_duration_seconds_count{kind=\"http\"}",
        "switchyard_probe_failures_total{kind=\"http\",reason=\"connection_refused\"}",
        "switchyard_verdict_flips_total{verdict=\"down\"}",
        "switchyard_site_state{site=\"site1\"} 2",
        "switchyard_site_state{site=\"site2\"} 0",
        "switchyard_probe_last_success_age_seconds{",
    ] {
        assert!(
            metrics.contains(family),
            "{family} missing from:\n{metrics}"
        );
    }

    // Restart it: back through recovering to healthy on every node.
    services[0].restart().await.expect("restart the service");
    let restarted = Instant::now();
    let healthy = time_until_state(
        &clients,
        "site1",
        SiteState::Healthy,
        restarted,
        Duration::from_secs(30),
    )
    .await;
    for (id, elapsed) in &healthy {
        println!("recovery: node {id} reported site1 healthy {elapsed:?} after the restart");
    }
    for (id, client) in &clients {
        let audit = client.audit(0, 10_000, false).await.expect("audit");
        let summaries: Vec<&str> = audit
            .entries
            .iter()
            .map(|entry| entry.summary.as_str())
            .collect();
        let position = |needle: &str| {
            summaries
                .iter()
                .position(|summary| summary.starts_with(needle))
                .unwrap_or_else(|| panic!("node {id}: no `{needle}` in the audit log"))
        };
        let suspect = position("site transition: site1 healthy -> suspect");
        let lost = position("site transition: site1 suspect -> lost");
        let recovering = position("site transition: site1 lost -> recovering");
        let recovered = position("site transition: site1 recovering -> healthy");
        assert!(
            suspect < lost && lost < recovering && recovering < recovered,
            "node {id}: transitions out of order"
        );
        let rejected: Vec<&&str> = summaries
            .iter()
            .filter(|summary| summary.starts_with("rejected:"))
            .collect();
        println!(
            "audit on node {id}: {} entries, {} rejected {rejected:?}",
            summaries.len(),
            rejected.len()
        );
        let sites = client.sites(false).await.expect("sites");
        assert!(
            sites
                .sites
                .iter()
                .all(|site| site.state == SiteState::Healthy),
            "node {id}: {sites:?}"
        );
    }

    // A follower's controller stops: the leader records it unreachable, and reachable again
    // once it is back; its site stays healthy since its services still answer.
    let leader = cluster.wait_for_leader(Duration::from_secs(10)).await;
    let follower = cluster
        .node_ids()
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower");
    let follower_site = format!("site{follower}");
    let reachable = |sites: &Sites| {
        sites
            .sites
            .iter()
            .find(|view| view.site.as_str() == follower_site)
            .map(|view| (view.controller_reachable, view.state))
    };
    cluster.kill(follower);
    let leader_client = cluster.admin(leader);
    let deadline = Deadline::after(Duration::from_secs(15));
    loop {
        let sites = leader_client.sites(false).await.expect("sites");
        if reachable(&sites) == Some((false, SiteState::Healthy)) {
            break;
        }
        assert!(
            !deadline.passed(),
            "leader never recorded node {follower} unreachable: {sites:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.start(follower);
    let deadline = Deadline::after(Duration::from_secs(30));
    loop {
        let sites = leader_client.sites(false).await.expect("sites");
        if reachable(&sites) == Some((true, SiteState::Healthy)) {
            break;
        }
        assert!(
            !deadline.passed(),
            "leader never recorded node {follower} reachable again: {sites:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let audit = leader_client.audit(0, 10_000, false).await.expect("audit");
    for needle in [
        format!("controller contact: node {follower} unreachable"),
        format!("controller contact: node {follower} reachable"),
    ] {
        assert!(
            audit.entries.iter().any(|entry| entry.summary == needle),
            "no `{needle}` in the audit log"
        );
    }
}

/// Waits until `client`'s audit log has every node's first `up` verdict on every endpoint.
async fn wait_for_first_verdicts(cluster: &TestCluster, id: u64) {
    let client = cluster.admin(id);
    let deadline = Deadline::after(Duration::from_secs(30));
    loop {
        let audit = client.audit(0, 10_000, false).await;
        let missing = audit.as_ref().map(missing_up_verdicts);
        if missing.as_ref().is_ok_and(|missing| missing.is_empty()) {
            return;
        }
        assert!(
            !deadline.passed(),
            "node {id} never saw every first verdict: missing {missing:?}\n{}",
            cluster.log(id)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verdict_seen_without_a_quorum_commits_once_a_majority_returns() {
    let mut cluster = TestCluster::new(ClusterOptions {
        with_service: true,
        ..ClusterOptions::default()
    });
    let mut services = services_on(&cluster).await;
    cluster.start_all();
    cluster.wait_for_leader(Duration::from_secs(30)).await;
    wait_for_first_verdicts(&cluster, 1).await;

    // Node 1 alone: it keeps probing and sees site3 go down, but cannot commit that.
    cluster.kill(2);
    cluster.kill(3);
    services[2].stop().await;
    let metrics_url = format!("{}/metrics", cluster.api_url(1));
    let deadline = Deadline::after(Duration::from_secs(15));
    loop {
        let text = match reqwest::get(&metrics_url).await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if text.contains("switchyard_verdict_flips_total{verdict=\"down\"} 1") {
            break;
        }
        assert!(
            !deadline.passed(),
            "node 1 never flipped site3 down on its own: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = cluster.admin(1);
    // The summary goes on with the last error, as in "... down (connection refused)".
    let down = "verdict: node 1 sees www/site3/1 down";
    let audit = client.audit(0, 10_000, false).await.expect("audit");
    assert!(
        !audit
            .entries
            .iter()
            .any(|entry| entry.summary.starts_with(down)),
        "committed without a quorum"
    );

    // A majority returns: node 1's pending verdict commits, and site3 is lost.
    cluster.start(2);
    cluster.start(3);
    cluster.wait_for_leader(Duration::from_secs(30)).await;
    let deadline = Deadline::after(Duration::from_secs(30));
    loop {
        let audit = client.audit(0, 10_000, false).await;
        let sites = client.sites(false).await;
        let committed = audit.as_ref().is_ok_and(|audit| {
            audit
                .entries
                .iter()
                .any(|entry| entry.summary.starts_with(down))
        });
        let lost = sites
            .as_ref()
            .is_ok_and(|sites| state_of(sites, "site3") == Some(SiteState::Lost));
        if committed && lost {
            break;
        }
        assert!(
            !deadline.passed(),
            "node 1's verdict never committed (committed {committed}, lost {lost}): {sites:?}\n{}",
            cluster.log(1)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
