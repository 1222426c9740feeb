//! The console's bucket Permissions tab: the bucket policy, whether the bucket is public,
//! its Block Public Access and its Object Ownership. Like the other data calls
//! ([`super::data`]) each is an S3 request signed with the session's key, so S3's own
//! authorization decides who may see or change them. A refusal comes back with its S3 code
//! and S3's own message where that says more than "Access Denied": what is malformed in a
//! policy, what Block Public Access refused.
//!
//! | Method and path                                    | S3 call                          |
//! |----------------------------------------------------|----------------------------------|
//! | `GET /console/api/buckets/{b}/policy`              | GetBucketPolicy (`null`: none)   |
//! | `PUT /console/api/buckets/{b}/policy`              | PutBucketPolicy, `{"policy": "…"}` |
//! | `DELETE /console/api/buckets/{b}/policy`           | DeleteBucketPolicy               |
//! | `GET /console/api/buckets/{b}/policy-status`       | GetBucketPolicyStatus            |
//! | `GET/PUT/DELETE …/{b}/public-access-block`         | Get/Put/DeletePublicAccessBlock  |
//! | `GET/PUT/DELETE …/{b}/ownership`                   | Get/Put/DeleteBucketOwnershipControls |
//!
//! Block Public Access is JSON as in the admin API (`{"block_public_acls": bool, …}`, see
//! [`PublicAccessBlock`]); Object Ownership is `{"ownership": "BucketOwnerEnforced"}`.

use std::sync::Arc;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::types::{
    ObjectOwnership, OwnershipControls, OwnershipControlsRule, PublicAccessBlockConfiguration,
};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use cairn_metadata::PublicAccessBlock;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json as j;

use super::data::{open, s3_error};
use super::{fail, AdminState, MAX_POLICY_BODY};
use crate::admin::json;

pub(super) fn routes() -> Router<Arc<AdminState>> {
    Router::new()
        .route(
            "/console/api/buckets/{b}/policy",
            get(get_policy)
                .put(put_policy)
                .layer(DefaultBodyLimit::max(MAX_POLICY_BODY))
                .delete(delete_policy),
        )
        .route("/console/api/buckets/{b}/policy-status", get(policy_status))
        .route(
            "/console/api/buckets/{b}/public-access-block",
            get(get_pab).put(put_pab).delete(delete_pab),
        )
        .route(
            "/console/api/buckets/{b}/ownership",
            get(get_ownership)
                .put(put_ownership)
                .delete(delete_ownership),
        )
}

/// The three Object Ownership settings, as S3 names them.
const OWNERSHIPS: [&str; 3] = [
    "BucketOwnerEnforced",
    "BucketOwnerPreferred",
    "ObjectWriter",
];

/// What S3 refused. Its own message where it says something ("MalformedPolicy: …",
/// Block Public Access refusing a public policy); else as the other data calls put it.
fn refused<E: ProvideErrorMetadata + std::fmt::Debug>(
    e: SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> Response {
    let code = e.code().unwrap_or_default().to_string();
    let message = e.message().map(str::trim).unwrap_or_default().to_string();
    let status = e
        .raw_response()
        .and_then(|r| StatusCode::from_u16(r.status().as_u16()).ok());
    match status {
        Some(status)
            if !code.is_empty()
                && code != "NoSuchBucket"
                && !message.is_empty()
                && message != "Access Denied" =>
        {
            fail(status, &code, &message)
        }
        _ => s3_error(e),
    }
}

macro_rules! open {
    ($st:expr, $h:expr) => {
        match open(&$st, &$h) {
            Ok(c) => c,
            Err(r) => return *r,
        }
    };
}

macro_rules! s3 {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return refused(e),
        }
    };
}

/// The body of a PUT, or the 400 saying what to send.
fn body<T: DeserializeOwned>(body: &[u8], what: &str) -> Result<T, Box<Response>> {
    serde_json::from_slice(body)
        .map_err(|_| Box::new(fail(StatusCode::BAD_REQUEST, "BadRequest", what)))
}

macro_rules! body {
    ($b:expr, $what:expr) => {
        match body($b, $what) {
            Ok(v) => v,
            Err(r) => return *r,
        }
    };
}

async fn get_policy(
    State(st): State<Arc<AdminState>>,
    h: HeaderMap,
    Path(b): Path<String>,
) -> Response {
    let s3 = open!(st, h);
    match s3.get_bucket_policy().bucket(&b).send().await {
        Ok(out) => json(StatusCode::OK, &j!({ "policy": out.policy() })),
        Err(e) if e.code() == Some("NoSuchBucketPolicy") => {
            json(StatusCode::OK, &j!({ "policy": null }))
        }
        Err(e) => refused(e),
    }
}

#[derive(Deserialize)]
struct PolicyBody {
    policy: String,
}

async fn put_policy(
    State(st): State<Arc<AdminState>>,
    h: HeaderMap,
    Path(b): Path<String>,
    raw: Bytes,
) -> Response {
    let s3 = open!(st, h);
    let req: PolicyBody = body!(&raw, "Send the policy document as {\"policy\": \"…\"}.");
    s3!(s3
        .put_bucket_policy()
        .bucket(&b)
        .policy(req.policy)
        .send()
        .await);
    json(StatusCode::OK, &j!({ "saved": true }))
}

async fn delete_policy(
    State(st): State<Arc<AdminState>>,
    h: HeaderMap,
    Path(b): Path<String>,
) -> Response {
    let s3 = open!(st, h);
    s3!(s3.delete_bucket_policy().bucket(&b).send().await);
    json(StatusCode::OK, &j!({ "deleted": true }))
}

async fn policy_status(
    State(st): State<Arc<AdminState>>,
    h: HeaderMap,
    Path(b): Path<String>,
) -> Response {
    let s3 = open!(st, h);
    let out = s3!(s3.get_bucket_policy_status().bucket(&b).send().await);
    let public = out
        .policy_status()
        .and_then(|p| p.is_public())
        .unwrap_or(false);
    json(StatusCode::OK, &j!({ "public": public }))
}

async fn get_pab(
    State(st): State<Arc<AdminState>>,
    h: HeaderMap,
    Path(b): Path<String>,
) -> Response {
    let s3 = open!(st, h);
    match s3.get_public_access_block().bucket(&b).send().await {
        Ok(out) => {
            let c = out.public_access_block_configuration();
            let on = |v: Option<bool>| v.unwrap_or(false);
            let pab = c.map(|c| PublicAccessBlock {
                block_public_acls: on(c.block_public_acls()),
                ignore_public_acls: on(c.ignore_public_acls()),
                block_public_policy: on(c.block_public_policy()),
                restrict_public_buckets: on(c.restrict_public_buckets()),
            });
            json(StatusCode::OK, &j!({ "public_access_block": pab }))
        }
        Err(e) if e.code() == Some("NoSuchPublicAccessBlockConfiguration") => {
            json(StatusCode::OK, &j!({ "public_access_block": null }))
        }
        Err(e) => refused(e),
    }
}

async fn put_pab(
    State(st): State<Arc<AdminState>>,
    h: HeaderMap,
    Path(b): Path<String>,
    raw: Bytes,
) -> Response {
    let s3 = open!(st, h);
    let p: PublicAccessBlock = body!(&raw, "Send the four Block Public Access settings.");
    let conf = PublicAccessBlockConfiguration::builder()
        .block_public_acls(p.block_public_acls)
        .ignore_public_acls(p.ignore_public_acls)
        .block_public_policy(p.block_public_policy)
        .restrict_public_buckets(p.restrict_public_buckets)
        .build();
    s3!(s3
        .put_public_access_block()
        .bucket(&b)
        .public_access_block_configuration(conf)
        .send()
        .await);
    json(StatusCode::OK, &j!({ "public_access_block": p }))
}

async fn delete_pab(
    State(st): State<Arc<AdminState>>,
    h: HeaderMap,
    Path(b): Path<String>,
) -> Response {
    let s3 = open!(st, h);
    s3!(s3.delete_public_access_block().bucket(&b).send().await);
    json(StatusCode::OK, &j!({ "public_access_block": null }))
}

async fn get_ownership(
    State(st): State<Arc<AdminState>>,
    h: HeaderMap,
    Path(b): Path<String>,
) -> Response {
    let s3 = open!(st, h);
    match s3.get_bucket_ownership_controls().bucket(&b).send().await {
        Ok(out) => {
            let o = out
                .ownership_controls()
                .and_then(|c| c.rules().first())
                .map(|r| r.object_ownership().as_str().to_string());
            json(StatusCode::OK, &j!({ "ownership": o }))
        }
        Err(e) if e.code() == Some("OwnershipControlsNotFoundError") => {
            json(StatusCode::OK, &j!({ "ownership": null }))
        }
        Err(e) => refused(e),
    }
}

#[derive(Deserialize)]
struct OwnershipBody {
    ownership: String,
}

async fn put_ownership(
    State(st): State<Arc<AdminState>>,
    h: HeaderMap,
    Path(b): Path<String>,
    raw: Bytes,
) -> Response {
    let s3 = open!(st, h);
    let what = "Pick ObjectWriter, BucketOwnerPreferred or BucketOwnerEnforced.";
    let req: OwnershipBody = body!(&raw, what);
    if !OWNERSHIPS.contains(&req.ownership.as_str()) {
        return fail(StatusCode::BAD_REQUEST, "BadRequest", what);
    }
    let rule = OwnershipControlsRule::builder()
        .object_ownership(ObjectOwnership::from(req.ownership.as_str()))
        .build();
    let controls = rule.and_then(|r| OwnershipControls::builder().rules(r).build());
    let Ok(controls) = controls else {
        return fail(StatusCode::BAD_REQUEST, "BadRequest", what);
    };
    s3!(s3
        .put_bucket_ownership_controls()
        .bucket(&b)
        .ownership_controls(controls)
        .send()
        .await);
    json(StatusCode::OK, &j!({ "ownership": req.ownership }))
}

async fn delete_ownership(
    State(st): State<Arc<AdminState>>,
    h: HeaderMap,
    Path(b): Path<String>,
) -> Response {
    let s3 = open!(st, h);
    s3!(s3
        .delete_bucket_ownership_controls()
        .bucket(&b)
        .send()
        .await);
    json(StatusCode::OK, &j!({ "ownership": null }))
}
