//! Switchyard's DNS providers and answer verification.
//!
//! - [`EmbeddedDns`]: the authoritative server every node runs for `embedded` zones, answering
//!   from a [`ZoneData`] snapshot of the routing state that the node replaces on every change.
//! - [`Rfc2136Provider`]: TSIG-signed RFC 2136 updates to an external primary (BIND, Knot), one
//!   message per zone replacing each RRset atomically.
//! - [`verify`]: asks every server directly until each serves the expected answers.
//! - [`DnsProvider`]: the trait the executor pushes through, with [`FakeProvider`] for simulation.
#![forbid(unsafe_code)]

mod embedded;
mod error;
mod exchange;
mod provider;
mod rcode;
mod rfc2136;
mod tsig_key;
mod verify;

pub use embedded::{
    EmbeddedDns, NEGATIVE_TTL, NameServer, QueryCount, SOA_TTL, ZoneData, ZoneSnapshot,
    serial_after, soa_serial,
};
pub use error::{KeyFileProblem, ProviderError, Transport, TsigFailure};
pub use provider::{
    DnsProvider, FakeFailure, FakeProvider, FakePush, FakeRrset, PushReport, RrsetChange,
};
pub use rcode::rcode_name;
pub use rfc2136::{RetryPolicy, Rfc2136Provider};
pub use tsig_key::{TsigAlgorithmName, TsigKey};
pub use verify::{RrsetCheck, ServerRole, VerifyReport, verify};
