//! Bucket lifecycle at the S3 edge: Put/Get/DeleteBucketLifecycleConfiguration
//! (`?lifecycle`; the legacy PutBucketLifecycle is the same request) and the
//! `x-amz-expiration` header of PUT, HEAD and GET. The rules, their validation and their
//! timing are `cairn_lifecycle`'s; the worker that carries them out runs beside the server.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cairn_lifecycle::{expiration_header, Candidate, LifecycleConfig, LifecycleError};
use cairn_metadata::{BucketConfigKind, ObjectRecord};
use cairn_types::clock::now_ms;

use crate::access::Authorized;
use crate::auth::read_small_body;
use crate::error::{S3Error, S3ErrorCode};
use crate::headers::set;
use crate::{xml_response, ApiState};

/// Largest configuration accepted (1,000 rules fit).
const MAX_BODY: usize = 1 << 20;

impl From<LifecycleError> for S3Error {
    fn from(e: LifecycleError) -> Self {
        let code = match &e {
            LifecycleError::MalformedXml(_) => S3ErrorCode::MalformedXML,
            LifecycleError::InvalidArgument(_) => S3ErrorCode::InvalidArgument,
            LifecycleError::InvalidRequest(_) => S3ErrorCode::InvalidRequest,
            LifecycleError::NotImplemented(_) => S3ErrorCode::NotImplemented,
            LifecycleError::Stored(_) => S3ErrorCode::InternalError,
        };
        S3Error::new(code, e.to_string())
    }
}

/// An id for a rule put without one: unique within the configuration and unlikely to
/// collide with an id a user writes.
fn fresh_ids() -> impl FnMut() -> String {
    let base = now_ms();
    let mut n = 0u32;
    move || {
        n += 1;
        format!("rule-{base:x}-{n}")
    }
}

pub async fn put(st: &Arc<ApiState>, a: &Authorized, req: Request) -> Result<Response, S3Error> {
    let bucket = &a.bucket()?.name;
    let body = read_small_body(a.caller(), req, MAX_BODY).await?;
    let cfg = cairn_lifecycle::xml::parse(&body)?.validate(&mut fresh_ids())?;
    st.objects
        .set_bucket_config(bucket, BucketConfigKind::Lifecycle, Some(cfg.encode()))
        .await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn get(a: &Authorized) -> Result<Response, S3Error> {
    match configuration(a)? {
        Some(cfg) => Ok(xml_response(cairn_lifecycle::xml::to_xml(&cfg))),
        None => Err(S3Error::new(
            S3ErrorCode::NoSuchLifecycleConfiguration,
            "The lifecycle configuration does not exist",
        )
        .with("BucketName", a.bucket()?.name.as_str())),
    }
}

pub async fn delete(st: &Arc<ApiState>, a: &Authorized) -> Result<Response, S3Error> {
    st.objects
        .set_bucket_config(&a.bucket()?.name, BucketConfigKind::Lifecycle, None)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The bucket's rules, as loaded with the request's gate.
fn configuration(a: &Authorized) -> Result<Option<LifecycleConfig>, S3Error> {
    a.gate()
        .lifecycle
        .as_deref()
        .map(LifecycleConfig::decode)
        .transpose()
        .map_err(S3Error::from)
}

/// Sets `x-amz-expiration` on a response about the current object `rec` at `key` when an
/// enabled rule expires it.
pub fn expiration(a: &Authorized, key: &str, rec: &ObjectRecord, h: &mut HeaderMap) {
    let Ok(Some(cfg)) = configuration(a) else {
        return;
    };
    let c = Candidate {
        key,
        size: rec.size,
        tags: &rec.tags,
    };
    if let Some((at, rule)) = expiration_header(&cfg, &c, rec.last_modified_ms) {
        let date = crate::util::http_date(at);
        set(
            h,
            "x-amz-expiration",
            &format!(
                "expiry-date=\"{date}\", rule-id=\"{}\"",
                crate::util::url_encode(&rule)
            ),
        );
    }
}
