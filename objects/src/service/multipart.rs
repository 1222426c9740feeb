//! Multipart uploads: creating one, its parts (streamed bodies or copies, each its own
//! inline or striped body, recorded by `PutPart` after the two-phase write), aborting it,
//! and listing parts and uploads. Completion is in `complete`.

use std::ops::Range;

use bytes::Bytes;
use cairn_metadata::{
    Command, ObjectAcl, ObjectRecord, PartRecord, StoredChecksum, TagSet, UploadPage, UploadQuery,
    UploadRecord,
};
use cairn_sigv4::ChecksumAlgorithm;
use cairn_types::clock::now_ms;
use cairn_types::{BucketName, ObjectKey};
use futures::Stream;

use super::copy::Digest;
use super::put::check_size;
use super::{flatten, new_upload_id, ObjectMetadata};
use crate::{ObjectService, ObjectsError, PutError, WrittenBody};

/// A CreateMultipartUpload.
#[derive(Debug, Clone)]
pub struct NewUpload {
    pub bucket: BucketName,
    pub key: ObjectKey,
    pub metadata: ObjectMetadata,
    pub tags: TagSet,
    /// The completed object's owner and grants (the initiator's).
    pub acl: ObjectAcl,
    /// The checksum every part carries.
    pub checksum_algorithm: Option<ChecksumAlgorithm>,
    /// `COMPOSITE` or `FULL_OBJECT`, with an algorithm.
    pub checksum_type: Option<String>,
    /// How every part is encrypted at rest (SSE-C: each part request gives the same key).
    pub protection: crate::Protection,
}

/// The part an UploadPart or UploadPartCopy writes.
#[derive(Debug, Clone)]
pub struct PartTarget {
    pub bucket: BucketName,
    pub key: ObjectKey,
    pub upload_id: String,
    pub part_number: u32,
    /// The customer-provided key the part request gave (SSE-C uploads need theirs).
    pub customer_key: Option<std::sync::Arc<crate::CustomerKey>>,
}

impl ObjectService {
    /// Starts a multipart upload; returns its record (with its new id).
    pub async fn create_upload(&self, u: NewUpload) -> Result<UploadRecord, ObjectsError> {
        // Its parts are written in its class's scheme: refuse a class without one now.
        self.class_scheme(Some(u.metadata.storage_class())).await?;
        // And with its protection: an SSE-KMS key that does not exist is refused now.
        self.check_protection(&u.protection).await?;
        let mut headers = u.metadata.headers;
        if let Some(mark) = u.protection.upload_mark()? {
            headers.insert(cairn_metadata::UPLOAD_SSE_HEADER.to_string(), mark);
        }
        let now = now_ms();
        let upload = UploadRecord {
            upload_id: new_upload_id(now),
            initiated_ms: now,
            owner: u.acl.owner.clone(),
            content_type: u.metadata.content_type,
            headers,
            user_meta: u.metadata.user_meta,
            checksum_algorithm: u.checksum_algorithm.map(|a| a.name().to_string()),
            checksum_type: u.checksum_type,
            tags: u.tags,
            acl: Some(u.acl),
        };
        self.meta
            .apply(Command::CreateUpload {
                bucket: u.bucket,
                key: u.key,
                upload: upload.clone(),
            })
            .await?;
        Ok(upload)
    }

    /// The upload `upload_id` of `key` (NoSuchBucket, or NoSuchUpload).
    pub async fn upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
    ) -> Result<UploadRecord, ObjectsError> {
        self.bucket(bucket).await?;
        self.meta
            .get_upload(bucket, key, upload_id)
            .await?
            .ok_or(ObjectsError::Metadata(
                cairn_metadata::MetadataError::NoSuchUpload,
            ))
    }

    /// Stores `body` (of declared length `size`) as a part of `upload`. `checksum` is asked
    /// once the body has been read; a part whose checksum is not of the upload's algorithm
    /// is refused.
    pub async fn put_part<S, E>(
        &self,
        target: PartTarget,
        upload: &UploadRecord,
        size: u64,
        body: S,
        checksum: impl FnOnce() -> Option<StoredChecksum>,
    ) -> Result<PartRecord, PutError<E>>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
    {
        let want = upload.checksum_algorithm.clone();
        let ec = self
            .class_scheme(Some(crate::class_of(&upload.headers)))
            .await
            .map_err(PutError::Store)?;
        let prot = crate::Protection::of_part(&upload.headers, target.customer_key.clone())
            .map_err(PutError::Store)?;
        self.write_and_commit(
            body,
            ec,
            &prot,
            |w| {
                check_size(Some(size), w)?;
                let got = checksum();
                if let (Some(want), Some(got)) = (&want, &got) {
                    if want.as_str() != got.algorithm {
                        return Err(ObjectsError::ChecksumTypeMismatch {
                            expected: want.clone(),
                            got: got.algorithm.clone(),
                        });
                    }
                }
                Ok(got)
            },
            |w, checksum| self.record_part(target, part_record(w, checksum)),
        )
        .await
    }

    /// Copies `range` of `source` (encrypted with `source_key`, when a customer's) into a
    /// part of `upload` (with the upload's checksum and encryption).
    pub async fn copy_part(
        &self,
        target: PartTarget,
        upload: &UploadRecord,
        source: &ObjectRecord,
        source_key: Option<std::sync::Arc<crate::CustomerKey>>,
        range: Range<u64>,
    ) -> Result<PartRecord, ObjectsError> {
        self.check_key(&source.data, source_key.as_deref())?;
        let prot = crate::Protection::of_part(&upload.headers, target.customer_key.clone())?;
        let alg = upload
            .checksum_algorithm
            .as_deref()
            .and_then(ChecksumAlgorithm::from_name);
        let digest = Digest::new(alg);
        let ec = self
            .class_scheme(Some(crate::class_of(&upload.headers)))
            .await?;
        let body = self.copy_stream(source, range, source_key, &digest);
        self.write_and_commit(
            body,
            ec,
            &prot,
            |_| Ok(digest.finish()),
            |w, checksum| self.record_part(target, part_record(w, checksum)),
        )
        .await
        .map_err(flatten)
    }

    /// Records a part (the commit of a part's two-phase write).
    async fn record_part(
        &self,
        target: PartTarget,
        part: PartRecord,
    ) -> Result<PartRecord, ObjectsError> {
        let part = PartRecord {
            part_number: target.part_number,
            ..part
        };
        self.apply_upload_command(Command::PutPart {
            bucket: target.bucket,
            key: target.key,
            upload_id: target.upload_id,
            part: part.clone(),
        })
        .await?;
        Ok(part)
    }

    /// Aborts an upload; its parts' shards go to GC.
    pub async fn abort_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
    ) -> Result<(), ObjectsError> {
        self.apply_upload_command(Command::AbortUpload {
            bucket: bucket.clone(),
            key: key.clone(),
            upload_id: upload_id.to_string(),
        })
        .await?;
        Ok(())
    }

    /// Up to `max` parts of an upload numbered above `after`, and whether more follow.
    pub async fn list_parts(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        after: u32,
        max: usize,
    ) -> Result<(Vec<PartRecord>, bool), ObjectsError> {
        Ok(self
            .meta
            .list_parts(bucket, key, upload_id, after, max)
            .await?)
    }

    /// A page of a bucket's uploads in progress.
    pub async fn list_uploads(
        &self,
        bucket: &BucketName,
        query: &UploadQuery,
    ) -> Result<UploadPage, ObjectsError> {
        Ok(self.meta.list_uploads(bucket, query).await?)
    }
}

/// The record of a written part (its number is set when it is recorded).
fn part_record(written: &WrittenBody, checksum: Option<StoredChecksum>) -> PartRecord {
    PartRecord {
        part_number: 0,
        size: written.size,
        etag: written.md5_hex.clone(),
        last_modified_ms: now_ms(),
        checksum,
        data: written.data.clone(),
    }
}
