//! The crate's errors: starting and running a node ([`RaftError`]) and proposing or reading
//! through Raft ([`ProposeError`]).

use std::path::PathBuf;

use switchyard_core::NodeId;

use crate::store::ClusterIdentity;

#[derive(Debug, thiserror::Error)]
pub enum RaftError {
    #[error("cannot read the cluster secret from {path}: {source}")]
    SecretRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the cluster secret{} is empty", path.as_ref().map(|path| format!(" in {}", path.display())).unwrap_or_default())]
    SecretEmpty { path: Option<PathBuf> },
    #[error("node {node} is not in the cluster configuration")]
    UnknownNode { node: NodeId },
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the raft store {path}: {source}")]
    StoreOpen { path: PathBuf, source: redb::Error },
    #[error("the raft store {path} is in use by another node process")]
    StoreInUse { path: PathBuf },
    #[error("raft storage failed: {source}")]
    Storage {
        source: Box<openraft::StorageError<u64>>,
    },
    #[error(
        "data directory {data_dir} belongs to {found}, but this node is configured for {expected}; \
         point --data-dir elsewhere or remove it"
    )]
    ForeignDataDir {
        data_dir: PathBuf,
        expected: ClusterIdentity,
        found: ClusterIdentity,
    },
    #[error("invalid raft configuration: {source}")]
    Config { source: Box<openraft::ConfigError> },
    #[error("cannot build the raft http client: {source}")]
    HttpClient { source: reqwest::Error },
    #[error("raft core stopped: {source}")]
    Fatal {
        source: Box<openraft::error::Fatal<u64>>,
    },
    #[error("peer {peer} belongs to cluster {found:?}, not {expected:?}")]
    ForeignPeer {
        peer: NodeId,
        expected: String,
        found: String,
    },
    #[error("bootstrap gave up after {attempts} probe rounds without reaching a majority")]
    BootstrapGaveUp { attempts: u32 },
    #[error("raft shutdown failed: {message}")]
    Shutdown { message: String },
}

/// Serialisable, because a leader returns it to the follower that forwarded a command
/// (`/raft/propose`).
#[derive(Debug, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposeError {
    /// This node is not the leader; `leader` is the one it knows of, if any.
    #[error("not the leader; forward to {}", leader.map_or("an unknown leader".to_owned(), |leader| format!("node {leader}")))]
    ForwardToLeader { leader: Option<NodeId> },
    /// No majority acknowledged in time: the command may still commit later.
    #[error("no quorum: not committed within {timeout_ms} ms")]
    NoQuorum { timeout_ms: u64 },
    /// The Raft core stopped; the node must be taken out of service.
    #[error("raft core stopped: {message}")]
    Fatal { message: String },
    /// A forwarded command did not reach the leader, or its answer did not come back: it may
    /// or may not have committed.
    #[error("cannot forward to the leader, node {leader}: {message}")]
    LeaderUnreachable { leader: NodeId, message: String },
}

impl From<openraft::StorageError<u64>> for RaftError {
    fn from(source: openraft::StorageError<u64>) -> Self {
        RaftError::Storage {
            source: Box::new(source),
        }
    }
}

impl From<openraft::ConfigError> for RaftError {
    fn from(source: openraft::ConfigError) -> Self {
        RaftError::Config {
            source: Box::new(source),
        }
    }
}

impl From<openraft::error::Fatal<u64>> for RaftError {
    fn from(source: openraft::error::Fatal<u64>) -> Self {
        RaftError::Fatal {
            source: Box::new(source),
        }
    }
}
