//! Per-service failover end to end (issue 6 item 5): one service's endpoint dies in a site whose
//! other service is fine; the detector reports `service_unhealthy` (not a site loss), the leader
//! runs the pre-approved runbook for that service, and every node's DNS drops the site from that
//! service only.

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;
use switchyard_tests::{ClusterOptions, HttpService, TestCluster, a_records, wait_until};

/// Moves www away from a site where only www is unhealthy.
const WWW_FAILOVER: &str = r#"# Test fixture: per-service failover of www.
name: www-failover
description: Move www away from a site where its endpoints are down.
triggers: [ { service_unhealthy: { services: [www] } } ]
pre_approved: true
rto: 30s
steps:
  - shift_traffic: { id: shift, services: [www], away_from: "${site}", timeout: 10s, retries: 2 }
rollback:
  - shift_traffic: { id: restore, services: [www], restore: "${site}" }
"#;

/// A free port on `address` (a loopback address).
fn free_port_on(address: &str) -> u16 {
    let listener = TcpListener::bind((address, 0)).expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// Adds service `api` (one endpoint per site, on `127.0.<site>.2`) and its `api` record to the
/// harness configuration; returns the endpoints.
fn add_api_service(cluster: &TestCluster, sites: usize) -> Vec<SocketAddr> {
    let path = cluster.config_path();
    let yaml = std::fs::read_to_string(path).expect("read config");
    let mut service = String::from(
        "  - id: api\n    check: { http: { path: /healthz, expected_status: [200], body_contains: ok } }\n    endpoints:\n",
    );
    let mut endpoints = Vec::new();
    for site in 1..=sites {
        let address = format!("127.0.{site}.2");
        let port = free_port_on(&address);
        service.push_str(&format!(
            "      - {{ site: site{site}, address: {address}, port: {port} }}\n"
        ));
        endpoints.push(format!("{address}:{port}").parse().expect("endpoint"));
    }
    let www_record = "      - { name: www, type: A, ttl: 5s, service: www, fail_mode: open }\n";
    assert!(
        yaml.contains("\nzones:\n") && yaml.contains(www_record),
        "unexpected harness config:\n{yaml}"
    );
    let api_record = "      - { name: api, type: A, ttl: 5s, service: api, fail_mode: open }\n";
    let yaml = yaml
        .replacen("\nzones:\n", &format!("\n{service}zones:\n"), 1)
        .replacen(www_record, &format!("{www_record}{api_record}"), 1);
    std::fs::write(path, yaml).expect("write config");
    endpoints
}

/// Waits until node `node` answers `name` with exactly `expected`.
async fn wait_for_answer(cluster: &TestCluster, node: u64, name: &str, expected: &[String]) {
    let server = cluster.dns_addr(node);
    wait_until(
        &format!("node {node} to answer {name} with {expected:?}"),
        Duration::from_secs(60),
        || async move { (a_records(server, name).await == expected).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_service_down_in_a_fine_site_fails_over_that_service_only() {
    let mut cluster = TestCluster::new(ClusterOptions {
        with_service: true,
        ..ClusterOptions::default()
    });
    let api_endpoints = add_api_service(&cluster, 3);
    let mut www = Vec::new();
    let mut api = Vec::new();
    for site in 1..=3 {
        www.push(
            HttpService::start(cluster.endpoint(site))
                .await
                .expect("start www endpoint"),
        );
        api.push(
            HttpService::start(api_endpoints[site - 1])
                .await
                .expect("start api endpoint"),
        );
    }
    cluster.start_all();
    cluster.wait_for_leader(Duration::from_secs(30)).await;
    cluster.apply_runbook(2, WWW_FAILOVER).await;

    let www_all: Vec<String> = (1..=3)
        .map(|site| cluster.endpoint(site).ip().to_string())
        .collect();
    let api_all: Vec<String> = api_endpoints
        .iter()
        .map(|endpoint| endpoint.ip().to_string())
        .collect();
    for node in cluster.node_ids() {
        wait_for_answer(&cluster, node, "www.test.example.", &www_all).await;
        wait_for_answer(&cluster, node, "api.test.example.", &api_all).await;
    }

    let killed_at = Instant::now();
    www[0].stop().await;
    let www_survivors = www_all[1..].to_vec();
    for node in cluster.node_ids() {
        wait_for_answer(&cluster, node, "www.test.example.", &www_survivors).await;
    }
    eprintln!(
        "www fault to every node answering www without site1: {:.2?}",
        killed_at.elapsed()
    );
    for node in cluster.node_ids() {
        assert_eq!(
            a_records(cluster.dns_addr(node), "api.test.example.").await,
            api_all,
            "node {node} still answers api with every site"
        );
    }

    let execution = wait_until("the execution to succeed", Duration::from_secs(30), || {
        let cluster = &cluster;
        async move {
            executions(cluster, 1)
                .await
                .into_iter()
                .find(|execution| execution["state"] == "succeeded")
        }
    })
    .await;
    assert_eq!(execution["trigger"], "service_unhealthy", "{execution}");
    assert_eq!(execution["site"], "site1", "{execution}");
    assert_eq!(execution["runbook"], "www-failover", "{execution}");
    let all = executions(&cluster, 3).await;
    assert_eq!(all.len(), 1, "one execution for the one event: {all:?}");

    // `GET /v1/services` shows www unhealthy in site1 and every other pair healthy.
    let services: Value = cluster
        .admin(3)
        .call(Method::GET, "/v1/services?consistent=true", None::<&()>)
        .await
        .expect("list services");
    let states: Vec<(String, String, String)> = services["services"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|health| {
            let field = |name: &str| health[name].as_str().unwrap_or_default().to_owned();
            (field("service"), field("site"), field("state"))
        })
        .collect();
    for service in ["api", "www"] {
        for site in ["site1", "site2", "site3"] {
            let expected = if (service, site) == ("www", "site1") {
                "unhealthy"
            } else {
                "healthy"
            };
            assert!(
                states.contains(&(service.to_owned(), site.to_owned(), expected.to_owned())),
                "{service} in {site} is {expected}: {states:?}"
            );
        }
    }

    // The site itself was never judged down: no site transition happened.
    let sites: Value = cluster
        .admin(2)
        .call(Method::GET, "/v1/sites", None::<&()>)
        .await
        .expect("list sites");
    let text = sites.to_string();
    assert!(
        !text.contains("\"lost\"") && !text.contains("\"suspect\""),
        "no site is suspect or lost: {text}"
    );
}

/// Every execution the node knows, as JSON.
async fn executions(cluster: &TestCluster, node: u64) -> Vec<Value> {
    let list: Value = cluster
        .admin(node)
        .call(Method::GET, "/v1/executions", None::<&()>)
        .await
        .expect("list executions");
    let items = list.get("executions").cloned().unwrap_or(list);
    items.as_array().cloned().unwrap_or_default()
}
