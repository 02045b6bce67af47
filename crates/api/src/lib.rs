//! Switchyard's REST API under `/v1/`: request and response types, error codes, and a typed client.
//!
//! The server and the CLI both use these types, so the two cannot drift apart. Every request body
//! rejects unknown fields: a misspelt field is an error, never silently ignored.
#![forbid(unsafe_code)]

mod client;
mod error;
mod executions;
mod routing;
mod runbooks;
mod sites;
mod types;

pub use client::{Client, ClientError, ensure_crypto_provider};
pub use error::ErrorDetail;
pub use error::{ApiError, ErrorBody, ErrorCode};
pub use executions::*;
pub use routing::*;
pub use runbooks::*;
pub use sites::*;
pub use types::*;
