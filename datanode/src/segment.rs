//! Segment files: naming, creation (header written and fsynced, directory fsynced), reading
//! a segment header, scanning record headers without reading payloads, and payload reads.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use cairn_types::crc32c;

use crate::record::{
    DecodeError, RecordHeader, SegmentHeader, RECORD_HEADER_LEN, RECORD_MAGIC, SEGMENT_HEADER_LEN,
};

/// File name of segment `n`: `seg-00000001.dat` (wider once `n` needs more digits).
pub(crate) fn segment_file_name(n: u64) -> String {
    format!("seg-{n:08}.dat")
}

/// The segment number of a file name made by [`segment_file_name`], if it is one.
pub(crate) fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("seg-")?.strip_suffix(".dat")?;
    if digits.len() < 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    // Only the canonical spelling, so that no two files name the same segment.
    (segment_file_name(n) == name).then_some(n)
}

/// Numbers of the segment files in `dir`, ascending. Other files are ignored.
pub(crate) fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(n) = entry.file_name().to_str().and_then(parse_segment_file_name) {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Fsyncs a directory so that file creations in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates segment `n` in `dir` (replacing a leftover file of that name), writes its header,
/// fsyncs the file and the directory. Returns the file opened for reading and writing.
/// Counts the fsyncs it makes in `fsyncs`.
pub(crate) fn create_segment(dir: &Path, n: u64, fsyncs: &mut u64) -> io::Result<File> {
    let path = dir.join(segment_file_name(n));
    // Mode 0600: segments hold object data (a leftover file opened again keeps its old
    // mode, hence the explicit set).
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)?;
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    file.write_all_at(&SegmentHeader { segment: n }.encode(), 0)?;
    file.sync_all()?;
    sync_dir(dir)?;
    *fsyncs += 2;
    tracing::debug!(segment = n, path = %path.display(), "created segment");
    Ok(file)
}

/// Reads and decodes the segment header of a file of length `len`.
pub(crate) fn read_segment_header(
    file: &File,
    len: u64,
) -> io::Result<Result<SegmentHeader, DecodeError>> {
    let n = len.min(SEGMENT_HEADER_LEN as u64) as usize;
    let mut buf = [0u8; SEGMENT_HEADER_LEN];
    file.read_exact_at(&mut buf[..n], 0)?;
    Ok(SegmentHeader::decode(&buf[..n]))
}

/// How a scan of a segment's records ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ScanEnd {
    /// The last record ends exactly at the end of the file.
    Clean,
    /// From `at` on the file holds an incomplete record, or bytes that do not decode and are
    /// not followed by any valid-looking record: the shape of a torn append.
    Torn { at: u64, reason: String },
    /// The record at `at` does not decode, yet a valid-looking record header follows later:
    /// damage in the middle of the segment.
    Corrupt { at: u64, reason: String },
}

/// Walks the record headers of a segment of length `len`, from just after the segment
/// header, reading headers only (payloads are skipped). Calls `on_record(offset, header)`
/// for each record that lies wholly inside the file, in order, and says how the walk ended.
/// A record of an unsupported format version is an `InvalidData` error: nothing is guessed
/// about, or truncated from, a file written by newer code.
pub(crate) fn scan_records(
    file: &File,
    len: u64,
    mut on_record: impl FnMut(u64, &RecordHeader),
) -> io::Result<ScanEnd> {
    let mut pos = SEGMENT_HEADER_LEN as u64;
    let mut buf = [0u8; RECORD_HEADER_LEN];
    loop {
        if pos >= len {
            return Ok(ScanEnd::Clean);
        }
        let n = (len - pos).min(RECORD_HEADER_LEN as u64) as usize;
        file.read_exact_at(&mut buf[..n], pos)?;
        match RecordHeader::decode(&buf[..n]) {
            Ok(header) => {
                let end = pos.checked_add(header.record_len());
                match end {
                    Some(end) if end <= len => {
                        on_record(pos, &header);
                        pos = end;
                    }
                    _ => {
                        return Ok(ScanEnd::Torn {
                            at: pos,
                            reason: "payload runs past the end of the file".into(),
                        })
                    }
                }
            }
            Err(DecodeError::Incomplete { .. }) => {
                return Ok(ScanEnd::Torn {
                    at: pos,
                    reason: "record header cut short".into(),
                })
            }
            Err(DecodeError::UnsupportedVersion(v)) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("record at offset {pos} has unsupported format version {v}"),
                ))
            }
            Err(DecodeError::Corrupt(reason)) => {
                let reason = reason.to_string();
                return Ok(if valid_record_after(file, pos + 1, len)? {
                    ScanEnd::Corrupt { at: pos, reason }
                } else {
                    ScanEnd::Torn { at: pos, reason }
                });
            }
        }
    }
}

/// Whether some offset in `from..len` starts a record header that decodes and whose payload
/// fits in the file. Reads the rest of the file; used only after damage was found.
fn valid_record_after(file: &File, from: u64, len: u64) -> io::Result<bool> {
    const CHUNK: usize = 1 << 20;
    let mut buf = vec![0u8; CHUNK + RECORD_HEADER_LEN];
    let mut start = from;
    while start < len {
        let n = (len - start).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..n], start)?;
        let window = &buf[..n];
        // Candidate offsets in this chunk; the last RECORD_HEADER_LEN - 1 are revisited by the
        // next chunk unless this chunk reaches the end of the file.
        let last = if start + n as u64 >= len {
            n
        } else {
            n - (RECORD_HEADER_LEN - 1)
        };
        for i in 0..last {
            if window[i..].starts_with(&RECORD_MAGIC) {
                if let Ok(h) = RecordHeader::decode(&window[i..]) {
                    let at = start + i as u64;
                    if at.checked_add(h.record_len()).is_some_and(|end| end <= len) {
                        return Ok(true);
                    }
                }
            }
        }
        start += last as u64;
    }
    Ok(false)
}

/// Reads `len` payload bytes at `offset`. A file shorter than that is `UnexpectedEof`.
/// The bytes are read into memory nothing initialised first (zeroing a shard's buffer
/// before reading over it cost ~5% of a large GET's server CPU).
pub(crate) fn read_payload(file: &File, offset: u64, len: u64) -> io::Result<Vec<u8>> {
    let len = usize::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "payload too large"))?;
    let mut buf = Vec::with_capacity(len);
    while buf.len() < len {
        let at = offset + buf.len() as u64;
        // Fills the spare capacity and grows `buf` by what was read; never past capacity.
        match rustix::io::pread(file, rustix::buffer::spare_capacity(&mut buf), at) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // The capacity may exceed `len`, and a read may have filled past it.
    buf.truncate(len);
    Ok(buf)
}

/// Whether the payload at `offset` is present and matches `crc`.
pub(crate) fn payload_is_intact(file: &File, offset: u64, len: u64, crc: u32) -> io::Result<bool> {
    match read_payload(file, offset, len) {
        Ok(buf) => Ok(crc32c(&buf) == crc),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::encode_record;
    use cairn_types::{ObjectId, ShardId};

    #[test]
    fn file_names() {
        assert_eq!(segment_file_name(1), "seg-00000001.dat");
        assert_eq!(parse_segment_file_name("seg-00000001.dat"), Some(1));
        assert_eq!(
            parse_segment_file_name("seg-123456789.dat"),
            Some(123_456_789)
        );
        assert_eq!(parse_segment_file_name("seg-1.dat"), None);
        assert_eq!(parse_segment_file_name("seg-000000001.dat"), None);
        assert_eq!(parse_segment_file_name("seg-0000000a.dat"), None);
        assert_eq!(parse_segment_file_name("seg-00000001.dat.tmp"), None);
    }

    #[test]
    fn payload_reads_are_exact_and_a_short_file_is_unexpected_eof() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        fs::write(&path, &data).expect("write");
        let file = File::open(&path).expect("open");
        for (at, len) in [(0u64, 0u64), (0, 1), (17, 1 << 20), (1_000_001, 1_999_999)] {
            let got = read_payload(&file, at, len).expect("read");
            assert_eq!(got, &data[at as usize..(at + len) as usize], "{at}+{len}");
        }
        for (at, len) in [(2_999_999u64, 2u64), (3_000_000, 1), (4_000_000, 10)] {
            let err = read_payload(&file, at, len).expect_err("past the end");
            assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{at}+{len}");
        }
    }

    fn segment_with(records: &[(u128, &[u8])]) -> (tempfile::TempDir, File, Vec<u64>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut syncs = 0;
        let file = create_segment(dir.path(), 1, &mut syncs).expect("create");
        let mut pos = SEGMENT_HEADER_LEN as u64;
        let mut offsets = Vec::new();
        for (n, payload) in records {
            let h = RecordHeader::put(ShardId::new(ObjectId(*n), 0, 0), payload);
            file.write_all_at(&encode_record(&h, payload), pos)
                .expect("write");
            offsets.push(pos);
            pos += h.record_len();
        }
        (dir, file, offsets)
    }

    fn scan(file: &File) -> (Vec<u64>, ScanEnd) {
        let len = file.metadata().expect("metadata").len();
        let mut seen = Vec::new();
        let end = scan_records(file, len, |off, _| seen.push(off)).expect("scan");
        (seen, end)
    }

    #[test]
    fn scan_clean_torn_and_corrupt() {
        let (_dir, file, offsets) = segment_with(&[(1, b"aaaa"), (2, b"bbbbbb"), (3, b"c")]);
        assert_eq!(scan(&file), (offsets.clone(), ScanEnd::Clean));

        // Damage the middle record's header: later records still look valid.
        let mut b = [0u8; 1];
        file.read_exact_at(&mut b, offsets[1] + 10).expect("read");
        file.write_all_at(&[b[0] ^ 0xff], offsets[1] + 10)
            .expect("write");
        let (seen, end) = scan(&file);
        assert_eq!(seen, offsets[..1]);
        assert!(matches!(end, ScanEnd::Corrupt { at, .. } if at == offsets[1]));

        // Cut the last record's payload short: torn.
        let (_dir, file, offsets) = segment_with(&[(1, b"aaaa"), (2, b"bbbbbb")]);
        let len = file.metadata().expect("metadata").len();
        file.set_len(len - 2).expect("set_len");
        let (seen, end) = scan(&file);
        assert_eq!(seen, offsets[..1]);
        assert!(matches!(end, ScanEnd::Torn { at, .. } if at == offsets[1]));

        // Garbage after the last record: torn.
        let (_dir, file, offsets) = segment_with(&[(1, b"aaaa")]);
        let len = file.metadata().expect("metadata").len();
        file.write_all_at(&[0u8; 4096], len).expect("write");
        let (seen, end) = scan(&file);
        assert_eq!(seen, offsets);
        assert!(matches!(end, ScanEnd::Torn { at, .. } if at == len));
    }

    #[test]
    fn valid_record_found_across_chunk_boundary() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("x"))
            .expect("create");
        let h = RecordHeader::put(ShardId::new(ObjectId(1), 0, 0), b"x");
        // Place a record so that its header straddles the end of the first chunk read.
        let at = (1u64 << 20) + 30;
        file.write_all_at(&encode_record(&h, b"x"), at)
            .expect("write");
        let len = at + h.record_len();
        assert!(valid_record_after(&file, 0, len).expect("scan"));
        assert!(!valid_record_after(&file, at + 1, len).expect("scan"));
    }
}
