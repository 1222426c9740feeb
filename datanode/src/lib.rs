//! Datanode storage: shards (byte strings named by [`ShardId`]) kept in append-only segment
//! files with per-record checksums, an in-memory index recovered on start, tombstones for
//! deletes and group commit (concurrent writes share one fsync). For scrubbing, every store
//! answers Merkle summaries of what it holds ([`merkle`]) and can deep-scrub its payloads.
//!
//! The [`ShardStore`] trait is the seam every other crate uses; it names no file handles, so
//! a later network client (`RemoteShardStore`) and fault-injecting decorators implement the
//! same trait. Invariant: `put` and `delete` return only after the record is durable
//! (fsynced); `get` never returns bytes whose checksum does not match.

use async_trait::async_trait;
use bytes::Bytes;
use cairn_types::ShardId;

use crate::merkle::{Hash, MerkleNode, NodePath};

mod compaction;
pub mod faults;
mod index;
pub mod merkle;
pub mod record;
mod recovery;
mod remote;
mod scrub;
mod scrub_state;
mod segment;
pub mod server;
mod state;
mod store;
pub mod testing;
mod writer;

pub use compaction::{run_compaction, CompactionJob, CompactionReport};
pub use remote::{RemoteShardStore, DEFAULT_REQUEST_TIMEOUT, DEFAULT_SCRUB_TIMEOUT};
pub use scrub::diff_against_store;
pub use server::{default_limits, router, serve, serve_with_limits};
pub use store::{LocalShardStore, StoreOptions, DEFAULT_SEGMENT_SIZE};

/// What a datanode knows about one stored shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardInfo {
    pub id: ShardId,
    pub len: u64,
    /// CRC32C of the shard's bytes.
    pub crc32c: u32,
}

/// What one deep scrub did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeepScrubReport {
    /// Shards whose payload was read.
    pub shards_checked: u64,
    /// Payload bytes read.
    pub bytes_read: u64,
    /// Shards found corrupt (and, where the store can, quarantined), in id order.
    pub corrupt: Vec<ShardId>,
}

/// Space accounting of one store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub shards: u64,
    /// Payload bytes of live shards.
    pub live_bytes: u64,
    /// Bytes of all segment files on disk (live + dead + headers).
    pub disk_bytes: u64,
    pub segments: u64,
    /// fsync calls made since the store was opened (segment data and directory). With group
    /// commit this grows slower than the number of writes under concurrency.
    pub fsyncs: u64,
    /// Size of the filesystem the store is on, and the bytes still free on it (0 when
    /// unknown).
    pub capacity_bytes: u64,
    pub free_bytes: u64,
}

/// Disk bytes over live bytes (1.0 = no dead data or overhead); `None` while nothing is live.
pub fn space_amplification(live_bytes: u64, disk_bytes: u64) -> Option<f64> {
    (live_bytes > 0).then(|| disk_bytes as f64 / live_bytes as f64)
}

/// Errors of the datanode crate. `is_retryable` says whether trying again may help.
#[derive(Debug, thiserror::Error)]
pub enum DatanodeError {
    #[error("shard {0} not found")]
    NotFound(ShardId),
    #[error("shard {id} is corrupt: {reason}")]
    Corrupt { id: ShardId, reason: String },
    #[error("shard too large: {0} bytes")]
    TooLarge(u64),
    #[error("datanode I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("datanode is shutting down")]
    Closed,
}

impl DatanodeError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, DatanodeError::Io(_) | DatanodeError::Closed)
    }
}

pub type Result<T, E = DatanodeError> = std::result::Result<T, E>;

/// Storage of shards by id. Implemented by the local segment store and, later, by a
/// network client for remote datanodes.
#[async_trait]
pub trait ShardStore: Send + Sync + 'static {
    /// Stores `data` under `id` (replacing any earlier shard with that id). Returns once the
    /// record is fsynced.
    async fn put(&self, id: ShardId, data: Bytes) -> Result<ShardInfo>;
    /// Reads a whole shard, verifying its checksum.
    async fn get(&self, id: ShardId) -> Result<Bytes>;

    /// [`ShardStore::put`] of bytes whose CRC32C the caller computed where it produced them
    /// (the encoder), so that the checksum is computed once per shard on its way in: stores
    /// use `crc32c` instead of computing it again, checking it only where the bytes arrive
    /// over a wire. The default puts and compares the checksum stored.
    async fn put_with_crc(&self, id: ShardId, data: Bytes, crc32c: u32) -> Result<ShardInfo> {
        let info = self.put(id, data).await?;
        if info.crc32c != crc32c {
            return Err(DatanodeError::Corrupt {
                id,
                reason: format!(
                    "stored with checksum {:08x}, the writer computed {crc32c:08x}",
                    info.crc32c
                ),
            });
        }
        Ok(info)
    }

    /// [`ShardStore::get`] with the CRC32C the bytes were checked against, so that a reader
    /// comparing them with metadata need not checksum them again. The default computes it.
    async fn get_with_crc(&self, id: ShardId) -> Result<(Bytes, u32)> {
        let data = self.get(id).await?;
        let crc = cairn_types::crc32c(&data);
        Ok((data, crc))
    }
    /// Whether calls reach the datanode without crossing the network (a datanode of this
    /// process); what the data path's traffic metrics count as local. Default: remote.
    fn is_local(&self) -> bool {
        false
    }
    /// Deletes a shard (appends a durable tombstone). Deleting an absent shard is not an error.
    async fn delete(&self, id: ShardId) -> Result<()>;
    /// Lists shards in id order, strictly after `start_after`, at most `limit`.
    async fn list(&self, start_after: Option<ShardId>, limit: usize) -> Result<Vec<ShardInfo>>;
    async fn stats(&self) -> Result<StoreStats>;

    /// Root hashes of the [`merkle::PARTITIONS`] partition trees of what the store holds
    /// (see [`merkle`]). The default builds them from a full [`ShardStore::list`]; fine
    /// for test stores, while real stores keep the trees up to date.
    async fn merkle_roots(&self) -> Result<Vec<Hash>> {
        let all = self.list(None, usize::MAX).await?;
        Ok(merkle::MerkleSummary::build(all).roots())
    }

    /// One node of `partition`'s tree: children hashes for an inner node, entries for a
    /// leaf. The default lists the partition through [`ShardStore::list`].
    async fn merkle_node(&self, partition: u8, path: NodePath) -> Result<MerkleNode> {
        let entries = scrub::list_partition(self, partition).await?;
        Ok(merkle::PartitionTree::build(partition, entries).node(path))
    }

    /// Re-reads every shard and verifies its checksum, reading at most
    /// `rate_limit_bytes_per_sec` payload bytes a second (`0`: no limit). Stores that can
    /// quarantine a corrupt shard (remove it so that it reads as absent, durably) do so; the
    /// default only reports what `get` finds [`DatanodeError::Corrupt`].
    async fn deep_scrub(&self, rate_limit_bytes_per_sec: u64) -> Result<DeepScrubReport> {
        scrub::deep_scrub_via_get(self, rate_limit_bytes_per_sec).await
    }
}
