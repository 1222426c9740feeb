//! GetObjectAttributes (`GET /bucket/key?attributes`): the attributes named in
//! `x-amz-object-attributes` (ETag, Checksum, ObjectParts, StorageClass, ObjectSize) of the
//! current object or of `versionId`, without its data. ObjectParts is answered for
//! multipart objects only, paged with `x-amz-max-parts` and `x-amz-part-number-marker`;
//! parts are numbered by position, as `partNumber` on GET counts them.

use axum::http::HeaderMap;
use axum::response::Response;
use cairn_metadata::ObjectData;

use crate::access::{Authorized, Resolved};
use crate::error::{S3Error, S3ErrorCode};
use crate::headers::{header_str, set};
use crate::util::http_date;
use crate::xml::XmlWriter;
use crate::xml_response;

const ATTRIBUTES: [&str; 5] = [
    "ETag",
    "Checksum",
    "ObjectParts",
    "StorageClass",
    "ObjectSize",
];

/// The attributes a request names; unknown or none is InvalidArgument.
fn requested(h: &HeaderMap) -> Result<Vec<&'static str>, S3Error> {
    let raw = h
        .get_all("x-amz-object-attributes")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect::<Vec<_>>()
        .join(",");
    let mut out = Vec::new();
    for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let known = ATTRIBUTES
            .iter()
            .find(|a| a.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                S3Error::new(
                    S3ErrorCode::InvalidArgument,
                    format!("Invalid attribute name specified: {name}"),
                )
                .with("ArgumentName", "x-amz-object-attributes")
                .with("ArgumentValue", name)
            })?;
        if !out.contains(known) {
            out.push(*known);
        }
    }
    if out.is_empty() {
        return Err(S3Error::new(
            S3ErrorCode::InvalidArgument,
            "The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty",
        )
        .with("ArgumentName", "x-amz-object-attributes"));
    }
    Ok(out)
}

fn number_header(h: &HeaderMap, name: &'static str, default: u32) -> Result<u32, S3Error> {
    match header_str(h, name) {
        None => Ok(default),
        Some(v) => v.trim().parse::<u32>().map_err(|_| {
            S3Error::new(
                S3ErrorCode::InvalidArgument,
                format!("Provided {name} not an integer or within integer range"),
            )
            .with("ArgumentName", name)
            .with("ArgumentValue", v)
        }),
    }
}

pub async fn get_object_attributes(
    st: &crate::ApiState,
    a: &Authorized,
    h: &HeaderMap,
) -> Result<Response, S3Error> {
    let wanted = requested(h)?;
    let max_parts = number_header(h, "x-amz-max-parts", 1000)?.min(1000);
    let marker = number_header(h, "x-amz-part-number-marker", 0)?;
    let Resolved { rec, version_id } = a.object()?;
    // An SSE-C object's attributes need its key, as its body does.
    let customer = crate::sse::customer_key(st, h)?;
    st.objects
        .prepare_read(&rec.data, customer.as_deref())
        .await?;

    let mut w = XmlWriter::new();
    w.open_root("GetObjectAttributesResponse");
    for attr in wanted {
        match attr {
            "ETag" => w.elem("ETag", &rec.etag),
            "Checksum" => {
                if let Some(c) = &rec.checksum {
                    w.open("Checksum");
                    w.elem(&format!("Checksum{}", c.algorithm), &c.value);
                    let kind = if c.value.contains('-') {
                        "COMPOSITE"
                    } else {
                        "FULL_OBJECT"
                    };
                    w.elem("ChecksumType", kind);
                    w.close("Checksum");
                }
            }
            "ObjectParts" => {
                if let ObjectData::Parts(parts) = &rec.data {
                    w.open("ObjectParts");
                    w.elem("PartsCount", &parts.len().to_string());
                    w.elem("PartNumberMarker", &marker.to_string());
                    let page: Vec<_> = parts
                        .iter()
                        .enumerate()
                        .map(|(i, p)| (i as u32 + 1, p))
                        .skip_while(|(n, _)| *n <= marker)
                        .take(max_parts as usize)
                        .collect();
                    let last = page.last().map_or(marker, |(n, _)| *n);
                    let truncated = (last as usize) < parts.len();
                    if truncated {
                        w.elem("NextPartNumberMarker", &last.to_string());
                    }
                    w.elem("MaxParts", &max_parts.to_string());
                    w.elem("IsTruncated", if truncated { "true" } else { "false" });
                    for (n, p) in page {
                        w.open("Part");
                        if let Some(c) = &p.checksum {
                            w.elem(&format!("Checksum{}", c.algorithm), &c.value);
                        }
                        w.elem("PartNumber", &n.to_string());
                        w.elem("Size", &p.size.to_string());
                        w.close("Part");
                    }
                    w.close("ObjectParts");
                }
            }
            "StorageClass" => w.elem("StorageClass", cairn_objects::class_of(&rec.headers)),
            _ => w.elem("ObjectSize", &rec.size.to_string()),
        }
    }
    w.close("GetObjectAttributesResponse");
    let mut resp = xml_response(w.finish());
    set(
        resp.headers_mut(),
        "last-modified",
        &http_date(rec.last_modified_ms),
    );
    if let Some(v) = &version_id {
        set(resp.headers_mut(), "x-amz-version-id", v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_names() {
        let mut h = HeaderMap::new();
        assert!(requested(&h).is_err());
        h.insert(
            "x-amz-object-attributes",
            "ETag, objectsize,ETag".parse().unwrap(),
        );
        assert_eq!(requested(&h).unwrap(), ["ETag", "ObjectSize"]);
        h.insert("x-amz-object-attributes", "ETag,Owner".parse().unwrap());
        assert_eq!(
            requested(&h).unwrap_err().code,
            S3ErrorCode::InvalidArgument
        );
    }
}
