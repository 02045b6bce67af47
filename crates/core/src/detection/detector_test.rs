//! Scenario tests for the detector: feed verdicts, contacts and leader ticks, and assert the whole
//! list of facts produced (and of proposals refused).

use std::time::Duration;

use expect_test::{Expect, expect};

use crate::config::{
    ClusterConfig, DetectionPolicy, Endpoint, HealthCheck, Node, RaftTimings, SafetyRules, Service,
    Site,
};
use crate::id::{EndpointId, NodeId, ServiceId, SiteId};
use crate::time::Timestamp;

use super::*;

/// A site in a test cluster: its name, whether it is a witness, its node ids and endpoint count.
pub(super) struct SiteSpec {
    pub(super) name: String,
    pub(super) witness: bool,
    pub(super) nodes: Vec<u64>,
    pub(super) endpoints: usize,
}

pub(super) fn site(name: &str, nodes: &[u64], endpoints: usize) -> SiteSpec {
    SiteSpec {
        name: name.to_owned(),
        witness: false,
        nodes: nodes.to_vec(),
        endpoints,
    }
}

pub(super) fn witness(name: &str, nodes: &[u64]) -> SiteSpec {
    SiteSpec {
        name: name.to_owned(),
        witness: true,
        nodes: nodes.to_vec(),
        endpoints: 0,
    }
}

pub(super) fn policy() -> DetectionPolicy {
    DetectionPolicy {
        hold: Duration::from_secs(2),
        recover_hold: Duration::from_secs(5),
        failover_cooldown: Duration::from_secs(600),
        ..DetectionPolicy::default()
    }
}

pub(super) fn cluster(sites: &[SiteSpec], detection: DetectionPolicy) -> ClusterConfig {
    let address = "127.0.0.1:1".parse().expect("a valid socket address");
    let service = ServiceId::new("www");
    let mut endpoints = Vec::new();
    for spec in sites {
        for ordinal in 1..=spec.endpoints {
            endpoints.push(Endpoint {
                id: EndpointId::of(&service, &SiteId::new(spec.name.as_str()), ordinal),
                site: SiteId::new(spec.name.as_str()),
                address: "127.0.0.1".parse().expect("a valid address"),
                port: 80,
                weight: 1,
            });
        }
    }
    ClusterConfig {
        name: "test".to_owned(),
        secret_file: "secret".into(),
        sites: sites
            .iter()
            .map(|spec| Site {
                id: SiteId::new(spec.name.as_str()),
                witness: spec.witness,
            })
            .collect(),
        nodes: sites
            .iter()
            .flat_map(|spec| {
                spec.nodes.iter().map(move |id| Node {
                    id: NodeId(*id),
                    site: SiteId::new(spec.name.as_str()),
                    raft_addr: address,
                    api_addr: address,
                    dns_addr: address,
                    voter: true,
                })
            })
            .collect(),
        raft: RaftTimings::default(),
        detection,
        services: vec![Service {
            id: service,
            check: HealthCheck::Tcp,
            endpoints,
        }],
        providers: Vec::new(),
        zones: Vec::new(),
        safety: SafetyRules::default(),
        principals: Vec::new(),
    }
}

/// Plays the leader: ticks every 100 ms and, on every tick, proposes and applies what is due.
pub(super) struct Scenario {
    pub(super) detector: Detector,
    pub(super) now: u64,
    pub(super) log: Vec<String>,
}

const TICK_MS: u64 = 100;

impl Scenario {
    pub(super) fn new(sites: &[SiteSpec], detection: DetectionPolicy) -> Self {
        Self::with_config(&cluster(sites, detection))
    }

    pub(super) fn with_config(config: &ClusterConfig) -> Self {
        Self {
            detector: Detector::new(config),
            now: 0,
            log: Vec::new(),
        }
    }

    pub(super) fn apply(&mut self, input: &DetectionInput) {
        match self.detector.apply(input) {
            Ok(events) => self.log.extend(events.iter().map(ToString::to_string)),
            Err(rejection) => self.log.push(format!("rejected: {rejection}")),
        }
    }

    /// Ticks up to `to`, settling what is due at every tick.
    pub(super) fn run_until(&mut self, to: u64) {
        while self.now + TICK_MS <= to {
            self.now += TICK_MS;
            self.apply(&DetectionInput::Tick {
                now: Timestamp(self.now),
            });
            for _round in 0..8 {
                let proposals = self.detector.propose(Timestamp(self.now));
                if proposals.is_empty() {
                    break;
                }
                for proposal in proposals {
                    self.apply(&DetectionInput::SiteTransition(proposal));
                }
            }
            for proposal in self.detector.propose_services(Timestamp(self.now)) {
                self.apply(&DetectionInput::ServiceTransition(proposal));
            }
        }
    }

    /// At `at`, `node`'s verdict on `endpoint` flips to `verdict`.
    pub(super) fn verdict(&mut self, at: u64, node: u64, endpoint: &str, verdict: Verdict) {
        self.run_until(at);
        self.apply(&DetectionInput::VerdictChanged(VerdictChanged {
            observer: NodeId(node),
            endpoint: EndpointId::new(endpoint),
            verdict,
            since: Timestamp(at),
            last_error: (verdict == Verdict::Down).then(|| "connection refused".to_owned()),
            latency_ms: None,
        }));
    }

    pub(super) fn down(&mut self, at: u64, nodes: &[u64], endpoint: &str) {
        for node in nodes {
            self.verdict(at, *node, endpoint, Verdict::Down);
        }
    }

    pub(super) fn up(&mut self, at: u64, nodes: &[u64], endpoint: &str) {
        for node in nodes {
            self.verdict(at, *node, endpoint, Verdict::Up);
        }
    }

    pub(super) fn contact(&mut self, at: u64, node: u64, reachable: bool) {
        self.run_until(at);
        self.apply(&DetectionInput::ControllerContact(ControllerContact {
            node: NodeId(node),
            reachable,
            at: Timestamp(at),
        }));
    }

    pub(super) fn state(&self, site: &str) -> SiteState {
        self.detector
            .site(&SiteId::new(site))
            .map(|status| status.state)
            .expect("the site exists")
    }

    fn check(&self, expect: Expect) {
        let mut text = self.log.join("\n");
        text.push('\n');
        expect.assert_eq(&text);
    }
}

fn three_sites() -> [SiteSpec; 3] {
    [site("a", &[1], 1), site("b", &[2], 1), site("c", &[3], 1)]
}

#[test]
fn a_flapping_endpoint_among_several_never_makes_its_site_suspect() {
    let mut scenario = Scenario::new(
        &[site("a", &[1], 1), site("b", &[2], 2), site("c", &[3], 1)],
        policy(),
    );
    for cycle in 0..10 {
        let start = 1_000 + cycle * 3_000;
        scenario.down(start, &[1, 3], "www/b/1");
        scenario.up(start + 1_500, &[1, 3], "www/b/1");
    }
    scenario.run_until(40_000);
    assert_eq!(scenario.log, Vec::<String>::new());
    assert_eq!(scenario.state("b"), SiteState::Healthy);
}

#[test]
fn a_site_down_for_less_than_hold_is_suspected_then_cleared_never_lost() {
    let mut scenario = Scenario::new(&three_sites(), policy());
    scenario.down(1_000, &[1, 3], "www/b/1");
    scenario.up(2_500, &[1, 3], "www/b/1");
    scenario.down(4_000, &[1, 3], "www/b/1");
    scenario.up(5_900, &[1, 3], "www/b/1");
    scenario.run_until(10_000);
    scenario.check(expect![[r#"
        SiteSuspected b healthy -> suspect at 1100ms: consensus=down since=1000ms observers=[-a(n1) 1/1 down {www/b/1}, -c(n3) 1/1 down {www/b/1}] first_failure=1000ms controller_reachable=true
        SuspicionCleared b suspect -> healthy at 2600ms: consensus=up since=2500ms observers=[+a(n1) 0/1 down, +c(n3) 0/1 down] controller_reachable=true
        SiteSuspected b healthy -> suspect at 4100ms: consensus=down since=4000ms observers=[-a(n1) 1/1 down {www/b/1}, -c(n3) 1/1 down {www/b/1}] first_failure=4000ms controller_reachable=true
        SuspicionCleared b suspect -> healthy at 6000ms: consensus=up since=5900ms observers=[+a(n1) 0/1 down, +c(n3) 0/1 down] controller_reachable=true
    "#]]);
    assert_eq!(scenario.state("b"), SiteState::Healthy);
}

#[test]
fn one_isolated_observer_site_seeing_everything_down_causes_no_loss() {
    let mut scenario = Scenario::new(&three_sites(), policy());
    scenario.down(1_000, &[1], "www/b/1");
    scenario.down(1_000, &[1], "www/c/1");
    scenario.run_until(20_000);
    assert_eq!(scenario.log, Vec::<String>::new());
    for name in ["a", "b", "c"] {
        assert_eq!(scenario.state(name), SiteState::Healthy);
    }
    let consensus = |name: &str| {
        scenario
            .detector
            .site(&SiteId::new(name))
            .map(|s| s.consensus)
    };
    assert_eq!(consensus("b"), Some(Consensus::Undecided));
    assert_eq!(consensus("c"), Some(Consensus::Undecided));
}

#[test]
fn a_site_really_lost_is_declared_lost_exactly_after_hold_with_its_evidence() {
    let mut scenario = Scenario::new(&three_sites(), policy());
    scenario.down(1_000, &[1], "www/b/1");
    scenario.down(1_250, &[3], "www/b/1");
    scenario.run_until(6_000);
    scenario.check(expect![[r#"
        SiteSuspected b healthy -> suspect at 1300ms: consensus=down since=1250ms observers=[-a(n1) 1/1 down {www/b/1}, -c(n3) 1/1 down {www/b/1}] first_failure=1000ms controller_reachable=true
        SiteLost b suspect -> lost at 3300ms: consensus=down since=1250ms observers=[-a(n1) 1/1 down {www/b/1}, -c(n3) 1/1 down {www/b/1}] first_failure=1000ms controller_reachable=true
    "#]]);
    let status = scenario.detector.site(&SiteId::new("b")).expect("site b");
    assert_eq!(status.state, SiteState::Lost);
    assert_eq!(status.since, Timestamp(3_300));
    assert_eq!(status.down_since, Some(Timestamp(1_250)));
}

#[test]
fn two_observer_sites_disagreeing_decide_nothing_until_one_changes_its_mind() {
    let mut scenario = Scenario::new(&three_sites(), policy());
    scenario.down(1_000, &[1], "www/c/1");
    scenario.run_until(8_000);
    assert_eq!(scenario.state("c"), SiteState::Healthy);
    scenario.down(8_000, &[2], "www/c/1");
    scenario.run_until(12_000);
    scenario.check(expect![[r#"
        SiteSuspected c healthy -> suspect at 8100ms: consensus=down since=8000ms observers=[-a(n1) 1/1 down {www/c/1}, -b(n2) 1/1 down {www/c/1}] first_failure=1000ms controller_reachable=true
        SiteLost c suspect -> lost at 10000ms: consensus=down since=8000ms observers=[-a(n1) 1/1 down {www/c/1}, -b(n2) 1/1 down {www/c/1}] first_failure=1000ms controller_reachable=true
    "#]]);
}

#[test]
fn recovery_needs_recover_hold_of_unbroken_health() {
    let mut scenario = Scenario::new(&three_sites(), policy());
    scenario.down(1_000, &[1, 3], "www/b/1");
    scenario.run_until(5_000);
    assert_eq!(scenario.state("b"), SiteState::Lost);
    // One observer sees it back: undecided, still lost.
    scenario.up(10_000, &[1], "www/b/1");
    scenario.run_until(10_400);
    assert_eq!(scenario.state("b"), SiteState::Lost);
    scenario.up(10_500, &[3], "www/b/1");
    // A blip during recovery restarts the recover_hold.
    scenario.down(12_000, &[3], "www/b/1");
    scenario.up(12_500, &[3], "www/b/1");
    scenario.run_until(17_400);
    assert_eq!(scenario.state("b"), SiteState::Recovering);
    scenario.run_until(20_000);
    scenario.check(expect![[r#"
        SiteSuspected b healthy -> suspect at 1100ms: consensus=down since=1000ms observers=[-a(n1) 1/1 down {www/b/1}, -c(n3) 1/1 down {www/b/1}] first_failure=1000ms controller_reachable=true
        SiteLost b suspect -> lost at 3000ms: consensus=down since=1000ms observers=[-a(n1) 1/1 down {www/b/1}, -c(n3) 1/1 down {www/b/1}] first_failure=1000ms controller_reachable=true
        SiteRecovering b lost -> recovering at 10600ms: consensus=up since=10500ms observers=[+a(n1) 0/1 down, +c(n3) 0/1 down] controller_reachable=true cooldown_until=603000ms
        SiteRecovered b recovering -> healthy at 17500ms: consensus=up since=12500ms observers=[+a(n1) 0/1 down, +c(n3) 0/1 down] controller_reachable=true cooldown_until=603000ms
    "#]]);
    assert_eq!(scenario.state("b"), SiteState::Healthy);
}

#[test]
fn every_site_down_at_once_is_a_global_outage_and_nothing_is_lost() {
    let mut scenario = Scenario::new(&three_sites(), policy());
    scenario.down(1_000, &[2, 3], "www/a/1");
    scenario.down(1_000, &[1, 3], "www/b/1");
    scenario.down(1_000, &[1, 2], "www/c/1");
    scenario.run_until(10_000);
    for name in ["a", "b", "c"] {
        assert_eq!(scenario.state(name), SiteState::Suspect);
    }
    let blocked = scenario
        .detector
        .next_transition(&SiteId::new("a"), Timestamp(10_000));
    assert_eq!(blocked, Err(Blocked::LastServingSite));
    // Site a comes back: the outage clears, and b and c, down all along, are lost (one at a time,
    // since losing b changes the evidence on c).
    scenario.up(10_000, &[2, 3], "www/a/1");
    scenario.run_until(11_000);
    scenario.check(expect![[r#"
        GlobalOutageDetected at 1000ms: [a, b, c]
        SiteSuspected a healthy -> suspect at 1100ms: consensus=down since=1000ms observers=[-b(n2) 1/1 down {www/a/1}, -c(n3) 1/1 down {www/a/1}] first_failure=1000ms controller_reachable=true
        SiteSuspected b healthy -> suspect at 1100ms: consensus=down since=1000ms observers=[-a(n1) 1/1 down {www/b/1}, -c(n3) 1/1 down {www/b/1}] first_failure=1000ms controller_reachable=true
        SiteSuspected c healthy -> suspect at 1100ms: consensus=down since=1000ms observers=[-a(n1) 1/1 down {www/c/1}, -b(n2) 1/1 down {www/c/1}] first_failure=1000ms controller_reachable=true
        GlobalOutageCleared at 10000ms
        SuspicionCleared a suspect -> healthy at 10100ms: consensus=up since=10000ms observers=[+b(n2) 0/1 down, +c(n3) 0/1 down] controller_reachable=true
        SiteLost b suspect -> lost at 10100ms: consensus=down since=1000ms observers=[-a(n1) 1/1 down {www/b/1}, -c(n3) 1/1 down {www/b/1}] first_failure=1000ms controller_reachable=true
        rejected: the evidence on site `c` changed since the proposal
        SiteLost c suspect -> lost at 10100ms: consensus=down since=1000ms observers=[-a(n1) 1/1 down {www/c/1}] first_failure=1000ms controller_reachable=true
    "#]]);
    assert_eq!(scenario.state("b"), SiteState::Lost);
    assert_eq!(scenario.state("c"), SiteState::Lost);
}

#[test]
fn a_witness_site_observes_but_is_never_judged() {
    let mut scenario = Scenario::new(
        &[site("a", &[1], 1), site("b", &[2], 1), witness("w", &[3])],
        policy(),
    );
    // The witness alone sees a down: outvoted by b.
    scenario.down(1_000, &[3], "www/a/1");
    scenario.run_until(6_000);
    assert_eq!(scenario.state("a"), SiteState::Healthy);
    scenario.up(6_000, &[3], "www/a/1");
    // Site b is lost; the witness and a agree.
    scenario.down(7_000, &[1, 3], "www/b/1");
    scenario.run_until(10_000);
    scenario.check(expect![[r#"
        SiteSuspected b healthy -> suspect at 7100ms: consensus=down since=7000ms observers=[-a(n1) 1/1 down {www/b/1}, -w(n3) 1/1 down {www/b/1}] first_failure=7000ms controller_reachable=true
        SiteLost b suspect -> lost at 9000ms: consensus=down since=7000ms observers=[-a(n1) 1/1 down {www/b/1}, -w(n3) 1/1 down {www/b/1}] first_failure=7000ms controller_reachable=true
    "#]]);
    assert_eq!(scenario.state("w"), SiteState::Healthy);
    assert_eq!(
        scenario
            .detector
            .next_transition(&SiteId::new("w"), Timestamp(10_000)),
        Err(Blocked::Witness)
    );
}

#[test]
fn under_lost_requires_controller_down_a_replicating_site_is_services_down_until_it_stops() {
    let strict = DetectionPolicy {
        lost_requires_controller_down: true,
        ..policy()
    };
    let mut scenario = Scenario::new(&three_sites(), strict);
    scenario.down(1_000, &[1, 3], "www/b/1");
    scenario.run_until(5_000);
    assert_eq!(scenario.state("b"), SiteState::ServicesDown);
    scenario.contact(6_000, 2, false);
    scenario.run_until(6_500);
    scenario.check(expect![[r#"
        SiteSuspected b healthy -> suspect at 1100ms: consensus=down since=1000ms observers=[-a(n1) 1/1 down {www/b/1}, -c(n3) 1/1 down {www/b/1}] first_failure=1000ms controller_reachable=true
        ServicesDown b suspect -> services_down at 3000ms: consensus=down since=1000ms observers=[-a(n1) 1/1 down {www/b/1}, -c(n3) 1/1 down {www/b/1}] first_failure=1000ms controller_reachable=true
        SiteLost b services_down -> lost at 6100ms: consensus=down since=1000ms observers=[-a(n1) 1/1 down {www/b/1}, -c(n3) 1/1 down {www/b/1}] first_failure=1000ms controller_reachable=false
    "#]]);
    assert_eq!(scenario.state("b"), SiteState::Lost);
}

#[test]
fn a_stale_proposal_is_rejected_at_apply() {
    let mut scenario = Scenario::new(
        &[
            site("a", &[1], 1),
            site("b", &[2], 1),
            site("c", &[3], 1),
            site("d", &[4], 1),
        ],
        policy(),
    );
    scenario.down(1_000, &[1, 3, 4], "www/b/1");
    scenario.run_until(2_900);
    assert_eq!(scenario.state("b"), SiteState::Suspect);
    let lost = scenario.detector.propose(Timestamp(3_000));
    assert_eq!(lost.len(), 1);
    let lost = DetectionInput::SiteTransition(lost[0].clone());

    // Evidence that changes the evidence but not the decision: b's controller goes quiet.
    scenario.contact(2_950, 2, false);
    scenario.apply(&lost);
    // Evidence that changes the decision: two observers now see b up (2 for, 1 against).
    scenario.up(2_950, &[3, 4], "www/b/1");
    let stale = scenario.detector.propose(Timestamp(3_000));
    assert_eq!(stale.len(), 1);
    let cleared = DetectionInput::SiteTransition(stale[0].clone());
    scenario.apply(&lost);
    scenario.apply(&cleared);
    // Applying the same transition twice: the second is stale.
    scenario.apply(&cleared);
    scenario.check(expect![[r#"
        SiteSuspected b healthy -> suspect at 1100ms: consensus=down since=1000ms observers=[-a(n1) 1/1 down {www/b/1}, -c(n3) 1/1 down {www/b/1}, -d(n4) 1/1 down {www/b/1}] first_failure=1000ms controller_reachable=true
        rejected: the evidence on site `b` changed since the proposal
        rejected: site `b` should go to healthy, not lost
        SuspicionCleared b suspect -> healthy at 3000ms: consensus=up since=2950ms observers=[-a(n1) 1/1 down {www/b/1}, +c(n3) 0/1 down, +d(n4) 0/1 down] first_failure=1000ms controller_reachable=false
        rejected: stale proposal: site `b` is healthy, not suspect
    "#]]);
}

#[test]
fn a_loss_records_its_cooldown_and_a_second_loss_within_it_carries_it() {
    let mut scenario = Scenario::new(&three_sites(), policy());
    scenario.down(1_000, &[1, 3], "www/b/1");
    scenario.run_until(4_000);
    let b = SiteId::new("b");
    let lost_at = scenario.detector.site(&b).and_then(|s| s.last_lost_at);
    assert_eq!(lost_at, Some(Timestamp(3_000)));
    assert_eq!(
        scenario.detector.cooldown_until(&b),
        Some(Timestamp(603_000))
    );
    scenario.up(5_000, &[1, 3], "www/b/1");
    scenario.run_until(11_000);
    assert_eq!(scenario.state("b"), SiteState::Healthy);
    scenario.down(20_000, &[1, 3], "www/b/1");
    scenario.run_until(23_000);
    scenario.check(expect![[r#"
        SiteSuspected b healthy -> suspect at 1100ms: consensus=down since=1000ms observers=[-a(n1) 1/1 down {www/b/1}, -c(n3) 1/1 down {www/b/1}] first_failure=1000ms controller_reachable=true
        SiteLost b suspect -> lost at 3000ms: consensus=down since=1000ms observers=[-a(n1) 1/1 down {www/b/1}, -c(n3) 1/1 down {www/b/1}] first_failure=1000ms controller_reachable=true
        SiteRecovering b lost -> recovering at 5100ms: consensus=up since=5000ms observers=[+a(n1) 0/1 down, +c(n3) 0/1 down] controller_reachable=true cooldown_until=603000ms
        SiteRecovered b recovering -> healthy at 10100ms: consensus=up since=5000ms observers=[+a(n1) 0/1 down, +c(n3) 0/1 down] controller_reachable=true cooldown_until=603000ms
        SiteSuspected b healthy -> suspect at 20100ms: consensus=down since=20000ms observers=[-a(n1) 1/1 down {www/b/1}, -c(n3) 1/1 down {www/b/1}] first_failure=20000ms controller_reachable=true cooldown_until=603000ms
        SiteLost b suspect -> lost at 22000ms: consensus=down since=20000ms observers=[-a(n1) 1/1 down {www/b/1}, -c(n3) 1/1 down {www/b/1}] first_failure=20000ms controller_reachable=true cooldown_until=603000ms
    "#]]);
    assert_eq!(
        scenario.detector.cooldown_until(&b),
        Some(Timestamp(622_000))
    );
}

#[test]
fn an_unreachable_nodes_stale_verdicts_do_not_count() {
    let mut scenario = Scenario::new(
        &[
            site("a", &[1, 5], 1),
            site("b", &[2], 1),
            site("c", &[3], 1),
        ],
        policy(),
    );
    // Site a has two nodes: one saying down is no majority.
    scenario.down(1_000, &[1, 3], "www/b/1");
    scenario.run_until(5_000);
    assert_eq!(scenario.state("b"), SiteState::Healthy);
    // Node 5 stops replicating: node 1 alone speaks for site a.
    scenario.contact(5_000, 5, false);
    scenario.run_until(8_000);
    scenario.check(expect![[r#"
        SiteSuspected b healthy -> suspect at 5100ms: consensus=down since=5000ms observers=[-a(n1) 1/1 down {www/b/1}, -c(n3) 1/1 down {www/b/1}] first_failure=1000ms controller_reachable=true
        SiteLost b suspect -> lost at 7000ms: consensus=down since=5000ms observers=[-a(n1) 1/1 down {www/b/1}, -c(n3) 1/1 down {www/b/1}] first_failure=1000ms controller_reachable=true
    "#]]);
    assert_eq!(scenario.state("b"), SiteState::Lost);
}

#[test]
fn the_evidence_matrix_combines_each_observer_sites_nodes() {
    let mut scenario = Scenario::new(
        &[
            site("a", &[1, 5], 1),
            site("b", &[2], 1),
            site("c", &[3], 1),
        ],
        policy(),
    );
    scenario.down(1_000, &[1, 5], "www/b/1");
    scenario.down(1_000, &[1], "www/c/1");
    scenario.contact(2_000, 3, false);
    let matrix = scenario.detector.evidence_matrix();
    let rows: Vec<String> = matrix
        .observers
        .iter()
        .map(|(site, row)| {
            let cells: Vec<String> = row
                .verdicts
                .iter()
                .map(|(endpoint, verdict)| format!("{endpoint}={verdict}"))
                .collect();
            format!(
                "{site} nodes={:?} counted={} {}",
                row.nodes,
                row.counted,
                cells.join(" ")
            )
        })
        .collect();
    expect![[r#"
        a nodes=[NodeId(1), NodeId(5)] counted=true www/a/1=up www/b/1=down www/c/1=up
        b nodes=[NodeId(2)] counted=true www/a/1=up www/b/1=up www/c/1=up
        c nodes=[] counted=false "#]]
    .assert_eq(&rows.join("\n"));
    let health: Vec<String> = scenario
        .detector
        .service_health()
        .iter()
        .map(|health| format!("{}@{}={}", health.service, health.site, health.consensus))
        .collect();
    expect!["www@a=up www@b=down www@c=up"].assert_eq(&health.join(" "));
}

#[test]
fn the_running_tally_always_agrees_with_a_full_recount() {
    let sites = [
        site("a", &[1, 2], 2),
        site("b", &[3], 3),
        site("c", &[4, 5, 6], 1),
        witness("w", &[7]),
    ];
    let config = cluster(&sites, policy());
    let endpoints: Vec<EndpointId> = config.services[0]
        .endpoints
        .iter()
        .map(|endpoint| endpoint.id.clone())
        .collect();
    let mut detector = Detector::new(&config);
    // A fixed xorshift sequence: core tests take no randomness from outside.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |bound: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % bound
    };
    for step in 0..3_000_u64 {
        let at = Timestamp(step * 50);
        let input = match next(10) {
            0 => DetectionInput::ControllerContact(ControllerContact {
                node: NodeId(1 + next(7)),
                reachable: next(3) != 0,
                at,
            }),
            1 => DetectionInput::Tick { now: at },
            _ => DetectionInput::VerdictChanged(VerdictChanged {
                observer: NodeId(1 + next(7)),
                endpoint: endpoints[usize::try_from(next(6)).expect("small")].clone(),
                verdict: if next(2) == 0 {
                    Verdict::Down
                } else {
                    Verdict::Up
                },
                since: at,
                last_error: None,
                latency_ms: None,
            }),
        };
        detector.apply(&input).expect("known nodes and endpoints");
        for transition in detector.propose(at) {
            detector
                .apply(&DetectionInput::SiteTransition(transition))
                .ok();
        }
        for name in ["a", "b", "c"] {
            let site = SiteId::new(name);
            let tallied = detector.site(&site).map(|status| status.consensus);
            let recounted = detector.evidence(&site, at).consensus;
            assert_eq!(tallied, Some(recounted), "site {name} at step {step}");
        }
    }
}

#[test]
fn a_detector_survives_a_snapshot_round_trip() {
    let mut scenario = Scenario::new(
        &[
            site("a", &[1, 5], 1),
            site("b", &[2], 2),
            witness("w", &[3]),
        ],
        policy(),
    );
    scenario.down(1_000, &[1, 5, 3], "www/b/1");
    scenario.down(1_000, &[1, 5, 3], "www/b/2");
    scenario.contact(1_500, 2, false);
    scenario.run_until(2_000);
    let json = serde_json::to_string(&scenario.detector).expect("the detector serializes");
    let restored: Detector = serde_json::from_str(&json).expect("and deserializes");
    assert_eq!(restored, scenario.detector);
    assert_eq!(
        restored.propose(Timestamp(3_000)),
        scenario.detector.propose(Timestamp(3_000))
    );
    assert_eq!(restored.propose(Timestamp(3_000)).len(), 1);
}

#[test]
fn a_services_down_site_whose_evidence_wavered_is_lost_only_after_a_fresh_hold() {
    let strict = DetectionPolicy {
        lost_requires_controller_down: true,
        ..policy()
    };
    let mut scenario = Scenario::new(&three_sites(), strict);
    scenario.down(1_000, &[1, 3], "www/b/1");
    scenario.run_until(4_000);
    assert_eq!(scenario.state("b"), SiteState::ServicesDown);
    // Observer c wavers: undecided, then down again from 5000.
    scenario.up(4_500, &[3], "www/b/1");
    scenario.down(5_000, &[3], "www/b/1");
    // b's controller stops at 5500: lost, but only once the new evidence held for `hold`.
    scenario.contact(5_500, 2, false);
    scenario.run_until(6_900);
    assert_eq!(scenario.state("b"), SiteState::ServicesDown);
    scenario.run_until(7_100);
    assert_eq!(scenario.state("b"), SiteState::Lost);
    let status = scenario.detector.site(&SiteId::new("b")).expect("site b");
    assert_eq!(status.since, Timestamp(7_000));
}
