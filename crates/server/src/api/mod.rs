//! The REST API under `/v1/`: routing, shared state, and extractors for the caller and bodies.

mod annotations;
mod audit;
mod consistent;
mod executions;
mod forward;
mod respond;
mod routing;
mod runbooks;
mod sites;
mod status;
mod write;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::routing::{get, post};
use switchyard_api::{ApiError, ErrorCode};
use switchyard_core::config::ClusterConfig;
use switchyard_core::id::NodeId;
use switchyard_raft::RaftNode;

use crate::auth::{Authenticator, Caller};
use crate::metrics::Metrics;
pub use respond::ErrorResponse;

/// Largest request body accepted; annotations and runbooks are far smaller.
const BODY_BYTES_MAX: usize = 256 * 1024;

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
pub struct Inner {
    pub node: NodeId,
    pub config: ClusterConfig,
    pub raft: RaftNode,
    pub authenticator: Authenticator,
    /// Client for forwarding writes to the leader's API.
    pub http: reqwest::Client,
    pub metrics: Metrics,
}

impl std::ops::Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(node: NodeId, config: ClusterConfig, raft: RaftNode, metrics: Metrics) -> Self {
        let authenticator = Authenticator::new(&config.principals);
        switchyard_api::ensure_crypto_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(2))
            .build()
            // Only TLS back-end initialisation can fail here, and this client has none.
            .expect("reqwest client without TLS builds");
        Self(Arc::new(Inner {
            node,
            config,
            raft,
            authenticator,
            http,
            metrics,
        }))
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/health", get(status::health))
        .route("/v1/status", get(status::status))
        .route("/v1/audit", get(audit::list))
        .route("/v1/annotations", post(annotations::create))
        .route(
            "/metrics",
            get(|State(state): State<AppState>| async move { state.metrics.render() }),
        )
        .merge(sites::routes())
        .merge(routing::routes())
        .merge(runbooks::routes())
        .merge(executions::routes())
        .fallback(|| async { ErrorResponse(ApiError::new(ErrorCode::NotFound, "no such route")) })
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .with_state(state)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ErrorResponse;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        state
            .authenticator
            .authenticate(header)
            .map_err(ErrorResponse)
    }
}
