//! S3 object semantics over the data path: what a PutObject, CopyObject, GetObject lookup,
//! DeleteObject, tagging or ACL change, multipart upload, listing or bucket operation does to
//! storage and metadata. The S3 front end (`cairn-api`) parses and authorizes requests and
//! renders answers; everything that reads or changes metadata goes through here.
//!
//! Inputs are plain values (names, records, condition, body streams), never HTTP types.
//!
//! Invariant, kept by [`ObjectService::commit_written`], the one two-phase write: a body is
//! written first, its record assembled and committed second; a commit that definitely
//! failed discards the body's shards, one whose outcome is unknown keeps them (it may have
//! taken effect; the orphan scrub removes them later if nothing refers to them).

use std::future::Future;

use bytes::Bytes;
use cairn_metadata::{
    object_lock::Retention, Command, CommandOutput, Deletion, ObjectAcl, ObjectRecord, TagSet,
    VersionSel,
};
use cairn_types::clock::now_ms;
use cairn_types::{BucketName, ObjectKey};
use futures::{Stream, StreamExt};

use crate::{ObjectService, ObjectsError, PutError, WrittenBody};

mod buckets;
mod complete;
mod copy;
mod multipart;
mod put;

pub use buckets::{private_acl, BucketCreated, BucketListing};
pub use complete::{crc_of, CompleteUpload, ListedPart, COMPOSITE, FULL_OBJECT};
pub use copy::CopyObject;
pub use multipart::{NewUpload, PartTarget};
pub use put::PutObject;

/// What a new object carries besides its body and ACL: the content type, the stored
/// response headers (`Cache-Control`, `Content-Disposition`…) and the user metadata
/// (`x-amz-meta-*`, names without the prefix).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectMetadata {
    pub content_type: Option<String>,
    pub headers: std::collections::BTreeMap<String, String>,
    pub user_meta: std::collections::BTreeMap<String, String>,
}

impl ObjectMetadata {
    /// The storage class the object is written in (see [`crate::class_of`]).
    pub fn storage_class(&self) -> &str {
        crate::class_of(&self.headers)
    }

    /// The record of a new object version made of the written body `w`, stamped now with a
    /// fresh version id.
    pub(crate) fn into_record(
        self,
        w: &crate::WrittenBody,
        checksum: Option<cairn_metadata::StoredChecksum>,
        tags: cairn_metadata::TagSet,
        acl: cairn_metadata::ObjectAcl,
    ) -> ObjectRecord {
        let now = cairn_types::clock::now_ms();
        ObjectRecord {
            size: w.size,
            etag: w.md5_hex.clone(),
            last_modified_ms: now,
            content_type: self.content_type,
            headers: self.headers,
            user_meta: self.user_meta,
            checksum,
            data: w.data.clone(),
            version_id: Some(new_version_id(now)),
            tags,
            acl: Some(acl),
            upload_id: None,
        }
    }
}

/// An object version a lookup found, with the version id to answer with.
#[derive(Debug, Clone)]
pub struct FoundVersion {
    pub record: ObjectRecord,
    pub version_id: Option<String>,
}

/// A new version id: the time in milliseconds (so ids of one key roughly sort by age when
/// read) and 80 random bits, 32 lowercase hex digits.
pub fn new_version_id(now_ms: i64) -> String {
    let rand = uuid::Uuid::new_v4().simple().to_string();
    format!("{:012x}{}", now_ms.max(0), &rand[..20])
}

/// A new upload id: the initiation time (so that ids of one key sort in initiation order)
/// and 128 random bits, in lowercase hex.
pub fn new_upload_id(now_ms: i64) -> String {
    format!("{:012x}{}", now_ms.max(0), uuid::Uuid::new_v4().simple())
}

/// A write error whose body error is already an objects error.
pub(crate) fn flatten(e: PutError<ObjectsError>) -> ObjectsError {
    match e {
        PutError::Body(e) | PutError::Store(e) => e,
    }
}

impl ObjectService {
    /// The two-phase write, the only one: streams `body` into storage in `ec`, protected as
    /// `prot` asks, then
    /// [`Self::commit_written`].
    pub(crate) async fn write_and_commit<S, E, C, T, Fut>(
        &self,
        body: S,
        ec: cairn_types::EcScheme,
        prot: &crate::Protection,
        check: impl FnOnce(&WrittenBody) -> Result<C, ObjectsError>,
        commit: impl FnOnce(&WrittenBody, C) -> Fut,
    ) -> Result<T, PutError<E>>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        Fut: Future<Output = Result<T, ObjectsError>>,
    {
        let written = self.write_body_protected(body, ec, prot).await?;
        self.commit_written(written, check, commit)
            .await
            .map_err(PutError::Store)
    }

    /// Second phase of a write: `check` may refuse what was written (the shards are
    /// discarded); `commit` assembles the record and commits it. A commit that definitely
    /// failed discards the shards; one whose outcome is unknown
    /// ([`ObjectsError::outcome_unknown`]) keeps them, since it may have taken effect. The
    /// body counts as in flight until this returns.
    pub(crate) async fn commit_written<C, T, Fut>(
        &self,
        written: WrittenBody,
        check: impl FnOnce(&WrittenBody) -> Result<C, ObjectsError>,
        commit: impl FnOnce(&WrittenBody, C) -> Fut,
    ) -> Result<T, ObjectsError>
    where
        Fut: Future<Output = Result<T, ObjectsError>>,
    {
        let checked = match check(&written) {
            Ok(c) => c,
            Err(e) => {
                self.discard(written).await;
                return Err(e);
            }
        };
        match commit(&written, checked).await {
            Ok(out) => Ok(out),
            Err(e) => {
                if !e.outcome_unknown() {
                    self.discard(written).await;
                }
                Err(e)
            }
        }
    }

    /// The object version `sel` of `key`, and the version id to answer with. Absent is
    /// [`ObjectsError::NoSuchKey`] (naming the delete marker when the newest entry is one)
    /// or [`ObjectsError::NoSuchVersion`]; a delete marker named by id is
    /// [`ObjectsError::IsDeleteMarker`].
    pub async fn object_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        sel: &VersionSel,
    ) -> Result<FoundVersion, ObjectsError> {
        if *sel == VersionSel::Latest {
            if let Some(record) = self.meta.get_object(bucket, key).await? {
                let version_id = record.version_id.clone();
                return Ok(FoundVersion { record, version_id });
            }
            let marker = self
                .meta
                .get_version(bucket, key, sel)
                .await?
                .filter(|v| v.is_delete_marker())
                .map(|v| v.id_str().to_string());
            return Err(ObjectsError::NoSuchKey {
                key: key.as_str().to_string(),
                delete_marker: marker,
            });
        }
        let Some(v) = self.meta.get_version(bucket, key, sel).await? else {
            let id = match sel {
                VersionSel::Id(Some(id)) => id.clone(),
                _ => "null".to_string(),
            };
            return Err(ObjectsError::NoSuchVersion {
                key: key.as_str().to_string(),
                version_id: id,
            });
        };
        let id = v.id_str().to_string();
        match v.object {
            Some(record) => Ok(FoundVersion {
                record,
                version_id: Some(id),
            }),
            None => Err(ObjectsError::IsDeleteMarker { version_id: id }),
        }
    }

    /// Deletes `sel` of `key`: the current object (an unversioned bucket loses it, a
    /// versioned one gains a delete marker) or one version for good, unless Object Lock
    /// protects it (`bypass_governance`: GOVERNANCE retention yields). Returns what happened
    /// and the version id to report (the marker created, or the version named).
    pub async fn delete_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        sel: VersionSel,
        bypass_governance: bool,
    ) -> Result<(Deletion, Option<String>), ObjectsError> {
        match sel {
            VersionSel::Latest => {
                let now = now_ms();
                let d = self.delete(bucket, key, new_version_id(now), now).await?;
                let id = d
                    .delete_marker
                    .then(|| d.version_id.clone().unwrap_or_else(|| "null".into()));
                Ok((d, id))
            }
            VersionSel::Id(id) => {
                let shown = id.clone().unwrap_or_else(|| "null".into());
                let d = self
                    .delete_version(bucket, key, id, bypass_governance)
                    .await?;
                Ok((d, Some(shown)))
            }
        }
    }

    /// Replaces the tags of version `sel` of `key`; returns the version id to report (`null`
    /// when the request named the null version).
    pub async fn set_object_tags(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        sel: VersionSel,
        tags: TagSet,
    ) -> Result<Option<String>, ObjectsError> {
        let out = self
            .meta
            .apply(Command::SetObjectTags {
                bucket: bucket.clone(),
                key: key.clone(),
                version: sel.clone(),
                tags,
            })
            .await?;
        let CommandOutput::Tagged(id) = out else {
            return Err(unexpected("SetObjectTags", &out));
        };
        Ok(id.or_else(|| (sel == VersionSel::Id(None)).then(|| "null".to_string())))
    }

    /// Sets the ACL of version `sel` of `key` (`Latest`: the version `current` is), provided
    /// that version is still `current` (same ETag and time; otherwise a conflict). Returns
    /// the version id to report.
    pub async fn set_object_acl(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        sel: VersionSel,
        acl: ObjectAcl,
        current: &ObjectRecord,
    ) -> Result<Option<String>, ObjectsError> {
        let sel = match sel {
            VersionSel::Latest => VersionSel::Id(current.version_id.clone()),
            named => named,
        };
        let out = self
            .meta
            .apply(Command::SetObjectAclIfUnchanged {
                bucket: bucket.clone(),
                key: key.clone(),
                version: sel,
                acl,
                etag: current.etag.clone(),
                last_modified_ms: current.last_modified_ms,
            })
            .await?;
        let CommandOutput::Tagged(id) = out else {
            return Err(unexpected("SetObjectAclIfUnchanged", &out));
        };
        Ok(id.or_else(|| current.version_id.clone()))
    }
}

impl ObjectService {
    /// Sets (`Some`) or removes the retention of version `sel` of `key` (Object Lock's rules
    /// decide in the state machine); returns the version id.
    pub async fn set_object_retention(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        sel: VersionSel,
        retention: Option<Retention>,
        bypass_governance: bool,
    ) -> Result<Option<String>, ObjectsError> {
        let out = self
            .meta
            .apply(Command::SetObjectRetention {
                bucket: bucket.clone(),
                key: key.clone(),
                version: sel,
                retention,
                now_ms: now_ms(),
                bypass_governance,
            })
            .await?;
        let CommandOutput::Tagged(id) = out else {
            return Err(unexpected("SetObjectRetention", &out));
        };
        Ok(id)
    }

    /// Puts on or takes off the legal hold of version `sel` of `key`; returns its id.
    pub async fn set_object_legal_hold(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        sel: VersionSel,
        on: bool,
    ) -> Result<Option<String>, ObjectsError> {
        let out = self
            .meta
            .apply(Command::SetObjectLegalHold {
                bucket: bucket.clone(),
                key: key.clone(),
                version: sel,
                on,
            })
            .await?;
        let CommandOutput::Tagged(id) = out else {
            return Err(unexpected("SetObjectLegalHold", &out));
        };
        Ok(id)
    }
}

/// A command answered with an output of another kind.
pub(crate) fn unexpected(command: &str, out: &CommandOutput) -> ObjectsError {
    ObjectsError::Inconsistent(format!("{command} answered {out:?}"))
}

/// Reads `body` to its end without storing it (so that a refused request's client reads the
/// answer instead of a reset in the middle of its upload); stops at the first body error.
pub(crate) async fn drain<S, E>(body: S)
where
    S: Stream<Item = Result<Bytes, E>> + Send,
{
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        if chunk.is_err() {
            break;
        }
    }
}
