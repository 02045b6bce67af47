//! Verdicts and the HAProxy-style rise/fall counter that turns probe observations into them.
//!
//! The counter is pure so that the real prober and the simulator share it: feed it observations
//! (with their time), and it says when the verdict flips.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::DetectionPolicy;
use crate::time::Timestamp;

/// A node's judgement of one endpoint after rise/fall counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Up,
    Down,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Up => "up",
            Verdict::Down => "down",
        })
    }
}

/// The latest committed verdict of one node on one endpoint: a cell of the verdict matrix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerdictRecord {
    pub verdict: Verdict,
    /// The observer's time of the flip.
    pub since: Timestamp,
    pub last_error: Option<String>,
    pub latency_ms: Option<u32>,
}

/// A verdict flip reported by [`VerdictCounter::observe`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerdictFlip {
    pub verdict: Verdict,
    /// Time of the probe that completed the count (the `since` of `VerdictChanged`).
    pub since: Timestamp,
    /// Time of the first probe of the run that flipped it (first failure or first success).
    pub run_started: Timestamp,
}

/// Rise/fall counting for one (node, endpoint) pair.
///
/// From `up`, `fall` consecutive failures turn the verdict `down`; from `down`, `rise` consecutive
/// successes turn it `up`. Any result agreeing with the current verdict resets the run, so a
/// single failed probe between successes never flips anything (when `fall` is at least 2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerdictCounter {
    rise: u32,
    fall: u32,
    /// The current verdict.
    verdict: Verdict,
    /// Consecutive results disagreeing with `verdict` so far.
    run_length: u32,
    /// Time of the first result of that run.
    run_started: Option<Timestamp>,
}

impl VerdictCounter {
    /// A counter starting at `initial`. A `rise` or `fall` of 0 counts as 1.
    pub fn new(rise: u32, fall: u32, initial: Verdict) -> Self {
        Self {
            rise: rise.max(1),
            fall: fall.max(1),
            verdict: initial,
            run_length: 0,
            run_started: None,
        }
    }

    /// A counter with the policy's `rise` and `fall`, starting `up` as every node assumes before
    /// its first verdict change is committed.
    pub fn from_policy(policy: &DetectionPolicy) -> Self {
        Self::new(policy.rise, policy.fall, Verdict::Up)
    }

    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// Whether a run against the current `up` verdict has started: the prober then re-probes at
    /// `confirm_interval` instead of waiting a whole `probe_interval` (fast confirmation).
    pub fn confirming(&self) -> bool {
        self.verdict == Verdict::Up && self.run_length > 0
    }

    /// Counts one probe result (`success`) taken at `at`; returns the flip when it completes one.
    pub fn observe(&mut self, success: bool, at: Timestamp) -> Option<VerdictFlip> {
        let agrees = matches!(
            (self.verdict, success),
            (Verdict::Up, true) | (Verdict::Down, false)
        );
        if agrees {
            self.run_length = 0;
            self.run_started = None;
            return None;
        }
        self.run_length += 1;
        let run_started = *self.run_started.get_or_insert(at);
        let needed = match self.verdict {
            Verdict::Up => self.fall,
            Verdict::Down => self.rise,
        };
        if self.run_length < needed {
            return None;
        }
        self.verdict = match self.verdict {
            Verdict::Up => Verdict::Down,
            Verdict::Down => Verdict::Up,
        };
        self.run_length = 0;
        self.run_started = None;
        Some(VerdictFlip {
            verdict: self.verdict,
            since: at,
            run_started,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(counter: &mut VerdictCounter, results: &[bool]) -> Vec<(u64, Verdict, u64)> {
        let mut flips = Vec::new();
        for (index, success) in results.iter().enumerate() {
            let at = Timestamp(index as u64 * 100);
            if let Some(flip) = counter.observe(*success, at) {
                flips.push((flip.since.0, flip.verdict, flip.run_started.0));
            }
        }
        flips
    }

    #[test]
    fn single_failures_never_flip_with_fall_two() {
        let mut counter = VerdictCounter::new(2, 2, Verdict::Up);
        let flips = run(&mut counter, &[true, false, true, false, true, false, true]);
        assert_eq!(flips, vec![]);
        assert_eq!(counter.verdict(), Verdict::Up);
    }

    #[test]
    fn fall_then_rise_flip_with_run_start() {
        let mut counter = VerdictCounter::new(2, 3, Verdict::Up);
        let flips = run(
            &mut counter,
            &[true, false, false, false, false, true, false, true, true],
        );
        assert_eq!(
            flips,
            vec![(300, Verdict::Down, 100), (800, Verdict::Up, 700)]
        );
    }

    #[test]
    fn confirming_only_during_a_failure_run() {
        let mut counter = VerdictCounter::new(2, 3, Verdict::Up);
        assert!(!counter.confirming());
        counter.observe(false, Timestamp(0));
        assert!(counter.confirming());
        counter.observe(true, Timestamp(1));
        assert!(!counter.confirming());
    }
}
