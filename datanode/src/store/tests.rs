use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cairn_types::{crc32c, ObjectId, ShardId};
use proptest::prelude::*;

use super::*;
use crate::record::{SegmentHeader, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};

fn id(n: u128) -> ShardId {
    ShardId::new(ObjectId(n), (n % 3) as u32, (n % 5) as u32)
}

fn data(n: u128, len: usize) -> Bytes {
    Bytes::from(
        (0..len)
            .map(|i| (i as u128 * 31 + n * 7) as u8)
            .collect::<Vec<_>>(),
    )
}

fn open(dir: &Path) -> LocalShardStore {
    LocalShardStore::open(dir, StoreOptions::default()).expect("open store")
}

fn seg_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(crate::segment::segment_file_name(n))
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).expect("metadata").len()
}

async fn assert_not_found(store: &LocalShardStore, i: ShardId) {
    match store.get(i).await {
        Err(DatanodeError::NotFound(got)) => assert_eq!(got, i),
        other => panic!("expected NotFound for {i}, got {other:?}"),
    }
}

#[tokio::test]
async fn put_get_delete_list() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let (a, b, c) = (id(1), id(2), id(3));
    let info = store.put(b, data(2, 10)).await.expect("put");
    assert_eq!(info.len, 10);
    assert_eq!(info.crc32c, crc32c(&data(2, 10)));
    store.put(c, data(3, 0)).await.expect("put empty");
    store.put(a, data(1, 5000)).await.expect("put");

    assert_eq!(store.get(a).await.expect("get"), data(1, 5000));
    assert_eq!(store.get(b).await.expect("get"), data(2, 10));
    assert_eq!(store.get(c).await.expect("get"), Bytes::new());

    let ids: Vec<_> = store
        .list(None, 10)
        .await
        .expect("list")
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, vec![a, b, c]);
    let page = store.list(Some(a), 1).await.expect("list");
    assert_eq!(page.len(), 1);
    assert_eq!(page[0], info);

    store.delete(b).await.expect("delete");
    store
        .delete(id(99))
        .await
        .expect("deleting an absent shard is fine");
    assert_not_found(&store, b).await;
    let stats = store.stats().await.expect("stats");
    assert_eq!(stats.shards, 2);
    assert_eq!(stats.live_bytes, 5000);
    assert_eq!(stats.segments, 1);
    assert_eq!(stats.disk_bytes, file_len(&seg_path(dir.path(), 1)));
}

#[tokio::test]
async fn large_shard_round_trip() {
    // Large enough for the separate header/payload writes and the off-thread checksum.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let big = data(7, 3 << 20);
    store.put(id(7), big.clone()).await.expect("put");
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.get(id(7)).await.expect("get"), big);
}

/// Segment files used to be created with the umask's mode (0644: readable by every user of
/// the host) in a directory made the same way; now the directory is 0700 and segments 0600.
#[tokio::test]
async fn directory_and_segments_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("dn0");
    let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    let options = StoreOptions {
        segment_size: 300,
        ..StoreOptions::default()
    };
    let store = LocalShardStore::open(&dir, options).expect("open store");
    for n in 0..8 {
        store.put(id(n), data(n, 100)).await.expect("put");
    }
    assert_eq!(mode(&dir), 0o700);
    let segments = crate::segment::list_segments(&dir).expect("list");
    assert!(segments.len() > 1, "{segments:?}");
    for n in segments {
        assert_eq!(mode(&seg_path(&dir, n)), 0o600, "segment {n}");
    }
}

#[tokio::test]
async fn overwrite_replaces_and_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    store
        .put(id(1), Bytes::from_static(b"one"))
        .await
        .expect("put");
    store
        .put(id(1), Bytes::from_static(b"second"))
        .await
        .expect("put");
    assert_eq!(store.get(id(1)).await.expect("get"), &b"second"[..]);
    assert_eq!(store.stats().await.expect("stats").live_bytes, 6);
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.get(id(1)).await.expect("get"), &b"second"[..]);
    assert_eq!(store.stats().await.expect("stats").live_bytes, 6);
}

#[tokio::test]
async fn reopen_recovers_puts_and_tombstones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    for n in 0..20 {
        store
            .put(id(n), data(n, n as usize * 13))
            .await
            .expect("put");
    }
    for n in (0..20).step_by(3) {
        store.delete(id(n)).await.expect("delete");
    }
    let before = store.list(None, 100).await.expect("list");
    let stats_before = store.stats().await.expect("stats");
    store.close().await;
    assert!(matches!(
        store.put(id(1), data(1, 1)).await,
        Err(DatanodeError::Closed)
    ));
    assert_eq!(
        store.get(id(1)).await.expect("reads work after close"),
        data(1, 13)
    );
    drop(store);

    let store = open(dir.path());
    assert_eq!(store.list(None, 100).await.expect("list"), before);
    for n in 0..20 {
        if n % 3 == 0 {
            assert_not_found(&store, id(n)).await;
        } else {
            assert_eq!(
                store.get(id(n)).await.expect("get"),
                data(n, n as usize * 13)
            );
        }
    }
    let stats = store.stats().await.expect("stats");
    assert_eq!(
        (stats.shards, stats.live_bytes, stats.disk_bytes),
        (
            stats_before.shards,
            stats_before.live_bytes,
            stats_before.disk_bytes
        )
    );
}

#[tokio::test]
async fn too_large_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = StoreOptions {
        max_shard_size: 10,
        ..StoreOptions::default()
    };
    let store = LocalShardStore::open(dir.path(), options).expect("open");
    assert!(matches!(
        store.put(id(1), data(1, 11)).await,
        Err(DatanodeError::TooLarge(11))
    ));
    store.put(id(1), data(1, 10)).await.expect("at the limit");
}

/// Writes A, B, C into a fresh store and returns the offset of C's record and its length.
async fn three_records(dir: &Path) -> (u64, u64) {
    let store = open(dir);
    store.put(id(1), data(1, 100)).await.expect("put");
    store.put(id(2), data(2, 200)).await.expect("put");
    let c_at = store.stats().await.expect("stats").disk_bytes;
    store.put(id(3), data(3, 300)).await.expect("put");
    (c_at, RECORD_HEADER_LEN as u64 + 300)
}

async fn check_a_b_then_write_more(dir: &Path, c_served: bool) {
    let store = open(dir);
    assert_eq!(store.get(id(1)).await.expect("A"), data(1, 100));
    assert_eq!(store.get(id(2)).await.expect("B"), data(2, 200));
    if c_served {
        assert_eq!(store.get(id(3)).await.expect("C"), data(3, 300));
    } else {
        assert_not_found(&store, id(3)).await;
    }
    store
        .put(id(4), data(4, 50))
        .await
        .expect("put after recovery");
    drop(store);
    let store = open(dir);
    assert_eq!(store.get(id(1)).await.expect("A"), data(1, 100));
    assert_eq!(store.get(id(4)).await.expect("D"), data(4, 50));
    assert_eq!(
        store.list(None, 10).await.expect("list").len(),
        3 + c_served as usize
    );
}

#[tokio::test]
async fn torn_tail_is_cut_off() {
    // Cut inside C's header, inside C's payload, and right after C's header.
    for cut in [10, RECORD_HEADER_LEN as u64 + 3, RECORD_HEADER_LEN as u64] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (c_at, _) = three_records(dir.path()).await;
        let path = seg_path(dir.path(), 1);
        OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open segment")
            .set_len(c_at + cut)
            .expect("truncate");
        check_a_b_then_write_more(dir.path(), false).await;
    }
}

#[tokio::test]
async fn garbage_after_the_last_record_is_cut_off() {
    for garbage in [
        vec![0u8; 4096],
        (0..777u32).map(|i| (i * 97) as u8).collect(),
        b"CREC".to_vec(),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (c_at, c_len) = three_records(dir.path()).await;
        let path = seg_path(dir.path(), 1);
        let f = OpenOptions::new().write(true).open(&path).expect("open");
        f.write_all_at(&garbage, c_at + c_len)
            .expect("append garbage");
        drop(f);
        drop(open(dir.path()));
        assert_eq!(file_len(&path), c_at + c_len, "garbage is truncated");
        check_a_b_then_write_more(dir.path(), true).await;
    }
}

#[tokio::test]
async fn last_record_with_unwritten_payload_is_cut_off() {
    // A crash can leave a whole header in front of a payload that never reached the disk.
    let dir = tempfile::tempdir().expect("tempdir");
    let (c_at, _) = three_records(dir.path()).await;
    let path = seg_path(dir.path(), 1);
    let f = OpenOptions::new().write(true).open(&path).expect("open");
    f.write_all_at(&[0u8; 300], c_at + RECORD_HEADER_LEN as u64)
        .expect("zero payload");
    drop(f);
    check_a_b_then_write_more(dir.path(), false).await;
}

fn flip_byte(path: &Path, at: u64) {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open");
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).expect("read");
    f.write_all_at(&[b[0] ^ 0x20], at).expect("write");
}

#[tokio::test]
async fn flipped_payload_byte_is_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let a_payload = (SEGMENT_HEADER_LEN + RECORD_HEADER_LEN) as u64;
    store.put(id(1), data(1, 100)).await.expect("put");
    store.put(id(2), data(2, 100)).await.expect("put");
    flip_byte(&seg_path(dir.path(), 1), a_payload + 42);
    assert!(matches!(
        store.get(id(1)).await,
        Err(DatanodeError::Corrupt { id: got, .. }) if got == id(1)
    ));
    assert_eq!(store.get(id(2)).await.expect("B intact"), data(2, 100));
    drop(store);

    // Still reported after a reopen (the damage is not at the tail).
    let store = open(dir.path());
    assert!(matches!(
        store.get(id(1)).await,
        Err(DatanodeError::Corrupt { .. })
    ));
    assert_eq!(store.get(id(2)).await.expect("B intact"), data(2, 100));
}

#[tokio::test]
async fn damaged_header_mid_segment_stops_the_scan_and_writes_move_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    store.put(id(1), data(1, 100)).await.expect("put");
    let b_at = store.stats().await.expect("stats").disk_bytes;
    store.put(id(2), data(2, 100)).await.expect("put");
    store.put(id(3), data(3, 100)).await.expect("put");
    drop(store);
    let path = seg_path(dir.path(), 1);
    let len = file_len(&path);
    flip_byte(&path, b_at + 20);

    let store = open(dir.path());
    assert_eq!(file_len(&path), len, "a damaged segment is not truncated");
    assert_eq!(store.get(id(1)).await.expect("A"), data(1, 100));
    assert_not_found(&store, id(2)).await;
    assert_not_found(&store, id(3)).await;
    assert_eq!(store.stats().await.expect("stats").segments, 2);
    store.put(id(4), data(4, 10)).await.expect("put");
    drop(store);

    let store = open(dir.path());
    let ids: Vec<_> = store
        .list(None, 10)
        .await
        .expect("list")
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, vec![id(1), id(4)]);
}

#[tokio::test]
async fn newer_format_version_refuses_to_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut h = SegmentHeader { segment: 1 }.encode();
    h[8] = 9;
    let crc = crc32c(&h[..28]);
    h[28..].copy_from_slice(&crc.to_le_bytes());
    let path = seg_path(dir.path(), 1);
    std::fs::write(&path, h).expect("write");
    assert!(LocalShardStore::open(dir.path(), StoreOptions::default()).is_err());
    assert_eq!(file_len(&path), 32, "nothing is truncated");
}

#[tokio::test]
async fn interrupted_segment_creation_is_repaired() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    store.put(id(1), data(1, 10)).await.expect("put");
    drop(store);
    std::fs::write(seg_path(dir.path(), 2), [0u8; 7]).expect("write");
    let store = open(dir.path());
    store.put(id(2), data(2, 10)).await.expect("put");
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.list(None, 10).await.expect("list").len(), 2);
    assert_eq!(store.stats().await.expect("stats").segments, 2);
}

#[tokio::test]
async fn segments_roll_at_segment_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = StoreOptions {
        segment_size: 400,
        ..StoreOptions::default()
    };
    let store = LocalShardStore::open(dir.path(), options.clone()).expect("open");
    for n in 0..20 {
        store.put(id(n), data(n, 100)).await.expect("put");
    }
    // Larger than a segment: gets one of its own.
    store.put(id(100), data(100, 1000)).await.expect("put big");
    for n in (0..20).step_by(4) {
        store.delete(id(n)).await.expect("delete");
    }
    let stats = store.stats().await.expect("stats");
    assert!(stats.segments >= 7, "{stats:?}");
    let numbers = crate::segment::list_segments(dir.path()).expect("list");
    assert_eq!(numbers.len() as u64, stats.segments);
    for n in &numbers {
        let len = file_len(&seg_path(dir.path(), *n));
        assert!(
            len <= 400 || len == (32 + 48 + 1000),
            "segment {n} is {len} bytes"
        );
    }
    let disk: u64 = numbers
        .iter()
        .map(|n| file_len(&seg_path(dir.path(), *n)))
        .sum();
    assert_eq!(stats.disk_bytes, disk);
    drop(store);

    let store = LocalShardStore::open(dir.path(), options).expect("reopen");
    for n in 0..20 {
        if n % 4 == 0 {
            assert_not_found(&store, id(n)).await;
        } else {
            assert_eq!(store.get(id(n)).await.expect("get"), data(n, 100));
        }
    }
    assert_eq!(store.get(id(100)).await.expect("get"), data(100, 1000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_puts_share_fsyncs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = StoreOptions {
        commit_delay: Duration::from_millis(20),
        ..StoreOptions::default()
    };
    let store = Arc::new(LocalShardStore::open(dir.path(), options).expect("open"));
    store.put(id(1000), data(1000, 64)).await.expect("seed");
    let before = store.stats().await.expect("stats").fsyncs;

    let mut tasks = Vec::new();
    for n in 0..64u128 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.put(id(n), data(n, 1000 + n as usize)).await
        }));
    }
    // Reads run alongside the writes.
    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            for _ in 0..50 {
                assert_eq!(store.get(id(1000)).await.expect("get"), data(1000, 64));
            }
        })
    };
    for t in tasks {
        t.await.expect("join").expect("put");
    }
    reader.await.expect("reader");
    let fsyncs = store.stats().await.expect("stats").fsyncs - before;
    assert!(fsyncs < 64, "64 concurrent puts took {fsyncs} fsyncs");
    for n in 0..64u128 {
        assert_eq!(
            store.get(id(n)).await.expect("get"),
            data(n, 1000 + n as usize)
        );
    }
}

#[derive(Debug, Clone)]
enum Op {
    Put(u8, Vec<u8>),
    Delete(u8),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..12, proptest::collection::vec(any::<u8>(), 0..150)).prop_map(|(k, v)| Op::Put(k, v)),
        3 => (0u8..12).prop_map(Op::Delete),
        1 => Just(Op::Reopen),
    ]
}

async fn run_model(ops: Vec<Op>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = StoreOptions {
        segment_size: 300,
        ..StoreOptions::default()
    };
    let mut store = LocalShardStore::open(dir.path(), options.clone()).expect("open");
    let mut model: BTreeMap<ShardId, Vec<u8>> = BTreeMap::new();
    for op in ops {
        match op {
            Op::Put(k, v) => {
                store
                    .put(id(k.into()), Bytes::from(v.clone()))
                    .await
                    .expect("put");
                model.insert(id(k.into()), v);
            }
            Op::Delete(k) => {
                store.delete(id(k.into())).await.expect("delete");
                model.remove(&id(k.into()));
            }
            Op::Reopen => {
                drop(store);
                store = LocalShardStore::open(dir.path(), options.clone()).expect("reopen");
            }
        }
    }
    drop(store);
    let store = LocalShardStore::open(dir.path(), options).expect("reopen");
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
    for (i, v) in &model {
        assert_eq!(store.get(*i).await.expect("get"), &v[..]);
    }
    let stats = store.stats().await.expect("stats");
    assert_eq!(stats.shards, model.len() as u64);
    assert_eq!(
        stats.live_bytes,
        model.values().map(|v| v.len() as u64).sum::<u64>()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn random_ops_then_reopen_match_a_map(ops in proptest::collection::vec(op(), 0..60)) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(run_model(ops));
    }
}
