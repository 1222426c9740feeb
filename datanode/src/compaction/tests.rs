use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cairn_types::{crc32c, ObjectId, ShardId};
use proptest::prelude::*;

use crate::segment::{list_segments, segment_file_name};
use crate::{
    run_compaction, CompactionReport, DatanodeError, LocalShardStore, ShardInfo, ShardStore,
    StoreOptions,
};

fn id(n: u128) -> ShardId {
    ShardId::new(ObjectId(n), (n % 3) as u32, (n % 5) as u32)
}

fn data(n: u128, len: usize) -> Bytes {
    Bytes::from(
        (0..len)
            .map(|i| (i as u128 * 17 + n * 11) as u8)
            .collect::<Vec<_>>(),
    )
}

fn small(segment_size: u64) -> StoreOptions {
    StoreOptions {
        segment_size,
        ..StoreOptions::default()
    }
}

fn disk_bytes(dir: &Path) -> u64 {
    list_segments(dir)
        .expect("list")
        .iter()
        .map(|n| {
            std::fs::metadata(dir.join(segment_file_name(*n)))
                .expect("metadata")
                .len()
        })
        .sum()
}

async fn assert_matches(store: &LocalShardStore, model: &BTreeMap<ShardId, Bytes>) {
    let listed = store.list(None, usize::MAX).await.expect("list");
    let expected: Vec<ShardInfo> = model
        .iter()
        .map(|(i, v)| ShardInfo {
            id: *i,
            len: v.len() as u64,
            crc32c: crc32c(v),
        })
        .collect();
    assert_eq!(listed, expected);
    for (i, v) in model {
        assert_eq!(&store.get(*i).await.expect("get"), v, "shard {i}");
    }
    let stats = store.stats().await.expect("stats");
    assert_eq!(stats.shards, model.len() as u64);
    assert_eq!(
        stats.live_bytes,
        model.values().map(|v| v.len() as u64).sum::<u64>()
    );
}

#[tokio::test]
async fn compaction_frees_space_and_keeps_live_shards() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = small(1000);
    let store = LocalShardStore::open(dir.path(), options.clone()).expect("open");
    let mut model = BTreeMap::new();
    for n in 0..60u128 {
        let v = data(n, 100 + (n as usize % 7) * 10);
        store.put(id(n), v.clone()).await.expect("put");
        model.insert(id(n), v);
    }
    // Delete most, overwrite some.
    for n in 0..60u128 {
        if n % 5 == 0 {
            let v = data(n + 1000, 50);
            store.put(id(n), v.clone()).await.expect("overwrite");
            model.insert(id(n), v);
        } else if n % 5 != 1 {
            store.delete(id(n)).await.expect("delete");
            model.remove(&id(n));
        }
    }
    let segments_before = list_segments(dir.path()).expect("list").len();
    let disk_before = disk_bytes(dir.path());
    assert_eq!(store.stats().await.expect("stats").disk_bytes, disk_before);

    let report = store.compact(0.5).await.expect("compact");
    assert!(report.segments_compacted > 0, "{report:?}");
    assert!(report.records_moved > 0, "{report:?}");
    let disk_after = disk_bytes(dir.path());
    let segments_after = list_segments(dir.path()).expect("list").len();
    assert!(
        disk_after < disk_before / 2,
        "{disk_before} -> {disk_after} ({report:?})"
    );
    assert!(segments_after < segments_before);
    assert!(
        report.bytes_reclaimed >= disk_before - disk_after,
        "{report:?}"
    );
    let stats = store.stats().await.expect("stats");
    assert_eq!(stats.disk_bytes, disk_after);
    assert_eq!(stats.segments, segments_after as u64);
    assert_matches(&store, &model).await;

    // A second pass (which may pick up the segment the first one sealed) changes nothing
    // visible.
    store.compact(0.5).await.expect("compact again");
    assert_matches(&store, &model).await;

    // Deleted shards stay deleted across reopen (no resurrection from old tombstones).
    drop(store);
    let store = LocalShardStore::open(dir.path(), options).expect("reopen");
    assert_matches(&store, &model).await;
    for n in 0..60u128 {
        if !model.contains_key(&id(n)) {
            assert!(matches!(
                store.get(id(n)).await,
                Err(DatanodeError::NotFound(_))
            ));
        }
    }
}

#[tokio::test]
async fn a_mostly_dead_active_segment_is_sealed_and_compacted_at_the_default_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = StoreOptions::default();
    let store = LocalShardStore::open(dir.path(), options.clone()).expect("open");
    let mut model = BTreeMap::new();
    // 40 shards of 256 KiB in the one (active) segment, then 36 deleted: 9 MiB dead.
    for n in 0..40u128 {
        let v = data(n, 256 << 10);
        store.put(id(n), v.clone()).await.expect("put");
        model.insert(id(n), v);
    }
    for n in 0..36u128 {
        store.delete(id(n)).await.expect("delete");
        model.remove(&id(n));
    }
    assert_eq!(list_segments(dir.path()).expect("list").len(), 1);
    let before = disk_bytes(dir.path());
    let report = store.compact(0.5).await.expect("compact");
    assert_eq!(report.segments_sealed, 1, "{report:?}");
    assert_eq!(report.segments_compacted, 1, "{report:?}");
    assert_eq!(report.records_moved, 4, "{report:?}");
    let after = disk_bytes(dir.path());
    let live = 4 * (256 << 10) as u64;
    assert!(
        after < live + (64 << 10),
        "{before} -> {after} bytes on disk for {live} live"
    );
    assert_matches(&store, &model).await;
    // Writes go on in the new active segment; nothing more to seal.
    store.put(id(100), data(100, 1000)).await.expect("put");
    model.insert(id(100), data(100, 1000));
    let again = store.compact(0.5).await.expect("compact again");
    assert_eq!(again, CompactionReport::default());
    drop(store);
    let store = LocalShardStore::open(dir.path(), options).expect("reopen");
    assert_matches(&store, &model).await;
}

#[tokio::test]
async fn an_active_segment_with_little_dead_data_is_left_to_fill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalShardStore::open(dir.path(), StoreOptions::default()).expect("open");
    // 90% dead but only 1.8 MiB of it: under `seal_min_dead` (4 MiB), so kept.
    for n in 0..10u128 {
        store.put(id(n), data(n, 200 << 10)).await.expect("put");
    }
    for n in 0..9u128 {
        store.delete(id(n)).await.expect("delete");
    }
    let report = store.compact(0.5).await.expect("compact");
    assert_eq!(report, CompactionReport::default());
    assert_eq!(list_segments(dir.path()).expect("list"), vec![1]);
}

#[tokio::test]
async fn an_active_segment_of_needed_tombstones_is_not_sealed_again_and_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Segment 1 holds exactly 100 puts of 1000 bytes; the deletes go to segment 2.
    let options = StoreOptions {
        segment_size: 32 + 100 * (48 + 1000),
        seal_min_dead: 1000,
        ..StoreOptions::default()
    };
    let store = LocalShardStore::open(dir.path(), options.clone()).expect("open");
    for n in 0..100u128 {
        store.put(id(n), data(n, 1000)).await.expect("put");
    }
    // 40 tombstones (1,920 bytes) whose puts stay in segment 1, which is 60% live.
    for n in 0..40u128 {
        store.delete(id(n)).await.expect("delete");
    }
    assert_eq!(list_segments(dir.path()).expect("list"), vec![1, 2]);
    for _ in 0..3 {
        let report = store.compact(0.5).await.expect("compact");
        assert_eq!(report, CompactionReport::default());
    }
    // Still so after a reopen (recovery counts the tombstones too).
    drop(store);
    let store = LocalShardStore::open(dir.path(), options).expect("reopen");
    assert_eq!(
        store.compact(0.5).await.expect("compact"),
        CompactionReport::default()
    );
    assert!(store.get(id(0)).await.is_err());
    assert_eq!(store.get(id(50)).await.expect("get"), data(50, 1000));
}

#[tokio::test]
async fn tombstones_survive_while_an_older_segment_holds_the_put() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = small(600);
    let store = LocalShardStore::open(dir.path(), options.clone()).expect("open");
    // Segment 1: mostly live shards (stays), plus shard 99 that gets deleted.
    store.put(id(99), data(99, 100)).await.expect("put");
    for n in 0..3u128 {
        store.put(id(n), data(n, 100)).await.expect("put");
    }
    // Later segments: filler that gets deleted, and the tombstone of 99.
    store.delete(id(99)).await.expect("delete");
    for n in 10..30u128 {
        store.put(id(n), data(n, 100)).await.expect("put");
    }
    for n in 10..30u128 {
        store.delete(id(n)).await.expect("delete");
    }
    // Segment 1 is 4 records of 148 bytes, 3 live: above the threshold, it stays.
    let report = store.compact(0.5).await.expect("compact");
    assert!(report.segments_compacted > 0, "{report:?}");
    assert!(dir.path().join(segment_file_name(1)).exists());
    drop(store);
    let store = LocalShardStore::open(dir.path(), options.clone()).expect("reopen");
    assert!(matches!(
        store.get(id(99)).await,
        Err(DatanodeError::NotFound(_))
    ));
    for n in 0..3u128 {
        assert_eq!(store.get(id(n)).await.expect("get"), data(n, 100));
    }
    // Once segment 1 goes as well, everything can be dropped; still nothing resurrects.
    for n in 0..3u128 {
        store.delete(id(n)).await.expect("delete");
    }
    // Fill the active segment so the tombstones above end up sealed.
    for n in 40..50u128 {
        store.put(id(n), data(n, 100)).await.expect("put");
        store.delete(id(n)).await.expect("delete");
    }
    store.compact(0.5).await.expect("compact");
    assert!(!dir.path().join(segment_file_name(1)).exists());
    store.compact(0.5).await.expect("compact again");
    drop(store);
    let store = LocalShardStore::open(dir.path(), options).expect("reopen");
    assert_matches(&store, &BTreeMap::new()).await;
}

#[tokio::test]
async fn a_read_of_an_old_location_survives_the_unlink() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalShardStore::open(dir.path(), small(400)).expect("open");
    store.put(id(1), data(1, 100)).await.expect("put");
    for n in 2..10u128 {
        store.put(id(n), data(n, 100)).await.expect("put");
        store.delete(id(n)).await.expect("delete");
    }
    // What a reader holds after its index lookup.
    let (loc, reader) = {
        let state = store.shared().read_state();
        let loc = state.index.get(&id(1)).expect("indexed");
        let reader = state.segments[&loc.segment].reader.clone();
        (loc, reader)
    };
    assert_eq!(loc.segment, 1);
    store.compact(0.5).await.expect("compact");
    assert!(!dir.path().join(segment_file_name(1)).exists());
    let old = crate::segment::read_payload(&reader, loc.offset, loc.len).expect("read");
    assert_eq!(old, data(1, 100));
    assert_eq!(store.get(id(1)).await.expect("get"), data(1, 100));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_traffic_during_compaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = small(2000);
    let store = Arc::new(LocalShardStore::open(dir.path(), options.clone()).expect("open"));
    let keys = 40u128;
    for n in 0..keys {
        store.put(id(n), data(n, 200)).await.expect("put");
    }
    for round in 0..3u128 {
        for n in 0..keys {
            store
                .put(id(n), data(n + round * 100, 150))
                .await
                .expect("put");
        }
    }
    // Each task owns a disjoint set of keys, so its own final state is the model.
    let mut tasks = Vec::new();
    for t in 0..4u128 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut model = BTreeMap::new();
            for step in 0..60u128 {
                let n = t + 4 * (step % (keys / 4));
                match step % 3 {
                    0 | 1 => {
                        let v = data(n * 1000 + step, 50 + (step as usize % 90));
                        store.put(id(n), v.clone()).await.expect("put");
                        model.insert(id(n), Some(v));
                    }
                    _ => {
                        store.delete(id(n)).await.expect("delete");
                        model.insert(id(n), None);
                    }
                }
                // A read of what this task last wrote must succeed.
                match &model[&id(n)] {
                    Some(v) => assert_eq!(&store.get(id(n)).await.expect("get"), v),
                    None => assert!(matches!(
                        store.get(id(n)).await,
                        Err(DatanodeError::NotFound(_))
                    )),
                }
            }
            model
        }));
    }
    let compactor = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut total = CompactionReport::default();
            for _ in 0..20 {
                let r = store.compact(0.9).await.expect("compact");
                total.segments_compacted += r.segments_compacted;
                total.records_moved += r.records_moved;
                tokio::task::yield_now().await;
            }
            total
        })
    };
    let mut model: BTreeMap<ShardId, Bytes> = BTreeMap::new();
    let mut touched = Vec::new();
    for t in tasks {
        for (k, v) in t.await.expect("join") {
            touched.push(k);
            if let Some(v) = v {
                model.insert(k, v);
            }
        }
    }
    let total = compactor.await.expect("join compactor");
    assert!(total.segments_compacted > 0, "{total:?}");
    // Keys no task touched keep their last pre-compaction value.
    for n in 0..keys {
        if !touched.contains(&id(n)) {
            model.insert(id(n), data(n + 200, 150));
        }
    }
    assert_matches(&store, &model).await;
    store.compact(0.5).await.expect("final compact");
    assert_matches(&store, &model).await;
    let store = Arc::try_unwrap(store).expect("sole owner");
    drop(store);
    let store = LocalShardStore::open(dir.path(), options).expect("reopen");
    assert_matches(&store, &model).await;
}

#[tokio::test]
async fn background_loop_compacts_and_stops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(LocalShardStore::open(dir.path(), small(500)).expect("open"));
    for n in 0..20u128 {
        store.put(id(n), data(n, 100)).await.expect("put");
        store.delete(id(n)).await.expect("delete");
    }
    let before = list_segments(dir.path()).expect("list").len();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let worker = cairn_worker::Worker::new("compaction", "");
    let task = tokio::spawn(run_compaction(
        vec![store.clone()],
        Duration::from_millis(5),
        worker.clone(),
        rx,
    ));
    let mut ok = false;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        if list_segments(dir.path()).expect("list").len() < before {
            ok = true;
            break;
        }
    }
    assert!(ok, "the loop never compacted");
    // The report reaches the worker once the round ends.
    for _ in 0..200 {
        if worker.snapshot().rounds > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(worker.snapshot().rounds > 0);
    tx.send(true).expect("send");
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("loop stops")
        .expect("join");
}

#[derive(Debug, Clone)]
enum Op {
    Put(u8, usize),
    Delete(u8),
    Compact,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..10, 0usize..120).prop_map(|(k, len)| Op::Put(k, len)),
        4 => (0u8..10).prop_map(Op::Delete),
        2 => Just(Op::Compact),
        1 => Just(Op::Reopen),
    ]
}

async fn run_model(ops: Vec<Op>, seal_min_dead: u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = StoreOptions {
        seal_min_dead,
        ..small(300)
    };
    let mut store = LocalShardStore::open(dir.path(), options.clone()).expect("open");
    let mut model: BTreeMap<ShardId, Bytes> = BTreeMap::new();
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Put(k, len) => {
                let v = data(k as u128 * 1000 + step as u128, len);
                store.put(id(k.into()), v.clone()).await.expect("put");
                model.insert(id(k.into()), v);
            }
            Op::Delete(k) => {
                store.delete(id(k.into())).await.expect("delete");
                model.remove(&id(k.into()));
            }
            Op::Compact => {
                store.compact(0.5).await.expect("compact");
                assert_matches(&store, &model).await;
            }
            Op::Reopen => {
                drop(store);
                store = LocalShardStore::open(dir.path(), options.clone()).expect("reopen");
            }
        }
    }
    store.compact(0.5).await.expect("compact");
    drop(store);
    let store = LocalShardStore::open(dir.path(), options).expect("reopen");
    assert_matches(&store, &model).await;
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn random_ops_with_compaction_match_a_map(
        ops in proptest::collection::vec(op(), 0..80),
        seal_min_dead in prop_oneof![Just(0u64), Just(200), Just(u64::MAX)],
    ) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(run_model(ops, seal_min_dead));
    }
}

#[tokio::test]
async fn stale_relocations_are_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = LocalShardStore::open(dir.path(), StoreOptions::default()).expect("open");
    store.put(id(1), data(1, 10)).await.expect("put");
    let old = store
        .shared()
        .read_state()
        .index
        .get(&id(1))
        .expect("indexed");
    // A newer write lands between compaction's lookup and the move.
    store.put(id(1), data(2, 20)).await.expect("overwrite");
    let moves = vec![
        crate::writer::Relocation {
            id: id(1),
            from: Some(old),
            data: data(1, 10),
        },
        // A tombstone of a shard that exists again must not be copied either.
        crate::writer::Relocation {
            id: id(1),
            from: None,
            data: Bytes::new(),
        },
    ];
    let done = store.relocate(moves).await.expect("relocate");
    assert_eq!(done.records, 0);
    assert_eq!(store.get(id(1)).await.expect("get"), data(2, 20));
    drop(store);
    let store = LocalShardStore::open(dir.path(), StoreOptions::default()).expect("reopen");
    assert_eq!(store.get(id(1)).await.expect("get"), data(2, 20));
}

#[tokio::test]
async fn a_paused_compaction_worker_compacts_nothing_until_resumed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(LocalShardStore::open(dir.path(), small(500)).expect("open"));
    for n in 0..20u128 {
        store.put(id(n), data(n, 100)).await.expect("put");
        store.delete(id(n)).await.expect("delete");
    }
    let before = list_segments(dir.path()).expect("list").len();
    let worker = cairn_worker::Worker::new("compaction", "");
    worker.pause();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(run_compaction(
        vec![store.clone()],
        Duration::from_millis(5),
        worker.clone(),
        rx,
    ));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        list_segments(dir.path()).expect("list").len(),
        before,
        "compacted while paused"
    );
    assert_eq!(worker.snapshot().state, cairn_worker::WorkerState::Paused);
    worker.resume();
    let mut ok = false;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        if list_segments(dir.path()).expect("list").len() < before {
            ok = true;
            break;
        }
    }
    assert!(ok, "never compacted after resuming");
    tx.send(true).expect("send");
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("loop stops")
        .expect("join");
    assert!(worker.snapshot().progress.contains("segment(s) compacted"));
}
