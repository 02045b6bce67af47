//! HAProxy-style rise/fall counting of one endpoint's observations into a verdict.

/// A node's judgement of one endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    Up,
    Down,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Up => "up",
            Verdict::Down => "down",
        }
    }
}

/// Counts consecutive successes and failures of one endpoint.
///
/// An endpoint starts with no verdict (unknown). It becomes `Up` after `rise` consecutive
/// successes and `Down` after `fall` consecutive failures; a success resets the failure streak and
/// a failure the success streak. [`VerdictCounter::record`] reports each change exactly once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerdictCounter {
    rise: u32,
    fall: u32,
    verdict: Option<Verdict>,
    successes: u32,
    failures: u32,
}

impl VerdictCounter {
    /// `rise` and `fall` below 1 are taken as 1: a verdict always needs at least one observation.
    pub fn new(rise: u32, fall: u32) -> Self {
        Self {
            rise: rise.max(1),
            fall: fall.max(1),
            verdict: None,
            successes: 0,
            failures: 0,
        }
    }

    /// Counts one observation; returns the new verdict when this observation changed it.
    pub fn record(&mut self, ok: bool) -> Option<Verdict> {
        let (streak, threshold, target) = if ok {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            (self.successes, self.rise, Verdict::Up)
        } else {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            (self.failures, self.fall, Verdict::Down)
        };
        if streak >= threshold && self.verdict != Some(target) {
            self.verdict = Some(target);
            Some(target)
        } else {
            None
        }
    }

    /// The current verdict; `None` until the first `rise` successes or `fall` failures.
    pub fn verdict(&self) -> Option<Verdict> {
        self.verdict
    }

    /// Consecutive successes so far (0 after a failure).
    pub fn successes(&self) -> u32 {
        self.successes
    }

    /// Consecutive failures so far (0 after a success).
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Whether fast confirmation should re-probe soon: the verdict is unknown, or the endpoint is
    /// up but has started failing.
    pub fn is_unsettled(&self) -> bool {
        match self.verdict {
            None => true,
            Some(Verdict::Up) => self.failures > 0,
            Some(Verdict::Down) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `observations` (`+` success, `-` failure) and returns the flips with their positions.
    fn check(rise: u32, fall: u32, observations: &str) -> Vec<(usize, Verdict)> {
        let mut counter = VerdictCounter::new(rise, fall);
        observations
            .chars()
            .enumerate()
            .filter_map(|(index, symbol)| {
                counter
                    .record(symbol == '+')
                    .map(|verdict| (index, verdict))
            })
            .collect()
    }

    #[test]
    fn starts_unknown_and_rises_after_rise_successes() {
        assert_eq!(check(2, 3, "+"), vec![]);
        assert_eq!(check(2, 3, "++"), vec![(1, Verdict::Up)]);
        assert_eq!(check(2, 3, "+-++"), vec![(3, Verdict::Up)]);
    }

    #[test]
    fn falls_after_fall_consecutive_failures_and_reports_once() {
        assert_eq!(
            check(2, 3, "++---"),
            vec![(1, Verdict::Up), (4, Verdict::Down)]
        );
        assert_eq!(
            check(2, 3, "++------"),
            vec![(1, Verdict::Up), (4, Verdict::Down)]
        );
    }

    #[test]
    fn a_single_success_resets_the_failure_streak() {
        assert_eq!(check(2, 3, "++--+--+--"), vec![(1, Verdict::Up)]);
    }

    #[test]
    fn recovery_needs_rise_consecutive_successes() {
        assert_eq!(
            check(2, 2, "++--+-++"),
            vec![(1, Verdict::Up), (3, Verdict::Down), (7, Verdict::Up)]
        );
    }

    #[test]
    fn initial_failures_give_down_without_ever_being_up() {
        assert_eq!(check(2, 3, "---"), vec![(2, Verdict::Down)]);
    }

    #[test]
    fn zero_thresholds_count_as_one() {
        assert_eq!(
            check(0, 0, "+-+"),
            vec![(0, Verdict::Up), (1, Verdict::Down), (2, Verdict::Up)]
        );
    }

    #[test]
    fn unsettled_while_unknown_or_failing_while_up() {
        let mut counter = VerdictCounter::new(2, 3);
        assert!(counter.is_unsettled());
        counter.record(true);
        counter.record(true);
        assert!(!counter.is_unsettled());
        counter.record(false);
        assert!(counter.is_unsettled());
        counter.record(true);
        assert!(!counter.is_unsettled());
        for _ in 0..3 {
            counter.record(false);
        }
        assert_eq!(counter.verdict(), Some(Verdict::Down));
        assert!(!counter.is_unsettled());
        assert_eq!(counter.failures(), 3);
        assert_eq!(counter.successes(), 0);
    }
}
