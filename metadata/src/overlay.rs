//! Applying several commands as one batch over a [`StateView`]: each command sees the writes
//! of those before it through an [`Overlay`], and only the batch's final writes reach the
//! engine. Engine-free; the RocksDB store's group commit and the Raft state machine both
//! apply their batches through it.
//!
//! Invariants: a command that fails (`apply` returns an error) adds no writes and does not
//! disturb the others; the batch's writes come out in key order per column family.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::command::{self, Command, CommandOutput};
use crate::keys::Cf;
use crate::state::{RawKv, StateView};
use crate::MetadataError;

/// Pending writes of the commands applied so far in this batch, over the base state.
pub struct Overlay<'a, V: StateView + ?Sized> {
    base: &'a V,
    writes: BTreeMap<(&'static str, Vec<u8>), Option<Vec<u8>>>,
    cfs: BTreeMap<&'static str, Cf>,
}

impl<'a, V: StateView + ?Sized> Overlay<'a, V> {
    pub fn new(base: &'a V) -> Self {
        Overlay {
            base,
            writes: BTreeMap::new(),
            cfs: BTreeMap::new(),
        }
    }

    /// Applies `cmd` on top of the earlier ones; its writes join the batch only if it
    /// succeeds.
    pub fn apply(&mut self, cmd: &Command) -> Result<CommandOutput, MetadataError> {
        let (writes, out) = command::apply(&*self, cmd)?;
        for w in writes {
            self.cfs.insert(w.cf.name(), w.cf);
            self.writes.insert((w.cf.name(), w.key), w.value);
        }
        Ok(out)
    }

    /// The batch's final writes, in key order per column family.
    pub fn into_writes(self) -> Vec<(Cf, Vec<u8>, Option<Vec<u8>>)> {
        let cfs = self.cfs;
        self.writes
            .into_iter()
            .map(|((name, k), v)| (cfs[name], k, v))
            .collect()
    }

    fn overlaid<'s>(
        &'s self,
        cf: Cf,
        prefix: &'s [u8],
    ) -> impl Iterator<Item = (&'s Vec<u8>, &'s Option<Vec<u8>>)> + 's {
        let lo = (cf.name(), prefix.to_vec());
        self.writes
            .range((Bound::Included(lo), Bound::Unbounded))
            .take_while(move |((n, k), _)| *n == cf.name() && k.starts_with(prefix))
            .map(|((_, k), v)| (k, v))
    }
}

impl<V: StateView + ?Sized> StateView for Overlay<'_, V> {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, MetadataError> {
        match self.writes.get(&(cf.name(), key.to_vec())) {
            Some(v) => Ok(v.clone()),
            None => self.base.get(cf, key),
        }
    }

    fn any_with_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<bool, MetadataError> {
        let mine: Vec<_> = self.overlaid(cf, prefix).collect();
        if mine.iter().any(|(_, v)| v.is_some()) {
            return Ok(true);
        }
        if mine.is_empty() {
            return self.base.any_with_prefix(cf, prefix);
        }
        // Some keys under the prefix are deleted in this batch: look at what is left.
        let deleted: Vec<&Vec<u8>> = mine.iter().map(|(k, _)| *k).collect();
        Ok(self
            .base
            .scan_prefix(cf, prefix)?
            .iter()
            .any(|(k, _)| !deleted.contains(&k)))
    }

    fn scan_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<Vec<RawKv>, MetadataError> {
        let mut all: BTreeMap<Vec<u8>, Vec<u8>> =
            self.base.scan_prefix(cf, prefix)?.into_iter().collect();
        for (k, v) in self.overlaid(cf, prefix) {
            match v {
                Some(v) => all.insert(k.clone(), v.clone()),
                None => all.remove(k),
            };
        }
        Ok(all.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// A plain in-memory state.
    #[derive(Default)]
    struct Mem(BTreeMap<(&'static str, Vec<u8>), Vec<u8>>);

    impl StateView for Mem {
        fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, MetadataError> {
            Ok(self.0.get(&(cf.name(), key.to_vec())).cloned())
        }
        fn any_with_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<bool, MetadataError> {
            Ok(!self.scan_prefix(cf, prefix)?.is_empty())
        }
        fn scan_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<Vec<RawKv>, MetadataError> {
            Ok(self
                .0
                .iter()
                .filter(|((n, k), _)| *n == cf.name() && k.starts_with(prefix))
                .map(|((_, k), v)| (k.clone(), v.clone()))
                .collect())
        }
    }

    #[test]
    fn the_overlay_shows_earlier_writes_of_the_batch() {
        let mut base = Mem::default();
        base.0.insert(("objects", b"b\0a".to_vec()), b"1".to_vec());
        base.0.insert(("objects", b"b\0b".to_vec()), b"2".to_vec());
        base.0.insert(("sys", b"b\0c".to_vec()), b"x".to_vec());
        let mut o = Overlay::new(&base);
        o.writes.insert(("objects", b"b\0a".to_vec()), None);
        o.writes
            .insert(("objects", b"b\0z".to_vec()), Some(b"9".to_vec()));
        assert_eq!(o.get(Cf::Objects, b"b\0a").unwrap(), None);
        assert_eq!(o.get(Cf::Objects, b"b\0b").unwrap(), Some(b"2".to_vec()));
        assert_eq!(o.get(Cf::Objects, b"b\0z").unwrap(), Some(b"9".to_vec()));
        let keys: Vec<Vec<u8>> = o
            .scan_prefix(Cf::Objects, b"b\0")
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, vec![b"b\0b".to_vec(), b"b\0z".to_vec()]);
        assert!(o.any_with_prefix(Cf::Objects, b"b\0").unwrap());
        // Deleting the rest leaves nothing under the prefix; other families are untouched.
        o.writes.insert(("objects", b"b\0b".to_vec()), None);
        o.writes.insert(("objects", b"b\0z".to_vec()), None);
        assert!(!o.any_with_prefix(Cf::Objects, b"b\0").unwrap());
        assert!(o.any_with_prefix(Cf::Sys, b"b\0").unwrap());
    }
}
