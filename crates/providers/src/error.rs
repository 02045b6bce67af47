//! The one error type of this crate: every way pushing, loading a key or serving DNS can fail.
//!
//! No variant carries a TSIG secret or any text derived from one, so errors may be logged and
//! shown to operators as they are.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use switchyard_core::id::ZoneName;

/// How a message travelled to a DNS server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        })
    }
}

/// Why TSIG authentication of an update failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsigFailure {
    /// The server answered BADSIG: it knows the key name but computed a different MAC, so the
    /// secret (or the algorithm) differs from the server's.
    BadSignature,
    /// The server answered BADTIME: the clocks of this node and the server differ by more than
    /// the fudge window.
    BadTime,
    /// The server answered BADTRUNC.
    BadTruncation,
    /// The server answered a TSIG error code this crate does not know.
    Other(u16),
    /// The server answered NOERROR but its TSIG did not verify with our key.
    ResponseNotVerified,
    /// The server answered NOERROR without signing the response.
    ResponseUnsigned,
}

impl fmt::Display for TsigFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TsigFailure::BadSignature => {
                f.write_str("server answered BADSIG: the secret or algorithm differs")
            }
            TsigFailure::BadTime => f.write_str("server answered BADTIME: the clocks differ"),
            TsigFailure::BadTruncation => f.write_str("server answered BADTRUNC"),
            TsigFailure::Other(code) => write!(f, "server answered tsig error {code}"),
            TsigFailure::ResponseNotVerified => {
                f.write_str("the server's response signature did not verify")
            }
            TsigFailure::ResponseUnsigned => f.write_str("the server's response was not signed"),
        }
    }
}

/// What is wrong in a BIND key file. Never quotes the file's text, which holds the secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFileProblem {
    NoKeyStatement,
    MoreThanOneKey,
    UnterminatedString,
    UnterminatedComment,
    UnexpectedToken,
    UnexpectedEnd,
    MissingAlgorithm,
    MissingSecret,
    SecretNotBase64,
    EmptySecret,
    InvalidKeyName,
}

impl fmt::Display for KeyFileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyFileProblem::NoKeyStatement => "no `key \"name\" { ... };` statement",
            KeyFileProblem::MoreThanOneKey => "more than one key statement (expected exactly one)",
            KeyFileProblem::UnterminatedString => "unterminated quoted string",
            KeyFileProblem::UnterminatedComment => "unterminated comment",
            KeyFileProblem::UnexpectedToken => "unexpected token",
            KeyFileProblem::UnexpectedEnd => "unexpected end of file",
            KeyFileProblem::MissingAlgorithm => "key has no `algorithm` clause",
            KeyFileProblem::MissingSecret => "key has no `secret` clause",
            KeyFileProblem::SecretNotBase64 => "secret is not valid base64",
            KeyFileProblem::EmptySecret => "secret is empty",
            KeyFileProblem::InvalidKeyName => "key name is not a valid DNS name",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("cannot read tsig key file {path}: {source}")]
    TsigKeyRead {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("tsig key file {path}, line {line}: {problem}")]
    TsigKeyParse {
        path: PathBuf,
        line: usize,
        problem: KeyFileProblem,
    },
    #[error(
        "tsig key `{key}` uses algorithm `{algorithm}`; only hmac-sha256, hmac-sha384 and hmac-sha512 are supported"
    )]
    TsigAlgorithmUnsupported { key: String, algorithm: String },
    #[error("tsig authentication failed at {server} for zone {zone} with key `{key}`: {failure}")]
    TsigAuthFailed {
        server: SocketAddr,
        zone: ZoneName,
        key: String,
        failure: TsigFailure,
    },
    #[error(
        "update of zone {zone} refused by {server} for key `{key}` ({rcode}): the key is unknown to the server or has no update rights for this zone"
    )]
    UpdateRefused {
        server: SocketAddr,
        zone: ZoneName,
        key: String,
        /// The response code, with the TSIG error when there was one (`NOTAUTH/BADKEY`).
        rcode: String,
    },
    #[error("zone {zone} is not served by {server} as a primary accepting updates ({rcode})")]
    ZoneNotServed {
        server: SocketAddr,
        zone: ZoneName,
        rcode: String,
    },
    #[error("update of zone {zone} failed at {server} with {rcode}")]
    UpdateFailed {
        server: SocketAddr,
        zone: ZoneName,
        rcode: String,
    },
    #[error(
        "dns server {server} unreachable over {transport} after {attempts} attempt(s): {reason}"
    )]
    Unreachable {
        server: SocketAddr,
        transport: Transport,
        attempts: u32,
        reason: String,
    },
    #[error(
        "dns server {server} did not answer over {transport} within {timeout:?} after {attempts} attempt(s)"
    )]
    Timeout {
        server: SocketAddr,
        transport: Transport,
        timeout: Duration,
        attempts: u32,
    },
    #[error("malformed response from {server}: {reason}")]
    MalformedResponse { server: SocketAddr, reason: String },
    #[error("invalid dns name `{name}`: {reason}")]
    InvalidName { name: String, reason: String },
    #[error("record {name} is not inside zone {zone}")]
    NameOutsideZone { name: String, zone: ZoneName },
    #[error("address {address} cannot be in a {record_type} record ({name})")]
    AddressFamilyMismatch {
        name: String,
        record_type: &'static str,
        address: std::net::IpAddr,
    },
    #[error("cannot encode the update of zone {zone}: {reason}")]
    Encode { zone: ZoneName, reason: String },
    #[error("cannot bind the embedded dns server to {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("fake provider failed pushing zone {zone}: injected failure")]
    Injected { zone: ZoneName },
}

impl ProviderError {
    /// Whether trying the same push again later may succeed: the server was unreachable, slow,
    /// or failed internally. Authentication and policy errors need an operator.
    pub fn is_transient(&self) -> bool {
        match self {
            ProviderError::Unreachable { .. }
            | ProviderError::Timeout { .. }
            | ProviderError::MalformedResponse { .. }
            | ProviderError::Injected { .. } => true,
            ProviderError::UpdateFailed { rcode, .. } => rcode == "SERVFAIL",
            _ => false,
        }
    }
}
