//! The S3 REST front end: turns HTTP requests into typed S3 operations ([`op`], the one
//! operation table), authenticates them (SigV4), authorizes them from that table
//! (`access`), translates them into calls of the object service (`cairn_objects`, which owns
//! what an operation does to metadata and storage), and renders S3 responses and errors. Storage crates never see HTTP; this crate never sees a storage engine.
//!
//! Every response carries `x-amz-request-id`; every error is rendered by [`error`], the one
//! mapping from crate errors to S3 codes.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use cairn_objects::ObjectService;
use tracing::Instrument;

mod access;
mod access_config;
mod acl;
mod acl_ops;
mod attributes;
pub mod auth;
mod bucket;
mod bucket_config;
pub mod budget;
mod copy;
mod copy_source;
mod cors;
mod delete;
pub mod error;
pub mod form;
mod headers;
pub mod identity;
mod lifecycle;
pub mod limits;
mod listing;
mod lookup;
pub mod metrics;
mod multipart;
mod multipart_complete;
mod multipart_list;
mod object;
mod object_lock;
pub mod op;
pub mod policies;
pub mod post_form;
mod post_object;
mod post_policy;
mod query;
mod router;
pub mod sse;
mod tagging;
mod tags;
mod util;
mod versioning;
pub mod xml;

pub use auth::{KeyRing, KeySnapshot, SyncReport};
pub use error::{S3Error, S3ErrorCode};
pub use metrics::ApiMetrics;

/// Everything a request handler needs.
pub struct ApiState {
    pub objects: ObjectService,
    pub keys: KeyRing,
    pub region: String,
    pub metrics: ApiMetrics,
    /// Domains under which buckets are addressed virtual-hosted style (`bucket.<domain>`).
    pub domains: Vec<String>,
    /// Request-body memory in flight (`--max-inflight-bytes`).
    pub body_budget: budget::BodyBudget,
    /// Rate limits per access key and per client address.
    pub limits: limits::RateLimiter,
    /// Whether the S3 listener serves TLS (`aws:SecureTransport`).
    pub secure_transport: bool,
    /// Parsed policies, by document (see [`policies::PolicyCache`]).
    pub policies: policies::PolicyCache,
    /// Encryption at rest: the server's default, and whether SSE-C may come over HTTP.
    pub encryption: sse::EncryptionConfig,
}

/// The S3 router: every path and method goes through [`handle`].
pub fn s3_router(state: Arc<ApiState>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

async fn handle(State(st): State<Arc<ApiState>>, req: Request) -> Response {
    let request_id = util::new_request_id();
    let resource = req.uri().path().to_string();
    let is_head = req.method() == Method::HEAD;
    let started = std::time::Instant::now();
    let parsed = router::parse(&st, &req);
    // The operation's AWS name labels the metrics and the span (`Invalid`: not an S3 request
    // Cairn knows).
    let op = parsed.as_ref().map_or("Invalid", |p| p.op.name());
    let req_bytes = metrics::declared_len(req.headers());
    let span = tracing::info_span!("s3", request_id = %request_id, op, method = %req.method(), path = %resource);
    // The per-address rate limit comes first, for every request (signed or not).
    let client_ip = util::client_ip(&req);
    let result = match limits::check_ip(&st, client_ip, req_bytes.unwrap_or(0)).and(parsed) {
        Ok(p) => router::dispatch(&st, p, req).instrument(span.clone()).await,
        Err(e) => Err(e),
    };
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => {
            let _g = span.enter();
            // NotImplemented (a feature Cairn lacks) is the client's request, not a failure;
            // SlowDown is load shedding, counted in the metrics.
            if e.code.status().is_server_error()
                && e.code != S3ErrorCode::NotImplemented
                && e.code != S3ErrorCode::SlowDown
            {
                tracing::warn!(code = e.code.as_str(), message = %e.message, "request failed");
            } else {
                tracing::debug!(code = e.code.as_str(), message = %e.message, "request refused");
            }
            error_response(&e, &resource, &request_id, is_head)
        }
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-amz-request-id", v.clone());
        resp.headers_mut().insert("x-amz-id-2", v);
    }
    let resp_bytes = if is_head {
        None
    } else {
        metrics::declared_len(resp.headers())
    };
    if let (Some(ip), Some(n)) = (client_ip, resp_bytes) {
        st.limits.charge_ip(ip, n);
    }
    st.metrics.observe(
        op,
        resp.status(),
        started.elapsed().as_secs_f64(),
        req_bytes,
        resp_bytes,
    );
    resp
}

/// The S3 listener's answer to a request its handler did not answer within the request
/// timeout (`cairn_net::Limits::timed_out`): 503 `ServiceUnavailable` as an S3 error
/// document, so SDKs retry it like any other 503.
pub fn timed_out_response() -> Response {
    let e = S3Error::new(
        S3ErrorCode::ServiceUnavailable,
        "The server did not answer this request in time; please retry.",
    );
    let request_id = util::new_request_id();
    let mut resp = error_response(&e, "", &request_id, false);
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-amz-request-id", v);
    }
    resp
}

fn error_response(e: &S3Error, resource: &str, request_id: &str, is_head: bool) -> Response {
    let status = e.code.status();
    let mut resp = if is_head {
        (status, Body::empty()).into_response()
    } else {
        let body = e.to_xml(resource, request_id);
        let mut resp = (status, body).into_response();
        resp.headers_mut()
            .insert("content-type", HeaderValue::from_static("application/xml"));
        resp
    };
    for (name, value) in &e.headers {
        if let Ok(v) = HeaderValue::from_str(value) {
            resp.headers_mut().insert(*name, v);
        }
    }
    resp
}

/// A 200 response with an XML body.
pub(crate) fn xml_response(body: String) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/xml"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_timeout_answer_is_an_s3_error_document() {
        let resp = timed_out_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(resp.headers().contains_key("x-amz-request-id"));
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(text.contains("<Code>ServiceUnavailable</Code>"), "{text}");
    }
}
