//! Bodies in flight across the cluster, for the orphan cleaner.
//!
//! A gateway holds an `InFlight` guard for every body it is writing until the body's commit
//! is answered (or the body is discarded), so the orphan cleaner of the same process never
//! deletes its shards. An upload through another gateway is invisible to that guard, so each
//! node serves the object ids it has in flight on its cluster listener
//! (`POST /cluster/in-flight`, from a peer as [`service::peer_authenticated`] says, postcard `()` in,
//! `Vec<u128>` out), and the cleaner ([`ClusterInFlight`]) asks every other member of the
//! Raft group that may be a gateway before it deletes anything. A member that does not
//! answer stops that round's orphan deletion.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use cairn_heal::PeerInFlight;
use cairn_metadata::MetadataStore;
use cairn_metadata_raft::RaftNode;
use cairn_metadata_raft::{service, RpcClient};
use cairn_objects::ObjectService;
use cairn_types::ObjectId;
use futures::future::{join_all, BoxFuture};

/// The route other nodes ask.
pub const PATH: &str = "/cluster/in-flight";

/// How long a node has to answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// This node's data path once it exists (until then the route answers 503, which callers
/// take as "unreachable": they delete no orphans).
pub type Slot = Arc<OnceLock<ObjectService>>;

struct RouteState {
    objects: Slot,
    secret: String,
}

/// The `POST /cluster/in-flight` route of the cluster listener.
pub fn router(objects: Slot, secret: String) -> Router {
    Router::new()
        .route(PATH, post(answer))
        .with_state(Arc::new(RouteState { objects, secret }))
}

async fn answer(
    State(st): State<Arc<RouteState>>,
    headers: HeaderMap,
    extensions: Extensions,
) -> Response {
    // The request's body is never read.
    if !service::peer_authenticated(&st.secret, &headers, &extensions) {
        return service::refuse(StatusCode::UNAUTHORIZED, "bad cluster secret");
    }
    let Some(objects) = st.objects.get() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting").into_response();
    };
    let ids: Vec<u128> = objects.in_flight_ids().into_iter().map(|i| i.0).collect();
    match postcard::to_allocvec(&ids) {
        Ok(b) => (StatusCode::OK, b).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Asks the other members of the Raft group for their bodies in flight.
pub struct ClusterInFlight {
    node: Arc<RaftNode>,
    meta: Arc<dyn MetadataStore>,
    rpc: RpcClient,
}

impl ClusterInFlight {
    pub fn new(
        node: Arc<RaftNode>,
        meta: Arc<dyn MetadataStore>,
        transport: &cairn_net::client::ClusterTransport,
    ) -> Self {
        ClusterInFlight {
            node,
            meta,
            rpc: RpcClient::new(transport),
        }
    }
}

/// Which members to ask: every member but `me`, unless its node record says it has no
/// gateway role (a member without a record yet is asked).
fn to_ask(
    me: u64,
    members: &[(u64, String)],
    records: &[crate::sys_records::NodeRecord],
) -> Vec<(u64, String)> {
    members
        .iter()
        .filter(|(id, _)| *id != me)
        .filter(|(id, _)| {
            records
                .iter()
                .find(|r| r.id == *id)
                .is_none_or(|r| r.roles.split(',').any(|role| role == "gateway"))
        })
        .cloned()
        .collect()
}

impl PeerInFlight for ClusterInFlight {
    fn in_flight(&self) -> BoxFuture<'_, Result<HashSet<ObjectId>, String>> {
        Box::pin(async move {
            let members: Vec<(u64, String)> = self
                .node
                .status()
                .members
                .into_iter()
                .map(|m| (m.id, m.addr))
                .collect();
            let records = crate::sys_records::nodes(self.meta.as_ref())
                .await
                .map_err(|e| format!("cannot read the node records: {e}"))?;
            let asks = to_ask(self.node.id, &members, &records);
            let answers = join_all(
                asks.iter()
                    .map(|(_, addr)| self.rpc.call::<(), Vec<u128>>(addr, PATH, &(), TIMEOUT)),
            )
            .await;
            let mut ids = HashSet::new();
            let mut down = Vec::new();
            for ((id, _), answer) in asks.iter().zip(answers) {
                match answer {
                    Ok(v) => ids.extend(v.into_iter().map(ObjectId)),
                    Err(e) => down.push(format!("node {id} unreachable ({e})")),
                }
            }
            if down.is_empty() {
                Ok(ids)
            } else {
                Err(down.join("; "))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys_records::NodeRecord;

    fn record(id: u64, roles: &str) -> NodeRecord {
        NodeRecord {
            id,
            roles: roles.into(),
            cluster_addr: format!("n{id}:9002"),
            admin_addr: String::new(),
            s3_addr: None,
            zone: String::new(),
            started_ms: 0,
        }
    }

    #[test]
    fn every_other_member_that_may_be_a_gateway_is_asked() {
        let members: Vec<(u64, String)> = (1..=4).map(|i| (i, format!("n{i}:9002"))).collect();
        let records = [
            record(1, "meta,data,gateway"),
            record(2, "meta,data"),
            record(3, "gateway"),
        ];
        let asked: Vec<u64> = to_ask(1, &members, &records)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        // Not itself, not a node without the gateway role; one without a record is asked.
        assert_eq!(asked, vec![3, 4]);
    }
}
