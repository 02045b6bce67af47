//! [`LeaderDuty`]: what only the leader does for detection. Every `confirm_interval` it asks
//! its replica's detector which site transitions, then which per-service transitions, are due and
//! proposes them (apply re-checks each: the pair check), and it proposes a `ControllerContact`
//! whenever a member's reachability differs from the replicated one.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use switchyard_core::detection::{
    ControllerContact, DetectionInput, ServiceTransition, SiteTransition,
};
use switchyard_core::id::{NodeId, SiteId};
use switchyard_core::state::{Actor, Command, CommandKind, Outcome};
use switchyard_raft::{RaftStatus, Role};

use crate::clock::now;
use crate::node::NodeContext;

/// Used until the replicated configuration says otherwise.
const CONFIRM_INTERVAL_DEFAULT: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub struct LeaderDuty {
    pub context: NodeContext,
}

/// The replicated timings the duty works with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Timings {
    confirm_interval: Duration,
    /// A member not heard from for longer is unreachable.
    contact_timeout: Duration,
    /// After winning an election, how long to wait before declaring anyone unreachable: a new
    /// leader has not yet exchanged RPCs with every member.
    election_grace: Duration,
}

impl LeaderDuty {
    pub async fn run(self) -> anyhow::Result<()> {
        let shutdown = &self.context.shutdown;
        let mut period = CONFIRM_INTERVAL_DEFAULT;
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The term this node leads and since when, to give a new leader its grace.
        let mut leading: Option<(u64, Instant)> = None;
        while !shutdown.is_cancelled() {
            tokio::select! {
                _ = interval.tick() => {}
                () = shutdown.cancelled() => break,
            }
            let status = self.context.raft.status();
            if status.role != Role::Leader {
                leading = None;
                continue;
            }
            let Some(timings) = self.timings() else {
                continue;
            };
            if timings.confirm_interval != period {
                period = timings.confirm_interval.max(Duration::from_millis(10));
                interval = tokio::time::interval(period);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            }
            let elected_at = match leading {
                Some((term, at)) if term == status.term => at,
                _ => {
                    let at = Instant::now();
                    leading = Some((status.term, at));
                    at
                }
            };
            let judge_unreachable = elected_at.elapsed() >= timings.election_grace;
            self.propose_contacts(&status, timings.contact_timeout, judge_unreachable)
                .await;
            if self.propose_transitions().await {
                self.propose_service_transitions().await;
            }
        }
        Ok(())
    }

    fn timings(&self) -> Option<Timings> {
        self.context.raft.read_state(|state| {
            let config = &state.config()?.config;
            let raft = &config.raft;
            Some(Timings {
                confirm_interval: config.detection.confirm_interval,
                contact_timeout: (raft.heartbeat_interval * 3).max(raft.election_timeout_min),
                election_grace: raft.election_timeout_max,
            })
        })
    }

    /// Proposes a contact change for every node whose reachability, as this leader sees it,
    /// differs from the replicated one. This leader itself is always reachable.
    async fn propose_contacts(
        &self,
        status: &RaftStatus,
        contact_timeout: Duration,
        judge_unreachable: bool,
    ) {
        let timeout_ms = u64::try_from(contact_timeout.as_millis()).unwrap_or(u64::MAX);
        let changes: Vec<(NodeId, bool)> = self.context.raft.read_state(|state| {
            let (Some(config), Some(detector)) = (state.config(), state.detector()) else {
                return Vec::new();
            };
            // Contact only weighs verdicts and evidence: without endpoints there is nothing
            // to judge, and the log stays free of changes nobody can use.
            if detector.topology().endpoint_sites.is_empty() {
                return Vec::new();
            }
            config
                .config
                .nodes
                .iter()
                .filter_map(|node| {
                    let reachable = node.id == self.context.node
                        || status
                            .members
                            .iter()
                            .find(|member| member.node_id == node.id)
                            .and_then(|member| member.last_contact_ms)
                            .is_some_and(|since| since <= timeout_ms);
                    let recorded = detector.node_reachable(node.id);
                    let change = reachable != recorded && (reachable || judge_unreachable);
                    change.then_some((node.id, reachable))
                })
                .collect()
        });
        for (node, reachable) in changes {
            let input = DetectionInput::ControllerContact(ControllerContact {
                node,
                reachable,
                at: now(),
            });
            match self.propose(input).await {
                Ok(()) => tracing::info!(%node, reachable, "controller contact changed"),
                Err(()) => return,
            }
        }
    }

    /// Proposes every transition due now on this replica, one site at a time: each is
    /// recomputed after the previous one applied, since a site entering or leaving `lost`
    /// changes the observers of the others (a batch computed up front would go stale and be
    /// refused, and every refusal is an audit entry). `false` when a proposal failed: the round
    /// stops there.
    async fn propose_transitions(&self) -> bool {
        let at = now();
        let mut done: BTreeSet<SiteId> = BTreeSet::new();
        let site_count = self.context.raft.read_state(|state| {
            state
                .detector()
                .map_or(0, |detector| detector.sites().len())
        });
        for _ in 0..site_count {
            let next: Option<SiteTransition> = self.context.raft.read_state(|state| {
                state.detector().and_then(|detector| {
                    detector
                        .propose(at)
                        .into_iter()
                        .find(|transition| !done.contains(&transition.site))
                })
            });
            let Some(transition) = next else {
                return true;
            };
            let site = transition.site.clone();
            let (from, to) = (transition.from, transition.to);
            let evidence = transition.evidence.to_string();
            done.insert(site.clone());
            match self
                .propose(DetectionInput::SiteTransition(transition))
                .await
            {
                Ok(()) => tracing::info!(
                    %site,
                    from = from.as_str(),
                    to = to.as_str(),
                    %evidence,
                    "site transition committed"
                ),
                Err(()) => return false,
            }
        }
        true
    }

    /// Proposes every per-service transition due now, after the site transitions (a service is
    /// judged on its own only while its site is healthy). They do not change observers, so one
    /// batch computed up front stays valid.
    async fn propose_service_transitions(&self) {
        let at = now();
        let due: Vec<ServiceTransition> = self.context.raft.read_state(|state| {
            state
                .detector()
                .map(|detector| detector.propose_services(at))
                .unwrap_or_default()
        });
        for transition in due {
            let (service, site) = (transition.service.clone(), transition.site.clone());
            let (from, to) = (transition.from, transition.to);
            let evidence = transition.evidence.to_string();
            match self
                .propose(DetectionInput::ServiceTransition(transition))
                .await
            {
                Ok(()) => tracing::info!(
                    %service,
                    %site,
                    from = from.as_str(),
                    to = to.as_str(),
                    %evidence,
                    "service transition committed"
                ),
                Err(()) => return,
            }
        }
    }

    /// Proposes one input from this node. `Err` means stop this round: the proposal was
    /// refused by the state machine (it is recomputed next round) or could not commit.
    async fn propose(&self, input: DetectionInput) -> Result<(), ()> {
        let command = Command {
            time: now(),
            actor: Actor::Node(self.context.node),
            kind: CommandKind::Detection(input),
        };
        match self.context.raft.propose(command).await {
            Ok(applied) => match applied.outcome {
                Outcome::Accepted => Ok(()),
                Outcome::Rejected(rejection) => {
                    tracing::debug!(%rejection, "detection proposal refused; proposing afresh next round");
                    Err(())
                }
            },
            Err(error) => {
                tracing::debug!(%error, "cannot commit a detection proposal");
                Err(())
            }
        }
    }
}
