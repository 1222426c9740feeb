//! Bucket usage and quotas: usage follows every write, overwrite and delete, versioned or
//! not; a quota refuses what would pass it and nothing else.

use super::fixtures::*;
use super::{case, check_eq, check_err, Case, CaseResult};
use crate::records::BucketConfigKind;
use crate::usage::{BucketQuota, BucketUsage};
use crate::versions::VersioningState;
use crate::{Command, MetadataError, MetadataStore};

pub fn cases() -> Vec<Case> {
    vec![case!(usage::follows_every_change_and_quotas_refuse)]
}

async fn usage(s: &dyn MetadataStore) -> Result<BucketUsage, MetadataError> {
    let raw = s.get_bucket_config(&b(), BucketConfigKind::Usage).await?;
    BucketUsage::decode(&raw.unwrap_or_default())
}

fn u(bytes: u64, objects: u64) -> BucketUsage {
    BucketUsage { bytes, objects }
}

pub async fn follows_every_change_and_quotas_refuse(s: &dyn MetadataStore) -> CaseResult {
    let bucket = b();
    create_bucket(s, &bucket).await?;
    check_eq!(usage(s).await?, u(0, 0));
    let put = |k: &str, size: u64, v: &str| {
        let mut rec = versioned(inline("e"), v);
        rec.size = size;
        Command::PutObject {
            bucket: b(),
            key: key(k),
            record: rec,
            condition: Default::default(),
        }
    };
    s.apply(put("k1", 100, "v1")).await?;
    s.apply(put("k1", 150, "v1")).await?; // an overwrite replaces
    s.apply(put("k2", 50, "v1")).await?;
    check_eq!(usage(s).await?, u(200, 2));
    s.apply(Command::SetBucketQuota {
        bucket: b(),
        quota: Some(BucketQuota {
            max_bytes: Some(1000),
            max_objects: Some(2),
        }),
    })
    .await?;
    check_err!(
        s.apply(put("k3", 1, "v1")).await,
        MetadataError::QuotaExceeded(_)
    );
    s.apply(put("k1", 150, "v1")).await?; // no growth: allowed at the limit
    check_err!(
        s.apply(put("k1", 2000, "v1")).await,
        MetadataError::QuotaExceeded(_)
    );
    s.apply(Command::DeleteObject {
        bucket: b(),
        key: key("k2"),
        marker_version_id: "m".into(),
        marker_ms: 5,
    })
    .await?;
    check_eq!(usage(s).await?, u(150, 1));
    // Versioned: history counts, a delete marker holds nothing, removing a version frees it.
    s.apply(Command::SetVersioning {
        bucket: b(),
        state: VersioningState::Enabled,
    })
    .await?;
    check_eq!(usage(s).await?, u(150, 1));
    s.apply(put("k1", 100, "v2")).await?;
    check_eq!(usage(s).await?, u(250, 2));
    s.apply(Command::DeleteObject {
        bucket: b(),
        key: key("k1"),
        marker_version_id: "m1".into(),
        marker_ms: 6,
    })
    .await?;
    check_eq!(usage(s).await?, u(250, 2));
    check_err!(
        s.apply(put("k9", 1, "v3")).await,
        MetadataError::QuotaExceeded(_)
    );
    s.apply(Command::DeleteVersionAt {
        bucket: b(),
        key: key("k1"),
        version_id: Some("v2".into()),
        now_ms: 7,
        bypass_governance: false,
    })
    .await?;
    check_eq!(usage(s).await?, u(150, 1));
    s.apply(Command::SetBucketQuota {
        bucket: b(),
        quota: None,
    })
    .await?;
    s.apply(put("k9", 1, "v3")).await?;
    check_eq!(usage(s).await?, u(151, 2));
    // Only the state machine writes usage and quotas.
    check_err!(
        s.apply(Command::SetBucketConfig {
            bucket,
            kind: BucketConfigKind::Usage,
            value: Some(b"{}".to_vec())
        })
        .await,
        MetadataError::InvalidArgument(_)
    );
    Ok(())
}
