//! Flags shared by every subcommand that talks to a running node's API.

use std::time::Duration;

use switchyard_api::{Client, ClientError};

use crate::UsageError;

#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// API address of any node; writes sent to a follower are forwarded to the leader.
    #[arg(
        long,
        env = "SWITCHYARD_SERVER",
        default_value = "http://127.0.0.1:7201",
        value_name = "URL"
    )]
    server: String,
    /// Bearer token of an API principal (never logged).
    #[arg(
        long,
        env = "SWITCHYARD_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    token: Option<String>,
    /// Give up on the server after this long.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    timeout: Duration,
}

impl ServerArgs {
    pub fn client(&self) -> Client {
        Client::new(self.server.clone(), self.token.clone(), self.timeout)
    }
}

/// A client failure as the command reports it: refusals are exit 1, the rest exit 2.
pub fn outcome_of(error: ClientError) -> Result<crate::Outcome, UsageError> {
    eprintln!("switchyard: {error}");
    match error {
        ClientError::Api { .. } => Ok(crate::Outcome::Rejected),
        other => Err(UsageError(anyhow::anyhow!("request failed: {other}"))),
    }
}

/// A runtime for one command's requests.
pub fn runtime() -> Result<tokio::runtime::Runtime, UsageError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| UsageError(anyhow::anyhow!("cannot start the async runtime: {error}")))
}
