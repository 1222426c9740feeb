//! The in-memory index: shard id → where its latest put record's payload lives, ordered by
//! id so that `list` is a range scan. Also keeps the live-byte count, in total and per
//! segment (what compaction uses to pick segments), and a version number per Merkle
//! partition that changes whenever a shard of that partition appears, disappears or changes
//! checksum or length (what the Merkle tree cache uses to know a partition is stale).

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use cairn_types::ShardId;

use crate::merkle::{partition_of, PARTITIONS};
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

/// Live records of one segment: put records the index points at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SegmentLive {
    pub records: u64,
    /// Payload bytes of those records.
    pub payload_bytes: u64,
}

impl SegmentLive {
    /// Bytes of those records in the file (headers and payloads).
    pub fn record_bytes(&self) -> u64 {
        self.payload_bytes + self.records * crate::record::RECORD_HEADER_LEN as u64
    }
}

#[derive(Debug)]
pub(crate) struct Index {
    map: BTreeMap<ShardId, Location>,
    live_bytes: u64,
    /// Per segment number; segments without live records have no entry.
    per_segment: HashMap<u64, SegmentLive>,
    /// Per Merkle partition: bumped on every change of its `(id, crc32c, len)` set.
    partition_versions: Vec<u64>,
}

impl Default for Index {
    fn default() -> Self {
        Index {
            map: BTreeMap::new(),
            live_bytes: 0,
            per_segment: HashMap::new(),
            partition_versions: vec![0; PARTITIONS],
        }
    }
}

impl Index {
    pub fn get(&self, id: &ShardId) -> Option<Location> {
        self.map.get(id).copied()
    }

    /// Records a put; replaces any earlier location of `id`.
    pub fn insert(&mut self, id: ShardId, loc: Location) {
        self.live_bytes += loc.len;
        let seg = self.per_segment.entry(loc.segment).or_default();
        seg.records += 1;
        seg.payload_bytes += loc.len;
        let old = self.map.insert(id, loc);
        if let Some(old) = &old {
            self.live_bytes -= old.len;
            self.forget(old);
        }
        // A move (compaction) keeps checksum and length: the partition's tree is unchanged.
        if old.is_none_or(|o| o.crc32c != loc.crc32c || o.len != loc.len) {
            self.touch(&id);
        }
    }

    /// Records a tombstone.
    pub fn remove(&mut self, id: &ShardId) {
        if let Some(old) = self.map.remove(id) {
            self.live_bytes -= old.len;
            self.forget(&old);
            self.touch(id);
        }
    }

    fn touch(&mut self, id: &ShardId) {
        self.partition_versions[partition_of(id) as usize] += 1;
    }

    /// Locations of the shards strictly after `after`, in id order, at most `limit`.
    pub fn locations(&self, after: Option<ShardId>, limit: usize) -> Vec<(ShardId, Location)> {
        let lower = match after {
            Some(id) => Bound::Excluded(id),
            None => Bound::Unbounded,
        };
        self.map
            .range((lower, Bound::Unbounded))
            .take(limit)
            .map(|(id, loc)| (*id, *loc))
            .collect()
    }

    /// Version of `partition`'s entry set (see the module docs).
    pub fn partition_version(&self, partition: u8) -> u64 {
        self.partition_versions[partition as usize]
    }

    /// Entries of `partition` in id order.
    pub fn partition_entries(&self, partition: u8) -> Vec<ShardInfo> {
        let mut lo = [0u8; ShardId::ENCODED_LEN];
        lo[0] = partition;
        let lower = Bound::Included(ShardId::from_bytes(&lo));
        let upper = match partition.checked_add(1) {
            Some(next) => {
                let mut hi = [0u8; ShardId::ENCODED_LEN];
                hi[0] = next;
                Bound::Excluded(ShardId::from_bytes(&hi))
            }
            None => Bound::Unbounded,
        };
        self.map
            .range((lower, upper))
            .map(|(id, loc)| ShardInfo {
                id: *id,
                len: loc.len,
                crc32c: loc.crc32c,
            })
            .collect()
    }

    fn forget(&mut self, old: &Location) {
        if let Some(seg) = self.per_segment.get_mut(&old.segment) {
            seg.records -= 1;
            seg.payload_bytes -= old.len;
            if seg.records == 0 {
                self.per_segment.remove(&old.segment);
            }
        }
    }

    /// Live records in `segment`.
    pub fn segment_live(&self, segment: u64) -> SegmentLive {
        self.per_segment.get(&segment).copied().unwrap_or_default()
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
        assert_eq!(
            ix.segment_live(1),
            SegmentLive {
                records: 2,
                payload_bytes: 8
            }
        );
        ix.insert(
            c,
            Location {
                segment: 2,
                ..loc(7)
            },
        );
        assert_eq!(ix.segment_live(1).records, 1);
        assert_eq!(ix.segment_live(2).payload_bytes, 7);
        ix.remove(&a);
        assert_eq!(ix.segment_live(1), SegmentLive::default());
        let ids: Vec<_> = ix.list(None, 10).iter().map(|i| i.id).collect();
        assert_eq!(ids, vec![c]);
        let ids: Vec<_> = ix.list(Some(a), 10).iter().map(|i| i.id).collect();
        assert_eq!(ids, vec![c]);
        assert!(ix.list(None, 0).is_empty());
    }

    #[test]
    fn partition_versions_track_content_changes_only() {
        let mut bytes = [0u8; ShardId::ENCODED_LEN];
        bytes[0] = 0xff;
        let high = ShardId::from_bytes(&bytes);
        bytes[0] = 0x07;
        let low = ShardId::from_bytes(&bytes);
        let mut ix = Index::default();
        ix.insert(high, loc(5));
        ix.insert(low, loc(1));
        assert_eq!(ix.partition_version(0xff), 1);
        assert_eq!(ix.partition_version(0x07), 1);
        assert_eq!(ix.partition_version(0x08), 0);
        // Moved (same crc and len, another place): no change.
        ix.insert(
            high,
            Location {
                segment: 9,
                ..loc(5)
            },
        );
        assert_eq!(ix.partition_version(0xff), 1);
        ix.insert(high, loc(6));
        assert_eq!(ix.partition_version(0xff), 2);
        ix.remove(&low);
        ix.remove(&low);
        assert_eq!(ix.partition_version(0x07), 2);
        let es = ix.partition_entries(0xff);
        assert_eq!(es.len(), 1);
        assert_eq!((es[0].id, es[0].len), (high, 6));
        assert!(ix.partition_entries(0x07).is_empty());
        assert!(ix.partition_entries(0xfe).is_empty());
    }
}
