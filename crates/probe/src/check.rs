//! Running one check against one endpoint, bounded by `probe_timeout`, into an `Observation`.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use switchyard_core::EndpointId;
use switchyard_core::config::HealthCheck;
use tokio::net::TcpStream;

use crate::dns::DnsProbe;
use crate::error::ProbeError;
use crate::failure::ProbeFailure;
use crate::http::{HttpClients, HttpProbe};
use crate::target::Target;

/// The result of one probe of one endpoint. Local to the node that made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    pub endpoint: EndpointId,
    pub ok: bool,
    /// From the start of the probe to its result (or to the timeout).
    pub latency: Duration,
    /// When the probe started.
    pub at: SystemTime,
    /// Why it failed; `None` exactly when `ok`.
    pub error: Option<ProbeFailure>,
}

/// A check prepared for one endpoint: parsed, encoded and with its HTTP client chosen, so that
/// running it allocates little and cannot fail for configuration reasons.
#[derive(Clone, Debug)]
pub struct PreparedCheck {
    endpoint: EndpointId,
    kind: CheckKind,
}

#[derive(Clone, Debug)]
enum CheckKind {
    Http(HttpProbe),
    Tcp(SocketAddr),
    Dns(DnsProbe),
}

impl PreparedCheck {
    pub fn endpoint(&self) -> &EndpointId {
        &self.endpoint
    }

    /// `http`, `tcp` or `dns`, as `HealthCheck::kind` names them.
    pub fn kind(&self) -> &'static str {
        match self.kind {
            CheckKind::Http(_) => "http",
            CheckKind::Tcp(_) => "tcp",
            CheckKind::Dns(_) => "dns",
        }
    }

    /// Runs the check once. Never fails: every problem is a failed observation.
    pub async fn run(&self, timeout: Duration) -> Observation {
        let at = SystemTime::now();
        let started = Instant::now();
        let outcome = match tokio::time::timeout(timeout, self.run_unbounded()).await {
            Ok(outcome) => outcome,
            Err(_) => Err(ProbeFailure::Timeout { after: timeout }),
        };
        Observation {
            endpoint: self.endpoint.clone(),
            ok: outcome.is_ok(),
            latency: started.elapsed(),
            at,
            error: outcome.err(),
        }
    }

    async fn run_unbounded(&self) -> Result<(), ProbeFailure> {
        match &self.kind {
            CheckKind::Http(probe) => probe.run().await,
            CheckKind::Tcp(address) => match TcpStream::connect(address).await {
                // Dropping the stream closes the connection: connecting was the whole check.
                Ok(_stream) => Ok(()),
                Err(error) => Err(ProbeFailure::from_io(&error)),
            },
            CheckKind::Dns(probe) => probe.run().await,
        }
    }
}

/// Prepares checks; holds the HTTP clients that prepared HTTP checks share.
#[derive(Debug)]
pub struct Checker {
    http_clients: HttpClients,
    body_bytes_max: usize,
}

impl Checker {
    /// The default limit on how much of an HTTP body is searched for `body_contains`.
    pub const BODY_BYTES_MAX: usize = 64 * 1024;

    /// `body_bytes_max` bounds the HTTP body read when a check looks for a substring.
    pub fn new(body_bytes_max: usize) -> Self {
        crate::install_crypto_provider();
        Self {
            http_clients: HttpClients::default(),
            body_bytes_max,
        }
    }

    pub fn prepare(&mut self, target: &Target) -> Result<PreparedCheck, ProbeError> {
        let kind = match &target.check {
            HealthCheck::Http(check) => CheckKind::Http(self.http_clients.prepare(
                &target.endpoint,
                target.address,
                check,
                self.body_bytes_max,
            )?),
            HealthCheck::Tcp => CheckKind::Tcp(target.address),
            HealthCheck::Dns(check) => {
                CheckKind::Dns(DnsProbe::prepare(&target.endpoint, target.address, check)?)
            }
        };
        Ok(PreparedCheck {
            endpoint: target.endpoint.clone(),
            kind,
        })
    }
}

impl Default for Checker {
    fn default() -> Self {
        Self::new(Self::BODY_BYTES_MAX)
    }
}
