//! Bucket versioning: Put/GetBucketVersioning (`?versioning`), ListObjectVersions
//! (`?versions`), and the `versionId` helpers the object, copy and tagging handlers share
//! (parsing `versionId`, resolving the version a request names).
//!
//! MFA delete is refused (`NotImplemented`) when asked to be enabled; `Disabled` is accepted.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cairn_metadata::{VersionEntry, VersionQuery, VersioningState};
use serde::Deserialize;

use crate::access;
use crate::access::Authorized;
use crate::auth::read_small_body;
use crate::error::{S3Error, S3ErrorCode};
use crate::identity::Directory;
use crate::listing::ListParams;
use crate::query::Query;
use crate::util::{iso8601, url_encode};
use crate::xml::{self, XmlWriter};
use crate::{xml_response, ApiState};

#[derive(Debug, Deserialize)]
struct VersioningConfiguration {
    #[serde(rename = "Status", default)]
    status: Option<String>,
    #[serde(rename = "MfaDelete", default)]
    mfa_delete: Option<String>,
}

pub async fn put_bucket_versioning(
    st: &Arc<ApiState>,
    a: &Authorized,
    req: Request,
) -> Result<Response, S3Error> {
    let caller = a.caller();
    let bucket = &a.bucket()?.name;
    let body = read_small_body(caller, req, 64 << 10).await?;
    let conf: VersioningConfiguration = xml::parse(&body).ok_or_else(S3Error::malformed_xml)?;
    match conf.mfa_delete.as_deref().map(str::trim) {
        None | Some("Disabled") => {}
        Some("Enabled") => return Err(S3Error::not_implemented("MFA delete")),
        Some(_) => return Err(S3Error::malformed_xml()),
    }
    let status = match conf.status.as_deref().map(str::trim) {
        Some("Enabled") => VersioningState::Enabled,
        Some("Suspended") => VersioningState::Suspended,
        Some(_) => return Err(S3Error::malformed_xml()),
        None => {
            return Err(S3Error::new(
                S3ErrorCode::IllegalVersioningConfigurationException,
                "The Versioning element must be specified",
            ))
        }
    };
    st.objects.set_versioning(bucket, status).await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn get_bucket_versioning(
    st: &Arc<ApiState>,
    a: &Authorized,
) -> Result<Response, S3Error> {
    let bucket = &a.bucket()?.name;
    let mut w = XmlWriter::new();
    w.open_root("VersioningConfiguration");
    match st.objects.versioning(bucket).await? {
        VersioningState::Unversioned => {}
        VersioningState::Enabled => w.elem("Status", "Enabled"),
        VersioningState::Suspended => w.elem("Status", "Suspended"),
    }
    w.close("VersioningConfiguration");
    Ok(xml_response(w.finish()))
}

fn invalid(msg: &str) -> S3Error {
    S3Error::new(S3ErrorCode::InvalidArgument, msg)
}

pub async fn list_object_versions(
    st: &Arc<ApiState>,
    a: &Authorized,
    q: &Query,
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
    let key_marker = q.get("key-marker").unwrap_or("").to_string();
    let vid_marker = q.get("version-id-marker").unwrap_or("").to_string();
    if !vid_marker.is_empty() && key_marker.is_empty() {
        return Err(
            invalid("A version-id marker cannot be specified without a key marker.")
                .with("ArgumentName", "version-id-marker")
                .with("ArgumentValue", vid_marker.clone()),
        );
    }
    let query = VersionQuery {
        prefix: prefix.clone(),
        delimiter: delimiter.clone(),
        key_marker: Some(key_marker.clone()).filter(|m| !m.is_empty()),
        version_id_marker: Some(vid_marker.clone()).filter(|m| !m.is_empty()),
        max_keys,
    };
    let page = st.objects.list_versions(bucket, &query).await?;

    let mut w = XmlWriter::new();
    w.open_root("ListVersionsResult");
    w.elem("Name", bucket.as_str());
    w.elem("Prefix", &enc(&prefix));
    w.elem("KeyMarker", &enc(&key_marker));
    w.elem("VersionIdMarker", &vid_marker);
    if let Some(m) = &page.next_key_marker {
        w.elem("NextKeyMarker", &enc(m));
    }
    if let Some(m) = &page.next_version_id_marker {
        w.elem("NextVersionIdMarker", m);
    }
    w.elem("MaxKeys", &max_keys.to_string());
    if let Some(d) = &delimiter {
        w.elem("Delimiter", &enc(d));
    }
    if url {
        w.elem("EncodingType", "url");
    }
    w.elem(
        "IsTruncated",
        if page.is_truncated { "true" } else { "false" },
    );
    let mut dir = Directory::new(st);
    let mut prefixes = Vec::new();
    for e in &page.entries {
        match e {
            VersionEntry::Version {
                key,
                is_latest,
                version,
            } => {
                let latest = if *is_latest { "true" } else { "false" };
                match &version.object {
                    Some(o) => {
                        w.open("Version");
                        w.elem("Key", &enc(key));
                        w.elem("VersionId", version.id_str());
                        w.elem("IsLatest", latest);
                        w.elem("LastModified", &iso8601(version.last_modified_ms));
                        w.elem("ETag", &format!("\"{}\"", o.etag));
                        w.elem("Size", &o.size.to_string());
                        w.elem("StorageClass", cairn_objects::class_of(&o.headers));
                        let owner = access::object_owner(bucket_rec, o);
                        dir.write_owner(&mut w, "Owner", owner).await?;
                        w.close("Version");
                    }
                    None => {
                        w.open("DeleteMarker");
                        w.elem("Key", &enc(key));
                        w.elem("VersionId", version.id_str());
                        w.elem("IsLatest", latest);
                        w.elem("LastModified", &iso8601(version.last_modified_ms));
                        dir.write_owner(&mut w, "Owner", &bucket_rec.owner).await?;
                        w.close("DeleteMarker");
                    }
                }
            }
            VersionEntry::Prefix(p) => prefixes.push(p),
        }
    }
    for p in prefixes {
        w.open("CommonPrefixes");
        w.elem("Prefix", &enc(p));
        w.close("CommonPrefixes");
    }
    w.close("ListVersionsResult");
    Ok(xml_response(w.finish()))
}
