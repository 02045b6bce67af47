//! [`Observer`]: runs this node's prober over the replicated configuration and turns each
//! verdict flip into a pending `VerdictChanged`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use switchyard_core::Timestamp;
use switchyard_core::config::ClusterConfig;
use switchyard_core::detection::{Verdict, VerdictChanged};
use switchyard_core::id::{EndpointId, NodeId};
use switchyard_probe::{Prober, ProberHandle, ProberOptions, VerdictFlip};
use tokio::sync::watch;

use super::metrics::DetectionMetrics;
use super::pending::PendingVerdicts;
use crate::node::NodeContext;

/// How often the last-success ages on `/metrics` are refreshed from the prober.
const AGE_REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// Probes every endpoint from this node with the timings of the replicated configuration (never
/// this node's file, so that every observer counts alike), restarting the prober whenever the
/// replicated configuration changes.
#[derive(Debug)]
pub struct Observer {
    pub context: NodeContext,
    pub metrics: DetectionMetrics,
    /// Where flips go; the committer sends them on.
    pub pending: PendingVerdicts,
}

/// Why one prober's run ended.
enum Ended {
    ConfigChanged,
    Stopped,
}

impl Observer {
    pub async fn run(self) -> anyhow::Result<()> {
        let mut applied = self.context.raft.subscribe_applied();
        let shutdown = self.context.shutdown.clone();
        loop {
            let replicated = self.context.raft.read_state(|state| {
                state
                    .config()
                    .map(|config| (config.config.clone(), config.digest.clone()))
            });
            let ended = match replicated {
                // Detection needs the replicated configuration: wait for it to be applied.
                None => tokio::select! {
                    changed = applied.changed() => match changed {
                        Ok(()) => Ended::ConfigChanged,
                        Err(_) => Ended::Stopped,
                    },
                    () = shutdown.cancelled() => Ended::Stopped,
                },
                Some((config, digest)) => self.probe(&config, &digest, &mut applied).await,
            };
            if matches!(ended, Ended::Stopped) || shutdown.is_cancelled() {
                return Ok(());
            }
        }
    }

    /// Runs one prober for `config` until the replicated digest moves away from `digest`.
    async fn probe(
        &self,
        config: &ClusterConfig,
        digest: &str,
        applied: &mut watch::Receiver<u64>,
    ) -> Ended {
        let shutdown = &self.context.shutdown;
        let hook_metrics = self.metrics.clone();
        let options = ProberOptions {
            observation_hook: Some(Arc::new(move |target, observation| {
                hook_metrics.observe(target, observation);
            })),
            ..ProberOptions::default()
        };
        let prober = Prober::new(config, self.context.node, options);
        let mut prober_run = None;
        let mut flips = match prober {
            Ok((prober, flips)) => {
                tracing::info!(
                    endpoints = prober.handle().stats().endpoints,
                    digest = &digest[..digest.len().min(16)],
                    "probing every endpoint of the replicated configuration"
                );
                let handle = prober.handle();
                let cancel = shutdown.child_token();
                let task = tokio::spawn(prober.run(cancel.clone()));
                prober_run = Some((handle, cancel, task));
                Some(flips)
            }
            Err(error) => {
                // A check that cannot be prepared (say, an unreadable CA file on this node)
                // leaves this node without a vote until the configuration changes.
                tracing::error!(%error, "cannot probe with the replicated configuration");
                None
            }
        };
        let mut peer_downs = PeerDowns::default();
        let mut ages = tokio::time::interval(AGE_REFRESH_INTERVAL);
        ages.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.refresh_site_states();
        let ended = loop {
            tokio::select! {
                flip = recv(&mut flips) => match flip {
                    Some(flip) => self.flipped(flip),
                    // The prober stopped on its own: only cancellation does that.
                    None => break Ended::Stopped,
                },
                changed = applied.changed() => {
                    if changed.is_err() {
                        break Ended::Stopped;
                    }
                    self.refresh_site_states();
                    let current = self.context.raft.read_state(|state| {
                        state.config().map(|config| config.digest.clone())
                    });
                    if current.as_deref() != Some(digest) {
                        tracing::info!("the replicated configuration changed; restarting the prober");
                        break Ended::ConfigChanged;
                    }
                    if let Some((handle, _, _)) = &prober_run {
                        self.confirm_peer_downs(handle, config, &mut peer_downs);
                    }
                }
                _ = ages.tick() => {
                    if let Some((handle, _, _)) = &prober_run {
                        self.metrics.set_success_ages(&handle.snapshot(), SystemTime::now());
                    }
                }
                () = shutdown.cancelled() => break Ended::Stopped,
            }
        };
        if let Some((_, cancel, task)) = prober_run {
            cancel.cancel();
            if let Err(error) = task.await {
                tracing::error!(%error, "the prober task failed");
            }
        }
        ended
    }

    fn flipped(&self, flip: VerdictFlip) {
        self.metrics.flipped(flip.verdict);
        // The prober already logs each flip at info level.
        tracing::debug!(
            endpoint = %flip.endpoint,
            pending = self.pending.len() + 1,
            "verdict flip queued for commit"
        );
        self.pending.push(verdict_changed(flip));
    }

    /// Fast confirmation across observers: when another node's `down` verdict on an endpoint
    /// commits, this node re-probes that endpoint at once (and every `confirm_interval` while
    /// unsettled) instead of waiting for its next slot, so every observer site reaches its own
    /// verdict about one confirmation round after the first one. Scans at most once per
    /// `confirm_interval`; each peer verdict triggers one confirmation.
    fn confirm_peer_downs(
        &self,
        handle: &ProberHandle,
        config: &ClusterConfig,
        peer_downs: &mut PeerDowns,
    ) {
        let policy = &config.detection;
        if peer_downs
            .scanned_at
            .is_some_and(|at| at.elapsed() < policy.confirm_interval)
        {
            return;
        }
        peer_downs.scanned_at = Some(Instant::now());
        let own = self.context.node;
        let now = crate::clock::now();
        // A verdict older than a few intervals was confirmed (or not) long ago.
        let window = policy.probe_interval * (policy.fall.max(1) + 1);
        let fresh_after = Timestamp(now.as_millis().saturating_sub(window.as_millis() as u64));
        let to_confirm: Vec<EndpointId> = self.context.raft.read_state(|state| {
            let Some(detector) = state.detector() else {
                return Vec::new();
            };
            let topology = detector.topology();
            let mut to_confirm = Vec::new();
            for endpoint in topology.endpoint_sites.keys() {
                if detector
                    .verdict(own, endpoint)
                    .is_some_and(|record| record.verdict == Verdict::Down)
                {
                    continue;
                }
                let peer_down = topology.node_sites.keys().find_map(|node| {
                    let record = detector.verdict(*node, endpoint)?;
                    (*node != own && record.verdict == Verdict::Down && record.since >= fresh_after)
                        .then_some((*node, record.since))
                });
                if let Some((node, since)) = peer_down
                    && peer_downs.seen.insert((endpoint.clone(), node, since))
                {
                    to_confirm.push(endpoint.clone());
                }
            }
            to_confirm
        });
        for endpoint in to_confirm {
            let started = handle.confirm(&endpoint);
            tracing::debug!(%endpoint, started, "confirming a peer's down verdict");
        }
        peer_downs
            .seen
            .retain(|(_, _, since)| *since >= fresh_after);
    }

    fn refresh_site_states(&self) {
        self.context.raft.read_state(|state| {
            if let Some(detector) = state.detector() {
                self.metrics.set_site_states(detector);
            }
        });
    }
}

/// Peers' `down` verdicts already confirmed, by (endpoint, peer, since), and the last scan.
#[derive(Debug, Default)]
struct PeerDowns {
    seen: BTreeSet<(EndpointId, NodeId, Timestamp)>,
    scanned_at: Option<Instant>,
}

/// Waits for the next flip, or forever when there is no prober.
async fn recv(flips: &mut Option<tokio::sync::mpsc::Receiver<VerdictFlip>>) -> Option<VerdictFlip> {
    match flips {
        Some(flips) => flips.recv().await,
        None => std::future::pending().await,
    }
}

/// The command body for a flip. `since` is the time of the probe that completed the rise/fall
/// count (`observed_at`), as `VerdictChanged` defines it: the hold counts from when this node
/// was sure, not from its first doubt.
pub fn verdict_changed(flip: VerdictFlip) -> VerdictChanged {
    VerdictChanged {
        observer: flip.observer,
        endpoint: flip.endpoint,
        verdict: match flip.verdict {
            switchyard_probe::Verdict::Up => Verdict::Up,
            switchyard_probe::Verdict::Down => Verdict::Down,
        },
        since: flip.observed_at,
        last_error: flip.last_error,
        latency_ms: Some(u32::try_from(flip.latency.as_millis()).unwrap_or(u32::MAX)),
    }
}

#[cfg(test)]
mod tests {
    use switchyard_core::id::{ServiceId, SiteId};

    use super::*;

    #[test]
    fn a_flip_becomes_a_verdict_change_timed_by_its_deciding_probe() {
        let flip = VerdictFlip {
            observer: NodeId(2),
            endpoint: EndpointId::from("www/site1/1"),
            service: ServiceId::from("www"),
            site: SiteId::from("site1"),
            verdict: switchyard_probe::Verdict::Down,
            since: Timestamp(1_000),
            observed_at: Timestamp(1_200),
            last_error: Some("connection refused".to_owned()),
            latency: Duration::from_micros(1_500),
        };
        assert_eq!(
            verdict_changed(flip),
            VerdictChanged {
                observer: NodeId(2),
                endpoint: EndpointId::from("www/site1/1"),
                verdict: Verdict::Down,
                since: Timestamp(1_200),
                last_error: Some("connection refused".to_owned()),
                latency_ms: Some(1),
            }
        );
    }
}
