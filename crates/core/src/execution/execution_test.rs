//! Execution scenarios: feed committed commands to the state machine and assert the whole
//! execution record (steps, attempts, timeline) and every refusal.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use expect_test::{Expect, expect};

use super::*;
use crate::config::{ClusterConfig, Endpoint, HealthCheck, Service};
use crate::detection::{DetectionInput, SiteState, Verdict, VerdictChanged};
use crate::id::{EndpointId, NodeId, PrincipalName, RunbookId, ServiceId, SiteId, StepId};
use crate::plan::{ResolvedAction, ResolvedWebhook};
use crate::routing::RoutingChange;
use crate::runbook::{
    Action, OnFailure, Runbook, ShiftDirection, ShiftTraffic, Step, Template, Trigger, VerifyDns,
    Wait, Webhook,
};
use crate::state::{
    Actor, Command, CommandKind, Outcome, Rejection as StateRejection, State, config_digest,
    runbook_content_hash,
};
use crate::time::Timestamp;

/// A state machine fed one command per log index, in a term the test chooses.
struct Log {
    state: State,
    index: u64,
    term: u64,
}

impl Log {
    fn new() -> Self {
        Self::with_config(crate::state::test_config())
    }

    fn with_config(config: ClusterConfig) -> Self {
        let mut log = Self {
            state: State::default(),
            index: 0,
            term: 1,
        };
        let digest = config_digest(&config);
        log.accept(
            Actor::System,
            0,
            CommandKind::ConfigApplied {
                config: Box::new(config),
                digest,
            },
        );
        log
    }

    fn apply(&mut self, actor: Actor, time: u64, kind: CommandKind) -> Outcome {
        self.index += 1;
        let command = Command {
            time: Timestamp(time),
            actor,
            kind,
        };
        self.state.apply(self.index, self.term, &command).outcome
    }

    fn accept(&mut self, actor: Actor, time: u64, kind: CommandKind) {
        let outcome = self.apply(actor, time, kind);
        assert_eq!(outcome, Outcome::Accepted, "at index {}", self.index);
    }

    fn refused(&mut self, actor: Actor, time: u64, kind: CommandKind) -> Rejection {
        match self.apply(actor, time, kind) {
            Outcome::Rejected(StateRejection::Execution(rejection)) => rejection,
            other => panic!("expected an execution rejection, got {other:?}"),
        }
    }

    fn runbook(&mut self, runbook: Runbook) {
        let source = format!("{runbook:?}");
        self.accept(
            ops(),
            0,
            CommandKind::RunbookApplied {
                content_hash: runbook_content_hash(&source),
                runbook: Box::new(runbook),
                source,
            },
        );
    }

    /// Starts a manual run of the latest version of `runbook` for `site`; returns its id.
    fn run(&mut self, runbook: &str, site: &str, at: u64) -> ExecutionId {
        let start = manual(&self.state, runbook, site, at);
        self.accept(ops(), at, CommandKind::ExecutionStarted(start));
        ExecutionId(self.index)
    }

    fn step_started(&mut self, execution: ExecutionId, step: &str, attempt: u32, at: u64) {
        let term = self.term;
        self.accept(
            Actor::Node(NodeId(1)),
            at,
            started(execution, step, attempt, term, at),
        );
    }

    fn step_finished(&mut self, execution: ExecutionId, step: &str, attempt: u32, at: u64) {
        let term = self.term;
        self.accept(
            Actor::Node(NodeId(1)),
            at,
            finished(execution, step, attempt, term, success(), at),
        );
    }

    fn step_failed(&mut self, execution: ExecutionId, step: &str, attempt: u32, at: u64) {
        let term = self.term;
        self.accept(
            Actor::Node(NodeId(1)),
            at,
            finished(execution, step, attempt, term, failure("status 503"), at),
        );
    }

    /// Runs one attempt of the next runnable step of `execution` to `outcome`.
    fn run_step(&mut self, execution: ExecutionId, step: &str, at: u64, succeed: bool) {
        let next = runnable(&self.state)
            .into_iter()
            .find(|runnable| runnable.execution == execution)
            .expect("a runnable step");
        assert_eq!(next.step.id.as_str(), step);
        self.step_started(execution, step, next.attempt, at);
        if succeed {
            self.step_finished(execution, step, next.attempt, at + 10);
        } else {
            self.step_failed(execution, step, next.attempt, at + 10);
        }
    }

    fn verdict(&mut self, observer: u64, endpoint: &str, verdict: Verdict, since: u64) {
        self.accept(
            Actor::Node(NodeId(observer)),
            since,
            CommandKind::Detection(DetectionInput::VerdictChanged(VerdictChanged {
                observer: NodeId(observer),
                endpoint: EndpointId::new(endpoint),
                verdict,
                since: Timestamp(since),
                last_error: None,
                latency_ms: None,
            })),
        );
    }

    /// Commits every transition the detector proposes at `at`.
    fn transitions(&mut self, at: u64) {
        let detector = self.state.detector().expect("a config is applied");
        for transition in detector.propose(Timestamp(at)) {
            self.accept(
                Actor::Node(NodeId(2)),
                at,
                CommandKind::Detection(DetectionInput::SiteTransition(transition)),
            );
        }
    }

    /// Commits every per-service transition the detector proposes at `at`.
    fn service_transitions(&mut self, at: u64) {
        let detector = self.state.detector().expect("a config is applied");
        for transition in detector.propose_services(Timestamp(at)) {
            self.accept(
                Actor::Node(NodeId(2)),
                at,
                CommandKind::Detection(DetectionInput::ServiceTransition(transition)),
            );
        }
    }

    /// Both other sites see alpha's endpoint down from `at` (+100 ms): suspect at `at + 200`,
    /// lost at `at + 2200` (hold 2 s). Returns the log index of the loss.
    fn lose_alpha(&mut self, at: u64) -> u64 {
        self.verdict(2, "www/alpha/1", Verdict::Down, at);
        self.verdict(3, "www/alpha/1", Verdict::Down, at + 100);
        self.transitions(at + 200);
        self.transitions(at + 2200);
        self.index
    }

    /// Alpha's endpoint comes back: recovering at `at + 100`, healthy after `recover_hold` (30 s).
    fn recover_alpha(&mut self, at: u64) {
        self.verdict(2, "www/alpha/1", Verdict::Up, at);
        self.verdict(3, "www/alpha/1", Verdict::Up, at);
        self.transitions(at + 100);
        self.transitions(at + 30_200);
    }

    fn execution(&self, id: ExecutionId) -> &Execution {
        self.state.execution(id).expect("the execution exists")
    }
}

fn ops() -> Actor {
    Actor::Principal(PrincipalName::new("ops"))
}

fn manual(state: &State, runbook: &str, site: &str, at: u64) -> ExecutionStart {
    let version = state
        .runbook(&RunbookId::new(runbook), None)
        .expect("the runbook is applied")
        .version;
    ExecutionStart {
        runbook: RunbookId::new(runbook),
        version,
        trigger: ExecutionTrigger::Manual {
            principal: PrincipalName::new("ops"),
        },
        parameters: BTreeMap::from([("site".to_owned(), site.to_owned())]),
        at: Timestamp(at),
    }
}

fn started(execution: ExecutionId, step: &str, attempt: u32, term: u64, at: u64) -> CommandKind {
    CommandKind::StepStarted(StepStart {
        execution,
        step: StepId::new(step),
        attempt,
        term,
        at: Timestamp(at),
    })
}

fn finished(
    execution: ExecutionId,
    step: &str,
    attempt: u32,
    term: u64,
    outcome: StepOutcome,
    at: u64,
) -> CommandKind {
    CommandKind::StepFinished(StepFinish {
        execution,
        step: StepId::new(step),
        attempt,
        term,
        outcome,
        at: Timestamp(at),
    })
}

fn success() -> StepOutcome {
    StepOutcome::Succeeded {
        evidence: serde_json::json!({}),
        converged_at: None,
    }
}

fn failure(error: &str) -> StepOutcome {
    StepOutcome::Failed {
        error: error.to_owned(),
        evidence: serde_json::json!({ "status": 503 }),
    }
}

fn step(id: &str, action: Action) -> Step {
    Step {
        id: StepId::new(id),
        timeout: Duration::from_secs(10),
        retries: 0,
        on_failure: None,
        action,
    }
}

fn shift(id: &str, direction: fn(Template) -> ShiftDirection) -> Step {
    step(
        id,
        Action::ShiftTraffic(ShiftTraffic {
            services: vec![ServiceId::new("www")],
            direction: direction(Template::new("${site}")),
        }),
    )
}

fn verify(id: &str) -> Step {
    step(
        id,
        Action::VerifyDns(VerifyDns {
            services: vec![ServiceId::new("www")],
            resolvers: false,
        }),
    )
}

fn webhook(id: &str, retries: u32, on_failure: Option<OnFailure>) -> Step {
    Step {
        retries,
        on_failure,
        ..step(
            id,
            Action::Webhook(Webhook {
                method: "POST".to_owned(),
                url: Template::new("http://127.0.0.1:9000/hook/${execution}"),
                headers: BTreeMap::from([("x-site".to_owned(), Template::new("${site}"))]),
                body: Some(serde_json::json!({ "site": "${site}", "n": [1, "${execution}"] })),
                expected_status: vec![200],
            }),
        )
    }
}

fn wait(id: &str) -> Step {
    step(
        id,
        Action::Wait(Wait {
            duration: Duration::from_secs(3),
        }),
    )
}

fn runbook(name: &str, triggers: Vec<Trigger>, pre_approved: bool, steps: Vec<Step>) -> Runbook {
    Runbook {
        name: RunbookId::new(name),
        description: String::new(),
        triggers,
        pre_approved,
        rto: Some(Duration::from_secs(60)),
        parameters: BTreeMap::new(),
        steps,
        on_failure: OnFailure::Halt,
        rollback: Vec::new(),
    }
}

/// Evacuate: shift www away from `${site}`, verify, notify; rollback restores.
fn evacuate() -> Runbook {
    Runbook {
        rollback: vec![shift("restore", ShiftDirection::Restore)],
        ..runbook(
            "evacuate",
            vec![Trigger::SiteLost { sites: Vec::new() }, Trigger::Manual],
            true,
            vec![
                shift("shift", ShiftDirection::AwayFrom),
                verify("verify"),
                webhook("notify", 0, None),
            ],
        )
    }
}

/// Notify only: no shift, so it locks no service.
fn notify(retries: u32, on_failure: OnFailure) -> Runbook {
    Runbook {
        on_failure,
        rollback: vec![wait("undo")],
        ..runbook(
            "notify",
            vec![Trigger::Manual],
            false,
            vec![webhook("first", retries, None), wait("second")],
        )
    }
}

/// The whole record of an execution, one fact per line.
fn render(execution: &Execution) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "execution {} {} v{} {} [{}] finished={:?} failure={:?}",
        execution.id,
        execution.runbook,
        execution.version,
        execution.state,
        execution.trigger.kind(),
        execution.finished_at.map(Timestamp::as_millis),
        execution
            .failure
            .as_ref()
            .map(|failure| format!("{}: {}", failure.step, failure.error)),
    );
    for record in execution.steps.iter().chain(&execution.rollback) {
        let attempts: Vec<String> = record
            .attempts
            .iter()
            .map(|attempt| {
                let terms: Vec<String> = attempt
                    .intents
                    .iter()
                    .map(|intent| format!("t{}@{}", intent.term, intent.at.as_millis()))
                    .collect();
                let outcome = match &attempt.outcome {
                    None => "-".to_owned(),
                    Some(StepOutcome::Succeeded { .. }) => "ok".to_owned(),
                    Some(StepOutcome::Failed { error, .. }) => format!("failed({error})"),
                };
                format!("#{} {} {outcome}", attempt.number, terms.join(","))
            })
            .collect();
        let _ = write!(out, "  step {} {:?}", record.id, record.state);
        if !attempts.is_empty() {
            let _ = write!(out, ": {}", attempts.join("; "));
        }
        out.push('\n');
    }
    for milestone in &execution.timeline {
        let _ = writeln!(out, "  {} {:?}", milestone.at.as_millis(), milestone.kind);
    }
    out
}

fn check(execution: &Execution, expected: Expect) {
    expected.assert_eq(&render(execution));
}

#[test]
fn runbook_versions_count_per_name_and_identical_text_adds_none() {
    let mut log = Log::new();
    log.runbook(evacuate());
    log.runbook(evacuate());
    log.runbook(notify(0, OnFailure::Halt));
    let mut changed = evacuate();
    changed.description = "second edition".to_owned();
    log.runbook(changed);
    let name = RunbookId::new("evacuate");
    let versions: Vec<(u32, u64, String)> = log
        .state
        .runbook_versions(&name)
        .iter()
        .map(|version| {
            (
                version.version,
                version.index,
                version.runbook.description.clone(),
            )
        })
        .collect();
    assert_eq!(
        versions,
        [(1, 2, String::new()), (2, 5, "second edition".to_owned())]
    );
    let latest: Vec<(String, u32)> = log
        .state
        .runbooks()
        .map(|version| (version.runbook.name.to_string(), version.version))
        .collect();
    assert_eq!(
        latest,
        [("evacuate".to_owned(), 2), ("notify".to_owned(), 1)]
    );
    let first = log.state.runbook(&name, Some(1)).expect("version 1");
    assert_eq!(first.author, ops());
    assert_eq!(first.content_hash, runbook_content_hash(&first.source));
    assert!(log.state.runbook(&name, Some(3)).is_none());
    assert!(log.state.runbook(&name, Some(0)).is_none());

    let outcome = log.apply(
        ops(),
        0,
        CommandKind::RunbookApplied {
            runbook: Box::new(evacuate()),
            source: "name: evacuate".to_owned(),
            content_hash: "0".repeat(64),
        },
    );
    assert!(
        matches!(
            outcome,
            Outcome::Rejected(StateRejection::RunbookHashMismatch { .. })
        ),
        "{outcome:?}"
    );
    assert_eq!(log.state.runbook_versions(&name).len(), 2);

    // An execution pins the version it started with, even after a newer one is applied.
    let execution = log.run("notify", "alpha", 100);
    let mut renamed = notify(0, OnFailure::Halt);
    renamed.description = "v2".to_owned();
    log.runbook(renamed);
    assert_eq!(log.execution(execution).version, 1);
    let resolved = resolve_step(&log.state, execution, &StepId::new("first")).expect("resolves");
    assert_eq!(resolved.definition.id.as_str(), "first");
}

#[test]
fn intent_comes_before_effect_and_steps_run_in_order() {
    let mut log = Log::new();
    log.runbook(evacuate());
    let id = log.run("evacuate", "alpha", 100);
    assert_eq!(
        runnable(&log.state),
        [Runnable {
            execution: id,
            step: StepRef {
                id: StepId::new("shift"),
                phase: Phase::Main,
                position: 0
            },
            attempt: 1,
            intent_term: None,
            not_before: None,
            deadline: None,
        }]
    );
    // No outcome without an intent, and no intent out of order.
    assert_eq!(
        log.refused(ops(), 110, finished(id, "shift", 1, 1, success(), 110)),
        Rejection::NotInFlight {
            step: StepId::new("shift")
        }
    );
    assert_eq!(
        log.refused(ops(), 110, started(id, "verify", 1, 1, 110)),
        Rejection::NotRunnable {
            execution: id,
            step: StepId::new("verify")
        }
    );
    assert_eq!(
        log.refused(ops(), 110, started(id, "shift", 2, 1, 110)),
        Rejection::WrongAttempt {
            step: StepId::new("shift"),
            given: 2,
            expected: 1
        }
    );
    log.step_started(id, "shift", 1, 120);
    let in_flight = runnable(&log.state);
    assert_eq!(in_flight.len(), 1);
    assert_eq!(
        (
            in_flight[0].step.id.as_str(),
            in_flight[0].intent_term,
            in_flight[0].deadline
        ),
        ("shift", Some(1), Some(Timestamp(10_120))),
        "in flight, timed out 10 s after its intent"
    );
    assert_eq!(
        log.refused(ops(), 125, started(id, "shift", 1, 1, 125)),
        Rejection::AlreadyStarted {
            step: StepId::new("shift"),
            attempt: 1,
            intent_term: 1
        }
    );
    log.step_finished(id, "shift", 1, 130);
    log.run_step(id, "verify", 200, true);
    log.run_step(id, "notify", 300, true);
    assert!(runnable(&log.state).is_empty());
    assert_eq!(
        log.refused(ops(), 400, started(id, "notify", 2, 1, 400)),
        Rejection::NotRunning {
            execution: id,
            state: ExecutionState::Succeeded
        }
    );
    check(
        log.execution(id),
        expect![[r#"
            execution 3 evacuate v1 succeeded [manual] finished=Some(310) failure=None
              step shift Succeeded: #1 t1@120 ok
              step verify Succeeded: #1 t1@200 ok
              step notify Succeeded: #1 t1@300 ok
              step restore Skipped
              100 ExecutionStarted
              120 StepStarted { step: StepId("shift"), attempt: 1 }
              130 StepFinished { step: StepId("shift"), attempt: 1, succeeded: true }
              200 StepStarted { step: StepId("verify"), attempt: 1 }
              210 StepFinished { step: StepId("verify"), attempt: 1, succeeded: true }
              300 StepStarted { step: StepId("notify"), attempt: 1 }
              310 StepFinished { step: StepId("notify"), attempt: 1, succeeded: true }
              310 Finished { state: Succeeded }
        "#]],
    );
    assert!(log.state.executions().active().next().is_none());
    assert_eq!(log.execution(id).parameters["execution"], "3");
}

#[test]
fn a_new_leader_resumes_an_intent_without_outcome_and_ignores_the_old_terms_late_outcome() {
    let mut log = Log::new();
    log.runbook(evacuate());
    let id = log.run("evacuate", "alpha", 100);
    log.step_started(id, "shift", 1, 120);

    // Leader change: term 2. The old leader's intent for the next attempt, forwarded and
    // committed in term 2, is stale.
    log.term = 2;
    assert_eq!(
        log.refused(ops(), 200, started(id, "shift", 1, 1, 200)),
        Rejection::StaleIntent {
            step: StepId::new("shift"),
            given: 1,
            current: 2
        }
    );
    let resume = runnable(&log.state);
    assert_eq!(
        (
            resume[0].step.id.as_str(),
            resume[0].attempt,
            resume[0].intent_term
        ),
        ("shift", 1, Some(1)),
        "the new leader sees an intent of an older term without outcome"
    );
    log.step_started(id, "shift", 1, 210);
    // The old leader's outcome arrives late: ignored.
    assert_eq!(
        log.refused(ops(), 220, finished(id, "shift", 1, 1, success(), 220)),
        Rejection::StaleOutcome {
            step: StepId::new("shift"),
            given: 1,
            intent_term: 2
        }
    );
    assert_eq!(
        log.refused(ops(), 220, finished(id, "shift", 1, 3, success(), 220)),
        Rejection::NoSuchIntent {
            step: StepId::new("shift"),
            given: 3,
            intent_term: 2
        }
    );
    log.step_finished(id, "shift", 1, 230);
    check(
        log.execution(id),
        expect![[r#"
            execution 3 evacuate v1 running [manual] finished=None failure=None
              step shift Succeeded: #1 t1@120,t2@210 ok
              step verify Pending
              step notify Pending
              step restore Pending
              100 ExecutionStarted
              120 StepStarted { step: StepId("shift"), attempt: 1 }
              210 StepResumed { step: StepId("shift"), attempt: 1, term: 2 }
              230 StepFinished { step: StepId("shift"), attempt: 1, succeeded: true }
        "#]],
    );
    assert_eq!(
        idempotency_key(id, &StepId::new("shift"), 1),
        "3/shift/1",
        "the resume keeps the key"
    );
}

#[test]
fn a_failing_step_retries_with_backoff_then_halts() {
    let mut log = Log::new();
    log.runbook(notify(2, OnFailure::Halt));
    let id = log.run("notify", "alpha", 100);
    log.run_step(id, "first", 200, false);
    let retry = runnable(&log.state);
    assert_eq!(
        (retry[0].attempt, retry[0].not_before),
        (2, Some(Timestamp(710))),
        "retried 500 ms after the failed attempt ended"
    );
    assert_eq!(
        log.refused(ops(), 300, started(id, "first", 1, 1, 300)),
        Rejection::WrongAttempt {
            step: StepId::new("first"),
            given: 1,
            expected: 2
        }
    );
    log.run_step(id, "first", 800, false);
    assert_eq!(runnable(&log.state)[0].not_before, Some(Timestamp(1810)));
    log.run_step(id, "first", 2000, false);
    assert!(runnable(&log.state).is_empty());
    check(
        log.execution(id),
        expect![[r#"
            execution 3 notify v1 failed [manual] finished=Some(2010) failure=Some("first: status 503")
              step first Failed { error: "status 503" }: #1 t1@200 failed(status 503); #2 t1@800 failed(status 503); #3 t1@2000 failed(status 503)
              step second Skipped
              step undo Skipped
              100 ExecutionStarted
              200 StepStarted { step: StepId("first"), attempt: 1 }
              210 StepFinished { step: StepId("first"), attempt: 1, succeeded: false }
              800 StepStarted { step: StepId("first"), attempt: 2 }
              810 StepFinished { step: StepId("first"), attempt: 2, succeeded: false }
              2000 StepStarted { step: StepId("first"), attempt: 3 }
              2010 StepFinished { step: StepId("first"), attempt: 3, succeeded: false }
              2010 Finished { state: Failed }
        "#]],
    );
    assert_eq!(retry_backoff(2), Duration::from_millis(500));
    assert_eq!(retry_backoff(4), Duration::from_millis(2000));
    assert_eq!(retry_backoff(40), Duration::from_secs(10));
}

#[test]
fn on_failure_continue_goes_on_to_the_next_step() {
    let mut log = Log::new();
    log.runbook(notify(0, OnFailure::Continue));
    let id = log.run("notify", "alpha", 100);
    log.run_step(id, "first", 200, false);
    log.run_step(id, "second", 300, true);
    check(
        log.execution(id),
        expect![[r#"
            execution 3 notify v1 succeeded [manual] finished=Some(310) failure=None
              step first Failed { error: "status 503" }: #1 t1@200 failed(status 503)
              step second Succeeded: #1 t1@300 ok
              step undo Skipped
              100 ExecutionStarted
              200 StepStarted { step: StepId("first"), attempt: 1 }
              210 StepFinished { step: StepId("first"), attempt: 1, succeeded: false }
              300 StepStarted { step: StepId("second"), attempt: 1 }
              310 StepFinished { step: StepId("second"), attempt: 1, succeeded: true }
              310 Finished { state: Succeeded }
        "#]],
    );
}

#[test]
fn on_failure_rollback_runs_the_rollback_steps_then_ends_rolled_back() {
    let mut log = Log::new();
    let mut runbook = evacuate();
    runbook.on_failure = OnFailure::Rollback;
    log.runbook(runbook);
    let id = log.run("evacuate", "alpha", 100);
    log.run_step(id, "shift", 200, true);
    log.run_step(id, "verify", 300, false);
    assert_eq!(log.execution(id).state, ExecutionState::RollingBack);
    let next = runnable(&log.state);
    assert_eq!(
        next[0].step,
        StepRef {
            id: StepId::new("restore"),
            phase: Phase::Rollback,
            position: 0
        }
    );
    let restore = resolve_step(&log.state, id, &StepId::new("restore")).expect("resolves");
    assert_eq!(
        restore.action,
        ResolvedAction::ShiftTraffic(RoutingChange::Restore {
            services: vec![ServiceId::new("www")],
            site: SiteId::new("alpha")
        })
    );
    log.run_step(id, "restore", 400, true);
    check(
        log.execution(id),
        expect![[r#"
            execution 3 evacuate v1 rolled_back [manual] finished=Some(410) failure=Some("verify: status 503")
              step shift Succeeded: #1 t1@200 ok
              step verify Failed { error: "status 503" }: #1 t1@300 failed(status 503)
              step notify Skipped
              step restore Succeeded: #1 t1@400 ok
              100 ExecutionStarted
              200 StepStarted { step: StepId("shift"), attempt: 1 }
              210 StepFinished { step: StepId("shift"), attempt: 1, succeeded: true }
              300 StepStarted { step: StepId("verify"), attempt: 1 }
              310 StepFinished { step: StepId("verify"), attempt: 1, succeeded: false }
              400 StepStarted { step: StepId("restore"), attempt: 1 }
              410 StepFinished { step: StepId("restore"), attempt: 1, succeeded: true }
              410 Finished { state: RolledBack }
        "#]],
    );
    assert!(
        log.state
            .executions()
            .lock_holder(&ServiceId::new("www"))
            .is_none()
    );

    // A rollback step that fails halts the rollback: the execution ends failed.
    let second = log.run("evacuate", "beta", 1000);
    log.run_step(second, "shift", 1100, false);
    log.run_step(second, "restore", 1200, false);
    let execution = log.execution(second);
    assert_eq!(
        (execution.state, execution.failure.as_ref().map(|f| f.phase)),
        (ExecutionState::Failed, Some(Phase::Rollback))
    );
}

#[test]
fn abort_starts_nothing_new_and_still_records_the_step_in_flight() {
    let mut log = Log::new();
    log.runbook(notify(3, OnFailure::Halt));
    let id = log.run("notify", "alpha", 100);
    log.step_started(id, "first", 1, 200);
    log.accept(
        ops(),
        250,
        CommandKind::ExecutionAborted(ExecutionAbort {
            execution: id,
            by: ops(),
            at: Timestamp(250),
        }),
    );
    assert_eq!(log.execution(id).state, ExecutionState::Running);
    assert_eq!(
        log.refused(
            ops(),
            260,
            CommandKind::ExecutionAborted(ExecutionAbort {
                execution: id,
                by: ops(),
                at: Timestamp(260)
            })
        ),
        Rejection::AlreadyAborting { execution: id }
    );
    let pending: Vec<_> = runnable(&log.state)
        .into_iter()
        .map(|runnable| (runnable.step.id.to_string(), runnable.intent_term))
        .collect();
    assert_eq!(
        pending,
        [("first".to_owned(), Some(1))],
        "only the step in flight"
    );
    // It fails with retries left, but an aborted execution does not retry.
    log.step_failed(id, "first", 1, 300);
    assert_eq!(
        log.refused(ops(), 400, started(id, "first", 2, 1, 400)),
        Rejection::NotRunning {
            execution: id,
            state: ExecutionState::Aborted
        }
    );
    check(
        log.execution(id),
        expect![[r#"
            execution 3 notify v1 aborted [manual] finished=Some(300) failure=None
              step first Failed { error: "status 503" }: #1 t1@200 failed(status 503)
              step second Skipped
              step undo Skipped
              100 ExecutionStarted
              200 StepStarted { step: StepId("first"), attempt: 1 }
              250 AbortRequested
              300 StepFinished { step: StepId("first"), attempt: 1, succeeded: false }
              300 Finished { state: Aborted }
        "#]],
    );

    // With nothing in flight, an abort ends the execution at once.
    let idle = log.run("notify", "alpha", 500);
    log.accept(
        ops(),
        510,
        CommandKind::ExecutionAborted(ExecutionAbort {
            execution: idle,
            by: ops(),
            at: Timestamp(510),
        }),
    );
    assert_eq!(log.execution(idle).state, ExecutionState::Aborted);
    assert!(runnable(&log.state).is_empty());
}

#[test]
fn a_site_loss_starts_one_execution_of_the_matching_pre_approved_runbook() {
    let mut log = Log::new();
    log.runbook(evacuate());
    // Not pre-approved; for another site; for another trigger: none of these start on alpha's loss.
    log.runbook(runbook(
        "unapproved",
        vec![Trigger::SiteLost { sites: Vec::new() }],
        false,
        vec![wait("w")],
    ));
    log.runbook(runbook(
        "beta-only",
        vec![Trigger::SiteLost {
            sites: vec![SiteId::new("beta")],
        }],
        true,
        vec![wait("w")],
    ));
    log.runbook(runbook(
        "services",
        vec![Trigger::ServiceUnhealthy {
            services: Vec::new(),
        }],
        true,
        vec![wait("w")],
    ));
    let lost = log.lose_alpha(10_000);
    let proposals = automatic_starts(&log.state, log.state.site_events(), Timestamp(12_300));
    let alpha = SiteId::new("alpha");
    assert_eq!(
        proposals,
        [ExecutionStart {
            runbook: RunbookId::new("evacuate"),
            version: 1,
            trigger: ExecutionTrigger::SiteLost {
                site: alpha.clone(),
                event_index: lost
            },
            parameters: BTreeMap::new(),
            at: Timestamp(12_300),
        }]
    );
    log.accept(
        Actor::Node(NodeId(2)),
        12_300,
        CommandKind::ExecutionStarted(proposals[0].clone()),
    );
    let id = ExecutionId(log.index);
    assert_eq!(log.execution(id).parameters["site"], "alpha");
    assert_eq!(
        log.state.executions().for_event(&alpha, lost),
        Some(id),
        "the event is handled"
    );

    // The same event again (another leader's proposal): refused, naming the execution.
    assert_eq!(
        log.refused(
            Actor::Node(NodeId(3)),
            12_400,
            CommandKind::ExecutionStarted(proposals[0].clone())
        ),
        Rejection::EventHandled {
            site: alpha.clone(),
            event_index: lost,
            holder: id
        }
    );
    assert!(automatic_starts(&log.state, log.state.site_events(), Timestamp(12_500)).is_empty());

    // The other runbooks are refused with their reasons when proposed by hand.
    let mut other = proposals[0].clone();
    other.runbook = RunbookId::new("unapproved");
    assert_eq!(
        log.refused(
            Actor::System,
            12_600,
            CommandKind::ExecutionStarted(other.clone())
        ),
        Rejection::NotPreApproved {
            runbook: RunbookId::new("unapproved")
        }
    );
    other.runbook = RunbookId::new("beta-only");
    assert_eq!(
        log.refused(Actor::System, 12_600, CommandKind::ExecutionStarted(other)),
        Rejection::TriggerNotDeclared {
            runbook: RunbookId::new("beta-only"),
            trigger: "site_lost".to_owned()
        }
    );
}

#[test]
fn an_explicit_trigger_wins_over_a_catch_all_and_services_down_starts_service_runbooks() {
    let mut config = crate::state::test_config();
    config.detection.lost_requires_controller_down = true;
    let mut log = Log::with_config(config);
    log.runbook(evacuate());
    let mut alpha_only = evacuate();
    alpha_only.name = RunbookId::new("zz-alpha");
    alpha_only.triggers = vec![Trigger::SiteLost {
        sites: vec![SiteId::new("alpha")],
    }];
    log.runbook(alpha_only);
    log.runbook(runbook(
        "www-failover",
        vec![Trigger::ServiceUnhealthy {
            services: vec![ServiceId::new("www")],
        }],
        true,
        vec![shift("shift", ShiftDirection::AwayFrom)],
    ));
    // Under the strict policy alpha's controller still replicates: services down, not lost.
    let event = log.lose_alpha(10_000);
    let proposals = automatic_starts(&log.state, log.state.site_events(), Timestamp(12_300));
    assert_eq!(
        proposals
            .iter()
            .map(|start| (start.runbook.to_string(), start.trigger.clone()))
            .collect::<Vec<_>>(),
        [(
            "www-failover".to_owned(),
            ExecutionTrigger::ServiceUnhealthy {
                site: SiteId::new("alpha"),
                services: vec![ServiceId::new("www")],
                event_index: event
            }
        )]
    );

    // Under the default policy, the runbook naming alpha beats the catch-all `evacuate`.
    let mut log = Log::new();
    log.runbook(evacuate());
    let mut alpha_only = evacuate();
    alpha_only.name = RunbookId::new("zz-alpha");
    alpha_only.triggers = vec![Trigger::SiteLost {
        sites: vec![SiteId::new("alpha")],
    }];
    log.runbook(alpha_only);
    log.lose_alpha(10_000);
    let proposals = automatic_starts(&log.state, log.state.site_events(), Timestamp(12_300));
    assert_eq!(proposals.len(), 1);
    assert_eq!(proposals[0].runbook.as_str(), "zz-alpha");
}

#[test]
fn two_running_executions_never_shift_the_same_service() {
    let mut log = Log::new();
    log.runbook(evacuate());
    log.runbook(notify(0, OnFailure::Halt));
    let first = log.run("evacuate", "alpha", 100);
    let start = manual(&log.state, "evacuate", "beta", 200);
    assert_eq!(
        log.refused(ops(), 200, CommandKind::ExecutionStarted(start.clone())),
        Rejection::ServiceLocked {
            service: ServiceId::new("www"),
            holder: first
        }
    );
    // A runbook that shifts nothing takes no lock.
    log.run("notify", "beta", 210);
    log.run_step(first, "shift", 300, true);
    log.run_step(first, "verify", 400, true);
    log.run_step(first, "notify", 500, true);
    log.accept(ops(), 600, CommandKind::ExecutionStarted(start));
    assert_eq!(
        log.state.executions().lock_holder(&ServiceId::new("www")),
        Some(ExecutionId(log.index))
    );
}

#[test]
fn failover_cooldown_refuses_an_automatic_start_soon_after_the_last_one() {
    let mut log = Log::new();
    log.runbook(evacuate());
    log.lose_alpha(10_000);
    let proposals = automatic_starts(&log.state, log.state.site_events(), Timestamp(12_300));
    log.accept(
        Actor::Node(NodeId(2)),
        12_300,
        CommandKind::ExecutionStarted(proposals[0].clone()),
    );
    let id = ExecutionId(log.index);
    log.run_step(id, "shift", 12_400, true);
    log.run_step(id, "verify", 12_500, true);
    log.run_step(id, "notify", 12_600, true);
    assert_eq!(
        log.state
            .executions()
            .last_automatic_end(&SiteId::new("alpha")),
        Some(Timestamp(12_610))
    );

    // Alpha comes back, then is lost again two minutes later: no automatic start.
    log.recover_alpha(20_000);
    let again = log.lose_alpha(130_000);
    assert!(automatic_starts(&log.state, log.state.site_events(), Timestamp(132_300)).is_empty());
    let start = ExecutionStart {
        trigger: ExecutionTrigger::SiteLost {
            site: SiteId::new("alpha"),
            event_index: again,
        },
        at: Timestamp(132_300),
        ..proposals[0].clone()
    };
    assert_eq!(
        log.refused(
            Actor::Node(NodeId(2)),
            132_300,
            CommandKind::ExecutionStarted(start)
        ),
        Rejection::Cooldown {
            site: SiteId::new("alpha"),
            // The later of the loss's own cooldown (12 200 + 600 s) and the last automatic
            // execution's end (12 610 + 600 s).
            until: Timestamp(612_610),
            cooldown: Duration::from_secs(600)
        }
    );
    // An operator may still run it by hand.
    log.run("evacuate", "alpha", 132_400);

    // Once the cooldown has passed, a new loss starts it automatically again.
    let mut log = Log::new();
    log.runbook(evacuate());
    log.lose_alpha(10_000);
    let first = automatic_starts(&log.state, log.state.site_events(), Timestamp(12_300));
    log.accept(
        Actor::System,
        12_300,
        CommandKind::ExecutionStarted(first[0].clone()),
    );
    let id = ExecutionId(log.index);
    log.run_step(id, "shift", 12_400, true);
    log.run_step(id, "verify", 12_500, true);
    log.run_step(id, "notify", 12_600, true);
    log.recover_alpha(20_000);
    log.lose_alpha(700_000);
    assert_eq!(
        automatic_starts(&log.state, log.state.site_events(), Timestamp(702_300)).len(),
        1
    );
}

#[test]
fn the_timeline_measures_detection_decision_actuation_and_total_recovery() {
    let mut log = Log::new();
    log.runbook(evacuate());
    log.lose_alpha(10_000);
    let proposals = automatic_starts(&log.state, log.state.site_events(), Timestamp(12_300));
    log.accept(
        Actor::System,
        12_300,
        CommandKind::ExecutionStarted(proposals[0].clone()),
    );
    let id = ExecutionId(log.index);
    log.run_step(id, "shift", 12_310, true);
    log.step_started(id, "verify", 1, 12_400);
    log.accept(
        Actor::Node(NodeId(1)),
        12_800,
        finished(
            id,
            "verify",
            1,
            1,
            StepOutcome::Succeeded {
                evidence: serde_json::json!({ "servers": ["127.0.0.1:5301"] }),
                converged_at: Some(Timestamp(12_700)),
            },
            12_800,
        ),
    );
    log.run_step(id, "notify", 12_900, true);
    let execution = log.execution(id);
    check(
        execution,
        expect![[r#"
            execution 7 evacuate v1 succeeded [site_lost] finished=Some(12910) failure=None
              step shift Succeeded: #1 t1@12310 ok
              step verify Succeeded: #1 t1@12400 ok
              step notify Succeeded: #1 t1@12900 ok
              step restore Skipped
              10000 FirstFailure
              10200 Suspected { event_index: 5 }
              12200 Lost { event_index: 6 }
              12300 ExecutionStarted
              12310 StepStarted { step: StepId("shift"), attempt: 1 }
              12320 StepFinished { step: StepId("shift"), attempt: 1, succeeded: true }
              12400 StepStarted { step: StepId("verify"), attempt: 1 }
              12700 DnsConverged { step: StepId("verify") }
              12800 StepFinished { step: StepId("verify"), attempt: 1, succeeded: true }
              12900 StepStarted { step: StepId("notify"), attempt: 1 }
              12910 StepFinished { step: StepId("notify"), attempt: 1, succeeded: true }
              12910 Finished { state: Succeeded }
        "#]],
    );
    let times = execution.recovery_times();
    assert_eq!(
        times,
        RecoveryTimes {
            first_failure: Some(Timestamp(10_000)),
            lost: Some(Timestamp(12_200)),
            started: Some(Timestamp(12_300)),
            dns_converged: Some(Timestamp(12_700)),
            finished: Some(Timestamp(12_910)),
            detection: Some(Duration::from_millis(2200)),
            decision: Some(Duration::from_millis(100)),
            actuation: Some(Duration::from_millis(400)),
            total: Some(Duration::from_millis(2700)),
            recovery: Some(Duration::from_millis(2700)),
            rto: Some(Duration::from_secs(60)),
            rto_verdict: RtoVerdict::Met,
        }
    );
    let tight = RecoveryTimes::from_timeline(&execution.timeline, Some(Duration::from_secs(2)));
    assert_eq!(tight.rto_verdict, RtoVerdict::Missed);
    let undeclared = RecoveryTimes::from_timeline(&execution.timeline, None);
    assert_eq!(undeclared.rto_verdict, RtoVerdict::Unknown);

    // A manual run has no detection: its recovery is the actuation; one that never converges
    // and fails has missed its objective.
    let mut log = Log::new();
    log.runbook(evacuate());
    let manual_run = log.run("evacuate", "alpha", 100);
    let running = log.execution(manual_run).recovery_times();
    assert_eq!(
        (running.detection, running.recovery, running.rto_verdict),
        (None, None, RtoVerdict::Unknown)
    );
    log.run_step(manual_run, "shift", 200, false);
    let failed = log.execution(manual_run).recovery_times();
    assert_eq!(failed.rto_verdict, RtoVerdict::Missed);
}

#[test]
fn resolved_actions_carry_the_executions_parameters() {
    let mut log = Log::new();
    log.runbook(evacuate());
    let id = log.run("evacuate", "beta", 100);
    let shift = resolve_step(&log.state, id, &StepId::new("shift")).expect("resolves");
    assert_eq!(
        shift.action,
        ResolvedAction::ShiftTraffic(RoutingChange::AwayFrom {
            services: vec![ServiceId::new("www")],
            site: SiteId::new("beta")
        })
    );
    let notify = resolve_step(&log.state, id, &StepId::new("notify")).expect("resolves");
    assert_eq!(
        notify.action,
        ResolvedAction::Webhook(ResolvedWebhook {
            method: "POST".to_owned(),
            url: "http://127.0.0.1:9000/hook/3".to_owned(),
            headers: BTreeMap::from([("x-site".to_owned(), "beta".to_owned())]),
            body: Some(serde_json::json!({ "site": "beta", "n": [1, "3"] })),
            expected_status: vec![200],
        })
    );
    assert_eq!(
        resolve_step(&log.state, id, &StepId::new("nope")),
        Err(StateRejection::Execution(Rejection::UnknownStep {
            execution: id,
            step: StepId::new("nope")
        }))
    );

    // A start whose parameters do not resolve, or for an unknown site, is refused.
    let mut start = manual(&log.state, "evacuate", "atlantis", 200);
    let refused = log.refused(ops(), 200, CommandKind::ExecutionStarted(start.clone()));
    assert_eq!(
        refused,
        Rejection::Plan {
            error: "unknown site `atlantis`".to_owned()
        }
    );
    start
        .parameters
        .insert("flavour".to_owned(), "x".to_owned());
    assert!(matches!(
        log.refused(ops(), 200, CommandKind::ExecutionStarted(start)),
        Rejection::Plan { .. }
    ));
    // A manual start must come from the principal it names.
    let start = manual(&log.state, "evacuate", "gamma", 300);
    assert_eq!(
        log.refused(
            Actor::Principal(PrincipalName::new("mallory")),
            300,
            CommandKind::ExecutionStarted(start)
        ),
        Rejection::PrincipalMismatch {
            trigger: PrincipalName::new("ops")
        }
    );
}

#[test]
fn a_drill_rehearses_on_a_healthy_site_only() {
    let mut log = Log::new();
    log.runbook(notify(0, OnFailure::Halt));
    let drill = |site: &str, at: u64| ExecutionStart {
        trigger: ExecutionTrigger::Drill {
            principal: PrincipalName::new("ops"),
        },
        ..manual(&log.state, "notify", site, at)
    };
    let on_beta = drill("beta", 100);
    let on_alpha = drill("alpha", 12_300);
    log.accept(ops(), 100, CommandKind::ExecutionStarted(on_beta));
    assert_eq!(
        log.execution(ExecutionId(log.index)).trigger.kind(),
        "drill"
    );
    log.lose_alpha(10_000);
    assert_eq!(
        log.refused(ops(), 12_300, CommandKind::ExecutionStarted(on_alpha)),
        Rejection::DrillOfUnhealthySite {
            site: SiteId::new("alpha"),
            state: "lost".to_owned()
        }
    );
}

#[test]
fn replicas_applying_the_same_execution_log_agree_and_survive_a_snapshot() {
    let mut log = Log::new();
    log.runbook(evacuate());
    let id = log.run("evacuate", "alpha", 100);
    log.run_step(id, "shift", 200, true);
    log.step_started(id, "verify", 1, 300);
    let json = serde_json::to_string(&log.state).expect("serialise");
    let restored: State = serde_json::from_str(&json).expect("deserialise");
    assert_eq!(restored, log.state);
    assert_eq!(runnable(&restored), runnable(&log.state));
    let summaries: Vec<&str> = log
        .state
        .audit()
        .entries()
        .iter()
        .skip(1)
        .map(|entry| entry.summary.as_str())
        .collect();
    let hash = &log
        .state
        .runbook(&RunbookId::new("evacuate"), None)
        .expect("applied")
        .content_hash[..16];
    assert_eq!(
        summaries,
        [
            format!("runbook applied: evacuate hash {hash}"),
            "execution started: evacuate v1 (manual) site alpha".to_owned(),
            "step started: execution 3 step shift attempt 1 term 1".to_owned(),
            "step finished: execution 3 step shift attempt 1 term 1: succeeded".to_owned(),
            "step started: execution 3 step verify attempt 1 term 1".to_owned(),
        ]
    );
}

/// A small deterministic generator for the randomized run below (core has no rand crate).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

/// The properties every reachable state must have, whatever the commands were.
fn check_invariants(state: &State) {
    let mut locked: BTreeMap<ServiceId, ExecutionId> = BTreeMap::new();
    for execution in state.executions().iter() {
        let all: Vec<&StepRecord> = execution.steps.iter().chain(&execution.rollback).collect();
        let running = all
            .iter()
            .filter(|record| matches!(record.state, StepState::Running { .. }))
            .count();
        assert!(running <= 1, "two steps in flight in {}", execution.id);
        assert_eq!(
            execution.is_active(),
            execution.finished_at.is_none(),
            "{}",
            execution.id
        );
        if !execution.is_active() {
            assert!(
                all.iter().all(|record| !matches!(
                    record.state,
                    StepState::Pending | StepState::Running { .. }
                )),
                "ended execution {} left steps to run",
                execution.id
            );
        }
        if execution.state == ExecutionState::Succeeded {
            assert!(
                execution
                    .rollback
                    .iter()
                    .all(|r| r.state == StepState::Skipped)
            );
        }
        for record in &all {
            assert!(record.attempts.len() <= record.retries as usize + 1);
            for attempt in &record.attempts {
                assert!(
                    attempt
                        .intents
                        .windows(2)
                        .all(|pair| pair[0].term < pair[1].term),
                    "intent terms must increase"
                );
            }
            let open = record
                .attempts
                .last()
                .is_some_and(|attempt| attempt.outcome.is_none());
            assert_eq!(open, matches!(record.state, StepState::Running { .. }));
        }
        if execution.is_active() {
            for service in &execution.services {
                if let Some(other) = locked.insert(service.clone(), execution.id) {
                    panic!("{service} shifted by {other} and {} at once", execution.id);
                }
            }
        }
    }
    let runnable = runnable(state);
    let executions: std::collections::BTreeSet<ExecutionId> =
        runnable.iter().map(|runnable| runnable.execution).collect();
    assert_eq!(
        executions.len(),
        runnable.len(),
        "one runnable step per execution"
    );
}

/// Three runbooks: halt, rollback (with retries-free steps) and continue (with retries).
fn random_log() -> Log {
    let mut log = Log::new();
    let mut rollback = evacuate();
    rollback.name = RunbookId::new("evacuate-rollback");
    rollback.on_failure = OnFailure::Rollback;
    log.runbook(evacuate());
    log.runbook(rollback);
    log.runbook(notify(2, OnFailure::Continue));
    log
}

#[test]
fn random_commands_keep_every_execution_invariant_and_replicas_agree() {
    let mut end_states = std::collections::BTreeSet::new();
    let mut refusals = std::collections::BTreeSet::new();
    for seed in 1..=20 {
        let mut random = Lcg(seed);
        let mut log = random_log();
        let mut commands = Vec::new();
        let names = ["evacuate", "evacuate-rollback", "notify"];
        let sites = ["alpha", "beta", "gamma"];
        let mut time = 100;
        for _ in 0..300 {
            time += 10;
            let known: Vec<ExecutionId> = log.state.executions().iter().map(|e| e.id).collect();
            let kind = match random.below(10) {
                0 => {
                    let name = names[random.below(3) as usize];
                    let site = sites[random.below(3) as usize];
                    CommandKind::ExecutionStarted(manual(&log.state, name, site, time))
                }
                1 if !known.is_empty() => CommandKind::ExecutionAborted(ExecutionAbort {
                    execution: known[random.below(known.len() as u64) as usize],
                    by: ops(),
                    at: Timestamp(time),
                }),
                2 => {
                    log.term += 1;
                    continue;
                }
                choice => {
                    let candidates = runnable(&log.state);
                    if candidates.is_empty() {
                        continue;
                    }
                    let next = &candidates[random.below(candidates.len() as u64) as usize];
                    // Sometimes an old term or a wrong attempt, to exercise the refusals.
                    let term = log.term.saturating_sub(random.below(2));
                    let attempt = next.attempt + u32::from(random.below(8) == 0);
                    if choice < 6 {
                        started(next.execution, next.step.id.as_str(), attempt, term, time)
                    } else {
                        let outcome = if random.below(3) == 0 {
                            failure("boom")
                        } else {
                            success()
                        };
                        finished(
                            next.execution,
                            next.step.id.as_str(),
                            attempt,
                            term,
                            outcome,
                            time,
                        )
                    }
                }
            };
            let command = Command {
                time: Timestamp(time),
                actor: ops(),
                kind,
            };
            log.index += 1;
            if let Outcome::Rejected(StateRejection::Execution(rejection)) =
                log.state.apply(log.index, log.term, &command).outcome
            {
                let name = format!("{rejection:?}");
                refusals.insert(name.split([' ', '{']).next().unwrap_or_default().to_owned());
            }
            commands.push((log.index, log.term, command));
            check_invariants(&log.state);
        }
        assert!(
            log.state.executions().iter().count() > 3,
            "seed {seed} started too few executions to mean anything"
        );
        // A replica applying the same log from the start reaches the same state.
        let mut replica = random_log().state;
        for (index, term, command) in &commands {
            replica.apply(*index, *term, command);
        }
        assert_eq!(replica, log.state, "seed {seed}");
        end_states.extend(log.state.executions().iter().map(|e| e.state));
    }
    // The run must have reached the interesting places, or it proves little.
    assert_eq!(
        end_states,
        std::collections::BTreeSet::from([
            ExecutionState::Running,
            ExecutionState::RollingBack,
            ExecutionState::Succeeded,
            ExecutionState::Failed,
            ExecutionState::RolledBack,
            ExecutionState::Aborted,
        ])
    );
    for expected in [
        "StaleIntent",
        "StaleOutcome",
        "WrongAttempt",
        "ServiceLocked",
    ] {
        assert!(
            refusals.contains(expected),
            "{expected} not seen in {refusals:?}"
        );
    }
}

/// The test cluster with a second service, `api`, with one endpoint in every site.
fn config_with_api() -> ClusterConfig {
    let mut config = crate::state::test_config();
    let api = ServiceId::new("api");
    let endpoints = ["alpha", "beta", "gamma"]
        .iter()
        .enumerate()
        .map(|(n, site)| Endpoint {
            id: EndpointId::of(&api, &SiteId::new(*site), 1),
            site: SiteId::new(*site),
            address: format!("127.0.{}.2", n + 1).parse().expect("address"),
            port: 81,
            weight: 1,
        })
        .collect();
    config.services.push(Service {
        id: api,
        check: HealthCheck::Tcp,
        endpoints,
    });
    config
}

#[test]
fn one_service_down_in_a_healthy_site_starts_its_service_unhealthy_runbook_once() {
    let mut log = Log::with_config(config_with_api());
    log.runbook(evacuate());
    log.runbook(runbook(
        "api-failover",
        vec![Trigger::ServiceUnhealthy {
            services: vec![ServiceId::new("api")],
        }],
        true,
        vec![wait("w")],
    ));
    log.runbook(runbook(
        "www-failover",
        vec![Trigger::ServiceUnhealthy {
            services: vec![ServiceId::new("www")],
        }],
        true,
        vec![shift("shift", ShiftDirection::AwayFrom)],
    ));
    // Only www's endpoint in alpha goes down: alpha stays healthy (half its endpoints are up).
    log.verdict(2, "www/alpha/1", Verdict::Down, 10_000);
    log.verdict(3, "www/alpha/1", Verdict::Down, 10_100);
    log.transitions(10_200);
    log.service_transitions(10_200);
    assert!(log.state.site_events().is_empty(), "nothing before hold");
    log.transitions(12_200);
    log.service_transitions(12_200);
    let event = log.index;
    let events: Vec<&str> = log
        .state
        .site_events()
        .iter()
        .map(|record| record.event.name())
        .collect();
    assert_eq!(events, ["ServiceUnhealthy"]);
    let alpha = SiteId::new("alpha");
    assert_eq!(
        log.state
            .detector()
            .and_then(|detector| detector.site(&alpha))
            .map(|status| status.state),
        Some(SiteState::Healthy)
    );

    let proposals = automatic_starts(&log.state, log.state.site_events(), Timestamp(12_300));
    assert_eq!(
        proposals
            .iter()
            .map(|start| (start.runbook.to_string(), start.trigger.clone()))
            .collect::<Vec<_>>(),
        [(
            "www-failover".to_owned(),
            ExecutionTrigger::ServiceUnhealthy {
                site: alpha.clone(),
                services: vec![ServiceId::new("www")],
                event_index: event
            }
        )]
    );
    log.accept(
        Actor::Node(NodeId(2)),
        12_300,
        CommandKind::ExecutionStarted(proposals[0].clone()),
    );
    let id = ExecutionId(log.index);
    assert_eq!(log.execution(id).parameters["site"], "alpha");
    assert_eq!(log.state.executions().for_event(&alpha, event), Some(id));
    assert!(automatic_starts(&log.state, log.state.site_events(), Timestamp(12_400)).is_empty());

    // A trigger naming api for www's event is refused: the event is about www only.
    let mut wrong = proposals[0].clone();
    wrong.runbook = RunbookId::new("api-failover");
    wrong.trigger = ExecutionTrigger::ServiceUnhealthy {
        site: alpha.clone(),
        services: vec![ServiceId::new("api")],
        event_index: event,
    };
    assert!(matches!(
        log.refused(Actor::System, 12_500, CommandKind::ExecutionStarted(wrong)),
        Rejection::UnknownEvent { .. }
    ));
}

#[test]
fn a_recovered_service_event_is_no_longer_current() {
    let mut config = config_with_api();
    config.detection.recover_hold = Duration::from_secs(5);
    let mut log = Log::with_config(config);
    log.runbook(runbook(
        "www-failover",
        vec![Trigger::ServiceUnhealthy {
            services: Vec::new(),
        }],
        true,
        vec![wait("w")],
    ));
    log.verdict(2, "www/alpha/1", Verdict::Down, 10_000);
    log.verdict(3, "www/alpha/1", Verdict::Down, 10_100);
    log.service_transitions(12_200);
    let stale = automatic_starts(&log.state, log.state.site_events(), Timestamp(12_300));
    assert_eq!(stale.len(), 1);
    log.verdict(2, "www/alpha/1", Verdict::Up, 13_000);
    log.verdict(3, "www/alpha/1", Verdict::Up, 13_000);
    log.service_transitions(18_100);
    let events: Vec<&str> = log
        .state
        .site_events()
        .iter()
        .map(|record| record.event.name())
        .collect();
    assert_eq!(events, ["ServiceUnhealthy", "ServiceRecovered"]);
    assert!(automatic_starts(&log.state, log.state.site_events(), Timestamp(18_200)).is_empty());
    assert_eq!(
        log.refused(
            Actor::Node(NodeId(2)),
            18_200,
            CommandKind::ExecutionStarted(stale[0].clone())
        ),
        Rejection::TriggerNotCurrent {
            site: SiteId::new("alpha"),
            expected: "ServiceUnhealthy".to_owned(),
            current: "service healthy".to_owned()
        }
    );
}

#[test]
fn service_failover_cooldown_is_per_service_in_the_site() {
    let mut log = Log::with_config(config_with_api());
    log.runbook(runbook(
        "svc-failover",
        vec![Trigger::ServiceUnhealthy {
            services: Vec::new(),
        }],
        true,
        vec![wait("w")],
    ));
    let alpha = SiteId::new("alpha");
    // www goes down in alpha: one execution, run to its end.
    log.verdict(2, "www/alpha/1", Verdict::Down, 10_000);
    log.verdict(3, "www/alpha/1", Verdict::Down, 10_100);
    log.service_transitions(12_200);
    let starts = automatic_starts(&log.state, log.state.site_events(), Timestamp(12_300));
    assert_eq!(starts.len(), 1);
    log.accept(
        Actor::Node(NodeId(2)),
        12_300,
        CommandKind::ExecutionStarted(starts[0].clone()),
    );
    let www_run = ExecutionId(log.index);
    log.run_step(www_run, "w", 12_400, true);
    assert_eq!(log.execution(www_run).state, ExecutionState::Succeeded);

    // www recovers (recover_hold 30 s); then api goes down in the same site: its own failover
    // is not held back by www's. (Both down at once would be the whole site.)
    log.verdict(2, "www/alpha/1", Verdict::Up, 15_000);
    log.verdict(3, "www/alpha/1", Verdict::Up, 15_000);
    log.service_transitions(45_100);
    log.verdict(2, "api/alpha/1", Verdict::Down, 50_000);
    log.verdict(3, "api/alpha/1", Verdict::Down, 50_000);
    log.service_transitions(52_100);
    let api_event = log.index;
    let starts = automatic_starts(&log.state, log.state.site_events(), Timestamp(52_200));
    assert_eq!(
        starts
            .iter()
            .map(|start| start.trigger.clone())
            .collect::<Vec<_>>(),
        [ExecutionTrigger::ServiceUnhealthy {
            site: alpha.clone(),
            services: vec![ServiceId::new("api")],
            event_index: api_event
        }]
    );

    // api comes back; www fails again within its cooldown: held back, naming when it ends.
    log.verdict(2, "api/alpha/1", Verdict::Up, 55_000);
    log.verdict(3, "api/alpha/1", Verdict::Up, 55_000);
    log.verdict(2, "www/alpha/1", Verdict::Down, 60_000);
    log.verdict(3, "www/alpha/1", Verdict::Down, 60_000);
    log.service_transitions(62_100);
    let events: Vec<&str> = log
        .state
        .site_events()
        .iter()
        .map(|record| record.event.name())
        .collect();
    assert_eq!(
        events,
        [
            "ServiceUnhealthy",
            "ServiceRecovered",
            "ServiceUnhealthy",
            "ServiceUnhealthy"
        ]
    );
    let www_again = log.index;
    let mut retry = starts[0].clone();
    retry.trigger = ExecutionTrigger::ServiceUnhealthy {
        site: alpha.clone(),
        services: vec![ServiceId::new("www")],
        event_index: www_again,
    };
    retry.at = Timestamp(62_200);
    let ended = log
        .execution(www_run)
        .finished_at
        .expect("the www run ended");
    let cooldown = log
        .state
        .detector()
        .expect("a config is applied")
        .policy()
        .failover_cooldown;
    assert_eq!(
        log.refused(
            Actor::Node(NodeId(2)),
            62_200,
            CommandKind::ExecutionStarted(retry)
        ),
        Rejection::Cooldown {
            site: alpha,
            until: ended.after(cooldown),
            cooldown
        }
    );
}

#[test]
fn a_service_failover_does_not_hold_back_a_later_loss_of_the_whole_site() {
    let mut log = Log::with_config(config_with_api());
    log.runbook(runbook(
        "svc-failover",
        vec![Trigger::ServiceUnhealthy {
            services: Vec::new(),
        }],
        true,
        vec![wait("w")],
    ));
    log.runbook(runbook(
        "evacuate",
        vec![Trigger::SiteLost { sites: Vec::new() }],
        true,
        vec![wait("w")],
    ));
    // www goes down in alpha: its per-service failover runs to its end.
    log.verdict(2, "www/alpha/1", Verdict::Down, 10_000);
    log.verdict(3, "www/alpha/1", Verdict::Down, 10_100);
    log.service_transitions(12_200);
    let starts = automatic_starts(&log.state, log.state.site_events(), Timestamp(12_300));
    assert_eq!(starts.len(), 1, "{starts:?}");
    log.accept(
        Actor::Node(NodeId(2)),
        12_300,
        CommandKind::ExecutionStarted(starts[0].clone()),
    );
    let www_run = ExecutionId(log.index);
    log.run_step(www_run, "w", 12_400, true);
    assert_eq!(log.execution(www_run).state, ExecutionState::Succeeded);

    // Minutes inside failover_cooldown, api fails too: the whole site is lost, and its
    // evacuation must not wait for the cooldown of a single service's failover.
    log.verdict(2, "api/alpha/1", Verdict::Down, 20_000);
    log.verdict(3, "api/alpha/1", Verdict::Down, 20_100);
    log.transitions(20_200);
    log.transitions(22_200);
    let lost = log
        .state
        .site_events()
        .iter()
        .rev()
        .find(|record| record.event.name() == "SiteLost")
        .map(|record| record.index)
        .expect("alpha is lost");
    let starts = automatic_starts(&log.state, log.state.site_events(), Timestamp(22_300));
    let triggers: Vec<ExecutionTrigger> =
        starts.iter().map(|start| start.trigger.clone()).collect();
    assert!(
        triggers.contains(&ExecutionTrigger::SiteLost {
            site: SiteId::new("alpha"),
            event_index: lost
        }),
        "{triggers:?}"
    );
}
