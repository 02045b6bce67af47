//! The fault schedule: what goes wrong, where and when, drawn from the seed.

use std::fmt;

use rand::Rng;
use rand::rngs::StdRng;
use switchyard_core::{EndpointId, SiteId};

use crate::params::SimParams;

#[derive(Clone, Debug, PartialEq)]
pub enum FaultKind {
    /// Every endpoint of the site is down; from `controller_down_from` on (if ever) its nodes
    /// stop too (power), possibly some time after the services went.
    SiteLoss {
        site: SiteId,
        controller_down_from: Option<u64>,
    },
    /// The site's nodes can no longer reach any other site's endpoints, but still replicate: an
    /// isolated observer that sees everything else down.
    ObserverIsolated { site: SiteId },
    /// The site's nodes do not replicate (the leader does not hear from them); its services are
    /// fine.
    ControllerPartitioned { site: SiteId },
    /// No leader (an election): nothing commits; nodes keep probing and retry afterwards.
    LeaderElection,
    /// The endpoint alternates `down_ms` down and `up_ms` up.
    Flapping {
        endpoint: EndpointId,
        down_ms: u64,
        up_ms: u64,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    pub kind: FaultKind,
    /// First instant the fault is active.
    pub start: u64,
    /// First instant it is no longer active.
    pub end: u64,
}

impl Fault {
    pub fn active(&self, now: u64) -> bool {
        self.start <= now && now < self.end
    }

    /// Whether the fault is active at any instant of `[from, to]`.
    pub fn overlaps(&self, from: u64, to: u64) -> bool {
        self.start <= to && from < self.end
    }

    /// Whether this fault could by itself mislead observers or remove one: everything but
    /// flapping (which is a true, visible failure of one endpoint).
    pub fn structural(&self) -> bool {
        !matches!(self.kind, FaultKind::Flapping { .. })
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            FaultKind::SiteLoss {
                site,
                controller_down_from: Some(from),
            } => write!(f, "site {site} lost (controller down from {from}ms)")?,
            FaultKind::SiteLoss {
                site,
                controller_down_from: None,
            } => write!(f, "site {site} lost (controller up)")?,
            FaultKind::ObserverIsolated { site } => write!(f, "observer site {site} isolated")?,
            FaultKind::ControllerPartitioned { site } => {
                write!(f, "controller of {site} partitioned")?
            }
            FaultKind::LeaderElection => f.write_str("leader election")?,
            FaultKind::Flapping {
                endpoint,
                down_ms,
                up_ms,
            } => write!(
                f,
                "endpoint {endpoint} flapping {down_ms}ms down/{up_ms}ms up"
            )?,
        }
        write!(f, " from {}ms to {}ms", self.start, self.end)
    }
}

#[derive(Clone, Debug)]
pub struct FaultPlan {
    pub faults: Vec<Fault>,
    /// Probability that a probe fails for no reason; never twice in a row for one (node,
    /// endpoint), so with `fall >= 2` it never flips a verdict on its own.
    pub random_failure_probability: f64,
    /// Faults happen before this instant; afterwards the liveness phase runs without any.
    pub safety_end: u64,
    /// The end of the run.
    pub end: u64,
}

const SAFETY_MS: u64 = 60_000;

impl FaultPlan {
    pub fn generate(params: &SimParams, rng: &mut StdRng) -> Self {
        let judged: Vec<&SiteId> = params.judged_sites().map(|site| &site.id).collect();
        let all: Vec<&SiteId> = params.sites.iter().map(|site| &site.id).collect();
        let endpoints: Vec<EndpointId> = params
            .sites
            .iter()
            .flat_map(|site| {
                site.endpoints.iter().flat_map(move |(service, count)| {
                    (1..=*count).map(move |ordinal| EndpointId::of(service, &site.id, ordinal))
                })
            })
            .collect();
        let mut faults: Vec<Fault> = Vec::new();
        let fault_count = rng.random_range(0..=4);
        for _ in 0..fault_count {
            let start = 100 * rng.random_range(20..=480);
            let end = (start + 100 * rng.random_range(20..=200)).min(SAFETY_MS);
            let mut end = end;
            let kind = match rng.random_range(0..11) {
                0..=3 => FaultKind::SiteLoss {
                    site: judged[rng.random_range(0..judged.len())].clone(),
                    controller_down_from: match rng.random_range(0..4) {
                        0 | 1 => None,
                        2 => Some(start),
                        _ => Some(start + 100 * rng.random_range(0..(end - start) / 100)),
                    },
                },
                4..=5 => FaultKind::ObserverIsolated {
                    site: all[rng.random_range(0..all.len())].clone(),
                },
                6 => FaultKind::ControllerPartitioned {
                    site: all[rng.random_range(0..all.len())].clone(),
                },
                7 => {
                    // Elections take one to a few election timeouts.
                    end = (start + 100 * rng.random_range(15..=60)).min(SAFETY_MS);
                    FaultKind::LeaderElection
                }
                _ => FaultKind::Flapping {
                    endpoint: endpoints[rng.random_range(0..endpoints.len())].clone(),
                    down_ms: 100 * rng.random_range(2..=25),
                    up_ms: 100 * rng.random_range(5..=40),
                },
            };
            let fault = Fault { kind, start, end };
            // One isolated observer at a time: that is the fault detection promises to tolerate.
            let second_isolation = matches!(fault.kind, FaultKind::ObserverIsolated { .. })
                && faults.iter().any(|other| {
                    matches!(other.kind, FaultKind::ObserverIsolated { .. })
                        && other.overlaps(fault.start, fault.end)
                });
            if !second_isolation {
                faults.push(fault);
            }
        }
        faults.sort_by_key(|fault| fault.start);
        let random_failure_probability = [0.0, 0.01, 0.05, 0.1][rng.random_range(0..4)];
        let policy = &params.policy;
        let settle = u64::from(policy.rise + 3) * 1000
            + duration_ms(policy.hold)
            + duration_ms(policy.recover_hold)
            + 3000;
        Self {
            faults,
            random_failure_probability,
            safety_end: SAFETY_MS,
            end: SAFETY_MS + settle,
        }
    }

    pub fn active(&self, now: u64) -> impl Iterator<Item = &Fault> {
        self.faults.iter().filter(move |fault| fault.active(now))
    }

    /// Whether every endpoint of `site`'s services is down because the whole site is.
    pub fn site_lost(&self, site: &SiteId, now: u64) -> Option<&Fault> {
        self.active(now).find(
            |fault| matches!(&fault.kind, FaultKind::SiteLoss { site: lost, .. } if lost == site),
        )
    }

    /// Whether the site's controller nodes are running (not powered off with the site).
    pub fn nodes_running(&self, site: &SiteId, now: u64) -> bool {
        !self.active(now).any(|fault| {
            matches!(&fault.kind,
                FaultKind::SiteLoss { site: lost, controller_down_from: Some(from) }
                    if lost == site && *from <= now)
        })
    }

    /// Whether the site's nodes replicate: running, and not partitioned away.
    pub fn nodes_reachable(&self, site: &SiteId, now: u64) -> bool {
        self.nodes_running(site, now)
            && !self.active(now).any(|fault| {
                matches!(&fault.kind,
                    FaultKind::ControllerPartitioned { site: cut } if cut == site)
            })
    }

    /// Whether no leader exists at `now`, so that nothing commits.
    pub fn leaderless(&self, now: u64) -> bool {
        self.active(now)
            .any(|fault| matches!(fault.kind, FaultKind::LeaderElection))
    }

    /// Whether the endpoint truly serves at `now`.
    pub fn endpoint_up(&self, endpoint: &EndpointId, site: &SiteId, now: u64) -> bool {
        self.site_lost(site, now).is_none()
            && !self.active(now).any(|fault| match &fault.kind {
                FaultKind::Flapping {
                    endpoint: flapping,
                    down_ms,
                    up_ms,
                } => flapping == endpoint && (now - fault.start) % (down_ms + up_ms) < *down_ms,
                _ => false,
            })
    }

    /// Whether a probe from a node in `observer` to an endpoint in `target` is cut off.
    pub fn probe_blocked(&self, observer: &SiteId, target: &SiteId, now: u64) -> bool {
        observer != target
            && self.active(now).any(|fault| {
                matches!(&fault.kind, FaultKind::ObserverIsolated { site } if site == observer)
            })
    }
}

pub fn duration_ms(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
