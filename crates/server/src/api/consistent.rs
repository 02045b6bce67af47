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
