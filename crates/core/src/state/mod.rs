//! The replicated state machine: commands in, state changes and an audit entry out.
//!
//! Every node applies the same committed commands in the same order through [`State::apply`],
//! so every replica holds the same [`State`] and the same audit chain head. `apply` is pure: the
//! time inside a command was stamped by its proposer, never read here.

mod config;
mod detection;
mod execution;
mod routing;
mod runbooks;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::audit::AuditChain;
use crate::config::ClusterConfig;
use crate::detection::{DetectionInput, Detector};
use crate::execution::{ExecutionAbort, ExecutionStart, StepFinish, StepStart};
use crate::id::{NodeId, PrincipalName, ZoneName};
use crate::routing::{RoutingChange, SafetyViolation};
use crate::runbook::{RecordValues, Runbook};
use crate::time::Timestamp;

pub use config::{ConfigState, config_digest};
pub use detection::SiteEventRecord;
pub use execution::ExecutionsState;
pub use routing::{PIN_VALUES_MAX, RecordsRejection, RoutingState, SET_RECORDS_MAX};
pub use runbooks::{RUNBOOK_SOURCE_MAX, RunbookVersion, runbook_content_hash};

/// Longest annotation text accepted, in bytes; longer ones are rejected, not truncated.
pub const ANNOTATION_TEXT_MAX: usize = 4096;

/// One entry of the Raft log's application data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    /// When the proposer created the command.
    pub time: Timestamp,
    /// Who asked for it.
    pub actor: Actor,
    pub kind: CommandKind,
}

/// Who caused a command: an API principal, a controller node acting on its own, or the system.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    Principal(PrincipalName),
    Node(NodeId),
    System,
}

/// What a command does. New kinds get a variant here, a summary line and an arm in `apply`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CommandKind {
    /// A free-text note on the incident timeline.
    Annotate { text: String },
    /// The cluster configuration every replica judges with. The leader proposes it when the
    /// replicated one differs from its file, so replicas never judge with different configs.
    ConfigApplied {
        config: Box<ClusterConfig>,
        /// `config_digest` of `config`, rechecked at apply.
        digest: String,
    },
    /// Health evidence and site transitions, judged by `detection::Detector`.
    Detection(DetectionInput),
    /// A routing change, checked against the safety rules when proposed and again here.
    Routing {
        change: RoutingChange,
        reason: String,
    },
    /// Pin RRsets of one zone to explicit values, overriding what the routing derives, or unpin
    /// them (a record with an empty `values` list). Pins outlive later routing changes.
    SetRecords {
        zone: ZoneName,
        records: Vec<RecordValues>,
        reason: String,
    },
    /// A validated runbook, stored as a new version unless its text equals the latest one's.
    RunbookApplied {
        runbook: Box<Runbook>,
        /// The YAML text it was validated from.
        source: String,
        /// SHA-256 (lowercase hex) of `source`, rechecked at apply.
        content_hash: String,
    },
    /// Start a run of a runbook version; its id is this command's log index.
    ExecutionStarted(ExecutionStart),
    /// Intent: the leader is about to act on a step (committed before the action).
    StepStarted(StepStart),
    /// Outcome of a step's attempt (committed after the action).
    StepFinished(StepFinish),
    /// Stop an execution: no new step starts.
    ExecutionAborted(ExecutionAbort),
}

impl CommandKind {
    /// The one-line description recorded in the audit chain.
    pub fn summary(&self) -> String {
        match self {
            CommandKind::Annotate { text } => format!("annotate: {text}"),
            CommandKind::ConfigApplied { config, digest } => {
                format!(
                    "config applied: cluster {} digest {}",
                    config.name,
                    &digest[..digest.len().min(16)]
                )
            }
            CommandKind::Detection(input) => detection::summary(input),
            CommandKind::Routing { change, reason } => routing::summary(change, reason),
            CommandKind::SetRecords {
                zone,
                records,
                reason,
            } => routing::summary_records(zone, records, reason),
            CommandKind::RunbookApplied {
                runbook,
                content_hash,
                ..
            } => runbooks::summary(runbook, content_hash),
            CommandKind::ExecutionStarted(start) => execution::summary_started(start),
            CommandKind::StepStarted(start) => execution::summary_step_started(start),
            CommandKind::StepFinished(finish) => execution::summary_step_finished(finish),
            CommandKind::ExecutionAborted(abort) => execution::summary_aborted(abort),
        }
    }
}

/// A timeline note; its id is the log index of the command that added it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Annotation {
    pub id: u64,
    pub time: Timestamp,
    pub actor: Actor,
    pub text: String,
}

/// The result of applying one command, returned to its proposer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Applied {
    /// Log index the command was applied at.
    pub index: u64,
    /// Audit chain head after the command, which the command's own entry produced.
    pub audit_head: String,
    pub outcome: Outcome,
}

/// Whether the state machine accepted the command. A rejection is a domain outcome, not an
/// error: it is audited like any other command and every replica reaches the same verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Accepted,
    Rejected(Rejection),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    #[error("annotation text is empty")]
    AnnotationEmpty,
    #[error("annotation text is {length} bytes, more than the {max} allowed")]
    AnnotationTooLong { length: usize, max: usize },
    #[error("configuration digest {claimed} does not match its content ({actual})")]
    ConfigDigestMismatch { claimed: String, actual: String },
    #[error("no configuration has been applied yet")]
    NoConfig,
    #[error("detection: {0}")]
    Detection(crate::detection::Rejection),
    #[error("safety: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Safety(Vec<SafetyViolation>),
    #[error("set_records: {0}")]
    Records(RecordsRejection),
    #[error("runbook content hash {claimed} does not match its source ({actual})")]
    RunbookHashMismatch { claimed: String, actual: String },
    #[error("runbook source is {length} bytes, more than the {max} allowed")]
    RunbookSourceTooLong { length: usize, max: usize },
    #[error("execution: {0}")]
    Execution(crate::execution::Rejection),
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// Log index of the last command applied (0 before any).
    last_applied_index: u64,
    /// Timeline notes by id.
    annotations: BTreeMap<u64, Annotation>,
    audit: AuditChain,
    /// The replicated configuration, once the first leader has proposed it.
    config: Option<ConfigState>,
    /// Site-loss detection over the replicated verdicts; present once a config is.
    detector: Option<Detector>,
    /// Recent site-state events, newest last (bounded).
    site_events: Vec<SiteEventRecord>,
    /// Which sites are in rotation for each service.
    routing: RoutingState,
    /// Every applied version of every runbook.
    #[serde(default)]
    runbooks: runbooks::RunbookVersions,
    /// Every execution, with the indexes behind the exclusion rules.
    #[serde(default)]
    executions: ExecutionsState,
}

impl State {
    /// Applies the command committed at `index` in `term`.
    ///
    /// Panics if `index` does not increase: Raft applies each index once, in order, so anything
    /// else is a bug that must take this replica down rather than fork its state.
    pub fn apply(&mut self, index: u64, term: u64, command: &Command) -> Applied {
        assert!(
            index > self.last_applied_index,
            "command at index {index} applied after index {}",
            self.last_applied_index
        );
        self.last_applied_index = index;
        let outcome = match &command.kind {
            CommandKind::Annotate { text } => self.annotate(index, command, text),
            CommandKind::ConfigApplied { config, digest } => {
                self.apply_config(index, config, digest)
            }
            CommandKind::Detection(input) => self.apply_detection(index, input),
            CommandKind::Routing { change, .. } => self.apply_routing(index, change),
            CommandKind::SetRecords { zone, records, .. } => {
                self.apply_set_records(index, zone, records)
            }
            CommandKind::RunbookApplied {
                runbook,
                source,
                content_hash,
            } => self.apply_runbook(
                index,
                &command.actor,
                command.time,
                runbook,
                source,
                content_hash,
            ),
            CommandKind::ExecutionStarted(start) => {
                self.apply_execution_started(index, &command.actor, start)
            }
            CommandKind::StepStarted(start) => self.apply_step_started(term, start),
            CommandKind::StepFinished(finish) => self.apply_step_finished(finish),
            CommandKind::ExecutionAborted(abort) => self.apply_execution_aborted(abort),
        };
        let summary = match &outcome {
            Outcome::Accepted => command.kind.summary(),
            Outcome::Rejected(rejection) => {
                format!("rejected: {rejection}: {}", command.kind.summary())
            }
        };
        let entry = self
            .audit
            .append(index, term, command.time, command.actor.clone(), summary);
        Applied {
            index,
            audit_head: entry.hash.clone(),
            outcome,
        }
    }

    fn annotate(&mut self, index: u64, command: &Command, text: &str) -> Outcome {
        if text.trim().is_empty() {
            return Outcome::Rejected(Rejection::AnnotationEmpty);
        }
        if text.len() > ANNOTATION_TEXT_MAX {
            return Outcome::Rejected(Rejection::AnnotationTooLong {
                length: text.len(),
                max: ANNOTATION_TEXT_MAX,
            });
        }
        self.annotations.insert(
            index,
            Annotation {
                id: index,
                time: command.time,
                actor: command.actor.clone(),
                text: text.to_owned(),
            },
        );
        Outcome::Accepted
    }

    pub fn last_applied_index(&self) -> u64 {
        self.last_applied_index
    }

    pub fn annotations(&self) -> impl Iterator<Item = &Annotation> {
        self.annotations.values()
    }

    pub fn audit(&self) -> &AuditChain {
        &self.audit
    }

    /// The replicated configuration, if the first leader has proposed it yet.
    pub fn config(&self) -> Option<&ConfigState> {
        self.config.as_ref()
    }

    pub fn detector(&self) -> Option<&Detector> {
        self.detector.as_ref()
    }

    /// Recent site-state events, oldest first.
    pub fn site_events(&self) -> &[SiteEventRecord] {
        &self.site_events
    }

    pub fn routing(&self) -> &RoutingState {
        &self.routing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotate(time: u64, text: &str) -> Command {
        Command {
            time: Timestamp(time),
            actor: Actor::Principal(PrincipalName::new("ops")),
            kind: CommandKind::Annotate {
                text: text.to_owned(),
            },
        }
    }

    #[test]
    fn annotations_are_kept_and_audited() {
        let mut state = State::default();
        let first = state.apply(3, 1, &annotate(10, "drill started"));
        let second = state.apply(5, 2, &annotate(20, "drill ended"));
        assert_eq!(first.outcome, Outcome::Accepted);
        assert_eq!(second.index, 5);
        assert_eq!(second.audit_head, state.audit().head());
        assert_ne!(first.audit_head, second.audit_head);
        let ids: Vec<_> = state
            .annotations()
            .map(|note| (note.id, note.time))
            .collect();
        assert_eq!(ids, [(3, Timestamp(10)), (5, Timestamp(20))]);
        assert_eq!(state.audit().len(), 2);
        assert_eq!(state.audit().entries()[1].summary, "annotate: drill ended");
        assert_eq!(state.audit().verify(), Ok(()));
        assert_eq!(state.last_applied_index(), 5);
    }

    #[test]
    fn rejected_commands_are_audited_but_change_nothing_else() {
        let mut state = State::default();
        let empty = state.apply(1, 1, &annotate(1, "  "));
        assert_eq!(empty.outcome, Outcome::Rejected(Rejection::AnnotationEmpty));
        let long = state.apply(2, 1, &annotate(2, &"x".repeat(ANNOTATION_TEXT_MAX + 1)));
        assert_eq!(
            long.outcome,
            Outcome::Rejected(Rejection::AnnotationTooLong {
                length: ANNOTATION_TEXT_MAX + 1,
                max: ANNOTATION_TEXT_MAX
            })
        );
        assert_eq!(state.annotations().count(), 0);
        assert_eq!(state.audit().len(), 2);
        assert!(state.audit().entries()[0].summary.starts_with("rejected: "));
    }

    #[test]
    fn replicas_applying_the_same_log_agree() {
        let log: Vec<_> = (1..=20)
            .map(|i| annotate(i, &format!("note {i}")))
            .collect();
        let mut left = State::default();
        let mut right = State::default();
        for (position, command) in log.iter().enumerate() {
            let index = position as u64 + 1;
            assert_eq!(
                left.apply(index, 1, command),
                right.apply(index, 1, command)
            );
        }
        assert_eq!(left, right);
        let json = serde_json::to_string(&left).expect("serialize");
        let back: State = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, left);
    }

    #[test]
    fn command_json_shape() {
        let json = serde_json::to_string(&annotate(7, "hi")).expect("serialize");
        expect_test::expect![[
            r#"{"time":7,"actor":{"principal":"ops"},"kind":{"annotate":{"text":"hi"}}}"#
        ]]
        .assert_eq(&json);
    }
}

#[cfg(test)]
mod routing_test;
#[cfg(test)]
mod state_test;
#[cfg(test)]
pub(crate) use state_test::config as test_config;
