//! `/v1/runbooks` bodies: applying a runbook's YAML text, and reading the stored versions.

use serde::{Deserialize, Serialize};
use switchyard_core::Timestamp;
use switchyard_core::id::{NodeId, RunbookId};
use switchyard_core::runbook::Runbook;
use switchyard_core::state::Actor;

use crate::error::ErrorDetail;

/// `POST /v1/runbooks` (operator role): a runbook's YAML text, validated by the server against
/// the replicated cluster configuration and stored as a new version unless it equals the latest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRunbook {
    /// The YAML text, exactly as in the file (its SHA-256 is the version's content hash).
    pub source: String,
    /// The file name shown in diagnostics, such as `evacuate-site.yaml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

/// The answer to `POST /v1/runbooks` when the runbook is valid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunbookApplied {
    pub name: RunbookId,
    /// The version that now holds this text: a new one, or the latest when the text is unchanged.
    pub version: u32,
    /// SHA-256 (lowercase hex) of the source.
    pub content_hash: String,
    /// Whether this request created `version` (false: the latest version already had this text).
    pub created: bool,
    /// Log index the command was committed at.
    pub index: u64,
    /// The node that committed it (the leader at the time).
    pub leader: NodeId,
    /// Warnings found while validating (`file:line:col: warning: message`); they do not fail.
    pub warnings: Vec<String>,
}

/// One problem found in a runbook, as the API reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunbookDiagnostic {
    /// `error` or `warning`.
    pub severity: String,
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    pub message: String,
    pub hint: Option<String>,
    /// The whole diagnostic as a line: `file:line:col: error: message`.
    pub rendered: String,
}

/// The 400 body of `POST /v1/runbooks` for an invalid runbook: the usual error (whose message
/// lists every diagnostic, one per line) and the diagnostics themselves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunbookInvalid {
    pub error: ErrorDetail,
    pub diagnostics: Vec<RunbookDiagnostic>,
}

/// The latest version of one runbook, in `GET /v1/runbooks`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunbookSummary {
    pub name: RunbookId,
    pub description: String,
    pub version: u32,
    pub content_hash: String,
    /// Who applied this version.
    pub author: Actor,
    pub applied_at: Timestamp,
    pub pre_approved: bool,
    /// The declared trigger kinds: `site_lost`, `service_unhealthy`, `manual`.
    pub triggers: Vec<String>,
    /// The declared recovery time objective, in milliseconds.
    pub rto_ms: Option<u64>,
    /// How many main steps it has.
    pub steps: usize,
}

/// `GET /v1/runbooks`: the latest version of every runbook on the answering node's replica.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunbookList {
    pub node: NodeId,
    pub applied_index: u64,
    pub runbooks: Vec<RunbookSummary>,
}

/// `GET /v1/runbooks/{name}?version=N`: one version (the latest by default) with its source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunbookDetail {
    pub summary: RunbookSummary,
    /// Every version number of this runbook, oldest first.
    pub versions: Vec<u32>,
    /// Log index of the command that applied this version.
    pub index: u64,
    /// The YAML text it was validated from.
    pub source: String,
    /// The checked runbook.
    pub runbook: Runbook,
}
