//! Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cairn_metadata::BucketConfigKind;
use cairn_objects::{BucketCreated, BucketListing};
use cairn_types::BucketName;

use crate::access::{self, Authorized};
use crate::acl;
use crate::auth::read_small_body;
use crate::error::{S3Error, S3ErrorCode};
use crate::identity::Directory;
use crate::policies::Ownership;
use crate::query::Query;
use crate::util::iso8601;
use crate::xml::{self, XmlWriter};
use crate::{xml_response, ApiState};

/// ListBuckets: the caller's own buckets, by name, optionally under `prefix` and paged with
/// `max-buckets` (1..=10000) and `continuation-token` (the last name of the previous page).
pub async fn list_buckets(
    st: &Arc<ApiState>,
    a: &Authorized,
    q: &Query,
) -> Result<Response, S3Error> {
    let me = a.caller().require_key()?;
    let max = match q.get("max-buckets") {
        None => usize::MAX,
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| {
                S3Error::new(
                    S3ErrorCode::InvalidArgument,
                    "max-buckets must be an integer between 1 and 10000",
                )
                .with("ArgumentName", "max-buckets")
                .with("ArgumentValue", v)
            })?,
    };
    let prefix = q.get("prefix").unwrap_or("");
    let after = q.get("continuation-token").unwrap_or("");
    // Each key sees the buckets it owns.
    let BucketListing { buckets, truncated } =
        st.objects.list_buckets(me, prefix, after, max).await?;
    let mut w = XmlWriter::new();
    w.open_root("ListAllMyBucketsResult");
    Directory::new(st).write_owner(&mut w, "Owner", me).await?;
    w.open("Buckets");
    for b in &buckets {
        w.open("Bucket");
        w.elem("Name", b.name.as_str());
        w.elem("CreationDate", &iso8601(b.created_ms));
        w.close("Bucket");
    }
    w.close("Buckets");
    if truncated {
        if let Some(last) = buckets.last() {
            w.elem("ContinuationToken", last.name.as_str());
        }
    }
    if !prefix.is_empty() {
        w.elem("Prefix", prefix);
    }
    w.close("ListAllMyBucketsResult");
    Ok(xml_response(w.finish()))
}

/// CreateBucket, with the ACL of its `x-amz-acl` / `x-amz-grant-*` headers (default: the
/// creator's full control). Creating a bucket one already owns again is accepted when it
/// asks for the ACL the bucket has (us-east-1 answers such a repeat with 200) and is
/// `BucketAlreadyExists` when it asks for another one; in other regions it is
/// `BucketAlreadyOwnedByYou`.
pub async fn create_bucket(
    st: &Arc<ApiState>,
    a: &Authorized,
    name: &BucketName,
    req: Request,
) -> Result<Response, S3Error> {
    let caller = a.caller();
    let me = caller.require_key()?.to_string();
    let name = name.clone();
    let requested = acl::from_headers(&Directory::new(st), req.headers(), &me, &me).await?;
    let ownership = match req.headers().get("x-amz-object-ownership") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|v| Ownership::parse(v.trim()))
                .ok_or_else(|| {
                    S3Error::new(
                        S3ErrorCode::InvalidArgument,
                        "x-amz-object-ownership must be BucketOwnerEnforced, BucketOwnerPreferred or ObjectWriter",
                    )
                    .with("ArgumentName", "x-amz-object-ownership")
                })?,
        ),
    };
    if let Some(grants) = &requested {
        if ownership == Some(Ownership::BucketOwnerEnforced) && grants != &acl::private(&me) {
            return Err(invalid_acl_with_ownership());
        }
        // The cluster's Block Public Access (a new bucket has none of its own yet).
        access::check_public_acl(a.gate(), grants)?;
    }
    let lock_header = req
        .headers()
        .get("x-amz-bucket-object-lock-enabled")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let body = read_small_body(caller, req, 64 << 10).await?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        let cfg: xml::CreateBucketConfiguration =
            xml::parse(&body).ok_or_else(S3Error::malformed_xml)?;
        // Cairn is one region; a client naming another one still gets its bucket here
        // (there is nowhere else to put it), which is what single-region S3 servers do.
        if let Some(loc) = cfg.location_constraint.filter(|l| !l.is_empty()) {
            tracing::debug!(location = %loc, "CreateBucket location constraint");
        }
    }
    let object_lock = match lock_header.as_deref() {
        None => false,
        Some(v) if v.trim().eq_ignore_ascii_case("true") => true,
        Some(v) if v.trim().eq_ignore_ascii_case("false") => false,
        Some(_) => {
            return Err(S3Error::new(
                S3ErrorCode::InvalidArgument,
                "x-amz-bucket-object-lock-enabled must be true or false",
            )
            .with("ArgumentName", "x-amz-bucket-object-lock-enabled"))
        }
    };
    match st.objects.create_bucket(&name, &me, requested).await {
        Ok(BucketCreated::Created) => {
            if object_lock {
                // Object Lock needs versioning, for good.
                st.objects
                    .set_versioning(&name, cairn_metadata::VersioningState::Enabled)
                    .await?;
                st.objects
                    .set_bucket_config(
                        &name,
                        BucketConfigKind::ObjectLock,
                        Some(cairn_metadata::object_lock::ObjectLockConfig::default().encode()),
                    )
                    .await?;
            }
            if let Some(o) = ownership {
                st.objects
                    .set_bucket_config(
                        &name,
                        BucketConfigKind::OwnershipControls,
                        Some(o.as_str().as_bytes().to_vec()),
                    )
                    .await?;
            }
        }
        Ok(BucketCreated::AlreadyOwned { same_acl }) => {
            if st.region != "us-east-1" {
                return Err(S3Error::new(
                    S3ErrorCode::BucketAlreadyOwnedByYou,
                    "Your previous request to create the named bucket succeeded and you already own it.",
                )
                .with("BucketName", name.as_str()));
            }
            if !same_acl {
                return Err(S3Error::new(
                    S3ErrorCode::BucketAlreadyExists,
                    "The bucket exists with another ACL; set it with PutBucketAcl.",
                )
                .with("BucketName", name.as_str()));
            }
        }
        Err(e) => return Err(S3Error::from(e).with("BucketName", name.as_str())),
    }
    let mut resp = StatusCode::OK.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/{name}")) {
        resp.headers_mut().insert("location", v);
    }
    Ok(resp)
}

/// S3's answer to ACL grants beyond the owner's on a bucket whose Object Ownership is (or
/// would become) `BucketOwnerEnforced`.
pub fn invalid_acl_with_ownership() -> S3Error {
    S3Error::new(
        S3ErrorCode::InvalidBucketAclWithObjectOwnership,
        "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting",
    )
}

pub async fn head_bucket(st: &Arc<ApiState>, a: &Authorized) -> Result<Response, S3Error> {
    a.bucket()?;
    let mut resp = StatusCode::OK.into_response();
    if let Ok(v) = HeaderValue::from_str(&st.region) {
        resp.headers_mut().insert("x-amz-bucket-region", v);
    }
    Ok(resp)
}

pub async fn delete_bucket(st: &Arc<ApiState>, a: &Authorized) -> Result<Response, S3Error> {
    let name = &a.bucket()?.name;
    st.objects
        .delete_bucket(name)
        .await
        .map_err(|e| S3Error::from(e).with("BucketName", name.as_str()))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn get_location(st: &Arc<ApiState>, a: &Authorized) -> Result<Response, S3Error> {
    a.bucket()?;
    let mut w = XmlWriter::new();
    w.open_root("LocationConstraint");
    // us-east-1 is spelled as an empty constraint.
    if st.region != "us-east-1" {
        w.text(&st.region);
    }
    w.close("LocationConstraint");
    Ok(xml_response(w.finish()))
}
