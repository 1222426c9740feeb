//! ListParts and ListMultipartUploads: markers, page sizes, prefix/delimiter and
//! `encoding-type=url`, over the metadata range scans.

use std::sync::Arc;

use axum::response::Response;
use cairn_metadata::{UploadEntry, UploadQuery};
use cairn_types::ObjectKey;

use crate::access::Authorized;
use crate::error::{S3Error, S3ErrorCode};
use crate::identity::Directory;
use crate::multipart::{require_upload, upload_id_param};
use crate::query::Query;
use crate::util::{iso8601, url_encode};
use crate::xml::XmlWriter;
use crate::{xml_response, ApiState};

/// Page size limit of both listings (as S3).
const MAX_PAGE: usize = 1000;

/// A non-negative integer parameter, capped at [`MAX_PAGE`].
fn page_size(q: &Query, name: &str) -> Result<usize, S3Error> {
    match q.get(name) {
        None => Ok(MAX_PAGE),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| n.min(MAX_PAGE as i64) as usize)
            .ok_or_else(|| {
                S3Error::new(
                    S3ErrorCode::InvalidArgument,
                    format!("Provided {name} not an integer or within integer range"),
                )
                .with("ArgumentName", name.to_string())
                .with("ArgumentValue", v)
            }),
    }
}

pub async fn list_parts(
    st: &Arc<ApiState>,
    a: &Authorized,
    key: &ObjectKey,
    q: &Query,
) -> Result<Response, S3Error> {
    let bucket = &a.bucket()?.name;
    let upload_id = upload_id_param(q)?;
    let upload = require_upload(st, bucket, key, upload_id).await?;
    let max = page_size(q, "max-parts")?;
    let marker = match q.get("part-number-marker") {
        None | Some("") => 0,
        Some(v) => v.trim().parse::<u32>().map_err(|_| {
            S3Error::new(
                S3ErrorCode::InvalidArgument,
                "Provided part-number-marker not an integer or within integer range",
            )
            .with("ArgumentName", "part-number-marker")
            .with("ArgumentValue", v)
        })?,
    };
    let (parts, truncated) = st
        .objects
        .list_parts(bucket, key, upload_id, marker, max)
        .await?;
    let mut w = XmlWriter::new();
    w.open_root("ListPartsResult");
    w.elem("Bucket", bucket.as_str());
    w.elem("Key", key.as_str());
    w.elem("UploadId", upload_id);
    let mut dir = Directory::new(st);
    dir.write_owner(&mut w, "Initiator", &upload.owner).await?;
    dir.write_owner(&mut w, "Owner", &upload.owner).await?;
    w.elem("StorageClass", cairn_objects::class_of(&upload.headers));
    w.elem("PartNumberMarker", &marker.to_string());
    if let Some(last) = parts.last() {
        w.elem("NextPartNumberMarker", &last.part_number.to_string());
    }
    w.elem("MaxParts", &max.to_string());
    w.elem("IsTruncated", if truncated { "true" } else { "false" });
    if let Some(a) = &upload.checksum_algorithm {
        w.elem("ChecksumAlgorithm", a);
    }
    for p in &parts {
        w.open("Part");
        w.elem("PartNumber", &p.part_number.to_string());
        w.elem("LastModified", &iso8601(p.last_modified_ms));
        w.elem("ETag", &format!("\"{}\"", p.etag));
        w.elem("Size", &p.size.to_string());
        if let Some(c) = &p.checksum {
            w.elem(&format!("Checksum{}", c.algorithm), &c.value);
        }
        w.close("Part");
    }
    w.close("ListPartsResult");
    Ok(xml_response(w.finish()))
}

pub async fn list_uploads(
    st: &Arc<ApiState>,
    a: &Authorized,
    q: &Query,
) -> Result<Response, S3Error> {
    let bucket = &a.bucket()?.name;
    let max = page_size(q, "max-uploads")?;
    let url = match q.get("encoding-type") {
        None => false,
        Some("url") => true,
        Some(_) => {
            return Err(S3Error::new(
                S3ErrorCode::InvalidArgument,
                "Invalid Encoding Method specified in Request",
            ))
        }
    };
    let enc = |s: &str| if url { url_encode(s) } else { s.to_string() };
    let query = UploadQuery {
        prefix: q.get("prefix").unwrap_or("").to_string(),
        delimiter: q
            .get("delimiter")
            .filter(|d| !d.is_empty())
            .map(str::to_string),
        key_marker: q.get("key-marker").map(str::to_string),
        upload_id_marker: q.get("upload-id-marker").map(str::to_string),
        max_uploads: max,
    };
    let page = st.objects.list_uploads(bucket, &query).await?;
    let mut w = XmlWriter::new();
    w.open_root("ListMultipartUploadsResult");
    w.elem("Bucket", bucket.as_str());
    w.elem("KeyMarker", &enc(q.get("key-marker").unwrap_or("")));
    w.elem("UploadIdMarker", q.get("upload-id-marker").unwrap_or(""));
    if page.is_truncated {
        match page.entries.last() {
            Some(UploadEntry::Upload(k, rec)) => {
                w.elem("NextKeyMarker", &enc(k));
                w.elem("NextUploadIdMarker", &rec.upload_id);
            }
            Some(UploadEntry::Prefix(p)) => {
                w.elem("NextKeyMarker", &enc(p));
                w.elem("NextUploadIdMarker", "");
            }
            None => {}
        }
    }
    w.elem("Prefix", &enc(&query.prefix));
    if let Some(d) = &query.delimiter {
        w.elem("Delimiter", &enc(d));
    }
    w.elem("MaxUploads", &max.to_string());
    if url {
        w.elem("EncodingType", "url");
    }
    w.elem(
        "IsTruncated",
        if page.is_truncated { "true" } else { "false" },
    );
    let mut prefixes = Vec::new();
    let mut dir = Directory::new(st);
    for e in &page.entries {
        match e {
            UploadEntry::Upload(k, rec) => {
                w.open("Upload");
                w.elem("Key", &enc(k));
                w.elem("UploadId", &rec.upload_id);
                dir.write_owner(&mut w, "Initiator", &rec.owner).await?;
                dir.write_owner(&mut w, "Owner", &rec.owner).await?;
                w.elem("StorageClass", cairn_objects::class_of(&rec.headers));
                w.elem("Initiated", &iso8601(rec.initiated_ms));
                if let Some(a) = &rec.checksum_algorithm {
                    w.elem("ChecksumAlgorithm", a);
                }
                w.close("Upload");
            }
            UploadEntry::Prefix(p) => prefixes.push(p),
        }
    }
    for p in prefixes {
        w.open("CommonPrefixes");
        w.elem("Prefix", &enc(p));
        w.close("CommonPrefixes");
    }
    w.close("ListMultipartUploadsResult");
    Ok(xml_response(w.finish()))
}
