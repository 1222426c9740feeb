//! The local datanodes of `cairn server`: each one's store, its internal shard server on a
//! fixed loopback address, and the one compaction worker that covers them all. This
//! process's own gateway calls them directly ([`LocalDatanodes::direct`]: no HTTP, no TLS,
//! no copy); other nodes' gateways use the shard server. An operator (or a test) can stop a
//! datanode — its server stops and direct calls fail, so every gateway sees it exactly as a
//! crashed or unreachable remote datanode — and start it again on the same address.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use bytes::Bytes;
use cairn_datanode::merkle::{Hash, MerkleNode, NodePath};
use cairn_datanode::{
    run_compaction, DatanodeError, DeepScrubReport, LocalShardStore, ShardInfo, ShardStore,
    StoreOptions, StoreStats,
};
use cairn_net::client::ClusterTransport;
use cairn_types::ShardId;
use cairn_worker::Worker;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;

/// One running (or stopped) local datanode.
struct Datanode {
    dir: PathBuf,
    addr: SocketAddr,
    store: Arc<LocalShardStore>,
    /// Whether it serves: cleared by [`LocalDatanodes::stop`], which direct callers see.
    up: Arc<AtomicBool>,
    /// The serving task and the switch that stops it, while it runs.
    serving: Mutex<Option<(watch::Sender<bool>, JoinHandle<()>)>>,
    /// Removed from the cluster: stopped for good, not listed, not started again.
    retired: AtomicBool,
}

/// The file that marks a datanode directory whose datanode was removed from the cluster.
pub const REMOVED_FILE: &str = "REMOVED";

/// Whether `dir` holds nothing yet (a new or wiped datanode directory; a filesystem's own
/// `lost+found` does not count). A directory that cannot be read is not fresh.
pub fn is_fresh(dir: &std::path::Path) -> bool {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .all(|e| e.file_name() == "lost+found"),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

/// Whether `dir` is marked as the directory of a removed datanode.
pub fn is_marked_removed(dir: &std::path::Path) -> bool {
    dir.join(REMOVED_FILE).exists()
}

/// What the admin API reports about a local datanode.
#[derive(Debug, Serialize)]
pub struct DatanodeStatus {
    pub id: u32,
    pub addr: String,
    pub dir: String,
    pub serving: bool,
}

/// Every local datanode of this process.
pub struct LocalDatanodes {
    nodes: Vec<Datanode>,
    /// The cluster id of each local datanode (its registry id), by directory index.
    ids: std::sync::RwLock<Vec<u32>>,
    transport: ClusterTransport,
    /// Timeouts and connection cap of each datanode listener.
    limits: cairn_net::Limits,
    shutdown: watch::Receiver<bool>,
    compaction: Mutex<Vec<JoinHandle<()>>>,
}

/// How the local datanodes' compaction runs: one worker for all of them, a round every
/// `interval`.
pub struct CompactionJob {
    pub interval: Duration,
    pub worker: Worker,
}

impl LocalDatanodes {
    /// Opens `dirs` as datanodes, binds each one's server on `ip` (port chosen by the OS) and
    /// starts serving and compacting until `shutdown`.
    pub async fn open(
        dirs: Vec<PathBuf>,
        ip: std::net::IpAddr,
        options: StoreOptions,
        transport: ClusterTransport,
        limits: cairn_net::Limits,
        compaction: CompactionJob,
        shutdown: watch::Receiver<bool>,
    ) -> anyhow::Result<LocalDatanodes> {
        let mut nodes = Vec::new();
        for (i, dir) in dirs.into_iter().enumerate() {
            crate::credentials::private_dir(&dir)?;
            let store = Arc::new(
                LocalShardStore::open(&dir, options.clone())
                    .with_context(|| format!("opening datanode {}", dir.display()))?,
            );
            let listener =
                cairn_net::bind((ip, 0).into()).with_context(|| format!("binding datanode {i}"))?;
            let addr = listener.local_addr()?;
            let node = Datanode {
                dir,
                addr,
                store,
                up: Arc::new(AtomicBool::new(true)),
                serving: Mutex::new(None),
                retired: AtomicBool::new(false),
            };
            let serving = spawn_server(&node, listener, &transport, &limits, shutdown.clone());
            *node.serving.lock().await = Some(serving);
            nodes.push(node);
        }
        // One compaction worker for every local datanode, in turn.
        let stores = nodes.iter().map(|n: &Datanode| n.store.clone()).collect();
        let compaction = vec![tokio::spawn(run_compaction(
            stores,
            compaction.interval,
            compaction.worker,
            shutdown.clone(),
        ))];
        let ids = (0..nodes.len() as u32).collect();
        Ok(LocalDatanodes {
            nodes,
            ids: std::sync::RwLock::new(ids),
            transport,
            limits,
            shutdown,
            compaction: Mutex::new(compaction),
        })
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Records the cluster ids the registry gave the local datanodes.
    pub fn set_ids(&self, ids: Vec<u32>) {
        *self
            .ids
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = ids;
    }

    fn id_of(&self, i: usize) -> u32 {
        self.ids
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(i)
            .copied()
            .unwrap_or(i as u32)
    }

    /// The local index of the datanode with cluster id `id`.
    pub fn index_of(&self, id: u32) -> Option<usize> {
        self.ids
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .position(|x| *x == id)
    }

    /// The datanode with cluster id `id` as this process's gateway calls it: directly, with
    /// no network hop; `None` if it is not one of this process's datanodes.
    pub fn direct(&self, id: u32) -> Option<Arc<dyn ShardStore>> {
        let node = self.nodes.get(self.index_of(id)?)?;
        Some(Arc::new(DirectStore {
            store: node.store.clone(),
            up: node.up.clone(),
        }))
    }

    /// The address datanode `i` serves (or will serve again) on.
    pub fn addr(&self, i: usize) -> Option<SocketAddr> {
        self.nodes.get(i).map(|n| n.addr)
    }

    pub async fn status(&self) -> Vec<DatanodeStatus> {
        let mut out = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if n.retired.load(Ordering::SeqCst) {
                continue;
            }
            out.push(DatanodeStatus {
                id: self.id_of(i),
                addr: n.addr.to_string(),
                dir: n.dir.display().to_string(),
                serving: n.serving.lock().await.is_some(),
            });
        }
        out
    }

    /// Stops serving the datanode with cluster id `id` (in-flight requests finish, new
    /// connections are refused). Returns `Ok(false)` if it was already stopped, `Err` if
    /// there is no such datanode here.
    pub async fn stop(&self, id: usize) -> anyhow::Result<bool> {
        let i = self.index_of(id as u32).context("no such datanode")?;
        let node = self.nodes.get(i).context("no such datanode")?;
        let Some((tx, task)) = node.serving.lock().await.take() else {
            return Ok(false);
        };
        node.up.store(false, Ordering::SeqCst);
        let _ = tx.send(true);
        let _ = task.await;
        tracing::warn!(datanode = i, addr = %node.addr, "datanode stopped by the operator");
        Ok(true)
    }

    /// Retires local datanode `i`, whose datanode was removed from the cluster (it held no
    /// shard): stops serving it for good, leaves it out of listings, and marks its directory
    /// so that later starts leave it alone until it is wiped.
    pub async fn retire(&self, i: usize) -> anyhow::Result<()> {
        let node = self.nodes.get(i).context("no such datanode")?;
        if node.retired.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        node.up.store(false, Ordering::SeqCst);
        if let Some((tx, task)) = node.serving.lock().await.take() {
            let _ = tx.send(true);
            let _ = task.await;
        }
        node.store.stop_compacting().await;
        let id = Some(self.id_of(i)).filter(|id| *id != u32::MAX);
        self.ids
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)[i] = u32::MAX;
        mark_removed(&node.dir, id)?;
        tracing::warn!(datanode = ?id, dir = %node.dir.display(), "datanode removed from the cluster; its directory is left alone until it is wiped");
        Ok(())
    }

    /// The local indexes whose datanode is still in service, with their cluster ids.
    pub fn in_service(&self) -> Vec<(usize, u32)> {
        (0..self.nodes.len())
            .filter(|i| !self.nodes[*i].retired.load(Ordering::SeqCst))
            .map(|i| (i, self.id_of(i)))
            .collect()
    }

    /// Serves the datanode with cluster id `id` again on its old address. `Ok(false)` if it
    /// was already serving.
    pub async fn start(&self, id: usize) -> anyhow::Result<bool> {
        let i = self.index_of(id as u32).context("no such datanode")?;
        let node = self.nodes.get(i).context("no such datanode")?;
        if node.retired.load(Ordering::SeqCst) {
            anyhow::bail!("datanode {id} was removed from the cluster");
        }
        let mut serving = node.serving.lock().await;
        if serving.is_some() {
            return Ok(false);
        }
        let listener = cairn_net::bind(node.addr)
            .with_context(|| format!("binding datanode {i} again on {}", node.addr))?;
        *serving = Some(spawn_server(
            node,
            listener,
            &self.transport,
            &self.limits,
            self.shutdown.clone(),
        ));
        node.up.store(true, Ordering::SeqCst);
        tracing::info!(datanode = i, addr = %node.addr, "datanode started by the operator");
        Ok(true)
    }

    /// Waits for every server and compaction task to end (after the process shutdown).
    pub async fn join(&self) {
        for n in &self.nodes {
            let task = n.serving.lock().await.take();
            if let Some((_, task)) = task {
                let _ = task.await;
            }
        }
        let tasks = std::mem::take(&mut *self.compaction.lock().await);
        for task in tasks {
            let _ = task.await;
        }
    }
}

/// Writes the [`REMOVED_FILE`] marker into `dir` unless it is there (durably: it is what
/// keeps a removed datanode from serving again).
pub fn mark_removed(dir: &std::path::Path, id: Option<u32>) -> anyhow::Result<()> {
    use std::io::Write;
    let path = dir.join(REMOVED_FILE);
    if path.exists() {
        return Ok(());
    }
    let mut f =
        std::fs::File::create(&path).with_context(|| format!("writing {}", path.display()))?;
    let which = id.map_or("this datanode".to_string(), |id| format!("datanode {id}"));
    writeln!(
        f,
        "{which} was removed from the cluster; delete everything in this directory to use it again (as a new datanode)"
    )?;
    f.sync_all()?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Serves `node` on `listener` until either the process shuts down or the returned switch
/// is flipped.
fn spawn_server(
    node: &Datanode,
    listener: TcpListener,
    transport: &ClusterTransport,
    limits: &cairn_net::Limits,
    mut shutdown: watch::Receiver<bool>,
) -> (watch::Sender<bool>, JoinHandle<()>) {
    let (tx, mut stop) = watch::channel(false);
    let router = cairn_datanode::router(node.store.clone(), transport.clone());
    let tls = transport.datanode_tls();
    let limits = limits.clone();
    let task = tokio::spawn(async move {
        let until = async move {
            tokio::select! {
                _ = wait_true(&mut shutdown) => {}
                _ = wait_true(&mut stop) => {}
            }
        };
        if let Err(e) =
            cairn_datanode::serve_with_limits(listener, router, tls, limits, until).await
        {
            tracing::error!(error = %e, "datanode server failed");
        }
    });
    (tx, task)
}

async fn wait_true(rx: &mut watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            // The sender is gone: nobody can stop us through this channel any more.
            std::future::pending::<()>().await;
        }
    }
}

/// A local datanode called in-process: the [`LocalShardStore`] itself while the datanode is
/// up, and while it is stopped the error a caller of a datanode that refuses connections
/// gets.
struct DirectStore {
    store: Arc<LocalShardStore>,
    up: Arc<AtomicBool>,
}

impl DirectStore {
    fn check(&self) -> cairn_datanode::Result<&LocalShardStore> {
        if self.up.load(Ordering::SeqCst) {
            Ok(&self.store)
        } else {
            Err(DatanodeError::Io(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "the datanode is stopped",
            )))
        }
    }
}

#[async_trait]
impl ShardStore for DirectStore {
    async fn put(&self, id: ShardId, data: Bytes) -> cairn_datanode::Result<ShardInfo> {
        self.check()?.put(id, data).await
    }
    async fn put_with_crc(
        &self,
        id: ShardId,
        data: Bytes,
        crc32c: u32,
    ) -> cairn_datanode::Result<ShardInfo> {
        self.check()?.put_with_crc(id, data, crc32c).await
    }
    async fn get(&self, id: ShardId) -> cairn_datanode::Result<Bytes> {
        self.check()?.get(id).await
    }
    async fn get_with_crc(&self, id: ShardId) -> cairn_datanode::Result<(Bytes, u32)> {
        self.check()?.get_with_crc(id).await
    }
    async fn delete(&self, id: ShardId) -> cairn_datanode::Result<()> {
        self.check()?.delete(id).await
    }
    fn is_local(&self) -> bool {
        true
    }
    async fn list(
        &self,
        start_after: Option<ShardId>,
        limit: usize,
    ) -> cairn_datanode::Result<Vec<ShardInfo>> {
        self.check()?.list(start_after, limit).await
    }
    async fn stats(&self) -> cairn_datanode::Result<StoreStats> {
        self.check()?.stats().await
    }
    async fn merkle_roots(&self) -> cairn_datanode::Result<Vec<Hash>> {
        ShardStore::merkle_roots(self.check()?).await
    }
    async fn merkle_node(
        &self,
        partition: u8,
        path: NodePath,
    ) -> cairn_datanode::Result<MerkleNode> {
        ShardStore::merkle_node(self.check()?, partition, path).await
    }
    async fn deep_scrub(
        &self,
        rate_limit_bytes_per_sec: u64,
    ) -> cairn_datanode::Result<DeepScrubReport> {
        ShardStore::deep_scrub(self.check()?, rate_limit_bytes_per_sec).await
    }
}
