//! Per-store scrub state of a [`crate::LocalShardStore`]: the cached Merkle tree of each
//! partition with the index version it was built at, and the lock that lets one deep scrub
//! run at a time. The rebuild rule and deep scrub itself are in `scrub.rs`.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};

use crate::merkle::{PartitionTree, PARTITIONS};

/// A cached partition tree and the index version it was built at.
type CachedTree = Option<(u64, Arc<PartitionTree>)>;

/// Per-store scrub state of a [`crate::LocalShardStore`].
pub(crate) struct ScrubState {
    /// Per partition: the index version a cached tree was built at, and the tree.
    trees: Mutex<Vec<CachedTree>>,
    /// Partition trees built since open (for tests and metrics).
    pub rebuilds: AtomicU64,
    /// Serialises deep scrubs.
    pub running: tokio::sync::Mutex<()>,
}

impl Default for ScrubState {
    fn default() -> Self {
        ScrubState {
            trees: Mutex::new(vec![None; PARTITIONS]),
            rebuilds: AtomicU64::new(0),
            running: tokio::sync::Mutex::new(()),
        }
    }
}

impl ScrubState {
    pub fn cached(&self, partition: u8, version: u64) -> Option<Arc<PartitionTree>> {
        let trees = self.trees.lock().unwrap_or_else(PoisonError::into_inner);
        match &trees[partition as usize] {
            Some((v, tree)) if *v == version => Some(tree.clone()),
            _ => None,
        }
    }

    pub fn store(&self, partition: u8, version: u64, tree: Arc<PartitionTree>) {
        let mut trees = self.trees.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = &mut trees[partition as usize];
        // Versions only grow; a slower concurrent rebuild must not replace a newer tree.
        if slot.as_ref().is_none_or(|(v, _)| *v < version) {
            *slot = Some((version, tree));
        }
    }
}
