//! Hostile request bodies against a real server: unauthenticated 256 MiB uploads to the
//! cluster listener (Raft; over TLS without a client certificate, as the default mutual-TLS
//! listener lets anyone connect that way, and over plain HTTP with
//! `--insecure-cluster-transport`), the admin API and the console are refused before their
//! bodies are read, so the server's peak memory hardly moves, while an S3 client keeps
//! being answered; authenticated calls with bodies over their route's limit get 413.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

/// What each hostile request declares: 256 MiB.
const HOSTILE_LEN: u64 = 256 << 20;

/// How a test client reaches a listener.
#[derive(Clone)]
enum Dial {
    Plain,
    /// TLS to a mutual-TLS cluster listener (trusting the cluster CA), with or without a
    /// member's certificate.
    Cluster(Arc<rustls::ClientConfig>),
}

impl Dial {
    /// The cluster listener of the server with data directory `data`, as a stranger (no
    /// client certificate) or as a member (the node's own certificate).
    fn cluster(data: &Path, member: bool) -> Dial {
        let dir = data.join("cluster-tls");
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).expect("cluster TLS material");
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(read("ca.pem").as_bytes()).unwrap())
            .unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(cairn_net::crypto_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let config = if member {
            builder
                .with_client_auth_cert(
                    vec![CertificateDer::from_pem_slice(read("node.pem").as_bytes()).unwrap()],
                    PrivateKeyDer::from_pem_slice(read("node.key").as_bytes()).unwrap(),
                )
                .unwrap()
        } else {
            builder.with_no_client_auth()
        };
        Dial::Cluster(Arc::new(config))
    }

    async fn connect(&self, addr: SocketAddr) -> Result<Box<dyn Io>, String> {
        let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        match self {
            Dial::Plain => Ok(Box::new(tcp)),
            Dial::Cluster(config) => {
                let name = ServerName::try_from(cairn_net::client::CLUSTER_SERVER_NAME)
                    .unwrap()
                    .to_owned();
                let tls = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS: {e}"))?;
                Ok(Box::new(tls))
            }
        }
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Sends `head` (a request head, without the final blank line) declaring a body of
/// `HOSTILE_LEN` bytes, streams that body from one small reused buffer (never allocating it
/// whole) while reading the answer, and returns the answer's status once its head arrived.
async fn stream_upload(dial: &Dial, addr: SocketAddr, head: String) -> Result<u16, String> {
    let io = dial.connect(addr).await?;
    let (mut rd, mut wr) = tokio::io::split(io);
    let head = format!("{head}Content-Length: {HOSTILE_LEN}\r\n\r\n");
    let writer = tokio::spawn(async move {
        wr.write_all(head.as_bytes()).await?;
        let chunk = [0x5au8; 64 << 10];
        let mut sent = 0u64;
        while sent < HOSTILE_LEN {
            wr.write_all(&chunk).await?;
            sent += chunk.len() as u64;
        }
        Ok::<u64, std::io::Error>(sent)
    });
    let status = tokio::time::timeout(Duration::from_secs(20), read_status(&mut rd))
        .await
        .map_err(|_| "no answer within 20 s".to_string())?;
    writer.abort();
    status
}

/// Sends a whole request (`request`, body included) and returns the answer's status.
async fn send_whole(dial: &Dial, addr: SocketAddr, request: &[u8]) -> Result<u16, String> {
    let mut io = dial.connect(addr).await?;
    io.write_all(request).await.map_err(|e| e.to_string())?;
    read_status(&mut io).await
}

/// Reads an HTTP answer's head and returns its status.
async fn read_status(r: &mut (impl tokio::io::AsyncRead + Unpin)) -> Result<u16, String> {
    let mut buf = Vec::new();
    let mut piece = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            return head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse::<u16>().ok())
                .ok_or_else(|| format!("bad answer {head:?}"));
        }
        let n = r.read(&mut piece).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed without an answer".to_string());
        }
        buf.extend_from_slice(&piece[..n]);
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn cluster_addr(server: &Server) -> SocketAddr {
    server
        .cluster
        .as_deref()
        .expect("cluster address")
        .parse()
        .expect("cluster address")
}

/// How the cluster listener of `server` is reached by a stranger.
fn stranger(server: &Server, tls: bool) -> Dial {
    if tls {
        Dial::cluster(&server.data, false)
    } else {
        Dial::Plain
    }
}

/// The hostile requests: unauthenticated (or wrongly authenticated) 256 MiB uploads to the
/// cluster listener, the admin API and the console, 50 each.
fn hostile_requests(server: &Server, tls: bool) -> Vec<(Dial, SocketAddr, String)> {
    let cluster = cluster_addr(server);
    let mut out = Vec::new();
    let raft = [
        "/raft/append",
        "/raft/snapshot",
        "/raft/write-batch",
        "/raft/vote",
        "/cluster/in-flight",
    ];
    for i in 0..50 {
        let auth = match i % 3 {
            0 => "",
            1 => "Authorization: Bearer not-the-cluster-secret\r\n",
            _ => "Authorization: Bearer \r\n",
        };
        let path = raft[i % raft.len()];
        out.push((
            stranger(server, tls),
            cluster,
            format!("POST {path} HTTP/1.1\r\nHost: x\r\n{auth}"),
        ));
    }
    let stale = unix_now() - 3600;
    for i in 0..50 {
        let auth = match i % 3 {
            0 => String::new(),
            1 => "Authorization: Bearer wrong\r\n".to_string(),
            // A root-key signature an hour old: refused on its header, body unread.
            _ => format!(
                "Authorization: Cairn-Root {ACCESS_KEY}:{stale}:{}\r\n",
                "00".repeat(32)
            ),
        };
        let path = [
            "/admin/keys",
            "/admin/scrub",
            "/admin/nodes",
            "/admin/keys/rotate-root",
        ][i % 4];
        out.push((
            Dial::Plain,
            server.admin,
            format!("POST {path} HTTP/1.1\r\nHost: x\r\n{auth}"),
        ));
    }
    for i in 0..50 {
        let path = if i % 2 == 0 {
            "/console/api/buckets/calm/upload?key=big"
        } else {
            "/console/api/buckets/calm/multipart/u1?key=big&part=1"
        };
        let cookie = if i % 4 == 1 {
            "Cookie: cairn_session=forged.cookie\r\n"
        } else {
            ""
        };
        out.push((
            Dial::Plain,
            server.admin,
            format!("PUT {path} HTTP/1.1\r\nHost: x\r\n{cookie}"),
        ));
    }
    out
}

/// Waves of hostile uploads.
const WAVES: usize = 10;

/// [`WAVES`] times 150 hostile uploads at once against a server started with `args`, an S3
/// client working meanwhile: every upload refused with 401/403, peak RSS up by less than
/// 64 MiB.
async fn hostile_uploads_are_refused_unread(args: &[&str], tls: bool) {
    let server = Server::start_with(args);
    let s3 = client(&server);
    s3.create_bucket().bucket("calm").send().await.unwrap();
    // Warm up: a striped object through the whole data path.
    put_bytes(&s3, "calm", "warm", &random_bytes(9 << 20, 3)).await;
    let before = server.peak_rss_kib();

    // A normal client works on throughout.
    let done = Arc::new(AtomicBool::new(false));
    let calm = {
        let s3 = s3.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut worst = Duration::ZERO;
            let mut n = 0u32;
            while !done.load(Ordering::Relaxed) || n < 5 {
                let t = Instant::now();
                let body = random_bytes(100 << 10, u64::from(n));
                put_bytes(&s3, "calm", &format!("k{n}"), &body).await;
                assert_eq!(get_bytes(&s3, "calm", &format!("k{n}")).await, body);
                worst = worst.max(t.elapsed());
                n += 1;
            }
            (n, worst)
        })
    };

    // Waves of 150 at once, so that the S3 client works through them.
    let started = Instant::now();
    let mut total = 0;
    for _ in 0..WAVES {
        let requests = hostile_requests(&server, tls);
        total += requests.len();
        let answers =
            futures::future::join_all(requests.into_iter().map(|(dial, addr, head)| async move {
                let first = head.lines().next().unwrap_or_default().to_string();
                (first, stream_upload(&dial, addr, head).await)
            }))
            .await;
        for (first, status) in &answers {
            match status {
                Ok(401) | Ok(403) => {}
                other => panic!("{first}: {other:?}"),
            }
        }
    }
    let took = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let (n, worst) = calm.await.unwrap();
    let after = server.peak_rss_kib();
    let grown = after.saturating_sub(before);
    eprintln!(
        "{total} hostile 256 MiB uploads ({WAVES} waves of 150) refused in {took:?}; server peak RSS {before} KiB -> \
         {after} KiB (+{grown} KiB); meanwhile {n} S3 PUT+GET pairs of 100 KiB, slowest {worst:?}"
    );
    assert!(
        grown < 64 << 10,
        "peak RSS grew by {grown} KiB refusing unauthenticated bodies"
    );
    assert!(worst < Duration::from_secs(5), "S3 was starved: {worst:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unauthenticated_bodies_are_refused_unread() {
    hostile_uploads_are_refused_unread(&[], true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unauthenticated_bodies_are_refused_unread_without_cluster_tls() {
    hostile_uploads_are_refused_unread(&["--insecure-cluster-transport"], false).await;
}

/// Raft routes of the cluster listener at `cluster`, reached as a member by `dial` with
/// `auth` (a header line, or nothing): bodies over the limit get 413.
async fn raft_bodies_over_the_limit_get_413(dial: &Dial, cluster: SocketAddr, auth: &str) {
    // Declared too big: refused at once, without reading.
    for path in [
        "/raft/append",
        "/raft/snapshot",
        "/raft/write-batch",
        "/raft/vote",
    ] {
        let status = stream_upload(
            dial,
            cluster,
            format!("POST {path} HTTP/1.1\r\nHost: x\r\n{auth}"),
        )
        .await;
        assert_eq!(status, Ok(413), "{path}");
    }
    // Over the limit by a little, sent whole: a vote of 8 KiB (limit 4 KiB), declared and
    // chunked.
    let vote = "v".repeat(8192);
    let declared = format!(
        "POST /raft/vote HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 8192\r\nConnection: close\r\n\r\n{vote}"
    );
    assert_eq!(
        send_whole(dial, cluster, declared.as_bytes()).await,
        Ok(413)
    );
    let chunked = format!(
        "POST /raft/vote HTTP/1.1\r\nHost: x\r\n{auth}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{vote}\r\n0\r\n\r\n",
        vote.len()
    );
    assert_eq!(send_whole(dial, cluster, chunked.as_bytes()).await, Ok(413));
    // Within the limit the route reads the body: a malformed vote is a 400.
    let small = format!(
        "POST /raft/vote HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 3\r\nConnection: close\r\n\r\nabc"
    );
    assert_eq!(send_whole(dial, cluster, small.as_bytes()).await, Ok(400));
}

#[tokio::test(flavor = "multi_thread")]
async fn authenticated_bodies_over_the_route_limit_get_413() {
    // The cluster listener: a member's certificate (mutual TLS, the default), or the
    // cluster secret (plain HTTP).
    let server = Server::start();
    let cluster = cluster_addr(&server);
    raft_bodies_over_the_limit_get_413(&Dial::cluster(&server.data, true), cluster, "").await;
    let insecure = Server::start_with(&["--insecure-cluster-transport"]);
    let bearer = format!("Authorization: Bearer {}\r\n", insecure.cluster_secret());
    raft_bodies_over_the_limit_get_413(&Dial::Plain, cluster_addr(&insecure), &bearer).await;
    drop(insecure);

    // The admin API, with the cluster secret: declared too big, and sent whole.
    let bearer = format!("Authorization: Bearer {}\r\n", server.cluster_secret());
    let status = stream_upload(
        &Dial::Plain,
        server.admin,
        format!("POST /admin/keys HTTP/1.1\r\nHost: x\r\n{bearer}"),
    )
    .await;
    assert_eq!(status, Ok(413));
    let json = format!("{{\"name\": \"{}\"}}", "n".repeat(64 << 10));
    let admin = server.admin_call("POST", "/admin/keys", &json);
    assert_eq!(admin.status, 413, "{}", admin.body_str());
    // A root-key signature that passes the header checks (right key, fresh) but declares a
    // body over the admin limit: 413 before anything is read.
    let fresh = format!(
        "Authorization: Cairn-Root {ACCESS_KEY}:{}:{}\r\n",
        unix_now(),
        "00".repeat(32)
    );
    let status = stream_upload(
        &Dial::Plain,
        server.admin,
        format!("POST /admin/keys HTTP/1.1\r\nHost: x\r\n{fresh}"),
    )
    .await;
    assert_eq!(status, Ok(413));

    // Within the limits the same routes work: an admin call with the secret, and one signed
    // with the root key, its signature over a JSON body read after the header checks.
    let keys = server.admin_call("GET", "/admin/keys", "");
    assert_eq!(keys.status, 200, "{}", keys.body_str());
    let out = std::process::Command::new(cairn_bin())
        .args(["key", "--admin", &server.admin.to_string()])
        .args(["--data", "/nonexistent", "create", "within-limits"])
        .env("CAIRN_ROOT_ACCESS_KEY", ACCESS_KEY)
        .env("CAIRN_ROOT_SECRET_KEY", SECRET_KEY)
        .env_remove("CAIRN_ADMIN_TOKEN")
        .env_remove("CAIRN_CLUSTER_SECRET")
        .output()
        .expect("run cairn");
    assert!(
        out.status.success(),
        "a root-signed key creation: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
