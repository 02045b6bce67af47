//! Committing a command for an API caller: propose locally, or forward to the leader.

use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use switchyard_api::{ApiError, ErrorCode, WriteResult};
use switchyard_core::state::{Actor, Command, CommandKind, Outcome};
use switchyard_raft::ProposeError;

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

pub async fn propose(
    state: &AppState,
    caller: &Caller,
    kind: CommandKind,
    request: Forwardable,
) -> Response {
    let command = Command {
        time: now(),
        actor: Actor::Principal(caller.name.clone()),
        kind,
    };
    match state.raft.propose(command).await {
        Ok(applied) => match applied.outcome {
            Outcome::Accepted => {
                let result = WriteResult {
                    index: applied.index,
                    audit_head: applied.audit_head,
                    leader: state.node,
                };
                axum::Json(result).into_response()
            }
            Outcome::Rejected(rejection) => {
                ErrorResponse(ApiError::new(ErrorCode::Rejected, rejection.to_string()))
                    .into_response()
            }
        },
        Err(ProposeError::ForwardToLeader {
            leader: Some(leader),
        }) if !forward::already_forwarded(&request.headers) => {
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
        Err(error) => ErrorResponse(from_propose_error(&error)).into_response(),
    }
}
