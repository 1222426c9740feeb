//! [`MetadataStore`] on RocksDB: one column family per [`Cf`]; commands are applied one at a
//! time in arrival order by the core's [`cairn_metadata::command::apply`], and those that
//! arrive together share one synced `WriteBatch` (group commit, [`group_commit`]). Reads are
//! the core's ([`cairn_metadata::read`]) over RocksDB iterators ([`view`]).
//!
//! The database also holds the column families a replicated store keeps its log in
//! ([`LOG_COLUMN_FAMILIES`]); the Raft store (`cairn-metadata-raft`) reaches the database
//! through [`RocksMetadataStore::db`] and applies committed batches through the same
//! [`cairn_metadata::overlay::Overlay`].

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use cairn_metadata::data_refs::{DataAddress, DataPage};
use cairn_metadata::keys::Cf;
use cairn_metadata::read;
use cairn_metadata::state::{RawKv, StateView};
use cairn_metadata::{
    AccessKeyRecord, BucketConfigKind, BucketRecord, Command, CommandOutput, GcEntry, ListPage,
    ListQuery, MetadataError, MetadataStore, ObjectRecord, PartRecord, Result, UploadPage,
    UploadQuery, UploadRecord, VersionPage, VersionQuery, VersionRecord, VersionSel,
};
use cairn_types::{BucketName, ObjectKey};
use rocksdb::{ColumnFamilyDescriptor, Options, DB};
use tokio::sync::oneshot;

mod group_commit;
pub mod view;

pub use rocksdb;

/// Column families kept for a replicated store's log and vote (`raft_log`, `raft_meta`),
/// created with the metadata state's so that a database can be opened either way.
pub const LOG_COLUMN_FAMILIES: [&str; 2] = ["raft_log", "raft_meta"];

/// Metadata in a local RocksDB database.
#[derive(Clone)]
pub struct RocksMetadataStore {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) db: DB,
    /// Serialises commits: each batch's commands see the writes of every earlier batch.
    write_lock: Mutex<()>,
    /// Commands waiting for the next group commit, in arrival order.
    pending: Mutex<Vec<PendingCommand>>,
    /// Synced write batches so far (for tests and figures).
    commits: AtomicU64,
}

type PendingCommand = (Command, oneshot::Sender<Result<CommandOutput>>);

/// A RocksDB error as a metadata error.
pub fn engine(e: rocksdb::Error) -> MetadataError {
    MetadataError::Engine(e.to_string())
}

impl RocksMetadataStore {
    /// Opens (creating if needed) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let cfs = Cf::ALL
            .iter()
            .map(|cf| cf.name())
            .chain(LOG_COLUMN_FAMILIES)
            .map(|name| ColumnFamilyDescriptor::new(name, Options::default()));
        let db = DB::open_cf_descriptors(&opts, dir, cfs).map_err(engine)?;
        Ok(RocksMetadataStore {
            inner: Arc::new(Inner {
                db,
                write_lock: Mutex::new(()),
                pending: Mutex::new(Vec::new()),
                commits: AtomicU64::new(0),
            }),
        })
    }

    /// Synced write batches made since the store was opened; with concurrent writers this
    /// grows slower than the number of commands (group commit).
    pub fn commit_count(&self) -> u64 {
        self.inner.commits.load(Ordering::Relaxed)
    }

    /// The database, for a replicated store that keeps its log beside the state.
    pub fn db(&self) -> &DB {
        &self.inner.db
    }

    /// The handle of one column family of the state.
    pub fn cf(&self, cf: Cf) -> Result<&rocksdb::ColumnFamily> {
        self.inner.cf(cf)
    }

    /// The handle of a column family by name (the state's or [`LOG_COLUMN_FAMILIES`]).
    pub fn cf_named(&self, name: &str) -> Result<&rocksdb::ColumnFamily> {
        self.inner.cf_named(name)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| MetadataError::Engine(format!("metadata task failed: {e}")))?
    }
}

impl Inner {
    pub(crate) fn cf(&self, cf: Cf) -> Result<&rocksdb::ColumnFamily> {
        self.cf_named(cf.name())
    }

    pub(crate) fn cf_named(&self, name: &str) -> Result<&rocksdb::ColumnFamily> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| MetadataError::Engine(format!("missing column family {name}")))
    }
}

/// The current state, for applying commands over it (the Raft state machine's batches).
impl StateView for RocksMetadataStore {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner.get(cf, key)
    }

    fn any_with_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<bool> {
        self.inner.any_with_prefix(cf, prefix)
    }

    fn scan_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<Vec<RawKv>> {
        self.inner.scan_prefix(cf, prefix)
    }
}

#[async_trait]
impl MetadataStore for RocksMetadataStore {
    async fn apply(&self, cmd: Command) -> Result<CommandOutput> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((cmd, tx));
        self.blocking(|inner| {
            inner.commit_pending();
            Ok(())
        })
        .await?;
        rx.await
            .map_err(|_| MetadataError::Engine("the metadata commit was dropped".into()))?
    }

    // Point lookups run in place: a memtable or block-cache hit takes microseconds, less
    // than handing the call to a blocking thread and back. Scans run on a blocking thread.

    async fn get_bucket(&self, name: &BucketName) -> Result<Option<BucketRecord>> {
        read::get_bucket(&*self.inner, name)
    }

    async fn list_buckets(&self) -> Result<Vec<BucketRecord>> {
        self.blocking(|inner| read::list_buckets(inner)).await
    }

    async fn get_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<Option<ObjectRecord>> {
        read::get_object(&*self.inner, bucket, key.as_str())
    }

    async fn list_objects(
        &self,
        bucket: &BucketName,
        query: &ListQuery,
    ) -> Result<ListPage<ObjectRecord>> {
        let (b, q) = (bucket.clone(), query.clone());
        self.blocking(move |inner| read::list_objects(inner, &b, &q))
            .await
    }

    async fn get_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        sel: &VersionSel,
    ) -> Result<Option<VersionRecord>> {
        let (b, k, sel) = (bucket.clone(), key.clone(), sel.clone());
        self.blocking(move |inner| read::get_version(inner, &b, k.as_str(), &sel))
            .await
    }

    async fn list_versions(
        &self,
        bucket: &BucketName,
        query: &VersionQuery,
    ) -> Result<VersionPage> {
        let (b, q) = (bucket.clone(), query.clone());
        self.blocking(move |inner| read::list_versions(inner, &b, &q))
            .await
    }

    async fn get_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
    ) -> Result<Option<UploadRecord>> {
        let (b, k, id) = (bucket.clone(), key.clone(), upload_id.to_string());
        self.blocking(move |inner| read::get_upload(inner, &b, k.as_str(), &id))
            .await
    }

    async fn list_parts(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        after: u32,
        max: usize,
    ) -> Result<(Vec<PartRecord>, bool)> {
        let (b, k, id) = (bucket.clone(), key.clone(), upload_id.to_string());
        self.blocking(move |inner| read::list_parts(inner, &b, k.as_str(), &id, after, max))
            .await
    }

    async fn list_uploads(&self, bucket: &BucketName, query: &UploadQuery) -> Result<UploadPage> {
        let (b, q) = (bucket.clone(), query.clone());
        self.blocking(move |inner| read::list_uploads(inner, &b, &q))
            .await
    }

    async fn get_access_key(&self, access_key: &str) -> Result<Option<AccessKeyRecord>> {
        read::get_access_key(&*self.inner, access_key)
    }

    async fn get_bucket_config(
        &self,
        bucket: &BucketName,
        kind: BucketConfigKind,
    ) -> Result<Option<Vec<u8>>> {
        read::get_bucket_config(&*self.inner, bucket, kind)
    }

    async fn get_bucket_configs(
        &self,
        bucket: &BucketName,
    ) -> Result<Vec<(BucketConfigKind, Vec<u8>)>> {
        read::get_bucket_configs(&*self.inner, bucket)
    }

    async fn list_access_keys(&self) -> Result<Vec<AccessKeyRecord>> {
        self.blocking(|inner| read::list_access_keys(inner)).await
    }

    async fn gc_pending(&self, limit: usize) -> Result<Vec<(u64, GcEntry)>> {
        self.blocking(move |inner| read::gc_pending(inner, limit))
            .await
    }

    async fn scan_data(&self, after: Option<DataAddress>, limit: usize) -> Result<DataPage> {
        self.blocking(move |inner| read::scan_data(inner, after.as_ref(), limit))
            .await
    }

    async fn get_sys(&self, key: &str) -> Result<Option<Vec<u8>>> {
        read::get_sys(&*self.inner, key)
    }

    async fn scan_sys(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let p = prefix.to_string();
        self.blocking(move |inner| read::scan_sys(inner, &p)).await
    }
}

#[cfg(test)]
mod tests;
