//! HTTP(S) checks over reqwest: one request per fresh connection, no redirects, no proxy.

use std::collections::BTreeMap;
use std::error::Error as _;
use std::io;
use std::net::SocketAddr;

use reqwest::header::{CONNECTION, HOST, HeaderValue};
use reqwest::{Client, Method, redirect};
use switchyard_core::EndpointId;
use switchyard_core::config::HttpCheck;

use crate::error::ProbeError;
use crate::failure::ProbeFailure;
use crate::tls;

/// A check ready to run against one endpoint.
#[derive(Clone, Debug)]
pub(crate) struct HttpProbe {
    client: Client,
    method: Method,
    /// Parsed once here rather than on every probe.
    url: reqwest::Url,
    host: Option<HeaderValue>,
    expected_status: Vec<u16>,
    body_contains: Option<String>,
    body_bytes_max: usize,
}

/// Builds and shares the reqwest clients that HTTP probes use.
#[derive(Debug, Default)]
pub(crate) struct HttpClients {
    /// Plain HTTP, and HTTPS addressed by IP, keyed by whether certificates are verified.
    shared: BTreeMap<bool, Client>,
    /// rustls configurations, keyed by `tls_verify`, built on first use so that a node without a
    /// system root store can still run plain HTTP checks.
    tls_configs: BTreeMap<bool, rustls::ClientConfig>,
}

impl HttpClients {
    fn tls_config(&mut self, verify: bool) -> Result<rustls::ClientConfig, ProbeError> {
        if let Some(config) = self.tls_configs.get(&verify) {
            return Ok(config.clone());
        }
        let config = tls::client_config(verify)?;
        self.tls_configs.insert(verify, config.clone());
        Ok(config)
    }

    fn builder(&mut self, verify: bool) -> Result<reqwest::ClientBuilder, ProbeError> {
        // Every probe opens a fresh connection (no idle pool), as HAProxy and Consul do: a pooled
        // connection would prove that an old connection still works, not that a new one can be
        // made. Redirects are reported as their status; proxies from the environment are ignored
        // because probes must reach the endpoint itself.
        Ok(Client::builder()
            .no_proxy()
            .redirect(redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .http1_only()
            .user_agent(concat!("switchyard-probe/", env!("CARGO_PKG_VERSION")))
            .tls_backend_preconfigured(self.tls_config(verify)?))
    }

    fn shared(&mut self, verify: bool) -> Result<Client, ProbeError> {
        if let Some(client) = self.shared.get(&verify) {
            return Ok(client.clone());
        }
        let client = self
            .builder(verify)?
            .build()
            .map_err(|source| ProbeError::HttpClient { source })?;
        self.shared.insert(verify, client.clone());
        Ok(client)
    }

    pub(crate) fn prepare(
        &mut self,
        endpoint: &EndpointId,
        address: SocketAddr,
        check: &HttpCheck,
        body_bytes_max: usize,
    ) -> Result<HttpProbe, ProbeError> {
        let method =
            Method::from_bytes(check.method.to_ascii_uppercase().as_bytes()).map_err(|_| {
                ProbeError::HttpMethod {
                    endpoint: endpoint.clone(),
                    method: check.method.clone(),
                }
            })?;
        let host = match &check.host {
            Some(host) => Some(
                HeaderValue::from_str(host).map_err(|_| ProbeError::HttpHost {
                    endpoint: endpoint.clone(),
                    host: host.clone(),
                })?,
            ),
            None => None,
        };
        let path = if check.path.starts_with('/') {
            check.path.clone()
        } else {
            format!("/{}", check.path)
        };
        let (client, url) = match (&check.host, check.tls) {
            // HTTPS with a host name: connect to the endpoint's address but send the name as SNI
            // and verify the certificate against it, as a browser asking for that name would.
            // That needs the name in the URL and a client that resolves it to this endpoint.
            (Some(host), true) => {
                let client = self
                    .builder(check.tls_verify)?
                    .resolve(host, address)
                    .build()
                    .map_err(|source| ProbeError::HttpClient { source })?;
                (client, format!("https://{host}:{}{path}", address.port()))
            }
            (_, tls) => {
                let scheme = if tls { "https" } else { "http" };
                // Plain HTTP never uses the TLS configuration, so it takes the one that needs no
                // root store.
                let client = self.shared(tls && check.tls_verify)?;
                (client, format!("{scheme}://{address}{path}"))
            }
        };
        Ok(HttpProbe {
            client,
            method,
            url: reqwest::Url::parse(&url).map_err(|_| ProbeError::HttpUrl {
                endpoint: endpoint.clone(),
                url,
            })?,
            host,
            expected_status: check.expected_status.clone(),
            body_contains: check.body_contains.clone(),
            body_bytes_max,
        })
    }
}

impl HttpProbe {
    /// Runs the check; the caller bounds it with `probe_timeout`.
    pub(crate) async fn run(&self) -> Result<(), ProbeFailure> {
        // One request per connection: saying so lets the server close first, so the TIME_WAIT
        // state of thousands of probes a second lands on the servers, not on this node.
        let mut request = self
            .client
            .request(self.method.clone(), self.url.clone())
            .header(CONNECTION, HeaderValue::from_static("close"));
        if let Some(host) = &self.host {
            request = request.header(HOST, host.clone());
        }
        let mut response = request.send().await.map_err(|error| classify(&error))?;
        let status = response.status().as_u16();
        if !self.expected_status.contains(&status) {
            return Err(ProbeFailure::Status {
                got: status,
                expected: self.expected_status.clone(),
            });
        }
        let Some(expected) = &self.body_contains else {
            return Ok(());
        };
        let needle = expected.as_bytes();
        let mut body = Vec::new();
        // Bounded: stops at `body_bytes_max` bytes, at the end of the body, or when found.
        while body.len() < self.body_bytes_max {
            let Some(chunk) = response.chunk().await.map_err(|error| classify(&error))? else {
                break;
            };
            let searched_from = body.len().saturating_sub(needle.len().saturating_sub(1));
            let room = self.body_bytes_max - body.len();
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if contains(&body[searched_from..], needle) {
                return Ok(());
            }
        }
        Err(ProbeFailure::BodyMismatch {
            expected: expected.clone(),
            bytes_read: body.len(),
        })
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|window| window == needle)
}

/// Sorts a reqwest error into a probe failure by walking its causes.
fn classify(error: &reqwest::Error) -> ProbeFailure {
    if let Some(failure) = classify_cause(error, 0) {
        return failure;
    }
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(current) = source {
        message.push_str(": ");
        message.push_str(&current.to_string());
        source = current.source();
    }
    ProbeFailure::Http { message }
}

/// Cause chains are short; this bounds the walk should one ever loop back on itself.
const CAUSE_DEPTH_MAX: usize = 16;

/// A TLS failure anywhere in the chain wins over the socket error that carries it.
///
/// rustls errors reach us wrapped in one or more `io::Error`s, whose `source()` skips the wrapped
/// error itself, so each `io::Error` is also opened with `get_ref()`.
fn classify_cause(cause: &(dyn std::error::Error + 'static), depth: usize) -> Option<ProbeFailure> {
    let mut current = Some(cause);
    let mut io_failure = None;
    let mut depth = depth;
    while let Some(error) = current {
        depth += 1;
        if depth > CAUSE_DEPTH_MAX {
            break;
        }
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return Some(ProbeFailure::Tls {
                message: tls.to_string(),
            });
        }
        if let Some(io_error) = error.downcast_ref::<io::Error>() {
            if let Some(inner) = io_error.get_ref()
                && let Some(failure @ ProbeFailure::Tls { .. }) = classify_cause(inner, depth)
            {
                return Some(failure);
            }
            io_failure.get_or_insert_with(|| ProbeFailure::from_io(io_error));
        }
        current = error.source();
    }
    io_failure
}

#[cfg(test)]
mod tests {
    use super::contains;

    #[test]
    fn substring_search() {
        assert!(contains(b"status: ok", b"ok"));
        assert!(contains(b"anything", b""));
        assert!(!contains(b"o", b"ok"));
        assert!(!contains(b"status: ko", b"ok"));
    }
}
