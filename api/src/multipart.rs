//! Multipart uploads: CreateMultipartUpload, UploadPart, UploadPartCopy,
//! and AbortMultipartUpload (completion is in `multipart_complete`, listing in
//! `multipart_list`).
//!
//! Each part's body goes through the same checks as a PutObject's; the object service
//! stores it (`put_part`, `copy_part`) as its own inline or striped body and records it
//! against the stored upload. The checksum options of a new upload are decided here.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cairn_metadata::{ObjectAcl, StoredChecksum, UploadRecord};
use cairn_objects::{crc_of, NewUpload, PartTarget, COMPOSITE, FULL_OBJECT};
use cairn_sigv4::ChecksumAlgorithm;
use cairn_types::{BucketName, ObjectKey};

use crate::access::Authorized;
use crate::auth::{self};
use crate::copy::requested_algorithm;
use crate::copy_source::{parse_copy_range, source_version_header};
use crate::error::{S3Error, S3ErrorCode};
use crate::headers::{declared_length, header_str, object_metadata, parse_part_number, set};
use crate::query::Query;
use crate::util::iso8601;
use crate::xml::XmlWriter;
use crate::{tagging, xml_response, ApiState};

/// The largest part (as S3: 5 GiB).
pub const MAX_PART_SIZE: u64 = 5 << 30;

/// The `uploadId` parameter; anything that is not one of Cairn's ids cannot name an upload.
pub(crate) fn upload_id_param(q: &Query) -> Result<&str, S3Error> {
    q.get("uploadId")
        .filter(|id| {
            !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric())
        })
        .ok_or_else(S3Error::no_such_upload)
}

/// The upload a request names (NoSuchBucket, or NoSuchUpload naming it).
pub(crate) async fn require_upload(
    st: &Arc<ApiState>,
    bucket: &BucketName,
    key: &ObjectKey,
    upload_id: &str,
) -> Result<UploadRecord, S3Error> {
    st.objects
        .upload(bucket, key, upload_id)
        .await
        .map_err(|e| {
            S3Error::from(e)
                .for_bucket(bucket.as_str())
                .for_upload(upload_id)
        })
}

fn checksum_header(h: &mut HeaderMap, c: &StoredChecksum) {
    set(
        h,
        &format!("x-amz-checksum-{}", c.algorithm.to_ascii_lowercase()),
        &c.value,
    );
}

/// CreateMultipartUpload; `acl` (the initiator's, from its ACL headers) goes to the
/// completed object.
pub async fn create_upload(
    st: &Arc<ApiState>,
    a: &Authorized,
    key: &ObjectKey,
    h: &HeaderMap,
    acl: ObjectAcl,
) -> Result<Response, S3Error> {
    let bucket = &a.bucket()?.name;
    let algorithm = requested_algorithm(h)?;
    let checksum_type = checksum_type(algorithm, header_str(h, "x-amz-checksum-type"))?;
    let mut metadata = object_metadata(h)?;
    // The completed object's lock (a default retention counts from the upload's start).
    crate::object_lock::new_version_lock(a, h, false)?.store(&mut metadata.headers);
    cairn_objects::set_class(
        &mut metadata.headers,
        &crate::headers::storage_class(h, a.gate().storage_class.as_deref())?,
    );
    let protection = crate::sse::protection(st, h, a.gate().encryption.as_deref())?;
    let upload = st
        .objects
        .create_upload(NewUpload {
            bucket: bucket.clone(),
            key: key.clone(),
            metadata,
            tags: tagging::from_header(h)?.unwrap_or_default(),
            acl,
            checksum_algorithm: algorithm,
            checksum_type: checksum_type.clone(),
            protection: protection.clone(),
        })
        .await?;
    let upload_id = upload.upload_id;
    let mut w = XmlWriter::new();
    w.open_root("InitiateMultipartUploadResult");
    w.elem("Bucket", bucket.as_str());
    w.elem("Key", key.as_str());
    w.elem("UploadId", &upload_id);
    w.close("InitiateMultipartUploadResult");
    let mut resp = xml_response(w.finish());
    crate::sse::report_protection(resp.headers_mut(), &protection);
    if let Some(a) = algorithm {
        set(resp.headers_mut(), "x-amz-checksum-algorithm", a.name());
    }
    if let Some(t) = checksum_type {
        set(resp.headers_mut(), "x-amz-checksum-type", &t);
    }
    Ok(resp)
}

/// The checksum type of a new upload: CRC64NVME is always FULL_OBJECT, SHA-1/SHA-256 always
/// COMPOSITE, the CRC32s either (COMPOSITE unless asked otherwise).
fn checksum_type(
    algorithm: Option<ChecksumAlgorithm>,
    requested: Option<String>,
) -> Result<Option<String>, S3Error> {
    let requested = match requested.as_deref().map(str::trim) {
        None => None,
        Some(t) if t.eq_ignore_ascii_case("COMPOSITE") => Some(COMPOSITE),
        Some(t) if t.eq_ignore_ascii_case("FULL_OBJECT") => Some(FULL_OBJECT),
        Some(_) => {
            return Err(S3Error::new(
                S3ErrorCode::InvalidRequest,
                "Value for x-amz-checksum-type header is invalid.",
            ))
        }
    };
    let Some(alg) = algorithm else {
        if requested.is_some() {
            return Err(S3Error::new(
                S3ErrorCode::InvalidRequest,
                "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.",
            ));
        }
        return Ok(None);
    };
    let full_only = alg == ChecksumAlgorithm::Crc64Nvme;
    let composite_only = crc_of(alg).is_none();
    let chosen = match requested {
        Some(t) if (t == FULL_OBJECT && composite_only) || (t == COMPOSITE && full_only) => {
            return Err(S3Error::new(
                S3ErrorCode::InvalidRequest,
                format!(
                    "The {t} checksum type cannot be used with the {} checksum algorithm.",
                    alg.name().to_ascii_lowercase()
                ),
            ))
        }
        Some(t) => t,
        None if full_only => FULL_OBJECT,
        None => COMPOSITE,
    };
    Ok(Some(chosen.to_string()))
}

pub async fn upload_part(
    st: &Arc<ApiState>,
    a: &Authorized,
    key: &ObjectKey,
    q: &Query,
    req: Request,
) -> Result<Response, S3Error> {
    let caller = a.caller().clone();
    let bucket = &a.bucket()?.name;
    let part_number = parse_part_number(q.get("partNumber").unwrap_or(""))?;
    let upload_id = upload_id_param(q)?;
    let upload = require_upload(st, bucket, key, upload_id).await?;
    let declared = declared_length(&caller, req.headers(), MAX_PART_SIZE)?;
    // A part adds its bytes (one replacing a part of the same number may be refused here
    // at the very limit; the commit counts exactly).
    a.gate().check_quota(declared, 0, true)?;
    let upload_alg = upload
        .checksum_algorithm
        .as_deref()
        .and_then(ChecksumAlgorithm::from_name);
    let customer_key = crate::sse::customer_key(st, req.headers())?;
    let (body, verified) = auth::body_stream_with(&caller, req, upload_alg)?;
    let checksum = move || {
        verified
            .checksum()
            .map(|(algorithm, value)| StoredChecksum {
                algorithm: algorithm.to_string(),
                value,
            })
    };
    let target = PartTarget {
        bucket: bucket.clone(),
        key: key.clone(),
        upload_id: upload_id.to_string(),
        part_number,
        customer_key: customer_key.clone(),
    };
    let part = st
        .objects
        .put_part(target, &upload, declared, body, checksum)
        .await?;
    let mut resp = StatusCode::OK.into_response();
    set(resp.headers_mut(), "etag", &format!("\"{}\"", part.etag));
    crate::sse::report(resp.headers_mut(), &part.data, customer_key.as_deref());
    if let Some(c) = &part.checksum {
        checksum_header(resp.headers_mut(), c);
    }
    Ok(resp)
}

pub async fn upload_part_copy(
    st: &Arc<ApiState>,
    a: &Authorized,
    key: &ObjectKey,
    q: &Query,
    h: &HeaderMap,
) -> Result<Response, S3Error> {
    let _caller = a.caller();
    let bucket = &a.bucket()?.name;
    let part_number = parse_part_number(q.get("partNumber").unwrap_or(""))?;
    let upload_id = upload_id_param(q)?;
    let upload = require_upload(st, bucket, key, upload_id).await?;
    let source = a.source()?;
    let src = &source.rec;
    let range = parse_copy_range(h, src.size)?;
    if range.end - range.start > MAX_PART_SIZE {
        return Err(S3Error::new(
            S3ErrorCode::EntityTooLarge,
            "Your proposed upload exceeds the maximum allowed object size.",
        ));
    }
    let target = PartTarget {
        bucket: bucket.clone(),
        key: key.clone(),
        upload_id: upload_id.to_string(),
        part_number,
        customer_key: crate::sse::customer_key(st, h)?,
    };
    let customer_key = target.customer_key.clone();
    let source_key = crate::sse::source_key(st, h)?;
    let part = st
        .objects
        .copy_part(target, &upload, src, source_key, range)
        .await?;
    let mut w = XmlWriter::new();
    w.open_root("CopyPartResult");
    w.elem("LastModified", &iso8601(part.last_modified_ms));
    w.elem("ETag", &format!("\"{}\"", part.etag));
    if let Some(c) = &part.checksum {
        w.elem(&format!("Checksum{}", c.algorithm), &c.value);
    }
    w.close("CopyPartResult");
    let mut resp = xml_response(w.finish());
    source_version_header(resp.headers_mut(), source);
    crate::sse::report(resp.headers_mut(), &part.data, customer_key.as_deref());
    Ok(resp)
}

pub async fn abort_upload(
    st: &Arc<ApiState>,
    a: &Authorized,
    key: &ObjectKey,
    q: &Query,
) -> Result<Response, S3Error> {
    let bucket = &a.bucket()?.name;
    let upload_id = upload_id_param(q)?;
    st.objects.abort_upload(bucket, key, upload_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_ids_are_valid_params() {
        let a = cairn_objects::new_upload_id(1_000);
        let q = Query::parse(Some(&format!("uploadId={a}"))).unwrap();
        assert_eq!(upload_id_param(&q).unwrap(), a);
        for bad in ["uploadId=", "uploadId=a%00b", "uploadId=../x", "x=1"] {
            let q = Query::parse(Some(bad)).unwrap();
            assert_eq!(
                upload_id_param(&q).unwrap_err().code,
                S3ErrorCode::NoSuchUpload
            );
        }
    }

    #[test]
    fn checksum_types() {
        use ChecksumAlgorithm::*;
        let t = |a, r: Option<&str>| checksum_type(a, r.map(str::to_string));
        assert_eq!(t(Some(Crc32), None).unwrap().as_deref(), Some("COMPOSITE"));
        assert_eq!(
            t(Some(Crc64Nvme), None).unwrap().as_deref(),
            Some("FULL_OBJECT")
        );
        assert_eq!(
            t(Some(Crc32c), Some("full_object")).unwrap().as_deref(),
            Some("FULL_OBJECT")
        );
        assert_eq!(t(None, None).unwrap(), None);
        for (a, r) in [
            (Some(Sha256), Some("FULL_OBJECT")),
            (Some(Crc64Nvme), Some("COMPOSITE")),
            (Some(Crc32), Some("BOTH")),
            (None, Some("COMPOSITE")),
        ] {
            assert_eq!(t(a, r).unwrap_err().code, S3ErrorCode::InvalidRequest);
        }
    }
}
