//! The records metadata stores: buckets, objects (with where their data lives), multipart
//! uploads and their parts, versions (object versions and delete markers), access keys and
//! garbage-collection entries, plus their versioned binary encoding.
//!
//! Every stored value starts with a format byte. A record type whose shape changed keeps
//! decoding its older formats: [`ObjectRecord`] and [`UploadRecord`] are written as
//! [`VALUE_FORMAT_V2`] (they gained a version id and a tag set) and V1 bytes decode into
//! their old shapes ([`legacy`]) and convert.

use std::collections::BTreeMap;

use cairn_types::{BucketName, EcScheme, NodeId, ObjectId, ShardId};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::MetadataError;

/// Format version byte that starts every stored value (first shape of each record).
pub const VALUE_FORMAT_V1: u8 = 1;
/// Format of [`ObjectRecord`] and [`UploadRecord`] since versioning and tagging.
pub const VALUE_FORMAT_V2: u8 = 2;

/// A record type kept in the metadata state: the format it is written in, and how its older
/// formats decode.
pub trait Stored: Serialize + DeserializeOwned {
    const FORMAT: u8 = VALUE_FORMAT_V1;
    /// Decodes `rest` written in the older `format`; `None` when `format` is unknown.
    fn decode_older(_format: u8, _rest: &[u8]) -> Option<Result<Self, MetadataError>> {
        None
    }
}

fn postcard_err(e: postcard::Error) -> MetadataError {
    MetadataError::Corrupt(e.to_string())
}

pub(crate) fn encode<T: Stored>(v: &T) -> Vec<u8> {
    let mut out = vec![T::FORMAT];
    // postcard serialisation of these plain records cannot fail (no maps with non-string
    // keys, no unsupported types); a failure would be a programming error.
    out.extend(postcard::to_allocvec(v).expect("records always serialise"));
    out
}

pub(crate) fn decode<T: Stored>(bytes: &[u8]) -> Result<T, MetadataError> {
    match bytes.split_first() {
        Some((&f, rest)) if f == T::FORMAT => postcard::from_bytes(rest).map_err(postcard_err),
        Some((&f, rest)) => T::decode_older(f, rest).unwrap_or_else(|| {
            Err(MetadataError::Corrupt(format!(
                "unknown value format version {f}"
            )))
        }),
        None => Err(MetadataError::Corrupt("empty value".into())),
    }
}

impl Stored for BucketRecord {}
impl Stored for PartRecord {}
impl Stored for AccessKeyRecord {}
impl Stored for GcEntry {}
impl Stored for ObjectData {}
impl Stored for VersionRecord {}

impl Stored for ObjectRecord {
    const FORMAT: u8 = VALUE_FORMAT_V2;
    fn decode_older(format: u8, rest: &[u8]) -> Option<Result<Self, MetadataError>> {
        (format == VALUE_FORMAT_V1).then(|| {
            postcard::from_bytes::<legacy::ObjectRecordV1>(rest)
                .map(Into::into)
                .map_err(postcard_err)
        })
    }
}

impl Stored for UploadRecord {
    const FORMAT: u8 = VALUE_FORMAT_V2;
    fn decode_older(format: u8, rest: &[u8]) -> Option<Result<Self, MetadataError>> {
        (format == VALUE_FORMAT_V1).then(|| {
            postcard::from_bytes::<legacy::UploadRecordV1>(rest)
                .map(Into::into)
                .map_err(postcard_err)
        })
    }
}

/// An object's tag set (key → value).
pub type TagSet = BTreeMap<String, String>;

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

/// One object: the current version of a key in `objects`, or one version in `versions`.
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
    /// The version id; `None` is the `null` version (unversioned and suspended buckets,
    /// objects written before versioning was enabled).
    pub version_id: Option<String>,
    pub tags: TagSet,
}

/// One entry of a key's version history in `versions`: an object version or a delete
/// marker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// `None` is the `null` version.
    pub version_id: Option<String>,
    pub last_modified_ms: i64,
    /// The object; `None` for a delete marker.
    pub object: Option<ObjectRecord>,
}

impl VersionRecord {
    pub fn is_delete_marker(&self) -> bool {
        self.object.is_none()
    }

    /// The version id as S3 spells it (`null` for the null version).
    pub fn id_str(&self) -> &str {
        self.version_id.as_deref().unwrap_or("null")
    }
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
    /// `x-amz-tagging` given at creation: the completed object's tags.
    pub tags: TagSet,
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

/// The V1 shapes of records whose shape changed, decoded from old data and converted.
pub mod legacy {
    use super::*;

    /// [`ObjectRecord`] before versioning and tagging.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct ObjectRecordV1 {
        pub size: u64,
        pub etag: String,
        pub last_modified_ms: i64,
        pub content_type: Option<String>,
        pub headers: BTreeMap<String, String>,
        pub user_meta: BTreeMap<String, String>,
        pub checksum: Option<StoredChecksum>,
        pub data: ObjectData,
    }

    impl From<ObjectRecordV1> for ObjectRecord {
        fn from(o: ObjectRecordV1) -> Self {
            ObjectRecord {
                size: o.size,
                etag: o.etag,
                last_modified_ms: o.last_modified_ms,
                content_type: o.content_type,
                headers: o.headers,
                user_meta: o.user_meta,
                checksum: o.checksum,
                data: o.data,
                version_id: None,
                tags: TagSet::new(),
            }
        }
    }

    /// [`UploadRecord`] before tagging.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct UploadRecordV1 {
        pub upload_id: String,
        pub initiated_ms: i64,
        pub owner: String,
        pub content_type: Option<String>,
        pub headers: BTreeMap<String, String>,
        pub user_meta: BTreeMap<String, String>,
        pub checksum_algorithm: Option<String>,
        pub checksum_type: Option<String>,
    }

    impl From<UploadRecordV1> for UploadRecord {
        fn from(u: UploadRecordV1) -> Self {
            UploadRecord {
                upload_id: u.upload_id,
                initiated_ms: u.initiated_ms,
                owner: u.owner,
                content_type: u.content_type,
                headers: u.headers,
                user_meta: u.user_meta,
                checksum_algorithm: u.checksum_algorithm,
                checksum_type: u.checksum_type,
                tags: TagSet::new(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes the pre-versioning code wrote for an inline object of 3 bytes with ETag `e`,
    /// modified at 1 ms, with `cache-control: no` and a CRC32 checksum `AA==`.
    const V1_OBJECT: &[u8] = &[
        1, // VALUE_FORMAT_V1
        3, 1, b'e', 2, 0, // size, etag, last_modified_ms (zigzag), content_type None
        1, 13, b'c', b'a', b'c', b'h', b'e', b'-', b'c', b'o', b'n', b't', b'r', b'o', b'l', 2,
        b'n', b'o', // headers
        0,    // user_meta
        1, 5, b'C', b'R', b'C', b'3', b'2', 4, b'A', b'A', b'=', b'=', // checksum
        0, 3, 1, 2, 3, // Inline([1, 2, 3])
    ];

    #[test]
    fn v1_object_records_still_decode() {
        let rec: ObjectRecord = decode(V1_OBJECT).unwrap();
        assert_eq!(rec.size, 3);
        assert_eq!(rec.etag, "e");
        assert_eq!(rec.last_modified_ms, 1);
        assert_eq!(
            rec.headers.get("cache-control").map(String::as_str),
            Some("no")
        );
        assert_eq!(rec.checksum.as_ref().unwrap().value, "AA==");
        assert_eq!(rec.data, ObjectData::Inline(vec![1, 2, 3]));
        assert_eq!(rec.version_id, None);
        assert!(rec.tags.is_empty());
        // The legacy shape re-encodes to exactly those bytes (it is the old struct).
        let old: legacy::ObjectRecordV1 = postcard::from_bytes(&V1_OBJECT[1..]).unwrap();
        let mut again = vec![VALUE_FORMAT_V1];
        again.extend(postcard::to_allocvec(&old).unwrap());
        assert_eq!(again, V1_OBJECT);
        // New records are written as V2 and read back whole.
        let mut v2 = rec.clone();
        v2.version_id = Some("v".into());
        v2.tags.insert("k".into(), "v".into());
        let bytes = encode(&v2);
        assert_eq!(bytes[0], VALUE_FORMAT_V2);
        assert_eq!(decode::<ObjectRecord>(&bytes).unwrap(), v2);
        assert!(decode::<ObjectRecord>(&[9, 0]).is_err());
    }

    #[test]
    fn v1_upload_records_still_decode() {
        let old = legacy::UploadRecordV1 {
            upload_id: "u".into(),
            initiated_ms: 5,
            owner: "o".into(),
            content_type: Some("t".into()),
            headers: BTreeMap::new(),
            user_meta: BTreeMap::new(),
            checksum_algorithm: None,
            checksum_type: None,
        };
        let mut bytes = vec![VALUE_FORMAT_V1];
        bytes.extend(postcard::to_allocvec(&old).unwrap());
        let rec: UploadRecord = decode(&bytes).unwrap();
        assert_eq!(rec.upload_id, "u");
        assert_eq!(rec.content_type.as_deref(), Some("t"));
        assert!(rec.tags.is_empty());
    }

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
