//! Committing a command for an API caller: propose locally, or forward to the leader.
//!
//! [`to_leader_first`] hands a write to the leader before any check that reads the replica, and
//! [`commit`] proposes and answers with a body built from the applied command.

use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use switchyard_api::{ApiError, ErrorCode, WriteResult};
use switchyard_core::id::NodeId;
use switchyard_core::state::{Actor, Applied, Command, CommandKind, Outcome, State as Replica};
use switchyard_raft::{ProposeError, Role as RaftRole};

use super::respond::{ErrorResponse, from_propose_error};
use super::{AppState, forward};
use crate::auth::Caller;
use crate::clock::now;

/// The original request, kept so that it can be forwarded to the leader as it came.
#[derive(Debug)]
pub struct Forwardable {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Proposes `kind` for `caller` and answers with the log index and audit head it landed at.
pub async fn propose(
    state: &AppState,
    caller: &Caller,
    kind: CommandKind,
    request: Forwardable,
) -> Response {
    commit(state, caller, kind, request, |_, applied| WriteResult {
        index: applied.index,
        audit_head: applied.audit_head.clone(),
        leader: state.node,
    })
    .await
}

/// Hands a write to the leader unless this node leads: checks that read the replica (the
/// runbook's validation, an execution's start rules) then run on the leader's replica, which
/// is the one the command will be applied to first. `Ok` gives the request back to handle here.
pub async fn to_leader_first(
    state: &AppState,
    request: Forwardable,
) -> Result<Forwardable, Response> {
    let status = state.raft.status();
    if status.role == RaftRole::Leader {
        return Ok(request);
    }
    match status.leader {
        Some(leader) if leader != state.node && !forward::already_forwarded(&request.headers) => {
            Err(forward_request(state, leader, request).await)
        }
        leader => {
            // No leader known, or this request was already forwarded once (two nodes disagree
            // about who leads): answer now rather than bounce it.
            let error = ProposeError::ForwardToLeader { leader };
            Err(ErrorResponse(from_propose_error(&error)).into_response())
        }
    }
}

async fn forward_request(state: &AppState, leader: NodeId, request: Forwardable) -> Response {
    let path = request
        .uri
        .path_and_query()
        .map(|path| path.as_str())
        .unwrap_or("/");
    forward::to_leader(
        state,
        leader,
        request.method,
        path,
        &request.headers,
        request.body,
    )
    .await
}

/// Proposes `kind` for `caller` and answers with `accepted(replica, applied)` (read on this
/// node's replica, which has just applied it) when the state machine accepts it, 409 with the
/// rejection otherwise. If leadership moved in the meantime, the request goes to the new leader.
pub async fn commit<T: Serialize>(
    state: &AppState,
    caller: &Caller,
    kind: CommandKind,
    request: Forwardable,
    accepted: impl FnOnce(&Replica, &Applied) -> T,
) -> Response {
    let command = Command {
        time: now(),
        actor: Actor::Principal(caller.name.clone()),
        kind,
    };
    match state.raft.propose(command).await {
        Ok(applied) => match &applied.outcome {
            Outcome::Accepted => {
                let body = state.raft.read_state(|replica| accepted(replica, &applied));
                axum::Json(body).into_response()
            }
            Outcome::Rejected(rejection) => {
                ErrorResponse(ApiError::new(ErrorCode::Rejected, rejection.to_string()))
                    .into_response()
            }
        },
        Err(ProposeError::ForwardToLeader {
            leader: Some(leader),
        }) if !forward::already_forwarded(&request.headers) => {
            forward_request(state, leader, request).await
        }
        Err(error) => ErrorResponse(from_propose_error(&error)).into_response(),
    }
}
