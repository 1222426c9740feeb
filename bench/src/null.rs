//! The null server: an in-memory S3 look-alike with no authentication and no durability,
//! the ceiling the client reaches on this machine. PUT keeps the body (the frames as they
//! arrived, no copy), GET/HEAD answer it, DELETE forgets it, bucket PUT/DELETE/HEAD succeed,
//! ListObjectsV2 pages through the keys with `max-keys` and continuation tokens, and
//! DeleteObjects forgets keys. Bodies beyond the memory bound drop the oldest objects.
//! `GET /metrics` answers the process's `process_cpu_seconds_total` (so there is no bucket
//! called `metrics`). Each server counts the S3 requests it answered ([`NullServer::requests`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::xml::xml_escape;

/// How the null server behaves.
#[derive(Clone, Debug)]
pub struct NullConfig {
    /// Bytes of bodies kept; beyond it the oldest objects are dropped.
    pub memory_limit: u64,
    /// Test hook: flip the first byte of every GET body, so that a client's check fails.
    pub corrupt_gets: bool,
}

impl Default for NullConfig {
    fn default() -> Self {
        NullConfig {
            memory_limit: 4 << 30,
            corrupt_gets: false,
        }
    }
}

/// A body kept in memory; its bytes count in `used` for as long as it lives.
struct Stored {
    chunks: Arc<[Bytes]>,
    len: u64,
    used: Arc<AtomicU64>,
}

impl Drop for Stored {
    fn drop(&mut self) {
        self.used.fetch_sub(self.len, Ordering::Relaxed);
    }
}

#[derive(Clone)]
struct Object {
    body: Arc<Stored>,
    seq: u64,
}

#[derive(Default)]
struct Store {
    buckets: HashMap<String, BTreeMap<String, Object>>,
    /// (bucket, key, seq) in PUT order, for dropping the oldest.
    order: VecDeque<(String, String, u64)>,
    /// Bytes of the distinct bodies kept.
    used: Arc<AtomicU64>,
    /// Bodies by (length, CRC64-NVME): a PUT of bytes already kept shares them, so that
    /// a benchmark's few pool buffers cost memory (and fresh, zeroed pages) only once.
    unique: HashMap<(u64, u64), Weak<Stored>>,
    seq: u64,
}

impl Store {
    fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Keeps `chunks` (whose CRC64-NVME is `crc64`) as `bucket/key`; returns its sequence
    /// number (the ETag).
    fn put(&mut self, bucket: &str, key: &str, chunks: Vec<Bytes>, crc64: u64, limit: u64) -> u64 {
        let len: u64 = chunks.iter().map(|c| c.len() as u64).sum();
        self.seq += 1;
        let seq = self.seq;
        let body = match self.unique.get(&(len, crc64)).and_then(Weak::upgrade) {
            Some(b) => b,
            None => {
                self.used.fetch_add(len, Ordering::Relaxed);
                let b = Arc::new(Stored {
                    chunks: chunks.into(),
                    len,
                    used: self.used.clone(),
                });
                self.unique.insert((len, crc64), Arc::downgrade(&b));
                b
            }
        };
        let objects = self.buckets.entry(bucket.to_string()).or_default();
        objects.insert(key.to_string(), Object { body, seq });
        self.order
            .push_back((bucket.to_string(), key.to_string(), seq));
        while self.used() > limit {
            let Some((b, k, s)) = self.order.pop_front() else {
                break;
            };
            if let Some(objects) = self.buckets.get_mut(&b) {
                if objects.get(&k).is_some_and(|o| o.seq == s) {
                    objects.remove(&k);
                }
            }
        }
        // Entries of overwritten or deleted objects linger in `order` and `unique`; compact
        // now and then.
        let count = self.count();
        if self.order.len() > 1024 && self.order.len() > 4 * count {
            let buckets = &self.buckets;
            self.order.retain(|(b, k, s)| {
                buckets
                    .get(b)
                    .and_then(|o| o.get(k))
                    .is_some_and(|o| o.seq == *s)
            });
        }
        if self.unique.len() > 1024 && self.unique.len() > 2 * count {
            self.unique.retain(|_, w| w.strong_count() > 0);
        }
        seq
    }

    fn count(&self) -> usize {
        self.buckets.values().map(BTreeMap::len).sum()
    }
}

/// A body made of shared chunks (possibly none).
pub struct Chunks {
    chunks: Arc<[Bytes]>,
    next: usize,
    remaining: u64,
}

impl Chunks {
    fn new(chunks: Arc<[Bytes]>) -> Self {
        let remaining = chunks.iter().map(|c| c.len() as u64).sum();
        Chunks {
            chunks,
            next: 0,
            remaining,
        }
    }

    fn empty() -> Self {
        Chunks::new(Arc::new([]))
    }

    fn text(s: String) -> Self {
        Chunks::new(Arc::new([Bytes::from(s)]))
    }
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        while let Some(c) = this.chunks.get(this.next) {
            this.next += 1;
            if !c.is_empty() {
                this.remaining -= c.len() as u64;
                return Poll::Ready(Some(Ok(Frame::data(c.clone()))));
            }
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// A running null server.
pub struct NullServer {
    pub addr: SocketAddr,
    requests: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl NullServer {
    /// Binds `listen` (e.g. `127.0.0.1:0`) and serves in the background.
    pub async fn start(listen: &str, config: NullConfig) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(serve(listener, config, requests.clone()));
        Ok(NullServer {
            addr,
            requests,
            task,
        })
    }

    /// `http://addr`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// S3 requests answered so far (every request but `GET /metrics`).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for NullServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves S3 look-alike requests on `listener` until the task is dropped, adding one to
/// `requests` for each S3 request (not for `GET /metrics`).
pub async fn serve(listener: TcpListener, config: NullConfig, requests: Arc<AtomicU64>) {
    let state = Arc::new((Mutex::new(Store::default()), config, requests));
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        tcp.set_nodelay(true).ok();
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(req, &state.0, &state.1, &state.2).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        });
    }
}

fn reply(status: StatusCode, body: Chunks) -> Response<Chunks> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r
}

fn error(status: StatusCode, code: &str) -> Response<Chunks> {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{code}</Message></Error>"
    );
    let mut r = reply(status, Chunks::text(xml));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        "application/xml".parse().expect("valid"),
    );
    r
}

async fn handle(
    req: Request<Incoming>,
    store: &Mutex<Store>,
    config: &NullConfig,
    requests: &AtomicU64,
) -> Response<Chunks> {
    let path = percent_decode(req.uri().path());
    let path = path.trim_start_matches('/');
    let (bucket, key) = match path.split_once('/') {
        Some((b, k)) => (b.to_string(), k.to_string()),
        None => (path.to_string(), String::new()),
    };
    let query = req.uri().query().unwrap_or("").to_string();
    let method = req.method().clone();
    if path == "metrics" && method == Method::GET {
        // The process's own CPU time, as a Prometheus server would report it.
        let text = format!(
            "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {}\n",
            crate::cpu::self_cpu()
        );
        return reply(StatusCode::OK, Chunks::text(text));
    }
    requests.fetch_add(1, Ordering::Relaxed);
    if bucket.is_empty() {
        let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListAllMyBucketsResult><Buckets></Buckets></ListAllMyBucketsResult>";
        return reply(StatusCode::OK, Chunks::text(xml.to_string()));
    }
    if key.is_empty() {
        return match method {
            Method::PUT => {
                let _ = req.into_body().collect().await;
                store
                    .lock()
                    .expect("not poisoned")
                    .buckets
                    .entry(bucket)
                    .or_default();
                reply(StatusCode::OK, Chunks::empty())
            }
            Method::DELETE => {
                store.lock().expect("not poisoned").buckets.remove(&bucket);
                reply(StatusCode::NO_CONTENT, Chunks::empty())
            }
            Method::HEAD => reply(StatusCode::OK, Chunks::empty()),
            Method::GET => list(store, &bucket, &query),
            Method::POST if query.split('&').any(|p| p == "delete" || p == "delete=") => {
                delete_many(req, store, &bucket).await
            }
            _ => error(StatusCode::NOT_IMPLEMENTED, "NotImplemented"),
        };
    }
    match method {
        Method::PUT => {
            let mut body = req.into_body();
            let mut chunks = Vec::new();
            let mut crc = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme);
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(f) => {
                        if let Ok(d) = f.into_data() {
                            crc.update(&d);
                            chunks.push(d);
                        }
                    }
                    Err(_) => return error(StatusCode::BAD_REQUEST, "IncompleteBody"),
                }
            }
            let seq = store.lock().expect("not poisoned").put(
                &bucket,
                &key,
                chunks,
                crc.finalize(),
                config.memory_limit,
            );
            let mut r = reply(StatusCode::OK, Chunks::empty());
            r.headers_mut().insert(
                http::header::ETAG,
                format!("\"{seq:032x}\"").parse().expect("valid"),
            );
            r
        }
        Method::GET | Method::HEAD => {
            let found = store
                .lock()
                .expect("not poisoned")
                .buckets
                .get(&bucket)
                .and_then(|o| o.get(&key))
                .cloned();
            let Some(object) = found else {
                return error(StatusCode::NOT_FOUND, "NoSuchKey");
            };
            let etag = format!("\"{:032x}\"", object.seq);
            let mut r = if method == Method::HEAD {
                let mut r = reply(StatusCode::OK, Chunks::empty());
                r.headers_mut()
                    .insert(http::header::CONTENT_LENGTH, object.body.len.into());
                r
            } else if config.corrupt_gets {
                reply(StatusCode::OK, Chunks::new(corrupt(&object.body.chunks)))
            } else {
                reply(StatusCode::OK, Chunks::new(object.body.chunks.clone()))
            };
            r.headers_mut()
                .insert(http::header::ETAG, etag.parse().expect("valid"));
            r
        }
        Method::DELETE => {
            let removed = {
                let mut s = store.lock().expect("not poisoned");
                s.buckets.get_mut(&bucket).and_then(|o| o.remove(&key))
            };
            drop(removed);
            reply(StatusCode::NO_CONTENT, Chunks::empty())
        }
        _ => error(StatusCode::NOT_IMPLEMENTED, "NotImplemented"),
    }
}

/// DeleteObjects: forgets the keys listed and answers a (quiet) result.
async fn delete_many(
    req: Request<Incoming>,
    store: &Mutex<Store>,
    bucket: &str,
) -> Response<Chunks> {
    let Ok(body) = req.into_body().collect().await else {
        return error(StatusCode::BAD_REQUEST, "IncompleteBody");
    };
    let body = body.to_bytes();
    let keys = crate::xml::xml_values(&String::from_utf8_lossy(&body), "Key");
    let mut s = store.lock().expect("not poisoned");
    if let Some(objects) = s.buckets.get_mut(bucket) {
        for key in &keys {
            objects.remove(key);
        }
    }
    drop(s);
    let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DeleteResult></DeleteResult>";
    reply(StatusCode::OK, Chunks::text(xml.to_string()))
}

/// The chunks with the first byte flipped.
fn corrupt(chunks: &[Bytes]) -> Arc<[Bytes]> {
    let mut out: Vec<Bytes> = chunks.to_vec();
    if let Some(i) = out.iter().position(|c| !c.is_empty()) {
        let mut first = out[i].to_vec();
        first[0] ^= 0xFF;
        out[i] = Bytes::from(first);
    }
    out.into()
}

fn list(store: &Mutex<Store>, bucket: &str, query: &str) -> Response<Chunks> {
    let mut prefix = String::new();
    let mut max_keys = 1000usize;
    let mut after: Option<String> = None;
    let mut v2 = false;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v);
        match k {
            "list-type" => v2 = v == "2",
            "prefix" => prefix = v,
            "max-keys" => max_keys = v.parse().unwrap_or(1000).min(1000),
            "continuation-token" => after = Some(v),
            "start-after" if after.is_none() => after = Some(v),
            _ => {}
        }
    }
    if !v2 {
        return error(StatusCode::NOT_IMPLEMENTED, "NotImplemented");
    }
    let s = store.lock().expect("not poisoned");
    let Some(objects) = s.buckets.get(bucket) else {
        return error(StatusCode::NOT_FOUND, "NoSuchBucket");
    };
    let start = match &after {
        Some(a) if a.as_str() >= prefix.as_str() => std::ops::Bound::Excluded(a.clone()),
        _ => std::ops::Bound::Included(prefix.clone()),
    };
    let mut page = Vec::new();
    let mut truncated = false;
    for (k, o) in objects.range((start, std::ops::Bound::Unbounded)) {
        if !k.starts_with(&prefix) {
            break;
        }
        if page.len() == max_keys {
            truncated = true;
            break;
        }
        page.push((k.clone(), o.body.len, o.seq));
    }
    drop(s);
    let mut xml = String::with_capacity(200 + page.len() * 200);
    xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult>");
    xml.push_str(&format!(
        "<Name>{}</Name><Prefix>{}</Prefix><KeyCount>{}</KeyCount><MaxKeys>{max_keys}</MaxKeys><IsTruncated>{truncated}</IsTruncated>",
        xml_escape(bucket),
        xml_escape(&prefix),
        page.len()
    ));
    if let Some(a) = &after {
        xml.push_str(&format!(
            "<ContinuationToken>{}</ContinuationToken>",
            xml_escape(a)
        ));
    }
    for (k, len, seq) in &page {
        xml.push_str(&format!(
            "<Contents><Key>{}</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>&quot;{seq:032x}&quot;</ETag><Size>{len}</Size><StorageClass>STANDARD</StorageClass></Contents>",
            xml_escape(k)
        ));
    }
    if truncated {
        if let Some((last, _, _)) = page.last() {
            xml.push_str(&format!(
                "<NextContinuationToken>{}</NextContinuationToken>",
                xml_escape(last)
            ));
        }
    }
    xml.push_str("</ListBucketResult>");
    let mut r = reply(StatusCode::OK, Chunks::text(xml));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        "application/xml".parse().expect("valid"),
    );
    r
}

/// Decodes %XX escapes (invalid ones are kept as they are).
fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h << 4) | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode() {
        assert_eq!(percent_decode("a%2Fb%20c"), "a/b c");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%41"), "A");
    }

    #[test]
    fn store_drops_oldest() {
        let mut s = Store::default();
        let body = |b: u8| vec![Bytes::from(vec![b; 100])];
        s.put("b", "k1", body(1), 1, 250);
        s.put("b", "k2", body(2), 2, 250);
        s.put("b", "k1", body(3), 3, 250); // overwrite: still 200 bytes
        assert_eq!(s.used(), 200);
        s.put("b", "k3", body(4), 4, 250); // 300 > 250: the oldest live one (k2) goes
        assert_eq!(s.used(), 200);
        let keys: Vec<_> = s.buckets["b"].keys().cloned().collect();
        assert_eq!(keys, vec!["k1", "k3"]);
        s.buckets.get_mut("b").unwrap().remove("k1");
        assert_eq!(s.used(), 100);
    }

    #[test]
    fn store_shares_equal_bodies() {
        let mut s = Store::default();
        let body = || vec![Bytes::from(vec![7u8; 100])];
        for i in 0..10 {
            s.put("b", &format!("k{i}"), body(), 42, 250);
        }
        // Ten objects, one body: nothing dropped.
        assert_eq!(s.used(), 100);
        assert_eq!(s.count(), 10);
        s.buckets.clear();
        assert_eq!(s.used(), 0);
    }
}
