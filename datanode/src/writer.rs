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
use crate::store::{SegmentEntry, Shared};
use crate::{DatanodeError, Result, ShardInfo};

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
}

impl Request {
    fn header(&self) -> RecordHeader {
        match self {
            Request::Put {
                id, data, crc32c, ..
            } => RecordHeader::put_with_crc(*id, data.len() as u64, *crc32c),
            Request::Delete { id, .. } => RecordHeader::tombstone(*id),
        }
    }

    fn payload(&self) -> &[u8] {
        match self {
            Request::Put { data, .. } => data,
            Request::Delete { .. } => &[],
        }
    }

    fn fail(self, err: DatanodeError) {
        // A waiter that went away no longer needs an answer.
        match self {
            Request::Put { reply, .. } => drop(reply.send(Err(err))),
            Request::Delete { reply, .. } => drop(reply.send(Err(err))),
        }
    }

    fn succeed(self) {
        match self {
            Request::Put {
                id,
                data,
                crc32c,
                reply,
            } => drop(reply.send(Ok(ShardInfo {
                id,
                len: data.len() as u64,
                crc32c,
            }))),
            Request::Delete { reply, .. } => drop(reply.send(Ok(()))),
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
    /// Records appended to the active segment since the last fsync: request and the offset of
    /// its record header.
    pending: Vec<(Request, u64)>,
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
            if let Some(reason) = &self.poisoned {
                req.fail(poisoned_error(reason));
                continue;
            }
            let header = req.header();
            let header_len = SEGMENT_HEADER_LEN as u64;
            if self.active.len > header_len
                && self.active.len.saturating_add(header.record_len()) > self.config.segment_size
            {
                self.commit();
                if let Some(reason) = &self.poisoned {
                    req.fail(poisoned_error(reason));
                    continue;
                }
                if let Err(e) = self.roll() {
                    tracing::warn!(error = %e, "could not create a new segment");
                    req.fail(e.into());
                    continue;
                }
            }
            let offset = self.active.len;
            match self.append(&header, req.payload(), offset) {
                Ok(()) => {
                    self.active.len = offset + header.record_len();
                    self.pending.push((req, offset));
                }
                Err(e) => {
                    tracing::warn!(error = %e, segment = self.active.number, "append failed");
                    // Cut off whatever part of the record reached the file.
                    if let Err(e2) = self.active.file.set_len(offset) {
                        self.poison(format!("append failed ({e}) and truncation failed ({e2})"));
                    }
                    req.fail(e.into());
                }
            }
        }
        self.commit();
    }

    fn append(&self, header: &RecordHeader, payload: &[u8], offset: u64) -> io::Result<()> {
        const COPY_LIMIT: usize = 64 * 1024;
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
        let synced = self.active.file.sync_data();
        self.shared.fsyncs.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = synced {
            tracing::error!(error = %e, segment = self.active.number, "fsync failed; writes disabled");
            self.poison(format!(
                "fsync of segment {} failed: {e}",
                self.active.number
            ));
            let reason = self.poisoned.clone().unwrap_or_default();
            for (req, _) in pending {
                req.fail(poisoned_error(&reason));
            }
            return;
        }
        {
            let mut state = self.shared.write_state();
            for (req, offset) in &pending {
                let header = req.header();
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
            if let Some(seg) = state.segments.get_mut(&self.active.number) {
                seg.len = self.active.len;
            }
        }
        for (req, _) in pending {
            req.succeed();
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
        self.shared.write_state().segments.insert(
            number,
            SegmentEntry {
                reader: Arc::new(reader),
                len,
            },
        );
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
