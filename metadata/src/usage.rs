//! Bucket usage and quotas in the state machine. A bucket's usage is the bytes and the object
//! versions it stores: every object version (current or not; delete markers hold no data
//! and are not counted) and every uploaded part of its incomplete multipart uploads (bytes
//! only). It is kept exact by deriving it from the state machine's own writes: after every
//! command on a bucket, [`account`] compares each record the command writes with the one it
//! replaces and adds the difference — so no command, present or future, can change data
//! without changing the usage, and a crash or a new Raft leader sees usage and data from
//! the same applied log.
//!
//! A quota (max bytes, max objects) is checked in the same step: a command that would take
//! usage past it is refused whole ([`MetadataError::QuotaExceeded`]); commands that free
//! space always pass. Buckets created since usage exists count from zero; an older bucket
//! is counted once, when it first gets a quota ([`Command::SetBucketQuota`]), by a scan.
//!
//! What is counted where: in a versioned bucket (versioning ever enabled) the `versions`
//! records, in an unversioned one the `objects` records (the same object is in both once
//! versioning is on), and `parts` always.

use cairn_types::BucketName;
use serde::{Deserialize, Serialize};

use crate::keys::{self, Cf};
use crate::records::{decode, BucketConfigKind, ObjectRecord, PartRecord, VersionRecord};
use crate::state::{put, StateView, Write};
use crate::versions::{self, VersioningState};
use crate::MetadataError;

#[cfg(doc)]
use crate::Command;

/// What a bucket stores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketUsage {
    pub bytes: u64,
    pub objects: u64,
}

/// A bucket's limits (either may be absent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketQuota {
    pub max_bytes: Option<u64>,
    pub max_objects: Option<u64>,
}

impl BucketUsage {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("plain struct serialises")
    }

    pub fn decode(raw: &[u8]) -> Result<Self, MetadataError> {
        serde_json::from_slice(raw)
            .map_err(|e| MetadataError::Corrupt(format!("bucket usage: {e}")))
    }

    /// What still fits under `quota`: `Err` names the limit `self` plus `bytes` and
    /// `objects` more would pass.
    pub fn check(&self, quota: &BucketQuota, bytes: u64, objects: u64) -> Result<(), String> {
        let want_bytes = self.bytes.saturating_add(bytes);
        let want_objects = self.objects.saturating_add(objects);
        if let Some(max) = quota.max_bytes.filter(|m| bytes > 0 && want_bytes > *m) {
            return Err(format!(
                "the bucket's quota of {max} bytes would be exceeded ({} stored, {bytes} more)",
                self.bytes
            ));
        }
        if let Some(max) = quota
            .max_objects
            .filter(|m| objects > 0 && want_objects > *m)
        {
            return Err(format!(
                "the bucket's quota of {max} objects would be exceeded ({} stored)",
                self.objects
            ));
        }
        Ok(())
    }
}

impl BucketQuota {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("plain struct serialises")
    }

    pub fn decode(raw: &[u8]) -> Result<Self, MetadataError> {
        serde_json::from_slice(raw)
            .map_err(|e| MetadataError::Corrupt(format!("bucket quota: {e}")))
    }
}

fn config(
    view: &dyn StateView,
    bucket: &BucketName,
    kind: BucketConfigKind,
) -> Result<Option<Vec<u8>>, MetadataError> {
    view.get(Cf::BucketConfig, &keys::bucket_config(bucket, kind))
}

/// The bucket's recorded usage (`None`: not counted yet).
pub(crate) fn usage(
    view: &dyn StateView,
    bucket: &BucketName,
) -> Result<Option<BucketUsage>, MetadataError> {
    config(view, bucket, BucketConfigKind::Usage)?
        .map(|raw| BucketUsage::decode(&raw))
        .transpose()
}

/// The write that records `usage` for `bucket`.
pub(crate) fn record(bucket: &BucketName, usage: &BucketUsage) -> Write {
    put(
        Cf::BucketConfig,
        keys::bucket_config(bucket, BucketConfigKind::Usage),
        usage.encode(),
    )
}

/// Bytes and objects one stored value of `cf` accounts for.
fn weight(cf: Cf, raw: Option<&[u8]>) -> Result<(i64, i64), MetadataError> {
    let Some(raw) = raw else { return Ok((0, 0)) };
    Ok(match cf {
        Cf::Versions => match decode::<VersionRecord>(raw)?.object {
            Some(o) => (o.size as i64, 1),
            None => (0, 0),
        },
        Cf::Objects => (decode::<ObjectRecord>(raw)?.size as i64, 1),
        Cf::Parts => (decode::<PartRecord>(raw)?.size as i64, 0),
        _ => (0, 0),
    })
}

/// Where `bucket`'s object versions are counted: `versions` once versioning was ever on,
/// else `objects` (the same object is in both once it is).
fn counted_cf(view: &dyn StateView, bucket: &BucketName) -> Result<Cf, MetadataError> {
    Ok(match versions::state(view, bucket)? {
        VersioningState::Unversioned => Cf::Objects,
        _ => Cf::Versions,
    })
}

/// Brings `bucket`'s usage up to date with `writes` (a command's, not yet applied) and, for a
/// command that stores data (`adds`), refuses it if that takes usage past the quota.
pub(crate) fn account(
    view: &dyn StateView,
    bucket: &BucketName,
    adds: bool,
    writes: &mut Vec<Write>,
) -> Result<(), MetadataError> {
    let Some(before) = usage(view, bucket)? else {
        return Ok(());
    };
    let counted = counted_cf(view, bucket)?;
    let prefix = keys::object_prefix(bucket);
    let (mut bytes, mut objects) = (0i64, 0i64);
    let mut seen = std::collections::BTreeSet::new();
    // The last write of a key wins; earlier ones never reach the store.
    for w in writes.iter().rev() {
        if !(w.cf == counted || w.cf == Cf::Parts) || !w.key.starts_with(&prefix) {
            continue;
        }
        if !seen.insert((w.cf.name(), w.key.clone())) {
            continue;
        }
        let (nb, no) = weight(w.cf, w.value.as_deref())?;
        let (ob, oo) = weight(w.cf, view.get(w.cf, &w.key)?.as_deref())?;
        bytes += nb - ob;
        objects += no - oo;
    }
    if bytes == 0 && objects == 0 {
        return Ok(());
    }
    if adds {
        if let Some(raw) = config(view, bucket, BucketConfigKind::Quota)? {
            let quota = BucketQuota::decode(&raw)?;
            before
                .check(&quota, bytes.max(0) as u64, objects.max(0) as u64)
                .map_err(MetadataError::QuotaExceeded)?;
        }
    }
    let after = BucketUsage {
        bytes: before.bytes.saturating_add_signed(bytes),
        objects: before.objects.saturating_add_signed(objects),
    };
    writes.push(record(bucket, &after));
    Ok(())
}

/// Counts a bucket's usage from scratch (a bucket older than usage accounting).
pub(crate) fn count(
    view: &dyn StateView,
    bucket: &BucketName,
) -> Result<BucketUsage, MetadataError> {
    let counted = counted_cf(view, bucket)?;
    let prefix = keys::object_prefix(bucket);
    let mut u = BucketUsage::default();
    for cf in [counted, Cf::Parts] {
        for (_, v) in view.scan_prefix(cf, &prefix)? {
            let (b, o) = weight(cf, Some(&v))?;
            u.bytes += b as u64;
            u.objects += o as u64;
        }
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_each_limit_only_when_it_grows() {
        let u = BucketUsage {
            bytes: 90,
            objects: 9,
        };
        let q = BucketQuota {
            max_bytes: Some(100),
            max_objects: Some(10),
        };
        assert!(u.check(&q, 10, 1).is_ok());
        assert!(u.check(&q, 11, 0).unwrap_err().contains("100 bytes"));
        assert!(u.check(&q, 0, 2).unwrap_err().contains("10 objects"));
        // Over quota already (a lowered quota): what adds nothing to a limit passes it.
        let over = BucketUsage {
            bytes: 500,
            objects: 50,
        };
        assert!(over.check(&q, 0, 0).is_ok());
        assert!(over
            .check(&BucketQuota::default(), 1 << 40, 1 << 20)
            .is_ok());
    }
}
