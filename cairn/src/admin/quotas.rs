//! Bucket quotas the operator sets through the admin API (`GET`/`PUT`/`DELETE
//! /admin/buckets/{b}/quota`, what `cairn admin bucket-quota` and the console call) and the
//! usage of every bucket with a quota (`GET /admin/quotas`, shown by `cairn status`). The
//! metadata state machine keeps usage and enforces quotas (`cairn_metadata::usage`); this
//! module only reads and sets them.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use cairn_metadata::usage::{BucketQuota, BucketUsage};
use cairn_metadata::MetadataError;
use cairn_objects::ObjectsError;
use cairn_types::BucketName;
use serde::Serialize;

use super::{json, AdminState};

pub(super) fn routes() -> Router<Arc<AdminState>> {
    Router::new()
        .route(
            "/admin/buckets/{b}/quota",
            get(get_quota).put(put_quota).delete(delete_quota),
        )
        .route("/admin/quotas", get(list_quotas))
}

/// A bucket's quota and usage, as the admin API answers.
#[derive(Debug, Serialize)]
pub(crate) struct QuotaView {
    pub bucket: String,
    pub quota: Option<BucketQuota>,
    pub usage: Option<BucketUsage>,
}

fn failure(e: ObjectsError) -> Response {
    match e {
        ObjectsError::Metadata(MetadataError::NoSuchBucket) => {
            (StatusCode::NOT_FOUND, "no such bucket\n").into_response()
        }
        e => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}

/// The bucket named in an admin path, or a 400 answer.
pub(super) fn bucket(name: &str) -> Result<BucketName, Box<Response>> {
    BucketName::new(name.to_string())
        .map_err(|e| Box::new((StatusCode::BAD_REQUEST, format!("{e}\n")).into_response()))
}

pub(crate) async fn view(st: &AdminState, b: &BucketName) -> Result<QuotaView, ObjectsError> {
    if st.objects.metadata().get_bucket(b).await?.is_none() {
        return Err(MetadataError::NoSuchBucket.into());
    }
    let (quota, usage) = st.objects.bucket_quota(b).await?;
    Ok(QuotaView {
        bucket: b.as_str().to_string(),
        quota,
        usage,
    })
}

async fn get_quota(State(st): State<Arc<AdminState>>, Path(b): Path<String>) -> Response {
    let b = match bucket(&b) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    match view(&st, &b).await {
        Ok(v) => json(StatusCode::OK, &v),
        Err(e) => failure(e),
    }
}

async fn put_quota(
    State(st): State<Arc<AdminState>>,
    Path(b): Path<String>,
    body: Bytes,
) -> Response {
    let b = match bucket(&b) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let quota: BucketQuota = match serde_json::from_slice(&body) {
        Ok(q) => q,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("expected {{\"max_bytes\": N or null, \"max_objects\": N or null}}: {e}\n"),
            )
                .into_response()
        }
    };
    set(&st, &b, (quota != BucketQuota::default()).then_some(quota)).await
}

async fn delete_quota(State(st): State<Arc<AdminState>>, Path(b): Path<String>) -> Response {
    match bucket(&b) {
        Ok(b) => set(&st, &b, None).await,
        Err(r) => *r,
    }
}

async fn set(st: &AdminState, b: &BucketName, quota: Option<BucketQuota>) -> Response {
    if let Err(e) = st.objects.set_bucket_quota(b, quota).await {
        return failure(e);
    }
    tracing::info!(bucket = %b, ?quota, "bucket quota changed");
    match view(st, b).await {
        Ok(v) => json(StatusCode::OK, &v),
        Err(e) => failure(e),
    }
}

/// Every bucket with a quota, with its usage.
pub(crate) async fn with_quotas(st: &AdminState) -> Result<Vec<QuotaView>, ObjectsError> {
    let mut out = Vec::new();
    for b in st.objects.metadata().list_buckets().await? {
        let (quota, usage) = st.objects.bucket_quota(&b.name).await?;
        if quota.is_some() {
            out.push(QuotaView {
                bucket: b.name.as_str().to_string(),
                quota,
                usage,
            });
        }
    }
    out.sort_by(|a, b| a.bucket.cmp(&b.bucket));
    Ok(out)
}

async fn list_quotas(State(st): State<Arc<AdminState>>) -> Response {
    match with_quotas(&st).await {
        Ok(v) => json(StatusCode::OK, &v),
        Err(e) => failure(e),
    }
}
