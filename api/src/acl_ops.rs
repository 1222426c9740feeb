//! The `acl` sub-resource: Get/PutBucketAcl and Get/PutObjectAcl (with `versionId`), run
//! once [`crate::access::authorize`] has checked READ_ACP / WRITE_ACP on the bucket or on
//! the object version it resolved.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cairn_metadata::{Grant, ObjectAcl};
use cairn_types::ObjectKey;

use crate::access::{self, object_grants, object_owner, Authorized, Resolved};
use crate::auth::read_small_body;
use crate::error::{S3Error, S3ErrorCode};
use crate::headers::set;
use crate::identity::Directory;
use crate::lookup::version_param;
use crate::query::Query;
use crate::{acl, xml_response, ApiState};

/// Largest AccessControlPolicy document accepted.
const MAX_ACL_BODY: usize = 64 << 10;

pub async fn get_bucket_acl(st: &Arc<ApiState>, a: &Authorized) -> Result<Response, S3Error> {
    let bucket = a.bucket()?;
    let grants = access::bucket_grants(st, bucket).await?;
    let mut dir = Directory::new(st);
    Ok(xml_response(
        acl::policy_xml(&mut dir, &bucket.owner, &grants).await?,
    ))
}

pub async fn put_bucket_acl(
    st: &Arc<ApiState>,
    a: &Authorized,
    req: Request,
) -> Result<Response, S3Error> {
    let caller = a.caller();
    let bucket = a.bucket()?;
    if !a.gate().acls_count() {
        return Err(access::acl_not_supported());
    }
    let headers = req.headers().clone();
    let body = read_small_body(caller, req, MAX_ACL_BODY).await?;
    let grants = requested_grants(st, &headers, &body, &bucket.owner, &bucket.owner).await?;
    access::check_public_acl(a.gate(), &grants)?;
    st.objects.set_bucket_acl(&bucket.name, &grants).await?;
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

pub async fn get_object_acl(st: &Arc<ApiState>, a: &Authorized) -> Result<Response, S3Error> {
    let bucket = a.bucket()?;
    let Resolved { rec, version_id } = a.object()?;
    let mut dir = Directory::new(st);
    // Under BucketOwnerEnforced the bucket owner owns every object, whoever wrote it.
    let (owner, grants) = if a.gate().acls_count() {
        (object_owner(bucket, rec), object_grants(bucket, rec))
    } else {
        (
            bucket.owner.as_str(),
            std::borrow::Cow::Owned(acl::private(&bucket.owner)),
        )
    };
    let doc = acl::policy_xml(&mut dir, owner, &grants).await?;
    let mut resp = xml_response(doc);
    if let Some(v) = &version_id {
        set(resp.headers_mut(), "x-amz-version-id", v);
    }
    Ok(resp)
}

pub async fn put_object_acl(
    st: &Arc<ApiState>,
    a: &Authorized,
    key: &ObjectKey,
    q: &Query,
    req: Request,
) -> Result<Response, S3Error> {
    let caller = a.caller();
    let bucket = a.bucket()?;
    let rec = &a.object()?.rec;
    if !a.gate().acls_count() {
        return Err(access::acl_not_supported());
    }
    let headers = req.headers().clone();
    let body = read_small_body(caller, req, MAX_ACL_BODY).await?;
    // The owner never changes; only who else gets what.
    let owner = object_owner(bucket, rec).to_string();
    let grants = requested_grants(st, &headers, &body, &owner, &bucket.owner).await?;
    access::check_public_acl(a.gate(), &grants)?;
    // Change the version that was checked, not whatever is newest by now: a writer may have
    // replaced it while the body arrived (then the command refuses, OperationAborted).
    let id = st
        .objects
        .set_object_acl(
            &bucket.name,
            key,
            version_param(q)?,
            ObjectAcl { owner, grants },
            rec,
        )
        .await?;
    let mut resp = StatusCode::OK.into_response();
    if let Some(v) = id {
        set(resp.headers_mut(), "x-amz-version-id", &v);
    }
    Ok(resp)
}
