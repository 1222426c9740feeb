//! Object tagging: Put/Get/DeleteObjectTagging (`?tagging` on a key, with `versionId`). The
//! tag sets themselves — the `x-amz-tagging` header (PutObject, CreateMultipartUpload,
//! CopyObject with `x-amz-tagging-directive: REPLACE`), the XML document and S3's rules —
//! are [`crate::tags`]' (re-exported here). Bucket-level `?tagging` is not handled here.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cairn_metadata::TagSet;
use cairn_types::{BucketName, ObjectKey};

use crate::access::Authorized;
use crate::auth::read_small_body;
use crate::error::S3Error;
use crate::headers::set;
use crate::lookup::{resolve_version, version_param};
use crate::query::Query;
use crate::{xml_response, ApiState};

pub use crate::tags::*;

fn version_header(resp: &mut Response, id: Option<&str>) {
    if let Some(id) = id {
        set(resp.headers_mut(), "x-amz-version-id", id);
    }
}

async fn set_tags(
    st: &Arc<ApiState>,
    bucket: &BucketName,
    key: &ObjectKey,
    q: &Query,
    tags: TagSet,
) -> Result<Option<String>, S3Error> {
    Ok(st
        .objects
        .set_object_tags(bucket, key, version_param(q)?, tags)
        .await?)
}

pub async fn put_object_tagging(
    st: &Arc<ApiState>,
    a: &Authorized,
    key: &ObjectKey,
    q: &Query,
    req: Request,
) -> Result<Response, S3Error> {
    let caller = a.caller();
    let bucket = &a.bucket()?.name;
    let body = read_small_body(caller, req, 64 << 10).await?;
    let tags = from_xml(&body)?;
    let id = set_tags(st, bucket, key, q, tags).await?;
    let mut resp = StatusCode::OK.into_response();
    version_header(&mut resp, id.as_deref());
    Ok(resp)
}

pub async fn delete_object_tagging(
    st: &Arc<ApiState>,
    a: &Authorized,
    key: &ObjectKey,
    q: &Query,
) -> Result<Response, S3Error> {
    let bucket = &a.bucket()?.name;
    let id = set_tags(st, bucket, key, q, TagSet::new()).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    version_header(&mut resp, id.as_deref());
    Ok(resp)
}

pub async fn get_object_tagging(
    st: &Arc<ApiState>,
    a: &Authorized,
    key: &ObjectKey,
    q: &Query,
) -> Result<Response, S3Error> {
    let bucket = &a.bucket()?.name;
    let (rec, id) = resolve_version(st, bucket, key, q).await?;
    let mut resp = xml_response(tagging_xml(&rec.tags));
    version_header(&mut resp, id.as_deref());
    Ok(resp)
}
