//! CompleteMultipartUpload: reads the request (the listed parts, the claimed object checksum
//! and size, the write condition) and answers with the object the object service's
//! `complete_upload` made — which validates the parts, computes the object's checksum and
//! commits. A completion repeated after it succeeded answers with the object it made.

use std::sync::Arc;

use axum::extract::Request;
use axum::response::Response;
use cairn_metadata::{ObjectRecord, MAX_PART_NUMBER};
use cairn_objects::{CompleteUpload, ListedPart, COMPOSITE, FULL_OBJECT};
use cairn_sigv4::ChecksumAlgorithm;
use cairn_types::{BucketName, ObjectKey};

use crate::access::Authorized;
use crate::auth::read_small_body;
use crate::error::S3Error;
use crate::headers::{header_str, set, write_condition};
use crate::multipart::upload_id_param;
use crate::query::Query;
use crate::xml::{self, XmlWriter};
use crate::{xml_response, ApiState};

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
    // An SSE-C upload is completed with its key, as each of its parts was written.
    let customer = crate::sse::customer_key(st, &headers)?;
    if let Ok(upload) = st.objects.upload(bucket, key, &upload_id).await {
        st.objects.check_upload_key(&upload, customer.clone())?;
    }
    let body = read_small_body(caller, req, 4 << 20).await?;
    let parsed: xml::CompleteMultipartUpload =
        xml::parse(&body).ok_or_else(S3Error::malformed_xml)?;
    if parsed.parts.is_empty() || parsed.parts.len() > MAX_PART_NUMBER as usize {
        return Err(S3Error::malformed_xml());
    }
    let parts = parsed
        .parts
        .iter()
        .map(|p| ListedPart {
            part_number: p.part_number,
            etag: p.etag.trim().trim_matches('"').to_string(),
            checksum: p
                .checksum()
                .map(|(alg, value)| (alg.to_string(), value.to_string())),
        })
        .collect();
    let rec = st
        .objects
        .complete_upload(CompleteUpload {
            bucket: bucket.clone(),
            key: key.clone(),
            upload_id: upload_id.clone(),
            parts,
            claimed_checksum: claimed,
            claimed_size: header_str(&headers, "x-amz-mp-object-size"),
            condition,
        })
        .await
        .map_err(|e| S3Error::from(e).for_upload(&upload_id))?;
    Ok(completed(bucket, key, &rec, customer.as_deref()))
}

/// The CompleteMultipartUploadResult for the object a completion made.
fn completed(
    bucket: &BucketName,
    key: &ObjectKey,
    rec: &ObjectRecord,
    customer: Option<&cairn_objects::CustomerKey>,
) -> Response {
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
    crate::sse::report(resp.headers_mut(), &rec.data, customer);
    if let Some(v) = &rec.version_id {
        set(resp.headers_mut(), "x-amz-version-id", v);
    }
    resp
}
