//! Segment compaction: frees the disk space of deleted and overwritten shards.
//!
//! A pass first seals the active segment when its live share is under `threshold` and at
//! least `StoreOptions::seal_min_dead` of it is dead: the writer commits what is queued and
//! starts a new segment ([`Request::Seal`]), and the old one is compacted like any sealed
//! segment in the same pass. So deleted data frees its space whether or not the segment
//! ever fills.
//!
//! For each sealed segment (not the active one, not one recovery found damaged) whose live
//! records take less than `threshold` of its file, compaction
//!
//! 1. scans the segment's record headers (no lock held),
//! 2. reads the payloads of the records the index still points at, in bounded chunks, and
//!    hands them to the writer thread as a [`Request::Relocate`]; the writer copies each one
//!    into the active segment only if the index still points at that exact old location (so
//!    a concurrent put or delete of the same shard wins), fsyncs, and then updates the index,
//! 3. copies the segment's tombstones that must survive (see below) the same way,
//! 4. once no index entry points into the segment, unlinks its file, fsyncs the directory
//!    and then drops the segment from the store. Readers that looked a location up earlier hold an
//!    `Arc` of the segment's read handle, and an unlinked file stays readable through it.
//!
//! Tombstone rule: a tombstone in the segment is copied (if its shard is still absent) when
//! an older segment still on disk holds a put record for that shard id (or when an older
//! segment is damaged, so its contents are not known); otherwise it is dropped, since no
//! record it hides remains. Segments are compacted oldest first so older segments removed in
//! the same pass no longer count.

use std::collections::HashSet;
use std::fs::File;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cairn_types::{crc32c, ShardId};
use cairn_worker::{Job, Round, Schedule, Worker};

use crate::index::Location;
use crate::record::{RecordKind, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
use crate::segment::{read_payload, scan_records, segment_file_name, sync_dir, ScanEnd};
use crate::store::LocalShardStore;
use crate::writer::{Relocated, Relocation, Request};
use crate::{DatanodeError, Result};

/// Payload bytes read into memory per relocation request.
const CHUNK_BYTES: u64 = 8 << 20;
/// Records per relocation request.
const CHUNK_RECORDS: usize = 1024;

/// What one [`LocalShardStore::compact`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// Segment files removed.
    pub segments_compacted: u64,
    /// Bytes of the removed files minus the bytes their live records (and kept tombstones)
    /// took again in the active segment.
    pub bytes_reclaimed: u64,
    /// Records (puts and tombstones) copied into the active segment.
    pub records_moved: u64,
    /// Active segments sealed because they were mostly dead.
    pub segments_sealed: u64,
}

/// A sealed segment chosen for compaction.
struct Candidate {
    number: u64,
    reader: Arc<File>,
    len: u64,
}

impl LocalShardStore {
    /// Compacts every sealed segment whose live ratio (bytes of live records, headers
    /// included, over file bytes) is below `threshold`: copies its live records into the
    /// active segment and deletes the file. Reads and writes keep working meanwhile; one
    /// compaction runs at a time. See `docs/formats.md`.
    pub async fn compact(&self, threshold: f64) -> Result<CompactionReport> {
        self.compact_with(threshold, None).await
    }

    /// [`Self::compact`], honouring `worker`'s pause switch between segments (a segment is
    /// always compacted whole, or left as it is).
    pub async fn compact_with(
        &self,
        threshold: f64,
        worker: Option<&Worker>,
    ) -> Result<CompactionReport> {
        let _guard = self.compaction.lock().await;
        let mut report = CompactionReport::default();
        if self.frozen.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(report);
        }
        if let Some(number) = self.active_to_seal(threshold) {
            // A failed seal (no room for a new segment) must not keep the sealed segments
            // that only need unlinking from being freed.
            match self.submit(|reply| Request::Seal { number, reply }).await {
                Ok(true) => {
                    tracing::debug!(segment = number, "sealed a mostly dead active segment");
                    report.segments_sealed += 1;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(segment = number, error = %e, "could not seal the active segment")
                }
            }
        }
        let candidates: Vec<Candidate> = {
            let state = self.shared().read_state();
            state
                .segments
                .iter()
                .filter(|(n, s)| **n != state.active && !s.damaged)
                .filter(|(n, s)| {
                    let live = state.index.segment_live(**n).record_bytes();
                    (live as f64) < threshold * s.len as f64
                })
                .map(|(n, s)| Candidate {
                    number: *n,
                    reader: s.reader.clone(),
                    len: s.len,
                })
                .collect()
        };
        let total = candidates.len();
        for (i, c) in candidates.into_iter().enumerate() {
            if let Some(w) = worker {
                if !w.checkpoint().await {
                    break;
                }
                w.set_progress(format!(
                    "{}: segment {} of {total}",
                    self.dir().display(),
                    i + 1
                ));
            }
            let number = c.number;
            let len = c.len;
            match self.compact_segment(c).await {
                Ok(Some(moved)) => {
                    report.segments_compacted += 1;
                    report.records_moved += moved.records;
                    report.bytes_reclaimed += len.saturating_sub(moved.bytes);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(segment = number, error = %e, "compaction of a segment failed");
                    return Err(e);
                }
            }
        }
        Ok(report)
    }

    /// The active segment's number if it should be sealed: its live records take less than
    /// `threshold` of it and at least `seal_min_dead` of its bytes are dead puts (tombstones
    /// do not count: sealing would copy the ones still needed into the next active segment,
    /// and seal that again at every pass).
    fn active_to_seal(&self, threshold: f64) -> Option<u64> {
        let state = self.shared().read_state();
        let number = state.active;
        let segment = state.segments.get(&number)?;
        let live = state.index.segment_live(number).record_bytes();
        let dead = segment
            .len
            .saturating_sub(SEGMENT_HEADER_LEN as u64)
            .saturating_sub(segment.tombstone_bytes)
            .saturating_sub(live);
        (!segment.damaged
            && dead >= self.options().seal_min_dead
            && (live as f64) < threshold * segment.len as f64)
            .then_some(number)
    }

    /// Compacts one segment. `None`: it was left in place (damage found, or a record that
    /// could not be moved).
    async fn compact_segment(&self, c: Candidate) -> Result<Option<Relocated>> {
        let reader = c.reader.clone();
        let len = c.len;
        let scanned = blocking(move || {
            let mut records = Vec::new();
            let end = scan_records(&reader, len, |offset, h| records.push((offset, *h)))?;
            Ok((records, end))
        })
        .await?;
        let (records, end) = scanned;
        if end != ScanEnd::Clean {
            tracing::warn!(
                segment = c.number,
                ?end,
                "segment does not scan cleanly; not compacting it"
            );
            return Ok(None);
        }

        // Live puts and tombstones of shards that are still absent.
        let (live, tombstones, older) = {
            let state = self.shared().read_state();
            let mut live = Vec::new();
            let mut tombstones = Vec::new();
            for (offset, h) in &records {
                match h.kind {
                    RecordKind::Put => {
                        let payload = offset + RECORD_HEADER_LEN as u64;
                        if let Some(loc) = state.index.get(&h.id) {
                            if loc.segment == c.number && loc.offset == payload {
                                live.push((h.id, loc));
                            }
                        }
                    }
                    RecordKind::Tombstone => {
                        if state.index.get(&h.id).is_none() {
                            tombstones.push(h.id);
                        }
                    }
                }
            }
            let older: Vec<(u64, Arc<File>, u64, bool)> = state
                .segments
                .range(..c.number)
                .map(|(n, s)| (*n, s.reader.clone(), s.len, s.damaged))
                .collect();
            (live, tombstones, older)
        };
        let tombstones = if tombstones.is_empty() || older.is_empty() {
            Vec::new()
        } else if older.iter().any(|o| o.3) {
            tombstones
        } else {
            blocking(move || {
                let wanted: HashSet<ShardId> = tombstones.into_iter().collect();
                let mut keep = HashSet::new();
                for (_, file, len, _) in &older {
                    scan_records(file, *len, |_, h| {
                        if h.kind == RecordKind::Put && wanted.contains(&h.id) {
                            keep.insert(h.id);
                        }
                    })?;
                }
                Ok(keep.into_iter().collect::<Vec<_>>())
            })
            .await?
        };

        let mut moved = Relocated::default();
        let mut chunk: Vec<(ShardId, Location)> = Vec::new();
        let mut chunk_bytes = 0;
        let mut live = live.into_iter().peekable();
        while let Some((id, loc)) = live.next() {
            chunk_bytes += loc.len;
            chunk.push((id, loc));
            if chunk_bytes >= CHUNK_BYTES || chunk.len() >= CHUNK_RECORDS || live.peek().is_none() {
                let batch = std::mem::take(&mut chunk);
                chunk_bytes = 0;
                let reader = c.reader.clone();
                let number = c.number;
                let moves = blocking(move || {
                    let mut moves = Vec::with_capacity(batch.len());
                    for (id, loc) in batch {
                        let buf = read_payload(&reader, loc.offset, loc.len)?;
                        if crc32c(&buf) != loc.crc32c {
                            // Left in place (so the segment stays) for get/scrub to report.
                            tracing::warn!(shard = %id, segment = number, "corrupt payload; not moving it");
                            continue;
                        }
                        moves.push(Relocation {
                            id,
                            from: Some(loc),
                            data: Bytes::from(buf),
                        });
                    }
                    Ok(moves)
                })
                .await?;
                add(&mut moved, self.relocate(moves).await?);
            }
        }
        for ids in tombstones.chunks(CHUNK_RECORDS) {
            let moves = ids
                .iter()
                .map(|id| Relocation {
                    id: *id,
                    from: None,
                    data: Bytes::new(),
                })
                .collect();
            add(&mut moved, self.relocate(moves).await?);
        }

        // Nothing new is ever indexed into a sealed segment, so once no entry points into it
        // none will.
        let remaining = self.shared().read_state().index.segment_live(c.number);
        if remaining.records > 0 {
            tracing::warn!(
                segment = c.number,
                records = remaining.records,
                "segment still has live records after compaction; keeping it"
            );
            return Ok(None);
        }
        // Unlink and make that durable before the store forgets the segment: while it is
        // still listed, later passes keep the tombstones that hide its records.
        let dir = self.dir().to_path_buf();
        let number = c.number;
        blocking(move || {
            match std::fs::remove_file(dir.join(segment_file_name(number))) {
                Ok(()) => {}
                // Unlinked by an earlier pass whose directory fsync failed.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            sync_dir(&dir)
        })
        .await?;
        self.shared()
            .fsyncs
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.shared().write_state().segments.remove(&number);
        tracing::debug!(
            segment = number,
            records_moved = moved.records,
            "compacted segment"
        );
        Ok(Some(moved))
    }

    async fn relocate(&self, moves: Vec<Relocation>) -> Result<Relocated> {
        if moves.is_empty() {
            return Ok(Relocated::default());
        }
        self.submit(|reply| Request::Relocate { moves, reply })
            .await
    }
}

fn add(total: &mut Relocated, r: Relocated) {
    total.records += r.records;
    total.bytes += r.bytes;
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| DatanodeError::Io(io::Error::other(e)))?
        .map_err(DatanodeError::from)
}

/// The compaction job of a process's local datanodes: each round compacts every store in
/// turn with its `options().compaction_threshold`; the worker's safe points are between
/// stores and between segments.
pub struct CompactionJob {
    stores: Vec<Arc<LocalShardStore>>,
}

impl CompactionJob {
    pub fn new(stores: Vec<Arc<LocalShardStore>>) -> CompactionJob {
        CompactionJob { stores }
    }
}

impl Job for CompactionJob {
    async fn round(&mut self, worker: &Worker) -> std::result::Result<Round, String> {
        let mut total = CompactionReport::default();
        let mut errors = Vec::new();
        for store in &self.stores {
            if !worker.checkpoint().await {
                break;
            }
            let threshold = store.options().compaction_threshold;
            match store.compact_with(threshold, Some(worker)).await {
                Ok(report) => {
                    if report.segments_compacted > 0 {
                        tracing::info!(
                            dir = %store.dir().display(),
                            sealed = report.segments_sealed,
                            segments = report.segments_compacted,
                            bytes_reclaimed = report.bytes_reclaimed,
                            records_moved = report.records_moved,
                            "compaction finished"
                        );
                    }
                    total.segments_compacted += report.segments_compacted;
                    total.bytes_reclaimed += report.bytes_reclaimed;
                    total.records_moved += report.records_moved;
                    total.segments_sealed += report.segments_sealed;
                }
                Err(e) => errors.push(format!("{}: {e}", store.dir().display())),
            }
        }
        if !errors.is_empty() {
            return Err(format!("compaction failed: {}", errors.join("; ")));
        }
        Ok(Round::Done(format!(
            "last round: {} segment(s) compacted, {} byte(s) reclaimed, across {} datanode(s)",
            total.segments_compacted,
            total.bytes_reclaimed,
            self.stores.len()
        )))
    }
}

/// Compacts `stores` every `interval` as `worker` until `shutdown` becomes `true` (or its
/// sender is dropped).
pub async fn run_compaction(
    stores: Vec<Arc<LocalShardStore>>,
    interval: Duration,
    worker: Worker,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    worker
        .run(
            CompactionJob::new(stores),
            Schedule::every(interval),
            shutdown,
        )
        .await
}

#[cfg(test)]
mod tests;
