//! `/v1/routing` bodies: the routing in force with the DNS answers it gives, and routing changes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchyard_core::config::RecordType;
use switchyard_core::id::{ProviderId, ServiceId, SiteId, ZoneName};
use switchyard_core::routing::{RoutingChange, Rrset, RrsetKey};

/// `GET /v1/routing`: the routing in force on the answering node's replica.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingView {
    /// Log index of the last accepted routing change (0 before any).
    pub changed_index: u64,
    /// Log index of the replicated configuration in force (0 before any).
    pub config_index: u64,
    /// SOA serial of the embedded zones: the larger of `changed_index` and `config_index`,
    /// modulo 2^32, so it moves whenever the answers can change and every node agrees on it.
    pub serial: u32,
    /// Sites currently `lost`: never routed to.
    pub lost_sites: Vec<SiteId>,
    pub services: Vec<ServiceRouting>,
    pub zones: Vec<ZoneAnswers>,
}

/// Where one service is routed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRouting {
    pub service: ServiceId,
    /// Sites in rotation, with their weights.
    pub sites: Vec<SiteWeight>,
    /// Sites where the service has endpoints but which are out of rotation.
    pub sites_out: Vec<SiteId>,
    /// Sites of the service that are lost.
    pub lost: Vec<SiteId>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteWeight {
    pub site: SiteId,
    pub weight: u32,
}

/// The RRsets one zone must serve under the routing in force, and who serves them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneAnswers {
    pub zone: ZoneName,
    pub provider: ProviderId,
    /// Served by every node's embedded DNS server (rather than pushed to an external provider).
    pub embedded: bool,
    /// The authoritative servers: the nodes' DNS addresses for embedded zones.
    pub nameservers: Vec<SocketAddr>,
    /// Recursive resolvers that verification may also ask.
    pub resolvers: Vec<SocketAddr>,
    pub rrsets: Vec<RrsetAnswer>,
}

/// One expected RRset. Empty `values` means the name must have no records of this type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RrsetAnswer {
    /// Fully qualified owner name, with the trailing dot.
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: RecordType,
    pub ttl_seconds: u64,
    pub values: Vec<IpAddr>,
}

impl ZoneAnswers {
    /// The expected RRsets in the form verification takes.
    pub fn expected(&self) -> BTreeMap<RrsetKey, Rrset> {
        self.rrsets
            .iter()
            .map(|rrset| {
                (
                    RrsetKey {
                        zone: self.zone.clone(),
                        name: rrset.name.clone(),
                        record_type: rrset.record_type,
                    },
                    Rrset {
                        ttl: Duration::from_secs(rrset.ttl_seconds),
                        values: rrset.values.iter().copied().collect::<BTreeSet<_>>(),
                    },
                )
            })
            .collect()
    }
}

/// `POST /v1/routing/changes`: a routing change and why it is made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRoutingChange {
    pub change: RoutingChangeRequest,
    /// Recorded in the audit chain; must not be empty.
    pub reason: String,
}

/// The same shape as `switchyard_core::routing::RoutingChange`, rejecting unknown fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RoutingChangeRequest {
    /// Take `site` out of rotation for `services`.
    AwayFrom {
        services: Vec<ServiceId>,
        site: SiteId,
    },
    /// Put `site` back in rotation for `services`, with its configured weight.
    Restore {
        services: Vec<ServiceId>,
        site: SiteId,
    },
    /// Route `services` to exactly `sites`.
    To {
        services: Vec<ServiceId>,
        sites: Vec<SiteId>,
    },
}

impl From<RoutingChangeRequest> for RoutingChange {
    fn from(request: RoutingChangeRequest) -> Self {
        match request {
            RoutingChangeRequest::AwayFrom { services, site } => {
                RoutingChange::AwayFrom { services, site }
            }
            RoutingChangeRequest::Restore { services, site } => {
                RoutingChange::Restore { services, site }
            }
            RoutingChangeRequest::To { services, sites } => RoutingChange::To { services, sites },
        }
    }
}

impl From<RoutingChange> for RoutingChangeRequest {
    fn from(change: RoutingChange) -> Self {
        match change {
            RoutingChange::AwayFrom { services, site } => {
                RoutingChangeRequest::AwayFrom { services, site }
            }
            RoutingChange::Restore { services, site } => {
                RoutingChangeRequest::Restore { services, site }
            }
            RoutingChange::To { services, sites } => RoutingChangeRequest::To { services, sites },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_bodies_match_the_core_shape_and_reject_unknown_fields() {
        let body = r#"{"change": {"away_from": {"services": ["www"], "site": "site1"}}, "reason": "drill"}"#;
        let parsed: NewRoutingChange = serde_json::from_str(body).expect("valid body");
        let core: RoutingChange = parsed.change.clone().into();
        assert_eq!(
            core,
            RoutingChange::AwayFrom {
                services: vec![ServiceId::new("www")],
                site: SiteId::new("site1"),
            }
        );
        assert_eq!(
            serde_json::to_value(&core).expect("core serialises"),
            serde_json::to_value(&parsed.change).expect("request serialises")
        );
        for bad in [
            r#"{"change": {"away_from": {"services": ["www"], "site": "site1", "extra": 1}}, "reason": "x"}"#,
            r#"{"change": {"restore": {"services": ["www"], "site": "site1"}}, "reason": "x", "force": true}"#,
            r#"{"change": {"sideways": {"services": ["www"]}}, "reason": "x"}"#,
            r#"{"change": {"to": {"services": ["www"]}}, "reason": "x"}"#,
        ] {
            assert!(
                serde_json::from_str::<NewRoutingChange>(bad).is_err(),
                "accepted {bad}"
            );
        }
    }
}
