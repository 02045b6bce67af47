//! DNS checks: one query over UDP straight to the endpoint, no cache and no retries.
//!
//! hickory-proto encodes and decodes the messages; the exchange itself is a connected tokio UDP
//! socket, so an ICMP port-unreachable comes back as "connection refused" at once instead of a
//! timeout, and the caller's `probe_timeout` bounds everything.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType as WireRecordType};
use switchyard_core::EndpointId;
use switchyard_core::config::{DnsCheck, Rcode, RecordType};
use tokio::net::UdpSocket;

use crate::error::ProbeError;
use crate::failure::{ProbeFailure, rcode_code};

/// Datagrams that are not the answer to our query (stale or spoofed) tolerated per probe.
const FOREIGN_DATAGRAMS_MAX: usize = 8;

/// A classic DNS response over UDP fits 512 bytes; EDNS answers may be larger.
const RESPONSE_BYTES_MAX: usize = 4096;

#[derive(Clone, Debug)]
pub(crate) struct DnsProbe {
    address: SocketAddr,
    name: Name,
    record_type: RecordType,
    expected_rcode: Rcode,
    /// Sorted and deduplicated, so it compares directly with the answer.
    expected_answer: Option<BTreeSet<IpAddr>>,
}

impl DnsProbe {
    pub(crate) fn prepare(
        endpoint: &EndpointId,
        address: SocketAddr,
        check: &DnsCheck,
    ) -> Result<Self, ProbeError> {
        // Names in the configuration may omit the final dot; the query is always absolute.
        let absolute = if check.name.ends_with('.') {
            check.name.clone()
        } else {
            format!("{}.", check.name)
        };
        let name = Name::from_ascii(&absolute).map_err(|error| ProbeError::DnsName {
            endpoint: endpoint.clone(),
            name: check.name.clone(),
            message: error.to_string(),
        })?;
        let probe = Self {
            address,
            name,
            record_type: check.record_type,
            expected_rcode: check.expected_rcode,
            expected_answer: check
                .expected_answer
                .as_ref()
                .map(|answer| answer.iter().copied().collect()),
        };
        // Encode once now so that a name that cannot be sent is a configuration error, not a
        // failure of every probe.
        probe
            .query(0)
            .to_vec()
            .map_err(|error| ProbeError::DnsQuery {
                endpoint: endpoint.clone(),
                message: error.to_string(),
            })?;
        Ok(probe)
    }

    fn query(&self, id: u16) -> Message {
        let wire_type = match self.record_type {
            RecordType::A => WireRecordType::A,
            RecordType::Aaaa => WireRecordType::AAAA,
        };
        let mut message = Message::new(id, MessageType::Query, OpCode::Query);
        // The endpoint is asked directly, as an authoritative server would be.
        message.metadata.recursion_desired = false;
        message.add_query(Query::query(self.name.clone(), wire_type));
        message
    }

    /// Runs the check; the caller bounds it with `probe_timeout`.
    pub(crate) async fn run(&self) -> Result<(), ProbeFailure> {
        let id: u16 = rand::random();
        let request = self
            .query(id)
            .to_vec()
            .map_err(|error| ProbeFailure::DnsMalformed {
                message: format!("cannot encode the query: {error}"),
            })?;
        // A loopback target is answered from loopback; binding there keeps the socket off every
        // other interface.
        let local: SocketAddr = match self.address {
            SocketAddr::V4(address) if address.ip().is_loopback() => {
                (Ipv4Addr::LOCALHOST, 0).into()
            }
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(address) if address.ip().is_loopback() => {
                (Ipv6Addr::LOCALHOST, 0).into()
            }
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let io_failure = |error: std::io::Error| ProbeFailure::from_io(&error);
        let socket = UdpSocket::bind(local).await.map_err(io_failure)?;
        socket.connect(self.address).await.map_err(io_failure)?;
        socket.send(&request).await.map_err(io_failure)?;
        let mut buffer = vec![0u8; RESPONSE_BYTES_MAX];
        for _ in 0..FOREIGN_DATAGRAMS_MAX {
            let length = socket.recv(&mut buffer).await.map_err(io_failure)?;
            let Ok(response) = Message::from_vec(&buffer[..length]) else {
                continue;
            };
            if response.metadata.id != id || response.metadata.message_type != MessageType::Response
            {
                continue;
            }
            return self.judge(&response);
        }
        Err(ProbeFailure::DnsMalformed {
            message: format!("no answer to query {id} among {FOREIGN_DATAGRAMS_MAX} datagrams"),
        })
    }

    fn judge(&self, response: &Message) -> Result<(), ProbeFailure> {
        if response.metadata.truncation {
            return Err(ProbeFailure::DnsMalformed {
                message: "response truncated".to_owned(),
            });
        }
        let got = u16::from(response.metadata.response_code);
        let expected = rcode_code(self.expected_rcode);
        if got != expected {
            return Err(ProbeFailure::DnsRcode {
                got,
                expected: self.expected_rcode,
            });
        }
        let Some(expected_answer) = &self.expected_answer else {
            return Ok(());
        };
        // Only address records count: a CNAME on the way to them is not part of the set.
        let answer: BTreeSet<IpAddr> = response
            .answers
            .iter()
            .filter_map(|record| match &record.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
                _ => None,
            })
            .filter(|address| self.record_type.matches(*address))
            .collect();
        if &answer == expected_answer {
            Ok(())
        } else {
            Err(ProbeFailure::DnsAnswer {
                got: answer.into_iter().collect(),
                expected: expected_answer.iter().copied().collect(),
            })
        }
    }
}
