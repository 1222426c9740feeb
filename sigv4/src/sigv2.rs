//! Legacy AWS Signature Version 2 for S3: `Authorization: AWS AKID:signature` headers and
//! query-string authentication (`AWSAccessKeyId`, `Signature`, `Expires`), which is what
//! boto3's `generate_presigned_url` still produces by default.
//!
//! ```text
//! StringToSign = Verb \n Content-MD5 \n Content-Type \n Date-or-Expires \n
//!                CanonicalizedAmzHeaders CanonicalizedResource
//! Signature    = base64(HMAC-SHA1(secret, StringToSign))
//! ```

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha1::Sha1;
use time::format_description::well_known::Rfc2822;
use time::OffsetDateTime;

use crate::canonical::{canonical_uri, percent_decode, reencoded_uri, signatures_equal};
use crate::dates::{parse_amz_date, parse_http_date, MAX_PRESIGNED_EXPIRES, MAX_SKEW};
use crate::{AuthError, Authenticated, PayloadMode, RequestParts, SecretLookup};

/// The query parameters S3 treats as sub-resources: they are part of the
/// CanonicalizedResource (every other query parameter is left unsigned).
const SUB_RESOURCES: &[&str] = &[
    "acl",
    "cors",
    "delete",
    "encryption",
    "legal-hold",
    "lifecycle",
    "location",
    "logging",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "retention",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// [`MAX_PRESIGNED_EXPIRES`] as the signed type of unix timestamps.
const MAX_QUERY_EXPIRES: i64 = MAX_PRESIGNED_EXPIRES as i64;

const QUERY_PARAMS_REQUIRED: &str =
    "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters";
const HEADER_INVALID: &str =
    "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature";

/// Whether an `Authorization` value uses the SigV2 scheme (`AWS AKID:signature`).
pub(crate) fn is_v2_authorization(value: &str) -> bool {
    value.trim_start().starts_with("AWS ")
}

/// Whether the query carries SigV2 query-string authentication parameters.
pub(crate) fn has_v2_query(params: &[(Vec<u8>, Vec<u8>)]) -> bool {
    params
        .iter()
        .any(|(n, _)| n.as_slice() == b"AWSAccessKeyId" || n.as_slice() == b"Signature")
}

/// Verifies `Authorization: AWS AKID:signature`.
///
/// The date is the `Date` header, or `x-amz-date` when present (which is then signed as an
/// amz header and the date line is empty); it must be within [`MAX_SKEW`] of `now`.
pub(crate) fn header_auth(
    req: &RequestParts<'_>,
    value: &str,
    secrets: &dyn SecretLookup,
    now: OffsetDateTime,
) -> Result<Authenticated, AuthError> {
    let rest = value
        .trim()
        .strip_prefix("AWS ")
        .ok_or_else(|| AuthError::InvalidArgument(HEADER_INVALID.into()))?;
    let (access_key, signature) = rest
        .trim()
        .split_once(':')
        .map(|(a, s)| (a.trim(), s.trim()))
        .filter(|(a, s)| !a.is_empty() && !s.is_empty())
        .ok_or_else(|| AuthError::InvalidArgument(HEADER_INVALID.into()))?;

    let denied = || {
        AuthError::AccessDenied(
            "AWS authentication requires a valid Date or x-amz-date header".into(),
        )
    };
    let (when, date_line) = match req.headers.get("x-amz-date") {
        Some(v) => (v.to_str().ok().and_then(parse_v2_date), Vec::new()),
        None => {
            let v = req.headers.get(http::header::DATE).ok_or_else(denied)?;
            (
                v.to_str().ok().and_then(parse_v2_date),
                trim(v.as_bytes()).to_vec(),
            )
        }
    };
    let when = when.ok_or_else(denied)?;
    if (now - when).abs() > MAX_SKEW {
        return Err(AuthError::RequestTimeTooSkewed);
    }
    let secret = secrets
        .secret_key(access_key)
        .ok_or(AuthError::InvalidAccessKeyId)?;
    verify(req, &secret, &date_line, false, signature)?;
    Ok(signed(access_key))
}

/// Verifies query-string authentication (`AWSAccessKeyId`, `Signature`, `Expires`).
///
/// `Expires` (unix seconds) is the date line of the StringToSign; the request is refused
/// once `now` is past it, and also when `Expires` is more than [`MAX_PRESIGNED_EXPIRES`]
/// seconds after `now` (the one-week limit of SigV4 presigned URLs: a SigV2 URL carries no
/// signing time, so its lifetime is bounded from `now`). `x-amz-*` query parameters are
/// signed like `x-amz-*` headers.
pub(crate) fn query_auth(
    req: &RequestParts<'_>,
    params: &[(Vec<u8>, Vec<u8>)],
    secrets: &dyn SecretLookup,
    now: OffsetDateTime,
) -> Result<Authenticated, AuthError> {
    let get = |name: &str| -> Result<&str, AuthError> {
        params
            .iter()
            .find(|(n, _)| n.as_slice() == name.as_bytes())
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| AuthError::AccessDenied(QUERY_PARAMS_REQUIRED.into()))
    };
    let (access_key, signature, expires) =
        (get("AWSAccessKeyId")?, get("Signature")?, get("Expires")?);
    let expires_at: i64 = Some(expires)
        .filter(|e| e.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|e| e.parse().ok())
        .ok_or_else(|| {
            AuthError::AccessDenied("Invalid Expires (should be seconds since epoch)".into())
        })?;
    let now_secs = now.unix_timestamp();
    if now_secs > expires_at {
        return Err(AuthError::AccessDenied("Request has expired".into()));
    }
    // `expires_at >= now_secs` here, so the difference cannot be negative; saturate rather
    // than overflow for an `Expires` near `i64::MAX` with a `now` before 1970.
    if expires_at.saturating_sub(now_secs) > MAX_QUERY_EXPIRES {
        return Err(AuthError::AccessDenied(
            "Expires must be less than a week (in seconds) that is 604800 from now".into(),
        ));
    }
    let secret = secrets
        .secret_key(access_key)
        .ok_or(AuthError::InvalidAccessKeyId)?;
    // Base64 never contains spaces: a space is a `+` the client left unencoded (and the
    // query parser decoded as form encoding).
    let signature = signature.replace(' ', "+");
    verify(req, &secret, expires.as_bytes(), true, &signature)?;
    Ok(signed(access_key))
}

fn signed(access_key: &str) -> Authenticated {
    Authenticated::Signed {
        access_key: access_key.to_owned(),
        region: String::new(),
        payload: PayloadMode::Unsigned,
        chunk_ctx: None,
    }
}

/// Recomputes the signature and compares it, in constant time, with `provided`.
///
/// The resource is tried as received and, failing that, decoded and re-encoded with the
/// AWS rules; a bare bucket path (`/bucket`) is also tried as `/bucket/`, the resource
/// botocore signs for bucket operations; when the query contains a raw `+`, sub-resource values are tried with it
/// meaning a space and a literal `+`. All candidates use the same secret and cover the same
/// request, so this widens nothing.
fn verify(
    req: &RequestParts<'_>,
    secret: &str,
    date_line: &[u8],
    query_form: bool,
    provided: &str,
) -> Result<(), AuthError> {
    let raw_uri = canonical_uri(req.raw_path);
    let reencoded = reencoded_uri(req.raw_path);
    let mut uris = vec![raw_uri];
    if reencoded != raw_uri {
        uris.push(reencoded.as_str());
    }
    let bucket_only = raw_uri.len() > 1 && !raw_uri[1..].contains('/');
    let slashed = format!("{raw_uri}/");
    if bucket_only {
        uris.push(slashed.as_str());
    }
    let plus_modes: &[bool] = if req.raw_query.is_some_and(|q| q.contains('+')) {
        &[true, false]
    } else {
        &[true]
    };
    let mut ok = false;
    for &plus_is_space in plus_modes {
        for uri in &uris {
            let sts = string_to_sign(req, date_line, query_form, uri, plus_is_space);
            // Evaluate every candidate: the work done does not depend on which one matches.
            ok |= signatures_equal(&sign(secret, &sts), provided);
        }
    }
    if ok {
        Ok(())
    } else {
        Err(AuthError::SignatureDoesNotMatch)
    }
}

/// `base64(HMAC-SHA1(secret, string_to_sign))`.
pub(crate) fn sign(secret: &str, string_to_sign: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret.as_bytes()) else {
        unreachable!("HMAC accepts keys of any length")
    };
    mac.update(string_to_sign);
    BASE64.encode(mac.finalize().into_bytes())
}

/// Builds the StringToSign of a request.
pub(crate) fn string_to_sign(
    req: &RequestParts<'_>,
    date_line: &[u8],
    query_form: bool,
    uri: &str,
    plus_is_space: bool,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(req.method.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(first_header(req.headers, "content-md5"));
    out.push(b'\n');
    out.extend_from_slice(first_header(req.headers, "content-type"));
    out.push(b'\n');
    out.extend_from_slice(date_line);
    out.push(b'\n');
    let query_amz = if query_form {
        req.raw_query.unwrap_or("")
    } else {
        ""
    };
    amz_headers_into(req.headers, query_amz, plus_is_space, &mut out);
    out.extend_from_slice(uri.as_bytes());
    sub_resources_into(req.raw_query.unwrap_or(""), plus_is_space, &mut out);
    out
}

fn first_header<'a>(headers: &'a HeaderMap, name: &str) -> &'a [u8] {
    headers.get(name).map_or(&[], |v| trim(v.as_bytes()))
}

fn trim(value: &[u8]) -> &[u8] {
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |e| e + 1);
    &value[start..end]
}

/// Splits a raw query into `(name, value)` pairs, decoded; `value` is `None` when the
/// piece has no `=` (as in `?uploads`).
fn query_pieces(
    raw_query: &str,
    plus_is_space: bool,
) -> impl Iterator<Item = (Vec<u8>, Option<Vec<u8>>)> + '_ {
    raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(move |p| match p.split_once('=') {
            Some((n, v)) => (
                percent_decode(n, plus_is_space),
                Some(percent_decode(v, plus_is_space)),
            ),
            None => (percent_decode(p, plus_is_space), None),
        })
}

/// CanonicalizedAmzHeaders: `x-amz-*` headers (and, for query-string authentication,
/// `x-amz-*` query parameters) lowercased and sorted, `name:value\n` with values trimmed
/// and repeated names joined by `,`.
fn amz_headers_into(headers: &HeaderMap, query: &str, plus_is_space: bool, out: &mut Vec<u8>) {
    let mut amz: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut add = |name: Vec<u8>, value: &[u8]| {
        let entry = amz.entry(name).or_default();
        if !entry.is_empty() {
            entry.push(b',');
        }
        entry.extend_from_slice(trim(value));
    };
    for (name, value) in headers {
        if name.as_str().starts_with("x-amz-") {
            add(name.as_str().as_bytes().to_vec(), value.as_bytes());
        }
    }
    for (name, value) in query_pieces(query, plus_is_space) {
        let name = name.to_ascii_lowercase();
        if name.starts_with(b"x-amz-") {
            add(name, value.as_deref().unwrap_or(&[]));
        }
    }
    for (name, value) in amz {
        out.extend_from_slice(&name);
        out.push(b':');
        out.extend_from_slice(&value);
        out.push(b'\n');
    }
}

/// The sub-resource part of the CanonicalizedResource: `?a&b=v...`, sorted by name.
fn sub_resources_into(raw_query: &str, plus_is_space: bool, out: &mut Vec<u8>) {
    let mut subs: Vec<(Vec<u8>, Option<Vec<u8>>)> = query_pieces(raw_query, plus_is_space)
        .filter(|(n, _)| SUB_RESOURCES.iter().any(|s| s.as_bytes() == n.as_slice()))
        .collect();
    // Stable: repeated names keep their order.
    subs.sort_by(|a, b| a.0.cmp(&b.0));
    for (i, (name, value)) in subs.iter().enumerate() {
        out.push(if i == 0 { b'?' } else { b'&' });
        out.extend_from_slice(name);
        if let Some(value) = value {
            out.push(b'=');
            out.extend_from_slice(value);
        }
    }
}

/// Parses a SigV2 request date: RFC 1123 with `GMT` or a numeric zone (RFC 2822), or the
/// ISO 8601 basic form `YYYYMMDDTHHMMSSZ` some clients put in `x-amz-date`.
fn parse_v2_date(value: &str) -> Option<OffsetDateTime> {
    let value = value.trim();
    parse_http_date(value)
        .or_else(|| OffsetDateTime::parse(value, &Rfc2822).ok())
        .or_else(|| parse_amz_date(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let a = parse_v2_date("Tue, 27 Mar 2007 19:36:42 +0000").unwrap();
        let b = parse_v2_date("Tue, 27 Mar 2007 19:36:42 GMT").unwrap();
        let c = parse_v2_date("20070327T193642Z").unwrap();
        assert_eq!((a, b), (c, c));
        assert_eq!(
            parse_v2_date("Tue, 27 Mar 2007 21:36:42 +0200"),
            Some(c),
            "numeric zones are honoured"
        );
        assert_eq!(parse_v2_date("yesterday"), None);
        assert_eq!(parse_v2_date(""), None);
    }

    #[test]
    fn bare_bucket_paths_verify_when_signed_with_a_slash() {
        let mut h = HeaderMap::new();
        h.insert("date", "Tue, 01 Dec 2026 10:28:18 GMT".parse().unwrap());
        let date = b"Tue, 01 Dec 2026 10:28:18 GMT";
        let parts = |path| RequestParts {
            method: "PUT",
            raw_path: path,
            raw_query: None,
            headers: &h,
        };
        let signed = |resource| {
            sign(
                "secret",
                &string_to_sign(&parts(resource), date, false, resource, true),
            )
        };
        assert!(verify(&parts("/b1"), "secret", date, false, &signed("/b1/")).is_ok());
        assert!(verify(&parts("/b1"), "secret", date, false, &signed("/b1")).is_ok());
        // Only a bare bucket: an object path is not also tried with a slash.
        assert!(verify(&parts("/b1/k"), "secret", date, false, &signed("/b1/k/")).is_err());
        assert!(verify(&parts("/b1"), "other", date, false, &signed("/b1/")).is_err());
    }

    #[test]
    fn sub_resources_are_filtered_and_sorted() {
        let mut out = Vec::new();
        sub_resources_into(
            "versionId=3&foo=bar&acl&response-content-type=text%2Fplain&prefix=x&uploads=",
            true,
            &mut out,
        );
        assert_eq!(
            out,
            b"?acl&response-content-type=text/plain&uploads=&versionId=3"
        );
        let mut out = Vec::new();
        sub_resources_into("list-type=2&prefix=a", true, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn amz_headers_are_canonicalised() {
        let mut h = HeaderMap::new();
        h.append("x-amz-meta-b", " two ".parse().unwrap());
        h.append("X-Amz-Meta-A", "one".parse().unwrap());
        h.append("x-amz-meta-b", "three".parse().unwrap());
        h.append("content-type", "text/plain".parse().unwrap());
        let mut out = Vec::new();
        amz_headers_into(&h, "X-Amz-Security-Token=t%2Bk&x=1", true, &mut out);
        assert_eq!(
            out,
            b"x-amz-meta-a:one\nx-amz-meta-b:two,three\nx-amz-security-token:t+k\n"
        );
    }
}
