//! The source of a CopyObject or UploadPartCopy: parsing `x-amz-copy-source` (URL-encoded
//! `bucket/key`, optionally `?versionId=`) and `x-amz-copy-source-range`, and the
//! `x-amz-copy-source-if-*` conditions.

use std::ops::Range;

use axum::http::HeaderMap;
use cairn_metadata::{ObjectRecord, VersionSel};
use cairn_types::{BucketName, ObjectKey};
use percent_encoding::percent_decode_str;

use crate::error::{S3Error, S3ErrorCode};
use crate::headers::{etag_matches, header_str, parse_http_date, set};
use crate::lookup::version_param;
use crate::query::Query;

/// The copy source a request names.
pub(crate) struct Source {
    pub bucket: BucketName,
    pub key: ObjectKey,
    pub rec: ObjectRecord,
    /// For `x-amz-copy-source-version-id`.
    pub version_id: Option<String>,
    /// The request named a version.
    pub by_version: bool,
}

/// Parses `x-amz-copy-source`: URL-encoded `bucket/key` (optionally with a leading `/`) and an
/// optional `?versionId=`.
pub(crate) fn parse_copy_source(
    h: &HeaderMap,
) -> Result<(BucketName, ObjectKey, VersionSel), S3Error> {
    let raw = header_str(h, "x-amz-copy-source").unwrap_or_default();
    let invalid = || {
        S3Error::new(
            S3ErrorCode::InvalidArgument,
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey",
        )
        .with("ArgumentName", "x-amz-copy-source")
        .with("ArgumentValue", raw.clone())
    };
    let (path, query) = match raw.trim().split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (raw.trim().to_string(), None),
    };
    let sel = version_param(&Query::parse(query.as_deref())?)?;
    let path = path.strip_prefix('/').unwrap_or(&path);
    let decoded = percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| invalid())?
        .into_owned();
    let (b, k) = decoded.split_once('/').ok_or_else(invalid)?;
    if b.is_empty() || k.is_empty() {
        return Err(invalid());
    }
    Ok((BucketName::new(b)?, ObjectKey::new(k)?, sel))
}

/// Evaluates the `x-amz-copy-source-if-*` headers against the source; a failed condition is
/// `PreconditionFailed`. As S3: a matching If-Match overrides a failing If-Unmodified-Since,
/// and a failing If-None-Match is decisive over If-Modified-Since.
pub(crate) fn check_copy_conditions(h: &HeaderMap, src: &ObjectRecord) -> Result<(), S3Error> {
    let modified = src.last_modified_ms.div_euclid(1000);
    let failed = || {
        Err(S3Error::new(
            S3ErrorCode::PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold",
        ))
    };
    let date = |name: &str| header_str(h, name).and_then(|v| parse_http_date(&v));
    match header_str(h, "x-amz-copy-source-if-match") {
        Some(m) if !etag_matches(&m, &src.etag) => return failed(),
        Some(_) => {}
        None => {
            if date("x-amz-copy-source-if-unmodified-since").is_some_and(|t| modified > t) {
                return failed();
            }
        }
    }
    match header_str(h, "x-amz-copy-source-if-none-match") {
        Some(m) if etag_matches(&m, &src.etag) => return failed(),
        Some(_) => {}
        None => {
            if date("x-amz-copy-source-if-modified-since").is_some_and(|t| modified <= t) {
                return failed();
            }
        }
    }
    Ok(())
}

/// Sets `x-amz-copy-source-version-id` when the source has a version id.
pub(crate) fn source_version_header(h: &mut HeaderMap, src: &Source) {
    if let Some(v) = &src.version_id {
        set(h, "x-amz-copy-source-version-id", v);
    }
}

/// Parses `x-amz-copy-source-range: bytes=first-last` (both inclusive, within the source).
pub(crate) fn parse_copy_range(h: &HeaderMap, size: u64) -> Result<Range<u64>, S3Error> {
    let Some(v) = header_str(h, "x-amz-copy-source-range") else {
        return Ok(0..size);
    };
    let syntax = || {
        S3Error::new(
            S3ErrorCode::InvalidArgument,
            "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy",
        )
        .with("ArgumentName", "x-amz-copy-source-range")
        .with("ArgumentValue", v.clone())
    };
    let (a, b) = v
        .trim()
        .strip_prefix("bytes=")
        .and_then(|r| r.split_once('-'))
        .ok_or_else(syntax)?;
    let (a, b) = match (a.trim().parse::<u64>(), b.trim().parse::<u64>()) {
        (Ok(a), Ok(b)) if a <= b => (a, b),
        _ => return Err(syntax()),
    };
    if b >= size {
        return Err(S3Error::new(
            S3ErrorCode::InvalidRange,
            "The requested range is not satisfiable",
        )
        .with("RangeRequested", v.clone())
        .with("ActualObjectSize", size.to_string()));
    }
    Ok(a..b + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn copy_sources() {
        let src = |v: &str| parse_copy_source(&headers(&[("x-amz-copy-source", v)]));
        let (b, k, v) = src("/bkt/a%20b/c%3Fd").unwrap();
        assert_eq!((b.as_str(), k.as_str()), ("bkt", "a b/c?d"));
        assert_eq!(v, VersionSel::Latest);
        let (b, k, v) = src("bkt/k?versionId=null").unwrap();
        assert_eq!((b.as_str(), k.as_str()), ("bkt", "k"));
        assert_eq!(v, VersionSel::Id(None));
        let (_, _, v) = src("bkt/k?versionId=v1").unwrap();
        assert_eq!(v, VersionSel::Id(Some("v1".into())));
        assert_eq!(
            src("bkt/k?versionId=").unwrap_err().code,
            S3ErrorCode::InvalidArgument
        );
        for bad in ["bkt", "bkt/", "/", "", "%ff/k"] {
            assert_eq!(
                src(bad).unwrap_err().code,
                S3ErrorCode::InvalidArgument,
                "{bad}"
            );
        }
    }

    #[test]
    fn copy_ranges() {
        let r = |v: &str, size| parse_copy_range(&headers(&[("x-amz-copy-source-range", v)]), size);
        assert_eq!(r("bytes=0-9", 100).unwrap(), 0..10);
        assert_eq!(r("bytes=99-99", 100).unwrap(), 99..100);
        assert_eq!(
            r("bytes=5-100", 100).unwrap_err().code,
            S3ErrorCode::InvalidRange
        );
        for bad in ["bytes=5-2", "bytes=-5", "bytes=1-", "0-5", "bytes=a-b"] {
            assert_eq!(r(bad, 100).unwrap_err().code, S3ErrorCode::InvalidArgument);
        }
        assert_eq!(parse_copy_range(&HeaderMap::new(), 7).unwrap(), 0..7);
        // No overflow at the limits of u64: a last byte past the source is InvalidRange.
        let max = u64::MAX;
        assert_eq!(
            r(&format!("bytes=0-{max}"), 6).unwrap_err().code,
            S3ErrorCode::InvalidRange
        );
        assert_eq!(
            r(&format!("bytes={max}-{max}"), max).unwrap_err().code,
            S3ErrorCode::InvalidRange
        );
        assert_eq!(
            r(&format!("bytes={}-{}", max - 2, max - 1), max).unwrap(),
            max - 2..max
        );
    }

    #[test]
    fn copy_conditions() {
        let rec = ObjectRecord {
            size: 0,
            etag: "abc".into(),
            last_modified_ms: 1_700_000_000_000,
            content_type: None,
            headers: Default::default(),
            user_meta: Default::default(),
            checksum: None,
            data: cairn_metadata::ObjectData::Inline(Vec::new()),
            version_id: None,
            tags: Default::default(),
            acl: None,
            upload_id: None,
        };
        let before = "Tue, 14 Nov 2023 00:00:00 GMT";
        let after = "Wed, 15 Nov 2023 00:00:00 GMT";
        let ok = |pairs: &[(&'static str, &str)]| check_copy_conditions(&headers(pairs), &rec);
        assert!(ok(&[]).is_ok());
        assert!(ok(&[("x-amz-copy-source-if-match", "\"abc\"")]).is_ok());
        assert!(ok(&[("x-amz-copy-source-if-match", "\"abd\"")]).is_err());
        assert!(ok(&[("x-amz-copy-source-if-none-match", "\"abc\"")]).is_err());
        assert!(ok(&[("x-amz-copy-source-if-none-match", "\"x\"")]).is_ok());
        assert!(ok(&[("x-amz-copy-source-if-unmodified-since", before)]).is_err());
        assert!(ok(&[("x-amz-copy-source-if-unmodified-since", after)]).is_ok());
        assert!(ok(&[("x-amz-copy-source-if-modified-since", after)]).is_err());
        assert!(ok(&[("x-amz-copy-source-if-modified-since", before)]).is_ok());
        // A matching If-Match wins over a failing If-Unmodified-Since.
        assert!(ok(&[
            ("x-amz-copy-source-if-match", "\"abc\""),
            ("x-amz-copy-source-if-unmodified-since", before)
        ])
        .is_ok());
    }
}
