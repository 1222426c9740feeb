//! Request headers of object writes, shared by PutObject, multipart and copy: the declared
//! body length (or none, for chunked transfers), the standard headers stored with an
//! object, and user metadata (kept as the bytes clients send).

use std::collections::BTreeMap;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;
use cairn_metadata::{WriteCondition, MAX_PART_NUMBER};
use cairn_objects::ObjectMetadata;
use cairn_sigv4::AuthError;
use futures::stream::BoxStream;
use futures::StreamExt;

use crate::auth::Caller;
use crate::error::{S3Error, S3ErrorCode};

/// A request body as the data path takes it.
pub(crate) type BodyStream = BoxStream<'static, Result<Bytes, AuthError>>;

/// The largest object a single PUT may upload (as S3: 5 GiB).
pub const MAX_PUT_SIZE: u64 = 5 << 30;

/// Standard headers stored with an object and returned on GET/HEAD.
const STORED_HEADERS: &[&str] = &[
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
];

pub(crate) fn header_str(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// The body length the client declared (`x-amz-decoded-content-length` for aws-chunked
/// bodies), refusing more than `max` bytes.
pub(crate) fn declared_length(
    caller: &Caller,
    headers: &HeaderMap,
    max: u64,
) -> Result<u64, S3Error> {
    let parse_len = |name: &str| -> Result<Option<u64>, S3Error> {
        header_str(headers, name)
            .map(|v| {
                v.trim().parse::<u64>().map_err(|_| {
                    S3Error::new(S3ErrorCode::InvalidArgument, format!("invalid {name}"))
                })
            })
            .transpose()
    };
    let declared = if caller.payload.is_streaming() {
        parse_len("x-amz-decoded-content-length")?
    } else {
        parse_len("content-length")?
    };
    let declared = declared.ok_or_else(|| {
        S3Error::new(
            S3ErrorCode::MissingContentLength,
            "You must provide the Content-Length HTTP header.",
        )
    })?;
    if declared > max {
        return Err(S3Error::new(
            S3ErrorCode::EntityTooLarge,
            "Your proposed upload exceeds the maximum allowed object size.",
        ));
    }
    Ok(declared)
}

/// [`declared_length`], or `None` for a body sent with `Transfer-Encoding: chunked` and no
/// length (its length is known once it has been read; [`limit_body`] bounds it).
pub(crate) fn declared_or_chunked(
    caller: &Caller,
    headers: &HeaderMap,
    max: u64,
) -> Result<Option<u64>, S3Error> {
    let chunked = header_str(headers, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let length_header = if caller.payload.is_streaming() {
        "x-amz-decoded-content-length"
    } else {
        "content-length"
    };
    if chunked && !headers.contains_key(length_header) {
        return Ok(None);
    }
    declared_length(caller, headers, max).map(Some)
}

/// Fails the body stream once it has carried more than `max` bytes.
pub(crate) fn limit_body(body: BodyStream, max: u64) -> BodyStream {
    let mut seen = 0u64;
    body.map(move |chunk| {
        let chunk = chunk?;
        seen += chunk.len() as u64;
        if seen > max {
            return Err(AuthError::InvalidRequest(
                "Your proposed upload exceeds the maximum allowed object size.".into(),
            ));
        }
        Ok(chunk)
    })
    .boxed()
}

/// The standard headers to store with an object (see [`STORED_HEADERS`]).
pub(crate) fn stored_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut stored = BTreeMap::new();
    for name in STORED_HEADERS {
        if let Some(v) = header_str(headers, name) {
            // aws-chunked is a transfer framing, not part of the object's encoding.
            if *name == "content-encoding" {
                let rest: Vec<&str> = v
                    .split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty() && !e.eq_ignore_ascii_case("aws-chunked"))
                    .collect();
                if !rest.is_empty() {
                    stored.insert(name.to_string(), rest.join(", "));
                }
                continue;
            }
            stored.insert(name.to_string(), v);
        }
    }
    stored
}

/// The `x-amz-meta-*` headers (at most 2 KiB in all, as S3). Values are kept as the bytes
/// the client sent (see [`meta_value`]).
pub(crate) fn user_meta(headers: &HeaderMap) -> Result<BTreeMap<String, String>, S3Error> {
    let mut user_meta = BTreeMap::new();
    for (name, value) in headers.iter() {
        if let Some(m) = name.as_str().strip_prefix("x-amz-meta-") {
            user_meta.insert(m.to_string(), meta_value(value.as_bytes()));
        }
    }
    if user_meta
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum::<usize>()
        > 2048
    {
        return Err(S3Error::new(
            S3ErrorCode::MetadataTooLarge,
            "Your metadata headers exceed the maximum allowed metadata size.",
        ));
    }
    Ok(user_meta)
}

/// A user metadata value as stored. Header values are bytes: UTF-8 text is kept as text;
/// anything else is read as Latin-1 (what botocore sends for non-ASCII values), one
/// character per byte.
pub(crate) fn meta_value(raw: &[u8]) -> String {
    match std::str::from_utf8(raw) {
        Ok(s) => s.to_string(),
        Err(_) => raw.iter().map(|&b| char::from(b)).collect(),
    }
}

/// The header value of a stored metadata value: Latin-1 when every character fits in it
/// (what botocore and other HTTP/1.1 clients decode header bytes as), UTF-8 otherwise.
pub(crate) fn meta_header(v: &str) -> Option<HeaderValue> {
    let bytes: Option<Vec<u8>> = v.chars().map(|c| u8::try_from(c).ok()).collect();
    match bytes {
        Some(b) => HeaderValue::from_bytes(&b).ok(),
        None => HeaderValue::from_str(v).ok(),
    }
}

/// The storage class a write goes to: its `x-amz-storage-class` (one of S3's class names,
/// else `InvalidStorageClass`; whether this cluster has a scheme for it is the object
/// service's to say), else `bucket_default` (the bucket's default class), else `STANDARD`.
pub(crate) fn storage_class(
    h: &HeaderMap,
    bucket_default: Option<&str>,
) -> Result<String, S3Error> {
    use cairn_metadata::storage_class::{is_s3_name, HEADER, STANDARD};
    match header_str(h, HEADER) {
        Some(v) if is_s3_name(v.trim()) => Ok(v.trim().to_string()),
        Some(_) => Err(crate::error::invalid_storage_class()),
        None => Ok(bucket_default.unwrap_or(STANDARD).to_string()),
    }
}

/// The conditional-write headers of a PutObject: `If-None-Match: *` or `If-Match: <etag>`.
pub(crate) fn write_condition(h: &HeaderMap) -> Result<WriteCondition, S3Error> {
    let none_match = header_str(h, "if-none-match");
    let if_match = header_str(h, "if-match");
    match (none_match.as_deref().map(str::trim), if_match) {
        (Some(_), Some(_)) => Err(S3Error::new(
            S3ErrorCode::InvalidRequest,
            "If-Match and If-None-Match cannot be combined on a write",
        )),
        (Some("*"), None) => Ok(WriteCondition::IfAbsent),
        (Some(etag), None) => Ok(WriteCondition::IfNoneMatch(
            etag.trim_matches('"').to_string(),
        )),
        (None, Some(etag)) => Ok(WriteCondition::IfMatch(
            etag.trim().trim_matches('"').to_string(),
        )),
        (None, None) => Ok(WriteCondition::Always),
    }
}

/// The content type, stored headers and user metadata a request gives a new object.
pub(crate) fn object_metadata(h: &HeaderMap) -> Result<ObjectMetadata, S3Error> {
    Ok(ObjectMetadata {
        content_type: header_str(h, "content-type"),
        headers: stored_headers(h),
        user_meta: user_meta(h)?,
    })
}

pub(crate) fn set(h: &mut HeaderMap, name: &str, value: &str) {
    if let (Ok(n), Ok(v)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        h.insert(n, v);
    }
}

pub(crate) fn parse_http_date(v: &str) -> Option<i64> {
    httpdate::parse_http_date(v.trim())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
}

pub(crate) fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',').map(str::trim).any(|t| {
        t == "*"
            || t.trim_matches('"') == etag
            || t.strip_prefix("W/").map(|w| w.trim_matches('"')) == Some(etag)
    })
}

/// Parses a `partNumber` (1..=10000).
pub(crate) fn parse_part_number(v: &str) -> Result<u32, S3Error> {
    v.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_PART_NUMBER).contains(n))
        .ok_or_else(|| {
            S3Error::new(
                S3ErrorCode::InvalidArgument,
                format!(
                    "Part number must be an integer between 1 and {MAX_PART_NUMBER}, inclusive"
                ),
            )
            .with("ArgumentName", "partNumber")
            .with("ArgumentValue", v)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_values_round_trip_for_latin1_clients() {
        // botocore sends é as the byte E9 and reads header bytes back as Latin-1.
        let stored = meta_value(b"Hello World\xe9");
        assert_eq!(stored, "Hello World\u{e9}");
        assert_eq!(meta_header(&stored).unwrap().as_bytes(), b"Hello World\xe9");
        // UTF-8 text is text: é comes back as Latin-1, CJK (no Latin-1 form) as UTF-8.
        assert_eq!(meta_value("caf\u{e9}".as_bytes()), "caf\u{e9}");
        assert_eq!(meta_header("caf\u{e9}").unwrap().as_bytes(), b"caf\xe9");
        assert_eq!(meta_header("日本").unwrap().as_bytes(), "日本".as_bytes());
        assert_eq!(meta_value(b"plain"), "plain");
        assert!(meta_header("a\nb").is_none());
    }
}
