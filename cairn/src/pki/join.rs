//! How a node without a certificate gets one: `POST /cluster/certificate` on any member's
//! cluster listener (postcard bodies).
//!
//! 1. The joiner makes a key pair and a certificate signing request, and sends
//!    [`CertificateRequest`] `{node_id, csr, nonce, mac}` with
//!    `mac = HMAC-SHA256(secret, "cairn cluster certificate request v1" ‖ node_id ‖ csr ‖ nonce)`
//!    (each field length-prefixed). Over TLS when the cluster uses it, without verifying the
//!    server: the joiner has no CA yet.
//! 2. The member checks the MAC (constant time; a wrong one is 401 and nothing is signed),
//!    signs the CSR's public key with the cluster CA, and answers [`CertificateReply`]
//!    `{ca, cert, mac}` with
//!    `mac = HMAC-SHA256(secret, "cairn cluster certificate reply v1" ‖ nonce ‖ ca ‖ cert)`.
//! 3. The joiner checks that MAC — so a man in the middle without the secret can neither get
//!    a certificate nor hand the joiner another CA — then that the certificate chains to the
//!    CA, names the cluster and holds its own key, and saves the three.
//!
//! The secret itself never crosses the network. Replaying a captured request only yields a
//! certificate for the original joiner's key, useless without its private half; a captured
//! reply does not match a new nonce.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use cairn_metadata_rocks::RocksMetadataStore;
use cairn_net::client::{verify_node_certificate, ClientOptions, ClusterClient};
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full, Limited};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::{ClusterCa, KeyAndCsr, NodeMaterial};

/// The route on the cluster listener.
pub const PATH: &str = "/cluster/certificate";
/// Largest request or reply body.
const MAX_BODY: usize = 16 << 10;
const REQUEST_LABEL: &[u8] = b"cairn cluster certificate request v1";
const REPLY_LABEL: &[u8] = b"cairn cluster certificate reply v1";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertificateRequest {
    pub node_id: u64,
    pub csr_der: Vec<u8>,
    pub nonce: [u8; 32],
    pub mac: [u8; 32],
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertificateReply {
    pub ca_pem: String,
    pub cert_pem: String,
    pub mac: [u8; 32],
}

fn hmac(secret: &str, label: &[u8], fields: &[&[u8]]) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    m.update(label);
    m.update(&[0]);
    for f in fields {
        m.update(&(f.len() as u64).to_be_bytes());
        m.update(f);
    }
    m
}

fn request_hmac(secret: &str, node_id: u64, csr: &[u8], nonce: &[u8]) -> Hmac<Sha256> {
    hmac(secret, REQUEST_LABEL, &[&node_id.to_be_bytes(), csr, nonce])
}

fn reply_hmac(secret: &str, nonce: &[u8], ca: &str, cert: &str) -> Hmac<Sha256> {
    hmac(
        secret,
        REPLY_LABEL,
        &[nonce, ca.as_bytes(), cert.as_bytes()],
    )
}

impl CertificateRequest {
    pub fn new(secret: &str, node_id: u64, csr_der: Vec<u8>) -> Self {
        let nonce: [u8; 32] = rand::random();
        let mac = request_hmac(secret, node_id, &csr_der, &nonce)
            .finalize()
            .into_bytes()
            .into();
        CertificateRequest {
            node_id,
            csr_der,
            nonce,
            mac,
        }
    }

    /// Whether the MAC proves the cluster secret (checked in constant time).
    pub fn verify(&self, secret: &str) -> bool {
        !secret.is_empty()
            && request_hmac(secret, self.node_id, &self.csr_der, &self.nonce)
                .verify_slice(&self.mac)
                .is_ok()
    }
}

impl CertificateReply {
    pub fn new(secret: &str, nonce: &[u8], ca_pem: String, cert_pem: String) -> Self {
        let mac = reply_hmac(secret, nonce, &ca_pem, &cert_pem)
            .finalize()
            .into_bytes()
            .into();
        CertificateReply {
            ca_pem,
            cert_pem,
            mac,
        }
    }

    /// Whether the reply to the request with `nonce` comes from a holder of the secret.
    pub fn verify(&self, secret: &str, nonce: &[u8]) -> bool {
        reply_hmac(secret, nonce, &self.ca_pem, &self.cert_pem)
            .verify_slice(&self.mac)
            .is_ok()
    }
}

/// Where the serving node finds the CA: its metadata replica, or (on the first node, before
/// the CA is stored there) the CA it just made.
pub struct Issuer {
    local: RocksMetadataStore,
    pending: Mutex<Option<ClusterCa>>,
    secret: String,
}

impl Issuer {
    pub fn new(local: RocksMetadataStore, pending: Option<ClusterCa>, secret: String) -> Self {
        Issuer {
            local,
            pending: Mutex::new(pending),
            secret,
        }
    }

    async fn ca(&self) -> Option<ClusterCa> {
        match ClusterCa::stored(&self.local).await {
            Ok(Some(ca)) => return Some(ca),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %format!("{e:#}"), "the cluster CA in metadata"),
        }
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The `POST /cluster/certificate` route (served to clients without a certificate).
pub fn router(issuer: Arc<Issuer>) -> Router {
    Router::new()
        .route(PATH, post(answer))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(issuer)
}

async fn answer(State(issuer): State<Arc<Issuer>>, body: Bytes) -> Response {
    let Ok(req) = postcard::from_bytes::<CertificateRequest>(&body) else {
        return (StatusCode::BAD_REQUEST, "bad certificate request").into_response();
    };
    if !req.verify(&issuer.secret) {
        tracing::warn!(
            node = req.node_id,
            "certificate request with a bad cluster-secret MAC refused"
        );
        return (StatusCode::UNAUTHORIZED, "bad cluster secret").into_response();
    }
    let Some(ca) = issuer.ca().await else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "this node has no cluster CA yet (a cluster made before TLS between nodes: see \
             docs/security.md)",
        )
            .into_response();
    };
    let cert_pem = match ca.sign_csr(req.node_id, &req.csr_der) {
        Ok(c) => c,
        Err(e) => return (StatusCode::BAD_REQUEST, e.0).into_response(),
    };
    tracing::info!(node = req.node_id, "issued a cluster certificate");
    let reply = CertificateReply::new(&issuer.secret, &req.nonce, ca.cert_pem, cert_pem);
    match postcard::to_allocvec(&reply) {
        Ok(b) => (StatusCode::OK, b).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Why one attempt failed: worth retrying (the member is not up yet, has no CA yet), or not
/// (the cluster refused the secret).
enum Attempt {
    Retry(String),
    Fatal(anyhow::Error),
}

/// Gets this node's certificate from the cluster through any of `seeds` (cluster addresses),
/// retrying until `deadline` while none answers; `tls` says whether the cluster listeners
/// speak TLS. Fails at once when a member refuses the secret, or answers with something the
/// secret does not authenticate.
pub async fn fetch(
    seeds: &[String],
    node_id: u64,
    secret: &str,
    tls: bool,
    deadline: Instant,
) -> anyhow::Result<NodeMaterial> {
    anyhow::ensure!(
        !seeds.is_empty(),
        "no cluster address to ask for a certificate"
    );
    let options = ClientOptions {
        connect_timeout: Duration::from_secs(2),
        pool_idle_timeout: Duration::from_secs(5),
    };
    let client = if tls {
        ClusterClient::unverified_tls(options)
    } else {
        ClusterClient::plain(None, options)
    };
    let key = KeyAndCsr::generate(node_id)?;
    loop {
        let mut why = Vec::new();
        for seed in seeds {
            match attempt(&client, seed, node_id, secret, &key).await {
                Ok(m) => {
                    tracing::info!(via = %seed, "got this node's cluster certificate");
                    return Ok(m);
                }
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Retry(m)) => why.push(format!("{seed}: {m}")),
            }
        }
        let why = why.join("; ");
        if Instant::now() >= deadline {
            anyhow::bail!("no cluster member gave this node a certificate: {why}");
        }
        tracing::info!(%why, "no certificate yet; retrying");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn attempt(
    client: &ClusterClient,
    seed: &str,
    node_id: u64,
    secret: &str,
    key: &KeyAndCsr,
) -> Result<NodeMaterial, Attempt> {
    let req = CertificateRequest::new(secret, node_id, key.csr_der.clone());
    let body = postcard::to_allocvec(&req).map_err(|e| Attempt::Fatal(e.into()))?;
    let request = Request::builder()
        .method(Method::POST)
        .uri(client.url(seed, PATH))
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| Attempt::Fatal(anyhow::anyhow!("bad cluster address {seed:?}: {e}")))?;
    let exchange = async {
        let resp = client
            .request(request)
            .await
            .map_err(|e| Attempt::Retry(format!("{e:?}")))?;
        let status = resp.status();
        let bytes = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| Attempt::Retry(e.to_string()))?
            .to_bytes();
        Ok((status, bytes))
    };
    let (status, bytes) = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| Attempt::Retry("no answer within 10 s".into()))??;
    match status {
        StatusCode::OK => {}
        StatusCode::UNAUTHORIZED => {
            return Err(Attempt::Fatal(anyhow::anyhow!(
                "the cluster at {seed} refused this node's cluster secret (CAIRN_CLUSTER_SECRET \
                 must be the same on every node)"
            )))
        }
        s if s.is_server_error() || s == StatusCode::NOT_FOUND => {
            return Err(Attempt::Retry(format!(
                "HTTP {s}: {}",
                String::from_utf8_lossy(&bytes)
            )))
        }
        s => {
            return Err(Attempt::Fatal(anyhow::anyhow!(
                "the cluster at {seed} refused the certificate request: HTTP {s}: {}",
                String::from_utf8_lossy(&bytes)
            )))
        }
    }
    let reply: CertificateReply = postcard::from_bytes(&bytes)
        .map_err(|e| Attempt::Retry(format!("malformed certificate reply: {e}")))?;
    if !reply.verify(secret, &req.nonce) {
        return Err(Attempt::Fatal(anyhow::anyhow!(
            "the certificate from {seed} is not authenticated by the cluster secret: that is not \
             a member of this cluster (a different secret, or someone in between)"
        )));
    }
    let material = NodeMaterial {
        ca_pem: reply.ca_pem,
        cert_pem: reply.cert_pem,
        key_pem: key.key_pem.clone(),
    };
    verify_node_certificate(&material.ca_pem, &material.cert_pem)
        .map_err(|e| Attempt::Fatal(anyhow::anyhow!("the certificate from {seed}: {e}")))?;
    material
        .tls()
        .map_err(|e| Attempt::Fatal(e.context(format!("the certificate from {seed}"))))?;
    Ok(material)
}
