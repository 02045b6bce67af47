//! The prober: probes every endpoint at `probe_interval`, counts rise/fall into verdicts and
//! reports each verdict flip once.
//!
//! One scheduler task keeps a deadline queue with one entry per endpoint. Start times are spread
//! evenly over the interval, each probe gets a small random jitter, and at most
//! `concurrency_max` probes run at once. A slot whose endpoint is still busy (its last probe or a
//! fast confirmation is running) is skipped, and so is a slot that could not start within half an
//! interval of its time: an overrun never piles work up, it shows in [`ProberStats`].
//!
//! Fast confirmation: while an endpoint's verdict is unknown, or it is up but has just failed,
//! the task that probed it re-probes it every `confirm_interval` until the verdict settles, so a
//! loss is confirmed in about one interval plus `fall - 1` quick probes instead of
//! `probe_interval × fall`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use switchyard_core::config::{ClusterConfig, DetectionPolicy};
use switchyard_core::{EndpointId, NodeId, ServiceId, SiteId, Timestamp};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::check::{Checker, Observation, PreparedCheck};
use crate::error::ProbeError;
use crate::target::Target;
use crate::verdict::{Verdict, VerdictCounter};

/// Called with every observation, from the task that made it; keep it cheap (metrics).
pub type ObservationHook = Arc<dyn Fn(&Target, &Observation) + Send + Sync>;

/// Tuning of the prober that is local to a node (the timings come from `DetectionPolicy`).
#[derive(Clone)]
pub struct ProberOptions {
    /// Probes running at the same time, at most; each holds a socket. `None` sizes it to the
    /// number of endpoints, capped at [`ProberOptions::CONCURRENCY_CAP`].
    ///
    /// An endpoint never has two probes in flight, so the endpoint count is all the concurrency
    /// that can ever be used. Anything lower starves healthy endpoints exactly when it matters:
    /// when a site is black-holed, each of its probes holds a permit for the whole
    /// `probe_timeout`, and fast confirmation keeps re-probing them.
    pub concurrency_max: Option<usize>,
    /// Capacity of the verdict flip channel; a full channel makes the probing tasks wait.
    pub flip_capacity: usize,
    /// Largest random delay added to each scheduled probe; `None` means `probe_interval / 20`.
    pub jitter_max: Option<Duration>,
    /// How much of an HTTP body is searched for `body_contains`.
    pub body_bytes_max: usize,
    /// Sees every observation (for metrics); `None` by default.
    pub observation_hook: Option<ObservationHook>,
}

impl Default for ProberOptions {
    fn default() -> Self {
        Self {
            concurrency_max: None,
            flip_capacity: 1024,
            jitter_max: None,
            body_bytes_max: Checker::BODY_BYTES_MAX,
            observation_hook: None,
        }
    }
}

impl ProberOptions {
    /// The default concurrency bound for very large clusters: far below the usual file
    /// descriptor limits that a server raises its soft limit to, and enough for 8,192 endpoints
    /// that all time out at once.
    pub const CONCURRENCY_CAP: usize = 8192;
}

impl fmt::Debug for ProberOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProberOptions")
            .field("concurrency_max", &self.concurrency_max)
            .field("flip_capacity", &self.flip_capacity)
            .field("jitter_max", &self.jitter_max)
            .field("body_bytes_max", &self.body_bytes_max)
            .field("observation_hook", &self.observation_hook.is_some())
            .finish()
    }
}

/// A change of this node's verdict on one endpoint: what the node proposes to Raft.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerdictFlip {
    pub observer: NodeId,
    pub endpoint: EndpointId,
    pub service: ServiceId,
    pub site: SiteId,
    pub verdict: Verdict,
    /// When the streak of observations that led to this verdict began (the first failure of a
    /// `Down`, the first success of an `Up`).
    pub since: Timestamp,
    /// When the observation that completed the streak was made.
    pub observed_at: Timestamp,
    /// The failure of the deciding observation; `None` for `Up`.
    pub last_error: Option<String>,
    /// Latency of the deciding observation.
    pub latency: Duration,
}

/// What this node currently knows about one endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointStatus {
    pub endpoint: EndpointId,
    pub service: ServiceId,
    pub site: SiteId,
    /// `http`, `tcp` or `dns`.
    pub check_kind: &'static str,
    /// `None` until the first `rise` successes or `fall` failures.
    pub verdict: Option<Verdict>,
    pub last_observation: Option<Observation>,
    /// Start time of the last successful probe.
    pub last_success: Option<SystemTime>,
}

/// Counters since the prober started. Every regular slot is counted once as started,
/// skipped-busy or skipped-overrun; confirmation probes are counted apart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProberStats {
    pub endpoints: u64,
    /// Regular probes started.
    pub probes_started: u64,
    /// Regular probes started within `probe_interval / 10` of their scheduled time.
    pub probes_on_schedule: u64,
    /// Slots skipped because the endpoint's previous probe or confirmation was still running.
    pub probes_skipped_busy: u64,
    /// Slots skipped because they could not start within half an interval of their time (the
    /// scheduler fell behind, or no concurrency permit freed up).
    pub probes_skipped_overrun: u64,
    /// Fast-confirmation probes.
    pub probes_confirm: u64,
    /// Observations that failed (regular and confirmation).
    pub probes_failed: u64,
    pub flips: u64,
}

#[derive(Debug, Default)]
struct Counters {
    probes_started: AtomicU64,
    probes_on_schedule: AtomicU64,
    probes_skipped_busy: AtomicU64,
    probes_skipped_overrun: AtomicU64,
    probes_confirm: AtomicU64,
    probes_failed: AtomicU64,
    flips: AtomicU64,
}

impl Counters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// One endpoint and everything the prober keeps about it.
#[derive(Debug)]
struct Slot {
    target: Target,
    check: PreparedCheck,
    /// Set while a probe task owns the endpoint, so that at most one probe of it runs.
    busy: AtomicBool,
    state: Mutex<SlotState>,
}

#[derive(Debug)]
struct SlotState {
    counter: VerdictCounter,
    /// Start of the current streak of equal results.
    streak_since: Option<SystemTime>,
    last_observation: Option<Observation>,
    last_success: Option<SystemTime>,
}

impl Slot {
    fn state(&self) -> MutexGuard<'_, SlotState> {
        // The state is plain data updated in one step; a panic elsewhere cannot leave it torn.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Shared {
    observer: NodeId,
    probe_interval: Duration,
    probe_timeout: Duration,
    confirm_interval: Duration,
    jitter_max: Duration,
    /// Bounds a fast confirmation whose results keep alternating.
    confirm_rounds_max: u32,
    slots: Vec<Slot>,
    semaphore: Arc<Semaphore>,
    flips: mpsc::Sender<VerdictFlip>,
    counters: Counters,
    observation_hook: Option<ObservationHook>,
    /// Set once `run` starts, so that a handle can start probes of its own (`confirm`).
    running: OnceLock<Running>,
}

#[derive(Debug)]
struct Running {
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("observer", &self.observer)
            .field("endpoints", &self.slots.len())
            .finish_non_exhaustive()
    }
}

/// Probes every endpoint of the cluster from this node. Built by [`Prober::new`], run by
/// [`Prober::run`], observed through a [`ProberHandle`].
#[derive(Debug)]
pub struct Prober {
    shared: Arc<Shared>,
}

/// A cheap, cloneable view of a running prober.
#[derive(Clone, Debug)]
pub struct ProberHandle {
    shared: Arc<Shared>,
}

impl Prober {
    /// A prober for every endpoint of every site of `config`, with `config.detection` timings.
    /// Returns the receiving end of the verdict flip channel with it.
    pub fn new(
        config: &ClusterConfig,
        observer: NodeId,
        options: ProberOptions,
    ) -> Result<(Self, mpsc::Receiver<VerdictFlip>), ProbeError> {
        Self::with_targets(Target::all_of(config), &config.detection, observer, options)
    }

    /// A prober for an explicit list of targets (tests, benchmarks, a subset of the cluster).
    pub fn with_targets(
        targets: Vec<Target>,
        policy: &DetectionPolicy,
        observer: NodeId,
        options: ProberOptions,
    ) -> Result<(Self, mpsc::Receiver<VerdictFlip>), ProbeError> {
        let mut checker = Checker::new(options.body_bytes_max);
        let mut slots = Vec::with_capacity(targets.len());
        for target in targets {
            let check = checker.prepare(&target)?;
            slots.push(Slot {
                target,
                check,
                busy: AtomicBool::new(false),
                state: Mutex::new(SlotState {
                    counter: VerdictCounter::new(policy.rise, policy.fall),
                    streak_since: None,
                    last_observation: None,
                    last_success: None,
                }),
            });
        }
        let concurrency_max = options
            .concurrency_max
            .unwrap_or(slots.len().min(ProberOptions::CONCURRENCY_CAP))
            .max(1);
        let (sender, receiver) = mpsc::channel(options.flip_capacity.max(1));
        let shared = Shared {
            observer,
            probe_interval: policy.probe_interval.max(Duration::from_millis(1)),
            probe_timeout: policy.probe_timeout,
            confirm_interval: policy.confirm_interval,
            jitter_max: options.jitter_max.unwrap_or(policy.probe_interval / 20),
            confirm_rounds_max: policy.rise.max(1) + policy.fall.max(1),
            slots,
            semaphore: Arc::new(Semaphore::new(concurrency_max)),
            flips: sender,
            counters: Counters::default(),
            observation_hook: options.observation_hook,
            running: OnceLock::new(),
        };
        Ok((
            Self {
                shared: Arc::new(shared),
            },
            receiver,
        ))
    }

    pub fn handle(&self) -> ProberHandle {
        ProberHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Probes until `cancel` fires, then waits for the probes in flight to stop.
    pub async fn run(self, cancel: CancellationToken) {
        let shared = self.shared;
        let count = shared.slots.len();
        if count == 0 {
            cancel.cancelled().await;
            return;
        }
        let tracker = TaskTracker::new();
        // `run` takes the prober by value, so this is the only place that sets it.
        let _ = shared.running.set(Running {
            cancel: cancel.clone(),
            tracker: tracker.clone(),
        });
        let interval = shared.probe_interval;
        let on_schedule_lag_max = interval / 10;
        let start = Instant::now();
        // Entries are (due, slot base time, slot index); due = base + jitter. The next base is
        // always the previous one plus the interval, so jitter never accumulates into drift.
        let mut queue = BinaryHeap::with_capacity(count);
        for index in 0..count {
            let offset = u64::try_from(interval.as_nanos() * index as u128 / count as u128)
                .unwrap_or(u64::MAX);
            let base = start + Duration::from_nanos(offset);
            queue.push(Reverse((base + shared.jitter(), base, index)));
        }
        // Each turn pops one entry and pushes its successor, so the queue never empties.
        while let Some(Reverse((due, base, index))) = queue.pop() {
            // A timer, even one already expired, completes only on a later turn of the timer
            // driver; when behind schedule, going through one per slot would cap the rate at the
            // driver's turns per second. So a due entry starts straight away.
            if cancel.is_cancelled() {
                break;
            }
            // Many entries can be due at once (after a stall, or with a zero interval spread);
            // yield now and then so the probes just spawned get to run, even on one thread.
            tokio::task::consume_budget().await;
            if due > Instant::now() {
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep_until(due) => {}
                }
            }
            let next_base = base + interval;
            queue.push(Reverse((next_base + shared.jitter(), next_base, index)));
            let slot = &shared.slots[index];
            if slot.busy.swap(true, Ordering::AcqRel) {
                Counters::bump(&shared.counters.probes_skipped_busy);
                continue;
            }
            // A slot that cannot start within half an interval is dropped, not started late:
            // after a stall (this process starved of CPU) the late slots would otherwise all
            // start at once, and their burst would make slow probes, and false failures, of the
            // very stall.
            let start_deadline = due + interval / 2;
            let permit = if Instant::now() > start_deadline {
                None
            } else {
                match Arc::clone(&shared.semaphore).try_acquire_owned() {
                    Ok(permit) => Some(permit),
                    // Every permit is taken: wait for one, but not past the start deadline.
                    Err(_) => tokio::select! {
                        biased;
                        () = cancel.cancelled() => {
                            slot.busy.store(false, Ordering::Release);
                            break;
                        }
                        permit = Arc::clone(&shared.semaphore).acquire_owned() => permit.ok(),
                        () = tokio::time::sleep_until(start_deadline) => None,
                    },
                }
            };
            let Some(permit) = permit else {
                Counters::bump(&shared.counters.probes_skipped_overrun);
                slot.busy.store(false, Ordering::Release);
                continue;
            };
            Counters::bump(&shared.counters.probes_started);
            if Instant::now().saturating_duration_since(due) <= on_schedule_lag_max {
                Counters::bump(&shared.counters.probes_on_schedule);
            }
            tracker.spawn(probe_endpoint(
                Arc::clone(&shared),
                index,
                permit,
                cancel.clone(),
            ));
        }
        tracker.close();
        tracker.wait().await;
    }
}

impl Shared {
    fn jitter(&self) -> Duration {
        let nanos = u64::try_from(self.jitter_max.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            Duration::ZERO
        } else {
            Duration::from_nanos(rand::rng().random_range(0..nanos))
        }
    }

    /// Counts one observation into the endpoint's verdict. Returns the flip it caused, if any,
    /// and whether the endpoint should be re-probed soon (fast confirmation).
    fn record(&self, slot: &Slot, observation: Observation) -> (Option<VerdictFlip>, bool) {
        if let Some(hook) = &self.observation_hook {
            hook(&slot.target, &observation);
        }
        if !observation.ok {
            Counters::bump(&self.counters.probes_failed);
        }
        let mut state = slot.state();
        let previous_ok = state.last_observation.as_ref().map(|previous| previous.ok);
        if previous_ok != Some(observation.ok) {
            state.streak_since = Some(observation.at);
        }
        if observation.ok {
            state.last_success = Some(observation.at);
        }
        let flip = state.counter.record(observation.ok).map(|verdict| {
            Counters::bump(&self.counters.flips);
            VerdictFlip {
                observer: self.observer,
                endpoint: slot.target.endpoint.clone(),
                service: slot.target.service.clone(),
                site: slot.target.site.clone(),
                verdict,
                since: timestamp(state.streak_since.unwrap_or(observation.at)),
                observed_at: timestamp(observation.at),
                last_error: observation.error.as_ref().map(ToString::to_string),
                latency: observation.latency,
            }
        });
        let unsettled = state.counter.is_unsettled();
        state.last_observation = Some(observation);
        (flip, unsettled)
    }
}

/// Clears an endpoint's busy flag however its probe task ends, so a panicking check cannot stop
/// the endpoint from ever being probed again.
struct BusyGuard {
    shared: Arc<Shared>,
    index: usize,
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.shared.slots[self.index]
            .busy
            .store(false, Ordering::Release);
    }
}

/// One regular probe of one endpoint, followed by fast confirmation probes while its verdict is
/// unsettled.
async fn probe_endpoint(
    shared: Arc<Shared>,
    index: usize,
    permit: OwnedSemaphorePermit,
    cancel: CancellationToken,
) {
    let _busy = BusyGuard {
        shared: Arc::clone(&shared),
        index,
    };
    let slot = &shared.slots[index];
    let mut permit = Some(permit);
    let mut round = 0;
    loop {
        let observation = tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            observation = slot.check.run(shared.probe_timeout) => observation,
        };
        // The permit bounds probes in flight, not flips waiting for a slow consumer.
        drop(permit.take());
        let (flip, unsettled) = shared.record(slot, observation);
        if let Some(flip) = flip {
            tracing::info!(
                endpoint = %flip.endpoint,
                verdict = flip.verdict.as_str(),
                last_error = flip.last_error.as_deref().unwrap_or(""),
                "endpoint verdict changed"
            );
            tokio::select! {
                biased;
                () = cancel.cancelled() => return,
                sent = shared.flips.send(flip) => {
                    if sent.is_err() {
                        tracing::debug!("verdict flip receiver dropped");
                    }
                }
            }
        }
        if !unsettled || round >= shared.confirm_rounds_max {
            return;
        }
        round += 1;
        tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(shared.confirm_interval) => {}
        }
        permit = tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            acquired = Arc::clone(&shared.semaphore).acquire_owned() => match acquired {
                Ok(acquired) => Some(acquired),
                Err(_) => return,
            },
        };
        Counters::bump(&shared.counters.probes_confirm);
    }
}

impl ProberHandle {
    /// What this node knows about every endpoint, in target order.
    pub fn snapshot(&self) -> Vec<EndpointStatus> {
        self.shared
            .slots
            .iter()
            .map(|slot| {
                let state = slot.state();
                EndpointStatus {
                    endpoint: slot.target.endpoint.clone(),
                    service: slot.target.service.clone(),
                    site: slot.target.site.clone(),
                    check_kind: slot.check.kind(),
                    verdict: state.counter.verdict(),
                    last_observation: state.last_observation.clone(),
                    last_success: state.last_success,
                }
            })
            .collect()
    }

    /// Probes `endpoint` now, and keeps re-probing it every `confirm_interval` while its verdict
    /// is unsettled: what a node does when a peer reports a first failure, so that every observer
    /// confirms a loss quickly, not only the first to see it.
    ///
    /// Returns whether a probe started. It does not when the prober is not running, the endpoint
    /// is unknown or already being probed, or every concurrency permit is taken (the regular
    /// schedule then covers the endpoint). Must be called from within the Tokio runtime.
    pub fn confirm(&self, endpoint: &EndpointId) -> bool {
        let shared = &self.shared;
        let Some(running) = shared.running.get() else {
            return false;
        };
        if running.cancel.is_cancelled() {
            return false;
        }
        let Some(index) = shared
            .slots
            .iter()
            .position(|slot| &slot.target.endpoint == endpoint)
        else {
            return false;
        };
        let slot = &shared.slots[index];
        if slot.busy.swap(true, Ordering::AcqRel) {
            return false;
        }
        let Ok(permit) = Arc::clone(&shared.semaphore).try_acquire_owned() else {
            slot.busy.store(false, Ordering::Release);
            return false;
        };
        Counters::bump(&shared.counters.probes_confirm);
        running.tracker.spawn(probe_endpoint(
            Arc::clone(shared),
            index,
            permit,
            running.cancel.clone(),
        ));
        true
    }

    pub fn stats(&self) -> ProberStats {
        let counters = &self.shared.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ProberStats {
            endpoints: self.shared.slots.len() as u64,
            probes_started: load(&counters.probes_started),
            probes_on_schedule: load(&counters.probes_on_schedule),
            probes_skipped_busy: load(&counters.probes_skipped_busy),
            probes_skipped_overrun: load(&counters.probes_skipped_overrun),
            probes_confirm: load(&counters.probes_confirm),
            probes_failed: load(&counters.probes_failed),
            flips: load(&counters.flips),
        }
    }

    /// The targets this prober probes, in order.
    pub fn targets(&self) -> impl Iterator<Item = &Target> {
        self.shared.slots.iter().map(|slot| &slot.target)
    }
}

fn timestamp(time: SystemTime) -> Timestamp {
    let millis = time
        .duration_since(UNIX_EPOCH)
        .map(|since_epoch| since_epoch.as_millis())
        .unwrap_or(0);
    Timestamp::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
}
