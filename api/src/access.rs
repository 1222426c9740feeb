//! Who may do what: a bucket and everything in it belong to the access key that created it;
//! every other key gets AccessDenied. Canned ACLs other than the owner-only ones are refused
//! with NotImplemented rather than accepted and ignored (no bucket or object can be public).

use std::sync::Arc;

use axum::http::HeaderMap;
use cairn_metadata::{BucketRecord, ObjectRecord};
use cairn_types::{BucketName, ObjectKey};

use crate::auth::Caller;
use crate::error::S3Error;
use crate::ApiState;

/// The bucket's record if `caller` owns it; NoSuchBucket or AccessDenied otherwise.
pub async fn require_owner(
    st: &Arc<ApiState>,
    caller: &Caller,
    bucket: &BucketName,
) -> Result<BucketRecord, S3Error> {
    let rec = st
        .meta()
        .get_bucket(bucket)
        .await?
        .ok_or_else(|| S3Error::no_such_bucket().with("BucketName", bucket.as_str()))?;
    if rec.owner != caller.access_key {
        return Err(S3Error::access_denied().with("BucketName", bucket.as_str()));
    }
    Ok(rec)
}

/// The current object at `key`, or NoSuchKey.
pub async fn require_object(
    st: &Arc<ApiState>,
    bucket: &BucketName,
    key: &ObjectKey,
) -> Result<ObjectRecord, S3Error> {
    st.meta()
        .get_object(bucket, key)
        .await?
        .ok_or_else(|| S3Error::no_such_key().with("Key", key.as_str()))
}

/// Canned ACLs that grant nothing beyond the owner (who owns bucket and objects alike).
const OWNER_ONLY_ACLS: [&str; 2] = ["private", "bucket-owner-full-control"];

/// Refuses `x-amz-acl` values that would make data public and explicit `x-amz-grant-*`
/// headers: Cairn cannot honour them, and silently ignoring them would mislead.
pub fn check_acl_headers(h: &HeaderMap) -> Result<(), S3Error> {
    if let Some(v) = h.get("x-amz-acl") {
        let v = v.to_str().unwrap_or("").trim();
        if !OWNER_ONLY_ACLS.contains(&v) {
            return Err(S3Error::not_implemented(&format!(
                "the canned ACL `{v}` (only private and bucket-owner-full-control)"
            )));
        }
    }
    if let Some(name) = h.keys().find(|n| n.as_str().starts_with("x-amz-grant-")) {
        return Err(S3Error::not_implemented(&format!("ACL grants ({name})")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_owner_acls_pass() {
        let mut h = HeaderMap::new();
        assert!(check_acl_headers(&h).is_ok());
        h.insert("x-amz-acl", "private".parse().unwrap());
        assert!(check_acl_headers(&h).is_ok());
        h.insert("x-amz-acl", "public-read".parse().unwrap());
        assert!(check_acl_headers(&h).is_err());
        let mut h = HeaderMap::new();
        h.insert("x-amz-grant-read", "uri=x".parse().unwrap());
        assert!(check_acl_headers(&h).is_err());
    }
}
