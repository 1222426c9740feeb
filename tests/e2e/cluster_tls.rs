//! Mutual TLS between nodes, end to end: a three-node loopback cluster whose node 1 is
//! reached by the others only through a recording TCP proxy (node 1 listens on 127.0.0.2
//! and advertises 127.0.0.1, where the proxy is), so every byte of its cluster traffic —
//! the join protocol, Raft, forwarded writes, in-flight queries — is captured.
//!
//! - The cluster works over TLS, and the capture holds no form of the cluster secret (nor
//!   the root key's secret, which travels inside Raft entries); the same capture of a cluster
//!   started with `--insecure-cluster-transport` does hold it, so the check can fail.
//! - The cluster listener and a datanode listener refuse a client without a certificate
//!   (401 on every route but the join route / no handshake), one with a certificate from
//!   another CA (no handshake), and the bearer secret over TLS; a member's certificate
//!   gets in (the same requests, so the refusals are not an artefact of the requests).
//! - A node joining with a wrong secret stops with an error and gets no certificate.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use cairn_net::client::{ClientOptions, ClusterClient, ClusterTls, ClusterTransport};
use cairn_tests::cluster::CLUSTER_SECRET;
use http_body_util::{BodyExt, Full};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::common::*;

const BUCKET: &str = "tls";

/// The transport of a member, from the material in its data directory (what a tool on that
/// host could use).
pub fn member_transport(data: &Path) -> ClusterTransport {
    let d = data.join("cluster-tls");
    let read = |f: &str| std::fs::read_to_string(d.join(f)).expect("the node's TLS material");
    ClusterTransport::Tls(Arc::new(
        ClusterTls::from_pem(&read("ca.pem"), &read("node.pem"), &read("node.key")).unwrap(),
    ))
}

/// A client that trusts the cluster CA (so the server passes its checks) and presents
/// `identity` (certificate and key PEM), or no certificate.
fn client_presenting(ca_pem: &str, identity: Option<(String, String)>) -> ClusterClient {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(cairn_net::crypto_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    ClusterClient::tls(Arc::new(config), ClientOptions::default())
}

/// A certificate for the cluster's server name from a CA that is not the cluster's.
fn foreign_identity() -> (String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(vec!["cairn-cluster".to_string()]).unwrap();
    p.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
    ];
    let cert = p.signed_by(&key, &issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// Status of `method url` through `client` (with `bearer` as token), or the error.
async fn status(
    client: &ClusterClient,
    method: &str,
    url: &str,
    bearer: Option<&str>,
) -> Result<u16, String> {
    let mut req = http::Request::builder().method(method).uri(url);
    if let Some(b) = bearer {
        req = req.header("authorization", format!("Bearer {b}"));
    }
    let req = req.body(Full::new(Bytes::new())).unwrap();
    let exchange = async {
        let resp = client.request(req).await.map_err(|e| format!("{e:?}"))?;
        let code = resp.status().as_u16();
        let _ = resp.into_body().collect().await;
        Ok(code)
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .unwrap_or_else(|_| Err("no answer".into()))
}

/// Bytes seen by the proxy, each direction.
#[derive(Default, Clone)]
struct Capture {
    to_node: Arc<Mutex<Vec<u8>>>,
    from_node: Arc<Mutex<Vec<u8>>>,
}

impl Capture {
    fn total(&self) -> usize {
        self.to_node.lock().unwrap().len() + self.from_node.lock().unwrap().len()
    }

    /// The forms of `secret` found in either direction.
    fn forms_of(&self, secret: &str) -> Vec<String> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let forms = [
            ("raw", secret.as_bytes().to_vec()),
            ("hex", hex::encode(secret).into_bytes()),
            ("HEX", hex::encode_upper(secret).into_bytes()),
            ("base64", b64.encode(secret).into_bytes()),
            ("base64url", b64url.encode(secret).into_bytes()),
        ];
        let mut found = Vec::new();
        for (dir, bytes) in [("to node", &self.to_node), ("from node", &self.from_node)] {
            let bytes = bytes.lock().unwrap();
            for (name, form) in &forms {
                if bytes.windows(form.len()).any(|w| w == form.as_slice()) {
                    found.push(format!("{name} {dir}"));
                }
            }
        }
        found
    }
}

/// Forwards every connection to `listener` on to `upstream`, recording both directions.
fn spawn_proxy(listener: TcpListener, upstream: String, capture: Capture) {
    async fn pump(
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
        log: Arc<Mutex<Vec<u8>>>,
    ) {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    log.lock().unwrap().extend_from_slice(&buf[..n]);
                    if to.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown().await;
    }
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(&upstream).await else {
                continue;
            };
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(pump(cr, sw, capture.to_node.clone()));
            tokio::spawn(pump(sr, cw, capture.from_node.clone()));
        }
    });
}

/// Node data directories and their servers, node 1 behind the proxy.
struct ProxiedCluster {
    _tmp: tempfile::TempDir,
    nodes: Vec<Server>,
    /// Where the proxy listens (node 1's advertised cluster address) and where node 1 does.
    seed: String,
    real: String,
    capture: Capture,
}

async fn proxied_cluster(extra: &[&str]) -> ProxiedCluster {
    let tmp = tempfile::tempdir().unwrap();
    let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = proxy.local_addr().unwrap().port();
    let seed = format!("127.0.0.1:{port}");
    let real = format!("127.0.0.2:{port}");
    let capture = Capture::default();
    spawn_proxy(proxy, real.clone(), capture.clone());
    let envs = vec![(
        "CAIRN_CLUSTER_SECRET".to_string(),
        CLUSTER_SECRET.to_string(),
    )];
    let mut nodes = Vec::new();
    for id in 1..=3u64 {
        let data = tmp.path().join(format!("node{id}"));
        let mut args: Vec<String> = vec!["--node-id".into(), id.to_string()];
        for d in 0..2 {
            args.push("--data-dir".into());
            args.push(data.join(format!("disk{d}")).display().to_string());
        }
        if id == 1 {
            args.extend(["--cluster-listen".into(), real.clone()]);
            args.extend(["--advertise".into(), "127.0.0.1".into()]);
            args.extend(["--datanode-listen".into(), "127.0.0.1".into()]);
        } else {
            args.extend(["--join".into(), seed.clone()]);
        }
        args.extend(
            [
                "--ec",
                "4+2",
                "--raft-election-ms",
                "600",
                "--heartbeat-secs",
                "0.5",
            ]
            .iter()
            .chain(extra)
            .map(|s| s.to_string()),
        );
        let (data2, envs2) = (data.clone(), envs.clone());
        let server = tokio::task::spawn_blocking(move || Server::spawn_in(&data2, args, envs2))
            .await
            .unwrap();
        nodes.push(server);
    }
    ProxiedCluster {
        _tmp: tmp,
        nodes,
        seed,
        real,
        capture,
    }
}

/// Writes through every gateway and reads back through the next one (forwarded writes and
/// Raft traffic go through the proxy), waiting until all six datanodes are up first.
async fn exercise(c: &ProxiedCluster) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = c.nodes[1].admin_call("GET", "/admin/cluster", "");
        if r.body_str().matches("\"up\": true").count() >= 6 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "datanodes not up: {}",
            r.body_str()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let s3: Vec<_> = c.nodes.iter().map(client).collect();
    s3[1].create_bucket().bucket(BUCKET).send().await.unwrap();
    for i in 0..9usize {
        let data = random_bytes(if i % 2 == 0 { 1_000 } else { 200_000 }, i as u64);
        let key = format!("k{i}");
        put_bytes(&s3[i % 3], BUCKET, &key, &data).await;
        assert_eq!(get_bytes(&s3[(i + 1) % 3], BUCKET, &key).await, data);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tls_cluster_keeps_the_secret_off_the_wire_and_strangers_out() {
    let c = proxied_cluster(&[]).await;
    exercise(&c).await;
    // Every node has its certificate from one CA.
    let ca: Vec<String> = c
        .nodes
        .iter()
        .map(|n| std::fs::read_to_string(n.data.join("cluster-tls/ca.pem")).unwrap())
        .collect();
    assert!(ca.iter().all(|p| p == &ca[0]));
    let captured = c.capture.total();
    eprintln!(
        "captured {} bytes to node 1 and {} from it (TLS)",
        c.capture.to_node.lock().unwrap().len(),
        c.capture.from_node.lock().unwrap().len()
    );
    assert!(
        captured > 50_000,
        "too little traffic captured: {captured} bytes"
    );
    assert_eq!(c.capture.forms_of(CLUSTER_SECRET), Vec::<String>::new());
    assert_eq!(c.capture.forms_of(SECRET_KEY), Vec::<String>::new());

    // Node 1's cluster listener (directly) and one of its datanodes.
    let view: Value = serde_json::from_str(
        &c.nodes[0]
            .admin_call("GET", "/admin/cluster", "")
            .body_str(),
    )
    .unwrap();
    let dn = view["datanodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["node"] == 1)
        .and_then(|d| d["addr"].as_str())
        .expect("a datanode of node 1")
        .to_string();
    let member = member_transport(&c.nodes[1].data).client(ClientOptions::default());
    let nobody = client_presenting(&ca[0], None);
    let stranger = client_presenting(&ca[0], Some(foreign_identity()));
    let cluster = |client: &ClusterClient, path: &str| client.url(&c.real, path);
    let datanode = |client: &ClusterClient| client.url(&dn, "/stats");

    // A member gets in (the positive control for every refusal below).
    assert_eq!(
        status(
            &member,
            "POST",
            &cluster(&member, "/cluster/in-flight"),
            None
        )
        .await,
        Ok(200)
    );
    assert_eq!(
        status(&member, "GET", &datanode(&member), None).await,
        Ok(200)
    );
    // No certificate: 401 on the cluster routes (with or without the secret as bearer
    // token); no TLS session at all with a datanode.
    for path in [
        "/cluster/in-flight",
        "/raft/vote",
        "/raft/append",
        "/raft/write-batch",
    ] {
        for bearer in [None, Some(CLUSTER_SECRET)] {
            let r = status(&nobody, "POST", &cluster(&nobody, path), bearer).await;
            assert_eq!(r, Ok(401), "{path} {bearer:?}");
        }
    }
    let r = status(&nobody, "GET", &datanode(&nobody), Some(CLUSTER_SECRET)).await;
    assert!(
        r.is_err(),
        "a datanode answered a client without a certificate: {r:?}"
    );
    // A certificate from another CA: the handshake fails on both.
    let r = status(
        &stranger,
        "POST",
        &cluster(&stranger, "/cluster/in-flight"),
        None,
    )
    .await;
    assert!(
        r.is_err(),
        "the cluster listener took a foreign certificate: {r:?}"
    );
    let r = status(&stranger, "GET", &datanode(&stranger), None).await;
    assert!(r.is_err(), "a datanode took a foreign certificate: {r:?}");
    // Plain HTTP with the secret reaches nothing.
    let plain = ClusterTransport::insecure(CLUSTER_SECRET).client(ClientOptions::default());
    let r = status(
        &plain,
        "POST",
        &plain.url(&c.real, "/cluster/in-flight"),
        None,
    )
    .await;
    assert!(r.is_err(), "plain HTTP answered: {r:?}");

    // A node with a wrong secret is refused at the join and gets no certificate.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("intruder");
    let child = Command::new(cairn_bin())
        .arg("server")
        .arg("--data")
        .arg(&data)
        .args(["--node-id", "9", "--join", &c.seed])
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(["--cluster-listen", "127.0.0.1:0", "--datanodes", "1"])
        .env(
            "CAIRN_CLUSTER_SECRET",
            "not-the-cluster-secret-0123456789abcdef",
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("refused this node's cluster secret"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(!data.join("cluster-tls").join("node.pem").exists());
    // The cluster was not changed by it.
    let view = c.nodes[0]
        .admin_call("GET", "/admin/cluster", "")
        .body_str();
    assert!(!view.contains("\"id\": 9"), "{view}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_capture_without_tls_shows_the_secret() {
    let c = proxied_cluster(&["--insecure-cluster-transport"]).await;
    exercise(&c).await;
    let found = c.capture.forms_of(CLUSTER_SECRET);
    eprintln!(
        "captured {} bytes (plain HTTP): {found:?}",
        c.capture.total()
    );
    assert!(
        found.iter().any(|f| f == "raw to node"),
        "the bearer secret was not seen in {} bytes: {found:?}",
        c.capture.total()
    );
    // Nodes still got certificates (so the flag can be dropped later without a new join).
    for n in &c.nodes {
        assert!(n.data.join("cluster-tls/node.pem").exists());
    }
}
