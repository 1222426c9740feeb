//! Which object version a request names (`versionId`, or the copy source's), looked up
//! through the object service with S3's answers for what is absent.

use std::sync::Arc;

use cairn_metadata::{ObjectRecord, VersionSel};
use cairn_types::{BucketName, ObjectKey};

use crate::error::{S3Error, S3ErrorCode};
use crate::query::Query;
use crate::ApiState;

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
    let found = st.objects.object_version(bucket, key, sel).await?;
    Ok((found.record, found.version_id))
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
}
