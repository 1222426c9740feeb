//! The RocksDB side of the core's read seams: [`StateView`] (point lookups and prefix scans
//! for the state machine) and [`ReadView`] (cursors for the listings) on the database.

use cairn_metadata::fold::{KeyCursor, RawEntry};
use cairn_metadata::keys::Cf;
use cairn_metadata::read::ReadView;
use cairn_metadata::state::{RawKv, StateView};
use cairn_metadata::Result;
use rocksdb::DBRawIterator;

use crate::{engine, Inner};

impl StateView for Inner {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db.get_cf(self.cf(cf)?, key).map_err(engine)
    }

    fn any_with_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<bool> {
        let mut it = self.db.raw_iterator_cf(self.cf(cf)?);
        it.seek(prefix);
        if it.valid() {
            return Ok(it.key().is_some_and(|k| k.starts_with(prefix)));
        }
        it.status().map_err(engine)?;
        Ok(false)
    }

    fn scan_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<Vec<RawKv>> {
        let mut it = self.db.raw_iterator_cf(self.cf(cf)?);
        it.seek(prefix);
        let mut out = Vec::new();
        while it.valid() {
            match (it.key(), it.value()) {
                (Some(k), Some(v)) if k.starts_with(prefix) => out.push((k.to_vec(), v.to_vec())),
                _ => break,
            }
            it.next();
        }
        it.status().map_err(engine)?;
        Ok(out)
    }
}

impl ReadView for Inner {
    fn state(&self) -> &dyn StateView {
        self
    }

    fn cursor(&self, cf: Cf, prefix: &[u8]) -> Result<Box<dyn KeyCursor + '_>> {
        let mut it = self.db.raw_iterator_cf(self.cf(cf)?);
        it.seek(prefix);
        Ok(Box::new(PrefixCursor {
            it,
            prefix: prefix.to_vec(),
            started: false,
        }))
    }
}

/// A cursor over the keys under one prefix of a column family.
struct PrefixCursor<'a> {
    it: DBRawIterator<'a>,
    prefix: Vec<u8>,
    started: bool,
}

impl KeyCursor for PrefixCursor<'_> {
    fn seek(&mut self, key: &[u8]) {
        let mut k = self.prefix.clone();
        k.extend_from_slice(key);
        self.it.seek(&k);
        self.started = false;
    }

    fn next_entry(&mut self) -> Result<Option<RawEntry>> {
        if self.started {
            self.it.next();
        }
        self.started = true;
        if !self.it.valid() {
            self.it.status().map_err(engine)?;
            return Ok(None);
        }
        match (self.it.key(), self.it.value()) {
            (Some(k), Some(v)) if k.starts_with(&self.prefix) => {
                Ok(Some((k[self.prefix.len()..].to_vec(), v.to_vec())))
            }
            _ => Ok(None),
        }
    }
}
