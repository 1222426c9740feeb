//! The oracle: the operation Cairn's table makes of a request, and whether the answer a
//! stranger got is allowed by the model.

use super::*;

/// The operation Cairn's table makes of a request (what it sees: every header sent), or the
/// error code of a request it refuses to classify.
pub(super) fn classify(w: &Wire) -> Result<Op, String> {
    classify_parts(w.method, &w.path, &w.query, &w.headers)
}

pub(super) fn classify_parts(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
) -> Result<Op, String> {
    let method = http::Method::from_bytes(method.as_bytes()).unwrap();
    let mut h = http::HeaderMap::new();
    for (k, v) in headers {
        h.append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            http::HeaderValue::from_str(v).unwrap(),
        );
    }
    let q = (!query.is_empty()).then_some(query);
    classify_path(&method, path, q, &h).map_err(|e| e.code.as_str().to_string())
}

/// Error codes of a signature Cairn did not accept: a shape that got one never reached
/// authorization, so it tested nothing.
pub(super) const AUTH_CODES: &[&str] = &[
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "AuthorizationHeaderMalformed",
    "AuthorizationQueryParametersError",
    "RequestTimeTooSkewed",
    "XAmzContentSHA256Mismatch",
    "MissingSecurityHeader",
];

/// The access model: the only 2xx it allows is key X (validly signed) listing its own
/// buckets. Everything the fuzz sends other than that is the private bucket's, or is about
/// a bucket that does not exist.
pub(super) fn model_allows_2xx(caller: Caller, op: &Result<Op, String>) -> bool {
    matches!(caller, Caller::XSigned | Caller::XPresigned) && *op == Ok(Op::ListBuckets)
}

/// What is wrong with the answer to a shape, if anything.
pub(super) fn judge(
    caller: Caller,
    op: &Result<Op, String>,
    path: &str,
    r: &Result<Resp, String>,
) -> Option<String> {
    let dot_dot = path == DOT_DOT;
    let r = match r {
        Ok(r) => r,
        Err(e) => return Some(format!("no response: {e}")),
    };
    let code = r.code();
    if (200..300).contains(&r.status) {
        if !model_allows_2xx(caller, op) {
            return Some("a 2xx answer that the model forbids".into());
        }
        if String::from_utf8_lossy(&r.body).contains("<Bucket>") {
            return Some("X, which owns no bucket, was listed one".into());
        }
    }
    if r.status >= 500 && !(r.status == 501 && code.as_deref() == Some("NotImplemented")) {
        return Some("a server error".into());
    }
    // Refused for its unsigned headers, unless it is answered before authentication: a
    // request Cairn cannot classify or whose key is malformed, or a CORS preflight (which
    // is anonymous by nature: it is answered from the bucket's CORS rules alone).
    let authenticated = op.as_ref().is_ok_and(|op| *op != Op::PreflightRequest) && !dot_dot;
    if caller == Caller::XPresignedUnsigned && authenticated && r.status != 403 {
        return Some(
            "an x-amz-* header outside a presigned URL's signature, not refused with 403".into(),
        );
    }
    // A missing key, version or upload is AccessDenied for callers that may not list the
    // bucket (access.rs): a 404 would tell a stranger what the private bucket holds.
    if r.status == 404 && path.starts_with("/secret") {
        return Some("a 404 that tells a stranger what the private bucket holds".into());
    }
    if matches!(caller, Caller::XSigned | Caller::XPresigned)
        && code.as_deref().is_some_and(|c| AUTH_CODES.contains(&c))
    {
        return Some(
            "a correctly signed request refused by authentication: it never reached authorization"
                .into(),
        );
    }
    None
}
