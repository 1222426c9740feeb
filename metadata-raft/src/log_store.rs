//! The Raft log and vote in RocksDB, in the metadata database itself: column family
//! `raft_log` keeps entries under their big-endian index, `raft_meta` the vote, the committed
//! log id and the last purged log id, each in the versioned envelope of [`super::format`].
//!
//! Appends are written without waiting for the disk and then made durable by one WAL sync on
//! a blocking thread, whose completion is what tells Raft the entries are on disk; entries
//! appended while that sync runs share the next one, so concurrent writers share fsyncs.

// Raft's storage traits fix the error type (openraft's `StorageError`, large by design).
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{AnyError, LogId, LogState, RaftLogReader, StorageError, StorageIOError, Vote};
use rocksdb::{WriteBatch, WriteOptions};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::format;
use super::{Entry, NodeId, TypeConfig, LOG_CF, META_CF};
use cairn_metadata_rocks::RocksMetadataStore;

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const PURGED: &[u8] = b"last-purged";

/// The log store handed to Raft (and cloned as its log reader).
#[derive(Clone)]
pub struct LogStore {
    pub(crate) inner: RocksMetadataStore,
    syncer: Arc<SyncerHandle>,
    /// Test fail point: while set, appends wait, and with them the Raft core that awaits
    /// them (no heartbeats, no metrics updates), as in a paused process.
    pub(crate) stall: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl LogStore {
    /// `syncs` counts the WAL syncs made (one per group of appends).
    pub(crate) fn new(inner: RocksMetadataStore, syncs: Arc<std::sync::atomic::AtomicU64>) -> Self {
        let syncer = WalSyncer::start(inner.clone(), syncs);
        LogStore {
            inner,
            syncer,
            stall: None,
        }
    }
}

/// One thread that makes appended entries durable: it takes every append waiting for its
/// sync, syncs the WAL once, and tells all of them — so appends that arrive while a sync
/// runs share the next one.
///
/// The thread is stopped and joined when the last log store goes ([`SyncerHandle`]), so the
/// database it holds closes then, not in a thread nobody waits for: a process that exits
/// while such a thread still holds an open database tears RocksDB's statics down under it
/// and aborts ("pthread lock: Invalid argument").
struct WalSyncer {
    inner: RocksMetadataStore,
    /// The metadata directory's `FAULTS` file, when fault injection is enabled
    /// (`CAIRN_FAILPOINTS=1`): a line `fsync-eio` there makes every WAL sync fail with EIO,
    /// as a failing disk would. Never enabled in production.
    faults: Option<std::path::PathBuf>,
    waiting: std::sync::Mutex<Waiting>,
    wake: std::sync::Condvar,
    /// WAL syncs made (for metrics and figures).
    syncs: Arc<std::sync::atomic::AtomicU64>,
}

#[derive(Default)]
struct Waiting {
    appends: Vec<LogFlushed<TypeConfig>>,
    stop: bool,
}

/// Owns the sync thread: dropping it (with the last log store) stops and joins the thread.
struct SyncerHandle {
    syncer: Arc<WalSyncer>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for SyncerHandle {
    fn drop(&mut self) {
        self.syncer.lock().stop = true;
        self.syncer.wake.notify_one();
        if let Some(t) = self.thread.take() {
            // The thread finishes the sync it is in (appends already waiting get it) and ends.
            let _ = t.join();
        }
    }
}

impl WalSyncer {
    fn start(
        inner: RocksMetadataStore,
        syncs: Arc<std::sync::atomic::AtomicU64>,
    ) -> Arc<SyncerHandle> {
        let faults = (std::env::var("CAIRN_FAILPOINTS").as_deref() == Ok("1"))
            .then(|| inner.db().path().join("FAULTS"));
        let syncer = Arc::new(WalSyncer {
            inner,
            faults,
            waiting: std::sync::Mutex::new(Waiting::default()),
            wake: std::sync::Condvar::new(),
            syncs,
        });
        let runner = syncer.clone();
        let thread = std::thread::Builder::new()
            .name("raft-wal-sync".into())
            .spawn(move || runner.run())
            .expect("spawn the WAL sync thread");
        Arc::new(SyncerHandle {
            syncer,
            thread: Some(thread),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn request(&self, done: LogFlushed<TypeConfig>) {
        self.lock().appends.push(done);
        self.wake.notify_one();
    }

    /// Whether the fault seam says this sync fails.
    fn fsync_fails(&self) -> bool {
        self.faults.as_ref().is_some_and(|f| {
            std::fs::read_to_string(f).is_ok_and(|t| t.lines().any(|l| l.trim() == "fsync-eio"))
        })
    }

    fn run(&self) {
        loop {
            let batch = {
                let mut waiting = self.lock();
                while waiting.appends.is_empty() && !waiting.stop {
                    waiting = self
                        .wake
                        .wait(waiting)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
                if waiting.appends.is_empty() {
                    return;
                }
                std::mem::take(&mut waiting.appends)
            };
            let r = if self.fsync_fails() {
                Err(std::io::Error::from_raw_os_error(5).to_string())
            } else {
                self.inner.db().flush_wal(true).map_err(|e| e.to_string())
            };
            self.syncs
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            for done in batch {
                let r = r
                    .as_ref()
                    .map(|_| ())
                    .map_err(|e| std::io::Error::other(e.clone()));
                done.log_io_completed(r);
            }
        }
    }
}

fn io_err(e: impl ToString) -> AnyError {
    AnyError::error(e.to_string())
}

fn read_err(e: impl ToString) -> StorageError<NodeId> {
    StorageIOError::read_logs(io_err(e)).into()
}

fn write_err(e: impl ToString) -> StorageError<NodeId> {
    StorageIOError::write_logs(io_err(e)).into()
}

pub(crate) fn get_meta<T: DeserializeOwned>(
    inner: &RocksMetadataStore,
    key: &[u8],
) -> Result<Option<T>, StorageError<NodeId>> {
    let cf = inner.cf_named(META_CF).map_err(read_err)?;
    match inner.db().get_cf(cf, key).map_err(read_err)? {
        Some(v) => format::decode(&meta_name(key), &v)
            .map(Some)
            .map_err(read_err),
        None => Ok(None),
    }
}

pub(crate) fn put_meta_synced<T: Serialize>(
    inner: &RocksMetadataStore,
    key: &[u8],
    value: &T,
) -> Result<(), StorageError<NodeId>> {
    let cf = inner.cf_named(META_CF).map_err(write_err)?;
    let bytes = format::encode(value).map_err(write_err)?;
    let mut wo = WriteOptions::default();
    wo.set_sync(true);
    inner
        .db()
        .put_cf_opt(cf, key, bytes, &wo)
        .map_err(write_err)
}

/// `raft_meta`'s `key` as errors name it.
pub(crate) fn meta_name(key: &[u8]) -> String {
    format!("raft_meta {:?}", String::from_utf8_lossy(key))
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

impl LogStore {
    /// Entries from `start` (up to `end`): at most `limit` of them and, but for the first,
    /// at most `max_bytes` of them encoded.
    fn entries(
        &self,
        start: u64,
        end: Option<u64>,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<Entry>, StorageError<NodeId>> {
        let cf = self.inner.cf_named(LOG_CF).map_err(read_err)?;
        let mut it = self.inner.db().raw_iterator_cf(cf);
        it.seek(index_key(start));
        let mut out = Vec::new();
        let mut bytes = 0usize;
        while it.valid() && out.len() < limit {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            let index = u64::from_be_bytes(k.try_into().map_err(read_err)?);
            if end.is_some_and(|e| index >= e) {
                break;
            }
            // Stored as they travel (postcard, behind a few bytes of envelope), so this is
            // about their size in a message.
            bytes = bytes.saturating_add(v.len());
            if !out.is_empty() && bytes > max_bytes {
                break;
            }
            out.push(format::decode("a Raft log entry", v).map_err(read_err)?);
            it.next();
        }
        it.status().map_err(read_err)?;
        Ok(out)
    }

    fn last_entry_id(&self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        let cf = self.inner.cf_named(LOG_CF).map_err(read_err)?;
        let mut it = self.inner.db().raw_iterator_cf(cf);
        it.seek_to_last();
        match it.value() {
            Some(v) => {
                let e: Entry = format::decode("a Raft log entry", v).map_err(read_err)?;
                Ok(Some(e.log_id))
            }
            None => {
                it.status().map_err(read_err)?;
                Ok(None)
            }
        }
    }

    /// Deletes the entries with index in `[from, to)`.
    fn delete_range(&self, from: u64, to: u64) -> Result<(), StorageError<NodeId>> {
        let cf = self.inner.cf_named(LOG_CF).map_err(write_err)?;
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(cf, index_key(from), index_key(to));
        self.inner.db().write_opt(batch, &wo).map_err(write_err)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError<NodeId>> {
        let start = match range.start_bound() {
            Bound::Included(s) => *s,
            Bound::Excluded(s) => s + 1,
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(e) => Some(e + 1),
            Bound::Excluded(e) => Some(*e),
            Bound::Unbounded => None,
        };
        self.entries(start, end, usize::MAX, usize::MAX)
    }

    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<Entry>, StorageError<NodeId>> {
        // Bounded so that one append-entries message stays within the cluster listener's
        // body limit (see `limits`): at most `max_payload_entries` entries, and at most
        // `MAX_APPEND_BYTES` of them (one bigger entry alone).
        self.entries(start, Some(end), 256, super::limits::MAX_APPEND_BYTES)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let last_purged: Option<LogId<NodeId>> = get_meta(&self.inner, PURGED)?;
        let last = self.last_entry_id()?.or(last_purged);
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        put_meta_synced(&self.inner, VOTE, vote)
            .map_err(|e| StorageIOError::write_vote(io_err(e)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        get_meta(&self.inner, VOTE)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        // A hint for restarts (apply up to here at once), not needed for safety: not synced.
        let cf = self.inner.cf_named(META_CF).map_err(write_err)?;
        let bytes = format::encode(&committed).map_err(write_err)?;
        self.inner
            .db()
            .put_cf(cf, COMMITTED, bytes)
            .map_err(write_err)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(get_meta::<Option<LogId<NodeId>>>(&self.inner, COMMITTED)?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        if let Some(stall) = &self.stall {
            while stall.load(std::sync::atomic::Ordering::SeqCst) {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
        let cf = self.inner.cf_named(LOG_CF).map_err(write_err)?;
        let mut batch = WriteBatch::default();
        for e in entries {
            let bytes = format::encode(&e).map_err(write_err)?;
            batch.put_cf(cf, index_key(e.log_id.index), bytes);
        }
        // Readable now; durable once the syncer's next WAL sync completes.
        self.inner.db().write(batch).map_err(write_err)?;
        self.syncer.syncer.request(callback);
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.delete_range(log_id.index, u64::MAX)?;
        // The key u64::MAX itself is outside the half-open range; it is never used.
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        put_meta_synced(&self.inner, PURGED, &log_id)?;
        self.delete_range(0, log_id.index + 1)
    }
}
