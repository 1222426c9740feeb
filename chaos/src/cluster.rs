//! The cluster under test: five `cairn server` processes, each in its own network namespace
//! ([`crate::net`]) with two datanode directories (ten datanodes, erasure coding 4+2).
//! Nodes 1–3 are metadata voters, 4 and 5 learners; every node serves S3.
//!
//! A node with a clock fault is restarted under libfaketime with only the wall clock
//! offset (`FAKETIME=+3600`); monotonic time, which Raft's timers use, stays true. (Its
//! file-driven mode, which would change a running process's clock, did not reliably go
//! back to the true time, so clock faults restart the node.)

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::net::Net;

pub const ACCESS_KEY: &str = "CHAOSROOTACCESSKEY01";
pub const SECRET_KEY: &str = "chaos-root-secret-key-0123456789abcdefghij";
pub const CLUSTER_SECRET: &str = "cairn-chaos-cluster-secret-0123456789abcdef";
pub const S3_PORT: u16 = 9000;
const ADMIN_PORT: u16 = 9001;
const CLUSTER_PORT: u16 = 9002;
/// Metadata voters: nodes 0..VOTERS.
pub const VOTERS: usize = 3;

/// Where libfaketime lives on Debian.
const FAKETIME_LIBS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
];

pub struct Cluster {
    pub net: Net,
    bin: PathBuf,
    dir: PathBuf,
    children: Vec<Option<Child>>,
    paused: Vec<bool>,
    faketime: Option<String>,
    /// Each node's wall-clock offset in seconds (0: true time, no libfaketime).
    clock: Vec<i64>,
    /// Flags every node gets.
    extra: Vec<String>,
}

/// An admin API answer.
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Cluster {
    /// Starts `n` nodes under `dir` (node 1 makes the cluster, the others join it) and waits
    /// until every node sees every datanode up.
    pub fn start(bin: &Path, dir: &Path, n: usize, extra: &[String]) -> anyhow::Result<Cluster> {
        let faketime = FAKETIME_LIBS
            .iter()
            .find(|p| Path::new(p).exists())
            .map(|p| p.to_string());
        if faketime.is_none() {
            bail!("libfaketime is not installed (Debian package faketime): clock faults need it");
        }
        let mut c = Cluster {
            net: Net::create(n)?,
            bin: bin.to_path_buf(),
            dir: dir.to_path_buf(),
            children: (0..n).map(|_| None).collect(),
            paused: vec![false; n],
            faketime,
            clock: vec![0; n],
            extra: extra.to_vec(),
        };
        for i in 0..n {
            std::fs::create_dir_all(c.node_dir(i))?;
            c.start_node(i)?;
            c.wait_ready(i, Duration::from_secs(90))?;
        }
        c.wait_converged(Duration::from_secs(90))?;
        Ok(c)
    }

    pub fn len(&self) -> usize {
        self.children.len()
    }

    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    fn node_dir(&self, i: usize) -> PathBuf {
        self.dir.join(format!("node{}", i + 1))
    }

    /// Datanode directory `disk` (`disk1`, `disk2`) of node `i`.
    pub fn disk_dir(&self, i: usize, disk: &str) -> PathBuf {
        self.node_dir(i).join(disk)
    }

    /// Node `i`'s metadata store (RocksDB) directory.
    pub fn meta_dir(&self, i: usize) -> PathBuf {
        self.node_dir(i).join("meta").join("meta")
    }

    pub fn log_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("node{}.log", i + 1))
    }

    pub fn s3_endpoint(i: usize) -> String {
        format!("http://{}:{S3_PORT}", Net::ip(i))
    }

    /// Starts node `i` (again) on its directories.
    pub fn start_node(&mut self, i: usize) -> anyhow::Result<()> {
        if self.children[i].is_some() {
            return Ok(());
        }
        let ip = Net::ip(i);
        let dir = self.node_dir(i);
        let roles = if i < VOTERS {
            "meta,data,gateway"
        } else {
            "data,gateway"
        };
        let mut args: Vec<String> = vec![
            "server".into(),
            "--node-id".into(),
            (i + 1).to_string(),
            "--roles".into(),
            roles.into(),
            "--data".into(),
            dir.join("meta").display().to_string(),
            "--data-dir".into(),
            dir.join("disk1").display().to_string(),
            "--data-dir".into(),
            dir.join("disk2").display().to_string(),
            "--listen".into(),
            format!("{ip}:{S3_PORT}"),
            "--admin-listen".into(),
            format!("{ip}:{ADMIN_PORT}"),
            "--cluster-listen".into(),
            format!("{ip}:{CLUSTER_PORT}"),
            "--datanode-listen".into(),
            ip.clone(),
        ];
        if i > 0 {
            args.push("--join".into());
            args.push(format!("{}:{CLUSTER_PORT}", Net::ip(0)));
        }
        args.extend(self.extra.iter().cloned());
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path(i))?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &Net::ns(i)])
            .arg(&self.bin)
            .args(&args)
            .env("CAIRN_ROOT_ACCESS_KEY", ACCESS_KEY)
            .env("CAIRN_ROOT_SECRET_KEY", SECRET_KEY)
            .env("CAIRN_CLUSTER_SECRET", CLUSTER_SECRET)
            // The disk-fault seam reads FAULTS files only with this set.
            .env("CAIRN_FAILPOINTS", "1")
            .env(
                "RUST_LOG",
                std::env::var("CHAOS_NODE_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if let (Some(lib), secs) = (&self.faketime, self.clock[i]) {
            if secs != 0 {
                cmd.env("LD_PRELOAD", lib)
                    .env("FAKETIME", format!("{secs:+}"))
                    .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
            }
        }
        // `ip netns exec` execs the server, so the child's pid is the server's.
        let child = cmd.spawn().context("starting a node")?;
        self.children[i] = Some(child);
        self.paused[i] = false;
        Ok(())
    }

    /// SIGKILL.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.paused[i] = false;
    }

    fn signal(&self, i: usize, sig: &str) -> anyhow::Result<()> {
        let Some(c) = &self.children[i] else {
            return Ok(());
        };
        let ok = Command::new("kill")
            .args([sig, &c.id().to_string()])
            .status()?
            .success();
        if !ok {
            bail!("kill {sig} {} failed", c.id());
        }
        Ok(())
    }

    /// SIGSTOP: the process stays, answering nothing.
    pub fn pause(&mut self, i: usize) -> anyhow::Result<()> {
        self.signal(i, "-STOP")?;
        self.paused[i] = self.children[i].is_some();
        Ok(())
    }

    /// SIGCONT.
    pub fn resume(&mut self, i: usize) -> anyhow::Result<()> {
        if self.paused[i] {
            self.signal(i, "-CONT")?;
            self.paused[i] = false;
        }
        Ok(())
    }

    pub fn is_running(&self, i: usize) -> bool {
        self.children[i].is_some() && !self.paused[i]
    }

    /// Whether node `i`'s process died on its own (not killed by the nemesis).
    pub fn exited(&mut self, i: usize) -> Option<String> {
        let c = self.children[i].as_mut()?;
        match c.try_wait() {
            Ok(Some(status)) => {
                self.children[i] = None;
                Some(status.to_string())
            }
            _ => None,
        }
    }

    /// Node `i`'s wall clock runs `secs` seconds off the true time from its next start.
    pub fn set_clock(&mut self, i: usize, secs: i64) {
        self.clock[i] = secs;
    }

    pub fn clock(&self, i: usize) -> i64 {
        self.clock[i]
    }

    /// An admin API call on node `i` (the cluster secret as bearer token).
    pub fn admin(&self, i: usize, method: &str, path: &str, body: &str) -> anyhow::Result<Reply> {
        self.admin_waiting(i, method, path, body, Duration::from_secs(10))
    }

    /// An admin API call that may take up to `wait` to answer (a scrub with `wait`).
    pub fn admin_waiting(
        &self,
        i: usize,
        method: &str,
        path: &str,
        body: &str,
        wait: Duration,
    ) -> anyhow::Result<Reply> {
        let addr = format!("{}:{ADMIN_PORT}", Net::ip(i));
        let timeout = Duration::from_secs(5);
        let sock = addr.parse()?;
        let mut s = TcpStream::connect_timeout(&sock, timeout)?;
        s.set_read_timeout(Some(wait))?;
        s.set_write_timeout(Some(timeout))?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {CLUSTER_SECRET}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        let text = String::from_utf8_lossy(&raw);
        let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(rest)
        } else {
            rest.to_string()
        };
        Ok(Reply { status, body })
    }

    fn admin_json(&self, i: usize, path: &str) -> Option<serde_json::Value> {
        let r = self.admin(i, "GET", path, "").ok()?;
        (r.status == 200)
            .then(|| serde_json::from_str(&r.body).ok())
            .flatten()
    }

    /// The leader node index node `i` knows of.
    pub fn leader_seen_by(&self, i: usize) -> Option<usize> {
        let v = self.admin_json(i, "/admin/cluster")?;
        let id = v["raft"]["leader"].as_u64()?;
        Some(id as usize - 1)
    }

    /// Datanodes node `i` sees up.
    fn datanodes_up(&self, i: usize) -> usize {
        self.admin_json(i, "/admin/cluster")
            .and_then(|v| {
                v["datanodes"]
                    .as_array()
                    .map(|a| a.iter().filter(|d| d["up"] == true).count())
            })
            .unwrap_or(0)
    }

    pub fn wait_ready(&self, i: usize, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(r) = self.admin(i, "GET", "/health/ready", "") {
                if r.status == 200 {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("node {} was not ready in {timeout:?}", i + 1);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until every node runs, agrees on one leader and sees every datanode up.
    pub fn wait_converged(&self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let want = 2 * self.len();
        loop {
            let leaders: Vec<Option<usize>> =
                (0..self.len()).map(|i| self.leader_seen_by(i)).collect();
            let agreed = leaders[0].is_some() && leaders.iter().all(|l| *l == leaders[0]);
            if agreed && (0..self.len()).all(|i| self.datanodes_up(i) >= want) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the cluster did not converge in {timeout:?}: leaders {leaders:?}");
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.len() {
            let _ = self.resume(i);
            self.kill(i);
        }
    }
}

/// The body of a chunked HTTP/1.1 response.
fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}
