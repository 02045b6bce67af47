//! The simulated world: the clock, every node's prober, what was committed, and the detector
//! under test, advanced one step at a time.

use std::collections::BTreeMap;

use rand::Rng;
use rand::rngs::StdRng;
use switchyard_core::detection::{
    ControllerContact, DetectionEvent, DetectionInput, Detector, SiteState, Verdict,
    VerdictChanged, VerdictCounter,
};
use switchyard_core::{EndpointId, NodeId, SiteId, Timestamp};

use crate::fault::{FaultPlan, duration_ms};
use crate::invariants::Invariant;
use crate::params::SimParams;
use crate::run::Violation;

/// One node's prober for one endpoint.
#[derive(Debug)]
struct Probe {
    node: NodeId,
    node_site: SiteId,
    endpoint: EndpointId,
    endpoint_site: SiteId,
    counter: VerdictCounter,
    /// When the current local verdict flipped (the `since` it will commit).
    since: u64,
    /// The verdict of this pair committed through the detector.
    committed: Verdict,
    next_probe: u64,
    /// The previous probe failed at random: the next one will not, so that a random failure is
    /// always a single one.
    random_failure_last: bool,
}

#[derive(Debug)]
pub struct World {
    pub params: SimParams,
    pub faults: FaultPlan,
    pub detector: Detector,
    pub now: u64,
    /// node → endpoint → verdict committed through the detector (missing means up).
    pub committed: BTreeMap<NodeId, BTreeMap<EndpointId, Verdict>>,
    /// What the detector was last told about each node's reachability.
    pub reachable: BTreeMap<NodeId, bool>,
    /// Every site's nodes and endpoints (all services), for the invariants.
    pub site_nodes: BTreeMap<SiteId, Vec<NodeId>>,
    pub site_endpoints: BTreeMap<SiteId, Vec<EndpointId>>,
    probes: Vec<Probe>,
    rng: StdRng,
    /// The trace of the run, kept when asked for.
    pub trace: Option<Vec<String>>,
    /// How many site transitions were applied and how many proposals were refused.
    pub transitions: u64,
    pub rejections: u64,
    /// How many `SiteLost` events were applied.
    pub losses: u64,
    /// `ServiceUnhealthy` events: per-service failovers while the site itself was fine.
    pub service_failovers: u64,
    /// For each site declared down during a real loss: the time from the loss to the declaration,
    /// and the part of it beyond `hold` (the time to confirm the loss before holding it).
    pub detection_latencies_ms: Vec<(u64, u64)>,
}

impl World {
    pub fn new(params: SimParams, faults: FaultPlan, mut rng: StdRng, trace: bool) -> Self {
        let config = params.config();
        let detector = Detector::new(&config);
        let interval = duration_ms(params.policy.probe_interval);
        let mut site_endpoints: BTreeMap<SiteId, Vec<EndpointId>> = BTreeMap::new();
        for service in &config.services {
            for endpoint in &service.endpoints {
                site_endpoints
                    .entry(endpoint.site.clone())
                    .or_default()
                    .push(endpoint.id.clone());
            }
        }
        let mut probes = Vec::new();
        for node in &config.nodes {
            // Each node starts probing at its own phase, in whole steps.
            let phase = params.step_ms * rng.random_range(0..interval / params.step_ms);
            for service in &config.services {
                for endpoint in &service.endpoints {
                    probes.push(Probe {
                        node: node.id,
                        node_site: node.site.clone(),
                        endpoint: endpoint.id.clone(),
                        endpoint_site: endpoint.site.clone(),
                        counter: VerdictCounter::from_policy(&params.policy),
                        since: 0,
                        committed: Verdict::Up,
                        next_probe: phase,
                        random_failure_last: false,
                    });
                }
            }
        }
        let site_nodes = params
            .sites
            .iter()
            .map(|site| (site.id.clone(), site.nodes.clone()))
            .collect();
        let reachable = config.nodes.iter().map(|node| (node.id, true)).collect();
        let mut world = Self {
            params,
            faults,
            detector,
            now: 0,
            committed: BTreeMap::new(),
            reachable,
            site_nodes,
            site_endpoints,
            probes,
            rng,
            trace: trace.then(Vec::new),
            transitions: 0,
            rejections: 0,
            losses: 0,
            service_failovers: 0,
            detection_latencies_ms: Vec::new(),
        };
        if world.trace.is_some() {
            let mut lines = vec![world.params.to_string()];
            lines.push(format!(
                "random probe failure probability {}",
                world.faults.random_failure_probability
            ));
            lines.extend(
                world
                    .faults
                    .faults
                    .iter()
                    .map(|fault| format!("fault: {fault}")),
            );
            world.log_lines(lines);
        }
        world
    }

    fn log(&mut self, line: impl FnOnce() -> String) {
        let now = self.now;
        if let Some(trace) = &mut self.trace {
            trace.push(format!("{now:>7}ms {}", line()));
        }
    }

    fn log_lines(&mut self, lines: Vec<String>) {
        if let Some(trace) = &mut self.trace {
            trace.extend(lines);
        }
    }

    /// Whether at least `endpoints_down_fraction` of `site`'s endpoints (and at least one) were
    /// truly down at some instant of `[from, to]`, not necessarily the same instant: a flapping
    /// endpoint that never stays up for `rise` probes is rightly judged down throughout.
    pub fn site_truly_down_within(&self, site: &SiteId, from: u64, to: u64) -> bool {
        let Some(endpoints) = self.site_endpoints.get(site) else {
            return false;
        };
        let step = usize::try_from(self.params.step_ms).unwrap_or(100);
        let down = endpoints
            .iter()
            .filter(|endpoint| {
                (from..=to)
                    .step_by(step)
                    .any(|instant| !self.faults.endpoint_up(endpoint, site, instant))
            })
            .count();
        down > 0
            && down as f64 >= self.params.policy.endpoints_down_fraction * endpoints.len() as f64
    }

    /// Advances the clock by one step and plays it: tick, contacts, probes, verdicts, then the
    /// leader's proposals. Every applied command goes past every invariant.
    pub fn step(&mut self, invariants: &mut [Box<dyn Invariant>]) -> Result<(), Violation> {
        self.now += self.params.step_ms;
        let now = self.now;
        let mut starts: Vec<String> = Vec::new();
        for fault in &self.faults.faults {
            if fault.start == now {
                starts.push(format!("fault starts: {fault}"));
            }
            if fault.end == now {
                starts.push(format!("fault ends: {fault}"));
            }
        }
        for line in starts {
            self.log(|| line);
        }
        if self.faults.leaderless(now) {
            // Without a leader nothing commits: nodes only probe, and retry afterwards.
            self.probe(now);
            return self.check_step(invariants);
        }
        self.apply(
            &DetectionInput::Tick {
                now: Timestamp(now),
            },
            invariants,
        )?;

        let nodes: Vec<(NodeId, SiteId)> = self
            .site_nodes
            .iter()
            .flat_map(|(site, nodes)| nodes.iter().map(move |node| (*node, site.clone())))
            .collect();
        for (node, site) in &nodes {
            let reachable = self.faults.nodes_reachable(site, now);
            if self.reachable.get(node) != Some(&reachable) {
                self.reachable.insert(*node, reachable);
                let contact = DetectionInput::ControllerContact(ControllerContact {
                    node: *node,
                    reachable,
                    at: Timestamp(now),
                });
                self.apply(&contact, invariants)?;
            }
        }

        self.probe(now);

        let reachable_sites: Vec<&SiteId> = self
            .site_nodes
            .keys()
            .filter(|site| self.faults.nodes_reachable(site, now))
            .collect();
        let mut changes = Vec::new();
        for probe in &mut self.probes {
            let verdict = probe.counter.verdict();
            if verdict == probe.committed || !reachable_sites.contains(&&probe.node_site) {
                continue;
            }
            probe.committed = verdict;
            changes.push(DetectionInput::VerdictChanged(VerdictChanged {
                observer: probe.node,
                endpoint: probe.endpoint.clone(),
                verdict,
                since: Timestamp(probe.since),
                last_error: (verdict == Verdict::Down).then(|| "simulated".to_owned()),
                latency_ms: None,
            }));
        }
        for change in changes {
            if let DetectionInput::VerdictChanged(verdict) = &change {
                self.committed
                    .entry(verdict.observer)
                    .or_default()
                    .insert(verdict.endpoint.clone(), verdict.verdict);
            }
            self.apply(&change, invariants)?;
        }

        // The leader, on its timer: propose what is due and apply it, until nothing more is
        // (bounded).
        let rounds = if now.is_multiple_of(self.params.leader_timer_ms) {
            8
        } else {
            0
        };
        for _round in 0..rounds {
            let proposals = self.detector.propose(Timestamp(now));
            if proposals.is_empty() {
                break;
            }
            for proposal in proposals {
                self.apply(&DetectionInput::SiteTransition(proposal), invariants)?;
            }
        }
        if rounds > 0 {
            for proposal in self.detector.propose_services(Timestamp(now)) {
                self.apply(&DetectionInput::ServiceTransition(proposal), invariants)?;
            }
        }

        self.check_step(invariants)
    }

    fn check_step(&self, invariants: &mut [Box<dyn Invariant>]) -> Result<(), Violation> {
        for invariant in invariants.iter_mut() {
            invariant.after_step(self).map_err(|message| Violation {
                invariant: invariant.name(),
                at: self.now,
                message,
            })?;
        }
        Ok(())
    }

    fn probe(&mut self, now: u64) {
        let interval = duration_ms(self.params.policy.probe_interval);
        let confirm = duration_ms(self.params.policy.confirm_interval);
        let probability = if now < self.faults.safety_end {
            self.faults.random_failure_probability
        } else {
            0.0
        };
        let mut flips = Vec::new();
        for probe in &mut self.probes {
            if now < probe.next_probe || !self.faults.nodes_running(&probe.node_site, now) {
                continue;
            }
            let mut success = self
                .faults
                .endpoint_up(&probe.endpoint, &probe.endpoint_site, now)
                && !self
                    .faults
                    .probe_blocked(&probe.node_site, &probe.endpoint_site, now);
            let random_failure = !probe.random_failure_last
                && probability > 0.0
                && self.rng.random_bool(probability);
            probe.random_failure_last = random_failure;
            success &= !random_failure;
            if let Some(flip) = probe.counter.observe(success, Timestamp(now)) {
                probe.since = flip.since.as_millis();
                flips.push(format!(
                    "node {} sees {} {}",
                    probe.node, probe.endpoint, flip.verdict
                ));
            }
            probe.next_probe = now
                + if probe.counter.confirming() {
                    confirm
                } else {
                    interval
                };
        }
        for line in flips {
            self.log(|| line);
        }
    }

    fn apply(
        &mut self,
        input: &DetectionInput,
        invariants: &mut [Box<dyn Invariant>],
    ) -> Result<(), Violation> {
        let result = self.detector.apply(input);
        let events: Vec<DetectionEvent> = match result {
            Ok(events) => {
                if matches!(input, DetectionInput::SiteTransition(_)) {
                    self.transitions += 1;
                }
                events
            }
            Err(rejection) => {
                self.rejections += 1;
                self.log(|| format!("rejected: {rejection}"));
                Vec::new()
            }
        };
        if let DetectionInput::ControllerContact(contact) = input {
            self.log(|| format!("node {} reachable: {}", contact.node, contact.reachable));
        }
        for event in &events {
            if matches!(event, DetectionEvent::SiteLost(_)) {
                self.losses += 1;
            }
            if matches!(event, DetectionEvent::ServiceUnhealthy(_)) {
                self.service_failovers += 1;
            }
            if let Some(transition) = event.transition()
                && transition.to.is_down()
                && matches!(transition.from, SiteState::Suspect)
                && let Some(fault) = self.faults.site_lost(&transition.site, self.now)
            {
                let latency = self.now - fault.start;
                let beyond_hold = latency.saturating_sub(duration_ms(self.params.policy.hold));
                self.detection_latencies_ms.push((latency, beyond_hold));
            }
            self.log(|| event.to_string());
        }
        for invariant in invariants.iter_mut() {
            invariant
                .after_apply(self, input, &events)
                .map_err(|message| Violation {
                    invariant: invariant.name(),
                    at: self.now,
                    message,
                })?;
        }
        Ok(())
    }
}
