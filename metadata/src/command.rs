//! Every metadata mutation is a [`Command`]; [`apply`] is the one deterministic state machine
//! that turns a command plus the current state into a set of writes and an output.
//!
//! `apply` reads through [`StateView`] and returns [`Write`]s instead of touching an engine,
//! so the single-node RocksDB store and a replicated (Raft) store run exactly the same logic.
//! Determinism: `apply` reads no clock and no randomness; timestamps and ids travel inside the
//! command.

use std::collections::BTreeSet;

use cairn_types::{BucketName, EcScheme, NodeId, ObjectId, ObjectKey};
use serde::{Deserialize, Serialize};

use crate::access_keys;
use crate::cluster_state::{self, ClusterCaRecord, NodeRecord};
use crate::data_refs::{self, DataAddress, ShardMove};
use crate::keys::{self, Cf};
use crate::multipart;
pub use crate::multipart::CompletePart;
use crate::object_lock::{Removal, Retention};
use crate::records::{
    decode, encode, AccessKeyRecord, BucketConfigKind, BucketRecord, GcEntry, ObjectAcl,
    ObjectRecord, PartRecord, PublicAccessBlock, StoredChecksum, TagSet, UploadRecord,
};
use crate::scrub_report::ScrubReport;
use crate::state::{del, put};
pub use crate::state::{RawKv, StateView, Write};
use crate::usage::{self, BucketQuota};

mod governance;
use crate::versions::{self, Deletion, VersionSel, VersioningState};
use crate::MetadataError;

/// A metadata mutation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    CreateBucket(BucketRecord),
    /// Deletes an empty bucket; its multipart uploads in progress are aborted (their parts'
    /// shards queued for GC).
    DeleteBucket {
        name: BucketName,
    },
    /// Creates or replaces the object at `key` (see [`crate::versions`] for what happens to
    /// the one replaced). `record.version_id` is the id of the new version when the bucket
    /// has versioning enabled (ignored otherwise).
    PutObject {
        bucket: BucketName,
        key: ObjectKey,
        record: ObjectRecord,
        /// Checked against the current object in the same step as the write (conditional
        /// PUT), so two racing writers cannot both pass it.
        #[serde(default)]
        condition: WriteCondition,
    },
    /// Deletes the object at `key` (absent is not an error): unversioned, its shards are
    /// queued for GC; versioned, a delete marker with `marker_version_id` (when enabled) is
    /// added.
    DeleteObject {
        bucket: BucketName,
        key: ObjectKey,
        marker_version_id: String,
        marker_ms: i64,
    },
    /// Removes one version (`None`: the `null` version) for good; its shards are queued for
    /// GC. An unknown version is not an error.
    DeleteVersion {
        bucket: BucketName,
        key: ObjectKey,
        version_id: Option<String>,
    },
    /// Replaces the tag set of one version of an object.
    SetObjectTags {
        bucket: BucketName,
        key: ObjectKey,
        version: VersionSel,
        tags: TagSet,
    },
    /// Replaces the owner and grants of one version of an object (PutObjectAcl); nothing
    /// else about it changes, not even its modification time.
    SetObjectAcl {
        bucket: BucketName,
        key: ObjectKey,
        version: VersionSel,
        acl: ObjectAcl,
    },
    PutAccessKey(AccessKeyRecord),
    /// Removes GC entries whose shards have been deleted.
    GcDone {
        seqs: Vec<u64>,
    },
    /// Sets (`Some`) or removes (`None`) one configuration document of a bucket.
    SetBucketConfig {
        bucket: BucketName,
        kind: BucketConfigKind,
        value: Option<Vec<u8>>,
    },
    /// Registers a datanode of the cluster (see [`crate::registry`]); answers
    /// [`CommandOutput::Registered`] with its id.
    RegisterDatanode(crate::registry::DatanodeRecord),
    /// Sets a value in `sys`. Only replayed from old Raft logs: cluster state has typed
    /// commands now ([`crate::cluster_state`]), and `apply` refuses the keys it keeps
    /// ([`crate::cluster_state::owned_by_apply`]).
    SetSys {
        key: String,
        value: Vec<u8>,
    },
    /// Starts a multipart upload (CreateMultipartUpload); the id comes with the record.
    CreateUpload {
        bucket: BucketName,
        key: ObjectKey,
        upload: UploadRecord,
    },
    /// Records an uploaded part; a part already stored under the same number is replaced and
    /// its shards queued for GC.
    PutPart {
        bucket: BucketName,
        key: ObjectKey,
        upload_id: String,
        part: PartRecord,
    },
    /// Completes a multipart upload: the listed parts become the object at `key` (replacing
    /// any object there), parts not listed and the replaced object are queued for GC.
    CompleteUpload {
        bucket: BucketName,
        key: ObjectKey,
        upload_id: String,
        parts: Vec<CompletePart>,
        last_modified_ms: i64,
        /// The object's checksum (composite of the parts' checksums), computed by the caller
        /// from the part checksums it listed.
        checksum: Option<StoredChecksum>,
        /// The new version's id when the bucket has versioning enabled.
        version_id: String,
        /// Checked against the key's current object in the same step (conditional
        /// completion: `If-None-Match: *`, `If-Match`).
        #[serde(default)]
        condition: WriteCondition,
    },
    /// Aborts a multipart upload; every part's shards are queued for GC.
    AbortUpload {
        bucket: BucketName,
        key: ObjectKey,
        upload_id: String,
    },
    /// Records that shards of body `object` now live on other datanodes (repair, moving a
    /// misplaced shard home, rebalancing), at every address given that still references the
    /// body; a move whose shard is no longer on its `from` node is skipped.
    RelocateShards {
        at: Vec<DataAddress>,
        object: ObjectId,
        moves: Vec<ShardMove>,
    },
    /// [`Command::SetObjectAcl`] on the version a caller checked permission on, applied
    /// only if that version still has this ETag and modification time; otherwise
    /// [`MetadataError::Conflict`]. (The id alone does not pin a version: an overwrite of
    /// an unversioned key keeps the `null` id.)
    SetObjectAclIfUnchanged {
        bucket: BucketName,
        key: ObjectKey,
        version: VersionSel,
        acl: ObjectAcl,
        etag: String,
        last_modified_ms: i64,
    },
    // The access-key lifecycle ([`crate::access_keys`]). New variants go at the end: postcard
    // encodes the variant index, and Raft logs and snapshots keep old entries.
    /// Deletes an access key: its record goes, a tombstone stays (the id is never used
    /// again). The root key is refused.
    DeleteAccessKey {
        access_key: String,
        at_ms: i64,
    },
    /// Disables (`enabled: false`) or enables an access key; a disabled key signs nothing.
    /// The root key cannot be disabled.
    SetAccessKeyEnabled {
        access_key: String,
        enabled: bool,
        at_ms: i64,
    },
    /// Stores a new access key and makes it the root key; the previous root key stays, as an
    /// ordinary key.
    RotateRootKey {
        record: AccessKeyRecord,
    },
    /// Changes an existing key's rate-limit override ([`crate::key_limits`]): each dimension
    /// kept, cleared (the gateway default applies) or set.
    SetAccessKeyLimits {
        access_key: String,
        ops_per_sec: crate::key_limits::LimitChange,
        bytes_per_sec: crate::key_limits::LimitChange,
    },
    // Typed cluster state ([`crate::cluster_state`]), in place of `SetSys`.
    /// Replaces the set of drained datanodes.
    SetDrained {
        nodes: BTreeSet<NodeId>,
    },
    /// Sets the erasure coding of new writes, cluster-wide (at least one data shard).
    SetEcScheme(EcScheme),
    /// Makes an existing key the root key of a cluster that has none yet (see
    /// [`crate::access_keys`]).
    DesignateRootKey {
        access_key: String,
    },
    /// Stores the cluster CA unless one is stored (the first one stays).
    SetClusterCa(ClusterCaRecord),
    /// Records what a node says about itself at start, replacing its previous record.
    RecordNode(NodeRecord),
    /// Appends a scrub's summary (its report without findings) to the scrub history.
    RecordScrub(Box<ScrubReport>),
    /// Changes nothing; answered once applied, when every command before it is applied too
    /// (a write barrier).
    Barrier,
    /// Sets a bucket's versioning state (never back to unversioned); the first time, its
    /// objects become their `null` versions.
    SetVersioning {
        bucket: BucketName,
        state: VersioningState,
    },
    /// Sets (`Some`: the JSON document) or removes (`None`) an access key's identity policy
    /// (see [`crate::access_keys`]).
    SetAccessKeyPolicy {
        access_key: String,
        policy: Option<String>,
    },
    /// Sets (`Some`) or removes (`None`) the cluster-wide Block Public Access settings.
    SetPublicAccessBlock(Option<PublicAccessBlock>),
    /// [`Command::DeleteVersion`] at the gateway's clock `now_ms`: refused while Object Lock
    /// protects the version (GOVERNANCE yields to `bypass_governance`), see
    /// [`crate::object_lock`]. Every removal of a version by id uses this one.
    DeleteVersionAt {
        bucket: BucketName,
        key: ObjectKey,
        version_id: Option<String>,
        now_ms: i64,
        bypass_governance: bool,
    },
    /// Sets (`Some`) or removes (`None`) the retention of one version of an object in a
    /// bucket with Object Lock, as [`crate::object_lock::check_retention_change`] allows.
    SetObjectRetention {
        bucket: BucketName,
        key: ObjectKey,
        version: VersionSel,
        retention: Option<Retention>,
        now_ms: i64,
        bypass_governance: bool,
    },
    /// Puts on (`true`) or takes off the legal hold of one version of an object in a bucket
    /// with Object Lock.
    SetObjectLegalHold {
        bucket: BucketName,
        key: ObjectKey,
        version: VersionSel,
        on: bool,
    },
    /// Records the lifecycle worker's progress (where its run stands, what it has done), so
    /// that a new leader continues the run (opaque bytes, the worker's own format).
    SetLifecycleProgress(Vec<u8>),
    /// Sets (`Some`) or removes a bucket's quota; a bucket whose usage is not counted yet
    /// (older than usage accounting) is counted first (see [`crate::usage`]).
    SetBucketQuota {
        bucket: BucketName,
        quota: Option<BucketQuota>,
    },
    /// Forgets a drained datanode: its registry record and slot go, the slot is marked
    /// removed (see [`crate::registry::remove`]).
    RemoveDatanode {
        id: u32,
    },
    /// Gives an S3 storage class other than `STANDARD` an erasure coding (`None`: back to
    /// its built-in one, or none); see [`crate::storage_class`].
    SetStorageClass {
        name: String,
        ec: Option<EcScheme>,
    },
    /// Adds the next master key of SSE-S3, sealed (see [`crate::master_keys`]).
    AddMasterKey(crate::master_keys::StoredMasterKey),
    /// Replaces sealed data keys (old, new) in the record at `at`: master key rotation.
    RewrapKeys {
        at: crate::data_refs::DataAddress,
        keys: Vec<(crate::records::SealedKey, crate::records::SealedKey)>,
    },
    /// Records (or clears) how far re-wrapping data keys under the newest master key got.
    SetRewrapProgress(Option<crate::master_keys::RewrapProgress>),
    /// Adds a named key of the built-in KMS (sealed); a taken name is a conflict.
    AddKmsKey(crate::master_keys::StoredKmsKey),
}

/// A precondition of [`Command::PutObject`] on the key's current object.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum WriteCondition {
    /// Write whatever is there.
    #[default]
    Always,
    /// Write only if the key has no current object (`If-None-Match: *`).
    IfAbsent,
    /// Write only if the current object's ETag (unquoted) is this (`If-Match`); `*`: if
    /// there is a current object at all.
    IfMatch(String),
    /// Write unless the current object's ETag (unquoted) is this (`If-None-Match: <etag>`).
    IfNoneMatch(String),
}

/// What a command returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CommandOutput {
    Done,
    /// The object a put stored (with its final version id).
    Stored(Box<ObjectRecord>),
    /// What a delete did.
    Deleted(Deletion),
    /// The version whose tags (or ACL) were set.
    Tagged(Option<String>),
    /// The object a completed multipart upload created.
    Completed(Box<ObjectRecord>),
    /// Records changed by `RelocateShards`.
    Relocated(usize),
    /// The id a registered datanode has.
    Registered(u32),
}

const GC_SEQ_KEY: &[u8] = b"gc-next-seq";

/// Applies `cmd` to the state seen through `view`.
pub fn apply(
    view: &dyn StateView,
    cmd: &Command,
) -> Result<(Vec<Write>, CommandOutput), MetadataError> {
    let (mut writes, out) = apply_command(view, cmd)?;
    // Usage follows every command that changes a bucket's data (and quotas refuse the ones
    // that would take it too far): derived from the writes, see [`crate::usage`].
    if let Some((bucket, adds)) = governance::data_bucket(cmd) {
        usage::account(view, bucket, adds, &mut writes)?;
    }
    Ok((writes, out))
}

fn apply_command(
    view: &dyn StateView,
    cmd: &Command,
) -> Result<(Vec<Write>, CommandOutput), MetadataError> {
    let mut writes = Vec::new();
    let out = match cmd {
        Command::CreateBucket(rec) => {
            let k = keys::bucket(&rec.name);
            if let Some(existing) = view.get(Cf::Buckets, &k)? {
                let existing: BucketRecord = decode(&existing)?;
                return Err(MetadataError::BucketExists {
                    owner: existing.owner,
                });
            }
            writes.push(put(Cf::Buckets, k, encode(rec)));
            // A new bucket's usage is counted from the start.
            writes.push(usage::record(&rec.name, &usage::BucketUsage::default()));
            CommandOutput::Done
        }
        Command::DeleteBucket { name } => {
            let k = keys::bucket(name);
            if view.get(Cf::Buckets, &k)?.is_none() {
                return Err(MetadataError::NoSuchBucket);
            }
            if view.any_with_prefix(Cf::Objects, &keys::object_prefix(name))?
                || view.any_with_prefix(Cf::Versions, &keys::object_prefix(name))?
            {
                return Err(MetadataError::BucketNotEmpty);
            }
            let mut dead = Vec::new();
            multipart::abort_all(view, name, &mut writes, &mut dead)?;
            queue_gc(view, &mut writes, dead)?;
            writes.push(del(Cf::Buckets, k));
            for kind in BucketConfigKind::ALL {
                writes.push(del(Cf::BucketConfig, keys::bucket_config(name, kind)));
            }
            CommandOutput::Done
        }
        Command::PutObject {
            bucket,
            key,
            record,
            condition,
        } => {
            require_bucket(view, bucket)?;
            check_condition(view, bucket, key, condition)?;
            let mut dead = Vec::new();
            let rec =
                versions::write_object(view, bucket, key, record.clone(), &mut writes, &mut dead)?;
            queue_gc(view, &mut writes, dead)?;
            CommandOutput::Stored(Box::new(rec))
        }
        Command::DeleteObject {
            bucket,
            key,
            marker_version_id,
            marker_ms,
        } => {
            require_bucket(view, bucket)?;
            let mut dead = Vec::new();
            let d = versions::delete_current(
                view,
                bucket,
                key,
                marker_version_id,
                *marker_ms,
                &mut writes,
                &mut dead,
            )?;
            queue_gc(view, &mut writes, dead)?;
            CommandOutput::Deleted(d)
        }
        Command::DeleteVersion {
            bucket,
            key,
            version_id,
        } => {
            require_bucket(view, bucket)?;
            let mut dead = Vec::new();
            let d = versions::delete_version(
                view,
                bucket,
                key,
                version_id.as_deref(),
                Removal::default(),
                &mut writes,
                &mut dead,
            )?;
            queue_gc(view, &mut writes, dead)?;
            CommandOutput::Deleted(d)
        }
        Command::DeleteVersionAt { .. }
        | Command::SetObjectRetention { .. }
        | Command::SetObjectLegalHold { .. }
        | Command::SetBucketQuota { .. }
        | Command::SetLifecycleProgress(_) => governance::apply(view, cmd, &mut writes)?,
        Command::SetObjectTags {
            bucket,
            key,
            version,
            tags,
        } => {
            require_bucket(view, bucket)?;
            let id = versions::update(view, bucket, key, version, &mut writes, |o| {
                o.tags = tags.clone()
            })?;
            CommandOutput::Tagged(id)
        }
        Command::SetObjectAcl {
            bucket,
            key,
            version,
            acl,
        } => {
            require_bucket(view, bucket)?;
            let id = versions::update(view, bucket, key, version, &mut writes, |o| {
                o.acl = Some(acl.clone())
            })?;
            CommandOutput::Tagged(id)
        }
        Command::SetObjectAclIfUnchanged {
            bucket,
            key,
            version,
            acl,
            etag,
            last_modified_ms,
        } => {
            require_bucket(view, bucket)?;
            let changed = std::cell::Cell::new(false);
            let id = versions::update(view, bucket, key, version, &mut writes, |o| {
                if o.etag != *etag || o.last_modified_ms != *last_modified_ms {
                    changed.set(true);
                }
                o.acl = Some(acl.clone())
            })?;
            if changed.get() {
                return Err(MetadataError::Conflict(
                    "the object changed while its ACL was being set".into(),
                ));
            }
            CommandOutput::Tagged(id)
        }
        Command::CreateUpload {
            bucket,
            key,
            upload,
        } => {
            require_bucket(view, bucket)?;
            multipart::create(view, bucket, key, upload, &mut writes)?;
            CommandOutput::Done
        }
        Command::PutPart {
            bucket,
            key,
            upload_id,
            part,
        } => {
            require_bucket(view, bucket)?;
            let mut dead = Vec::new();
            multipart::put_part(view, bucket, key, upload_id, part, &mut writes, &mut dead)?;
            queue_gc(view, &mut writes, dead)?;
            CommandOutput::Done
        }
        Command::CompleteUpload {
            bucket,
            key,
            upload_id,
            parts,
            last_modified_ms,
            checksum,
            version_id,
            condition,
        } => {
            require_bucket(view, bucket)?;
            // A repeat of a completion that was done is answered below, whatever the
            // condition says now; a completion that is to happen must pass it.
            let pending = view
                .get(Cf::Uploads, &keys::upload(bucket, key.as_str(), upload_id))?
                .is_some();
            if pending {
                check_condition(view, bucket, key, condition)?;
            }
            let mut dead = Vec::new();
            let completion = multipart::Completion {
                bucket,
                key,
                upload_id,
                parts,
                last_modified_ms: *last_modified_ms,
                checksum: checksum.clone(),
            };
            let record = match multipart::complete(view, completion, &mut writes, &mut dead) {
                Err(MetadataError::NoSuchUpload) => {
                    match multipart::already_completed(view, bucket, key, upload_id, parts)? {
                        Some(made) => {
                            return Ok((Vec::new(), CommandOutput::Completed(Box::new(made))))
                        }
                        None => return Err(MetadataError::NoSuchUpload),
                    }
                }
                r => r?,
            };
            let record = ObjectRecord {
                version_id: Some(version_id.clone()),
                ..record
            };
            let record = versions::write_object(view, bucket, key, record, &mut writes, &mut dead)?;
            queue_gc(view, &mut writes, dead)?;
            CommandOutput::Completed(Box::new(record))
        }
        Command::AbortUpload {
            bucket,
            key,
            upload_id,
        } => {
            require_bucket(view, bucket)?;
            let mut dead = Vec::new();
            multipart::abort(view, bucket, key, upload_id, &mut writes, &mut dead)?;
            queue_gc(view, &mut writes, dead)?;
            CommandOutput::Done
        }
        Command::PutAccessKey(rec) => {
            access_keys::put_key(view, rec, &mut writes)?;
            CommandOutput::Done
        }
        Command::DeleteAccessKey { access_key, at_ms } => {
            access_keys::delete(view, access_key, *at_ms, &mut writes)?;
            CommandOutput::Done
        }
        Command::SetAccessKeyEnabled {
            access_key,
            enabled,
            at_ms,
        } => {
            access_keys::set_enabled(view, access_key, *enabled, *at_ms, &mut writes)?;
            CommandOutput::Done
        }
        Command::RotateRootKey { record } => {
            access_keys::rotate_root(view, record, &mut writes)?;
            CommandOutput::Done
        }
        Command::SetAccessKeyLimits {
            access_key,
            ops_per_sec,
            bytes_per_sec,
        } => {
            crate::key_limits::set(view, access_key, *ops_per_sec, *bytes_per_sec, &mut writes)?;
            CommandOutput::Done
        }
        Command::SetBucketConfig {
            bucket,
            kind,
            value,
        } => {
            require_bucket(view, bucket)?;
            if *kind == BucketConfigKind::Versioning {
                // Old logs; the versioning state has its own command now.
                let next = VersioningState::parse(value.as_deref())?;
                versions::change_state(view, bucket, next, &mut writes)?;
            }
            if *kind == BucketConfigKind::ObjectLock {
                governance::check_object_lock_config(view, bucket, value.as_deref())?;
            }
            if matches!(kind, BucketConfigKind::Quota | BucketConfigKind::Usage) {
                return Err(MetadataError::InvalidArgument(
                    "quotas and usage have their own command".into(),
                ));
            }
            writes.push(Write {
                cf: Cf::BucketConfig,
                key: keys::bucket_config(bucket, *kind),
                value: value.clone(),
            });
            CommandOutput::Done
        }
        Command::SetVersioning { bucket, state } => {
            require_bucket(view, bucket)?;
            versions::change_state(view, bucket, *state, &mut writes)?;
            let k = keys::bucket_config(bucket, BucketConfigKind::Versioning);
            if *state != VersioningState::Unversioned {
                writes.push(put(Cf::BucketConfig, k, state.encode()));
            }
            CommandOutput::Done
        }
        Command::SetSys { key, value } => {
            if cluster_state::owned_by_apply(key) {
                return Err(MetadataError::InvalidArgument(format!(
                    "sys key {key:?} is kept by the state machine; only its own command \
                     changes it"
                )));
            }
            writes.push(put(Cf::Sys, key.as_bytes().to_vec(), value.clone()));
            CommandOutput::Done
        }
        Command::SetDrained { nodes } => {
            // Only registered datanodes: a gateway whose view predates a removal may still
            // list the removed one.
            let mut kept = BTreeSet::new();
            for n in nodes {
                if view
                    .get(Cf::Sys, crate::registry::record_key(n.0).as_bytes())?
                    .is_some()
                {
                    kept.insert(*n);
                }
            }
            cluster_state::set_drained(&kept, &mut writes);
            CommandOutput::Done
        }
        Command::SetEcScheme(ec) => {
            cluster_state::set_ec(ec, &mut writes)?;
            CommandOutput::Done
        }
        Command::DesignateRootKey { access_key } => {
            access_keys::designate_root(view, access_key, &mut writes)?;
            CommandOutput::Done
        }
        Command::SetClusterCa(ca) => {
            cluster_state::set_ca(view, ca, &mut writes)?;
            CommandOutput::Done
        }
        Command::RecordNode(rec) => {
            cluster_state::record_node(rec, &mut writes);
            CommandOutput::Done
        }
        Command::RecordScrub(report) => {
            cluster_state::record_scrub(view, report, &mut writes)?;
            CommandOutput::Done
        }
        Command::Barrier => CommandOutput::Done,
        Command::SetAccessKeyPolicy { access_key, policy } => {
            access_keys::set_policy(view, access_key, policy.as_deref(), &mut writes)?;
            CommandOutput::Done
        }
        Command::SetPublicAccessBlock(pab) => {
            cluster_state::set_public_access_block(pab.as_ref(), &mut writes);
            CommandOutput::Done
        }
        Command::RegisterDatanode(rec) => {
            CommandOutput::Registered(crate::registry::register(view, rec.clone(), &mut writes)?)
        }
        Command::RemoveDatanode { id } => {
            crate::registry::remove(view, *id, &mut writes)?;
            let mut drained = cluster_state::drained_in(view)?;
            if !drained.remove(&NodeId(*id)) {
                return Err(MetadataError::InvalidArgument(format!(
                    "datanode {id} is not drained: drain it and move its shards off first"
                )));
            }
            cluster_state::set_drained(&drained, &mut writes);
            CommandOutput::Done
        }
        Command::SetStorageClass { name, ec } => {
            crate::storage_class::set(name, ec.as_ref(), &mut writes)?;
            CommandOutput::Done
        }
        Command::AddMasterKey(_) | Command::SetRewrapProgress(_) | Command::AddKmsKey(_) => {
            crate::master_keys::apply(view, cmd, &mut writes)?
        }
        Command::RewrapKeys { at, keys } => {
            CommandOutput::Relocated(data_refs::rewrap(view, at, keys, &mut writes)?)
        }
        Command::RelocateShards { at, object, moves } => {
            CommandOutput::Relocated(data_refs::relocate(view, at, *object, moves, &mut writes)?)
        }
        Command::GcDone { seqs } => {
            for s in seqs {
                writes.push(del(Cf::Gc, s.to_be_bytes().to_vec()));
            }
            CommandOutput::Done
        }
    };
    Ok((writes, out))
}

/// Fails with `PreconditionFailed` (or `NoSuchKey` for `IfMatch` on a missing key) when the
/// current object at `key` does not satisfy `condition`.
fn check_condition(
    view: &dyn StateView,
    bucket: &BucketName,
    key: &ObjectKey,
    condition: &WriteCondition,
) -> Result<(), MetadataError> {
    if *condition == WriteCondition::Always {
        return Ok(());
    }
    let current: Option<ObjectRecord> = view
        .get(Cf::Objects, &keys::object(bucket, key.as_str()))?
        .map(|b| decode(&b))
        .transpose()?;
    condition.check(current.as_ref())
}

impl WriteCondition {
    /// Whether a write under this condition may replace `current` (the key's current object,
    /// `None` when there is none). The one check of a write condition: [`apply`] makes it in
    /// the same step as the write, and a writer may make it early to refuse a body before
    /// storing it.
    pub fn check(&self, current: Option<&ObjectRecord>) -> Result<(), MetadataError> {
        match (self, current) {
            (WriteCondition::IfAbsent, Some(_)) => Err(MetadataError::PreconditionFailed(
                "an object already exists at this key (If-None-Match: *)".into(),
            )),
            (WriteCondition::IfMatch(_), None) => Err(MetadataError::NoSuchKey),
            (WriteCondition::IfNoneMatch(etag), Some(cur)) if cur.etag == *etag => {
                Err(MetadataError::PreconditionFailed(format!(
                    "the current ETag is \"{etag}\" (If-None-Match)"
                )))
            }
            (WriteCondition::IfMatch(etag), Some(cur)) if etag != "*" && cur.etag != *etag => {
                Err(MetadataError::PreconditionFailed(format!(
                    "the current ETag is \"{}\", not \"{etag}\" (If-Match)",
                    cur.etag
                )))
            }
            _ => Ok(()),
        }
    }
}

fn require_bucket(view: &dyn StateView, bucket: &BucketName) -> Result<(), MetadataError> {
    match view.get(Cf::Buckets, &keys::bucket(bucket))? {
        Some(_) => Ok(()),
        None => Err(MetadataError::NoSuchBucket),
    }
}

/// Queues `shards` for GC as one entry. Call at most once per command: the sequence number
/// is read from the state the command started from.
fn queue_gc(
    view: &dyn StateView,
    writes: &mut Vec<Write>,
    shards: Vec<(cairn_types::NodeId, cairn_types::ShardId)>,
) -> Result<(), MetadataError> {
    if shards.is_empty() {
        return Ok(());
    }
    let seq = match view.get(Cf::Sys, GC_SEQ_KEY)? {
        Some(v) if v.len() == 8 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&v);
            u64::from_be_bytes(b)
        }
        _ => 0,
    };
    writes.push(put(
        Cf::Gc,
        seq.to_be_bytes().to_vec(),
        encode(&GcEntry { shards }),
    ));
    writes.push(put(
        Cf::Sys,
        GC_SEQ_KEY.to_vec(),
        (seq + 1).to_be_bytes().to_vec(),
    ));
    Ok(())
}
