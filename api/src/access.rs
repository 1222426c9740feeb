//! Who may do what. Every bucket belongs to the key that created it and every object to the
//! key (or anonymous request) that wrote it. Owners have full control of what they own; the
//! bucket owner also always keeps full control of the bucket itself (it can always fix its
//! ACL and delete what is in it). Everyone else — other keys and unsigned requests — gets
//! exactly what the grants of the bucket's or object's ACL give:
//!
//! | permission | on a bucket | on an object |
//! |---|---|---|
//! | READ | list objects, versions and uploads; HEAD the bucket | GET/HEAD it (any version), copy from it |
//! | WRITE | put, copy, upload and delete objects | (nothing, as on S3) |
//! | READ_ACP | GetBucketAcl | GetObjectAcl |
//! | WRITE_ACP | PutBucketAcl | PutObjectAcl |
//! | FULL_CONTROL | all of the above | all of the above |
//!
//! Every other bucket operation (configuration, tagging, versioning, deletion) is for the
//! bucket owner alone. AllUsers grants apply to everyone, AuthenticatedUsers grants to any
//! request signed with a known key. Without a grant the answer is AccessDenied.

use std::borrow::Cow;
use std::sync::Arc;

use axum::http::HeaderMap;
use cairn_metadata::{
    BucketRecord, Grant, Grantee, ObjectAcl, ObjectRecord, Permission, VersionSel, ANONYMOUS_OWNER,
};
use cairn_types::{BucketName, ObjectKey};

use crate::auth::Caller;
use crate::copy_source::{self, Source};
use crate::error::{S3Error, S3ErrorCode};
use crate::identity::{canonical_id, Directory};
use crate::lookup::{resolve, resolve_version};
use crate::op::{Access, Op};
use crate::query::Query;
use crate::{acl, ApiState};

/// Whether `grants` give `who` (`None`: anonymous) the permission `perm`.
pub fn grants_allow(grants: &[Grant], who: Option<&str>, perm: Permission) -> bool {
    grants.iter().any(|g| {
        (g.permission == perm || g.permission == Permission::FullControl)
            && match &g.grantee {
                Grantee::User(ak) => who == Some(ak.as_str()),
                Grantee::AllUsers => true,
                Grantee::AuthenticatedUsers => who.is_some(),
            }
    })
}

/// The bucket's record, or NoSuchBucket.
pub async fn load_bucket(st: &Arc<ApiState>, bucket: &BucketName) -> Result<BucketRecord, S3Error> {
    st.objects
        .bucket(bucket)
        .await
        .map_err(|e| S3Error::from(e).for_bucket(bucket.as_str()))
}

/// The bucket's ACL grants: the stored ones, or the owner's full control.
pub async fn bucket_grants(
    st: &Arc<ApiState>,
    bucket: &BucketRecord,
) -> Result<Vec<Grant>, S3Error> {
    Ok(st.objects.bucket_acl(bucket).await?)
}

/// Whether the caller owns the bucket: it is the key that created it, or the root key and
/// that key was deleted (a deleted key's buckets stay, and the operator manages them).
pub async fn is_bucket_owner(
    st: &Arc<ApiState>,
    caller: &Caller,
    bucket: &BucketRecord,
) -> Result<bool, S3Error> {
    let Some(ak) = caller.access_key.as_deref() else {
        return Ok(false);
    };
    if ak == bucket.owner {
        return Ok(true);
    }
    if !st.keys.is_root(ak) {
        return Ok(false);
    }
    Ok(st.objects.key_deleted(&bucket.owner).await?)
}

/// Whether the caller has `perm` on the bucket.
async fn bucket_allows(
    st: &Arc<ApiState>,
    caller: &Caller,
    bucket: &BucketRecord,
    perm: Permission,
) -> Result<bool, S3Error> {
    if is_bucket_owner(st, caller, bucket).await? {
        return Ok(true);
    }
    let grants = bucket_grants(st, bucket).await?;
    Ok(grants_allow(&grants, caller.access_key.as_deref(), perm))
}

fn denied(bucket: &BucketRecord) -> S3Error {
    S3Error::access_denied().with("BucketName", bucket.name.as_str())
}

/// An object version an operation addresses, resolved (from `versionId`) once, when its
/// permission was checked.
#[derive(Debug)]
pub struct Resolved {
    pub rec: ObjectRecord,
    /// The version id to answer with (`x-amz-version-id`).
    pub version_id: Option<String>,
}

/// A request whose operation's check has passed. Only [`authorize`] makes one, and every
/// handler takes one: no handler runs without its operation's check, and none decides
/// permissions itself. It carries what the check loaded (the bucket, the object version,
/// the copy source), so handlers act on exactly what was checked.
pub struct Authorized {
    op: Op,
    caller: Caller,
    bucket: Option<BucketRecord>,
    object: Option<Resolved>,
    source: Option<Source>,
}

impl Authorized {
    pub fn op(&self) -> Op {
        self.op
    }

    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// The bucket's record (every operation but ListBuckets, CreateBucket and a preflight
    /// has one).
    pub fn bucket(&self) -> Result<&BucketRecord, S3Error> {
        self.bucket
            .as_ref()
            .ok_or_else(|| missing(self.op, "a bucket"))
    }

    /// The bucket's record, if the operation has one.
    pub fn bucket_record(&self) -> Option<&BucketRecord> {
        self.bucket.as_ref()
    }

    /// The object version checked for an object-permission operation.
    pub fn object(&self) -> Result<&Resolved, S3Error> {
        self.object
            .as_ref()
            .ok_or_else(|| missing(self.op, "an object"))
    }

    /// The copy source checked for CopyObject and UploadPartCopy.
    pub fn source(&self) -> Result<&Source, S3Error> {
        self.source
            .as_ref()
            .ok_or_else(|| missing(self.op, "a copy source"))
    }
}

fn missing(op: Op, what: &str) -> S3Error {
    S3Error::internal(format!("{} was authorized without {what}", op.name()))
}

/// Decides whether `caller` may run `op` on `bucket`/`key`, from the operation table
/// ([`Op::access`], [`Op::reads_source`]), and loads what the decision was made on. A
/// missing bucket is NoSuchBucket; a missing object is NoSuchKey/NoSuchVersion only for
/// callers that may list the bucket (AccessDenied for the others).
pub async fn authorize(
    st: &Arc<ApiState>,
    caller: Caller,
    op: Op,
    bucket: Option<&BucketName>,
    key: Option<&ObjectKey>,
    q: &Query,
    headers: &HeaderMap,
) -> Result<Authorized, S3Error> {
    let record = match (op.needs_bucket(), bucket) {
        (true, Some(name)) => Some(load_bucket(st, name).await?),
        (true, None) => return Err(missing(op, "a bucket name")),
        (false, _) => None,
    };
    if let (Some(record), Some(expected)) = (&record, headers.get("x-amz-expected-bucket-owner")) {
        // The request is only meant for a bucket of that account (canonical user id).
        if expected.as_bytes() != canonical_id(&record.owner).as_bytes() {
            return Err(denied(record));
        }
    }
    let bucket_rec = || record.as_ref().ok_or_else(|| missing(op, "a bucket"));
    let mut object = None;
    match op.access() {
        Access::Public => {}
        Access::AnyKey => {
            caller.require_key()?;
        }
        Access::BucketOwner => {
            let b = bucket_rec()?;
            if !is_bucket_owner(st, &caller, b).await? {
                return Err(denied(b));
            }
        }
        Access::Bucket(perm) => {
            let b = bucket_rec()?;
            if !bucket_allows(st, &caller, b, perm).await? {
                return Err(denied(b));
            }
        }
        Access::Object(perm) => {
            let b = bucket_rec()?;
            let key = key.ok_or_else(|| missing(op, "a key"))?;
            let (rec, version_id) = match resolve_version(st, &b.name, key, q).await {
                Ok(found) => found,
                Err(e) => return Err(hide_absence(st, &caller, b, e).await),
            };
            require_object_perm(&caller, b, &rec, perm)?;
            object = Some(Resolved { rec, version_id });
        }
    }
    let source = if op.reads_source() {
        Some(load_source(st, &caller, headers).await?)
    } else {
        None
    };
    Ok(Authorized {
        op,
        caller,
        bucket: record,
        object,
        source,
    })
}

/// Resolves the copy source of a request: the bucket and object (version) must exist, the
/// caller must be allowed to read it, and the conditions must hold.
async fn load_source(
    st: &Arc<ApiState>,
    caller: &Caller,
    h: &HeaderMap,
) -> Result<Source, S3Error> {
    let (bucket, key, sel) = copy_source::parse_copy_source(h)?;
    let bucket_rec = load_bucket(st, &bucket).await?;
    let resolved = match resolve(st, &bucket, &key, &sel).await {
        Err(e) => Err(hide_absence(st, caller, &bucket_rec, e).await),
        ok => ok,
    };
    let (rec, version_id) = match resolved {
        Err(e) if e.code == S3ErrorCode::MethodNotAllowed => {
            return Err(S3Error::new(
                S3ErrorCode::InvalidRequest,
                "The source of a copy request may not specifically refer to a delete marker by version id.",
            ))
        }
        // A copy's answer must not claim the destination is a delete marker.
        Err(mut e) => {
            e.headers.clear();
            return Err(e);
        }
        Ok(found) => found,
    };
    require_object_perm(caller, &bucket_rec, &rec, Permission::Read)?;
    copy_source::check_copy_conditions(h, &rec)?;
    Ok(Source {
        bucket,
        key,
        rec,
        version_id,
        by_version: sel != VersionSel::Latest,
    })
}

/// The object's owner (an access key, or [`ANONYMOUS_OWNER`]).
pub fn object_owner<'a>(bucket: &'a BucketRecord, obj: &'a ObjectRecord) -> &'a str {
    obj.acl
        .as_ref()
        .map_or(bucket.owner.as_str(), |a| a.owner.as_str())
}

/// The object's grants (objects from before ACLs: the bucket owner's full control).
pub fn object_grants<'a>(bucket: &BucketRecord, obj: &'a ObjectRecord) -> Cow<'a, [Grant]> {
    match &obj.acl {
        Some(a) => Cow::Borrowed(&a.grants),
        None => Cow::Owned(acl::private(&bucket.owner)),
    }
}

/// AccessDenied unless the caller owns the object or its ACL gives it `perm`.
fn require_object_perm(
    caller: &Caller,
    bucket: &BucketRecord,
    obj: &ObjectRecord,
    perm: Permission,
) -> Result<(), S3Error> {
    let who = caller.access_key.as_deref();
    if who == Some(object_owner(bucket, obj))
        || grants_allow(&object_grants(bucket, obj), who, perm)
    {
        Ok(())
    } else {
        Err(denied(bucket))
    }
}

/// Turns a "no such key/version" answer into AccessDenied for a caller that may not list
/// the bucket, so that it learns nothing about what the bucket holds (as S3 does).
async fn hide_absence(
    st: &Arc<ApiState>,
    caller: &Caller,
    bucket: &BucketRecord,
    e: S3Error,
) -> S3Error {
    let absent = matches!(
        e.code,
        S3ErrorCode::NoSuchKey | S3ErrorCode::NoSuchVersion | S3ErrorCode::MethodNotAllowed
    );
    if absent
        && !matches!(
            bucket_allows(st, caller, bucket, Permission::Read).await,
            Ok(true)
        )
    {
        return denied(bucket);
    }
    e
}

/// The owner and grants of an object the caller is writing into `bucket`: the caller owns
/// it; the request's ACL headers say who else gets what (default: nobody).
pub async fn new_object_acl(
    st: &Arc<ApiState>,
    a: &Authorized,
    headers: &HeaderMap,
) -> Result<ObjectAcl, S3Error> {
    let bucket = a.bucket()?;
    let owner = a
        .caller
        .access_key
        .clone()
        .unwrap_or_else(|| ANONYMOUS_OWNER.to_string());
    let dir = Directory::new(st);
    let grants = acl::from_headers(&dir, headers, &owner, &bucket.owner)
        .await?
        .unwrap_or_else(|| acl::private(&owner));
    Ok(ObjectAcl { owner, grants })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_allow_what_they_name() {
        let user = |ak: &str, p| Grant {
            grantee: Grantee::User(ak.into()),
            permission: p,
        };
        let grants = vec![
            user("A", Permission::FullControl),
            user("B", Permission::Read),
            Grant {
                grantee: Grantee::AuthenticatedUsers,
                permission: Permission::ReadAcp,
            },
        ];
        assert!(grants_allow(&grants, Some("A"), Permission::WriteAcp));
        assert!(grants_allow(&grants, Some("B"), Permission::Read));
        assert!(!grants_allow(&grants, Some("B"), Permission::Write));
        assert!(grants_allow(&grants, Some("C"), Permission::ReadAcp));
        assert!(!grants_allow(&grants, None, Permission::ReadAcp));
        assert!(!grants_allow(&grants, None, Permission::Read));
        let public = vec![Grant {
            grantee: Grantee::AllUsers,
            permission: Permission::Read,
        }];
        assert!(grants_allow(&public, None, Permission::Read));
        assert!(grants_allow(&public, Some("C"), Permission::Read));
        assert!(!grants_allow(&public, None, Permission::Write));
    }
}
