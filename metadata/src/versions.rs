//! Bucket versioning in the state machine: how writes, deletes and tag changes treat a
//! key's version history (called from [`crate::command::apply`]), and the point lookups of
//! versions.
//!
//! Where versions live: `objects` stays the view of each key's *current* object (what GET
//! without `versionId` and ListObjects read, unchanged in speed); `versions` holds every
//! version and delete marker of versioned buckets, newest first (see [`crate::keys`]), the
//! current object included. Rules, by the bucket's state ([`VersioningState`]):
//!
//! - Unversioned: exactly the pre-versioning behaviour; `versions` is never written, a
//!   replaced or deleted object's shards are queued for GC.
//! - Enabling versioning the first time copies every object of the bucket into `versions` as
//!   its `null` version (one command; the bucket's object count bounds its size).
//! - Enabled: a write adds a version with the id the command carries; a delete adds a delete
//!   marker; nothing is garbage-collected.
//! - Suspended: a write or delete replaces the `null` version (the replaced one's shards are
//!   queued for GC) with a new object or delete marker that becomes the newest.
//! - Deleting a version by id removes it for good (its shards are queued for GC in the same
//!   command); when it was the newest, the next one becomes current (`objects` follows: the
//!   next object, or nothing when it is a delete marker).
//!
//! A bucket can go from unversioned to Enabled or Suspended, and between those two, never
//! back to unversioned. Finding a version by id scans that key's versions.

use cairn_types::{BucketName, NodeId, ObjectKey, ShardId};
use serde::{Deserialize, Serialize};

use crate::keys::{self, Cf};
use crate::object_lock::{guard_removal, Removal};
use crate::records::{decode, encode, BucketConfigKind, ObjectRecord, VersionRecord};
use crate::state::{del, put, StateView, Write};
use crate::MetadataError;

type DeadShards = Vec<(NodeId, ShardId)>;

const VERSION_SEQ_KEY: &[u8] = b"version-next-seq";

/// A bucket's versioning state. Stored in `bucket_config` (kind `Versioning`) in the
/// versioned encoding of [`crate::records`] by [`crate::Command::SetVersioning`]; older
/// builds stored the text `Enabled` or `Suspended`, which still reads. Never versioned: no
/// value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum VersioningState {
    #[default]
    Unversioned,
    Enabled,
    Suspended,
}

impl crate::records::Stored for VersioningState {}

impl VersioningState {
    /// The stored configuration value (`None` for never versioned).
    pub fn parse(value: Option<&[u8]>) -> Result<Self, MetadataError> {
        let Some(raw) = value else {
            return Ok(VersioningState::Unversioned);
        };
        crate::records::decode_value(raw, "versioning state", |r| match r {
            b"Enabled" => Some(VersioningState::Enabled),
            b"Suspended" => Some(VersioningState::Suspended),
            _ => None,
        })
        .map_err(|_| {
            MetadataError::IllegalVersioning(format!(
                "unknown versioning status {:?}",
                String::from_utf8_lossy(raw)
            ))
        })
    }

    /// The value stored for this state.
    pub fn encode(self) -> Vec<u8> {
        crate::records::encode(&self)
    }
}

/// The versioning state of `bucket` (unversioned when never set).
pub async fn versioning(
    meta: &dyn crate::MetadataStore,
    bucket: &BucketName,
) -> Result<VersioningState, MetadataError> {
    let v = meta
        .get_bucket_config(bucket, BucketConfigKind::Versioning)
        .await?;
    VersioningState::parse(v.as_deref())
}

/// Checks that a bucket may go from its state to `next` (never back to unversioned) and,
/// the first time it is versioned, adopts its objects as `null` versions.
pub(crate) fn change_state(
    view: &dyn StateView,
    bucket: &BucketName,
    next: VersioningState,
    writes: &mut Vec<Write>,
) -> Result<(), MetadataError> {
    let locked = view
        .get(
            Cf::BucketConfig,
            &keys::bucket_config(bucket, BucketConfigKind::ObjectLock),
        )?
        .is_some();
    if locked && next != VersioningState::Enabled {
        return Err(MetadataError::InvalidBucketState(
            "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed.".into(),
        ));
    }
    match (state(view, bucket)?, next) {
        (VersioningState::Unversioned, VersioningState::Unversioned) => Ok(()),
        (_, VersioningState::Unversioned) => Err(MetadataError::IllegalVersioning(
            "versioning can be suspended but not turned off".into(),
        )),
        (VersioningState::Unversioned, _) => adopt_objects(view, bucket, writes),
        _ => Ok(()),
    }
}

/// Which version a request names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VersionSel {
    /// The current version (no `versionId`).
    Latest,
    /// `versionId=<id>`; `None` is `null`.
    Id(Option<String>),
}

/// What a delete did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deletion {
    /// The version removed or the delete marker created (`None` is `null`).
    pub version_id: Option<String>,
    /// A delete marker was created, or the version removed was one.
    pub delete_marker: bool,
    /// Something was there (always true when a marker was created).
    pub existed: bool,
}

pub(crate) fn state(
    view: &dyn StateView,
    bucket: &BucketName,
) -> Result<VersioningState, MetadataError> {
    let v = view.get(
        Cf::BucketConfig,
        &keys::bucket_config(bucket, BucketConfigKind::Versioning),
    )?;
    VersioningState::parse(v.as_deref())
}

/// Hands out version sequence numbers within one command; [`SeqAlloc::finish`] stores the
/// counter.
pub(crate) struct SeqAlloc {
    next: u64,
    start: u64,
}

impl SeqAlloc {
    pub(crate) fn new(view: &dyn StateView) -> Result<Self, MetadataError> {
        let next = match view.get(Cf::Sys, VERSION_SEQ_KEY)? {
            Some(v) => u64::from_be_bytes(
                v.as_slice()
                    .try_into()
                    .map_err(|_| MetadataError::Corrupt("bad version counter".into()))?,
            ),
            None => 0,
        };
        Ok(SeqAlloc { next, start: next })
    }

    pub(crate) fn take(&mut self) -> u64 {
        self.next += 1;
        self.next - 1
    }

    pub(crate) fn finish(self, writes: &mut Vec<Write>) {
        if self.next != self.start {
            writes.push(put(
                Cf::Sys,
                VERSION_SEQ_KEY.to_vec(),
                self.next.to_be_bytes().to_vec(),
            ));
        }
    }
}

/// A key's versions, newest first, with their `versions` keys.
pub(crate) fn load(
    view: &dyn StateView,
    bucket: &BucketName,
    key: &str,
) -> Result<Vec<(Vec<u8>, VersionRecord)>, MetadataError> {
    view.scan_prefix(Cf::Versions, &keys::versions_prefix(bucket, key))?
        .into_iter()
        .map(|(k, v)| Ok((k, decode(&v)?)))
        .collect()
}

fn current(
    view: &dyn StateView,
    bucket: &BucketName,
    key: &str,
) -> Result<Option<ObjectRecord>, MetadataError> {
    view.get(Cf::Objects, &keys::object(bucket, key))?
        .map(|v| decode(&v))
        .transpose()
}

/// Removes the `null` version of `key`, queueing its shards (refused when Object Lock
/// protects it: these commands carry no clock, so any retention holds).
fn remove_null(
    versions: &[(Vec<u8>, VersionRecord)],
    writes: &mut Vec<Write>,
    dead: &mut DeadShards,
) -> Result<(), MetadataError> {
    for (k, v) in versions.iter().filter(|(_, v)| v.version_id.is_none()) {
        if let Some(o) = &v.object {
            guard_removal(o, Removal::default())?;
            dead.extend(o.data.shards());
        }
        writes.push(del(Cf::Versions, k.clone()));
    }
    Ok(())
}

/// Writes `record` as the new current object of `key`; returns it with its final version id
/// (`None` unless versioning is enabled, when the record must carry one).
pub(crate) fn write_object(
    view: &dyn StateView,
    bucket: &BucketName,
    key: &ObjectKey,
    mut record: ObjectRecord,
    writes: &mut Vec<Write>,
    dead: &mut DeadShards,
) -> Result<ObjectRecord, MetadataError> {
    let k = keys::object(bucket, key.as_str());
    let st = state(view, bucket)?;
    match st {
        VersioningState::Unversioned => {
            record.version_id = None;
            if let Some(old) = current(view, bucket, key.as_str())? {
                guard_removal(&old, Removal::default())?;
                dead.extend(old.data.shards());
            }
        }
        VersioningState::Enabled | VersioningState::Suspended => {
            if st == VersioningState::Enabled {
                match &record.version_id {
                    Some(id) if valid_id(id) => {}
                    _ => {
                        return Err(MetadataError::InvalidArgument(
                            "a new version needs a valid version id".into(),
                        ))
                    }
                }
            } else {
                record.version_id = None;
                remove_null(&load(view, bucket, key.as_str())?, writes, dead)?;
            }
            let mut seqs = SeqAlloc::new(view)?;
            let version = VersionRecord {
                version_id: record.version_id.clone(),
                last_modified_ms: record.last_modified_ms,
                object: Some(record.clone()),
            };
            writes.push(put(
                Cf::Versions,
                keys::version(bucket, key.as_str(), seqs.take()),
                encode(&version),
            ));
            seqs.finish(writes);
        }
    }
    writes.push(put(Cf::Objects, k, encode(&record)));
    Ok(record)
}

/// A version id Cairn could have generated: non-empty printable ASCII, not `null`.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id != "null" && id.bytes().all(|b| b.is_ascii_graphic())
}

/// DeleteObject without a version id.
pub(crate) fn delete_current(
    view: &dyn StateView,
    bucket: &BucketName,
    key: &ObjectKey,
    marker_id: &str,
    marker_ms: i64,
    writes: &mut Vec<Write>,
    dead: &mut DeadShards,
) -> Result<Deletion, MetadataError> {
    let k = keys::object(bucket, key.as_str());
    let cur = current(view, bucket, key.as_str())?;
    if cur.is_some() {
        writes.push(del(Cf::Objects, k));
    }
    let st = state(view, bucket)?;
    let version_id = match st {
        VersioningState::Unversioned => {
            let existed = cur.is_some();
            if let Some(old) = cur {
                guard_removal(&old, Removal::default())?;
                dead.extend(old.data.shards());
            }
            return Ok(Deletion {
                version_id: None,
                delete_marker: false,
                existed,
            });
        }
        VersioningState::Enabled => {
            if !valid_id(marker_id) {
                return Err(MetadataError::InvalidArgument(
                    "a delete marker needs a valid version id".into(),
                ));
            }
            Some(marker_id.to_string())
        }
        VersioningState::Suspended => {
            remove_null(&load(view, bucket, key.as_str())?, writes, dead)?;
            None
        }
    };
    let mut seqs = SeqAlloc::new(view)?;
    let marker = VersionRecord {
        version_id: version_id.clone(),
        last_modified_ms: marker_ms,
        object: None,
    };
    writes.push(put(
        Cf::Versions,
        keys::version(bucket, key.as_str(), seqs.take()),
        encode(&marker),
    ));
    seqs.finish(writes);
    Ok(Deletion {
        version_id,
        delete_marker: true,
        existed: true,
    })
}

/// DeleteObject with a version id (`None` is `null`): removes that version for good, unless
/// Object Lock protects it (`how`).
pub(crate) fn delete_version(
    view: &dyn StateView,
    bucket: &BucketName,
    key: &ObjectKey,
    id: Option<&str>,
    how: Removal,
    writes: &mut Vec<Write>,
    dead: &mut DeadShards,
) -> Result<Deletion, MetadataError> {
    let versions = load(view, bucket, key.as_str())?;
    let gone = Deletion {
        version_id: id.map(str::to_string),
        delete_marker: false,
        existed: false,
    };
    if versions.is_empty() {
        // Never versioned: the object there is the null version.
        let cur = current(view, bucket, key.as_str())?;
        return match cur {
            Some(old) if id.is_none() && old.version_id.is_none() => {
                guard_removal(&old, how)?;
                dead.extend(old.data.shards());
                writes.push(del(Cf::Objects, keys::object(bucket, key.as_str())));
                Ok(Deletion {
                    existed: true,
                    ..gone
                })
            }
            _ => Ok(gone),
        };
    }
    let Some(i) = versions
        .iter()
        .position(|(_, v)| v.version_id.as_deref() == id)
    else {
        return Ok(gone);
    };
    let (k, v) = &versions[i];
    if let Some(o) = &v.object {
        guard_removal(o, how)?;
        dead.extend(o.data.shards());
    }
    writes.push(del(Cf::Versions, k.clone()));
    if i == 0 {
        let ok = keys::object(bucket, key.as_str());
        match versions.get(1).and_then(|(_, next)| next.object.as_ref()) {
            Some(next) => writes.push(put(Cf::Objects, ok, encode(next))),
            None => writes.push(del(Cf::Objects, ok)),
        }
    }
    Ok(Deletion {
        delete_marker: v.is_delete_marker(),
        existed: true,
        ..gone
    })
}

/// Changes one version in place with `change` (tags, ACL), in `versions` and, when it is
/// the current object, in `objects`; returns its version id.
pub(crate) fn update(
    view: &dyn StateView,
    bucket: &BucketName,
    key: &ObjectKey,
    sel: &VersionSel,
    writes: &mut Vec<Write>,
    change: impl Fn(&mut ObjectRecord),
) -> Result<Option<String>, MetadataError> {
    update_checked(view, bucket, key, sel, writes, |o| {
        change(o);
        Ok(())
    })
}

/// [`update`] with a change that may refuse (e.g. a retention Object Lock forbids).
pub(crate) fn update_checked(
    view: &dyn StateView,
    bucket: &BucketName,
    key: &ObjectKey,
    sel: &VersionSel,
    writes: &mut Vec<Write>,
    change: impl Fn(&mut ObjectRecord) -> Result<(), MetadataError>,
) -> Result<Option<String>, MetadataError> {
    let ok = keys::object(bucket, key.as_str());
    let cur = current(view, bucket, key.as_str())?;
    let versions = load(view, bucket, key.as_str())?;
    let want: Option<&str> = match sel {
        VersionSel::Latest => {
            let Some(cur) = &cur else {
                return Err(MetadataError::NoSuchKey);
            };
            cur.version_id.as_deref()
        }
        VersionSel::Id(id) => id.as_deref(),
    };
    if versions.is_empty() {
        return match cur {
            Some(mut rec) if rec.version_id.as_deref() == want => {
                change(&mut rec)?;
                writes.push(put(Cf::Objects, ok, encode(&rec)));
                Ok(None)
            }
            _ => Err(MetadataError::NoSuchVersion),
        };
    }
    let Some(i) = versions
        .iter()
        .position(|(_, v)| v.version_id.as_deref() == want)
    else {
        return Err(MetadataError::NoSuchVersion);
    };
    let (k, v) = &versions[i];
    let mut v = v.clone();
    let Some(obj) = v.object.as_mut() else {
        return Err(MetadataError::DeleteMarker);
    };
    change(obj)?;
    if i == 0 {
        writes.push(put(Cf::Objects, ok, encode(&*obj)));
    }
    writes.push(put(Cf::Versions, k.clone(), encode(&v)));
    Ok(v.version_id)
}

/// Copies every object of `bucket` into `versions` as its `null` version (versioning is
/// being enabled for the first time).
pub(crate) fn adopt_objects(
    view: &dyn StateView,
    bucket: &BucketName,
    writes: &mut Vec<Write>,
) -> Result<(), MetadataError> {
    let prefix = keys::object_prefix(bucket);
    let mut seqs = SeqAlloc::new(view)?;
    for (k, v) in view.scan_prefix(Cf::Objects, &prefix)? {
        let rec: ObjectRecord = decode(&v)?;
        let key = std::str::from_utf8(&k[prefix.len()..])
            .map_err(|e| MetadataError::Corrupt(e.to_string()))?;
        let version = VersionRecord {
            version_id: None,
            last_modified_ms: rec.last_modified_ms,
            object: Some(rec),
        };
        writes.push(put(
            Cf::Versions,
            keys::version(bucket, key, seqs.take()),
            encode(&version),
        ));
    }
    seqs.finish(writes);
    Ok(())
}

/// The version `sel` of `key`: for [`VersionSel::Latest`] the newest entry (possibly a
/// delete marker). Keys never versioned answer from `objects` (their object is `null`).
pub fn get(
    view: &dyn StateView,
    bucket: &BucketName,
    key: &str,
    sel: &VersionSel,
) -> Result<Option<VersionRecord>, MetadataError> {
    let versions = load(view, bucket, key)?;
    if versions.is_empty() {
        let cur = current(view, bucket, key)?.filter(|o| match sel {
            VersionSel::Latest => true,
            VersionSel::Id(id) => o.version_id.as_deref() == id.as_deref(),
        });
        return Ok(cur.map(|o| VersionRecord {
            version_id: o.version_id.clone(),
            last_modified_ms: o.last_modified_ms,
            object: Some(o),
        }));
    }
    Ok(match sel {
        VersionSel::Latest => versions.into_iter().next().map(|(_, v)| v),
        VersionSel::Id(id) => versions
            .into_iter()
            .map(|(_, v)| v)
            .find(|v| v.version_id == *id),
    })
}

#[cfg(test)]
#[path = "versions/tests.rs"]
mod tests;
