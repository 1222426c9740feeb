//! [`MemoryMetadataStore`]: the metadata state in ordered maps, one per column family.
//!
//! Commands go through the same [`crate::command::apply`] as every engine, one at a time
//! under a lock; reads are the shared ones of [`crate::read`] over a cursor on the maps. So
//! its semantics are the engines' by construction; what it lacks is durability: the state
//! lives only as long as the value (an `apply` that returned `Ok` is visible to every later
//! read, and gone when the store is dropped). For tests and tools.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};

use async_trait::async_trait;
use cairn_types::{BucketName, ObjectKey};

use crate::command::{self, Command, CommandOutput};
use crate::data_refs::{DataAddress, DataPage};
use crate::fold::{KeyCursor, RawEntry};
use crate::keys::Cf;
use crate::list::{ListPage, ListQuery};
use crate::multipart::{UploadPage, UploadQuery};
use crate::read::{self, ReadView};
use crate::records::{
    AccessKeyRecord, BucketConfigKind, BucketRecord, GcEntry, ObjectRecord, PartRecord,
    UploadRecord, VersionRecord,
};
use crate::state::{RawKv, StateView};
use crate::version_list::{VersionPage, VersionQuery};
use crate::versions::VersionSel;
use crate::{MetadataStore, Result};

type Table = BTreeMap<Vec<u8>, Vec<u8>>;

/// Metadata in memory (see the module docs: not durable). Clones share one state.
#[derive(Clone, Default)]
pub struct MemoryMetadataStore {
    tables: Arc<RwLock<Tables>>,
}

/// The column families.
#[derive(Default)]
struct Tables(HashMap<Cf, Table>);

impl Tables {
    fn table(&self, cf: Cf) -> Option<&Table> {
        self.0.get(&cf)
    }
}

impl MemoryMetadataStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, Tables> {
        self.tables.read().unwrap_or_else(PoisonError::into_inner)
    }
}

impl StateView for Tables {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.table(cf).and_then(|t| t.get(key)).cloned())
    }

    fn any_with_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<bool> {
        Ok(self.table(cf).is_some_and(|t| {
            t.range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
                .next()
                .is_some_and(|(k, _)| k.starts_with(prefix))
        }))
    }

    fn scan_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<Vec<RawKv>> {
        let Some(t) = self.table(cf) else {
            return Ok(Vec::new());
        };
        Ok(
            t.range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }
}

impl ReadView for Tables {
    fn state(&self) -> &dyn StateView {
        self
    }

    fn cursor(&self, cf: Cf, prefix: &[u8]) -> Result<Box<dyn KeyCursor + '_>> {
        static EMPTY: Table = BTreeMap::new();
        let table = self.table(cf).unwrap_or(&EMPTY);
        Ok(Box::new(MapCursor {
            table,
            prefix: prefix.to_vec(),
            next: Some(prefix.to_vec()),
        }))
    }
}

/// A cursor over the keys under one prefix of a map: the next key to look at (inclusive).
struct MapCursor<'a> {
    table: &'a Table,
    prefix: Vec<u8>,
    next: Option<Vec<u8>>,
}

impl KeyCursor for MapCursor<'_> {
    fn seek(&mut self, key: &[u8]) {
        let mut k = self.prefix.clone();
        k.extend_from_slice(key);
        self.next = Some(k);
    }

    fn next_entry(&mut self) -> Result<Option<RawEntry>> {
        let Some(from) = self.next.take() else {
            return Ok(None);
        };
        let found = self
            .table
            .range::<[u8], _>((Bound::Included(from.as_slice()), Bound::Unbounded))
            .next();
        match found {
            Some((k, v)) if k.starts_with(&self.prefix) => {
                // The next call starts just after this key.
                let mut after = k.clone();
                after.push(0);
                self.next = Some(after);
                Ok(Some((k[self.prefix.len()..].to_vec(), v.clone())))
            }
            _ => Ok(None),
        }
    }
}

#[async_trait]
impl MetadataStore for MemoryMetadataStore {
    async fn apply(&self, cmd: Command) -> Result<CommandOutput> {
        let mut tables = self.tables.write().unwrap_or_else(PoisonError::into_inner);
        let (writes, out) = command::apply(&*tables, &cmd)?;
        for w in writes {
            let table = tables.0.entry(w.cf).or_default();
            match w.value {
                Some(v) => table.insert(w.key, v),
                None => table.remove(&w.key),
            };
        }
        Ok(out)
    }

    async fn get_bucket(&self, name: &BucketName) -> Result<Option<BucketRecord>> {
        read::get_bucket(&*self.read(), name)
    }

    async fn list_buckets(&self) -> Result<Vec<BucketRecord>> {
        read::list_buckets(&*self.read())
    }

    async fn get_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> Result<Option<ObjectRecord>> {
        read::get_object(&*self.read(), bucket, key.as_str())
    }

    async fn list_objects(
        &self,
        bucket: &BucketName,
        query: &ListQuery,
    ) -> Result<ListPage<ObjectRecord>> {
        read::list_objects(&*self.read(), bucket, query)
    }

    async fn get_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        sel: &VersionSel,
    ) -> Result<Option<VersionRecord>> {
        read::get_version(&*self.read(), bucket, key.as_str(), sel)
    }

    async fn list_versions(
        &self,
        bucket: &BucketName,
        query: &VersionQuery,
    ) -> Result<VersionPage> {
        read::list_versions(&*self.read(), bucket, query)
    }

    async fn get_access_key(&self, access_key: &str) -> Result<Option<AccessKeyRecord>> {
        read::get_access_key(&*self.read(), access_key)
    }

    async fn get_bucket_config(
        &self,
        bucket: &BucketName,
        kind: BucketConfigKind,
    ) -> Result<Option<Vec<u8>>> {
        read::get_bucket_config(&*self.read(), bucket, kind)
    }

    async fn get_bucket_configs(
        &self,
        bucket: &BucketName,
    ) -> Result<Vec<(BucketConfigKind, Vec<u8>)>> {
        read::get_bucket_configs(&*self.read(), bucket)
    }

    async fn list_access_keys(&self) -> Result<Vec<AccessKeyRecord>> {
        read::list_access_keys(&*self.read())
    }

    async fn gc_pending(&self, limit: usize) -> Result<Vec<(u64, GcEntry)>> {
        read::gc_pending(&*self.read(), limit)
    }

    async fn get_sys(&self, key: &str) -> Result<Option<Vec<u8>>> {
        read::get_sys(&*self.read(), key)
    }

    async fn scan_sys(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        read::scan_sys(&*self.read(), prefix)
    }

    async fn get_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
    ) -> Result<Option<UploadRecord>> {
        read::get_upload(&*self.read(), bucket, key.as_str(), upload_id)
    }

    async fn list_parts(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        after: u32,
        max: usize,
    ) -> Result<(Vec<PartRecord>, bool)> {
        read::list_parts(&*self.read(), bucket, key.as_str(), upload_id, after, max)
    }

    async fn list_uploads(&self, bucket: &BucketName, query: &UploadQuery) -> Result<UploadPage> {
        read::list_uploads(&*self.read(), bucket, query)
    }

    async fn scan_data(&self, after: Option<DataAddress>, limit: usize) -> Result<DataPage> {
        read::scan_data(&*self.read(), after.as_ref(), limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passes_the_conformance_suite() {
        let cases = crate::testing::run_conformance(|| async {
            Arc::new(MemoryMetadataStore::new()) as Arc<dyn MetadataStore>
        })
        .await;
        assert!(cases >= 40, "{cases} cases");
    }

    #[test]
    fn a_cursor_walks_one_prefix_and_seeks() {
        let mut t = Tables::default();
        let m = t.0.entry(Cf::Objects).or_default();
        for k in ["a\0x", "b\0", "b\0k1", "b\0k2", "b\0k2\0", "c\0z"] {
            m.insert(k.as_bytes().to_vec(), k.as_bytes().to_vec());
        }
        let mut c = t.cursor(Cf::Objects, b"b\0").unwrap();
        let mut keys = Vec::new();
        while let Some((k, _)) = c.next_entry().unwrap() {
            keys.push(k);
        }
        assert_eq!(keys, [&b""[..], b"k1", b"k2", b"k2\0"]);
        c.seek(b"k2");
        assert_eq!(c.next_entry().unwrap().unwrap().0, b"k2");
        c.seek(b"k3");
        assert_eq!(c.next_entry().unwrap(), None);
        assert!(t
            .cursor(Cf::Gc, b"")
            .unwrap()
            .next_entry()
            .unwrap()
            .is_none());
    }
}
