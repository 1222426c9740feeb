//! Every place in the metadata state that references stored shards, for the scrubber: current
//! objects (`objects`), versions (`versions`, which repeats the current object of a versioned
//! bucket) and parts of uploads in progress (`parts`). [`DataAddress`] names one such record
//! by its table and raw key; [`Command::RelocateShards`](crate::Command::RelocateShards)
//! rewrites where shards of one body live (repair onto another node, moving a misplaced shard
//! home, rebalancing) at every address that references the body.
//!
//! Scans walk the three tables in the order `objects`, `versions`, `parts`, each in key
//! order; a [`DataAddress`] is also the cursor of the next page (exclusive).

use cairn_types::{NodeId, ObjectId};
use serde::{Deserialize, Serialize};

use crate::keys::Cf;
use crate::records::{
    decode, encode, ObjectData, ObjectRecord, PartRecord, SealedKey, VersionRecord,
};
use crate::state::{put, StateView, Write};
use crate::MetadataError;

/// The tables whose records carry object data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DataTable {
    Objects,
    Versions,
    Parts,
}

impl DataTable {
    /// Scan order.
    pub const ALL: [DataTable; 3] = [DataTable::Objects, DataTable::Versions, DataTable::Parts];

    pub(crate) fn cf(self) -> Cf {
        match self {
            DataTable::Objects => Cf::Objects,
            DataTable::Versions => Cf::Versions,
            DataTable::Parts => Cf::Parts,
        }
    }
}

/// One record that references data: its table and raw key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DataAddress {
    pub table: DataTable,
    pub key: Vec<u8>,
}

impl DataAddress {
    /// The bucket and object key this record belongs to (keys are `bucket 0x00 key …`).
    pub fn bucket_and_key(&self) -> (String, String) {
        let k = &self.key;
        let Some(b) = k.iter().position(|&c| c == 0) else {
            return (String::from_utf8_lossy(k).into_owned(), String::new());
        };
        let rest = &k[b + 1..];
        let key = match self.table {
            DataTable::Objects => rest,
            // key 0x00 order(8)
            DataTable::Versions => &rest[..rest.len().saturating_sub(9)],
            // key 0x00 upload-id 0x00 part(4)
            DataTable::Parts => {
                let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
                &rest[..end]
            }
        };
        (
            String::from_utf8_lossy(&k[..b]).into_owned(),
            String::from_utf8_lossy(key).into_owned(),
        )
    }
}

/// A record that references data, as a scan returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataEntry {
    pub address: DataAddress,
    /// For people: `bucket/key`, with the version id or the upload and part when not the
    /// current object.
    pub name: String,
    pub bucket: String,
    pub data: ObjectData,
}

/// A page of [`DataEntry`]s; `next` is the cursor of the following page when there is one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataPage {
    pub entries: Vec<DataEntry>,
    pub next: Option<DataAddress>,
}

/// One shard moving from one datanode to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardMove {
    pub stripe: u32,
    pub shard: u32,
    pub from: NodeId,
    pub to: NodeId,
}

/// Decodes a stored record of `table` into a [`DataEntry`]; `None` when it holds no shards
/// (inline bodies, delete markers).
pub fn decode_entry(
    table: DataTable,
    key: &[u8],
    value: &[u8],
) -> Result<Option<DataEntry>, MetadataError> {
    let address = DataAddress {
        table,
        key: key.to_vec(),
    };
    let (bucket, object_key) = address.bucket_and_key();
    let (name, data) = match table {
        DataTable::Objects => {
            let rec: ObjectRecord = decode(value)?;
            (format!("{bucket}/{object_key}"), rec.data)
        }
        DataTable::Versions => {
            let rec: VersionRecord = decode(value)?;
            let name = format!("{bucket}/{object_key} (version {})", rec.id_str());
            let Some(obj) = rec.object else {
                return Ok(None);
            };
            (name, obj.data)
        }
        DataTable::Parts => {
            let rec: PartRecord = decode(value)?;
            let upload = key
                .split(|&c| c == 0)
                .nth(2)
                .map(|u| String::from_utf8_lossy(u).into_owned())
                .unwrap_or_default();
            (
                format!(
                    "{bucket}/{object_key} (upload {upload}, part {})",
                    rec.part_number
                ),
                rec.data,
            )
        }
    };
    // Plain inline bodies reference nothing; sealed ones carry a data key (which master key
    // rotation re-wraps), so they are listed too.
    if matches!(data, ObjectData::Inline(_)) {
        return Ok(None);
    }
    Ok(Some(DataEntry {
        address,
        name,
        bucket,
        data,
    }))
}

/// Applies `moves` to the body `object` inside `data` (top level or one of its parts); a move
/// whose shard is no longer on `from` is skipped. Returns how many moves applied.
fn relocate_in(data: &mut ObjectData, object: ObjectId, moves: &[ShardMove]) -> usize {
    match data {
        ObjectData::Inline(_) => 0,
        ObjectData::Parts(parts) => parts
            .iter_mut()
            .map(|p| relocate_in(&mut p.data, object, moves))
            .sum(),
        ObjectData::Striped { id, stripes, .. } if *id == object => {
            let mut n = 0;
            for m in moves {
                let loc = stripes
                    .get_mut(m.stripe as usize)
                    .and_then(|st| st.shards.get_mut(m.shard as usize));
                if let Some(loc) = loc {
                    if loc.node == m.from {
                        loc.node = m.to;
                        n += 1;
                    }
                }
            }
            n
        }
        ObjectData::Striped { .. } => 0,
        ObjectData::Encrypted(e) => relocate_in(&mut e.data, object, moves),
    }
}

/// Replaces, in `data`, each sealed data key equal to the first of a pair by the second.
/// Returns how many were replaced.
fn rewrap_in(data: &mut ObjectData, keys: &[(SealedKey, SealedKey)]) -> usize {
    match data {
        ObjectData::Inline(_) | ObjectData::Striped { .. } => 0,
        ObjectData::Parts(parts) => parts.iter_mut().map(|p| rewrap_in(&mut p.data, keys)).sum(),
        ObjectData::Encrypted(e) => match keys.iter().find(|(old, _)| *old == e.key) {
            Some((_, new)) => {
                e.key = new.clone();
                1
            }
            None => 0,
        },
    }
}

/// The state-machine step of `RewrapKeys`: replaces sealed data keys in the record at `at`
/// (those not found — the record changed since it was read — are left alone). Returns how
/// many were replaced.
pub(crate) fn rewrap(
    view: &dyn StateView,
    at: &DataAddress,
    keys: &[(SealedKey, SealedKey)],
    writes: &mut Vec<Write>,
) -> Result<usize, MetadataError> {
    let cf = at.table.cf();
    let Some(raw) = view.get(cf, &at.key)? else {
        return Ok(0);
    };
    let (n, value) = match at.table {
        DataTable::Objects => {
            let mut rec: ObjectRecord = decode(&raw)?;
            (rewrap_in(&mut rec.data, keys), encode(&rec))
        }
        DataTable::Versions => {
            let mut rec: VersionRecord = decode(&raw)?;
            let n = rec
                .object
                .as_mut()
                .map_or(0, |o| rewrap_in(&mut o.data, keys));
            (n, encode(&rec))
        }
        DataTable::Parts => {
            let mut rec: PartRecord = decode(&raw)?;
            (rewrap_in(&mut rec.data, keys), encode(&rec))
        }
    };
    if n > 0 {
        writes.push(put(cf, at.key.clone(), value));
    }
    Ok(n)
}

/// The state-machine step of `RelocateShards`: rewrites each address that still exists and
/// still references `object`. Returns the number of records changed.
pub(crate) fn relocate(
    view: &dyn StateView,
    at: &[DataAddress],
    object: ObjectId,
    moves: &[ShardMove],
    writes: &mut Vec<Write>,
) -> Result<usize, MetadataError> {
    let mut changed = 0;
    for a in at {
        let cf = a.table.cf();
        let Some(raw) = view.get(cf, &a.key)? else {
            continue;
        };
        let value = match a.table {
            DataTable::Objects => {
                let mut rec: ObjectRecord = decode(&raw)?;
                (relocate_in(&mut rec.data, object, moves) > 0).then(|| encode(&rec))
            }
            DataTable::Versions => {
                let mut rec: VersionRecord = decode(&raw)?;
                rec.object
                    .as_mut()
                    .is_some_and(|o| relocate_in(&mut o.data, object, moves) > 0)
                    .then(|| encode(&rec))
            }
            DataTable::Parts => {
                let mut rec: PartRecord = decode(&raw)?;
                (relocate_in(&mut rec.data, object, moves) > 0).then(|| encode(&rec))
            }
        };
        if let Some(v) = value {
            writes.push(put(cf, a.key.clone(), v));
            changed += 1;
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_name_their_bucket_and_key() {
        let a = DataAddress {
            table: DataTable::Objects,
            key: b"bkt\0dir/file".to_vec(),
        };
        assert_eq!(a.bucket_and_key(), ("bkt".into(), "dir/file".into()));
        let mut v = b"bkt\0k\0".to_vec();
        v.extend_from_slice(&7u64.to_be_bytes());
        let a = DataAddress {
            table: DataTable::Versions,
            key: v,
        };
        assert_eq!(a.bucket_and_key(), ("bkt".into(), "k".into()));
        let mut p = b"bkt\0k/x\0upload1\0".to_vec();
        p.extend_from_slice(&3u32.to_be_bytes());
        let a = DataAddress {
            table: DataTable::Parts,
            key: p,
        };
        assert_eq!(a.bucket_and_key(), ("bkt".into(), "k/x".into()));
    }
}
