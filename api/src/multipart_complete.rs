//! CompleteMultipartUpload: validates the listed parts against the stored ones, computes
//! the object's checksum from the part checksums (COMPOSITE or FULL_OBJECT), and commits
//! the `CompleteUpload` command (with the request's `If-Match` / `If-None-Match`). A
//! completion repeated after it succeeded answers with the object it made.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::Request;
use axum::response::Response;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use cairn_metadata::{
    Command, CommandOutput, CompletePart, ObjectData, PartRecord, StoredChecksum, UploadRecord,
    WriteCondition, MAX_PART_NUMBER,
};
use cairn_sigv4::{ChecksumAlgorithm, Checksummer};
use cairn_types::clock::now_ms;
use cairn_types::{BucketName, ObjectKey};

use crate::access::Authorized;
use crate::auth::{read_small_body, Caller};
use crate::error::{S3Error, S3ErrorCode};
use crate::multipart::{crc_of, upload_id_param, COMPOSITE, FULL_OBJECT};
use crate::object::{header_str, set, write_condition};
use crate::router::Query;
use crate::versioning::new_version_id;
use crate::xml::{self, XmlWriter};
use crate::{xml_response, ApiState};

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
    a: &Authorized,
    key: &ObjectKey,
    q: &Query,
    mut req: Request,
) -> Result<Response, S3Error> {
    let caller = a.caller();
    let bucket = &a.bucket()?.name;
    let upload_id = upload_id_param(q)?.to_string();
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
