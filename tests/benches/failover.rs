//! Failover time (issue 6): from killing a site's services to every authoritative server
//! answering without it, split into detection (kill → loss committed) and the rest (loss
//! committed → the last embedded server answers without the site), over many trials.
//!
//! Run with `cargo build --release -p switchyard-cli && cargo bench -p switchyard-tests --bench
//! failover`. Each trial is a fresh 3-node cluster (`probe_interval` 500 ms, `fall` 3,
//! `hold` 1 s, fast confirmation every 100 ms). `BENCH_TRIALS` sets the count (default 20).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde_json::Value;
use switchyard_core::config::RecordType;
use switchyard_core::routing::{Rrset, RrsetKey};
use switchyard_tests::{ClusterOptions, TestCluster, wait_until};

const RUNBOOK: &str = r#"# Benchmark fixture: evacuate www from a lost site.
name: evacuate-site
description: Move www away from a lost site.
triggers: [ { site_lost: {} } ]
pre_approved: true
steps:
  - shift_traffic: { id: shift, services: [www], away_from: "${site}", timeout: 10s }
"#;

fn millis_since_epoch(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    let rank = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

async fn trial() -> (f64, f64) {
    let mut cluster = TestCluster::new(ClusterOptions {
        with_service: true,
        ..ClusterOptions::default()
    });
    let mut services = cluster.serve_endpoints().await;
    cluster.start_all();
    cluster.wait_for_leader(Duration::from_secs(30)).await;
    cluster.apply_runbook(1, RUNBOOK).await;
    let admin = cluster.admin(1);
    wait_until("every site healthy", Duration::from_secs(30), || {
        let admin = admin.clone();
        async move {
            let sites: Value = admin
                .call(Method::GET, "/v1/sites", None::<&()>)
                .await
                .ok()?;
            let all = sites["sites"].as_array()?;
            all.iter()
                .all(|site| site["state"] == "healthy" && site["consensus"] == "up")
                .then_some(())
        }
    })
    .await;

    let survivors: BTreeSet<IpAddr> = (2..=3).map(|site| cluster.endpoint(site).ip()).collect();
    let key = RrsetKey {
        zone: "test.example.".into(),
        name: "www.test.example.".to_owned(),
        record_type: RecordType::A,
    };
    let expected = BTreeMap::from([(
        key,
        Rrset {
            ttl: Duration::from_secs(5),
            values: survivors,
        },
    )]);
    let servers: Vec<SocketAddr> = cluster
        .node_ids()
        .into_iter()
        .map(|node| cluster.dns_addr(node))
        .collect();

    let killed = SystemTime::now();
    services[0].stop().await;
    let report = switchyard_server::dns_tools::verify(
        &expected,
        &servers,
        &[],
        Duration::from_secs(30),
        Duration::from_millis(2),
    )
    .await;
    assert!(report.converged, "every server answers without site1");
    let served = report
        .checks
        .iter()
        .filter_map(|check| check.first_seen)
        .max()
        .expect("first seen");
    let total = served.as_secs_f64() * 1000.0;

    let list: Value = admin
        .call(Method::GET, "/v1/executions", None::<&()>)
        .await
        .expect("executions");
    let id = list["executions"][0]["id"].as_u64().expect("an execution");
    let detail: Value = admin
        .call(Method::GET, &format!("/v1/executions/{id}"), None::<&()>)
        .await
        .expect("detail");
    let lost = detail["recovery"]["lost"].as_u64().expect("loss committed");
    let detection = lost.saturating_sub(millis_since_epoch(killed)) as f64;
    (detection, total - detection)
}

fn main() {
    let trials: usize = std::env::var("BENCH_TRIALS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(20);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut detection = Vec::new();
    let mut rest = Vec::new();
    let mut total = Vec::new();
    for number in 1..=trials {
        let (detected, after) = runtime.block_on(trial());
        eprintln!("trial {number}: detection {detected:.0} ms, rest {after:.0} ms");
        detection.push(detected);
        rest.push(after);
        total.push(detected + after);
    }
    for series in [&mut detection, &mut rest, &mut total] {
        series.sort_by(f64::total_cmp);
    }
    println!(
        "failover on loopback, 3 nodes, probe_interval 500ms, fall 3, hold 1s, {trials} trials"
    );
    println!("| part | p50 | p99 | max |");
    println!("| --- | --- | --- | --- |");
    for (name, series) in [
        ("detection (kill -> loss committed)", &detection),
        ("rest (loss committed -> every server answers)", &rest),
        ("total", &total),
    ] {
        println!(
            "| {name} | {:.0} ms | {:.0} ms | {:.0} ms |",
            percentile(series, 0.5),
            percentile(series, 0.99),
            series.last().copied().unwrap_or_default()
        );
    }
}
