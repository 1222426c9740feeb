//! Multipart uploads: CreateMultipartUpload, UploadPart, UploadPartCopy,
//! and AbortMultipartUpload (completion is in `multipart_complete`, listing in
//! `multipart_list`).
//!
//! Each part is streamed through the same body checks and `write_body` as a PutObject and
//! becomes its own inline or striped body; the metadata commands (`PutPart`,
//! `CompleteUpload`, `AbortUpload`) validate against the stored upload and queue dead shards
//! for GC. A part whose command fails (the upload was completed or aborted meanwhile) is
//! discarded at once.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cairn_metadata::{Command, ObjectAcl, PartRecord, StoredChecksum, UploadRecord};
use cairn_objects::WrittenBody;
use cairn_sigv4::ChecksumAlgorithm;
use cairn_types::clock::now_ms;
use cairn_types::{BucketName, ObjectKey};

use crate::access::Authorized;
use crate::auth::{self};
use crate::bucket::require_bucket;
use crate::copy::{copy_body, parse_copy_range, requested_algorithm, source_version_header};
use crate::error::{S3Error, S3ErrorCode};
use crate::object::{
    declared_length, header_str, parse_part_number, set, stored_headers, user_meta,
};
use crate::router::Query;
use crate::util::iso8601;
use crate::xml::XmlWriter;
use crate::{tagging, xml_response, ApiState};

/// The largest part (as S3: 5 GiB).
pub const MAX_PART_SIZE: u64 = 5 << 30;

/// A new upload id: the initiation time (so that ids of one key sort in initiation order)
/// and 128 random bits, in lowercase hex.
fn new_upload_id(now_ms: i64) -> String {
    format!("{:012x}{}", now_ms.max(0), uuid::Uuid::new_v4().simple())
}

/// The `uploadId` parameter; anything that is not one of Cairn's ids cannot name an upload.
pub(crate) fn upload_id_param(q: &Query) -> Result<&str, S3Error> {
    q.get("uploadId")
        .filter(|id| {
            !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric())
        })
        .ok_or_else(S3Error::no_such_upload)
}

pub(crate) async fn require_upload(
    st: &Arc<ApiState>,
    bucket: &BucketName,
    key: &ObjectKey,
    upload_id: &str,
) -> Result<UploadRecord, S3Error> {
    require_bucket(st, bucket).await?;
    st.meta()
        .get_upload(bucket, key, upload_id)
        .await?
        .ok_or_else(|| S3Error::no_such_upload().with("UploadId", upload_id))
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
    let now = now_ms();
    let upload = UploadRecord {
        upload_id: new_upload_id(now),
        initiated_ms: now,
        owner: acl.owner.clone(),
        content_type: header_str(h, "content-type"),
        headers: stored_headers(h),
        user_meta: user_meta(h)?,
        checksum_algorithm: algorithm.map(|a| a.name().to_string()),
        checksum_type: checksum_type.clone(),
        tags: tagging::from_header(h)?.unwrap_or_default(),
        acl: Some(acl),
    };
    let upload_id = upload.upload_id.clone();
    st.meta()
        .apply(Command::CreateUpload {
            bucket: bucket.clone(),
            key: key.clone(),
            upload,
        })
        .await?;
    let mut w = XmlWriter::new();
    w.open_root("InitiateMultipartUploadResult");
    w.elem("Bucket", bucket.as_str());
    w.elem("Key", key.as_str());
    w.elem("UploadId", &upload_id);
    w.close("InitiateMultipartUploadResult");
    let mut resp = xml_response(w.finish());
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

pub(crate) const COMPOSITE: &str = "COMPOSITE";
pub(crate) const FULL_OBJECT: &str = "FULL_OBJECT";

/// The CRC a checksum algorithm is (only CRCs can be combined into a full-object checksum).
pub(crate) fn crc_of(alg: ChecksumAlgorithm) -> Option<crc_fast::CrcAlgorithm> {
    match alg {
        ChecksumAlgorithm::Crc32 => Some(crc_fast::CrcAlgorithm::Crc32IsoHdlc),
        ChecksumAlgorithm::Crc32c => Some(crc_fast::CrcAlgorithm::Crc32Iscsi),
        ChecksumAlgorithm::Crc64Nvme => Some(crc_fast::CrcAlgorithm::Crc64Nvme),
        ChecksumAlgorithm::Sha1 | ChecksumAlgorithm::Sha256 => None,
    }
}

/// Records `written` as part `part_number`; on a definite failure the body is discarded.
async fn record_part(
    st: &Arc<ApiState>,
    bucket: &BucketName,
    key: &ObjectKey,
    upload_id: &str,
    part_number: u32,
    written: WrittenBody,
    checksum: Option<StoredChecksum>,
) -> Result<PartRecord, S3Error> {
    let part = PartRecord {
        part_number,
        size: written.size,
        etag: written.md5_hex.clone(),
        last_modified_ms: now_ms(),
        checksum,
        data: written.data.clone(),
    };
    let cmd = Command::PutPart {
        bucket: bucket.clone(),
        key: key.clone(),
        upload_id: upload_id.to_string(),
        part: part.clone(),
    };
    if let Err(e) = st.objects.apply_upload_command(cmd).await {
        // Kept when the outcome is unknown: the part may have been recorded (the orphan
        // scrub removes the shards if it was not).
        if !e.outcome_unknown() {
            st.objects.discard(written).await;
        }
        return Err(e.into());
    }
    Ok(part)
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
    let upload_alg = upload
        .checksum_algorithm
        .as_deref()
        .and_then(ChecksumAlgorithm::from_name);
    let (body, verified) = auth::body_stream_with(&caller, req, upload_alg)?;
    let written = st.objects.write_body(body).await?;
    if written.size != declared {
        st.objects.discard(written).await;
        return Err(S3Error::new(
            S3ErrorCode::IncompleteBody,
            "You did not provide the number of bytes specified by the Content-Length HTTP header.",
        ));
    }
    let checksum = verified
        .checksum()
        .map(|(algorithm, value)| StoredChecksum {
            algorithm: algorithm.to_string(),
            value,
        });
    if let (Some(want), Some(got)) = (upload_alg, &checksum) {
        if want.name() != got.algorithm {
            st.objects.discard(written).await;
            return Err(S3Error::new(
                S3ErrorCode::InvalidRequest,
                format!(
                    "Checksum Type mismatch occurred, expected checksum Type: {}, actual checksum Type: {}",
                    want.name().to_ascii_lowercase(),
                    got.algorithm.to_ascii_lowercase()
                ),
            ));
        }
    }
    let part = record_part(st, bucket, key, upload_id, part_number, written, checksum).await?;
    let mut resp = StatusCode::OK.into_response();
    set(resp.headers_mut(), "etag", &format!("\"{}\"", part.etag));
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
    let alg = upload
        .checksum_algorithm
        .as_deref()
        .and_then(ChecksumAlgorithm::from_name);
    let (written, checksum) = copy_body(st, src, range, alg).await?;
    let part = record_part(st, bucket, key, upload_id, part_number, written, checksum).await?;
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
    st.objects
        .apply_upload_command(Command::AbortUpload {
            bucket: bucket.clone(),
            key: key.clone(),
            upload_id: upload_id.to_string(),
        })
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_ids_sort_by_time_and_are_valid_params() {
        let (a, b) = (new_upload_id(1_000), new_upload_id(2_000));
        assert!(a < b);
        assert_eq!(a.len(), 44);
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
