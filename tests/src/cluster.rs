//! A real cluster of `cairn server` processes on loopback: node 1 starts a new cluster, the
//! others join it. Each node has its own data directory, datanode directories and ports:
//! the cluster port is chosen by the OS at a node's first start and kept for its restarts,
//! like a host's would be (S3, admin and datanode ports are new at every start).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::{RawResponse, Server};

/// The secret every node of a test cluster shares.
pub const CLUSTER_SECRET: &str = "cairn-test-cluster-secret-0123456789abcdef";

/// One node's fixed settings.
#[derive(Clone)]
struct NodeSpec {
    id: u64,
    data: PathBuf,
    /// Flags other than `--cluster-listen`.
    args: Vec<String>,
    /// The cluster port it got at its first start, kept for restarts.
    port: Option<u16>,
}

pub struct Cluster {
    _tmp: tempfile::TempDir,
    specs: Vec<NodeSpec>,
    /// The running nodes by index (node id = index + 1); `None` while stopped.
    pub nodes: Vec<Option<Server>>,
}

impl Cluster {
    /// Starts `n` nodes, each with every role and `dirs` datanode directories; `extra` flags
    /// go to every node.
    pub fn start(n: usize, dirs: usize, extra: &[&str]) -> Cluster {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut c = Cluster {
            _tmp: tmp,
            nodes: Vec::new(),
            specs: Vec::new(),
        };
        for _ in 0..n {
            c.add_node(dirs, extra);
        }
        c.wait_datanodes(n * dirs, Duration::from_secs(60));
        c
    }

    /// Adds a node with `dirs` datanode directories (and every role unless `extra` says
    /// otherwise); the first one starts the cluster, the others join it through node 1.
    /// Returns its index.
    pub fn add_node(&mut self, dirs: usize, extra: &[&str]) -> usize {
        let i = self.specs.len();
        let id = i as u64 + 1;
        let data = self._tmp.path().join(format!("node{id}"));
        let mut args = vec!["--node-id".to_string(), id.to_string()];
        for d in 0..dirs {
            args.push("--data-dir".into());
            args.push(data.join(format!("disk{d}")).display().to_string());
        }
        if i > 0 {
            let seed = self.specs[0].port.expect("node 1's cluster port");
            args.push("--join".into());
            args.push(format!("127.0.0.1:{seed}"));
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        self.specs.push(NodeSpec {
            id,
            data,
            args,
            port: None,
        });
        self.nodes.push(None);
        self.start_node(i);
        i
    }

    /// Starts node `i` (again) on its data directory, on the cluster port it had (a new one
    /// the first time, or when another process took the old one meanwhile: the node then
    /// tells the cluster its new address). A node that starts again ignores `--join`.
    pub fn start_node(&mut self, i: usize) {
        let (server, port) = Self::spawn_node(&self.specs[i]);
        self.specs[i].port = Some(port);
        self.nodes[i] = Some(server);
    }

    /// Starts the nodes `order` (stopped ones) `gap` apart without waiting for one to be
    /// ready before starting the next: a node that needs the others to come up (a metadata
    /// group without quorum) must wait for them instead of exiting. Panics when a node exits
    /// or they are not all ready within three minutes.
    pub fn start_nodes_apart(&mut self, order: &[usize], gap: Duration) {
        let (tx, rx) = std::sync::mpsc::channel();
        for (n, &i) in order.iter().enumerate() {
            let (spec, tx) = (self.specs[i].clone(), tx.clone());
            let wait = gap * n as u32;
            std::thread::spawn(move || {
                std::thread::sleep(wait);
                let r = std::panic::catch_unwind(|| Self::spawn_node(&spec));
                let _ = tx.send((i, r));
            });
        }
        let deadline = Instant::now() + Duration::from_secs(180);
        for _ in order {
            let left = deadline.saturating_duration_since(Instant::now());
            let (i, r) = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("nodes {order:?} were not all ready in time"));
            let (server, port) = r.unwrap_or_else(|e| std::panic::resume_unwind(e));
            self.specs[i].port = Some(port);
            self.nodes[i] = Some(server);
        }
    }

    /// Spawns the node of `spec` and waits until it is ready; returns it and its cluster
    /// port.
    fn spawn_node(spec: &NodeSpec) -> (Server, u16) {
        let envs = vec![(
            "CAIRN_CLUSTER_SECRET".to_string(),
            CLUSTER_SECRET.to_string(),
        )];
        let spawn = |port: u16| {
            let mut args = spec.args.clone();
            args.push("--cluster-listen".into());
            args.push(format!("127.0.0.1:{port}"));
            let (data, envs) = (spec.data.clone(), envs.clone());
            std::panic::catch_unwind(move || Server::spawn_in(&data, args, envs))
        };
        let server = match spec.port.map(spawn) {
            Some(Ok(s)) => s,
            _ => spawn(0).unwrap_or_else(|e| std::panic::resume_unwind(e)),
        };
        let port = server
            .cluster
            .as_deref()
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .expect("the node printed its cluster address");
        (server, port)
    }

    /// SIGKILLs node `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut s) = self.nodes[i].take() {
            s.kill();
        }
    }

    /// SIGTERMs node `i` and waits for it to exit.
    pub fn stop(&mut self, i: usize) {
        if let Some(mut s) = self.nodes[i].take() {
            s.terminate();
        }
    }

    pub fn node(&self, i: usize) -> &Server {
        self.nodes[i].as_ref().expect("node is running")
    }

    pub fn id(&self, i: usize) -> u64 {
        self.specs[i].id
    }

    /// Indices of the running nodes.
    pub fn running(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|i| self.nodes[*i].is_some())
            .collect()
    }

    /// `GET /admin/cluster` of node `i`, as JSON text.
    pub fn cluster_json(&self, i: usize) -> Option<RawResponse> {
        let s = self.nodes[i].as_ref()?;
        Some(s.admin_call("GET", "/admin/cluster", ""))
    }

    /// The index of the node that leads according to every running node, waiting up to
    /// `timeout` for them to agree.
    pub fn leader(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let mut seen = Vec::new();
            for i in self.running() {
                if let Some(r) = self.cluster_json(i) {
                    let body = r.body_str();
                    let leader = body
                        .split("\"leader\":")
                        .nth(1)
                        .and_then(|rest| rest.trim_start().split([',', '\n', '}']).next())
                        .and_then(|v| v.trim().parse::<u64>().ok());
                    seen.push(leader);
                }
            }
            if let Some(Some(l)) = seen.first() {
                let idx = (l - 1) as usize;
                if seen.iter().all(|s| *s == Some(*l)) && self.nodes[idx].is_some() {
                    return idx;
                }
            }
            assert!(
                Instant::now() < deadline,
                "the running nodes did not agree on a live leader: {seen:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until every running node's heartbeats see `n` datanodes up.
    pub fn wait_datanodes(&self, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let ok = self.running().iter().all(|i| {
                self.cluster_json(*i)
                    .map(|r| r.body_str().matches("\"up\": true").count() >= n)
                    .unwrap_or(false)
            });
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not every node saw {n} datanodes up in time"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
