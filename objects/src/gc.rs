//! Garbage collection of shards that no object references any more.
//!
//! Overwrites and deletes queue the dead shards in metadata in the same command that commits
//! the change, so the queue survives crashes; this worker deletes them from their datanodes
//! and then removes the queue entries. Deleting an absent shard is fine, so replaying an
//! entry after a crash is harmless.

use std::sync::Arc;

use cairn_datanode::DatanodeError;
use cairn_metadata::{Command, MetadataStore};
use cairn_worker::{Job, Round, Schedule, Worker};
use tokio::sync::{watch, Notify};

use crate::{Membership, ObjectsError, GC_POLL};

/// Queue entries taken per batch; the worker's safe points are between batches.
const BATCH: usize = 64;

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
        self.collect(None).await
    }

    /// Like [`Self::run_once`], reporting to `worker` and stopping at its pause switch
    /// between batches (a batch's deletes and their `GcDone` always finish together).
    async fn collect(&self, worker: Option<&Worker>) -> Result<usize, ObjectsError> {
        let mut deleted = 0;
        loop {
            if let Some(w) = worker {
                if !w.checkpoint().await {
                    return Ok(deleted);
                }
            }
            let batch = self.meta.gc_pending(BATCH).await?;
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
            if let Some(w) = worker {
                w.set_progress(format!("deleted {deleted} shard(s) so far"));
            }
        }
    }

    /// The schedule the collector runs on: after every wake-up (a delete or overwrite queued
    /// shards), and every few seconds.
    pub fn schedule(&self) -> Schedule {
        Schedule::every(GC_POLL)
            .at_start()
            .woken_by(self.wakeup.clone())
    }

    /// Runs as `worker` until `shutdown` turns true; with `leading`, collects only while it
    /// is true (in a cluster: while this node leads, so that one node collects).
    pub async fn run(
        self,
        worker: Worker,
        leading: Option<watch::Receiver<bool>>,
        shutdown: watch::Receiver<bool>,
    ) {
        let mut schedule = self.schedule();
        if let Some(l) = leading {
            schedule = schedule.gated(l, "not the metadata leader");
        }
        worker.run(self, schedule, shutdown).await
    }
}

impl Job for GcWorker {
    async fn round(&mut self, worker: &Worker) -> Result<Round, String> {
        match self.collect(Some(worker)).await {
            Ok(n) => Ok(Round::Done(format!("last round deleted {n} shard(s)"))),
            Err(e) => Err(format!("gc pass failed: {e}")),
        }
    }
}
