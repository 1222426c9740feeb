use std::collections::BTreeMap;

use cairn_types::{ObjectId, ShardId};
use proptest::prelude::*;

use super::*;

fn info(id: ShardId, crc32c: u32, len: u64) -> ShardInfo {
    ShardInfo { id, len, crc32c }
}

/// An id whose first three bytes come from small ranges so that partitions and leaves are
/// shared by several entries.
fn clustered_id(first: u8, next: u16, rest: u128, stripe: u32, shard: u32) -> ShardId {
    let object = ((first as u128) << 120) | ((next as u128) << 104) | (rest >> 24);
    ShardId::new(ObjectId(object), stripe, shard)
}

fn id_strategy() -> impl Strategy<Value = ShardId> {
    (0u8..4, 0u16..48, any::<u128>(), 0u32..3, 0u32..3)
        .prop_map(|(f, n, r, s, i)| clustered_id(f, n, r, s, i))
}

fn entries_strategy() -> impl Strategy<Value = BTreeMap<ShardId, (u32, u64)>> {
    prop::collection::btree_map(id_strategy(), (0u32..4, 0u64..3), 0..200)
}

fn to_infos(m: &BTreeMap<ShardId, (u32, u64)>) -> Vec<ShardInfo> {
    m.iter().map(|(id, (c, l))| info(*id, *c, *l)).collect()
}

/// The diff computed without trees.
fn naive(
    e: &BTreeMap<ShardId, (u32, u64)>,
    a: &BTreeMap<ShardId, (u32, u64)>,
) -> (Vec<ShardId>, Vec<ShardId>, Vec<ShardId>) {
    let missing = e.keys().filter(|k| !a.contains_key(k)).copied().collect();
    let extra = a.keys().filter(|k| !e.contains_key(k)).copied().collect();
    let changed = e
        .iter()
        .filter(|(k, v)| a.get(k).is_some_and(|w| w != *v))
        .map(|(k, _)| *k)
        .collect();
    (missing, extra, changed)
}

/// Random ids spread over the whole id space, as real object ids are.
fn spread(n: u64) -> Vec<ShardInfo> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|i| {
            // splitmix64
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let object = ((z as u128) << 64) | i as u128;
            info(
                ShardId::new(ObjectId(object), 0, (i % 9) as u32),
                i as u32,
                1 << 20,
            )
        })
        .collect()
}

#[test]
fn paths_parse_print_and_refuse_nonsense() {
    let p = NodePath::parse("a3f").expect("valid");
    assert_eq!(p.nibbles(), vec![10, 3, 15]);
    assert!(p.is_leaf());
    assert_eq!(p.to_string(), "a3f");
    assert_eq!(NodePath::parse(""), Some(NodePath::ROOT));
    assert_eq!(NodePath::ROOT.child(7), NodePath::new(&[7]));
    assert_eq!(p.child(0), None);
    assert_eq!(NodePath::ROOT.child(16), None);
    for bad in ["A", "g", "0000", "1 2", "-1", "é"] {
        assert_eq!(NodePath::parse(bad), None, "{bad:?}");
    }
    assert_eq!(NodePath::new(&[16]), None);
}

#[test]
fn node_hashes_are_consistent_with_their_contents() {
    let entries = spread(3000);
    let summary = MerkleSummary::build(entries.iter().copied());
    let total: usize = (0..=255u8).map(|p| summary.partition(p).len()).sum();
    assert_eq!(total, 3000);
    let tree = summary.partition(0x42);
    assert!(!tree.is_empty());
    // Walk every non-empty node and check it against its children / entries.
    let mut stack = vec![NodePath::ROOT];
    let mut leaves = 0;
    while let Some(path) = stack.pop() {
        match tree.node(path) {
            MerkleNode::Inner { hash, children } => {
                assert_eq!(hash, node_hash(&children), "inner {path}");
                for (n, c) in children.iter().enumerate() {
                    if *c != EMPTY_HASH {
                        stack.push(path.child(n as u8).expect("inner child"));
                    }
                }
            }
            MerkleNode::Leaf { hash, entries } => {
                leaves += 1;
                assert!(!entries.is_empty());
                assert_eq!(hash, leaf_hash(&entries), "leaf {path}");
                assert!(entries.windows(2).all(|w| w[0].id < w[1].id));
                for e in &entries {
                    assert_eq!(partition_of(&e.id), 0x42);
                    assert_eq!(leaf_prefix(&e.id), path.prefix);
                }
            }
        }
    }
    assert!(leaves > 0);
    // Order of input does not matter; an absent partition is empty.
    let reversed = MerkleSummary::build(entries.iter().rev().copied());
    assert_eq!(reversed.roots(), summary.roots());
    assert_eq!(
        MerkleSummary::build([]).roots(),
        vec![EMPTY_HASH; PARTITIONS]
    );
}

#[test]
fn every_field_of_an_entry_changes_the_root() {
    let id = clustered_id(1, 2, 3, 0, 0);
    let base = PartitionTree::build(1, [info(id, 5, 6)]);
    for other in [
        info(id, 5, 7),
        info(id, 4, 6),
        info(clustered_id(1, 2, 4 << 24, 0, 0), 5, 6),
        info(clustered_id(1, 2, 3, 0, 1), 5, 6),
    ] {
        assert_ne!(
            PartitionTree::build(1, [other]).root(),
            base.root(),
            "{other:?}"
        );
    }
}

proptest! {
    #[test]
    fn diff_equals_naive_set_difference(e in entries_strategy(), a in entries_strategy()) {
        let (missing, extra, changed) = naive(&e, &a);
        let d = diff_summaries(
            &MerkleSummary::build(to_infos(&e)),
            &MerkleSummary::build(to_infos(&a)),
        );
        prop_assert_eq!(d.missing, missing);
        prop_assert_eq!(d.extra, extra);
        prop_assert_eq!(d.changed, changed);
    }

    #[test]
    fn diff_of_an_edited_copy_equals_naive(
        e in entries_strategy(),
        drops in prop::collection::vec(any::<prop::sample::Index>(), 0..5),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 4u32..8), 0..5),
        adds in prop::collection::btree_map(id_strategy(), (0u32..4, 0u64..3), 0..5),
    ) {
        let mut a = e.clone();
        let keys: Vec<ShardId> = e.keys().copied().collect();
        if !keys.is_empty() {
            for d in &drops {
                a.remove(d.get(&keys));
            }
            for (ix, crc) in &edits {
                if let Some(v) = a.get_mut(ix.get(&keys)) {
                    v.0 = *crc;
                }
            }
        }
        for (k, v) in adds {
            a.entry(k).or_insert(v);
        }
        let (missing, extra, changed) = naive(&e, &a);
        let d = diff_summaries(
            &MerkleSummary::build(to_infos(&e)),
            &MerkleSummary::build(to_infos(&a)),
        );
        prop_assert_eq!(d.missing, missing);
        prop_assert_eq!(d.extra, extra);
        prop_assert_eq!(d.changed, changed);
    }

    #[test]
    fn identical_sets_touch_only_the_roots(e in entries_strategy()) {
        let s = MerkleSummary::build(to_infos(&e));
        let d = diff_summaries(&s, &s.clone());
        prop_assert!(d.is_clean());
        prop_assert_eq!(d.nodes_compared, PARTITIONS as u64);
        prop_assert_eq!(d.entries_compared, 0);
    }

    #[test]
    fn one_changed_entry_touches_one_path(
        e in prop::collection::btree_map(id_strategy(), (0u32..4, 0u64..3), 1..400),
        pick in any::<prop::sample::Index>(),
    ) {
        let keys: Vec<ShardId> = e.keys().copied().collect();
        let victim = *pick.get(&keys);
        let mut a = e.clone();
        if let Some(v) = a.get_mut(&victim) {
            v.0 += 100;
        }
        let p = partition_of(&victim);
        let (te, ta) = (
            PartitionTree::build(p, to_infos(&e)),
            PartitionTree::build(p, to_infos(&a)),
        );
        let d = diff(&te, &ta);
        prop_assert_eq!(d.changed, vec![victim]);
        prop_assert!(d.missing.is_empty() && d.extra.is_empty());
        // Root, then FANOUT children at each inner level down to the one differing leaf.
        prop_assert_eq!(d.nodes_compared, 1 + (DEPTH * FANOUT) as u64);
        let leaf = NodePath::new(
            &(0..DEPTH).map(|i| nibble(&victim.to_bytes(), i)).collect::<Vec<_>>(),
        ).expect("leaf path");
        prop_assert_eq!(d.entries_compared, 2 * te.entries_under(leaf).len() as u64);
    }
}

#[test]
fn entries_under_inner_nodes_are_their_leaves_concatenated() {
    let entries = spread(5000);
    let tree = PartitionTree::build(0x10, entries.iter().copied());
    let all: Vec<ShardInfo> = entries
        .iter()
        .filter(|e| partition_of(&e.id) == 0x10)
        .map(|e| (e.id, *e))
        .collect::<BTreeMap<_, _>>()
        .into_values()
        .collect();
    assert_eq!(tree.entries_under(NodePath::ROOT), &all[..]);
    let first = NodePath::new(&[3]).expect("path");
    let concat: Vec<ShardInfo> = (0..16u8)
        .flat_map(|n| tree.entries_under(first.child(n).expect("child")).to_vec())
        .collect();
    assert_eq!(tree.entries_under(first), &concat[..]);
}

/// Figures for the docs: what a clean and a one-shard diff of 100k shards cost compared with
/// a full listing. Run with `--nocapture` to see them.
#[test]
fn figures_for_100k_shards() {
    let entries = spread(100_000);
    let expected = MerkleSummary::build(entries.iter().copied());
    let actual = expected.clone();
    let clean = diff_summaries(&expected, &actual);
    assert!(clean.is_clean());
    assert_eq!(clean.nodes_compared, PARTITIONS as u64);

    let mut edited = entries.clone();
    edited[12_345].crc32c ^= 1;
    edited.remove(77_777);
    let one = diff_summaries(&expected, &MerkleSummary::build(edited));
    assert_eq!(one.changed, vec![entries[12_345].id]);
    assert_eq!(one.missing, vec![entries[77_777].id]);

    let listing = 100_000 * ENTRY_BYTES as u64;
    println!(
        "100k shards: full listing {listing} B; clean diff {} hashes = {} B ({:.2}% of the listing); \
         2 differing shards: {} hashes + {} entries = {} B",
        clean.nodes_compared,
        clean.wire_bytes_estimate(),
        100.0 * clean.wire_bytes_estimate() as f64 / listing as f64,
        one.nodes_compared,
        one.entries_compared,
        one.wire_bytes_estimate(),
    );
    assert!(clean.wire_bytes_estimate() * 100 < listing);
    assert!(one.wire_bytes_estimate() * 100 < listing);
}
