//! RFC 2136 dynamic updates signed with TSIG: one UPDATE message per zone that replaces each RRset
//! atomically, to an external primary such as BIND or Knot.
//!
//! Response mapping, as observed from BIND 9.18 and Knot 3.2 (see the integration tests):
//!
//! | situation | BIND | Knot | error |
//! | --- | --- | --- | --- |
//! | wrong secret | NOTAUTH, TSIG BADSIG (unsigned) | NOTAUTH, TSIG BADSIG (unsigned) | `TsigAuthFailed` |
//! | unknown key name | NOTAUTH, TSIG BADKEY | NOTAUTH, TSIG BADKEY | `UpdateRefused` |
//! | key without update rights | REFUSED (signed) | NOTAUTH, TSIG BADKEY (unsigned) | `UpdateRefused` |
//! | zone not served | NOTAUTH (signed) | NOTAUTH (unsigned) | `ZoneNotServed` |
//!
//! Knot answers BADKEY for every key its ACL does not allow, so "unknown key" and "key without
//! rights" cannot be told apart there; both become `UpdateRefused`.

use std::collections::VecDeque;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode, UpdateMessage};
use hickory_proto::rr::rdata::tsig::TsigError;
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType as HickoryType, TSigner};
use switchyard_core::config::{Provider, ProviderKind, RecordType};
use switchyard_core::id::ZoneName;
use tokio::time::Instant;

use crate::error::{ProviderError, Transport, TsigFailure};
use crate::exchange::{self, ExchangeError};
use crate::provider::{DnsProvider, PushReport, RrsetChange};
use crate::rcode::rcode_name;
use crate::tsig_key::TsigKey;

/// How often and how patiently a push is retried after a transient failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; at least 1.
    pub attempts_max: u32,
    /// Wait before the second attempt; doubled for each further one.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts_max: 3,
            backoff_initial: Duration::from_millis(200),
            backoff_max: Duration::from_secs(2),
        }
    }
}

/// Messages up to this size go over UDP; larger ones over TCP. 512 bytes is the size every server
/// accepts without EDNS, and TCP costs little for the rare large change.
const UDP_REQUEST_MAX: usize = 512;

/// Pushes RRsets to one primary with TSIG-signed RFC 2136 updates.
pub struct Rfc2136Provider {
    server: SocketAddr,
    key: TsigKey,
    signer: TSigner,
    /// Deadline of each attempt.
    timeout: Duration,
    retry: RetryPolicy,
}

impl fmt::Debug for Rfc2136Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rfc2136Provider")
            .field("server", &self.server)
            .field("key", &self.key)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish()
    }
}

impl Rfc2136Provider {
    pub fn new(server: SocketAddr, key: TsigKey, timeout: Duration) -> Result<Self, ProviderError> {
        let signer = key.signer()?;
        Ok(Self {
            server,
            key,
            signer,
            timeout,
            retry: RetryPolicy::default(),
        })
    }

    /// The provider a configured `rfc2136` provider describes, with its key loaded from its key
    /// file; `None` for other kinds of provider.
    pub fn from_config(provider: &Provider) -> Result<Option<Self>, ProviderError> {
        match &provider.kind {
            ProviderKind::Rfc2136 {
                server,
                tsig_key_file,
                timeout,
            } => {
                let key = TsigKey::load(tsig_key_file)?;
                Self::new(*server, key, *timeout).map(Some)
            }
            ProviderKind::Embedded | ProviderKind::Powerdns { .. } => Ok(None),
        }
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = RetryPolicy {
            attempts_max: retry.attempts_max.max(1),
            ..retry
        };
        self
    }

    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// Replaces every RRset in `changes` with one UPDATE message to `zone`, retrying transient
    /// failures with backoff. Replacing is idempotent, so a retry after a lost response is safe.
    ///
    /// A DNS message holds at most 65,535 bytes, about 2,500 single-address RRsets. A larger change
    /// is sent as several messages, each holding whole RRsets: every RRset is still replaced
    /// atomically, but the change as a whole is not, and a failure leaves the earlier messages
    /// applied (pushing again completes it).
    pub async fn push(
        &self,
        zone: &ZoneName,
        changes: &[RrsetChange],
    ) -> Result<PushReport, ProviderError> {
        let started = Instant::now();
        let mut report = PushReport {
            zone: zone.clone(),
            server: Some(self.server),
            rrsets: changes.len(),
            records: 0,
            transport: None,
            messages: 0,
            attempts: 0,
            message_bytes: 0,
            elapsed: Duration::ZERO,
        };
        for (message, records) in update_messages(zone, changes)? {
            let (transport, attempts, message_bytes) = self.send_with_retry(zone, &message).await?;
            report.records += records;
            report.messages += 1;
            report.attempts += attempts;
            report.message_bytes += message_bytes;
            report.transport = report.transport.max(Some(transport));
        }
        report.elapsed = started.elapsed();
        Ok(report)
    }

    /// Sends one message until it succeeds, fails for good, or the attempts run out; returns the
    /// transport, the attempts made and the signed size.
    async fn send_with_retry(
        &self,
        zone: &ZoneName,
        message: &Message,
    ) -> Result<(Transport, u32, usize), ProviderError> {
        let mut backoff = self.retry.backoff_initial;
        let mut attempt = 1;
        // Bounded by `attempts_max`.
        loop {
            match self.attempt(zone, message, attempt).await {
                Ok((transport, message_bytes)) => return Ok((transport, attempt, message_bytes)),
                Err(error) if error.is_transient() && attempt < self.retry.attempts_max => {
                    tracing::warn!(server = %self.server, %zone, attempt, %error, "update failed, retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.retry.backoff_max);
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn attempt(
        &self,
        zone: &ZoneName,
        message: &Message,
        attempt: u32,
    ) -> Result<(Transport, usize), ProviderError> {
        let mut signed = message.clone();
        let verifier =
            signed
                .finalize(&self.signer, unix_now())
                .map_err(|error| ProviderError::Encode {
                    zone: zone.clone(),
                    reason: error.to_string(),
                })?;
        let bytes = signed.to_vec().map_err(|error| ProviderError::Encode {
            zone: zone.clone(),
            reason: error.to_string(),
        })?;
        if is_truncated(&bytes) {
            return Err(ProviderError::Encode {
                zone: zone.clone(),
                reason: "update larger than one dns message".to_owned(),
            });
        }
        let mut transport = if bytes.len() > UDP_REQUEST_MAX {
            Transport::Tcp
        } else {
            Transport::Udp
        };
        let mut response = self.exchange(transport, &bytes, attempt).await?;
        if transport == Transport::Udp && is_truncated(&response) {
            transport = Transport::Tcp;
            response = self.exchange(transport, &bytes, attempt).await?;
        }
        self.interpret(zone, &response, verifier)?;
        Ok((transport, bytes.len()))
    }

    async fn exchange(
        &self,
        transport: Transport,
        request: &[u8],
        attempt: u32,
    ) -> Result<Vec<u8>, ProviderError> {
        let result = match transport {
            Transport::Udp => exchange::udp(self.server, request, self.timeout).await,
            Transport::Tcp => exchange::tcp(self.server, request, self.timeout).await,
        };
        result.map_err(|error| match error {
            ExchangeError::Unreachable(source) => ProviderError::Unreachable {
                server: self.server,
                transport,
                attempts: attempt,
                reason: source.to_string(),
            },
            ExchangeError::Timeout => ProviderError::Timeout {
                server: self.server,
                transport,
                timeout: self.timeout,
                attempts: attempt,
            },
        })
    }

    fn interpret(
        &self,
        zone: &ZoneName,
        bytes: &[u8],
        verifier: Option<hickory_proto::rr::TSigVerifier>,
    ) -> Result<(), ProviderError> {
        let response =
            Message::from_vec(bytes).map_err(|error| ProviderError::MalformedResponse {
                server: self.server,
                reason: error.to_string(),
            })?;
        if response.metadata.message_type != MessageType::Response
            || response.metadata.op_code != OpCode::Update
        {
            return Err(ProviderError::MalformedResponse {
                server: self.server,
                reason: "not a response to an update".to_owned(),
            });
        }
        let code = response.metadata.response_code;
        let tsig_error = response
            .signature()
            .and_then(|signature| signature.data.error);
        let auth_failed = |failure| ProviderError::TsigAuthFailed {
            server: self.server,
            zone: zone.clone(),
            key: self.key.name().to_owned(),
            failure,
        };
        match tsig_error {
            Some(TsigError::BadKey) => {
                return Err(ProviderError::UpdateRefused {
                    server: self.server,
                    zone: zone.clone(),
                    key: self.key.name().to_owned(),
                    rcode: format!("{}/BADKEY", rcode_name(code)),
                });
            }
            Some(TsigError::BadSig) => return Err(auth_failed(TsigFailure::BadSignature)),
            Some(TsigError::BadTime) => return Err(auth_failed(TsigFailure::BadTime)),
            Some(TsigError::BadTrunc) => return Err(auth_failed(TsigFailure::BadTruncation)),
            Some(TsigError::Unknown(other)) => return Err(auth_failed(TsigFailure::Other(other))),
            None => {}
        }
        match code {
            ResponseCode::NoError => {
                if response.signature().is_none() {
                    return Err(auth_failed(TsigFailure::ResponseUnsigned));
                }
                let Some(mut verifier) = verifier else {
                    return Err(auth_failed(TsigFailure::ResponseNotVerified));
                };
                verifier
                    .verify(bytes)
                    .map_err(|_| auth_failed(TsigFailure::ResponseNotVerified))?;
                Ok(())
            }
            ResponseCode::Refused => Err(ProviderError::UpdateRefused {
                server: self.server,
                zone: zone.clone(),
                key: self.key.name().to_owned(),
                rcode: rcode_name(code),
            }),
            ResponseCode::NotAuth | ResponseCode::NotZone => Err(ProviderError::ZoneNotServed {
                server: self.server,
                zone: zone.clone(),
                rcode: rcode_name(code),
            }),
            other => Err(ProviderError::UpdateFailed {
                server: self.server,
                zone: zone.clone(),
                rcode: rcode_name(other),
            }),
        }
    }
}

#[async_trait::async_trait]
impl DnsProvider for Rfc2136Provider {
    async fn push(
        &self,
        zone: &ZoneName,
        changes: &[RrsetChange],
    ) -> Result<PushReport, ProviderError> {
        Rfc2136Provider::push(self, zone, changes).await
    }
}

fn is_truncated(response: &[u8]) -> bool {
    // Byte 2 of the header holds QR, OPCODE, AA, TC, RD; TC is 0x02.
    response.get(2).is_some_and(|flags| flags & 0x02 != 0)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

pub(crate) fn parse_name(text: &str) -> Result<Name, ProviderError> {
    let mut name = Name::from_ascii(text).map_err(|error| ProviderError::InvalidName {
        name: text.to_owned(),
        reason: error.to_string(),
    })?;
    name.set_fqdn(true);
    Ok(name)
}

pub(crate) fn hickory_type(record_type: RecordType) -> HickoryType {
    match record_type {
        RecordType::A => HickoryType::A,
        RecordType::Aaaa => HickoryType::AAAA,
    }
}

pub(crate) fn ttl_seconds(ttl: Duration) -> u32 {
    u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX)
}

/// The rdata of `address` in a record of `record_type`, or an error when the family differs.
pub(crate) fn address_rdata(
    name: &str,
    record_type: RecordType,
    address: IpAddr,
) -> Result<RData, ProviderError> {
    match (record_type, address) {
        (RecordType::A, IpAddr::V4(v4)) => Ok(RData::A(A(v4))),
        (RecordType::Aaaa, IpAddr::V6(v6)) => Ok(RData::AAAA(AAAA(v6))),
        _ => Err(ProviderError::AddressFamilyMismatch {
            name: name.to_owned(),
            record_type: record_type.as_str(),
            address,
        }),
    }
}

/// The largest DNS message (TCP length prefix), less room for the header, zone section and TSIG.
const MESSAGE_BUDGET: usize = 65_535 - 1_024;

/// The UPDATE messages carrying `changes`, each with its number of added records: one message
/// unless the change is too large for one, then runs of whole RRsets that each fit.
fn update_messages(
    zone: &ZoneName,
    changes: &[RrsetChange],
) -> Result<Vec<(Message, usize)>, ProviderError> {
    let mut pending: VecDeque<&[RrsetChange]> = estimated_runs(changes).into();
    let mut messages = Vec::new();
    // Bounded: each iteration either emits a run or halves it, and a run of one RRset that does
    // not fit is an error.
    while let Some(run) = pending.pop_front() {
        let (message, records) = update_message(zone, run)?;
        // hickory's encoder stops at 65,535 bytes and sets TC instead of failing.
        let size = match message.to_vec() {
            Ok(bytes) if !is_truncated(&bytes) => bytes.len(),
            _ => usize::MAX,
        };
        if size <= MESSAGE_BUDGET {
            messages.push((message, records));
        } else if run.len() > 1 {
            let (first, second) = run.split_at(run.len() / 2);
            pending.push_front(second);
            pending.push_front(first);
        } else {
            return Err(ProviderError::Encode {
                zone: zone.clone(),
                reason: format!(
                    "rrset {} {} has {} values, more than one dns message holds",
                    run[0].name,
                    run[0].record_type.as_str(),
                    run[0].values.len()
                ),
            });
        }
    }
    Ok(messages)
}

/// Splits `changes` into runs of whole RRsets whose estimated size fits one message. The
/// estimate counts every name uncompressed: hickory compresses names only in the first 16 KiB
/// of a message (the reach of a compression pointer), so that is the size of most records.
fn estimated_runs(changes: &[RrsetChange]) -> Vec<&[RrsetChange]> {
    let mut runs = Vec::new();
    let mut start = 0;
    let mut size = 0;
    for (index, change) in changes.iter().enumerate() {
        // The wire form of a name is at most its text plus two bytes. Each record adds type,
        // class, TTL and length (10 bytes) and its address.
        let name = change.name.len() + 2;
        let address = match change.record_type {
            RecordType::A => 4,
            RecordType::Aaaa => 16,
        };
        let change_size = name + 10 + change.values.len() * (name + 10 + address);
        if size + change_size > MESSAGE_BUDGET && index > start {
            runs.push(&changes[start..index]);
            start = index;
            size = 0;
        }
        size += change_size;
    }
    runs.push(&changes[start..]);
    runs
}

/// The unsigned UPDATE message replacing each RRset of `changes`, and the number of records added.
fn update_message(
    zone: &ZoneName,
    changes: &[RrsetChange],
) -> Result<(Message, usize), ProviderError> {
    let origin = parse_name(zone.as_str())?;
    let mut message = Message::query();
    message.metadata.op_code = OpCode::Update;
    message.metadata.recursion_desired = false;
    let mut query = Query::new();
    query
        .set_name(origin.clone())
        .set_query_class(DNSClass::IN)
        .set_query_type(HickoryType::SOA);
    message.add_zone(query);
    let mut records = 0;
    for change in changes {
        let name = parse_name(&change.name)?;
        if !origin.zone_of(&name) {
            return Err(ProviderError::NameOutsideZone {
                name: change.name.clone(),
                zone: zone.clone(),
            });
        }
        // RFC 2136 2.5.2: CLASS ANY, TTL 0, empty RDATA deletes the whole RRset. The additions
        // that follow in the same message are applied after it, atomically.
        let mut delete = Record::update0(name.clone(), 0, hickory_type(change.record_type));
        delete.dns_class = DNSClass::ANY;
        message.add_update(delete);
        for address in &change.values {
            let rdata = address_rdata(&change.name, change.record_type, *address)?;
            message.add_update(Record::from_rdata(
                name.clone(),
                ttl_seconds(change.ttl),
                rdata,
            ));
            records += 1;
        }
    }
    Ok((message, records))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    use switchyard_core::routing::{Rrset, RrsetKey};

    fn change(name: &str, values: &[&str]) -> RrsetChange {
        RrsetChange {
            name: name.to_owned(),
            record_type: RecordType::A,
            ttl: Duration::from_secs(30),
            values: values.iter().map(|value| value.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn update_deletes_each_rrset_before_adding_its_records() {
        let zone = ZoneName::new("test.example.");
        let changes = [
            change("www.test.example.", &["192.0.2.1", "192.0.2.2"]),
            change("api.test.example.", &[]),
        ];
        let (message, records) = update_message(&zone, &changes).unwrap();
        assert_eq!(records, 2);
        let updates = message.updates();
        let summary: Vec<_> = updates
            .iter()
            .map(|record| {
                (
                    record.name.to_string(),
                    record.dns_class,
                    record.ttl,
                    record.record_type(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (
                    "www.test.example.".to_owned(),
                    DNSClass::ANY,
                    0,
                    HickoryType::A
                ),
                (
                    "www.test.example.".to_owned(),
                    DNSClass::IN,
                    30,
                    HickoryType::A
                ),
                (
                    "www.test.example.".to_owned(),
                    DNSClass::IN,
                    30,
                    HickoryType::A
                ),
                (
                    "api.test.example.".to_owned(),
                    DNSClass::ANY,
                    0,
                    HickoryType::A
                ),
            ]
        );
        assert_eq!(message.metadata.op_code, OpCode::Update);
        assert_eq!(message.zones()[0].name().to_string(), "test.example.");
    }

    #[test]
    fn update_refuses_names_outside_the_zone_and_wrong_families() {
        let zone = ZoneName::new("test.example.");
        let outside = update_message(&zone, &[change("www.other.example.", &["192.0.2.1"])]);
        assert!(matches!(
            outside,
            Err(ProviderError::NameOutsideZone { .. })
        ));
        let family = update_message(&zone, &[change("www.test.example.", &["2001:db8::1"])]);
        assert!(matches!(
            family,
            Err(ProviderError::AddressFamilyMismatch { .. })
        ));
    }

    #[test]
    fn large_changes_split_between_rrsets_and_fit_one_message_each() {
        let zone = ZoneName::new("test.example.");
        let changes: Vec<_> = (0..10_000)
            .map(|n| {
                let address = format!("10.{}.{}.{}", n / 65_536, n / 256 % 256, n % 256);
                change(&format!("host{n}.test.example."), &[address.as_str()])
            })
            .collect();
        let messages = update_messages(&zone, &changes).unwrap();
        assert!(
            messages.len() > 1 && messages.len() <= 12,
            "{}",
            messages.len()
        );
        assert_eq!(
            messages.iter().map(|(_, records)| records).sum::<usize>(),
            10_000
        );
        for (message, _) in &messages {
            assert!(message.to_vec().unwrap().len() <= MESSAGE_BUDGET);
        }
        assert_eq!(update_messages(&zone, &changes[..1]).unwrap().len(), 1);
        assert_eq!(update_messages(&zone, &[]).unwrap().len(), 1);
        let huge: Vec<String> = (0..20_000)
            .map(|n| format!("10.0.{}.{}", n / 256, n % 256))
            .collect();
        let huge: Vec<&str> = huge.iter().map(String::as_str).collect();
        let too_big = update_messages(&zone, &[change("www.test.example.", &huge)]);
        assert!(matches!(too_big, Err(ProviderError::Encode { .. })));
    }

    #[tokio::test]
    async fn silent_server_times_out_after_the_configured_attempts() {
        // Bound but never read: the update is delivered and never answered.
        let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let server = silent.local_addr().unwrap();
        let key = TsigKey::new(
            "upd",
            crate::tsig_key::TsigAlgorithmName::HmacSha256,
            vec![7; 32],
        )
        .unwrap();
        let provider = Rfc2136Provider::new(server, key, Duration::from_millis(100))
            .unwrap()
            .with_retry(RetryPolicy {
                attempts_max: 2,
                backoff_initial: Duration::from_millis(10),
                backoff_max: Duration::from_millis(10),
            });
        let zone = ZoneName::new("test.example.");
        let error = provider
            .push(&zone, &[change("www.test.example.", &["192.0.2.1"])])
            .await
            .expect_err("no answer");
        assert!(
            matches!(
                error,
                ProviderError::Timeout {
                    attempts: 2,
                    transport: Transport::Udp,
                    ..
                }
            ),
            "{error:?}"
        );
        drop(silent);
    }

    #[test]
    fn changes_group_answers_by_zone() {
        let mut answers = BTreeMap::new();
        for (zone, name) in [("a.test.", "www.a.test."), ("b.test.", "www.b.test.")] {
            answers.insert(
                RrsetKey {
                    zone: ZoneName::new(zone),
                    name: name.to_owned(),
                    record_type: RecordType::A,
                },
                Rrset {
                    ttl: Duration::from_secs(5),
                    values: BTreeSet::from(["192.0.2.1".parse().unwrap()]),
                },
            );
        }
        let zones = RrsetChange::by_zone(&answers);
        assert_eq!(zones.len(), 2);
        assert_eq!(zones[&ZoneName::new("b.test.")][0].name, "www.b.test.");
    }
}
