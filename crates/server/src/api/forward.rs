//! Forwarding: a write (or a consistent read) that reaches a follower is sent on to the leader's
//! API with the caller's own token, and the leader's answer is passed back unchanged.
//!
//! A forwarded request carries `x-switchyard-forwarded`, and is never forwarded again, so two
//! nodes that disagree about who leads cannot bounce a request between them.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use switchyard_api::{ApiError, ErrorCode};
use switchyard_core::id::NodeId;

use super::{AppState, ErrorResponse};

pub const FORWARDED_HEADER: &str = "x-switchyard-forwarded";

pub fn already_forwarded(headers: &HeaderMap) -> bool {
    headers.contains_key(FORWARDED_HEADER)
}

/// Sends the request to `leader` and returns its response.
pub async fn to_leader(
    state: &AppState,
    leader: NodeId,
    method: Method,
    path_and_query: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let Some(node) = state.config.node(leader) else {
        let error = ApiError::new(
            ErrorCode::Internal,
            format!("leader {leader} is not in this node's configuration"),
        );
        return ErrorResponse(error).into_response();
    };
    let url = format!("http://{}{path_and_query}", node.api_addr);
    let mut request = state
        .http
        .request(method, &url)
        .header(FORWARDED_HEADER, state.node.to_string())
        .body(body);
    for name in [
        axum::http::header::AUTHORIZATION,
        axum::http::header::CONTENT_TYPE,
    ] {
        if let Some(value) = headers.get(&name) {
            request = request.header(name, value);
        }
    }
    tracing::debug!(leader = leader.0, %url, "forwarding to leader");
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => {
            let message = format!(
                "leader {leader} at {} is unreachable: {error}",
                node.api_addr
            );
            return ErrorResponse(ApiError::new(ErrorCode::LeaderUnreachable, message))
                .into_response();
        }
    };
    let status =
        StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .cloned();
    match response.bytes().await {
        Ok(bytes) => {
            let mut reply = Response::new(Body::from(bytes));
            *reply.status_mut() = status;
            if let Some(content_type) =
                content_type.and_then(|value| HeaderValue::from_bytes(value.as_bytes()).ok())
            {
                reply
                    .headers_mut()
                    .insert(axum::http::header::CONTENT_TYPE, content_type);
            }
            reply
        }
        Err(error) => {
            let message = format!("leader {leader} broke off its answer: {error}");
            ErrorResponse(ApiError::new(ErrorCode::LeaderUnreachable, message)).into_response()
        }
    }
}
