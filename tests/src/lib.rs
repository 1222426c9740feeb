//! Test harness for Cairn's end-to-end tests: starts real `cairn server` processes on ports
//! chosen at run time in temporary data directories, and builds S3 clients for them.
//!
//! The binary is found through `CAIRN_BIN`, or next to the test executable (`target/<profile>/
//! cairn`), after `cargo build -p cairn`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod cluster;

pub const ACCESS_KEY: &str = "CAIRNTESTROOTKEY0001";
pub const SECRET_KEY: &str = "cairn-test-secret-key-0000000000000000000";

/// The repository's root: the parent of this package's directory, as cargo gives it to the
/// running test (not the compile-time path, which goes stale when one target directory
/// serves several checkouts).
pub fn repo_root() -> PathBuf {
    let pkg = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::current_dir().expect("current dir"));
    pkg.parent().expect("package has a parent").to_path_buf()
}

/// Path of the `cairn` binary under test.
pub fn cairn_bin() -> PathBuf {
    if let Ok(p) = std::env::var("CAIRN_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/e2e-xxxx -> target/<profile>/cairn
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("cairn");
    assert!(
        bin.exists(),
        "cairn binary not found at {}: run `cargo build -p cairn` first or set CAIRN_BIN",
        bin.display()
    );
    bin
}

/// A running `cairn server`.
pub struct Server {
    child: Option<Child>,
    pub data: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    pub s3: SocketAddr,
    pub admin: SocketAddr,
    /// The cluster listener (Raft), as the server printed it.
    pub cluster: Option<String>,
    /// The S3 and admin listeners serve HTTPS (`--tls-cert`).
    pub tls: bool,
    extra_args: Vec<String>,
    envs: Vec<(String, String)>,
}

impl Server {
    /// Starts a server in a fresh temporary data directory.
    pub fn start() -> Server {
        Self::start_with(&[])
    }

    pub fn start_with(args: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("data");
        let mut s = Self::spawn(
            &data,
            args.iter().map(|s| s.to_string()).collect(),
            Vec::new(),
        );
        s._tmp = Some(tmp);
        s
    }

    /// Starts a server on `data` (kept by the caller) with these flags and environment.
    pub fn spawn_in(data: &Path, args: Vec<String>, envs: Vec<(String, String)>) -> Server {
        Self::spawn(data, args, envs)
    }

    fn spawn(data: &Path, extra_args: Vec<String>, envs: Vec<(String, String)>) -> Server {
        let mut cmd = Command::new(cairn_bin());
        let mut child = cmd
            .arg("server")
            .arg("--data")
            .arg(data)
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .args(["--cluster-listen", "127.0.0.1:0"])
            .args(&extra_args)
            .env("CAIRN_ROOT_ACCESS_KEY", ACCESS_KEY)
            .env("CAIRN_ROOT_SECRET_KEY", SECRET_KEY)
            .env(
                "RUST_LOG",
                std::env::var("CAIRN_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            // The caller's environment wins over the defaults above.
            .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn cairn");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let (mut s3, mut admin, mut cluster) = (None, None, None);
        let mut tls = false;
        let deadline = Instant::now() + Duration::from_secs(120);
        while s3.is_none() || admin.is_none() || cluster.is_none() {
            assert!(Instant::now() < deadline, "cairn did not start in time");
            let line = match lines.next() {
                Some(Ok(l)) => l,
                _ => panic!("cairn exited before it was listening"),
            };
            if let Some(a) = line.strip_prefix("S3 API listening on ") {
                tls = a.starts_with("https://");
                let a = a
                    .trim_start_matches("https://")
                    .trim_start_matches("http://");
                s3 = Some(a.trim().parse().expect("s3 addr"));
            }
            if let Some(a) = line.strip_prefix("Admin API listening on ") {
                let a = a
                    .trim_start_matches("https://")
                    .trim_start_matches("http://");
                admin = Some(a.trim().parse().expect("admin addr"));
            }
            if let Some(a) = line.strip_prefix("Cluster listener on ") {
                cluster = a.split_whitespace().next().map(str::to_string);
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.by_ref() {});
        let server = Server {
            child: Some(child),
            data: data.to_path_buf(),
            _tmp: None,
            s3: s3.unwrap(),
            admin: admin.unwrap(),
            cluster,
            tls,
            extra_args,
            envs,
        };
        // Readiness is polled over plain HTTP; an HTTPS server's test checks it itself.
        if !server.tls {
            server.wait_ready();
        }
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = raw_request(
                self.admin,
                "GET /health/ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".as_bytes(),
            ) {
                if r.status == 200 {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "cairn never became ready");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn endpoint(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.s3)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Resident set size of the server process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.proc_status_kib("VmRSS:")
    }

    /// Peak resident set size of the server process so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        self.proc_status_kib("VmHWM:")
    }

    fn proc_status_kib(&self, field: &str) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc status"))
    }

    /// The cluster secret the server generated in its data directory.
    pub fn cluster_secret(&self) -> String {
        std::fs::read_to_string(self.data.join("cluster-secret"))
            .expect("cluster-secret")
            .trim()
            .to_string()
    }

    /// Runs `cairn admin <args>` against this server, as an operator would; returns whether
    /// it succeeded and what it printed.
    pub fn cairn_admin(&self, args: &[&str]) -> (bool, String) {
        self.cairn_tool("admin", args)
    }

    /// Runs `cairn key <args>` against this server (create or list access keys).
    pub fn cairn_key(&self, args: &[&str]) -> (bool, String) {
        self.cairn_tool("key", args)
    }

    /// Runs `cairn <command> --admin <this server> --data <its data dir> <args>`.
    fn cairn_tool(&self, command: &str, args: &[&str]) -> (bool, String) {
        let out = Command::new(cairn_bin())
            .arg(command)
            .arg("--admin")
            .arg(self.admin.to_string())
            .arg("--data")
            .arg(&self.data)
            .args(args)
            .output()
            .expect("run cairn");
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }

    /// Runs `cairn <subcommand> <args>` against this server's admin API (found and
    /// authenticated through `--admin-url` and `--data`, as an operator on the host would);
    /// returns whether it exited with 0, its stdout and its stderr.
    pub fn cairn(&self, subcommand: &str, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(cairn_bin())
            .arg(subcommand)
            .arg("--admin-url")
            .arg(format!("http://{}", self.admin))
            .arg("--data")
            .arg(&self.data)
            .args(args)
            .env_remove("CAIRN_ROOT_ACCESS_KEY")
            .env_remove("CAIRN_ROOT_SECRET_KEY")
            .output()
            .expect("run cairn");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Stops local datanode `i` through `cairn admin stop-datanode`.
    pub fn stop_datanode(&self, i: u32) {
        let (ok, out) = self.cairn_admin(&["stop-datanode", &i.to_string()]);
        assert!(ok, "stop-datanode {i}: {out}");
    }

    /// Starts local datanode `i` again through `cairn admin start-datanode`.
    pub fn start_datanode(&self, i: u32) {
        let (ok, out) = self.cairn_admin(&["start-datanode", &i.to_string()]);
        assert!(ok, "start-datanode {i}: {out}");
    }

    /// A request on the admin port with the cluster secret as bearer token.
    pub fn admin_call(&self, method: &str, path: &str, body: &str) -> RawResponse {
        let secret = self
            .envs
            .iter()
            .find(|(k, _)| k == "CAIRN_CLUSTER_SECRET")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| self.cluster_secret());
        raw_request(
            self.admin,
            format!(
                "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {secret}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .expect("admin request")
    }

    /// A GET on the admin port.
    pub fn admin_get(&self, path: &str) -> RawResponse {
        raw_request(
            self.admin,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .expect("admin request")
    }

    /// The Prometheus exposition of `/metrics`.
    pub fn metrics(&self) -> String {
        let r = self.admin_get("/metrics");
        assert_eq!(r.status, 200, "{}", r.body_str());
        r.body_str()
    }

    /// The value of the sample `series` (name with labels, exactly as exposed) in `/metrics`.
    pub fn metric(&self, series: &str) -> Option<f64> {
        self.metrics().lines().find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok()).flatten()
        })
    }

    /// Bytes of every file under the local datanodes' directories.
    pub fn datanode_bytes(&self) -> u64 {
        let mut total = 0;
        for e in std::fs::read_dir(self.data.join("datanodes")).expect("datanodes dir") {
            for f in std::fs::read_dir(e.expect("entry").path()).expect("datanode dir") {
                total += f.expect("entry").metadata().expect("metadata").len();
            }
        }
        total
    }

    /// SIGKILLs the server (no chance to flush anything).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERMs the server and waits for a clean exit; returns whether it exited with 0.
    pub fn terminate(&mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return false;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again on the same data directory (new ports).
    pub fn restart(&mut self) {
        let args = self.extra_args.clone();
        self.restart_args(args);
    }

    /// Starts the server again on the same data directory with other flags.
    pub fn restart_with(&mut self, args: &[&str]) {
        self.restart_args(args.iter().map(|s| s.to_string()).collect());
    }

    fn restart_args(&mut self, args: Vec<String>) {
        self.kill();
        let tmp = self._tmp.take();
        let envs = std::mem::take(&mut self.envs);
        let mut s = Self::spawn(&self.data, args, envs);
        s._tmp = tmp;
        *self = s;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A raw HTTP response.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `<Code>` of an S3 error body.
    pub fn error_code(&self) -> Option<String> {
        let b = self.body_str();
        let s = b.find("<Code>")? + 6;
        let e = b[s..].find("</Code>")? + s;
        Some(b[s..e].to_string())
    }
}

/// Sends raw bytes (a whole HTTP/1.1 request, which should say `Connection: close`) and
/// reads the response until the server closes the connection.
pub fn raw_request(addr: SocketAddr, request: &[u8]) -> std::io::Result<RawResponse> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.write_all(request)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = buf[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Ok(RawResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(pos) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&b[..pos])
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 || b.len() < pos + 2 + size {
            return out;
        }
        out.extend_from_slice(&b[pos + 2..pos + 2 + size]);
        b = &b[(pos + 4 + size).min(b.len())..];
    }
}

/// Deterministic pseudo-random bytes (xorshift), so that no layer can compress them.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}
