//! Records and small steps the conformance cases share.

use std::collections::BTreeMap;

use cairn_types::{BucketName, EcScheme, NodeId, ObjectId, ObjectKey, ShardId};

use crate::records::{
    BucketRecord, ObjectData, ObjectRecord, PartRecord, ShardLoc, StripeLoc, UploadRecord,
};
use crate::{
    BucketConfigKind, Command, CommandOutput, ListEntry, ListQuery, MetadataStore, Result,
    WriteCondition,
};

pub fn bucket(name: &str) -> BucketName {
    BucketName::new(name).expect("a valid bucket name")
}

pub fn key(k: &str) -> ObjectKey {
    ObjectKey::new(k.to_string()).expect("a valid key")
}

/// The bucket most cases use.
pub fn b() -> BucketName {
    bucket("conformance")
}

/// Striped data of body `id` with one shard on each of `nodes`.
pub fn striped(id: u128, nodes: &[u32]) -> ObjectData {
    ObjectData::Striped {
        id: ObjectId(id),
        ec: EcScheme::SINGLE,
        stripe_size: 4096,
        stripes: vec![StripeLoc {
            len: 100,
            shards: nodes
                .iter()
                .map(|n| ShardLoc {
                    node: NodeId(*n),
                    len: 100,
                    crc32c: 7,
                })
                .collect(),
        }],
    }
}

/// The shards of [`striped`]`(id, nodes)`.
pub fn shards_of(id: u128, nodes: &[u32]) -> Vec<(NodeId, ShardId)> {
    striped(id, nodes).shards()
}

/// An object record with `etag` and data.
pub fn object(etag: &str, data: ObjectData) -> ObjectRecord {
    ObjectRecord {
        size: 100,
        etag: etag.into(),
        last_modified_ms: 1_000,
        content_type: Some("text/plain".into()),
        headers: BTreeMap::from([("cache-control".to_string(), "no-cache".to_string())]),
        user_meta: BTreeMap::from([("colour".to_string(), "blue".to_string())]),
        checksum: None,
        data,
        version_id: None,
        tags: Default::default(),
        acl: None,
        upload_id: None,
    }
}

/// A small inline object.
pub fn inline(etag: &str) -> ObjectRecord {
    object(etag, ObjectData::Inline(b"hello".to_vec()))
}

/// `rec` carrying version id `v`.
pub fn versioned(mut rec: ObjectRecord, v: &str) -> ObjectRecord {
    rec.version_id = Some(v.into());
    rec
}

pub async fn create_bucket(s: &dyn MetadataStore, name: &BucketName) -> Result<()> {
    s.apply(Command::CreateBucket(BucketRecord {
        name: name.clone(),
        created_ms: 1,
        owner: "OWNER".into(),
    }))
    .await
    .map(|_| ())
}

/// Creates [`b`] and returns it.
pub async fn with_bucket(s: &dyn MetadataStore) -> Result<BucketName> {
    create_bucket(s, &b()).await?;
    Ok(b())
}

pub async fn put_if(
    s: &dyn MetadataStore,
    bucket: &BucketName,
    k: &str,
    record: ObjectRecord,
    condition: WriteCondition,
) -> Result<CommandOutput> {
    s.apply(Command::PutObject {
        bucket: bucket.clone(),
        key: key(k),
        record,
        condition,
    })
    .await
}

pub async fn put(
    s: &dyn MetadataStore,
    bucket: &BucketName,
    k: &str,
    record: ObjectRecord,
) -> Result<CommandOutput> {
    put_if(s, bucket, k, record, WriteCondition::Always).await
}

pub async fn delete(
    s: &dyn MetadataStore,
    bucket: &BucketName,
    k: &str,
    marker: &str,
) -> Result<CommandOutput> {
    s.apply(Command::DeleteObject {
        bucket: bucket.clone(),
        key: key(k),
        marker_version_id: marker.into(),
        marker_ms: 2_000,
    })
    .await
}

pub async fn set_versioning(
    s: &dyn MetadataStore,
    bucket: &BucketName,
    v: Option<&str>,
) -> Result<CommandOutput> {
    s.apply(Command::SetBucketConfig {
        bucket: bucket.clone(),
        kind: BucketConfigKind::Versioning,
        value: v.map(|v| v.as_bytes().to_vec()),
    })
    .await
}

/// Every shard queued for GC, in queue order.
pub async fn gc_shards(s: &dyn MetadataStore) -> Result<Vec<(NodeId, ShardId)>> {
    Ok(s.gc_pending(usize::MAX)
        .await?
        .into_iter()
        .flat_map(|(_, e)| e.shards)
        .collect())
}

/// A listing's names (common prefixes with their delimiter).
pub async fn list_names(
    s: &dyn MetadataStore,
    bucket: &BucketName,
    q: ListQuery,
) -> Result<(Vec<String>, bool)> {
    let page = s.list_objects(bucket, &q).await?;
    Ok((
        page.entries.iter().map(|e| e.name().to_string()).collect(),
        page.is_truncated,
    ))
}

/// Whether a listing entry is an object (not a common prefix).
pub fn is_object<V>(e: &ListEntry<V>) -> bool {
    matches!(e, ListEntry::Object(..))
}

pub fn upload(id: &str) -> UploadRecord {
    UploadRecord {
        upload_id: id.into(),
        initiated_ms: 10,
        owner: "OWNER".into(),
        content_type: Some("video/mp4".into()),
        headers: Default::default(),
        user_meta: BTreeMap::from([("m".to_string(), "1".to_string())]),
        checksum_algorithm: None,
        checksum_type: None,
        tags: BTreeMap::from([("t".to_string(), "v".to_string())]),
        acl: None,
    }
}

/// Part `n` of `size` bytes whose ETag is the hex MD5 `etag` (32 hex digits).
pub fn part(n: u32, size: u64, etag: &str, data: ObjectData) -> PartRecord {
    PartRecord {
        part_number: n,
        size,
        etag: etag.into(),
        last_modified_ms: 20,
        checksum: None,
        data,
    }
}

/// A hex MD5-like ETag made of one repeated digit.
pub fn md5ish(digit: char) -> String {
    std::iter::repeat_n(digit, 32).collect()
}

pub async fn create_upload(
    s: &dyn MetadataStore,
    bucket: &BucketName,
    k: &str,
    id: &str,
) -> Result<CommandOutput> {
    s.apply(Command::CreateUpload {
        bucket: bucket.clone(),
        key: key(k),
        upload: upload(id),
    })
    .await
}

pub async fn put_part(
    s: &dyn MetadataStore,
    bucket: &BucketName,
    k: &str,
    id: &str,
    p: PartRecord,
) -> Result<CommandOutput> {
    s.apply(Command::PutPart {
        bucket: bucket.clone(),
        key: key(k),
        upload_id: id.into(),
        part: p,
    })
    .await
}
