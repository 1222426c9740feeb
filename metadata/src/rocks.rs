//! [`MetadataStore`] on RocksDB: one column family per [`Cf`]; commands are applied one at a
//! time in arrival order, and those that arrive together share one synced `WriteBatch`
//! (group commit, [`crate::group_commit`]).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use cairn_types::{BucketName, ObjectKey};
use rocksdb::{ColumnFamilyDescriptor, DBRawIterator, Options, WriteBatch, WriteOptions, DB};
use tokio::sync::oneshot;

use crate::command::{Command, CommandOutput, RawKv, StateView};
use crate::data_refs::{self, DataAddress, DataPage, DataTable};
use crate::group_commit::Overlay;
use crate::keys::{self, Cf};
use crate::list::{self, KeyCursor, ListPage, ListQuery, RawEntry};
use crate::multipart::{self, UploadPage, UploadQuery};
use crate::records::{
    decode, AccessKeyRecord, BucketConfigKind, BucketRecord, GcEntry, ObjectRecord, PartRecord,
    UploadRecord,
};
use crate::version_list::{self, VersionPage, VersionQuery};
use crate::versions::{self, VersionSel};
use crate::{MetadataError, MetadataStore, Result, VersionRecord};

/// Metadata in a local RocksDB database.
#[derive(Clone)]
pub struct RocksMetadataStore {
    pub(crate) inner: Arc<Inner>,
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

pub(crate) fn engine(e: rocksdb::Error) -> MetadataError {
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
            .chain(crate::raft::RAFT_CFS)
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
    /// A cursor over the keys of one bucket (`prefix`) in `cf`.
    fn bucket_cursor(&self, cf: Cf, prefix: Vec<u8>) -> Result<BucketCursor<'_>> {
        Ok(BucketCursor {
            it: self.db.raw_iterator_cf(self.cf(cf)?),
            prefix,
            started: false,
        })
    }

    pub(crate) fn cf(&self, cf: Cf) -> Result<&rocksdb::ColumnFamily> {
        self.cf_named(cf.name())
    }

    pub(crate) fn cf_named(&self, name: &str) -> Result<&rocksdb::ColumnFamily> {
        self.db
            .cf_handle(name)
            .ok_or_else(|| MetadataError::Engine(format!("missing column family {name}")))
    }

    /// Commits every pending command as one batch (see [`crate::group_commit`]); the
    /// callers hear back through their channels. Returns at once when another commit took
    /// them all.
    fn commit_pending(&self) {
        let _guard = self
            .write_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let batch =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        if batch.is_empty() {
            return;
        }
        let mut overlay = Overlay::new(self);
        let mut results = Vec::with_capacity(batch.len());
        for (cmd, reply) in batch {
            results.push((overlay.apply(&cmd), reply));
        }
        let writes = overlay.into_writes();
        let written = if writes.is_empty() {
            Ok(())
        } else {
            self.write_synced(writes)
        };
        self.commits.fetch_add(1, Ordering::Relaxed);
        for (result, reply) in results {
            let result = match (&written, result) {
                (Err(e), Ok(_)) => Err(MetadataError::Engine(e.to_string())),
                (_, r) => r,
            };
            let _ = reply.send(result);
        }
    }

    fn write_synced(&self, writes: Vec<(Cf, Vec<u8>, Option<Vec<u8>>)>) -> Result<()> {
        let mut batch = WriteBatch::default();
        for (cf, key, value) in writes {
            let cf = self.cf(cf)?;
            match value {
                Some(v) => batch.put_cf(cf, key, v),
                None => batch.delete_cf(cf, key),
            }
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(batch, &wo).map_err(engine)
    }
}

impl StateView for Inner {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db.get_cf(self.cf(cf)?, key).map_err(engine)
    }

    fn any_with_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<bool> {
        let mut it = self.db.raw_iterator_cf(self.cf(cf)?);
        it.seek(prefix);
        if it.valid() {
            return Ok(it.key().is_some_and(|k| k.starts_with(prefix)));
        }
        it.status().map_err(engine)?;
        Ok(false)
    }

    fn scan_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<Vec<RawKv>> {
        let mut it = self.db.raw_iterator_cf(self.cf(cf)?);
        it.seek(prefix);
        let mut out = Vec::new();
        while it.valid() {
            match (it.key(), it.value()) {
                (Some(k), Some(v)) if k.starts_with(prefix) => out.push((k.to_vec(), v.to_vec())),
                _ => break,
            }
            it.next();
        }
        it.status().map_err(engine)?;
        Ok(out)
    }
}

/// A cursor over one bucket's objects.
struct BucketCursor<'a> {
    it: DBRawIterator<'a>,
    prefix: Vec<u8>,
    started: bool,
}

impl KeyCursor for BucketCursor<'_> {
    fn seek(&mut self, key: &[u8]) {
        let mut k = self.prefix.clone();
        k.extend_from_slice(key);
        self.it.seek(&k);
        self.started = false;
    }

    fn next_entry(&mut self) -> Result<Option<RawEntry>> {
        if self.started {
            self.it.next();
        }
        self.started = true;
        if !self.it.valid() {
            self.it.status().map_err(engine)?;
            return Ok(None);
        }
        match (self.it.key(), self.it.value()) {
            (Some(k), Some(v)) if k.starts_with(&self.prefix) => {
                Ok(Some((k[self.prefix.len()..].to_vec(), v.to_vec())))
            }
            _ => Ok(None),
        }
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

    async fn get_bucket(&self, name: &BucketName) -> Result<Option<BucketRecord>> {
        // Point lookups run in place: a memtable or block-cache hit takes microseconds, less
        // than handing the call to a blocking thread and back.
        let k = keys::bucket(name);
        let inner = &self.inner;
        inner.get(Cf::Buckets, &k)?.map(|v| decode(&v)).transpose()
    }

    async fn list_buckets(&self) -> Result<Vec<BucketRecord>> {
        self.blocking(|inner| {
            let mut it = inner.db.raw_iterator_cf(inner.cf(Cf::Buckets)?);
            it.seek_to_first();
            let mut out = Vec::new();
            while it.valid() {
                if let Some(v) = it.value() {
                    out.push(decode(v)?);
                }
                it.next();
            }
            it.status().map_err(engine)?;
            Ok(out)
        })
        .await
    }

    async fn get_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<Option<ObjectRecord>> {
        let k = keys::object(bucket, key.as_str());
        let inner = &self.inner;
        inner.get(Cf::Objects, &k)?.map(|v| decode(&v)).transpose()
    }

    async fn list_objects(
        &self,
        bucket: &BucketName,
        query: &ListQuery,
    ) -> Result<ListPage<ObjectRecord>> {
        let prefix = keys::object_prefix(bucket);
        let q = query.clone();
        self.blocking(move |inner| {
            let mut cursor = inner.bucket_cursor(Cf::Objects, prefix)?;
            list::list(&mut cursor, &q, decode)
        })
        .await
    }

    async fn get_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        sel: &VersionSel,
    ) -> Result<Option<VersionRecord>> {
        let (b, k, sel) = (bucket.clone(), key.clone(), sel.clone());
        self.blocking(move |inner| versions::get(inner, &b, k.as_str(), &sel))
            .await
    }

    async fn list_versions(
        &self,
        bucket: &BucketName,
        query: &VersionQuery,
    ) -> Result<VersionPage> {
        let prefix = keys::object_prefix(bucket);
        let q = query.clone();
        self.blocking(move |inner| {
            let mut cursor = inner.bucket_cursor(Cf::Versions, prefix)?;
            version_list::list_versions(&mut cursor, &q)
        })
        .await
    }

    async fn get_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
    ) -> Result<Option<UploadRecord>> {
        let k = keys::upload(bucket, key.as_str(), upload_id);
        self.blocking(move |inner| inner.get(Cf::Uploads, &k)?.map(|v| decode(&v)).transpose())
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
        let prefix = keys::parts_prefix(bucket, key.as_str(), upload_id);
        self.blocking(move |inner| {
            let mut it = inner.db.raw_iterator_cf(inner.cf(Cf::Parts)?);
            let mut start = prefix.clone();
            start.extend_from_slice(&after.saturating_add(1).to_be_bytes());
            it.seek(&start);
            let mut out = Vec::new();
            while it.valid() {
                match (it.key(), it.value()) {
                    (Some(k), Some(v)) if k.starts_with(&prefix) => {
                        if out.len() == max {
                            return Ok((out, true));
                        }
                        let rec: PartRecord = decode(v)?;
                        if rec.part_number > after {
                            out.push(rec);
                        }
                    }
                    _ => break,
                }
                it.next();
            }
            it.status().map_err(engine)?;
            Ok((out, false))
        })
        .await
    }

    async fn list_uploads(&self, bucket: &BucketName, query: &UploadQuery) -> Result<UploadPage> {
        let prefix = keys::object_prefix(bucket);
        let q = query.clone();
        self.blocking(move |inner| {
            let mut cursor = inner.bucket_cursor(Cf::Uploads, prefix)?;
            multipart::list_uploads(&mut cursor, &q)
        })
        .await
    }

    async fn get_access_key(&self, access_key: &str) -> Result<Option<AccessKeyRecord>> {
        let inner = &self.inner;
        inner
            .get(Cf::Keys, access_key.as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    async fn get_bucket_config(
        &self,
        bucket: &BucketName,
        kind: BucketConfigKind,
    ) -> Result<Option<Vec<u8>>> {
        let k = keys::bucket_config(bucket, kind);
        self.inner.get(Cf::BucketConfig, &k)
    }

    async fn list_access_keys(&self) -> Result<Vec<AccessKeyRecord>> {
        self.blocking(move |inner| {
            let mut it = inner.db.raw_iterator_cf(inner.cf(Cf::Keys)?);
            it.seek_to_first();
            let mut out = Vec::new();
            while it.valid() {
                if let Some(v) = it.value() {
                    out.push(decode(v)?);
                }
                it.next();
            }
            it.status()
                .map_err(|e| MetadataError::Engine(e.to_string()))?;
            Ok(out)
        })
        .await
    }

    async fn gc_pending(&self, limit: usize) -> Result<Vec<(u64, GcEntry)>> {
        self.blocking(move |inner| {
            let mut it = inner.db.raw_iterator_cf(inner.cf(Cf::Gc)?);
            it.seek_to_first();
            let mut out = Vec::new();
            while it.valid() && out.len() < limit {
                if let (Some(k), Some(v)) = (it.key(), it.value()) {
                    let seq: [u8; 8] = k
                        .try_into()
                        .map_err(|_| MetadataError::Corrupt("bad gc key".into()))?;
                    out.push((u64::from_be_bytes(seq), decode(v)?));
                }
                it.next();
            }
            it.status().map_err(engine)?;
            Ok(out)
        })
        .await
    }

    async fn scan_data(&self, after: Option<DataAddress>, limit: usize) -> Result<DataPage> {
        self.blocking(move |inner| {
            let mut page = DataPage::default();
            for table in DataTable::ALL {
                if after.as_ref().is_some_and(|a| a.table > table) {
                    continue;
                }
                let mut it = inner.db.raw_iterator_cf(inner.cf(table.cf())?);
                match &after {
                    Some(a) if a.table == table => {
                        it.seek(&a.key);
                        if it.valid() && it.key() == Some(&a.key[..]) {
                            it.next();
                        }
                    }
                    _ => it.seek_to_first(),
                }
                while it.valid() {
                    if let (Some(k), Some(v)) = (it.key(), it.value()) {
                        if page.entries.len() >= limit {
                            page.next = page.entries.last().map(|e| e.address.clone());
                            return Ok(page);
                        }
                        if let Some(e) = data_refs::decode_entry(table, k, v)? {
                            page.entries.push(e);
                        }
                    }
                    it.next();
                }
                it.status().map_err(engine)?;
            }
            Ok(page)
        })
        .await
    }

    async fn get_sys(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.inner.get(Cf::Sys, key.as_bytes())
    }

    async fn scan_sys(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let p = prefix.as_bytes().to_vec();
        self.blocking(move |inner| {
            Ok(inner
                .scan_prefix(Cf::Sys, &p)?
                .into_iter()
                .map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), v))
                .collect())
        })
        .await
    }
}

#[cfg(test)]
mod tests;
