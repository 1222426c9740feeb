//! The cluster listener's routes: Raft's own messages from peers, and the leader's side of
//! forwarded writes, read indexes and membership changes. Bodies are postcard; every request
//! must carry the cluster secret.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::{ApplyResult, NodeId, RaftNode};
use crate::command::Command;

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
    /// [`crate::MetadataError::Indeterminate`]). Last, so that the encoding of the others
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

/// The routes of the cluster listener.
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
        .layer(DefaultBodyLimit::max(512 << 20))
        .with_state(state)
}

/// Whether the request presents the cluster secret as its bearer token: compared in constant
/// time, and never an empty token (nor anything, if the secret is empty).
fn authorized(st: &ServiceState, headers: &HeaderMap) -> bool {
    bearer_matches(headers, &st.secret)
}

fn bearer_matches(headers: &HeaderMap, secret: &str) -> bool {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .unwrap_or(b"");
    !token.is_empty() && !secret.is_empty() && bool::from(token.ct_eq(secret.as_bytes()))
}

#[allow(clippy::result_large_err)] // the error is the reply itself, built once per request
fn decode<T: DeserializeOwned>(
    st: &ServiceState,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<T, Response> {
    if !authorized(st, headers) {
        return Err((StatusCode::UNAUTHORIZED, "bad cluster secret").into_response());
    }
    postcard::from_bytes(body)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("bad body: {e}")).into_response())
}

fn reply<T: Serialize>(v: &T) -> Response {
    match postcard::to_allocvec(v) {
        Ok(b) => (StatusCode::OK, b).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

type St = State<Arc<ServiceState>>;

async fn append(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    match decode(&st, &headers, &body) {
        Ok(req) => reply(&st.node.raft.append_entries(req).await),
        Err(r) => r,
    }
}

async fn vote(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    match decode(&st, &headers, &body) {
        Ok(req) => reply(&st.node.raft.vote(req).await),
        Err(r) => r,
    }
}

async fn snapshot(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    match decode(&st, &headers, &body) {
        Ok(req) => reply(&st.node.raft.install_snapshot(req).await),
        Err(r) => r,
    }
}

async fn write_batch(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    match decode::<Vec<Command>>(&st, &headers, &body) {
        Ok(cmds) => reply(&st.node.write_batch_as_leader(cmds).await),
        Err(r) => r,
    }
}

async fn read_index(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    match decode::<()>(&st, &headers, &body) {
        Ok(()) => reply(&st.node.read_index_as_leader().await),
        Err(r) => r,
    }
}

async fn join(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    match decode::<JoinRequest>(&st, &headers, &body) {
        Ok(req) => reply(&st.node.add_node_as_leader(req).await),
        Err(r) => r,
    }
}

async fn remove(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    match decode::<RemoveRequest>(&st, &headers, &body) {
        Ok(req) => reply(&st.node.remove_node_as_leader(req.id).await),
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::bearer_matches;
    use axum::http::{header, HeaderMap, HeaderValue};

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
}
