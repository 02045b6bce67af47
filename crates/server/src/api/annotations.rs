//! `POST /v1/annotations`: free-text notes on the incident timeline, committed through Raft.

use axum::extract::rejection::BytesRejection;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use switchyard_api::NewAnnotation;
use switchyard_core::config::Role;
use switchyard_core::state::CommandKind;

use super::respond::{ErrorResponse, authorized_body};
use super::{AppState, write};
use crate::auth::Caller;

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    uri: OriginalUri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let parsed = authorized_body::<NewAnnotation>(&caller, &[Role::Operator, Role::Approver], body);
    let (annotation, body) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => return ErrorResponse(error).into_response(),
    };
    let kind = CommandKind::Annotate {
        text: annotation.text,
    };
    let request = write::Forwardable {
        method: Method::POST,
        uri: uri.0,
        headers,
        body,
    };
    write::propose(&state, &caller, kind, request).await
}
