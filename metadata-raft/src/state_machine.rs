//! The Raft state machine: the metadata column families of the same RocksDB database,
//! changed only by committed entries through [`cairn_metadata::command::apply`].
//!
//! A batch of committed entries is applied one after the other over an overlay (each sees the
//! writes of those before it) and written as one `WriteBatch` together with the last applied
//! log id and membership, so the state and "how far it got" can never disagree after a
//! crash; Raft re-applies anything after the recorded log id from its (synced) log.
//!
//! Snapshots are a consistent RocksDB snapshot of every metadata column family, serialised
//! (see [`SnapshotDump`], in the envelope of [`super::format`]); the newest one is kept in `raft_meta` so that a restarted leader
//! can still send it. Installing one replaces every metadata column family at once.

// Raft's storage traits fix the error type (openraft's `StorageError`, large by design).
#![allow(clippy::result_large_err)]

use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{
    AnyError, EntryPayload, LogId, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageError,
    StorageIOError, StoredMembership,
};
use rocksdb::{WriteBatch, WriteOptions};
use serde::{Deserialize, Serialize};

use super::format;
use super::log_store::{get_meta, meta_name, put_meta_synced};
use super::{ApplyResult, BasicNode, Entry, NodeId, TypeConfig, META_CF};
use cairn_metadata::command::RawKv;
use cairn_metadata::keys::Cf;
use cairn_metadata::overlay::Overlay;
use cairn_metadata_rocks::RocksMetadataStore;

const APPLIED: &[u8] = b"sm-applied";
const MEMBERSHIP: &[u8] = b"sm-membership";
const SNAPSHOT: &[u8] = b"sm-snapshot";

fn sm_err(e: impl ToString) -> StorageError<NodeId> {
    StorageIOError::write_state_machine(AnyError::error(e.to_string())).into()
}

fn snap_err(e: impl ToString) -> StorageError<NodeId> {
    StorageIOError::read_snapshot(None, AnyError::error(e.to_string())).into()
}

/// The whole metadata state at one log id.
#[derive(Serialize, Deserialize)]
pub(crate) struct SnapshotDump {
    /// Per column family (by name): every key and value, in key order.
    pub cfs: Vec<(String, Vec<RawKv>)>,
}

/// A snapshot as kept in `raft_meta`: its meta and its bytes.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: Vec<u8>,
}

/// The state machine handed to Raft.
#[derive(Clone)]
pub struct StateMachine {
    pub(crate) inner: RocksMetadataStore,
    snapshots_built: Arc<AtomicU64>,
    applied: Arc<AppliedMark>,
}

impl StateMachine {
    pub(crate) fn new(inner: RocksMetadataStore, applied: Arc<AppliedMark>) -> Self {
        StateMachine {
            inner,
            snapshots_built: Arc::default(),
            applied,
        }
    }
}

/// The log id the state machine has applied up to, updated before Raft hears that the
/// entries are applied (so before any of their writers is answered). Raft's metrics report
/// the same a little later; leader-lease reads need the exact value.
#[derive(Default)]
pub struct AppliedMark(std::sync::Mutex<Option<LogId<NodeId>>>);

impl AppliedMark {
    pub fn get(&self) -> Option<LogId<NodeId>> {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set(&self, id: Option<LogId<NodeId>>) {
        let mut g = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if id > *g {
            *g = id;
        }
    }
}

fn membership_of(
    inner: &RocksMetadataStore,
) -> Result<StoredMembership<NodeId, BasicNode>, StorageError<NodeId>> {
    Ok(get_meta(inner, MEMBERSHIP)?.unwrap_or_default())
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let inner = self.inner.clone();
        let n = self.snapshots_built.fetch_add(1, Ordering::Relaxed);
        let stored = tokio::task::spawn_blocking(move || -> Result<_, StorageError<NodeId>> {
            let snap = inner.db().snapshot();
            let meta_cf = inner.cf_named(META_CF).map_err(snap_err)?;
            let read = |key: &[u8]| snap.get_cf(meta_cf, key).map_err(snap_err);
            let applied: Option<LogId<NodeId>> = match read(APPLIED)? {
                Some(v) => format::decode(&meta_name(APPLIED), &v).map_err(snap_err)?,
                None => None,
            };
            let membership: StoredMembership<NodeId, BasicNode> = match read(MEMBERSHIP)? {
                Some(v) => format::decode(&meta_name(MEMBERSHIP), &v).map_err(snap_err)?,
                None => StoredMembership::default(),
            };
            let mut dump = SnapshotDump { cfs: Vec::new() };
            for cf in Cf::ALL {
                let handle = inner.cf(cf).map_err(snap_err)?;
                let mut it = snap.raw_iterator_cf(handle);
                it.seek_to_first();
                let mut kvs = Vec::new();
                while let (Some(k), Some(v)) = (it.key(), it.value()) {
                    kvs.push((k.to_vec(), v.to_vec()));
                    it.next();
                }
                it.status().map_err(snap_err)?;
                dump.cfs.push((cf.name().to_string(), kvs));
            }
            let data = format::encode(&dump).map_err(snap_err)?;
            let meta = SnapshotMeta {
                last_log_id: applied,
                last_membership: membership,
                snapshot_id: format!(
                    "{}-{}-{n}",
                    applied.map(|l| l.leader_id.term).unwrap_or(0),
                    applied.map(|l| l.index).unwrap_or(0)
                ),
            };
            let stored = StoredSnapshot { meta, data };
            put_meta_synced(&inner, SNAPSHOT, &stored)?;
            Ok(stored)
        })
        .await
        .map_err(snap_err)??;
        tracing::info!(
            id = %stored.meta.snapshot_id,
            bytes = stored.data.len(),
            "built a metadata snapshot"
        );
        Ok(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>>
    {
        let applied: Option<LogId<NodeId>> =
            get_meta::<Option<LogId<NodeId>>>(&self.inner, APPLIED)?.flatten();
        self.applied.set(applied);
        Ok((applied, membership_of(&self.inner)?))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Vec<ApplyResult>>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let inner = self.inner.clone();
        let entries: Vec<Entry> = entries.into_iter().collect();
        let last = entries.last().map(|e| e.log_id);
        // In place, not on a blocking thread: an unsynced batch write into the memtable is
        // quicker than the two thread switches.
        let results = apply_batch(&inner, entries)?;
        self.applied.set(last);
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let inner = self.inner.clone();
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: snapshot.into_inner(),
        };
        let id = meta.snapshot_id.clone();
        tokio::task::spawn_blocking(move || install(&inner, stored))
            .await
            .map_err(sm_err)??;
        self.applied.set(meta.last_log_id);
        tracing::info!(%id, "installed a metadata snapshot from the leader");
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let stored: Option<StoredSnapshot> = get_meta(&self.inner, SNAPSHOT)?;
        Ok(stored.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}

/// Applies committed entries in order and records how far it got, in one write.
fn apply_batch(
    inner: &RocksMetadataStore,
    entries: Vec<Entry>,
) -> Result<Vec<Vec<ApplyResult>>, StorageError<NodeId>> {
    let mut overlay = Overlay::new(inner);
    let mut results = Vec::with_capacity(entries.len());
    let mut last = None;
    let mut membership = None;
    for e in entries {
        last = Some(e.log_id);
        match e.payload {
            EntryPayload::Blank => results.push(Vec::new()),
            EntryPayload::Normal(batch) => {
                results.push(batch.0.iter().map(|cmd| overlay.apply(cmd)).collect())
            }
            EntryPayload::Membership(m) => {
                membership = Some(StoredMembership::new(Some(e.log_id), m));
                results.push(Vec::new());
            }
        }
    }
    let writes = overlay.into_writes();
    let mut batch = WriteBatch::default();
    for (cf, key, value) in writes {
        let cf = inner.cf(cf).map_err(sm_err)?;
        match value {
            Some(v) => batch.put_cf(cf, key, v),
            None => batch.delete_cf(cf, key),
        }
    }
    let meta_cf = inner.cf_named(META_CF).map_err(sm_err)?;
    batch.put_cf(meta_cf, APPLIED, format::encode(&last).map_err(sm_err)?);
    if let Some(m) = membership {
        batch.put_cf(meta_cf, MEMBERSHIP, format::encode(&m).map_err(sm_err)?);
    }
    // Not synced: the log is, and anything lost here is applied again from it.
    inner
        .db()
        .write_opt(batch, &WriteOptions::default())
        .map_err(sm_err)?;
    Ok(results)
}

/// Replaces the whole metadata state with a snapshot's.
fn install(inner: &RocksMetadataStore, stored: StoredSnapshot) -> Result<(), StorageError<NodeId>> {
    let dump: SnapshotDump = format::decode("a snapshot", &stored.data).map_err(sm_err)?;
    let mut batch = WriteBatch::default();
    for cf in Cf::ALL {
        let handle = inner.cf(cf).map_err(sm_err)?;
        let mut it = inner.db().raw_iterator_cf(handle);
        it.seek_to_first();
        while let Some(k) = it.key() {
            batch.delete_cf(handle, k);
            it.next();
        }
        it.status().map_err(sm_err)?;
    }
    for (name, kvs) in &dump.cfs {
        let handle = inner.cf_named(name).map_err(sm_err)?;
        for (k, v) in kvs {
            batch.put_cf(handle, k, v);
        }
    }
    let meta_cf = inner.cf_named(META_CF).map_err(sm_err)?;
    batch.put_cf(
        meta_cf,
        APPLIED,
        format::encode(&stored.meta.last_log_id).map_err(sm_err)?,
    );
    batch.put_cf(
        meta_cf,
        MEMBERSHIP,
        format::encode(&stored.meta.last_membership).map_err(sm_err)?,
    );
    batch.put_cf(meta_cf, SNAPSHOT, format::encode(&stored).map_err(sm_err)?);
    let mut wo = WriteOptions::default();
    wo.set_sync(true);
    inner.db().write_opt(batch, &wo).map_err(sm_err)
}
