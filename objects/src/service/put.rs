//! PutObject: the early refusal of a write condition that cannot hold, the body, the
//! record (metadata, tags, ACL, checksum, a new version id) and its conditional commit.

use bytes::Bytes;
use cairn_metadata::{ObjectAcl, ObjectRecord, StoredChecksum, TagSet, WriteCondition};
use cairn_types::{BucketName, ObjectKey};
use futures::Stream;

use super::{drain, ObjectMetadata};
use crate::{ObjectService, ObjectsError, PutError, WrittenBody};

/// A PutObject.
#[derive(Debug, Clone)]
pub struct PutObject {
    pub bucket: BucketName,
    pub key: ObjectKey,
    pub metadata: ObjectMetadata,
    pub tags: TagSet,
    /// The new object's owner and grants.
    pub acl: ObjectAcl,
    /// Checked early (before the body is stored) and again in the commit.
    pub condition: WriteCondition,
    /// The body's declared length; a body of another length is refused
    /// ([`ObjectsError::IncompleteBody`]). `None`: taken as it comes.
    pub size: Option<u64>,
    /// Encryption at rest (from the request, the bucket's default or the server's).
    pub protection: crate::Protection,
}

/// Refuses a body whose length is not the declared one.
pub(crate) fn check_size(declared: Option<u64>, w: &WrittenBody) -> Result<(), ObjectsError> {
    match declared {
        Some(d) if d != w.size => Err(ObjectsError::IncompleteBody {
            declared: d,
            received: w.size,
        }),
        _ => Ok(()),
    }
}

impl ObjectService {
    /// Stores `body` as a new version of `put.key`. `checksum` is asked once the body has
    /// been read (the verified checksum the client sent, if any). A write condition the
    /// current object already fails is refused before anything is stored (the body is read
    /// and dropped); the commit checks it again, atomically.
    pub async fn put_object<S, E>(
        &self,
        put: PutObject,
        body: S,
        checksum: impl FnOnce() -> Option<StoredChecksum>,
    ) -> Result<ObjectRecord, PutError<E>>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
    {
        let PutObject {
            bucket,
            key,
            metadata,
            tags,
            acl,
            condition,
            size,
            protection,
        } = put;
        let ec = self
            .class_scheme(Some(metadata.storage_class()))
            .await
            .map_err(PutError::Store)?;
        if condition != WriteCondition::Always {
            let current = self
                .meta
                .get_object(&bucket, &key)
                .await
                .map_err(ObjectsError::from)?;
            if let Err(e) = condition.check(current.as_ref()) {
                drain(body).await;
                return Err(PutError::Store(e.into()));
            }
        }
        self.write_and_commit(
            body,
            ec,
            &protection,
            |w| {
                check_size(size, w)?;
                Ok(checksum())
            },
            |w, checksum| {
                let record = metadata.into_record(w, checksum, tags, acl);
                async move { self.commit_if(&bucket, &key, record, condition).await }
            },
        )
        .await
    }
}
