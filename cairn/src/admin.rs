//! The admin API: health checks for load balancers and orchestrators, Prometheus metrics,
//! and operator actions on the local datanodes.
//!
//! | Method and path                      | Auth   | What                                      |
//! |--------------------------------------|--------|-------------------------------------------|
//! | `GET /health/live`                   | none   | the process answers                       |
//! | `GET /health/ready`                  | none   | metadata and every datanode answer        |
//! | `GET /metrics`                       | none   | Prometheus text exposition                |
//! | `GET /admin/datanodes`               | bearer | JSON: each datanode, serving or not, usage |
//! | `POST /admin/datanodes/{n}/stop`     | bearer | stop serving datanode n                   |
//! | `POST /admin/datanodes/{n}/start`    | bearer | serve datanode n again                    |
//!
//! "bearer" is `Authorization: Bearer <cluster secret>`, compared in constant time.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use cairn_objects::ObjectService;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;
use subtle::ConstantTimeEq;

use crate::datanodes::LocalDatanodes;

/// How long a metrics scrape or a status call waits for one datanode's stats.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabel {
    node: String,
}

/// Gauges refreshed from the datanodes at every scrape.
#[derive(Default)]
struct NodeGauges {
    up: Family<NodeLabel, Gauge>,
    shards: Family<NodeLabel, Gauge>,
    live_bytes: Family<NodeLabel, Gauge>,
    disk_bytes: Family<NodeLabel, Gauge>,
}

pub struct AdminState {
    objects: ObjectService,
    datanodes: Arc<LocalDatanodes>,
    registry: Registry,
    gauges: NodeGauges,
    bearer: Vec<u8>,
}

impl AdminState {
    pub fn new(
        objects: ObjectService,
        datanodes: Arc<LocalDatanodes>,
        mut registry: Registry,
        cluster_secret: &str,
    ) -> AdminState {
        let gauges = NodeGauges::default();
        let r = registry.sub_registry_with_prefix("cairn_datanode");
        r.register("up", "1 if the datanode answers", gauges.up.clone());
        r.register("shards", "Shards stored", gauges.shards.clone());
        r.register(
            "live_bytes",
            "Bytes of live shards",
            gauges.live_bytes.clone(),
        );
        r.register(
            "disk_bytes",
            "Bytes of segment files on disk",
            gauges.disk_bytes.clone(),
        );
        AdminState {
            objects,
            datanodes,
            registry,
            gauges,
            bearer: format!("Bearer {cluster_secret}").into_bytes(),
        }
    }
}

pub fn router(state: AdminState) -> Router {
    let state = Arc::new(state);
    let operator = Router::new()
        .route("/admin/datanodes", get(list_datanodes))
        .route("/admin/datanodes/{n}/stop", post(stop_datanode))
        .route("/admin/datanodes/{n}/start", post(start_datanode))
        .layer(middleware::from_fn_with_state(state.clone(), authorize));
    Router::new()
        .route("/health/live", get(|| async { "ok\n" }))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .merge(operator)
        .with_state(state)
}

async fn authorize(State(st): State<Arc<AdminState>>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes())
        .unwrap_or(b"");
    if bool::from(presented.ct_eq(&st.bearer)) {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            "missing or wrong cluster secret (Authorization: Bearer <secret>)\n",
        )
            .into_response()
    }
}

async fn ready(State(st): State<Arc<AdminState>>) -> (StatusCode, String) {
    if let Err(e) = st.objects.metadata().list_buckets().await {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("metadata not ready: {e}\n"),
        );
    }
    for (id, node) in st.objects.nodes() {
        if let Err(e) = node.stats().await {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("datanode {id} not ready: {e}\n"),
            );
        }
    }
    (StatusCode::OK, "ready\n".into())
}

async fn metrics(State(st): State<Arc<AdminState>>) -> Response {
    for (id, node) in st.objects.nodes() {
        let label = NodeLabel {
            node: id.to_string(),
        };
        match tokio::time::timeout(PROBE_TIMEOUT, node.stats()).await {
            Ok(Ok(s)) => {
                st.gauges.up.get_or_create(&label).set(1);
                st.gauges.shards.get_or_create(&label).set(s.shards as i64);
                st.gauges
                    .live_bytes
                    .get_or_create(&label)
                    .set(s.live_bytes as i64);
                st.gauges
                    .disk_bytes
                    .get_or_create(&label)
                    .set(s.disk_bytes as i64);
            }
            _ => {
                st.gauges.up.get_or_create(&label).set(0);
            }
        }
    }
    let mut out = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &st.registry) {
        return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

#[derive(Serialize)]
struct DatanodeView {
    #[serde(flatten)]
    status: crate::datanodes::DatanodeStatus,
    reachable: bool,
    shards: Option<u64>,
    live_bytes: Option<u64>,
    disk_bytes: Option<u64>,
}

async fn list_datanodes(State(st): State<Arc<AdminState>>) -> Response {
    let mut out = Vec::new();
    for status in st.datanodes.status().await {
        let stats = match st.objects.nodes().get(&cairn_types::NodeId(status.id)) {
            Some(node) => tokio::time::timeout(PROBE_TIMEOUT, node.stats())
                .await
                .ok()
                .and_then(Result::ok),
            None => None,
        };
        out.push(DatanodeView {
            status,
            reachable: stats.is_some(),
            shards: stats.map(|s| s.shards),
            live_bytes: stats.map(|s| s.live_bytes),
            disk_bytes: stats.map(|s| s.disk_bytes),
        });
    }
    match serde_json::to_vec_pretty(&out) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn stop_datanode(State(st): State<Arc<AdminState>>, Path(n): Path<usize>) -> Response {
    match st.datanodes.stop(n).await {
        Ok(true) => (StatusCode::OK, format!("datanode {n} stopped\n")).into_response(),
        Ok(false) => (
            StatusCode::OK,
            format!("datanode {n} was already stopped\n"),
        )
            .into_response(),
        Err(e) => (StatusCode::NOT_FOUND, format!("datanode {n}: {e}\n")).into_response(),
    }
}

async fn start_datanode(State(st): State<Arc<AdminState>>, Path(n): Path<usize>) -> Response {
    match st.datanodes.start(n).await {
        Ok(true) => (StatusCode::OK, format!("datanode {n} started\n")).into_response(),
        Ok(false) => (
            StatusCode::OK,
            format!("datanode {n} was already serving\n"),
        )
            .into_response(),
        Err(e) if n >= st.datanodes.len() => {
            (StatusCode::NOT_FOUND, format!("datanode {n}: {e}\n")).into_response()
        }
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("datanode {n} could not start: {e:#}\n"),
        )
            .into_response(),
    }
}
