//! The leader-only executor under faults (issue 6): a leader killed mid-step, failing webhooks,
//! rollback, the safety rule, and the loss of the leader's own site.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use switchyard_tests::{TestCluster, WebhookReceiver, a_records, wait_until};

use crate::failover::{EVACUATE, cluster_with_services, executions};

const OPERATOR: &str = "test-operator-token";
const LONG: Duration = Duration::from_secs(60);

pub(crate) async fn apply(cluster: &TestCluster, source: &str) {
    let client = cluster.client(1, Some(OPERATOR));
    client
        .call::<_, Value>(
            Method::POST,
            "/v1/runbooks",
            Some(&json!({ "source": source })),
        )
        .await
        .expect("runbook applied");
}

pub(crate) async fn run(cluster: &TestCluster, runbook: &str, site: &str) -> u64 {
    let body = json!({ "runbook": runbook, "site": site });
    let started: Value = cluster
        .client(2, Some(OPERATOR))
        .call(Method::POST, "/v1/executions", Some(&body))
        .await
        .expect("execution started");
    started["id"].as_u64().expect("execution id")
}

async fn detail(cluster: &TestCluster, node: u64, id: u64) -> Option<Value> {
    cluster
        .admin(node)
        .call(Method::GET, &format!("/v1/executions/{id}"), None::<&()>)
        .await
        .ok()
}

/// Waits until execution `id` ends, as seen from any running node, and returns its record.
pub(crate) async fn wait_ended(cluster: &TestCluster, nodes: &[u64], id: u64) -> Value {
    wait_until(&format!("execution {id} to end"), LONG, || async move {
        for node in nodes {
            if let Some(record) = detail(cluster, *node, id).await {
                let state = record["execution"]["state"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                if !["running", "rolling_back"].contains(&state.as_str()) {
                    return Some(record);
                }
            }
        }
        None
    })
    .await
}

pub(crate) fn step_state<'a>(record: &'a Value, step: &str) -> &'a Value {
    let steps = record["execution"]["steps"]
        .as_array()
        .into_iter()
        .flatten();
    let rollback = record["execution"]["rollback"]
        .as_array()
        .into_iter()
        .flatten();
    let found = steps
        .chain(rollback)
        .find(|candidate| candidate["id"] == step);
    &found.unwrap_or_else(|| panic!("no step {step} in {record}"))["state"]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_resumes_a_step_in_flight_and_each_webhook_key_has_one_effect() {
    let receiver = WebhookReceiver::start(200).await;
    let runbook = format!(
        "name: notify-and-wait\ndescription: webhook, 3 s wait, webhook\ntriggers: [ {{ manual: {{}} }} ]\nsteps:\n  \
         - webhook: {{ id: before, url: \"{}\", method: POST, body: {{ site: \"${{site}}\" }}, expected_status: [200], timeout: 5s }}\n  \
         - wait: {{ id: pause, duration: 3s, timeout: 30s }}\n  \
         - webhook: {{ id: after, url: \"{}\", method: POST, expected_status: [200], timeout: 5s }}\n",
        receiver.url("/before"),
        receiver.url("/after")
    );
    let (mut cluster, _services) = cluster_with_services(EVACUATE).await;
    apply(&cluster, &runbook).await;
    let leader = cluster.wait_for_leader(LONG).await;
    let id = run(&cluster, "notify-and-wait", "site2").await;
    wait_until("the wait step to be in flight", LONG, || {
        let cluster = &cluster;
        async move {
            let record = detail(cluster, leader, id).await?;
            step_state(&record, "pause").get("running").map(|_| ())
        }
    })
    .await;

    cluster.kill(leader);
    let survivors: Vec<u64> = cluster
        .node_ids()
        .into_iter()
        .filter(|node| *node != leader)
        .collect();
    let new_leader = cluster.wait_for_leader(LONG).await;
    assert_ne!(new_leader, leader);
    let record = wait_ended(&cluster, &survivors, id).await;
    assert_eq!(record["execution"]["state"], "succeeded", "{record}");

    let mut keys: BTreeMap<String, usize> = BTreeMap::new();
    for call in receiver.calls() {
        *keys
            .entry(
                call.idempotency_key
                    .expect("every webhook call has an idempotency key"),
            )
            .or_default() += 1;
    }
    // Sorted, as the map's keys are.
    let expected: Vec<String> = [format!("{id}/after/1"), format!("{id}/before/1")].into();
    assert_eq!(
        keys.keys().cloned().collect::<Vec<_>>(),
        expected,
        "one effect per step, keyed execution/step/attempt"
    );
    let pause = record["execution"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|step| step["id"] == "pause")
        .cloned();
    let intents = pause.expect("pause step")["attempts"][0]["intents"]
        .as_array()
        .map_or(0, Vec::len);
    assert!(
        intents >= 2,
        "the new leader committed its own intent before resuming: {record}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_webhook_retries_then_rolls_the_routing_back() {
    let receiver = WebhookReceiver::start(500).await;
    let runbook = format!(
        "name: shift-then-notify\ndescription: shift away, then a webhook that fails\ntriggers: [ {{ manual: {{}} }} ]\n\
         on_failure: rollback\nsteps:\n  \
         - shift_traffic: {{ id: shift, services: [www], away_from: \"${{site}}\" }}\n  \
         - webhook: {{ id: notify, url: \"{}\", method: POST, expected_status: [200], retries: 2, timeout: 20s }}\n\
         rollback:\n  - shift_traffic: {{ id: restore, services: [www], restore: \"${{site}}\" }}\n",
        receiver.url("/notify")
    );
    let (cluster, _services) = cluster_with_services(EVACUATE).await;
    apply(&cluster, &runbook).await;
    let id = run(&cluster, "shift-then-notify", "site2").await;
    let record = wait_ended(&cluster, &cluster.node_ids(), id).await;
    assert_eq!(record["execution"]["state"], "rolled_back", "{record}");
    let error = step_state(&record, "notify")["failed"]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains("answered 500"),
        "the error says what failed: {error}"
    );
    assert_eq!(receiver.calls().len(), 3, "one attempt and two retries");
    assert_eq!(step_state(&record, "restore"), "succeeded", "{record}");
    let all: Vec<String> = (1..=3)
        .map(|site| cluster.endpoint(site).ip().to_string())
        .collect();
    for node in cluster.node_ids() {
        assert_eq!(
            a_records(cluster.dns_addr(node), "www.test.example.").await,
            all,
            "routing restored on node {node}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_safety_rule_stops_a_runbook_that_would_remove_the_last_site() {
    let runbook = "name: empty-www\ndescription: take every site out of rotation\ntriggers: [ { manual: {} } ]\nsteps:\n  \
                   - shift_traffic: { id: one, services: [www], away_from: site1 }\n  \
                   - shift_traffic: { id: two, services: [www], away_from: site2 }\n  \
                   - shift_traffic: { id: three, services: [www], away_from: site3 }\n";
    let (cluster, _services) = cluster_with_services(EVACUATE).await;
    apply(&cluster, runbook).await;
    let id = run(&cluster, "empty-www", "site1").await;
    let record = wait_ended(&cluster, &cluster.node_ids(), id).await;
    assert_eq!(record["execution"]["state"], "failed", "{record}");
    let error = step_state(&record, "three")["failed"]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains("rule min_sites_in_rotation"),
        "the refusing rule is named: {error}"
    );
    let last = vec![cluster.endpoint(3).ip().to_string()];
    for node in cluster.node_ids() {
        assert_eq!(
            a_records(cluster.dns_addr(node), "www.test.example.").await,
            last,
            "site3 stays in rotation"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_survivors_fail_over_when_the_leaders_own_site_is_lost() {
    let (mut cluster, mut services) = cluster_with_services(EVACUATE).await;
    let leader = cluster.wait_for_leader(LONG).await;
    // Node N runs in site N: lose the controller and the service of the leader's site together.
    cluster.kill(leader);
    services[leader as usize - 1].stop().await;
    let survivors: Vec<u64> = cluster
        .node_ids()
        .into_iter()
        .filter(|node| *node != leader)
        .collect();
    let expected: Vec<String> = (1..=3)
        .filter(|site| *site != leader as usize)
        .map(|site| cluster.endpoint(site).ip().to_string())
        .collect();
    for node in &survivors {
        let server = cluster.dns_addr(*node);
        wait_until("the survivors' DNS to drop the leader's site", LONG, || {
            let expected = expected.clone();
            async move { (a_records(server, "www.test.example.").await == expected).then_some(()) }
        })
        .await;
    }
    let list = executions(&cluster, survivors[0]).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["trigger"], "site_lost", "{list:?}");
}
