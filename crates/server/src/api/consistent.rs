//! Linearizable reads: `?consistent=true` confirms leadership with a quorum before answering,
//! and a follower hands such a read to the leader.

use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use switchyard_raft::ProposeError;

use super::respond::{ErrorResponse, from_propose_error};
use super::{AppState, forward};

/// `None` when this node may answer now; otherwise the response to send (the leader's answer,
/// or an error).
pub async fn read_barrier(
    state: &AppState,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Option<Response> {
    match state.raft.ensure_linearizable().await {
        Ok(()) => None,
        Err(ProposeError::ForwardToLeader {
            leader: Some(leader),
        }) if !forward::already_forwarded(headers) => {
            let path = uri
                .path_and_query()
                .map(|path| path.as_str())
                .unwrap_or("/");
            Some(forward::to_leader(state, leader, method, path, headers, Bytes::new()).await)
        }
        Err(error) => Some(ErrorResponse(from_propose_error(&error)).into_response()),
    }
}

/// A read's query string: whatever it holds, it says whether the read must be linearizable.
pub trait ReadOptions {
    fn consistent(&self) -> bool;
}

/// The query of a read that takes no other option than `consistent`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadQuery {
    /// Confirm leadership with a quorum first (a follower hands the read to the leader), so the
    /// answer is not stale.
    #[serde(default)]
    consistent: bool,
}

impl ReadOptions for ReadQuery {
    fn consistent(&self) -> bool {
        self.consistent
    }
}

/// Checks a read's query and, for `consistent=true`, confirms leadership first. `Ok` with the
/// query when this node may answer from its replica now; otherwise the response to send (a 400
/// for a bad query, the leader's answer, or an error).
pub async fn checked_read<Q: ReadOptions>(
    state: &AppState,
    query: Result<axum::extract::Query<Q>, axum::extract::rejection::QueryRejection>,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Q, Response> {
    let axum::extract::Query(query) = query.map_err(|rejection| {
        ErrorResponse(super::respond::from_query_rejection(&rejection)).into_response()
    })?;
    if query.consistent()
        && let Some(response) = read_barrier(state, Method::GET, uri, headers).await
    {
        return Err(response);
    }
    Ok(query)
}
