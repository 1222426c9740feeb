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
//!
//! Bucket policies and keys' identity policies come on top, combined with the above by
//! [`Gate::decide`] (see [`crate::policies`] for the rule): a policy's `Deny` refuses
//! whatever ownership and ACLs give, a bucket policy's `Allow` grants what they do not, and
//! a key with a policy has exactly what policies give it.

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
use crate::policies::{Gate, Ownership, PolicyRequest};
use crate::query::Query;
use crate::{acl, ApiState};

/// Whether `grants` give `who` (`None`: anonymous) the permission `perm`, with grants to
/// everyone and to every signed request counted only when `public` (Block Public Access's
/// `IgnorePublicAcls` turns them off).
fn grants_allow_in(grants: &[Grant], who: Option<&str>, perm: Permission, public: bool) -> bool {
    grants.iter().any(|g| {
        (g.permission == perm || g.permission == Permission::FullControl)
            && match &g.grantee {
                Grantee::User(ak) => who == Some(ak.as_str()),
                Grantee::AllUsers => public,
                Grantee::AuthenticatedUsers => public && who.is_some(),
            }
    })
}

/// Whether `grants` give anything to everyone or to every signed request (what S3 calls a
/// public ACL).
pub fn grants_are_public(grants: &[Grant]) -> bool {
    grants
        .iter()
        .any(|g| matches!(g.grantee, Grantee::AllUsers | Grantee::AuthenticatedUsers))
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

/// Whether ownership (`owner`: the caller owns the bucket) and the bucket's ACL, as the
/// gate loaded it, give the caller `perm` on the bucket.
fn bucket_acl_allows(
    gate: &Gate,
    caller: &Caller,
    bucket: &BucketRecord,
    perm: Permission,
    owner: bool,
) -> Result<bool, S3Error> {
    if owner {
        return Ok(true);
    }
    if !gate.acls_count() {
        return Ok(false);
    }
    let grants = gate.bucket_grants(bucket)?;
    Ok(grants_allow_in(
        &grants,
        caller.access_key.as_deref(),
        perm,
        gate.public_grants_count(),
    ))
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
/// the copy source, the policies and settings), so handlers act on exactly what was checked.
pub struct Authorized {
    op: Op,
    caller: Caller,
    bucket: Option<BucketRecord>,
    object: Option<Resolved>,
    source: Option<Source>,
    gate: Gate,
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

    /// The bucket's (and the cluster's) Block Public Access and Object Ownership.
    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// Whether the caller may delete `key` (version `version_id`, or the current object) of
    /// the bucket: DeleteObjects names its objects in its body, each decided here as its
    /// own DeleteObject would be.
    pub async fn may_delete(
        &self,
        st: &Arc<ApiState>,
        key: &ObjectKey,
        version_id: Option<&str>,
    ) -> Result<bool, S3Error> {
        if !self.gate.has_policies() {
            // WRITE on the bucket was checked for the whole request.
            return Ok(true);
        }
        let action = match version_id {
            Some(_) => "s3:DeleteObjectVersion",
            None => "s3:DeleteObject",
        };
        self.decide(st, key, action, Permission::Write).await
    }

    /// Whether the caller may do `action` (an `s3:` action no operation of its own stands
    /// for, e.g. `s3:BypassGovernanceRetention`) on `key` of the bucket: policies decide;
    /// without a policy's word, only the bucket's owner may.
    pub async fn may(
        &self,
        st: &Arc<ApiState>,
        key: &ObjectKey,
        action: &'static str,
    ) -> Result<bool, S3Error> {
        self.decide(st, key, action, Permission::FullControl).await
    }

    /// [`Gate::decide`] for `action` on `key`, with `perm` on the bucket's ACL as the
    /// fallback (`FullControl`: the owner alone).
    async fn decide(
        &self,
        st: &Arc<ApiState>,
        key: &ObjectKey,
        action: &'static str,
        perm: Permission,
    ) -> Result<bool, S3Error> {
        let b = self.bucket()?;
        let owner = is_bucket_owner(st, &self.caller, b).await?;
        let q = Query::default();
        let headers = HeaderMap::new();
        let req = PolicyRequest {
            // Each key of a DeleteObjects is decided as its own DeleteObject.
            op: match self.op {
                Op::DeleteObjects => Op::DeleteObject,
                op => op,
            },
            caller: &self.caller,
            action,
            bucket: Some(&b.name),
            key: Some(key),
            q: &q,
            headers: &headers,
            existing_tags: None,
            prefix: None,
        };
        self.gate
            .decide(&req, owner, || async {
                if perm == Permission::FullControl {
                    return Ok(owner);
                }
                bucket_acl_allows(&self.gate, &self.caller, b, perm, owner)
            })
            .await
    }
}

fn missing(op: Op, what: &str) -> S3Error {
    S3Error::internal(format!("{} was authorized without {what}", op.name()))
}

/// Decides whether `caller` may run `op` on `bucket`/`key`, from the operation table
/// ([`Op::access`], [`Op::policy_action`], [`Op::reads_source`]) and the policies
/// ([`Gate::decide`]), and loads what the decision was made on. A missing bucket is
/// NoSuchBucket; a missing object is NoSuchKey/NoSuchVersion only for callers that may
/// list it (AccessDenied for the others).
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
    if op == Op::PreflightRequest {
        // Answered from the bucket's CORS rules alone; no policy governs it.
        return Ok(Authorized {
            op,
            caller,
            bucket: record,
            object: None,
            source: None,
            gate: Gate::default(),
        });
    }
    let gate = Gate::load(st, &caller, record.as_ref()).await?;
    let bucket_rec = || record.as_ref().ok_or_else(|| missing(op, "a bucket"));
    let owner = match &record {
        Some(b) => is_bucket_owner(st, &caller, b).await?,
        None => false,
    };
    // The object an object-permission operation addresses (its tags are a condition key).
    let mut object = None;
    if let Access::Object(_) = op.access() {
        let b = bucket_rec()?;
        let key = key.ok_or_else(|| missing(op, "a key"))?;
        match resolve_version(st, &b.name, key, q).await {
            Ok((rec, version_id)) => object = Some(Resolved { rec, version_id }),
            Err(e) => return Err(hide_absence(st, &gate, &caller, b, key, e).await),
        }
    }
    let tags_of_existing;
    let existing_tags = match (&object, gate.wants_object_tags, record.as_ref(), key) {
        (Some(o), _, _, _) => Some(&o.rec.tags),
        (None, true, Some(b), Some(k)) => {
            tags_of_existing = resolve_version(st, &b.name, k, q).await.ok();
            tags_of_existing.as_ref().map(|(rec, _)| &rec.tags)
        }
        _ => None,
    };
    let req = PolicyRequest {
        op,
        caller: &caller,
        action: op.policy_action(q),
        bucket,
        key: if op.target() == crate::op::Target::Object || op == Op::PostObject {
            key
        } else {
            None
        },
        q,
        headers,
        existing_tags,
        prefix: None,
    };
    // DeleteObjects names its keys in its body: where policies take part, each key is
    // decided as its own DeleteObject ([`Authorized::may_delete`]); without them, WRITE on
    // the bucket decides for all (as it does for each).
    let per_key = op == Op::DeleteObjects && gate.has_policies();
    let allowed = per_key
        || gate
            .decide(&req, owner, || async {
                match op.access() {
                    Access::Public => Ok(true),
                    Access::AnyKey => Ok(caller.access_key.is_some()),
                    Access::BucketOwner => Ok(owner),
                    Access::Bucket(perm) => {
                        bucket_acl_allows(&gate, &caller, bucket_rec()?, perm, owner)
                    }
                    Access::Object(perm) => {
                        let o = object.as_ref().ok_or_else(|| missing(op, "an object"))?;
                        Ok(object_acl_allows(
                            &gate,
                            &caller,
                            bucket_rec()?,
                            &o.rec,
                            perm,
                        ))
                    }
                }
            })
            .await?;
    if !allowed {
        return Err(match &record {
            Some(b) => denied(b),
            None => S3Error::access_denied(),
        });
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
        gate,
    })
}

/// Resolves the copy source of a request: the bucket and object (version) must exist, the
/// caller must be allowed to read it (its bucket's policies decide, as for a GetObject),
/// and the conditions must hold.
async fn load_source(
    st: &Arc<ApiState>,
    caller: &Caller,
    h: &HeaderMap,
) -> Result<Source, S3Error> {
    let (bucket, key, sel) = copy_source::parse_copy_source(h)?;
    let bucket_rec = load_bucket(st, &bucket).await?;
    let gate = Gate::load(st, caller, Some(&bucket_rec)).await?;
    let resolved = match resolve(st, &bucket, &key, &sel).await {
        Err(e) => Err(hide_absence(st, &gate, caller, &bucket_rec, &key, e).await),
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
    let by_version = sel != VersionSel::Latest;
    let q = Query::default();
    let empty = HeaderMap::new();
    let req = PolicyRequest {
        op: Op::GetObject,
        caller,
        action: if by_version {
            "s3:GetObjectVersion"
        } else {
            "s3:GetObject"
        },
        bucket: Some(&bucket),
        key: Some(&key),
        q: &q,
        headers: &empty,
        existing_tags: Some(&rec.tags),
        prefix: None,
    };
    let owner = is_bucket_owner(st, caller, &bucket_rec).await?;
    let allowed = gate
        .decide(&req, owner, || async {
            Ok(object_acl_allows(
                &gate,
                caller,
                &bucket_rec,
                &rec,
                Permission::Read,
            ))
        })
        .await?;
    if !allowed {
        return Err(denied(&bucket_rec));
    }
    copy_source::check_copy_conditions(h, &rec)?;
    Ok(Source {
        bucket,
        key,
        rec,
        version_id,
        by_version,
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

/// Whether ownership and the object's ACL give the caller `perm` on it. Under
/// `BucketOwnerEnforced` the bucket owner owns every object and grants count for nothing.
fn object_acl_allows(
    gate: &Gate,
    caller: &Caller,
    bucket: &BucketRecord,
    obj: &ObjectRecord,
    perm: Permission,
) -> bool {
    let who = caller.access_key.as_deref();
    if !gate.acls_count() {
        return who == Some(bucket.owner.as_str());
    }
    who == Some(object_owner(bucket, obj))
        || grants_allow_in(
            &object_grants(bucket, obj),
            who,
            perm,
            gate.public_grants_count(),
        )
}

/// Turns a "no such key/version" answer into AccessDenied for a caller that may not list
/// the key (ListBucket with the key as `s3:prefix`), so that it learns nothing about what
/// the bucket holds (as S3 does).
async fn hide_absence(
    st: &Arc<ApiState>,
    gate: &Gate,
    caller: &Caller,
    bucket: &BucketRecord,
    key: &ObjectKey,
    e: S3Error,
) -> S3Error {
    let absent = matches!(
        e.code,
        S3ErrorCode::NoSuchKey | S3ErrorCode::NoSuchVersion | S3ErrorCode::MethodNotAllowed
    );
    if !absent {
        return e;
    }
    let q = Query::default();
    let empty = HeaderMap::new();
    let req = PolicyRequest {
        op: Op::ListObjects,
        caller,
        action: "s3:ListBucket",
        bucket: Some(&bucket.name),
        key: None,
        q: &q,
        headers: &empty,
        existing_tags: None,
        prefix: Some(key.as_str()),
    };
    let may_list = async {
        let owner = is_bucket_owner(st, caller, bucket).await?;
        gate.decide(&req, owner, || async {
            bucket_acl_allows(gate, caller, bucket, Permission::Read, owner)
        })
        .await
    };
    match may_list.await {
        Ok(true) => e,
        _ => denied(bucket),
    }
}

/// The owner and grants of an object the caller is writing into `bucket`: the caller owns
/// it, unless Object Ownership gives it to the bucket owner; the request's ACL headers say
/// who else gets what (default: nobody). ACL headers are refused under
/// `BucketOwnerEnforced` (but `bucket-owner-full-control`, which says nothing new), and
/// public ones under Block Public Access.
pub async fn new_object_acl(
    st: &Arc<ApiState>,
    a: &Authorized,
    headers: &HeaderMap,
) -> Result<ObjectAcl, S3Error> {
    let bucket = a.bucket()?;
    let writer = a
        .caller
        .access_key
        .clone()
        .unwrap_or_else(|| ANONYMOUS_OWNER.to_string());
    let canned = headers
        .get("x-amz-acl")
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    let owner_full_control = canned == Some("bucket-owner-full-control");
    let owner = match a.gate.ownership {
        Ownership::BucketOwnerEnforced => {
            if acl::has_acl_headers(headers) && !owner_full_control {
                return Err(acl_not_supported());
            }
            return Ok(ObjectAcl {
                owner: bucket.owner.clone(),
                grants: acl::private(&bucket.owner),
            });
        }
        Ownership::BucketOwnerPreferred if owner_full_control => bucket.owner.clone(),
        _ => writer,
    };
    let dir = Directory::new(st);
    let grants = acl::from_headers(&dir, headers, &owner, &bucket.owner)
        .await?
        .unwrap_or_else(|| acl::private(&owner));
    check_public_acl(&a.gate, &grants)?;
    Ok(ObjectAcl { owner, grants })
}

/// AccessDenied for public grants when Block Public Access blocks public ACLs.
pub fn check_public_acl(gate: &Gate, grants: &[Grant]) -> Result<(), S3Error> {
    if gate.pab.block_public_acls && grants_are_public(grants) {
        return Err(S3Error::new(
            S3ErrorCode::AccessDenied,
            "Access Denied: Block Public Access refuses public ACLs on this bucket",
        ));
    }
    Ok(())
}

/// S3's answer to an ACL on a bucket whose Object Ownership is `BucketOwnerEnforced`.
pub fn acl_not_supported() -> S3Error {
    S3Error::new(
        S3ErrorCode::AccessControlListNotSupported,
        "The bucket does not allow ACLs",
    )
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
        assert!(grants_allow_in(
            &grants,
            Some("A"),
            Permission::WriteAcp,
            true
        ));
        assert!(grants_allow_in(&grants, Some("B"), Permission::Read, true));
        assert!(!grants_allow_in(
            &grants,
            Some("B"),
            Permission::Write,
            true
        ));
        assert!(grants_allow_in(
            &grants,
            Some("C"),
            Permission::ReadAcp,
            true
        ));
        assert!(!grants_allow_in(&grants, None, Permission::ReadAcp, true));
        assert!(!grants_allow_in(&grants, None, Permission::Read, true));
        let public = vec![Grant {
            grantee: Grantee::AllUsers,
            permission: Permission::Read,
        }];
        assert!(grants_allow_in(&public, None, Permission::Read, true));
        assert!(grants_allow_in(&public, Some("C"), Permission::Read, true));
        assert!(!grants_allow_in(&public, None, Permission::Write, true));
    }
}
