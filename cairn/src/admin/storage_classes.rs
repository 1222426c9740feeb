//! Storage classes through the admin API: `GET /admin/storage-classes` (every class with
//! its erasure coding, what `cairn status` shows), `PUT`/`DELETE
//! /admin/storage-classes/{name}` (`cairn admin storage-class`), and a bucket's default
//! class, `GET`/`PUT`/`DELETE /admin/buckets/{b}/storage-class` (`cairn admin
//! bucket-storage-class`). The classes and their rules are `cairn_metadata::storage_class`'s;
//! this module checks what the cluster can hold and sets them.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use cairn_metadata::storage_class::STANDARD;
use cairn_metadata::{BucketConfigKind, Command, MetadataError};
use cairn_objects::ObjectsError;
use cairn_types::{BucketName, EcScheme};
use serde::{Deserialize, Serialize};

use super::quotas::bucket;
use super::{json, AdminState};

pub(super) fn routes() -> Router<Arc<AdminState>> {
    Router::new()
        .route("/admin/storage-classes", get(list))
        .route(
            "/admin/storage-classes/{name}",
            axum::routing::put(set_class).delete(remove_class),
        )
        .route(
            "/admin/buckets/{b}/storage-class",
            get(bucket_default)
                .put(set_bucket_default)
                .delete(clear_bucket_default),
        )
}

/// One class as the admin API lists it.
#[derive(Debug, Serialize)]
pub(crate) struct ClassView {
    pub name: String,
    /// `K+M`.
    pub ec: String,
    /// Whether its scheme is the built-in one (not set by the operator).
    pub built_in: bool,
}

/// Every class with a scheme, as this gateway knows them.
pub(crate) fn views(st: &AdminState) -> Vec<ClassView> {
    let classes = st.objects.storage_classes();
    classes
        .all()
        .into_iter()
        .map(|(name, ec)| ClassView {
            built_in: !classes.defined.contains_key(&name),
            name,
            ec: ec.to_string(),
        })
        .collect()
}

fn refuse(status: StatusCode, why: impl std::fmt::Display) -> Response {
    (status, format!("{why}\n")).into_response()
}

/// A metadata failure: an unknown outcome asks to ask again (the change may have landed).
fn failed(e: ObjectsError) -> Response {
    match e {
        ObjectsError::Metadata(MetadataError::NoSuchBucket) => {
            refuse(StatusCode::NOT_FOUND, "no such bucket")
        }
        ObjectsError::Metadata(MetadataError::InvalidArgument(why)) => {
            refuse(StatusCode::BAD_REQUEST, why)
        }
        e if e.outcome_unknown() => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{e}; the change may have been made: ask again to know"),
        ),
        ObjectsError::InvalidStorageClass(name) => refuse(
            StatusCode::BAD_REQUEST,
            format!("no storage class {name} (see `cairn admin storage-class`)"),
        ),
        e => refuse(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

async fn list(State(st): State<Arc<AdminState>>) -> Response {
    // Read afresh: a class set through another node shows at once.
    if let Err(e) = st.objects.refresh_storage_classes().await {
        return failed(e);
    }
    json(StatusCode::OK, &views(&st))
}

#[derive(Deserialize)]
struct SetClass {
    ec: String,
}

async fn set_class(
    State(st): State<Arc<AdminState>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let ec: EcScheme = match serde_json::from_slice::<SetClass>(&body)
        .map_err(|e| e.to_string())
        .and_then(|b| b.ec.parse())
    {
        Ok(ec) => ec,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"ec\": \"K+M\"}}: {e}"),
            )
        }
    };
    if name == STANDARD {
        return refuse(
            StatusCode::BAD_REQUEST,
            "STANDARD is the cluster's erasure coding: restart the servers with --ec to change it",
        );
    }
    // Every stripe of the class needs that many distinct datanodes that take placements.
    let view = st.objects.membership().view();
    let placeable = view.nodes().len() - view.drained().len();
    if ec.total() > placeable {
        return refuse(
            StatusCode::CONFLICT,
            format!(
                "{ec} needs {} datanodes; {placeable} take new shards",
                ec.total()
            ),
        );
    }
    change(&st, name, Some(ec)).await
}

async fn remove_class(State(st): State<Arc<AdminState>>, Path(name): Path<String>) -> Response {
    change(&st, name, None).await
}

async fn change(st: &AdminState, name: String, ec: Option<EcScheme>) -> Response {
    let cmd = Command::SetStorageClass {
        name: name.clone(),
        ec,
    };
    if let Err(e) = st.objects.metadata().apply(cmd).await {
        return failed(e.into());
    }
    if let Err(e) = st.objects.refresh_storage_classes().await {
        tracing::warn!(error = %e, "re-reading the storage classes");
    }
    tracing::info!(class = %name, ec = ?ec, "storage class changed; applies to new writes");
    json(StatusCode::OK, &views(st))
}

#[derive(Debug, Serialize, Deserialize)]
struct BucketClass {
    /// `None`: writes that name no class are `STANDARD`.
    class: Option<String>,
}

async fn bucket_default(State(st): State<Arc<AdminState>>, Path(b): Path<String>) -> Response {
    let b = match bucket(&b) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    match read_default(&st, &b).await {
        Ok(class) => json(StatusCode::OK, &BucketClass { class }),
        Err(e) => failed(e),
    }
}

async fn read_default(st: &AdminState, b: &BucketName) -> Result<Option<String>, ObjectsError> {
    st.objects.bucket(b).await?;
    let raw = st
        .objects
        .bucket_config(b, BucketConfigKind::StorageClass)
        .await?;
    Ok(raw.map(|v| String::from_utf8_lossy(&v).into_owned()))
}

async fn set_bucket_default(
    State(st): State<Arc<AdminState>>,
    Path(b): Path<String>,
    body: Bytes,
) -> Response {
    let b = match bucket(&b) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let class = match serde_json::from_slice::<BucketClass>(&body) {
        Ok(BucketClass { class: Some(c) }) => c,
        Ok(BucketClass { class: None }) => return clear(&st, &b).await,
        Err(e) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"class\": \"NAME\"}}: {e}"),
            )
        }
    };
    // Only a class that has a scheme: every write into the bucket would fail otherwise.
    if let Err(e) = st.objects.class_scheme(Some(&class)).await {
        return failed(e);
    }
    if let Err(e) = st.objects.bucket(&b).await {
        return failed(e);
    }
    let value = (class != STANDARD).then(|| class.clone().into_bytes());
    if let Err(e) = st
        .objects
        .set_bucket_config(&b, BucketConfigKind::StorageClass, value)
        .await
    {
        return failed(e);
    }
    tracing::info!(bucket = %b, class = %class, "bucket default storage class changed");
    let class = (class != STANDARD).then_some(class);
    json(StatusCode::OK, &BucketClass { class })
}

async fn clear_bucket_default(
    State(st): State<Arc<AdminState>>,
    Path(b): Path<String>,
) -> Response {
    match bucket(&b) {
        Ok(b) => clear(&st, &b).await,
        Err(r) => *r,
    }
}

async fn clear(st: &AdminState, b: &BucketName) -> Response {
    if let Err(e) = st.objects.bucket(b).await {
        return failed(e);
    }
    if let Err(e) = st
        .objects
        .set_bucket_config(b, BucketConfigKind::StorageClass, None)
        .await
    {
        return failed(e);
    }
    json(StatusCode::OK, &BucketClass { class: None })
}
