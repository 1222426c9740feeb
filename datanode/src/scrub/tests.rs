use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use cairn_types::{ObjectId, ShardId};

use super::*;
use crate::merkle::PARTITIONS;
use crate::merkle::{diff, diff_summaries, partition_of, MerkleNode, MerkleSummary, NodePath};
use crate::segment::segment_file_name;
use crate::{StoreOptions, StoreStats};

/// Ids spread over all partitions.
fn id(n: u32) -> ShardId {
    let object = (n as u128).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835) | 1;
    ShardId::new(ObjectId(object), n % 4, n % 3)
}

fn data(n: u32, len: usize) -> Bytes {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(7).wrapping_add(n) as u8)
        .collect::<Vec<_>>()
        .into()
}

fn small_segments() -> StoreOptions {
    StoreOptions {
        segment_size: 64 << 10,
        ..StoreOptions::default()
    }
}

async fn expected_roots(store: &dyn ShardStore) -> Vec<crate::merkle::Hash> {
    MerkleSummary::build(store.list(None, usize::MAX).await.expect("list")).roots()
}

/// Leaf path of `id`.
fn leaf_of(id: &ShardId) -> NodePath {
    let nibbles: Vec<u8> = id.to_bytes()[1..3]
        .iter()
        .flat_map(|b| [b >> 4, b & 0xf])
        .take(crate::merkle::DEPTH)
        .collect();
    NodePath::new(&nibbles).expect("leaf path")
}

/// Flips one byte in the middle of `id`'s payload on disk.
fn flip_payload(store: &LocalShardStore, dir: &Path, id: ShardId) {
    let loc = store.shared().read_state().index.get(&id).expect("indexed");
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join(segment_file_name(loc.segment)))
        .expect("open segment");
    let at = loc.offset + loc.len / 2;
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).expect("read byte");
    b[0] ^= 0x5a;
    f.write_all_at(&b, at).expect("write byte");
}

#[test]
fn pacer_spaces_reads_to_the_rate() {
    let mut unlimited = Pacer::new(0);
    assert_eq!(unlimited.after(1 << 30), Duration::ZERO);
    let mut p = Pacer::new(1000);
    let wait = p.after(500);
    assert!(wait > Duration::from_millis(400) && wait <= Duration::from_millis(500));
    let wait = p.after(500);
    assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1));
}

#[tokio::test]
async fn trees_follow_puts_deletes_compaction_and_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalShardStore::open(dir.path(), small_segments()).expect("open");
    for n in 0..300 {
        store.put(id(n), data(n, 700)).await.expect("put");
    }
    let roots = store.merkle_roots().await.expect("roots");
    assert_eq!(roots, expected_roots(&store).await);
    assert_eq!(
        store.scrub.rebuilds.load(Ordering::Relaxed),
        PARTITIONS as u64
    );

    // Asking again rebuilds nothing.
    assert_eq!(store.merkle_roots().await.expect("roots"), roots);
    assert_eq!(
        store.scrub.rebuilds.load(Ordering::Relaxed),
        PARTITIONS as u64
    );

    // One put and one delete (in other partitions) rebuild just those two.
    let (fresh, gone) = (id(1000), id(7));
    assert_ne!(partition_of(&fresh), partition_of(&gone));
    store.put(fresh, data(1000, 10)).await.expect("put");
    store.delete(gone).await.expect("delete");
    let after = store.merkle_roots().await.expect("roots");
    assert_eq!(after, expected_roots(&store).await);
    assert_eq!(
        store.scrub.rebuilds.load(Ordering::Relaxed),
        PARTITIONS as u64 + 2
    );
    let changed: Vec<usize> = (0..PARTITIONS).filter(|&p| roots[p] != after[p]).collect();
    let mut want = vec![partition_of(&fresh) as usize, partition_of(&gone) as usize];
    want.sort_unstable();
    assert_eq!(changed, want);

    // Deleting most shards, then compacting, moves the rest: no partition is stale for that.
    for n in 0..250 {
        store.delete(id(n)).await.expect("delete");
    }
    let before_compaction = store.merkle_roots().await.expect("roots");
    let rebuilds = store.scrub.rebuilds.load(Ordering::Relaxed);
    let report = store.compact(0.5).await.expect("compact");
    assert!(report.records_moved > 0, "{report:?}");
    assert_eq!(
        store.merkle_roots().await.expect("roots"),
        before_compaction
    );
    assert_eq!(store.scrub.rebuilds.load(Ordering::Relaxed), rebuilds);
    assert_eq!(before_compaction, expected_roots(&store).await);

    // Nodes agree with the roots.
    let p = partition_of(&fresh);
    let root = store.merkle_node(p, NodePath::ROOT).await.expect("node");
    assert_eq!(root.hash(), before_compaction[p as usize]);

    store.close().await;
    drop(store);
    let reopened = LocalShardStore::open(dir.path(), small_segments()).expect("reopen");
    assert_eq!(
        reopened.merkle_roots().await.expect("roots"),
        before_compaction
    );
}

#[tokio::test]
async fn deep_scrub_quarantines_exactly_the_corrupt_shards_durably() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalShardStore::open(dir.path(), small_segments()).expect("open");
    let n_shards = 120;
    for n in 0..n_shards {
        store.put(id(n), data(n, 1500)).await.expect("put");
    }
    let clean = MerkleSummary::build(store.list(None, usize::MAX).await.expect("list"));
    // Warm the tree cache, so that quarantine has to invalidate it.
    assert_eq!(store.merkle_roots().await.expect("roots"), clean.roots());
    let first = store.deep_scrub(0).await.expect("scrub");
    assert_eq!(first.shards_checked, n_shards as u64);
    assert_eq!(first.bytes_read, n_shards as u64 * 1500);
    assert!(first.corrupt.is_empty());

    // Corrupt three shards; one of them is then overwritten with good bytes (a newer put
    // wins, so it must not be quarantined).
    let (a, b, c) = (id(3), id(40), id(111));
    for v in [a, b, c] {
        flip_payload(&store, dir.path(), v);
    }
    store.put(c, data(999, 10)).await.expect("overwrite");
    let report = store.deep_scrub(0).await.expect("scrub");
    let mut want = vec![a, b];
    want.sort();
    assert_eq!(report.corrupt, want);
    assert_eq!(report.shards_checked, n_shards as u64);
    assert_eq!(store.get(c).await.expect("get"), data(999, 10));

    let check = |store: LocalShardStore| {
        let clean = clean.clone();
        let want = want.clone();
        async move {
            for v in [a, b] {
                assert!(
                    matches!(store.get(v).await, Err(DatanodeError::NotFound(_))),
                    "{v} is still served"
                );
                let p = partition_of(&v);
                let d = diff(clean.partition(p), &store.partition_tree(p));
                assert!(d.missing.contains(&v), "{v} not missing in {d:?}");
                // The leaf listed over the trait does not name it either.
                match store.merkle_node(p, leaf_of(&v)).await.expect("leaf") {
                    MerkleNode::Leaf { entries, .. } => {
                        assert!(entries.iter().all(|e| e.id != v))
                    }
                    other => panic!("expected a leaf, got {other:?}"),
                }
            }
            let full = diff_summaries(
                &clean,
                &MerkleSummary::build(store.list(None, usize::MAX).await.expect("list")),
            );
            assert_eq!(full.missing, want);
            assert_eq!(full.changed, vec![c]);
            assert!(full.extra.is_empty());
            store
        }
    };
    let store = check(store).await;
    store.close().await;
    drop(store);
    let reopened = LocalShardStore::open(dir.path(), small_segments()).expect("reopen");
    let reopened = check(reopened).await;
    let again = reopened.deep_scrub(0).await.expect("scrub");
    assert!(again.corrupt.is_empty());
    assert_eq!(again.shards_checked, n_shards as u64 - 2);
}

#[tokio::test]
async fn deep_scrub_respects_its_rate_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalShardStore::open(dir.path(), StoreOptions::default()).expect("open");
    for n in 0..8 {
        store.put(id(n), data(n, 256 << 10)).await.expect("put");
    }
    // 2 MiB at 8 MiB/s: at least a quarter second (the last read's wait included).
    let start = Instant::now();
    let report = store.deep_scrub(8 << 20).await.expect("scrub");
    let took = start.elapsed();
    assert_eq!(report.bytes_read, 2 << 20);
    assert!(took >= Duration::from_millis(240), "took {took:?}");
    let start = Instant::now();
    store.deep_scrub(0).await.expect("scrub");
    assert!(start.elapsed() < took);
}

/// A store that implements only the required methods, so the trait defaults are used.
struct Plain(LocalShardStore);

#[async_trait]
impl ShardStore for Plain {
    async fn put(&self, id: ShardId, data: Bytes) -> Result<ShardInfo> {
        self.0.put(id, data).await
    }
    async fn get(&self, id: ShardId) -> Result<Bytes> {
        self.0.get(id).await
    }
    async fn delete(&self, id: ShardId) -> Result<()> {
        self.0.delete(id).await
    }
    async fn list(&self, start_after: Option<ShardId>, limit: usize) -> Result<Vec<ShardInfo>> {
        self.0.list(start_after, limit).await
    }
    async fn stats(&self) -> Result<StoreStats> {
        self.0.stats().await
    }
}

#[tokio::test]
async fn trait_defaults_agree_with_the_local_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = Plain(LocalShardStore::open(dir.path(), StoreOptions::default()).expect("open"));
    // Enough shards that partition listing needs several pages, also in partitions 0 and 255.
    for n in 0..2500 {
        plain.put(id(n), data(n, 16)).await.expect("put");
    }
    for first in [0x00u8, 0xff] {
        let mut b = [first; ShardId::ENCODED_LEN];
        b[1] = 0x12;
        plain
            .put(ShardId::from_bytes(&b), data(1, 3))
            .await
            .expect("put");
    }
    let local = &plain.0;
    assert_eq!(
        plain.merkle_roots().await.expect("roots"),
        local.merkle_roots().await.expect("roots")
    );
    for p in [0u8, 1, 0x80, 0xff] {
        for path in ["", "1", "12", "123", "f0e"] {
            let path = NodePath::parse(path).expect("path");
            assert_eq!(
                plain.merkle_node(p, path).await.expect("node"),
                local.merkle_node(p, path).await.expect("node"),
                "partition {p} path {path}"
            );
        }
    }
    flip_payload(local, dir.path(), id(5));
    let report = plain.deep_scrub(0).await.expect("scrub");
    assert_eq!(report.corrupt, vec![id(5)]);
    assert_eq!(report.shards_checked, 2502);
    // The default does not quarantine.
    assert!(matches!(
        plain.get(id(5)).await,
        Err(DatanodeError::Corrupt { .. })
    ));
}

#[derive(Debug, Clone)]
enum Op {
    Put(u32, u8),
    Delete(u32),
    Compact,
    Roots,
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        4 => (0u32..40, 0u8..3).prop_map(|(n, v)| Op::Put(n, v)),
        2 => (0u32..40).prop_map(Op::Delete),
        1 => Just(Op::Compact),
        2 => Just(Op::Roots),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(12))]

    /// Law: whatever the history, the cached trees equal trees built from a full listing.
    #[test]
    fn cached_trees_equal_trees_of_the_listing(ops in proptest::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        rt.block_on(async {
            let dir = tempfile::tempdir().expect("tempdir");
            let options = StoreOptions { segment_size: 4 << 10, ..StoreOptions::default() };
            let store = LocalShardStore::open(dir.path(), options.clone()).expect("open");
            for op in &ops {
                match op {
                    Op::Put(n, v) => {
                        store.put(id(*n), data(*n + *v as u32, 300 + *v as usize)).await.expect("put");
                    }
                    Op::Delete(n) => store.delete(id(*n)).await.expect("delete"),
                    Op::Compact => {
                        store.compact(0.9).await.expect("compact");
                    }
                    Op::Roots => {
                        assert_eq!(store.merkle_roots().await.expect("roots"), expected_roots(&store).await);
                    }
                }
            }
            let roots = store.merkle_roots().await.expect("roots");
            assert_eq!(roots, expected_roots(&store).await);
            store.close().await;
            drop(store);
            let reopened = LocalShardStore::open(dir.path(), options).expect("reopen");
            assert_eq!(reopened.merkle_roots().await.expect("roots"), roots);
        });
    }
}
