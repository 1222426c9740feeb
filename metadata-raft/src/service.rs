//! The cluster listener's routes: Raft's own messages from peers, and the leader's side of
//! forwarded writes, read indexes and membership changes. Bodies are postcard.
//!
//! Every request must come from a peer ([`peer_authenticated`]: the cluster secret as its
//! bearer token), checked in a middleware on the headers alone: a request that is not
//! gets 401 and its connection closed without a byte of its body read. A peer's body is
//! then read under its route's limit ([`super::limits`]); a bigger one gets 413, at once
//! when its `Content-Length` says so.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, Extensions, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::limits;
use super::{ApplyResult, NodeId, RaftNode};
use cairn_metadata::command::Command;

/// A forwarded write's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum WriteReply {
    Applied(ApplyResult),
    /// This node is not the leader (it may name the one it knows); the command was not
    /// proposed.
    NotLeader,
    /// The command was not proposed and never takes effect.
    Unavailable(String),
    /// The command may have been proposed and may still commit (see
    /// [`cairn_metadata::MetadataError::Indeterminate`]). Last, so that the encoding of the others
    /// is unchanged.
    Indeterminate(String),
}

/// A read index request's answer.
#[derive(Debug, Serialize, Deserialize)]
pub enum ReadIndexReply {
    /// Reads are linearizable once the reader has applied up to this index.
    Index(Option<u64>),
    NotLeader,
    Unavailable(String),
}

/// Adds (or updates) a node of the Raft group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinRequest {
    pub id: NodeId,
    pub addr: String,
    /// A voter (metadata role) or a learner (a replica that does not vote).
    pub voter: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoveRequest {
    pub id: NodeId,
}

/// A membership change's answer.
#[derive(Debug, Serialize, Deserialize)]
pub enum ChangeReply {
    Done,
    NotLeader,
    Failed(String),
}

struct ServiceState {
    node: Arc<RaftNode>,
    secret: String,
}

/// The routes of the cluster listener; `secret` is the bearer token accepted (empty, so
/// none, with TLS between nodes: peers then prove themselves with their certificate).
pub fn router(node: Arc<RaftNode>, secret: String) -> Router {
    let state = Arc::new(ServiceState { node, secret });
    Router::new()
        .route("/raft/append", post(append))
        .route("/raft/vote", post(vote))
        .route("/raft/snapshot", post(snapshot))
        .route("/raft/write-batch", post(write_batch))
        .route("/raft/read-index", post(read_index))
        .route("/raft/join", post(join))
        .route("/raft/remove", post(remove))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_peer))
        .with_state(state)
}

/// Whether a request comes from a member of the cluster, the one check every cluster route
/// goes through: its connection presented a client certificate, which the listener's TLS
/// handshake verified against the cluster CA ([`cairn_net::client::verified_peer`]), or it
/// presents `secret` as its bearer token (compared in constant time; never an empty token,
/// nor anything if the secret is empty: with TLS between nodes, the cluster listener is given
/// an empty one, [`cairn_net::client::ClusterTransport::bearer_secret`]).
pub fn peer_authenticated(secret: &str, headers: &HeaderMap, extensions: &Extensions) -> bool {
    cairn_net::client::verified_peer(extensions)
        || cairn_net::client::bearer_matches(headers, secret)
}

/// A refusal sent without reading the request's body: `Connection: close`, so that the
/// server does not drain the body to keep the connection. (The admin listener refuses the
/// same way.)
pub fn refuse(status: StatusCode, message: impl IntoResponse) -> Response {
    let mut resp = (status, message).into_response();
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// Lets only peers through; everyone else gets 401 before their body is read.
async fn require_peer(State(st): State<Arc<ServiceState>>, req: Request, next: Next) -> Response {
    if peer_authenticated(&st.secret, req.headers(), req.extensions()) {
        next.run(req).await
    } else {
        refuse(StatusCode::UNAUTHORIZED, "bad cluster secret")
    }
}

/// The body, read whole if it is at most `limit` bytes (413 otherwise: at once when its
/// declared length says so; 400 if it breaks off). Also used by the admin listener.
pub async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, Response> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large",
        ));
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let e = e.into_inner();
        if e.is::<http_body_util::LengthLimitError>() {
            refuse(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
        } else {
            refuse(
                StatusCode::BAD_REQUEST,
                "the request body could not be read",
            )
        }
    })
}

/// The postcard request of a route whose bodies are at most `limit` bytes.
async fn decode<T: DeserializeOwned>(req: Request, limit: usize) -> Result<T, Response> {
    let (parts, body) = req.into_parts();
    let body = read_body(&parts.headers, body, limit).await?;
    postcard::from_bytes(&body)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("bad body: {e}")).into_response())
}

fn reply<T: Serialize>(v: &T) -> Response {
    match postcard::to_allocvec(v) {
        Ok(b) => (StatusCode::OK, b).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

type St = State<Arc<ServiceState>>;

async fn append(State(st): St, req: Request) -> Response {
    match decode(req, limits::APPEND_LIMIT).await {
        Ok(req) => reply(&st.node.raft.append_entries(req).await),
        Err(r) => r,
    }
}

async fn vote(State(st): St, req: Request) -> Response {
    match decode(req, limits::SMALL_LIMIT).await {
        Ok(req) => reply(&st.node.raft.vote(req).await),
        Err(r) => r,
    }
}

/// One chunk of a snapshot (openraft sends snapshots in chunks of
/// [`limits::SNAPSHOT_CHUNK_BYTES`] and puts them together here).
async fn snapshot(State(st): St, req: Request) -> Response {
    match decode(req, limits::SNAPSHOT_LIMIT).await {
        Ok(req) => reply(&st.node.raft.install_snapshot(req).await),
        Err(r) => r,
    }
}

async fn write_batch(State(st): St, req: Request) -> Response {
    match decode::<Vec<Command>>(req, limits::WRITE_BATCH_LIMIT).await {
        Ok(cmds) => reply(&st.node.write_batch_as_leader(cmds).await),
        Err(r) => r,
    }
}

async fn read_index(State(st): St, req: Request) -> Response {
    match decode::<()>(req, limits::SMALL_LIMIT).await {
        Ok(()) => reply(&st.node.read_index_as_leader().await),
        Err(r) => r,
    }
}

async fn join(State(st): St, req: Request) -> Response {
    match decode::<JoinRequest>(req, limits::SMALL_LIMIT).await {
        Ok(req) => reply(&st.node.add_node_as_leader(req).await),
        Err(r) => r,
    }
}

async fn remove(State(st): St, req: Request) -> Response {
    match decode::<RemoveRequest>(req, limits::SMALL_LIMIT).await {
        Ok(req) => reply(&st.node.remove_node_as_leader(req.id).await),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::{peer_authenticated, read_body};
    use axum::body::{Body, Bytes};
    use axum::http::{header, Extensions, HeaderMap, HeaderValue, StatusCode};

    /// The bearer check of the Raft listener, for a request without a client certificate.
    fn bearer_matches(headers: &HeaderMap, secret: &str) -> bool {
        peer_authenticated(secret, headers, &Extensions::new())
    }

    fn with(auth: Option<&'static str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(header::AUTHORIZATION, HeaderValue::from_static(a));
        }
        h
    }

    #[test]
    fn only_the_secret_as_a_non_empty_bearer_token_is_let_in() {
        let secret = "raft-unit-test-secret-0123456789abcdef";
        assert!(bearer_matches(
            &with(Some("Bearer raft-unit-test-secret-0123456789abcdef")),
            secret
        ));
        for bad in [
            None,
            Some(""),
            Some("Bearer"),
            Some("Bearer "),
            Some("Bearer raft-unit-test-secret"),
            Some("raft-unit-test-secret-0123456789abcdef"),
            Some("Basic raft-unit-test-secret-0123456789abcdef"),
        ] {
            assert!(!bearer_matches(&with(bad), secret), "{bad:?}");
        }
        // A misconfigured empty secret matches nothing, an empty token least of all.
        for auth in [None, Some("Bearer "), Some("Bearer x")] {
            assert!(!bearer_matches(&with(auth), ""), "{auth:?}");
        }
    }

    fn declaring(len: u64) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        h
    }

    /// A body that fails the test if anything reads it.
    fn untouchable() -> Body {
        Body::from_stream(futures::stream::poll_fn(
            |_| -> std::task::Poll<Option<Result<Bytes, std::io::Error>>> {
                panic!("the body was read")
            },
        ))
    }

    #[tokio::test]
    async fn bodies_are_read_only_within_their_limit() {
        let ok = read_body(&declaring(5), Body::from("hello"), 5).await;
        assert_eq!(ok.unwrap(), Bytes::from_static(b"hello"));
        // Declared too big: refused without reading, and the connection is to be closed.
        let r = read_body(&declaring(1 << 30), untouchable(), 1024)
            .await
            .unwrap_err();
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(r.headers()[header::CONNECTION], "close");
        // Undeclared (chunked) and too big: refused once past the limit.
        let r = read_body(&HeaderMap::new(), Body::from(vec![0u8; 2048]), 1024)
            .await
            .unwrap_err();
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        // A body that breaks off is a bad request, not a big one.
        let broken = Body::from_stream(futures::stream::iter([
            Ok(Bytes::from_static(b"ab")),
            Err(std::io::Error::other("reset")),
        ]));
        let r = read_body(&HeaderMap::new(), broken, 1024)
            .await
            .unwrap_err();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
}
