//! The one place where failures become HTTP responses with the API's JSON error body.

use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use switchyard_api::{ApiError, ErrorCode};
use switchyard_raft::ProposeError;

/// An [`ApiError`] on its way out as a response.
#[derive(Debug)]
pub struct ErrorResponse(pub ApiError);

impl IntoResponse for ErrorResponse {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self.0.body())).into_response()
    }
}

impl From<ApiError> for ErrorResponse {
    fn from(error: ApiError) -> Self {
        Self(error)
    }
}

pub fn from_body_rejection(rejection: &BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "request body is larger than {} bytes",
                super::BODY_BYTES_MAX
            ),
        )
    } else {
        ApiError::new(ErrorCode::BadRequest, rejection.body_text())
    }
}

/// Parses a JSON body; the error names the field, line and column serde stopped at.
pub fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|error| {
        ApiError::new(ErrorCode::BadRequest, format!("invalid JSON body: {error}"))
    })
}

pub fn from_query_rejection(rejection: &QueryRejection) -> ApiError {
    ApiError::new(ErrorCode::BadRequest, rejection.body_text())
}

/// Raft failures that are not "ask the leader instead" (that one is handled by forwarding).
pub fn from_propose_error(error: &ProposeError) -> ApiError {
    match error {
        ProposeError::ForwardToLeader { leader: None } => ApiError::new(
            ErrorCode::NoQuorum,
            "no quorum: no leader is elected, so nothing can be committed now; retry when a majority of nodes is up",
        ),
        ProposeError::ForwardToLeader {
            leader: Some(leader),
        } => ApiError::new(
            ErrorCode::NoQuorum,
            format!(
                "no quorum: node {leader} is leader but this request was already forwarded once"
            ),
        ),
        ProposeError::NoQuorum { .. } => ApiError::new(
            ErrorCode::NoQuorum,
            format!("no quorum: {error}; retry when a majority of nodes is up"),
        ),
        _ => ApiError::new(ErrorCode::Internal, format!("raft: {error}")),
    }
}

/// The common start of every write: the caller must hold one of `roles`, and the body must be
/// within the limit and parse as `T` (unknown fields refused). The raw body comes back too, so
/// the request can be forwarded to the leader as it came.
pub fn authorized_body<T: serde::de::DeserializeOwned>(
    caller: &crate::auth::Caller,
    roles: &[switchyard_core::config::Role],
    body: Result<bytes::Bytes, BytesRejection>,
) -> Result<(T, bytes::Bytes), ApiError> {
    caller.require(roles)?;
    let body = body.map_err(|rejection| from_body_rejection(&rejection))?;
    let parsed = parse_body::<T>(&body)?;
    Ok((parsed, body))
}
