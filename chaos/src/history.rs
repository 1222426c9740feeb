//! What a run did, as the checkers see it: every client operation with the time it was
//! invoked, the time it completed and its outcome, and the values it wrote or observed.
//!
//! A value is named by the id of the operation that wrote it; its bytes are a function of
//! that id and a size ([`content`]), so a read proves which write it returns and that every
//! byte is right without the run keeping what it wrote.

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

/// An operation's id, unique in a run; also the id of the value a write writes.
pub type OpId = u64;

/// What an operation asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// PUT (single request or multipart upload) of value `value`.
    Put {
        value: OpId,
        size: u32,
        multipart: bool,
    },
    /// PUT with `If-None-Match: *`.
    PutIfAbsent {
        value: OpId,
        size: u32,
    },
    /// PUT with `If-Match` naming the ETag of value `expect`.
    PutIfMatch {
        value: OpId,
        size: u32,
        expect: OpId,
    },
    Delete,
    Get,
    Head,
    /// ListObjectsV2 of a prefix (the key field holds the prefix).
    List,
    /// GET of one version by its id, after the faults (the no-lost-write check).
    GetVersion {
        version: String,
        value: OpId,
    },
}

impl Kind {
    /// Writes change the register; the rest observe it.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Kind::Put { .. } | Kind::PutIfAbsent { .. } | Kind::PutIfMatch { .. } | Kind::Delete
        )
    }
}

/// What a read saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Observed {
    /// A write was acknowledged (with the version id a versioned bucket gave it).
    Written { version: Option<String> },
    /// The key held this value (bytes or ETag and length checked against it).
    Value(OpId),
    /// The key did not exist (404).
    Absent,
    /// A listing's keys.
    Keys(Vec<String>),
    /// A conditional write was refused (412, or 404 for If-Match on a missing key).
    NotApplied,
    /// Bytes or an ETag that no write of this run produced: a corrupt or invented read.
    Corrupt(String),
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Ok(Observed),
    /// Definitely not applied (a 4xx answer).
    Failed(String),
    /// May or may not have been applied, now or later (timeout, connection lost, 5xx).
    Unknown(String),
}

/// One operation of the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    pub id: OpId,
    pub client: u32,
    /// Index of the node whose gateway served it.
    pub node: usize,
    pub bucket: String,
    pub key: String,
    pub kind: Kind,
    /// Microseconds since the run began.
    pub invoke: u64,
    pub complete: u64,
    pub outcome: Outcome,
}

impl Op {
    /// A write that may have taken effect: acknowledged, refused-as-conditional (which says
    /// what the state was) or of unknown outcome.
    pub fn may_have_written(&self) -> bool {
        self.kind.is_write()
            && match &self.outcome {
                Outcome::Ok(Observed::NotApplied) => false,
                Outcome::Ok(_) | Outcome::Unknown(_) => true,
                Outcome::Failed(_) => false,
            }
    }

    pub fn acknowledged(&self) -> bool {
        matches!(self.outcome, Outcome::Ok(Observed::Written { .. }))
    }
}

/// The bytes of value `id` at `size` bytes: a 16-byte header (id, size) then a stream only
/// that id produces.
pub fn content(id: OpId, size: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(size as usize);
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&u64::from(size).to_le_bytes());
    let mut x = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < size as usize {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(size as usize);
    out
}

/// The smallest value: the header must fit.
pub const MIN_SIZE: u32 = 16;

/// Which value `bytes` are, if they are exactly one of this run's values.
pub fn identify(bytes: &[u8]) -> Result<OpId, String> {
    if bytes.len() < MIN_SIZE as usize {
        return Err(format!("{} bytes: shorter than any value", bytes.len()));
    }
    let id = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    let size = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    if size != bytes.len() as u64 {
        return Err(format!(
            "value {id} says {size} bytes, {} arrived",
            bytes.len()
        ));
    }
    let want = content(id, size as u32);
    match want.iter().zip(bytes).position(|(a, b)| a != b) {
        None => Ok(id),
        Some(at) => Err(format!("value {id}: byte {at} differs")),
    }
}

/// The ETag a single-request PUT of value `id` gets (quoted MD5 of its bytes).
pub fn etag_of(bytes: &[u8]) -> String {
    format!("\"{}\"", hex::encode(Md5::digest(bytes)))
}

/// The ETag of a multipart upload of these parts (MD5 of the parts' MD5s, dash, count).
pub fn multipart_etag(parts: &[&[u8]]) -> String {
    let mut all = Md5::new();
    for p in parts {
        all.update(Md5::digest(p));
    }
    format!("\"{}-{}\"", hex::encode(all.finalize()), parts.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_identify_themselves_and_any_flip_is_caught() {
        for (id, size) in [(1, 16), (7, 17), (123_456, 4096), (9, 100_000)] {
            let mut v = content(id, size);
            assert_eq!(v.len(), size as usize);
            assert_eq!(identify(&v), Ok(id));
            let at = v.len() - 1;
            v[at] ^= 1;
            assert!(identify(&v).is_err());
        }
        assert!(identify(&content(3, 64)[..40]).is_err());
        assert_ne!(content(1, 64), content(2, 64));
    }

    #[test]
    fn multipart_etag_is_the_md5_of_part_md5s() {
        // The ETag S3 documents for a one-part upload of the empty string.
        assert_eq!(
            multipart_etag(&[b""]),
            "\"59adb24ef3cdbe0297f05b395827453f-1\""
        );
        assert_eq!(etag_of(b""), "\"d41d8cd98f00b204e9800998ecf8427e\"");
    }
}
