//! The in-memory index: shard id → where its latest put record's payload lives, ordered by
//! id so that `list` is a range scan. Also keeps the live-byte count.

use std::collections::BTreeMap;
use std::ops::Bound;

use cairn_types::ShardId;

use crate::ShardInfo;

/// Where a shard's payload lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Location {
    pub segment: u64,
    /// Offset of the payload (not of the record header) in the segment file.
    pub offset: u64,
    pub len: u64,
    pub crc32c: u32,
}

#[derive(Debug, Default)]
pub(crate) struct Index {
    map: BTreeMap<ShardId, Location>,
    live_bytes: u64,
}

impl Index {
    pub fn get(&self, id: &ShardId) -> Option<Location> {
        self.map.get(id).copied()
    }

    /// Records a put; replaces any earlier location of `id`.
    pub fn insert(&mut self, id: ShardId, loc: Location) {
        self.live_bytes += loc.len;
        if let Some(old) = self.map.insert(id, loc) {
            self.live_bytes -= old.len;
        }
    }

    /// Records a tombstone.
    pub fn remove(&mut self, id: &ShardId) {
        if let Some(old) = self.map.remove(id) {
            self.live_bytes -= old.len;
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn live_bytes(&self) -> u64 {
        self.live_bytes
    }

    /// Shards strictly after `start_after`, in id order, at most `limit`.
    pub fn list(&self, start_after: Option<ShardId>, limit: usize) -> Vec<ShardInfo> {
        let lower = match start_after {
            Some(id) => Bound::Excluded(id),
            None => Bound::Unbounded,
        };
        self.map
            .range((lower, Bound::Unbounded))
            .take(limit)
            .map(|(id, loc)| ShardInfo {
                id: *id,
                len: loc.len,
                crc32c: loc.crc32c,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_types::ObjectId;

    fn loc(len: u64) -> Location {
        Location {
            segment: 1,
            offset: 80,
            len,
            crc32c: 0,
        }
    }

    #[test]
    fn accounting_and_listing() {
        let a = ShardId::new(ObjectId(1), 0, 0);
        let b = ShardId::new(ObjectId(1), 0, 1);
        let c = ShardId::new(ObjectId(2), 0, 0);
        let mut ix = Index::default();
        ix.insert(c, loc(5));
        ix.insert(a, loc(10));
        ix.insert(b, loc(1));
        ix.insert(a, loc(3));
        assert_eq!(ix.live_bytes(), 9);
        ix.remove(&b);
        ix.remove(&b);
        assert_eq!(ix.live_bytes(), 8);
        assert_eq!(ix.len(), 2);
        let ids: Vec<_> = ix.list(None, 10).iter().map(|i| i.id).collect();
        assert_eq!(ids, vec![a, c]);
        let ids: Vec<_> = ix.list(Some(a), 10).iter().map(|i| i.id).collect();
        assert_eq!(ids, vec![c]);
        assert!(ix.list(None, 0).is_empty());
    }
}
