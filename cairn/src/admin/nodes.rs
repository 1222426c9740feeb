//! Cluster membership through the admin API (what `cairn node` calls):
//!
//! | Method and path                 | What                                                  |
//! |---------------------------------|-------------------------------------------------------|
//! | `GET /admin/cluster`            | JSON: Raft state, members, nodes with roles, datanodes, this gateway's ring |
//! | `POST /admin/nodes`             | `{"id": N, "addr": "host:port", "voter": true}`: add or update a member |
//! | `POST /admin/nodes/{id}/remove` | remove a member from the metadata group                |
//!
//! Changes go to the leader wherever they are made.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use cairn_metadata::MetadataError;
use cairn_metadata_raft::{ClusterStatus, JoinRequest};
use serde::{Deserialize, Serialize};

use super::{json, AdminState};
use crate::cluster::{self, DatanodeHealth};

pub(super) fn routes() -> Router<Arc<AdminState>> {
    Router::new()
        .route("/admin/cluster", get(cluster_view))
        .route("/admin/nodes", post(add_node))
        .route("/admin/nodes/{id}/remove", post(remove_node))
}

/// One node of the cluster as the admin API shows it.
#[derive(Debug, Serialize)]
pub(super) struct NodeView {
    pub id: u64,
    pub roles: String,
    pub cluster_addr: String,
    pub admin_addr: Option<String>,
    pub s3_addr: Option<String>,
    pub zone: Option<String>,
    /// `voter`, `learner`, or `none` (not in the metadata group).
    pub metadata: &'static str,
    pub leader: bool,
    /// Whether its admin API answered just now.
    pub reachable: bool,
}

#[derive(Debug, Serialize)]
pub(super) struct ClusterView {
    pub raft: ClusterStatus,
    pub nodes: Vec<NodeView>,
    pub datanodes: Vec<DatanodeHealth>,
    pub ring: RingView,
}

/// This gateway's placement ring. Gateways that see the same datanodes and drained set show
/// the same epoch; it changes with every membership change.
#[derive(Debug, Serialize)]
pub(super) struct RingView {
    pub epoch: u64,
    /// Datanodes on the ring, and those of them new stripes can be placed on (not drained).
    pub datanodes: usize,
    pub placeable: usize,
    pub drained: Vec<u32>,
    /// Marked down by this gateway's heartbeats (writes skip them; not part of the ring).
    pub down: Vec<u32>,
}

/// The ring of `objects`' current membership.
pub(super) fn ring_view(objects: &cairn_objects::ObjectService) -> RingView {
    let view = objects.membership().view();
    RingView {
        epoch: view.epoch(),
        datanodes: view.ring().nodes().len(),
        placeable: view.ring().placeable_count(),
        drained: view.drained().iter().map(|n| n.0).collect(),
        down: view.down().iter().map(|n| n.0).collect(),
    }
}

/// Raft's view plus every node's record, each probed on its admin API.
pub(super) async fn cluster_status(st: &AdminState) -> Option<ClusterView> {
    let info = st.cluster.as_ref()?;
    let raft = info.raft.status();
    let records = cluster::nodes(st.objects.metadata().as_ref())
        .await
        .unwrap_or_default();
    let mut nodes = Vec::new();
    let probes = raft.members.iter().map(|m| {
        let rec = records.iter().find(|r| r.id == m.id).cloned();
        let member = m.clone();
        async move {
            let reachable = match &rec {
                Some(r) => probe(&r.admin_addr).await,
                None => false,
            };
            (member, rec, reachable)
        }
    });
    for (m, rec, reachable) in futures::future::join_all(probes).await {
        nodes.push(NodeView {
            id: m.id,
            roles: rec.as_ref().map_or_else(String::new, |r| r.roles.clone()),
            cluster_addr: m.addr.clone(),
            admin_addr: rec.as_ref().map(|r| r.admin_addr.clone()),
            s3_addr: rec.as_ref().and_then(|r| r.s3_addr.clone()),
            zone: rec.as_ref().map(|r| r.zone.clone()),
            metadata: if m.voter { "voter" } else { "learner" },
            leader: raft.leader == Some(m.id),
            reachable: reachable || m.id == raft.id,
        });
    }
    for r in records {
        if !nodes.iter().any(|n| n.id == r.id) {
            nodes.push(NodeView {
                id: r.id,
                roles: r.roles,
                cluster_addr: r.cluster_addr,
                admin_addr: Some(r.admin_addr),
                s3_addr: r.s3_addr,
                zone: Some(r.zone),
                metadata: "none",
                leader: false,
                reachable: false,
            });
        }
    }
    Some(ClusterView {
        raft,
        nodes,
        datanodes: info.view.datanodes(),
        ring: ring_view(&st.objects),
    })
}

/// Whether the admin API at `addr` answers its liveness check within a second.
async fn probe(addr: &str) -> bool {
    let Ok(mut stream) =
        tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| ())
            .and_then(|r| r.map_err(|_| ()))
    else {
        return false;
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let req = format!("GET /health/live HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let exchange = async {
        stream.write_all(req.as_bytes()).await.ok()?;
        let mut buf = [0u8; 12];
        stream.read_exact(&mut buf).await.ok()?;
        Some(buf.starts_with(b"HTTP/1.1 200"))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(1), exchange).await,
        Ok(Some(true))
    )
}

async fn cluster_view(State(st): State<Arc<AdminState>>) -> Response {
    match cluster_status(&st).await {
        Some(v) => json(StatusCode::OK, &v),
        None => (StatusCode::NOT_FOUND, "not a cluster member\n").into_response(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddNode {
    id: u64,
    addr: String,
    #[serde(default = "yes")]
    voter: bool,
}

fn yes() -> bool {
    true
}

fn change_error(e: MetadataError) -> Response {
    let status = match e {
        MetadataError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::CONFLICT,
    };
    (status, format!("{e}\n")).into_response()
}

async fn add_node(State(st): State<Arc<AdminState>>, body: Bytes) -> Response {
    let Some(info) = st.cluster.as_ref() else {
        return (StatusCode::NOT_FOUND, "not a cluster member\n").into_response();
    };
    let req: AddNode = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, format!("malformed JSON: {e}\n")).into_response()
        }
    };
    if req.addr.parse::<std::net::SocketAddr>().is_err() && !req.addr.contains(':') {
        return (StatusCode::BAD_REQUEST, "addr must be host:port\n").into_response();
    }
    match info
        .raft
        .add_node(JoinRequest {
            id: req.id,
            addr: req.addr.clone(),
            voter: req.voter,
        })
        .await
    {
        Ok(()) => json(
            StatusCode::OK,
            &serde_json::json!({"added": req.id, "addr": req.addr, "voter": req.voter}),
        ),
        Err(e) => change_error(e),
    }
}

async fn remove_node(State(st): State<Arc<AdminState>>, Path(id): Path<u64>) -> Response {
    let Some(info) = st.cluster.as_ref() else {
        return (StatusCode::NOT_FOUND, "not a cluster member\n").into_response();
    };
    match info.raft.remove_node(id).await {
        Ok(()) => json(StatusCode::OK, &serde_json::json!({"removed": id})),
        Err(e) => change_error(e),
    }
}
