//! The `DnsProvider` trait every external DNS backend implements, and `FakeProvider`, which
//! records pushes in memory and fails on demand, for the simulator and unit tests.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchyard_core::config::RecordType;
use switchyard_core::id::ZoneName;
use switchyard_core::routing::{Rrset, RrsetKey};

use crate::error::{ProviderError, Transport};

/// Something that can make a zone serve new RRsets. `push` replaces each RRset of `changes` whole,
/// atomically per zone where the backend allows it.
#[async_trait::async_trait]
pub trait DnsProvider: Send + Sync + std::fmt::Debug {
    async fn push(
        &self,
        zone: &ZoneName,
        changes: &[RrsetChange],
    ) -> Result<PushReport, ProviderError>;
}

/// The new content of one RRset. An empty `values` deletes the RRset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RrsetChange {
    /// Fully qualified owner name, with the trailing dot.
    pub name: String,
    pub record_type: RecordType,
    pub ttl: Duration,
    pub values: BTreeSet<IpAddr>,
}

impl RrsetChange {
    /// Groups the answers of a routing by zone, as the changes that make a server serve them.
    pub fn by_zone(answers: &BTreeMap<RrsetKey, Rrset>) -> BTreeMap<ZoneName, Vec<RrsetChange>> {
        let mut zones: BTreeMap<ZoneName, Vec<RrsetChange>> = BTreeMap::new();
        for (key, rrset) in answers {
            zones
                .entry(key.zone.clone())
                .or_default()
                .push(RrsetChange {
                    name: key.name.clone(),
                    record_type: key.record_type,
                    ttl: rrset.ttl,
                    values: rrset.values.clone(),
                });
        }
        zones
    }
}

/// What one successful push did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushReport {
    pub zone: ZoneName,
    /// The server updated; `None` for providers without one (the fake).
    pub server: Option<SocketAddr>,
    pub rrsets: usize,
    /// Records added (deletions not counted).
    pub records: usize,
    /// TCP if any message went over TCP.
    pub transport: Option<Transport>,
    /// UPDATE messages sent: 1 unless the change exceeds one DNS message.
    pub messages: usize,
    /// Attempts made over all messages, the successful ones included.
    pub attempts: u32,
    /// Size of the signed UPDATE messages, summed.
    pub message_bytes: usize,
    pub elapsed: Duration,
}

/// One push the fake received, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakePush {
    pub zone: ZoneName,
    pub changes: Vec<RrsetChange>,
    /// Whether the fake failed this push (by injection).
    pub failed: bool,
}

/// The content of one RRset as the fake serves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeRrset {
    pub ttl: Duration,
    pub values: BTreeSet<IpAddr>,
}

#[derive(Debug, Default)]
struct FakeState {
    pushes: Vec<FakePush>,
    zones: BTreeMap<ZoneName, BTreeMap<(String, RecordType), FakeRrset>>,
    /// Failures to inject, one per coming push (front first).
    failures_queued: VecDeque<ProviderError>,
    /// When set, every push fails with a copy of this.
    failing: Option<FakeFailure>,
    latency: Duration,
}

/// A failure the fake can be told to produce for every push.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FakeFailure {
    /// A transient failure ([`ProviderError::Injected`]).
    Transient,
    /// An authentication failure, which retrying does not fix.
    TsigAuthFailed,
    /// A policy refusal.
    UpdateRefused,
}

/// A provider that keeps what it was pushed in memory. Clones share the same state.
#[derive(Clone, Debug, Default)]
pub struct FakeProvider {
    state: Arc<Mutex<FakeState>>,
}

impl FakeProvider {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every push after this fails with `failure`, until `set_failing(None)`.
    pub fn set_failing(&self, failure: Option<FakeFailure>) {
        self.lock().failing = failure;
    }

    /// The next push fails with `error` (queued: several calls fail several pushes).
    pub fn fail_next(&self, error: ProviderError) {
        self.lock().failures_queued.push_back(error);
    }

    /// Every push waits this long first (use paused time in tests).
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    pub fn pushes(&self) -> Vec<FakePush> {
        self.lock().pushes.clone()
    }

    /// What the fake serves for `name`/`record_type` in `zone` after the pushes so far.
    pub fn served(
        &self,
        zone: &ZoneName,
        name: &str,
        record_type: RecordType,
    ) -> Option<FakeRrset> {
        self.lock()
            .zones
            .get(zone)
            .and_then(|rrsets| rrsets.get(&(name.to_owned(), record_type)))
            .cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        // A poisoned lock means a test thread panicked while holding it; the state is still a
        // plain record of pushes, so keep using it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn failure(zone: &ZoneName, failure: FakeFailure) -> ProviderError {
        let server = SocketAddr::from(([127, 0, 0, 1], 53));
        match failure {
            FakeFailure::Transient => ProviderError::Injected { zone: zone.clone() },
            FakeFailure::TsigAuthFailed => ProviderError::TsigAuthFailed {
                server,
                zone: zone.clone(),
                key: "fake".to_owned(),
                failure: crate::error::TsigFailure::BadSignature,
            },
            FakeFailure::UpdateRefused => ProviderError::UpdateRefused {
                server,
                zone: zone.clone(),
                key: "fake".to_owned(),
                rcode: "REFUSED".to_owned(),
            },
        }
    }
}

#[async_trait::async_trait]
impl DnsProvider for FakeProvider {
    async fn push(
        &self,
        zone: &ZoneName,
        changes: &[RrsetChange],
    ) -> Result<PushReport, ProviderError> {
        let latency = self.lock().latency;
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let mut state = self.lock();
        let injected = state
            .failures_queued
            .pop_front()
            .or_else(|| state.failing.map(|failure| Self::failure(zone, failure)));
        state.pushes.push(FakePush {
            zone: zone.clone(),
            changes: changes.to_vec(),
            failed: injected.is_some(),
        });
        if let Some(error) = injected {
            return Err(error);
        }
        let rrsets = state.zones.entry(zone.clone()).or_default();
        for change in changes {
            let key = (change.name.clone(), change.record_type);
            if change.values.is_empty() {
                rrsets.remove(&key);
            } else {
                rrsets.insert(
                    key,
                    FakeRrset {
                        ttl: change.ttl,
                        values: change.values.clone(),
                    },
                );
            }
        }
        Ok(PushReport {
            zone: zone.clone(),
            server: None,
            rrsets: changes.len(),
            records: changes.iter().map(|change| change.values.len()).sum(),
            transport: None,
            messages: 1,
            attempts: 1,
            message_bytes: 0,
            elapsed: latency,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(values: &[&str]) -> RrsetChange {
        RrsetChange {
            name: "www.test.example.".to_owned(),
            record_type: RecordType::A,
            ttl: Duration::from_secs(30),
            values: values.iter().map(|value| value.parse().unwrap()).collect(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn fake_replaces_rrsets_whole_and_fails_on_demand() {
        let fake = FakeProvider::new();
        let zone = ZoneName::new("test.example.");
        let provider: &dyn DnsProvider = &fake;
        provider
            .push(&zone, &[change(&["192.0.2.1", "192.0.2.2"])])
            .await
            .unwrap();
        provider
            .push(&zone, &[change(&["192.0.2.3"])])
            .await
            .unwrap();
        let served = fake
            .served(&zone, "www.test.example.", RecordType::A)
            .unwrap();
        assert_eq!(
            served.values,
            BTreeSet::from(["192.0.2.3".parse::<IpAddr>().unwrap()])
        );

        fake.fail_next(ProviderError::Injected { zone: zone.clone() });
        let failed = provider.push(&zone, &[change(&[])]).await;
        assert!(matches!(failed, Err(ProviderError::Injected { .. })));
        assert!(
            fake.served(&zone, "www.test.example.", RecordType::A)
                .is_some()
        );

        fake.set_failing(Some(FakeFailure::UpdateRefused));
        let refused = provider.push(&zone, &[change(&[])]).await;
        assert!(matches!(refused, Err(ProviderError::UpdateRefused { .. })));
        fake.set_failing(None);
        fake.set_latency(Duration::from_secs(3));
        let started = tokio::time::Instant::now();
        provider.push(&zone, &[change(&[])]).await.unwrap();
        assert_eq!(started.elapsed(), Duration::from_secs(3));
        assert!(
            fake.served(&zone, "www.test.example.", RecordType::A)
                .is_none()
        );
        let failed: Vec<bool> = fake.pushes().iter().map(|push| push.failed).collect();
        assert_eq!(failed, vec![false, false, true, true, false]);
    }
}
