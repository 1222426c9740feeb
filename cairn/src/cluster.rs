//! What makes `cairn server` a cluster member: roles, starting (or joining) the Raft group
//! on the cluster listener, registering this node's datanodes, and the loop that keeps the
//! gateway's view of the cluster current (datanode registry → ring, heartbeats → down
//! datanodes, drained list, access keys).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use cairn_api::{KeyRing, KeySnapshot};
use cairn_datanode::{RemoteShardStore, ShardStore};
use cairn_metadata::{
    access_keys, cluster_state, key_limits, registry, Command, CommandOutput, DatanodeRecord,
    MetadataStore,
};
use cairn_metadata_raft::service;
use cairn_metadata_raft::{RaftNode, RaftOptions};
use cairn_metadata_rocks::RocksMetadataStore;
use cairn_net::client::{ClusterClient, ClusterTransport};
use cairn_objects::{NodeMap, NodeTopology, ObjectService};
use cairn_types::NodeId;
use cairn_worker::{Round, Schedule, Worker};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use crate::sys_records::{nodes, record_node, NodeRecord};

/// The roles of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Roles {
    pub meta: bool,
    pub data: bool,
    pub gateway: bool,
}

impl FromStr for Roles {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut r = Roles {
            meta: false,
            data: false,
            gateway: false,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "meta" => r.meta = true,
                "data" => r.data = true,
                "gateway" => r.gateway = true,
                "all" => {
                    r = Roles {
                        meta: true,
                        data: true,
                        gateway: true,
                    }
                }
                other => {
                    return Err(format!(
                        "unknown role {other:?} (roles: meta, data, gateway)"
                    ))
                }
            }
        }
        if !(r.meta || r.data || r.gateway) {
            return Err("at least one role is needed (meta, data, gateway)".into());
        }
        Ok(r)
    }
}

impl std::fmt::Display for Roles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = [
            (self.meta, "meta"),
            (self.data, "data"),
            (self.gateway, "gateway"),
        ]
        .into_iter()
        .filter_map(|(on, n)| on.then_some(n))
        .collect();
        f.write_str(&names.join(","))
    }
}

/// What [`start`] needs from `cairn server`'s arguments (built by `server.rs`), so that this
/// module does not depend on the command line.
pub struct ClusterConfig {
    pub node_id: u64,
    pub roles: Roles,
    pub cluster_listen: std::net::SocketAddr,
    /// Host other nodes reach this one at (`--advertise`).
    pub advertise: Option<String>,
    /// A member to join when this node is not in a group yet (`--join`).
    pub join: Option<String>,
    pub raft_election_ms: u64,
    pub raft_snapshot_logs: u64,
    /// Seconds a metadata operation may take.
    pub meta_timeout: f64,
    /// Connection limits of the cluster listener.
    pub limits: cairn_net::Limits,
    /// How this node gets its certificate.
    pub setup: crate::pki::setup::NodeSetup,
}

/// The host other nodes reach this one at.
pub fn advertise_host(args: &ClusterConfig) -> String {
    if let Some(a) = &args.advertise {
        return a.clone();
    }
    let ip = args.cluster_listen.ip();
    if !ip.is_unspecified() {
        return ip.to_string();
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "127.0.0.1".into())
}

/// This node's Raft member and the task serving its cluster listener.
pub struct Membership {
    pub node: Arc<RaftNode>,
    pub listener: JoinHandle<()>,
    pub addr: String,
    /// Set to the data path once it exists: the cluster listener then tells other nodes'
    /// orphan cleaners which bodies this node is writing ([`crate::in_flight`]).
    pub in_flight: crate::in_flight::Slot,
    /// How this node talks to the others (mutual TLS, or plain HTTP with the secret).
    pub transport: ClusterTransport,
}

/// Starts Raft on `local`, serves the cluster listener, and makes sure this node is in a
/// group: bootstraps a new one, joins `--join`, or (after a restart) just rejoins its own.
/// Returns once a leader is known.
pub async fn start(
    args: &ClusterConfig,
    local: &RocksMetadataStore,
    secret: &str,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<Membership> {
    let listener = cairn_net::bind(args.cluster_listen)
        .with_context(|| format!("binding the cluster address {}", args.cluster_listen))?;
    let port = listener.local_addr()?.port();
    let addr = format!("{}:{port}", advertise_host(args));
    let opts = RaftOptions {
        election: Duration::from_millis(args.raft_election_ms.max(100)),
        heartbeat: Duration::from_millis((args.raft_election_ms / 6).clamp(20, 500)),
        snapshot_logs: args.raft_snapshot_logs,
        keep_logs: (args.raft_snapshot_logs / 10).max(10),
        timeout: Duration::from_secs_f64(args.meta_timeout.max(0.1)),
    };
    // This node's certificate (made, loaded or asked for) before anything is served.
    let prepared = crate::pki::setup::prepare(&args.setup, local, secret).await?;
    let transport = prepared.transport.clone();
    let node = RaftNode::start(local, args.node_id, addr.clone(), &transport, opts).await?;
    let in_flight = crate::in_flight::Slot::default();
    // With TLS, only certificates let peers in (no bearer token is accepted); the join
    // route is the one that takes callers without one (it checks a MAC instead).
    let bearer = transport.bearer_secret().to_string();
    let app = service::router(node.clone(), bearer.clone())
        .merge(crate::in_flight::router(in_flight.clone(), bearer))
        .merge(crate::pki::join::router(prepared.issuer.clone()));
    let tls = transport.cluster_listener_tls();
    let limits = args.limits.clone();
    let mut stop = shutdown.clone();
    let serving = tokio::spawn(async move {
        let until = async move {
            while !*stop.borrow() {
                if stop.changed().await.is_err() {
                    return;
                }
            }
        };
        if let Err(e) = cairn_net::serve(listener, "cluster", app, limits, tls, until).await {
            tracing::error!(error = %e, "cluster listener failed");
        }
    });
    let initialized = node.is_initialized().await?;
    match (&args.join, initialized) {
        (_, true) => tracing::info!(id = args.node_id, %addr, "rejoining the metadata group"),
        (Some(seed), false) => {
            tracing::info!(id = args.node_id, %seed, voter = args.roles.meta, "joining the cluster");
            node.join(
                seed,
                args.roles.meta,
                Instant::now() + Duration::from_secs(300),
            )
            .await
            .with_context(|| format!("joining the cluster at {seed}"))?;
        }
        (None, false) => {
            anyhow::ensure!(
                args.roles.meta,
                "the first node of a cluster needs the meta role (or give --join ADDR)"
            );
            node.bootstrap().await?;
            tracing::info!(id = args.node_id, %addr, "started a new cluster");
        }
    }
    if initialized {
        let status = node.status();
        let known = status
            .members
            .iter()
            .find(|m| m.id == node.id)
            .map(|m| m.addr.clone());
        if known.as_deref() != Some(addr.as_str()) {
            // Restarted on another address: the leader would keep calling the old one, so
            // tell the group (through any member; it forwards to the leader).
            let peers: Vec<String> = status
                .members
                .iter()
                .filter(|m| m.id != node.id)
                .map(|m| m.addr.clone())
                .chain(args.join.clone())
                .collect();
            let deadline = Instant::now() + Duration::from_secs(300);
            'update: loop {
                for peer in &peers {
                    let attempt = Instant::now() + Duration::from_secs(1);
                    if node.join(peer, args.roles.meta, attempt).await.is_ok() {
                        tracing::info!(%addr, via = %peer, "told the cluster this node's new address");
                        break 'update;
                    }
                }
                if peers.is_empty() || Instant::now() >= deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
    let mut waited = 0;
    while !node.wait_for_leader(Duration::from_secs(5)).await {
        waited += 5;
        tracing::warn!(
            seconds = waited,
            "no metadata leader yet (is a majority of the metadata nodes running?)"
        );
    }
    // A single-node group restarted on a new address updates itself (it leads).
    if initialized {
        let known = node
            .status()
            .members
            .into_iter()
            .find(|m| m.id == node.id)
            .map(|m| m.addr);
        if known.as_deref() != Some(addr.as_str()) {
            crate::retry::while_unavailable("updating this node's address", || async {
                node.add_node(service::JoinRequest {
                    id: node.id,
                    addr: addr.clone(),
                    voter: args.roles.meta,
                })
                .await
                .context("updating this node's address in the cluster")
            })
            .await?;
        }
    }
    Ok(Membership {
        node,
        listener: serving,
        addr,
        in_flight,
        transport,
    })
}

/// Registers this node's datanodes (listening on `addrs`); returns their cluster ids, in
/// directory order.
pub async fn register_datanodes(
    meta: &dyn MetadataStore,
    node: u64,
    zone: &str,
    addrs: &[(u32, String)],
) -> anyhow::Result<Vec<u32>> {
    let mut ids = Vec::with_capacity(addrs.len());
    for (i, addr) in addrs {
        let out = meta
            .apply(Command::RegisterDatanode(DatanodeRecord {
                id: 0,
                node,
                index: *i,
                addr: addr.clone(),
                zone: zone.to_string(),
                registered_ms: cairn_types::clock::now_ms(),
            }))
            .await
            .with_context(|| format!("registering datanode {i} ({addr})"))?;
        match out {
            CommandOutput::Registered(id) => ids.push(id),
            other => anyhow::bail!("registering a datanode answered {other:?}"),
        }
    }
    Ok(ids)
}

/// Makes the store the data path uses for each registered datanode: this process's own
/// datanodes are called directly, the others through their shard servers (over `client`,
/// whose connection pool they share).
#[derive(Clone)]
pub struct Connector {
    pub client: ClusterClient,
    pub local: Arc<crate::datanodes::LocalDatanodes>,
}

impl Connector {
    pub fn store(&self, rec: &DatanodeRecord) -> Arc<dyn ShardStore> {
        if let Some(direct) = self.local.direct(rec.id) {
            return direct;
        }
        Arc::new(RemoteShardStore::new(
            &self.client.url(&rec.addr, ""),
            self.client.clone(),
        ))
    }
}

/// Where each registered datanode is, for the ring: its host is its node.
pub fn topology(recs: &[DatanodeRecord]) -> BTreeMap<NodeId, NodeTopology> {
    recs.iter()
        .map(|r| {
            (
                NodeId(r.id),
                NodeTopology {
                    host: format!("node{}", r.node),
                    zone: r.zone.clone(),
                },
            )
        })
        .collect()
}

/// The registered datanodes.
pub async fn datanodes(meta: &dyn MetadataStore) -> anyhow::Result<Vec<DatanodeRecord>> {
    Ok(registry::decode_all(
        &meta.scan_sys(registry::PREFIX).await?,
    )?)
}

/// The slots of datanodes removed from the cluster.
pub async fn removed_datanodes(
    meta: &dyn MetadataStore,
) -> anyhow::Result<Vec<registry::RemovedSlot>> {
    Ok(registry::decode_removed(
        &meta.scan_sys(registry::REMOVED_PREFIX).await?,
    )?)
}

/// What metadata says about the access keys: every key, the disabled ones, the root key and
/// the rate-limit overrides. Each read is linearizable, so all four reflect every change
/// committed before this call.
pub async fn read_keys(meta: &dyn MetadataStore) -> anyhow::Result<KeySnapshot> {
    let keys = meta
        .list_access_keys()
        .await?
        .into_iter()
        .map(|k| (k.access_key, k.secret_key))
        .collect();
    let disabled = access_keys::marked(
        &meta.scan_sys(access_keys::DISABLED_PREFIX).await?,
        access_keys::DISABLED_PREFIX,
    )
    .into_iter()
    .collect();
    let root = cluster_state::root_key(meta).await?;
    let limits = key_limits::decode_all(&meta.scan_sys(key_limits::LIMITS_PREFIX).await?)
        .into_iter()
        .collect();
    Ok(KeySnapshot {
        keys,
        disabled,
        root,
        limits,
    })
}

fn log_key_changes(r: &cairn_api::SyncReport) {
    if r.is_empty() {
        return;
    }
    tracing::info!(
        enabled = ?r.enabled,
        disabled = ?r.disabled,
        deleted = ?r.deleted,
        root = ?r.root,
        limits = ?r.limits,
        "access keys changed in metadata; applied"
    );
}

/// What the heartbeat loop last saw of one datanode.
#[derive(Debug, Clone, Serialize)]
pub struct DatanodeHealth {
    pub id: u32,
    pub node: u64,
    pub addr: String,
    pub zone: String,
    pub up: bool,
    /// Milliseconds since it last answered (None: never did).
    pub last_seen_ms_ago: Option<u64>,
    pub shards: Option<u64>,
    pub live_bytes: Option<u64>,
    pub disk_bytes: Option<u64>,
    pub capacity_bytes: Option<u64>,
    pub free_bytes: Option<u64>,
}

/// The gateway's live view of the cluster, kept by [`watch_cluster`].
#[derive(Default)]
pub struct ClusterView {
    health: Mutex<BTreeMap<u32, DatanodeHealth>>,
}

impl ClusterView {
    pub fn datanodes(&self) -> Vec<DatanodeHealth> {
        self.health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }
}

/// Retires this node's datanodes that were removed from the cluster (through any node):
/// one missing from the registry `recs` counts only if a removal marker names its id.
async fn retire_removed(
    meta: &dyn MetadataStore,
    local: &crate::datanodes::LocalDatanodes,
    recs: &[DatanodeRecord],
) {
    let missing: Vec<(usize, u32)> = local
        .in_service()
        .into_iter()
        .filter(|(_, id)| !recs.iter().any(|r| r.id == *id))
        .collect();
    if missing.is_empty() {
        return;
    }
    let Ok(removed) = removed_datanodes(meta).await else {
        return;
    };
    for (i, id) in missing {
        if removed.iter().any(|r| r.id == id) {
            if let Err(e) = local.retire(i).await {
                tracing::warn!(datanode = id, error = %e, "retiring a removed datanode");
            }
        }
    }
}

/// Heartbeats missed before a datanode is marked down.
const MISSED_BEATS: u32 = 3;

/// Keeps `objects` and `keys` in step with the cluster until `shutdown`, as `worker` (one
/// look per round, the first at once): every `period`, the datanode registry (new datanodes
/// join the ring, moved ones get their new address), the drained list and the access keys
/// (new, deleted, disabled and enabled keys, the root key, rate-limit overrides) are read
/// from metadata, and every datanode is sent a heartbeat; one that misses [`MISSED_BEATS`]
/// in a row is marked down (writes skip it) until it answers again. Paused, the view stays
/// as the last look left it.
#[allow(clippy::too_many_arguments)]
pub async fn watch_cluster(
    objects: ObjectService,
    initial: Vec<DatanodeRecord>,
    keys: KeyRing,
    view: Arc<ClusterView>,
    connector: Connector,
    period: Duration,
    worker: Worker,
    shutdown: watch::Receiver<bool>,
) {
    let meta = objects.metadata().clone();
    // The membership the data path, GC and healer share: this loop keeps it current.
    let membership = objects.membership().clone();
    // Start from what the service was built with, so the first look changes nothing.
    let current = membership.view().nodes().clone();
    let mut stores: HashMap<u32, (String, Arc<dyn ShardStore>)> = initial
        .iter()
        .filter_map(|r| {
            let store = current.get(&NodeId(r.id))?.clone();
            Some((r.id, (r.addr.clone(), store)))
        })
        .collect();
    let mut missed: HashMap<u32, u32> = HashMap::new();
    let mut last_seen: HashMap<u32, Instant> = HashMap::new();
    let mut records: Vec<DatanodeRecord> = initial;
    let mut last_drained: Option<BTreeSet<NodeId>> =
        cluster_state::drained(meta.as_ref()).await.ok();
    let mut local_drains_seen = membership.local_drains().finished;
    let mut rounds = worker.rounds(Schedule::every(period).at_start(), shutdown);
    while rounds.next().await {
        let mut errors = Vec::new();
        // The registry → the ring.
        match datanodes(meta.as_ref()).await {
            Ok(recs) => {
                retire_removed(meta.as_ref(), &connector.local, &recs).await;
                let mut changed = recs.len() != records.len();
                for r in &recs {
                    let same = stores.get(&r.id).is_some_and(|(a, _)| a == &r.addr);
                    if !same {
                        stores.insert(r.id, (r.addr.clone(), connector.store(r)));
                        changed = true;
                    }
                }
                if changed || records != recs {
                    let map: NodeMap = recs
                        .iter()
                        .filter_map(|r| stores.get(&r.id).map(|(_, s)| (NodeId(r.id), s.clone())))
                        .collect();
                    let topo = topology(&recs);
                    tracing::info!(datanodes = map.len(), "datanode registry changed");
                    membership.set_nodes(map, topo);
                    records = recs;
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "reading the datanode registry");
                errors.push(format!("reading the datanode registry: {e}"));
            }
        }
        // The drained list and the access keys, as another node may have changed them. The
        // drained list is applied only when its stored value changed since the last look, so
        // that a read from just before a local change cannot undo it: a read during which a
        // drain change through this node was under way is not used at all, and once such a
        // change finished the next read is applied whatever the last look saw (an undrain
        // here then a drain elsewhere give back the list of two looks ago).
        let local = membership.local_drains();
        let read = cluster_state::drained(meta.as_ref()).await;
        let usable = local.settled() && membership.local_drains() == local;
        if usable && local.finished != local_drains_seen {
            last_drained = None;
            local_drains_seen = local.finished;
        }
        if let (Ok(want), true) = (read, usable) {
            if last_drained.as_ref() != Some(&want) {
                // A removed datanode the stored list may still name is not there to drain.
                let known: BTreeSet<NodeId> = want
                    .iter()
                    .filter(|n| membership.view().nodes().contains_key(n))
                    .copied()
                    .collect();
                if &known != membership.view().drained() {
                    if let Err(e) = membership.set_drained(known) {
                        tracing::warn!(error = %e, "applying the drained datanodes");
                    }
                }
                last_drained = Some(want);
            }
        }
        // The access keys: created, deleted, disabled and enabled keys, root rotations and
        // rate-limit overrides, done through any node. `generation` is taken before the read so that `sync` can
        // tell which local changes the read may predate (see `KeyRing::sync`): a key created,
        // disabled or deleted through this node's admin API after the read started is left
        // as this node set it, never undone by a stale answer; the next round decides it.
        let read_started = keys.generation();
        match read_keys(meta.as_ref()).await {
            Ok(snapshot) => log_key_changes(&keys.sync(&snapshot, read_started)),
            Err(e) => {
                tracing::debug!(error = %e, "reading the access keys");
                errors.push(format!("reading the access keys: {e}"));
            }
        }
        // The storage classes, as another node may have changed them.
        if let Err(e) = objects.refresh_storage_classes().await {
            tracing::debug!(error = %e, "reading the storage classes");
            errors.push(format!("reading the storage classes: {e}"));
        }
        // The master keys of encryption at rest, as another node may have rotated them.
        if let Err(e) = objects.reload_keyring().await {
            tracing::debug!(error = %e, "reading the master keys");
            errors.push(format!("reading the master keys: {e}"));
        }
        // Heartbeats.
        let beats = records.iter().filter_map(|r| {
            let store = stores.get(&r.id)?.1.clone();
            let r = r.clone();
            Some(async move {
                let stats =
                    tokio::time::timeout(period.max(Duration::from_millis(500)), store.stats())
                        .await
                        .ok()
                        .and_then(Result::ok);
                (r, stats)
            })
        });
        let results = futures::future::join_all(beats).await;
        let mut down = BTreeSet::new();
        let mut health = BTreeMap::new();
        let now = Instant::now();
        for (r, stats) in results {
            let m = missed.entry(r.id).or_default();
            if stats.is_some() {
                if *m >= MISSED_BEATS {
                    tracing::info!(datanode = r.id, addr = %r.addr, "datanode is up again");
                }
                *m = 0;
                last_seen.insert(r.id, now);
            } else {
                *m += 1;
                if *m == MISSED_BEATS {
                    tracing::warn!(datanode = r.id, addr = %r.addr, "datanode missed its heartbeats; marked down");
                }
            }
            let is_down = *m >= MISSED_BEATS;
            if is_down {
                down.insert(NodeId(r.id));
            }
            health.insert(
                r.id,
                DatanodeHealth {
                    id: r.id,
                    node: r.node,
                    addr: r.addr.clone(),
                    zone: r.zone.clone(),
                    up: !is_down,
                    last_seen_ms_ago: last_seen
                        .get(&r.id)
                        .map(|t| now.duration_since(*t).as_millis() as u64),
                    shards: stats.as_ref().map(|s| s.shards),
                    live_bytes: stats.as_ref().map(|s| s.live_bytes),
                    disk_bytes: stats.as_ref().map(|s| s.disk_bytes),
                    capacity_bytes: stats.as_ref().map(|s| s.capacity_bytes),
                    free_bytes: stats.as_ref().map(|s| s.free_bytes),
                },
            );
        }
        let summary = format!("{} datanode(s), {} down", health.len(), down.len());
        if &down != membership.view().down() {
            membership.set_down(down);
        }
        *view.health.lock().unwrap_or_else(PoisonError::into_inner) = health;
        rounds.finish(if errors.is_empty() {
            Ok(Round::Done(summary))
        } else {
            Err(errors.join("; "))
        });
    }
}

/// `addr` with an unspecified IP replaced by this node's advertised host.
pub fn advertised(args: &ClusterConfig, addr: std::net::SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("{}:{}", advertise_host(args), addr.port())
    } else {
        addr.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_metadata::AccessKeyRecord;
    use cairn_sigv4::SecretLookup;

    fn key(ak: &str) -> AccessKeyRecord {
        AccessKeyRecord {
            access_key: ak.into(),
            secret_key: format!("secret-of-{ak}"),
            name: ak.to_lowercase(),
            created_ms: 1,
        }
    }

    async fn apply(meta: &RocksMetadataStore, cmd: Command) {
        meta.apply(cmd).await.unwrap();
    }

    /// One watcher round: generation, then the metadata read, then the sync.
    async fn round(meta: &RocksMetadataStore, ring: &KeyRing) -> cairn_api::SyncReport {
        let started = ring.generation();
        ring.sync(&read_keys(meta).await.unwrap(), started)
    }

    /// What the watcher reads from metadata and how it applies it: deletions, disables,
    /// rotations and rate limits made through another node reach this ring; changes made
    /// here after a read started survive that (stale) read.
    #[tokio::test]
    async fn the_watcher_syncs_deletions_disables_and_rotations() {
        let dir = tempfile::tempdir().unwrap();
        let meta = RocksMetadataStore::open(dir.path()).unwrap();
        for ak in ["ROOT", "ALICE", "BOB"] {
            apply(&meta, Command::PutAccessKey(key(ak))).await;
        }
        apply(
            &meta,
            Command::DesignateRootKey {
                access_key: "ROOT".into(),
            },
        )
        .await;
        let ring = KeyRing::default();
        round(&meta, &ring).await;
        assert!(ring.is_root("ROOT"));
        assert!(ring.secret_key("BOB").is_some());

        // "Another node": metadata changes, this ring only learns them from the watcher.
        apply(
            &meta,
            Command::DeleteAccessKey {
                access_key: "BOB".into(),
                at_ms: 1,
            },
        )
        .await;
        apply(
            &meta,
            Command::SetAccessKeyEnabled {
                access_key: "ALICE".into(),
                enabled: false,
                at_ms: 1,
            },
        )
        .await;
        apply(
            &meta,
            Command::RotateRootKey {
                record: key("NEWROOT"),
            },
        )
        .await;
        let limit = key_limits::Limit::PerSecond(20);
        apply(
            &meta,
            Command::SetAccessKeyLimits {
                access_key: "ROOT".into(),
                ops_per_sec: key_limits::LimitChange::Set(limit),
                bytes_per_sec: key_limits::LimitChange::Keep,
            },
        )
        .await;
        let r = round(&meta, &ring).await;
        assert_eq!(r.limits, ["ROOT"]);
        assert_eq!(ring.limits("ROOT").ops_per_sec, Some(limit));
        assert_eq!(r.deleted, ["BOB"]);
        assert_eq!(r.disabled, ["ALICE"]);
        assert_eq!(r.enabled, ["NEWROOT"]);
        assert_eq!(r.root.as_deref(), Some("NEWROOT"));
        assert_eq!(ring.secret_key("BOB"), None);
        assert_eq!(ring.secret_key("ALICE"), None);
        assert_eq!(ring.secret_key("ROOT").as_deref(), Some("secret-of-ROOT"));
        assert!(ring.is_root("NEWROOT"));

        // The race: a read served before this node's own change lands after it.
        let started = ring.generation();
        let stale = read_keys(&meta).await.unwrap();
        // This node: CAROL created, ALICE enabled, ROOT (an ordinary key now) deleted —
        // metadata first, then the ring, as the admin API does.
        apply(&meta, Command::PutAccessKey(key("CAROL"))).await;
        ring.insert("CAROL".into(), "secret-of-CAROL".into());
        apply(
            &meta,
            Command::SetAccessKeyEnabled {
                access_key: "ALICE".into(),
                enabled: true,
                at_ms: 2,
            },
        )
        .await;
        ring.insert("ALICE".into(), "secret-of-ALICE".into());
        apply(
            &meta,
            Command::DeleteAccessKey {
                access_key: "ROOT".into(),
                at_ms: 2,
            },
        )
        .await;
        ring.remove("ROOT");
        let r = ring.sync(&stale, started);
        assert!(r.is_empty(), "a stale read changed the ring: {r:?}");
        assert!(ring.secret_key("CAROL").is_some());
        assert!(ring.secret_key("ALICE").is_some());
        assert_eq!(ring.secret_key("ROOT"), None);
        // The next round agrees with what this node did.
        let r = round(&meta, &ring).await;
        assert!(r.is_empty(), "{r:?}");
        assert!(ring.secret_key("CAROL").is_some() && ring.secret_key("ALICE").is_some());
        assert_eq!(ring.secret_key("ROOT"), None);
    }
}
