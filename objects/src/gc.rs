//! Garbage collection of shards that no object references any more.
//!
//! Overwrites and deletes queue the dead shards in metadata in the same command that commits
//! the change, so the queue survives crashes; this worker deletes them from their datanodes
//! and then removes the queue entries. Deleting an absent shard is fine, so replaying an
//! entry after a crash is harmless.

use std::sync::Arc;

use cairn_datanode::DatanodeError;
use cairn_metadata::{Command, MetadataStore};
use tokio::sync::{watch, Notify};

use crate::{Membership, ObjectsError, GC_POLL};

/// The background shard garbage collector.
pub struct GcWorker {
    meta: Arc<dyn MetadataStore>,
    membership: Membership,
    wakeup: Arc<Notify>,
}

impl GcWorker {
    pub(crate) fn new(
        meta: Arc<dyn MetadataStore>,
        membership: Membership,
        wakeup: Arc<Notify>,
    ) -> Self {
        GcWorker {
            meta,
            membership,
            wakeup,
        }
    }

    /// Processes queued entries until the queue is empty; returns how many shards it deleted.
    pub async fn run_once(&self) -> Result<usize, ObjectsError> {
        let mut deleted = 0;
        loop {
            let batch = self.meta.gc_pending(64).await?;
            if batch.is_empty() {
                return Ok(deleted);
            }
            let view = self.membership.view();
            let mut done = Vec::with_capacity(batch.len());
            for (seq, entry) in batch {
                let mut ok = true;
                for (node, shard) in entry.shards {
                    let Some(store) = view.store(node) else {
                        tracing::warn!(%node, %shard, "gc: shard on an unknown datanode");
                        continue;
                    };
                    match store.delete(shard).await {
                        Ok(()) | Err(DatanodeError::NotFound(_)) => deleted += 1,
                        Err(e) => {
                            tracing::warn!(%node, %shard, error = %e, "gc: delete failed, will retry");
                            ok = false;
                        }
                    }
                }
                if ok {
                    done.push(seq);
                }
            }
            if done.is_empty() {
                return Ok(deleted);
            }
            self.meta.apply(Command::GcDone { seqs: done }).await?;
        }
    }

    /// Runs until `shutdown` turns true: after every wake-up, and every few seconds.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let (_always, active) = watch::channel(true);
        self.run_while(active, shutdown).await
    }

    /// Like [`Self::run`], but collects only while `active` is true (in a cluster: while this
    /// node leads, so that one node collects).
    pub async fn run_while(
        self,
        active: watch::Receiver<bool>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            if *active.borrow() {
                if let Err(e) = self.run_once().await {
                    tracing::warn!(error = %e, "gc pass failed");
                }
            }
            tokio::select! {
                _ = self.wakeup.notified() => {}
                _ = tokio::time::sleep(GC_POLL) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }
}
