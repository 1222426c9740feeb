//! The internal datanode protocol: an HTTP/1.1 server exposing a [`ShardStore`] to the rest of
//! the cluster. [`crate::RemoteShardStore`] is its client.
//!
//! | Method and path                    | Request body | Success reply                                  |
//! |------------------------------------|--------------|------------------------------------------------|
//! | `PUT /shards/{id}`                 | shard bytes  | 200, JSON [`ShardInfo`]                        |
//! | `GET /shards/{id}`                 | —            | 200, shard bytes, header `x-cairn-crc32c`      |
//! | `DELETE /shards/{id}`              | —            | 204 (also when the shard was absent)           |
//! | `GET /shards?after={id}&limit=N`   | —            | 200, JSON array of [`ShardInfo`] (≤ [`MAX_LIST_LIMIT`]) |
//! | `GET /stats`                       | —            | 200, JSON [`StoreStats`]                       |
//! | `GET /merkle`                      | —            | 200, JSON: shape and the 256 partition roots   |
//! | `GET /merkle/{p}`                  | —            | 200, JSON node: root hash and its children     |
//! | `GET /merkle/{p}/{path}`           | —            | 200, JSON node: children, or a leaf's entries  |
//! | `POST /scrub/deep?rate=N`          | —            | 200, JSON [`DeepScrubReport`] (after the scrub)|
//!
//! `{p}` is a partition number in decimal (0..=255), `{path}` one lowercase hex digit per
//! nibble, 1 to [`DEPTH`] of them (see [`crate::merkle`] and `docs/formats.md`); `rate` is
//! the deep scrub's payload bytes per second, `0` for no limit.
//!
//! `{id}` is the lowercase hex of [`ShardId::to_bytes`] (48 characters). A `PUT` may carry
//! `x-cairn-crc32c` (8 hex digits) for the body; a mismatch is refused with 409 before
//! anything is stored. Every request must come from a cluster member
//! ([`ClusterTransport::authenticated`]: a client certificate from the cluster CA with TLS,
//! which the handshake already demands; else `Authorization: Bearer <cluster secret>`,
//! compared in constant time) or gets 401. Errors map as: `NotFound` 404, `Corrupt` 409
//! (body: the reason), `TooLarge` 413 (body: the size), `Io`/`Closed` 503, malformed ids or
//! queries 400. Error bodies are plain text.

use std::future::Future;
use std::io;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use cairn_net::client::ClusterTransport;
use cairn_types::ShardId;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::merkle::{Hash, MerkleNode, NodePath, DEPTH, FANOUT, PARTITIONS};
use crate::{DatanodeError, DeepScrubReport, ShardInfo, ShardStore, StoreStats};

/// Largest request body (shard) the server buffers: 256 MiB.
pub const MAX_SHARD_BODY: usize = 256 << 20;
/// Most entries one `GET /shards` reply holds; larger `limit`s are clamped.
pub const MAX_LIST_LIMIT: usize = 10_000;
/// Header carrying a shard's CRC32C as 8 lowercase hex digits.
pub const CRC_HEADER: &str = "x-cairn-crc32c";

/// Hex form of a shard id used in paths and queries.
pub fn encode_id(id: &ShardId) -> String {
    hex::encode(id.to_bytes())
}

/// Parses the hex form produced by [`encode_id`].
pub fn decode_id(s: &str) -> Option<ShardId> {
    let mut b = [0u8; ShardId::ENCODED_LEN];
    hex::decode_to_slice(s, &mut b).ok()?;
    Some(ShardId::from_bytes(&b))
}

pub(crate) fn encode_crc(crc: u32) -> String {
    format!("{crc:08x}")
}

pub(crate) fn decode_crc(s: &str) -> Option<u32> {
    if s.len() != 8 {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

/// JSON form of [`ShardInfo`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireShardInfo {
    pub id: String,
    pub len: u64,
    pub crc32c: u32,
}

impl From<&ShardInfo> for WireShardInfo {
    fn from(i: &ShardInfo) -> Self {
        WireShardInfo {
            id: encode_id(&i.id),
            len: i.len,
            crc32c: i.crc32c,
        }
    }
}

impl WireShardInfo {
    pub fn into_info(self) -> Option<ShardInfo> {
        Some(ShardInfo {
            id: decode_id(&self.id)?,
            len: self.len,
            crc32c: self.crc32c,
        })
    }
}

/// JSON form of [`StoreStats`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireStats {
    pub shards: u64,
    pub live_bytes: u64,
    pub disk_bytes: u64,
    pub segments: u64,
    pub fsyncs: u64,
    #[serde(default)]
    pub capacity_bytes: u64,
    #[serde(default)]
    pub free_bytes: u64,
}

impl From<StoreStats> for WireStats {
    fn from(s: StoreStats) -> Self {
        WireStats {
            shards: s.shards,
            live_bytes: s.live_bytes,
            disk_bytes: s.disk_bytes,
            segments: s.segments,
            fsyncs: s.fsyncs,
            capacity_bytes: s.capacity_bytes,
            free_bytes: s.free_bytes,
        }
    }
}

impl From<WireStats> for StoreStats {
    fn from(s: WireStats) -> Self {
        StoreStats {
            shards: s.shards,
            live_bytes: s.live_bytes,
            disk_bytes: s.disk_bytes,
            segments: s.segments,
            fsyncs: s.fsyncs,
            capacity_bytes: s.capacity_bytes,
            free_bytes: s.free_bytes,
        }
    }
}

/// JSON reply of `GET /merkle`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireRoots {
    pub partitions: usize,
    pub fanout: usize,
    pub depth: usize,
    /// Hex of each partition's root hash, by partition number.
    pub roots: Vec<String>,
}

/// JSON form of a [`MerkleNode`]: exactly one of `children` and `entries` is present.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireNode {
    pub hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub children: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<Vec<WireShardInfo>>,
}

impl From<&MerkleNode> for WireNode {
    fn from(n: &MerkleNode) -> Self {
        match n {
            MerkleNode::Inner { hash, children } => WireNode {
                hash: hex::encode(hash),
                children: Some(children.iter().map(hex::encode).collect()),
                entries: None,
            },
            MerkleNode::Leaf { hash, entries } => WireNode {
                hash: hex::encode(hash),
                children: None,
                entries: Some(entries.iter().map(WireShardInfo::from).collect()),
            },
        }
    }
}

pub(crate) fn decode_hash(s: &str) -> Option<Hash> {
    let mut h = [0u8; 32];
    hex::decode_to_slice(s, &mut h).ok()?;
    Some(h)
}

impl WireNode {
    /// The node, if well-formed for a node at `path` (leaf paths carry entries).
    pub fn into_node(self, path: NodePath) -> Option<MerkleNode> {
        let hash = decode_hash(&self.hash)?;
        match (self.children, self.entries, path.is_leaf()) {
            (Some(children), None, false) => {
                let children: Vec<Hash> = children
                    .iter()
                    .map(|c| decode_hash(c))
                    .collect::<Option<_>>()?;
                let children: [Hash; FANOUT] = children.try_into().ok()?;
                Some(MerkleNode::Inner {
                    hash,
                    children: Box::new(children),
                })
            }
            (None, Some(entries), true) => Some(MerkleNode::Leaf {
                hash,
                entries: entries
                    .into_iter()
                    .map(WireShardInfo::into_info)
                    .collect::<Option<_>>()?,
            }),
            _ => None,
        }
    }
}

/// JSON form of [`DeepScrubReport`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WireScrubReport {
    pub shards_checked: u64,
    pub bytes_read: u64,
    pub corrupt: Vec<String>,
}

#[derive(Clone)]
struct AppState {
    store: Arc<dyn ShardStore>,
}

/// Builds the datanode's HTTP router over `store`; every request must come from a member
/// as `auth` defines it (with plain HTTP, an empty secret lets no request in).
pub fn router(store: Arc<dyn ShardStore>, auth: ClusterTransport) -> Router {
    Router::new()
        .route(
            "/shards/{id}",
            get(get_shard).put(put_shard).delete(delete_shard),
        )
        .route("/shards", get(list_shards))
        .route("/stats", get(stats))
        .route("/merkle", get(merkle_roots))
        .route("/merkle/{partition}", get(merkle_root_node))
        .route("/merkle/{partition}/{path}", get(merkle_node))
        .route("/scrub/deep", post(deep_scrub))
        .layer(DefaultBodyLimit::max(MAX_SHARD_BODY))
        .layer(middleware::from_fn_with_state(auth, authorize))
        .with_state(AppState { store })
}

/// Serves `router` on `listener` until `shutdown` completes, then drains in-flight
/// requests: over TLS when `tls` is given ([`ClusterTransport::datanode_tls`]), with
/// cairn-net's header and idle timeouts and connection cap. No whole-request timeout: a deep
/// scrub answers only when it is done.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<dyn cairn_net::TlsSource>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_with_limits(listener, router, tls, default_limits(), shutdown).await
}

/// The datanode listener's default limits: cairn-net's, without a request timeout.
pub fn default_limits() -> cairn_net::Limits {
    cairn_net::Limits {
        request_timeout: None,
        ..cairn_net::Limits::default()
    }
}

/// [`serve`] with the given limits (`cairn server` derives them from its flags).
pub async fn serve_with_limits(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<dyn cairn_net::TlsSource>>,
    limits: cairn_net::Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    cairn_net::serve(listener, "datanode", router, limits, tls, shutdown).await
}

/// Lets a request in when it comes from a cluster member ([`ClusterTransport::authenticated`]).
async fn authorize(State(auth): State<ClusterTransport>, req: Request, next: Next) -> Response {
    if auth.authenticated(req.extensions(), req.headers()) {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            "not a cluster member (no cluster certificate or secret)",
        )
            .into_response()
    }
}

fn error_response(e: DatanodeError) -> Response {
    match e {
        DatanodeError::NotFound(id) => {
            (StatusCode::NOT_FOUND, format!("shard {id} not found")).into_response()
        }
        DatanodeError::Corrupt { reason, .. } => (StatusCode::CONFLICT, reason).into_response(),
        DatanodeError::TooLarge(n) => {
            (StatusCode::PAYLOAD_TOO_LARGE, n.to_string()).into_response()
        }
        e @ (DatanodeError::Io(_) | DatanodeError::Closed) => {
            (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response()
        }
    }
}

fn bad_request(msg: &str) -> Response {
    (StatusCode::BAD_REQUEST, msg.to_string()).into_response()
}

fn json_response<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn bad_id() -> Response {
    bad_request("shard id must be 48 hex characters")
}

async fn put_shard(
    State(st): State<AppState>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(id) = decode_id(&raw) else {
        return bad_id();
    };
    // The one check of a shard that crossed the wire; the store takes the checked CRC.
    let actual = cairn_types::crc32c(&body);
    if let Some(v) = headers.get(CRC_HEADER) {
        let Some(expected) = v.to_str().ok().and_then(decode_crc) else {
            return bad_request("malformed x-cairn-crc32c header");
        };
        if actual != expected {
            return error_response(DatanodeError::Corrupt {
                id,
                reason: format!(
                    "transfer checksum mismatch: header {expected:08x}, body {actual:08x}"
                ),
            });
        }
    }
    match st.store.put_with_crc(id, body, actual).await {
        Ok(info) => json_response(&WireShardInfo::from(&info)),
        Err(e) => error_response(e),
    }
}

async fn get_shard(State(st): State<AppState>, Path(raw): Path<String>) -> Response {
    let Some(id) = decode_id(&raw) else {
        return bad_id();
    };
    match st.store.get_with_crc(id).await {
        Ok((data, crc)) => {
            let crc = encode_crc(crc);
            (
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/octet-stream"),
                    ),
                    (
                        header::HeaderName::from_static(CRC_HEADER),
                        HeaderValue::from_str(&crc).expect("hex is a valid header value"),
                    ),
                ],
                data,
            )
                .into_response()
        }
        Err(e) => error_response(e),
    }
}

async fn delete_shard(State(st): State<AppState>, Path(raw): Path<String>) -> Response {
    let Some(id) = decode_id(&raw) else {
        return bad_id();
    };
    match st.store.delete(id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error_response(e),
    }
}

#[derive(Deserialize)]
struct ListParams {
    after: Option<String>,
    limit: Option<usize>,
}

async fn list_shards(
    State(st): State<AppState>,
    query: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(params)) = query else {
        return bad_request("malformed query");
    };
    let after = match params.after.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => match decode_id(raw) {
            Some(id) => Some(id),
            None => return bad_id(),
        },
    };
    let limit = params.limit.unwrap_or(MAX_LIST_LIMIT).min(MAX_LIST_LIMIT);
    match st.store.list(after, limit).await {
        Ok(infos) => {
            let wire: Vec<WireShardInfo> = infos.iter().map(WireShardInfo::from).collect();
            json_response(&wire)
        }
        Err(e) => error_response(e),
    }
}

async fn stats(State(st): State<AppState>) -> Response {
    match st.store.stats().await {
        Ok(s) => json_response(&WireStats::from(s)),
        Err(e) => error_response(e),
    }
}

async fn merkle_roots(State(st): State<AppState>) -> Response {
    match st.store.merkle_roots().await {
        Ok(roots) => json_response(&WireRoots {
            partitions: PARTITIONS,
            fanout: FANOUT,
            depth: DEPTH,
            roots: roots.iter().map(hex::encode).collect(),
        }),
        Err(e) => error_response(e),
    }
}

/// A partition number: 1 to 3 decimal digits, at most 255.
fn parse_partition(s: &str) -> Option<u8> {
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

async fn node_reply(st: &AppState, partition: &str, path: &str) -> Response {
    let Some(partition) = parse_partition(partition) else {
        return bad_request("partition must be a decimal number from 0 to 255");
    };
    let Some(path) = NodePath::parse(path) else {
        return bad_request("node path must be at most 3 lowercase hex digits");
    };
    match st.store.merkle_node(partition, path).await {
        Ok(node) => json_response(&WireNode::from(&node)),
        Err(e) => error_response(e),
    }
}

async fn merkle_root_node(
    State(st): State<AppState>,
    raw: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Response {
    match raw {
        Ok(Path(partition)) => node_reply(&st, &partition, "").await,
        Err(_) => bad_request("malformed path"),
    }
}

async fn merkle_node(
    State(st): State<AppState>,
    raw: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
) -> Response {
    match raw {
        // An empty path is spelled `/merkle/{p}`; here at least one nibble is required.
        Ok(Path((_, path))) if path.is_empty() => bad_request("empty node path"),
        Ok(Path((partition, path))) => node_reply(&st, &partition, &path).await,
        Err(_) => bad_request("malformed path"),
    }
}

#[derive(Deserialize)]
struct ScrubParams {
    rate: u64,
}

async fn deep_scrub(
    State(st): State<AppState>,
    query: Result<Query<ScrubParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(params)) = query else {
        return bad_request("query must be rate=<bytes per second>");
    };
    match st.store.deep_scrub(params.rate).await {
        Ok(r) => json_response(&WireScrubReport::from(&r)),
        Err(e) => error_response(e),
    }
}

impl From<&DeepScrubReport> for WireScrubReport {
    fn from(r: &DeepScrubReport) -> Self {
        WireScrubReport {
            shards_checked: r.shards_checked,
            bytes_read: r.bytes_read,
            corrupt: r.corrupt.iter().map(encode_id).collect(),
        }
    }
}
