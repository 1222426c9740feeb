//! The cluster's own state in the `sys` column family, beside the counters and the datanode
//! registry that [`crate::command::apply`] keeps: the drained datanodes, the erasure coding
//! of new writes, the cluster CA, what each node said about itself at its last start and the
//! scrub history (the root key designation is [`crate::access_keys`]'s). This module owns
//! their keys, their values and how those are encoded; each has a typed [`Command`] and a
//! typed reader here.
//!
//! | key | value | written by |
//! | --- | --- | --- |
//! | [`DRAINED_KEY`] | `BTreeSet<NodeId>` | [`Command::SetDrained`] |
//! | [`EC_KEY`] | [`EcScheme`] | [`Command::SetEcScheme`] |
//! | [`CA_KEY`] | [`ClusterCaRecord`] | [`Command::SetClusterCa`] (the first one stays) |
//! | [`NODE_PREFIX`]`<id, 20 digits>` | [`NodeRecord`] | [`Command::RecordNode`] |
//! | [`SCRUB_HISTORY_KEY`] | `Vec<ScrubReport>` (summaries, oldest first) | [`Command::RecordScrub`] |
//! | [`PUBLIC_ACCESS_BLOCK_KEY`] | [`PublicAccessBlock`] (cluster-wide) | [`Command::SetPublicAccessBlock`] |
//! | [`crate::storage_class::PREFIX`]`<NAME>` | [`EcScheme`] | [`Command::SetStorageClass`] |
//! | [`crate::master_keys::PREFIX`]`<id>` | [`crate::master_keys::StoredMasterKey`] | [`Command::AddMasterKey`] |
//! | [`crate::master_keys::KMS_PREFIX`]`<name>` | [`crate::master_keys::StoredKmsKey`] | [`Command::AddKmsKey`] |
//!
//! Values use the encoding of every record ([`crate::records`]): a format byte, then
//! postcard. Older builds wrote these values as text (JSON; the root key and versioning
//! state as plain bytes); text never starts with a byte below 0x09, which is where format
//! bytes are, so [`decode_value`](crate::records::decode_value) tells the two apart and still reads the old ones.
//!
//! `Command::SetSys`, which wrote any key, is kept only so that old Raft logs decode and
//! replay; `apply` refuses it for every key it owns ([`owned_by_apply`]).

use std::collections::BTreeSet;

use cairn_types::{EcScheme, NodeId};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::keys::Cf;
use crate::records::{decode_value, encode, PublicAccessBlock, Stored};
use crate::scrub_report::ScrubReport;
use crate::state::{put, StateView, Write};
use crate::{MetadataError, MetadataStore, Result};

#[cfg(doc)]
use crate::Command;

/// Key in `sys` of the drained datanodes.
pub const DRAINED_KEY: &str = "drained-datanodes";
/// Key in `sys` of the erasure coding of new writes.
pub const EC_KEY: &str = "ec-scheme";
/// Key in `sys` of the cluster CA.
pub const CA_KEY: &str = "cluster-ca";
/// Prefix in `sys` of the node records.
pub const NODE_PREFIX: &str = "node/";
/// Key in `sys` of the scrub history.
pub const SCRUB_HISTORY_KEY: &str = "scrub-history";
/// Key in `sys` of the cluster-wide Block Public Access settings.
pub const PUBLIC_ACCESS_BLOCK_KEY: &str = "public-access-block";
/// Key in `sys` of the lifecycle worker's progress (its own JSON; see `cairn-lifecycle`).
pub const LIFECYCLE_PROGRESS_KEY: &str = "lifecycle-progress";
/// Scrub summaries the history keeps.
pub const SCRUB_HISTORY_LEN: usize = 50;

/// Keys in `sys` that only `apply` writes: the counters, the registry's, and every key
/// with a typed command (`orphan-barrier` is what older builds wrote for
/// [`Command::Barrier`]).
const OWNED_KEYS: [&str; 12] = [
    crate::master_keys::REWRAP_KEY,
    "gc-next-seq",
    "version-next-seq",
    "datanode-next-id",
    crate::access_keys::ROOT_KEY,
    DRAINED_KEY,
    EC_KEY,
    CA_KEY,
    SCRUB_HISTORY_KEY,
    PUBLIC_ACCESS_BLOCK_KEY,
    LIFECYCLE_PROGRESS_KEY,
    "orphan-barrier",
];
/// Prefixes in `sys` that only `apply` writes under.
const OWNED_PREFIXES: [&str; 8] = [
    crate::registry::PREFIX,
    crate::master_keys::PREFIX,
    crate::master_keys::KMS_PREFIX,
    crate::storage_class::PREFIX,
    "datanode-slot/",
    crate::registry::REMOVED_PREFIX,
    "access-key/",
    NODE_PREFIX,
];

/// Whether `key` in `sys` is one `apply` keeps (so `SetSys` may not write it).
pub fn owned_by_apply(key: &str) -> bool {
    OWNED_KEYS.contains(&key) || OWNED_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// The cluster CA: certificate and private key, PEM.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterCaRecord {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for ClusterCaRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterCaRecord").finish_non_exhaustive()
    }
}

/// What a node says about itself at start (for `cairn status` and `cairn node list`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub id: u64,
    pub roles: String,
    /// Its cluster listener (`host:port`).
    pub cluster_addr: String,
    /// Its admin API and S3 API as other nodes reach them.
    pub admin_addr: String,
    pub s3_addr: Option<String>,
    pub zone: String,
    pub started_ms: i64,
}

/// The `sys` key of node `id`'s record.
pub fn node_key(id: u64) -> String {
    format!("{NODE_PREFIX}{id:020}")
}

impl Stored for BTreeSet<NodeId> {}
impl Stored for EcScheme {}
impl Stored for ClusterCaRecord {}
impl Stored for NodeRecord {}
impl Stored for Vec<ScrubReport> {}
impl Stored for PublicAccessBlock {}

fn json<T: DeserializeOwned>(raw: &[u8]) -> Option<T> {
    serde_json::from_slice(raw).ok()
}

/// The drained datanodes from the value under [`DRAINED_KEY`] (older builds: a JSON array of
/// ids).
pub fn decode_drained(raw: &[u8]) -> Result<BTreeSet<NodeId>> {
    decode_value(raw, "drained datanodes", |r| {
        json::<Vec<u32>>(r).map(|ids| ids.into_iter().map(NodeId).collect())
    })
}

/// The erasure coding from the value under [`EC_KEY`] (older builds: JSON `[data, parity]`).
pub fn decode_ec(raw: &[u8]) -> Result<EcScheme> {
    decode_value(raw, "erasure coding", |r| {
        json::<(u8, u8)>(r).map(|(data, parity)| EcScheme { data, parity })
    })
}

/// The cluster CA from the value under [`CA_KEY`] (older builds: JSON).
pub fn decode_ca(raw: &[u8]) -> Result<ClusterCaRecord> {
    decode_value(raw, "cluster CA", json)
}

/// A node record (older builds: JSON).
pub fn decode_node(raw: &[u8]) -> Result<NodeRecord> {
    decode_value(raw, "node record", json)
}

/// The scrub history from the value under [`SCRUB_HISTORY_KEY`] (older builds: JSON).
pub fn decode_scrub_history(raw: &[u8]) -> Result<Vec<ScrubReport>> {
    decode_value(raw, "scrub history", json)
}

/// The drained datanodes (none when never set).
pub async fn drained(meta: &dyn MetadataStore) -> Result<BTreeSet<NodeId>> {
    match meta.get_sys(DRAINED_KEY).await? {
        Some(raw) => decode_drained(&raw),
        None => Ok(BTreeSet::new()),
    }
}

/// The erasure coding of new writes, when one was recorded.
pub async fn ec_scheme(meta: &dyn MetadataStore) -> Result<Option<EcScheme>> {
    meta.get_sys(EC_KEY)
        .await?
        .map(|raw| decode_ec(&raw))
        .transpose()
}

/// The cluster CA, when one was stored.
pub async fn cluster_ca(meta: &dyn MetadataStore) -> Result<Option<ClusterCaRecord>> {
    meta.get_sys(CA_KEY)
        .await?
        .map(|raw| decode_ca(&raw))
        .transpose()
}

/// The cluster's root access key, once one is designated.
pub async fn root_key(meta: &dyn MetadataStore) -> Result<Option<String>> {
    crate::access_keys::decode_root(meta.get_sys(crate::access_keys::ROOT_KEY).await?.as_deref())
}

/// Every node that recorded itself, by id.
pub async fn nodes(meta: &dyn MetadataStore) -> Result<Vec<NodeRecord>> {
    meta.scan_sys(NODE_PREFIX)
        .await?
        .iter()
        .map(|(_, v)| decode_node(v))
        .collect()
}

/// The cluster-wide Block Public Access settings (all off when never set).
pub async fn public_access_block(meta: &dyn MetadataStore) -> Result<PublicAccessBlock> {
    match meta.get_sys(PUBLIC_ACCESS_BLOCK_KEY).await? {
        Some(raw) => decode_public_access_block(&raw),
        None => Ok(PublicAccessBlock::default()),
    }
}

/// The value under [`PUBLIC_ACCESS_BLOCK_KEY`].
pub fn decode_public_access_block(raw: &[u8]) -> Result<PublicAccessBlock> {
    decode_value(raw, "public access block", json)
}

/// The lifecycle worker's progress as it recorded it (opaque here).
pub async fn lifecycle_progress(meta: &dyn MetadataStore) -> Result<Option<Vec<u8>>> {
    meta.get_sys(LIFECYCLE_PROGRESS_KEY).await
}

/// Summaries of past scrubs, oldest first.
pub async fn scrub_history(meta: &dyn MetadataStore) -> Result<Vec<ScrubReport>> {
    match meta.get_sys(SCRUB_HISTORY_KEY).await? {
        Some(raw) => decode_scrub_history(&raw),
        None => Ok(Vec::new()),
    }
}

fn sys_put(writes: &mut Vec<Write>, key: &str, value: Vec<u8>) {
    writes.push(put(Cf::Sys, key.as_bytes().to_vec(), value));
}

/// `SetDrained`.
/// The drained datanodes as the state machine sees them.
pub(crate) fn drained_in(view: &dyn StateView) -> Result<BTreeSet<NodeId>> {
    match view.get(Cf::Sys, DRAINED_KEY.as_bytes())? {
        Some(raw) => decode_drained(&raw),
        None => Ok(BTreeSet::new()),
    }
}

pub(crate) fn set_drained(nodes: &BTreeSet<NodeId>, writes: &mut Vec<Write>) {
    sys_put(writes, DRAINED_KEY, encode(nodes));
}

/// `SetEcScheme`: at least one data shard.
/// `SetPublicAccessBlock`: sets or removes the cluster-wide settings.
pub(crate) fn set_public_access_block(pab: Option<&PublicAccessBlock>, writes: &mut Vec<Write>) {
    match pab {
        Some(p) => sys_put(writes, PUBLIC_ACCESS_BLOCK_KEY, encode(p)),
        None => writes.push(crate::state::del(
            Cf::Sys,
            PUBLIC_ACCESS_BLOCK_KEY.as_bytes().to_vec(),
        )),
    }
}

pub(crate) fn set_ec(ec: &EcScheme, writes: &mut Vec<Write>) -> Result<()> {
    if ec.data == 0 {
        return Err(MetadataError::InvalidArgument(
            "erasure coding needs at least one data shard".into(),
        ));
    }
    sys_put(writes, EC_KEY, encode(ec));
    Ok(())
}

/// `SetClusterCa`: stored unless a CA is (two nodes making one at once: the first stays,
/// and both then read it).
pub(crate) fn set_ca(
    view: &dyn StateView,
    ca: &ClusterCaRecord,
    writes: &mut Vec<Write>,
) -> Result<()> {
    if view.get(Cf::Sys, CA_KEY.as_bytes())?.is_none() {
        sys_put(writes, CA_KEY, encode(ca));
    }
    Ok(())
}

/// `RecordNode`: replaces what the node said at its last start.
pub(crate) fn record_node(rec: &NodeRecord, writes: &mut Vec<Write>) {
    sys_put(writes, &node_key(rec.id), encode(rec));
}

/// `RecordScrub`: appends the report's summary (no findings) to the history and drops the
/// oldest beyond [`SCRUB_HISTORY_LEN`]. A history that does not decode is started afresh
/// (it is informational).
pub(crate) fn record_scrub(
    view: &dyn StateView,
    report: &ScrubReport,
    writes: &mut Vec<Write>,
) -> Result<()> {
    let mut history = match view.get(Cf::Sys, SCRUB_HISTORY_KEY.as_bytes())? {
        Some(raw) => decode_scrub_history(&raw).unwrap_or_default(),
        None => Vec::new(),
    };
    history.push(report.summary());
    let excess = history.len().saturating_sub(SCRUB_HISTORY_LEN);
    history.drain(..excess);
    sys_put(writes, SCRUB_HISTORY_KEY, encode(&history));
    Ok(())
}

#[cfg(test)]
mod tests;
