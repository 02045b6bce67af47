//! Runbooks in the replicated state: every applied version, with its source, hash, author and
//! time. Executions pin `(name, version)`, so versions are never removed or changed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Actor, Outcome, Rejection, State};
use crate::id::RunbookId;
use crate::runbook::Runbook;
use crate::time::Timestamp;

/// Longest runbook source accepted, in bytes: the state keeps every version's text.
pub const RUNBOOK_SOURCE_MAX: usize = 256 * 1024;

/// One applied version of a runbook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunbookVersion {
    pub runbook: Runbook,
    /// Counts from 1 per runbook name.
    pub version: u32,
    /// The YAML text it was validated from.
    pub source: String,
    /// SHA-256 (lowercase hex) of `source`.
    pub content_hash: String,
    /// Who applied it (the command's actor).
    pub author: Actor,
    pub applied_at: Timestamp,
    /// Log index of the command that applied it.
    pub index: u64,
}

/// SHA-256 (lowercase hex) of a runbook's source text.
pub fn runbook_content_hash(source: &str) -> String {
    Sha256::digest(source.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

pub(super) fn summary(runbook: &Runbook, content_hash: &str) -> String {
    format!(
        "runbook applied: {} hash {}",
        runbook.name,
        &content_hash[..content_hash.len().min(16)]
    )
}

/// Every version of every runbook, oldest first per name.
pub(super) type RunbookVersions = BTreeMap<RunbookId, Vec<RunbookVersion>>;

impl State {
    pub(super) fn apply_runbook(
        &mut self,
        index: u64,
        actor: &Actor,
        time: Timestamp,
        runbook: &Runbook,
        source: &str,
        content_hash: &str,
    ) -> Outcome {
        if source.len() > RUNBOOK_SOURCE_MAX {
            return Outcome::Rejected(Rejection::RunbookSourceTooLong {
                length: source.len(),
                max: RUNBOOK_SOURCE_MAX,
            });
        }
        let actual = runbook_content_hash(source);
        if actual != content_hash {
            return Outcome::Rejected(Rejection::RunbookHashMismatch {
                claimed: content_hash.to_owned(),
                actual,
            });
        }
        let versions = self.runbooks.entry(runbook.name.clone()).or_default();
        if versions
            .last()
            .is_some_and(|latest| latest.content_hash == actual)
        {
            // The same text again (a retry, or `runbook apply` of unchanged files): no version.
            return Outcome::Accepted;
        }
        let version = u32::try_from(versions.len()).unwrap_or(u32::MAX) + 1;
        versions.push(RunbookVersion {
            runbook: runbook.clone(),
            version,
            source: source.to_owned(),
            content_hash: actual,
            author: actor.clone(),
            applied_at: time,
            index,
        });
        Outcome::Accepted
    }

    /// The latest version of every runbook, by name.
    pub fn runbooks(&self) -> impl Iterator<Item = &RunbookVersion> {
        self.runbooks
            .values()
            .filter_map(|versions| versions.last())
    }

    /// Every version of `name`, oldest first (empty if it was never applied).
    pub fn runbook_versions(&self, name: &RunbookId) -> &[RunbookVersion] {
        self.runbooks.get(name).map_or(&[], Vec::as_slice)
    }

    /// Version `version` of `name`, or its latest when `version` is `None`.
    pub fn runbook(&self, name: &RunbookId, version: Option<u32>) -> Option<&RunbookVersion> {
        let versions = self.runbooks.get(name)?;
        match version {
            None => versions.last(),
            Some(version) => versions
                .get(usize::try_from(version).ok()?.checked_sub(1)?)
                .filter(|found| found.version == version),
        }
    }
}
