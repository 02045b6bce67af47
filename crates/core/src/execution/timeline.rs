//! An execution's timeline: milestones from the first failed observation to DNS convergence, and
//! the recovery times derived from them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::id::StepId;
use crate::time::Timestamp;

use super::record::ExecutionState;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Milestone {
    pub at: Timestamp,
    pub kind: MilestoneKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MilestoneKind {
    /// The earliest `down` verdict behind the loss (`first_failure` of the event's evidence).
    FirstFailure,
    /// The site became `suspect` (the last `SiteSuspected` before the loss).
    Suspected {
        event_index: u64,
    },
    /// The loss (or services-down) decision was committed at `event_index`.
    Lost {
        event_index: u64,
    },
    ExecutionStarted,
    StepStarted {
        step: StepId,
        attempt: u32,
    },
    /// A new leader committed a new intent for the attempt in flight.
    StepResumed {
        step: StepId,
        attempt: u32,
        term: u64,
    },
    StepFinished {
        step: StepId,
        attempt: u32,
        succeeded: bool,
    },
    /// Every authoritative server answered as planned (from a main `verify_dns` step's outcome).
    DnsConverged {
        step: StepId,
    },
    AbortRequested,
    Finished {
        state: ExecutionState,
    },
}

/// Whether the measured recovery met the runbook's declared `rto`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RtoVerdict {
    Met,
    Missed,
    /// No `rto` declared, or nothing measured yet (still running, or no `verify_dns` step).
    Unknown,
}

/// Durations between milestones; each is `None` when a milestone it needs is missing.
///
/// - `detection`: first failed observation → loss committed.
/// - `decision`: loss committed → execution started.
/// - `actuation`: execution started → DNS converged on every authoritative server.
/// - `total`: first failed observation → DNS converged (automatic triggers only).
/// - `recovery`: what is compared with `rto`: `total`, or `actuation` for manual runs and drills,
///   which have no detection.
///
/// `rto_verdict` is `met`/`missed` when `recovery` is known; `missed` too when the execution
/// ended without succeeding and without DNS converging (the recovery never completed); else
/// `unknown`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryTimes {
    pub first_failure: Option<Timestamp>,
    pub lost: Option<Timestamp>,
    pub started: Option<Timestamp>,
    pub dns_converged: Option<Timestamp>,
    pub finished: Option<Timestamp>,
    pub detection: Option<Duration>,
    pub decision: Option<Duration>,
    pub actuation: Option<Duration>,
    pub total: Option<Duration>,
    pub recovery: Option<Duration>,
    pub rto: Option<Duration>,
    pub rto_verdict: RtoVerdict,
}

impl RecoveryTimes {
    pub fn from_timeline(timeline: &[Milestone], rto: Option<Duration>) -> Self {
        let first = |wanted: fn(&MilestoneKind) -> bool| {
            timeline
                .iter()
                .find(|milestone| wanted(&milestone.kind))
                .map(|milestone| milestone.at)
        };
        let first_failure = first(|kind| matches!(kind, MilestoneKind::FirstFailure));
        let lost = first(|kind| matches!(kind, MilestoneKind::Lost { .. }));
        let started = first(|kind| matches!(kind, MilestoneKind::ExecutionStarted));
        // The last convergence: after the last shift, every server serves the final routing.
        let dns_converged = timeline
            .iter()
            .filter(|milestone| matches!(milestone.kind, MilestoneKind::DnsConverged { .. }))
            .map(|milestone| milestone.at)
            .max();
        let finished_milestone = timeline.iter().find_map(|milestone| match milestone.kind {
            MilestoneKind::Finished { state } => Some((milestone.at, state)),
            _ => None,
        });
        let between = |from: Option<Timestamp>, to: Option<Timestamp>| Some(to?.since(from?));
        let detection = between(first_failure, lost);
        let decision = between(lost, started);
        let actuation = between(started, dns_converged);
        let total = between(first_failure, dns_converged);
        let recovery = if first_failure.is_some() {
            total
        } else {
            actuation
        };
        let rto_verdict = match (rto, recovery, finished_milestone) {
            (None, _, _) => RtoVerdict::Unknown,
            (Some(rto), Some(recovery), _) if recovery <= rto => RtoVerdict::Met,
            (Some(_), Some(_), _) => RtoVerdict::Missed,
            (Some(_), None, Some((_, state))) if state != ExecutionState::Succeeded => {
                RtoVerdict::Missed
            }
            (Some(_), None, _) => RtoVerdict::Unknown,
        };
        Self {
            first_failure,
            lost,
            started,
            dns_converged,
            finished: finished_milestone.map(|(at, _)| at),
            detection,
            decision,
            actuation,
            total,
            recovery,
            rto,
            rto_verdict,
        }
    }
}
