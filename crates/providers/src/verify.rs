//! Answer verification: ask every server directly, without any cache, until each serves the
//! expected RRsets or time runs out, and report what each server served and when.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_net::DnsHandle;
use hickory_net::client::Client;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use hickory_proto::op::{DnsRequestOptions, Message, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, RData};
use switchyard_core::routing::{Rrset, RrsetKey};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::rcode::rcode_name;
use crate::rfc2136::{hickory_type, parse_name};

/// Queries in flight at once, over all servers.
const QUERIES_IN_FLIGHT_MAX: usize = 64;
/// Longest wait for one response.
const QUERY_TIMEOUT_MAX: Duration = Duration::from_secs(2);

/// Whether a server is an authority for the zone or a recursive resolver in front of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServerRole {
    /// Asked without recursion; must answer authoritatively with the expected TTL.
    Authoritative,
    /// Asked with recursion; its TTLs count down from its cache, so only the values must match.
    Resolver,
}

/// What one server served for one RRset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RrsetCheck {
    pub server: SocketAddr,
    pub role: ServerRole,
    pub key: RrsetKey,
    pub expected: Rrset,
    /// The addresses of the last answer; `None` before any answer arrived.
    pub answer: Option<BTreeSet<IpAddr>>,
    /// Response code of the last answer (`NOERROR`, `NXDOMAIN`, ...).
    pub rcode: Option<String>,
    /// The smallest TTL in the last answer.
    pub ttl: Option<Duration>,
    /// When the server first served the expected answer, from the start of verification.
    pub first_seen: Option<Duration>,
    pub converged: bool,
    /// The last failure to get an answer (timeout, refused connection, not authoritative...).
    pub last_error: Option<String>,
    pub queries: u32,
}

/// The outcome of one verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Every server served every expected RRset before the timeout.
    pub converged: bool,
    pub elapsed: Duration,
    /// One entry per server and RRset, servers in the order given, authorities first.
    pub checks: Vec<RrsetCheck>,
}

impl VerifyReport {
    /// The checks that did not converge.
    pub fn pending(&self) -> impl Iterator<Item = &RrsetCheck> {
        self.checks.iter().filter(|check| !check.converged)
    }

    /// Per server: whether it served everything expected, and when it served the last RRset.
    pub fn by_server(&self) -> BTreeMap<SocketAddr, (bool, Option<Duration>)> {
        let mut servers: BTreeMap<SocketAddr, (bool, Option<Duration>)> = BTreeMap::new();
        for check in &self.checks {
            let entry = servers.entry(check.server).or_insert((true, None));
            entry.0 &= check.converged;
            entry.1 = match (entry.1, check.first_seen) {
                (Some(latest), Some(seen)) => Some(latest.max(seen)),
                (latest, seen) => latest.or(seen),
            };
        }
        servers
    }
}

/// Queries each of `servers` (authoritative) and `resolvers` for every RRset of `expected`
/// every `poll_interval` until all serve it, or until `timeout`.
pub async fn verify(
    expected: &BTreeMap<RrsetKey, Rrset>,
    servers: &[SocketAddr],
    resolvers: &[SocketAddr],
    timeout: Duration,
    poll_interval: Duration,
) -> VerifyReport {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut checks: Vec<RrsetCheck> = servers
        .iter()
        .map(|server| (*server, ServerRole::Authoritative))
        .chain(
            resolvers
                .iter()
                .map(|server| (*server, ServerRole::Resolver)),
        )
        .flat_map(|(server, role)| {
            expected.iter().map(move |(key, rrset)| RrsetCheck {
                server,
                role,
                key: key.clone(),
                expected: rrset.clone(),
                answer: None,
                rcode: None,
                ttl: None,
                first_seen: None,
                converged: false,
                last_error: None,
                queries: 0,
            })
        })
        .collect();
    let query_timeout = poll_interval
        .max(Duration::from_millis(500))
        .min(QUERY_TIMEOUT_MAX);
    let clients: BTreeMap<SocketAddr, Client<TokioRuntimeProvider>> = checks
        .iter()
        .map(|check| check.server)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|server| (server, udp_client(server, query_timeout)))
        .collect();
    let permits = Arc::new(Semaphore::new(QUERIES_IN_FLIGHT_MAX));
    // Bounded by the deadline: each round waits at least until its queries time out.
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let round_timeout = query_timeout.min(deadline - now);
        let mut round = JoinSet::new();
        for (index, check) in checks.iter().enumerate() {
            if check.converged {
                continue;
            }
            let client = clients[&check.server].clone();
            let key = check.key.clone();
            let role = check.role;
            let server = check.server;
            let permits = permits.clone();
            round.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let result = tokio::time::timeout(
                    round_timeout,
                    query(&client, server, &key, role, round_timeout),
                )
                .await
                .unwrap_or_else(|_| Err("timeout".to_owned()));
                (index, result, Instant::now())
            });
        }
        while let Some(joined) = round.join_next().await {
            let Ok((index, result, answered_at)) = joined else {
                continue;
            };
            let check = &mut checks[index];
            check.queries += 1;
            match result {
                Ok(observed) => {
                    check.last_error = None;
                    let matches = observed.matches(&check.expected, check.role);
                    check.answer = Some(observed.values);
                    check.rcode = Some(observed.rcode);
                    check.ttl = observed.ttl;
                    if matches {
                        check.converged = true;
                        check.first_seen = Some(answered_at - started);
                    }
                }
                Err(error) => check.last_error = Some(error),
            }
        }
        if checks.iter().all(|check| check.converged) {
            break;
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        tokio::time::sleep(poll_interval.min(deadline - now)).await;
    }
    VerifyReport {
        converged: checks.iter().all(|check| check.converged),
        elapsed: started.elapsed(),
        checks,
    }
}

/// One answer as seen.
struct Observed {
    values: BTreeSet<IpAddr>,
    rcode: String,
    ttl: Option<Duration>,
}

impl Observed {
    fn matches(&self, expected: &Rrset, role: ServerRole) -> bool {
        if self.values != expected.values {
            return false;
        }
        if expected.values.is_empty() {
            // NODATA (NOERROR) or NXDOMAIN both mean nothing is served.
            return self.rcode == "NOERROR" || self.rcode == "NXDOMAIN";
        }
        match role {
            ServerRole::Authoritative => self.ttl == Some(expected.ttl),
            ServerRole::Resolver => true,
        }
    }
}

fn udp_client(server: SocketAddr, timeout: Duration) -> Client<TokioRuntimeProvider> {
    let stream = UdpClientStream::builder(server, TokioRuntimeProvider::new())
        .with_timeout(Some(timeout))
        .build();
    let (client, background) = Client::<TokioRuntimeProvider>::from_sender(stream);
    tokio::spawn(background);
    client
}

async fn tcp_query(
    server: SocketAddr,
    query_message: Query,
    options: DnsRequestOptions,
    timeout: Duration,
) -> Result<Message, String> {
    let (connect, handle) =
        TcpClientStream::new(server, None, Some(timeout), TokioRuntimeProvider::new());
    let stream = connect.await.map_err(|error| error.to_string())?;
    let (client, background) =
        Client::<TokioRuntimeProvider>::with_timeout(stream, handle, timeout);
    let background = tokio::spawn(background);
    let response = first_response(&client, query_message, options).await;
    background.abort();
    response
}

async fn first_response(
    client: &Client<TokioRuntimeProvider>,
    query_message: Query,
    options: DnsRequestOptions,
) -> Result<Message, String> {
    use futures::StreamExt;
    let mut responses = client.lookup(query_message, options);
    match responses.next().await {
        Some(Ok(response)) => Ok(response.into_message()),
        Some(Err(error)) => Err(error.to_string()),
        None => Err("timeout".to_owned()),
    }
}

async fn query(
    client: &Client<TokioRuntimeProvider>,
    server: SocketAddr,
    key: &RrsetKey,
    role: ServerRole,
    timeout: Duration,
) -> Result<Observed, String> {
    let name = parse_name(&key.name).map_err(|error| error.to_string())?;
    let record_type = hickory_type(key.record_type);
    let mut query_message = Query::query(name.clone(), record_type);
    query_message.set_query_class(DNSClass::IN);
    let mut options = DnsRequestOptions::default();
    options.recursion_desired = role == ServerRole::Resolver;
    let mut response = first_response(client, query_message.clone(), options).await?;
    if response.metadata.truncation {
        response = tcp_query(server, query_message, options, timeout).await?;
    }
    let code = response.metadata.response_code;
    if role == ServerRole::Authoritative
        && matches!(code, ResponseCode::NoError | ResponseCode::NXDomain)
        && !response.metadata.authoritative
    {
        return Err(format!("answer without the AA flag ({})", rcode_name(code)));
    }
    if !matches!(code, ResponseCode::NoError | ResponseCode::NXDomain) {
        return Err(format!("server answered {}", rcode_name(code)));
    }
    let mut values = BTreeSet::new();
    let mut ttl: Option<u32> = None;
    for record in &response.answers {
        if record.record_type() != record_type || !record.name.eq_ignore_root(&name) {
            continue;
        }
        let address = match &record.data {
            RData::A(address) => IpAddr::V4(address.0),
            RData::AAAA(address) => IpAddr::V6(address.0),
            _ => continue,
        };
        values.insert(address);
        ttl = Some(ttl.map_or(record.ttl, |seen| seen.min(record.ttl)));
    }
    Ok(Observed {
        values,
        rcode: rcode_name(code),
        ttl: ttl.map(|seconds| Duration::from_secs(u64::from(seconds))),
    })
}
