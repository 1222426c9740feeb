//! [`RemoteShardStore`]: a [`ShardStore`] that talks to a datanode's HTTP server
//! ([`crate::server`]) over keep-alive HTTP/1.1 connections: mutual TLS, or plain HTTP with
//! the cluster secret, as its [`ClusterClient`] says.
//!
//! Status codes map back to the same [`DatanodeError`] variants the server started from;
//! transport failures, timeouts, 401 (not a cluster member, as `PermissionDenied`) and 503
//! become [`DatanodeError::Io`], so [`DatanodeError::is_retryable`] holds for them. Bytes
//! read with `get` are checked against the `x-cairn-crc32c` header; a mismatch is reported
//! as [`DatanodeError::Corrupt`]. Merkle nodes are checked too: a node whose hash does not
//! match its children or entries, or whose entries do not belong under its path, is
//! reported as [`DatanodeError::Io`] with `InvalidData`.

use std::io;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use cairn_net::client::ClusterClient;
use cairn_types::ShardId;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};

use crate::merkle::{leaf_hash, node_hash, Hash, MerkleNode, NodePath, PartitionTree, PARTITIONS};
use crate::server::{
    decode_crc, decode_hash, decode_id, encode_crc, encode_id, WireNode, WireRoots,
    WireScrubReport, WireShardInfo, WireStats, CRC_HEADER, MAX_LIST_LIMIT, MAX_SHARD_BODY,
};
use crate::{DatanodeError, DeepScrubReport, Result, ShardInfo, ShardStore, StoreStats};

/// Default time one request (including reading the whole reply) may take.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default time a `deep_scrub` call (which replies only when the scrub is done) may take.
pub const DEFAULT_SCRUB_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Network client for one remote datanode.
#[derive(Clone)]
pub struct RemoteShardStore {
    client: ClusterClient,
    base: String,
    timeout: Duration,
    scrub_timeout: Duration,
}

impl std::fmt::Debug for RemoteShardStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteShardStore")
            .field("base", &self.base)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A reply whose status and body were read in full.
struct Reply {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn io_err(kind: io::ErrorKind, msg: impl Into<String>) -> DatanodeError {
    DatanodeError::Io(io::Error::new(kind, msg.into()))
}

impl RemoteShardStore {
    /// `base_url` is e.g. `https://127.0.0.1:7000` (a trailing `/` is ignored;
    /// [`ClusterClient::url`] makes one with the client's scheme). `client` may be shared by
    /// the stores of many datanodes (one connection pool).
    pub fn new(base_url: &str, client: ClusterClient) -> Self {
        RemoteShardStore {
            client,
            base: base_url.trim_end_matches('/').to_string(),
            timeout: DEFAULT_REQUEST_TIMEOUT,
            scrub_timeout: DEFAULT_SCRUB_TIMEOUT,
        }
    }

    /// Replaces the timeout of `deep_scrub` calls.
    pub fn with_scrub_timeout(mut self, timeout: Duration) -> Self {
        self.scrub_timeout = timeout;
        self
    }

    /// Replaces the per-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        body: Bytes,
        crc: Option<u32>,
    ) -> Result<Reply> {
        self.send_timed(method, path_and_query, body, crc, self.timeout)
            .await
    }

    async fn send_timed(
        &self,
        method: Method,
        path_and_query: &str,
        body: Bytes,
        crc: Option<u32>,
        timeout: Duration,
    ) -> Result<Reply> {
        let uri = format!("{}{}", self.base, path_and_query);
        let mut builder = Request::builder().method(method).uri(&uri);
        if let Some(crc) = crc {
            builder = builder.header(CRC_HEADER, encode_crc(crc));
        }
        let req = builder.body(Full::new(body)).map_err(|e| {
            io_err(
                io::ErrorKind::InvalidInput,
                format!("bad request {uri}: {e}"),
            )
        })?;
        let exchange = async {
            let resp =
                self.client.request(req).await.map_err(|e| {
                    io_err(io::ErrorKind::ConnectionAborted, format!("{uri}: {e:?}"))
                })?;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, MAX_SHARD_BODY + 4096)
                .collect()
                .await
                .map_err(|e| io_err(io::ErrorKind::ConnectionAborted, format!("{uri}: {e}")))?
                .to_bytes();
            Ok(Reply {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(io_err(
                io::ErrorKind::TimedOut,
                format!("{uri}: no complete reply within {timeout:?}"),
            )),
        }
    }

    /// Error for a non-success reply; `id` is the shard the request was about, if any.
    fn status_error(reply: &Reply, id: Option<ShardId>, put_len: Option<u64>) -> DatanodeError {
        match (reply.status, id) {
            (StatusCode::NOT_FOUND, Some(id)) => DatanodeError::NotFound(id),
            (StatusCode::CONFLICT, Some(id)) => DatanodeError::Corrupt {
                id,
                reason: reply.text(),
            },
            (StatusCode::PAYLOAD_TOO_LARGE, _) => {
                DatanodeError::TooLarge(reply.text().trim().parse().ok().or(put_len).unwrap_or(0))
            }
            (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, _) => io_err(
                io::ErrorKind::PermissionDenied,
                format!(
                    "datanode refused this node (cluster certificate or secret): {}",
                    reply.text()
                ),
            ),
            (StatusCode::BAD_REQUEST, _) => io_err(
                io::ErrorKind::InvalidInput,
                format!("datanode rejected the request: {}", reply.text()),
            ),
            (status, _) => io_err(
                io::ErrorKind::Other,
                format!("datanode replied {status}: {}", reply.text()),
            ),
        }
    }

    fn parse_json<T: serde::de::DeserializeOwned>(reply: &Reply) -> Result<T> {
        serde_json::from_slice(&reply.body).map_err(|e| {
            io_err(
                io::ErrorKind::InvalidData,
                format!("malformed datanode reply: {e}"),
            )
        })
    }
}

fn bad_reply(what: &str) -> DatanodeError {
    io_err(
        io::ErrorKind::InvalidData,
        format!("malformed datanode reply: {what}"),
    )
}

/// Whether `node` is self-consistent for `path` of `partition`: its hash is the hash of its
/// children or entries, and a leaf's entries are in id order and all under `path`.
fn node_is_consistent(partition: u8, path: NodePath, node: &MerkleNode) -> bool {
    match node {
        MerkleNode::Inner { hash, children } => node_hash(children) == *hash,
        MerkleNode::Leaf { hash, entries } => {
            let sorted = entries.windows(2).all(|w| w[0].id < w[1].id);
            sorted
                && leaf_hash(entries) == *hash
                && PartitionTree::build(partition, entries.iter().copied())
                    .entries_under(path)
                    .len()
                    == entries.len()
        }
    }
}

fn bad_info() -> DatanodeError {
    io_err(
        io::ErrorKind::InvalidData,
        "malformed shard id in datanode reply",
    )
}

#[async_trait]
impl ShardStore for RemoteShardStore {
    async fn put(&self, id: ShardId, data: Bytes) -> Result<ShardInfo> {
        let crc = cairn_types::crc32c(&data);
        self.put_with_crc(id, data, crc).await
    }

    async fn put_with_crc(&self, id: ShardId, data: Bytes, crc: u32) -> Result<ShardInfo> {
        let len = data.len() as u64;
        if data.len() > MAX_SHARD_BODY {
            return Err(DatanodeError::TooLarge(len));
        }
        let path = format!("/shards/{}", encode_id(&id));
        let reply = self.send(Method::PUT, &path, data, Some(crc)).await?;
        if reply.status != StatusCode::OK {
            return Err(Self::status_error(&reply, Some(id), Some(len)));
        }
        let info = Self::parse_json::<WireShardInfo>(&reply)?
            .into_info()
            .ok_or_else(bad_info)?;
        if info.id != id || info.len != len || info.crc32c != crc {
            return Err(DatanodeError::Corrupt {
                id,
                reason: format!(
                    "datanode stored {} bytes with crc {:08x}, sent {len} bytes with crc {crc:08x}",
                    info.len, info.crc32c
                ),
            });
        }
        Ok(info)
    }

    async fn get(&self, id: ShardId) -> Result<Bytes> {
        Ok(self.get_with_crc(id).await?.0)
    }

    async fn get_with_crc(&self, id: ShardId) -> Result<(Bytes, u32)> {
        let path = format!("/shards/{}", encode_id(&id));
        let reply = self.send(Method::GET, &path, Bytes::new(), None).await?;
        if reply.status != StatusCode::OK {
            return Err(Self::status_error(&reply, Some(id), None));
        }
        let expected = reply
            .headers
            .get(CRC_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(decode_crc)
            .ok_or_else(|| DatanodeError::Corrupt {
                id,
                reason: "reply lacks a valid x-cairn-crc32c header".to_string(),
            })?;
        let actual = cairn_types::crc32c(&reply.body);
        if actual != expected {
            return Err(DatanodeError::Corrupt {
                id,
                reason: format!(
                    "transfer checksum mismatch: header {expected:08x}, body {actual:08x}"
                ),
            });
        }
        Ok((reply.body, actual))
    }

    async fn delete(&self, id: ShardId) -> Result<()> {
        let path = format!("/shards/{}", encode_id(&id));
        let reply = self.send(Method::DELETE, &path, Bytes::new(), None).await?;
        if reply.status.is_success() {
            Ok(())
        } else {
            Err(Self::status_error(&reply, Some(id), None))
        }
    }

    async fn list(&self, start_after: Option<ShardId>, limit: usize) -> Result<Vec<ShardInfo>> {
        let mut out = Vec::new();
        let mut after = start_after;
        while out.len() < limit {
            let page = (limit - out.len()).min(MAX_LIST_LIMIT);
            let path = match &after {
                Some(a) => format!("/shards?after={}&limit={page}", encode_id(a)),
                None => format!("/shards?limit={page}"),
            };
            let reply = self.send(Method::GET, &path, Bytes::new(), None).await?;
            if reply.status != StatusCode::OK {
                return Err(Self::status_error(&reply, None, None));
            }
            let wire: Vec<WireShardInfo> = Self::parse_json(&reply)?;
            let got = wire.len();
            for w in wire {
                out.push(w.into_info().ok_or_else(bad_info)?);
            }
            if got < page {
                break;
            }
            after = out.last().map(|i| i.id);
        }
        out.truncate(limit);
        Ok(out)
    }

    async fn stats(&self) -> Result<StoreStats> {
        let reply = self.send(Method::GET, "/stats", Bytes::new(), None).await?;
        if reply.status != StatusCode::OK {
            return Err(Self::status_error(&reply, None, None));
        }
        Ok(Self::parse_json::<WireStats>(&reply)?.into())
    }

    async fn merkle_roots(&self) -> Result<Vec<Hash>> {
        let reply = self
            .send(Method::GET, "/merkle", Bytes::new(), None)
            .await?;
        if reply.status != StatusCode::OK {
            return Err(Self::status_error(&reply, None, None));
        }
        let wire: WireRoots = Self::parse_json(&reply)?;
        let roots: Vec<Hash> = wire
            .roots
            .iter()
            .map(|r| decode_hash(r))
            .collect::<Option<_>>()
            .ok_or_else(|| bad_reply("root hash is not 64 hex digits"))?;
        let shape = (wire.partitions, wire.fanout, wire.depth);
        if roots.len() != PARTITIONS
            || shape != (PARTITIONS, crate::merkle::FANOUT, crate::merkle::DEPTH)
        {
            return Err(bad_reply(&format!(
                "tree shape {shape:?} with {} roots differs from ours",
                roots.len()
            )));
        }
        Ok(roots)
    }

    async fn merkle_node(&self, partition: u8, path: NodePath) -> Result<MerkleNode> {
        let uri = if path.is_empty() {
            format!("/merkle/{partition}")
        } else {
            format!("/merkle/{partition}/{path}")
        };
        let reply = self.send(Method::GET, &uri, Bytes::new(), None).await?;
        if reply.status != StatusCode::OK {
            return Err(Self::status_error(&reply, None, None));
        }
        let node = Self::parse_json::<WireNode>(&reply)?
            .into_node(path)
            .ok_or_else(|| bad_reply("node of the wrong kind or with malformed fields"))?;
        if !node_is_consistent(partition, path, &node) {
            return Err(bad_reply(&format!(
                "node {partition}/{path} does not match its hash"
            )));
        }
        Ok(node)
    }

    async fn deep_scrub(&self, rate_limit_bytes_per_sec: u64) -> Result<DeepScrubReport> {
        let uri = format!("/scrub/deep?rate={rate_limit_bytes_per_sec}");
        let reply = self
            .send_timed(Method::POST, &uri, Bytes::new(), None, self.scrub_timeout)
            .await?;
        if reply.status != StatusCode::OK {
            return Err(Self::status_error(&reply, None, None));
        }
        let wire: WireScrubReport = Self::parse_json(&reply)?;
        Ok(DeepScrubReport {
            shards_checked: wire.shards_checked,
            bytes_read: wire.bytes_read,
            corrupt: wire
                .corrupt
                .iter()
                .map(|s| decode_id(s))
                .collect::<Option<_>>()
                .ok_or_else(bad_info)?,
        })
    }
}

#[cfg(test)]
mod tests;
