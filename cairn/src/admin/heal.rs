//! Admin endpoints of scrubbing and repair, and the cluster status `cairn status` shows.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use cairn_heal::{HealError, HealStatus, ScrubOptions};
use cairn_types::NodeId;
use serde::{Deserialize, Serialize};

use super::{json, AdminState, DatanodeView};

pub(super) fn routes() -> Router<Arc<AdminState>> {
    Router::new()
        .route("/admin/scrub", post(start_scrub).get(scrub_status))
        .route("/admin/scrub/history", get(history))
        .route("/admin/repair/rate", post(set_rate))
        .route("/admin/status", get(status))
}

/// The body of `POST /admin/scrub`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ScrubRequest {
    deep: bool,
    repair: bool,
    nodes: Option<Vec<u32>>,
    bucket: Option<String>,
    /// Deep-scrub read rate per datanode in MB/s (default: the server's).
    deep_rate_mb: Option<f64>,
    /// Answer with the report when the scrub is done (else 202 with its id at once).
    wait: bool,
    trigger: Option<String>,
}

/// The JSON body (empty: defaults), or the message of a 400.
fn parse<T: for<'de> Deserialize<'de> + Default>(body: &[u8]) -> Result<T, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| format!("malformed JSON: {e}\n"))
}

fn error(e: HealError) -> Response {
    let status = match e {
        HealError::Busy(_) => StatusCode::CONFLICT,
        HealError::Invalid(_) => StatusCode::BAD_REQUEST,
        HealError::Metadata(_) | HealError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
    };
    json(status, &serde_json::json!({ "error": e.to_string() }))
}

async fn start_scrub(State(st): State<Arc<AdminState>>, body: Bytes) -> Response {
    let req: ScrubRequest = match parse(&body) {
        Ok(r) => r,
        Err(msg) => return (StatusCode::BAD_REQUEST, msg).into_response(),
    };
    let opts = ScrubOptions {
        deep: req.deep,
        repair: req.repair,
        nodes: req.nodes.map(|ns| ns.into_iter().map(NodeId).collect()),
        bucket: req.bucket,
        deep_rate: req
            .deep_rate_mb
            .map(|mb| (mb.max(0.0) * 1_048_576.0) as u64)
            .unwrap_or_else(|| st.healer.default_deep_rate()),
        trigger: req.trigger.unwrap_or_else(|| "api".into()),
    };
    if req.wait {
        match st.healer.run_scrub(opts).await {
            Ok(report) => json(StatusCode::OK, &report),
            Err(e) => error(e),
        }
    } else {
        match st.healer.start(opts) {
            Ok(id) => json(StatusCode::ACCEPTED, &serde_json::json!({ "id": id })),
            Err(e) => error(e),
        }
    }
}

async fn scrub_status(State(st): State<Arc<AdminState>>) -> Response {
    json(StatusCode::OK, &st.healer.status())
}

async fn history(State(st): State<Arc<AdminState>>) -> Response {
    match st.healer.history().await {
        Ok(h) => json(StatusCode::OK, &h),
        Err(e) => error(e),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateRequest {
    /// MB/s; 0 means unlimited.
    mb_per_sec: f64,
}

async fn set_rate(State(st): State<Arc<AdminState>>, body: Bytes) -> Response {
    let req: RateRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, format!("malformed JSON: {e}\n")).into_response()
        }
    };
    if !req.mb_per_sec.is_finite() || req.mb_per_sec < 0.0 {
        return (StatusCode::BAD_REQUEST, "mb_per_sec must be 0 or more\n").into_response();
    }
    let bytes = (req.mb_per_sec * 1_048_576.0) as u64;
    st.healer.set_repair_rate(bytes);
    json(StatusCode::OK, &serde_json::json!({ "repair_rate": bytes }))
}

/// One datanode in `cairn status`.
#[derive(Serialize)]
struct NodeStatus {
    #[serde(flatten)]
    view: DatanodeView,
    state: &'static str,
    /// When the last scrub finished checking this datanode, and what it found there.
    last_scrub_ms: Option<i64>,
    last_scrub_found: Option<cairn_heal::Counts>,
}

#[derive(Serialize)]
struct ClusterStatus<'a> {
    metadata: serde_json::Value,
    /// Every node of the cluster with its roles (absent outside a cluster).
    nodes: Option<&'a Vec<super::nodes::NodeView>>,
    erasure_coding: String,
    /// Every storage class with its erasure coding.
    storage_classes: Vec<super::storage_classes::ClassView>,
    datanodes: Vec<NodeStatus>,
    heal: HealStatus,
    /// Shards outside their ring placement at the last scrub (what rebalancing moves).
    rebalance_pending: u64,
    /// This gateway's placement ring.
    ring: super::nodes::RingView,
    /// This node's background workers.
    workers: Vec<cairn_worker::WorkerSnapshot>,
    /// The cluster's lifecycle runs, as the leader's worker recorded them.
    lifecycle: cairn_lifecycle::worker::Progress,
    /// Every bucket with a quota, with its usage.
    quotas: Vec<super::quotas::QuotaView>,
    /// The keys of encryption at rest (absent when metadata could not be read).
    encryption: Option<super::master_keys::KeysView>,
}

async fn status(State(st): State<Arc<AdminState>>) -> Response {
    let heal = st.healer.status();
    let history = st.healer.history().await.unwrap_or_default();
    let cluster = super::nodes::cluster_status(&st).await;
    let views = super::all_datanode_views(&st, cluster.as_ref()).await;
    let datanodes = views
        .into_iter()
        .map(|view| {
            let id = view.status.id;
            let last = history
                .iter()
                .rev()
                .find_map(|r| r.nodes.iter().find(|n| n.node == id && n.reachable));
            NodeStatus {
                state: match (view.status.serving, view.reachable) {
                    (_, true) if view.draining => "draining",
                    (_, true) => "up",
                    (false, false) => "stopped",
                    (true, false) => "down",
                },
                last_scrub_ms: last.map(|n| n.finished_ms),
                last_scrub_found: last.map(|n| n.found),
                view,
            }
        })
        .collect();
    let metadata = match &cluster {
        Some(c) => serde_json::json!({
            "engine": "rocksdb",
            "replication": format!(
                "raft, {} voter(s), {} learner(s)",
                c.raft.members.iter().filter(|m| m.voter).count(),
                c.raft.members.iter().filter(|m| !m.voter).count()
            ),
            "leader": c.raft.leader.map_or_else(|| "none".to_string(), |l| format!("node{l}")),
            "voters": c.raft.members.iter().filter(|m| m.voter).map(|m| format!("node{}", m.id)).collect::<Vec<_>>(),
            "term": c.raft.term,
            "this_node": c.raft.id,
            "state": c.raft.state,
            "last_applied": c.raft.last_applied_index,
            "snapshot": c.raft.snapshot_index,
        }),
        None => serde_json::json!({
            "engine": "rocksdb",
            "replication": "none (single metadata node)",
            "leader": "local",
            "voters": ["local"],
        }),
    };
    let nodes = cluster.as_ref().map(|c| &c.nodes);
    let ec = st.objects.scheme();
    let rebalance_pending = heal.last.as_ref().map_or(0, |r| {
        if r.repair {
            r.failed.misplaced
        } else {
            r.found.misplaced
        }
    });
    json(
        StatusCode::OK,
        &ClusterStatus {
            metadata,
            nodes,
            erasure_coding: format!("{}+{}", ec.data, ec.parity),
            storage_classes: super::storage_classes::views(&st),
            datanodes,
            heal,
            rebalance_pending,
            ring: super::nodes::ring_view(&st.objects),
            workers: st.workers.snapshot(),
            lifecycle: cairn_lifecycle::worker::Progress::load(&st.objects)
                .await
                .unwrap_or_default(),
            quotas: super::quotas::with_quotas(&st).await.unwrap_or_default(),
            encryption: super::master_keys::keys_view(&st.objects).await.ok(),
        },
    )
}
