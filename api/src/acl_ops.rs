//! The `acl` sub-resource: Get/PutBucketAcl and Get/PutObjectAcl (with `versionId`). The
//! router has checked READ_ACP / WRITE_ACP on the bucket for the bucket forms; the object
//! forms check the object's own ACL here, once the version is resolved.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cairn_metadata::{BucketRecord, Command, CommandOutput, Grant, ObjectAcl, Permission};
use cairn_types::ObjectKey;

use crate::access::{self, hide_absence, object_grants, object_owner, require_object_perm};
use crate::auth::{read_small_body, Caller};
use crate::error::{S3Error, S3ErrorCode};
use crate::identity::Directory;
use crate::object::set;
use crate::router::Query;
use crate::versioning::{resolve_version, version_param};
use crate::{acl, xml_response, ApiState};

/// Largest AccessControlPolicy document accepted.
const MAX_ACL_BODY: usize = 64 << 10;

pub async fn get_bucket_acl(
    st: &Arc<ApiState>,
    bucket: &BucketRecord,
) -> Result<Response, S3Error> {
    let grants = access::bucket_grants(st, bucket).await?;
    let mut dir = Directory::new(st);
    Ok(xml_response(
        acl::policy_xml(&mut dir, &bucket.owner, &grants).await?,
    ))
}

pub async fn put_bucket_acl(
    st: &Arc<ApiState>,
    caller: &Caller,
    bucket: &BucketRecord,
    req: Request,
) -> Result<Response, S3Error> {
    let headers = req.headers().clone();
    let body = read_small_body(caller, req, MAX_ACL_BODY).await?;
    let grants = requested_grants(st, &headers, &body, &bucket.owner, &bucket.owner).await?;
    access::save_bucket_grants(st, &bucket.name, &grants).await?;
    Ok(StatusCode::OK.into_response())
}

/// The grants a Put*Acl asks for: from its `x-amz-acl` / `x-amz-grant-*` headers or from its
/// AccessControlPolicy body (exactly one of them).
async fn requested_grants(
    st: &Arc<ApiState>,
    headers: &HeaderMap,
    body: &[u8],
    owner: &str,
    bucket_owner: &str,
) -> Result<Vec<Grant>, S3Error> {
    let dir = Directory::new(st);
    let empty_body = body.iter().all(u8::is_ascii_whitespace);
    match acl::from_headers(&dir, headers, owner, bucket_owner).await? {
        Some(_) if !empty_body => Err(S3Error::new(
            S3ErrorCode::InvalidRequest,
            "Specify an ACL either in headers or in the request body, not both",
        )),
        Some(grants) => Ok(grants),
        None if empty_body => Err(S3Error::new(
            S3ErrorCode::MissingSecurityHeader,
            "Your request was missing a required header: x-amz-acl, x-amz-grant-* or an AccessControlPolicy body",
        )),
        None => acl::from_xml(&dir, body).await,
    }
}

pub async fn get_object_acl(
    st: &Arc<ApiState>,
    caller: &Caller,
    bucket: &BucketRecord,
    key: &ObjectKey,
    q: &Query,
) -> Result<Response, S3Error> {
    let (rec, version_id) = match resolve_version(st, &bucket.name, key, q).await {
        Ok(r) => r,
        Err(e) => return Err(hide_absence(st, caller, bucket, e).await),
    };
    require_object_perm(caller, bucket, &rec, Permission::ReadAcp)?;
    let mut dir = Directory::new(st);
    let doc = acl::policy_xml(
        &mut dir,
        object_owner(bucket, &rec),
        &object_grants(bucket, &rec),
    )
    .await?;
    let mut resp = xml_response(doc);
    if let Some(v) = &version_id {
        set(resp.headers_mut(), "x-amz-version-id", v);
    }
    Ok(resp)
}

pub async fn put_object_acl(
    st: &Arc<ApiState>,
    caller: &Caller,
    bucket: &BucketRecord,
    key: &ObjectKey,
    q: &Query,
    req: Request,
) -> Result<Response, S3Error> {
    let (rec, _) = match resolve_version(st, &bucket.name, key, q).await {
        Ok(r) => r,
        Err(e) => return Err(hide_absence(st, caller, bucket, e).await),
    };
    require_object_perm(caller, bucket, &rec, Permission::WriteAcp)?;
    let headers = req.headers().clone();
    let body = read_small_body(caller, req, MAX_ACL_BODY).await?;
    // The owner never changes; only who else gets what.
    let owner = object_owner(bucket, &rec).to_string();
    let grants = requested_grants(st, &headers, &body, &owner, &bucket.owner).await?;
    let sel = version_param(q)?;
    let out = st
        .meta()
        .apply(Command::SetObjectAcl {
            bucket: bucket.name.clone(),
            key: key.clone(),
            version: sel,
            acl: ObjectAcl { owner, grants },
        })
        .await?;
    let CommandOutput::Tagged(id) = out else {
        return Err(S3Error::internal("SetObjectAcl answered something else"));
    };
    let mut resp = StatusCode::OK.into_response();
    if let Some(v) = id.or(rec.version_id) {
        set(resp.headers_mut(), "x-amz-version-id", &v);
    }
    Ok(resp)
}
