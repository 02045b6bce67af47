//! Who observes what: the sites, their nodes and their endpoints, indexed for detection.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::config::ClusterConfig;
use crate::id::{EndpointId, NodeId, ServiceId, SiteId};

/// One site as detection sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteMembers {
    /// A witness site observes but is never judged: it has no endpoints.
    pub witness: bool,
    /// The controller nodes in the site: they observe every other site.
    pub nodes: BTreeSet<NodeId>,
    /// Every endpoint of every service in the site: the site is judged on these.
    pub endpoints: BTreeSet<EndpointId>,
}

/// The cluster's sites, nodes and endpoints, derived once from the configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    pub sites: BTreeMap<SiteId, SiteMembers>,
    pub node_sites: BTreeMap<NodeId, SiteId>,
    pub endpoint_sites: BTreeMap<EndpointId, SiteId>,
    /// For each service, its endpoints in each site.
    pub services: BTreeMap<ServiceId, BTreeMap<SiteId, BTreeSet<EndpointId>>>,
    /// The service of each endpoint.
    #[serde(default)]
    pub endpoint_services: BTreeMap<EndpointId, ServiceId>,
}

impl Topology {
    pub fn from_config(config: &ClusterConfig) -> Self {
        let mut topology = Topology::default();
        for site in &config.sites {
            topology.sites.insert(
                site.id.clone(),
                SiteMembers {
                    witness: site.witness,
                    ..SiteMembers::default()
                },
            );
        }
        for node in &config.nodes {
            topology.node_sites.insert(node.id, node.site.clone());
            topology
                .sites
                .entry(node.site.clone())
                .or_default()
                .nodes
                .insert(node.id);
        }
        for service in &config.services {
            let per_site = topology.services.entry(service.id.clone()).or_default();
            for endpoint in &service.endpoints {
                per_site
                    .entry(endpoint.site.clone())
                    .or_default()
                    .insert(endpoint.id.clone());
                topology
                    .endpoint_sites
                    .insert(endpoint.id.clone(), endpoint.site.clone());
                topology
                    .endpoint_services
                    .insert(endpoint.id.clone(), service.id.clone());
                topology
                    .sites
                    .entry(endpoint.site.clone())
                    .or_default()
                    .endpoints
                    .insert(endpoint.id.clone());
            }
        }
        topology
    }

    /// The sites that can be judged: every site that is not a witness.
    pub fn judged_sites(&self) -> impl Iterator<Item = &SiteId> {
        self.sites
            .iter()
            .filter(|(_, members)| !members.witness)
            .map(|(site, _)| site)
    }
}
