//! Why one probe failed: a domain outcome carried in an `Observation`, not an error.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::time::Duration;

use switchyard_core::config::Rcode;

/// The structured reason a probe counted as a failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeFailure {
    /// The whole check (connect, handshake, request, response) did not finish within
    /// `probe_timeout`.
    Timeout { after: Duration },
    /// Nothing listens at the endpoint (TCP RST, or ICMP port unreachable for DNS over UDP).
    ConnectionRefused,
    /// Any other socket error.
    Io {
        kind: io::ErrorKind,
        message: String,
    },
    /// The TLS handshake failed, for example because the certificate does not verify.
    Tls { message: String },
    /// The server broke the HTTP protocol (malformed response, closed mid-response).
    Http { message: String },
    /// The HTTP status is not one of the expected ones.
    Status { got: u16, expected: Vec<u16> },
    /// The first `bytes_read` bytes of the body do not contain the expected text.
    BodyMismatch { expected: String, bytes_read: usize },
    /// The DNS response code is not the expected one (`got` is the numeric RCODE).
    DnsRcode { got: u16, expected: Rcode },
    /// The DNS answer is not exactly the expected address set.
    DnsAnswer {
        got: Vec<IpAddr>,
        expected: Vec<IpAddr>,
    },
    /// The DNS response could not be decoded or does not answer our query.
    DnsMalformed { message: String },
}

impl ProbeFailure {
    pub(crate) fn from_io(error: &io::Error) -> Self {
        match error.kind() {
            io::ErrorKind::ConnectionRefused => ProbeFailure::ConnectionRefused,
            kind => ProbeFailure::Io {
                kind,
                message: error.to_string(),
            },
        }
    }

    /// A short stable name for metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            ProbeFailure::Timeout { .. } => "timeout",
            ProbeFailure::ConnectionRefused => "connection_refused",
            ProbeFailure::Io { .. } => "io",
            ProbeFailure::Tls { .. } => "tls",
            ProbeFailure::Http { .. } => "http",
            ProbeFailure::Status { .. } => "status",
            ProbeFailure::BodyMismatch { .. } => "body_mismatch",
            ProbeFailure::DnsRcode { .. } => "dns_rcode",
            ProbeFailure::DnsAnswer { .. } => "dns_answer",
            ProbeFailure::DnsMalformed { .. } => "dns_malformed",
        }
    }
}

/// The lowercase mnemonic of a numeric DNS RCODE.
pub(crate) fn rcode_name(code: u16) -> String {
    match code {
        0 => "noerror".to_owned(),
        1 => "formerr".to_owned(),
        2 => "servfail".to_owned(),
        3 => "nxdomain".to_owned(),
        4 => "notimp".to_owned(),
        5 => "refused".to_owned(),
        other => format!("rcode {other}"),
    }
}

pub(crate) fn rcode_code(rcode: Rcode) -> u16 {
    match rcode {
        Rcode::Noerror => 0,
        Rcode::Servfail => 2,
        Rcode::Nxdomain => 3,
        Rcode::Refused => 5,
    }
}

fn write_list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
    f.write_str("[")?;
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    f.write_str("]")
}

impl fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeFailure::Timeout { after } => write!(f, "timed out after {after:?}"),
            ProbeFailure::ConnectionRefused => f.write_str("connection refused"),
            ProbeFailure::Io { kind, message } => write!(f, "i/o error ({kind}): {message}"),
            ProbeFailure::Tls { message } => write!(f, "tls handshake failed: {message}"),
            ProbeFailure::Http { message } => write!(f, "http protocol error: {message}"),
            ProbeFailure::Status { got, expected } => {
                write!(f, "http status {got}, expected one of ")?;
                write_list(f, expected)
            }
            ProbeFailure::BodyMismatch {
                expected,
                bytes_read,
            } => write!(
                f,
                "body does not contain {expected:?} (searched {bytes_read} bytes)"
            ),
            ProbeFailure::DnsRcode { got, expected } => write!(
                f,
                "dns rcode {}, expected {}",
                rcode_name(*got),
                rcode_name(rcode_code(*expected))
            ),
            ProbeFailure::DnsAnswer { got, expected } => {
                f.write_str("dns answer ")?;
                write_list(f, got)?;
                f.write_str(", expected exactly ")?;
                write_list(f, expected)
            }
            ProbeFailure::DnsMalformed { message } => {
                write!(f, "malformed dns response: {message}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lowercase_and_structured() {
        let cases = [
            (
                ProbeFailure::Timeout {
                    after: Duration::from_millis(500),
                },
                "timed out after 500ms",
            ),
            (ProbeFailure::ConnectionRefused, "connection refused"),
            (
                ProbeFailure::Status {
                    got: 503,
                    expected: vec![200, 204],
                },
                "http status 503, expected one of [200, 204]",
            ),
            (
                ProbeFailure::BodyMismatch {
                    expected: "ok".to_owned(),
                    bytes_read: 4,
                },
                "body does not contain \"ok\" (searched 4 bytes)",
            ),
            (
                ProbeFailure::DnsRcode {
                    got: 3,
                    expected: Rcode::Noerror,
                },
                "dns rcode nxdomain, expected noerror",
            ),
            (
                ProbeFailure::DnsAnswer {
                    got: vec!["127.0.0.9".parse().unwrap()],
                    expected: vec!["127.0.0.1".parse().unwrap()],
                },
                "dns answer [127.0.0.9], expected exactly [127.0.0.1]",
            ),
        ];
        for (failure, message) in cases {
            assert_eq!(failure.to_string(), message);
        }
    }
}
