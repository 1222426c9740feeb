//! CopyObject: the metadata and tagging directives (COPY, the default, or REPLACE) and the
//! requested checksum; the copy itself (streamed, never whole in memory; a new single-body
//! object whose ETag is the MD5 of its bytes) is the object service's `copy_object`. The
//! source, checked when the request was authorized, is parsed in `copy_source`.

use std::sync::Arc;

use axum::http::HeaderMap;
use axum::response::Response;
use cairn_metadata::ObjectAcl;
use cairn_objects::CopyObject;
use cairn_sigv4::ChecksumAlgorithm;
use cairn_types::ObjectKey;

use crate::access::Authorized;
use crate::copy_source::source_version_header;
use crate::error::{S3Error, S3ErrorCode};
use crate::headers::{header_str, object_metadata, set, MAX_PUT_SIZE};
use crate::util::iso8601;
use crate::xml::XmlWriter;
use crate::{tagging, xml_response, ApiState};

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
    let storage_class = crate::headers::storage_class(h, a.gate().storage_class.as_deref())?;
    let changes_class = h.contains_key(cairn_metadata::storage_class::HEADER);
    let protection = crate::sse::protection(st, h, a.gate().encryption.as_deref())?;
    let source_key = crate::sse::source_key(st, h)?;
    let changes_encryption = h.contains_key(crate::sse::SSE)
        || matches!(protection, cairn_objects::Protection::Customer(_));
    if source.bucket == *bucket
        && source.key == *key
        && !replace
        && !changes_class
        && !changes_encryption
        && !source.by_version
    {
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
    a.gate().check_quota(src.size, 1, a.gate().versioned())?;
    let copy = CopyObject {
        bucket: bucket.clone(),
        key: key.clone(),
        source: src.clone(),
        metadata: if replace {
            Some(object_metadata(h)?)
        } else {
            None
        },
        tags: if replace_tags {
            Some(tagging::from_header(h)?.unwrap_or_default())
        } else {
            None
        },
        acl,
        checksum: requested_algorithm(h)?,
        lock: crate::object_lock::new_version_lock(a, h, false)?,
        storage_class,
        protection: protection.clone(),
        source_key,
    };
    let stored = st.objects.copy_object(copy).await?;
    let (etag, modified, checksum) = (&stored.etag, stored.last_modified_ms, &stored.checksum);
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
    crate::sse::report_protection(resp.headers_mut(), &protection);
    if let Some(v) = &stored.version_id {
        set(resp.headers_mut(), "x-amz-version-id", v);
    }
    Ok(resp)
}
