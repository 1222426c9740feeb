//! The local datanodes of `cairn server`: each one's store, its internal shard server on a
//! fixed loopback address, and the one compaction worker that covers them all. An operator
//! (or a test) can stop a datanode's server — the gateway then sees it exactly as a crashed
//! or unreachable remote datanode — and start it again on the same address.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use cairn_datanode::{run_compaction, LocalShardStore, StoreOptions};
use cairn_net::client::ClusterTransport;
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
    /// The serving task and the switch that stops it, while it runs.
    serving: Mutex<Option<(watch::Sender<bool>, JoinHandle<()>)>>,
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
                serving: Mutex::new(None),
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

    /// The address datanode `i` serves (or will serve again) on.
    pub fn addr(&self, i: usize) -> Option<SocketAddr> {
        self.nodes.get(i).map(|n| n.addr)
    }

    pub async fn status(&self) -> Vec<DatanodeStatus> {
        let mut out = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
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
        let _ = tx.send(true);
        let _ = task.await;
        tracing::warn!(datanode = i, addr = %node.addr, "datanode stopped by the operator");
        Ok(true)
    }

    /// Serves the datanode with cluster id `id` again on its old address. `Ok(false)` if it
    /// was already serving.
    pub async fn start(&self, id: usize) -> anyhow::Result<bool> {
        let i = self.index_of(id as u32).context("no such datanode")?;
        let node = self.nodes.get(i).context("no such datanode")?;
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
