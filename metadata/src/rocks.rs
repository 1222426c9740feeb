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
mod tests {
    use std::collections::BTreeMap;

    use crate::WriteCondition;

    use cairn_types::{EcScheme, NodeId, ObjectId};

    use super::*;
    use crate::records::{ObjectData, ShardLoc, StripeLoc};
    use crate::ListEntry;

    fn bucket(name: &str) -> BucketName {
        BucketName::new(name).unwrap()
    }

    fn obj(size: u64, striped: bool) -> ObjectRecord {
        ObjectRecord {
            size,
            etag: "e".into(),
            last_modified_ms: 1,
            content_type: None,
            headers: BTreeMap::new(),
            user_meta: BTreeMap::new(),
            checksum: None,
            version_id: None,
            tags: Default::default(),
            acl: None,
            upload_id: None,
            data: if striped {
                ObjectData::Striped {
                    id: ObjectId::random(),
                    ec: EcScheme::SINGLE,
                    stripe_size: 4,
                    stripes: vec![StripeLoc {
                        len: size,
                        shards: vec![ShardLoc {
                            node: NodeId(0),
                            len: size,
                            crc32c: 7,
                        }],
                    }],
                }
            } else {
                ObjectData::Inline(vec![1, 2, 3])
            },
        }
    }

    #[tokio::test]
    async fn access_keys_are_listed_in_order_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let key = |ak: &str| AccessKeyRecord {
            access_key: ak.into(),
            secret_key: format!("secret-of-{ak}"),
            name: ak.to_lowercase(),
            created_ms: 1,
        };
        {
            let s = RocksMetadataStore::open(dir.path()).unwrap();
            assert!(s.list_access_keys().await.unwrap().is_empty());
            for ak in ["BBB", "AAA", "CCC"] {
                s.apply(Command::PutAccessKey(key(ak))).await.unwrap();
            }
        }
        let s = RocksMetadataStore::open(dir.path()).unwrap();
        let got: Vec<String> = s
            .list_access_keys()
            .await
            .unwrap()
            .into_iter()
            .map(|k| k.access_key)
            .collect();
        assert_eq!(got, ["AAA", "BBB", "CCC"]);
        assert_eq!(s.get_access_key("BBB").await.unwrap(), Some(key("BBB")));
    }

    #[tokio::test]
    async fn bucket_config_is_set_cleared_and_dies_with_its_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let s = RocksMetadataStore::open(dir.path()).unwrap();
        let b = bucket("conf");
        let set = |kind, value: Option<&[u8]>| Command::SetBucketConfig {
            bucket: b.clone(),
            kind,
            value: value.map(<[u8]>::to_vec),
        };
        assert!(matches!(
            s.apply(set(BucketConfigKind::Cors, Some(b"x"))).await,
            Err(MetadataError::NoSuchBucket)
        ));
        let rec = BucketRecord {
            name: b.clone(),
            created_ms: 1,
            owner: "AK".into(),
        };
        s.apply(Command::CreateBucket(rec.clone())).await.unwrap();
        s.apply(set(BucketConfigKind::Cors, Some(b"<CORS/>")))
            .await
            .unwrap();
        s.apply(set(BucketConfigKind::Versioning, Some(b"Enabled")))
            .await
            .unwrap();
        let get = |kind| s.get_bucket_config(&b, kind);
        assert_eq!(
            get(BucketConfigKind::Cors).await.unwrap().as_deref(),
            Some(&b"<CORS/>"[..])
        );
        assert_eq!(get(BucketConfigKind::Tagging).await.unwrap(), None);
        s.apply(set(BucketConfigKind::Cors, None)).await.unwrap();
        assert_eq!(get(BucketConfigKind::Cors).await.unwrap(), None);
        // A bucket created again under the same name starts with no configuration.
        s.apply(Command::DeleteBucket { name: b.clone() })
            .await
            .unwrap();
        s.apply(Command::CreateBucket(rec)).await.unwrap();
        assert_eq!(get(BucketConfigKind::Versioning).await.unwrap(), None);
    }

    #[tokio::test]
    async fn buckets_objects_gc_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let b = bucket("photos");
        {
            let s = RocksMetadataStore::open(dir.path()).unwrap();
            let rec = BucketRecord {
                name: b.clone(),
                created_ms: 5,
                owner: "AK".into(),
            };
            s.apply(Command::CreateBucket(rec.clone())).await.unwrap();
            assert!(matches!(
                s.apply(Command::CreateBucket(rec)).await,
                Err(MetadataError::BucketExists { .. })
            ));
            let k = ObjectKey::new("a/b").unwrap();
            let put = |r| Command::PutObject {
                bucket: b.clone(),
                key: k.clone(),
                record: r,
                condition: WriteCondition::Always,
            };
            assert!(matches!(
                s.apply(put(obj(3, true))).await.unwrap(),
                CommandOutput::Stored(r) if r.size == 3 && r.version_id.is_none()
            ));
            // Overwrite queues the first version's shard for GC.
            s.apply(put(obj(4, false))).await.unwrap();
            let gc = s.gc_pending(10).await.unwrap();
            assert_eq!(gc.len(), 1);
            assert_eq!(gc[0].1.shards.len(), 1);
            assert!(matches!(
                s.apply(Command::DeleteBucket { name: b.clone() }).await,
                Err(MetadataError::BucketNotEmpty)
            ));
            s.apply(Command::GcDone {
                seqs: vec![gc[0].0],
            })
            .await
            .unwrap();
            assert!(s.gc_pending(10).await.unwrap().is_empty());
        }
        let s = RocksMetadataStore::open(dir.path()).unwrap();
        let got = s
            .get_object(&b, &ObjectKey::new("a/b").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.size, 4);
        let page = s
            .list_objects(
                &b,
                &ListQuery {
                    delimiter: Some("/".into()),
                    max_keys: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(page.entries, vec![ListEntry::Prefix("a/".into())]);
        s.apply(Command::DeleteObject {
            bucket: b.clone(),
            key: ObjectKey::new("a/b").unwrap(),
            marker_version_id: "m".into(),
            marker_ms: 1,
        })
        .await
        .unwrap();
        s.apply(Command::DeleteBucket { name: b.clone() })
            .await
            .unwrap();
        assert!(s.get_bucket(&b).await.unwrap().is_none());
        assert!(matches!(
            s.apply(Command::DeleteObject {
                bucket: b,
                key: ObjectKey::new("x").unwrap(),
                marker_version_id: "m".into(),
                marker_ms: 1,
            })
            .await,
            Err(MetadataError::NoSuchBucket)
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_commands_share_commits_and_each_sees_the_ones_before() {
        let dir = tempfile::tempdir().unwrap();
        let s = RocksMetadataStore::open(dir.path()).unwrap();
        let b = bucket("group");
        s.apply(Command::CreateBucket(BucketRecord {
            name: b.clone(),
            created_ms: 0,
            owner: "o".into(),
        }))
        .await
        .unwrap();
        let before = s.commit_count();
        // 64 writers; half of them race for the same key with If-None-Match: *, so exactly
        // one of those may win even when they land in one batch.
        let tasks: Vec<_> = (0..64)
            .map(|i| {
                let s = s.clone();
                let b = b.clone();
                tokio::spawn(async move {
                    let (key, condition) = if i % 2 == 0 {
                        (format!("k{i}"), WriteCondition::Always)
                    } else {
                        ("contended".to_string(), WriteCondition::IfAbsent)
                    };
                    s.apply(Command::PutObject {
                        bucket: b,
                        key: ObjectKey::new(key).unwrap(),
                        record: obj(1, false),
                        condition,
                    })
                    .await
                })
            })
            .collect();
        let mut won = 0;
        for (i, t) in tasks.into_iter().enumerate() {
            match t.await.unwrap() {
                Ok(_) if i % 2 == 1 => won += 1,
                Ok(_) => {}
                Err(MetadataError::PreconditionFailed(_)) if i % 2 == 1 => {}
                Err(e) => panic!("writer {i}: {e}"),
            }
        }
        assert_eq!(won, 1, "one conditional writer wins");
        let commits = s.commit_count() - before;
        assert!(commits < 64, "{commits} commits for 64 commands");
        let page = s
            .list_objects(
                &b,
                &ListQuery {
                    max_keys: 1000,
                    ..ListQuery::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(page.entries.len(), 33);
        eprintln!("64 concurrent commands: {commits} synced batches");
    }

    #[tokio::test]
    async fn data_scans_page_through_objects_versions_and_parts_and_relocations_apply() {
        let dir = tempfile::tempdir().unwrap();
        let s = RocksMetadataStore::open(dir.path()).unwrap();
        let b = bucket("scan");
        s.apply(Command::CreateBucket(BucketRecord {
            name: b.clone(),
            created_ms: 0,
            owner: "o".into(),
        }))
        .await
        .unwrap();
        let put = |key: &str, rec: ObjectRecord| Command::PutObject {
            bucket: b.clone(),
            key: ObjectKey::new(key).unwrap(),
            record: rec,
            condition: WriteCondition::Always,
        };
        for i in 0..5 {
            s.apply(put(&format!("k{i}"), obj(10, true))).await.unwrap();
        }
        s.apply(put("inline", obj(3, false))).await.unwrap();
        // Versioning: the next write lives in `versions` too.
        s.apply(Command::SetBucketConfig {
            bucket: b.clone(),
            kind: BucketConfigKind::Versioning,
            value: Some(b"Enabled".to_vec()),
        })
        .await
        .unwrap();
        let mut v = obj(10, true);
        v.version_id = Some("v1".into());
        s.apply(put("versioned", v)).await.unwrap();

        let mut all = Vec::new();
        let mut after = None;
        loop {
            let page = s.scan_data(after.take(), 2).await.unwrap();
            assert!(page.entries.len() <= 2);
            all.extend(page.entries);
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        let names: Vec<&str> = all.iter().map(|e| e.name.as_str()).collect();
        // The five objects and the versioned one as current objects, then the versions (the
        // five became null versions when versioning was enabled) — inline bodies skipped.
        assert_eq!(all.len(), 6 + 6, "{names:?}");
        assert!(names.contains(&"scan/versioned (version v1)"), "{names:?}");
        assert!(!names.iter().any(|n| n.contains("inline")));

        // Relocate the versioned object's shard at both of its addresses.
        let ObjectData::Striped { id, .. } = all
            .iter()
            .find(|e| e.name == "scan/versioned")
            .unwrap()
            .data
            .clone()
        else {
            panic!("striped")
        };
        let at: Vec<DataAddress> = all
            .iter()
            .filter(|e| e.name.starts_with("scan/versioned"))
            .map(|e| e.address.clone())
            .collect();
        assert_eq!(at.len(), 2);
        let mv = |from, to| crate::ShardMove {
            stripe: 0,
            shard: 0,
            from: NodeId(from),
            to: NodeId(to),
        };
        let out = s
            .apply(Command::RelocateShards {
                at: at.clone(),
                object: id,
                moves: vec![mv(0, 4)],
            })
            .await
            .unwrap();
        assert_eq!(out, CommandOutput::Relocated(2));
        let rec = s
            .get_object(&b, &ObjectKey::new("versioned").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rec.data.shards()[0].0, NodeId(4));
        // A stale move (the shard is no longer on node 0) changes nothing.
        let out = s
            .apply(Command::RelocateShards {
                at,
                object: id,
                moves: vec![mv(0, 5)],
            })
            .await
            .unwrap();
        assert_eq!(out, CommandOutput::Relocated(0));
    }

    #[tokio::test]
    async fn listing_does_not_leak_across_buckets() {
        let dir = tempfile::tempdir().unwrap();
        let s = RocksMetadataStore::open(dir.path()).unwrap();
        for name in ["aaa", "aaa-b", "aab"] {
            let b = bucket(name);
            s.apply(Command::CreateBucket(BucketRecord {
                name: b.clone(),
                created_ms: 0,
                owner: "o".into(),
            }))
            .await
            .unwrap();
            s.apply(Command::PutObject {
                bucket: b,
                key: ObjectKey::new(format!("k-{name}")).unwrap(),
                record: obj(1, false),
                condition: WriteCondition::Always,
            })
            .await
            .unwrap();
        }
        let page = s
            .list_objects(
                &bucket("aaa"),
                &ListQuery {
                    max_keys: 100,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let names: Vec<_> = page.entries.iter().map(|e| e.name().to_string()).collect();
        assert_eq!(names, ["k-aaa"]);
        assert_eq!(s.list_buckets().await.unwrap().len(), 3);
    }
}
