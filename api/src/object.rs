//! Object operations: PutObject, GetObject/HeadObject (ranges, `partNumber`, conditionals,
//! response overrides, `versionId`). The request-header helpers it shares with multipart
//! and copy are in `headers`; deletes are in `delete`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use cairn_metadata::{ObjectAcl, ObjectData, ObjectRecord, StoredChecksum};
use cairn_objects::PutObject;
use cairn_types::ObjectKey;
use futures::TryStreamExt;

use crate::access::{Authorized, Resolved};
use crate::auth::{self};
use crate::error::{S3Error, S3ErrorCode};
use crate::headers::{
    declared_or_chunked, etag_matches, header_str, limit_body, meta_header, object_metadata,
    parse_http_date, parse_part_number, set, storage_class, write_condition, MAX_PUT_SIZE,
};
use crate::query::Query;
use crate::util::http_date;
use crate::{tagging, ApiState};

/// PutObject; the new object gets `acl` (its writer's, from the request's ACL headers).
pub async fn put_object(
    st: &Arc<ApiState>,
    a: &Authorized,
    key: &ObjectKey,
    req: Request,
    acl: ObjectAcl,
) -> Result<Response, S3Error> {
    let caller = a.caller().clone();
    // The router loaded the bucket; the commit checks again that it still exists.
    let bucket = a.bucket()?.name.clone();
    let headers = req.headers().clone();
    let condition = write_condition(&headers)?;
    let declared = declared_or_chunked(&caller, &headers, MAX_PUT_SIZE)?;
    if let Some(n) = declared {
        a.gate().check_quota(n, 1, a.gate().versioned())?;
    }
    let mut metadata = object_metadata(&headers)?;
    crate::object_lock::new_version_lock(a, &headers, true)?.store(&mut metadata.headers);
    cairn_objects::set_class(
        &mut metadata.headers,
        &storage_class(&headers, a.gate().storage_class.as_deref())?,
    );
    let protection = crate::sse::protection(st, &headers, a.gate().encryption.as_deref())?;
    let put = PutObject {
        bucket,
        key: key.clone(),
        metadata,
        tags: tagging::from_header(&headers)?.unwrap_or_default(),
        acl,
        condition,
        size: declared,
        protection: protection.clone(),
    };
    let (body, verified) = auth::body_stream(&caller, req)?;
    let body = match declared {
        Some(_) => body,
        None => limit_body(body, MAX_PUT_SIZE),
    };
    let checksum = move || {
        verified
            .checksum()
            .map(|(algorithm, value)| StoredChecksum {
                algorithm: algorithm.to_string(),
                value,
            })
    };
    let stored = st.objects.put_object(put, body, checksum).await?;
    let etag = &stored.etag;
    let checksum = stored.checksum.clone();

    let mut resp = StatusCode::OK.into_response();
    set(resp.headers_mut(), "etag", &format!("\"{etag}\""));
    crate::sse::report_protection(resp.headers_mut(), &protection);
    crate::lifecycle::expiration(a, key.as_str(), &stored, resp.headers_mut());
    if let Some(v) = &stored.version_id {
        set(resp.headers_mut(), "x-amz-version-id", v);
    }
    if let Some(c) = checksum {
        set(
            resp.headers_mut(),
            &format!("x-amz-checksum-{}", c.algorithm.to_ascii_lowercase()),
            &c.value,
        );
    }
    Ok(resp)
}

/// A byte range request, resolved against the object size.
#[derive(Debug, PartialEq, Eq)]
enum RangeSpec {
    Whole,
    Part(u64, u64),
}

/// Parses `Range: bytes=a-b | a- | -n`. Syntax S3 does not understand (or several ranges)
/// is ignored, as S3 does; a well-formed range that misses the object is `InvalidRange`.
fn parse_range(header: Option<&str>, size: u64) -> Result<RangeSpec, S3Error> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(RangeSpec::Whole);
    };
    if spec.contains(',') {
        return Ok(RangeSpec::Whole);
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ok(RangeSpec::Whole);
    };
    let unsatisfiable = || {
        S3Error::new(
            S3ErrorCode::InvalidRange,
            "The requested range is not satisfiable",
        )
        .with("RangeRequested", format!("bytes={spec}"))
        .with("ActualObjectSize", size.to_string())
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        let Some(n) = range_pos(b) else {
            return Ok(RangeSpec::Whole);
        };
        if n == 0 || size == 0 {
            return Err(unsatisfiable());
        }
        return Ok(RangeSpec::Part(size.saturating_sub(n), size));
    }
    let Some(start) = range_pos(a) else {
        return Ok(RangeSpec::Whole);
    };
    // The last byte may lie past the object (even at u64::MAX): it is clamped to the last
    // byte there is, as S3 does, without overflowing on the way to an exclusive end.
    let end = if b.is_empty() {
        size
    } else {
        match range_pos(b) {
            Some(e) if e >= start => e.saturating_add(1).min(size),
            _ => return Ok(RangeSpec::Whole),
        }
    };
    if start >= size {
        return Err(unsatisfiable());
    }
    Ok(RangeSpec::Part(start, end))
}

/// A byte position or suffix length in a `Range` header. A number too large for a `u64` is
/// still a well-formed position (past the end of any object), so it saturates to `u64::MAX`.
fn range_pos(v: &str) -> Option<u64> {
    match v.parse::<u64>() {
        Ok(n) => Some(n),
        Err(e) if *e.kind() == std::num::IntErrorKind::PosOverflow => Some(u64::MAX),
        Err(_) => None,
    }
}

/// Evaluates If-Match, If-None-Match, If-Modified-Since and If-Unmodified-Since.
/// `Err` is a 412; `Ok(Some(_))` is the 304 to send instead of the object.
fn check_conditions(h: &HeaderMap, rec: &ObjectRecord) -> Result<Option<Response>, S3Error> {
    let modified = rec.last_modified_ms.div_euclid(1000);
    let precondition = || {
        Err(S3Error::new(
            S3ErrorCode::PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold",
        ))
    };
    let if_match = header_str(h, "if-match");
    let failed: Result<(), S3Error> = match &if_match {
        Some(m) if !etag_matches(m, &rec.etag) => precondition(),
        None => match header_str(h, "if-unmodified-since").and_then(|v| parse_http_date(&v)) {
            Some(t) if modified > t => precondition(),
            _ => Ok(()),
        },
        _ => Ok(()),
    };
    failed?;
    let not_modified = match header_str(h, "if-none-match") {
        Some(m) => etag_matches(&m, &rec.etag),
        None => header_str(h, "if-modified-since")
            .and_then(|v| parse_http_date(&v))
            .is_some_and(|t| modified <= t),
    };
    if not_modified {
        let mut resp = StatusCode::NOT_MODIFIED.into_response();
        set(resp.headers_mut(), "etag", &format!("\"{}\"", rec.etag));
        set(
            resp.headers_mut(),
            "last-modified",
            &http_date(rec.last_modified_ms),
        );
        return Ok(Some(resp));
    }
    Ok(None)
}

/// GetObject / HeadObject of the version the request was authorized on.
pub async fn get_object(
    st: &Arc<ApiState>,
    a: &Authorized,
    key: &ObjectKey,
    q: &Query,
    headers: &HeaderMap,
    head: bool,
) -> Result<Response, S3Error> {
    let Resolved { rec, version_id } = a.object()?;
    crate::sse::refuse_on_read(headers)?;
    let customer = crate::sse::customer_key(st, headers)?;
    if let Some(resp) = check_conditions(headers, rec)? {
        return Ok(resp);
    }
    let part = match q.get("partNumber") {
        Some(n) => {
            if headers.contains_key("range") {
                return Err(S3Error::new(
                    S3ErrorCode::InvalidRequest,
                    "Cannot specify both Range header and partNumber query parameter",
                ));
            }
            Some(part_range(rec, parse_part_number(n)?)?)
        }
        None => None,
    };
    // After the part number (a part that does not exist is InvalidPart whatever the key).
    st.objects
        .prepare_read(&rec.data, customer.as_deref())
        .await?;
    let (status, start, end) = match part {
        Some((s, e, _)) => {
            let status = if matches!(rec.data, ObjectData::Parts(_)) {
                StatusCode::PARTIAL_CONTENT
            } else {
                StatusCode::OK
            };
            (status, s, e)
        }
        None => match parse_range(header_str(headers, "range").as_deref(), rec.size)? {
            RangeSpec::Whole => (StatusCode::OK, 0, rec.size),
            RangeSpec::Part(s, e) => (StatusCode::PARTIAL_CONTENT, s, e),
        },
    };
    let body = if head {
        Body::empty()
    } else {
        let stream = st
            .objects
            .read_with(rec, start..end, customer.clone())
            .map_err(|e| {
                tracing::error!(error = %e, "object read failed mid-stream");
                std::io::Error::other(e.to_string())
            });
        Body::from_stream(stream)
    };
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    set(h, "content-length", &(end - start).to_string());
    if status == StatusCode::PARTIAL_CONTENT {
        set(
            h,
            "content-range",
            &format!("bytes {}-{}/{}", start, end.saturating_sub(1), rec.size),
        );
    }
    set(h, "accept-ranges", "bytes");
    if let Some((_, _, Some(count))) = part {
        set(h, "x-amz-mp-parts-count", &count.to_string());
    }
    set(h, "etag", &format!("\"{}\"", rec.etag));
    set(h, "last-modified", &http_date(rec.last_modified_ms));
    crate::sse::report(h, &rec.data, customer.as_deref());
    if let Some(v) = &version_id {
        set(h, "x-amz-version-id", v);
    }
    tagging::count_header(h, &rec.tags);
    if q.get("versionId").is_none() {
        crate::lifecycle::expiration(a, key.as_str(), rec, h);
    }
    set(
        h,
        "content-type",
        rec.content_type.as_deref().unwrap_or("binary/octet-stream"),
    );
    for (name, value) in &rec.headers {
        set(h, name, value);
    }
    for (name, value) in &rec.user_meta {
        if let (Ok(n), Some(v)) = (
            HeaderName::from_bytes(format!("x-amz-meta-{name}").as_bytes()),
            meta_header(value),
        ) {
            h.insert(n, v);
        }
    }
    let checksum_mode = header_str(headers, "x-amz-checksum-mode")
        .is_some_and(|m| m.eq_ignore_ascii_case("enabled"));
    if let (true, Some(c)) = (checksum_mode, &rec.checksum) {
        let kind = if c.value.contains('-') {
            "COMPOSITE"
        } else {
            "FULL_OBJECT"
        };
        // The whole object's checksum for the whole object; for one part of a multipart
        // object, that part's own checksum (with the object's checksum type).
        let part_checksum = match (&rec.data, q.get("partNumber")) {
            (ObjectData::Parts(parts), Some(_)) => parts
                .iter()
                .scan(0u64, |off, p| {
                    let at = *off;
                    *off += p.size;
                    Some((at, p))
                })
                .find(|(at, _)| *at == start)
                .and_then(|(_, p)| p.checksum.as_ref()),
            _ => None,
        };
        let shown = if status == StatusCode::OK || (part.is_some() && start == 0 && end == rec.size)
        {
            Some(c)
        } else {
            part_checksum
        };
        if let Some(shown) = shown {
            set(
                h,
                &format!("x-amz-checksum-{}", shown.algorithm.to_ascii_lowercase()),
                &shown.value,
            );
            set(h, "x-amz-checksum-type", kind);
        }
    }
    for (param, name) in [
        ("response-content-type", "content-type"),
        ("response-content-language", "content-language"),
        ("response-expires", "expires"),
        ("response-cache-control", "cache-control"),
        ("response-content-disposition", "content-disposition"),
        ("response-content-encoding", "content-encoding"),
    ] {
        if let Some(v) = q.get(param) {
            set(h, name, v);
        }
    }
    Ok(resp)
}

/// The byte range of part `n` of `rec`, and the part count for a multipart object. An object
/// uploaded in one piece has exactly one part, itself.
fn part_range(rec: &ObjectRecord, n: u32) -> Result<(u64, u64, Option<usize>), S3Error> {
    let not_satisfiable = || {
        S3Error::new(
            S3ErrorCode::InvalidPart,
            "The requested partnumber is not satisfiable",
        )
        .with("PartNumberRequested", n.to_string())
    };
    match &rec.data {
        ObjectData::Parts(parts) => {
            let i = (n as usize).checked_sub(1).ok_or_else(not_satisfiable)?;
            let p = parts.get(i).ok_or_else(not_satisfiable)?;
            let start = parts[..i]
                .iter()
                .fold(0u64, |at, p| at.saturating_add(p.size));
            Ok((start, start.saturating_add(p.size), Some(parts.len())))
        }
        _ if n == 1 => Ok((0, rec.size, None)),
        _ => Err(not_satisfiable()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeSpec::*;
        let r = |h: &str, size| parse_range(Some(h), size);
        assert_eq!(r("bytes=0-9", 100).unwrap(), Part(0, 10));
        assert_eq!(r("bytes=90-200", 100).unwrap(), Part(90, 100));
        assert_eq!(r("bytes=10-", 100).unwrap(), Part(10, 100));
        assert_eq!(r("bytes=-10", 100).unwrap(), Part(90, 100));
        assert_eq!(r("bytes=-1000", 100).unwrap(), Part(0, 100));
        assert_eq!(r("bytes=5-2", 100).unwrap(), Whole);
        assert_eq!(r("bytes=0-1,3-4", 100).unwrap(), Whole);
        assert_eq!(r("items=0-1", 100).unwrap(), Whole);
        assert_eq!(r("bytes=x-1", 100).unwrap(), Whole);
        assert!(r("bytes=100-", 100).is_err());
        assert!(r("bytes=-0", 100).is_err());
        assert!(r("bytes=0-", 0).is_err());
        assert_eq!(parse_range(None, 5).unwrap(), Whole);
    }

    #[test]
    fn ranges_at_the_limits_of_u64() {
        use RangeSpec::*;
        let r = |h: &str, size| parse_range(Some(h), size);
        let max = u64::MAX;
        // A last byte of u64::MAX is clamped to the object's last byte, not wrapped to 0.
        assert_eq!(r(&format!("bytes=0-{max}"), 6).unwrap(), Part(0, 6));
        assert_eq!(r(&format!("bytes=3-{max}"), 6).unwrap(), Part(3, 6));
        assert_eq!(
            r(&format!("bytes={}-{max}", max - 1), max).unwrap(),
            Part(max - 1, max)
        );
        assert_eq!(
            r(&format!("bytes=0-{}", max - 1), max).unwrap(),
            Part(0, max)
        );
        assert!(r(&format!("bytes={max}-{max}"), max).is_err());
        assert!(r(&format!("bytes={max}-{max}"), 6).is_err());
        assert!(r(&format!("bytes={max}-"), 6).is_err());
        assert_eq!(r(&format!("bytes=-{max}"), 6).unwrap(), Part(0, 6));
        assert_eq!(r(&format!("bytes=-{max}"), max).unwrap(), Part(0, max));
        // Positions too large for a u64 are still positions past the end of any object.
        let huge = "99999999999999999999999";
        assert_eq!(r(&format!("bytes=0-{huge}"), 6).unwrap(), Part(0, 6));
        assert_eq!(r(&format!("bytes=2-{huge}"), 6).unwrap(), Part(2, 6));
        assert_eq!(r(&format!("bytes=-{huge}"), 6).unwrap(), Part(0, 6));
        assert!(r(&format!("bytes={huge}-"), 6).is_err());
        assert!(r(&format!("bytes={huge}-{huge}"), 6).is_err());
    }

    #[test]
    fn etags() {
        assert!(etag_matches("\"abc\"", "abc"));
        assert!(etag_matches("x, \"abc\"", "abc"));
        assert!(etag_matches("*", "abc"));
        assert!(!etag_matches("\"abd\"", "abc"));
    }
}
