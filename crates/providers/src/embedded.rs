//! The embedded authoritative DNS server every node runs for the `embedded` zones, answering
//! from a snapshot of the routing state that the node replaces whole on every routing change.
//!
//! The server answers from its own `RequestHandler` rather than hickory's in-memory zone handler,
//! whose `upsert` adds to an RRset: a failover must *replace* the RRset, and a snapshot swapped in
//! one pointer store does that for every RRset and the SOA serial at once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, ResponseCode};
use hickory_server::proto::rr::rdata::{NS, SOA};
use hickory_server::proto::rr::{DNSClass, LowerName, RData, Record, RecordType as HType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use switchyard_core::config::{ClusterConfig, EMBEDDED_PROVIDER, ProviderKind, RecordType};
use switchyard_core::id::ZoneName;
use switchyard_core::routing::{Rrset, RrsetKey};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::ProviderError;
use crate::rcode::rcode_name;
use crate::rfc2136::{address_rdata, hickory_type, parse_name, ttl_seconds};

/// TTL of the SOA and NS records, and of the NS glue.
pub const SOA_TTL: Duration = Duration::from_secs(60);
/// How long resolvers may cache NXDOMAIN and NODATA answers (SOA MINIMUM, RFC 2308).
pub const NEGATIVE_TTL: Duration = Duration::from_secs(30);
/// How long an idle TCP connection stays open.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The SOA serial for the routing at Raft log index `log_index`.
///
/// The index modulo 2^32. Every routing change has a larger index than the last, so the serial
/// increases with every change, and in RFC 1982 serial arithmetic it keeps increasing across the
/// wrap at 2^32 as long as two serials compared are fewer than 2^31 changes apart.
pub fn soa_serial(log_index: u64) -> u32 {
    // Truncation is the point: RFC 1982 serials are modulo 2^32.
    (log_index & u64::from(u32::MAX)) as u32
}

/// Whether serial `later` comes after `earlier` in RFC 1982 serial arithmetic.
pub fn serial_after(earlier: u32, later: u32) -> bool {
    earlier != later && later.wrapping_sub(earlier) < 1 << 31
}

/// One name server of an embedded zone: every node, named `ns<node id>.<zone>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameServer {
    /// Fully qualified host name inside the zone.
    pub name: String,
    /// Glue address: the IP of the node's DNS listener.
    pub address: IpAddr,
}

/// The content of one embedded zone at one routing state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneSnapshot {
    pub serial: u32,
    pub nameservers: Vec<NameServer>,
    /// Keyed by fully qualified owner name and type. An empty RRset keeps its name existing
    /// (NODATA rather than NXDOMAIN).
    pub rrsets: BTreeMap<(String, RecordType), Rrset>,
}

/// Every embedded zone a node serves, at one routing state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ZoneData {
    pub zones: BTreeMap<ZoneName, ZoneSnapshot>,
}

impl ZoneData {
    /// The embedded zones of `config`, serving `answers` (from `Routing::answers`) as of Raft log
    /// index `log_index`, with one NS per node of the cluster.
    pub fn embedded(
        config: &ClusterConfig,
        answers: &BTreeMap<RrsetKey, Rrset>,
        log_index: u64,
    ) -> Self {
        let mut zones = BTreeMap::new();
        for zone in &config.zones {
            let embedded = match config.provider(&zone.provider) {
                Some(provider) => matches!(provider.kind, ProviderKind::Embedded),
                None => zone.provider.as_str() == EMBEDDED_PROVIDER,
            };
            if !embedded {
                continue;
            }
            let nameservers = config
                .nodes
                .iter()
                .map(|node| NameServer {
                    name: format!("ns{}.{}", node.id, zone.name),
                    address: node.dns_addr.ip(),
                })
                .collect();
            let rrsets = answers
                .iter()
                .filter(|(key, _)| key.zone == zone.name)
                .map(|(key, rrset)| ((key.name.clone(), key.record_type), rrset.clone()))
                .collect();
            zones.insert(
                zone.name.clone(),
                ZoneSnapshot {
                    serial: soa_serial(log_index),
                    nameservers,
                    rrsets,
                },
            );
        }
        Self { zones }
    }
}

/// How many queries got one response code for one zone. `zone` is `None` for queries outside
/// every served zone and for malformed requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryCount {
    pub zone: Option<ZoneName>,
    pub rcode: String,
    pub count: u64,
}

/// A running embedded DNS server (UDP and TCP on one address). Dropping it stops the server.
#[derive(Debug)]
pub struct EmbeddedDns {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl EmbeddedDns {
    /// Binds UDP and TCP on `addr` (port 0 picks one free port for both) and serves `data`.
    pub async fn spawn(addr: SocketAddr, data: ZoneData) -> Result<Self, ProviderError> {
        let served = Served::build(&data)?;
        let (udp, tcp, local_addr) = bind_pair(addr).await?;
        let shared = Arc::new(Shared {
            served: RwLock::new(Arc::new(served)),
            counts: Mutex::new(BTreeMap::new()),
        });
        let mut server = Server::new(Handler {
            shared: shared.clone(),
        });
        server.register_socket(udp);
        server.register_listener(tcp, TCP_IDLE_TIMEOUT, 32);
        let shutdown = server.shutdown_token().clone();
        let task = tokio::spawn(async move {
            if let Err(error) = server.block_until_done().await {
                tracing::error!(%error, "embedded dns server stopped");
            }
        });
        tracing::info!(%local_addr, zones = data.zones.len(), "embedded dns server listening");
        Ok(Self {
            local_addr,
            shared,
            shutdown,
            task: Some(task),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Replaces everything served by `data`, atomically: a query sees either the old snapshot or
    /// the new one, never a mix.
    pub fn update(&self, data: &ZoneData) -> Result<(), ProviderError> {
        let served = Arc::new(Served::build(data)?);
        let current = self.shared.current();
        for zone in &served.zones {
            let previous = current.zones.iter().find(|old| old.zone == zone.zone);
            if let Some(previous) = previous
                && previous.serial != zone.serial
                && !serial_after(previous.serial, zone.serial)
            {
                // Secondaries and caches would ignore this zone's changes until the serial
                // passes the old one again; routing changes are applied in log order, so this
                // means the caller passed something other than the log index.
                tracing::warn!(zone = %zone.zone, previous = previous.serial, serial = zone.serial, "soa serial went backwards");
            }
        }
        *self
            .shared
            .served
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = served;
        Ok(())
    }

    /// The SOA serial served for `zone`, if it is served.
    pub fn serial(&self, zone: &ZoneName) -> Option<u32> {
        self.shared
            .current()
            .zones
            .iter()
            .find(|served| &served.zone == zone)
            .map(|served| served.serial)
    }

    /// Queries answered so far, by zone and response code.
    pub fn query_counts(&self) -> Vec<QueryCount> {
        self.shared
            .counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .map(|((zone, rcode), count)| QueryCount {
                zone: zone.clone(),
                rcode: rcode.clone(),
                count: *count,
            })
            .collect()
    }

    /// Stops accepting queries and waits for the server tasks to end.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for EmbeddedDns {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Binds UDP and TCP to the same address. With port 0 the UDP port the kernel picks may be taken
/// for TCP (by an outgoing connection), so that case tries a few ports.
async fn bind_pair(
    addr: SocketAddr,
) -> Result<(UdpSocket, TcpListener, SocketAddr), ProviderError> {
    let tries = if addr.port() == 0 { 20 } else { 1 };
    let mut last_error = None;
    for _ in 0..tries {
        let udp = UdpSocket::bind(addr)
            .await
            .map_err(|source| ProviderError::Bind { addr, source })?;
        let local_addr = udp
            .local_addr()
            .map_err(|source| ProviderError::Bind { addr, source })?;
        match TcpListener::bind(local_addr).await {
            Ok(tcp) => return Ok((udp, tcp, local_addr)),
            Err(source) => {
                last_error = Some(ProviderError::Bind {
                    addr: local_addr,
                    source,
                })
            }
        }
    }
    Err(last_error.unwrap_or_else(|| ProviderError::Bind {
        addr,
        source: std::io::Error::from(std::io::ErrorKind::AddrInUse),
    }))
}

#[derive(Debug)]
struct Shared {
    served: RwLock<Arc<Served>>,
    counts: Mutex<BTreeMap<(Option<ZoneName>, String), u64>>,
}

impl Shared {
    fn current(&self) -> Arc<Served> {
        self.served
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn count(&self, zone: Option<&ZoneName>, rcode: ResponseCode) {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *counts
            .entry((zone.cloned(), rcode_name(rcode)))
            .or_insert(0) += 1;
    }
}

/// The snapshot compiled into hickory records, ready to answer from.
#[derive(Debug)]
struct Served {
    /// Longest origin first, so the first match is the closest enclosing zone.
    zones: Vec<ServedZone>,
}

#[derive(Debug)]
struct ServedZone {
    zone: ZoneName,
    origin: LowerName,
    serial: u32,
    /// The SOA for the authority section of negative answers, TTL capped at `NEGATIVE_TTL`.
    soa_negative: Record,
    names: HashMap<LowerName, BTreeMap<HType, Vec<Record>>>,
    /// Names with no records but with descendants that have some: they exist (RFC 8020).
    empty_non_terminals: HashSet<LowerName>,
    /// Glue of the apex NS records.
    glue: Vec<Record>,
}

impl Served {
    fn build(data: &ZoneData) -> Result<Self, ProviderError> {
        let mut zones = data
            .zones
            .iter()
            .map(|(zone, snapshot)| ServedZone::build(zone, snapshot))
            .collect::<Result<Vec<_>, _>>()?;
        zones.sort_by_key(|served| std::cmp::Reverse(served.origin.num_labels()));
        Ok(Self { zones })
    }

    fn zone_of(&self, name: &LowerName) -> Option<&ServedZone> {
        self.zones.iter().find(|served| served.origin.zone_of(name))
    }
}

impl ServedZone {
    fn build(zone: &ZoneName, snapshot: &ZoneSnapshot) -> Result<Self, ProviderError> {
        let origin_name = parse_name(zone.as_str())?;
        let origin = LowerName::new(&origin_name);
        let mname = match snapshot.nameservers.first() {
            Some(first) => parse_name(&first.name)?,
            None => parse_name(&format!("ns1.{zone}"))?,
        };
        let rname = parse_name(&format!("hostmaster.{zone}"))?;
        let negative_seconds = ttl_seconds(NEGATIVE_TTL);
        let soa_rdata = RData::SOA(SOA::new(
            mname,
            rname,
            snapshot.serial,
            3600,
            600,
            86_400,
            negative_seconds,
        ));
        let soa = Record::from_rdata(origin_name.clone(), ttl_seconds(SOA_TTL), soa_rdata.clone());
        let soa_negative = Record::from_rdata(
            origin_name.clone(),
            ttl_seconds(SOA_TTL).min(negative_seconds),
            soa_rdata,
        );
        let mut names: HashMap<LowerName, BTreeMap<HType, Vec<Record>>> = HashMap::new();
        let apex = names.entry(origin.clone()).or_default();
        apex.insert(HType::SOA, vec![soa.clone()]);
        let mut ns_records = Vec::new();
        let mut glue = Vec::new();
        for nameserver in &snapshot.nameservers {
            let host = parse_name(&nameserver.name)?;
            ns_records.push(Record::from_rdata(
                origin_name.clone(),
                ttl_seconds(SOA_TTL),
                RData::NS(NS(host.clone())),
            ));
            let record_type = match nameserver.address {
                IpAddr::V4(_) => RecordType::A,
                IpAddr::V6(_) => RecordType::Aaaa,
            };
            let rdata = address_rdata(&nameserver.name, record_type, nameserver.address)?;
            glue.push(Record::from_rdata(host, ttl_seconds(SOA_TTL), rdata));
        }
        apex.insert(HType::NS, ns_records);
        for record in &glue {
            if origin.zone_of(&LowerName::new(&record.name)) {
                names
                    .entry(LowerName::new(&record.name))
                    .or_default()
                    .entry(record.record_type())
                    .or_default()
                    .push(record.clone());
            }
        }
        for ((name, record_type), rrset) in &snapshot.rrsets {
            let owner = parse_name(name)?;
            let lower = LowerName::new(&owner);
            if !origin.zone_of(&lower) {
                return Err(ProviderError::NameOutsideZone {
                    name: name.clone(),
                    zone: zone.clone(),
                });
            }
            let records = rrset
                .values
                .iter()
                .map(|address| {
                    address_rdata(name, *record_type, *address).map(|rdata| {
                        Record::from_rdata(owner.clone(), ttl_seconds(rrset.ttl), rdata)
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            // Configured records replace any glue of the same name and type.
            names
                .entry(lower)
                .or_default()
                .insert(hickory_type(*record_type), records);
        }
        let mut empty_non_terminals = HashSet::new();
        for name in names.keys() {
            let mut parent = name.base_name();
            // Bounded by the number of labels of `name`.
            while parent != origin && origin.zone_of(&parent) && !parent.is_root() {
                if !names.contains_key(&parent) {
                    empty_non_terminals.insert(parent.clone());
                }
                parent = parent.base_name();
            }
        }
        Ok(Self {
            zone: zone.clone(),
            origin,
            serial: snapshot.serial,
            soa_negative,
            names,
            empty_non_terminals,
            glue,
        })
    }
}

/// What to send back for one query.
struct Answer<'a> {
    zone: Option<&'a ZoneName>,
    rcode: ResponseCode,
    authoritative: bool,
    answers: Vec<&'a Record>,
    authorities: Vec<&'a Record>,
    additionals: Vec<&'a Record>,
}

impl<'a> Answer<'a> {
    fn error(zone: Option<&'a ZoneName>, rcode: ResponseCode) -> Self {
        Self {
            zone,
            rcode,
            authoritative: false,
            answers: Vec::new(),
            authorities: Vec::new(),
            additionals: Vec::new(),
        }
    }
}

fn answer<'a>(served: &'a Served, request: &Request) -> Answer<'a> {
    if request.metadata.op_code != OpCode::Query {
        return Answer::error(None, ResponseCode::NotImp);
    }
    let Ok(info) = request.request_info() else {
        return Answer::error(None, ResponseCode::FormErr);
    };
    let query = info.query;
    let name = query.name();
    let Some(zone) = served.zone_of(name) else {
        return Answer::error(None, ResponseCode::Refused);
    };
    if !matches!(query.query_class(), DNSClass::IN | DNSClass::ANY) {
        return Answer::error(Some(&zone.zone), ResponseCode::Refused);
    }
    let query_type = query.query_type();
    if matches!(query_type, HType::AXFR | HType::IXFR) {
        return Answer::error(Some(&zone.zone), ResponseCode::Refused);
    }
    let mut answer = Answer {
        zone: Some(&zone.zone),
        rcode: ResponseCode::NoError,
        authoritative: true,
        answers: Vec::new(),
        authorities: Vec::new(),
        additionals: Vec::new(),
    };
    match zone.names.get(name) {
        Some(rrsets) => {
            if query_type == HType::ANY {
                answer.answers = rrsets.values().flatten().collect();
            } else if let Some(records) = rrsets.get(&query_type) {
                answer.answers = records.iter().collect();
                if query_type == HType::NS && *name == zone.origin {
                    answer.additionals = zone.glue.iter().collect();
                }
            }
            if answer.answers.is_empty() {
                answer.authorities.push(&zone.soa_negative);
            }
        }
        None if zone.empty_non_terminals.contains(name) => {
            answer.authorities.push(&zone.soa_negative);
        }
        None => {
            answer.rcode = ResponseCode::NXDomain;
            answer.authorities.push(&zone.soa_negative);
        }
    }
    answer
}

struct Handler {
    shared: Arc<Shared>,
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let served = self.shared.current();
        let mut response_edns = None;
        let mut answer = answer(&served, request);
        if let Some(request_edns) = &request.edns {
            let mut edns = Edns::new();
            edns.set_max_payload(request_edns.max_payload().max(512));
            edns.set_version(0);
            if request_edns.version() > 0 {
                answer = Answer::error(answer.zone, ResponseCode::BADVERS);
            }
            response_edns = Some(edns);
        }
        self.shared.count(answer.zone, answer.rcode);
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(edns) = &response_edns {
            builder.edns(edns);
        }
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = answer.authoritative;
        metadata.response_code = answer.rcode;
        let response = builder.build(
            metadata,
            answer.answers.iter().copied(),
            answer.authorities.iter().copied(),
            std::iter::empty(),
            answer.additionals.iter().copied(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(error) => {
                tracing::warn!(%error, "embedded dns could not send a response");
                let mut failed = Metadata::response_from_request(&request.metadata);
                failed.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata: failed,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_is_the_log_index_modulo_2_32() {
        assert_eq!(soa_serial(7), 7);
        assert_eq!(soa_serial(u64::from(u32::MAX)), u32::MAX);
        assert_eq!(soa_serial(u64::from(u32::MAX) + 3), 2);
    }

    #[test]
    fn serials_compare_across_the_wrap() {
        assert!(serial_after(1, 2));
        assert!(!serial_after(2, 1));
        assert!(!serial_after(5, 5));
        assert!(serial_after(u32::MAX, soa_serial(u64::from(u32::MAX) + 1)));
        assert!(serial_after(u32::MAX - 10, 5));
    }

    #[test]
    fn snapshot_with_a_name_outside_the_zone_is_refused() {
        let mut rrsets = BTreeMap::new();
        rrsets.insert(
            ("www.other.example.".to_owned(), RecordType::A),
            Rrset {
                ttl: Duration::from_secs(5),
                values: Default::default(),
            },
        );
        let data = ZoneData {
            zones: BTreeMap::from([(
                ZoneName::new("test.example."),
                ZoneSnapshot {
                    serial: 1,
                    nameservers: Vec::new(),
                    rrsets,
                },
            )]),
        };
        assert!(matches!(
            Served::build(&data),
            Err(ProviderError::NameOutsideZone { .. })
        ));
    }
}
