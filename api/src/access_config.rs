//! The bucket documents that govern access, besides the ACL (`acl_ops`): the bucket policy
//! (Get/Put/DeleteBucketPolicy, GetBucketPolicyStatus), Block Public Access
//! (Get/Put/DeletePublicAccessBlock) and Object Ownership (Get/Put/DeleteBucketOwnershipControls).
//! Each is checked here before it is stored; [`crate::policies`] reads and applies them.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cairn_metadata::{BucketConfigKind, PublicAccessBlock};
use cairn_policy::PolicyKind;
use serde::Deserialize;

use crate::access::{self, Authorized};
use crate::auth::read_small_body;
use crate::bucket::invalid_acl_with_ownership;
use crate::error::{S3Error, S3ErrorCode};
use crate::op::Op;
use crate::policies::{self, Ownership};
use crate::xml::{self, XmlWriter};
use crate::{xml_response, ApiState};

/// Largest bucket policy accepted (S3's limit).
pub const MAX_POLICY: usize = 20 << 10;

pub async fn dispatch(
    st: &Arc<ApiState>,
    a: &Authorized,
    req: Request,
) -> Result<Response, S3Error> {
    let bucket = a.bucket()?;
    let name = &bucket.name;
    let set = |kind, value| st.objects.set_bucket_config(name, kind, value);
    match a.op() {
        Op::GetBucketPolicy => match policies::bucket_policy_text(st, name).await? {
            Some(doc) => {
                let mut resp = doc.into_response();
                resp.headers_mut()
                    .insert("content-type", HeaderValue::from_static("application/json"));
                Ok(resp)
            }
            None => Err(S3Error::new(
                S3ErrorCode::NoSuchBucketPolicy,
                "The bucket policy does not exist",
            )
            .with("BucketName", name.as_str())),
        },
        Op::PutBucketPolicy => {
            let too_large = || {
                S3Error::new(
                    S3ErrorCode::MalformedPolicy,
                    format!("Policies must be at most {MAX_POLICY} bytes"),
                )
            };
            let body = read_small_body(a.caller(), req, MAX_POLICY + 1)
                .await
                .map_err(|e| match e.code {
                    // Only its size makes a small body's read InvalidRequest.
                    S3ErrorCode::InvalidRequest => too_large(),
                    _ => e,
                })?;
            if body.len() > MAX_POLICY {
                return Err(too_large());
            }
            let doc = std::str::from_utf8(&body)
                .map_err(|_| S3Error::new(S3ErrorCode::MalformedPolicy, "Policy is not UTF-8"))?;
            let kind = PolicyKind::Bucket {
                bucket: name.as_str().to_string(),
            };
            let policy = st.policies.parse(doc, kind)?;
            if a.gate().pab.block_public_policy && policy.is_public() {
                return Err(S3Error::new(
                    S3ErrorCode::AccessDenied,
                    "Access Denied: Block Public Access refuses public bucket policies",
                ));
            }
            set(BucketConfigKind::Policy, Some(body.to_vec())).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Op::DeleteBucketPolicy => {
            set(BucketConfigKind::Policy, None).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Op::GetBucketPolicyStatus => {
            let grants = a.gate().bucket_grants(bucket)?;
            let gate = a.gate();
            let acl_public = gate.acls_count()
                && gate.public_grants_count()
                && access::grants_are_public(&grants);
            let public = gate.policy_is_public() || acl_public;
            let mut w = XmlWriter::new();
            w.open_root("PolicyStatus");
            w.elem("IsPublic", if public { "true" } else { "false" });
            w.close("PolicyStatus");
            Ok(xml_response(w.finish()))
        }
        Op::GetPublicAccessBlock => match policies::stored_public_access_block(st, name).await? {
            Some(p) => Ok(xml_response(public_access_block_xml(&p))),
            None => Err(S3Error::new(
                S3ErrorCode::NoSuchPublicAccessBlockConfiguration,
                "The public access block configuration was not found",
            )
            .with("BucketName", name.as_str())),
        },
        Op::PutPublicAccessBlock => {
            let body = read_small_body(a.caller(), req, 16 << 10).await?;
            let p = parse_public_access_block(&body)?;
            let value = serde_json::to_vec(&p).map_err(|e| S3Error::internal(e.to_string()))?;
            set(BucketConfigKind::PublicAccessBlock, Some(value)).await?;
            Ok(StatusCode::OK.into_response())
        }
        Op::DeletePublicAccessBlock => {
            set(BucketConfigKind::PublicAccessBlock, None).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Op::GetBucketOwnershipControls => match policies::bucket_ownership(st, name).await? {
            Some(o) => {
                let mut w = XmlWriter::new();
                w.open_root("OwnershipControls");
                w.open("Rule");
                w.elem("ObjectOwnership", o.as_str());
                w.close("Rule");
                w.close("OwnershipControls");
                Ok(xml_response(w.finish()))
            }
            None => Err(S3Error::new(
                S3ErrorCode::OwnershipControlsNotFoundError,
                "The bucket ownership controls were not found",
            )
            .with("BucketName", name.as_str())),
        },
        Op::PutBucketOwnershipControls => {
            let body = read_small_body(a.caller(), req, 16 << 10).await?;
            let o = parse_ownership(&body)?;
            if o == Ownership::BucketOwnerEnforced {
                // Only a bucket whose ACL gives nothing beyond its owner may stop ACLs.
                let grants = a.gate().bucket_grants(bucket)?;
                if grants != crate::acl::private(&bucket.owner) {
                    return Err(invalid_acl_with_ownership());
                }
            }
            set(
                BucketConfigKind::OwnershipControls,
                Some(o.as_str().as_bytes().to_vec()),
            )
            .await?;
            Ok(StatusCode::OK.into_response())
        }
        Op::DeleteBucketOwnershipControls => {
            set(BucketConfigKind::OwnershipControls, None).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        other => Err(S3Error::internal(format!(
            "{} is not an access configuration operation",
            other.name()
        ))),
    }
}

/// `<PublicAccessBlockConfiguration>` of `p`.
pub fn public_access_block_xml(p: &PublicAccessBlock) -> String {
    let b = |v: bool| if v { "true" } else { "false" };
    let mut w = XmlWriter::new();
    w.open_root("PublicAccessBlockConfiguration");
    w.elem("BlockPublicAcls", b(p.block_public_acls));
    w.elem("IgnorePublicAcls", b(p.ignore_public_acls));
    w.elem("BlockPublicPolicy", b(p.block_public_policy));
    w.elem("RestrictPublicBuckets", b(p.restrict_public_buckets));
    w.close("PublicAccessBlockConfiguration");
    w.finish()
}

#[derive(Deserialize)]
struct PabDoc {
    #[serde(rename = "BlockPublicAcls", default)]
    block_public_acls: Option<String>,
    #[serde(rename = "IgnorePublicAcls", default)]
    ignore_public_acls: Option<String>,
    #[serde(rename = "BlockPublicPolicy", default)]
    block_public_policy: Option<String>,
    #[serde(rename = "RestrictPublicBuckets", default)]
    restrict_public_buckets: Option<String>,
}

/// A `<PublicAccessBlockConfiguration>` body (an absent switch is off).
pub fn parse_public_access_block(body: &[u8]) -> Result<PublicAccessBlock, S3Error> {
    let doc: PabDoc = xml::parse(body).ok_or_else(S3Error::malformed_xml)?;
    let flag = |v: Option<String>| match v.as_deref().map(str::trim) {
        None => Ok(false),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(_) => Err(S3Error::malformed_xml()),
    };
    Ok(PublicAccessBlock {
        block_public_acls: flag(doc.block_public_acls)?,
        ignore_public_acls: flag(doc.ignore_public_acls)?,
        block_public_policy: flag(doc.block_public_policy)?,
        restrict_public_buckets: flag(doc.restrict_public_buckets)?,
    })
}

#[derive(Deserialize)]
struct OwnershipDoc {
    #[serde(rename = "Rule", default)]
    rules: Vec<OwnershipRule>,
}

#[derive(Deserialize)]
struct OwnershipRule {
    #[serde(rename = "ObjectOwnership")]
    object_ownership: String,
}

/// An `<OwnershipControls>` body: exactly one rule naming a known setting.
fn parse_ownership(body: &[u8]) -> Result<Ownership, S3Error> {
    let doc: OwnershipDoc = xml::parse(body).ok_or_else(S3Error::malformed_xml)?;
    match doc.rules.as_slice() {
        [rule] => Ownership::parse(rule.object_ownership.trim()).ok_or_else(S3Error::malformed_xml),
        _ => Err(S3Error::malformed_xml()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_access_block_documents_round_trip() {
        let p = PublicAccessBlock {
            block_public_acls: true,
            ignore_public_acls: false,
            block_public_policy: true,
            restrict_public_buckets: false,
        };
        let xml = public_access_block_xml(&p);
        assert_eq!(parse_public_access_block(xml.as_bytes()).unwrap(), p);
        let partial = b"<PublicAccessBlockConfiguration><IgnorePublicAcls>true</IgnorePublicAcls></PublicAccessBlockConfiguration>";
        assert!(
            parse_public_access_block(partial)
                .unwrap()
                .ignore_public_acls
        );
        let bad = b"<PublicAccessBlockConfiguration><BlockPublicAcls>yes</BlockPublicAcls></PublicAccessBlockConfiguration>";
        assert!(parse_public_access_block(bad).is_err());
    }

    #[test]
    fn ownership_documents_name_one_rule() {
        let doc = |v: &str| {
            format!("<OwnershipControls><Rule><ObjectOwnership>{v}</ObjectOwnership></Rule></OwnershipControls>")
        };
        assert_eq!(
            parse_ownership(doc("BucketOwnerEnforced").as_bytes()).unwrap(),
            Ownership::BucketOwnerEnforced
        );
        assert!(parse_ownership(doc("Nobody").as_bytes()).is_err());
        assert!(parse_ownership(b"<OwnershipControls></OwnershipControls>").is_err());
    }
}
