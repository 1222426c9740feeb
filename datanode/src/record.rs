//! The on-disk byte format of segment files: a segment header, then records, each a fixed
//! header followed by its payload. Layouts are drawn in `docs/formats.md`.
//!
//! Integers are little-endian; the shard id is its 24-byte big-endian, order-preserving
//! encoding ([`ShardId::to_bytes`]). Every header carries a CRC32C (CRC-32/ISCSI) over its
//! earlier bytes, every payload a CRC32C of its bytes.
//!
//! Decoding never panics on arbitrary input. It tells apart bytes that stop too early
//! ([`DecodeError::Incomplete`], the shape of a torn write at a file's tail) from bytes that
//! are present but wrong ([`DecodeError::Corrupt`]) and from a newer format this code does
//! not know ([`DecodeError::UnsupportedVersion`]).

use cairn_types::{crc32c, ShardId};

/// First bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"CAIRNSEG";
/// First bytes of every record header.
pub const RECORD_MAGIC: [u8; 4] = *b"CREC";
/// The one format version this code writes and reads (segment headers and records).
pub const FORMAT_VERSION: u16 = 1;
/// Size of the segment header at offset 0 of every segment file.
pub const SEGMENT_HEADER_LEN: usize = 32;
/// Size of the fixed record header that precedes each payload.
pub const RECORD_HEADER_LEN: usize = 48;

/// Why bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes end before the structure does: `needed` bytes in all would be required.
    /// Every byte that is present is consistent with a valid structure so far.
    #[error("incomplete: {needed} bytes needed")]
    Incomplete { needed: u64 },
    /// The bytes are present but do not form a valid structure.
    #[error("corrupt: {0}")]
    Corrupt(&'static str),
    /// A well-formed header of a format version this code cannot read.
    #[error("unsupported format version {0}")]
    UnsupportedVersion(u16),
}

/// The header at the start of a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHeader {
    /// The segment's number; it matches the number in the file name.
    pub segment: u64,
}

impl SegmentHeader {
    pub fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut b = [0u8; SEGMENT_HEADER_LEN];
        b[0..8].copy_from_slice(&SEGMENT_MAGIC);
        b[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        // 10..16 reserved, zero.
        b[16..24].copy_from_slice(&self.segment.to_le_bytes());
        // 24..28 reserved, zero.
        let crc = crc32c(&b[0..28]);
        b[28..32].copy_from_slice(&crc.to_le_bytes());
        b
    }

    pub fn decode(buf: &[u8]) -> Result<SegmentHeader, DecodeError> {
        if buf.len() < SEGMENT_HEADER_LEN {
            return if prefix_matches(buf, &SEGMENT_MAGIC) {
                Err(DecodeError::Incomplete {
                    needed: SEGMENT_HEADER_LEN as u64,
                })
            } else {
                Err(DecodeError::Corrupt("bad segment magic"))
            };
        }
        if buf[0..8] != SEGMENT_MAGIC {
            return Err(DecodeError::Corrupt("bad segment magic"));
        }
        if le_u32(buf, 28) != crc32c(&buf[0..28]) {
            return Err(DecodeError::Corrupt("segment header checksum mismatch"));
        }
        let version = le_u16(buf, 8);
        if version != FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        if buf[10..16].iter().chain(&buf[24..28]).any(|&b| b != 0) {
            return Err(DecodeError::Corrupt(
                "segment header reserved bytes not zero",
            ));
        }
        Ok(SegmentHeader {
            segment: le_u64(buf, 16),
        })
    }
}

/// What a record says about its shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    /// The payload is the shard's bytes (replacing any earlier version).
    Put,
    /// The shard is deleted; the payload is empty.
    Tombstone,
}

impl RecordKind {
    fn to_byte(self) -> u8 {
        match self {
            RecordKind::Put => 1,
            RecordKind::Tombstone => 2,
        }
    }

    fn from_byte(b: u8) -> Option<RecordKind> {
        match b {
            1 => Some(RecordKind::Put),
            2 => Some(RecordKind::Tombstone),
            _ => None,
        }
    }
}

/// The fixed header of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader {
    pub kind: RecordKind,
    pub id: ShardId,
    pub payload_len: u64,
    pub payload_crc: u32,
}

impl RecordHeader {
    /// The header of a put record for `payload`.
    pub fn put(id: ShardId, payload: &[u8]) -> RecordHeader {
        RecordHeader::put_with_crc(id, payload.len() as u64, crc32c(payload))
    }

    /// The header of a put record whose payload checksum is already known.
    pub fn put_with_crc(id: ShardId, payload_len: u64, payload_crc: u32) -> RecordHeader {
        RecordHeader {
            kind: RecordKind::Put,
            id,
            payload_len,
            payload_crc,
        }
    }

    /// The header of a tombstone (no payload).
    pub fn tombstone(id: ShardId) -> RecordHeader {
        RecordHeader {
            kind: RecordKind::Tombstone,
            id,
            payload_len: 0,
            payload_crc: crc32c(&[]),
        }
    }

    /// Header plus payload length: the bytes this record takes in a segment.
    pub fn record_len(&self) -> u64 {
        RECORD_HEADER_LEN as u64 + self.payload_len
    }

    pub fn encode(&self) -> [u8; RECORD_HEADER_LEN] {
        let mut b = [0u8; RECORD_HEADER_LEN];
        b[0..4].copy_from_slice(&RECORD_MAGIC);
        b[4..6].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        b[6] = self.kind.to_byte();
        // b[7]: flags, zero.
        b[8..32].copy_from_slice(&self.id.to_bytes());
        b[32..40].copy_from_slice(&self.payload_len.to_le_bytes());
        b[40..44].copy_from_slice(&self.payload_crc.to_le_bytes());
        let crc = crc32c(&b[0..44]);
        b[44..48].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decodes a record header from the start of `buf` (payload not needed, not checked).
    pub fn decode(buf: &[u8]) -> Result<RecordHeader, DecodeError> {
        if buf.len() < RECORD_HEADER_LEN {
            return if prefix_matches(buf, &RECORD_MAGIC) {
                Err(DecodeError::Incomplete {
                    needed: RECORD_HEADER_LEN as u64,
                })
            } else {
                Err(DecodeError::Corrupt("bad record magic"))
            };
        }
        if buf[0..4] != RECORD_MAGIC {
            return Err(DecodeError::Corrupt("bad record magic"));
        }
        if le_u32(buf, 44) != crc32c(&buf[0..44]) {
            return Err(DecodeError::Corrupt("record header checksum mismatch"));
        }
        let version = le_u16(buf, 4);
        if version != FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let kind = RecordKind::from_byte(buf[6]).ok_or(DecodeError::Corrupt("bad record kind"))?;
        if buf[7] != 0 {
            return Err(DecodeError::Corrupt("record flags not zero"));
        }
        let mut id = [0u8; ShardId::ENCODED_LEN];
        id.copy_from_slice(&buf[8..32]);
        let header = RecordHeader {
            kind,
            id: ShardId::from_bytes(&id),
            payload_len: le_u64(buf, 32),
            payload_crc: le_u32(buf, 40),
        };
        if kind == RecordKind::Tombstone && header.payload_len != 0 {
            return Err(DecodeError::Corrupt("tombstone with a payload"));
        }
        if header.payload_len > u64::MAX - RECORD_HEADER_LEN as u64 {
            return Err(DecodeError::Corrupt("payload length out of range"));
        }
        Ok(header)
    }
}

/// Encodes a whole record (header then payload) into one buffer.
pub fn encode_record(header: &RecordHeader, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(RECORD_HEADER_LEN + payload.len());
    out.extend_from_slice(&header.encode());
    out.extend_from_slice(payload);
    out
}

/// Decodes the record at the start of `buf` and verifies its payload checksum. Returns the
/// header, the payload and the number of bytes the record takes.
pub fn decode_record(buf: &[u8]) -> Result<(RecordHeader, &[u8], usize), DecodeError> {
    let header = RecordHeader::decode(buf)?;
    let total = header.record_len();
    if (buf.len() as u64) < total {
        return Err(DecodeError::Incomplete { needed: total });
    }
    // `total <= buf.len()`, so it fits in usize.
    let total = total as usize;
    let payload = &buf[RECORD_HEADER_LEN..total];
    if crc32c(payload) != header.payload_crc {
        return Err(DecodeError::Corrupt("payload checksum mismatch"));
    }
    Ok((header, payload, total))
}

fn prefix_matches(buf: &[u8], magic: &[u8]) -> bool {
    let n = buf.len().min(magic.len());
    buf[..n] == magic[..n]
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[at..at + 2]);
    u16::from_le_bytes(a)
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_types::ObjectId;
    use proptest::prelude::*;

    fn id(n: u128) -> ShardId {
        ShardId::new(ObjectId(n), 3, 1)
    }

    #[test]
    fn segment_header_round_trip() {
        let h = SegmentHeader { segment: 42 };
        let b = h.encode();
        assert_eq!(SegmentHeader::decode(&b), Ok(h));
        assert_eq!(
            SegmentHeader::decode(&b[..10]),
            Err(DecodeError::Incomplete { needed: 32 })
        );
        let mut bad = b;
        bad[17] ^= 1;
        assert!(matches!(
            SegmentHeader::decode(&bad),
            Err(DecodeError::Corrupt(_))
        ));
    }

    #[test]
    fn record_round_trip() {
        let h = RecordHeader::put(id(7), b"hello");
        let rec = encode_record(&h, b"hello");
        assert_eq!(rec.len(), RECORD_HEADER_LEN + 5);
        let (got, payload, used) = decode_record(&rec).expect("decodes");
        assert_eq!(got, h);
        assert_eq!(payload, b"hello");
        assert_eq!(used, rec.len());

        let t = RecordHeader::tombstone(id(9));
        let rec = encode_record(&t, &[]);
        assert_eq!(decode_record(&rec).map(|r| r.0), Ok(t));
    }

    #[test]
    fn torn_records_are_incomplete() {
        let h = RecordHeader::put(id(7), b"hello world");
        let rec = encode_record(&h, b"hello world");
        for cut in 0..rec.len() {
            let err = decode_record(&rec[..cut]).expect_err("cut record must not decode");
            assert!(
                matches!(err, DecodeError::Incomplete { .. }),
                "cut at {cut}: {err:?}"
            );
        }
    }

    #[test]
    fn damaged_records_are_corrupt() {
        let h = RecordHeader::put(id(7), b"payload");
        let rec = encode_record(&h, b"payload");
        let mut bad = rec.clone();
        bad[RECORD_HEADER_LEN + 2] ^= 0x40;
        assert_eq!(
            decode_record(&bad).map(|r| r.0),
            Err(DecodeError::Corrupt("payload checksum mismatch"))
        );
        let mut bad = rec.clone();
        bad[33] ^= 0x01;
        assert_eq!(
            decode_record(&bad).map(|r| r.0),
            Err(DecodeError::Corrupt("record header checksum mismatch"))
        );
        assert!(matches!(
            decode_record(&[0u8; 100]),
            Err(DecodeError::Corrupt(_))
        ));
    }

    #[test]
    fn newer_version_is_reported() {
        let mut b = RecordHeader::tombstone(id(1)).encode();
        b[4] = 2;
        let crc = crc32c(&b[0..44]);
        b[44..48].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            RecordHeader::decode(&b),
            Err(DecodeError::UnsupportedVersion(2))
        );
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_record(&bytes);
            let _ = RecordHeader::decode(&bytes);
            let _ = SegmentHeader::decode(&bytes);
        }

        #[test]
        fn decode_never_panics_after_valid_magic(
            tail in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let mut bytes = RECORD_MAGIC.to_vec();
            bytes.extend_from_slice(&tail);
            let _ = decode_record(&bytes);
        }

        #[test]
        fn any_single_bit_flip_is_detected(
            payload in proptest::collection::vec(any::<u8>(), 0..64),
            n in any::<u128>(),
            bit in any::<prop::sample::Index>(),
        ) {
            let rec = encode_record(&RecordHeader::put(id(n), &payload), &payload);
            let mut bad = rec.clone();
            let i = bit.index(rec.len() * 8);
            bad[i / 8] ^= 1 << (i % 8);
            prop_assert!(decode_record(&bad).is_err());
        }
    }
}
