//! `POST /admin/buckets/{bucket}/populate`: fills a bucket with synthetic objects for
//! benchmarks at scale (listing 10⁷ keys, say) without a client sending ten million PUTs.
//!
//! Each object goes through the object service's own PutObject (its inline path: the body
//! is a few zero bytes at most, kept in the record), owned by the bucket's owner, so the
//! result is indistinguishable from objects uploaded over S3. Many are written at once, so
//! that their metadata commands share Raft entries (the batched write path); a call makes
//! at most [`MAX_PER_CALL`] objects, and `cairn admin populate` repeats calls with a
//! progress bar.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use cairn_metadata::{ObjectAcl, TagSet, WriteCondition};
use cairn_objects::{ObjectMetadata, PutObject};
use cairn_types::{BucketName, ObjectKey};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use super::{json, AdminState};

/// Most objects one call creates (a few seconds of work).
pub const MAX_PER_CALL: u64 = 200_000;
/// Largest synthetic body: small enough to stay inline in the record.
pub const MAX_SIZE: usize = 64;
/// PUTs in flight at once: enough for hundreds of commands per Raft entry.
const CONCURRENCY: usize = 1024;

pub(super) fn routes() -> Router<Arc<AdminState>> {
    Router::new().route("/admin/buckets/{bucket}/populate", post(populate))
}

/// What to create: keys `{prefix}{n:010}` for `n` in `start..start + count`.
#[derive(Debug, Deserialize, Serialize)]
pub struct PopulateRequest {
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub start: u64,
    pub count: u64,
    /// Body length in bytes (zeros), at most [`MAX_SIZE`].
    #[serde(default)]
    pub size: usize,
}

#[derive(Debug, Deserialize, Serialize)]
pub struct PopulateReply {
    pub created: u64,
    pub seconds: f64,
}

/// The key of object `n`.
pub fn key_of(prefix: &str, n: u64) -> String {
    format!("{prefix}{n:010}")
}

fn bad(status: StatusCode, msg: impl Into<String>) -> Response {
    json(status, &serde_json::json!({ "error": msg.into() }))
}

async fn populate(
    State(st): State<Arc<AdminState>>,
    Path(bucket): Path<String>,
    body: Bytes,
) -> Response {
    let req: PopulateRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad(StatusCode::BAD_REQUEST, format!("malformed request: {e}")),
    };
    if req.count > MAX_PER_CALL {
        return bad(
            StatusCode::BAD_REQUEST,
            format!("at most {MAX_PER_CALL} objects per call"),
        );
    }
    if req.size > MAX_SIZE {
        return bad(
            StatusCode::BAD_REQUEST,
            format!("size at most {MAX_SIZE} bytes"),
        );
    }
    let Ok(name) = BucketName::new(&bucket) else {
        return bad(StatusCode::BAD_REQUEST, "not a valid bucket name");
    };
    let Some(end) = req.start.checked_add(req.count) else {
        return bad(StatusCode::BAD_REQUEST, "start + count overflows");
    };
    if ObjectKey::new(key_of(&req.prefix, end)).is_err() {
        return bad(StatusCode::BAD_REQUEST, "not a valid key prefix");
    }
    let owner = match st.objects.metadata().get_bucket(&name).await {
        Ok(Some(b)) => b.owner,
        Ok(None) => return bad(StatusCode::NOT_FOUND, "no such bucket"),
        Err(e) => return bad(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    // Synthetic objects get no retention: a bucket with Object Lock is not for them.
    match st
        .objects
        .bucket_config(&name, cairn_metadata::BucketConfigKind::ObjectLock)
        .await
    {
        Ok(None) => {}
        Ok(Some(_)) => {
            return bad(
                StatusCode::CONFLICT,
                "the bucket has Object Lock: populate writes objects without retention",
            )
        }
        Err(e) => return bad(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
    let started = Instant::now();
    let body = Bytes::from(vec![0u8; req.size]);
    let objects = &st.objects;
    let made = futures::stream::iter(req.start..end)
        .map(|n| {
            let put = PutObject {
                bucket: name.clone(),
                key: ObjectKey::new(key_of(&req.prefix, n)).expect("checked above"),
                metadata: ObjectMetadata::default(),
                tags: TagSet::default(),
                acl: ObjectAcl {
                    owner: owner.clone(),
                    grants: Vec::new(),
                },
                condition: WriteCondition::Always,
                size: Some(req.size as u64),
                protection: cairn_objects::Protection::Managed,
            };
            let body =
                futures::stream::once(std::future::ready(Ok::<_, std::io::Error>(body.clone())));
            async move { objects.put_object(put, body, || None).await.map(|_| 1u64) }
        })
        .buffer_unordered(CONCURRENCY)
        .try_fold(0u64, |n, one| async move { Ok(n + one) })
        .await;
    match made {
        Ok(created) => json(
            StatusCode::OK,
            &PopulateReply {
                created,
                seconds: started.elapsed().as_secs_f64(),
            },
        ),
        Err(e) => bad(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("stopped after an error (objects before it may exist): {e}"),
        ),
    }
}
