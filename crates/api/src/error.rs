//! API errors: one code per kind of failure, and the HTTP status each maps to.
//!
//! This is the one place where failures become HTTP statuses; the server turns every error into
//! an [`ApiError`] and serves its [`ErrorBody`].

use serde::{Deserialize, Serialize};

/// A machine-readable error kind. The string form is part of the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No bearer token, or one that matches no principal.
    Unauthenticated,
    /// The principal lacks the role the request needs.
    Forbidden,
    /// The request is malformed: bad JSON, unknown fields, bad query.
    BadRequest,
    /// The body is larger than the limit.
    PayloadTooLarge,
    NotFound,
    /// The state machine refused the command (a domain rule).
    Rejected,
    /// The cluster has no leader that a majority follows, so nothing can be committed now.
    NoQuorum,
    /// The leader could not be reached to forward a write (it may have just died); retry.
    LeaderUnreachable,
    Internal,
}

impl ErrorCode {
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::Unauthenticated => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::BadRequest => 400,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::NotFound => 404,
            ErrorCode::Rejected => 409,
            ErrorCode::NoQuorum => 503,
            ErrorCode::LeaderUnreachable => 503,
            ErrorCode::Internal => 500,
        }
    }
}

/// An error as the API reports it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message.clone(),
            },
        }
    }
}

/// The JSON body of every error response: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
}

impl From<ErrorBody> for ApiError {
    fn from(body: ErrorBody) -> Self {
        Self {
            code: body.error.code,
            message: body.error.message,
        }
    }
}
