//! Cairn's metadata core: buckets, objects (with where their data lives) and their
//! versions, multipart uploads and their parts, access keys and the garbage-collection queue
//! — with no storage engine in it.
//!
//! Every mutation is a [`Command`] applied by the one deterministic state machine in
//! [`command::apply`], which reads through [`state::StateView`] and returns writes; every
//! read of [`MetadataStore`] is written once in [`read`] over [`read::ReadView`] (point
//! lookups, prefix scans, cursors), and the three listings share one prefix/delimiter fold
//! ([`fold`]). A storage engine implements those two views and nothing of the semantics.
//!
//! Engines: [`MemoryMetadataStore`] here (ordered maps, for tests and tools);
//! `cairn-metadata-rocks` (RocksDB, group commit) and `cairn-metadata-raft` (the same
//! commands through a Raft log, applied to a RocksDB replica on every node). All of them
//! pass the conformance suite [`testing::run_conformance`] (cargo feature `testing`).
//!
//! Module dependencies point one way: `state`, `keys`, `records` and `fold` are leaves;
//! the state-machine steps (`versions`, `multipart`, `access_keys`, `key_limits`,
//! `registry`, `data_refs`) use them; `command` uses the steps; `overlay`, `read` and
//! `memory` sit on top.

use async_trait::async_trait;
use cairn_types::{BucketName, ObjectKey};

pub mod access_keys;
pub mod cluster_state;
pub mod command;
pub mod data_refs;
pub mod fold;
pub mod key_limits;
pub mod keys;
pub mod list;
pub mod master_keys;
mod memory;
pub mod multipart;
pub mod object_lock;
pub mod overlay;
pub mod read;
pub mod records;
pub mod registry;
pub mod scrub_report;
pub mod state;
pub mod storage_class;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod usage;
pub mod version_list;
pub mod versions;

pub use command::{Command, CommandOutput, CompletePart, WriteCondition};
pub use data_refs::{DataAddress, DataEntry, DataPage, DataTable, ShardMove};
pub use list::{ListEntry, ListPage, ListQuery};
pub use memory::MemoryMetadataStore;
pub use multipart::{UploadEntry, UploadPage, UploadQuery, MAX_PART_NUMBER, MIN_PART_SIZE};
pub use records::{
    AccessKeyRecord, BucketConfigKind, BucketRecord, EncryptedData, Encryption, GcEntry, Grant,
    Grantee, ObjectAcl, ObjectData, ObjectRecord, PartData, PartRecord, Permission,
    PublicAccessBlock, SealedKey, ShardLoc, StoredChecksum, StripeLoc, TagSet, UploadRecord,
    VersionRecord, ANONYMOUS_OWNER, UPLOAD_SSE_HEADER,
};
pub use registry::DatanodeRecord;
pub use version_list::{VersionEntry, VersionPage, VersionQuery};
pub use versions::{Deletion, VersionSel, VersioningState};

/// Errors of the metadata crate.
#[derive(Debug, Clone, PartialEq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum MetadataError {
    #[error("the bucket does not exist")]
    NoSuchBucket,
    #[error("the bucket already exists (owner {owner})")]
    BucketExists { owner: String },
    #[error("the bucket is not empty")]
    BucketNotEmpty,
    #[error("the multipart upload does not exist (it may have been completed or aborted)")]
    NoSuchUpload,
    #[error("an upload with this id already exists")]
    UploadExists,
    #[error("invalid part: {0}")]
    InvalidPart(String),
    #[error("the list of parts was not in ascending order")]
    InvalidPartOrder,
    #[error("part {part_number} is smaller than the minimum allowed size")]
    EntityTooSmall { part_number: u32 },
    #[error("the object does not exist")]
    NoSuchKey,
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
    #[error("the version does not exist")]
    NoSuchVersion,
    #[error("the version is a delete marker")]
    DeleteMarker,
    #[error("illegal versioning configuration: {0}")]
    IllegalVersioning(String),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("stored metadata is corrupt: {0}")]
    Corrupt(String),
    #[error("metadata engine error: {0}")]
    Engine(String),
    /// No metadata quorum answered in time (leader unknown, or a majority of metadata nodes
    /// down), and the command certainly was not proposed: it never takes effect.
    #[error("metadata unavailable: {0}")]
    Unavailable(String),
    /// The command may have been proposed but no answer came (a timeout after proposing, a
    /// forwarded call whose answer was lost, leadership lost after the entry was appended):
    /// it may or may not take effect, possibly after this error was returned. Whatever the
    /// command refers to (written shards) must be kept; the orphan scrub removes it later if
    /// nothing ends up referring to it.
    #[error("metadata write outcome unknown: {0}")]
    Indeterminate(String),
    /// The record changed between the caller's check and its command (a concurrent
    /// writer won): nothing was done, the caller may check again and retry. (Variants are
    /// appended: forwarded-write replies carry this enum.)
    #[error("conflicting concurrent change: {0}")]
    Conflict(String),
    /// Object Lock protects the version (retention or legal hold): nothing was done.
    #[error("object locked: {0}")]
    ObjectLocked(String),
    /// The bucket's state does not allow the change (e.g. suspending versioning or turning
    /// off Object Lock on a bucket with Object Lock).
    #[error("invalid bucket state: {0}")]
    InvalidBucketState(String),
    /// The bucket's quota would be exceeded: nothing was done.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
}

impl MetadataError {
    /// Whether trying the same operation again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            MetadataError::Engine(_)
                | MetadataError::Unavailable(_)
                | MetadataError::Indeterminate(_)
        )
    }

    /// Whether the command that failed with this error may still have taken effect (or may
    /// yet): only then must the caller keep what it wrote for the command. Every other
    /// error is definite: the command did not and will not take effect.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, MetadataError::Indeterminate(_))
    }
}

pub type Result<T, E = MetadataError> = std::result::Result<T, E>;

/// The metadata service as the rest of Cairn sees it.
#[async_trait]
pub trait MetadataStore: Send + Sync + 'static {
    /// Applies one command durably (it survives a crash once this returns `Ok`).
    async fn apply(&self, cmd: Command) -> Result<CommandOutput>;
    async fn get_bucket(&self, name: &BucketName) -> Result<Option<BucketRecord>>;
    async fn list_buckets(&self) -> Result<Vec<BucketRecord>>;
    async fn get_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<Option<ObjectRecord>>;
    async fn list_objects(
        &self,
        bucket: &BucketName,
        query: &ListQuery,
    ) -> Result<ListPage<ObjectRecord>>;
    /// One version of an object, or the newest entry of its history (possibly a delete
    /// marker) for [`VersionSel::Latest`].
    async fn get_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        sel: &VersionSel,
    ) -> Result<Option<VersionRecord>>;
    async fn list_versions(&self, bucket: &BucketName, query: &VersionQuery)
        -> Result<VersionPage>;
    async fn get_access_key(&self, access_key: &str) -> Result<Option<AccessKeyRecord>>;
    /// One configuration document of a bucket, if set.
    async fn get_bucket_config(
        &self,
        bucket: &BucketName,
        kind: BucketConfigKind,
    ) -> Result<Option<Vec<u8>>>;
    /// Every configuration document of a bucket (one read for all: what authorizing a
    /// request needs — ACL, policy, Block Public Access, ownership — comes at once).
    async fn get_bucket_configs(
        &self,
        bucket: &BucketName,
    ) -> Result<Vec<(BucketConfigKind, Vec<u8>)>>;
    /// Every access key, in access-key order.
    async fn list_access_keys(&self) -> Result<Vec<AccessKeyRecord>>;
    /// The oldest GC entries, with their sequence numbers.
    async fn gc_pending(&self, limit: usize) -> Result<Vec<(u64, GcEntry)>>;
    /// A small system value (cluster settings and the like).
    async fn get_sys(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Every system value whose key starts with `prefix`, in key order.
    async fn scan_sys(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>>;
    /// Several system values at once (a replicated store makes one linearizable read).
    async fn get_sys_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            out.push(self.get_sys(k).await?);
        }
        Ok(out)
    }
    async fn get_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
    ) -> Result<Option<UploadRecord>>;
    /// Up to `max` parts of an upload numbered above `after`, in order, and whether more
    /// follow.
    async fn list_parts(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        after: u32,
        max: usize,
    ) -> Result<(Vec<PartRecord>, bool)>;
    async fn list_uploads(&self, bucket: &BucketName, query: &UploadQuery) -> Result<UploadPage>;
    /// Up to `limit` records that reference shards (see [`data_refs`]), strictly after
    /// `after`, in scan order.
    async fn scan_data(&self, after: Option<DataAddress>, limit: usize) -> Result<DataPage>;
}
