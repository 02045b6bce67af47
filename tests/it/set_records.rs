//! The `set_records` step end to end (issue 6): a manual run pins `www`'s A record on every
//! node's embedded DNS, verified by `verify_dns`, and a second run unpins it so the answers
//! follow the routing again.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use switchyard_tests::{TestCluster, a_records, wait_until};

use crate::executor::{apply, run, step_state, wait_ended};
use crate::failover::{EVACUATE, cluster_with_services};

/// An address no site has: answers holding it can only come from the pin.
const PINNED: &str = "127.0.9.9";

const PIN: &str = r#"# Test fixture: pin www to one address on every authoritative server.
name: pin-www
description: Pin www to one address, whatever the routing says.
triggers: [ { manual: {} } ]
steps:
  - set_records: { id: pin, zone: test.example., records: [ { name: www, type: A, ttl: 5s, values: [127.0.9.9] } ] }
  - verify_dns: { id: verify, services: [www], timeout: 20s }
"#;

const UNPIN: &str = r#"# Test fixture: remove the pin on www, so its answer follows the routing again.
name: unpin-www
description: Remove the pin on www.
triggers: [ { manual: {} } ]
steps:
  - set_records: { id: unpin, zone: test.example., records: [ { name: www, type: A, values: [] } ] }
  - verify_dns: { id: verify, services: [www], timeout: 20s }
"#;

/// The routing view of node `node`: `www`'s values as served, and the SOA serial.
async fn routing_view(cluster: &TestCluster, node: u64) -> (Vec<String>, u64) {
    let view: Value = cluster
        .admin(node)
        .call(Method::GET, "/v1/routing", None::<&()>)
        .await
        .expect("routing view");
    let values = view["zones"][0]["rrsets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|rrset| rrset["name"] == "www.test.example.")
        .and_then(|rrset| rrset["values"].as_array())
        .map(|values| {
            values
                .iter()
                .filter_map(|value| value.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    (values, view["serial"].as_u64().unwrap_or_default())
}

/// Step `id` of an execution record, attempts and their evidence included, as JSON text.
fn step(record: &Value, id: &str) -> String {
    record["execution"]["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|step| step["id"] == id)
        .unwrap_or_else(|| panic!("no step {id} in {record}"))
        .to_string()
}

/// Waits until every node's DNS answers `www` with exactly `expected`.
async fn wait_answers(cluster: &TestCluster, expected: &[String], what: &str) {
    for node in cluster.node_ids() {
        let server = cluster.dns_addr(node);
        wait_until(what, Duration::from_secs(30), || async move {
            (a_records(server, "www.test.example.").await == expected).then_some(())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_records_pins_www_on_every_node_until_a_second_run_unpins_it() {
    let (cluster, _services) = cluster_with_services(EVACUATE).await;
    apply(&cluster, PIN).await;
    apply(&cluster, UNPIN).await;
    let routed: Vec<String> = (1..=3)
        .map(|site| cluster.endpoint(site).ip().to_string())
        .collect();
    wait_answers(&cluster, &routed, "every node to answer with every site").await;
    let (_, serial_before) = routing_view(&cluster, 1).await;

    let id = run(&cluster, "pin-www", "site1").await;
    let record = wait_ended(&cluster, &cluster.node_ids(), id).await;
    assert_eq!(record["execution"]["state"], "succeeded", "{record}");
    let pin = step(&record, "pin");
    assert!(
        pin.contains(PINNED) && pin.contains("records_index"),
        "the step's evidence shows the pin: {pin}"
    );
    let verify = step(&record, "verify");
    assert!(
        verify.contains(PINNED),
        "verify_dns expected the pinned answer: {verify}"
    );
    // verify_dns succeeded, so every embedded server already serves the pin: no waiting here.
    for node in cluster.node_ids() {
        assert_eq!(
            a_records(cluster.dns_addr(node), "www.test.example.").await,
            [PINNED],
            "node {node} serves the pinned set"
        );
        let (values, serial) = routing_view(&cluster, node).await;
        assert_eq!(
            values,
            [PINNED],
            "GET /v1/routing on node {node} shows the pin"
        );
        assert!(
            serial > serial_before,
            "the SOA serial moved on node {node}"
        );
    }

    let id = run(&cluster, "unpin-www", "site1").await;
    let record = wait_ended(&cluster, &cluster.node_ids(), id).await;
    assert_eq!(record["execution"]["state"], "succeeded", "{record}");
    for node in cluster.node_ids() {
        assert_eq!(
            a_records(cluster.dns_addr(node), "www.test.example.").await,
            routed,
            "node {node} answers from the routing again"
        );
        let (values, _) = routing_view(&cluster, node).await;
        assert_eq!(
            values, routed,
            "GET /v1/routing on node {node} shows the routing"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_records_on_a_name_the_zone_does_not_have_fails_naming_the_rejection() {
    let runbook = "name: pin-mail\ndescription: pin a record the zone does not have\ntriggers: [ { manual: {} } ]\nsteps:\n  \
                   - set_records: { id: pin, zone: test.example., records: [ { name: mail, type: A, values: [127.0.9.9] } ] }\n";
    let (cluster, _services) = cluster_with_services(EVACUATE).await;
    apply(&cluster, runbook).await;
    let id = run(&cluster, "pin-mail", "site1").await;
    let record = wait_ended(&cluster, &cluster.node_ids(), id).await;
    assert_eq!(record["execution"]["state"], "failed", "{record}");
    let error = step_state(&record, "pin")["failed"]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains("zone `test.example.` has no A record named `mail`"),
        "the rejection is named: {error}"
    );
}
