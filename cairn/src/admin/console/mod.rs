//! The web console: static assets embedded in the binary (served at `/` on the admin port)
//! and the JSON API under `/console/api` that the page calls.
//!
//! Every data call runs as the logged-in key: the API signs an ordinary S3 request with that
//! key (aws-sdk-s3 against this server's own S3 listener), so the console can do exactly
//! what the key can do through S3, no more. Sessions are signed cookies ([`session`]).
//! Cluster views (datanodes, ring, scrubs) are read from the process directly and, like
//! starting a scrub, need the root key's session (403 for any other key).
//!
//! Every API call but login and logout needs a session, checked in a middleware before the
//! body is read: without one the call gets 401 and its connection closed, its body unread.
//! Bodies are then limited per route to what the page sends ([`MAX_CONSOLE_BODY`] for
//! uploads, [`MAX_JSON_BODY`], [`MAX_POLICY_BODY`] and [`MAX_SMALL_BODY`] for JSON).
//!
//! Pages: the buckets, a bucket's objects and its Permissions tab ([`permissions`]: policy,
//! Block Public Access, Object Ownership, as the key's S3 calls), and for the root key only
//! the cluster view and the keys page ([`keys`]: key policies, cluster-wide Block Public
//! Access).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use cairn_sigv4::SecretLookup;
use serde::Deserialize;
use serde_json::{json as j, Value};

use super::{json, AdminState};

mod data;
mod keys;
mod permissions;
pub mod session;

pub use session::Sessions;

/// Where the console's S3 calls go, and how sessions are signed.
pub struct ConsoleConfig {
    /// Where the console's own S3 calls go (loopback).
    pub s3_endpoint: String,
    /// The S3 port, for links the browser follows (with the host it reached the console at).
    pub s3_port: u16,
    /// `--public-s3-url`: the S3 URL browsers use, when it is not the console's host.
    pub public_s3_url: Option<String>,
    pub region: String,
    pub sessions: Sessions,
    /// When the S3 listener serves HTTPS: the HTTP client of the console's own S3 calls
    /// (it trusts the served certificate, see [`crate::loopback_tls`]); links then use
    /// `https://` too.
    pub s3_https: Option<aws_smithy_runtime_api::client::http::SharedHttpClient>,
}

/// Largest body of one console upload call: a small file whole, or one part of a multipart
/// upload (the page sends parts of 8 MiB; twice that leaves room).
pub const MAX_CONSOLE_BODY: usize = 16 << 20;
/// Largest JSON body of the calls that list objects or parts: a delete of 1,000 keys (S3's
/// limit per call) of up to 1 KiB, each byte escaped, or a completion of 10,000 parts.
pub const MAX_JSON_BODY: usize = 4 << 20;
/// Largest body of the calls that set a policy: a policy of S3's 20 KiB limit with every
/// byte escaped (`\uXXXX`) in its JSON string.
pub const MAX_POLICY_BODY: usize = 128 << 10;
/// Largest body of the other calls (a login, a bucket name, a setting).
pub const MAX_SMALL_BODY: usize = 16 << 10;

const INDEX: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");
const PERMISSIONS_JS: &str = include_str!("assets/permissions.js");
const KEYS_JS: &str = include_str!("assets/keys.js");

pub(super) fn routes(state: Arc<AdminState>) -> Router<Arc<AdminState>> {
    let asset = |body: &'static str, ctype: &'static str| {
        get(move || async move {
            (
                [
                    (header::CONTENT_TYPE, ctype),
                    (header::CACHE_CONTROL, "no-cache"),
                ],
                body,
            )
        })
    };
    Router::new()
        .route("/", asset(INDEX, "text/html; charset=utf-8"))
        .route(
            "/console/app.js",
            asset(APP_JS, "text/javascript; charset=utf-8"),
        )
        .route(
            "/console/app.css",
            asset(APP_CSS, "text/css; charset=utf-8"),
        )
        .route(
            "/console/permissions.js",
            asset(PERMISSIONS_JS, "text/javascript; charset=utf-8"),
        )
        .route(
            "/console/keys.js",
            asset(KEYS_JS, "text/javascript; charset=utf-8"),
        )
        .route("/console/api/login", post(login))
        .route("/console/api/logout", post(logout))
        .merge(
            Router::new()
                .route("/console/api/me", get(me))
                .route("/console/api/cluster", get(cluster))
                .route("/console/api/scrub", post(scrub))
                .route("/console/api/workers/{name}/{action}", post(worker_action))
                .merge(data::routes())
                .merge(permissions::routes())
                .merge(keys::routes())
                .route_layer(middleware::from_fn_with_state(state, require_session)),
        )
        .layer(DefaultBodyLimit::max(MAX_SMALL_BODY))
}

/// Lets a call through only with a valid session; otherwise answers 401 before the body is
/// read, and closes the connection rather than drain the body.
async fn require_session(State(st): State<Arc<AdminState>>, req: Request, next: Next) -> Response {
    match session(&st, req.headers()) {
        Ok(_) => next.run(req).await,
        Err(resp) => {
            let mut resp = *resp;
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            resp
        }
    }
}

/// A JSON error the page shows as it is.
pub(crate) fn fail(status: StatusCode, code: &str, message: &str) -> Response {
    json(status, &j!({ "error": code, "message": message }))
}

/// The logged-in key and its secret, or the 401 the page turns into the login screen.
pub(crate) struct Session {
    pub access_key: String,
    pub secret: String,
}

/// Every console call but login goes through here: a session is valid while its cookie is
/// (signed by this cluster, not expired) *and* its key is accepted by the key ring, which
/// has no secret for a deleted or disabled key — so deleting or disabling a key ends its
/// sessions, on this node at once and on the others within a heartbeat.
pub(crate) fn session(st: &AdminState, headers: &HeaderMap) -> Result<Session, Box<Response>> {
    let cookie = headers.get(header::COOKIE).and_then(|v| v.to_str().ok());
    let now = cairn_types::clock::now_ms() / 1000;
    match st.console.sessions.check(cookie, now) {
        Ok(access_key) => match st.keys.secret_key(&access_key) {
            Some(secret) => Ok(Session { access_key, secret }),
            None => Err(Box::new(fail(
                StatusCode::UNAUTHORIZED,
                "SessionInvalid",
                "Your access key was deleted or disabled. Log in with another one.",
            ))),
        },
        Err(session::SessionError::Expired) => Err(Box::new(fail(
            StatusCode::UNAUTHORIZED,
            "SessionExpired",
            "Your session has expired. Log in again to continue.",
        ))),
        Err(_) => Err(Box::new(fail(
            StatusCode::UNAUTHORIZED,
            "NotLoggedIn",
            "Log in with an access key and secret.",
        ))),
    }
}

#[derive(Deserialize)]
struct Login {
    access_key: String,
    secret_key: String,
}

async fn login(State(st): State<Arc<AdminState>>, body: Bytes) -> Response {
    let Ok(req) = serde_json::from_slice::<Login>(&body) else {
        return fail(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Send an access key and a secret.",
        );
    };
    let known = st.keys.secret_key(&req.access_key);
    let ok = known.as_ref().is_some_and(|s| {
        bool::from(subtle::ConstantTimeEq::ct_eq(
            s.as_bytes(),
            req.secret_key.as_bytes(),
        ))
    });
    if !ok {
        tracing::warn!(access_key = %req.access_key, "console login refused");
        return fail(
            StatusCode::UNAUTHORIZED,
            "InvalidCredentials",
            "Wrong access key or secret. Check both and try again.",
        );
    }
    let now = cairn_types::clock::now_ms() / 1000;
    let cookie = st.console.sessions.issue(&req.access_key, now);
    let mut resp = json(StatusCode::OK, &me_view(&st, &req.access_key));
    if let Ok(v) = cookie.parse() {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

async fn logout(State(st): State<Arc<AdminState>>) -> Response {
    let mut resp = json(StatusCode::OK, &j!({ "ok": true }));
    if let Ok(v) = st.console.sessions.clear().parse() {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

fn me_view(st: &AdminState, access_key: &str) -> Value {
    j!({
        "access_key": access_key,
        "root": st.keys.is_root(access_key),
        "s3_endpoint": st.console.s3_endpoint,
        "region": st.console.region,
    })
}

async fn me(State(st): State<Arc<AdminState>>, headers: HeaderMap) -> Response {
    match session(&st, &headers) {
        Ok(s) => json(StatusCode::OK, &me_view(&st, &s.access_key)),
        Err(r) => *r,
    }
}

/// Request counters summed from the metrics registry (the page turns them into rates).
fn request_totals(st: &AdminState) -> Value {
    let mut text = String::new();
    let _ = prometheus_client::encoding::text::encode(&mut text, &st.registry);
    let (mut ok, mut client_err, mut server_err) = (0f64, 0f64, 0f64);
    let (mut rx, mut tx) = (0f64, 0f64);
    for line in text.lines() {
        let Some((series, v)) = line.rsplit_once(' ') else {
            continue;
        };
        let v: f64 = v.parse().unwrap_or(0.0);
        if series.starts_with("cairn_s3_requests_total{") {
            if series.contains("status=\"4xx\"") {
                client_err += v;
            } else if series.contains("status=\"5xx\"") {
                server_err += v;
            } else {
                ok += v;
            }
        } else if series == "cairn_s3_received_bytes_total" {
            rx = v;
        } else if series == "cairn_s3_sent_bytes_total" {
            tx = v;
        }
    }
    j!({
        "requests": ok + client_err + server_err,
        "client_errors": client_err,
        "server_errors": server_err,
        "received_bytes": rx,
        "sent_bytes": tx,
        "at_ms": cairn_types::clock::now_ms(),
    })
}

/// Passes a root key's session; else the 401 (no session) or 403 (another key) to answer.
pub(super) fn require_root(
    st: &AdminState,
    headers: &HeaderMap,
    what: &str,
) -> Result<(), Box<Response>> {
    if !st.keys.is_root(&session(st, headers)?.access_key) {
        return Err(Box::new(fail(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            &format!("Only the root key can {what}."),
        )));
    }
    Ok(())
}

/// The cluster dashboard. Root only: it names every datanode and, in scrub findings, other
/// keys' buckets and objects.
async fn cluster(State(st): State<Arc<AdminState>>, headers: HeaderMap) -> Response {
    if let Err(r) = require_root(&st, &headers, "see the cluster view") {
        return *r;
    }
    let cluster = super::nodes::cluster_status(&st).await;
    let nodes = super::all_datanode_views(&st, cluster.as_ref()).await;
    let ec = st.objects.scheme();
    // Ring balance: share of first placements per datanode over a fixed sample.
    let view = st.objects.membership().view();
    let placement = view.placement();
    let mut share = std::collections::BTreeMap::<u32, u64>::new();
    const SAMPLES: u64 = 20_000;
    for i in 0..SAMPLES {
        let id = cairn_types::ObjectId(
            u128::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835),
        );
        if let Some(n) = placement.place(id, 0, 1).first() {
            *share.entry(n.0).or_default() += 1;
        }
    }
    let ring: Vec<Value> = nodes
        .iter()
        .map(|n| {
            let c = share.get(&n.status.id).copied().unwrap_or(0);
            j!({ "node": n.status.id, "share": c as f64 / SAMPLES as f64 })
        })
        .collect();
    let history = st.healer.history().await.unwrap_or_default();
    let recent: Vec<_> = history.iter().rev().take(10).cloned().collect();
    json(
        StatusCode::OK,
        &j!({
            "datanodes": nodes,
            "metadata": metadata_summary(&st),
            "erasure_coding": { "data": ec.data, "parity": ec.parity,
                                "overhead": (ec.data as f64 + ec.parity as f64) / ec.data as f64 },
            "ring": ring,
            "requests": request_totals(&st),
            "heal": st.healer.status(),
            "scrub_history": recent,
            "workers": st.workers.snapshot(),
            "lifecycle": cairn_lifecycle::worker::Progress::load(&st.objects).await.unwrap_or_default(),
        }),
    )
}

/// The metadata group as the dashboard shows it: engine, replication, leader, voters and
/// this node's roles.
fn metadata_summary(st: &AdminState) -> Value {
    let Some(c) = &st.cluster else {
        return j!({ "engine": "rocksdb", "replication": "none (single metadata node)",
                    "leader": "local", "voters": ["local"],
                    "roles": ["meta", "data", "gateway"] });
    };
    let r = c.raft.status();
    let voters: Vec<String> = r
        .members
        .iter()
        .filter(|m| m.voter)
        .map(|m| format!("node{}", m.id))
        .collect();
    let roles: Vec<&str> = [
        (c.roles.meta, "meta"),
        (c.roles.data, "data"),
        (c.roles.gateway, "gateway"),
    ]
    .into_iter()
    .filter_map(|(on, n)| on.then_some(n))
    .collect();
    j!({
        "engine": "rocksdb",
        "replication": if voters.len() > 1 {
            format!("raft, {} voters (this node: node{}, {})", voters.len(), r.id, r.state)
        } else {
            "raft, single metadata node".to_string()
        },
        "leader": r.leader.map_or_else(|| "none".to_string(), |l| format!("node{l}")),
        "voters": voters,
        "roles": roles,
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ScrubStart {
    deep: bool,
    repair: bool,
}

async fn scrub(State(st): State<Arc<AdminState>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = require_root(&st, &headers, "start a scrub") {
        return *r;
    }
    let req: ScrubStart = serde_json::from_slice(&body).unwrap_or_default();
    let opts = cairn_heal::ScrubOptions {
        deep: req.deep,
        repair: req.repair,
        deep_rate: st.healer.default_deep_rate(),
        trigger: "console".into(),
        ..cairn_heal::ScrubOptions::default()
    };
    match st.healer.start(opts) {
        Ok(id) => json(StatusCode::ACCEPTED, &j!({ "id": id })),
        Err(e) => fail(StatusCode::CONFLICT, "Busy", &e.to_string()),
    }
}

/// Pauses or resumes one of this node's background workers (root only).
async fn worker_action(
    State(st): State<Arc<AdminState>>,
    axum::extract::Path((name, action)): axum::extract::Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = require_root(&st, &headers, "pause or resume workers") {
        return *r;
    }
    let r = match action.as_str() {
        "pause" => st.workers.pause(&name),
        "resume" => st.workers.resume(&name),
        _ => {
            return fail(
                StatusCode::NOT_FOUND,
                "NoSuchAction",
                "Workers can be paused or resumed.",
            )
        }
    };
    match r {
        Ok(w) => json(StatusCode::OK, &w),
        Err(e) => fail(StatusCode::NOT_FOUND, "NoSuchWorker", &e.to_string()),
    }
}
