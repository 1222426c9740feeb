//! Bucket sub-resources: CORS and tagging (stored per bucket), the ACL (always the owner's
//! full control), and graceful answers for the configuration calls clients make by default
//! (notification, lifecycle, encryption, object lock, ownership controls, policy, public
//! access block, website, logging, accelerate, request payment, replication): a GET says
//! "none configured" the way S3 does, a DELETE of nothing succeeds, and a PUT that Cairn
//! cannot honour is NotImplemented.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use cairn_metadata::{BucketConfigKind, BucketRecord, Command};
use cairn_types::BucketName;
use serde::Deserialize;

use crate::auth::{read_small_body, Caller};
use crate::error::{S3Error, S3ErrorCode};
use crate::router::Query;
use crate::tagging;
use crate::xml::XmlWriter;
use crate::{access, cors, xml_response, ApiState};
use cairn_metadata::TagSet;

/// The bucket sub-resources this module answers.
pub const SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "cors",
    "encryption",
    "lifecycle",
    "logging",
    "notification",
    "object-lock",
    "ownershipControls",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "tagging",
    "website",
];

/// The sub-resource of a bucket request, if it names one this module answers.
pub fn subresource(q: &Query) -> Option<&'static str> {
    SUBRESOURCES.iter().copied().find(|s| q.has(s))
}

/// Largest configuration document accepted.
const MAX_CONFIG_BODY: usize = 64 << 10;

pub async fn dispatch(
    st: &Arc<ApiState>,
    caller: &Caller,
    bucket: &BucketRecord,
    sub: &'static str,
    req: Request,
) -> Result<Response, S3Error> {
    let name = &bucket.name;
    let method = req.method().clone();
    let none = |code: S3ErrorCode, what: &str| {
        Err(S3Error::new(code, format!("The {what} does not exist"))
            .with("BucketName", name.as_str()))
    };
    match (sub, method) {
        ("cors", Method::GET) => match cors::load_rules(st, name).await? {
            Some(rules) => Ok(xml_response(cors::config_xml(&rules))),
            None => none(S3ErrorCode::NoSuchCORSConfiguration, "CORS configuration"),
        },
        ("cors", Method::PUT) => {
            let body = read_small_body(caller, req, MAX_CONFIG_BODY).await?;
            let rules = cors::parse_config(&body)?;
            set(st, name, BucketConfigKind::Cors, Some(json(&rules)?)).await?;
            Ok(StatusCode::OK.into_response())
        }
        ("cors", Method::DELETE) => {
            set(st, name, BucketConfigKind::Cors, None).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        ("tagging", Method::GET) => match load_tags(st, name).await? {
            Some(tags) => Ok(xml_response(tagging::tagging_xml(&tags))),
            None => none(S3ErrorCode::NoSuchTagSet, "TagSet"),
        },
        ("tagging", Method::PUT) => {
            let body = read_small_body(caller, req, MAX_CONFIG_BODY).await?;
            let tags = tagging::from_xml_at_most(&body, tagging::MAX_BUCKET_TAGS)?;
            set(st, name, BucketConfigKind::Tagging, Some(json(&tags)?)).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        ("tagging", Method::DELETE) => {
            set(st, name, BucketConfigKind::Tagging, None).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        ("acl", Method::GET) => Ok(xml_response(owner_acl(&bucket.owner))),
        ("acl", Method::PUT) => {
            let headers = req.headers().clone();
            let body = read_small_body(caller, req, MAX_CONFIG_BODY).await?;
            put_acl(&headers, &body, &bucket.owner)?;
            Ok(StatusCode::OK.into_response())
        }
        ("policyStatus", Method::GET) => {
            // No bucket can be public in Cairn.
            let mut w = XmlWriter::new();
            w.open_root("PolicyStatus");
            w.elem("IsPublic", "false");
            w.close("PolicyStatus");
            Ok(xml_response(w.finish()))
        }
        ("notification", Method::GET) => Ok(empty_doc("NotificationConfiguration")),
        ("logging", Method::GET) => Ok(empty_doc("BucketLoggingStatus")),
        ("accelerate", Method::GET) => Ok(empty_doc("AccelerateConfiguration")),
        ("requestPayment", Method::GET) => {
            let mut w = XmlWriter::new();
            w.open_root("RequestPaymentConfiguration");
            w.elem("Payer", "BucketOwner");
            w.close("RequestPaymentConfiguration");
            Ok(xml_response(w.finish()))
        }
        ("lifecycle", Method::GET) => none(
            S3ErrorCode::NoSuchLifecycleConfiguration,
            "lifecycle configuration",
        ),
        ("encryption", Method::GET) => none(
            S3ErrorCode::ServerSideEncryptionConfigurationNotFoundError,
            "server side encryption configuration",
        ),
        ("object-lock", Method::GET) => none(
            S3ErrorCode::ObjectLockConfigurationNotFoundError,
            "object lock configuration",
        ),
        ("ownershipControls", Method::GET) => none(
            S3ErrorCode::OwnershipControlsNotFoundError,
            "bucket ownership controls",
        ),
        ("policy", Method::GET) => none(S3ErrorCode::NoSuchBucketPolicy, "bucket policy"),
        ("publicAccessBlock", Method::GET) => none(
            S3ErrorCode::NoSuchPublicAccessBlockConfiguration,
            "public access block configuration",
        ),
        ("website", Method::GET) => none(
            S3ErrorCode::NoSuchWebsiteConfiguration,
            "website configuration",
        ),
        ("replication", Method::GET) => none(
            S3ErrorCode::ReplicationConfigurationNotFoundError,
            "replication configuration",
        ),
        // Removing a configuration that cannot exist succeeds, as it does on S3.
        (
            "lifecycle" | "encryption" | "ownershipControls" | "policy" | "publicAccessBlock"
            | "website" | "replication",
            Method::DELETE,
        ) => Ok(StatusCode::NO_CONTENT.into_response()),
        (sub, Method::PUT | Method::POST) => Err(S3Error::not_implemented(&format!(
            "setting the bucket `{sub}` configuration"
        ))),
        _ => Err(S3Error::new(
            S3ErrorCode::MethodNotAllowed,
            "The specified method is not allowed against this resource.",
        )),
    }
}

fn json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, S3Error> {
    serde_json::to_vec(v).map_err(|e| S3Error::new(S3ErrorCode::InternalError, e.to_string()))
}

async fn set(
    st: &Arc<ApiState>,
    bucket: &BucketName,
    kind: BucketConfigKind,
    value: Option<Vec<u8>>,
) -> Result<(), S3Error> {
    st.meta()
        .apply(Command::SetBucketConfig {
            bucket: bucket.clone(),
            kind,
            value,
        })
        .await?;
    Ok(())
}

async fn load_tags(st: &Arc<ApiState>, bucket: &BucketName) -> Result<Option<TagSet>, S3Error> {
    match st
        .meta()
        .get_bucket_config(bucket, BucketConfigKind::Tagging)
        .await?
    {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| S3Error::new(S3ErrorCode::InternalError, format!("stored tags: {e}"))),
    }
}

fn empty_doc(root: &str) -> Response {
    let mut w = XmlWriter::new();
    w.open_root(root);
    w.close(root);
    xml_response(w.finish())
}

/// The only ACL Cairn has: the owner has full control, nobody else has anything.
pub fn owner_acl(owner: &str) -> String {
    let mut w = XmlWriter::new();
    w.open_root("AccessControlPolicy");
    w.open("Owner");
    w.elem("ID", owner);
    w.elem("DisplayName", owner);
    w.close("Owner");
    w.open("AccessControlList");
    w.open("Grant");
    w.open_with(
        "Grantee",
        r#"xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser""#,
    );
    w.elem("ID", owner);
    w.elem("DisplayName", owner);
    w.close("Grantee");
    w.elem("Permission", "FULL_CONTROL");
    w.close("Grant");
    w.close("AccessControlList");
    w.close("AccessControlPolicy");
    w.finish()
}

#[derive(Debug, Deserialize)]
struct AclXml {
    #[serde(rename = "AccessControlList", default)]
    list: AclListXml,
}

#[derive(Debug, Deserialize, Default)]
struct AclListXml {
    #[serde(rename = "Grant", default)]
    grants: Vec<GrantXml>,
}

#[derive(Debug, Deserialize)]
struct GrantXml {
    #[serde(rename = "Grantee")]
    grantee: GranteeXml,
    #[serde(rename = "Permission")]
    permission: String,
}

#[derive(Debug, Deserialize)]
struct GranteeXml {
    #[serde(rename = "ID", default)]
    id: Option<String>,
}

/// PutBucketAcl / PutObjectAcl: accepted when it changes nothing (an owner-only canned ACL,
/// or a policy granting only the owner full control); anything wider is NotImplemented.
pub fn put_acl(headers: &axum::http::HeaderMap, body: &[u8], owner: &str) -> Result<(), S3Error> {
    access::check_acl_headers(headers)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        if headers.contains_key("x-amz-acl") {
            return Ok(());
        }
        return Err(S3Error::new(
            S3ErrorCode::MissingSecurityHeader,
            "Your request was missing a required header: x-amz-acl or an AccessControlPolicy body",
        ));
    }
    let acl: AclXml = crate::xml::parse(body).ok_or_else(S3Error::malformed_xml)?;
    let owner_only = acl
        .list
        .grants
        .iter()
        .all(|g| g.permission == "FULL_CONTROL" && g.grantee.id.as_deref() == Some(owner));
    if owner_only {
        Ok(())
    } else {
        Err(S3Error::not_implemented(
            "ACL grants to anyone but the owner",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    #[test]
    fn acl_round_trip_and_refusals() {
        let doc = owner_acl("AK1");
        assert!(doc.contains("<Permission>FULL_CONTROL</Permission>"));
        let h = HeaderMap::new();
        // Our own document is accepted back; a grant to someone else is not.
        assert!(put_acl(&h, doc.as_bytes(), "AK1").is_ok());
        assert_eq!(
            put_acl(&h, doc.as_bytes(), "OTHER").unwrap_err().code,
            S3ErrorCode::NotImplemented
        );
        assert_eq!(
            put_acl(&h, b"", "AK1").unwrap_err().code,
            S3ErrorCode::MissingSecurityHeader
        );
        assert_eq!(
            put_acl(&h, b"<Access", "AK1").unwrap_err().code,
            S3ErrorCode::MalformedXML
        );
        let mut canned = HeaderMap::new();
        canned.insert("x-amz-acl", "private".parse().unwrap());
        assert!(put_acl(&canned, b"", "AK1").is_ok());
        canned.insert("x-amz-acl", "public-read-write".parse().unwrap());
        assert!(put_acl(&canned, b"", "AK1").is_err());
    }
}
