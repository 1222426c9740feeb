//! ListObjects (v1) and ListObjectsV2: prefix, delimiter, paging, `encoding-type=url`.

use std::sync::Arc;

use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use cairn_metadata::{ListEntry, ListQuery};

use crate::access;
use crate::access::Authorized;
use crate::error::{S3Error, S3ErrorCode};
use crate::identity::Directory;
use crate::query::Query;
use crate::util::{iso8601, url_encode};
use crate::xml::XmlWriter;
use crate::{xml_response, ApiState};

const MAX_KEYS: usize = 1000;

/// The parameters every listing (objects v1/v2, versions) shares, validated.
pub(crate) struct ListParams {
    /// `max-keys`, capped at 1000.
    pub max_keys: usize,
    /// `encoding-type=url`.
    pub url: bool,
    pub prefix: String,
    /// A non-empty `delimiter`.
    pub delimiter: Option<String>,
}

impl ListParams {
    pub(crate) fn parse(q: &Query) -> Result<ListParams, S3Error> {
        let max_keys = match q.get("max-keys") {
            None => MAX_KEYS,
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| invalid("max-keys must be a non-negative integer"))?
                .min(MAX_KEYS as i64) as usize,
        };
        let url = match q.get("encoding-type") {
            None => false,
            Some("url") => true,
            Some(_) => return Err(invalid("Invalid Encoding Method specified in Request")),
        };
        Ok(ListParams {
            max_keys,
            url,
            prefix: q.get("prefix").unwrap_or("").to_string(),
            delimiter: q
                .get("delimiter")
                .filter(|d| !d.is_empty())
                .map(str::to_string),
        })
    }
}

fn invalid(msg: &str) -> S3Error {
    S3Error::new(S3ErrorCode::InvalidArgument, msg)
}

pub async fn list_objects(
    st: &Arc<ApiState>,
    a: &Authorized,
    q: &Query,
    v2: bool,
) -> Result<Response, S3Error> {
    let bucket = &a.bucket()?.name;
    let bucket_rec = a.bucket()?;
    let ListParams {
        max_keys,
        url,
        prefix,
        delimiter,
    } = ListParams::parse(q)?;
    let enc = |s: &str| if url { url_encode(s) } else { s.to_string() };
    let token = match (v2, q.get("continuation-token")) {
        (true, Some(t)) => Some(
            URL_SAFE_NO_PAD
                .decode(t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| invalid("The continuation token provided is incorrect"))?,
        ),
        _ => None,
    };
    let start_after = if v2 {
        token
            .clone()
            .or_else(|| q.get("start-after").map(str::to_string))
    } else {
        q.get("marker").map(str::to_string)
    };
    let page = st
        .objects
        .list_objects(
            bucket,
            &ListQuery {
                prefix: prefix.clone(),
                delimiter: delimiter.clone(),
                start_after: start_after.clone().filter(|s| !s.is_empty()),
                max_keys,
            },
        )
        .await?;

    let mut w = XmlWriter::new();
    w.open_root("ListBucketResult");
    w.elem("Name", bucket.as_str());
    // With encoding-type=url, V1 answers its own Prefix as given (clients decode Marker,
    // Delimiter and keys there, not Prefix); V2 encodes it too.
    if v2 {
        w.elem("Prefix", &enc(&prefix));
    } else {
        w.elem("Prefix", &prefix);
    }
    if v2 {
        if let Some(t) = q.get("continuation-token") {
            w.elem("ContinuationToken", t);
        }
        if let Some(s) = q.get("start-after") {
            w.elem("StartAfter", &enc(s));
        }
        w.elem("KeyCount", &page.entries.len().to_string());
    } else {
        w.elem("Marker", &enc(q.get("marker").unwrap_or("")));
    }
    if let Some(d) = &delimiter {
        w.elem("Delimiter", &enc(d));
    }
    w.elem("MaxKeys", &max_keys.to_string());
    if url {
        w.elem("EncodingType", "url");
    }
    w.elem(
        "IsTruncated",
        if page.is_truncated { "true" } else { "false" },
    );
    if page.is_truncated {
        if let Some(last) = page.entries.last() {
            if v2 {
                w.elem(
                    "NextContinuationToken",
                    &URL_SAFE_NO_PAD.encode(last.name().as_bytes()),
                );
            } else {
                w.elem("NextMarker", &enc(last.name()));
            }
        }
    }
    let fetch_owner = !v2 || q.get("fetch-owner") == Some("true");
    let mut dir = Directory::new(st);
    let mut prefixes = Vec::new();
    for e in &page.entries {
        match e {
            ListEntry::Object(key, rec) => {
                w.open("Contents");
                w.elem("Key", &enc(key));
                w.elem("LastModified", &iso8601(rec.last_modified_ms));
                w.elem("ETag", &format!("\"{}\"", rec.etag));
                w.elem("Size", &rec.size.to_string());
                w.elem("StorageClass", cairn_objects::class_of(&rec.headers));
                if fetch_owner {
                    let owner = access::object_owner(bucket_rec, rec);
                    dir.write_owner(&mut w, "Owner", owner).await?;
                }
                w.close("Contents");
            }
            ListEntry::Prefix(p) => prefixes.push(p),
        }
    }
    for p in prefixes {
        w.open("CommonPrefixes");
        w.elem("Prefix", &enc(p));
        w.close("CommonPrefixes");
    }
    w.close("ListBucketResult");
    Ok(xml_response(w.finish()))
}
