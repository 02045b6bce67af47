//! openraft's own storage test suite, run against the redb store.

use openraft::StorageError;
use openraft::testing::{StoreBuilder, Suite};
use switchyard_raft::TypeConfig;
use switchyard_raft::store::{LogStore, StateMachineStore, Store};
use tempfile::TempDir;

/// Builds a fresh store in its own temporary directory for every suite case; the directory
/// lives as long as the case does.
struct RedbStoreBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for RedbStoreBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError<u64>> {
        let dir = TempDir::new().expect("temporary directory");
        let store = Store::open(&dir.path().join("raft.redb")).expect("open store");
        let state_machine = StateMachineStore::open(store.clone())?;
        Ok((dir, LogStore::new(store), state_machine))
    }
}

#[test]
fn openraft_storage_suite_passes() {
    if let Err(error) = Suite::test_all(RedbStoreBuilder) {
        panic!("openraft storage suite failed: {error}");
    }
}
