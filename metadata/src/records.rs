//! The records metadata stores: buckets, objects (with where their data lives), multipart
//! uploads and their parts, versions (object versions and delete markers), access keys and
//! garbage-collection entries, plus their versioned binary encoding.
//!
//! Every stored value starts with a format byte. A record type whose shape changed keeps
//! decoding its older formats into their old shapes ([`legacy`]) and converts them:
//! [`ObjectRecord`] and [`UploadRecord`] gained a version id and a tag set in
//! [`VALUE_FORMAT_V2`] and an ACL (plus, for objects, the upload they were completed from) in
//! [`VALUE_FORMAT_V3`]; [`VersionRecord`], which embeds an object, follows as V2.

use std::collections::BTreeMap;

use cairn_types::{BucketName, EcScheme, NodeId, ObjectId, ShardId};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::MetadataError;

/// Format version byte that starts every stored value (first shape of each record).
pub const VALUE_FORMAT_V1: u8 = 1;
/// Format of [`ObjectRecord`] and [`UploadRecord`] since versioning and tagging; of
/// [`VersionRecord`] since ACLs.
pub const VALUE_FORMAT_V2: u8 = 2;
/// Format of [`ObjectRecord`] and [`UploadRecord`] since ACLs.
pub const VALUE_FORMAT_V3: u8 = 3;

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
fn decode_as<Old: DeserializeOwned + Into<New>, New>(rest: &[u8]) -> Result<New, MetadataError> {
    postcard::from_bytes::<Old>(rest)
        .map(Into::into)
        .map_err(postcard_err)
}

impl Stored for VersionRecord {
    const FORMAT: u8 = VALUE_FORMAT_V2;
    fn decode_older(format: u8, rest: &[u8]) -> Option<Result<Self, MetadataError>> {
        (format == VALUE_FORMAT_V1).then(|| decode_as::<legacy::VersionRecordV1, _>(rest))
    }
}

impl Stored for ObjectRecord {
    const FORMAT: u8 = VALUE_FORMAT_V3;
    fn decode_older(format: u8, rest: &[u8]) -> Option<Result<Self, MetadataError>> {
        match format {
            VALUE_FORMAT_V1 => Some(decode_as::<legacy::ObjectRecordV1, _>(rest)),
            VALUE_FORMAT_V2 => Some(decode_as::<legacy::ObjectRecordV2, _>(rest)),
            _ => None,
        }
    }
}

impl Stored for UploadRecord {
    const FORMAT: u8 = VALUE_FORMAT_V3;
    fn decode_older(format: u8, rest: &[u8]) -> Option<Result<Self, MetadataError>> {
        match format {
            VALUE_FORMAT_V1 => Some(decode_as::<legacy::UploadRecordV1, _>(rest)),
            VALUE_FORMAT_V2 => Some(decode_as::<legacy::UploadRecordV2, _>(rest)),
            _ => None,
        }
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
    /// A body encrypted at rest: `Inline` or `Striped` data holding the sealed chunks (see
    /// `cairn-sse`). (Appended last so that records written before it still decode.)
    Encrypted(Box<EncryptedData>),
}

/// A body stored encrypted: its sealed bytes and how to open them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptedData {
    /// The body's data key, wrapped.
    pub key: SealedKey,
    /// Plaintext bytes per sealed chunk.
    pub chunk_size: u32,
    /// Plaintext bytes of the body.
    pub plain_size: u64,
    /// The sealed bytes: `Inline` or `Striped`.
    pub data: ObjectData,
}

/// How a body's data key is kept.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SealedKey {
    /// SSE-S3: wrapped by the cluster master key `master`.
    Managed { master: u32, wrapped: Vec<u8> },
    /// SSE-C: wrapped by the customer's key, recognized by `mac` = HMAC-SHA256(`salt`,
    /// key); the key itself is never stored.
    Customer {
        salt: Vec<u8>,
        mac: Vec<u8>,
        wrapped: Vec<u8>,
    },
    /// SSE-KMS: wrapped by the built-in KMS key named `key_id`.
    Kms { key_id: String, wrapped: Vec<u8> },
}

impl std::fmt::Debug for SealedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SealedKey::Managed { master, .. } => write!(f, "Managed(master {master})"),
            SealedKey::Customer { .. } => f.write_str("Customer"),
            SealedKey::Kms { key_id, .. } => write!(f, "Kms({key_id})"),
        }
    }
}

/// How a stored body is encrypted, as S3 reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    /// Stored as sent (bodies written before encryption at rest, or with it off).
    None,
    /// SSE-S3 (`AES256`).
    Managed,
    /// SSE-C.
    Customer,
    /// SSE-KMS (`aws:kms`); [`ObjectData::kms_key_id`] names the key.
    Kms,
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
            ObjectData::Encrypted(e) => e.data.shards(),
        }
    }

    /// The stored bytes of this body, inside any encryption: `Inline`, `Striped` or `Parts`.
    pub fn stored(&self) -> &ObjectData {
        match self {
            ObjectData::Encrypted(e) => e.data.stored(),
            d => d,
        }
    }

    /// [`Self::stored`], mutable.
    pub fn stored_mut(&mut self) -> &mut ObjectData {
        match self {
            ObjectData::Encrypted(e) => e.data.stored_mut(),
            d => d,
        }
    }

    /// How the body is encrypted (a multipart object: as its first part is; every part of
    /// one upload is encrypted alike).
    pub fn encryption(&self) -> Encryption {
        match self {
            ObjectData::Inline(_) | ObjectData::Striped { .. } => Encryption::None,
            ObjectData::Parts(parts) => parts
                .first()
                .map_or(Encryption::None, |p| p.data.encryption()),
            ObjectData::Encrypted(e) => match e.key {
                SealedKey::Managed { .. } => Encryption::Managed,
                SealedKey::Customer { .. } => Encryption::Customer,
                SealedKey::Kms { .. } => Encryption::Kms,
            },
        }
    }

    /// The KMS key an SSE-KMS body (or its first part) is wrapped by.
    pub fn kms_key_id(&self) -> Option<&str> {
        match self {
            ObjectData::Inline(_) | ObjectData::Striped { .. } => None,
            ObjectData::Parts(parts) => parts.first().and_then(|p| p.data.kms_key_id()),
            ObjectData::Encrypted(e) => match &e.key {
                SealedKey::Kms { key_id, .. } => Some(key_id),
                _ => None,
            },
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
    /// Owner and grants; `None`: owned by the bucket's owner, who alone has access (objects
    /// written before ACLs existed).
    pub acl: Option<ObjectAcl>,
    /// The multipart upload this object was completed from (a repeated completion of the
    /// same upload answers with this object).
    pub upload_id: Option<String>,
}

/// An object's owner and the grants of its access control list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectAcl {
    /// Access key of the owner (the writer), or [`ANONYMOUS_OWNER`].
    pub owner: String,
    pub grants: Vec<Grant>,
}

/// The owner of objects written by anonymous requests (no access key can be spelled so).
pub const ANONYMOUS_OWNER: &str = "*anonymous";

/// One grant of an access control list (bucket or object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub grantee: Grantee,
    pub permission: Permission,
}

/// Who a grant is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Grantee {
    /// One access key (by access key id; the S3 front end shows its canonical user id).
    User(String),
    /// Everyone, signed or not (`.../groups/global/AllUsers`).
    AllUsers,
    /// Every signed request with a valid key (`.../groups/global/AuthenticatedUsers`).
    AuthenticatedUsers,
}

/// What a grant allows (S3's ACL permissions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Permission {
    Read,
    Write,
    ReadAcp,
    WriteAcp,
    FullControl,
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
    /// The completed object's owner and grants (from the initiator and its ACL headers).
    pub acl: Option<ObjectAcl>,
}

/// Key in an upload's [`UploadRecord::headers`] of how its parts are encrypted (see
/// `cairn-objects`); never part of the completed object's headers.
pub const UPLOAD_SSE_HEADER: &str = "x-cairn-sse";

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
    /// The bucket's ACL grants (JSON list of [`Grant`]s; absent: the owner's full control).
    Acl = 4,
    /// The bucket policy, the JSON document exactly as it was put (checked by the S3 front
    /// end before it is stored).
    Policy = 5,
    /// The bucket's Block Public Access settings (JSON [`PublicAccessBlock`]).
    PublicAccessBlock = 6,
    /// The bucket's Object Ownership setting (its name as text, e.g. `ObjectWriter`).
    OwnershipControls = 7,
    /// Object Lock is enabled (for good) with this default retention (JSON
    /// [`crate::object_lock::ObjectLockConfig`]); see [`crate::object_lock`].
    ObjectLock = 8,
    /// The lifecycle rules (JSON, written and read by the S3 front end and the lifecycle
    /// worker).
    Lifecycle = 9,
    /// The bucket's quota (JSON [`crate::usage::BucketQuota`]); only
    /// `Command::SetBucketQuota` writes it.
    Quota = 10,
    /// What the bucket stores (JSON [`crate::usage::BucketUsage`]); only the state machine
    /// writes it, see [`crate::usage`].
    Usage = 11,
    /// The class of writes that name none (the S3 name as text; see
    /// [`crate::storage_class`]).
    StorageClass = 12,
    /// The bucket's default encryption (`AES256`; absent: the server's default).
    Encryption = 13,
}

impl BucketConfigKind {
    pub const ALL: [BucketConfigKind; 13] = [
        BucketConfigKind::Versioning,
        BucketConfigKind::Cors,
        BucketConfigKind::Tagging,
        BucketConfigKind::Acl,
        BucketConfigKind::Policy,
        BucketConfigKind::PublicAccessBlock,
        BucketConfigKind::OwnershipControls,
        BucketConfigKind::ObjectLock,
        BucketConfigKind::Lifecycle,
        BucketConfigKind::Quota,
        BucketConfigKind::Usage,
        BucketConfigKind::StorageClass,
        BucketConfigKind::Encryption,
    ];
}

/// Block Public Access: four switches, for a bucket or for the whole cluster (the two are
/// combined: a switch on at either level is on). What "public" means is the S3 front end's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicAccessBlock {
    /// Refuse requests that would set a public ACL (on a bucket or an object).
    #[serde(default)]
    pub block_public_acls: bool,
    /// Grants to everyone or to every signed request give nothing.
    #[serde(default)]
    pub ignore_public_acls: bool,
    /// Refuse a bucket policy that is public.
    #[serde(default)]
    pub block_public_policy: bool,
    /// A public bucket policy gives nothing to anyone but the bucket's owner.
    #[serde(default)]
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    /// Each switch on when it is on in either.
    pub fn union(self, other: PublicAccessBlock) -> PublicAccessBlock {
        PublicAccessBlock {
            block_public_acls: self.block_public_acls || other.block_public_acls,
            ignore_public_acls: self.ignore_public_acls || other.ignore_public_acls,
            block_public_policy: self.block_public_policy || other.block_public_policy,
            restrict_public_buckets: self.restrict_public_buckets || other.restrict_public_buckets,
        }
    }
}

#[path = "records/legacy.rs"]
pub mod legacy;

/// Format bytes are below this; text (what older builds stored) starts at it or above.
const TEXT_START: u8 = 0x09;

/// Decodes a value of `sys` or `bucket_config` kept by [`crate::cluster_state`],
/// [`crate::access_keys`] or [`crate::versions`]: the versioned encoding, or `legacy` for the
/// text older builds stored.
pub(crate) fn decode_value<T: Stored>(
    raw: &[u8],
    what: &str,
    legacy: impl FnOnce(&[u8]) -> Option<T>,
) -> Result<T, MetadataError> {
    match raw.first() {
        Some(&b) if b < TEXT_START => decode(raw),
        _ => legacy(raw)
            .ok_or_else(|| MetadataError::Corrupt(format!("the stored {what} does not decode"))),
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
        // New records are written as V3 and read back whole.
        let mut v3 = rec.clone();
        v3.version_id = Some("v".into());
        v3.tags.insert("k".into(), "v".into());
        v3.acl = Some(ObjectAcl {
            owner: "AK".into(),
            grants: vec![Grant {
                grantee: Grantee::AllUsers,
                permission: Permission::Read,
            }],
        });
        v3.upload_id = Some("u".into());
        let bytes = encode(&v3);
        assert_eq!(bytes[0], VALUE_FORMAT_V3);
        assert_eq!(decode::<ObjectRecord>(&bytes).unwrap(), v3);
        assert!(decode::<ObjectRecord>(&[9, 0]).is_err());
    }

    /// A V2 object (before ACLs), as the pre-ACL code wrote it inside a version entry and on
    /// its own, still decodes, with no ACL (the bucket owner's) and no upload id.
    #[test]
    fn v2_objects_and_v1_versions_still_decode() {
        let old = legacy::ObjectRecordV2 {
            size: 1,
            etag: "e".into(),
            last_modified_ms: 2,
            content_type: None,
            headers: BTreeMap::new(),
            user_meta: BTreeMap::new(),
            checksum: None,
            data: ObjectData::Inline(vec![9]),
            version_id: Some("v1".into()),
            tags: TagSet::from([("a".into(), "b".into())]),
        };
        let mut bytes = vec![VALUE_FORMAT_V2];
        bytes.extend(postcard::to_allocvec(&old).unwrap());
        let rec: ObjectRecord = decode(&bytes).unwrap();
        assert_eq!(rec.version_id.as_deref(), Some("v1"));
        assert_eq!(rec.tags.len(), 1);
        assert_eq!(rec.acl, None);
        assert_eq!(rec.upload_id, None);

        let version = legacy::VersionRecordV1 {
            version_id: Some("v1".into()),
            last_modified_ms: 2,
            object: Some(old),
        };
        let mut bytes = vec![VALUE_FORMAT_V1];
        bytes.extend(postcard::to_allocvec(&version).unwrap());
        let v: VersionRecord = decode(&bytes).unwrap();
        assert_eq!(v.object.as_ref().map(|o| o.etag.as_str()), Some("e"));
        let marker = legacy::VersionRecordV1 {
            version_id: None,
            last_modified_ms: 3,
            object: None,
        };
        let mut bytes = vec![VALUE_FORMAT_V1];
        bytes.extend(postcard::to_allocvec(&marker).unwrap());
        assert!(decode::<VersionRecord>(&bytes).unwrap().is_delete_marker());
        // And the current shape round-trips as V2.
        let now = encode(&v);
        assert_eq!(now[0], VALUE_FORMAT_V2);
        assert_eq!(decode::<VersionRecord>(&now).unwrap(), v);
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
        assert_eq!(rec.acl, None);
        // A V2 upload (tags, no ACL) decodes too.
        let v2 = legacy::UploadRecordV2 {
            upload_id: "u2".into(),
            initiated_ms: 5,
            owner: "o".into(),
            content_type: None,
            headers: BTreeMap::new(),
            user_meta: BTreeMap::new(),
            checksum_algorithm: None,
            checksum_type: None,
            tags: TagSet::from([("k".into(), "v".into())]),
        };
        let mut bytes = vec![VALUE_FORMAT_V2];
        bytes.extend(postcard::to_allocvec(&v2).unwrap());
        let rec: UploadRecord = decode(&bytes).unwrap();
        assert_eq!(rec.upload_id, "u2");
        assert_eq!(rec.tags.len(), 1);
        assert_eq!(rec.acl, None);
        assert_eq!(encode(&rec)[0], VALUE_FORMAT_V3);
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
