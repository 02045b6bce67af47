//! Every key the two languages accept, with its type, default and meaning.
//!
//! This table is the single source of truth: the readers refuse any key that is not listed here
//! (that is how unknown keys are found in every mapping), and `docs/config-reference.md` and
//! `docs/runbook-reference.md` embed the tables rendered from it, checked by a test, so the
//! documentation cannot drift from the parser.
//!
//! Paths: `a.b` is key `b` in mapping `a`; `a[]` is an item of list `a`; `a.*` stands for any
//! key of a free-form mapping (parameter names); `steps[].*.id` is a key every step kind takes.

/// One accepted key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyDoc {
    pub path: &'static str,
    pub kind: &'static str,
    /// `required`, `-` (optional, no value when absent), or the default value.
    pub default: &'static str,
    pub meaning: &'static str,
}

const fn key(
    path: &'static str,
    kind: &'static str,
    default: &'static str,
    meaning: &'static str,
) -> KeyDoc {
    KeyDoc {
        path,
        kind,
        default,
        meaning,
    }
}

/// The cluster configuration language.
#[rustfmt::skip]
pub const CONFIG_KEYS: &[KeyDoc] = &[
    key("cluster", "mapping", "required", "Identity of the cluster and its shared secret."),
    key("cluster.name", "id", "required", "Cluster name; a node refuses a data directory that belongs to another cluster."),
    key("cluster.secret_file", "path", "required", "File holding the node-to-node shared secret, relative to this file's directory."),
    key("sites", "list of mappings", "required", "Datacenters, regions and witness sites; at least one."),
    key("sites[].id", "id", "required", "Site name, unique."),
    key("sites[].witness", "bool", "false", "A controller-only site: it observes and votes, and may have no endpoints."),
    key("nodes", "list of mappings", "required", "Controller nodes (one `switchyard serve` each); at least 3 voters."),
    key("nodes[].id", "integer >= 1", "required", "Raft node id, unique."),
    key("nodes[].site", "site id", "required", "The site the node runs in."),
    key("nodes[].raft_addr", "ip:port", "required", "Node-to-node (Raft) listener, as the other nodes reach it."),
    key("nodes[].api_addr", "ip:port", "required", "REST API, metrics and UI listener."),
    key("nodes[].dns_addr", "ip:port", "required", "Embedded authoritative DNS server (UDP and TCP); the nameservers of embedded zones."),
    key("nodes[].voter", "bool", "true", "Counts towards the Raft majority; a non-voter only replicates."),
    key("raft", "mapping", "WAN defaults", "Raft timings."),
    key("raft.heartbeat_interval", "duration", "250ms", "Leader heartbeat period; shorter than election_timeout_min."),
    key("raft.election_timeout_min", "duration", "1500ms", "Lower bound of the randomized election timeout."),
    key("raft.election_timeout_max", "duration", "3s", "Upper bound of the randomized election timeout; above election_timeout_min."),
    key("raft.snapshot_every", "integer >= 1", "5000", "Build a snapshot every this many applied log entries."),
    key("detection", "mapping", "defaults below", "How endpoint and site failures are detected."),
    key("detection.probe_interval", "duration", "1s", "Time between two probes of one endpoint by one node."),
    key("detection.probe_timeout", "duration", "500ms", "A probe that takes longer has failed; shorter than probe_interval."),
    key("detection.confirm_interval", "duration", "100ms", "Re-probe interval after a first failure (fast confirmation)."),
    key("detection.rise", "integer >= 1", "2", "Consecutive successes that turn a down verdict up."),
    key("detection.fall", "integer >= 1", "3", "Consecutive failures that turn an up verdict down."),
    key("detection.endpoints_down_fraction", "number in (0, 1]", "1.0", "Fraction of a site's endpoints an observer must see down to count against the site."),
    key("detection.observer_sites_min", "integer >= 1", "1", "Other, non-lost sites that must agree before a site is suspect; at most the number of sites minus one."),
    key("detection.hold", "duration", "2s", "How long the evidence must hold before a suspect site is lost."),
    key("detection.recover_hold", "duration", "30s", "How long a recovering site must stay healthy before it is healthy again."),
    key("detection.failover_cooldown", "duration", "10m", "Minimum time between two automatic failovers of the same site."),
    key("detection.lost_requires_controller_down", "bool", "false", "Stricter policy: a site whose controller still replicates is `services down`, never `lost`."),
    key("services", "list of mappings", "[]", "Services whose endpoints are health-checked and routed."),
    key("services[].id", "id", "required", "Service name, unique."),
    key("services[].check", "mapping with one of http, tcp, dns", "required", "The health check run against every endpoint."),
    key("services[].check.http", "mapping", "-", "HTTP(S) check: the endpoint is up when it answers an expected status (and body)."),
    key("services[].check.http.path", "string starting with /", "/", "Request path."),
    key("services[].check.http.method", "GET, HEAD or POST", "GET", "Request method."),
    key("services[].check.http.expected_status", "list of integers 100-599", "[200]", "Any of these statuses counts as up."),
    key("services[].check.http.body_contains", "string", "-", "The body must contain this text."),
    key("services[].check.http.host", "string", "endpoint address", "Host header (and TLS server name)."),
    key("services[].check.http.tls", "bool", "false", "Use HTTPS."),
    key("services[].check.http.tls_verify", "bool", "true", "Verify the server certificate; turning it off must be explicit."),
    key("services[].check.tcp", "empty mapping", "-", "TCP check: the endpoint is up when it accepts a connection."),
    key("services[].check.dns", "mapping", "-", "DNS check: the endpoint is a DNS server that must answer a query."),
    key("services[].check.dns.name", "fully qualified name", "required", "The name to ask about, with a trailing dot."),
    key("services[].check.dns.type", "A or AAAA", "A", "The query type."),
    key("services[].check.dns.rcode", "noerror, nxdomain, servfail or refused", "noerror", "The expected response code."),
    key("services[].check.dns.answer", "list of ip addresses", "-", "When set, the answer must hold exactly these addresses."),
    key("services[].endpoints", "list of mappings", "required", "One address of the service in one site each; at least one."),
    key("services[].endpoints[].site", "site id", "required", "The site of the endpoint; not a witness site."),
    key("services[].endpoints[].address", "ip address", "required", "The address probed and served in DNS answers."),
    key("services[].endpoints[].port", "integer 1-65535", "required", "The port probed (HTTP, TCP, DNS)."),
    key("services[].endpoints[].weight", "integer >= 1", "1", "Relative weight of the endpoint's site when traffic is split."),
    key("providers", "list of mappings", "[]", "External DNS providers; `embedded` is built in and not declared."),
    key("providers[].id", "id", "required", "Provider name, unique, not `embedded`."),
    key("providers[].rfc2136", "mapping", "-", "RFC 2136 dynamic updates signed with TSIG, to a primary such as BIND or Knot."),
    key("providers[].rfc2136.server", "ip:port", "required", "The primary server that accepts updates."),
    key("providers[].rfc2136.tsig_key_file", "path", "required", "BIND-style TSIG key file, relative to this file's directory."),
    key("providers[].rfc2136.timeout", "duration", "5s", "Timeout of one update."),
    key("providers[].powerdns", "mapping", "-", "The PowerDNS authoritative server's HTTP API."),
    key("providers[].powerdns.api_url", "http(s) URL", "required", "Base URL of the API."),
    key("providers[].powerdns.api_key_file", "path", "required", "File holding the API key, relative to this file's directory."),
    key("providers[].powerdns.server_id", "string", "localhost", "PowerDNS server id."),
    key("zones", "list of mappings", "[]", "DNS zones whose records follow the routing."),
    key("zones[].name", "fully qualified name", "required", "Zone name with a trailing dot, unique."),
    key("zones[].provider", "provider id", "embedded", "Who serves the zone: `embedded` (every node) or a declared provider."),
    key("zones[].nameservers", "list of ip:port", "nodes' dns_addr", "Servers answering for the zone, queried by verification; required for non-embedded zones, not allowed for embedded ones."),
    key("zones[].resolvers", "list of ip:port", "[]", "Recursive resolvers that verification may also ask."),
    key("zones[].records", "list of mappings", "[]", "Records bound to services."),
    key("zones[].records[].name", "relative name or @", "required", "Owner name relative to the zone (`www`), `@` for the apex."),
    key("zones[].records[].type", "A or AAAA", "required", "Record type; the service needs endpoints of that address family."),
    key("zones[].records[].ttl", "duration (whole seconds)", "30s", "Record TTL; clients may use a lost site this long after a failover."),
    key("zones[].records[].service", "service id", "required", "The service whose in-rotation endpoints the record answers with."),
    key("zones[].records[].fail_mode", "open or closed", "-", "When no site would be left: `open` refuses the change, `closed` allows an empty answer."),
    key("safety", "mapping", "defaults below", "Rules every routing change must respect."),
    key("safety.min_sites_in_rotation", "integer >= 1", "1", "A routing change may never leave a service in fewer sites (unless its record is fail_mode: closed)."),
    key("principals", "list of mappings", "[]", "API principals: people and systems with a bearer token."),
    key("principals[].name", "name", "required", "Principal name, unique (letters, digits, `.`, `_`, `-`, `@`)."),
    key("principals[].token_sha256", "64 lowercase hex digits", "required", "SHA-256 of the bearer token; the token itself is never stored."),
    key("principals[].roles", "list of roles", "required", "Any of viewer, operator, approver, auditor, admin."),
];

/// The runbook language.
#[rustfmt::skip]
pub const RUNBOOK_KEYS: &[KeyDoc] = &[
    key("name", "id", "required", "Runbook name, as used by `--runbook` and in reports."),
    key("description", "string", "required", "What the runbook does, for operators and auditors."),
    key("triggers", "list of one-key mappings", "required", "What may start the runbook; at least one."),
    key("triggers[].site_lost", "mapping", "-", "A site was declared lost; `${site}` is that site."),
    key("triggers[].site_lost.sites", "list of site ids", "all sites", "Only these sites."),
    key("triggers[].service_unhealthy", "mapping", "-", "A service's endpoints are down in one site while the site is fine; `${site}` is that site."),
    key("triggers[].service_unhealthy.services", "list of service ids", "all services", "Only these services."),
    key("triggers[].manual", "empty mapping", "-", "Started by an operator or a drill, with `--site`."),
    key("pre_approved", "bool", "false", "May run automatically on its site_lost / service_unhealthy triggers without a work plan."),
    key("rto", "duration", "-", "Declared recovery time objective; reports measure against it."),
    key("parameters", "mapping of name to mapping", "{}", "Parameters beyond the built-in `site` and `execution`."),
    key("parameters.*", "mapping", "-", "One parameter; its name is a lowercase identifier."),
    key("parameters.*.description", "string", "-", "What the parameter is for."),
    key("parameters.*.default", "string", "-", "Value used when the execution gives none; without it the parameter is required."),
    key("on_failure", "halt, continue or rollback", "halt", "What a failed step does unless it says otherwise."),
    key("steps", "list of one-key mappings", "required", "The steps, run in order; 1 to 64."),
    key("rollback", "list of one-key mappings", "[]", "Steps run in order when a step fails under on_failure: rollback; at most 64; same kinds as steps."),
    key("steps[].*.id", "id", "required", "Step name, unique in the runbook (rollback steps included)."),
    key("steps[].*.timeout", "duration", "30s (wait: duration + 5s)", "The whole step, retries included, fails after this long; at most 24h."),
    key("steps[].*.retries", "integer 0-100", "0", "Further attempts after a failed one."),
    key("steps[].*.on_failure", "halt, continue or rollback", "runbook's on_failure", "Overrides the runbook's on_failure for this step; not rollback inside rollback steps."),
    key("steps[].shift_traffic", "mapping", "-", "Change which sites are in rotation for services; exactly one of away_from, restore, to."),
    key("steps[].shift_traffic.services", "list of service ids", "required", "Services to shift; each needs a DNS record."),
    key("steps[].shift_traffic.away_from", "site template", "-", "Take this site out of rotation."),
    key("steps[].shift_traffic.restore", "site template", "-", "Put this site back into rotation."),
    key("steps[].shift_traffic.to", "list of site templates", "-", "Put exactly these sites in rotation."),
    key("steps[].set_records", "mapping", "-", "Pin RRsets to explicit values, whatever the routing would derive; a pin outlives later shift_traffic steps until a set_records with empty values removes it."),
    key("steps[].set_records.zone", "zone name", "required", "A zone of the cluster configuration."),
    key("steps[].set_records.records", "list of mappings", "required", "The RRsets to set."),
    key("steps[].set_records.records[].name", "relative name or @", "required", "Owner name relative to the zone; a record of that name and type must be in the zone's configuration."),
    key("steps[].set_records.records[].type", "A or AAAA", "required", "Record type."),
    key("steps[].set_records.records[].ttl", "duration (whole seconds)", "30s", "Record TTL."),
    key("steps[].set_records.records[].values", "list of ip addresses", "required", "The addresses; an empty list removes the pin, so the routing's answer returns."),
    key("steps[].verify_dns", "mapping", "-", "Query every authoritative server until it serves the expected answer, or time out."),
    key("steps[].verify_dns.services", "list of service ids", "required", "Services whose records to verify; each needs a DNS record."),
    key("steps[].verify_dns.resolvers", "bool", "false", "Also ask the zones' recursive resolvers."),
    key("steps[].webhook", "mapping", "-", "Call an HTTP endpoint; the idempotency key travels in a header."),
    key("steps[].webhook.url", "http(s) URL template", "required", "The URL to call."),
    key("steps[].webhook.method", "GET, POST, PUT, PATCH or DELETE", "POST", "Request method."),
    key("steps[].webhook.headers", "mapping of header to template", "{}", "Extra request headers."),
    key("steps[].webhook.body", "any YAML value", "-", "JSON request body; strings may hold `${param}` references."),
    key("steps[].webhook.expected_status", "list of integers 100-599", "[200, 201, 202, 204]", "Any of these statuses counts as success."),
    key("steps[].wait", "mapping", "-", "Pause."),
    key("steps[].wait.duration", "duration", "required", "How long to pause; at most 24h."),
    key("steps[].check", "mapping", "-", "Gate on a health condition; exactly one of site_state, service_healthy."),
    key("steps[].check.site_state", "mapping", "-", "The site is in one of the states."),
    key("steps[].check.site_state.site", "site template", "required", "The site."),
    key("steps[].check.site_state.states", "list of healthy, suspect, lost, recovering", "required", "Accepted states."),
    key("steps[].check.service_healthy", "mapping", "-", "The service is healthy in enough sites."),
    key("steps[].check.service_healthy.service", "service id", "required", "The service."),
    key("steps[].check.service_healthy.sites_min", "integer >= 1", "1", "Sites in which it must be healthy; at most its number of sites."),
    key("steps[].approval", "mapping", "-", "Pause until approvers on shift approve."),
    key("steps[].approval.approvers_min", "integer >= 1", "1", "Distinct approvers needed."),
    key("steps[].approval.message", "template", "-", "Shown to approvers."),
    key("steps[].haproxy", "mapping", "-", "Change a server through the HAProxy runtime API."),
    key("steps[].haproxy.backend", "string", "required", "Backend name."),
    key("steps[].haproxy.server", "template", "required", "Server name in the backend."),
    key("steps[].haproxy.action", "ready, drain, maint or a mapping", "required", "New server state, or `{ weight: N }`."),
    key("steps[].haproxy.action.weight", "integer 0-256", "required", "New server weight."),
];

/// The keys directly under the mapping at `path` (`*` included when the mapping is free-form).
pub(crate) fn children(keys: &'static [KeyDoc], path: &str) -> Vec<&'static str> {
    keys.iter()
        .filter_map(|doc| {
            let rest: &'static str = if path.is_empty() {
                doc.path
            } else {
                doc.path.strip_prefix(path)?.strip_prefix('.')?
            };
            (!rest.contains('.') && !rest.contains('[')).then_some(rest)
        })
        .collect()
}

/// Renders the reference table of every key, in the order of the table.
pub fn reference_table(keys: &[KeyDoc]) -> String {
    let mut table = String::from("| key | type | default | meaning |\n| --- | --- | --- | --- |\n");
    for doc in keys {
        table.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            doc.path, doc.kind, doc.default, doc.meaning
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_are_direct_keys_only() {
        let keys = children(CONFIG_KEYS, "services[].check");
        assert_eq!(keys, ["http", "tcp", "dns"]);
        let top = children(RUNBOOK_KEYS, "");
        assert_eq!(
            top,
            [
                "name",
                "description",
                "triggers",
                "pre_approved",
                "rto",
                "parameters",
                "on_failure",
                "steps",
                "rollback"
            ]
        );
        let common = children(RUNBOOK_KEYS, "steps[].*");
        assert_eq!(common, ["id", "timeout", "retries", "on_failure"]);
    }

    #[test]
    fn fields_fit_in_a_markdown_table() {
        for doc in CONFIG_KEYS.iter().chain(RUNBOOK_KEYS) {
            for field in [doc.path, doc.kind, doc.default, doc.meaning] {
                assert!(!field.is_empty() && !field.contains('|'), "{doc:?}");
            }
        }
    }

    #[test]
    fn paths_are_unique_and_parents_exist() {
        for keys in [CONFIG_KEYS, RUNBOOK_KEYS] {
            for (index, doc) in keys.iter().enumerate() {
                assert!(
                    keys[..index].iter().all(|other| other.path != doc.path),
                    "{} listed twice",
                    doc.path
                );
                if let Some((parent, _)) = doc.path.rsplit_once('.') {
                    let parent = parent.strip_suffix("[]").unwrap_or(parent);
                    let parent = if parent == "steps" || parent.starts_with("steps[].*") {
                        "steps"
                    } else {
                        parent
                    };
                    assert!(
                        keys.iter().any(|other| other.path == parent),
                        "parent of {} is missing",
                        doc.path
                    );
                }
            }
        }
    }
}
