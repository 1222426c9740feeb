//! [`LocalShardStore`]: the [`ShardStore`] over a directory of segment files.
//!
//! Shape: one writer thread owns the active segment's write handle and does group commit
//! (see `writer.rs`); readers look a shard up in the index under a short `RwLock` read
//! section, then read its payload with a positional read on a per-segment read handle inside
//! `spawn_blocking`, so reads run alongside writes. No lock is held across an `.await`.
//!
//! One directory must be opened by one store at a time; nothing enforces that yet.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use cairn_types::{crc32c, ShardId};
use tokio::sync::{mpsc, oneshot};

use crate::merkle::{Hash, MerkleNode, NodePath, PARTITIONS};
use crate::recovery::recover;
use crate::scrub_state::ScrubState;
use crate::segment::read_payload;
use crate::state::Shared;
use crate::writer::{Request, Writer, WriterConfig};
use crate::{DatanodeError, DeepScrubReport, Result, ShardInfo, ShardStore, StoreStats};

/// The default [`StoreOptions::segment_size`]: 256 MiB (see `docs/formats.md` for why).
pub const DEFAULT_SEGMENT_SIZE: u64 = 256 << 20;

/// Tuning of a [`LocalShardStore`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// A segment is closed and a new one started once the next record would take it past
    /// this many bytes. A record larger than this gets a segment of its own.
    pub segment_size: u64,
    /// Largest shard `put` accepts; larger ones fail with [`DatanodeError::TooLarge`].
    pub max_shard_size: u64,
    /// How long the writer waits after the first request of a batch for more to arrive
    /// (zero: take only what is already queued). Trades latency for fewer fsyncs.
    pub commit_delay: Duration,
    /// Most requests in one group commit.
    pub max_batch: usize,
    /// Requests that may wait for the writer before `put`/`delete` callers wait to enqueue.
    pub queue_depth: usize,
    /// [`LocalShardStore::compact`] threshold used by [`crate::run_compaction`]: a sealed
    /// segment whose live records take less than this fraction of its file is compacted.
    pub compaction_threshold: f64,
    /// Compaction seals the *active* segment (starts a new one, so that it can be rewritten)
    /// when its live share is under `compaction_threshold` and at least this many of its
    /// bytes are dead. Space held by deleted shards therefore never waits for the segment to
    /// fill; this is the most a datanode keeps dead in its active segment.
    pub seal_min_dead: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            segment_size: DEFAULT_SEGMENT_SIZE,
            max_shard_size: 256 << 20,
            commit_delay: Duration::ZERO,
            max_batch: 1024,
            queue_depth: 4096,
            compaction_threshold: 0.5,
            seal_min_dead: 4 << 20,
        }
    }
}

/// A shard store on a local directory: append-only segment files with checksummed records,
/// an in-memory index recovered on open, and group commit.
pub struct LocalShardStore {
    dir: PathBuf,
    options: StoreOptions,
    shared: Arc<Shared>,
    tx: Mutex<Option<mpsc::Sender<Request>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Serialises [`LocalShardStore::compact`] calls.
    pub(crate) compaction: tokio::sync::Mutex<()>,
    /// Set by [`LocalShardStore::stop_compacting`]: compaction leaves the directory alone.
    pub(crate) frozen: std::sync::atomic::AtomicBool,
    /// Merkle tree cache and deep scrub (see `scrub.rs`).
    pub(crate) scrub: ScrubState,
}

impl std::fmt::Debug for LocalShardStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalShardStore")
            .field("dir", &self.dir)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl LocalShardStore {
    /// Opens (creating if needed) the store in `dir`: recovers the index from the segment
    /// files (cutting off a torn tail, see `docs/formats.md`) and starts the writer thread.
    /// Does blocking I/O; call it at startup or from `spawn_blocking`.
    pub fn open(dir: &Path, options: StoreOptions) -> Result<Self> {
        let recovered = recover(dir)?;
        let shared = Arc::new(Shared::new(recovered.state, recovered.fsyncs, dir));
        let (tx, rx) = mpsc::channel(options.queue_depth.max(1));
        let writer = Writer::new(
            WriterConfig {
                dir: dir.to_path_buf(),
                segment_size: options.segment_size,
                commit_delay: options.commit_delay,
                max_batch: options.max_batch.max(1),
            },
            shared.clone(),
            recovered.active,
            rx,
        );
        let handle = std::thread::Builder::new()
            .name("cairn-dn-writer".into())
            .spawn(move || writer.run())?;
        Ok(LocalShardStore {
            dir: dir.to_path_buf(),
            options,
            shared,
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(handle)),
            compaction: tokio::sync::Mutex::new(()),
            frozen: std::sync::atomic::AtomicBool::new(false),
            scrub: ScrubState::default(),
        })
    }

    /// Compaction no longer touches this store's files (its datanode left the cluster; the
    /// directory is left as it is). Waits for a compaction under way to finish.
    pub async fn stop_compacting(&self) {
        let _guard = self.compaction.lock().await;
        self.frozen.store(true, Ordering::SeqCst);
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where a shard's payload sits on disk: segment file, byte offset and length. For
    /// diagnostics and fault-injection tests; the file may be compacted away at any time.
    pub fn payload_location(&self, id: ShardId) -> Option<(std::path::PathBuf, u64, u64)> {
        let loc = self.shared().read_state().index.get(&id)?;
        Some((
            self.dir
                .join(crate::segment::segment_file_name(loc.segment)),
            loc.offset,
            loc.len,
        ))
    }

    pub fn options(&self) -> &StoreOptions {
        &self.options
    }

    /// Stops accepting writes, lets the writer finish what it has queued and waits for it
    /// to exit. Later `put`/`delete` calls fail with [`DatanodeError::Closed`]; reads keep
    /// working. Dropping the store does the same, blocking.
    pub async fn close(&self) {
        drop(self.take_sender());
        if let Some(handle) = self.take_writer() {
            if tokio::task::spawn_blocking(move || handle.join())
                .await
                .is_err()
            {
                tracing::warn!("datanode writer join task failed");
            }
        }
    }

    fn sender(&self) -> Result<mpsc::Sender<Request>> {
        self.tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(DatanodeError::Closed)
    }

    fn take_sender(&self) -> Option<mpsc::Sender<Request>> {
        self.tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    fn take_writer(&self) -> Option<JoinHandle<()>> {
        self.writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    pub(crate) async fn submit<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T>>) -> Request,
    ) -> Result<T> {
        let tx = self.sender()?;
        let (reply, answer) = oneshot::channel();
        tx.send(make(reply))
            .await
            .map_err(|_| DatanodeError::Closed)?;
        answer.await.map_err(|_| DatanodeError::Closed)?
    }
}

impl Drop for LocalShardStore {
    fn drop(&mut self) {
        drop(self.take_sender());
        if let Some(handle) = self.take_writer() {
            // The writer exits once it has answered what it received: at most one batch.
            if handle.join().is_err() {
                tracing::error!("datanode writer thread panicked");
            }
        }
    }
}

#[async_trait]
impl ShardStore for LocalShardStore {
    async fn put(&self, id: ShardId, data: Bytes) -> Result<ShardInfo> {
        let len = data.len() as u64;
        if len > self.options.max_shard_size {
            return Err(DatanodeError::TooLarge(len));
        }
        // Checksum big payloads off the async worker threads.
        let (data, crc) = if data.len() > (1 << 20) {
            tokio::task::spawn_blocking(move || {
                let crc = crc32c(&data);
                (data, crc)
            })
            .await
            .map_err(|e| DatanodeError::Io(io::Error::other(e)))?
        } else {
            let crc = crc32c(&data);
            (data, crc)
        };
        self.submit(|reply| Request::Put {
            id,
            data,
            crc32c: crc,
            reply,
        })
        .await
    }

    async fn put_with_crc(&self, id: ShardId, data: Bytes, crc32c: u32) -> Result<ShardInfo> {
        let len = data.len() as u64;
        if len > self.options.max_shard_size {
            return Err(DatanodeError::TooLarge(len));
        }
        // The bytes were produced in this process with this checksum: it goes into the
        // record header as it is (reads and deep scrubs check the payload against it).
        self.submit(|reply| Request::Put {
            id,
            data,
            crc32c,
            reply,
        })
        .await
    }

    async fn get(&self, id: ShardId) -> Result<Bytes> {
        Ok(self.get_with_crc(id).await?.0)
    }

    async fn get_with_crc(&self, id: ShardId) -> Result<(Bytes, u32)> {
        let (loc, reader) = {
            let state = self.shared.read_state();
            let loc = state.index.get(&id).ok_or(DatanodeError::NotFound(id))?;
            let reader = state
                .segments
                .get(&loc.segment)
                .map(|s| s.reader.clone())
                .ok_or_else(|| DatanodeError::Corrupt {
                    id,
                    reason: format!("segment {} is not open", loc.segment),
                })?;
            (loc, reader)
        };
        // Read and checksum off the async worker threads, the CRC computed as the bytes
        // come in (while they are still in cache).
        let shared = self.shared.clone();
        let read = tokio::task::spawn_blocking(move || {
            let mut buf = read_payload(&reader, loc.offset, loc.len)?;
            shared.faults.after_read(&mut buf)?;
            let crc = crc32c(&buf);
            Ok::<_, io::Error>((buf, crc))
        })
        .await
        .map_err(|e| DatanodeError::Io(io::Error::other(e)))?;
        let (buf, crc) = match read {
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(DatanodeError::Corrupt {
                    id,
                    reason: format!("segment {} ends inside the payload", loc.segment),
                })
            }
            Err(e) => return Err(e.into()),
        };
        if crc != loc.crc32c {
            tracing::warn!(shard = %id, segment = loc.segment, offset = loc.offset, "payload checksum mismatch");
            return Err(DatanodeError::Corrupt {
                id,
                reason: format!(
                    "payload checksum {crc:08x}, expected {:08x} (segment {}, offset {})",
                    loc.crc32c, loc.segment, loc.offset
                ),
            });
        }
        Ok((Bytes::from(buf), crc))
    }

    async fn delete(&self, id: ShardId) -> Result<()> {
        self.submit(|reply| Request::Delete { id, reply }).await
    }

    fn is_local(&self) -> bool {
        true
    }

    async fn list(&self, start_after: Option<ShardId>, limit: usize) -> Result<Vec<ShardInfo>> {
        Ok(self.shared.read_state().index.list(start_after, limit))
    }

    async fn stats(&self) -> Result<StoreStats> {
        let space = rustix::fs::statvfs(&self.dir)
            .ok()
            .map(|v| (v.f_blocks * v.f_frsize, v.f_bavail * v.f_frsize));
        let state = self.shared.read_state();
        Ok(StoreStats {
            shards: state.index.len() as u64,
            live_bytes: state.index.live_bytes(),
            disk_bytes: state.segments.values().map(|s| s.len).sum(),
            segments: state.segments.len() as u64,
            fsyncs: self.shared.fsyncs.load(Ordering::Relaxed),
            capacity_bytes: space.map_or(0, |s| s.0),
            free_bytes: space.map_or(0, |s| s.1),
        })
    }

    async fn merkle_roots(&self) -> Result<Vec<Hash>> {
        Ok((0..PARTITIONS)
            .map(|p| self.partition_tree(p as u8).root())
            .collect())
    }

    async fn merkle_node(&self, partition: u8, path: NodePath) -> Result<MerkleNode> {
        Ok(self.partition_tree(partition).node(path))
    }

    async fn deep_scrub(&self, rate_limit_bytes_per_sec: u64) -> Result<DeepScrubReport> {
        LocalShardStore::deep_scrub(self, rate_limit_bytes_per_sec).await
    }
}

#[cfg(test)]
mod tests;
