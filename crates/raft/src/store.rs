//! The durable Raft store on redb: log, vote, committed index, snapshots and cluster identity,
//! all in one file per node.
//!
//! Durability rules (openraft's contract, see `DEPENDENCIES.md`):
//! - `save_vote` commits with `Durability::Immediate` before returning;
//! - `append` commits the entries with `Durability::Immediate` before calling the `LogFlushed`
//!   callback;
//! - every write happens inside the caller's `&mut self` call, on one redb database whose write
//!   transactions are serialized, so vote and log writes are never reordered;
//! - a snapshot (data and metadata together) is written in one transaction.
//!
//! The state machine is *not* written on every apply: its durable form is the latest snapshot
//! plus the log after it. On open, the state machine loads the snapshot and reports the
//! snapshot's last log id from `applied_state()`, which is exactly what is on disk; openraft then
//! re-applies the committed log after it (the committed index is saved through
//! `save_committed`). Writing the whole state on every commit would cost O(state) per write,
//! and applying is deterministic, so rebuilding gives the same state and audit head.
//!
//! redb calls are synchronous; the ones that wait for the disk (durable commits) run through
//! `blocking`, so that an fsync does not hold up the other tasks of a tokio worker thread.

// openraft's storage traits fix the error type as `StorageError`, which is large; boxing it in
// our helpers would only add conversions at every trait boundary.
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
use std::io::Cursor;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use openraft::storage::{LogFlushed, RaftLogStorage, RaftStateMachine};
use openraft::{
    AnyError, Entry, EntryPayload, LogId, LogState, OptionalSend, RaftLogReader,
    RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageError, StorageIOError, StoredMembership,
    Vote,
};
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use switchyard_core::state::{Applied, Outcome, State};
use tokio::sync::watch;

use crate::{NodeId, TypeConfig};

/// Log entries by index, as JSON.
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// Single values by key, as JSON: vote, committed, last purged log id, cluster identity.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// The current snapshot: `meta` and `data` written together.
const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshot");

const KEY_VOTE: &str = "vote";
const KEY_COMMITTED: &str = "committed";
const KEY_LAST_PURGED: &str = "last_purged";
const KEY_CLUSTER: &str = "cluster";
const KEY_SNAPSHOT_META: &str = "meta";
const KEY_SNAPSHOT_DATA: &str = "data";

type StorageResult<T> = Result<T, StorageError<NodeId>>;
type Meta = SnapshotMeta<NodeId, openraft::BasicNode>;

/// Which cluster a data directory belongs to, written at first start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterIdentity {
    pub name: String,
    /// Voter node ids, sorted.
    pub voters: Vec<u64>,
}

impl std::fmt::Display for ClusterIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cluster {:?} with voters {:?}", self.name, self.voters)
    }
}

/// The shared handle on one node's redb file.
#[derive(Clone, Debug)]
pub struct Store {
    db: Arc<Database>,
}

fn read_err(error: impl Into<redb::Error>) -> StorageError<NodeId> {
    StorageIOError::read(AnyError::new(&error.into())).into()
}

fn write_err(error: impl Into<redb::Error>) -> StorageError<NodeId> {
    StorageIOError::write(AnyError::new(&error.into())).into()
}

fn decode_err(error: serde_json::Error) -> StorageError<NodeId> {
    StorageIOError::read(AnyError::new(&error)).into()
}

/// Runs `write` (a durable redb commit) without starving other tasks: on a multi-thread
/// runtime the worker hands its other tasks over first; elsewhere it simply runs inline.
fn blocking<T>(write: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(write)
        }
        _ => write(),
    }
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Our stored types are plain data with string keys; serializing them cannot fail.
    serde_json::to_vec(value).expect("stored value serializes to json")
}

impl Store {
    /// Opens or creates `path`, creating the tables so that later reads never miss them.
    pub fn open(path: &Path) -> Result<Store, redb::Error> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(LOG)?;
        txn.open_table(META)?;
        txn.open_table(SNAPSHOT)?;
        txn.commit()?;
        Ok(Store { db: Arc::new(db) })
    }

    fn meta_get<T: for<'de> Deserialize<'de>>(&self, key: &str) -> StorageResult<Option<T>> {
        let txn = self.db.begin_read().map_err(read_err)?;
        let table = txn.open_table(META).map_err(read_err)?;
        match table.get(key).map_err(read_err)? {
            Some(value) => Ok(Some(
                serde_json::from_slice(value.value()).map_err(decode_err)?,
            )),
            None => Ok(None),
        }
    }

    fn meta_put<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        durability: Durability,
    ) -> StorageResult<()> {
        // Waits for redb's single writer (a snapshot write may hold it) and, for durable
        // writes, for the disk: off the async workers' backs.
        blocking(|| {
            let mut txn = self.db.begin_write().map_err(write_err)?;
            txn.set_durability(durability).map_err(write_err)?;
            {
                let mut table = txn.open_table(META).map_err(write_err)?;
                table
                    .insert(key, encode(value).as_slice())
                    .map_err(write_err)?;
            }
            txn.commit().map_err(write_err)
        })
    }

    /// The stored cluster identity, if this data dir was ever started.
    pub fn cluster_identity(&self) -> StorageResult<Option<ClusterIdentity>> {
        self.meta_get(KEY_CLUSTER)
    }

    pub fn save_cluster_identity(&self, identity: &ClusterIdentity) -> StorageResult<()> {
        self.meta_put(KEY_CLUSTER, identity, Durability::Immediate)
    }

    /// Whether this node has never voted, logged or installed anything: only then may it take
    /// part in bootstrapping a new cluster.
    pub fn is_fresh(&self) -> StorageResult<bool> {
        let vote: Option<Vote<NodeId>> = self.meta_get(KEY_VOTE)?;
        let last_purged: Option<LogId<NodeId>> = self.meta_get(KEY_LAST_PURGED)?;
        let txn = self.db.begin_read().map_err(read_err)?;
        let log_empty = txn
            .open_table(LOG)
            .map_err(read_err)?
            .first()
            .map_err(read_err)?
            .is_none();
        let no_snapshot = txn
            .open_table(SNAPSHOT)
            .map_err(read_err)?
            .get(KEY_SNAPSHOT_META)
            .map_err(read_err)?
            .is_none();
        Ok(vote.is_none() && last_purged.is_none() && log_empty && no_snapshot)
    }

    fn read_entries(&self, range: impl RangeBounds<u64>) -> StorageResult<Vec<Entry<TypeConfig>>> {
        let start = match range.start_bound() {
            Bound::Included(&start) => Bound::Included(start),
            Bound::Excluded(&start) => Bound::Excluded(start),
            Bound::Unbounded => Bound::Unbounded,
        };
        let end = match range.end_bound() {
            Bound::Included(&end) => Bound::Included(end),
            Bound::Excluded(&end) => Bound::Excluded(end),
            Bound::Unbounded => Bound::Unbounded,
        };
        let txn = self.db.begin_read().map_err(read_err)?;
        let table = txn.open_table(LOG).map_err(read_err)?;
        let mut entries = Vec::new();
        for item in table.range::<u64>((start, end)).map_err(read_err)? {
            let (_, value) = item.map_err(read_err)?;
            entries.push(serde_json::from_slice(value.value()).map_err(decode_err)?);
        }
        Ok(entries)
    }

    fn read_snapshot(&self) -> StorageResult<Option<(Meta, Vec<u8>)>> {
        let txn = self.db.begin_read().map_err(read_err)?;
        let table = txn.open_table(SNAPSHOT).map_err(read_err)?;
        let Some(meta) = table.get(KEY_SNAPSHOT_META).map_err(read_err)? else {
            return Ok(None);
        };
        let meta = serde_json::from_slice(meta.value()).map_err(decode_err)?;
        let data = table
            .get(KEY_SNAPSHOT_DATA)
            .map_err(read_err)?
            .map(|data| data.value().to_vec())
            .unwrap_or_default();
        Ok(Some((meta, data)))
    }

    fn write_snapshot(
        &self,
        meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
        data: &[u8],
    ) -> StorageResult<()> {
        let last_log_id = meta.last_log_id;
        let meta = encode(meta);
        blocking(|| {
            let txn = self.db.begin_write().map_err(write_err)?;
            {
                let mut table = txn.open_table(SNAPSHOT).map_err(write_err)?;
                // A snapshot build runs beside the state machine: one that started before a
                // newer snapshot was installed finishes after it, and must not replace it (the
                // log before the installed one is gone, so the node could not restart).
                let stored: Option<Meta> = match table.get(KEY_SNAPSHOT_META).map_err(write_err)? {
                    Some(stored) => {
                        Some(serde_json::from_slice(stored.value()).map_err(decode_err)?)
                    }
                    None => None,
                };
                if stored.is_some_and(|stored| stored.last_log_id >= last_log_id) {
                    return Ok(());
                }
                table
                    .insert(KEY_SNAPSHOT_META, meta.as_slice())
                    .map_err(write_err)?;
                table.insert(KEY_SNAPSHOT_DATA, data).map_err(write_err)?;
            }
            txn.commit().map_err(write_err)
        })
    }
}

/// The log half of the store, handed to openraft.
#[derive(Clone, Debug)]
pub struct LogStore {
    store: Store,
}

impl LogStore {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> StorageResult<Vec<Entry<TypeConfig>>> {
        self.store.read_entries(range)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> StorageResult<LogState<TypeConfig>> {
        let last_purged_log_id: Option<LogId<NodeId>> = self.store.meta_get(KEY_LAST_PURGED)?;
        let txn = self.store.db.begin_read().map_err(read_err)?;
        let table = txn.open_table(LOG).map_err(read_err)?;
        let last = match table.last().map_err(read_err)? {
            Some((_, value)) => {
                let entry: Entry<TypeConfig> =
                    serde_json::from_slice(value.value()).map_err(decode_err)?;
                Some(entry.log_id)
            }
            None => None,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last.or(last_purged_log_id),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> StorageResult<()> {
        self.store
            .meta_put(KEY_VOTE, vote, Durability::Immediate)
            .map_err(|error| StorageIOError::write_vote(AnyError::new(&error)).into())
    }

    async fn read_vote(&mut self) -> StorageResult<Option<Vote<NodeId>>> {
        self.store.meta_get(KEY_VOTE)
    }

    /// Losing the committed index only means re-learning it from the leader, so this write
    /// does not wait for the disk; the next durable commit makes it durable too.
    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> StorageResult<()> {
        self.store
            .meta_put(KEY_COMMITTED, &committed, Durability::None)
    }

    async fn read_committed(&mut self) -> StorageResult<Option<LogId<NodeId>>> {
        Ok(self
            .store
            .meta_get::<Option<LogId<NodeId>>>(KEY_COMMITTED)?
            .flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StorageResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let encoded: Vec<(u64, Vec<u8>)> = entries
            .into_iter()
            .map(|entry| (entry.log_id.index, encode(&entry)))
            .collect();
        blocking(|| {
            let txn = self.store.db.begin_write().map_err(write_err)?;
            {
                let mut table = txn.open_table(LOG).map_err(write_err)?;
                for (index, bytes) in &encoded {
                    table.insert(*index, bytes.as_slice()).map_err(write_err)?;
                }
            }
            // Durability::Immediate is redb's default: the entries are on disk once commit
            // returns, and only then is openraft told they are flushed.
            txn.commit().map_err(write_err)
        })?;
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        blocking(|| {
            let txn = self.store.db.begin_write().map_err(write_err)?;
            {
                let mut table = txn.open_table(LOG).map_err(write_err)?;
                table
                    .retain_in(log_id.index.., |_, _| false)
                    .map_err(write_err)?;
            }
            txn.commit().map_err(write_err)
        })
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> StorageResult<()> {
        blocking(|| self.purge_now(log_id))
    }
}

impl LogStore {
    /// Records `log_id` as the last purged id and deletes the log up to it, in one transaction.
    fn purge_now(&self, log_id: LogId<NodeId>) -> StorageResult<()> {
        let txn = self.store.db.begin_write().map_err(write_err)?;
        {
            let mut meta = txn.open_table(META).map_err(write_err)?;
            meta.insert(KEY_LAST_PURGED, encode(&log_id).as_slice())
                .map_err(write_err)?;
            let mut table = txn.open_table(LOG).map_err(write_err)?;
            table
                .retain_in(..=log_id.index, |_, _| false)
                .map_err(write_err)?;
        }
        txn.commit().map_err(write_err)
    }
}

/// The applied state, shared between openraft's state machine task and readers.
#[derive(Debug, Default)]
pub struct Replica {
    pub state: State,
    pub last_applied: Option<LogId<NodeId>>,
    pub last_membership: StoredMembership<NodeId, openraft::BasicNode>,
}

/// The state machine half of the store, handed to openraft.
#[derive(Clone, Debug)]
pub struct StateMachineStore {
    store: Store,
    replica: Arc<RwLock<Replica>>,
    applied: Arc<watch::Sender<u64>>,
}

impl StateMachineStore {
    /// Loads the latest snapshot, if any, as the starting state.
    pub fn open(store: Store) -> StorageResult<StateMachineStore> {
        let mut replica = Replica::default();
        if let Some((meta, data)) = store.read_snapshot()? {
            replica.state = serde_json::from_slice(&data).map_err(decode_err)?;
            replica.last_applied = meta.last_log_id;
            replica.last_membership = meta.last_membership;
        }
        let (applied, _) = watch::channel(replica.last_applied.map_or(0, |log_id| log_id.index));
        Ok(StateMachineStore {
            store,
            replica: Arc::new(RwLock::new(replica)),
            applied: Arc::new(applied),
        })
    }

    /// Read access to the local replica. A poisoned lock means a panic while applying, which
    /// left the state half-changed: crashing is the only safe answer.
    pub fn read(&self) -> RwLockReadGuard<'_, Replica> {
        self.replica.read().expect("state machine lock poisoned")
    }

    fn write(&self) -> RwLockWriteGuard<'_, Replica> {
        self.replica.write().expect("state machine lock poisoned")
    }

    /// Watches the last applied log index.
    pub fn subscribe_applied(&self) -> watch::Receiver<u64> {
        self.applied.subscribe()
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> StorageResult<Snapshot<TypeConfig>> {
        let (data, last_log_id, last_membership) = {
            let replica = self.read();
            (
                encode(&replica.state),
                replica.last_applied,
                replica.last_membership.clone(),
            )
        };
        let snapshot_id = match last_log_id {
            Some(log_id) => format!(
                "{}-{}-{}",
                log_id.leader_id.term, log_id.leader_id.node_id, log_id.index
            ),
            None => "empty".to_owned(),
        };
        let meta = SnapshotMeta {
            last_log_id,
            last_membership,
            snapshot_id,
        };
        self.store.write_snapshot(&meta, &data)?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = StateMachineStore;

    async fn applied_state(
        &mut self,
    ) -> StorageResult<(
        Option<LogId<NodeId>>,
        StoredMembership<NodeId, openraft::BasicNode>,
    )> {
        let replica = self.read();
        Ok((replica.last_applied, replica.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> StorageResult<Vec<Applied>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut results = Vec::new();
        let last_index = {
            let mut replica = self.write();
            for entry in entries {
                let index = entry.log_id.index;
                replica.last_applied = Some(entry.log_id);
                let applied = match entry.payload {
                    EntryPayload::Normal(command) => {
                        replica
                            .state
                            .apply(index, entry.log_id.leader_id.term, &command)
                    }
                    EntryPayload::Blank => Applied {
                        index,
                        audit_head: replica.state.audit().head().to_owned(),
                        outcome: Outcome::Accepted,
                    },
                    EntryPayload::Membership(membership) => {
                        replica.last_membership =
                            StoredMembership::new(Some(entry.log_id), membership);
                        Applied {
                            index,
                            audit_head: replica.state.audit().head().to_owned(),
                            outcome: Outcome::Accepted,
                        }
                    }
                };
                results.push(applied);
            }
            replica.last_applied.map_or(0, |log_id| log_id.index)
        };
        self.applied.send_replace(last_index);
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> StorageResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StorageResult<()> {
        let data = snapshot.into_inner();
        let state: State = serde_json::from_slice(&data).map_err(|error| {
            StorageError::from(StorageIOError::read_snapshot(
                Some(meta.signature()),
                AnyError::new(&error),
            ))
        })?;
        // One transaction: after a crash the old snapshot or the new one is on disk, never a mix.
        self.store.write_snapshot(meta, &data)?;
        let last_index = {
            let mut replica = self.write();
            replica.state = state;
            replica.last_applied = meta.last_log_id;
            replica.last_membership = meta.last_membership.clone();
            replica.last_applied.map_or(0, |log_id| log_id.index)
        };
        self.applied.send_replace(last_index);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StorageResult<Option<Snapshot<TypeConfig>>> {
        Ok(self.store.read_snapshot()?.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, LogId, StoredMembership};

    use super::*;

    fn meta(index: u64) -> Meta {
        SnapshotMeta {
            last_log_id: Some(LogId::new(CommittedLeaderId::new(1, 1), index)),
            last_membership: StoredMembership::default(),
            snapshot_id: format!("snapshot-{index}"),
        }
    }

    #[test]
    fn an_older_snapshot_never_replaces_a_newer_one() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("raft.redb")).expect("open store");
        store
            .write_snapshot(&meta(500), b"newer")
            .expect("install the newer snapshot");
        // A build that started before the install finishes after it.
        store
            .write_snapshot(&meta(100), b"older")
            .expect("a late build is not an error");
        let (stored, data) = store.read_snapshot().expect("read").expect("a snapshot");
        assert_eq!(stored.snapshot_id, "snapshot-500");
        assert_eq!(data, b"newer");
        store
            .write_snapshot(&meta(600), b"newest")
            .expect("a newer one replaces it");
        let (stored, _) = store.read_snapshot().expect("read").expect("a snapshot");
        assert_eq!(stored.snapshot_id, "snapshot-600");
    }
}
