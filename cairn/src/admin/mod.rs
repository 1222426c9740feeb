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
//! | `GET /admin/keys`                    | bearer | JSON: access keys and names (no secrets)  |
//! | `POST /admin/keys`                   | bearer | create an access key (JSON body below)    |
//! | `DELETE /admin/keys/{ak}`            | bearer | delete an access key for good             |
//! | `POST /admin/keys/{ak}/disable`      | bearer | stop accepting a key (it stays)           |
//! | `POST /admin/keys/{ak}/enable`       | bearer | accept a disabled key again               |
//! | `POST /admin/keys/rotate-root`       | bearer | make a new key the root key (JSON below)  |
//! | `POST /admin/keys/{ak}/limits`       | bearer | set a key's rate limits ([`key_limits`])  |
//!
//! `POST /admin/keys` takes `{"name": "...", "access_key": "...", "secret_key": "..."}`; the
//! two keys are optional and generated when absent. It answers the whole record, secret
//! included — the only time the secret is shown. `POST /admin/keys/rotate-root` takes the
//! same (all optional) and answers the new root key the same way, with `previous_root`: the
//! old root key stays an ordinary key, still working, until it is deleted. The root key
//! cannot be deleted or disabled (409). Every gateway applies these changes within a
//! heartbeat (see [`crate::cluster::watch_cluster`]); this node at once.
//!
//! Scrubbing and repair (see [`heal`]):
//!
//! | Method and path                      | Auth   | What                                      |
//! |--------------------------------------|--------|-------------------------------------------|
//! | `POST /admin/scrub`                  | admin  | start a scrub (JSON options); `wait` runs it to the end |
//! | `GET /admin/scrub`                   | admin  | JSON: running scrub's progress, last report, backlog |
//! | `GET /admin/scrub/history`           | admin  | JSON: summaries of past scrubs            |
//! | `POST /admin/repair/rate`            | admin  | `{"mb_per_sec": N}`: repair speed, now    |
//! | `GET /admin/status`                  | admin  | JSON: what `cairn status` shows           |
//! | `GET /admin/workers`                 | admin  | JSON: background workers, state, progress ([`workers`]) |
//! | `POST /admin/workers/{name}/pause`   | admin  | pause a worker at its next safe point     |
//! | `POST /admin/workers/{name}/resume`  | admin  | let a paused worker go on                 |
//!
//! "bearer"/"admin": `Authorization: Bearer <cluster secret>` or a request signed with the
//! root key (`Cairn-Root`, see [`auth`]); both compared in constant time. The headers are
//! checked before the body is read: a request they do not authenticate gets 401 and its
//! connection closed, its body unread; a body over [`ADMIN_BODY_LIMIT`] gets 413.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use cairn_api::KeyRing;
use cairn_metadata::Command;
use cairn_metadata_raft::service;
use cairn_objects::ObjectService;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;

use crate::datanodes::LocalDatanodes;

pub mod auth;
pub mod console;
mod heal;
mod key_limits;
mod key_lookup;
mod key_policy;
mod keys;
pub(crate) mod master_keys;
mod nodes;
pub mod populate;
mod quotas;
mod storage_classes;
mod workers;

/// How long a metrics scrape or a status call waits for one datanode's stats.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabel {
    node: String,
}

/// Metadata (Raft) counters, brought up to the node's [`cairn_metadata_raft::RaftStats`] at
/// every scrape.
#[derive(Default)]
struct RaftMetrics {
    writes: prometheus_client::metrics::counter::Counter,
    write_seconds: prometheus_client::metrics::counter::Counter<f64, std::sync::atomic::AtomicU64>,
    reads: prometheus_client::metrics::counter::Counter,
    read_wait_seconds:
        prometheus_client::metrics::counter::Counter<f64, std::sync::atomic::AtomicU64>,
    read_rounds: prometheus_client::metrics::counter::Counter,
    entries: prometheus_client::metrics::counter::Counter,
    forward_calls: prometheus_client::metrics::counter::Counter,
    forwarded: prometheus_client::metrics::counter::Counter,
    wal_syncs: prometheus_client::metrics::counter::Counter,
    applied_index: Gauge,
    is_leader: Gauge,
    term: Gauge,
}

impl RaftMetrics {
    fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("cairn_meta");
        r.register(
            "writes",
            "Metadata commands proposed from this node",
            self.writes.clone(),
        );
        r.register(
            "write_seconds",
            "Total time those commands took to commit and apply",
            self.write_seconds.clone(),
        );
        r.register(
            "reads",
            "Metadata reads made linearizable on this node",
            self.reads.clone(),
        );
        r.register(
            "read_wait_seconds",
            "Total time those reads waited for a read index",
            self.read_wait_seconds.clone(),
        );
        r.register(
            "read_rounds",
            "Read-index rounds made (concurrent reads share one)",
            self.read_rounds.clone(),
        );
        r.register(
            "raft_entries",
            "Raft entries proposed here as leader (each carries the commands that were waiting)",
            self.entries.clone(),
        );
        r.register(
            "forward_calls",
            "Calls forwarding writes to the leader",
            self.forward_calls.clone(),
        );
        r.register(
            "forwarded_writes",
            "Writes those calls carried",
            self.forwarded.clone(),
        );
        r.register(
            "wal_syncs",
            "WAL syncs making Raft log appends durable (one per group of appends)",
            self.wal_syncs.clone(),
        );
        r.register(
            "applied_index",
            "Raft log index applied here",
            self.applied_index.clone(),
        );
        r.register(
            "is_leader",
            "1 on the metadata leader",
            self.is_leader.clone(),
        );
        r.register("term", "Current Raft term", self.term.clone());
    }

    fn update(&self, node: &cairn_metadata_raft::RaftNode) {
        use std::sync::atomic::Ordering::Relaxed;
        let s = node.stats();
        let up = |c: &prometheus_client::metrics::counter::Counter, v: u64| {
            c.inc_by(v.saturating_sub(c.get()));
        };
        let up_f = |c: &prometheus_client::metrics::counter::Counter<
            f64,
            std::sync::atomic::AtomicU64,
        >,
                    micros: u64| {
            let v = micros as f64 / 1e6;
            let d = v - c.get();
            if d > 0.0 {
                c.inc_by(d);
            }
        };
        up(&self.writes, s.writes.load(Relaxed));
        up_f(&self.write_seconds, s.write_micros.load(Relaxed));
        up(&self.reads, s.reads.load(Relaxed));
        up_f(&self.read_wait_seconds, s.read_wait_micros.load(Relaxed));
        up(&self.read_rounds, s.read_rounds.load(Relaxed));
        up(&self.entries, s.entries.load(Relaxed));
        up(&self.forward_calls, s.forward_calls.load(Relaxed));
        up(&self.forwarded, s.forwarded.load(Relaxed));
        up(&self.wal_syncs, s.wal_syncs.load(Relaxed));
        let status = node.status();
        self.applied_index
            .set(status.last_applied_index.unwrap_or(0) as i64);
        self.is_leader
            .set(i64::from(status.leader == Some(status.id)));
        self.term.set(status.term as i64);
    }
}

/// Gauges refreshed from the datanodes at every scrape.
#[derive(Default)]
struct NodeGauges {
    up: Family<NodeLabel, Gauge>,
    shards: Family<NodeLabel, Gauge>,
    live_bytes: Family<NodeLabel, Gauge>,
    disk_bytes: Family<NodeLabel, Gauge>,
    space_amplification: Family<NodeLabel, Gauge<f64, AtomicU64>>,
}

pub struct AdminState {
    objects: ObjectService,
    datanodes: Arc<LocalDatanodes>,
    registry: Registry,
    gauges: NodeGauges,
    raft_metrics: RaftMetrics,
    verifier: auth::Verifier,
    keys: KeyRing,
    healer: cairn_heal::Healer,
    console: console::ConsoleConfig,
    cluster: Option<ClusterInfo>,
    workers: cairn_worker::WorkerRegistry,
}

/// The cluster side of the admin API: the Raft member and the gateway's view of datanodes.
pub struct ClusterInfo {
    pub raft: Arc<cairn_metadata_raft::RaftNode>,
    pub view: Arc<crate::cluster::ClusterView>,
    pub roles: crate::cluster::Roles,
}

/// Credentials the admin API accepts: the cluster secret, and signatures of the root key
/// (which the key ring knows and keeps current).
pub struct AdminCredentials {
    pub cluster_secret: String,
}

impl AdminState {
    pub fn new(
        objects: ObjectService,
        datanodes: Arc<LocalDatanodes>,
        mut registry: Registry,
        credentials: AdminCredentials,
        keys: KeyRing,
        healer: cairn_heal::Healer,
        console: console::ConsoleConfig,
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
        r.register(
            "space_amplification",
            "Bytes of segment files over bytes of live shards (0 while nothing is live)",
            gauges.space_amplification.clone(),
        );
        let raft_metrics = RaftMetrics::default();
        raft_metrics.register(&mut registry);
        AdminState {
            objects,
            datanodes,
            registry,
            gauges,
            raft_metrics,
            verifier: auth::Verifier {
                bearer: credentials.cluster_secret,
                keys: keys.clone(),
            },
            keys,
            healer,
            console,
            cluster: None,
            workers: cairn_worker::WorkerRegistry::default(),
        }
    }

    pub fn with_cluster(mut self, cluster: ClusterInfo) -> Self {
        self.cluster = Some(cluster);
        self
    }

    /// The process's background workers, listed and paused through the admin API.
    pub fn with_workers(mut self, workers: cairn_worker::WorkerRegistry) -> Self {
        self.workers = workers;
        self
    }
}

pub fn router(state: AdminState) -> Router {
    let state = Arc::new(state);
    let operator = Router::new()
        .route("/admin/datanodes", get(list_datanodes))
        .route("/admin/datanodes/{n}/stop", post(stop_datanode))
        .route("/admin/datanodes/{n}/start", post(start_datanode))
        .route("/admin/datanodes/{n}/drain", post(drain_datanode))
        .route("/admin/datanodes/{n}/undrain", post(undrain_datanode))
        .route("/admin/datanodes/{n}/remove", post(remove_datanode))
        .merge(keys::routes())
        .merge(heal::routes())
        .merge(key_limits::routes())
        .merge(key_policy::routes())
        .merge(quotas::routes())
        .merge(storage_classes::routes())
        .merge(master_keys::routes())
        .merge(nodes::routes())
        .merge(workers::routes())
        .merge(populate::routes())
        .layer(middleware::from_fn_with_state(state.clone(), authorize));
    Router::new()
        .route("/health/live", get(|| async { "ok\n" }))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .merge(operator)
        .merge(console::routes(state.clone()))
        .with_state(state)
}

/// Largest admin request body. Every admin body is a small JSON document (the largest: a
/// key request, with two keys of at most 128 characters and a name); a signed request's
/// body is read before its signature can be checked, so this is what a caller who knows
/// the root access key (not its secret) can make the server hold per request.
pub const ADMIN_BODY_LIMIT: usize = 16 << 10;

/// Authenticates an admin call on its headers before its body is read: a bearer token
/// whole; a root-key signature's key and time, and then, with the body read under
/// [`ADMIN_BODY_LIMIT`], the signature over it.
async fn authorize(State(st): State<Arc<AdminState>>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let path = parts
        .uri
        .path_and_query()
        .map_or(parts.uri.path(), |p| p.as_str());
    let now = cairn_types::clock::now_ms() / 1000;
    let refused = |refusal: auth::Refusal| {
        tracing::warn!(?refusal, path, "admin call refused");
        service::refuse(StatusCode::UNAUTHORIZED, format!("{}\n", refusal.message()))
    };
    let pending = match st.verifier.check_header(authorization, now) {
        Ok(auth::HeaderCheck::Bearer) => None,
        Ok(auth::HeaderCheck::Signed(pending)) => Some(pending),
        Err(refusal) => return refused(refusal),
    };
    let body = match service::read_body(&parts.headers, body, ADMIN_BODY_LIMIT).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    if let Some(pending) = pending {
        if let Err(refusal) = pending.verify(parts.method.as_str(), path, &body) {
            return refused(refusal);
        }
    }
    next.run(Request::from_parts(parts, body.into())).await
}

async fn ready(State(st): State<Arc<AdminState>>) -> (StatusCode, String) {
    if let Err(e) = st.objects.metadata().list_buckets().await {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("metadata not ready: {e}\n"),
        );
    }
    for (id, node) in st.objects.membership().view().nodes().iter() {
        if st.cluster.is_some() && st.datanodes.index_of(id.0).is_none() {
            // Another node's datanode: its health is that node's readiness.
            continue;
        }
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
    if let Some(c) = &st.cluster {
        st.raft_metrics.update(&c.raft);
    }
    // Only the datanodes in the view now (a removed one's series go).
    st.gauges.up.clear();
    st.gauges.shards.clear();
    st.gauges.live_bytes.clear();
    st.gauges.disk_bytes.clear();
    st.gauges.space_amplification.clear();
    for (id, node) in st.objects.membership().view().nodes().iter() {
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
                st.gauges.space_amplification.get_or_create(&label).set(
                    cairn_datanode::space_amplification(s.live_bytes, s.disk_bytes).unwrap_or(0.0),
                );
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
    /// The cluster node that runs it.
    node: Option<u64>,
    reachable: bool,
    /// Given no new placements; the scrubber moves its shards off.
    draining: bool,
    shards: Option<u64>,
    live_bytes: Option<u64>,
    disk_bytes: Option<u64>,
    /// `disk_bytes / live_bytes`: what dead data and overhead cost (1.0 = none).
    space_amplification: Option<f64>,
    /// The filesystem it is on: size and free bytes.
    capacity_bytes: Option<u64>,
    free_bytes: Option<u64>,
}

async fn list_datanodes(State(st): State<Arc<AdminState>>) -> Response {
    json(StatusCode::OK, &datanode_views(&st).await)
}

/// Every datanode of the cluster: this node's own (with their serving state) and, from
/// this gateway's heartbeats, the other nodes'.
async fn all_datanode_views(
    st: &AdminState,
    cluster: Option<&nodes::ClusterView>,
) -> Vec<DatanodeView> {
    let mut views = datanode_views(st).await;
    let Some(c) = cluster else {
        return views;
    };
    let view = st.objects.membership().view();
    let drained = view.drained();
    for d in &c.datanodes {
        // Removed since the last heartbeat round.
        if !view.nodes().contains_key(&cairn_types::NodeId(d.id)) {
            continue;
        }
        if let Some(v) = views.iter_mut().find(|v| v.status.id == d.id) {
            v.node = Some(d.node);
            continue;
        }
        views.push(DatanodeView {
            status: crate::datanodes::DatanodeStatus {
                id: d.id,
                addr: d.addr.clone(),
                dir: String::new(),
                serving: d.up,
            },
            node: Some(d.node),
            reachable: d.up && d.shards.is_some(),
            draining: drained.contains(&cairn_types::NodeId(d.id)),
            shards: d.shards,
            live_bytes: d.live_bytes,
            disk_bytes: d.disk_bytes,
            space_amplification: amplification(d.live_bytes, d.disk_bytes),
            capacity_bytes: d.capacity_bytes,
            free_bytes: d.free_bytes,
        });
    }
    views.sort_by_key(|v| v.status.id);
    views
}

fn amplification(live: Option<u64>, disk: Option<u64>) -> Option<f64> {
    cairn_datanode::space_amplification(live?, disk?)
}

async fn datanode_views(st: &AdminState) -> Vec<DatanodeView> {
    let mut out = Vec::new();
    let view = st.objects.membership().view();
    let drained = view.drained();
    for status in st.datanodes.status().await {
        let stats = match view.store(cairn_types::NodeId(status.id)) {
            Some(node) => tokio::time::timeout(PROBE_TIMEOUT, node.stats())
                .await
                .ok()
                .and_then(Result::ok),
            None => None,
        };
        let draining = drained.contains(&cairn_types::NodeId(status.id));
        out.push(DatanodeView {
            status,
            node: None,
            capacity_bytes: stats.map(|s| s.capacity_bytes),
            free_bytes: stats.map(|s| s.free_bytes),
            draining,
            reachable: stats.is_some(),
            shards: stats.map(|s| s.shards),
            live_bytes: stats.map(|s| s.live_bytes),
            disk_bytes: stats.map(|s| s.disk_bytes),
            space_amplification: stats
                .and_then(|s| cairn_datanode::space_amplification(s.live_bytes, s.disk_bytes)),
        });
    }
    out
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
        Err(e) if st.datanodes.index_of(n as u32).is_none() => {
            (StatusCode::NOT_FOUND, format!("datanode {n}: {e}\n")).into_response()
        }
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("datanode {n} could not start: {e:#}\n"),
        )
            .into_response(),
    }
}

async fn drain_datanode(State(st): State<Arc<AdminState>>, Path(n): Path<u32>) -> Response {
    set_draining(&st, n, true).await
}

async fn undrain_datanode(State(st): State<Arc<AdminState>>, Path(n): Path<u32>) -> Response {
    set_draining(&st, n, false).await
}

async fn set_draining(st: &AdminState, n: u32, drain: bool) -> Response {
    let membership = st.objects.membership();
    // The cluster watcher applies no stored list read while this is under way.
    membership.start_local_drain();
    let r = set_draining_now(st, n, drain).await;
    membership.finish_local_drain();
    r
}

async fn set_draining_now(st: &AdminState, n: u32, drain: bool) -> Response {
    let membership = st.objects.membership();
    let mut drained = membership.view().drained().clone();
    let id = cairn_types::NodeId(n);
    if drain {
        drained.insert(id);
    } else {
        drained.remove(&id);
    }
    if let Err(e) = membership.set_drained(drained.clone()) {
        let status = match e {
            cairn_objects::ObjectsError::UnknownNode(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::CONFLICT,
        };
        return (status, format!("datanode {n}: {e}\n")).into_response();
    }
    let cmd = Command::SetDrained {
        nodes: drained.clone(),
    };
    if let Err(e) = st.objects.metadata().apply(cmd).await {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response();
    }
    let what = if drain {
        "draining: new writes avoid it; `cairn repair` moves its shards off"
    } else {
        "no longer draining"
    };
    tracing::info!(datanode = n, drain, "drain state changed");
    (StatusCode::OK, format!("datanode {n} {what}\n")).into_response()
}

/// Removes a drained datanode that holds nothing from the cluster (see
/// `cairn_metadata::registry::remove`); this node applies it to its view at once, the others
/// at their next look at the registry, and the node that runs it retires it.
async fn remove_datanode(State(st): State<Arc<AdminState>>, Path(n): Path<u32>) -> Response {
    let refuse = |status: StatusCode, why: String| {
        (status, format!("datanode {n}: {why}\n")).into_response()
    };
    let membership = st.objects.membership();
    let view = membership.view();
    let id = cairn_types::NodeId(n);
    let Some(store) = view.store(id) else {
        return refuse(StatusCode::NOT_FOUND, "no such datanode".into());
    };
    if !view.drained().contains(&id) {
        return refuse(
            StatusCode::CONFLICT,
            format!("not drained: `cairn admin drain-datanode {n}`, then `cairn repair` moves its shards off"),
        );
    }
    // Whatever it still holds would be lost with it.
    match tokio::time::timeout(PROBE_TIMEOUT, store.stats()).await {
        Ok(Ok(s)) if s.shards == 0 => {}
        Ok(Ok(s)) => {
            return refuse(
                StatusCode::CONFLICT,
                format!(
                    "still holds {} shard(s): run `cairn repair` to move them off",
                    s.shards
                ),
            )
        }
        _ => {
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "does not answer, so what it holds cannot be checked".into(),
            )
        }
    }
    let placeable = view.nodes().len() - view.drained().len();
    // The widest storage class's stripes must still find their datanodes.
    let width = st.objects.storage_classes().widest();
    if view.nodes().len() - 1 < width || placeable < width {
        return refuse(
            StatusCode::CONFLICT,
            format!(
                "{} datanodes would remain, and a stripe needs {width}",
                view.nodes().len() - 1
            ),
        );
    }
    match st
        .objects
        .metadata()
        .apply(Command::RemoveDatanode { id: n })
        .await
    {
        Ok(_) => {}
        // Asked again after an unknown outcome: the first call did remove it.
        Err(cairn_metadata::MetadataError::InvalidArgument(_))
            if crate::cluster::removed_datanodes(st.objects.metadata().as_ref())
                .await
                .is_ok_and(|r| r.iter().any(|r| r.id == n)) => {}
        Err(cairn_metadata::MetadataError::InvalidArgument(why)) => {
            return refuse(StatusCode::CONFLICT, why)
        }
        Err(e @ cairn_metadata::MetadataError::Indeterminate(_)) => {
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{e}; it may have been removed: ask again to know"),
            )
        }
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
    if let Err(e) = membership.remove_node(id) {
        tracing::warn!(datanode = n, error = %e, "removed datanode stays in this node's view until the next look");
    }
    if let Some(i) = st.datanodes.index_of(n) {
        if let Err(e) = st.datanodes.retire(i).await {
            tracing::warn!(datanode = n, error = %e, "retiring the removed datanode");
        }
    }
    tracing::info!(datanode = n, "datanode removed from the cluster");
    (
        StatusCode::OK,
        format!("datanode {n} removed from the cluster\n"),
    )
        .into_response()
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec_pretty(value) {
        Ok(body) => (status, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
