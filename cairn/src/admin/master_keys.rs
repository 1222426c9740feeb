//! Master keys of encryption at rest through the admin API: `GET /admin/master-keys` (the
//! key ids, the active one, and how the last rotation got on) and `POST
//! /admin/master-keys/rotate` (`cairn admin rotate-master-key`: adds a key and re-wraps
//! every data key under it in the background); the named keys of the built-in KMS:
//! `GET /admin/kms-keys` (`cairn admin kms-key`) and `POST /admin/kms-keys/{name}`
//! (`cairn admin kms-key NAME`). `cairn status` shows the same [`KeysView`]. The keys and the re-wrap are `cairn_objects`'; this
//! module starts them and reports.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use cairn_metadata::master_keys::RewrapProgress;
use cairn_objects::{ObjectService, ObjectsError};
use serde::Serialize;

use super::{json, AdminState};

pub(super) fn routes() -> Router<Arc<AdminState>> {
    Router::new()
        .route("/admin/master-keys", get(status))
        .route("/admin/master-keys/rotate", post(rotate))
        .route("/admin/kms-keys", get(kms_keys))
        .route("/admin/kms-keys/{name}", post(create_kms_key))
}

/// One KMS key as `GET /admin/kms-keys` lists it.
#[derive(Debug, Serialize)]
pub(crate) struct KmsKeyView {
    pub name: String,
    pub created_ms: i64,
}

async fn kms_keys(State(st): State<Arc<AdminState>>) -> Response {
    match st.objects.kms_keys().await {
        Ok(keys) => json(
            StatusCode::OK,
            &keys
                .into_iter()
                .map(|(name, created_ms)| KmsKeyView { name, created_ms })
                .collect::<Vec<_>>(),
        ),
        Err(e) => unavailable(e),
    }
}

/// Makes a KMS key: 201 when made, 200 when one of that name exists (it is kept).
async fn create_kms_key(State(st): State<Arc<AdminState>>, Path(name): Path<String>) -> Response {
    if !cairn_sse::KmsKey::valid_name(&name) {
        return (
            StatusCode::BAD_REQUEST,
            format!(
                "bad KMS key name {name:?}: 1 to {} letters, digits and / _ - . :\n",
                cairn_sse::KmsKey::MAX_NAME
            ),
        )
            .into_response();
    }
    match st.objects.create_kms_key(&name).await {
        Ok(made) => json(
            if made {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
            &serde_json::json!({ "name": name, "created": made }),
        ),
        Err(e) => unavailable(e),
    }
}

/// What `GET /admin/master-keys` answers (and `cairn status` shows): the master keys,
/// the active one, the last rotation, and the KMS keys.
#[derive(Debug, Serialize)]
pub(crate) struct KeysView {
    pub keys: Vec<u32>,
    pub active: Option<u32>,
    pub rotation: Option<RotationView>,
    pub kms_keys: Vec<String>,
}

/// The keys as metadata holds them now (another node may have added some).
pub(crate) async fn keys_view(objects: &ObjectService) -> Result<KeysView, ObjectsError> {
    objects.reload_keyring().await?;
    let ring = objects.keyring();
    let rotation = objects.rewrap_progress().await?;
    Ok(KeysView {
        keys: ring.ids(),
        active: ring.active(),
        rotation: rotation.as_ref().map(RotationView::from),
        kms_keys: ring.kms_names(),
    })
}

/// A rotation's progress.
#[derive(Debug, Serialize)]
pub(crate) struct RotationView {
    pub target: u32,
    pub passes: u32,
    pub scanned: u64,
    pub rewrapped: u64,
    pub done: bool,
}

impl From<&RewrapProgress> for RotationView {
    fn from(p: &RewrapProgress) -> Self {
        RotationView {
            target: p.target,
            passes: p.passes,
            scanned: p.scanned,
            rewrapped: p.rewrapped,
            done: p.done,
        }
    }
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response()
}

async fn status(State(st): State<Arc<AdminState>>) -> Response {
    match keys_view(&st.objects).await {
        Ok(v) => json(StatusCode::OK, &v),
        Err(e) => unavailable(e),
    }
}

async fn rotate(State(st): State<Arc<AdminState>>) -> Response {
    match st.objects.start_rotation().await {
        Ok(id) => {
            spawn_rewrap(st.objects.clone());
            json(StatusCode::OK, &serde_json::json!({ "active": id }))
        }
        Err(e) => unavailable(e),
    }
}

/// Carries a recorded, unfinished rotation on in the background (at start, and after a
/// rotation is asked for); logs its end.
pub(crate) fn spawn_rewrap(objects: ObjectService) {
    tokio::spawn(async move {
        let report = |p: &RewrapProgress| {
            tracing::debug!(
                target = p.target,
                pass = p.passes,
                scanned = p.scanned,
                rewrapped = p.rewrapped,
                "re-wrapping data keys"
            )
        };
        match objects.run_rewrap(report).await {
            Ok(Some(p)) if p.done => tracing::info!(
                target = p.target,
                rewrapped = p.rewrapped,
                "master key rotation done: every data key is under the new key"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "master key rotation stopped; it resumes at the next start or rotation")
            }
        }
    });
}
