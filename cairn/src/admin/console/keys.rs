//! The console's keys page, for the root key only (403 to any other): every access key with
//! whether it has an identity policy, a key's policy to read, set or remove, and the
//! cluster-wide Block Public Access. Like the cluster view these run in the process, with
//! the admin API's own functions ([`crate::admin::keys::key_views`],
//! [`crate::admin::key_policy`]): the same checks (a policy is parsed as the S3 front end
//! evaluates it; the root key takes none) and the same metadata commands.
//!
//! | Method and path                         | What                                        |
//! |-----------------------------------------|---------------------------------------------|
//! | `GET /console/api/keys`                 | the keys (no secrets), with `has_policy`    |
//! | `GET /console/api/keys/{ak}/policy`     | `{"policy": "…"}` (`null`: none)            |
//! | `PUT /console/api/keys/{ak}/policy`     | set it from `{"policy": "…"}`               |
//! | `DELETE /console/api/keys/{ak}/policy`  | remove it                                   |
//! | `GET/PUT/DELETE /console/api/public-access-block` | the cluster-wide settings, JSON as in the admin API |

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use cairn_metadata::PublicAccessBlock;
use serde::Deserialize;
use serde_json::json as j;

use super::{fail, require_root, AdminState, MAX_POLICY_BODY};
use crate::admin::json;
use crate::admin::key_lookup::{find_key, Refusal};
use crate::admin::key_policy::{check_policy, set_cluster_pab, set_policy};

pub(super) fn routes() -> Router<Arc<AdminState>> {
    Router::new()
        .route("/console/api/keys", get(list))
        .route(
            "/console/api/keys/{ak}/policy",
            get(get_policy)
                .put(put_policy)
                .layer(DefaultBodyLimit::max(MAX_POLICY_BODY))
                .delete(delete_policy),
        )
        .route(
            "/console/api/public-access-block",
            get(get_pab).put(put_pab).delete(delete_pab),
        )
}

macro_rules! root_only {
    ($st:expr, $h:expr, $what:expr) => {
        if let Err(r) = require_root(&$st, &$h, $what) {
            return *r;
        }
    };
}

/// An admin refusal as the page shows it.
fn refused((status, message): Refusal) -> Response {
    let code = match status {
        StatusCode::NOT_FOUND => "NoSuchAccessKey",
        StatusCode::CONFLICT => "Conflict",
        _ => "Unavailable",
    };
    fail(status, code, &message)
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    fail(
        StatusCode::SERVICE_UNAVAILABLE,
        "Unavailable",
        &format!("Metadata did not answer: {e}"),
    )
}

async fn list(State(st): State<Arc<AdminState>>, h: HeaderMap) -> Response {
    root_only!(st, h, "see the access keys");
    match crate::admin::keys::key_views(&st).await {
        Ok(keys) => json(StatusCode::OK, &keys),
        Err(e) => unavailable(e),
    }
}

async fn get_policy(
    State(st): State<Arc<AdminState>>,
    h: HeaderMap,
    Path(ak): Path<String>,
) -> Response {
    root_only!(st, h, "see key policies");
    if let Err(r) = find_key(&st, &ak).await {
        return refused(r);
    }
    match st.objects.access_key_policy(&ak).await {
        Ok(doc) => json(StatusCode::OK, &j!({ "policy": doc })),
        Err(e) => unavailable(e),
    }
}

#[derive(Deserialize)]
struct PolicyBody {
    policy: String,
}

async fn put_policy(
    State(st): State<Arc<AdminState>>,
    h: HeaderMap,
    Path(ak): Path<String>,
    body: Bytes,
) -> Response {
    root_only!(st, h, "set key policies");
    let Ok(req) = serde_json::from_slice::<PolicyBody>(&body) else {
        return fail(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Send the policy document as {\"policy\": \"…\"}.",
        );
    };
    let doc = match check_policy(req.policy.as_bytes()) {
        Ok(d) => d,
        Err(m) => return fail(StatusCode::BAD_REQUEST, "MalformedPolicy", &m),
    };
    if let Err(r) = find_key(&st, &ak).await {
        return refused(r);
    }
    if let Err(r) = set_policy(&st, &ak, Some(doc)).await {
        return refused(r);
    }
    tracing::info!(access_key = %ak, "access key policy set (console)");
    json(
        StatusCode::OK,
        &j!({ "access_key": ak, "has_policy": true }),
    )
}

async fn delete_policy(
    State(st): State<Arc<AdminState>>,
    h: HeaderMap,
    Path(ak): Path<String>,
) -> Response {
    root_only!(st, h, "remove key policies");
    if let Err(r) = find_key(&st, &ak).await {
        return refused(r);
    }
    if let Err(r) = set_policy(&st, &ak, None).await {
        return refused(r);
    }
    tracing::info!(access_key = %ak, "access key policy removed (console)");
    json(
        StatusCode::OK,
        &j!({ "access_key": ak, "has_policy": false }),
    )
}

async fn get_pab(State(st): State<Arc<AdminState>>, h: HeaderMap) -> Response {
    root_only!(st, h, "see the cluster-wide Block Public Access");
    match st.objects.cluster_public_access_block().await {
        Ok(p) => json(StatusCode::OK, &p),
        Err(e) => unavailable(e),
    }
}

async fn put_pab(State(st): State<Arc<AdminState>>, h: HeaderMap, body: Bytes) -> Response {
    root_only!(st, h, "change the cluster-wide Block Public Access");
    let Ok(pab) = serde_json::from_slice::<PublicAccessBlock>(&body) else {
        return fail(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Send the four Block Public Access settings.",
        );
    };
    match set_cluster_pab(&st, Some(pab)).await {
        Ok(p) => json(StatusCode::OK, &p),
        Err(r) => refused(r),
    }
}

async fn delete_pab(State(st): State<Arc<AdminState>>, h: HeaderMap) -> Response {
    root_only!(st, h, "change the cluster-wide Block Public Access");
    match set_cluster_pab(&st, None).await {
        Ok(p) => json(StatusCode::OK, &p),
        Err(r) => refused(r),
    }
}
