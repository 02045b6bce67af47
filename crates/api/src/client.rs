//! A typed client of the `/v1/` API, used by the CLI and the tests.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorBody};
use crate::sites::{Services, Sites};
use crate::types::{AuditPage, Health, NewAnnotation, Status, WriteResult};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach {url}: {source}")]
    Unreachable { url: String, source: reqwest::Error },
    #[error("{url} answered {status}: {error}")]
    Api {
        url: String,
        status: u16,
        error: ApiError,
    },
    #[error("{url} answered {status} with an unreadable body: {body}")]
    Malformed {
        url: String,
        status: u16,
        body: String,
    },
}

impl ClientError {
    /// The API error code, when the server answered with one.
    pub fn api_error(&self) -> Option<&ApiError> {
        match self {
            ClientError::Api { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// A client bound to one node's API address and one bearer token.
#[derive(Clone, Debug)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// `base` is the node's API root, such as `http://127.0.0.1:7201`.
    pub fn new(base: impl Into<String>, token: Option<String>, timeout: Duration) -> Self {
        ensure_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .build()
            // Only TLS back-end initialisation can fail here, and this client has none.
            .expect("reqwest client without TLS builds");
        Self {
            base: base.into().trim_end_matches('/').to_owned(),
            token,
            http,
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn health(&self) -> Result<Health, ClientError> {
        self.call(Method::GET, "/v1/health", None::<&()>).await
    }

    pub async fn status(&self, consistent: bool) -> Result<Status, ClientError> {
        let path = if consistent {
            "/v1/status?consistent=true"
        } else {
            "/v1/status"
        };
        self.call(Method::GET, path, None::<&()>).await
    }

    pub async fn audit(
        &self,
        from: u64,
        limit: u64,
        verify: bool,
    ) -> Result<AuditPage, ClientError> {
        let path = format!("/v1/audit?from={from}&limit={limit}&verify={verify}");
        self.call(Method::GET, &path, None::<&()>).await
    }

    pub async fn annotate(&self, text: &str) -> Result<WriteResult, ClientError> {
        let body = NewAnnotation {
            text: text.to_owned(),
        };
        self.call(Method::POST, "/v1/annotations", Some(&body))
            .await
    }

    /// Site states with their evidence, as the answering node's replica holds them;
    /// `consistent` confirms with a quorum first.
    pub async fn sites(&self, consistent: bool) -> Result<Sites, ClientError> {
        let path = if consistent {
            "/v1/sites?consistent=true"
        } else {
            "/v1/sites"
        };
        self.call(Method::GET, path, None::<&()>).await
    }

    /// The health of every service in every site where it has endpoints; `consistent`
    /// confirms with a quorum first.
    pub async fn services(&self, consistent: bool) -> Result<Services, ClientError> {
        let path = if consistent {
            "/v1/services?consistent=true"
        } else {
            "/v1/services"
        };
        self.call(Method::GET, path, None::<&()>).await
    }

    /// Any call, for paths without a typed method yet.
    pub async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: url.clone(),
                source,
            })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: url.clone(),
                source,
            })?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|_| malformed(&url, status, &bytes));
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => Err(ClientError::Api {
                url,
                status: status.as_u16(),
                error: body.into(),
            }),
            Err(_) => Err(malformed(&url, status, &bytes)),
        }
    }
}

/// Installs rustls's ring provider as the process default unless one is already installed.
///
/// reqwest is built without a bundled provider (one crypto back-end for the whole build, see
/// DEPENDENCIES.md) and refuses to build a client until one is installed, even for plain HTTP.
pub fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another installer is fine: either way a provider is installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

fn malformed(url: &str, status: StatusCode, bytes: &[u8]) -> ClientError {
    let body = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned();
    ClientError::Malformed {
        url: url.to_owned(),
        status: status.as_u16(),
        body,
    }
}

/// Routing: the routing in force and changes to it.
impl Client {
    /// `GET /v1/routing`; `consistent` confirms with a quorum first.
    pub async fn routing(&self, consistent: bool) -> Result<crate::RoutingView, ClientError> {
        let path = if consistent {
            "/v1/routing?consistent=true"
        } else {
            "/v1/routing"
        };
        self.call(Method::GET, path, None::<&()>).await
    }

    /// `POST /v1/routing/changes`: commits `change` once the safety rules allow it.
    pub async fn change_routing(
        &self,
        change: crate::RoutingChangeRequest,
        reason: &str,
    ) -> Result<WriteResult, ClientError> {
        let body = crate::NewRoutingChange {
            change,
            reason: reason.to_owned(),
        };
        self.call(Method::POST, "/v1/routing/changes", Some(&body))
            .await
    }
}

/// Runbooks and executions.
impl Client {
    /// `POST /v1/runbooks`: validates `source` on the server and stores it as a new version.
    /// An invalid runbook is `Ok(Err(..))` with every diagnostic; other refusals are errors.
    pub async fn apply_runbook(
        &self,
        source: &str,
        file: Option<&str>,
    ) -> Result<Result<crate::RunbookApplied, crate::RunbookInvalid>, ClientError> {
        let body = crate::NewRunbook {
            source: source.to_owned(),
            file: file.map(str::to_owned),
        };
        let url = format!("{}/v1/runbooks", self.base);
        let mut request = self.http.post(&url).json(&body);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let unreachable = |source| ClientError::Unreachable {
            url: url.clone(),
            source,
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(unreachable)?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map(Ok)
                .map_err(|_| malformed(&url, status, &bytes));
        }
        if status == StatusCode::BAD_REQUEST
            && let Ok(invalid) = serde_json::from_slice::<crate::RunbookInvalid>(&bytes)
        {
            return Ok(Err(invalid));
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => Err(ClientError::Api {
                url,
                status: status.as_u16(),
                error: body.into(),
            }),
            Err(_) => Err(malformed(&url, status, &bytes)),
        }
    }

    /// `GET /v1/runbooks`: the latest version of every runbook.
    pub async fn runbooks(&self) -> Result<crate::RunbookList, ClientError> {
        self.call(Method::GET, "/v1/runbooks", None::<&()>).await
    }

    /// `GET /v1/runbooks/{name}`: version `version`, or the latest, with its source.
    pub async fn runbook(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> Result<crate::RunbookDetail, ClientError> {
        let path = match version {
            Some(version) => format!("/v1/runbooks/{}?version={version}", path_segment(name)),
            None => format!("/v1/runbooks/{}", path_segment(name)),
        };
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// `POST /v1/executions`: starts a manual run or a drill.
    pub async fn start_execution(
        &self,
        request: &crate::NewExecution,
    ) -> Result<crate::ExecutionStarted, ClientError> {
        self.call(Method::POST, "/v1/executions", Some(request))
            .await
    }

    /// `GET /v1/executions`: every execution, newest first.
    pub async fn executions(&self) -> Result<crate::ExecutionList, ClientError> {
        self.call(Method::GET, "/v1/executions", None::<&()>).await
    }

    /// `GET /v1/executions/{id}`: the full record with its timeline and recovery times.
    pub async fn execution(&self, id: u64) -> Result<crate::ExecutionDetail, ClientError> {
        self.call(Method::GET, &format!("/v1/executions/{id}"), None::<&()>)
            .await
    }

    /// `POST /v1/executions/{id}/abort`: no new step starts; the execution ends `aborted`.
    pub async fn abort_execution(
        &self,
        id: u64,
    ) -> Result<crate::ExecutionAbortResult, ClientError> {
        self.call(
            Method::POST,
            &format!("/v1/executions/{id}/abort"),
            None::<&()>,
        )
        .await
    }
}

/// `text` safe to put in one path segment: everything but unreserved characters is
/// percent-encoded (runbook names are plain, but a typo must not change the path).
fn path_segment(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}
