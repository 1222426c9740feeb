//! The one writer thread and its group commit.
//!
//! Every put and delete is a [`Request`] on a channel. The writer takes whatever requests are
//! queued (after an optional `commit_delay`), appends their records to the active segment,
//! fsyncs once, then updates the index and answers each waiter. Concurrent writers therefore
//! share one fsync. The index changes only after the fsync succeeded, so readers never see a
//! record that is not durable.
//!
//! Failure rules: a failed append cuts the segment back to where that record began and fails
//! only that request. A failed fsync leaves the page cache state unknown (Linux may drop the
//! dirty pages and report the error once), so the writer fails the batch and every later
//! request ("poisoned"); the store must be reopened, which re-scans from disk.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cairn_types::ShardId;
use tokio::sync::{mpsc, oneshot};

use crate::index::Location;
use crate::record::{RecordHeader, RecordKind, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
use crate::segment::{create_segment, segment_file_name};
use crate::state::{SegmentEntry, Shared};
use crate::{DatanodeError, Result, ShardInfo};

/// Payloads of at least this many bytes are dropped from the page cache once durable.
const UNCACHED_PAYLOAD: u64 = 256 << 10;

/// A write waiting for the writer thread.
pub(crate) enum Request {
    Put {
        id: ShardId,
        data: Bytes,
        crc32c: u32,
        reply: oneshot::Sender<Result<ShardInfo>>,
    },
    Delete {
        id: ShardId,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Compaction: copy records of an old segment into the active one (see [`Relocation`]).
    Relocate {
        moves: Vec<Relocation>,
        reply: oneshot::Sender<Result<Relocated>>,
    },
    /// Deep scrub: append a tombstone for each shard whose index entry still is exactly the
    /// given (corrupt) location; answers with the shards tombstoned.
    Quarantine {
        victims: Vec<(ShardId, Location)>,
        reply: oneshot::Sender<Result<Vec<ShardId>>>,
    },
    /// Compaction: seal segment `number` if it is still the active one and holds records
    /// (commit what is queued, start a new segment) so that compaction may rewrite it.
    /// Answers whether it rolled.
    Seal {
        number: u64,
        reply: oneshot::Sender<Result<bool>>,
    },
}

/// A record compaction asks the writer to copy into the active segment.
pub(crate) struct Relocation {
    pub id: ShardId,
    /// For a put: where its payload lives now. The copy is made only if the index still
    /// points exactly there when the writer gets to it (a newer put or delete wins).
    /// `None`: a tombstone, copied only if the shard is absent from the index.
    pub from: Option<Location>,
    /// The payload (empty for a tombstone); its CRC32C is `from.crc32c`.
    pub data: Bytes,
}

/// What a [`Request::Relocate`] copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Relocated {
    pub records: u64,
    /// Bytes appended (record headers and payloads).
    pub bytes: u64,
}

impl Relocation {
    fn header(&self) -> RecordHeader {
        match &self.from {
            Some(loc) => RecordHeader::put_with_crc(self.id, self.data.len() as u64, loc.crc32c),
            None => RecordHeader::tombstone(self.id),
        }
    }
}

/// A client write: a put or delete.
enum ClientWrite {
    Put {
        id: ShardId,
        data: Bytes,
        crc32c: u32,
        reply: oneshot::Sender<Result<ShardInfo>>,
    },
    Delete {
        id: ShardId,
        reply: oneshot::Sender<Result<()>>,
    },
}

impl ClientWrite {
    fn header(&self) -> RecordHeader {
        match self {
            ClientWrite::Put {
                id, data, crc32c, ..
            } => RecordHeader::put_with_crc(*id, data.len() as u64, *crc32c),
            ClientWrite::Delete { id, .. } => RecordHeader::tombstone(*id),
        }
    }

    fn payload(&self) -> &[u8] {
        match self {
            ClientWrite::Put { data, .. } => data,
            ClientWrite::Delete { .. } => &[],
        }
    }

    fn fail(self, err: DatanodeError) {
        // A waiter that went away no longer needs an answer.
        match self {
            ClientWrite::Put { reply, .. } => drop(reply.send(Err(err))),
            ClientWrite::Delete { reply, .. } => drop(reply.send(Err(err))),
        }
    }

    fn succeed(self) {
        match self {
            ClientWrite::Put {
                id,
                data,
                crc32c,
                reply,
            } => drop(reply.send(Ok(ShardInfo {
                id,
                len: data.len() as u64,
                crc32c,
            }))),
            ClientWrite::Delete { reply, .. } => drop(reply.send(Ok(()))),
        }
    }
}

/// A record appended but not yet fsynced: a client write, or a compaction copy (no waiter).
enum Pending {
    Client(ClientWrite),
    Moved,
}

impl Pending {
    fn fail(self, err: DatanodeError) {
        if let Pending::Client(w) = self {
            w.fail(err);
        }
    }

    fn succeed(self) {
        if let Pending::Client(w) = self {
            w.succeed();
        }
    }
}

/// The segment new records are appended to.
pub(crate) struct ActiveSegment {
    pub number: u64,
    pub file: File,
    /// Bytes written so far (the offset of the next record).
    pub len: u64,
}

pub(crate) struct WriterConfig {
    pub dir: PathBuf,
    pub segment_size: u64,
    pub commit_delay: Duration,
    pub max_batch: usize,
}

pub(crate) struct Writer {
    config: WriterConfig,
    shared: Arc<Shared>,
    active: ActiveSegment,
    /// Records appended to the active segment since the last fsync: request, its record
    /// header and the offset of that header.
    pending: Vec<(Pending, RecordHeader, u64)>,
    /// Set after a failed fsync; every later request fails with this reason.
    poisoned: Option<String>,
    rx: mpsc::Receiver<Request>,
}

impl Writer {
    pub fn new(
        config: WriterConfig,
        shared: Arc<Shared>,
        active: ActiveSegment,
        rx: mpsc::Receiver<Request>,
    ) -> Writer {
        Writer {
            config,
            shared,
            active,
            pending: Vec::new(),
            poisoned: None,
            rx,
        }
    }

    /// Runs until every sender is gone, then returns (after answering all it received).
    pub fn run(mut self) {
        while let Some(first) = self.rx.blocking_recv() {
            if !self.config.commit_delay.is_zero() {
                std::thread::sleep(self.config.commit_delay);
            }
            let mut batch = vec![first];
            while batch.len() < self.config.max_batch {
                match self.rx.try_recv() {
                    Ok(req) => batch.push(req),
                    Err(_) => break,
                }
            }
            self.process(batch);
        }
        tracing::debug!(dir = %self.config.dir.display(), "datanode writer stopped");
    }

    fn process(&mut self, batch: Vec<Request>) {
        for req in batch {
            let req = match req {
                Request::Relocate { moves, reply } => {
                    let result = self.relocate(moves);
                    drop(reply.send(result));
                    continue;
                }
                Request::Quarantine { victims, reply } => {
                    let result = self.quarantine(victims);
                    drop(reply.send(result));
                    continue;
                }
                Request::Seal { number, reply } => {
                    let result = self.seal(number);
                    drop(reply.send(result));
                    continue;
                }
                Request::Put {
                    id,
                    data,
                    crc32c,
                    reply,
                } => ClientWrite::Put {
                    id,
                    data,
                    crc32c,
                    reply,
                },
                Request::Delete { id, reply } => ClientWrite::Delete { id, reply },
            };
            if let Some(reason) = &self.poisoned {
                req.fail(poisoned_error(reason));
                continue;
            }
            let header = req.header();
            if let Err(e) = self.make_room(&header) {
                req.fail(e);
                continue;
            }
            let offset = self.active.len;
            match self.append(&header, req.payload(), offset) {
                Ok(()) => {
                    self.active.len = offset + header.record_len();
                    self.pending.push((Pending::Client(req), header, offset));
                }
                Err(e) => {
                    self.cut_back(&e, offset);
                    req.fail(e.into());
                }
            }
        }
        self.commit();
    }

    /// Rolls to a new segment (committing the current one first) if `header`'s record would
    /// take the active segment past `segment_size`.
    fn make_room(&mut self, header: &RecordHeader) -> Result<()> {
        let header_len = SEGMENT_HEADER_LEN as u64;
        if self.active.len > header_len
            && self.active.len.saturating_add(header.record_len()) > self.config.segment_size
        {
            self.commit();
            if let Some(reason) = &self.poisoned {
                return Err(poisoned_error(reason));
            }
            if let Err(e) = self.roll() {
                tracing::warn!(error = %e, "could not create a new segment");
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// Seals the active segment if it is still `number` and holds records: commits what is
    /// pending, then rolls to a new segment. Returns whether it rolled.
    fn seal(&mut self, number: u64) -> Result<bool> {
        self.commit();
        if let Some(reason) = &self.poisoned {
            return Err(poisoned_error(reason));
        }
        if self.active.number != number || self.active.len <= SEGMENT_HEADER_LEN as u64 {
            return Ok(false);
        }
        if let Err(e) = self.roll() {
            tracing::warn!(error = %e, "could not create a new segment");
            return Err(e.into());
        }
        Ok(true)
    }

    /// After a failed append at `offset`: cuts off whatever part of the record reached the
    /// file (poisoning the writer if even that fails).
    fn cut_back(&mut self, e: &io::Error, offset: u64) {
        tracing::warn!(error = %e, segment = self.active.number, "append failed");
        if let Err(e2) = self.active.file.set_len(offset) {
            self.poison(format!("append failed ({e}) and truncation failed ({e2})"));
        }
    }

    /// Copies compaction's records into the active segment. Queued client writes are
    /// committed first so that the index is current; each copy is then made only if it is
    /// still right (a put: the index still points at its old location; a tombstone: the
    /// shard is still absent). No other write runs in between, so the check holds until the
    /// copies are committed and published. Returns once they are fsynced.
    fn relocate(&mut self, moves: Vec<Relocation>) -> Result<Relocated> {
        self.commit();
        let mut done = Relocated::default();
        for m in moves {
            if let Some(reason) = &self.poisoned {
                return Err(poisoned_error(reason));
            }
            let still_current = {
                let state = self.shared.read_state();
                state.index.get(&m.id) == m.from
            };
            if !still_current {
                continue;
            }
            let header = m.header();
            self.append_moved(header, &m.data)?;
            done.records += 1;
            done.bytes += header.record_len();
        }
        self.commit();
        match &self.poisoned {
            Some(reason) => Err(poisoned_error(reason)),
            None => Ok(done),
        }
    }

    /// Tombstones the shards of `victims` whose index entry is still exactly the location
    /// the scrub found corrupt (a newer put or a delete wins), the same way as
    /// [`Writer::relocate`]. Returns once the tombstones are fsynced and indexed.
    fn quarantine(&mut self, victims: Vec<(ShardId, Location)>) -> Result<Vec<ShardId>> {
        self.commit();
        let mut done = Vec::new();
        for (id, loc) in victims {
            if let Some(reason) = &self.poisoned {
                return Err(poisoned_error(reason));
            }
            if self.shared.read_state().index.get(&id) != Some(loc) {
                continue;
            }
            self.append_moved(RecordHeader::tombstone(id), &[])?;
            done.push(id);
        }
        self.commit();
        match &self.poisoned {
            Some(reason) => Err(poisoned_error(reason)),
            None => Ok(done),
        }
    }

    /// Appends a record that has no waiter of its own (committed with the batch).
    fn append_moved(&mut self, header: RecordHeader, payload: &[u8]) -> Result<()> {
        self.make_room(&header)?;
        let offset = self.active.len;
        if let Err(e) = self.append(&header, payload, offset) {
            self.cut_back(&e, offset);
            self.commit();
            return Err(e.into());
        }
        self.active.len = offset + header.record_len();
        self.pending.push((Pending::Moved, header, offset));
        Ok(())
    }

    fn append(&self, header: &RecordHeader, payload: &[u8], offset: u64) -> io::Result<()> {
        const COPY_LIMIT: usize = 64 * 1024;
        self.shared.faults.before_write()?;
        let head = header.encode();
        if payload.len() <= COPY_LIMIT {
            let mut buf = Vec::with_capacity(RECORD_HEADER_LEN + payload.len());
            buf.extend_from_slice(&head);
            buf.extend_from_slice(payload);
            self.active.file.write_all_at(&buf, offset)
        } else {
            self.active.file.write_all_at(&head, offset)?;
            self.active
                .file
                .write_all_at(payload, offset + RECORD_HEADER_LEN as u64)
        }
    }

    /// Fsyncs the active segment, then publishes the pending records to the index and answers
    /// their waiters. On failure, fails them and poisons the writer.
    fn commit(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        let synced = self
            .shared
            .faults
            .before_sync()
            .and_then(|()| self.active.file.sync_data());
        self.shared.fsyncs.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = synced {
            tracing::error!(error = %e, segment = self.active.number, "fsync failed; writes disabled");
            self.poison(format!(
                "fsync of segment {} failed: {e}",
                self.active.number
            ));
            let reason = self.poisoned.clone().unwrap_or_default();
            for (req, _, _) in pending {
                req.fail(poisoned_error(&reason));
            }
            return;
        }
        {
            let mut state = self.shared.write_state();
            for (_, header, offset) in &pending {
                match header.kind {
                    RecordKind::Put => state.index.insert(
                        header.id,
                        Location {
                            segment: self.active.number,
                            offset: offset + RECORD_HEADER_LEN as u64,
                            len: header.payload_len,
                            crc32c: header.payload_crc,
                        },
                    ),
                    RecordKind::Tombstone => state.index.remove(&header.id),
                }
            }
            let tombstones: u64 = pending
                .iter()
                .filter(|(_, h, _)| h.kind == RecordKind::Tombstone)
                .map(|(_, h, _)| h.record_len())
                .sum();
            if let Some(seg) = state.segments.get_mut(&self.active.number) {
                seg.len = self.active.len;
                seg.tombstone_bytes += tombstones;
            }
        }
        // Big payloads are durable now: their pages leave the page cache, so that a
        // stream of large writes does not fill it and make every later write pay for
        // reclaim (measured: 64 MiB PUTs fell from ~420 to ~220 MiB/s within 20 s, the copy
        // into the cache taking 40% of the CPU). Small records stay cached for reads.
        let dropped: Vec<(u64, u64)> = pending
            .iter()
            .filter(|(_, h, _)| h.kind == RecordKind::Put && h.payload_len >= UNCACHED_PAYLOAD)
            .map(|(_, h, offset)| (offset + RECORD_HEADER_LEN as u64, h.payload_len))
            .collect();
        for (req, _, _) in pending {
            req.succeed();
        }
        for (offset, len) in dropped {
            if let Some(len) = std::num::NonZeroU64::new(len) {
                // Advice only: a failure changes nothing but speed.
                let _ = rustix::fs::fadvise(
                    &self.active.file,
                    offset,
                    Some(len),
                    rustix::fs::Advice::DontNeed,
                );
            }
        }
    }

    /// Starts the next segment and makes it active. The caller committed the old one.
    fn roll(&mut self) -> io::Result<()> {
        let number = self.active.number + 1;
        let mut syncs = 0;
        let created = create_segment(&self.config.dir, number, &mut syncs);
        self.shared.fsyncs.fetch_add(syncs, Ordering::Relaxed);
        let file = created?;
        let reader = File::open(self.config.dir.join(segment_file_name(number)))?;
        let len = SEGMENT_HEADER_LEN as u64;
        {
            let mut state = self.shared.write_state();
            state.segments.insert(
                number,
                SegmentEntry {
                    reader: Arc::new(reader),
                    len,
                    damaged: false,
                    tombstone_bytes: 0,
                },
            );
            state.active = number;
        }
        tracing::info!(segment = number, "rolled to a new segment");
        self.active = ActiveSegment { number, file, len };
        Ok(())
    }

    fn poison(&mut self, reason: String) {
        if self.poisoned.is_none() {
            self.poisoned = Some(reason);
        }
    }
}

fn poisoned_error(reason: &str) -> DatanodeError {
    DatanodeError::Io(io::Error::other(format!(
        "writes disabled after an earlier failure: {reason}"
    )))
}
