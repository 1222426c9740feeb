//! The data-governance steps of the state machine (Object Lock, lifecycle progress, quotas):
//! the commands [`crate::command::apply`] hands over, and which commands change a bucket's
//! data (whose usage [`crate::usage`] then brings up to date).

use cairn_types::BucketName;

use super::{queue_gc, require_bucket, Command, CommandOutput};
use crate::cluster_state;
use crate::keys::{self, Cf};
use crate::object_lock::{self, ObjectLock, ObjectLockConfig, Removal};
use crate::records::BucketConfigKind;
use crate::state::{del, put, StateView, Write};
use crate::usage;
use crate::versions::{self, VersioningState};
use crate::MetadataError;

/// The bucket whose data `cmd` changes, and whether it stores data (what a quota limits).
pub(super) fn data_bucket(cmd: &Command) -> Option<(&BucketName, bool)> {
    match cmd {
        Command::PutObject { bucket, .. }
        | Command::CompleteUpload { bucket, .. }
        | Command::PutPart { bucket, .. } => Some((bucket, true)),
        Command::DeleteObject { bucket, .. }
        | Command::DeleteVersion { bucket, .. }
        | Command::DeleteVersionAt { bucket, .. }
        | Command::AbortUpload { bucket, .. }
        | Command::SetObjectTags { bucket, .. }
        | Command::SetObjectAcl { bucket, .. }
        | Command::SetObjectAclIfUnchanged { bucket, .. }
        | Command::SetObjectRetention { bucket, .. }
        | Command::SetObjectLegalHold { bucket, .. }
        | Command::SetVersioning { bucket, .. } => Some((bucket, false)),
        _ => None,
    }
}

/// Applies a data-governance command.
pub(super) fn apply(
    view: &dyn StateView,
    cmd: &Command,
    writes: &mut Vec<Write>,
) -> Result<CommandOutput, MetadataError> {
    Ok(match cmd {
        Command::DeleteVersionAt {
            bucket,
            key,
            version_id,
            now_ms,
            bypass_governance,
        } => {
            require_bucket(view, bucket)?;
            let mut dead = Vec::new();
            let how = Removal {
                now_ms: Some(*now_ms),
                bypass_governance: *bypass_governance,
            };
            let d = versions::delete_version(
                view,
                bucket,
                key,
                version_id.as_deref(),
                how,
                writes,
                &mut dead,
            )?;
            queue_gc(view, writes, dead)?;
            CommandOutput::Deleted(d)
        }
        Command::SetObjectRetention {
            bucket,
            key,
            version,
            retention,
            now_ms,
            bypass_governance,
        } => {
            require_bucket(view, bucket)?;
            require_object_lock(view, bucket)?;
            let id = versions::update_checked(view, bucket, key, version, writes, |o| {
                let mut lock = ObjectLock::of(o);
                object_lock::check_retention_change(
                    lock.retention,
                    *retention,
                    *now_ms,
                    *bypass_governance,
                )?;
                lock.retention = *retention;
                lock.store(&mut o.headers);
                Ok(())
            })?;
            CommandOutput::Tagged(id)
        }
        Command::SetObjectLegalHold {
            bucket,
            key,
            version,
            on,
        } => {
            require_bucket(view, bucket)?;
            require_object_lock(view, bucket)?;
            let id = versions::update_checked(view, bucket, key, version, writes, |o| {
                let mut lock = ObjectLock::of(o);
                lock.legal_hold = Some(*on);
                lock.store(&mut o.headers);
                Ok(())
            })?;
            CommandOutput::Tagged(id)
        }
        Command::SetBucketQuota { bucket, quota } => {
            require_bucket(view, bucket)?;
            if usage::usage(view, bucket)?.is_none() {
                writes.push(usage::record(bucket, &usage::count(view, bucket)?));
            }
            let k = keys::bucket_config(bucket, BucketConfigKind::Quota);
            writes.push(match quota {
                Some(q) => put(Cf::BucketConfig, k, q.encode()),
                None => del(Cf::BucketConfig, k),
            });
            CommandOutput::Done
        }
        Command::SetLifecycleProgress(raw) => {
            writes.push(put(
                Cf::Sys,
                cluster_state::LIFECYCLE_PROGRESS_KEY.as_bytes().to_vec(),
                raw.clone(),
            ));
            CommandOutput::Done
        }
        other => {
            return Err(MetadataError::InvalidArgument(format!(
                "not a data-governance command: {other:?}"
            )))
        }
    })
}

/// Object Lock, once on, stays on; it needs versioning enabled, and its value must read.
pub(super) fn check_object_lock_config(
    view: &dyn StateView,
    bucket: &BucketName,
    value: Option<&[u8]>,
) -> Result<(), MetadataError> {
    let Some(raw) = value else {
        if view
            .get(
                Cf::BucketConfig,
                &keys::bucket_config(bucket, BucketConfigKind::ObjectLock),
            )?
            .is_some()
        {
            return Err(MetadataError::InvalidBucketState(
                "Object Lock cannot be turned off once it is enabled".into(),
            ));
        }
        return Ok(());
    };
    ObjectLockConfig::decode(raw)?;
    if versions::state(view, bucket)? != VersioningState::Enabled {
        return Err(MetadataError::InvalidBucketState(
            "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration"
                .into(),
        ));
    }
    Ok(())
}

/// Retention and legal holds exist only in buckets with Object Lock.
fn require_object_lock(view: &dyn StateView, bucket: &BucketName) -> Result<(), MetadataError> {
    match view.get(
        Cf::BucketConfig,
        &keys::bucket_config(bucket, BucketConfigKind::ObjectLock),
    )? {
        Some(_) => Ok(()),
        None => Err(MetadataError::InvalidBucketState(
            "Bucket is missing Object Lock Configuration".into(),
        )),
    }
}
