//! CopyObject, and the copy-source side shared with UploadPartCopy: parsing
//! `x-amz-copy-source` (and `x-amz-copy-source-range`), the `x-amz-copy-source-if-*`
//! conditions, and streaming the source through the data path's `read` into `write_body`, so
//! no copy ever holds a whole object in memory. A copy is a new single-body object: its ETag
//! is the MD5 of its bytes, whatever the source was. The source may name a version
//! (`?versionId=`); tags follow `x-amz-tagging-directive` (COPY, the default, or REPLACE).

use std::ops::Range;
use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;
use axum::response::Response;
use cairn_metadata::{ObjectAcl, ObjectRecord, StoredChecksum, VersionSel};
use cairn_objects::WrittenBody;
use cairn_sigv4::{ChecksumAlgorithm, Checksummer};
use cairn_types::clock::now_ms;
use cairn_types::{BucketName, ObjectKey};
use futures::TryStreamExt;
use percent_encoding::percent_decode_str;

use crate::access::Authorized;
use crate::error::{S3Error, S3ErrorCode};
use crate::object::set;
use crate::object::{
    etag_matches, header_str, parse_http_date, stored_headers, user_meta, MAX_PUT_SIZE,
};
use crate::router::Query;
use crate::util::iso8601;
use crate::versioning::{new_version_id, version_param};
use crate::xml::XmlWriter;
use crate::{tagging, xml_response, ApiState};

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

/// Streams `range` of `src` into a new body, computing `checksum` on the way.
pub(crate) async fn copy_body(
    st: &Arc<ApiState>,
    src: &ObjectRecord,
    range: Range<u64>,
    checksum: Option<ChecksumAlgorithm>,
) -> Result<(WrittenBody, Option<StoredChecksum>), S3Error> {
    let summer = checksum.map(|a| Arc::new(Mutex::new(Checksummer::new(a))));
    let feed = summer.clone();
    let stream = st.objects.read(src, range).inspect_ok(move |b| {
        if let Some(s) = &feed {
            s.lock().unwrap_or_else(|e| e.into_inner()).update(b);
        }
    });
    let written = st.objects.write_body(stream).await?;
    let checksum = match (summer, checksum) {
        (Some(s), Some(alg)) => {
            let mut guard = s.lock().unwrap_or_else(|e| e.into_inner());
            let done = std::mem::replace(&mut *guard, Checksummer::new(alg));
            Some(StoredChecksum {
                algorithm: alg.name().to_string(),
                value: done.finalize(),
            })
        }
        _ => None,
    };
    Ok((written, checksum))
}

/// The checksum algorithm a request asks for (`x-amz-checksum-algorithm`).
pub(crate) fn requested_algorithm(h: &HeaderMap) -> Result<Option<ChecksumAlgorithm>, S3Error> {
    header_str(h, "x-amz-checksum-algorithm")
        .map(|v| {
            ChecksumAlgorithm::from_name(&v).ok_or_else(|| {
                S3Error::new(
                    S3ErrorCode::InvalidRequest,
                    "Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]",
                )
            })
        })
        .transpose()
}

/// CopyObject into `bucket/key`; the copy gets `acl` (its writer's, from the request's ACL
/// headers), never the source's.
pub async fn copy_object(
    st: &Arc<ApiState>,
    a: &Authorized,
    key: &ObjectKey,
    h: &HeaderMap,
    acl: ObjectAcl,
) -> Result<Response, S3Error> {
    let bucket = &a.bucket()?.name;
    let replace = match header_str(h, "x-amz-metadata-directive")
        .as_deref()
        .map(str::trim)
    {
        None => false,
        Some(d) if d.eq_ignore_ascii_case("COPY") => false,
        Some(d) if d.eq_ignore_ascii_case("REPLACE") => true,
        Some(_) => {
            return Err(
                S3Error::new(S3ErrorCode::InvalidArgument, "Unknown metadata directive.")
                    .with("ArgumentName", "x-amz-metadata-directive"),
            )
        }
    };
    let replace_tags = match header_str(h, "x-amz-tagging-directive")
        .as_deref()
        .map(str::trim)
    {
        None => false,
        Some(d) if d.eq_ignore_ascii_case("COPY") => false,
        Some(d) if d.eq_ignore_ascii_case("REPLACE") => true,
        Some(_) => {
            return Err(
                S3Error::new(S3ErrorCode::InvalidArgument, "Unknown tagging directive.")
                    .with("ArgumentName", "x-amz-tagging-directive"),
            )
        }
    };
    let source = a.source()?;
    let src = &source.rec;
    if source.bucket == *bucket && source.key == *key && !replace && !source.by_version {
        return Err(S3Error::new(
            S3ErrorCode::InvalidRequest,
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.",
        ));
    }
    if src.size > MAX_PUT_SIZE {
        return Err(S3Error::new(
            S3ErrorCode::InvalidRequest,
            format!("The specified copy source is larger than the maximum allowable size for a copy source: {MAX_PUT_SIZE}"),
        ));
    }
    let (content_type, headers, meta) = if replace {
        (
            header_str(h, "content-type"),
            stored_headers(h),
            user_meta(h)?,
        )
    } else {
        (
            src.content_type.clone(),
            src.headers.clone(),
            src.user_meta.clone(),
        )
    };
    let algorithm = match requested_algorithm(h)? {
        Some(a) => Some(a),
        None => src
            .checksum
            .as_ref()
            .and_then(|c| ChecksumAlgorithm::from_name(&c.algorithm)),
    };
    let tags = if replace_tags {
        tagging::from_header(h)?.unwrap_or_default()
    } else {
        src.tags.clone()
    };
    let (written, checksum) = copy_body(st, src, 0..src.size, algorithm).await?;
    let now = now_ms();
    let record = ObjectRecord {
        size: written.size,
        etag: written.md5_hex.clone(),
        last_modified_ms: now,
        content_type,
        headers,
        user_meta: meta,
        checksum: checksum.clone(),
        data: written.data,
        version_id: Some(new_version_id(now)),
        tags,
        acl: Some(acl),
        upload_id: None,
    };
    let (etag, modified) = (record.etag.clone(), record.last_modified_ms);
    let stored = st.objects.commit(bucket, key, record).await?;
    let mut w = XmlWriter::new();
    w.open_root("CopyObjectResult");
    w.elem("LastModified", &iso8601(modified));
    w.elem("ETag", &format!("\"{etag}\""));
    if let Some(c) = &checksum {
        w.elem(&format!("Checksum{}", c.algorithm), &c.value);
    }
    w.close("CopyObjectResult");
    let mut resp = xml_response(w.finish());
    source_version_header(resp.headers_mut(), source);
    if let Some(v) = &stored.version_id {
        set(resp.headers_mut(), "x-amz-version-id", v);
    }
    Ok(resp)
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
