//! `GET /v1/audit?from=&limit=&verify=`: pages of the hash-chained audit log, optionally rechecked.

use axum::extract::rejection::QueryRejection;
use axum::extract::{OriginalUri, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use switchyard_api::{AuditPage, Verification};

use super::{AppState, consistent};
use crate::auth::Caller;

/// Most entries returned in one page.
const PAGE_LIMIT_MAX: u64 = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// First log index to return (entries are keyed by the log index that produced them).
    #[serde(default)]
    from: u64,
    #[serde(default = "default_limit")]
    limit: u64,
    /// Recheck every link of the whole chain on this node.
    #[serde(default)]
    verify: bool,
    #[serde(default)]
    consistent: bool,
}

impl consistent::ReadOptions for AuditQuery {
    fn consistent(&self) -> bool {
        self.consistent
    }
}

fn default_limit() -> u64 {
    100
}

pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    query: Result<Query<AuditQuery>, QueryRejection>,
    uri: OriginalUri,
    headers: HeaderMap,
) -> Response {
    let query = match consistent::checked_read(&state, query, &uri.0, &headers).await {
        Ok(query) => query,
        Err(response) => return response,
    };
    let limit = usize::try_from(query.limit.min(PAGE_LIMIT_MAX)).unwrap_or(usize::MAX);
    let page = state.raft.read_state(|machine| {
        let chain = machine.audit();
        let verification = query.verify.then(|| match chain.verify() {
            Ok(()) => Verification {
                valid: true,
                entries_checked: chain.len() as u64,
                error: None,
            },
            Err(error) => Verification {
                valid: false,
                entries_checked: chain.len() as u64,
                error: Some(error.to_string()),
            },
        });
        AuditPage {
            entries: chain.range(query.from, limit).to_vec(),
            head: chain.head().to_owned(),
            total: chain.len() as u64,
            verification,
        }
    });
    axum::Json(page).into_response()
}
