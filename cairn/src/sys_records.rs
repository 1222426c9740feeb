//! What the cluster keeps about each node in metadata that several parts of the server read:
//! each node's record of itself (written at start with the typed `RecordNode` command, read by
//! `cairn status`, the admin API, the in-flight checks and certificate setup). The record and
//! its encoding are owned by the metadata core (`cairn_metadata::cluster_state`).
//! A leaf: it names no other module of this crate.

use cairn_metadata::{cluster_state, Command, MetadataStore};

pub use cairn_metadata::cluster_state::{NodeRecord, NODE_PREFIX};

/// Records this node (replacing what it said at its last start).
pub async fn record_node(meta: &dyn MetadataStore, rec: &NodeRecord) -> anyhow::Result<()> {
    meta.apply(Command::RecordNode(rec.clone())).await?;
    Ok(())
}

/// Every node that recorded itself.
pub async fn nodes(meta: &dyn MetadataStore) -> anyhow::Result<Vec<NodeRecord>> {
    Ok(cluster_state::nodes(meta).await?)
}
