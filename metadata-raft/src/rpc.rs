//! The cluster's internal RPC client: Raft's messages to peers ([`Network`], [`Peer`]) and a
//! node's calls to the leader (forwarded writes, read indexes, joins). Every call is an HTTP
//! POST of a postcard body to another node's cluster listener ([`super::service`]), over
//! mutual TLS or, with `--insecure-cluster-transport`, plain HTTP with the cluster secret
//! ([`cairn_net::client`]).

use std::time::Duration;

use bytes::Bytes;
use cairn_net::client::{ClientOptions, ClusterClient, ClusterTransport};
use http::{header, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{BasicNode, NodeId, TypeConfig};

/// Why a call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// The connection could not be made: the request was certainly not handled.
    #[error("cannot reach {0}: {1}")]
    Unreachable(String, String),
    /// The request may or may not have been handled (timeout, broken connection, bad reply).
    #[error("call to {0} failed: {1}")]
    Failed(String, String),
    /// The request was never sent (it could not be encoded), or the peer refused it before
    /// handling it (a 4xx answer: bad secret, bad body, unknown route): certainly not handled.
    #[error("call to {0} refused: {1}")]
    Refused(String, String),
}

/// An HTTP client for the cluster listeners of other nodes.
#[derive(Clone)]
pub struct RpcClient {
    client: ClusterClient,
}

impl RpcClient {
    pub fn new(transport: &ClusterTransport) -> Self {
        RpcClient {
            client: transport.client(ClientOptions {
                connect_timeout: Duration::from_secs(2),
                pool_idle_timeout: Duration::from_secs(30),
            }),
        }
    }

    /// POSTs `req` to `path` on the cluster listener at `addr` and decodes the reply, within
    /// `timeout` plus the time its body may take to cross a slow link
    /// ([`transfer_allowance`]: a 16 MiB append may not fit in an election timeout).
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, CallError> {
        let failed = |m: String| CallError::Failed(addr.to_string(), m);
        let refused = |m: String| CallError::Refused(addr.to_string(), m);
        let body = postcard::to_allocvec(req).map_err(|e| refused(e.to_string()))?;
        let timeout = timeout + transfer_allowance(body.len());
        let request = Request::post(self.client.url(addr, path))
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| refused(e.to_string()))?;
        let reply = tokio::time::timeout(timeout, async {
            let resp = self.client.request(request).await.map_err(|e| {
                if e.is_connect() {
                    CallError::Unreachable(addr.to_string(), e.to_string())
                } else {
                    failed(e.to_string())
                }
            })?;
            let status = resp.status();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| failed(e.to_string()))?
                .to_bytes();
            Ok::<_, CallError>((status, bytes))
        })
        .await
        .map_err(|_| failed(format!("no answer within {timeout:?}")))??;
        let (status, bytes) = reply;
        if status != StatusCode::OK {
            let m = format!("HTTP {status}: {}", String::from_utf8_lossy(&bytes));
            // The cluster listener answers 4xx only before handling a request.
            return Err(if status.is_client_error() {
                refused(m)
            } else {
                failed(m)
            });
        }
        postcard::from_bytes(&bytes).map_err(|e| failed(format!("bad reply: {e}")))
    }
}

/// Raft's view of the network: one [`Peer`] per target node.
#[derive(Clone)]
pub struct Network {
    pub(crate) rpc: RpcClient,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Peer {
        Peer {
            target,
            addr: node.addr.clone(),
            rpc: self.rpc.clone(),
        }
    }
}

/// Raft messages to one peer.
pub struct Peer {
    target: NodeId,
    addr: String,
    rpc: RpcClient,
}

impl Peer {
    async fn send<Req, Resp, E>(
        &self,
        path: &str,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let reply: Result<Resp, RaftError<NodeId, E>> = self
            .rpc
            .call(&self.addr, path, req, option.hard_ttl())
            .await
            .map_err(|e| match e {
                CallError::Unreachable(..) => RPCError::Unreachable(Unreachable::new(&e)),
                CallError::Failed(..) | CallError::Refused(..) => {
                    RPCError::Network(NetworkError::new(&e))
                }
            })?;
        reply.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.send("/raft/append", &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.send("/raft/snapshot", &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.send("/raft/vote", &rpc, &option).await
    }
}

/// Extra time a message of `bytes` gets beyond its timeout: at 8 MiB/s (a slow link, or a
/// loaded machine encoding and decoding it), nothing for messages under 64 KiB. Raft's own
/// timeouts (openraft's TTLs come from the election timeout) are meant for small messages;
/// without this a big append retried forever on a machine that moves it more slowly.
pub(crate) fn transfer_allowance(bytes: usize) -> Duration {
    if bytes < 64 << 10 {
        return Duration::ZERO;
    }
    Duration::from_secs_f64(bytes as f64 / f64::from(8u32 << 20))
}
