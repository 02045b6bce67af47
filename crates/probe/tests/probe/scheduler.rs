//! The prober against live local servers: flips are reported once, confirmation is fast,
//! overruns are skipped, and `Prober::new` probes every endpoint of a cluster configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use switchyard_core::config::{
    ClusterConfig, DetectionPolicy, Endpoint, HealthCheck, Node, RaftTimings, SafetyRules, Service,
    Site,
};
use switchyard_core::{EndpointId, NodeId, ServiceId, SiteId};
use switchyard_probe::{Prober, ProberHandle, ProberOptions, ProberStats, Verdict, VerdictFlip};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::support::*;

const DEADLINE: Duration = Duration::from_secs(10);

fn policy(interval_ms: u64, confirm_ms: u64, rise: u32, fall: u32) -> DetectionPolicy {
    DetectionPolicy {
        probe_interval: Duration::from_millis(interval_ms),
        probe_timeout: Duration::from_millis(500),
        confirm_interval: Duration::from_millis(confirm_ms),
        rise,
        fall,
        ..DetectionPolicy::default()
    }
}

async fn next_flip(flips: &mut mpsc::Receiver<VerdictFlip>) -> VerdictFlip {
    tokio::time::timeout(DEADLINE, flips.recv())
        .await
        .expect("a verdict flip before the deadline")
        .expect("the prober is running")
}

/// Waits, up to the deadline, until the stats satisfy `condition`.
async fn wait_for_stats(handle: &ProberHandle, condition: impl Fn(&ProberStats) -> bool) {
    let waited = tokio::time::timeout(DEADLINE, async {
        while !condition(&handle.stats()) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "condition not met: {:?}", handle.stats());
}

#[tokio::test]
async fn one_flip_when_an_endpoint_goes_down_and_one_when_it_comes_back() {
    let server = http_server(200, "ok").await;
    let targets = vec![target(server.address, HealthCheck::Http(http_check()))];
    let (prober, mut flips) = Prober::with_targets(
        targets,
        &policy(50, 20, 2, 2),
        NodeId(7),
        ProberOptions::default(),
    )
    .unwrap();
    let handle = prober.handle();
    let cancel = CancellationToken::new();
    let running = tokio::spawn(prober.run(cancel.clone()));

    let up = next_flip(&mut flips).await;
    assert_eq!(up.verdict, Verdict::Up);
    assert_eq!(up.observer, NodeId(7));
    assert_eq!(up.endpoint, EndpointId::new("www/site-a/1"));
    assert_eq!(up.last_error, None);
    assert!(up.since <= up.observed_at);

    server.status.store(503, Ordering::SeqCst);
    let down = next_flip(&mut flips).await;
    assert_eq!(down.verdict, Verdict::Down);
    assert_eq!(
        down.last_error.as_deref(),
        Some("http status 503, expected one of [200]")
    );
    assert!(down.since <= down.observed_at);
    // Several more failed probes, and still no second flip.
    let failed = handle.stats().probes_failed;
    wait_for_stats(&handle, |stats| stats.probes_failed >= failed + 5).await;
    assert!(flips.try_recv().is_err());
    let status = &handle.snapshot()[0];
    assert_eq!(status.verdict, Some(Verdict::Down));
    assert!(!status.last_observation.as_ref().unwrap().ok);
    assert!(status.last_success.is_some());

    server.status.store(200, Ordering::SeqCst);
    let back = next_flip(&mut flips).await;
    assert_eq!(back.verdict, Verdict::Up);
    assert!(back.since >= down.observed_at);
    let started = handle.stats().probes_started;
    wait_for_stats(&handle, |stats| stats.probes_started >= started + 5).await;
    assert!(flips.try_recv().is_err());
    assert_eq!(handle.stats().flips, 3);

    cancel.cancel();
    tokio::time::timeout(DEADLINE, running)
        .await
        .expect("the prober stops when cancelled")
        .unwrap();
}

#[tokio::test]
async fn fast_confirmation_settles_a_loss_within_one_interval() {
    let server = http_server(200, "ok").await;
    let targets = vec![target(server.address, HealthCheck::Http(http_check()))];
    // A long interval, quick confirmation, and a fall of 3: without fast confirmation the loss
    // would take three intervals (3 s) to confirm.
    let (prober, mut flips) = Prober::with_targets(
        targets,
        &policy(1000, 20, 2, 3),
        NodeId(1),
        ProberOptions::default(),
    )
    .unwrap();
    let handle = prober.handle();
    let cancel = CancellationToken::new();
    tokio::spawn(prober.run(cancel.clone()));

    let up = next_flip(&mut flips).await;
    assert_eq!(up.verdict, Verdict::Up);
    // The first verdict, too, came from confirmation probes rather than a second interval.
    assert!(up.observed_at.since(up.since) < Duration::from_millis(1000));

    server.status.store(500, Ordering::SeqCst);
    let down = next_flip(&mut flips).await;
    assert_eq!(down.verdict, Verdict::Down);
    assert!(
        down.observed_at.since(down.since) < Duration::from_millis(1000),
        "{down:?}"
    );
    assert!(handle.stats().probes_confirm >= 3, "{:?}", handle.stats());
    cancel.cancel();
}

/// Paused time against a black hole: every probe times out, so the schedule is exact.
#[tokio::test(start_paused = true)]
async fn paused_time_schedule_of_a_loss_confirmation() {
    let hole = black_hole().await;
    let targets = vec![target(hole.address, HealthCheck::Tcp)];
    let mut policy = policy(1000, 100, 2, 3);
    policy.probe_timeout = Duration::from_millis(300);
    let options = ProberOptions {
        jitter_max: Some(Duration::ZERO),
        ..ProberOptions::default()
    };
    let (prober, mut flips) = Prober::with_targets(targets, &policy, NodeId(1), options).unwrap();
    let handle = prober.handle();
    let cancel = CancellationToken::new();
    let started = tokio::time::Instant::now();
    tokio::spawn(prober.run(cancel.clone()));

    // t=0 probe, times out at 300 ms; confirmations at 400 ms and 800 ms; the third timeout, at
    // 1100 ms, makes the verdict. The 1000 ms slot finds the endpoint busy confirming.
    let down = next_flip(&mut flips).await;
    assert_eq!(down.verdict, Verdict::Down);
    assert_eq!(down.last_error.as_deref(), Some("timed out after 300ms"));
    assert_eq!(started.elapsed(), Duration::from_millis(1100));
    let stats = handle.stats();
    assert_eq!(
        (
            stats.probes_started,
            stats.probes_confirm,
            stats.probes_skipped_busy
        ),
        (1, 2, 1),
        "{stats:?}"
    );
    // A down endpoint is settled: the next two slots probe once each, with no confirmation.
    wait_for_stats(&handle, |stats| stats.probes_failed >= 5).await;
    // Probes at 2000 and 3000 ms time out at 2300 and 3300 ms; the wait polls every 10 ms.
    let elapsed = started.elapsed();
    assert!(
        (Duration::from_millis(3300)..=Duration::from_millis(3310)).contains(&elapsed),
        "{elapsed:?}"
    );
    let stats = handle.stats();
    assert_eq!(
        (
            stats.probes_started,
            stats.probes_confirm,
            stats.probes_skipped_busy
        ),
        (3, 2, 1),
        "{stats:?}"
    );
    assert_eq!(stats.probes_on_schedule, 3);
    assert!(flips.try_recv().is_err());
    cancel.cancel();
}

/// Paused time: after a stall (here the clock jumps while the scheduler is not polled), slots
/// more than half an interval late are dropped instead of all starting at once.
#[tokio::test(start_paused = true)]
async fn slots_missed_during_a_stall_are_skipped_not_bunched() {
    let hole = black_hole().await;
    let targets = vec![target(hole.address, HealthCheck::Tcp)];
    let mut policy = policy(1000, 100, 1, 1);
    policy.probe_timeout = Duration::from_millis(300);
    let options = ProberOptions {
        jitter_max: Some(Duration::ZERO),
        ..ProberOptions::default()
    };
    let (prober, mut flips) = Prober::with_targets(targets, &policy, NodeId(1), options).unwrap();
    let handle = prober.handle();
    let cancel = CancellationToken::new();
    let started = tokio::time::Instant::now();
    tokio::spawn(prober.run(cancel.clone()));
    assert_eq!(next_flip(&mut flips).await.verdict, Verdict::Down);
    assert_eq!(started.elapsed(), Duration::from_millis(300));

    // Jump to 3200 ms: the 1000 and 2000 ms slots are 2200 and 1200 ms late and dropped; the
    // 3000 ms slot is 200 ms late and starts.
    tokio::time::advance(Duration::from_millis(2900)).await;
    wait_for_stats(&handle, |stats| stats.probes_failed >= 2).await;
    let stats = handle.stats();
    assert_eq!(
        (
            stats.probes_started,
            stats.probes_on_schedule,
            stats.probes_skipped_overrun
        ),
        (2, 1, 2),
        "{stats:?}"
    );
    cancel.cancel();
}

#[tokio::test]
async fn a_probe_longer_than_the_interval_skips_slots_instead_of_piling_up() {
    let address = silent_server().await;
    let targets = vec![target(address, HealthCheck::Http(http_check()))];
    let mut policy = policy(50, 1000, 1, 1);
    policy.probe_timeout = Duration::from_millis(400);
    let (prober, mut flips) =
        Prober::with_targets(targets, &policy, NodeId(1), ProberOptions::default()).unwrap();
    let handle = prober.handle();
    let cancel = CancellationToken::new();
    tokio::spawn(prober.run(cancel.clone()));

    let down = next_flip(&mut flips).await;
    assert_eq!(down.verdict, Verdict::Down);
    assert_eq!(down.last_error.as_deref(), Some("timed out after 400ms"));
    wait_for_stats(&handle, |stats| stats.probes_skipped_busy >= 10).await;
    let stats = handle.stats();
    // One probe at a time per endpoint: every started probe took about 400 ms.
    assert!(
        stats.probes_started <= 1 + stats.probes_skipped_busy / 5,
        "{stats:?}"
    );
    cancel.cancel();
}

#[tokio::test]
async fn black_holed_endpoints_do_not_starve_healthy_ones_of_concurrency() {
    let hole = black_hole().await;
    let server = http_server(200, "ok").await;
    let mut targets: Vec<_> = (1..=4)
        .map(|ordinal| {
            let mut target = target(hole.address, HealthCheck::Tcp);
            target.endpoint = EndpointId::new(format!("www/site-b/{ordinal}"));
            target.site = SiteId::new("site-b");
            target
        })
        .collect();
    targets.push(target(server.address, HealthCheck::Tcp));
    let mut policy = policy(50, 20, 2, 2);
    policy.probe_timeout = Duration::from_millis(300);
    let (prober, mut flips) =
        Prober::with_targets(targets, &policy, NodeId(1), ProberOptions::default()).unwrap();
    let handle = prober.handle();
    let cancel = CancellationToken::new();
    tokio::spawn(prober.run(cancel.clone()));
    let mut seen = Vec::new();
    for _ in 0..5 {
        let flip = next_flip(&mut flips).await;
        seen.push((flip.endpoint.to_string(), flip.verdict));
    }
    seen.sort();
    assert_eq!(
        seen[0],
        ("www/site-a/1".to_owned(), Verdict::Up),
        "{seen:?}"
    );
    assert!(
        seen[1..]
            .iter()
            .all(|(_, verdict)| *verdict == Verdict::Down)
    );
    wait_for_stats(&handle, |stats| stats.probes_skipped_busy >= 20).await;
    // Every slot of the healthy endpoint started: the busy black-holed ones were skipped, and no
    // slot ever waited for a permit past its successor.
    assert_eq!(handle.stats().probes_skipped_overrun, 0);
    cancel.cancel();
}

#[tokio::test]
async fn observation_hook_sees_every_observation() {
    let server = http_server(200, "ok").await;
    let targets = vec![target(server.address, HealthCheck::Tcp)];
    let seen = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&seen);
    let options = ProberOptions {
        observation_hook: Some(Arc::new(move |_, observation| {
            assert!(observation.ok);
            counted.fetch_add(1, Ordering::SeqCst);
        })),
        jitter_max: Some(Duration::ZERO),
        ..ProberOptions::default()
    };
    let (prober, _flips) =
        Prober::with_targets(targets, &policy(20, 20, 2, 2), NodeId(1), options).unwrap();
    let handle = prober.handle();
    let cancel = CancellationToken::new();
    tokio::spawn(prober.run(cancel.clone()));
    wait_for_stats(&handle, |stats| stats.probes_started >= 5).await;
    cancel.cancel();
    let stats = handle.stats();
    assert!(seen.load(Ordering::SeqCst) as u64 >= stats.probes_started - 1);
}

#[tokio::test]
async fn confirm_probes_an_endpoint_now_instead_of_at_its_next_slot() {
    let server = http_server(200, "ok").await;
    let targets = vec![target(server.address, HealthCheck::Http(http_check()))];
    // A 60 s interval: any flip after the first verdict must come from `confirm`.
    let (prober, mut flips) = Prober::with_targets(
        targets,
        &policy(60_000, 20, 2, 2),
        NodeId(1),
        ProberOptions::default(),
    )
    .unwrap();
    let handle = prober.handle();
    let endpoint = EndpointId::new("www/site-a/1");
    assert!(!handle.confirm(&endpoint), "not running yet");
    let cancel = CancellationToken::new();
    tokio::spawn(prober.run(cancel.clone()));
    assert_eq!(next_flip(&mut flips).await.verdict, Verdict::Up);
    // The first verdict's confirmation may still be finishing; wait until the endpoint is free.
    let confirmed = tokio::time::timeout(DEADLINE, async {
        server.status.store(503, Ordering::SeqCst);
        while !handle.confirm(&endpoint) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(confirmed.is_ok());
    let down = next_flip(&mut flips).await;
    assert_eq!(down.verdict, Verdict::Down);
    assert!(!handle.confirm(&EndpointId::new("www/site-a/9")));
    cancel.cancel();
}

fn cluster(endpoints: Vec<(SiteId, SocketAddr)>) -> ClusterConfig {
    let site = |name: &str, witness| Site {
        id: SiteId::new(name),
        witness,
    };
    let service = ServiceId::new("www");
    let localhost = |port| SocketAddr::new(LOCALHOST, port);
    ClusterConfig {
        name: "test".to_owned(),
        secret_file: PathBuf::from("/nonexistent"),
        sites: vec![
            site("site-a", false),
            site("site-b", false),
            site("witness", true),
        ],
        nodes: vec![Node {
            id: NodeId(1),
            site: SiteId::new("site-a"),
            raft_addr: localhost(1),
            api_addr: localhost(2),
            dns_addr: localhost(3),
            voter: true,
        }],
        raft: RaftTimings::default(),
        detection: policy(50, 20, 1, 1),
        services: vec![Service {
            id: service.clone(),
            check: HealthCheck::Tcp,
            endpoints: endpoints
                .into_iter()
                .enumerate()
                .map(|(index, (site, address))| Endpoint {
                    id: EndpointId::of(&service, &site, index + 1),
                    site,
                    address: address.ip(),
                    port: address.port(),
                    weight: 1,
                })
                .collect(),
        }],
        providers: vec![],
        zones: vec![],
        safety: SafetyRules::default(),
        principals: vec![],
    }
}

#[tokio::test]
async fn prober_from_a_cluster_configuration_probes_every_endpoint_of_every_site() {
    let healthy = http_server(200, "").await;
    let refused = refused_address().await;
    let config = cluster(vec![
        (SiteId::new("site-a"), healthy.address),
        (SiteId::new("site-b"), refused),
    ]);
    let (prober, mut flips) = Prober::new(&config, NodeId(1), ProberOptions::default()).unwrap();
    let handle = prober.handle();
    assert_eq!(handle.targets().count(), 2);
    let cancel = CancellationToken::new();
    tokio::spawn(prober.run(cancel.clone()));

    let mut verdicts = [next_flip(&mut flips).await, next_flip(&mut flips).await];
    verdicts.sort_by(|left, right| left.site.cmp(&right.site));
    assert_eq!(verdicts[0].site, SiteId::new("site-a"));
    assert_eq!(verdicts[0].endpoint, EndpointId::new("www/site-a/1"));
    assert_eq!(verdicts[0].verdict, Verdict::Up);
    assert_eq!(verdicts[1].site, SiteId::new("site-b"));
    assert_eq!(verdicts[1].endpoint, EndpointId::new("www/site-b/2"));
    assert_eq!(verdicts[1].verdict, Verdict::Down);
    assert_eq!(
        verdicts[1].last_error.as_deref(),
        Some("connection refused")
    );

    let snapshot = handle.snapshot();
    assert_eq!(snapshot.len(), 2);
    assert!(snapshot.iter().all(|status| status.check_kind == "tcp"));
    assert_eq!(snapshot[1].last_success, None);
    assert!(snapshot[0].last_observation.as_ref().unwrap().ok);
    assert!(snapshot[0].last_success.is_some());
    cancel.cancel();
}
