//! Request metrics of the S3 front end: a counter and a latency histogram per operation and
//! status class, and the bytes received and sent. The operation label is derived from the
//! method, the path shape and the sub-resource — a small fixed set, never a bucket or key.

use axum::http::{HeaderMap, Method, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// S3 operation name, as AWS names it (`GetObject`, `ListObjectsV2`, …).
    pub op: String,
    /// `2xx`, `3xx`, `4xx` or `5xx`.
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    pub op: String,
}

/// The front end's metrics; clones share the same values.
#[derive(Clone, Debug)]
pub struct ApiMetrics {
    pub requests: Family<RequestLabels, Counter>,
    pub duration: Family<OpLabels, Histogram>,
    pub bytes_received: Counter,
    pub bytes_sent: Counter,
}

fn latency_histogram() -> Histogram {
    // 1 ms … ~65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

impl Default for ApiMetrics {
    fn default() -> Self {
        ApiMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(latency_histogram),
            bytes_received: Counter::default(),
            bytes_sent: Counter::default(),
        }
    }
}

impl ApiMetrics {
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("cairn_s3");
        r.register(
            "requests",
            "S3 requests by operation and status class",
            self.requests.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Time to the response head, by operation",
            self.duration.clone(),
        );
        r.register(
            "received_bytes",
            "Request body bytes declared by S3 clients",
            self.bytes_received.clone(),
        );
        r.register(
            "sent_bytes",
            "Response body bytes declared to S3 clients",
            self.bytes_sent.clone(),
        );
    }

    /// Records one finished request.
    pub fn observe(
        &self,
        op: &'static str,
        status: StatusCode,
        seconds: f64,
        req_bytes: Option<u64>,
        resp_bytes: Option<u64>,
    ) {
        let class = format!("{}xx", status.as_u16() / 100);
        self.requests
            .get_or_create(&RequestLabels {
                op: op.to_string(),
                status: class,
            })
            .inc();
        self.duration
            .get_or_create(&OpLabels { op: op.to_string() })
            .observe(seconds);
        if let Some(n) = req_bytes {
            self.bytes_received.inc_by(n);
        }
        if let Some(n) = resp_bytes {
            self.bytes_sent.inc_by(n);
        }
    }
}

/// The body length a request or response declares (`x-amz-decoded-content-length` for
/// aws-chunked bodies, else `content-length`).
pub fn declared_len(h: &HeaderMap) -> Option<u64> {
    h.get("x-amz-decoded-content-length")
        .or_else(|| h.get("content-length"))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// The S3 operation a request asks for, by AWS's names; `Unknown` for anything else.
pub fn operation(method: &Method, path: &str, query: Option<&str>, h: &HeaderMap) -> &'static str {
    let rest = path.strip_prefix('/').unwrap_or(path);
    let (has_bucket, has_key) = match rest.split_once('/') {
        _ if rest.is_empty() => (false, false),
        Some((_, k)) => (true, !k.is_empty()),
        None => (true, false),
    };
    let params: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').map_or(p, |(k, _)| k))
        .collect();
    let has = |p: &str| params.contains(&p);
    let copy = h.contains_key("x-amz-copy-source");
    if !has_bucket {
        return if method == Method::GET {
            "ListBuckets"
        } else {
            "Unknown"
        };
    }
    if !has_key {
        return match *method {
            Method::GET if has("uploads") => "ListMultipartUploads",
            Method::GET if has("versions") => "ListObjectVersions",
            Method::GET if has("location") => "GetBucketLocation",
            Method::GET if has("versioning") => "GetBucketVersioning",
            Method::GET if has("list-type") => "ListObjectsV2",
            Method::GET => "ListObjects",
            Method::PUT if has("versioning") => "PutBucketVersioning",
            Method::PUT => "CreateBucket",
            Method::HEAD => "HeadBucket",
            Method::DELETE => "DeleteBucket",
            Method::POST if has("delete") => "DeleteObjects",
            _ => "Unknown",
        };
    }
    match *method {
        Method::GET if has("uploadId") => "ListParts",
        Method::GET if has("tagging") => "GetObjectTagging",
        Method::GET => "GetObject",
        Method::HEAD => "HeadObject",
        Method::PUT if has("uploadId") && copy => "UploadPartCopy",
        Method::PUT if has("uploadId") => "UploadPart",
        Method::PUT if has("tagging") => "PutObjectTagging",
        Method::PUT if copy => "CopyObject",
        Method::PUT => "PutObject",
        Method::POST if has("uploads") => "CreateMultipartUpload",
        Method::POST if has("uploadId") => "CompleteMultipartUpload",
        Method::DELETE if has("uploadId") => "AbortMultipartUpload",
        Method::DELETE => "DeleteObject",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_operations() {
        let h = HeaderMap::new();
        let op = |m: Method, p: &str, q: Option<&str>| operation(&m, p, q, &h);
        assert_eq!(op(Method::GET, "/", None), "ListBuckets");
        assert_eq!(
            op(Method::GET, "/b", Some("list-type=2&prefix=a")),
            "ListObjectsV2"
        );
        assert_eq!(op(Method::GET, "/b/", None), "ListObjects");
        assert_eq!(op(Method::PUT, "/b", None), "CreateBucket");
        assert_eq!(op(Method::POST, "/b", Some("delete")), "DeleteObjects");
        assert_eq!(op(Method::GET, "/b/k/x", None), "GetObject");
        assert_eq!(
            op(Method::PUT, "/b/k", Some("partNumber=1&uploadId=x")),
            "UploadPart"
        );
        assert_eq!(
            op(Method::POST, "/b/k", Some("uploads")),
            "CreateMultipartUpload"
        );
        assert_eq!(op(Method::DELETE, "/b/k", None), "DeleteObject");
        let mut copy = HeaderMap::new();
        copy.insert("x-amz-copy-source", "a/b".parse().unwrap());
        assert_eq!(operation(&Method::PUT, "/b/k", None, &copy), "CopyObject");
    }

    #[test]
    fn observed_requests_are_encoded() {
        let m = ApiMetrics::default();
        let mut reg = Registry::default();
        m.register(&mut reg);
        m.observe("GetObject", StatusCode::OK, 0.01, None, Some(10));
        m.observe("GetObject", StatusCode::NOT_FOUND, 0.01, None, None);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &reg).unwrap();
        assert!(
            out.contains(r#"cairn_s3_requests_total{op="GetObject",status="2xx"} 1"#),
            "{out}"
        );
        assert!(out.contains("cairn_s3_sent_bytes_total 10"), "{out}");
    }
}
