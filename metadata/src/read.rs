//! Every read of the [`crate::MetadataStore`] trait, written once over [`ReadView`]: point
//! lookups decode stored records, listings run the folds of [`crate::list`],
//! [`crate::version_list`] and [`crate::multipart`] over an engine's cursor. A storage
//! engine implements `ReadView` (point lookups, prefix scans, cursors) and answers the
//! trait's reads by calling these functions, so every engine reads with the same semantics.

use cairn_types::BucketName;

use crate::data_refs::{self, DataAddress, DataPage, DataTable};
use crate::fold::KeyCursor;
use crate::keys::{self, Cf};
use crate::list::{self, ListPage, ListQuery};
use crate::multipart::{self, UploadPage, UploadQuery};
use crate::records::{
    decode, AccessKeyRecord, BucketConfigKind, BucketRecord, GcEntry, ObjectRecord, PartRecord,
    Stored, UploadRecord, VersionRecord,
};
use crate::state::StateView;
use crate::version_list::{self, VersionPage, VersionQuery};
use crate::versions::{self, VersionSel};
use crate::{MetadataError, Result};

/// What an engine offers for reads: the state machine's [`StateView`] and ordered cursors.
pub trait ReadView: StateView {
    /// `self` as the state machine's view (for reads that share its lookups).
    fn state(&self) -> &dyn StateView;
    /// A forward cursor over the keys of `cf` that start with `prefix`; the keys it returns
    /// have `prefix` stripped. An empty prefix walks the whole column family.
    fn cursor(&self, cf: Cf, prefix: &[u8]) -> Result<Box<dyn KeyCursor + '_>>;
}

fn get_decoded<T: Stored>(view: &dyn ReadView, cf: Cf, key: &[u8]) -> Result<Option<T>> {
    view.get(cf, key)?.map(|v| decode(&v)).transpose()
}

/// Every value of `cf`, decoded, in key order.
fn all<T: Stored>(view: &dyn ReadView, cf: Cf) -> Result<Vec<T>> {
    let mut c = view.cursor(cf, &[])?;
    c.seek(&[]);
    let mut out = Vec::new();
    while let Some((_, v)) = c.next_entry()? {
        out.push(decode(&v)?);
    }
    Ok(out)
}

pub fn get_bucket(view: &dyn ReadView, name: &BucketName) -> Result<Option<BucketRecord>> {
    get_decoded(view, Cf::Buckets, &keys::bucket(name))
}

pub fn list_buckets(view: &dyn ReadView) -> Result<Vec<BucketRecord>> {
    all(view, Cf::Buckets)
}

pub fn get_object(
    view: &dyn ReadView,
    bucket: &BucketName,
    key: &str,
) -> Result<Option<ObjectRecord>> {
    get_decoded(view, Cf::Objects, &keys::object(bucket, key))
}

pub fn list_objects(
    view: &dyn ReadView,
    bucket: &BucketName,
    query: &ListQuery,
) -> Result<ListPage<ObjectRecord>> {
    let mut cursor = view.cursor(Cf::Objects, &keys::object_prefix(bucket))?;
    list::list(&mut *cursor, query, decode)
}

pub fn get_version(
    view: &dyn ReadView,
    bucket: &BucketName,
    key: &str,
    sel: &VersionSel,
) -> Result<Option<VersionRecord>> {
    versions::get(view.state(), bucket, key, sel)
}

pub fn list_versions(
    view: &dyn ReadView,
    bucket: &BucketName,
    query: &VersionQuery,
) -> Result<VersionPage> {
    let mut cursor = view.cursor(Cf::Versions, &keys::object_prefix(bucket))?;
    version_list::list_versions(&mut *cursor, query)
}

pub fn get_upload(
    view: &dyn ReadView,
    bucket: &BucketName,
    key: &str,
    upload_id: &str,
) -> Result<Option<UploadRecord>> {
    get_decoded(view, Cf::Uploads, &keys::upload(bucket, key, upload_id))
}

/// Up to `max` parts numbered above `after`, in order, and whether more follow.
pub fn list_parts(
    view: &dyn ReadView,
    bucket: &BucketName,
    key: &str,
    upload_id: &str,
    after: u32,
    max: usize,
) -> Result<(Vec<PartRecord>, bool)> {
    let mut c = view.cursor(Cf::Parts, &keys::parts_prefix(bucket, key, upload_id))?;
    c.seek(&after.saturating_add(1).to_be_bytes());
    let mut out = Vec::new();
    while let Some((_, v)) = c.next_entry()? {
        if out.len() == max {
            return Ok((out, true));
        }
        let rec: PartRecord = decode(&v)?;
        if rec.part_number > after {
            out.push(rec);
        }
    }
    Ok((out, false))
}

pub fn list_uploads(
    view: &dyn ReadView,
    bucket: &BucketName,
    query: &UploadQuery,
) -> Result<UploadPage> {
    let mut cursor = view.cursor(Cf::Uploads, &keys::object_prefix(bucket))?;
    multipart::list_uploads(&mut *cursor, query)
}

pub fn get_access_key(view: &dyn ReadView, access_key: &str) -> Result<Option<AccessKeyRecord>> {
    get_decoded(view, Cf::Keys, access_key.as_bytes())
}

pub fn list_access_keys(view: &dyn ReadView) -> Result<Vec<AccessKeyRecord>> {
    all(view, Cf::Keys)
}

pub fn get_bucket_config(
    view: &dyn ReadView,
    bucket: &BucketName,
    kind: BucketConfigKind,
) -> Result<Option<Vec<u8>>> {
    view.get(Cf::BucketConfig, &keys::bucket_config(bucket, kind))
}

/// Every configuration document of a bucket, in kind order (kinds this build does not know
/// are left out).
pub fn get_bucket_configs(
    view: &dyn ReadView,
    bucket: &BucketName,
) -> Result<Vec<(BucketConfigKind, Vec<u8>)>> {
    let mut c = view.cursor(Cf::BucketConfig, &keys::object_prefix(bucket))?;
    c.seek(&[]);
    let mut out = Vec::new();
    while let Some((k, v)) = c.next_entry()? {
        if let [b] = k.as_slice() {
            if let Some(kind) = BucketConfigKind::ALL.iter().find(|kind| **kind as u8 == *b) {
                out.push((*kind, v));
            }
        }
    }
    Ok(out)
}

/// The oldest `limit` GC entries with their sequence numbers.
pub fn gc_pending(view: &dyn ReadView, limit: usize) -> Result<Vec<(u64, GcEntry)>> {
    let mut c = view.cursor(Cf::Gc, &[])?;
    c.seek(&[]);
    let mut out = Vec::new();
    while out.len() < limit {
        let Some((k, v)) = c.next_entry()? else {
            break;
        };
        let seq: [u8; 8] = k
            .as_slice()
            .try_into()
            .map_err(|_| MetadataError::Corrupt("bad gc key".into()))?;
        out.push((u64::from_be_bytes(seq), decode(&v)?));
    }
    Ok(out)
}

pub fn get_sys(view: &dyn ReadView, key: &str) -> Result<Option<Vec<u8>>> {
    view.get(Cf::Sys, key.as_bytes())
}

pub fn scan_sys(view: &dyn ReadView, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
    Ok(view
        .scan_prefix(Cf::Sys, prefix.as_bytes())?
        .into_iter()
        .map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), v))
        .collect())
}

/// Up to `limit` records that reference shards, strictly after `after`, in scan order (see
/// [`crate::data_refs`]).
pub fn scan_data(
    view: &dyn ReadView,
    after: Option<&DataAddress>,
    limit: usize,
) -> Result<DataPage> {
    let mut page = DataPage::default();
    for table in DataTable::ALL {
        if after.is_some_and(|a| a.table > table) {
            continue;
        }
        let mut c = view.cursor(table.cf(), &[])?;
        let skip = match after {
            Some(a) if a.table == table => {
                c.seek(&a.key);
                Some(a.key.as_slice())
            }
            _ => {
                c.seek(&[]);
                None
            }
        };
        while let Some((k, v)) = c.next_entry()? {
            if skip == Some(k.as_slice()) {
                continue;
            }
            if page.entries.len() >= limit {
                page.next = page.entries.last().map(|e| e.address.clone());
                return Ok(page);
            }
            if let Some(e) = data_refs::decode_entry(table, &k, &v)? {
                page.entries.push(e);
            }
        }
    }
    Ok(page)
}
