//! The records metadata stores: buckets, objects (with where their data lives), multipart
//! uploads and their parts, access keys and garbage-collection entries, plus their versioned
//! binary encoding.

use std::collections::BTreeMap;

use cairn_types::{BucketName, EcScheme, NodeId, ObjectId, ShardId};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::MetadataError;

/// Format version byte that starts every stored value.
pub const VALUE_FORMAT_V1: u8 = 1;

pub(crate) fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = vec![VALUE_FORMAT_V1];
    // postcard serialisation of these plain records cannot fail (no maps with non-string
    // keys, no unsupported types); a failure would be a programming error.
    out.extend(postcard::to_allocvec(v).expect("records always serialise"));
    out
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, MetadataError> {
    match bytes.split_first() {
        Some((&VALUE_FORMAT_V1, rest)) => {
            postcard::from_bytes(rest).map_err(|e| MetadataError::Corrupt(e.to_string()))
        }
        Some((v, _)) => Err(MetadataError::Corrupt(format!(
            "unknown value format version {v}"
        ))),
        None => Err(MetadataError::Corrupt("empty value".into())),
    }
}

/// A bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRecord {
    pub name: BucketName,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// Access key of the owner.
    pub owner: String,
}

/// One shard of a stripe: which datanode holds it, and its checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardLoc {
    pub node: NodeId,
    pub len: u64,
    pub crc32c: u32,
}

/// One stripe of an object: `len` data bytes encoded into `shards` (k data + m parity).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeLoc {
    pub len: u64,
    pub shards: Vec<ShardLoc>,
}

/// Where an object's bytes live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectData {
    /// Small bodies kept in the record itself.
    Inline(Vec<u8>),
    /// Bodies cut into stripes stored as shards on datanodes.
    Striped {
        id: ObjectId,
        ec: EcScheme,
        stripe_size: u64,
        stripes: Vec<StripeLoc>,
    },
    /// A completed multipart upload: its parts in order, each its own inline or striped
    /// body. (Appended last so that records written before it still decode.)
    Parts(Vec<PartData>),
}

/// One part of a completed multipart object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartData {
    pub part_number: u32,
    pub size: u64,
    /// Hex MD5 of the part (its ETag, unquoted).
    pub etag: String,
    pub checksum: Option<StoredChecksum>,
    /// `Inline` or `Striped`; never `Parts`.
    pub data: ObjectData,
}

impl ObjectData {
    /// Every shard this data occupies, with the node that holds it.
    pub fn shards(&self) -> Vec<(NodeId, ShardId)> {
        match self {
            ObjectData::Inline(_) => Vec::new(),
            ObjectData::Striped { id, stripes, .. } => stripes
                .iter()
                .enumerate()
                .flat_map(|(s, st)| {
                    st.shards
                        .iter()
                        .enumerate()
                        .map(move |(i, loc)| (loc.node, ShardId::new(*id, s as u32, i as u32)))
                })
                .collect(),
            ObjectData::Parts(parts) => parts.iter().flat_map(|p| p.data.shards()).collect(),
        }
    }
}

/// A full-object checksum the client asked for (algorithm name as S3 spells it, e.g.
/// `CRC32C`, and the base64 value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredChecksum {
    pub algorithm: String,
    pub value: String,
}

/// One object (the current version of a key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecord {
    pub size: u64,
    /// ETag without quotes (hex MD5 for single-part uploads).
    pub etag: String,
    pub last_modified_ms: i64,
    pub content_type: Option<String>,
    /// Standard headers stored verbatim: content-encoding, content-disposition,
    /// content-language, cache-control, expires (lowercase names).
    pub headers: BTreeMap<String, String>,
    /// `x-amz-meta-*` user metadata, names lowercase without the prefix.
    pub user_meta: BTreeMap<String, String>,
    pub checksum: Option<StoredChecksum>,
    pub data: ObjectData,
}

/// A multipart upload in progress: what CreateMultipartUpload said about the object to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    pub upload_id: String,
    pub initiated_ms: i64,
    /// Access key of the initiator.
    pub owner: String,
    pub content_type: Option<String>,
    /// Standard headers, as in [`ObjectRecord::headers`].
    pub headers: BTreeMap<String, String>,
    pub user_meta: BTreeMap<String, String>,
    /// `x-amz-checksum-algorithm` given at creation (S3 spelling, e.g. `CRC32`).
    pub checksum_algorithm: Option<String>,
    /// `x-amz-checksum-type` given at creation (`COMPOSITE` or `FULL_OBJECT`).
    pub checksum_type: Option<String>,
}

/// One uploaded part of a multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    pub part_number: u32,
    pub size: u64,
    /// Hex MD5 of the part, unquoted.
    pub etag: String,
    pub last_modified_ms: i64,
    pub checksum: Option<StoredChecksum>,
    /// `Inline` or `Striped`.
    pub data: ObjectData,
}

/// An access key and its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKeyRecord {
    pub access_key: String,
    pub secret_key: String,
    pub name: String,
    pub created_ms: i64,
}

/// Shards that no live object references any more, waiting to be deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcEntry {
    pub shards: Vec<(NodeId, ShardId)>,
}

/// The configuration documents a bucket can carry, each stored whole under its own key. The
/// discriminants are part of the key encoding: never reuse or renumber them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum BucketConfigKind {
    /// `Enabled` or `Suspended` (absent: never versioned).
    Versioning = 1,
    /// The CORS rules (JSON, written and read by the S3 front end).
    Cors = 2,
    /// The bucket's tag set (JSON, written and read by the S3 front end).
    Tagging = 3,
}

impl BucketConfigKind {
    pub const ALL: [BucketConfigKind; 3] = [
        BucketConfigKind::Versioning,
        BucketConfigKind::Cors,
        BucketConfigKind::Tagging,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    fn striped(stripes: usize) -> ObjectData {
        ObjectData::Striped {
            id: ObjectId::random(),
            ec: EcScheme { data: 1, parity: 1 },
            stripe_size: 4,
            stripes: (0..stripes)
                .map(|_| StripeLoc {
                    len: 4,
                    shards: vec![
                        ShardLoc {
                            node: NodeId(0),
                            len: 4,
                            crc32c: 0,
                        },
                        ShardLoc {
                            node: NodeId(1),
                            len: 4,
                            crc32c: 0,
                        },
                    ],
                })
                .collect(),
        }
    }

    #[test]
    fn parts_cover_every_part_shard() {
        let part = |n, data| PartData {
            part_number: n,
            size: 8,
            etag: "e".into(),
            checksum: None,
            data,
        };
        let data = ObjectData::Parts(vec![
            part(1, striped(2)),
            part(2, ObjectData::Inline(vec![1])),
            part(3, striped(1)),
        ]);
        assert_eq!(data.shards().len(), 2 * 2 + 2);
        // Older variants keep their encoding: a `Parts` value appended after them does not
        // change how `Inline` is tagged.
        let inline = encode(&ObjectData::Inline(vec![7]));
        assert_eq!(inline, vec![VALUE_FORMAT_V1, 0, 1, 7]);
        let back: ObjectData = decode(&encode(&data)).unwrap();
        assert_eq!(back, data);
    }
}
