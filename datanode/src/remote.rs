//! [`RemoteShardStore`]: a [`ShardStore`] that talks to a datanode's HTTP server
//! ([`crate::server`]) over keep-alive HTTP/1.1 connections.
//!
//! Status codes map back to the same [`DatanodeError`] variants the server started from;
//! transport failures, timeouts, 401 (wrong cluster secret, as `PermissionDenied`) and 503
//! become [`DatanodeError::Io`], so [`DatanodeError::is_retryable`] holds for them. Bytes
//! read with `get` are checked against the `x-cairn-crc32c` header; a mismatch is reported
//! as [`DatanodeError::Corrupt`].

use std::io;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use cairn_types::ShardId;
use http::{header, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::server::{
    decode_crc, encode_crc, encode_id, WireShardInfo, WireStats, CRC_HEADER, MAX_LIST_LIMIT,
    MAX_SHARD_BODY,
};
use crate::{DatanodeError, Result, ShardInfo, ShardStore, StoreStats};

/// Default time one request (including reading the whole reply) may take.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Network client for one remote datanode.
#[derive(Clone)]
pub struct RemoteShardStore {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    auth: HeaderValue,
    timeout: Duration,
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
    /// `base_url` is e.g. `http://127.0.0.1:7000` (a trailing `/` is ignored). Panics if
    /// `cluster_secret` contains characters not allowed in an HTTP header value.
    pub fn new(base_url: &str, cluster_secret: String) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        let auth = HeaderValue::from_str(&format!("Bearer {cluster_secret}"))
            .expect("cluster secret must be a valid header value");
        RemoteShardStore {
            client,
            base: base_url.trim_end_matches('/').to_string(),
            auth,
            timeout: DEFAULT_REQUEST_TIMEOUT,
        }
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
        let uri = format!("{}{}", self.base, path_and_query);
        let mut builder = Request::builder()
            .method(method)
            .uri(&uri)
            .header(header::AUTHORIZATION, self.auth.clone());
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
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(io_err(
                io::ErrorKind::TimedOut,
                format!("{uri}: no complete reply within {:?}", self.timeout),
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
                format!("datanode refused the cluster secret: {}", reply.text()),
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

fn bad_info() -> DatanodeError {
    io_err(
        io::ErrorKind::InvalidData,
        "malformed shard id in datanode reply",
    )
}

#[async_trait]
impl ShardStore for RemoteShardStore {
    async fn put(&self, id: ShardId, data: Bytes) -> Result<ShardInfo> {
        let len = data.len() as u64;
        if data.len() > MAX_SHARD_BODY {
            return Err(DatanodeError::TooLarge(len));
        }
        let crc = crc_fast::crc32_iscsi(&data);
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
        let actual = crc_fast::crc32_iscsi(&reply.body);
        if actual != expected {
            return Err(DatanodeError::Corrupt {
                id,
                reason: format!(
                    "transfer checksum mismatch: header {expected:08x}, body {actual:08x}"
                ),
            });
        }
        Ok(reply.body)
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
}

#[cfg(test)]
mod tests;
