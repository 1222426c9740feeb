//! DeleteObject and DeleteObjects, with or without a version id: without one, an
//! unversioned bucket loses the object and a versioned one gains a delete marker; with one,
//! that version is removed for good (see `cairn_metadata::versions`).

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cairn_metadata::{Deletion, VersionSel};
use cairn_types::{BucketName, ObjectKey};

use crate::access::Authorized;
use crate::auth::read_small_body;
use crate::error::S3Error;
use crate::headers::set;
use crate::lookup::version_param;
use crate::object_lock;
use crate::query::Query;
use crate::xml::{self, XmlWriter};
use crate::{xml_response, ApiState};

/// Deletes `sel` of `key`; returns what happened and the version id to report (the marker
/// created, or the version named).
/// Object Lock decides in the metadata state machine; `h` may ask to bypass GOVERNANCE
/// retention, which counts only for callers allowed to.
async fn delete_one(
    st: &Arc<ApiState>,
    a: &Authorized,
    bucket: &BucketName,
    key: &ObjectKey,
    sel: VersionSel,
    h: &HeaderMap,
) -> Result<(Deletion, Option<String>), S3Error> {
    let bypass = match sel {
        // Removing a version is what retention guards; a delete marker harms nothing.
        VersionSel::Id(_) => object_lock::bypass_governance(st, a, h, key).await?,
        VersionSel::Latest => false,
    };
    Ok(st.objects.delete_object(bucket, key, sel, bypass).await?)
}

pub async fn delete_object(
    st: &Arc<ApiState>,
    a: &Authorized,
    key: &ObjectKey,
    q: &Query,
    h: &HeaderMap,
) -> Result<Response, S3Error> {
    let bucket = &a.bucket()?.name;
    let sel = version_param(q)?;
    let (d, id) = delete_one(st, a, bucket, key, sel, h).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if d.delete_marker {
        set(resp.headers_mut(), "x-amz-delete-marker", "true");
    }
    if let Some(id) = id {
        set(resp.headers_mut(), "x-amz-version-id", &id);
    }
    Ok(resp)
}

pub async fn delete_objects(
    st: &Arc<ApiState>,
    a: &Authorized,
    req: Request,
) -> Result<Response, S3Error> {
    let caller = a.caller();
    let bucket = &a.bucket()?.name;
    let headers = req.headers().clone();
    let body = read_small_body(caller, req, 2 << 20).await?;
    let parsed = xml::parse_delete(&body).ok_or_else(S3Error::malformed_xml)?;
    if parsed.objects.is_empty() || parsed.objects.len() > 1000 {
        return Err(S3Error::malformed_xml());
    }
    let quiet = parsed.quiet.unwrap_or(false);
    let mut w = XmlWriter::new();
    w.open_root("DeleteResult");
    for obj in parsed.objects {
        let result = async {
            let key = ObjectKey::new(obj.key.clone())?;
            if !a.may_delete(st, &key, obj.version_id.as_deref()).await? {
                return Err(S3Error::access_denied());
            }
            let sel = match obj.version_id.as_deref() {
                None => VersionSel::Latest,
                Some("null") => VersionSel::Id(None),
                Some(v) => {
                    let q =
                        Query::parse(Some(&format!("versionId={}", crate::util::url_encode(v))))?;
                    version_param(&q)?
                }
            };
            delete_one(st, a, bucket, &key, sel, &headers).await
        }
        .await;
        match result {
            Ok(_) if quiet => {}
            Ok((d, id)) => {
                w.open("Deleted");
                w.elem("Key", &obj.key);
                if let Some(v) = &obj.version_id {
                    w.elem("VersionId", v);
                }
                if d.delete_marker {
                    w.elem("DeleteMarker", "true");
                    if let Some(id) = &id {
                        w.elem("DeleteMarkerVersionId", id);
                    }
                }
                w.close("Deleted");
            }
            Err(e) => {
                w.open("Error");
                w.elem("Key", &obj.key);
                if let Some(v) = &obj.version_id {
                    w.elem("VersionId", v);
                }
                w.elem("Code", e.code.as_str());
                w.elem("Message", &e.message);
                w.close("Error");
            }
        }
    }
    w.close("DeleteResult");
    Ok(xml_response(w.finish()))
}
