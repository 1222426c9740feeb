//! Rebuilding the index from the segment files on open.
//!
//! Segments are scanned in number order, reading record headers only; a later put or
//! tombstone of a shard wins over an earlier one. Rules for damage (also in
//! `docs/formats.md`):
//!
//! - **Last segment, torn tail** (an incomplete record, or bytes that do not decode and are
//!   not followed by any valid record header): the file is cut back to the end of the last
//!   whole record and fsynced. The payloads of the last few records are then verified, newest
//!   first, and any that fail their checksum are cut away too (a crash can leave a complete
//!   header in front of a payload that never reached the disk). Nothing cut was ever
//!   acknowledged, since acknowledgement follows the fsync.
//! - **Damage in the middle of a segment** (a record header that does not decode, followed by
//!   a valid-looking record later): a warning is logged, the records before it are indexed
//!   and the rest of that segment is ignored. The file is left as it is for inspection; when
//!   it is the last segment, new writes go to a fresh segment.
//! - **A segment header that does not decode**: the whole segment is skipped with a warning,
//!   except for the last segment when the file is no longer than a header, which is a
//!   creation that crashed before its header was durable: the header is rewritten.
//! - **A newer format version** anywhere: open fails; nothing is truncated.
//!
//! Payloads are never read during the scan except for the tail verification above, so
//! bit rot inside older payloads is found by `get` (which returns `Corrupt`) or by scrub.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt};
use std::path::Path;
use std::sync::Arc;

use crate::index::{Index, Location};
use crate::record::{DecodeError, RecordHeader, RecordKind, SegmentHeader, RECORD_HEADER_LEN};
use crate::segment::{
    create_segment, list_segments, payload_is_intact, read_segment_header, scan_records,
    segment_file_name, sync_dir, ScanEnd,
};
use crate::state::{SegmentEntry, State};
use crate::writer::ActiveSegment;

/// How many of the newest records of the last segment are held back from the index until
/// their payloads could be verified.
const TAIL_WINDOW: usize = 16;

/// What opening a directory recovered.
pub(crate) struct Recovered {
    pub state: State,
    pub active: ActiveSegment,
    /// Fsyncs made while recovering.
    pub fsyncs: u64,
}

pub(crate) fn recover(dir: &Path) -> io::Result<Recovered> {
    // Mode 0700 for a new directory: it holds object data.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let numbers = list_segments(dir)?;
    let mut index = Index::default();
    let mut segments = BTreeMap::new();
    let mut active = None;
    let mut fsyncs = 0;
    let last = numbers.last().copied();

    for &n in &numbers {
        let is_last = Some(n) == last;
        let path = dir.join(segment_file_name(n));
        let file = OpenOptions::new().read(true).write(is_last).open(&path)?;
        let mut len = file.metadata()?.len();
        let header = read_segment_header(&file, len)?;
        let header_ok = match header {
            Ok(SegmentHeader { segment }) if segment == n => true,
            Ok(SegmentHeader { segment }) => {
                tracing::warn!(path = %path.display(), found = segment, "segment header names another segment; skipping the segment");
                false
            }
            Err(DecodeError::UnsupportedVersion(v)) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} has unsupported format version {v}", path.display()),
                ))
            }
            Err(e) if is_last && len <= crate::record::SEGMENT_HEADER_LEN as u64 => {
                tracing::warn!(path = %path.display(), error = %e, "rewriting the header of a segment whose creation was interrupted");
                file.set_len(0)?;
                file.write_all_at(&SegmentHeader { segment: n }.encode(), 0)?;
                file.sync_all()?;
                fsyncs += 1;
                len = crate::record::SEGMENT_HEADER_LEN as u64;
                true
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "segment header is damaged; skipping the segment");
                false
            }
        };

        let mut damaged = !header_ok;
        let mut tombstone_bytes = 0;
        if header_ok {
            let mut tail: VecDeque<(u64, RecordHeader)> = VecDeque::new();
            let end = scan_records(&file, len, |offset, h| {
                if h.kind == RecordKind::Tombstone {
                    tombstone_bytes += h.record_len();
                }
                if is_last {
                    tail.push_back((offset, *h));
                    if tail.len() > TAIL_WINDOW {
                        if let Some((o, h)) = tail.pop_front() {
                            apply(&mut index, n, o, &h);
                        }
                    }
                } else {
                    apply(&mut index, n, offset, h);
                }
            })?;
            let mut writable = is_last;
            let mut valid_end = len;
            match end {
                ScanEnd::Clean => {}
                ScanEnd::Torn { at, reason } if is_last => {
                    tracing::warn!(path = %path.display(), offset = at, %reason, "cutting off a torn tail");
                    valid_end = at;
                }
                ScanEnd::Torn { at, reason } | ScanEnd::Corrupt { at, reason } => {
                    tracing::warn!(path = %path.display(), offset = at, %reason, "damaged record; ignoring the rest of the segment");
                    writable = false;
                    damaged = true;
                }
            }
            if writable {
                while let Some(&(offset, h)) = tail.back() {
                    let payload = offset + RECORD_HEADER_LEN as u64;
                    if h.kind == RecordKind::Tombstone
                        || payload_is_intact(&file, payload, h.payload_len, h.payload_crc)?
                    {
                        break;
                    }
                    tracing::warn!(path = %path.display(), offset, "cutting off a tail record whose payload never fully reached the disk");
                    valid_end = offset;
                    tail.pop_back();
                }
                if valid_end < len {
                    file.set_len(valid_end)?;
                    file.sync_all()?;
                    fsyncs += 1;
                    len = valid_end;
                }
            }
            for (offset, h) in tail {
                apply(&mut index, n, offset, &h);
            }
            if writable {
                active = Some(ActiveSegment {
                    number: n,
                    file,
                    len,
                });
            }
        }
        segments.insert(
            n,
            SegmentEntry {
                reader: Arc::new(File::open(&path)?),
                len,
                damaged,
                tombstone_bytes,
            },
        );
    }

    let active = match active {
        Some(a) => a,
        None => {
            let number = last.map_or(1, |n| n + 1);
            let file = create_segment(dir, number, &mut fsyncs)?;
            let len = crate::record::SEGMENT_HEADER_LEN as u64;
            segments.insert(
                number,
                SegmentEntry {
                    reader: Arc::new(File::open(dir.join(segment_file_name(number)))?),
                    len,
                    damaged: false,
                    tombstone_bytes: 0,
                },
            );
            ActiveSegment { number, file, len }
        }
    };
    if numbers.is_empty() {
        // The directory itself may be new.
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
            fsyncs += 1;
        }
    }
    tracing::info!(
        dir = %dir.display(),
        segments = segments.len(),
        shards = index.len(),
        active = active.number,
        "datanode store recovered"
    );
    Ok(Recovered {
        state: State {
            index,
            segments,
            active: active.number,
        },
        active,
        fsyncs,
    })
}

fn apply(index: &mut Index, segment: u64, offset: u64, h: &RecordHeader) {
    match h.kind {
        RecordKind::Put => index.insert(
            h.id,
            Location {
                segment,
                offset: offset + RECORD_HEADER_LEN as u64,
                len: h.payload_len,
                crc32c: h.payload_crc,
            },
        ),
        RecordKind::Tombstone => index.remove(&h.id),
    }
}
