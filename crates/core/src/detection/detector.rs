//! The detector: the verdict matrix, each site's consensus and state, and the pair-checked
//! transitions between states.
//!
//! Applying a verdict or a contact change only updates the matrix and each site's consensus (and
//! the global-outage alert). Site states change only through [`SiteTransition`]s: the leader asks
//! [`Detector::propose`] on a timer, proposes what it returns, and every replica's
//! [`Detector::apply`] derives the transition again from its own state and accepts only an
//! identical one. A proposal overtaken by newer evidence is rejected with a [`Rejection`] and the
//! leader proposes afresh.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::config::{ClusterConfig, DetectionPolicy};
use crate::id::{EndpointId, NodeId, ServiceId, SiteId};
use crate::time::Timestamp;

use super::event::DetectionEvent;
use super::evidence::{
    Consensus, Evidence, EvidenceMatrix, ObserverRow, ObserverView, ServiceHealth,
};
use super::input::{ControllerContact, DetectionInput, VerdictChanged};
use super::rejection::{Blocked, Rejection};
use super::service_state::{ServiceState, ServiceStatus};
use super::site_state::{SiteState, SiteStatus};
use super::tally::{Tally, majority};
use super::topology::Topology;
use super::transition::{ServiceTransition, SiteTransition};
use super::verdict::{Verdict, VerdictRecord};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Detector {
    policy: DetectionPolicy,
    topology: Topology,
    /// node → endpoint → latest committed verdict. A missing cell is `up`: every node starts
    /// out assuming its endpoints up and proposes only flips.
    matrix: BTreeMap<NodeId, BTreeMap<EndpointId, VerdictRecord>>,
    /// Nodes the leader does not hear from; their verdicts are stale and do not count.
    unreachable: BTreeSet<NodeId>,
    /// Every site, witnesses included (they stay `healthy`).
    sites: BTreeMap<SiteId, SiteStatus>,
    /// Detection's clock: the latest leader time seen (ticks, contacts, transitions).
    clock: Timestamp,
    /// The judged sites that looked down when the current global outage was detected.
    global_outage: Option<Vec<SiteId>>,
    /// Running counts behind the consensus (derived from `matrix` and `unreachable`).
    tally: Tally,
    /// service → site → its state there, for every site where the service has endpoints.
    #[serde(default)]
    services: BTreeMap<ServiceId, BTreeMap<SiteId, ServiceStatus>>,
}

impl Detector {
    pub fn new(config: &ClusterConfig) -> Self {
        let topology = Topology::from_config(config);
        let sites = topology
            .sites
            .keys()
            .map(|site| (site.clone(), SiteStatus::new()))
            .collect();
        let services = topology
            .services
            .iter()
            .map(|(service, per_site)| {
                let statuses = per_site
                    .keys()
                    .map(|site| (site.clone(), ServiceStatus::new()))
                    .collect();
                (service.clone(), statuses)
            })
            .collect();
        let mut detector = Self {
            policy: config.detection.clone(),
            topology,
            matrix: BTreeMap::new(),
            unreachable: BTreeSet::new(),
            sites,
            clock: Timestamp(0),
            global_outage: None,
            tally: Tally::default(),
            services,
        };
        let observers: Vec<SiteId> = detector.topology.sites.keys().cloned().collect();
        for observer in &observers {
            detector.rebuild_tally(observer);
        }
        detector
    }

    pub fn policy(&self) -> &DetectionPolicy {
        &self.policy
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    pub fn clock(&self) -> Timestamp {
        self.clock
    }

    pub fn site(&self, site: &SiteId) -> Option<&SiteStatus> {
        self.sites.get(site)
    }

    pub fn sites(&self) -> &BTreeMap<SiteId, SiteStatus> {
        &self.sites
    }

    /// The state of `service` in `site`, if it has endpoints there.
    pub fn service(&self, service: &ServiceId, site: &SiteId) -> Option<&ServiceStatus> {
        self.services.get(service)?.get(site)
    }

    /// service → site → state, for every site where the service has endpoints.
    pub fn services(&self) -> &BTreeMap<ServiceId, BTreeMap<SiteId, ServiceStatus>> {
        &self.services
    }

    /// The judged sites that looked down when the ongoing global outage began, if one is ongoing.
    pub fn global_outage(&self) -> Option<&[SiteId]> {
        self.global_outage.as_deref()
    }

    /// When the `failover_cooldown` after the site's last loss ends (it may be in the past).
    pub fn cooldown_until(&self, site: &SiteId) -> Option<Timestamp> {
        let last_lost_at = self.sites.get(site)?.last_lost_at?;
        Some(last_lost_at.after(self.policy.failover_cooldown))
    }

    /// The latest committed verdict of `node` on `endpoint`, if it ever flipped.
    pub fn verdict(&self, node: NodeId, endpoint: &EndpointId) -> Option<&VerdictRecord> {
        self.matrix.get(&node)?.get(endpoint)
    }

    pub fn node_reachable(&self, node: NodeId) -> bool {
        !self.unreachable.contains(&node)
    }

    /// Whether any controller node of `site` still replicates.
    pub fn controller_reachable(&self, site: &SiteId) -> bool {
        self.topology
            .sites
            .get(site)
            .is_some_and(|members| members.nodes.iter().any(|node| self.node_reachable(*node)))
    }

    /// Applies one committed command; returns the facts it produced, or why it was refused.
    /// A refused command changes nothing.
    pub fn apply(&mut self, input: &DetectionInput) -> Result<Vec<DetectionEvent>, Rejection> {
        match input {
            DetectionInput::VerdictChanged(change) => self.apply_verdict(change),
            DetectionInput::ControllerContact(contact) => self.apply_contact(contact),
            DetectionInput::Tick { now } => {
                self.clock = self.clock.max(*now);
                Ok(Vec::new())
            }
            DetectionInput::SiteTransition(transition) => self.apply_transition(transition),
            DetectionInput::ServiceTransition(transition) => {
                self.apply_service_transition(transition)
            }
        }
    }

    /// The transitions due at leader time `now`, at most one per site, in site order. Applying one
    /// may make a later one stale (a lost site stops counting as an observer); apply then rejects
    /// it and the next call proposes afresh.
    pub fn propose(&self, now: Timestamp) -> Vec<SiteTransition> {
        self.topology
            .judged_sites()
            .filter_map(|site| self.next_transition(site, now).ok())
            .collect()
    }

    /// The per-service transitions due at leader time `now`, at most one per (service, site), in
    /// service then site order. They never change observers, so they do not go stale each other.
    pub fn propose_services(&self, now: Timestamp) -> Vec<ServiceTransition> {
        self.services
            .iter()
            .flat_map(|(service, per_site)| {
                per_site
                    .keys()
                    .filter_map(move |site| self.next_service_transition(service, site, now).ok())
            })
            .collect()
    }

    /// The transition due for `service` in `site` at `at`, or why there is none.
    ///
    /// `healthy -> unhealthy` once the consensus on the service's endpoints there has been `down`
    /// for `hold`, while the site is `healthy` and its own consensus is not `down` (a site-wide
    /// outage is judged as a site), and while some other site of the service is left serving.
    /// `unhealthy -> healthy` once it has been `up` for `recover_hold` since entering
    /// `unhealthy` at the earliest.
    pub fn next_service_transition(
        &self,
        service: &ServiceId,
        site: &SiteId,
        at: Timestamp,
    ) -> Result<ServiceTransition, Blocked> {
        let status = self.service(service, site).ok_or(Blocked::NoChange)?;
        let to = match (status.state, status.consensus) {
            (ServiceState::Healthy, Consensus::Down) => {
                let site_fine = self.sites.get(site).is_some_and(|site_status| {
                    site_status.state == SiteState::Healthy
                        && site_status.consensus != Consensus::Down
                });
                if !site_fine {
                    return Err(Blocked::SiteNotHealthy);
                }
                let since = status.down_since.unwrap_or(at);
                check_held(since, self.policy.hold, at)?;
                self.check_service_survivor(service, site)?;
                ServiceState::Unhealthy
            }
            (ServiceState::Unhealthy, Consensus::Up) => {
                let since = status.up_since.unwrap_or(at).max(status.since);
                check_held(since, self.policy.recover_hold, at)?;
                ServiceState::Healthy
            }
            _ => return Err(Blocked::NoChange),
        };
        let empty = BTreeSet::new();
        let endpoints = self
            .topology
            .services
            .get(service)
            .and_then(|per_site| per_site.get(site))
            .unwrap_or(&empty);
        let evidence = self.evidence_on(site, endpoints, status.down_since, status.up_since, at);
        // As for sites: a tally that disagrees with a full recount means a corrupt replica.
        assert_eq!(
            evidence.consensus, status.consensus,
            "detection tally diverged from a full recount for service `{service}` in `{site}`"
        );
        Ok(ServiceTransition {
            service: service.clone(),
            site: site.clone(),
            from: status.state,
            to,
            evidence,
            at,
        })
    }

    /// The transition due for `site` at `at`, or why there is none.
    pub fn next_transition(&self, site: &SiteId, at: Timestamp) -> Result<SiteTransition, Blocked> {
        let status = self.sites.get(site).ok_or(Blocked::NoChange)?;
        if self
            .topology
            .sites
            .get(site)
            .is_some_and(|members| members.witness)
        {
            return Err(Blocked::Witness);
        }
        let down_target = self.down_target(site);
        let to = match (status.state, status.consensus) {
            (SiteState::Healthy, Consensus::Down) => SiteState::Suspect,
            (SiteState::Healthy, _) => return Err(Blocked::NoChange),
            (SiteState::Suspect, Consensus::Down) => {
                // The hold counts from when the evidence appeared, not from the suspect
                // transition, so the extra round trip does not slow detection down.
                let since = status.down_since.unwrap_or(at);
                check_held(since, self.policy.hold, at)?;
                self.check_survivor(site)?;
                down_target
            }
            (SiteState::Suspect, _) => SiteState::Healthy,
            (SiteState::ServicesDown, Consensus::Up) | (SiteState::Lost, Consensus::Up) => {
                SiteState::Recovering
            }
            (SiteState::ServicesDown, Consensus::Down) if down_target == SiteState::Lost => {
                // Its controller stopped replicating. The evidence must still have held for
                // `hold` without a break: it may have wavered while the site was services-down.
                let since = status.down_since.unwrap_or(at);
                check_held(since, self.policy.hold, at)?;
                self.check_survivor(site)?;
                SiteState::Lost
            }
            (SiteState::ServicesDown, _) | (SiteState::Lost, _) => return Err(Blocked::NoChange),
            (SiteState::Recovering, Consensus::Down) => {
                let since = status.down_since.unwrap_or(at).max(status.since);
                check_held(since, self.policy.hold, at)?;
                self.check_survivor(site)?;
                down_target
            }
            (SiteState::Recovering, Consensus::Up) => {
                // Counted from entering `recovering` at the earliest, so that
                // `lost -> recovering -> healthy` always takes `recover_hold`.
                let since = status.up_since.unwrap_or(at).max(status.since);
                check_held(since, self.policy.recover_hold, at)?;
                SiteState::Healthy
            }
            (SiteState::Recovering, Consensus::Undecided) => return Err(Blocked::NoChange),
        };
        let evidence = self.evidence(site, at);
        // The running tally and a full recount must agree; if not, this replica's state is
        // corrupt and it must stop rather than commit a decision on it.
        assert_eq!(
            evidence.consensus, status.consensus,
            "detection tally diverged from a full recount for site `{site}`"
        );
        Ok(SiteTransition {
            site: site.clone(),
            from: status.state,
            to,
            evidence,
            at,
        })
    }

    /// The evidence on `site` as of `at` (only `cooldown_until` depends on `at`).
    pub fn evidence(&self, site: &SiteId, at: Timestamp) -> Evidence {
        let endpoints = self
            .topology
            .sites
            .get(site)
            .map(|members| &members.endpoints);
        let empty = BTreeSet::new();
        let status = self.sites.get(site);
        self.evidence_on(
            site,
            endpoints.unwrap_or(&empty),
            status.and_then(|status| status.down_since),
            status.and_then(|status| status.up_since),
            at,
        )
    }

    /// The evidence on `endpoints` of `site` (all of them, or one service's), with the streaks
    /// recorded for them.
    fn evidence_on(
        &self,
        site: &SiteId,
        endpoints: &BTreeSet<EndpointId>,
        down_since: Option<Timestamp>,
        up_since: Option<Timestamp>,
        at: Timestamp,
    ) -> Evidence {
        let observers = self.views(site, endpoints);
        let consensus = self.consensus(&observers);
        let consensus_since = match consensus {
            Consensus::Down => down_since,
            Consensus::Up => up_since,
            Consensus::Undecided => None,
        };
        let first_failure = observers
            .iter()
            .filter(|view| view.counts_against)
            .flat_map(|view| {
                view.nodes.iter().flat_map(|node| {
                    view.endpoints_down
                        .iter()
                        .filter_map(|endpoint| self.verdict(*node, endpoint))
                        .filter(|record| record.verdict == Verdict::Down)
                        .map(|record| record.since)
                })
            })
            .min();
        let cooldown_until = self.cooldown_until(site).filter(|until| *until > at);
        Evidence {
            consensus,
            consensus_since,
            observers,
            first_failure,
            controller_reachable: self.controller_reachable(site),
            cooldown_until,
        }
    }

    /// Observer site × endpoint → combined verdict, for the API.
    pub fn evidence_matrix(&self) -> EvidenceMatrix {
        let observers = self
            .topology
            .sites
            .keys()
            .map(|site| {
                let nodes = self.reachable_nodes(site);
                let lost = self
                    .sites
                    .get(site)
                    .is_some_and(|status| status.state == SiteState::Lost);
                let verdicts = if nodes.is_empty() {
                    BTreeMap::new()
                } else {
                    self.topology
                        .endpoint_sites
                        .keys()
                        .map(|endpoint| (endpoint.clone(), self.combined(&nodes, endpoint)))
                        .collect()
                };
                let row = ObserverRow {
                    counted: !lost && !nodes.is_empty(),
                    nodes,
                    verdicts,
                };
                (site.clone(), row)
            })
            .collect();
        EvidenceMatrix { observers }
    }

    /// The health of every service in every site where it has endpoints.
    pub fn service_health(&self) -> Vec<ServiceHealth> {
        let mut health = Vec::new();
        for (service, per_site) in &self.topology.services {
            for (site, endpoints) in per_site {
                let observers = self.views(site, endpoints);
                health.push(ServiceHealth {
                    service: service.clone(),
                    site: site.clone(),
                    consensus: self.consensus(&observers),
                    observers,
                });
            }
        }
        health
    }

    fn apply_verdict(&mut self, change: &VerdictChanged) -> Result<Vec<DetectionEvent>, Rejection> {
        if !self.topology.node_sites.contains_key(&change.observer) {
            return Err(Rejection::UnknownNode {
                node: change.observer,
            });
        }
        let Some(site) = self.topology.endpoint_sites.get(&change.endpoint).cloned() else {
            return Err(Rejection::UnknownEndpoint {
                endpoint: change.endpoint.clone(),
            });
        };
        let current = self
            .verdict(change.observer, &change.endpoint)
            .map_or(Verdict::Up, |record| record.verdict);
        if current == change.verdict {
            // A retry of a flip already committed: the first one's `since` stands.
            return Ok(Vec::new());
        }
        self.matrix.entry(change.observer).or_default().insert(
            change.endpoint.clone(),
            VerdictRecord {
                verdict: change.verdict,
                since: change.since,
                last_error: change.last_error.clone(),
                latency_ms: change.latency_ms,
            },
        );
        if self.node_reachable(change.observer)
            && let Some(observer_site) = self.topology.node_sites.get(&change.observer)
        {
            let service = self.topology.endpoint_services.get(&change.endpoint);
            self.tally.record_flip(
                observer_site,
                &change.endpoint,
                (service, &site),
                change.verdict,
            );
        }
        // A verdict's `since` is the observer's clock: it may start a streak later than the
        // leader's clock (a late or skewed node only lengthens the hold) but never earlier.
        let streak_start = self.clock.max(change.since);
        self.refresh_services(Some((&site, &change.endpoint)), streak_start);
        Ok(self.refresh(Some(&site), streak_start))
    }

    fn apply_contact(
        &mut self,
        contact: &ControllerContact,
    ) -> Result<Vec<DetectionEvent>, Rejection> {
        if !self.topology.node_sites.contains_key(&contact.node) {
            return Err(Rejection::UnknownNode { node: contact.node });
        }
        self.clock = self.clock.max(contact.at);
        let changed = if contact.reachable {
            self.unreachable.remove(&contact.node)
        } else {
            self.unreachable.insert(contact.node)
        };
        if !changed {
            return Ok(Vec::new());
        }
        if let Some(site) = self.topology.node_sites.get(&contact.node).cloned() {
            self.rebuild_tally(&site);
        }
        self.refresh_services(None, self.clock);
        Ok(self.refresh(None, self.clock))
    }

    fn apply_transition(
        &mut self,
        transition: &SiteTransition,
    ) -> Result<Vec<DetectionEvent>, Rejection> {
        let site = &transition.site;
        let Some(status) = self.sites.get(site) else {
            return Err(Rejection::UnknownSite { site: site.clone() });
        };
        if status.state != transition.from {
            return Err(Rejection::Stale {
                site: site.clone(),
                current: status.state,
                proposed_from: transition.from,
            });
        }
        let expected = self
            .next_transition(site, transition.at)
            .map_err(|blocked| Rejection::NotDue {
                site: site.clone(),
                blocked,
            })?;
        if expected.to != transition.to {
            return Err(Rejection::OtherTarget {
                site: site.clone(),
                expected: expected.to,
                proposed: transition.to,
            });
        }
        if expected != *transition {
            return Err(Rejection::EvidenceChanged { site: site.clone() });
        }

        self.clock = self.clock.max(transition.at);
        let status = self
            .sites
            .get_mut(site)
            .expect("checked above that the site exists");
        status.state = transition.to;
        status.since = transition.at;
        let fact = transition.clone();
        let event = match (transition.from, transition.to) {
            (SiteState::Healthy, _) => DetectionEvent::SiteSuspected(fact),
            (SiteState::Suspect, SiteState::Healthy) => DetectionEvent::SuspicionCleared(fact),
            (SiteState::Recovering, SiteState::Healthy) => DetectionEvent::SiteRecovered(fact),
            (SiteState::Recovering, _) => DetectionEvent::RecoveryAborted(fact),
            (_, SiteState::Recovering) => DetectionEvent::SiteRecovering(fact),
            (_, SiteState::ServicesDown) => DetectionEvent::ServicesDown(fact),
            (_, _) => {
                status.last_lost_at = Some(transition.at);
                DetectionEvent::SiteLost(fact)
            }
        };
        let mut events = vec![event];
        // A site entering or leaving `lost` joins or leaves every other site's observers.
        self.refresh_services(None, transition.at);
        events.extend(self.refresh(None, transition.at));
        Ok(events)
    }

    fn apply_service_transition(
        &mut self,
        transition: &ServiceTransition,
    ) -> Result<Vec<DetectionEvent>, Rejection> {
        let (service, site) = (&transition.service, &transition.site);
        let Some(status) = self.service(service, site) else {
            return Err(Rejection::UnknownService {
                service: service.clone(),
                site: site.clone(),
            });
        };
        if status.state != transition.from {
            return Err(Rejection::ServiceStale {
                service: service.clone(),
                site: site.clone(),
                current: status.state,
                proposed_from: transition.from,
            });
        }
        let expected = self
            .next_service_transition(service, site, transition.at)
            .map_err(|blocked| Rejection::ServiceNotDue {
                service: service.clone(),
                site: site.clone(),
                blocked,
            })?;
        if expected != *transition {
            return Err(Rejection::ServiceEvidenceChanged {
                service: service.clone(),
                site: site.clone(),
            });
        }
        self.clock = self.clock.max(transition.at);
        if let Some(status) = self
            .services
            .get_mut(service)
            .and_then(|per_site| per_site.get_mut(site))
        {
            status.state = transition.to;
            status.since = transition.at;
        }
        let fact = transition.clone();
        Ok(vec![match transition.to {
            ServiceState::Unhealthy => DetectionEvent::ServiceUnhealthy(fact),
            ServiceState::Healthy => DetectionEvent::ServiceRecovered(fact),
        }])
    }

    /// Recomputes the consensus on each service's endpoints in each site (or only on the services
    /// holding `only`'s endpoint), starting or ending streaks at `streak_start`.
    fn refresh_services(&mut self, only: Option<(&SiteId, &EndpointId)>, streak_start: Timestamp) {
        let mut updates: Vec<(ServiceId, SiteId, Consensus)> = Vec::new();
        for (service, per_site) in &self.topology.services {
            for (site, endpoints) in per_site {
                if let Some((only_site, endpoint)) = only
                    && (only_site != site
                        || self.topology.endpoint_services.get(endpoint) != Some(service))
                {
                    continue;
                }
                let consensus = self.tallied_service_consensus(service, site, endpoints.len());
                updates.push((service.clone(), site.clone(), consensus));
            }
        }
        for (service, site, consensus) in updates {
            let Some(status) = self
                .services
                .get_mut(&service)
                .and_then(|per_site| per_site.get_mut(&site))
            else {
                continue;
            };
            status.consensus = consensus;
            if consensus == Consensus::Down {
                status.down_since.get_or_insert(streak_start);
            } else {
                status.down_since = None;
            }
            if consensus == Consensus::Up {
                status.up_since.get_or_insert(streak_start);
            } else {
                status.up_since = None;
            }
        }
    }

    /// Recomputes the consensus on `only` (or on every judged site), starting or ending streaks
    /// at `streak_start`, then the global-outage alert.
    fn refresh(&mut self, only: Option<&SiteId>, streak_start: Timestamp) -> Vec<DetectionEvent> {
        let targets: Vec<SiteId> = match only {
            Some(site) => vec![site.clone()],
            None => self.topology.judged_sites().cloned().collect(),
        };
        for site in targets {
            let Some(members) = self.topology.sites.get(&site) else {
                continue;
            };
            if members.witness {
                continue;
            }
            let consensus = self.tallied_consensus(&site, members.endpoints.len());
            let Some(status) = self.sites.get_mut(&site) else {
                continue;
            };
            status.consensus = consensus;
            if consensus == Consensus::Down {
                status.down_since.get_or_insert(streak_start);
            } else {
                status.down_since = None;
            }
            if consensus == Consensus::Up {
                status.up_since.get_or_insert(streak_start);
            } else {
                status.up_since = None;
            }
        }
        self.refresh_global_outage(streak_start)
    }

    fn refresh_global_outage(&mut self, at: Timestamp) -> Vec<DetectionEvent> {
        let standing: Vec<(&SiteId, &SiteStatus)> = self
            .topology
            .judged_sites()
            .filter_map(|site| Some((site, self.sites.get(site)?)))
            .filter(|(_, status)| status.state != SiteState::Lost)
            .collect();
        let all_down = !standing.is_empty()
            && standing
                .iter()
                .all(|(_, status)| status.consensus == Consensus::Down);
        match (all_down, self.global_outage.is_some()) {
            (true, false) => {
                let sites: Vec<SiteId> = standing.iter().map(|(site, _)| (*site).clone()).collect();
                self.global_outage = Some(sites.clone());
                vec![DetectionEvent::GlobalOutageDetected { at, sites }]
            }
            (false, true) => {
                self.global_outage = None;
                vec![DetectionEvent::GlobalOutageCleared { at }]
            }
            _ => Vec::new(),
        }
    }

    /// `lost`, or `services_down` under the strict policy while the site's controller replicates.
    fn down_target(&self, site: &SiteId) -> SiteState {
        if self.policy.lost_requires_controller_down && self.controller_reachable(site) {
            SiteState::ServicesDown
        } else {
            SiteState::Lost
        }
    }

    /// Some other judged site must be left serving: not declared down and not looking down.
    fn check_survivor(&self, site: &SiteId) -> Result<(), Blocked> {
        let survivor = self.topology.judged_sites().any(|other| {
            other != site
                && self.sites.get(other).is_some_and(|status| {
                    !status.state.is_down() && status.consensus != Consensus::Down
                })
        });
        if survivor {
            Ok(())
        } else {
            Err(Blocked::LastServingSite)
        }
    }

    /// Some other site of the service must be left serving it: its service healthy and not
    /// looking down there, and the site itself not declared or looking down.
    fn check_service_survivor(&self, service: &ServiceId, site: &SiteId) -> Result<(), Blocked> {
        let survivor = self.services.get(service).is_some_and(|per_site| {
            per_site.iter().any(|(other, status)| {
                other != site
                    && status.state == ServiceState::Healthy
                    && status.consensus != Consensus::Down
                    && self.sites.get(other).is_some_and(|site_status| {
                        !site_status.state.is_down() && site_status.consensus != Consensus::Down
                    })
            })
        });
        if survivor {
            Ok(())
        } else {
            Err(Blocked::LastServingSite)
        }
    }

    fn reachable_nodes(&self, site: &SiteId) -> Vec<NodeId> {
        self.topology
            .sites
            .get(site)
            .map(|members| {
                members
                    .nodes
                    .iter()
                    .copied()
                    .filter(|node| self.node_reachable(*node))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `nodes`' combined verdict on `endpoint`: down when a strict majority of them say so.
    fn combined(&self, nodes: &[NodeId], endpoint: &EndpointId) -> Verdict {
        let down = nodes
            .iter()
            .filter(|node| {
                self.verdict(**node, endpoint)
                    .is_some_and(|record| record.verdict == Verdict::Down)
            })
            .count();
        let down = u32::try_from(down).unwrap_or(u32::MAX);
        if majority(down, u32::try_from(nodes.len()).unwrap_or(u32::MAX)) {
            Verdict::Down
        } else {
            Verdict::Up
        }
    }

    /// What every other, non-lost site with a replicating node sees of `endpoints` of `target`.
    fn views(&self, target: &SiteId, endpoints: &BTreeSet<EndpointId>) -> Vec<ObserverView> {
        let endpoints_total = u32::try_from(endpoints.len()).unwrap_or(u32::MAX);
        self.topology
            .sites
            .keys()
            .filter(|observer| *observer != target)
            .filter(|observer| {
                self.sites
                    .get(*observer)
                    .is_some_and(|status| status.state != SiteState::Lost)
            })
            .filter_map(|observer| {
                let nodes = self.reachable_nodes(observer);
                if nodes.is_empty() {
                    return None;
                }
                let endpoints_down: Vec<EndpointId> = endpoints
                    .iter()
                    .filter(|endpoint| self.combined(&nodes, endpoint) == Verdict::Down)
                    .cloned()
                    .collect();
                let counts_against = counts_against(
                    endpoints_down.len(),
                    endpoints.len(),
                    self.policy.endpoints_down_fraction,
                );
                Some(ObserverView {
                    site: observer.clone(),
                    nodes,
                    endpoints_down,
                    endpoints_total,
                    counts_against,
                })
            })
            .collect()
    }

    fn rebuild_tally(&mut self, observer: &SiteId) {
        let nodes = self.reachable_nodes(observer);
        self.tally
            .rebuild_observer(observer, &nodes, &self.matrix, &self.topology);
    }

    /// The consensus on `target` from the running tally: what [`Self::views`] would give, without
    /// recounting the matrix.
    fn tallied_consensus(&self, target: &SiteId, endpoints_total: usize) -> Consensus {
        let (mut against, mut agree_for) = (0, 0);
        for (observer, status) in &self.sites {
            if observer == target
                || status.state == SiteState::Lost
                || self.tally.replicating(observer) == 0
            {
                continue;
            }
            let down = self.tally.endpoints_down(observer, target);
            let down = usize::try_from(down).unwrap_or(usize::MAX);
            if counts_against(down, endpoints_total, self.policy.endpoints_down_fraction) {
                against += 1;
            } else {
                agree_for += 1;
            }
        }
        self.decide(against, agree_for)
    }

    /// The consensus on `service`'s endpoints in `target` from the running tally.
    fn tallied_service_consensus(
        &self,
        service: &ServiceId,
        target: &SiteId,
        endpoints_total: usize,
    ) -> Consensus {
        let (mut against, mut agree_for) = (0, 0);
        for (observer, status) in &self.sites {
            if observer == target
                || status.state == SiteState::Lost
                || self.tally.replicating(observer) == 0
            {
                continue;
            }
            let down = self.tally.service_endpoints_down(observer, service, target);
            let down = usize::try_from(down).unwrap_or(usize::MAX);
            if counts_against(down, endpoints_total, self.policy.endpoints_down_fraction) {
                against += 1;
            } else {
                agree_for += 1;
            }
        }
        self.decide(against, agree_for)
    }

    fn consensus(&self, views: &[ObserverView]) -> Consensus {
        let against = views.iter().filter(|view| view.counts_against).count();
        self.decide(against, views.len() - against)
    }

    fn decide(&self, against: usize, agree_for: usize) -> Consensus {
        let min = usize::try_from(self.policy.observer_sites_min.max(1)).unwrap_or(usize::MAX);
        if against >= min && against > agree_for {
            Consensus::Down
        } else if agree_for >= min && agree_for > against {
            Consensus::Up
        } else {
            Consensus::Undecided
        }
    }
}

/// Whether `down` of `total` endpoints reaches `fraction` (at least one endpoint, always).
fn counts_against(down: usize, total: usize, fraction: f64) -> bool {
    // Endpoint counts are far below 2^52, so the conversions are exact.
    down > 0 && down as f64 >= fraction * total as f64
}

/// `Ok` once `since` is at least `hold` before `at`.
fn check_held(since: Timestamp, hold: std::time::Duration, at: Timestamp) -> Result<(), Blocked> {
    let until = since.after(hold);
    if at >= until {
        Ok(())
    } else {
        Err(Blocked::HoldPending { until })
    }
}
