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
//!
//! `{id}` is the lowercase hex of [`ShardId::to_bytes`] (48 characters). A `PUT` may carry
//! `x-cairn-crc32c` (8 hex digits) for the body; a mismatch is refused with 409 before
//! anything is stored. Every request must carry `Authorization: Bearer <cluster secret>`
//! (compared in constant time) or gets 401. Errors map as: `NotFound` 404, `Corrupt` 409
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
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use cairn_types::ShardId;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;

use crate::{DatanodeError, ShardInfo, ShardStore, StoreStats};

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
}

impl From<StoreStats> for WireStats {
    fn from(s: StoreStats) -> Self {
        WireStats {
            shards: s.shards,
            live_bytes: s.live_bytes,
            disk_bytes: s.disk_bytes,
            segments: s.segments,
            fsyncs: s.fsyncs,
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
        }
    }
}

#[derive(Clone)]
struct AppState {
    store: Arc<dyn ShardStore>,
}

/// Builds the datanode's HTTP router over `store`; every request must present
/// `Authorization: Bearer <cluster_secret>`.
pub fn router(store: Arc<dyn ShardStore>, cluster_secret: String) -> Router {
    let expected: Arc<[u8]> = format!("Bearer {cluster_secret}").into_bytes().into();
    Router::new()
        .route(
            "/shards/{id}",
            get(get_shard).put(put_shard).delete(delete_shard),
        )
        .route("/shards", get(list_shards))
        .route("/stats", get(stats))
        .layer(DefaultBodyLimit::max(MAX_SHARD_BODY))
        .layer(middleware::from_fn_with_state(expected, authorize))
        .with_state(AppState { store })
}

/// Serves `router` on `listener` (TCP_NODELAY on every accepted connection) until
/// `shutdown` completes, then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn authorize(State(expected): State<Arc<[u8]>>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes())
        .unwrap_or(b"");
    if bool::from(presented.ct_eq(&expected)) {
        next.run(req).await
    } else {
        (StatusCode::UNAUTHORIZED, "missing or wrong cluster secret").into_response()
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
    if let Some(v) = headers.get(CRC_HEADER) {
        let Some(expected) = v.to_str().ok().and_then(decode_crc) else {
            return bad_request("malformed x-cairn-crc32c header");
        };
        let actual = crc_fast::crc32_iscsi(&body);
        if actual != expected {
            return error_response(DatanodeError::Corrupt {
                id,
                reason: format!(
                    "transfer checksum mismatch: header {expected:08x}, body {actual:08x}"
                ),
            });
        }
    }
    match st.store.put(id, body).await {
        Ok(info) => json_response(&WireShardInfo::from(&info)),
        Err(e) => error_response(e),
    }
}

async fn get_shard(State(st): State<AppState>, Path(raw): Path<String>) -> Response {
    let Some(id) = decode_id(&raw) else {
        return bad_id();
    };
    match st.store.get(id).await {
        Ok(data) => {
            let crc = encode_crc(crc_fast::crc32_iscsi(&data));
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
