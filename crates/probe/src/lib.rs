//! Switchyard's health probes: HTTP(S), TCP and DNS checks, rise/fall verdict counting, and the
//! scheduler that probes every endpoint of every site from this node.
//!
//! The crate produces observations and verdicts, never decisions: a [`VerdictFlip`] is what a node
//! proposes to Raft, and `core` decides what the flips of all observers mean for a site.
//!
//! ```no_run
//! # async fn example(config: switchyard_core::config::ClusterConfig) -> Result<(), switchyard_probe::ProbeError> {
//! use switchyard_core::NodeId;
//! use switchyard_probe::{Prober, ProberOptions};
//! use tokio_util::sync::CancellationToken;
//!
//! switchyard_probe::install_crypto_provider();
//! let (prober, mut flips) = Prober::new(&config, NodeId(1), ProberOptions::default())?;
//! let handle = prober.handle();
//! let cancel = CancellationToken::new();
//! tokio::spawn(prober.run(cancel.clone()));
//! while let Some(flip) = flips.recv().await {
//!     println!("{} is {:?} since {}", flip.endpoint, flip.verdict, flip.since);
//! }
//! # let _ = handle.snapshot();
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod check;
mod dns;
mod error;
mod failure;
mod http;
mod scheduler;
mod target;
mod tls;
mod verdict;

pub use check::{Checker, Observation, PreparedCheck};
pub use error::ProbeError;
pub use failure::ProbeFailure;
pub use scheduler::{
    EndpointStatus, ObservationHook, Prober, ProberHandle, ProberOptions, ProberStats, VerdictFlip,
};
pub use target::Target;
pub use verdict::{Verdict, VerdictCounter};

/// Installs ring as the process-wide rustls crypto provider, once.
///
/// Safe to call any number of times: a provider already installed (by this call or by anyone
/// else) is kept. The probe's own TLS configurations name ring explicitly, so they work even when
/// another provider won the race; this is for the rest of the process (reqwest clients built
/// elsewhere, axum-server).
pub fn install_crypto_provider() {
    // An `Err` only says that a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
