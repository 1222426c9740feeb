//! What the cluster keeps about itself in metadata `sys` that several parts of the server
//! read: each node's record of itself (`node/<id>`, JSON [`NodeRecord`], written at start,
//! read by `cairn status`, the admin API, the in-flight checks and certificate setup) and the
//! key of the drained datanode list (written by the admin API, read by the cluster watcher).
//! A leaf: it names no other module of this crate.

use cairn_metadata::{Command, MetadataStore};
use serde::Serialize;

/// Key of the drained datanode list in `sys`.
pub const DRAINED_KEY: &str = "drained-datanodes";

/// Prefix in `sys` of the node records ([`NodeRecord`]).
pub const NODE_PREFIX: &str = "node/";

/// What a node says about itself at start (for `cairn status` and `cairn node list`).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
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

/// Records this node in `sys` (replacing what it said at its last start).
pub async fn record_node(meta: &dyn MetadataStore, rec: &NodeRecord) -> anyhow::Result<()> {
    meta.apply(Command::SetSys {
        key: format!("{NODE_PREFIX}{:020}", rec.id),
        value: serde_json::to_vec(rec)?,
    })
    .await?;
    Ok(())
}

/// Every node that recorded itself.
pub async fn nodes(meta: &dyn MetadataStore) -> anyhow::Result<Vec<NodeRecord>> {
    meta.scan_sys(NODE_PREFIX)
        .await?
        .into_iter()
        .map(|(_, v)| Ok(serde_json::from_slice(&v)?))
        .collect()
}
