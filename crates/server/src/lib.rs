//! A Switchyard node: the Raft member, its node-to-node listener, the REST API, and the wiring
//! between them.
//!
//! `switchyard serve` calls [`serve`]; everything a node does at run time starts here.
#![forbid(unsafe_code)]

mod api;
mod auth;
mod clock;
pub mod demo_service;
mod detection;
mod dns;
mod executor;
mod leader;
mod logging;
mod metrics;
mod node;

pub use dns::tools as dns_tools;
pub use logging::{LogFormat, init_logging};
pub use node::{ServeOptions, serve};
