//! Request and response bodies of the `/v1/` API.

use serde::{Deserialize, Serialize};
use switchyard_core::audit::AuditEntry;
use switchyard_core::id::{NodeId, SiteId};

/// `GET /v1/health`: liveness only; answered without authentication.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    pub node: NodeId,
}

/// The Raft role of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    Learner,
    Shutdown,
}

/// `GET /v1/status`: this node's view of the controller cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub cluster: String,
    pub node: NodeId,
    pub site: SiteId,
    pub role: Role,
    pub leader: Option<LeaderInfo>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub last_applied_index: Option<u64>,
    /// Last log index covered by this node's latest snapshot.
    pub snapshot_index: Option<u64>,
    /// Last log index removed from this node's log after a snapshot.
    pub purged_index: Option<u64>,
    pub members: Vec<Member>,
    /// Head of the audit chain on this node's replica.
    pub audit_head: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderInfo {
    pub node: NodeId,
    pub site: SiteId,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub node: NodeId,
    pub site: SiteId,
    pub voter: bool,
    pub api_addr: String,
    /// Milliseconds since the leader last heard from this member; only the leader knows.
    pub last_contact_ms: Option<u64>,
    /// The last log index known replicated to this member; only the leader knows.
    pub matched_index: Option<u64>,
}

/// `GET /v1/audit?from=&limit=&verify=`: a page of the audit chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Head of the whole chain on the answering node.
    pub head: String,
    /// Total number of entries in the chain.
    pub total: u64,
    /// Present when `verify=true` was asked: the result of rechecking the whole chain.
    pub verification: Option<Verification>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub valid: bool,
    pub entries_checked: u64,
    /// The first broken link, when invalid.
    pub error: Option<String>,
}

/// `POST /v1/annotations`: a free-text note on the incident timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAnnotation {
    pub text: String,
}

/// The answer to any write: where it landed in the log and the audit chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteResult {
    pub index: u64,
    pub audit_head: String,
    /// The node that committed it (the leader at the time).
    pub leader: NodeId,
}
