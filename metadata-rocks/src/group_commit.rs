//! Group commit for [`crate::RocksMetadataStore`]: commands that arrive while a commit is
//! being written share the next one — applied one after the other, in arrival order, each
//! seeing the writes of those before it (through an [`Overlay`] on the database), then
//! written in one synced `WriteBatch`, so N concurrent writers pay one fsync instead of N.
//!
//! Invariants: no caller hears back before its command's writes are durable; a command that
//! fails (`apply` returns an error) writes nothing and does not disturb the others; if the
//! batch write itself fails, every command in it gets the error (none took effect).

use std::sync::atomic::Ordering;
use std::sync::PoisonError;

use cairn_metadata::keys::Cf;
use cairn_metadata::overlay::Overlay;
use cairn_metadata::MetadataError;
use rocksdb::{WriteBatch, WriteOptions};

use crate::{engine, Inner, Result};

impl Inner {
    /// Commits every pending command as one batch; the callers hear back through their
    /// channels. Returns at once when another commit took them all.
    pub(crate) fn commit_pending(&self) {
        let _guard = self
            .write_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let batch =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        if batch.is_empty() {
            return;
        }
        let mut overlay = Overlay::new(self);
        let mut results = Vec::with_capacity(batch.len());
        for (cmd, reply) in batch {
            results.push((overlay.apply(&cmd), reply));
        }
        let writes = overlay.into_writes();
        let written = if writes.is_empty() {
            Ok(())
        } else {
            self.write_synced(writes)
        };
        self.commits.fetch_add(1, Ordering::Relaxed);
        for (result, reply) in results {
            let result = match (&written, result) {
                (Err(e), Ok(_)) => Err(MetadataError::Engine(e.to_string())),
                (_, r) => r,
            };
            let _ = reply.send(result);
        }
    }

    fn write_synced(&self, writes: Vec<(Cf, Vec<u8>, Option<Vec<u8>>)>) -> Result<()> {
        let mut batch = WriteBatch::default();
        for (cf, key, value) in writes {
            let cf = self.cf(cf)?;
            match value {
                Some(v) => batch.put_cf(cf, key, v),
                None => batch.delete_cf(cf, key),
            }
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(batch, &wo).map_err(engine)
    }
}
