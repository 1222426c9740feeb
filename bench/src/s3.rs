//! The S3 client: one HTTP/1.1 keep-alive connection per worker ([`Conn`], hyper's
//! low-level client, plain or rustls), SigV4 signing with `aws-sigv4`, and the few calls a
//! benchmark makes (PUT, GET with an incremental CRC32C check, DELETE, ListObjectsV2 pages,
//! bucket create/delete). Errors are classified into short kinds for the report.

use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{anyhow, bail, Context};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::args::Payload;
use crate::payload::{Buffer, Crc32c};
use crate::tls;
pub use crate::xml::{uri_encode, xml_escape, xml_value, xml_values};

/// Where requests go and how they are signed; shared by all workers.
pub struct Target {
    /// `host:port` to connect to and to send as Host.
    pub authority: String,
    /// `http` or `https`.
    pub scheme: &'static str,
    tls: Option<(
        Arc<rustls::ClientConfig>,
        rustls::pki_types::ServerName<'static>,
    )>,
    identity: Option<Identity>,
    region: String,
    /// Certificates are not verified (https).
    pub insecure: bool,
    pub payload: Payload,
}

/// The failure of one operation, as a short kind for the report ("http 503 SlowDown",
/// "crc mismatch", "connect", ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpError(pub String);

impl std::fmt::Display for OpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a successful operation moved.
#[derive(Debug, Clone, Copy, Default)]
pub struct Done {
    /// Object bytes sent (PUT) or received (GET).
    pub bytes: u64,
    /// Keys listed (list).
    pub items: u64,
}

/// One page of a listing.
#[derive(Debug, Default)]
pub struct Page {
    pub keys: Vec<String>,
    pub next: Option<String>,
    pub body_bytes: u64,
}

impl Target {
    /// A target for `endpoint` (`http://host:port` or `https://host:port`, no path).
    pub fn new(
        endpoint: &str,
        insecure: bool,
        credentials: Option<(String, String)>,
        region: &str,
        payload: Payload,
    ) -> anyhow::Result<Self> {
        let uri: http::Uri = endpoint
            .parse()
            .with_context(|| format!("endpoint `{endpoint}`"))?;
        let scheme = match uri.scheme_str() {
            Some("http") => "http",
            Some("https") => "https",
            _ => bail!("endpoint `{endpoint}`: expected http://host:port or https://host:port"),
        };
        if !matches!(uri.path(), "" | "/") {
            bail!("endpoint `{endpoint}`: a path is not supported (path-style URLs only)");
        }
        let host = uri
            .host()
            .ok_or_else(|| anyhow!("endpoint `{endpoint}` has no host"))?;
        let port = uri
            .port_u16()
            .unwrap_or(if scheme == "https" { 443 } else { 80 });
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let authority = if bare.contains(':') {
            format!("[{bare}]:{port}")
        } else {
            format!("{bare}:{port}")
        };
        let tls = if scheme == "https" {
            let name = rustls::pki_types::ServerName::try_from(bare.to_string())
                .with_context(|| format!("`{bare}` as a TLS server name"))?;
            Some((tls::client_config(insecure)?, name))
        } else {
            None
        };
        let identity = credentials
            .map(|(access, secret)| Credentials::new(access, secret, None, None, "cairn-bench"))
            .map(Identity::from);
        Ok(Target {
            authority,
            scheme,
            tls,
            identity,
            region: region.to_string(),
            insecure,
            payload,
        })
    }

    /// `scheme://authority`.
    pub fn endpoint(&self) -> String {
        format!("{}://{}", self.scheme, self.authority)
    }

    /// A request for `path_and_query` (already percent-encoded) with `body`, signed when there
    /// are credentials. `sha256` is the body's hex SHA-256 when bodies are signed.
    pub fn request(
        &self,
        method: Method,
        path_and_query: &str,
        body: Bytes,
        sha256: Option<&str>,
    ) -> Result<Request<Full<Bytes>>, OpError> {
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(path_and_query)
            .header(http::header::HOST, &self.authority);
        if !body.is_empty() || method == Method::PUT || method == Method::POST {
            builder = builder.header(http::header::CONTENT_LENGTH, body.len());
        }
        if let Some(identity) = &self.identity {
            let url = format!("{}://{}{}", self.scheme, self.authority, path_and_query);
            let hash;
            let signable_body = match (self.payload, sha256) {
                (Payload::Signed, Some(h)) => SignableBody::Precomputed(h.to_string()),
                (Payload::Signed, None) if body.is_empty() => SignableBody::Bytes(&[]),
                (Payload::Signed, None) => {
                    use sha2::Digest;
                    hash = hex::encode(sha2::Sha256::digest(&body));
                    SignableBody::Precomputed(hash)
                }
                (Payload::Unsigned, _) => SignableBody::UnsignedPayload,
            };
            let mut settings = SigningSettings::default();
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
            settings.percent_encoding_mode = PercentEncodingMode::Single;
            settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
            let params = v4::SigningParams::builder()
                .identity(identity)
                .region(&self.region)
                .name("s3")
                .time(SystemTime::now())
                .settings(settings)
                .build()
                .map_err(|e| OpError(format!("signing: {e}")))?
                .into();
            let headers = [("host", self.authority.as_str())];
            let signable =
                SignableRequest::new(method.as_str(), &url, headers.into_iter(), signable_body)
                    .map_err(|e| OpError(format!("signing: {e}")))?;
            let (instructions, _) = sign(signable, &params)
                .map_err(|e| OpError(format!("signing: {e}")))?
                .into_parts();
            for (name, value) in instructions.headers() {
                builder = builder.header(name, value);
            }
        }
        builder
            .body(Full::new(body))
            .map_err(|e| OpError(format!("request: {e}")))
    }
}

/// A worker's connection: opened on first use and again after any failure.
pub struct Conn {
    target: Arc<Target>,
    sender: Option<SendRequest<Full<Bytes>>>,
}

/// The answer to a request whose body is still to be read.
type Response = http::Response<hyper::body::Incoming>;

impl Conn {
    pub fn new(target: Arc<Target>) -> Self {
        Conn {
            target,
            sender: None,
        }
    }

    /// Drops the connection (after a timeout: its state is unknown).
    pub fn reset(&mut self) {
        self.sender = None;
    }

    pub fn target(&self) -> &Arc<Target> {
        &self.target
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, OpError> {
        let tcp = TcpStream::connect(&self.target.authority)
            .await
            .map_err(|e| OpError(format!("connect: {}", e.kind())))?;
        tcp.set_nodelay(true).ok();
        match &self.target.tls {
            None => handshake(tcp).await,
            Some((config, name)) => {
                let tls = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| OpError(format!("tls: {e}")))?;
                handshake(tls).await
            }
        }
    }

    /// Sends one request on this connection (opening it if needed). A request that never
    /// left (the server had closed the idle connection) is sent once more on a new one.
    async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<Response, OpError> {
        let mut req = req;
        for attempt in 0..2 {
            if attempt > 0 || self.sender.as_ref().is_none_or(|s| s.is_closed()) {
                self.sender = Some(self.connect().await?);
            }
            let sender = self.sender.as_mut().expect("connected above");
            if sender.ready().await.is_err() {
                self.sender = None;
                continue;
            }
            match sender.try_send_request(req).await {
                Ok(r) => return Ok(r),
                Err(mut e) => {
                    self.sender = None;
                    match e.take_message() {
                        Some(unsent) => req = unsent,
                        None => return Err(OpError(classify_hyper(e.error()))),
                    }
                }
            }
        }
        Err(OpError("connection closed".into()))
    }

    /// Reads a (small) body whole; a failure drops the connection.
    async fn read_all(&mut self, resp: Response) -> Result<Bytes, OpError> {
        match resp.into_body().collect().await {
            Ok(b) => Ok(b.to_bytes()),
            Err(e) => {
                self.sender = None;
                Err(OpError(format!("read body: {}", classify_hyper(&e))))
            }
        }
    }

    /// Turns a non-success answer into an error kind (`http 404 NoSuchKey`).
    async fn fail(&mut self, resp: Response) -> OpError {
        let status = resp.status();
        let body = self.read_all(resp).await.unwrap_or_default();
        let code = xml_value(&String::from_utf8_lossy(&body), "Code");
        match code {
            Some(c) => OpError(format!("http {} {c}", status.as_u16())),
            None => OpError(format!("http {}", status.as_u16())),
        }
    }

    /// PUT `buf` at `bucket/key`.
    pub async fn put(&mut self, bucket: &str, key: &str, buf: &Buffer) -> Result<Done, OpError> {
        let path = format!("/{bucket}/{key}");
        let req =
            self.target
                .request(Method::PUT, &path, buf.data.clone(), buf.sha256.as_deref())?;
        let resp = self.send(req).await?;
        if !resp.status().is_success() {
            return Err(self.fail(resp).await);
        }
        self.read_all(resp).await?;
        Ok(Done {
            bytes: buf.data.len() as u64,
            items: 0,
        })
    }

    /// GET `bucket/key`, checking the body's length and CRC32C as it arrives.
    pub async fn get(
        &mut self,
        bucket: &str,
        key: &str,
        expect_len: u64,
        expect_crc: u32,
    ) -> Result<Done, OpError> {
        let path = format!("/{bucket}/{key}");
        let req = self
            .target
            .request(Method::GET, &path, Bytes::new(), None)?;
        let resp = self.send(req).await?;
        if !resp.status().is_success() {
            return Err(self.fail(resp).await);
        }
        let mut body = resp.into_body();
        let mut crc = Crc32c::new();
        let mut len = 0u64;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => {
                    if let Some(d) = f.data_ref() {
                        crc.update(d);
                        len += d.len() as u64;
                    }
                }
                Err(e) => {
                    self.sender = None;
                    return Err(OpError(format!("read body: {}", classify_hyper(&e))));
                }
            }
        }
        if len != expect_len {
            return Err(OpError("length mismatch".into()));
        }
        if crc.finish() != expect_crc {
            return Err(OpError("crc mismatch".into()));
        }
        Ok(Done {
            bytes: len,
            items: 0,
        })
    }

    /// DELETE `bucket/key`.
    pub async fn delete(&mut self, bucket: &str, key: &str) -> Result<Done, OpError> {
        self.simple(Method::DELETE, &format!("/{bucket}/{key}"))
            .await
            .map(|_| Done::default())
    }

    /// One ListObjectsV2 page of `bucket` under `prefix`.
    pub async fn list_page(
        &mut self,
        bucket: &str,
        prefix: &str,
        max_keys: usize,
        token: Option<&str>,
    ) -> Result<Page, OpError> {
        // Parameters in canonical (sorted) order.
        let mut q = String::from("list-type=2");
        if let Some(t) = token {
            q.push_str("&continuation-token=");
            q.push_str(&uri_encode(t));
        }
        q.push_str(&format!(
            "&max-keys={max_keys}&prefix={}",
            uri_encode(prefix)
        ));
        let path = format!("/{bucket}?{q}");
        let req = self
            .target
            .request(Method::GET, &path, Bytes::new(), None)?;
        let resp = self.send(req).await?;
        if !resp.status().is_success() {
            return Err(self.fail(resp).await);
        }
        let body = self.read_all(resp).await?;
        let text = std::str::from_utf8(&body).map_err(|_| OpError("list: not UTF-8".into()))?;
        let keys = xml_values(text, "Key");
        let truncated = xml_value(text, "IsTruncated").as_deref() == Some("true");
        let next = xml_value(text, "NextContinuationToken");
        if truncated && next.is_none() {
            return Err(OpError(
                "list: truncated without a continuation token".into(),
            ));
        }
        Ok(Page {
            keys,
            next: if truncated { next } else { None },
            body_bytes: body.len() as u64,
        })
    }

    /// DeleteObjects (quiet) of up to 1000 `keys`; the number of keys the server could not
    /// delete.
    pub async fn delete_many(&mut self, bucket: &str, keys: &[String]) -> Result<usize, OpError> {
        use base64::Engine as _;
        use md5::Digest as _;
        let mut xml = String::from("<Delete><Quiet>true</Quiet>");
        for k in keys {
            xml.push_str("<Object><Key>");
            xml.push_str(&xml_escape(k));
            xml.push_str("</Key></Object>");
        }
        xml.push_str("</Delete>");
        let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&xml));
        let mut req = self.target.request(
            Method::POST,
            &format!("/{bucket}?delete"),
            Bytes::from(xml),
            None,
        )?;
        req.headers_mut().insert(
            "content-md5",
            md5.parse().map_err(|_| OpError("content-md5".into()))?,
        );
        let resp = self.send(req).await?;
        if !resp.status().is_success() {
            return Err(self.fail(resp).await);
        }
        let body = self.read_all(resp).await?;
        Ok(String::from_utf8_lossy(&body).matches("<Error>").count())
    }

    /// Creates `bucket`; `Ok(true)` if it was made now, `Ok(false)` if it was ours already.
    pub async fn create_bucket(&mut self, bucket: &str) -> Result<bool, OpError> {
        let req = self
            .target
            .request(Method::PUT, &format!("/{bucket}"), Bytes::new(), None)?;
        let resp = self.send(req).await?;
        if resp.status().is_success() {
            self.read_all(resp).await?;
            return Ok(true);
        }
        let err = self.fail(resp).await;
        if err.0.contains("BucketAlreadyOwnedByYou") {
            return Ok(false);
        }
        Err(err)
    }

    /// Deletes `bucket` (which must be empty).
    pub async fn delete_bucket(&mut self, bucket: &str) -> Result<(), OpError> {
        self.simple(Method::DELETE, &format!("/{bucket}")).await
    }

    /// A GET of `path` without signing, its body if the answer is 200 (for `/metrics`).
    pub async fn get_unsigned(&mut self, path: &str) -> Result<Bytes, OpError> {
        let req = Request::builder()
            .method(Method::GET)
            .uri(path)
            .header(http::header::HOST, &self.target.authority)
            .body(Full::new(Bytes::new()))
            .map_err(|e| OpError(e.to_string()))?;
        let resp = self.send(req).await?;
        if resp.status() != StatusCode::OK {
            return Err(self.fail(resp).await);
        }
        self.read_all(resp).await
    }

    async fn simple(&mut self, method: Method, path: &str) -> Result<(), OpError> {
        let req = self.target.request(method, path, Bytes::new(), None)?;
        let resp = self.send(req).await?;
        if !resp.status().is_success() {
            return Err(self.fail(resp).await);
        }
        self.read_all(resp).await?;
        Ok(())
    }
}

/// An HTTP/1.1 connection over `io`, its driver spawned.
async fn handshake<T>(io: T) -> Result<SendRequest<Full<Bytes>>, OpError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|_| OpError("handshake".into()))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

fn classify_hyper(e: &hyper::Error) -> String {
    if e.is_incomplete_message() {
        "connection closed mid-answer".into()
    } else if e.is_timeout() {
        "timeout".into()
    } else if e.is_parse() {
        "bad HTTP answer".into()
    } else if e.is_canceled() {
        "canceled".into()
    } else {
        "io".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let t = Target::new(
            "http://127.0.0.1:9000",
            false,
            None,
            "us-east-1",
            Payload::Unsigned,
        )
        .unwrap();
        assert_eq!(t.authority, "127.0.0.1:9000");
        assert_eq!(t.endpoint(), "http://127.0.0.1:9000");
        let t = Target::new("http://[::1]:80/", false, None, "r", Payload::Unsigned).unwrap();
        assert_eq!(t.authority, "[::1]:80");
        assert!(Target::new("ftp://x:1", false, None, "r", Payload::Unsigned).is_err());
        assert!(Target::new("http://x:1/base", false, None, "r", Payload::Unsigned).is_err());
    }

    #[test]
    fn signed_request_headers() {
        let creds = Some(("AK".to_string(), "SK".to_string()));
        let t = Target::new(
            "http://127.0.0.1:9000",
            false,
            creds,
            "us-east-1",
            Payload::Signed,
        )
        .unwrap();
        let r = t
            .request(Method::PUT, "/b/k", Bytes::from_static(b"x"), Some("ab"))
            .unwrap();
        assert_eq!(r.headers()["x-amz-content-sha256"], "ab");
        assert!(r.headers()["authorization"]
            .to_str()
            .unwrap()
            .starts_with("AWS4-HMAC-SHA256 Credential=AK/"));
    }
}
