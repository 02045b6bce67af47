//! The verdict changes this node still has to commit: the latest one per endpoint, never a
//! queue, so a node that cannot commit for a while sends only what is still true when it can.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use switchyard_core::detection::VerdictChanged;
use switchyard_core::id::EndpointId;
use tokio::sync::Notify;

/// A verdict change waiting to be committed, with the order it arrived in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingVerdict {
    /// Increases with every `push`: a later flip of the same endpoint has a higher one.
    pub sequence: u64,
    pub change: VerdictChanged,
}

/// At most one pending verdict per endpoint, so the memory is bounded by the endpoint count.
/// Cheap to clone: clones share the same set.
#[derive(Clone, Debug, Default)]
pub struct PendingVerdicts {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    state: Mutex<Slots>,
    /// Woken on every `push`.
    notify: Notify,
}

#[derive(Debug, Default)]
struct Slots {
    next_sequence: u64,
    by_endpoint: BTreeMap<EndpointId, PendingVerdict>,
}

impl PendingVerdicts {
    fn slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        // The map is updated in single steps; a panic elsewhere cannot leave it torn.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a flip; it supersedes (drops) any pending flip of the same endpoint.
    pub fn push(&self, change: VerdictChanged) {
        {
            let mut slots = self.slots();
            let sequence = slots.next_sequence;
            slots.next_sequence += 1;
            slots
                .by_endpoint
                .insert(change.endpoint.clone(), PendingVerdict { sequence, change });
        }
        self.inner.notify.notify_one();
    }

    /// The oldest pending verdict, left in place until [`PendingVerdicts::committed`].
    pub fn oldest(&self) -> Option<PendingVerdict> {
        self.slots()
            .by_endpoint
            .values()
            .min_by_key(|pending| pending.sequence)
            .cloned()
    }

    /// Removes `pending` once committed, unless a newer flip of its endpoint replaced it in the
    /// meantime (that one must still be sent).
    pub fn committed(&self, pending: &PendingVerdict) {
        let mut slots = self.slots();
        if slots
            .by_endpoint
            .get(&pending.change.endpoint)
            .is_some_and(|current| current.sequence == pending.sequence)
        {
            slots.by_endpoint.remove(&pending.change.endpoint);
        }
    }

    pub fn len(&self) -> usize {
        self.slots().by_endpoint.len()
    }

    /// Resolves after the next `push` (or at once if one happened since the last wait).
    pub async fn pushed(&self) {
        self.inner.notify.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use switchyard_core::Timestamp;
    use switchyard_core::detection::Verdict;
    use switchyard_core::id::NodeId;

    use super::*;

    fn change(endpoint: &str, verdict: Verdict, since: u64) -> VerdictChanged {
        VerdictChanged {
            observer: NodeId(1),
            endpoint: EndpointId::from(endpoint),
            verdict,
            since: Timestamp(since),
            last_error: None,
            latency_ms: None,
        }
    }

    #[test]
    fn a_newer_flip_supersedes_the_pending_one_of_the_same_endpoint() {
        let pending = PendingVerdicts::default();
        pending.push(change("www-site1", Verdict::Down, 10));
        pending.push(change("www-site2", Verdict::Down, 11));
        pending.push(change("www-site1", Verdict::Up, 12));
        assert_eq!(pending.len(), 2);
        // www-site2 is now the oldest; www-site1 keeps only its latest verdict.
        let first = pending.oldest().expect("pending");
        assert_eq!(first.change, change("www-site2", Verdict::Down, 11));
        pending.committed(&first);
        let second = pending.oldest().expect("pending");
        assert_eq!(second.change, change("www-site1", Verdict::Up, 12));
        pending.committed(&second);
        assert_eq!(pending.oldest(), None);
        assert_eq!(pending.len(), 0);
    }

    #[test]
    fn committing_a_superseded_verdict_keeps_the_newer_one() {
        let pending = PendingVerdicts::default();
        pending.push(change("www-site1", Verdict::Down, 10));
        let in_flight = pending.oldest().expect("pending");
        // While the Down is being proposed, the endpoint comes back.
        pending.push(change("www-site1", Verdict::Up, 20));
        pending.committed(&in_flight);
        let left = pending.oldest().expect("the newer verdict stays");
        assert_eq!(left.change, change("www-site1", Verdict::Up, 20));
        assert!(left.sequence > in_flight.sequence);
    }

    #[test]
    fn many_flips_of_few_endpoints_stay_bounded() {
        let pending = PendingVerdicts::default();
        for round in 0..1000 {
            let verdict = if round % 2 == 0 {
                Verdict::Down
            } else {
                Verdict::Up
            };
            pending.push(change("a", verdict, round));
            pending.push(change("b", verdict, round));
        }
        assert_eq!(pending.len(), 2);
        assert_eq!(
            pending.oldest().expect("pending").change,
            change("a", Verdict::Up, 999)
        );
    }
}
