//! The node's Prometheus metrics, served as OpenMetrics text on `/metrics`.
//!
//! Each part of the node registers its own families at start-up (`detection`, `dns`), so this
//! module only owns the registry and the endpoint. `/metrics` needs no token: it carries counts
//! and states, never secrets, and scrapers rarely hold bearer tokens.

use std::sync::Arc;

use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use prometheus_client::registry::Registry;

/// The registry, frozen once every part has registered.
#[derive(Clone, Debug)]
pub struct Metrics(Arc<Registry>);

impl Metrics {
    pub fn new(registry: Registry) -> Self {
        Self(Arc::new(registry))
    }

    pub fn render(&self) -> Response {
        let mut text = String::new();
        match prometheus_client::encoding::text::encode(&mut text, &self.0) {
            Ok(()) => (
                [(
                    CONTENT_TYPE,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )],
                text,
            )
                .into_response(),
            Err(error) => {
                tracing::error!("cannot encode metrics: {error}");
                axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}
