//! Data-path tests over RocksDB metadata and an in-memory shard store.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use cairn_datanode::{DatanodeError, ShardInfo, ShardStore, StoreStats};
use cairn_metadata::{BucketRecord, Command, MemoryMetadataStore};
use cairn_types::{BucketName, EcScheme, NodeId, ObjectKey, ShardId};
use futures::{stream, StreamExt, TryStreamExt};

use super::*;

mod layouts;
mod reader;
mod sealed;
mod service;

/// Stripe size of the fixtures (small, so that tests cross many stripe boundaries).
const STRIPE: usize = 1000;

#[derive(Default)]
struct MemStore {
    shards: Mutex<BTreeMap<ShardId, Bytes>>,
    fail_puts_after: Mutex<Option<usize>>,
    /// Every shard read, in order.
    gets: Mutex<Vec<ShardId>>,
    /// What [`ShardStore::is_local`] answers.
    local: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl ShardStore for MemStore {
    async fn put(&self, id: ShardId, data: Bytes) -> cairn_datanode::Result<ShardInfo> {
        if let Some(n) = self.fail_puts_after.lock().unwrap().as_mut() {
            if *n == 0 {
                return Err(DatanodeError::Closed);
            }
            *n -= 1;
        }
        let info = ShardInfo {
            id,
            len: data.len() as u64,
            crc32c: cairn_types::crc32c(&data),
        };
        self.shards.lock().unwrap().insert(id, data);
        Ok(info)
    }
    async fn get(&self, id: ShardId) -> cairn_datanode::Result<Bytes> {
        self.gets.lock().unwrap().push(id);
        self.shards
            .lock()
            .unwrap()
            .get(&id)
            .cloned()
            .ok_or(DatanodeError::NotFound(id))
    }
    async fn delete(&self, id: ShardId) -> cairn_datanode::Result<()> {
        self.shards.lock().unwrap().remove(&id);
        Ok(())
    }
    fn is_local(&self) -> bool {
        self.local.load(std::sync::atomic::Ordering::SeqCst)
    }
    async fn list(
        &self,
        _start_after: Option<ShardId>,
        _limit: usize,
    ) -> cairn_datanode::Result<Vec<ShardInfo>> {
        Ok(Vec::new())
    }
    async fn stats(&self) -> cairn_datanode::Result<StoreStats> {
        Ok(StoreStats {
            shards: self.shards.lock().unwrap().len() as u64,
            ..Default::default()
        })
    }
}

struct Fixture {
    svc: ObjectService,
    store: Arc<MemStore>,
    stores: Vec<Arc<MemStore>>,
    bucket: BucketName,
}

async fn fixture() -> Fixture {
    fixture_with(1, EcScheme::SINGLE).await
}

async fn fixture_with(n: u32, ec: EcScheme) -> Fixture {
    fixture_inline(n, ec, 100).await
}

async fn fixture_inline(n: u32, ec: EcScheme, inline_threshold: usize) -> Fixture {
    let meta = Arc::new(MemoryMetadataStore::new());
    let bucket = BucketName::new("bkt").unwrap();
    meta.apply(Command::CreateBucket(BucketRecord {
        name: bucket.clone(),
        created_ms: 0,
        owner: "o".into(),
    }))
    .await
    .unwrap();
    let stores: Vec<Arc<MemStore>> = (0..n).map(|_| Arc::new(MemStore::default())).collect();
    let mut nodes: BTreeMap<NodeId, Arc<dyn ShardStore>> = BTreeMap::new();
    for (i, st) in stores.iter().enumerate() {
        nodes.insert(NodeId(i as u32), st.clone());
    }
    let store = stores[0].clone();
    let svc = ObjectService::new(
        meta,
        nodes,
        ObjectsConfig {
            stripe_size: STRIPE,
            inline_threshold,
            max_in_flight: 2,
            read_ahead: 2,
            ec,
            write_quorum: None,
            allow_fewer_datanodes: false,
        },
    )
    .unwrap();
    Fixture {
        svc,
        store,
        stores,
        bucket,
    }
}

fn body(data: &[u8], piece: usize) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let chunks: Vec<_> = data
        .chunks(piece.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    stream::iter(chunks)
}

fn record(w: WrittenBody) -> ObjectRecord {
    ObjectRecord {
        size: w.size,
        etag: w.md5_hex,
        last_modified_ms: 0,
        content_type: None,
        headers: Default::default(),
        user_meta: Default::default(),
        checksum: None,
        data: w.data,
        version_id: None,
        tags: Default::default(),
        acl: None,
        upload_id: None,
    }
}

async fn read_all(svc: &ObjectService, rec: &ObjectRecord, r: Range<u64>) -> Vec<u8> {
    let parts: Vec<Bytes> = svc.read(rec, r).try_collect().await.unwrap();
    parts.concat()
}

#[tokio::test]
async fn sizes_round_trip_and_ranges() {
    let f = fixture().await;
    for size in [0usize, 1, 99, 100, 999, 1000, 1001, 4321] {
        let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        let w = f.svc.write_body(body(&data, 333)).await.unwrap();
        assert_eq!(w.size, size as u64);
        assert_eq!(matches!(w.data, ObjectData::Inline(_)), size < 100);
        let rec = record(w);
        assert_eq!(read_all(&f.svc, &rec, 0..size as u64).await, data);
        if size > 10 {
            let r = 3..(size as u64 - 2);
            assert_eq!(
                read_all(&f.svc, &rec, r.clone()).await,
                data[r.start as usize..r.end as usize]
            );
        }
    }
}

#[tokio::test]
async fn overwrite_and_delete_free_shards_through_gc() {
    let f = fixture().await;
    let key = ObjectKey::new("k").unwrap();
    let data = vec![5u8; 2500];
    let w = f.svc.write_body(body(&data, 700)).await.unwrap();
    f.svc.commit(&f.bucket, &key, record(w)).await.unwrap();
    assert_eq!(f.store.shards.lock().unwrap().len(), 3);
    let w = f.svc.write_body(body(&data[..1500], 700)).await.unwrap();
    f.svc.commit(&f.bucket, &key, record(w)).await.unwrap();
    let gc = f.svc.gc_worker();
    assert_eq!(gc.run_once().await.unwrap(), 3);
    assert_eq!(f.store.shards.lock().unwrap().len(), 2);
    assert!(
        f.svc
            .delete(&f.bucket, &key, "m".into(), 0)
            .await
            .unwrap()
            .existed
    );
    assert!(
        !f.svc
            .delete(&f.bucket, &key, "m".into(), 0)
            .await
            .unwrap()
            .existed
    );
    gc.run_once().await.unwrap();
    assert!(f.store.shards.lock().unwrap().is_empty());
}

#[tokio::test]
async fn failed_body_leaves_no_shards() {
    let f = fixture().await;
    let chunks = vec![
        Ok(Bytes::from(vec![1u8; 2500])),
        Err(std::io::Error::other("client went away")),
    ];
    let r = f.svc.write_body(stream::iter(chunks)).await;
    assert!(matches!(r, Err(PutError::Body(_))));
    assert!(f.store.shards.lock().unwrap().is_empty());
}

#[tokio::test]
async fn failed_shard_write_fails_the_put_and_cleans_up() {
    let f = fixture().await;
    *f.store.fail_puts_after.lock().unwrap() = Some(1);
    let r = f.svc.write_body(body(&[9u8; 5000], 1000)).await;
    assert!(matches!(r, Err(PutError::Store(_))));
    assert!(f.store.shards.lock().unwrap().is_empty());
}

#[tokio::test]
async fn corrupt_shard_is_detected_on_read() {
    let f = fixture().await;
    let w = f.svc.write_body(body(&[3u8; 1500], 1500)).await.unwrap();
    let rec = record(w);
    {
        let mut shards = f.store.shards.lock().unwrap();
        let first = *shards.keys().next().unwrap();
        shards.insert(first, Bytes::from(vec![4u8; 1000]));
    }
    let r: Vec<_> = f.svc.read(&rec, 0..1500).collect().await;
    assert!(r.iter().any(|x| x.is_err()));
}

fn shard_count(f: &Fixture) -> usize {
    f.stores
        .iter()
        .map(|s| s.shards.lock().unwrap().len())
        .sum()
}

#[tokio::test]
async fn erasure_coded_round_trip_and_any_two_losses() {
    let f = fixture_with(6, EcScheme { data: 4, parity: 2 }).await;
    let data: Vec<u8> = (0..3500u32).map(|i| (i * 31 % 253) as u8).collect();
    let w = f.svc.write_body(body(&data, 400)).await.unwrap();
    let rec = record(w);
    // 4 stripes (1000-byte stripes), 6 shards each, spread over all six stores.
    assert_eq!(shard_count(&f), 24);
    assert!(f
        .stores
        .iter()
        .all(|s| !s.shards.lock().unwrap().is_empty()));
    assert_eq!(read_all(&f.svc, &rec, 0..3500).await, data);
    assert_eq!(f.svc.degraded_reads(), 0);
    for lost in [[0usize, 1], [2, 5], [3, 4]] {
        let saved: Vec<_> = lost
            .iter()
            .map(|&i| std::mem::take(&mut *f.stores[i].shards.lock().unwrap()))
            .collect();
        assert_eq!(read_all(&f.svc, &rec, 0..3500).await, data, "lost {lost:?}");
        assert_eq!(read_all(&f.svc, &rec, 1234..2345).await, data[1234..2345]);
        for (&i, s) in lost.iter().zip(saved) {
            *f.stores[i].shards.lock().unwrap() = s;
        }
    }
    assert!(f.svc.degraded_reads() > 0);
    // Three losses exceed m = 2: an error, not wrong bytes.
    for i in 0..3 {
        f.stores[i].shards.lock().unwrap().clear();
    }
    let r: Vec<_> = f.svc.read(&rec, 0..3500).collect().await;
    assert!(r
        .iter()
        .any(|x| matches!(x, Err(ObjectsError::TooFewShards { .. }))));
}

#[tokio::test]
async fn write_quorum_is_enforced() {
    let f = fixture_with(6, EcScheme { data: 4, parity: 2 }).await;
    // One dead datanode: 5 of 6 shards = k+1, still written.
    *f.stores[0].fail_puts_after.lock().unwrap() = Some(0);
    let w = f.svc.write_body(body(&[7u8; 2500], 500)).await.unwrap();
    let rec = record(w);
    assert_eq!(read_all(&f.svc, &rec, 0..2500).await, vec![7u8; 2500]);
    // Two dead: below quorum, the put fails and leaves nothing behind.
    *f.stores[1].fail_puts_after.lock().unwrap() = Some(0);
    let before = shard_count(&f);
    let r = f.svc.write_body(body(&[8u8; 2500], 500)).await;
    assert!(matches!(
        r,
        Err(PutError::Store(ObjectsError::WriteQuorum { .. }))
    ));
    assert_eq!(shard_count(&f), before);
}

#[tokio::test]
async fn schemes_that_do_not_fit_are_refused() {
    let meta = Arc::new(MemoryMetadataStore::new());
    let mut nodes: BTreeMap<NodeId, Arc<dyn ShardStore>> = BTreeMap::new();
    nodes.insert(NodeId(0), Arc::new(MemStore::default()));
    let cfg = ObjectsConfig {
        ec: EcScheme { data: 4, parity: 2 },
        ..ObjectsConfig::default()
    };
    assert!(matches!(
        ObjectService::new(meta.clone(), nodes.clone(), cfg.clone()),
        Err(ObjectsError::Config(_))
    ));
    // A cluster node may start before the others registered theirs: accepted, but a
    // striped write says there are not enough datanodes.
    let svc = ObjectService::new(
        meta,
        nodes,
        ObjectsConfig {
            allow_fewer_datanodes: true,
            ..cfg
        },
    )
    .unwrap();
    let view = svc.membership().view();
    let r = svc
        .write_stripe(
            &view,
            &svc.codec,
            ObjectId::random(),
            0,
            Bytes::from(vec![7u8; 1000]),
        )
        .await;
    assert!(
        matches!(
            r,
            Err(ObjectsError::NotEnoughDatanodes {
                available: 1,
                needed: 6
            })
        ),
        "{r:?}"
    );
}

#[tokio::test]
async fn failed_shard_writes_are_handed_off_to_spare_nodes() {
    // Seven nodes for 4+2: one spare per stripe. One node refuses writes.
    let f = fixture_with(7, EcScheme { data: 4, parity: 2 }).await;
    *f.stores[3].fail_puts_after.lock().unwrap() = Some(0);
    let data: Vec<u8> = (0..5000u32).map(|i| (i % 241) as u8).collect();
    let w = f.svc.write_body(body(&data, 999)).await.unwrap();
    let rec = record(w);
    let ObjectData::Striped { stripes, .. } = &rec.data else {
        panic!("striped expected")
    };
    for st in stripes {
        assert!(
            st.shards.iter().all(|l| l.node != NodeId(3)),
            "shard left on the dead node"
        );
    }
    // All six shards of every stripe exist: reads need no decoding.
    assert_eq!(shard_count(&f), 6 * stripes.len());
    assert_eq!(read_all(&f.svc, &rec, 0..5000).await, data);
    assert_eq!(f.svc.degraded_reads(), 0);
}

#[tokio::test]
async fn multipart_objects_read_across_parts_and_free_every_part() {
    use cairn_metadata::PartData;
    let f = fixture().await;
    let sizes = [2500usize, 50, 1200, 1000];
    let mut all = Vec::new();
    let mut parts = Vec::new();
    for (i, size) in sizes.into_iter().enumerate() {
        let data: Vec<u8> = (0..size).map(|j| ((i * 31 + j * 7) % 251) as u8).collect();
        let w = f.svc.write_body(body(&data, 400)).await.unwrap();
        all.extend_from_slice(&data);
        parts.push(PartData {
            part_number: i as u32 + 1,
            size: w.size,
            etag: w.md5_hex,
            checksum: None,
            data: w.data,
        });
    }
    // 3 + 0 + 2 + 1 stripes.
    assert_eq!(f.store.shards.lock().unwrap().len(), 6);
    let rec = ObjectRecord {
        size: all.len() as u64,
        etag: "x-4".into(),
        last_modified_ms: 0,
        content_type: None,
        headers: Default::default(),
        user_meta: Default::default(),
        checksum: None,
        data: ObjectData::Parts(parts),
        version_id: None,
        tags: Default::default(),
        acl: None,
        upload_id: None,
    };
    let n = all.len() as u64;
    assert_eq!(read_all(&f.svc, &rec, 0..n).await, all);
    for (a, b) in [
        (0, 1),
        (2499, 2501),
        (2490, 2560),
        (2549, 2551),
        (2000, 4000),
        (3749, 3751),
        (4749, 4750),
        (10, n),
    ] {
        assert_eq!(
            read_all(&f.svc, &rec, a..b).await,
            all[a as usize..b as usize],
            "{a}..{b}"
        );
    }
    // A range inside the second stripe of part 3 reads exactly that one shard.
    f.store.gets.lock().unwrap().clear();
    assert_eq!(read_all(&f.svc, &rec, 3600..3700).await, all[3600..3700]);
    let ObjectData::Parts(parts) = &rec.data else {
        unreachable!()
    };
    let ObjectData::Striped { id, .. } = &parts[2].data else {
        panic!("part 3 is striped")
    };
    assert_eq!(*f.store.gets.lock().unwrap(), [ShardId::new(*id, 1, 0)]);
    let key = ObjectKey::new("mp").unwrap();
    f.svc.commit(&f.bucket, &key, rec).await.unwrap();
    assert!(
        f.svc
            .delete(&f.bucket, &key, "m".into(), 0)
            .await
            .unwrap()
            .existed
    );
    assert_eq!(f.svc.gc_worker().run_once().await.unwrap(), 6);
    assert!(f.store.shards.lock().unwrap().is_empty());
}

mod gc_worker;

/// `cairn_shard_bytes_total` splits shard traffic by direction and by whether the datanode
/// was local: writes count every stored shard, reads only the shards fetched.
#[tokio::test]
async fn shard_traffic_is_counted_by_locality() {
    let f = fixture_with(6, EcScheme { data: 4, parity: 2 }).await;
    for st in &f.stores[..3] {
        st.local.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    let data: Vec<u8> = (0..8000).map(|i| (i % 253) as u8).collect();
    let rec = record(f.svc.write_body(body(&data, 700)).await.unwrap());
    let ObjectData::Striped { stripes, .. } = &rec.data else {
        panic!("expected a striped body");
    };
    let is_local = |n: NodeId| n.0 < 3;
    let (mut write_local, mut write_remote, mut read_local, mut read_remote) = (0, 0, 0, 0);
    for st in stripes {
        for (i, sh) in st.shards.iter().enumerate() {
            let (w, r) = if is_local(sh.node) {
                (&mut write_local, &mut read_local)
            } else {
                (&mut write_remote, &mut read_remote)
            };
            *w += sh.len;
            if i < 4 {
                *r += sh.len;
            }
        }
    }
    assert!(
        write_local > 0 && write_remote > 0,
        "placement used both kinds"
    );
    assert_eq!(read_all(&f.svc, &rec, 0..8000).await, data);
    let count = |op: &'static str, path: &'static str| {
        f.svc
            .metrics()
            .shard_bytes
            .get_or_create(&crate::metrics::ShardTraffic { op, path })
            .get()
    };
    assert_eq!(count("write", "local"), write_local);
    assert_eq!(count("write", "remote"), write_remote);
    assert_eq!(count("read", "local"), read_local);
    assert_eq!(count("read", "remote"), read_remote);
    assert_eq!(read_local + read_remote, 8000);
}
