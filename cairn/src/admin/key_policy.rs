//! Access policies the operator sets through the admin API: a key's identity policy
//! (`GET`/`PUT`/`DELETE /admin/keys/{ak}/policy`, what `cairn key set-policy` calls; also
//! given at creation, `POST /admin/keys` with `"policy"`) and the cluster-wide Block Public
//! Access (`GET`/`PUT`/`DELETE /admin/public-access-block`, `cairn admin
//! public-access-block`). A policy is checked with the same parser the S3 front end
//! evaluates it with (a malformed one is 400 with the parser's message); the root key takes
//! none, so that the operator cannot lock itself out. Both are in metadata (replicated) and
//! read by every gateway with each request, so a change counts at once everywhere.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use cairn_metadata::PublicAccessBlock;
use cairn_policy::{Policy, PolicyKind};

use super::key_lookup::{answer, existing_key, key_change_refusal, Refusal};
use super::{json, AdminState};

/// Largest identity policy accepted (as for bucket policies).
const MAX_POLICY: usize = 20 << 10;

pub(super) fn routes() -> Router<Arc<AdminState>> {
    Router::new()
        .route(
            "/admin/keys/{ak}/policy",
            get(get_policy).put(put_policy).delete(delete_policy),
        )
        .route(
            "/admin/public-access-block",
            get(get_pab).put(put_pab).delete(delete_pab),
        )
}

/// `doc` checked as an identity policy; the message says what is wrong.
pub(super) fn check_policy(doc: &[u8]) -> Result<String, String> {
    if doc.len() > MAX_POLICY {
        return Err(format!("a policy is at most {MAX_POLICY} bytes"));
    }
    let text = std::str::from_utf8(doc).map_err(|_| "the policy is not UTF-8".to_string())?;
    Policy::parse(doc, PolicyKind::Identity).map_err(|e| format!("malformed policy: {e}"))?;
    Ok(text.to_string())
}

/// Sets or removes `ak`'s policy (the caller has found the key and checked the document);
/// the root key takes none.
pub(super) async fn set_policy(
    st: &AdminState,
    ak: &str,
    policy: Option<String>,
) -> Result<(), Refusal> {
    if policy.is_some() && st.keys.is_root(ak) {
        return Err((
            StatusCode::CONFLICT,
            "the root key takes no policy (it would lock the operator out); give the policy to another key".into(),
        ));
    }
    st.objects
        .set_access_key_policy(ak, policy)
        .await
        .map_err(|e| match e {
            cairn_objects::ObjectsError::Metadata(m) => key_change_refusal(m),
            e => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        })
}

async fn get_policy(State(st): State<Arc<AdminState>>, Path(ak): Path<String>) -> Response {
    if let Err(r) = existing_key(&st, &ak).await {
        return r;
    }
    match st.objects.access_key_policy(&ak).await {
        Ok(Some(doc)) => {
            (StatusCode::OK, [("content-type", "application/json")], doc).into_response()
        }
        Ok(None) => (
            StatusCode::NOT_FOUND,
            format!("access key {ak} has no policy\n"),
        )
            .into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}

async fn put_policy(
    State(st): State<Arc<AdminState>>,
    Path(ak): Path<String>,
    body: Bytes,
) -> Response {
    let doc = match check_policy(&body) {
        Ok(d) => d,
        Err(m) => return (StatusCode::BAD_REQUEST, format!("{m}\n")).into_response(),
    };
    if let Err(r) = existing_key(&st, &ak).await {
        return r;
    }
    if let Err(r) = set_policy(&st, &ak, Some(doc)).await {
        return answer(r);
    }
    tracing::info!(access_key = %ak, "access key policy set");
    StatusCode::NO_CONTENT.into_response()
}

async fn delete_policy(State(st): State<Arc<AdminState>>, Path(ak): Path<String>) -> Response {
    if let Err(r) = existing_key(&st, &ak).await {
        return r;
    }
    if let Err(r) = set_policy(&st, &ak, None).await {
        return answer(r);
    }
    tracing::info!(access_key = %ak, "access key policy removed");
    StatusCode::NO_CONTENT.into_response()
}

async fn get_pab(State(st): State<Arc<AdminState>>) -> Response {
    match st.objects.cluster_public_access_block().await {
        Ok(p) => json(StatusCode::OK, &p),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}

async fn put_pab(State(st): State<Arc<AdminState>>, body: Bytes) -> Response {
    let pab: PublicAccessBlock = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("expected {{\"block_public_acls\": bool, \"ignore_public_acls\": bool, \"block_public_policy\": bool, \"restrict_public_buckets\": bool}}: {e}\n"),
            )
                .into_response()
        }
    };
    store_pab(&st, Some(pab)).await
}

async fn delete_pab(State(st): State<Arc<AdminState>>) -> Response {
    store_pab(&st, None).await
}

async fn store_pab(st: &AdminState, pab: Option<PublicAccessBlock>) -> Response {
    match set_cluster_pab(st, pab).await {
        Ok(p) => json(StatusCode::OK, &p),
        Err(r) => answer(r),
    }
}

/// Sets (`Some`) or removes (`None`) the cluster-wide Block Public Access; the settings in
/// force after the change.
pub(super) async fn set_cluster_pab(
    st: &AdminState,
    pab: Option<PublicAccessBlock>,
) -> Result<PublicAccessBlock, Refusal> {
    if let Err(e) = st.objects.set_cluster_public_access_block(pab).await {
        return Err((StatusCode::SERVICE_UNAVAILABLE, e.to_string()));
    }
    tracing::info!(settings = ?pab, "cluster-wide Block Public Access changed");
    Ok(pab.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_are_checked_before_they_are_stored() {
        let ok = br#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::backups/restic/*"}]}"#;
        assert!(check_policy(ok).is_ok());
        assert!(check_policy(b"{").unwrap_err().contains("malformed"));
        // An identity policy names no principal: it is the key's.
        let with_principal =
            br#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}]}"#;
        assert!(check_policy(with_principal).is_err());
        assert!(check_policy(&vec![b' '; MAX_POLICY + 1]).is_err());
    }
}
