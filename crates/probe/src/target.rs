//! One thing to probe: an endpoint of a service, its address and the service's health check.

use std::net::SocketAddr;

use switchyard_core::config::{ClusterConfig, HealthCheck};
use switchyard_core::{EndpointId, ServiceId, SiteId};

/// An endpoint together with the check that judges it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub endpoint: EndpointId,
    pub service: ServiceId,
    pub site: SiteId,
    /// Where the probe connects (HTTP, TCP) or sends its query (DNS).
    pub address: SocketAddr,
    pub check: HealthCheck,
}

impl Target {
    /// Every endpoint of every service of every site, in configuration order.
    pub fn all_of(config: &ClusterConfig) -> Vec<Target> {
        config
            .services
            .iter()
            .flat_map(|service| {
                service.endpoints.iter().map(move |endpoint| Target {
                    endpoint: endpoint.id.clone(),
                    service: service.id.clone(),
                    site: endpoint.site.clone(),
                    address: SocketAddr::new(endpoint.address, endpoint.port),
                    check: service.check.clone(),
                })
            })
            .collect()
    }
}
