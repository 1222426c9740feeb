//! Multipart uploads in the state machine: starting, recording parts, completing and aborting
//! an upload (called from [`crate::command::apply`]), and listing uploads as a range scan.
//!
//! Rules: a part replaced by a re-upload, every part of an aborted upload, and the parts a
//! completion does not name all have their shards collected into the command's GC entry, so a
//! crash between commands never leaks shards. Completion validates, in order: the upload exists
//! (`NoSuchUpload`), part numbers strictly ascend (`InvalidPartOrder`), each named part exists
//! with the named ETag and checksum (`InvalidPart`), every part but the last is at least
//! [`MIN_PART_SIZE`] (`EntityTooSmall`). The object's ETag is the hex MD5 of the concatenated
//! binary part MD5s, a dash, and the part count. Completing an upload that is gone again,
//! with the same parts, answers with the object it made (if it is still the key's current
//! object) instead of `NoSuchUpload`, as S3 does.

use std::collections::BTreeMap;

use cairn_types::{BucketName, NodeId, ObjectKey, ShardId};
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use crate::fold::{self, Item, KeyCursor, Spec, Visitor};
use crate::keys::{self, Cf};
use crate::records::{
    decode, encode, ObjectData, ObjectRecord, PartData, PartRecord, StoredChecksum, UploadRecord,
};
use crate::state::{del, put, StateView, Write};
use crate::MetadataError;

/// Every part but the last must be at least this large (as S3: 5 MiB).
pub const MIN_PART_SIZE: u64 = 5 << 20;
/// Part numbers are `1..=MAX_PART_NUMBER`.
pub const MAX_PART_NUMBER: u32 = 10_000;

type DeadShards = Vec<(NodeId, ShardId)>;

fn get_upload(
    view: &dyn StateView,
    bucket: &BucketName,
    key: &ObjectKey,
    upload_id: &str,
) -> Result<UploadRecord, MetadataError> {
    match view.get(Cf::Uploads, &keys::upload(bucket, key.as_str(), upload_id))? {
        Some(v) => decode(&v),
        None => Err(MetadataError::NoSuchUpload),
    }
}

pub(crate) fn create(
    view: &dyn StateView,
    bucket: &BucketName,
    key: &ObjectKey,
    upload: &UploadRecord,
    writes: &mut Vec<Write>,
) -> Result<(), MetadataError> {
    if upload.upload_id.is_empty() || upload.upload_id.bytes().any(|b| b < 0x20) {
        return Err(MetadataError::InvalidArgument("invalid upload id".into()));
    }
    let k = keys::upload(bucket, key.as_str(), &upload.upload_id);
    if view.get(Cf::Uploads, &k)?.is_some() {
        return Err(MetadataError::UploadExists);
    }
    writes.push(put(Cf::Uploads, k, encode(upload)));
    Ok(())
}

pub(crate) fn put_part(
    view: &dyn StateView,
    bucket: &BucketName,
    key: &ObjectKey,
    upload_id: &str,
    part: &PartRecord,
    writes: &mut Vec<Write>,
    dead: &mut DeadShards,
) -> Result<(), MetadataError> {
    get_upload(view, bucket, key, upload_id)?;
    if !(1..=MAX_PART_NUMBER).contains(&part.part_number) {
        return Err(MetadataError::InvalidArgument(format!(
            "part number must be an integer between 1 and {MAX_PART_NUMBER}"
        )));
    }
    if matches!(part.data, ObjectData::Parts(_)) {
        return Err(MetadataError::InvalidArgument(
            "a part cannot itself have parts".into(),
        ));
    }
    let k = keys::part(bucket, key.as_str(), upload_id, part.part_number);
    if let Some(old) = view.get(Cf::Parts, &k)? {
        let old: PartRecord = decode(&old)?;
        dead.extend(old.data.shards());
    }
    writes.push(put(Cf::Parts, k, encode(part)));
    Ok(())
}

/// A part as CompleteMultipartUpload names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletePart {
    pub part_number: u32,
    /// Unquoted ETag; must equal the stored part's.
    pub etag: String,
    /// When given, the stored part's checksum value must be this one (the caller computed the
    /// object checksum from it).
    pub checksum: Option<String>,
}

/// What CompleteMultipartUpload asks for.
pub(crate) struct Completion<'a> {
    pub bucket: &'a BucketName,
    pub key: &'a ObjectKey,
    pub upload_id: &'a str,
    pub parts: &'a [CompletePart],
    pub last_modified_ms: i64,
    pub checksum: Option<StoredChecksum>,
}

/// Validates a completion and returns the object record it creates; removes the upload and
/// all its parts, collecting the shards of parts not named into `dead`.
pub(crate) fn complete(
    view: &dyn StateView,
    c: Completion<'_>,
    writes: &mut Vec<Write>,
    dead: &mut DeadShards,
) -> Result<ObjectRecord, MetadataError> {
    let upload = get_upload(view, c.bucket, c.key, c.upload_id)?;
    if c.parts.is_empty() {
        return Err(MetadataError::InvalidArgument(
            "a completion must name at least one part".into(),
        ));
    }
    if c.parts
        .windows(2)
        .any(|w| w[0].part_number >= w[1].part_number)
    {
        return Err(MetadataError::InvalidPartOrder);
    }
    let prefix = keys::parts_prefix(c.bucket, c.key.as_str(), c.upload_id);
    let mut stored: BTreeMap<u32, PartRecord> = BTreeMap::new();
    for (k, v) in view.scan_prefix(Cf::Parts, &prefix)? {
        let rec: PartRecord = decode(&v)?;
        stored.insert(rec.part_number, rec);
        writes.push(del(Cf::Parts, k));
    }
    let mut md5 = Md5::new();
    let mut chosen = Vec::with_capacity(c.parts.len());
    let mut size = 0u64;
    for (i, p) in c.parts.iter().enumerate() {
        let invalid =
            |why: &str| MetadataError::InvalidPart(format!("part {}: {why}", p.part_number));
        let Some(rec) = stored.remove(&p.part_number) else {
            return Err(invalid("it was not uploaded"));
        };
        if rec.etag != p.etag {
            return Err(invalid("its ETag does not match"));
        }
        if let Some(want) = &p.checksum {
            if rec.checksum.as_ref().map(|c| &c.value) != Some(want) {
                return Err(invalid("its checksum does not match"));
            }
        }
        if i + 1 < c.parts.len() && rec.size < MIN_PART_SIZE {
            return Err(MetadataError::EntityTooSmall {
                part_number: p.part_number,
            });
        }
        let raw = hex::decode(&rec.etag)
            .map_err(|_| MetadataError::Corrupt(format!("part ETag {:?} is not hex", rec.etag)))?;
        md5.update(&raw);
        size += rec.size;
        chosen.push(PartData {
            part_number: rec.part_number,
            size: rec.size,
            etag: rec.etag,
            checksum: rec.checksum,
            data: rec.data,
        });
    }
    for rest in stored.into_values() {
        dead.extend(rest.data.shards());
    }
    writes.push(del(
        Cf::Uploads,
        keys::upload(c.bucket, c.key.as_str(), c.upload_id),
    ));
    Ok(ObjectRecord {
        size,
        etag: format!("{}-{}", hex::encode(md5.finalize()), chosen.len()),
        last_modified_ms: c.last_modified_ms,
        content_type: upload.content_type,
        // The upload's own bookkeeping (its encryption) is not the object's.
        headers: upload
            .headers
            .into_iter()
            .filter(|(k, _)| k != crate::records::UPLOAD_SSE_HEADER)
            .collect(),
        user_meta: upload.user_meta,
        checksum: c.checksum,
        data: ObjectData::Parts(chosen),
        version_id: None,
        tags: upload.tags,
        acl: upload.acl,
        upload_id: Some(c.upload_id.to_string()),
    })
}

/// The current object at the key when it is what completing `upload_id` with exactly
/// `parts` made: a repeated CompleteMultipartUpload answers with it instead of
/// `NoSuchUpload`.
pub(crate) fn already_completed(
    view: &dyn StateView,
    bucket: &BucketName,
    key: &ObjectKey,
    upload_id: &str,
    parts: &[CompletePart],
) -> Result<Option<ObjectRecord>, MetadataError> {
    let Some(cur) = view.get(Cf::Objects, &keys::object(bucket, key.as_str()))? else {
        return Ok(None);
    };
    let cur: ObjectRecord = decode(&cur)?;
    if cur.upload_id.as_deref() != Some(upload_id) {
        return Ok(None);
    }
    let ObjectData::Parts(made) = &cur.data else {
        return Ok(None);
    };
    let same = made.len() == parts.len()
        && made
            .iter()
            .zip(parts)
            .all(|(m, p)| m.part_number == p.part_number && m.etag == p.etag);
    Ok(same.then_some(cur))
}

pub(crate) fn abort(
    view: &dyn StateView,
    bucket: &BucketName,
    key: &ObjectKey,
    upload_id: &str,
    writes: &mut Vec<Write>,
    dead: &mut DeadShards,
) -> Result<(), MetadataError> {
    get_upload(view, bucket, key, upload_id)?;
    let prefix = keys::parts_prefix(bucket, key.as_str(), upload_id);
    drop_parts(view, &prefix, writes, dead)?;
    writes.push(del(
        Cf::Uploads,
        keys::upload(bucket, key.as_str(), upload_id),
    ));
    Ok(())
}

/// Aborts every upload in `bucket` (the bucket is being deleted).
pub(crate) fn abort_all(
    view: &dyn StateView,
    bucket: &BucketName,
    writes: &mut Vec<Write>,
    dead: &mut DeadShards,
) -> Result<(), MetadataError> {
    let prefix = keys::object_prefix(bucket);
    drop_parts(view, &prefix, writes, dead)?;
    for (k, _) in view.scan_prefix(Cf::Uploads, &prefix)? {
        writes.push(del(Cf::Uploads, k));
    }
    Ok(())
}

fn drop_parts(
    view: &dyn StateView,
    prefix: &[u8],
    writes: &mut Vec<Write>,
    dead: &mut DeadShards,
) -> Result<(), MetadataError> {
    for (k, v) in view.scan_prefix(Cf::Parts, prefix)? {
        let rec: PartRecord = decode(&v)?;
        dead.extend(rec.data.shards());
        writes.push(del(Cf::Parts, k));
    }
    Ok(())
}

/// What ListMultipartUploads asks for.
#[derive(Debug, Clone, Default)]
pub struct UploadQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    /// Uploads of keys after this one (or, with `upload_id_marker`, of this key with a
    /// greater upload id, then of later keys).
    pub key_marker: Option<String>,
    pub upload_id_marker: Option<String>,
    pub max_uploads: usize,
}

/// One listed entry: an upload (its key and record) or a common prefix.
#[derive(Debug, Clone, PartialEq)]
pub enum UploadEntry {
    Upload(String, Box<UploadRecord>),
    Prefix(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct UploadPage {
    pub entries: Vec<UploadEntry>,
    pub is_truncated: bool,
}

/// Lists uploads over `cursor`, whose keys are `key 0x00 upload-id` (bucket prefix
/// stripped). The delimiter is looked for in the object key only.
pub fn list_uploads(
    cursor: &mut dyn KeyCursor,
    q: &UploadQuery,
) -> Result<UploadPage, MetadataError> {
    let prefix = q.prefix.as_bytes();
    let marker = q.key_marker.as_deref().filter(|m| !m.is_empty());
    // Exclusive lower bound on stored keys. Upload ids are hex, below 0xFF.
    let after: Option<Vec<u8>> = marker.map(|m| {
        let mut a = m.as_bytes().to_vec();
        a.push(0);
        match q.upload_id_marker.as_deref().filter(|u| !u.is_empty()) {
            Some(u) => a.extend_from_slice(u.as_bytes()),
            None => a.push(0xFF),
        }
        a
    });
    let start = match &after {
        Some(a) if a.as_slice() > prefix => a.as_slice(),
        _ => prefix,
    };
    let spec = Spec {
        prefix,
        delimiter: q.delimiter.as_deref().map(str::as_bytes),
        start,
        prefix_marker: marker.map(str::as_bytes),
        max: q.max_uploads,
    };
    let mut visitor = Uploads {
        after: after.as_deref(),
    };
    let folded = fold::fold(cursor, &spec, &mut visitor)?;
    Ok(UploadPage {
        entries: folded
            .items
            .into_iter()
            .map(|i| match i {
                Item::Entry((k, rec)) => UploadEntry::Upload(k, rec),
                Item::Prefix(p) => UploadEntry::Prefix(p),
            })
            .collect(),
        is_truncated: folded.truncated,
    })
}

/// Uploads: stored keys `key 0x00 upload-id`, after the (key, upload id) marker.
struct Uploads<'q> {
    after: Option<&'q [u8]>,
}

impl Visitor for Uploads<'_> {
    type Out = (String, Box<UploadRecord>);

    fn key<'k>(&self, raw: &'k [u8]) -> Result<&'k [u8], MetadataError> {
        let split = raw
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| MetadataError::Corrupt("upload key without separator".into()))?;
        Ok(&raw[..split])
    }

    fn skip(&mut self, raw: &[u8], _key: &[u8], _value: &[u8]) -> Result<bool, MetadataError> {
        Ok(self.after.is_some_and(|a| raw <= a))
    }

    fn entry(&mut self, key: &[u8], value: &[u8]) -> Result<Self::Out, MetadataError> {
        Ok((fold::utf8(key.to_vec())?, Box::new(decode(value)?)))
    }
}

#[cfg(test)]
mod tests;
