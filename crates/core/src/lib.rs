//! Switchyard's domain: identifiers, the validated cluster configuration and runbooks, and the
//! routing model they act on.
//!
//! This crate is pure and deterministic. It has no tokio, no clock, no randomness, no I/O and no
//! YAML: values arrive already parsed (see `switchyard-spec`) and time arrives inside commands,
//! so that the same Raft log gives the same state on every node.
#![forbid(unsafe_code)]

pub mod audit;
pub mod config;
pub mod detection;
pub mod execution;
pub mod id;
pub mod plan;
pub mod routing;
pub mod runbook;
pub mod state;
pub mod time;

pub use id::{
    EndpointId, NodeId, PrincipalName, ProviderId, RunbookId, ServiceId, SiteId, StepId, ZoneName,
};
pub use time::Timestamp;
