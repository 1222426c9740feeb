//! A real cluster of `cairn server` processes on loopback: node 1 starts a new cluster, the
//! others join it. Each node has its own data directory, datanode directories and ports
//! (the cluster ports are fixed for the cluster's lifetime, like a host's would be, so that
//! a restarted node is found where it was; S3, admin and datanode ports are new at every
//! start).

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::{RawResponse, Server};

/// The secret every node of a test cluster shares.
pub const CLUSTER_SECRET: &str = "cairn-test-cluster-secret-0123456789abcdef";

/// One node's fixed settings.
struct NodeSpec {
    id: u64,
    data: PathBuf,
    args: Vec<String>,
}

pub struct Cluster {
    _tmp: tempfile::TempDir,
    specs: Vec<NodeSpec>,
    /// The running nodes by index (node id = index + 1); `None` while stopped.
    pub nodes: Vec<Option<Server>>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl Cluster {
    /// Starts `n` nodes, each with every role and `dirs` datanode directories; `extra` flags
    /// go to every node.
    pub fn start(n: usize, dirs: usize, extra: &[&str]) -> Cluster {
        let tmp = tempfile::tempdir().expect("tempdir");
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let mut specs = Vec::new();
        for (i, port) in ports.iter().enumerate() {
            let id = i as u64 + 1;
            let data = tmp.path().join(format!("node{id}"));
            let mut args = vec![
                "--node-id".to_string(),
                id.to_string(),
                "--cluster-listen".into(),
                format!("127.0.0.1:{port}"),
            ];
            for d in 0..dirs {
                args.push("--data-dir".into());
                args.push(data.join(format!("disk{d}")).display().to_string());
            }
            if i > 0 {
                args.push("--join".into());
                args.push(format!("127.0.0.1:{}", ports[0]));
            }
            args.extend(extra.iter().map(|s| s.to_string()));
            specs.push(NodeSpec { id, data, args });
        }
        let mut c = Cluster {
            _tmp: tmp,
            nodes: (0..n).map(|_| None).collect(),
            specs,
        };
        for i in 0..n {
            c.start_node(i);
        }
        c.wait_datanodes(n * dirs, Duration::from_secs(60));
        c
    }

    /// Adds a node with every role and `dirs` datanode directories that joins the running
    /// cluster through node 1; returns its index.
    pub fn add_node(&mut self, dirs: usize, extra: &[&str]) -> usize {
        let i = self.specs.len();
        let id = i as u64 + 1;
        let data = self._tmp.path().join(format!("node{id}"));
        let seed = self.specs[0]
            .args
            .iter()
            .skip_while(|a| *a != "--cluster-listen")
            .nth(1)
            .cloned()
            .expect("node 1's cluster address");
        let mut args = vec![
            "--node-id".to_string(),
            id.to_string(),
            "--cluster-listen".into(),
            format!("127.0.0.1:{}", free_port()),
            "--join".into(),
            seed,
        ];
        for d in 0..dirs {
            args.push("--data-dir".into());
            args.push(data.join(format!("disk{d}")).display().to_string());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        self.specs.push(NodeSpec { id, data, args });
        self.nodes.push(None);
        self.start_node(i);
        i
    }

    /// Starts node `i` (again) on its data directory and cluster port.
    pub fn start_node(&mut self, i: usize) {
        let spec = &self.specs[i];
        let envs = vec![(
            "CAIRN_CLUSTER_SECRET".to_string(),
            CLUSTER_SECRET.to_string(),
        )];
        // A node that starts again ignores --join (it is already a member).
        let server = Server::spawn_in(&spec.data, spec.args.clone(), envs);
        self.nodes[i] = Some(server);
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
