//! Switchyard's Raft replication: openraft over a durable redb store and an authenticated HTTP
//! transport, applying commands through `switchyard_core::state`.
//!
//! openraft types stay inside this crate (see `DEPENDENCIES.md`), so that moving to a later
//! openraft only touches it.
#![forbid(unsafe_code)]

use std::io::Cursor;

use switchyard_core::state::{Applied, Command};

pub mod store;

/// Inside openraft, node ids are the numeric value of `switchyard_core::NodeId`.
type NodeId = u64;

openraft::declare_raft_types!(
    /// openraft's type configuration for Switchyard.
    pub TypeConfig:
        D = Command,
        R = Applied,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
);

mod error;
pub mod network;
mod node;

pub use error::{ProposeError, RaftError};
pub use network::{ProbeRequest, ProbeResponse, Secret};
pub use node::{
    COMMIT_TIMEOUT, MemberStatus, RaftNode, RaftNodeConfig, RaftStatus, Role, STORE_FILE,
};
