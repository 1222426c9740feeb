//! Request metrics of the S3 front end: a counter and a latency histogram per operation and
//! status class, the bytes received and sent, the body budget's refusals and reservations
//! ([`crate::budget`]), and rate-limit refusals ([`crate::limits`]: per key, and in total
//! for client addresses). The operation label is the name of the request's
//! [`crate::op::Op`] — a small fixed set, never a bucket or object key.

use axum::http::{HeaderMap, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
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

/// A rate-limit refusal of a key's request ([`crate::limits`]).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ThrottleLabels {
    /// The access key (the number of keys is the operator's; never a client address).
    pub key: String,
    /// `ops` or `bytes`.
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

/// The front end's metrics; clones share the same values.
#[derive(Clone, Debug)]
pub struct ApiMetrics {
    pub requests: Family<RequestLabels, Counter>,
    pub duration: Family<OpLabels, Histogram>,
    pub bytes_received: Counter,
    pub bytes_sent: Counter,
    /// Requests refused (503 SlowDown) because the body budget stayed spent.
    pub body_budget_refused: Counter,
    /// Bytes of the body budget reserved by requests in flight.
    pub body_budget_reserved: Gauge,
    /// Requests waiting for room in the body budget.
    pub body_budget_waiting: Gauge,
    /// Requests refused (503 SlowDown) by a key's rate limit.
    pub throttled: Family<ThrottleLabels, Counter>,
    /// Requests refused (503 SlowDown) by a client address's rate limit.
    pub ip_throttled: Family<ReasonLabels, Counter>,
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
            body_budget_refused: Counter::default(),
            body_budget_reserved: Gauge::default(),
            body_budget_waiting: Gauge::default(),
            throttled: Family::default(),
            ip_throttled: Family::default(),
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
        r.register(
            "body_budget_refused",
            "Requests refused with 503 SlowDown because --max-inflight-bytes was spent",
            self.body_budget_refused.clone(),
        );
        r.register(
            "body_budget_reserved_bytes",
            "Request-body memory reserved by requests in flight",
            self.body_budget_reserved.clone(),
        );
        r.register(
            "body_budget_waiting",
            "Requests waiting (up to --max-inflight-wait) for room in --max-inflight-bytes",
            self.body_budget_waiting.clone(),
        );
        r.register(
            "throttled",
            "Requests refused with 503 SlowDown by an access key's rate limit",
            self.throttled.clone(),
        );
        r.register(
            "ip_throttled",
            "Requests refused with 503 SlowDown by a client address's rate limit",
            self.ip_throttled.clone(),
        );
    }

    /// Counts a request refused by `key`'s rate limit (`reason`: `ops` or `bytes`).
    pub fn throttled_key(&self, key: &str, reason: &str) {
        self.throttled
            .get_or_create(&ThrottleLabels {
                key: key.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Counts a request refused by a client address's rate limit.
    pub fn throttled_ip(&self, reason: &str) {
        self.ip_throttled
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn throttled_requests_are_counted_per_key_and_reason() {
        let m = ApiMetrics::default();
        let mut reg = Registry::default();
        m.register(&mut reg);
        m.throttled_key("AKIDALICE", "ops");
        m.throttled_key("AKIDALICE", "ops");
        m.throttled_key("AKIDALICE", "bytes");
        m.throttled_ip("ops");
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &reg).unwrap();
        for line in [
            r#"cairn_s3_throttled_total{key="AKIDALICE",reason="ops"} 2"#,
            r#"cairn_s3_throttled_total{key="AKIDALICE",reason="bytes"} 1"#,
            r#"cairn_s3_ip_throttled_total{reason="ops"} 1"#,
        ] {
            assert!(out.contains(line), "{line} in {out}");
        }
    }
}
