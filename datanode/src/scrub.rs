//! The datanode side of scrubbing: the cached per-partition Merkle trees of a
//! [`LocalShardStore`], deep scrub (re-reading payloads, quarantining corrupt ones) and the
//! [`ShardStore`] defaults for stores that keep no trees.
//!
//! Tree cache: the index keeps a version number per partition that changes whenever a shard
//! of the partition appears, disappears or changes checksum or length (not when compaction
//! moves it). A partition's tree is rebuilt from the in-memory index, never from segment
//! files, the first time it is asked for after its version changed; other partitions keep
//! their cached trees. After a reopen every partition is stale once, and recovery's index is
//! what the trees are built from.
//!
//! Quarantine: a payload that fails its checksum (or runs past the end of its segment) is
//! removed by appending a tombstone through the writer, only if the index still points at
//! that exact record (a newer put or a delete wins). The tombstone is an ordinary record, so
//! a restart does not resurrect the shard, and the Merkle tree then lists it as missing for
//! the scrubber to repair. The damaged bytes stay in the old segment until compaction.
//!
//! [`diff_against_store`] is the scrubber's walk: an expected summary against any
//! [`ShardStore`], fetching only the nodes under differing hashes.

use std::fs::File;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_types::{crc32c, ShardId};

use crate::index::Location;
use crate::merkle::{
    diff_entries, MerkleDiff, MerkleNode, MerkleSummary, NodePath, PartitionTree, FANOUT,
};
use crate::segment::read_payload;
use crate::store::LocalShardStore;
use crate::writer::Request;
use crate::{DatanodeError, DeepScrubReport, Result, ShardInfo, ShardStore};

/// Records read per blocking task of a deep scrub (and per quarantine request).
const SCRUB_CHUNK: usize = 256;
/// Entries per `list` page of the default implementations.
const LIST_PAGE: usize = 1000;

/// Spaces reads so that, on average since `start`, at most `rate` bytes a second are read.
pub(crate) struct Pacer {
    rate: u64,
    start: Instant,
    bytes: u64,
}

impl Pacer {
    /// `rate == 0`: no limit.
    pub fn new(rate: u64) -> Pacer {
        Pacer {
            rate,
            start: Instant::now(),
            bytes: 0,
        }
    }

    /// Counts `n` more bytes read; returns how long to wait before reading on.
    pub fn after(&mut self, n: u64) -> Duration {
        self.bytes += n;
        if self.rate == 0 {
            return Duration::ZERO;
        }
        let due = Duration::from_secs_f64(self.bytes as f64 / self.rate as f64);
        due.saturating_sub(self.start.elapsed())
    }
}

impl LocalShardStore {
    /// The current Merkle tree of `partition`, rebuilt from the index if it changed since
    /// the cached one was built.
    pub fn partition_tree(&self, partition: u8) -> Arc<PartitionTree> {
        let version = self
            .shared()
            .read_state()
            .index
            .partition_version(partition);
        if let Some(tree) = self.scrub.cached(partition, version) {
            return tree;
        }
        let (version, entries) = {
            let state = self.shared().read_state();
            (
                state.index.partition_version(partition),
                state.index.partition_entries(partition),
            )
        };
        let tree = Arc::new(PartitionTree::from_sorted(partition, entries));
        self.scrub.rebuilds.fetch_add(1, Ordering::Relaxed);
        self.scrub.store(partition, version, tree.clone());
        tree
    }

    /// Re-reads every live payload and verifies its CRC32C, at most
    /// `rate_limit_bytes_per_sec` bytes a second (`0`: no limit), and quarantines the
    /// corrupt ones (see the module docs). Reads and writes keep working meanwhile; one
    /// deep scrub runs at a time. A read error other than a payload cut short by the end of
    /// its file stops the scrub with that error (nothing is quarantined for it).
    pub async fn deep_scrub(&self, rate_limit_bytes_per_sec: u64) -> Result<DeepScrubReport> {
        let _guard = self.scrub.running.lock().await;
        let mut report = DeepScrubReport::default();
        let mut pacer = Pacer::new(rate_limit_bytes_per_sec);
        let mut cursor: Option<ShardId> = None;
        loop {
            let chunk: Vec<(ShardId, Location, Option<Arc<File>>)> = {
                let state = self.shared().read_state();
                state
                    .index
                    .locations(cursor, SCRUB_CHUNK)
                    .into_iter()
                    .map(|(id, loc)| {
                        let reader = state.segments.get(&loc.segment).map(|s| s.reader.clone());
                        (id, loc, reader)
                    })
                    .collect()
            };
            let Some(last) = chunk.last() else { break };
            cursor = Some(last.0);
            let (checked, bytes, victims, p) =
                tokio::task::spawn_blocking(move || verify_chunk(chunk, pacer))
                    .await
                    .map_err(|e| DatanodeError::Io(io::Error::other(e)))??;
            pacer = p;
            report.shards_checked += checked;
            report.bytes_read += bytes;
            if !victims.is_empty() {
                let quarantined = self
                    .submit(|reply| Request::Quarantine { victims, reply })
                    .await?;
                for id in &quarantined {
                    tracing::warn!(shard = %id, "deep scrub quarantined a corrupt shard");
                }
                report.corrupt.extend(quarantined);
            }
        }
        tracing::info!(
            shards = report.shards_checked,
            bytes = report.bytes_read,
            corrupt = report.corrupt.len(),
            "deep scrub finished"
        );
        Ok(report)
    }
}

type Verified = (u64, u64, Vec<(ShardId, Location)>, Pacer);

/// Reads and checks one chunk (blocking, paced): shards checked, bytes read, corrupt ones.
fn verify_chunk(
    chunk: Vec<(ShardId, Location, Option<Arc<File>>)>,
    mut pacer: Pacer,
) -> Result<Verified> {
    let (mut checked, mut bytes) = (0, 0);
    let mut victims = Vec::new();
    for (id, loc, reader) in chunk {
        let Some(reader) = reader else {
            tracing::warn!(shard = %id, segment = loc.segment, "deep scrub: segment not open; skipping");
            continue;
        };
        let intact = match read_payload(&reader, loc.offset, loc.len) {
            Ok(buf) => crc32c(&buf) == loc.crc32c,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => false,
            Err(e) => return Err(e.into()),
        };
        checked += 1;
        bytes += loc.len;
        if !intact {
            tracing::warn!(shard = %id, segment = loc.segment, offset = loc.offset, "deep scrub: payload checksum mismatch");
            victims.push((id, loc));
        }
        let wait = pacer.after(loc.len);
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
    Ok((checked, bytes, victims, pacer))
}

/// Compares `expected` (e.g. what metadata says a datanode should hold) with what `actual`
/// holds, fetching through the trait only the roots and then the nodes and leaves under
/// roots that differ. The result is the same as [`crate::merkle::diff_summaries`] against
/// the store's own summary; `requests` counts the store calls made.
pub async fn diff_against_store(
    expected: &MerkleSummary,
    actual: &dyn ShardStore,
) -> Result<MerkleDiff> {
    let roots = actual.merkle_roots().await?;
    let mut out = MerkleDiff {
        requests: 1,
        ..MerkleDiff::default()
    };
    for (p, root) in roots.iter().enumerate() {
        let p = p as u8;
        let tree = expected.partition(p);
        out.nodes_compared += 1;
        if tree.root() == *root {
            continue;
        }
        let mut stack = vec![NodePath::ROOT];
        while let Some(path) = stack.pop() {
            let node = actual.merkle_node(p, path).await?;
            out.requests += 1;
            match node {
                MerkleNode::Inner { children, .. } => {
                    let mine = tree.children(path);
                    out.nodes_compared += FANOUT as u64;
                    for n in (0..FANOUT).rev() {
                        if mine[n] != children[n] {
                            stack.extend(path.child(n as u8));
                        }
                    }
                }
                MerkleNode::Leaf { entries, .. } => {
                    let mine = tree.entries_under(path);
                    out.entries_compared += (mine.len() + entries.len()) as u64;
                    diff_entries(mine, &entries, &mut out);
                }
            }
        }
    }
    Ok(out)
}

/// All entries of `partition` through [`ShardStore::list`], in id order.
pub(crate) async fn list_partition<S: ShardStore + ?Sized>(
    store: &S,
    partition: u8,
) -> Result<Vec<ShardInfo>> {
    // The largest id of the previous partition, so that listing starts at this one.
    let mut after = partition.checked_sub(1).map(|prev| {
        let mut b = [0xffu8; ShardId::ENCODED_LEN];
        b[0] = prev;
        ShardId::from_bytes(&b)
    });
    let mut out = Vec::new();
    loop {
        let page = store.list(after, LIST_PAGE).await?;
        let full = page.len() == LIST_PAGE;
        for info in page {
            if crate::merkle::partition_of(&info.id) != partition {
                return Ok(out);
            }
            after = Some(info.id);
            out.push(info);
        }
        if !full {
            return Ok(out);
        }
    }
}

/// [`ShardStore::deep_scrub`] for stores without quarantine: `get`s every listed shard.
pub(crate) async fn deep_scrub_via_get<S: ShardStore + ?Sized>(
    store: &S,
    rate: u64,
) -> Result<DeepScrubReport> {
    let mut report = DeepScrubReport::default();
    let mut pacer = Pacer::new(rate);
    let mut after = None;
    loop {
        let page = store.list(after, LIST_PAGE).await?;
        let full = page.len() == LIST_PAGE;
        for info in page {
            after = Some(info.id);
            match store.get(info.id).await {
                Ok(data) => {
                    report.shards_checked += 1;
                    report.bytes_read += data.len() as u64;
                }
                Err(DatanodeError::Corrupt { id, .. }) => {
                    report.shards_checked += 1;
                    report.corrupt.push(id);
                }
                // Deleted since it was listed.
                Err(DatanodeError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            }
            let wait = pacer.after(info.len);
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
        if !full {
            return Ok(report);
        }
    }
}

#[cfg(test)]
mod tests;
