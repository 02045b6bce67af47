//! Runbook versions and manual executions through the API and the CLI (issue 6, items 1, 5
//! and 6): apply through a follower, diagnostics, role checks, manual runs and drills, and
//! aborts. Running steps is the executor's business and is tested with it.

use std::process::{Command, Output};
use std::time::Duration;

use switchyard_api::{ClientError, ErrorCode, NewExecution, RunbookApplied, RunbookInvalid};
use switchyard_core::execution::{ExecutionState, MilestoneKind, StepState};
use switchyard_core::id::{RunbookId, SiteId};
use switchyard_core::state::Actor;
use switchyard_tests::{ClusterOptions, HttpService, TestCluster, wait_until};

const OPERATOR_TOKEN: &str = "test-operator-token";
const VIEWER_TOKEN: &str = "test-viewer-token";
const WAIT: Duration = Duration::from_secs(30);

/// A manual-only runbook whose one step waits an hour, so that an execution stays running
/// whether or not an executor acts on it.
const HOLD: &str = "\
# Integration test runbook: holds a site for an hour.
# Blast radius: none, it only waits. Rollback: abort it.
name: hold-site
description: Wait for an hour.
triggers:
  - manual: {}
pre_approved: false
rto: 30s
steps:
  - wait: { id: pause, duration: 1h }
";

/// Two mistakes: a misspelt key on line 5 and an unknown service on line 9.
const BROKEN: &str = "\
# Integration test runbook with mistakes.
name: broken
description: Two mistakes.
triggers:
  - manul: {}
pre_approved: false
on_failure: halt
steps:
  - shift_traffic: { id: shift, services: [nope], away_from: \"${site}\" }
";

/// A cluster with the `www` service up in every site, a leader and a replicated configuration.
async fn cluster() -> (TestCluster, Vec<HttpService>, u64) {
    let mut cluster = TestCluster::new(ClusterOptions {
        with_service: true,
        ..ClusterOptions::default()
    });
    let services = cluster.serve_endpoints().await;
    cluster.start_all();
    let leader = cluster.wait_for_leader(WAIT).await;
    // Every node has the replicated configuration once `/v1/sites` says so.
    for id in cluster.node_ids() {
        let client = cluster.admin(id);
        wait_until("the replicated configuration", WAIT, || {
            let client = client.clone();
            async move {
                client
                    .sites(false)
                    .await
                    .ok()
                    .filter(|sites| sites.configured)
            }
        })
        .await;
    }
    (cluster, services, leader)
}

fn follower_of(cluster: &TestCluster, leader: u64) -> u64 {
    cluster
        .node_ids()
        .into_iter()
        .find(|id| *id != leader)
        .expect("a follower")
}

fn code<T: std::fmt::Debug>(result: Result<T, ClientError>) -> ErrorCode {
    result
        .expect_err("refused")
        .api_error()
        .expect("an API error")
        .code
}

async fn apply(
    cluster: &TestCluster,
    node: u64,
    source: &str,
    file: &str,
) -> Result<RunbookApplied, RunbookInvalid> {
    cluster
        .client(node, Some(OPERATOR_TOKEN))
        .apply_runbook(source, Some(file))
        .await
        .expect("the apply request is answered")
}

fn cli(cluster: &TestCluster, node: u64, token: &str, args: &[&str]) -> Output {
    Command::new(switchyard_tests::switchyard_bin())
        .args(args)
        .args(["--server", &cluster.api_url(node), "--token", token])
        .output()
        .expect("run switchyard")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runbook_versions_are_applied_through_a_follower_and_invalid_ones_list_every_mistake() {
    let (cluster, _services, leader) = cluster().await;
    let follower = follower_of(&cluster, leader);

    let first = apply(&cluster, follower, HOLD, "hold-site.yaml")
        .await
        .expect("valid");
    assert_eq!(first.name.as_str(), "hold-site");
    assert_eq!((first.version, first.created), (1, true));
    assert_eq!(first.leader.0, leader, "committed by the leader");
    assert_eq!(first.content_hash.len(), 64);

    // The same text again creates no version.
    let again = apply(&cluster, follower, HOLD, "hold-site.yaml")
        .await
        .expect("valid");
    assert_eq!((again.version, again.created), (1, false));
    assert_eq!(again.content_hash, first.content_hash);

    // A changed text is version 2.
    let changed = HOLD.replace("rto: 30s", "rto: 45s");
    let second = apply(&cluster, leader, &changed, "hold-site.yaml")
        .await
        .expect("valid");
    assert_eq!((second.version, second.created), (2, true));
    assert_ne!(second.content_hash, first.content_hash);

    // Every node lists the latest version, with its author; any role may read.
    for id in cluster.node_ids() {
        let client = cluster.client(id, Some(VIEWER_TOKEN));
        let list = wait_until("node to list version 2", WAIT, || {
            let client = client.clone();
            async move {
                let list = client.runbooks().await.ok()?;
                list.runbooks
                    .iter()
                    .any(|runbook| runbook.version == 2)
                    .then_some(list)
            }
        })
        .await;
        let summary = &list.runbooks[0];
        assert_eq!(list.runbooks.len(), 1);
        assert_eq!(summary.name.as_str(), "hold-site");
        assert_eq!(summary.content_hash, second.content_hash);
        assert_eq!(summary.author, Actor::Principal("test-operator".into()));
        assert_eq!(summary.triggers, ["manual"]);
        assert!(!summary.pre_approved);
        assert_eq!(summary.rto_ms, Some(45_000));
    }
    let shown = cluster
        .client(follower, Some(VIEWER_TOKEN))
        .runbook("hold-site", Some(1))
        .await
        .expect("version 1");
    assert_eq!(shown.source, HOLD);
    assert_eq!(shown.versions, [1, 2]);
    assert_eq!(shown.summary.content_hash, first.content_hash);
    assert_eq!(
        code(cluster.admin(leader).runbook("hold-site", Some(3)).await),
        ErrorCode::NotFound
    );
    assert_eq!(
        code(cluster.admin(leader).runbook("no-such-runbook", None).await),
        ErrorCode::NotFound
    );

    // An invalid runbook is refused with every mistake at its line and column.
    let invalid = apply(&cluster, follower, BROKEN, "broken.yaml")
        .await
        .expect_err("invalid");
    assert_eq!(invalid.error.code, ErrorCode::BadRequest);
    let errors: Vec<_> = invalid
        .diagnostics
        .iter()
        .filter(|diagnostic| diagnostic.severity == "error")
        .collect();
    assert!(errors.len() >= 2, "{:#?}", invalid.diagnostics);
    assert!(
        errors.iter().any(|error| error.line == 5),
        "the misspelt trigger on line 5: {:#?}",
        errors
    );
    assert!(
        errors
            .iter()
            .any(|error| error.line == 9 && error.message.contains("nope")),
        "the unknown service on line 9: {:#?}",
        errors
    );
    for error in &errors {
        assert!(
            error.rendered.starts_with(&format!(
                "broken.yaml:{}:{}: error: ",
                error.line, error.column
            )),
            "{}",
            error.rendered
        );
        assert!(invalid.error.message.contains(&error.rendered));
    }
    let list = cluster.admin(leader).runbooks().await.expect("list");
    assert!(
        list.runbooks
            .iter()
            .all(|runbook| runbook.name.as_str() != "broken")
    );

    // Roles: only operators apply; every request needs a token.
    let viewer = cluster.client(follower, Some(VIEWER_TOKEN));
    assert_eq!(
        code(viewer.apply_runbook(HOLD, None).await),
        ErrorCode::Forbidden
    );
    let anonymous = cluster.client(follower, None);
    assert_eq!(
        code(anonymous.apply_runbook(HOLD, None).await),
        ErrorCode::Unauthenticated
    );
    assert_eq!(code(anonymous.runbooks().await), ErrorCode::Unauthenticated);

    // The CLI: a valid and an invalid file in one call print both, and exit 1.
    let dir = cluster.dir().to_path_buf();
    let good = dir.join("hold-site.yaml");
    let bad = dir.join("broken.yaml");
    std::fs::write(&good, &changed).expect("write runbook");
    std::fs::write(&bad, BROKEN).expect("write runbook");
    let output = cli(
        &cluster,
        follower,
        OPERATOR_TOKEN,
        &[
            "runbook",
            "apply",
            good.to_str().expect("utf-8 path"),
            bad.to_str().expect("utf-8 path"),
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("hold-site unchanged, still version 2"),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!("{}:5:", bad.display())),
        "{stderr}"
    );
    assert!(stderr.contains(": error: "), "{stderr}");
    let output = cli(
        &cluster,
        leader,
        VIEWER_TOKEN,
        &["runbook", "list", "--output", "json"],
    );
    assert!(output.status.success());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(json["runbooks"][0]["name"], "hold-site", "{json}");
    assert_eq!(json["runbooks"][0]["version"], 2, "{json}");
    let output = cli(
        &cluster,
        leader,
        VIEWER_TOKEN,
        &["runbook", "show", "hold-site", "--version", "1"],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("version:     1 (of 1, 2)"), "{stdout}");
    assert!(stdout.contains("rto: 30s"), "{stdout}");
    let output = cli(
        &cluster,
        leader,
        VIEWER_TOKEN,
        &["runbook", "apply", good.to_str().expect("utf-8 path")],
    );
    assert_eq!(output.status.code(), Some(1), "viewer is refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_runs_and_drills_are_recorded_with_their_principal_and_aborts_are_recorded() {
    let (cluster, _services, leader) = cluster().await;
    let follower = follower_of(&cluster, leader);
    apply(&cluster, leader, HOLD, "hold-site.yaml")
        .await
        .expect("valid");
    let operator = cluster.client(follower, Some(OPERATOR_TOKEN));
    let request = |runbook: &str, site: &str, drill: bool| NewExecution {
        runbook: RunbookId::new(runbook),
        site: SiteId::new(site),
        drill,
        parameters: Default::default(),
        version: None,
    };

    // Refusals name what is wrong.
    let error = operator
        .start_execution(&request("no-such-runbook", "site1", false))
        .await
        .expect_err("unknown runbook");
    let api = error.api_error().expect("api error");
    assert_eq!(api.code, ErrorCode::NotFound);
    assert!(
        api.message.contains("no runbook named `no-such-runbook`"),
        "{}",
        api.message
    );
    let error = operator
        .start_execution(&request("hold-site", "atlantis", false))
        .await
        .expect_err("unknown site");
    let api = error.api_error().expect("api error");
    assert_eq!(api.code, ErrorCode::Rejected);
    assert!(api.message.contains("atlantis"), "{}", api.message);
    let mut pinned = request("hold-site", "site1", false);
    pinned.version = Some(7);
    assert_eq!(
        code(operator.start_execution(&pinned).await),
        ErrorCode::Rejected
    );
    let viewer = cluster.client(follower, Some(VIEWER_TOKEN));
    assert_eq!(
        code(
            viewer
                .start_execution(&request("hold-site", "site1", false))
                .await
        ),
        ErrorCode::Forbidden
    );
    assert_eq!(
        code(
            cluster
                .client(follower, None)
                .start_execution(&request("hold-site", "site1", false))
                .await
        ),
        ErrorCode::Unauthenticated
    );

    // A manual run through a follower.
    let started = operator
        .start_execution(&request("hold-site", "site1", false))
        .await
        .expect("started");
    assert_eq!(started.version, 1);
    assert_eq!(started.leader.0, leader);
    let id = started.id;
    let list = wait_until("the follower to list the execution", WAIT, || {
        let viewer = viewer.clone();
        async move {
            let list = viewer.executions().await.ok()?;
            list.executions
                .iter()
                .any(|execution| execution.id == id)
                .then_some(list)
        }
    })
    .await;
    let summary = &list.executions[0];
    assert_eq!(summary.id, id);
    assert_eq!(summary.runbook.as_str(), "hold-site");
    assert_eq!(summary.trigger, "manual");
    assert_eq!(summary.principal.as_deref(), Some("test-operator"));
    assert_eq!(summary.site.as_ref().map(SiteId::as_str), Some("site1"));
    assert_eq!(summary.state, ExecutionState::Running);
    assert_eq!(summary.rto_ms, Some(30_000));
    let detail = viewer.execution(id.0).await.expect("detail");
    assert_eq!(
        detail.execution.started_by,
        Actor::Principal("test-operator".into())
    );
    assert_eq!(detail.execution.steps.len(), 1);
    assert_eq!(detail.execution.steps[0].kind, "wait");
    assert_eq!(detail.execution.parameters["site"], "site1");
    assert_eq!(detail.execution.parameters["execution"], id.to_string());
    assert!(
        detail
            .execution
            .timeline
            .iter()
            .any(|milestone| milestone.kind == MilestoneKind::ExecutionStarted)
    );
    assert_eq!(detail.recovery.started, Some(detail.summary.started_at));
    assert_eq!(
        detail.recovery.detection_ms, None,
        "a manual run has no detection"
    );
    assert_eq!(code(viewer.execution(999_999).await), ErrorCode::NotFound);

    // A drill of a healthy site, through the CLI.
    let output = cli(
        &cluster,
        leader,
        OPERATOR_TOKEN,
        &[
            "run",
            "hold-site",
            "--site",
            "site2",
            "--drill",
            "--output",
            "json",
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    let drill_id = json["id"].as_u64().expect("execution id");
    let drill = cluster
        .admin(leader)
        .execution(drill_id)
        .await
        .expect("drill");
    assert_eq!(drill.summary.trigger, "drill");
    assert_eq!(drill.summary.principal.as_deref(), Some("test-operator"));

    // Abort: refused for a viewer, recorded for an operator (through the CLI).
    assert_eq!(
        code(viewer.abort_execution(id.0).await),
        ErrorCode::Forbidden
    );
    let output = cli(
        &cluster,
        follower,
        OPERATOR_TOKEN,
        &["abort", &id.to_string(), "--output", "json"],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let detail = cluster.admin(leader).execution(id.0).await.expect("detail");
    let execution = &detail.execution;
    let abort = execution.abort.as_ref().expect("the abort is recorded");
    assert_eq!(abort.by, Actor::Principal("test-operator".into()));
    assert!(
        execution
            .timeline
            .iter()
            .any(|milestone| milestone.kind == MilestoneKind::AbortRequested)
    );
    // With no step in flight it ends at once; with the wait in flight (an executor started
    // it), no new step may start and it ends when that step reports.
    let in_flight = execution
        .steps
        .iter()
        .any(|step| matches!(step.state, StepState::Running { .. }));
    if in_flight {
        assert!(detail.summary.aborting);
    } else {
        assert_eq!(execution.state, ExecutionState::Aborted);
        assert!(execution.finished_at.is_some());
        // A step that never started is skipped; one that did reported its outcome first.
        if execution.steps[0].attempts.is_empty() {
            assert_eq!(execution.steps[0].state, StepState::Skipped);
        } else {
            assert!(execution.steps[0].attempts[0].outcome.is_some());
        }
    }
    assert_eq!(
        code(cluster.admin(leader).abort_execution(id.0).await),
        ErrorCode::Rejected,
        "a second abort is refused"
    );

    // The CLI shows the list and the timeline.
    let output = cli(&cluster, follower, VIEWER_TOKEN, &["executions", "list"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("manual by test-operator"), "{stdout}");
    assert!(stdout.contains("drill by test-operator"), "{stdout}");
    let output = cli(
        &cluster,
        leader,
        VIEWER_TOKEN,
        &["executions", "show", &id.to_string()],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    for expected in [
        "hold-site v1 (manual by test-operator), site site1",
        "timeline:",
        "execution started",
        "abort requested",
        "recovery:",
        "vs rto 30s unknown",
    ] {
        assert!(stdout.contains(expected), "`{expected}` in:\n{stdout}");
    }
    let output = cli(
        &cluster,
        leader,
        VIEWER_TOKEN,
        &["executions", "show", &id.to_string(), "--output", "json"],
    );
    assert!(output.status.success());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(json["summary"]["trigger"], "manual", "{json}");
    assert_eq!(json["recovery"]["rto_ms"], 30_000, "{json}");
}
