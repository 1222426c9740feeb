//! Bucket versioning: Put/GetBucketVersioning (`?versioning`), ListObjectVersions
//! (`?versions`), and the `versionId` helpers the object, copy and tagging handlers share
//! (new version ids, resolving the version a request names with S3's errors).
//!
//! MFA delete is refused (`NotImplemented`) when asked to be enabled; `Disabled` is accepted.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cairn_metadata::{
    BucketConfigKind, Command, ListEntry, ListQuery, ObjectRecord, VersionEntry, VersionPage,
    VersionQuery, VersionRecord, VersionSel, VersioningState,
};
use cairn_types::{BucketName, ObjectKey};
use serde::Deserialize;

use crate::access;
use crate::access::Authorized;
use crate::auth::read_small_body;
use crate::error::{S3Error, S3ErrorCode};
use crate::identity::Directory;
use crate::listing::ListParams;
use crate::router::Query;
use crate::util::{iso8601, url_encode};
use crate::xml::{self, XmlWriter};
use crate::{xml_response, ApiState};

/// A new version id: the time in milliseconds (so ids of one key roughly sort by age when
/// read) and 80 random bits, 32 lowercase hex digits.
pub fn new_version_id(now_ms: i64) -> String {
    let rand = uuid::Uuid::new_v4().simple().to_string();
    format!("{:012x}{}", now_ms.max(0), &rand[..20])
}

/// The version a request names with `versionId` (`null` is the null version).
pub fn version_param(q: &Query) -> Result<VersionSel, S3Error> {
    match q.get("versionId") {
        None => Ok(VersionSel::Latest),
        Some("null") => Ok(VersionSel::Id(None)),
        Some(v) if v.is_empty() || v.len() > 128 || !v.bytes().all(|b| b.is_ascii_graphic()) => {
            Err(
                S3Error::new(S3ErrorCode::InvalidArgument, "Invalid version id specified")
                    .with("ArgumentName", "versionId")
                    .with("ArgumentValue", v),
            )
        }
        Some(v) => Ok(VersionSel::Id(Some(v.to_string()))),
    }
}

/// The object version `sel` of `key`, and the version id to answer with
/// (`x-amz-version-id`). Absent is `NoSuchKey` (with `x-amz-delete-marker` when the newest
/// entry is a marker) or `NoSuchVersion`; a delete marker named by id is `MethodNotAllowed`.
pub async fn resolve(
    st: &Arc<ApiState>,
    bucket: &BucketName,
    key: &ObjectKey,
    sel: &VersionSel,
) -> Result<(ObjectRecord, Option<String>), S3Error> {
    if *sel == VersionSel::Latest {
        if let Some(rec) = st.meta().get_object(bucket, key).await? {
            let id = rec.version_id.clone();
            return Ok((rec, id));
        }
        let mut err = S3Error::no_such_key().with("Key", key.as_str());
        if let Some(v) = st.meta().get_version(bucket, key, sel).await? {
            if v.is_delete_marker() {
                err = err
                    .with_header("x-amz-delete-marker", "true")
                    .with_header("x-amz-version-id", v.id_str().to_string());
            }
        }
        return Err(err);
    }
    let Some(v) = st.meta().get_version(bucket, key, sel).await? else {
        let id = match sel {
            VersionSel::Id(Some(id)) => id.as_str(),
            _ => "null",
        };
        return Err(S3Error::no_such_version()
            .with("Key", key.as_str())
            .with("VersionId", id));
    };
    let id = v.id_str().to_string();
    match v.object {
        Some(rec) => Ok((rec, Some(id))),
        None => Err(S3Error::method_not_allowed()
            .with_header("x-amz-delete-marker", "true")
            .with_header("x-amz-version-id", id)
            .with_header("allow", "DELETE")),
    }
}

/// [`resolve`] with the version named by the request's `versionId`.
pub async fn resolve_version(
    st: &Arc<ApiState>,
    bucket: &BucketName,
    key: &ObjectKey,
    q: &Query,
) -> Result<(ObjectRecord, Option<String>), S3Error> {
    resolve(st, bucket, key, &version_param(q)?).await
}

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
    let state = match conf.status.as_deref().map(str::trim) {
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
    st.meta()
        .apply(Command::SetVersioning {
            bucket: bucket.clone(),
            state,
        })
        .await?;
    Ok(StatusCode::OK.into_response())
}

/// The bucket's versioning state.
pub async fn state(st: &Arc<ApiState>, bucket: &BucketName) -> Result<VersioningState, S3Error> {
    let v = st
        .meta()
        .get_bucket_config(bucket, BucketConfigKind::Versioning)
        .await?;
    Ok(VersioningState::parse(v.as_deref())?)
}

pub async fn get_bucket_versioning(
    st: &Arc<ApiState>,
    a: &Authorized,
) -> Result<Response, S3Error> {
    let bucket = &a.bucket()?.name;
    let mut w = XmlWriter::new();
    w.open_root("VersioningConfiguration");
    match state(st, bucket).await? {
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

/// An unversioned bucket has no `versions` entries: each current object is its only
/// (`null`) version, listed from `objects`.
async fn unversioned_page(
    st: &Arc<ApiState>,
    bucket: &BucketName,
    q: &VersionQuery,
) -> Result<VersionPage, S3Error> {
    let page = st
        .meta()
        .list_objects(
            bucket,
            &ListQuery {
                prefix: q.prefix.clone(),
                delimiter: q.delimiter.clone(),
                // A key has one version here, so after a version of it is after the key.
                start_after: q.key_marker.clone(),
                max_keys: q.max_keys,
            },
        )
        .await?;
    let mut out = VersionPage {
        is_truncated: page.is_truncated,
        ..Default::default()
    };
    for e in page.entries {
        out.entries.push(match e {
            ListEntry::Object(key, rec) => VersionEntry::Version {
                key,
                is_latest: true,
                version: Box::new(VersionRecord {
                    version_id: None,
                    last_modified_ms: rec.last_modified_ms,
                    object: Some(rec),
                }),
            },
            ListEntry::Prefix(p) => VersionEntry::Prefix(p),
        });
    }
    if out.is_truncated {
        match out.entries.last() {
            Some(VersionEntry::Version { key, .. }) => {
                out.next_key_marker = Some(key.clone());
                out.next_version_id_marker = Some("null".into());
            }
            Some(VersionEntry::Prefix(p)) => out.next_key_marker = Some(p.clone()),
            None => {}
        }
    }
    Ok(out)
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
    let page = if state(st, bucket).await? == VersioningState::Unversioned {
        unversioned_page(st, bucket, &query).await?
    } else {
        st.meta().list_versions(bucket, &query).await?
    };

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
                        w.elem("StorageClass", "STANDARD");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_params() {
        let q = |raw: &str| Query::parse(Some(raw)).unwrap();
        assert_eq!(version_param(&q("")).unwrap(), VersionSel::Latest);
        assert_eq!(
            version_param(&q("versionId=null")).unwrap(),
            VersionSel::Id(None)
        );
        assert_eq!(
            version_param(&q("versionId=abc")).unwrap(),
            VersionSel::Id(Some("abc".into()))
        );
        assert_eq!(
            version_param(&q("versionId=")).unwrap_err().code,
            S3ErrorCode::InvalidArgument
        );
        assert_eq!(
            version_param(&q("versionId=a%20b")).unwrap_err().code,
            S3ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn version_ids_are_fresh_and_well_formed() {
        let a = new_version_id(1_700_000_000_000);
        let b = new_version_id(1_700_000_000_000);
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }
}
