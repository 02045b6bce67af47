//! Automatic failover end to end (issue 6): a site's services die, the detector declares the
//! site lost, the leader runs the pre-approved runbook, and every node's DNS stops answering
//! with the lost site.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;
use switchyard_tests::{Bind, ClusterOptions, TestCluster, a_records, add_bind_zone, wait_until};

/// The evacuation runbook of the test cluster's `www` service.
pub const EVACUATE: &str = r#"# Test fixture: evacuate www from a lost site; the rollback puts the site back.
name: evacuate-site
description: Move www away from a lost site.
triggers: [ { site_lost: {} }, { manual: {} } ]
pre_approved: true
rto: 30s
steps:
  - shift_traffic: { id: shift, services: [www], away_from: "${site}", timeout: 10s, retries: 2 }
  - verify_dns: { id: verify, services: [www], timeout: 20s }
rollback:
  - shift_traffic: { id: restore, services: [www], restore: "${site}" }
"#;

pub use switchyard_tests::cluster_with_services;

/// Every execution the node knows, as JSON.
pub async fn executions(cluster: &TestCluster, node: u64) -> Vec<Value> {
    let list: Value = cluster
        .admin(node)
        .call(Method::GET, "/v1/executions", None::<&()>)
        .await
        .expect("list executions");
    let items = list.get("executions").cloned().unwrap_or(list);
    items.as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_site_is_evacuated_by_the_pre_approved_runbook_on_every_node() {
    let (cluster, mut services) = cluster_with_services(EVACUATE).await;
    let all: Vec<String> = (1..=3)
        .map(|site| cluster.endpoint(site).ip().to_string())
        .collect();
    for node in cluster.node_ids() {
        let answers = wait_until(
            "every node to answer with every site",
            Duration::from_secs(30),
            || {
                let server = cluster.dns_addr(node);
                let all = all.clone();
                async move {
                    Some(a_records(server, "www.test.example.").await)
                        .filter(|answers| *answers == all)
                }
            },
        )
        .await;
        assert_eq!(answers.len(), 3);
    }

    let killed_at = Instant::now();
    services[0].stop().await;
    let survivors = all[1..].to_vec();
    for node in cluster.node_ids() {
        let server = cluster.dns_addr(node);
        wait_until("every node's DNS to drop the lost site", Duration::from_secs(60), || {
            let survivors = survivors.clone();
            async move { (a_records(server, "www.test.example.").await == survivors).then_some(()) }
        })
        .await;
    }
    eprintln!(
        "fault to every node answering without site1: {:.2?}",
        killed_at.elapsed()
    );

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
    let id = execution["id"].as_u64().expect("execution id");
    let record: Value = cluster
        .admin(3)
        .call(Method::GET, &format!("/v1/executions/{id}"), None::<&()>)
        .await
        .expect("show");
    let text = record.to_string();
    for expected in ["site_lost", "site1", "shift", "verify"] {
        assert!(
            text.contains(expected),
            "execution record mentions {expected}: {text}"
        );
    }
    assert_eq!(
        executions(&cluster, 2).await.len(),
        1,
        "one execution per site loss"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_site_leaves_the_answers_of_a_real_bind_too() {
    let mut cluster = TestCluster::new(ClusterOptions {
        with_service: true,
        ..ClusterOptions::default()
    });
    let bind_dir = cluster.dir().join("bind");
    std::fs::create_dir_all(&bind_dir).expect("bind dir");
    let bind = Bind::start(&bind_dir);
    add_bind_zone(&cluster, &bind);
    let mut services = cluster.serve_endpoints().await;
    cluster.start_all();
    cluster.wait_for_leader(Duration::from_secs(30)).await;
    cluster.apply_runbook(2, EVACUATE).await;
    let all: Vec<String> = (1..=3)
        .map(|site| cluster.endpoint(site).ip().to_string())
        .collect();
    let bind_addr = bind.addr();
    wait_until("BIND to serve every site", Duration::from_secs(30), || {
        let all = all.clone();
        async move { (a_records(bind_addr, "www.ext.example.").await == all).then_some(()) }
    })
    .await;

    services[0].stop().await;
    let survivors = all[1..].to_vec();
    wait_until("BIND to stop answering with the lost site", Duration::from_secs(60), || {
        let survivors = survivors.clone();
        async move { (a_records(bind_addr, "www.ext.example.").await == survivors).then_some(()) }
    })
    .await;
    for node in cluster.node_ids() {
        assert_eq!(
            a_records(cluster.dns_addr(node), "www.test.example.").await,
            survivors,
            "node {node}"
        );
    }
    // The verify step asked BIND too (it is the ext.example. zone's nameserver): its evidence says so.
    let execution = wait_until("the execution to end", Duration::from_secs(30), || {
        let cluster = &cluster;
        async move {
            executions(cluster, 1)
                .await
                .into_iter()
                .find(|execution| execution["state"] != "running")
        }
    })
    .await;
    let id = execution["id"].as_u64().expect("execution id");
    let record: Value = cluster
        .admin(1)
        .call(Method::GET, &format!("/v1/executions/{id}"), None::<&()>)
        .await
        .expect("show");
    assert_eq!(record["summary"]["state"], "succeeded", "{record}");
    assert!(
        record.to_string().contains(&bind_addr.to_string()),
        "verification evidence includes BIND: {record}"
    );
}
