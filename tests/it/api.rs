//! API and node-to-node authentication, role checks, and bad input (issue 3).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use switchyard_api::ErrorCode;
use switchyard_tests::{ClusterOptions, TestCluster};

async fn cluster() -> TestCluster {
    let mut cluster = TestCluster::new(ClusterOptions::default());
    cluster.start_all();
    cluster.wait_for_leader(Duration::from_secs(30)).await;
    cluster
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_checks_tokens_and_roles_and_raft_rpc_checks_the_secret() {
    let cluster = cluster().await;
    let code = |result: Result<switchyard_api::WriteResult, switchyard_api::ClientError>| {
        result
            .expect_err("refused")
            .api_error()
            .expect("api error")
            .code
    };
    assert_eq!(
        code(cluster.client(1, None).annotate("x").await),
        ErrorCode::Unauthenticated
    );
    assert_eq!(
        code(cluster.client(1, Some("wrong-token")).annotate("x").await),
        ErrorCode::Unauthenticated
    );
    assert_eq!(
        code(
            cluster
                .client(1, Some("test-viewer-token"))
                .annotate("x")
                .await
        ),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code(
            cluster
                .client(1, Some("test-auditor-token"))
                .annotate("x")
                .await
        ),
        ErrorCode::Forbidden
    );
    cluster
        .client(1, Some("test-operator-token"))
        .annotate("operator may")
        .await
        .expect("operator writes");
    cluster
        .client(1, Some("test-viewer-token"))
        .status(false)
        .await
        .expect("viewer reads status");
    let page = cluster
        .client(2, Some("test-auditor-token"))
        .audit(0, 10, true)
        .await
        .expect("auditor verifies");
    assert!(page.verification.expect("verified").valid);
    // Liveness needs no token.
    cluster
        .client(3, None)
        .health()
        .await
        .expect("health without a token");

    let http = reqwest::Client::new();
    for (header, expected) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some("Bearer not-the-secret"), StatusCode::UNAUTHORIZED),
    ] {
        let mut request = http
            .post(format!("{}/raft/vote", cluster.raft_url(1)))
            .json(&serde_json::json!({}));
        if let Some(header) = header {
            request = request
                .header("authorization", header)
                .header("x-switchyard-from", "2")
                .header("x-switchyard-to", "1");
        }
        let response = request.send().await.expect("raft rpc answered");
        assert_eq!(response.status(), expected, "raft rpc with {header:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_4xx_with_a_message_and_the_node_carries_on() {
    let cluster = cluster().await;
    let http = reqwest::Client::new();
    let url = format!("{}/v1/annotations", cluster.api_url(1));
    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "malformed JSON",
            b"{\"text\": ".to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid JSON body",
        ),
        (
            "unknown field",
            br#"{"text": "x", "colour": "red"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "unknown field `colour`",
        ),
        (
            "wrong type",
            br#"{"text": 5}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "invalid type",
        ),
        (
            "oversized",
            vec![b'x'; 400 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
            "larger than",
        ),
    ];
    for (what, body, status, message) in cases {
        let response = http
            .post(&url)
            .bearer_auth("test-operator-token")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("answered");
        assert_eq!(response.status(), status, "{what}");
        let body: Value = response.json().await.expect("JSON error body");
        let text = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            text.contains(message),
            "{what}: message {text:?} should mention {message:?}"
        );
    }
    let response = http
        .get(format!("{}/v1/audit?from=abc", cluster.api_url(1)))
        .bearer_auth("test-viewer-token")
        .send()
        .await
        .expect("answered");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "bad query");
    cluster
        .client(1, Some("test-operator-token"))
        .annotate("still fine")
        .await
        .expect("node carries on");
}
