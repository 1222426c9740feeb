//! Merkle summaries of a set of shards, for scrubbing: pure data structures, no I/O.
//!
//! The shard-id space is split into [`PARTITIONS`] partitions by the first byte of the
//! 24-byte `ShardId::to_bytes` encoding (object ids are random, so partitions fill evenly).
//! Within a partition, a fixed-shape [`FANOUT`]-ary tree of depth [`DEPTH`] is laid over the
//! id space: the node at path `[n1, n2, ..]` covers the ids whose nibbles after the partition
//! byte start with `n1, n2, ..`. Leaves (paths of [`DEPTH`] nibbles) are buckets of sorted
//! `(id, crc32c, len)` entries. Because the shape depends only on the id space and not on
//! which entries exist, two trees built from different entry sets are compared node by node
//! with no alignment step, and [`diff`] descends only into nodes whose hashes differ.
//!
//! Hashes are SHA-256 with domain-separation tags (see `docs/formats.md`); an empty subtree
//! hashes to all zeros, so a tree stores only its non-empty nodes.

use std::collections::BTreeMap;

use cairn_types::ShardId;
use sha2::{Digest, Sha256};

use crate::ShardInfo;

/// Number of partitions of the shard-id space (one per value of the first id byte).
pub const PARTITIONS: usize = 256;
/// Children per inner node (one per value of the next id nibble).
pub const FANOUT: usize = 16;
/// Nibbles of a leaf's path: levels below a partition's root.
pub const DEPTH: usize = 3;

/// A node hash (SHA-256).
pub type Hash = [u8; 32];
/// Hash of an empty subtree.
pub const EMPTY_HASH: Hash = [0; 32];

const LEAF_TAG: &[u8] = b"cairn-merkle-leaf-v1";
const NODE_TAG: &[u8] = b"cairn-merkle-node-v1";
/// Bytes an entry contributes to its leaf hash (id, crc32c, len).
pub const ENTRY_BYTES: usize = ShardId::ENCODED_LEN + 4 + 8;

/// Partition of a shard id: the first byte of its encoding.
pub fn partition_of(id: &ShardId) -> u8 {
    id.to_bytes()[0]
}

/// The `i`-th nibble after the partition byte (`i < DEPTH`).
fn nibble(bytes: &[u8; ShardId::ENCODED_LEN], i: usize) -> u8 {
    let b = bytes[1 + i / 2];
    if i & 1 == 0 {
        b >> 4
    } else {
        b & 0x0f
    }
}

/// Path of the leaf holding `id`, as a number (the DEPTH nibbles, most significant first).
fn leaf_prefix(id: &ShardId) -> u16 {
    let bytes = id.to_bytes();
    (0..DEPTH).fold(0u16, |acc, i| (acc << 4) | nibble(&bytes, i) as u16)
}

/// A node's position below a partition root: up to [`DEPTH`] nibbles. Always valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NodePath {
    len: u8,
    /// The nibbles as a number, most significant first.
    prefix: u16,
}

impl NodePath {
    /// The root of a partition.
    pub const ROOT: NodePath = NodePath { len: 0, prefix: 0 };

    /// A path from nibbles; `None` if longer than [`DEPTH`] or a value is not below 16.
    pub fn new(nibbles: &[u8]) -> Option<NodePath> {
        if nibbles.len() > DEPTH || nibbles.iter().any(|&n| n as usize >= FANOUT) {
            return None;
        }
        let prefix = nibbles.iter().fold(0u16, |acc, &n| (acc << 4) | n as u16);
        Some(NodePath {
            len: nibbles.len() as u8,
            prefix,
        })
    }

    /// Parses the wire form: lowercase hex digits, one per nibble (empty: the root).
    pub fn parse(s: &str) -> Option<NodePath> {
        let nibbles: Option<Vec<u8>> = s
            .bytes()
            .map(|c| match c {
                b'0'..=b'9' => Some(c - b'0'),
                b'a'..=b'f' => Some(c - b'a' + 10),
                _ => None,
            })
            .collect();
        NodePath::new(&nibbles?)
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn is_leaf(&self) -> bool {
        self.len() == DEPTH
    }

    pub fn nibbles(&self) -> Vec<u8> {
        (0..self.len())
            .map(|i| ((self.prefix >> (4 * (self.len() - 1 - i))) & 0x0f) as u8)
            .collect()
    }

    /// The child `nibble` of this inner node; `None` at a leaf or for `nibble >= 16`.
    pub fn child(&self, nibble: u8) -> Option<NodePath> {
        if self.is_leaf() || nibble as usize >= FANOUT {
            return None;
        }
        Some(NodePath {
            len: self.len + 1,
            prefix: (self.prefix << 4) | nibble as u16,
        })
    }

    /// Range of leaf prefixes under this node.
    fn leaf_range(&self) -> std::ops::Range<u16> {
        let shift = 4 * (DEPTH - self.len());
        let lo = self.prefix << shift;
        lo..lo + (1 << shift)
    }
}

impl std::fmt::Display for NodePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for n in self.nibbles() {
            write!(f, "{n:x}")?;
        }
        Ok(())
    }
}

/// What one node of a partition tree holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MerkleNode {
    /// An inner node: its hash and its [`FANOUT`] children's hashes.
    Inner {
        hash: Hash,
        children: Box<[Hash; FANOUT]>,
    },
    /// A leaf: its hash and its entries in id order.
    Leaf { hash: Hash, entries: Vec<ShardInfo> },
}

impl MerkleNode {
    pub fn hash(&self) -> Hash {
        match self {
            MerkleNode::Inner { hash, .. } | MerkleNode::Leaf { hash, .. } => *hash,
        }
    }
}

/// Hash of a leaf bucket over its entries (which must be in id order).
pub fn leaf_hash(entries: &[ShardInfo]) -> Hash {
    if entries.is_empty() {
        return EMPTY_HASH;
    }
    let mut h = Sha256::new();
    h.update(LEAF_TAG);
    for e in entries {
        h.update(e.id.to_bytes());
        h.update(e.crc32c.to_le_bytes());
        h.update(e.len.to_le_bytes());
    }
    h.finalize().into()
}

/// Hash of an inner node over its children's hashes.
pub fn node_hash(children: &[Hash; FANOUT]) -> Hash {
    if children.iter().all(|c| *c == EMPTY_HASH) {
        return EMPTY_HASH;
    }
    let mut h = Sha256::new();
    h.update(NODE_TAG);
    for c in children {
        h.update(c);
    }
    h.finalize().into()
}

/// The Merkle tree of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionTree {
    partition: u8,
    /// Entries of the partition in id order.
    entries: Vec<ShardInfo>,
    /// `levels[l]`: hashes of the non-empty nodes with paths of `l` nibbles, by prefix.
    levels: Vec<BTreeMap<u16, Hash>>,
}

impl PartitionTree {
    /// Builds the tree of `partition` from its entries. Entries of other partitions are
    /// ignored; entries are sorted by id and, for a repeated id, the last one wins.
    pub fn build(partition: u8, entries: impl IntoIterator<Item = ShardInfo>) -> PartitionTree {
        let mut by_id = BTreeMap::new();
        for e in entries {
            if partition_of(&e.id) == partition {
                by_id.insert(e.id, e);
            }
        }
        Self::from_sorted(partition, by_id.into_values().collect())
    }

    /// Builds from entries already in strictly increasing id order, all in `partition`.
    pub(crate) fn from_sorted(partition: u8, entries: Vec<ShardInfo>) -> PartitionTree {
        debug_assert!(entries.windows(2).all(|w| w[0].id < w[1].id));
        debug_assert!(entries.iter().all(|e| partition_of(&e.id) == partition));
        let mut levels = vec![BTreeMap::new(); DEPTH + 1];
        let mut start = 0;
        while start < entries.len() {
            let prefix = leaf_prefix(&entries[start].id);
            let end = start
                + entries[start..]
                    .iter()
                    .take_while(|e| leaf_prefix(&e.id) == prefix)
                    .count();
            levels[DEPTH].insert(prefix, leaf_hash(&entries[start..end]));
            start = end;
        }
        for level in (0..DEPTH).rev() {
            let mut parents: BTreeMap<u16, [Hash; FANOUT]> = BTreeMap::new();
            for (&prefix, &hash) in &levels[level + 1] {
                parents.entry(prefix >> 4).or_insert([EMPTY_HASH; FANOUT])
                    [(prefix & 0x0f) as usize] = hash;
            }
            levels[level] = parents
                .into_iter()
                .map(|(p, children)| (p, node_hash(&children)))
                .collect();
        }
        PartitionTree {
            partition,
            entries,
            levels,
        }
    }

    pub fn partition(&self) -> u8 {
        self.partition
    }

    /// Number of entries in the partition.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[ShardInfo] {
        &self.entries
    }

    pub fn root(&self) -> Hash {
        self.hash(NodePath::ROOT)
    }

    pub fn hash(&self, path: NodePath) -> Hash {
        self.levels[path.len()]
            .get(&path.prefix)
            .copied()
            .unwrap_or(EMPTY_HASH)
    }

    /// Hashes of the children of an inner node (all [`EMPTY_HASH`] below a leaf path).
    pub fn children(&self, path: NodePath) -> [Hash; FANOUT] {
        let mut out = [EMPTY_HASH; FANOUT];
        if path.is_leaf() {
            return out;
        }
        let lo = path.prefix << 4;
        for (&p, &h) in self.levels[path.len() + 1].range(lo..lo + FANOUT as u16) {
            out[(p & 0x0f) as usize] = h;
        }
        out
    }

    /// Entries under `path` (for a leaf path: the leaf's bucket), in id order.
    pub fn entries_under(&self, path: NodePath) -> &[ShardInfo] {
        let range = path.leaf_range();
        let lo = self
            .entries
            .partition_point(|e| leaf_prefix(&e.id) < range.start);
        let hi = self
            .entries
            .partition_point(|e| leaf_prefix(&e.id) < range.end);
        &self.entries[lo..hi]
    }

    /// The node at `path`: children hashes for an inner node, entries for a leaf.
    pub fn node(&self, path: NodePath) -> MerkleNode {
        let hash = self.hash(path);
        if path.is_leaf() {
            MerkleNode::Leaf {
                hash,
                entries: self.entries_under(path).to_vec(),
            }
        } else {
            MerkleNode::Inner {
                hash,
                children: Box::new(self.children(path)),
            }
        }
    }
}

/// The trees of all [`PARTITIONS`] partitions of one entry set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleSummary {
    trees: Vec<PartitionTree>,
}

impl MerkleSummary {
    /// Builds every partition's tree; for a repeated id the last entry wins.
    pub fn build(entries: impl IntoIterator<Item = ShardInfo>) -> MerkleSummary {
        let mut by_id = BTreeMap::new();
        for e in entries {
            by_id.insert(e.id, e);
        }
        let mut parts: Vec<Vec<ShardInfo>> = vec![Vec::new(); PARTITIONS];
        for (id, e) in by_id {
            parts[partition_of(&id) as usize].push(e);
        }
        MerkleSummary {
            trees: parts
                .into_iter()
                .enumerate()
                .map(|(p, es)| PartitionTree::from_sorted(p as u8, es))
                .collect(),
        }
    }

    pub fn partition(&self, p: u8) -> &PartitionTree {
        &self.trees[p as usize]
    }

    pub fn roots(&self) -> Vec<Hash> {
        self.trees.iter().map(PartitionTree::root).collect()
    }
}

/// Outcome of comparing an expected tree with an actual one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MerkleDiff {
    /// Expected but absent, in id order.
    pub missing: Vec<ShardId>,
    /// Present but not expected, in id order.
    pub extra: Vec<ShardId>,
    /// Present on both sides with a different crc32c or length, in id order.
    pub changed: Vec<ShardId>,
    /// Node hashes compared (each comparison needs one hash from each side).
    pub nodes_compared: u64,
    /// Leaf entries looked at, counting both sides.
    pub entries_compared: u64,
    /// Calls made to the store holding the actual tree (0 for the pure [`diff`]).
    pub requests: u64,
}

impl MerkleDiff {
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty() && self.changed.is_empty()
    }

    /// Estimated bytes moved to find this diff when each side's hashes and entries are
    /// fetched in their binary sizes (32 bytes a hash, [`ENTRY_BYTES`] an entry).
    pub fn wire_bytes_estimate(&self) -> u64 {
        self.nodes_compared * 32 + self.entries_compared * ENTRY_BYTES as u64
    }

    pub(crate) fn absorb(&mut self, other: MerkleDiff) {
        self.missing.extend(other.missing);
        self.extra.extend(other.extra);
        self.changed.extend(other.changed);
        self.nodes_compared += other.nodes_compared;
        self.entries_compared += other.entries_compared;
        self.requests += other.requests;
    }
}

/// Compares two trees of the same partition top-down, descending only into subtrees whose
/// hashes differ. Identical trees cost one comparison (the roots).
pub fn diff(expected: &PartitionTree, actual: &PartitionTree) -> MerkleDiff {
    debug_assert_eq!(
        expected.partition, actual.partition,
        "trees of one partition"
    );
    let mut out = MerkleDiff {
        nodes_compared: 1,
        ..MerkleDiff::default()
    };
    if expected.root() == actual.root() {
        return out;
    }
    let mut stack = vec![NodePath::ROOT];
    while let Some(path) = stack.pop() {
        if path.is_leaf() {
            let (e, a) = (expected.entries_under(path), actual.entries_under(path));
            out.entries_compared += (e.len() + a.len()) as u64;
            diff_entries(e, a, &mut out);
            continue;
        }
        let (ec, ac) = (expected.children(path), actual.children(path));
        out.nodes_compared += FANOUT as u64;
        // Pushed in reverse so that ids come out in order.
        for n in (0..FANOUT).rev() {
            if ec[n] != ac[n] {
                stack.extend(path.child(n as u8));
            }
        }
    }
    out
}

/// [`diff`] over every partition of two summaries.
pub fn diff_summaries(expected: &MerkleSummary, actual: &MerkleSummary) -> MerkleDiff {
    let mut out = MerkleDiff::default();
    for (e, a) in expected.trees.iter().zip(&actual.trees) {
        out.absorb(diff(e, a));
    }
    out
}

/// Merges two id-ordered entry lists into `out`'s missing / extra / changed.
pub fn diff_entries(expected: &[ShardInfo], actual: &[ShardInfo], out: &mut MerkleDiff) {
    let (mut i, mut j) = (0, 0);
    while i < expected.len() || j < actual.len() {
        match (expected.get(i), actual.get(j)) {
            (Some(e), Some(a)) if e.id == a.id => {
                if e.crc32c != a.crc32c || e.len != a.len {
                    out.changed.push(e.id);
                }
                i += 1;
                j += 1;
            }
            (Some(e), Some(a)) if e.id < a.id => {
                out.missing.push(e.id);
                i += 1;
            }
            (Some(e), None) => {
                out.missing.push(e.id);
                i += 1;
            }
            (_, Some(a)) => {
                out.extra.push(a.id);
                j += 1;
            }
            (None, None) => break,
        }
    }
}

#[cfg(test)]
mod tests;
