//! The datanode registry: every datanode of the cluster, by the id the ring places shards on
//! (`NodeId`), with the address its shard server answers at. Kept in the `sys` column family
//! (so it is replicated and snapshotted with the rest of the metadata):
//!
//! - `datanode/<id, 8 hex digits>` → [`DatanodeRecord`] (versioned: format byte + postcard;
//!   older builds wrote JSON, still read);
//! - `datanode-slot/<node id>/<dir index>` → the id given to that directory of that node;
//! - `datanode-next-id` → the next id to give;
//! - `datanode-removed/<node id>/<dir index>` → the id of a datanode removed from that slot
//!   ([`remove`]): the node running that directory stops serving it and marks it, and only
//!   a wiped directory registers again there, under a new id (the marker then goes).
//!
//! A node registers its datanodes at every start: a directory seen before keeps its id (so the
//! shards recorded on it stay addressable) and gets its new address; a new one gets the next
//! id. Ids are handed out by the state machine, so every replica agrees on them.

use serde::{Deserialize, Serialize};

use crate::keys::Cf;
use crate::records::{decode_value, encode, Stored};
use crate::state::{del, put, StateView, Write};
use crate::MetadataError;

/// Prefix of the registry's records in `sys`.
pub const PREFIX: &str = "datanode/";
const NEXT_ID: &str = "datanode-next-id";
/// Prefix in `sys` of the slots whose datanode was removed.
pub const REMOVED_PREFIX: &str = "datanode-removed/";

/// One registered datanode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatanodeRecord {
    /// The id shards are recorded under.
    pub id: u32,
    /// The cluster node that runs it.
    pub node: u64,
    /// Which of that node's data directories it is.
    pub index: u32,
    /// `host:port` of its shard server.
    pub addr: String,
    /// Failure domain (a rack, a room); informational for now.
    #[serde(default)]
    pub zone: String,
    /// When it last registered (ms since the epoch, from the command).
    #[serde(default)]
    pub registered_ms: i64,
}

impl Stored for DatanodeRecord {}

/// Decodes one registry record (older builds: JSON).
pub fn decode_record(raw: &[u8]) -> Result<DatanodeRecord, MetadataError> {
    decode_value(raw, "datanode record", |r| serde_json::from_slice(r).ok())
}

pub fn record_key(id: u32) -> String {
    format!("{PREFIX}{id:08x}")
}

fn slot_key(node: u64, index: u32) -> String {
    format!("datanode-slot/{node}/{index}")
}

/// The `sys` key that marks slot (`node`, `index`) as the place of a removed datanode.
pub fn removed_key(node: u64, index: u32) -> String {
    format!("{REMOVED_PREFIX}{node}/{index}")
}

/// A removed datanode: which node's which directory it was, and its old id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemovedSlot {
    pub node: u64,
    pub index: u32,
    pub id: u32,
}

/// Decodes the markers of a `sys` scan over [`REMOVED_PREFIX`].
pub fn decode_removed(entries: &[(String, Vec<u8>)]) -> Result<Vec<RemovedSlot>, MetadataError> {
    entries
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(REMOVED_PREFIX)?, v)))
        .map(|(slot, v)| {
            let bad = || MetadataError::Corrupt(format!("removed datanode marker {slot}"));
            let (node, index) = slot.split_once('/').ok_or_else(bad)?;
            Ok(RemovedSlot {
                node: node.parse().map_err(|_| bad())?,
                index: index.parse().map_err(|_| bad())?,
                id: serde_json::from_slice(v).map_err(|_| bad())?,
            })
        })
        .collect()
}

/// `RemoveDatanode` (its registry part; `apply` also checks that it is drained and takes it
/// off the drained list): forgets registered datanode `id`: its record and slot go, and its
/// slot is marked removed.
pub(crate) fn remove(
    view: &dyn StateView,
    id: u32,
    writes: &mut Vec<Write>,
) -> Result<(), MetadataError> {
    let raw = view
        .get(Cf::Sys, record_key(id).as_bytes())?
        .ok_or_else(|| {
            MetadataError::InvalidArgument(format!("datanode {id} is not registered"))
        })?;
    let rec = decode_record(&raw)?;
    writes.push(del(Cf::Sys, record_key(id).into_bytes()));
    writes.push(del(Cf::Sys, slot_key(rec.node, rec.index).into_bytes()));
    writes.push(put(
        Cf::Sys,
        removed_key(rec.node, rec.index).into_bytes(),
        json(&id)?,
    ));
    Ok(())
}

fn json<T: Serialize>(v: &T) -> Result<Vec<u8>, MetadataError> {
    serde_json::to_vec(v).map_err(|e| MetadataError::Corrupt(e.to_string()))
}

/// Registers (or re-registers) a datanode; returns its id.
pub(crate) fn register(
    view: &dyn StateView,
    mut rec: DatanodeRecord,
    writes: &mut Vec<Write>,
) -> Result<u32, MetadataError> {
    let slot = slot_key(rec.node, rec.index);
    let parse_u32 = |v: Vec<u8>| -> Result<u32, MetadataError> {
        serde_json::from_slice(&v).map_err(|e| MetadataError::Corrupt(e.to_string()))
    };
    let id = match view.get(Cf::Sys, slot.as_bytes())? {
        Some(v) => parse_u32(v)?,
        None => {
            let next = match view.get(Cf::Sys, NEXT_ID.as_bytes())? {
                Some(v) => parse_u32(v)?,
                None => 0,
            };
            writes.push(put(
                Cf::Sys,
                NEXT_ID.as_bytes().to_vec(),
                json(&(next + 1))?,
            ));
            writes.push(put(Cf::Sys, slot.into_bytes(), json(&next)?));
            // A wiped directory in the slot of a removed datanode: a new datanode.
            writes.push(del(Cf::Sys, removed_key(rec.node, rec.index).into_bytes()));
            next
        }
    };
    rec.id = id;
    writes.push(put(Cf::Sys, record_key(id).into_bytes(), encode(&rec)));
    Ok(id)
}

/// Decodes the records of a `sys` scan over [`PREFIX`].
pub fn decode_all(entries: &[(String, Vec<u8>)]) -> Result<Vec<DatanodeRecord>, MetadataError> {
    entries
        .iter()
        .filter(|(k, _)| k.starts_with(PREFIX))
        .map(|(_, v)| decode_record(v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_versioned_and_old_json_records_still_read() {
        let rec = DatanodeRecord {
            id: 3,
            node: 2,
            index: 1,
            addr: "10.0.0.2:7000".into(),
            zone: "a".into(),
            registered_ms: 42,
        };
        let new = encode(&rec);
        assert!(new[0] < b'{', "a format byte, not JSON");
        assert_eq!(decode_record(&new).unwrap(), rec);
        // What builds before the versioned encoding wrote (and what old snapshots hold).
        let old =
            br#"{"id":3,"node":2,"index":1,"addr":"10.0.0.2:7000","zone":"a","registered_ms":42}"#;
        assert_eq!(decode_record(old).unwrap(), rec);
        let oldest = br#"{"id":3,"node":2,"index":1,"addr":"10.0.0.2:7000"}"#;
        assert_eq!(decode_record(oldest).unwrap().zone, "");
        assert!(decode_record(b"{not json").is_err());
    }
}
