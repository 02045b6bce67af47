//! The leader pushes the routing in force to every zone served by an external provider (RFC 2136
//! to BIND or Knot): when the routing or configuration moves, and once on becoming leader so that
//! a provider that missed a push converges. Failures are logged, counted and retried with bounded
//! backoff; errors never carry TSIG secrets, so they are logged as they are.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use switchyard_core::config::{ClusterConfig, Zone};
use switchyard_core::id::{ProviderId, ZoneName};
use switchyard_core::routing::{Rrset, RrsetKey};
use switchyard_providers::{
    DnsProvider, ProviderError, PushReport, Rfc2136Provider, RrsetChange, verify,
};
use switchyard_raft::Role;
use tokio::time::Instant;

use super::metrics::DnsMetrics;
use super::{expected_answers, is_embedded};
use crate::node::NodeContext;

/// How often the loop checks leadership and due retries when no index is applied.
const TICK_INTERVAL: Duration = Duration::from_millis(500);
/// Wait before retrying a failed push; doubled per failure up to the maximum.
const RETRY_INITIAL: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);
/// How long the leader waits for a zone's nameservers to serve what it pushed.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(10);
const VERIFY_POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Who serves a zone.
#[derive(Debug)]
pub enum ZoneProvider {
    /// Every node serves it itself; nothing to push.
    Embedded,
    External(Box<dyn DnsProvider>),
    /// A provider kind this node cannot push to yet (PowerDNS).
    Unsupported {
        kind: &'static str,
    },
}

impl ZoneProvider {
    /// The provider of `zone`, built from its configuration (an RFC 2136 provider loads its
    /// TSIG key from its file now, so a rotated key file is picked up by the next push).
    pub fn of(config: &ClusterConfig, zone: &Zone) -> Result<Self, ProviderError> {
        if is_embedded(config, zone) {
            return Ok(ZoneProvider::Embedded);
        }
        let Some(provider) = config.provider(&zone.provider) else {
            // `spec` validates every zone's provider reference.
            return Ok(ZoneProvider::Unsupported { kind: "unknown" });
        };
        Ok(match Rfc2136Provider::from_config(provider)? {
            Some(rfc2136) => ZoneProvider::External(Box::new(rfc2136)),
            None => ZoneProvider::Unsupported { kind: "powerdns" },
        })
    }
}

/// Replaces every RRset of `zone` with its value in `answers` through `provider`, in one update
/// where the provider allows it, with the provider's own retries and timeouts; counts the outcome.
pub async fn push_zone(
    provider: &dyn DnsProvider,
    provider_id: &ProviderId,
    zone: &ZoneName,
    answers: &BTreeMap<RrsetKey, Rrset>,
    metrics: &DnsMetrics,
) -> Result<PushReport, ProviderError> {
    let changes = RrsetChange::by_zone(answers)
        .remove(zone)
        .unwrap_or_default();
    let result = provider.push(zone, &changes).await;
    metrics.count_push(provider_id.as_str(), result.as_ref().map(|_| ()));
    result
}

/// Where the pushes of one zone stand, on this leader.
#[derive(Debug, Default)]
struct ZonePush {
    /// The answers index last pushed successfully.
    pushed: Option<u64>,
    failures: u32,
    retry_at: Option<Instant>,
}

impl ZonePush {
    fn due(&self, index: u64, now: Instant) -> bool {
        self.pushed != Some(index) && self.retry_at.is_none_or(|at| at <= now)
    }

    fn failed(&mut self, now: Instant) -> Duration {
        self.failures += 1;
        let backoff = RETRY_INITIAL
            .saturating_mul(1 << self.failures.saturating_sub(1).min(16))
            .min(RETRY_MAX);
        self.retry_at = Some(now + backoff);
        backoff
    }
}

/// Runs on every node; acts only while this node is leader.
pub async fn push_routing(context: NodeContext, metrics: DnsMetrics) {
    let mut applied = context.raft.subscribe_applied();
    let mut tick = tokio::time::interval(TICK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut zones: BTreeMap<ZoneName, ZonePush> = BTreeMap::new();
    let mut leading = false;
    // Bounded by shutdown: every iteration waits for an applied index or a tick first.
    loop {
        tokio::select! {
            changed = applied.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = tick.tick() => {}
            () = context.shutdown.cancelled() => return,
        }
        if context.raft.status().role != Role::Leader {
            // A new term may bring a new leader here later: it must push everything again.
            leading = false;
            zones.clear();
            continue;
        }
        if !leading {
            leading = true;
            tracing::debug!("leader: pushing the routing to external dns providers");
        }
        let now = Instant::now();
        let due = context.raft.read_state(|state| {
            let config = &state.config()?.config;
            let index = super::answers_index(state);
            let any_due = config.zones.iter().any(|zone| {
                !is_embedded(config, zone)
                    && zones
                        .get(&zone.name)
                        .is_none_or(|push| push.due(index, now))
            });
            if !any_due {
                return None;
            }
            let (index, answers) = expected_answers(state)?;
            Some((config.clone(), index, answers))
        });
        let Some((config, index, answers)) = due else {
            continue;
        };
        // Intent before effect: only a leader confirmed by a quorum pushes.
        if let Err(error) = context.raft.ensure_linearizable().await {
            tracing::debug!(%error, "not pushing dns: leadership not confirmed");
            continue;
        }
        for zone in &config.zones {
            let push = zones.entry(zone.name.clone()).or_default();
            if is_embedded(&config, zone) || !push.due(index, Instant::now()) {
                continue;
            }
            tokio::select! {
                () = push_one(&config, zone, index, &answers, push, &metrics) => {}
                () = context.shutdown.cancelled() => return,
            }
        }
    }
}

async fn push_one(
    config: &ClusterConfig,
    zone: &Zone,
    index: u64,
    answers: &BTreeMap<RrsetKey, Rrset>,
    push: &mut ZonePush,
    metrics: &DnsMetrics,
) {
    let provider = match ZoneProvider::of(config, zone) {
        Ok(ZoneProvider::External(provider)) => provider,
        Ok(ZoneProvider::Embedded) => return,
        Ok(ZoneProvider::Unsupported { kind }) => {
            tracing::warn!(zone = %zone.name, provider = %zone.provider, kind, "cannot push to this kind of dns provider yet; the zone will not follow routing changes");
            push.pushed = Some(index);
            return;
        }
        Err(error) => {
            metrics.count_push(zone.provider.as_str(), Err(&error));
            let retry_in = push.failed(Instant::now());
            tracing::error!(zone = %zone.name, provider = %zone.provider, %error, ?retry_in, "cannot set up the dns provider");
            return;
        }
    };
    match push_zone(
        provider.as_ref(),
        &zone.provider,
        &zone.name,
        answers,
        metrics,
    )
    .await
    {
        Ok(report) => {
            tracing::info!(
                zone = %zone.name,
                provider = %zone.provider,
                rrsets = report.rrsets,
                records = report.records,
                attempts = report.attempts,
                elapsed = ?report.elapsed,
                "pushed the routing at log index {index}"
            );
            push.pushed = Some(index);
            push.failures = 0;
            push.retry_at = None;
            spawn_verification(zone, answers, metrics);
        }
        Err(error) => {
            let retry_in = push.failed(Instant::now());
            tracing::warn!(zone = %zone.name, provider = %zone.provider, %error, failures = push.failures, ?retry_in, "dns push failed");
        }
    }
}

/// Checks in the background that the zone's nameservers serve what was pushed (secondaries
/// catch up by NOTIFY and transfer), logging and timing the outcome; bounded by its timeout.
fn spawn_verification(zone: &Zone, answers: &BTreeMap<RrsetKey, Rrset>, metrics: &DnsMetrics) {
    let expected: BTreeMap<RrsetKey, Rrset> = answers
        .iter()
        .filter(|(key, _)| key.zone == zone.name)
        .map(|(key, rrset)| (key.clone(), rrset.clone()))
        .collect();
    let servers: Vec<SocketAddr> = zone.nameservers.clone();
    if expected.is_empty() || servers.is_empty() {
        return;
    }
    let name = zone.name.clone();
    let metrics = metrics.clone();
    tokio::spawn(async move {
        let report = verify(
            &expected,
            &servers,
            &[],
            VERIFY_TIMEOUT,
            VERIFY_POLL_INTERVAL,
        )
        .await;
        metrics.observe_verification(report.elapsed);
        if report.converged {
            tracing::info!(zone = %name, elapsed = ?report.elapsed, "every nameserver serves the pushed routing");
        } else {
            let pending: Vec<String> = report
                .pending()
                .map(|check| format!("{} {}", check.server, check.key.name))
                .collect();
            tracing::warn!(zone = %name, pending = %pending.join(", "), "nameservers do not serve the pushed routing yet");
        }
    });
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use prometheus_client::registry::Registry;
    use switchyard_core::config::RecordType;
    use switchyard_providers::{FakeProvider, ProviderError};

    use super::*;

    fn rrset(zone: &str, name: &str, values: &[&str]) -> (RrsetKey, Rrset) {
        (
            RrsetKey {
                zone: ZoneName::new(zone),
                name: name.to_owned(),
                record_type: RecordType::A,
            },
            Rrset {
                ttl: Duration::from_secs(5),
                values: values.iter().map(|value| value.parse().unwrap()).collect(),
            },
        )
    }

    #[tokio::test]
    async fn push_zone_sends_only_the_zone_s_rrsets_and_counts_outcomes() {
        let metrics = super::super::metrics::register(&mut Registry::default());
        let fake = FakeProvider::new();
        let zone = ZoneName::new("ext.example.");
        let answers: BTreeMap<RrsetKey, Rrset> = [
            rrset(
                "ext.example.",
                "www.ext.example.",
                &["192.0.2.1", "192.0.2.2"],
            ),
            rrset("ext.example.", "api.ext.example.", &[]),
            rrset("test.example.", "www.test.example.", &["192.0.2.3"]),
        ]
        .into_iter()
        .collect();
        let provider = ProviderId::new("bind");
        let report = push_zone(&fake, &provider, &zone, &answers, &metrics)
            .await
            .expect("push");
        assert_eq!((report.rrsets, report.records), (2, 2));
        let pushes = fake.pushes();
        let names: BTreeSet<&str> = pushes[0]
            .changes
            .iter()
            .map(|change| change.name.as_str())
            .collect();
        assert_eq!(
            names,
            BTreeSet::from(["www.ext.example.", "api.ext.example."])
        );
        fake.fail_next(ProviderError::Injected { zone: zone.clone() });
        assert!(
            push_zone(&fake, &provider, &zone, &answers, &metrics)
                .await
                .is_err()
        );
        let count = |outcome: &str| {
            metrics
                .updates_pushed
                .get_or_create(&[
                    ("provider", "bind".to_owned()),
                    ("outcome", outcome.to_owned()),
                ])
                .get()
        };
        assert_eq!((count("ok"), count("injected")), (1, 1));
    }

    #[test]
    fn failed_pushes_back_off_doubling_up_to_the_maximum() {
        let now = Instant::now();
        let mut push = ZonePush::default();
        assert!(push.due(7, now));
        let backoffs: Vec<u64> = (0..9).map(|_| push.failed(now).as_secs()).collect();
        assert_eq!(backoffs, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert!(!push.due(7, now));
        assert!(push.due(7, now + RETRY_MAX));
        push.pushed = Some(7);
        assert!(!push.due(7, now + RETRY_MAX));
        assert!(push.due(8, now + RETRY_MAX));
    }
}
