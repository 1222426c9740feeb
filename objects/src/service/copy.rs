//! CopyObject and the copied bodies of UploadPartCopy: the source streams through the data
//! path's reader into a new body (never whole in memory), with a checksum computed on the
//! way. A copy is a new single-body object: its ETag is the MD5 of its bytes, whatever the
//! source was.

use std::ops::Range;
use std::sync::{Arc, Mutex};

use cairn_metadata::object_lock::ObjectLock;
use cairn_metadata::{ObjectAcl, ObjectRecord, StoredChecksum, TagSet};
use cairn_sigv4::{ChecksumAlgorithm, Checksummer};
use cairn_types::{BucketName, ObjectKey};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};

use super::{flatten, ObjectMetadata};
use crate::{ObjectService, ObjectsError};

/// A CopyObject into `bucket/key`.
#[derive(Debug, Clone)]
pub struct CopyObject {
    pub bucket: BucketName,
    pub key: ObjectKey,
    /// The source version (resolved, and its read permission checked, by the caller).
    pub source: ObjectRecord,
    /// New metadata (`REPLACE`); `None` copies the source's.
    pub metadata: Option<ObjectMetadata>,
    /// New tags (`REPLACE`); `None` copies the source's.
    pub tags: Option<TagSet>,
    /// The copy's owner and grants (never the source's).
    pub acl: ObjectAcl,
    /// The checksum to compute; `None`: the source's algorithm, if it has one.
    pub checksum: Option<ChecksumAlgorithm>,
    /// The copy's Object Lock (from the request or the bucket's default; never the
    /// source's).
    pub lock: ObjectLock,
    /// The copy's storage class (from the request or the bucket's default; never the
    /// source's, as S3).
    pub storage_class: String,
    /// The copy's encryption at rest (from the request or the bucket's default; never the
    /// source's, as S3).
    pub protection: crate::Protection,
    /// The key the source is encrypted with, when a customer provided it.
    pub source_key: Option<std::sync::Arc<crate::CustomerKey>>,
}

/// A checksum computed over a body while it streams.
#[derive(Clone, Default)]
pub(crate) struct Digest(Option<Arc<Mutex<Checksummer>>>);

impl Digest {
    pub(crate) fn new(alg: Option<ChecksumAlgorithm>) -> Self {
        Digest(alg.map(|a| Arc::new(Mutex::new(Checksummer::new(a)))))
    }

    fn update(&self, data: &[u8]) {
        if let Some(s) = &self.0 {
            s.lock().unwrap_or_else(|e| e.into_inner()).update(data);
        }
    }

    /// The checksum of everything seen so far.
    pub(crate) fn finish(&self) -> Option<StoredChecksum> {
        let s = self.0.as_ref()?;
        let mut guard = s.lock().unwrap_or_else(|e| e.into_inner());
        let alg = guard.algorithm();
        let done = std::mem::replace(&mut *guard, Checksummer::new(alg));
        Some(StoredChecksum {
            algorithm: alg.name().to_string(),
            value: done.finalize(),
        })
    }
}

impl ObjectService {
    /// `range` of `src` as a body stream, feeding `digest` on the way.
    pub(crate) fn copy_stream(
        &self,
        src: &ObjectRecord,
        range: Range<u64>,
        source_key: Option<std::sync::Arc<crate::CustomerKey>>,
        digest: &Digest,
    ) -> BoxStream<'static, Result<bytes::Bytes, ObjectsError>> {
        let feed = digest.clone();
        self.read_with(src, range, source_key)
            .inspect_ok(move |b| feed.update(b))
            .boxed()
    }

    /// Copies `copy.source` into a new version of `copy.key`; returns the stored record.
    pub async fn copy_object(&self, copy: CopyObject) -> Result<ObjectRecord, ObjectsError> {
        let CopyObject {
            bucket,
            key,
            source,
            metadata,
            tags,
            acl,
            checksum,
            lock,
            storage_class,
            protection,
            source_key,
        } = copy;
        self.check_key(&source.data, source_key.as_deref())?;
        let algorithm = checksum.or_else(|| {
            source
                .checksum
                .as_ref()
                .and_then(|c| ChecksumAlgorithm::from_name(&c.algorithm))
        });
        let mut metadata = metadata.unwrap_or_else(|| ObjectMetadata {
            content_type: source.content_type.clone(),
            headers: source.headers.clone(),
            user_meta: source.user_meta.clone(),
        });
        lock.store(&mut metadata.headers);
        // The copy's class is the request's (or the bucket's default), never the source's.
        crate::set_class(&mut metadata.headers, &storage_class);
        let ec = self.class_scheme(Some(&storage_class)).await?;
        let tags = tags.unwrap_or_else(|| source.tags.clone());
        let digest = Digest::new(algorithm);
        let body = self.copy_stream(&source, 0..source.size, source_key, &digest);
        self.write_and_commit(
            body,
            ec,
            &protection,
            |_| Ok(digest.finish()),
            |w, checksum| {
                let record = metadata.into_record(w, checksum, tags, acl);
                async move { self.commit(&bucket, &key, record).await }
            },
        )
        .await
        .map_err(flatten)
    }
}
