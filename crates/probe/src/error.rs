//! Errors of setting the prober up. A failed probe is not an error: it is a `ProbeFailure` value.

use switchyard_core::EndpointId;

/// Why a check or the prober could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("endpoint {endpoint}: invalid http method {method:?}")]
    HttpMethod {
        endpoint: EndpointId,
        method: String,
    },
    #[error("endpoint {endpoint}: invalid http host header {host:?}")]
    HttpHost { endpoint: EndpointId, host: String },
    #[error("endpoint {endpoint}: invalid http url {url:?}")]
    HttpUrl { endpoint: EndpointId, url: String },
    #[error("endpoint {endpoint}: invalid dns name {name:?}: {message}")]
    DnsName {
        endpoint: EndpointId,
        name: String,
        message: String,
    },
    #[error("endpoint {endpoint}: cannot encode the dns query: {message}")]
    DnsQuery {
        endpoint: EndpointId,
        message: String,
    },
    #[error("cannot build the tls configuration (verify: {verify}): {source}")]
    TlsSetup {
        verify: bool,
        #[source]
        source: rustls::Error,
    },
    #[error("cannot build the http client: {source}")]
    HttpClient {
        #[source]
        source: reqwest::Error,
    },
}
