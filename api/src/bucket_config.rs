//! Bucket configuration operations: CORS and tagging (stored per bucket; the ACL is in
//! `acl_ops`, policy, Block Public Access and Object Ownership in `access_config`), and
//! graceful answers for the configuration calls clients make by default (notification,
//! encryption, website, logging, accelerate, request payment,
//! replication): a GET says
//! "none configured" the way S3 does, a DELETE of nothing succeeds, and a PUT that Cairn
//! cannot honour is NotImplemented.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cairn_metadata::BucketConfigKind;
use cairn_types::BucketName;

use crate::access::Authorized;
use crate::auth::read_small_body;
use crate::error::{S3Error, S3ErrorCode};
use crate::op::Op;
use crate::tagging;
use crate::xml::XmlWriter;
use crate::{cors, xml_response, ApiState};
use cairn_metadata::TagSet;

/// Largest configuration document accepted.
const MAX_CONFIG_BODY: usize = 64 << 10;

pub async fn dispatch(
    st: &Arc<ApiState>,
    a: &Authorized,
    req: Request,
) -> Result<Response, S3Error> {
    let caller = a.caller();
    let name = &a.bucket()?.name;
    let none = |code: S3ErrorCode, what: &str| {
        Err(S3Error::new(code, format!("The {what} does not exist"))
            .with("BucketName", name.as_str()))
    };
    match a.op() {
        Op::GetBucketCors => match cors::load_rules(st, name).await? {
            Some(rules) => Ok(xml_response(cors::config_xml(&rules))),
            None => none(S3ErrorCode::NoSuchCORSConfiguration, "CORS configuration"),
        },
        Op::PutBucketCors => {
            let body = read_small_body(caller, req, MAX_CONFIG_BODY).await?;
            let rules = cors::parse_config(&body)?;
            set(st, name, BucketConfigKind::Cors, Some(json(&rules)?)).await?;
            Ok(StatusCode::OK.into_response())
        }
        Op::DeleteBucketCors => {
            set(st, name, BucketConfigKind::Cors, None).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Op::GetBucketTagging => match load_tags(st, name).await? {
            Some(tags) => Ok(xml_response(tagging::tagging_xml(&tags))),
            None => none(S3ErrorCode::NoSuchTagSet, "TagSet"),
        },
        Op::PutBucketTagging => {
            let body = read_small_body(caller, req, MAX_CONFIG_BODY).await?;
            let tags = tagging::from_xml_at_most(&body, tagging::MAX_BUCKET_TAGS)?;
            set(st, name, BucketConfigKind::Tagging, Some(json(&tags)?)).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Op::DeleteBucketTagging => {
            set(st, name, BucketConfigKind::Tagging, None).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Op::GetBucketNotificationConfiguration => Ok(empty_doc("NotificationConfiguration")),
        Op::GetBucketLogging => Ok(empty_doc("BucketLoggingStatus")),
        Op::GetBucketAccelerateConfiguration => Ok(empty_doc("AccelerateConfiguration")),
        Op::GetBucketRequestPayment => {
            let mut w = XmlWriter::new();
            w.open_root("RequestPaymentConfiguration");
            w.elem("Payer", "BucketOwner");
            w.close("RequestPaymentConfiguration");
            Ok(xml_response(w.finish()))
        }
        Op::GetBucketEncryption => match a.gate().encryption.as_deref() {
            Some(stored) => Ok(xml_response(encryption_xml(stored))),
            None => none(
                S3ErrorCode::ServerSideEncryptionConfigurationNotFoundError,
                "server side encryption configuration",
            ),
        },
        Op::PutBucketEncryption => {
            let body = read_small_body(caller, req, MAX_CONFIG_BODY).await?;
            let stored = parse_encryption(&body)?;
            set(
                st,
                name,
                BucketConfigKind::Encryption,
                Some(stored.into_bytes()),
            )
            .await?;
            Ok(StatusCode::OK.into_response())
        }
        Op::DeleteBucketEncryption => {
            set(st, name, BucketConfigKind::Encryption, None).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Op::GetBucketWebsite => none(
            S3ErrorCode::NoSuchWebsiteConfiguration,
            "website configuration",
        ),
        Op::GetBucketReplication => none(
            S3ErrorCode::ReplicationConfigurationNotFoundError,
            "replication configuration",
        ),
        // Removing a configuration that cannot exist succeeds, as it does on S3.
        Op::DeleteBucketWebsite | Op::DeleteBucketReplication => {
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        other => Err(S3Error::internal(format!(
            "{} is not a bucket configuration operation",
            other.name()
        ))),
    }
}

/// The `ServerSideEncryptionConfiguration` of a bucket whose default is `stored` (as
/// [`crate::sse::bucket_default`] reads it).
fn encryption_xml(stored: &str) -> String {
    let (alg, key) = crate::sse::bucket_default(stored);
    let mut w = XmlWriter::new();
    w.open_root("ServerSideEncryptionConfiguration");
    w.open("Rule");
    w.open("ApplyServerSideEncryptionByDefault");
    w.elem("SSEAlgorithm", alg);
    if let Some(key) = key {
        w.elem("KMSMasterKeyID", key);
    }
    w.close("ApplyServerSideEncryptionByDefault");
    w.elem("BucketKeyEnabled", "false");
    w.close("Rule");
    w.close("ServerSideEncryptionConfiguration");
    w.finish()
}

#[derive(serde::Deserialize)]
struct SseConfiguration {
    #[serde(rename = "Rule", default)]
    rules: Vec<SseRule>,
}

#[derive(serde::Deserialize)]
struct SseRule {
    #[serde(rename = "ApplyServerSideEncryptionByDefault")]
    apply: Option<SseDefault>,
}

#[derive(serde::Deserialize)]
struct SseDefault {
    #[serde(rename = "SSEAlgorithm")]
    algorithm: String,
    #[serde(rename = "KMSMasterKeyID")]
    kms_key: Option<String>,
}

/// The default a `ServerSideEncryptionConfiguration` sets (one rule), as stored: `AES256`,
/// `aws:kms`, or `aws:kms` and the KMS key after a space. The key need not exist yet: the
/// writes that use it are refused until it does (as on AWS).
fn parse_encryption(body: &[u8]) -> Result<String, S3Error> {
    let malformed = || {
        S3Error::new(
            S3ErrorCode::MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema",
        )
    };
    let conf: SseConfiguration = crate::xml::parse(body).ok_or_else(malformed)?;
    let [SseRule { apply: Some(d) }] = conf.rules.as_slice() else {
        return Err(malformed());
    };
    let key = d
        .kms_key
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty());
    match (d.algorithm.trim(), key) {
        (crate::sse::AES256, None) => Ok(crate::sse::AES256.to_string()),
        (crate::sse::AES256, Some(_)) => Err(S3Error::new(
            S3ErrorCode::InvalidArgument,
            "a KMSMasterKeyID is only valid with SSEAlgorithm aws:kms",
        )),
        (crate::sse::AWS_KMS, None) => Ok(crate::sse::AWS_KMS.to_string()),
        (crate::sse::AWS_KMS, Some(k)) if cairn_sse::KmsKey::valid_name(k) => {
            Ok(format!("{} {k}", crate::sse::AWS_KMS))
        }
        (crate::sse::AWS_KMS, Some(_)) => Err(S3Error::new(
            S3ErrorCode::KmsNotFound,
            "Invalid KMSMasterKeyID: not a key name this cluster's KMS can have",
        )),
        (a, _) if a.starts_with(crate::sse::AWS_KMS) => Err(S3Error::new(
            S3ErrorCode::NotImplemented,
            "Dual-layer SSE-KMS (aws:kms:dsse) is not supported: use aws:kms or AES256",
        )),
        _ => Err(malformed()),
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
    st.objects.set_bucket_config(bucket, kind, value).await?;
    Ok(())
}

async fn load_tags(st: &Arc<ApiState>, bucket: &BucketName) -> Result<Option<TagSet>, S3Error> {
    match st
        .objects
        .bucket_config(bucket, BucketConfigKind::Tagging)
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
