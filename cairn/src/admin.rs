//! The admin API: health checks for load balancers and orchestrators.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use cairn_objects::ObjectService;

/// `GET /health/live` (the process answers) and `GET /health/ready` (metadata and every
/// datanode answer).
pub fn router(objects: ObjectService) -> Router {
    Router::new()
        .route("/health/live", get(|| async { "ok\n" }))
        .route("/health/ready", get(ready))
        .with_state(Arc::new(objects))
}

async fn ready(State(objects): State<Arc<ObjectService>>) -> (StatusCode, String) {
    if let Err(e) = objects.metadata().list_buckets().await {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("metadata not ready: {e}\n"),
        );
    }
    for (id, node) in objects.nodes() {
        if let Err(e) = node.stats().await {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("datanode {id} not ready: {e}\n"),
            );
        }
    }
    (StatusCode::OK, "ready\n".into())
}
