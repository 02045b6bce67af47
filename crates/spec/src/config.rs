//! Reads and checks a cluster configuration: YAML node tree → `switchyard_core::config`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use switchyard_core::config::{
    ClusterConfig, DetectionPolicy, DnsCheck, EMBEDDED_PROVIDER, Endpoint, FailMode, HealthCheck,
    HttpCheck, Node as ClusterNode, Principal, Provider, ProviderKind, RaftTimings, Rcode, Record,
    RecordType, Role, SafetyRules, Service, Site, Zone,
};
use switchyard_core::id::{
    EndpointId, NodeId, PrincipalName, ProviderId, ServiceId, SiteId, ZoneName,
};

use crate::names::{self, fmt_duration};
use crate::reader::{Cx, Map, quote, suggestion};
use crate::yaml::{Node, Pos};

/// TTLs above this delay failover for clients noticeably: warn.
const TTL_WARN_ABOVE: Duration = Duration::from_secs(300);
/// DNS TTLs are 32-bit seconds, but anything beyond a day defeats the purpose of failover.
const TTL_MAX: Duration = Duration::from_secs(86_400);
const RECORD_TYPES: [&str; 2] = ["A", "AAAA"];
const ROLE_NAMES: [&str; 5] = ["viewer", "operator", "approver", "auditor", "admin"];

/// A value read from a mapping, kept with the mapping for the positions of its keys.
struct Item<'n, T> {
    value: T,
    map: Map<'n>,
}

/// The items of one list that could be read, with what the cross-checks need of the others.
struct Section<'n, T> {
    /// Items read without any problem.
    items: Vec<Item<'n, T>>,
    /// The id of every item whose id could be read, even if something else in it is wrong,
    /// so that references to it and duplicates of it are still checked.
    ids: Vec<(String, Pos)>,
    /// How many items the list has.
    count: usize,
}

impl<T> Section<'_, T> {
    fn new(count: usize) -> Self {
        Self {
            items: Vec::new(),
            ids: Vec::new(),
            count,
        }
    }

    /// Whether every item could be read: checks over the whole list only make sense then.
    fn complete(&self) -> bool {
        self.items.len() == self.count
    }

    fn names(&self) -> Vec<String> {
        self.ids.iter().map(|(id, _)| id.clone()).collect()
    }
}

/// Reads the whole configuration; `None` when anything is wrong (every problem is in `cx`).
pub(crate) fn read(cx: &mut Cx, root: &Node, base: &Path) -> Option<ClusterConfig> {
    let top = cx.map(root, "")?;

    let cluster = cx
        .required(&top, "cluster")
        .and_then(|node| read_cluster(cx, node, base));
    let sites = read_sites(cx, &top);
    let site_names = sites.names();
    let nodes = read_nodes(cx, &top, &site_names);
    let raft = read_raft(cx, &top);
    let detection = read_detection(cx, &top, sites.count);
    let services = read_services(cx, &top, &sites.items, &site_names);
    let providers = read_providers(cx, &top, base);
    let (zones, zone_providers) = read_zones(cx, &top, &providers.names(), &services, &nodes.items);
    let safety = read_safety(cx, &top);
    let principals = read_principals(cx, &top);

    // Checks over whole lists would only repeat earlier problems when an item is missing.
    if sites.complete() && nodes.complete() {
        check_nodes(cx, &top, &sites.items, &nodes.items);
        if let Some(detection) = &detection
            && services.complete()
        {
            check_observers(cx, &sites.items, &nodes.items, &services.items, detection);
        }
    }
    check_providers_used(cx, &providers.items, &zone_providers);
    if let Some(safety) = &safety {
        check_min_sites(cx, &services.items, safety);
    }

    if cx.sink.has_errors() {
        return None;
    }
    let (name, secret_file) = cluster?;
    let mut all_providers = vec![Provider {
        id: ProviderId::new(EMBEDDED_PROVIDER),
        kind: ProviderKind::Embedded,
    }];
    all_providers.extend(providers.items.into_iter().map(|item| item.value));
    Some(ClusterConfig {
        name,
        secret_file,
        sites: sites.items.into_iter().map(|item| item.value).collect(),
        nodes: nodes.items.into_iter().map(|item| item.value).collect(),
        raft: raft?,
        detection: detection?,
        services: services.items.into_iter().map(|item| item.value).collect(),
        providers: all_providers,
        zones: zones.into_iter().map(|item| item.value).collect(),
        safety: safety?,
        principals: principals
            .items
            .into_iter()
            .map(|item| item.value)
            .collect(),
    })
}

fn read_cluster(cx: &mut Cx, node: &Node, base: &Path) -> Option<(String, std::path::PathBuf)> {
    let map = cx.map(node, "cluster")?;
    let name = cx
        .required(&map, "name")
        .and_then(|node| cx.id(node, "name", "cluster name"));
    let secret_file = cx
        .required(&map, "secret_file")
        .and_then(|node| cx.path(node, "secret_file", base));
    Some((name?, secret_file?))
}

/// Reads the items of a required or optional list of mappings at `key`.
fn items<'n>(cx: &mut Cx, top: &Map<'n>, key: &str, required: bool) -> &'n [Node] {
    let node = if required {
        cx.required(top, key)
    } else {
        cx.optional(top, key)
    };
    node.and_then(|node| cx.list(node, key)).unwrap_or(&[])
}

/// Reads a reference to a named thing (`unknown site ...` with a suggestion when missing).
fn reference(cx: &mut Cx, node: &Node, key: &str, what: &str, names: &[String]) -> Option<String> {
    let name = cx.text(node, key)?;
    if names.contains(&name) {
        return Some(name);
    }
    let candidates: Vec<&str> = names.iter().map(String::as_str).collect();
    let report = cx
        .sink
        .error(node.pos, format!("unknown {what} {}", quote(&name)));
    if candidates.is_empty() {
        report.hint(format!("no {what} is declared"));
    } else {
        report.hint(suggestion(&name, &candidates));
    }
    None
}

fn read_sites<'n>(cx: &mut Cx, top: &Map<'n>) -> Section<'n, Site> {
    let list = items(cx, top, "sites", true);
    if list.is_empty() && top.get("sites").is_some() {
        cx.sink
            .error(top.at("sites"), "`sites` is empty")
            .hint("declare at least the sites the nodes run in: `- { id: alpha }`");
    }
    let mut section = Section::new(list.len());
    for node in list {
        let Some(map) = cx.map(node, "sites[]") else {
            continue;
        };
        let id = cx
            .required(&map, "id")
            .and_then(|node| cx.id(node, "id", "site id"));
        let witness = match cx.optional(&map, "witness") {
            Some(node) => cx.bool(node, "witness"),
            None => Some(false),
        };
        if let Some(id) = &id {
            section.ids.push((id.clone(), map.at("id")));
        }
        if let (Some(id), Some(witness)) = (id, witness) {
            section.items.push(Item {
                value: Site {
                    id: SiteId::new(id),
                    witness,
                },
                map,
            });
        }
    }
    cx.no_duplicates(&section.ids, "site", Clone::clone);
    section
}

/// An address other machines connect to: an unspecified address (0.0.0.0, ::) cannot be one.
fn reachable_addr(cx: &mut Cx, node: &Node, key: &str) -> Option<SocketAddr> {
    let address = cx.socket_addr(node, key)?;
    if address.ip().is_unspecified() {
        cx.sink
            .error(
                node.pos,
                format!("`{key}`: {address} is not an address others can reach"),
            )
            .hint("give the address this node is reached at, like 127.0.0.1:7101");
        return None;
    }
    Some(address)
}

fn read_nodes<'n>(cx: &mut Cx, top: &Map<'n>, site_names: &[String]) -> Section<'n, ClusterNode> {
    let list = items(cx, top, "nodes", true);
    let mut section = Section::new(list.len());
    let mut node_ids: Vec<(u64, Pos)> = Vec::new();
    // Every listener of every node needs its own address: the DNS server takes UDP and TCP,
    // so even a DNS and a Raft listener cannot share one.
    let mut addresses: Vec<(SocketAddr, String, &str)> = Vec::new();
    for node in list {
        let Some(map) = cx.map(node, "nodes[]") else {
            continue;
        };
        let id = cx
            .required(&map, "id")
            .and_then(|node| cx.integer(node, "id", 1, u64::MAX));
        if let Some(id) = id {
            node_ids.push((id, map.at("id")));
        }
        let site = cx
            .required(&map, "site")
            .and_then(|node| reference(cx, node, "site", "site", site_names));
        let owner = match id {
            Some(id) => format!("node {id}"),
            None => format!("the node at line {}", map.pos().line),
        };
        let mut listener = |cx: &mut Cx, key: &'static str| {
            let address = cx
                .required(&map, key)
                .and_then(|node| reachable_addr(cx, node, key))?;
            if let Some((_, other_owner, other_key)) =
                addresses.iter().find(|(seen, _, _)| *seen == address)
            {
                cx.sink.error(
                    map.at(key),
                    format!("address {address} is already the {other_key} of {other_owner}"),
                );
                return None;
            }
            addresses.push((address, owner.clone(), key));
            Some(address)
        };
        let raft_addr = listener(cx, "raft_addr");
        let api_addr = listener(cx, "api_addr");
        let dns_addr = listener(cx, "dns_addr");
        let voter = match cx.optional(&map, "voter") {
            Some(node) => cx.bool(node, "voter"),
            None => Some(true),
        };
        if let (
            Some(id),
            Some(site),
            Some(raft_addr),
            Some(api_addr),
            Some(dns_addr),
            Some(voter),
        ) = (id, site, raft_addr, api_addr, dns_addr, voter)
        {
            section.items.push(Item {
                value: ClusterNode {
                    id: NodeId(id),
                    site: SiteId::new(site),
                    raft_addr,
                    api_addr,
                    dns_addr,
                    voter,
                },
                map,
            });
        }
    }
    cx.no_duplicates(&node_ids, "node id", |id| *id);
    section
}

fn check_nodes(
    cx: &mut Cx,
    top: &Map<'_>,
    sites: &[Item<'_, Site>],
    nodes: &[Item<'_, ClusterNode>],
) {
    if top.get("nodes").is_none() {
        return;
    }
    let voters: Vec<&ClusterNode> = nodes
        .iter()
        .map(|item| &item.value)
        .filter(|node| node.voter)
        .collect();
    let count = voters.len();
    if count < 3 {
        cx.sink
            .error(
                top.at("nodes"),
                format!("only {count} voting node{}; a cluster needs at least 3", plural(count)),
            )
            .hint("with 3 voters in 3 sites (two datacenters and a witness will do), the cluster survives the loss of any one site");
    } else if count.is_multiple_of(2) {
        cx.sink
            .warning(
                top.at("nodes"),
                format!(
                    "{count} voting nodes: an even number tolerates no more failures than {}",
                    count - 1
                ),
            )
            .hint("use an odd number of voters, such as 3 or 5");
    }
    for site in sites {
        let here = voters
            .iter()
            .filter(|node| node.site == site.value.id)
            .count();
        if !nodes.iter().any(|node| node.value.site == site.value.id) {
            cx.sink
                .warning(
                    site.map.at("id"),
                    format!("site `{}` has no node", site.value.id),
                )
                .hint("without a node a site cannot observe the others or vote; add one");
        } else if count >= 3 && sites.len() > 1 && count - here < count / 2 + 1 {
            cx.sink
                .warning(
                    site.map.at("id"),
                    format!(
                        "site `{}` holds {here} of the {count} voters: losing it stops the cluster",
                        site.value.id
                    ),
                )
                .hint("spread the voters so that no site holds half of them or more");
        }
    }
}

fn duration_key(
    cx: &mut Cx,
    map: Option<&Map<'_>>,
    key: &str,
    default: Duration,
    positive: bool,
) -> Option<Duration> {
    match map.and_then(|map| cx.optional(map, key)) {
        Some(node) if positive => cx.positive_duration(node, key),
        Some(node) => cx.duration(node, key),
        None => Some(default),
    }
}

fn u32_key(
    cx: &mut Cx,
    map: Option<&Map<'_>>,
    key: &str,
    default: u32,
    min: u32,
    max: u32,
) -> Option<u32> {
    match map.and_then(|map| cx.optional(map, key)) {
        Some(node) => cx.u32(node, key, min, max),
        None => Some(default),
    }
}

/// The position of `key` in an optional section, or of the section, or of the top level.
fn section_at(top: &Map<'_>, section: Option<&Map<'_>>, key: &str) -> Pos {
    match section {
        Some(map) => map.at(key),
        None => top.pos(),
    }
}

fn read_raft(cx: &mut Cx, top: &Map<'_>) -> Option<RaftTimings> {
    let map = match cx.optional(top, "raft") {
        Some(node) => Some(cx.map(node, "raft")?),
        None => None,
    };
    let defaults = RaftTimings::default();
    let heartbeat_interval = duration_key(
        cx,
        map.as_ref(),
        "heartbeat_interval",
        defaults.heartbeat_interval,
        true,
    );
    let election_timeout_min = duration_key(
        cx,
        map.as_ref(),
        "election_timeout_min",
        defaults.election_timeout_min,
        true,
    );
    let election_timeout_max = duration_key(
        cx,
        map.as_ref(),
        "election_timeout_max",
        defaults.election_timeout_max,
        true,
    );
    let snapshot_every = match map
        .as_ref()
        .and_then(|map| cx.optional(map, "snapshot_every"))
    {
        Some(node) => cx.integer(node, "snapshot_every", 1, u64::MAX),
        None => Some(defaults.snapshot_every),
    };
    let (heartbeat_interval, election_timeout_min, election_timeout_max) = (
        heartbeat_interval?,
        election_timeout_min?,
        election_timeout_max?,
    );
    let mut valid = true;
    if election_timeout_min >= election_timeout_max {
        let key = if map
            .as_ref()
            .and_then(|map| map.get("election_timeout_min"))
            .is_some()
        {
            "election_timeout_min"
        } else {
            "election_timeout_max"
        };
        cx.sink
            .error(
                section_at(top, map.as_ref(), key),
                format!(
                    "election_timeout_min ({}) must be shorter than election_timeout_max ({})",
                    fmt_duration(election_timeout_min),
                    fmt_duration(election_timeout_max)
                ),
            )
            .hint("nodes pick a random election timeout between the two; leave room, like 1500ms and 3s");
        valid = false;
    }
    if heartbeat_interval >= election_timeout_min {
        cx.sink
            .error(
                section_at(top, map.as_ref(), "heartbeat_interval"),
                format!(
                    "heartbeat_interval ({}) must be shorter than election_timeout_min ({})",
                    fmt_duration(heartbeat_interval),
                    fmt_duration(election_timeout_min)
                ),
            )
            .hint("followers start an election when heartbeats stop for election_timeout_min; keep heartbeats several times shorter");
        valid = false;
    }
    valid.then_some(RaftTimings {
        heartbeat_interval,
        election_timeout_min,
        election_timeout_max,
        snapshot_every: snapshot_every?,
    })
}

fn read_detection(cx: &mut Cx, top: &Map<'_>, site_count: usize) -> Option<DetectionPolicy> {
    let map = match cx.optional(top, "detection") {
        Some(node) => Some(cx.map(node, "detection")?),
        None => None,
    };
    let map = map.as_ref();
    let d = DetectionPolicy::default();
    let probe_interval = duration_key(cx, map, "probe_interval", d.probe_interval, true);
    let probe_timeout = duration_key(cx, map, "probe_timeout", d.probe_timeout, true);
    let confirm_interval = duration_key(cx, map, "confirm_interval", d.confirm_interval, true);
    let rise = u32_key(cx, map, "rise", d.rise, 1, 100);
    let fall = u32_key(cx, map, "fall", d.fall, 1, 100);
    let endpoints_down_fraction =
        match map.and_then(|map| cx.optional(map, "endpoints_down_fraction")) {
            Some(node) => cx
                .number(node, "endpoints_down_fraction")
                .and_then(|fraction| {
                    if fraction > 0.0 && fraction <= 1.0 {
                        Some(fraction)
                    } else {
                        cx.sink
                        .error(
                            node.pos,
                            format!(
                                "`endpoints_down_fraction` must be in (0, 1], found {fraction}"
                            ),
                        )
                        .hint(
                            "1.0 means every endpoint of the site must look down, 0.5 half of them",
                        );
                        None
                    }
                }),
            None => Some(d.endpoints_down_fraction),
        };
    let observer_sites_min = u32_key(cx, map, "observer_sites_min", d.observer_sites_min, 1, 1000);
    let hold = duration_key(cx, map, "hold", d.hold, false);
    let recover_hold = duration_key(cx, map, "recover_hold", d.recover_hold, false);
    let failover_cooldown = duration_key(cx, map, "failover_cooldown", d.failover_cooldown, false);
    let lost_requires_controller_down =
        match map.and_then(|map| cx.optional(map, "lost_requires_controller_down")) {
            Some(node) => cx.bool(node, "lost_requires_controller_down"),
            None => Some(d.lost_requires_controller_down),
        };

    let mut valid = true;
    if let (Some(interval), Some(timeout)) = (probe_interval, probe_timeout)
        && timeout >= interval
    {
        // An error, not a warning: probes of one endpoint would overlap or stretch the
        // interval, and the detection window `probe_interval × fall` would no longer hold.
        let defaulted = if map.and_then(|map| map.get("probe_timeout")).is_some() {
            ""
        } else {
            ", the default"
        };
        let key = if defaulted.is_empty() {
            "probe_timeout"
        } else {
            "probe_interval"
        };
        cx.sink
            .error(
                section_at(top, map, key),
                format!(
                    "probe_timeout ({}{defaulted}) must be shorter than probe_interval ({})",
                    fmt_duration(timeout),
                    fmt_duration(interval)
                ),
            )
            .hint("a probe must end before the next one starts; set probe_timeout to about half of probe_interval");
        valid = false;
    }
    if let (Some(interval), Some(confirm)) = (probe_interval, confirm_interval)
        && confirm >= interval
    {
        cx.sink
            .warning(
                section_at(top, map, "confirm_interval"),
                format!(
                    "confirm_interval ({}) is not shorter than probe_interval ({}): fast confirmation gains nothing",
                    fmt_duration(confirm),
                    fmt_duration(interval)
                ),
            )
            .hint("re-probe quickly after a first failure, e.g. confirm_interval: 100ms");
    }
    if let Some(observers) = observer_sites_min
        && site_count > 0
        && observers as usize > site_count - 1
    {
        cx.sink
            .error(
                section_at(top, map, "observer_sites_min"),
                format!(
                    "observer_sites_min is {observers} but with {site_count} site{} at most {} other site{} can observe any one",
                    plural(site_count),
                    site_count - 1,
                    plural(site_count - 1)
                ),
            )
            .hint("no site could ever be declared lost; lower observer_sites_min or add sites");
        valid = false;
    }
    if !valid {
        return None;
    }
    Some(DetectionPolicy {
        probe_interval: probe_interval?,
        probe_timeout: probe_timeout?,
        confirm_interval: confirm_interval?,
        rise: rise?,
        fall: fall?,
        endpoints_down_fraction: endpoints_down_fraction?,
        observer_sites_min: observer_sites_min?,
        hold: hold?,
        recover_hold: recover_hold?,
        failover_cooldown: failover_cooldown?,
        lost_requires_controller_down: lost_requires_controller_down?,
    })
}

fn read_services<'n>(
    cx: &mut Cx,
    top: &Map<'n>,
    sites: &[Item<'n, Site>],
    site_names: &[String],
) -> Section<'n, Service> {
    let list = items(cx, top, "services", false);
    let mut section = Section::new(list.len());
    for node in list {
        let Some(map) = cx.map(node, "services[]") else {
            continue;
        };
        let id = cx
            .required(&map, "id")
            .and_then(|node| cx.id(node, "id", "service id"));
        if let Some(id) = &id {
            section.ids.push((id.clone(), map.at("id")));
        }
        let check = cx
            .required(&map, "check")
            .and_then(|node| read_check(cx, node));
        let endpoints = cx
            .required(&map, "endpoints")
            .and_then(|node| read_endpoints(cx, node, id.as_deref(), sites, site_names));
        if let (Some(id), Some(check), Some(endpoints)) = (id, check, endpoints) {
            section.items.push(Item {
                value: Service {
                    id: ServiceId::new(id),
                    check,
                    endpoints,
                },
                map,
            });
        }
    }
    cx.no_duplicates(&section.ids, "service", Clone::clone);
    section
}

fn read_check(cx: &mut Cx, node: &Node) -> Option<HealthCheck> {
    let (kind, _, body) = cx.tagged(node, "services[].check", "check kind")?;
    match kind.as_str() {
        "http" => read_http_check(cx, body).map(HealthCheck::Http),
        "tcp" => cx
            .map(body, "services[].check.tcp")
            .map(|_| HealthCheck::Tcp),
        _ => read_dns_check(cx, body).map(HealthCheck::Dns),
    }
}

fn status_list(cx: &mut Cx, node: &Node, key: &str) -> Option<Vec<u16>> {
    let statuses = cx.list_of(node, key, |cx, item| {
        cx.integer(item, key, 100, 599)
            .and_then(|status| u16::try_from(status).ok())
    })?;
    if statuses.is_empty() {
        cx.sink
            .error(node.pos, format!("`{key}` must list at least one status"));
        return None;
    }
    Some(statuses)
}

fn read_http_check(cx: &mut Cx, node: &Node) -> Option<HttpCheck> {
    let map = cx.map(node, "services[].check.http")?;
    let path = match cx.optional(&map, "path") {
        Some(node) => cx.text(node, "path").and_then(|path| {
            if path.starts_with('/') {
                Some(path)
            } else {
                cx.sink
                    .error(
                        node.pos,
                        format!("`path` must start with `/`, found {}", quote(&path)),
                    )
                    .hint(format!("write `/{path}`"));
                None
            }
        }),
        None => Some("/".to_owned()),
    };
    let methods = ["GET", "HEAD", "POST"];
    let method = match cx.optional(&map, "method") {
        Some(node) => cx
            .word(node, "method", &methods)
            .map(|index| methods[index].to_owned()),
        None => Some("GET".to_owned()),
    };
    let expected_status = match cx.optional(&map, "expected_status") {
        Some(node) => status_list(cx, node, "expected_status"),
        None => Some(vec![200]),
    };
    let body_contains = match cx.optional(&map, "body_contains") {
        Some(node) => cx.text(node, "body_contains").map(Some),
        None => Some(None),
    };
    let host = match cx.optional(&map, "host") {
        Some(node) => cx.text(node, "host").map(Some),
        None => Some(None),
    };
    let tls = match cx.optional(&map, "tls") {
        Some(node) => cx.bool(node, "tls"),
        None => Some(false),
    };
    let tls_verify = match cx.optional(&map, "tls_verify") {
        Some(node) => cx.bool(node, "tls_verify"),
        None => Some(true),
    };
    if tls == Some(false) && tls_verify == Some(false) {
        cx.sink.warning(
            map.at("tls_verify"),
            "`tls_verify: false` has no effect without `tls: true`",
        );
    }
    if method.as_deref() == Some("HEAD") && matches!(body_contains, Some(Some(_))) {
        cx.sink
            .error(
                map.at("body_contains"),
                "`body_contains` can never match: a HEAD response has no body",
            )
            .hint("use method GET, or drop body_contains");
        return None;
    }
    Some(HttpCheck {
        method: method?,
        path: path?,
        expected_status: expected_status?,
        body_contains: body_contains?,
        host: host?,
        tls: tls?,
        tls_verify: tls_verify?,
    })
}

fn read_dns_check(cx: &mut Cx, node: &Node) -> Option<DnsCheck> {
    let map = cx.map(node, "services[].check.dns")?;
    let name = cx
        .required(&map, "name")
        .and_then(|node| fqdn(cx, node, "name"));
    let record_type = match cx.optional(&map, "type") {
        Some(node) => record_type(cx, node),
        None => Some(RecordType::A),
    };
    let rcodes = ["noerror", "nxdomain", "servfail", "refused"];
    let expected_rcode = match cx.optional(&map, "rcode") {
        Some(node) => cx.word(node, "rcode", &rcodes).map(|index| {
            [
                Rcode::Noerror,
                Rcode::Nxdomain,
                Rcode::Servfail,
                Rcode::Refused,
            ][index]
        }),
        None => Some(Rcode::Noerror),
    };
    let expected_answer = match cx.optional(&map, "answer") {
        Some(node) => {
            let addresses = cx.list_of(node, "answer", |cx, item| {
                let address = cx.ip(item, "answer")?;
                Some((address, item.pos))
            });
            match (addresses, record_type) {
                (Some(addresses), Some(record_type)) => {
                    let mut valid = true;
                    for (address, pos) in &addresses {
                        if !record_type.matches(*address) {
                            cx.sink.error(
                                *pos,
                                format!(
                                    "{address} cannot be in the answer to an {} query",
                                    record_type.as_str()
                                ),
                            );
                            valid = false;
                        }
                    }
                    valid.then(|| Some(addresses.into_iter().map(|(address, _)| address).collect()))
                }
                _ => None,
            }
        }
        None => Some(None),
    };
    Some(DnsCheck {
        name: name?,
        record_type: record_type?,
        expected_rcode: expected_rcode?,
        expected_answer: expected_answer?,
    })
}

fn record_type(cx: &mut Cx, node: &Node) -> Option<RecordType> {
    cx.word(node, "type", &RECORD_TYPES)
        .map(|index| [RecordType::A, RecordType::Aaaa][index])
}

/// A fully qualified domain name (with its trailing dot).
fn fqdn(cx: &mut Cx, node: &Node, key: &str) -> Option<String> {
    let name = cx.text(node, key)?;
    match names::check_fqdn(&name) {
        Ok(()) => Some(name),
        Err(names::NameProblem::NoTrailingDot) => {
            cx.sink
                .error(
                    node.pos,
                    format!("`{key}`: {} must end with a dot", quote(&name)),
                )
                .hint(format!("write `{name}.`: names here are fully qualified"));
            None
        }
        Err(problem) => {
            cx.sink.error(
                node.pos,
                format!("`{key}`: invalid domain name {}: {problem}", quote(&name)),
            );
            None
        }
    }
}

fn read_endpoints(
    cx: &mut Cx,
    node: &Node,
    service: Option<&str>,
    sites: &[Item<'_, Site>],
    site_names: &[String],
) -> Option<Vec<Endpoint>> {
    let list = cx.list(node, "endpoints")?;
    if list.is_empty() {
        cx.sink
            .error(
                node.pos,
                format!("service `{}` has no endpoints", service.unwrap_or("?")),
            )
            .hint("add at least one `- { site: ..., address: ..., port: ... }`");
        return None;
    }
    let mut endpoints = Vec::new();
    let mut failed = false;
    let mut seen: Vec<((IpAddr, u16), Pos)> = Vec::new();
    let mut ordinals: BTreeMap<String, usize> = BTreeMap::new();
    for item in list {
        let Some(map) = cx.map(item, "services[].endpoints[]") else {
            failed = true;
            continue;
        };
        let site = cx
            .required(&map, "site")
            .and_then(|node| reference(cx, node, "site", "site", site_names))
            .and_then(|site| {
                let witness = sites
                    .iter()
                    .any(|item| item.value.id.as_str() == site && item.value.witness);
                if witness {
                    cx.sink
                        .error(map.at("site"), format!("witness site `{site}` cannot have endpoints"))
                        .hint("a witness site runs only a controller; put endpoints in a datacenter site");
                    return None;
                }
                Some(site)
            });
        let address = cx.required(&map, "address").and_then(|node| {
            let address = cx.ip(node, "address")?;
            if address.is_unspecified() || address.is_multicast() {
                cx.sink.error(
                    node.pos,
                    format!("`address`: {address} cannot be probed or served"),
                );
                return None;
            }
            Some(address)
        });
        let port = cx
            .required(&map, "port")
            .and_then(|node| cx.integer(node, "port", 1, 65_535))
            .and_then(|port| u16::try_from(port).ok());
        let weight = match cx.optional(&map, "weight") {
            Some(node) => cx.u32(node, "weight", 1, u32::MAX),
            None => Some(1),
        };
        let (Some(site), Some(address), Some(port), Some(weight)) = (site, address, port, weight)
        else {
            failed = true;
            continue;
        };
        seen.push(((address, port), map.at("address")));
        let ordinal = ordinals.entry(site.clone()).or_insert(0);
        *ordinal += 1;
        let site = SiteId::new(site);
        endpoints.push(Endpoint {
            id: EndpointId::of(
                &ServiceId::new(service.unwrap_or_default()),
                &site,
                *ordinal,
            ),
            site,
            address,
            port,
            weight,
        });
    }
    for (index, ((address, port), pos)) in seen.iter().enumerate() {
        if seen[..index]
            .iter()
            .any(|(other, _)| other == &(*address, *port))
        {
            cx.sink.error(
                *pos,
                format!(
                    "endpoint {} is listed twice",
                    SocketAddr::new(*address, *port)
                ),
            );
            failed = true;
        }
    }
    (!failed).then_some(endpoints)
}

fn read_providers<'n>(cx: &mut Cx, top: &Map<'n>, base: &Path) -> Section<'n, Provider> {
    let list = items(cx, top, "providers", false);
    let mut section = Section::new(list.len());
    for node in list {
        let Some(map) = cx.map(node, "providers[]") else {
            continue;
        };
        let id = cx
            .required(&map, "id")
            .and_then(|node| cx.id(node, "id", "provider id"))
            .and_then(|id| {
                if id == EMBEDDED_PROVIDER {
                    cx.sink
                        .error(map.at("id"), "provider `embedded` is built in and cannot be declared")
                        .hint("remove this entry; zones say `provider: embedded` without declaring it");
                    return None;
                }
                section.ids.push((id.clone(), map.at("id")));
                Some(id)
            });
        let kind = match cx.one_of(&map, &["rfc2136", "powerdns"]) {
            Some("rfc2136") => map
                .get("rfc2136")
                .and_then(|node| read_rfc2136(cx, node, base)),
            Some(_) => map
                .get("powerdns")
                .and_then(|node| read_powerdns(cx, node, base)),
            None => None,
        };
        if let (Some(id), Some(kind)) = (id, kind) {
            section.items.push(Item {
                value: Provider {
                    id: ProviderId::new(id),
                    kind,
                },
                map,
            });
        }
    }
    cx.no_duplicates(&section.ids, "provider", Clone::clone);
    section
}

fn read_rfc2136(cx: &mut Cx, node: &Node, base: &Path) -> Option<ProviderKind> {
    let map = cx.map(node, "providers[].rfc2136")?;
    let server = cx
        .required(&map, "server")
        .and_then(|node| reachable_addr(cx, node, "server"));
    let tsig_key_file = cx
        .required(&map, "tsig_key_file")
        .and_then(|node| cx.path(node, "tsig_key_file", base));
    let timeout = match cx.optional(&map, "timeout") {
        Some(node) => cx.positive_duration(node, "timeout"),
        None => Some(Duration::from_secs(5)),
    };
    Some(ProviderKind::Rfc2136 {
        server: server?,
        tsig_key_file: tsig_key_file?,
        timeout: timeout?,
    })
}

fn read_powerdns(cx: &mut Cx, node: &Node, base: &Path) -> Option<ProviderKind> {
    let map = cx.map(node, "providers[].powerdns")?;
    let api_url = cx.required(&map, "api_url").and_then(|node| {
        let url = cx.text(node, "api_url")?;
        if names::is_http_url(&url) {
            Some(url)
        } else {
            cx.sink
                .error(
                    node.pos,
                    format!("`api_url`: {} is not an http(s) URL", quote(&url)),
                )
                .hint("write it like http://127.0.0.1:8081");
            None
        }
    });
    let api_key_file = cx
        .required(&map, "api_key_file")
        .and_then(|node| cx.path(node, "api_key_file", base));
    let server_id = match cx.optional(&map, "server_id") {
        Some(node) => cx.text(node, "server_id"),
        None => Some("localhost".to_owned()),
    };
    Some(ProviderKind::Powerdns {
        api_url: api_url?,
        api_key_file: api_key_file?,
        server_id: server_id?,
    })
}

fn read_zones<'n>(
    cx: &mut Cx,
    top: &Map<'n>,
    declared_providers: &[String],
    services: &Section<'n, Service>,
    nodes: &[Item<'n, ClusterNode>],
) -> (Vec<Item<'n, Zone>>, Vec<String>) {
    let list = items(cx, top, "zones", false);
    let mut provider_names = vec![EMBEDDED_PROVIDER.to_owned()];
    provider_names.extend(declared_providers.iter().cloned());
    let service_names = services.names();
    let mut zones = Vec::new();
    let mut zone_names: Vec<(String, Pos)> = Vec::new();
    let mut used_providers = Vec::new();
    for node in list {
        let Some(map) = cx.map(node, "zones[]") else {
            continue;
        };
        let name = cx
            .required(&map, "name")
            .and_then(|node| fqdn(cx, node, "name"))
            .map(|name| name.to_ascii_lowercase());
        if let Some(name) = &name {
            zone_names.push((name.clone(), map.at("name")));
        }
        let provider = match cx.optional(&map, "provider") {
            Some(node) => reference(cx, node, "provider", "provider", &provider_names),
            None => Some(EMBEDDED_PROVIDER.to_owned()),
        };
        if let Some(provider) = &provider {
            used_providers.push(provider.clone());
        }
        let nameservers = match cx.optional(&map, "nameservers") {
            Some(node) => cx.list_of(node, "nameservers", |cx, item| {
                reachable_addr(cx, item, "nameservers")
            }),
            None => Some(Vec::new()),
        };
        let resolvers = match cx.optional(&map, "resolvers") {
            Some(node) => cx.list_of(node, "resolvers", |cx, item| {
                reachable_addr(cx, item, "resolvers")
            }),
            None => Some(Vec::new()),
        };
        let nameservers = match (provider.as_deref(), nameservers) {
            (Some(EMBEDDED_PROVIDER), Some(_)) if map.get("nameservers").is_some() => {
                cx.sink
                    .error(
                        map.key_at("nameservers"),
                        "an embedded zone is served by every node: its nameservers are the nodes' dns_addr",
                    )
                    .hint("remove `nameservers`");
                None
            }
            (Some(EMBEDDED_PROVIDER), Some(_)) => {
                Some(nodes.iter().map(|item| item.value.dns_addr).collect())
            }
            (Some(provider), Some(nameservers)) if nameservers.is_empty() => {
                cx.sink
                    .error(
                        map.at("nameservers"),
                        format!(
                            "zone {} is served by provider `{provider}` and needs nameservers",
                            name.as_deref().map_or("?".to_owned(), quote)
                        ),
                    )
                    .hint("list the servers that answer for the zone, e.g. nameservers: [127.0.0.1:5353]");
                None
            }
            (_, nameservers) => nameservers,
        };
        let records = match cx.optional(&map, "records") {
            Some(node) => read_records(cx, node, &service_names, &services.items),
            None => Some(Vec::new()),
        };
        if let (Some(name), Some(provider), Some(nameservers), Some(resolvers), Some(records)) =
            (name, provider, nameservers, resolvers, records)
        {
            zones.push(Item {
                value: Zone {
                    name: ZoneName::new(name),
                    provider: ProviderId::new(provider),
                    records,
                    nameservers,
                    resolvers,
                },
                map,
            });
        }
    }
    cx.no_duplicates(&zone_names, "zone", Clone::clone);
    (zones, used_providers)
}

fn read_records(
    cx: &mut Cx,
    node: &Node,
    service_names: &[String],
    services: &[Item<'_, Service>],
) -> Option<Vec<Record>> {
    let list = cx.list(node, "records")?;
    let mut records = Vec::new();
    let mut keyed: Vec<((String, RecordType), Pos)> = Vec::new();
    let mut failed = false;
    for item in list {
        let Some(map) = cx.map(item, "zones[].records[]") else {
            failed = true;
            continue;
        };
        let name = cx
            .required(&map, "name")
            .and_then(|node| relative_name(cx, node));
        let record_type = cx
            .required(&map, "type")
            .and_then(|node| record_type(cx, node));
        let ttl = match cx.optional(&map, "ttl") {
            Some(node) => ttl(cx, node),
            None => Some(Duration::from_secs(30)),
        };
        let service = cx
            .required(&map, "service")
            .and_then(|node| reference(cx, node, "service", "service", service_names));
        let fail_mode = match cx.optional(&map, "fail_mode") {
            Some(node) => cx
                .word(node, "fail_mode", &["open", "closed"])
                .map(|index| Some([FailMode::Open, FailMode::Closed][index])),
            None => Some(None),
        };
        if let (Some(name), Some(record_type)) = (&name, record_type) {
            keyed.push(((name.clone(), record_type), map.at("name")));
        }
        if let (Some(service), Some(record_type)) = (&service, record_type)
            && let Some(item) = services
                .iter()
                .find(|item| item.value.id.as_str() == service)
            && !item
                .value
                .endpoints
                .iter()
                .any(|endpoint| record_type.matches(endpoint.address))
        {
            let (family, other) = match record_type {
                RecordType::A => ("IPv4", "AAAA"),
                RecordType::Aaaa => ("IPv6", "A"),
            };
            cx.sink
                .error(
                    map.at("type"),
                    format!(
                        "record type {} needs {family} endpoints, but service `{service}` has none",
                        record_type.as_str()
                    ),
                )
                .hint(format!(
                    "use type {other}, or give the service {family} endpoints"
                ));
            failed = true;
            continue;
        }
        let (Some(name), Some(record_type), Some(ttl), Some(service), Some(fail_mode)) =
            (name, record_type, ttl, service, fail_mode)
        else {
            failed = true;
            continue;
        };
        records.push(Record {
            name,
            record_type,
            ttl,
            service: ServiceId::new(service),
            fail_mode,
        });
    }
    for (index, ((name, record_type), pos)) in keyed.iter().enumerate() {
        if keyed[..index]
            .iter()
            .any(|(other, _)| other == &(name.clone(), *record_type))
        {
            cx.sink
                .error(
                    *pos,
                    format!("duplicate record `{name}` {}", record_type.as_str()),
                )
                .hint("one record per name and type; it answers with every site in rotation");
            failed = true;
        }
    }
    (!failed).then_some(records)
}

/// A record owner name relative to its zone, or `@` for the apex.
pub(crate) fn relative_name(cx: &mut Cx, node: &Node) -> Option<String> {
    let name = cx.text(node, "name")?;
    if name == "@" {
        return Some(name);
    }
    if name.ends_with('.') {
        cx.sink
            .error(
                node.pos,
                format!("record name {} must be relative to the zone", quote(&name)),
            )
            .hint("write `www` for www.<zone>, or `@` for the zone apex");
        return None;
    }
    match names::check_fqdn(&format!("{name}.")) {
        Ok(()) => Some(name.to_ascii_lowercase()),
        Err(problem) => {
            cx.sink.error(
                node.pos,
                format!("invalid record name {}: {problem}", quote(&name)),
            );
            None
        }
    }
}

/// A TTL: whole seconds, at least 1s, at most a day; warns beyond a few minutes.
pub(crate) fn ttl(cx: &mut Cx, node: &Node) -> Option<Duration> {
    let ttl = cx.positive_duration(node, "ttl")?;
    if ttl.subsec_nanos() != 0 {
        cx.sink
            .error(
                node.pos,
                format!("`ttl` must be whole seconds, found {}", fmt_duration(ttl)),
            )
            .hint("DNS TTLs count seconds; write 1s, 5s, 30s");
        return None;
    }
    if ttl > TTL_MAX {
        cx.sink.error(
            node.pos,
            format!("`ttl` of {} is longer than a day", fmt_duration(ttl)),
        );
        return None;
    }
    if ttl > TTL_WARN_ABOVE {
        cx.sink
            .warning(
                node.pos,
                format!(
                    "a ttl of {} keeps clients on a lost site that long after a failover",
                    fmt_duration(ttl)
                ),
            )
            .hint("failover records usually have TTLs of seconds, like 5s or 30s");
    }
    Some(ttl)
}

fn read_safety(cx: &mut Cx, top: &Map<'_>) -> Option<SafetyRules> {
    let map = match cx.optional(top, "safety") {
        Some(node) => Some(cx.map(node, "safety")?),
        None => None,
    };
    let min_sites_in_rotation = match map
        .as_ref()
        .and_then(|map| cx.optional(map, "min_sites_in_rotation"))
    {
        Some(node) if matches!(node.kind, crate::yaml::Kind::Int(0)) => {
            cx.sink
                .error(node.pos, "`min_sites_in_rotation` must be at least 1")
                .hint("to let a service be in no site, say `fail_mode: closed` on its records");
            None
        }
        Some(node) => cx.u32(node, "min_sites_in_rotation", 1, 1000),
        None => Some(SafetyRules::default().min_sites_in_rotation),
    };
    Some(SafetyRules {
        min_sites_in_rotation: min_sites_in_rotation?,
    })
}

fn read_principals<'n>(cx: &mut Cx, top: &Map<'n>) -> Section<'n, Principal> {
    let list = items(cx, top, "principals", false);
    let mut section = Section::new(list.len());
    // (principal, token hash, position of the hash) for every readable pair.
    let mut tokens: Vec<(String, String, Pos)> = Vec::new();
    for node in list {
        let Some(map) = cx.map(node, "principals[]") else {
            continue;
        };
        let name = cx.required(&map, "name").and_then(|node| {
            let name = cx.text(node, "name")?;
            if names::is_principal_name(&name) {
                Some(name)
            } else {
                cx.sink
                    .error(node.pos, format!("invalid principal name {}", quote(&name)))
                    .hint("use letters, digits, `.`, `_`, `-` and `@`, at most 128 characters");
                None
            }
        });
        let token_sha256 = cx.required(&map, "token_sha256").and_then(|node| {
            let hash = cx.text(node, "token_sha256")?;
            let is_hex = hash.len() == 64 && hash.bytes().all(|byte| byte.is_ascii_hexdigit());
            if is_hex && !hash.bytes().any(|byte| byte.is_ascii_uppercase()) {
                return Some(hash);
            }
            let report = cx.sink.error(
                node.pos,
                "`token_sha256` must be 64 lowercase hexadecimal digits (a SHA-256 digest)",
            );
            if is_hex {
                report.hint("write the digest in lowercase");
            } else {
                report.hint("compute it with: printf %s \"$TOKEN\" | sha256sum");
            }
            None
        });
        let roles = cx.required(&map, "roles").and_then(|node| {
            let roles = cx.list_of(node, "roles", |cx, item| {
                let index = cx.word(item, "roles", &ROLE_NAMES)?;
                Some((Role::ALL[index], item.pos))
            })?;
            if roles.is_empty() {
                cx.sink
                    .error(node.pos, "`roles` is empty: the principal could do nothing")
                    .hint(format!("roles: {}", ROLE_NAMES.join(", ")));
                return None;
            }
            let mut set = BTreeSet::new();
            for (role, pos) in roles {
                if !set.insert(role) {
                    cx.sink
                        .warning(pos, format!("role `{}` is listed twice", role.as_str()));
                }
            }
            Some(set)
        });
        if let Some(name) = &name {
            section.ids.push((name.clone(), map.at("name")));
            if let Some(token) = &token_sha256 {
                tokens.push((name.clone(), token.clone(), map.at("token_sha256")));
            }
        }
        if let (Some(name), Some(token_sha256), Some(roles)) = (name, token_sha256, roles) {
            section.items.push(Item {
                value: Principal {
                    name: PrincipalName::new(name),
                    token_sha256,
                    roles,
                },
                map,
            });
        }
    }
    cx.no_duplicates(&section.ids, "principal", Clone::clone);
    for (index, (name, token, pos)) in tokens.iter().enumerate() {
        if let Some((other, _, _)) = tokens[..index].iter().find(|(_, other, _)| other == token) {
            cx.sink
                .error(
                    *pos,
                    format!("principals `{other}` and `{name}` have the same token"),
                )
                .hint(
                    "give every principal its own token, so that the audit log says who did what",
                );
        }
    }
    section
}

fn check_observers(
    cx: &mut Cx,
    sites: &[Item<'_, Site>],
    nodes: &[Item<'_, ClusterNode>],
    services: &[Item<'_, Service>],
    detection: &DetectionPolicy,
) {
    let with_nodes: BTreeSet<&SiteId> = nodes.iter().map(|item| &item.value.site).collect();
    for site in sites {
        let has_endpoints = services.iter().any(|service| {
            service
                .value
                .endpoints
                .iter()
                .any(|endpoint| endpoint.site == site.value.id)
        });
        if !has_endpoints {
            continue;
        }
        let observers = with_nodes
            .iter()
            .filter(|other| ***other != site.value.id)
            .count();
        if observers < detection.observer_sites_min as usize {
            cx.sink
                .warning(
                    site.map.at("id"),
                    format!(
                        "site `{}` can never be declared lost: {observers} other site{} run{} a node, fewer than observer_sites_min ({})",
                        site.value.id,
                        plural(observers),
                        if observers == 1 { "s" } else { "" },
                        detection.observer_sites_min
                    ),
                )
                .hint("add nodes in other sites, or lower detection.observer_sites_min");
        }
    }
}

fn check_providers_used(cx: &mut Cx, providers: &[Item<'_, Provider>], used: &[String]) {
    for provider in providers {
        if !used.iter().any(|name| name == provider.value.id.as_str()) {
            cx.sink.warning(
                provider.map.at("id"),
                format!("provider `{}` serves no zone", provider.value.id),
            );
        }
    }
}

fn check_min_sites(cx: &mut Cx, services: &[Item<'_, Service>], safety: &SafetyRules) {
    for service in services {
        let sites = service.value.sites().len();
        if sites < safety.min_sites_in_rotation as usize {
            cx.sink
                .warning(
                    service.map.at("id"),
                    format!(
                        "service `{}` is in {sites} site{}, fewer than safety.min_sites_in_rotation ({}): no shift away from any of them can pass",
                        service.value.id,
                        plural(sites),
                        safety.min_sites_in_rotation
                    ),
                );
        }
    }
}

pub(crate) fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}
