//! The validated cluster configuration: one value shared by every node of a cluster.
//!
//! `switchyard-spec` builds it from YAML and guarantees the cross-references hold (every node's
//! site exists, every record's service exists, ...), so code working on a `ClusterConfig` may rely
//! on them.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::id::{EndpointId, NodeId, PrincipalName, ProviderId, ServiceId, SiteId, ZoneName};

/// The name of the built-in provider that every node serves itself.
pub const EMBEDDED_PROVIDER: &str = "embedded";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterConfig {
    /// Cluster name; a node refuses a data directory that belongs to another cluster.
    pub name: String,
    /// File holding the shared secret that authenticates node-to-node traffic.
    pub secret_file: PathBuf,
    pub sites: Vec<Site>,
    pub nodes: Vec<Node>,
    pub raft: RaftTimings,
    pub detection: DetectionPolicy,
    pub services: Vec<Service>,
    pub providers: Vec<Provider>,
    pub zones: Vec<Zone>,
    pub safety: SafetyRules,
    pub principals: Vec<Principal>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Site {
    pub id: SiteId,
    /// A witness site runs only a controller: it observes and votes, and has no endpoints.
    pub witness: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub id: NodeId,
    pub site: SiteId,
    /// Address of the node-to-node (Raft) listener.
    pub raft_addr: SocketAddr,
    /// Address of the REST API, metrics and UI listener.
    pub api_addr: SocketAddr,
    /// Address of the embedded authoritative DNS server (UDP and TCP).
    pub dns_addr: SocketAddr,
    /// A voter counts towards the Raft majority; a non-voter only replicates.
    pub voter: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftTimings {
    pub heartbeat_interval: Duration,
    pub election_timeout_min: Duration,
    pub election_timeout_max: Duration,
    /// Build a snapshot every this many applied log entries, then purge the log before it.
    pub snapshot_every: u64,
}

impl Default for RaftTimings {
    /// WAN defaults: a LAN's 50 ms heartbeat would elect new leaders on every transatlantic blip.
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_millis(250),
            election_timeout_min: Duration::from_millis(1500),
            election_timeout_max: Duration::from_millis(3000),
            snapshot_every: 5000,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetectionPolicy {
    pub probe_interval: Duration,
    pub probe_timeout: Duration,
    /// Re-probe interval after a first failure (fast confirmation).
    pub confirm_interval: Duration,
    /// Consecutive successes that turn a `down` verdict `up`.
    pub rise: u32,
    /// Consecutive failures that turn an `up` verdict `down`.
    pub fall: u32,
    /// Fraction of a site's endpoints an observer must see down to count against the site.
    pub endpoints_down_fraction: f64,
    /// How many other, non-lost sites must agree before a site is suspect.
    pub observer_sites_min: u32,
    /// How long the evidence must hold before a suspect site is declared lost.
    pub hold: Duration,
    /// How long a recovering site must stay healthy before it is healthy again.
    pub recover_hold: Duration,
    /// Minimum time between two automatic failovers of the same site.
    pub failover_cooldown: Duration,
    /// Stricter policy: a site whose controller still replicates is `services down`, never `lost`.
    pub lost_requires_controller_down: bool,
}

impl Default for DetectionPolicy {
    fn default() -> Self {
        Self {
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
            confirm_interval: Duration::from_millis(100),
            rise: 2,
            fall: 3,
            endpoints_down_fraction: 1.0,
            observer_sites_min: 1,
            hold: Duration::from_secs(2),
            recover_hold: Duration::from_secs(30),
            failover_cooldown: Duration::from_secs(600),
            lost_requires_controller_down: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub id: ServiceId,
    pub check: HealthCheck,
    pub endpoints: Vec<Endpoint>,
}

impl Service {
    /// The sites where this service has at least one endpoint, in configuration order.
    pub fn sites(&self) -> BTreeSet<SiteId> {
        self.endpoints
            .iter()
            .map(|endpoint| endpoint.site.clone())
            .collect()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: EndpointId,
    pub site: SiteId,
    /// The address served in DNS answers and probed.
    pub address: IpAddr,
    /// The port probed (HTTP, TCP); DNS answers carry only the address.
    pub port: u16,
    /// Relative weight of this endpoint's site when traffic is split (default 1).
    pub weight: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthCheck {
    Http(HttpCheck),
    Tcp,
    Dns(DnsCheck),
}

impl HealthCheck {
    pub fn kind(&self) -> &'static str {
        match self {
            HealthCheck::Http(_) => "http",
            HealthCheck::Tcp => "tcp",
            HealthCheck::Dns(_) => "dns",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpCheck {
    pub method: String,
    pub path: String,
    /// Any of these statuses counts as up.
    pub expected_status: Vec<u16>,
    pub body_contains: Option<String>,
    /// Host header to send; defaults to the endpoint address.
    pub host: Option<String>,
    pub tls: bool,
    /// Verify the server certificate; turning it off must be explicit.
    pub tls_verify: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsCheck {
    /// The name to ask the endpoint (a DNS server) about.
    pub name: String,
    pub record_type: RecordType,
    pub expected_rcode: Rcode,
    /// When set, the answer must contain exactly these addresses.
    pub expected_answer: Option<Vec<IpAddr>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RecordType {
    A,
    #[serde(rename = "AAAA")]
    Aaaa,
}

impl RecordType {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
        }
    }

    /// Whether an address belongs in a record of this type.
    pub fn matches(self, address: IpAddr) -> bool {
        matches!(
            (self, address),
            (RecordType::A, IpAddr::V4(_)) | (RecordType::Aaaa, IpAddr::V6(_))
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rcode {
    Noerror,
    Nxdomain,
    Servfail,
    Refused,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provider {
    pub id: ProviderId,
    pub kind: ProviderKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// Every node serves the zone itself from its replica of the routing state.
    Embedded,
    /// RFC 2136 dynamic updates, signed with TSIG, to an external primary (BIND, Knot).
    Rfc2136 {
        server: SocketAddr,
        tsig_key_file: PathBuf,
        timeout: Duration,
    },
    /// The PowerDNS authoritative server's HTTP API.
    Powerdns {
        api_url: String,
        api_key_file: PathBuf,
        server_id: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Zone {
    pub name: ZoneName,
    pub provider: ProviderId,
    pub records: Vec<Record>,
    /// Servers that answer for the zone, queried by verification. For `embedded` zones these are
    /// the nodes' DNS addresses; for external providers the primary and any listed secondaries.
    pub nameservers: Vec<SocketAddr>,
    /// Recursive resolvers that verification may also ask.
    pub resolvers: Vec<SocketAddr>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Owner name relative to the zone (`www`) or `@` for the apex.
    pub name: String,
    pub record_type: RecordType,
    pub ttl: Duration,
    pub service: ServiceId,
    /// `None` when the configuration does not say; see `FailMode`.
    pub fail_mode: Option<FailMode>,
}

impl Record {
    /// The fully qualified owner name of this record in `zone`.
    pub fn fqdn(&self, zone: &ZoneName) -> String {
        if self.name == "@" {
            zone.to_string()
        } else {
            format!("{}.{}", self.name, zone)
        }
    }
}

/// What a record does when its service would have no site in rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    /// Keep answering: a change that would empty the record is refused.
    Open,
    /// Stop answering (NODATA) when no site is left.
    Closed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SafetyRules {
    /// A routing change may never leave a service in fewer sites than this (unless fail-closed).
    pub min_sites_in_rotation: u32,
}

impl Default for SafetyRules {
    fn default() -> Self {
        Self {
            min_sites_in_rotation: 1,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub name: PrincipalName,
    /// Lowercase hex SHA-256 of the bearer token; the token itself is never stored.
    pub token_sha256: String,
    pub roles: BTreeSet<Role>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads state.
    Viewer,
    /// Authors runbooks and runs executions and drills.
    Operator,
    /// Approves work plans while on shift.
    Approver,
    /// Reads and verifies the audit chain and reports.
    Auditor,
    /// Everything.
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Viewer,
        Role::Operator,
        Role::Approver,
        Role::Auditor,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Approver => "approver",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }
}

impl ClusterConfig {
    pub fn site(&self, id: &SiteId) -> Option<&Site> {
        self.sites.iter().find(|site| &site.id == id)
    }

    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.iter().find(|node| node.id == id)
    }

    pub fn service(&self, id: &ServiceId) -> Option<&Service> {
        self.services.iter().find(|service| &service.id == id)
    }

    pub fn zone(&self, name: &ZoneName) -> Option<&Zone> {
        self.zones.iter().find(|zone| &zone.name == name)
    }

    pub fn provider(&self, id: &ProviderId) -> Option<&Provider> {
        self.providers.iter().find(|provider| &provider.id == id)
    }

    pub fn voters(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|node| node.voter)
    }

    /// Every DNS record bound to `service`, with its zone.
    pub fn records_of<'a>(
        &'a self,
        service: &'a ServiceId,
    ) -> impl Iterator<Item = (&'a Zone, &'a Record)> + 'a {
        self.zones
            .iter()
            .flat_map(|zone| zone.records.iter().map(move |record| (zone, record)))
            .filter(move |(_, record)| &record.service == service)
    }
}
