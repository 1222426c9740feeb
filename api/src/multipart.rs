//! Multipart uploads: CreateMultipartUpload, UploadPart, UploadPartCopy,
//! CompleteMultipartUpload and AbortMultipartUpload (listing is in `multipart_list`).
//!
//! Each part is streamed through the same body checks and `write_body` as a PutObject and
//! becomes its own inline or striped body; the metadata commands (`PutPart`,
//! `CompleteUpload`, `AbortUpload`) validate against the stored upload and queue dead shards
//! for GC. A part whose command fails (the upload was completed or aborted meanwhile) is
//! discarded at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use cairn_metadata::{
    Command, CommandOutput, CompletePart, ObjectAcl, ObjectData, PartRecord, StoredChecksum,
    UploadRecord, WriteCondition, MAX_PART_NUMBER,
};
use cairn_objects::WrittenBody;
use cairn_sigv4::{ChecksumAlgorithm, Checksummer};
use cairn_types::{BucketName, ObjectKey};

use crate::auth::{self, read_small_body, Caller};
use crate::bucket::require_bucket;
use crate::copy::{
    copy_body, load_source, parse_copy_range, requested_algorithm, source_version_header,
};
use crate::error::{S3Error, S3ErrorCode};
use crate::object::{
    declared_length, header_str, parse_part_number, set, stored_headers, user_meta, write_condition,
};
use crate::router::Query;
use crate::util::{iso8601, now_ms};
use crate::versioning::new_version_id;
use crate::xml::{self, XmlWriter};
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
    bucket: &BucketName,
    key: &ObjectKey,
    h: &HeaderMap,
    acl: ObjectAcl,
) -> Result<Response, S3Error> {
    require_bucket(st, bucket).await?;
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

const COMPOSITE: &str = "COMPOSITE";
const FULL_OBJECT: &str = "FULL_OBJECT";

/// The CRC a checksum algorithm is (only CRCs can be combined into a full-object checksum).
fn crc_of(alg: ChecksumAlgorithm) -> Option<crc_fast::CrcAlgorithm> {
    match alg {
        ChecksumAlgorithm::Crc32 => Some(crc_fast::CrcAlgorithm::Crc32IsoHdlc),
        ChecksumAlgorithm::Crc32c => Some(crc_fast::CrcAlgorithm::Crc32Iscsi),
        ChecksumAlgorithm::Crc64Nvme => Some(crc_fast::CrcAlgorithm::Crc64Nvme),
        ChecksumAlgorithm::Sha1 | ChecksumAlgorithm::Sha256 => None,
    }
}

/// Records `written` as part `part_number`; on failure the body is discarded.
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
        st.objects.discard(written).await;
        return Err(e.into());
    }
    Ok(part)
}

pub async fn upload_part(
    st: &Arc<ApiState>,
    caller: Caller,
    bucket: &BucketName,
    key: &ObjectKey,
    q: &Query,
    req: Request,
) -> Result<Response, S3Error> {
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
    caller: &Caller,
    bucket: &BucketName,
    key: &ObjectKey,
    q: &Query,
    h: &HeaderMap,
) -> Result<Response, S3Error> {
    let part_number = parse_part_number(q.get("partNumber").unwrap_or(""))?;
    let upload_id = upload_id_param(q)?;
    let upload = require_upload(st, bucket, key, upload_id).await?;
    let source = load_source(st, caller, h).await?;
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
    source_version_header(resp.headers_mut(), &source);
    Ok(resp)
}

/// The object's checksum from the listed parts' checksums (`sizes` are the parts' lengths),
/// when the upload asked for an algorithm and every listed part has that checksum: COMPOSITE
/// is `base64(checksum of the concatenated raw part checksums)-N`, FULL_OBJECT the CRC of the
/// whole object, combined from the part CRCs.
fn object_checksum(
    upload: &UploadRecord,
    listed: &[CompletePart],
    sizes: &[u64],
) -> Option<StoredChecksum> {
    let alg = upload
        .checksum_algorithm
        .as_deref()
        .and_then(ChecksumAlgorithm::from_name)?;
    let raws: Vec<Vec<u8>> = listed
        .iter()
        .map(|p| p.checksum.as_deref().and_then(|v| alg.decode_value(v)))
        .collect::<Option<_>>()?;
    let value = if upload.checksum_type.as_deref() == Some(FULL_OBJECT) {
        let crc = crc_of(alg)?;
        let mut acc: Option<u64> = None;
        for (raw, size) in raws.iter().zip(sizes) {
            let v = raw.iter().fold(0u64, |a, b| (a << 8) | u64::from(*b));
            acc = Some(match acc {
                None => v,
                Some(a) => crc_fast::checksum_combine(crc, a, v, *size),
            });
        }
        let full = acc?.to_be_bytes();
        BASE64.encode(&full[8 - alg.digest_len()..])
    } else {
        let mut summer = Checksummer::new(alg);
        for raw in &raws {
            summer.update(raw);
        }
        format!("{}-{}", BASE64.encode(summer.finalize_raw()), listed.len())
    };
    Some(StoredChecksum {
        algorithm: alg.name().to_string(),
        value,
    })
}

pub async fn complete_upload(
    st: &Arc<ApiState>,
    caller: &Caller,
    bucket: &BucketName,
    key: &ObjectKey,
    q: &Query,
    mut req: Request,
) -> Result<Response, S3Error> {
    let upload_id = upload_id_param(q)?.to_string();
    require_bucket(st, bucket).await?;
    let Some(upload) = st.meta().get_upload(bucket, key, &upload_id).await? else {
        return complete_again(st, caller, bucket, key, upload_id, req).await;
    };
    // `x-amz-checksum-*` on a completion is the whole object's checksum, not the XML body's.
    let mut claimed = None;
    for alg in ChecksumAlgorithm::ALL {
        if let Some(v) = req.headers_mut().remove(alg.header_name()) {
            claimed = Some((
                alg,
                String::from_utf8_lossy(v.as_bytes()).trim().to_string(),
            ));
        }
    }
    let headers = req.headers().clone();
    let condition = write_condition(&headers)?;
    let body = read_small_body(caller, req, 4 << 20).await?;
    let parsed: xml::CompleteMultipartUpload =
        xml::parse(&body).ok_or_else(S3Error::malformed_xml)?;
    if parsed.parts.is_empty() || parsed.parts.len() > MAX_PART_NUMBER as usize {
        return Err(S3Error::malformed_xml());
    }
    // The stored parts' checksums, to build the object's checksum from; the command checks
    // that they are still the ones stored.
    let (stored, _) = st
        .meta()
        .list_parts(bucket, key, &upload_id, 0, MAX_PART_NUMBER as usize)
        .await?;
    let stored: BTreeMap<u32, PartRecord> =
        stored.into_iter().map(|p| (p.part_number, p)).collect();
    let mut listed = Vec::with_capacity(parsed.parts.len());
    let mut sizes = Vec::with_capacity(parsed.parts.len());
    for p in &parsed.parts {
        sizes.push(stored.get(&p.part_number).map_or(0, |s| s.size));
        let have = stored.get(&p.part_number).and_then(|s| s.checksum.as_ref());
        if let Some((alg, value)) = p.checksum() {
            if have.is_some_and(|c| c.algorithm != alg || c.value != value) {
                return Err(S3Error::new(
                    S3ErrorCode::InvalidPart,
                    format!(
                        "The checksum of part {} does not match the one uploaded.",
                        p.part_number
                    ),
                ));
            }
        }
        listed.push(CompletePart {
            part_number: p.part_number,
            etag: p.etag.trim().trim_matches('"').to_string(),
            checksum: have.map(|c| c.value.clone()),
        });
    }
    // With a part missing, the command answers InvalidPart instead.
    let all_present = parsed
        .parts
        .iter()
        .all(|p| stored.contains_key(&p.part_number));
    if let Some(v) = header_str(&headers, "x-amz-mp-object-size").filter(|_| all_present) {
        let total: u64 = sizes.iter().sum();
        if v.trim().parse::<u64>().ok() != Some(total) {
            return Err(S3Error::new(
                S3ErrorCode::InvalidRequest,
                format!("The provided x-amz-mp-object-size header value {v} does not match the object size {total}"),
            ));
        }
    }
    let checksum = object_checksum(&upload, &listed, &sizes);
    if let (Some((alg, want)), Some(have)) = (&claimed, &checksum) {
        let bare = have.value.split('-').next().unwrap_or_default();
        if alg.name() == have.algorithm && want != &have.value && want != bare {
            return Err(S3Error::new(
                S3ErrorCode::BadDigest,
                format!(
                    "The {} you specified did not match the calculated checksum.",
                    alg.header_name()
                ),
            ));
        }
    }
    let now = now_ms();
    let out = st
        .objects
        .apply_upload_command(Command::CompleteUpload {
            bucket: bucket.clone(),
            key: key.clone(),
            upload_id: upload_id.clone(),
            parts: listed,
            last_modified_ms: now,
            checksum,
            version_id: new_version_id(now),
            condition,
        })
        .await?;
    completed(bucket, key, out)
}

/// A completion of an upload that is gone: the metadata command answers with the object it
/// made when the same parts complete it again (S3 lets a client retry a completion whose
/// answer it lost), NoSuchUpload otherwise.
async fn complete_again(
    st: &Arc<ApiState>,
    caller: &Caller,
    bucket: &BucketName,
    key: &ObjectKey,
    upload_id: String,
    mut req: Request,
) -> Result<Response, S3Error> {
    // As in a first completion, `x-amz-checksum-*` names the object, not the XML body.
    for alg in ChecksumAlgorithm::ALL {
        req.headers_mut().remove(alg.header_name());
    }
    let body = read_small_body(caller, req, 4 << 20).await?;
    let parsed: xml::CompleteMultipartUpload =
        xml::parse(&body).ok_or_else(S3Error::malformed_xml)?;
    let parts = parsed
        .parts
        .iter()
        .map(|p| CompletePart {
            part_number: p.part_number,
            etag: p.etag.trim().trim_matches('"').to_string(),
            checksum: None,
        })
        .collect();
    let now = now_ms();
    let out = st
        .objects
        .apply_upload_command(Command::CompleteUpload {
            bucket: bucket.clone(),
            key: key.clone(),
            upload_id: upload_id.clone(),
            parts,
            last_modified_ms: now,
            checksum: None,
            version_id: new_version_id(now),
            condition: WriteCondition::Always,
        })
        .await
        .map_err(|e| S3Error::from(e).with("UploadId", upload_id))?;
    completed(bucket, key, out)
}

/// The CompleteMultipartUploadResult for the object a completion made.
fn completed(
    bucket: &BucketName,
    key: &ObjectKey,
    out: CommandOutput,
) -> Result<Response, S3Error> {
    let CommandOutput::Completed(rec) = out else {
        return Err(S3Error::internal("CompleteUpload returned no object"));
    };
    debug_assert!(matches!(rec.data, ObjectData::Parts(_)));
    let mut w = XmlWriter::new();
    w.open_root("CompleteMultipartUploadResult");
    w.elem(
        "Location",
        &format!("/{}/{}", bucket.as_str(), key.as_str()),
    );
    w.elem("Bucket", bucket.as_str());
    w.elem("Key", key.as_str());
    w.elem("ETag", &format!("\"{}\"", rec.etag));
    if let Some(c) = &rec.checksum {
        w.elem(&format!("Checksum{}", c.algorithm), &c.value);
        let kind = if c.value.contains('-') {
            COMPOSITE
        } else {
            FULL_OBJECT
        };
        w.elem("ChecksumType", kind);
    }
    w.close("CompleteMultipartUploadResult");
    let mut resp = xml_response(w.finish());
    if let Some(v) = &rec.version_id {
        set(resp.headers_mut(), "x-amz-version-id", v);
    }
    Ok(resp)
}

pub async fn abort_upload(
    st: &Arc<ApiState>,
    bucket: &BucketName,
    key: &ObjectKey,
    q: &Query,
) -> Result<Response, S3Error> {
    let upload_id = upload_id_param(q)?;
    require_bucket(st, bucket).await?;
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
    fn composite_checksums() {
        let mut upload = UploadRecord {
            upload_id: "u".into(),
            initiated_ms: 0,
            owner: "o".into(),
            content_type: None,
            headers: Default::default(),
            user_meta: Default::default(),
            checksum_algorithm: Some("CRC32".into()),
            checksum_type: None,
            tags: Default::default(),
            acl: None,
        };
        let part = |n, data: &[u8]| {
            let mut s = Checksummer::new(ChecksumAlgorithm::Crc32);
            s.update(data);
            CompletePart {
                part_number: n,
                etag: "e".into(),
                checksum: Some(s.finalize()),
            }
        };
        let listed = [part(1, b"hello "), part(2, b"world")];
        let sizes = [6, 5];
        let got = object_checksum(&upload, &listed, &sizes).unwrap();
        let mut want = Checksummer::new(ChecksumAlgorithm::Crc32);
        for p in &listed {
            want.update(&BASE64.decode(p.checksum.as_ref().unwrap()).unwrap());
        }
        assert_eq!(got.value, format!("{}-2", want.finalize()));
        assert_eq!(got.algorithm, "CRC32");
        // A part without a checksum, or a full-object upload: no composite.
        let mut missing = listed.to_vec();
        missing[1].checksum = None;
        assert!(object_checksum(&upload, &missing, &sizes).is_none());
        // FULL_OBJECT: the CRC of the whole object, combined from the parts.
        upload.checksum_type = Some("FULL_OBJECT".into());
        let mut whole = Checksummer::new(ChecksumAlgorithm::Crc32);
        whole.update(b"hello world");
        let got = object_checksum(&upload, &listed, &sizes).unwrap();
        assert_eq!(got.value, whole.finalize());
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
