//! What the store's readers, its writer thread and recovery share: the open segment files,
//! the index and the number of the active segment, under one `RwLock` ([`Shared`]).
//! Recovery builds a [`State`], the store wraps it, the writer changes it after each fsync.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::faults::DiskFaults;
use crate::index::Index;

/// One segment file as readers see it.
pub(crate) struct SegmentEntry {
    pub reader: Arc<File>,
    /// Bytes of the file (durable, recovered or committed).
    pub len: u64,
    /// Recovery found a bad segment header or damage inside the segment. Compaction leaves
    /// such a segment alone (it stays for inspection).
    pub damaged: bool,
    /// Bytes of the tombstone records in it. They are not dead space that sealing could
    /// free (compaction copies the ones still needed), so they do not count towards it.
    pub tombstone_bytes: u64,
}

/// What readers and the writer share under the lock.
#[derive(Default)]
pub(crate) struct State {
    pub index: Index,
    pub segments: BTreeMap<u64, SegmentEntry>,
    /// Number of the active segment (the one the writer appends to).
    pub active: u64,
}

pub(crate) struct Shared {
    state: RwLock<State>,
    /// fsync calls made on segment files and the directory since open.
    pub fsyncs: AtomicU64,
    /// The disk-fault seam (inert unless fault injection is enabled).
    pub faults: DiskFaults,
}

impl Shared {
    pub fn new(state: State, fsyncs: u64, dir: &Path) -> Shared {
        Shared {
            state: RwLock::new(state),
            fsyncs: AtomicU64::new(fsyncs),
            faults: DiskFaults::new(dir),
        }
    }

    // A panic while the lock was held cannot leave `State` half-updated in a way that
    // matters more than refusing all further service would, so poisoning is ignored.
    pub fn read_state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn write_state(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }
}
