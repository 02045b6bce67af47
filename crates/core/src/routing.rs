//! Routing: which sites are in rotation for each service, the DNS answers derived from it, and
//! the safety rules every change must pass.
//!
//! The same check runs when a change is proposed and again when it is applied (pair assertions),
//! so a change that was safe when planned but no longer is (a site was lost meanwhile) is refused.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{ClusterConfig, FailMode, RecordType};
use crate::id::{ServiceId, SiteId, ZoneName};

/// For each service, the sites in rotation and their weights.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routing {
    pub services: BTreeMap<ServiceId, BTreeMap<SiteId, u32>>,
}

/// A routing change, resolved to concrete sites.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoutingChange {
    AwayFrom {
        services: Vec<ServiceId>,
        site: SiteId,
    },
    Restore {
        services: Vec<ServiceId>,
        site: SiteId,
    },
    To {
        services: Vec<ServiceId>,
        sites: Vec<SiteId>,
    },
}

/// Why a routing change was refused. Each names the rule that refused it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum SafetyViolation {
    #[error(
        "rule min_sites_in_rotation: service `{service}` would be left in {remaining} site(s), fewer than {min}"
    )]
    TooFewSites {
        service: ServiceId,
        remaining: usize,
        min: u32,
    },
    #[error(
        "rule never_route_to_lost_site: service `{service}` would be routed to lost site `{site}`"
    )]
    LostSite { service: ServiceId, site: SiteId },
    #[error("unknown service `{service}`")]
    UnknownService { service: ServiceId },
    #[error("service `{service}` has no endpoint in site `{site}`")]
    NoEndpointInSite { service: ServiceId, site: SiteId },
}

impl Routing {
    /// Every service in rotation in every site where it has endpoints, with their weights.
    pub fn initial(config: &ClusterConfig) -> Self {
        let mut services = BTreeMap::new();
        for service in &config.services {
            let mut sites = BTreeMap::new();
            for endpoint in &service.endpoints {
                sites
                    .entry(endpoint.site.clone())
                    .or_insert(endpoint.weight);
            }
            services.insert(service.id.clone(), sites);
        }
        Self { services }
    }

    pub fn sites_of(&self, service: &ServiceId) -> BTreeSet<SiteId> {
        self.services
            .get(service)
            .map(|sites| sites.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The routing after `change`, checked against the safety rules with `lost` sites excluded.
    pub fn with_change(
        &self,
        config: &ClusterConfig,
        change: &RoutingChange,
        lost: &BTreeSet<SiteId>,
    ) -> Result<Routing, Vec<SafetyViolation>> {
        let mut next = self.clone();
        let mut violations = Vec::new();
        let services = match change {
            RoutingChange::AwayFrom { services, .. }
            | RoutingChange::Restore { services, .. }
            | RoutingChange::To { services, .. } => services,
        };
        for service in services {
            if config.service(service).is_none() {
                violations.push(SafetyViolation::UnknownService {
                    service: service.clone(),
                });
                continue;
            }
            let sites = next.services.entry(service.clone()).or_default();
            let applied = match change {
                RoutingChange::AwayFrom { site, .. } => {
                    sites.remove(site);
                    Ok(())
                }
                RoutingChange::Restore { site, .. } => {
                    weight_in(config, service, site).map(|weight| {
                        sites.insert(site.clone(), weight);
                    })
                }
                RoutingChange::To { sites: targets, .. } => {
                    sites.clear();
                    targets.iter().try_for_each(|site| {
                        weight_in(config, service, site).map(|weight| {
                            sites.insert(site.clone(), weight);
                        })
                    })
                }
            };
            if let Err(violation) = applied {
                violations.push(violation);
            }
        }
        // Never route to a lost site: a change may not name one as a site to put (or keep) in
        // rotation. Moving away from one site while another lost site is still in rotation is
        // allowed, so two sites lost at once can be evacuated one after the other.
        let named: &[SiteId] = match change {
            RoutingChange::AwayFrom { .. } => &[],
            RoutingChange::Restore { site, .. } => std::slice::from_ref(site),
            RoutingChange::To { sites, .. } => sites,
        };
        for site in named.iter().filter(|site| lost.contains(*site)) {
            for service in services {
                violations.push(SafetyViolation::LostSite {
                    service: service.clone(),
                    site: site.clone(),
                });
            }
        }
        violations.extend(next.violations(config, services));
        if violations.is_empty() {
            Ok(next)
        } else {
            Err(violations)
        }
    }

    /// The rule on how many sites stay in rotation, checked for `services`: enough of them unless
    /// every record of the service is fail-closed.
    pub fn violations(
        &self,
        config: &ClusterConfig,
        services: &[ServiceId],
    ) -> Vec<SafetyViolation> {
        let mut violations = Vec::new();
        for service in services {
            let sites = self.sites_of(service);
            let fail_closed = config
                .records_of(service)
                .all(|(_, record)| record.fail_mode == Some(FailMode::Closed))
                && config.records_of(service).next().is_some();
            let min = config.safety.min_sites_in_rotation;
            if !fail_closed && sites.len() < min as usize {
                violations.push(SafetyViolation::TooFewSites {
                    service: service.clone(),
                    remaining: sites.len(),
                    min,
                });
            }
        }
        violations
    }

    /// The DNS answers this routing gives, for every record of every zone.
    pub fn answers(&self, config: &ClusterConfig) -> BTreeMap<RrsetKey, Rrset> {
        let mut answers = BTreeMap::new();
        for zone in &config.zones {
            for record in &zone.records {
                let sites = self.sites_of(&record.service);
                let values = config
                    .service(&record.service)
                    .into_iter()
                    .flat_map(|service| service.endpoints.iter())
                    .filter(|endpoint| {
                        sites.contains(&endpoint.site)
                            && record.record_type.matches(endpoint.address)
                    })
                    .map(|endpoint| endpoint.address)
                    .collect();
                let key = RrsetKey {
                    zone: zone.name.clone(),
                    name: record.fqdn(&zone.name),
                    record_type: record.record_type,
                };
                answers.insert(
                    key,
                    Rrset {
                        ttl: record.ttl,
                        values,
                    },
                );
            }
        }
        answers
    }
}

fn weight_in(
    config: &ClusterConfig,
    service: &ServiceId,
    site: &SiteId,
) -> Result<u32, SafetyViolation> {
    config
        .service(service)
        .and_then(|found| {
            found
                .endpoints
                .iter()
                .find(|endpoint| &endpoint.site == site)
        })
        .map(|endpoint| endpoint.weight)
        .ok_or_else(|| SafetyViolation::NoEndpointInSite {
            service: service.clone(),
            site: site.clone(),
        })
}

/// One RRset's identity: zone, fully qualified owner name and type.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RrsetKey {
    pub zone: ZoneName,
    pub name: String,
    pub record_type: RecordType,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rrset {
    pub ttl: Duration,
    pub values: BTreeSet<IpAddr>,
}

/// How one RRset changes between two routings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RrsetDiff {
    pub key: RrsetKey,
    pub ttl: Duration,
    pub before: BTreeSet<IpAddr>,
    pub after: BTreeSet<IpAddr>,
}

/// The RRsets whose values differ between `before` and `after`.
pub fn diff_answers(
    before: &BTreeMap<RrsetKey, Rrset>,
    after: &BTreeMap<RrsetKey, Rrset>,
) -> Vec<RrsetDiff> {
    after
        .iter()
        .filter_map(|(key, rrset)| {
            let old = before
                .get(key)
                .map(|old| old.values.clone())
                .unwrap_or_default();
            (old != rrset.values).then(|| RrsetDiff {
                key: key.clone(),
                ttl: rrset.ttl,
                before: old,
                after: rrset.values.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ClusterConfig {
        // The state machine's test configuration: www in alpha, beta and gamma, fail-open.
        crate::state::test_config()
    }

    #[test]
    fn a_lost_site_is_never_put_back_into_rotation() {
        let config = config();
        let routing = Routing::initial(&config);
        let www = ServiceId::new("www");
        let alpha = SiteId::new("alpha");
        let away = RoutingChange::AwayFrom {
            services: vec![www.clone()],
            site: alpha.clone(),
        };
        let lost = BTreeSet::from([alpha.clone()]);
        let evacuated = routing
            .with_change(&config, &away, &lost)
            .expect("moving away from a lost site is safe");
        let restore = RoutingChange::Restore {
            services: vec![www.clone()],
            site: alpha.clone(),
        };
        let refused = evacuated
            .with_change(&config, &restore, &lost)
            .expect_err("alpha is lost");
        assert_eq!(
            refused,
            vec![SafetyViolation::LostSite {
                service: www,
                site: alpha
            }]
        );
        assert!(
            refused[0]
                .to_string()
                .starts_with("rule never_route_to_lost_site")
        );
    }

    #[test]
    fn two_sites_lost_at_once_are_evacuated_one_after_the_other() {
        let config = config();
        let www = ServiceId::new("www");
        let lost = BTreeSet::from([SiteId::new("alpha"), SiteId::new("beta")]);
        let away = |site: &str| RoutingChange::AwayFrom {
            services: vec![www.clone()],
            site: SiteId::new(site),
        };
        let first = Routing::initial(&config)
            .with_change(&config, &away("alpha"), &lost)
            .expect("away from alpha");
        let second = first
            .with_change(&config, &away("beta"), &lost)
            .expect("then away from beta");
        assert_eq!(
            second.sites_of(&www),
            BTreeSet::from([SiteId::new("gamma")])
        );
        let to_lost = RoutingChange::To {
            services: vec![www.clone()],
            sites: vec![SiteId::new("beta"), SiteId::new("gamma")],
        };
        let refused = second
            .with_change(&config, &to_lost, &lost)
            .expect_err("beta is lost");
        assert_eq!(
            refused,
            vec![SafetyViolation::LostSite {
                service: www,
                site: SiteId::new("beta")
            }]
        );
    }

    #[test]
    fn answers_follow_the_sites_in_rotation() {
        let config = config();
        let www = ServiceId::new("www");
        let away = RoutingChange::AwayFrom {
            services: vec![www],
            site: SiteId::new("beta"),
        };
        let before = Routing::initial(&config).answers(&config);
        let after = Routing::initial(&config)
            .with_change(&config, &away, &BTreeSet::new())
            .expect("safe")
            .answers(&config);
        let diff = diff_answers(&before, &after);
        assert_eq!(diff.len(), 1);
        assert_eq!(diff[0].key.name, "www.test.example.");
        let addresses: Vec<String> = diff[0].after.iter().map(ToString::to_string).collect();
        assert_eq!(addresses, ["127.0.1.1", "127.0.3.1"]);
    }
}
