//! The simulated cluster and detection policy, all drawn from the seed.

use std::fmt;
use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;
use switchyard_core::config::{
    ClusterConfig, DetectionPolicy, Endpoint, HealthCheck, Node, RaftTimings, SafetyRules, Service,
    Site,
};
use switchyard_core::{EndpointId, NodeId, ServiceId, SiteId};

/// One simulated site.
#[derive(Clone, Debug)]
pub struct SimSite {
    pub id: SiteId,
    pub witness: bool,
    pub nodes: Vec<NodeId>,
    /// Endpoints per service in this site (empty for a witness).
    pub endpoints: Vec<(ServiceId, usize)>,
}

#[derive(Clone, Debug)]
pub struct SimParams {
    pub seed: u64,
    pub sites: Vec<SimSite>,
    pub policy: DetectionPolicy,
    /// The simulated clock's step: `confirm_interval`.
    pub step_ms: u64,
    /// How often the leader asks the detector for due transitions (a multiple of `step_ms`).
    pub leader_timer_ms: u64,
}

impl SimParams {
    /// Draws a cluster of 3 to 7 sites (mostly 3 to 5), at least two of them judged.
    pub fn generate(seed: u64, rng: &mut StdRng) -> Self {
        let site_count = if rng.random_bool(0.15) {
            rng.random_range(6..=7)
        } else {
            rng.random_range(3..=5)
        };
        let witness_count = match site_count {
            3 => rng.random_range(0..=1),
            _ => rng.random_range(0..=2),
        };
        let with_api = rng.random_bool(0.4);
        let mut next_node = 1;
        let mut sites = Vec::new();
        for index in 0..site_count {
            let witness = index >= site_count - witness_count;
            let node_count = if witness { 1 } else { rng.random_range(1..=2) };
            let nodes = (0..node_count)
                .map(|_| {
                    next_node += 1;
                    NodeId(next_node - 1)
                })
                .collect();
            let mut endpoints = Vec::new();
            if !witness {
                endpoints.push((ServiceId::new("www"), rng.random_range(1..=2)));
                if with_api {
                    endpoints.push((ServiceId::new("api"), rng.random_range(1..=2)));
                }
            }
            let name = if witness { "w" } else { "dc" };
            sites.push(SimSite {
                id: SiteId::new(format!("{name}{}", index + 1)),
                witness,
                nodes,
                endpoints,
            });
        }
        let hold_ms = 100 * rng.random_range(10..=30);
        let policy = DetectionPolicy {
            probe_interval: Duration::from_millis(1000),
            probe_timeout: Duration::from_millis(500),
            confirm_interval: Duration::from_millis(100),
            rise: rng.random_range(1..=3),
            fall: rng.random_range(2..=3),
            endpoints_down_fraction: [1.0, 0.5, 0.67][rng.random_range(0..3)],
            observer_sites_min: rng.random_range(1..=2),
            hold: Duration::from_millis(hold_ms),
            recover_hold: Duration::from_millis(100 * rng.random_range(20..=80)),
            failover_cooldown: Duration::from_secs(60),
            lost_requires_controller_down: rng.random_bool(0.2),
        };
        Self {
            seed,
            sites,
            policy,
            step_ms: 100,
            leader_timer_ms: 100 * rng.random_range(1..=5),
        }
    }

    pub fn judged_sites(&self) -> impl Iterator<Item = &SimSite> {
        self.sites.iter().filter(|site| !site.witness)
    }

    pub fn config(&self) -> ClusterConfig {
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], 1));
        let mut services: Vec<Service> = Vec::new();
        for site in &self.sites {
            for (service, count) in &site.endpoints {
                let position = match services.iter().position(|known| &known.id == service) {
                    Some(position) => position,
                    None => {
                        services.push(Service {
                            id: service.clone(),
                            check: HealthCheck::Tcp,
                            endpoints: Vec::new(),
                        });
                        services.len() - 1
                    }
                };
                for ordinal in 1..=*count {
                    services[position].endpoints.push(Endpoint {
                        id: EndpointId::of(service, &site.id, ordinal),
                        site: site.id.clone(),
                        address: address.ip(),
                        port: 80,
                        weight: 1,
                    });
                }
            }
        }
        ClusterConfig {
            name: format!("sim-{}", self.seed),
            secret_file: "secret".into(),
            sites: self
                .sites
                .iter()
                .map(|site| Site {
                    id: site.id.clone(),
                    witness: site.witness,
                })
                .collect(),
            nodes: self
                .sites
                .iter()
                .flat_map(|site| {
                    site.nodes.iter().map(move |node| Node {
                        id: *node,
                        site: site.id.clone(),
                        raft_addr: address,
                        api_addr: address,
                        dns_addr: address,
                        voter: true,
                    })
                })
                .collect(),
            raft: RaftTimings::default(),
            detection: self.policy.clone(),
            services,
            providers: Vec::new(),
            zones: Vec::new(),
            safety: SafetyRules::default(),
            principals: Vec::new(),
        }
    }
}

impl fmt::Display for SimParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "seed {}", self.seed)?;
        for site in &self.sites {
            let nodes: Vec<String> = site.nodes.iter().map(ToString::to_string).collect();
            let endpoints: Vec<String> = site
                .endpoints
                .iter()
                .map(|(service, count)| format!("{service}x{count}"))
                .collect();
            writeln!(
                f,
                "site {}{} nodes=[{}] endpoints=[{}]",
                site.id,
                if site.witness { " (witness)" } else { "" },
                nodes.join(","),
                endpoints.join(",")
            )?;
        }
        let policy = &self.policy;
        writeln!(f, "leader timer {}ms", self.leader_timer_ms)?;
        write!(
            f,
            "policy rise={} fall={} fraction={} observer_sites_min={} hold={:?} recover_hold={:?} \
             lost_requires_controller_down={}",
            policy.rise,
            policy.fall,
            policy.endpoints_down_fraction,
            policy.observer_sites_min,
            policy.hold,
            policy.recover_hold,
            policy.lost_requires_controller_down
        )
    }
}
