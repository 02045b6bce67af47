//! The audit chain: a hash-linked, append-only record of every command the cluster applied.
//!
//! Each entry's `hash` is `sha256(prev_hash_bytes || canonical_json(entry without hash))`, where
//! `prev_hash_bytes` are the 32 raw bytes of the previous entry's hash (64 zeros in hex for the
//! first entry) and the canonical JSON is `serde_json` of `HashedFields`, whose field order is
//! fixed. Changing, reordering or deleting any entry therefore breaks every later link, and
//! [`verify`] finds the first broken one.
//!
//! Only normal commands are audited: Raft's own blank and membership entries are not operator or
//! system actions, and membership is visible in the cluster status instead. Audit indices are Raft
//! log indices, so they increase strictly but may skip numbers.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::state::Actor;
use crate::time::Timestamp;

/// The `prev_hash` of the first entry of every chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    /// Raft log index of the command this entry records.
    pub index: u64,
    /// Raft term of that log entry.
    pub term: u64,
    /// When the command was proposed, as stamped by its proposer.
    pub time: Timestamp,
    pub actor: Actor,
    /// One line saying what the command did.
    pub summary: String,
    /// Hash of the previous entry, lowercase hex.
    pub prev_hash: String,
    /// Hash of this entry, lowercase hex.
    pub hash: String,
}

/// The fields covered by an entry's hash, in their canonical order. Never reorder them: that
/// would change every hash ever written.
#[derive(Serialize)]
struct HashedFields<'a> {
    index: u64,
    term: u64,
    time: Timestamp,
    actor: &'a Actor,
    summary: &'a str,
    prev_hash: &'a str,
}

impl AuditEntry {
    /// The hash this entry should carry, or `None` if its `prev_hash` is not 64 hex digits.
    pub fn expected_hash(&self) -> Option<String> {
        let prev_hash_bytes = decode_hash(&self.prev_hash)?;
        let fields = HashedFields {
            index: self.index,
            term: self.term,
            time: self.time,
            actor: &self.actor,
            summary: &self.summary,
            prev_hash: &self.prev_hash,
        };
        // Serializing a struct of integers and strings cannot fail.
        let json = serde_json::to_vec(&fields).expect("audit fields serialize to json");
        let mut hasher = Sha256::new();
        hasher.update(prev_hash_bytes);
        hasher.update(&json);
        Some(encode_hex(&hasher.finalize()))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at index {index}: {reason}")]
pub struct AuditError {
    /// Log index of the first entry that fails the check.
    pub index: u64,
    pub reason: AuditFailure,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuditFailure {
    #[error("prev_hash {found} does not match the previous entry's hash {expected}")]
    BrokenLink { expected: String, found: String },
    #[error("hash {found} does not match the entry's content (expected {expected})")]
    WrongHash { expected: String, found: String },
    #[error("prev_hash {found} is not 64 lowercase hex digits")]
    MalformedHash { found: String },
    #[error("index does not increase after {previous}")]
    IndexNotIncreasing { previous: u64 },
}

/// Rechecks every link of a chain that starts at genesis.
pub fn verify(entries: &[AuditEntry]) -> Result<(), AuditError> {
    verify_from(GENESIS_HASH, None, entries)
}

/// Rechecks a slice of a chain whose first entry follows `prev_hash` (and, when known, the
/// entry at `prev_index`).
pub fn verify_from(
    prev_hash: &str,
    prev_index: Option<u64>,
    entries: &[AuditEntry],
) -> Result<(), AuditError> {
    let mut expected_prev = prev_hash.to_owned();
    let mut previous_index = prev_index;
    for entry in entries {
        if let Some(previous) = previous_index
            && entry.index <= previous
        {
            return Err(AuditError {
                index: entry.index,
                reason: AuditFailure::IndexNotIncreasing { previous },
            });
        }
        if entry.prev_hash != expected_prev {
            return Err(AuditError {
                index: entry.index,
                reason: AuditFailure::BrokenLink {
                    expected: expected_prev,
                    found: entry.prev_hash.clone(),
                },
            });
        }
        let Some(expected_hash) = entry.expected_hash() else {
            return Err(AuditError {
                index: entry.index,
                reason: AuditFailure::MalformedHash {
                    found: entry.prev_hash.clone(),
                },
            });
        };
        if entry.hash != expected_hash {
            return Err(AuditError {
                index: entry.index,
                reason: AuditFailure::WrongHash {
                    expected: expected_hash,
                    found: entry.hash.clone(),
                },
            });
        }
        expected_prev = entry.hash.clone();
        previous_index = Some(entry.index);
    }
    Ok(())
}

/// The whole chain, kept in the replicated state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditChain {
    entries: Vec<AuditEntry>,
}

impl AuditChain {
    pub fn entries(&self) -> &[AuditEntry] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Hash of the last entry, or [`GENESIS_HASH`] for an empty chain.
    pub fn head(&self) -> &str {
        self.entries
            .last()
            .map_or(GENESIS_HASH, |entry| entry.hash.as_str())
    }

    /// Entries with `index >= from`, at most `limit` of them.
    pub fn range(&self, from: u64, limit: usize) -> &[AuditEntry] {
        let start = self.entries.partition_point(|entry| entry.index < from);
        let end = start.saturating_add(limit).min(self.entries.len());
        &self.entries[start..end]
    }

    /// The entry just before the first one with `index >= from`, to verify a range with.
    pub fn before(&self, from: u64) -> Option<&AuditEntry> {
        let start = self.entries.partition_point(|entry| entry.index < from);
        start.checked_sub(1).map(|position| &self.entries[position])
    }

    /// Appends the record of the command applied at `index`, linked to the current head.
    ///
    /// Panics if `index` does not increase: Raft applies each index once and in order, so a
    /// repeated index is a bug that must stop this replica.
    pub fn append(
        &mut self,
        index: u64,
        term: u64,
        time: Timestamp,
        actor: Actor,
        summary: String,
    ) -> &AuditEntry {
        if let Some(last) = self.entries.last() {
            assert!(
                index > last.index,
                "audit index {index} applied after {}",
                last.index
            );
        }
        let mut entry = AuditEntry {
            index,
            term,
            time,
            actor,
            summary,
            prev_hash: self.head().to_owned(),
            hash: String::new(),
        };
        entry.hash = entry
            .expected_hash()
            .expect("the head of a chain is always a well-formed hash");
        self.entries.push(entry);
        self.entries.last().expect("just pushed")
    }

    /// Rechecks the whole chain.
    pub fn verify(&self) -> Result<(), AuditError> {
        verify(&self.entries)
    }
}

fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

fn decode_hash(hex: &str) -> Option<[u8; 32]> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (position, pair) in bytes.chunks_exact(2).enumerate() {
        out[position] = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{NodeId, PrincipalName};

    fn chain(count: u64) -> AuditChain {
        let mut chain = AuditChain::default();
        for index in 1..=count {
            let actor = if index % 2 == 0 {
                Actor::Principal(PrincipalName::new("alice"))
            } else {
                Actor::Node(NodeId(index))
            };
            chain.append(
                index * 2,
                1 + index / 3,
                Timestamp(1_000 + index),
                actor,
                format!("annotate: note {index}"),
            );
        }
        chain
    }

    #[test]
    fn fresh_chain_verifies_and_links_from_genesis() {
        let chain = chain(5);
        assert_eq!(chain.verify(), Ok(()));
        assert_eq!(chain.entries()[0].prev_hash, GENESIS_HASH);
        assert_eq!(chain.head(), chain.entries()[4].hash);
        assert_eq!(AuditChain::default().head(), GENESIS_HASH);
        assert_eq!(chain.head().len(), 64);
    }

    #[test]
    fn hash_is_stable() {
        // Pins the canonical encoding: a change here invalidates every stored chain.
        let mut chain = AuditChain::default();
        chain.append(1, 1, Timestamp(0), Actor::System, "s".to_owned());
        expect_test::expect!["453265ab29b026058005eb5e74af32a810862d91aa28ba761d69a66a76f6114a"]
            .assert_eq(chain.head());
    }

    #[test]
    fn tampering_with_any_field_is_detected() {
        let original = chain(4);
        type Tamper = fn(&mut AuditEntry);
        let tamperings: Vec<(&str, Tamper)> = vec![
            ("index", |entry| entry.index += 1),
            ("term", |entry| entry.term += 1),
            ("time", |entry| entry.time = Timestamp(7)),
            ("actor", |entry| entry.actor = Actor::System),
            ("summary", |entry| entry.summary.push('!')),
            ("prev_hash", |entry| entry.prev_hash = "ab".repeat(32)),
            ("hash", |entry| entry.hash = "cd".repeat(32)),
        ];
        for (field, tamper) in tamperings {
            let mut entries = original.entries().to_vec();
            tamper(&mut entries[2]);
            let error = verify(&entries).expect_err(field);
            assert_eq!(error.index, entries[2].index, "{field}");
        }
    }

    #[test]
    fn rehashing_a_tampered_entry_breaks_the_next_link() {
        let mut entries = chain(4).entries().to_vec();
        entries[1].summary = "forged".to_owned();
        entries[1].hash = entries[1].expected_hash().expect("well-formed");
        let error = verify(&entries).expect_err("next link broken");
        assert_eq!(error.index, entries[2].index);
        assert!(matches!(error.reason, AuditFailure::BrokenLink { .. }));
    }

    #[test]
    fn reordering_is_detected() {
        let mut entries = chain(4).entries().to_vec();
        entries.swap(1, 2);
        assert!(verify(&entries).is_err());
    }

    #[test]
    fn deleting_an_entry_is_detected() {
        for position in 0..3 {
            let mut entries = chain(4).entries().to_vec();
            entries.remove(position);
            let error = verify(&entries).expect_err("deletion");
            assert!(
                matches!(error.reason, AuditFailure::BrokenLink { .. }),
                "{error}"
            );
        }
    }

    #[test]
    fn malformed_prev_hash_is_reported() {
        let mut entries = chain(1).entries().to_vec();
        entries[0].prev_hash = "Z".repeat(64);
        let error = verify_from(&"Z".repeat(64), None, &entries).expect_err("malformed");
        assert!(matches!(error.reason, AuditFailure::MalformedHash { .. }));
    }

    #[test]
    fn a_range_verifies_from_the_entry_before_it() {
        let chain = chain(6);
        let range = chain.range(6, 3);
        assert_eq!(
            range.iter().map(|entry| entry.index).collect::<Vec<_>>(),
            [6, 8, 10]
        );
        let before = chain.before(6).expect("entry 4 exists");
        assert_eq!(verify_from(&before.hash, Some(before.index), range), Ok(()));
        assert!(verify(range).is_err());
    }
}
