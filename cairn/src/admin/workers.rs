//! Admin endpoints of the background workers ([`cairn_worker`]): list them, pause one at
//! its next safe point, resume it. Workers belong to this process: in a cluster, garbage
//! collection and scheduled scrubs run on the metadata leader, so that is where pausing
//! them matters.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use cairn_worker::WorkerError;

use super::{json, AdminState};

pub(super) fn routes() -> Router<Arc<AdminState>> {
    Router::new()
        .route("/admin/workers", get(list))
        .route("/admin/workers/{name}/pause", post(pause))
        .route("/admin/workers/{name}/resume", post(resume))
}

async fn list(State(st): State<Arc<AdminState>>) -> Response {
    json(StatusCode::OK, &st.workers.snapshot())
}

async fn pause(State(st): State<Arc<AdminState>>, Path(name): Path<String>) -> Response {
    answer(st.workers.pause(&name))
}

async fn resume(State(st): State<Arc<AdminState>>, Path(name): Path<String>) -> Response {
    answer(st.workers.resume(&name))
}

fn answer(r: Result<cairn_worker::WorkerSnapshot, WorkerError>) -> Response {
    match r {
        Ok(snapshot) => json(StatusCode::OK, &snapshot),
        Err(e @ WorkerError::NotFound(_)) => json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({ "error": e.to_string() }),
        ),
        Err(e) => json(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({ "error": e.to_string() }),
        ),
    }
}
