//! Scrub and repair over real segment stores and RocksDB metadata, with damage injected
//! through the store API.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use cairn_datanode::{LocalShardStore, ShardStore, StoreOptions};
use cairn_metadata::{
    BucketRecord, Command, MemoryMetadataStore, MetadataStore, ObjectData, ObjectRecord,
};
use cairn_objects::{ObjectService, ObjectsConfig};
use cairn_types::{BucketName, EcScheme, NodeId, ObjectId, ObjectKey, ShardId};
use futures::{stream, TryStreamExt};

use super::*;

/// A datanode that can be switched off: every call then fails as a dead node's would.
struct Switch {
    inner: Arc<LocalShardStore>,
    down: std::sync::atomic::AtomicBool,
}

impl Switch {
    fn check(&self) -> cairn_datanode::Result<()> {
        if self.down.load(std::sync::atomic::Ordering::Relaxed) {
            Err(cairn_datanode::DatanodeError::Closed)
        } else {
            Ok(())
        }
    }
}

#[async_trait::async_trait]
impl ShardStore for Switch {
    async fn put(
        &self,
        id: ShardId,
        data: Bytes,
    ) -> cairn_datanode::Result<cairn_datanode::ShardInfo> {
        self.check()?;
        self.inner.put(id, data).await
    }
    async fn get(&self, id: ShardId) -> cairn_datanode::Result<Bytes> {
        self.check()?;
        self.inner.get(id).await
    }
    async fn delete(&self, id: ShardId) -> cairn_datanode::Result<()> {
        self.check()?;
        self.inner.delete(id).await
    }
    async fn list(
        &self,
        after: Option<ShardId>,
        limit: usize,
    ) -> cairn_datanode::Result<Vec<cairn_datanode::ShardInfo>> {
        self.check()?;
        self.inner.list(after, limit).await
    }
    async fn stats(&self) -> cairn_datanode::Result<cairn_datanode::StoreStats> {
        self.check()?;
        self.inner.stats().await
    }
    async fn merkle_roots(&self) -> cairn_datanode::Result<Vec<cairn_datanode::merkle::Hash>> {
        self.check()?;
        self.inner.merkle_roots().await
    }
    async fn merkle_node(
        &self,
        partition: u8,
        path: cairn_datanode::merkle::NodePath,
    ) -> cairn_datanode::Result<cairn_datanode::merkle::MerkleNode> {
        self.check()?;
        self.inner.merkle_node(partition, path).await
    }
    async fn deep_scrub(
        &self,
        rate: u64,
    ) -> cairn_datanode::Result<cairn_datanode::DeepScrubReport> {
        self.check()?;
        self.inner.deep_scrub(rate).await
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    svc: ObjectService,
    healer: Healer,
    stores: Vec<Arc<LocalShardStore>>,
    switches: Vec<Arc<Switch>>,
    bucket: BucketName,
    objects: Vec<(ObjectKey, Vec<u8>)>,
}

const STRIPE: usize = 4096;

async fn fixture(nodes: usize, sizes: &[usize]) -> Fixture {
    fixture_with(nodes, sizes, |m| m).await
}

/// [`fixture`] over the metadata `wrap` makes of the in-memory store.
async fn fixture_with(
    nodes: usize,
    sizes: &[usize],
    wrap: impl FnOnce(Arc<dyn MetadataStore>) -> Arc<dyn MetadataStore>,
) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let meta = wrap(Arc::new(MemoryMetadataStore::new()));
    let mut stores = Vec::new();
    let mut switches = Vec::new();
    let mut map: BTreeMap<NodeId, Arc<dyn ShardStore>> = BTreeMap::new();
    for i in 0..nodes {
        let s = Arc::new(
            LocalShardStore::open(&dir.path().join(format!("dn{i}")), StoreOptions::default())
                .unwrap(),
        );
        let sw = Arc::new(Switch {
            inner: s.clone(),
            down: Default::default(),
        });
        map.insert(NodeId(i as u32), sw.clone());
        stores.push(s);
        switches.push(sw);
    }
    let config = ObjectsConfig {
        stripe_size: STRIPE,
        inline_threshold: 100,
        ec: EcScheme { data: 4, parity: 2 },
        ..ObjectsConfig::default()
    };
    let svc = ObjectService::new(meta.clone(), map, config).unwrap();
    let bucket = BucketName::new("heal").unwrap();
    meta.apply(Command::CreateBucket(BucketRecord {
        name: bucket.clone(),
        created_ms: 0,
        owner: "root".into(),
    }))
    .await
    .unwrap();
    let mut objects = Vec::new();
    for (n, &size) in sizes.iter().enumerate() {
        let key = ObjectKey::new(format!("obj-{n}")).unwrap();
        let body: Vec<u8> = (0..size).map(|i| (i * 31 + n * 7) as u8).collect();
        put(&svc, &bucket, &key, &body).await;
        objects.push((key, body));
    }
    let healer = Healer::new(
        svc.clone(),
        HealConfig {
            orphan_grace: Duration::ZERO,
            repair_rate: 0,
            ..HealConfig::default()
        },
    );
    Fixture {
        _dir: dir,
        svc,
        healer,
        stores,
        switches,
        bucket,
        objects,
    }
}

async fn put(svc: &ObjectService, bucket: &BucketName, key: &ObjectKey, body: &[u8]) {
    let chunks: Vec<Result<Bytes, std::io::Error>> = body
        .chunks(1000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let w = svc.write_body(stream::iter(chunks)).await.unwrap();
    svc.commit(bucket, key, record_of(&w)).await.unwrap();
}

/// The object record committing a written body.
fn record_of(w: &cairn_objects::WrittenBody) -> ObjectRecord {
    ObjectRecord {
        size: w.size,
        etag: w.md5_hex.clone(),
        last_modified_ms: 0,
        content_type: None,
        headers: Default::default(),
        user_meta: Default::default(),
        checksum: None,
        data: w.data.clone(),
        version_id: None,
        tags: Default::default(),
        acl: None,
        upload_id: None,
    }
}

impl Fixture {
    async fn record(&self, key: &ObjectKey) -> ObjectRecord {
        self.svc
            .metadata()
            .get_object(&self.bucket, key)
            .await
            .unwrap()
            .unwrap()
    }

    /// Every (node, shard) of an object.
    async fn shards(&self, key: &ObjectKey) -> Vec<(NodeId, ShardId)> {
        self.record(key).await.data.shards()
    }

    async fn read_all_back(&self) {
        for (key, body) in &self.objects {
            let rec = self.record(key).await;
            let got: Vec<Bytes> = self
                .svc
                .read(&rec, 0..rec.size)
                .try_collect()
                .await
                .unwrap();
            assert_eq!(&got.concat(), body, "{key:?} reads back");
        }
    }

    async fn scrub(&self, deep: bool, repair: bool) -> ScrubReport {
        self.healer
            .run_scrub(ScrubOptions {
                deep,
                repair,
                ..ScrubOptions::default()
            })
            .await
            .unwrap()
    }

    fn store(&self, n: NodeId) -> &Arc<LocalShardStore> {
        &self.stores[n.0 as usize]
    }
}

fn counts(missing: u64, corrupt: u64, misplaced: u64, orphaned: u64) -> Counts {
    Counts {
        missing,
        corrupt,
        misplaced,
        orphaned,
    }
}

#[tokio::test]
async fn a_clean_cluster_scrubs_clean_without_reading_payloads() {
    let f = fixture(6, &[0, 50, 5000, 20_000, 40_000]).await;
    let r = f.scrub(false, false).await;
    assert_eq!(r.found, Counts::default());
    assert_eq!(r.damage_remaining(), 0);
    assert_eq!(r.bytes_read, 0, "a light scrub reads no payload");
    // 5000 B → 2 stripes, 20000 → 5, 40000 → 10; six shards each.
    assert_eq!(r.shards_checked, (2 + 5 + 10) * 6);
    assert!(r
        .nodes
        .iter()
        .all(|n| n.reachable && n.partitions_differing == 0));
    // Clean trees compare one root per partition.
    assert!(r
        .nodes
        .iter()
        .all(|n| n.hashes_compared == 256 && n.requests == 1));
}

#[tokio::test]
async fn every_kind_of_damage_is_found_counted_and_repaired() {
    let f = fixture(6, &[5000, 20_000, 40_000, 9000]).await;
    let k1 = f.objects[1].0.clone();
    let k2 = f.objects[2].0.clone();
    let s1 = f.shards(&k1).await;
    let s2 = f.shards(&k2).await;
    // Missing: two shards of object 1 on different stripes.
    for (node, sid) in [s1[0], s1[7]] {
        f.store(node).delete(sid).await.unwrap();
    }
    // Corrupt: a shard replaced by other bytes (the datanode's checksum differs).
    let (node, sid) = s2[3];
    f.store(node)
        .put(sid, Bytes::from_static(b"garbage"))
        .await
        .unwrap();
    // Orphaned: shards nothing references.
    for i in 0..3 {
        let sid = ShardId::new(ObjectId(0xdead_0000 + i), 0, 0);
        f.stores[i as usize]
            .put(sid, Bytes::from_static(b"orphan"))
            .await
            .unwrap();
    }
    // Misplaced: a second copy of a live shard on a node metadata does not name.
    let (node, sid) = s2[10];
    let copy = f.store(node).get(sid).await.unwrap();
    // Any other node will do, even one holding a sibling shard of the stripe.
    let other = NodeId((node.0 + 1) % 6);
    f.store(other).put(sid, copy).await.unwrap();

    let r = f.scrub(false, true).await;
    assert_eq!(r.found, counts(2, 1, 1, 3), "{r:#?}");
    assert_eq!(r.repaired, r.found);
    assert_eq!(r.failed, Counts::default());
    assert_eq!(r.damage_remaining(), 0);
    assert!(r.bytes_written > 0);
    let names: Vec<_> = r.findings.iter().filter_map(|f| f.object.clone()).collect();
    assert!(names.iter().any(|n| n == "heal/obj-1"), "{names:?}");

    let again = f.scrub(false, false).await;
    assert_eq!(again.found, Counts::default(), "{again:#?}");
    f.read_all_back().await;
}

#[tokio::test]
async fn deep_scrub_finds_flipped_payload_bytes_a_light_one_cannot_see() {
    let f = fixture(6, &[20_000]).await;
    let key = f.objects[0].0.clone();
    let (node, sid) = f.shards(&key).await[4];
    let dir = f.store(node).dir().to_path_buf();
    // Flip one byte of the shard's payload in its segment file.
    let data = f.store(node).get(sid).await.unwrap();
    let seg = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "dat"))
        .unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes
        .windows(data.len())
        .position(|w| w == &data[..])
        .unwrap();
    bytes[at + 10] ^= 0x40;
    std::fs::write(&seg, &bytes).unwrap();

    assert_eq!(f.scrub(false, false).await.found, Counts::default());
    let r = f.scrub(true, true).await;
    assert_eq!(r.found, counts(0, 1, 0, 0), "{r:#?}");
    assert_eq!(r.repaired.corrupt, 1);
    assert!(r.bytes_read > 0);
    assert_eq!(f.scrub(true, false).await.found, Counts::default());
    f.read_all_back().await;
}

#[tokio::test]
async fn two_losses_per_stripe_are_repaired_and_a_third_is_reported_unrecoverable() {
    let f = fixture(6, &[8000, 8000]).await;
    let (k0, k1) = (f.objects[0].0.clone(), f.objects[1].0.clone());
    // Object 0: stripe 0 loses two shards (the parity limit).
    let s0 = f.shards(&k0).await;
    for (node, sid) in &s0[0..2] {
        f.store(*node).delete(*sid).await.unwrap();
    }
    // Object 1: stripe 0 loses three.
    let s1 = f.shards(&k1).await;
    for (node, sid) in &s1[0..3] {
        f.store(*node).delete(*sid).await.unwrap();
    }
    let r = f.scrub(false, true).await;
    assert_eq!(r.found.missing, 5);
    assert_eq!(r.repaired.missing, 2);
    assert_eq!(r.failed.missing, 3);
    assert_eq!(r.unrecoverable.len(), 1, "{r:#?}");
    assert_eq!(r.unrecoverable[0].objects, vec!["heal/obj-1".to_string()]);
    assert_eq!(r.unrecoverable[0].available, 3);
    assert!(r.damage_remaining() > 0);
    let rec = f.record(&k0).await;
    let got: Vec<Bytes> = f.svc.read(&rec, 0..rec.size).try_collect().await.unwrap();
    assert_eq!(got.concat(), f.objects[0].1);
}

#[tokio::test]
async fn a_stopped_datanode_is_reported_and_its_shards_are_not_called_missing() {
    let f = fixture(6, &[20_000]).await;
    f.switches[2]
        .down
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let r = f.scrub(false, true).await;
    let n2 = r.nodes.iter().find(|n| n.node == 2).unwrap();
    assert!(!n2.reachable);
    assert!(n2.error.is_some());
    assert_eq!(r.found.missing, 0);
    assert!(
        r.damage_remaining() > 0,
        "an unreachable datanode is unverified"
    );
    assert_eq!(r.failed, Counts::default());
    // Reads still work from the other five.
    f.read_all_back().await;
}

#[tokio::test]
async fn draining_a_datanode_moves_its_shards_off_and_nothing_else() {
    let f = fixture(7, &[20_000, 40_000, 9000]).await;
    let before: Vec<u64> = futures::future::join_all(f.stores.iter().map(|s| s.stats()))
        .await
        .into_iter()
        .map(|s| s.unwrap().shards)
        .collect();
    assert!(before[3] > 0);
    f.svc
        .membership()
        .set_drained([NodeId(3)].into_iter().collect())
        .unwrap();
    let r = f.scrub(false, true).await;
    assert_eq!(r.found, counts(0, 0, before[3], 0), "{r:#?}");
    assert_eq!(r.repaired, r.found);
    let after: Vec<u64> = futures::future::join_all(f.stores.iter().map(|s| s.stats()))
        .await
        .into_iter()
        .map(|s| s.unwrap().shards)
        .collect();
    assert_eq!(after[3], 0, "the drained node is empty");
    assert_eq!(after.iter().sum::<u64>(), before.iter().sum::<u64>());
    assert_eq!(f.scrub(false, false).await.found, Counts::default());
    f.read_all_back().await;
    // Six left for 4+2: draining one more is refused.
    assert!(f
        .svc
        .membership()
        .set_drained([NodeId(3), NodeId(4)].into_iter().collect())
        .is_err());
}

#[tokio::test]
async fn in_flight_bodies_are_never_taken_for_orphans() {
    let f = fixture(6, &[]).await;
    // A body written but not committed yet.
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![Ok(Bytes::from(vec![7u8; 9000]))];
    let w = f.svc.write_body(stream::iter(chunks)).await.unwrap();
    let r = f.scrub(false, true).await;
    assert_eq!(r.found.orphaned, 18);
    assert_eq!(r.deferred_orphans, 18);
    assert_eq!(r.repaired.orphaned, 0);
    // Committed now: referenced, nothing to find.
    let ObjectData::Striped { .. } = &w.data else {
        panic!("striped")
    };
    let key = ObjectKey::new("late").unwrap();
    f.svc.commit(&f.bucket, &key, record_of(&w)).await.unwrap();
    drop(w);
    assert_eq!(f.scrub(false, true).await.found, Counts::default());
}

/// The cluster's other gateways as the orphan cleaner asks them: one more service over the
/// same metadata and datanodes, which can stop answering.
struct OtherGateway {
    svc: ObjectService,
    reachable: std::sync::atomic::AtomicBool,
}

impl PeerInFlight for OtherGateway {
    fn in_flight(&self) -> BoxFuture<'_, Result<HashSet<ObjectId>, String>> {
        Box::pin(async move {
            if !self.reachable.load(std::sync::atomic::Ordering::SeqCst) {
                return Err("node 2 unreachable".into());
            }
            Ok(self.svc.in_flight_ids().into_iter().collect())
        })
    }
}

#[tokio::test]
async fn bodies_in_flight_on_other_gateways_are_never_taken_for_orphans() {
    let f = fixture(6, &[]).await;
    let other = Arc::new(OtherGateway {
        svc: ObjectService::new(
            f.svc.metadata().clone(),
            f.svc.membership().view().nodes().clone(),
            ObjectsConfig {
                stripe_size: STRIPE,
                inline_threshold: 100,
                ec: EcScheme { data: 4, parity: 2 },
                ..ObjectsConfig::default()
            },
        )
        .unwrap(),
        reachable: true.into(),
    });
    f.healer.set_peer_in_flight(other.clone());
    // A real orphan, and a body the other gateway is writing (not committed yet).
    let stray = ShardId::new(ObjectId(42), 0, 0);
    f.store(NodeId(0))
        .put(stray, Bytes::from_static(b"left behind"))
        .await
        .unwrap();
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![Ok(Bytes::from(vec![7u8; 9000]))];
    let w = other.svc.write_body(stream::iter(chunks)).await.unwrap();
    let ObjectData::Striped { id, .. } = &w.data else {
        panic!("striped")
    };
    assert!(!f.svc.is_in_flight(*id));

    // The other gateway does not answer: no orphan at all is deleted.
    other
        .reachable
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let r = f.scrub(false, true).await;
    assert_eq!(r.found.orphaned, 19);
    assert_eq!(r.repaired.orphaned, 0);
    assert_eq!(r.deferred_orphans, 19);
    let why = r.orphans_skipped.expect("skipped");
    assert!(why.contains("node 2 unreachable"), "{why}");
    assert!(f.store(NodeId(0)).get(stray).await.is_ok());

    // It answers: the real orphan goes, the body in flight there stays.
    other
        .reachable
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let r = f.scrub(false, true).await;
    assert_eq!(r.found.orphaned, 19);
    assert_eq!(r.repaired.orphaned, 1);
    assert_eq!(r.deferred_orphans, 18);
    assert_eq!(r.orphans_skipped, None);
    assert!(f.store(NodeId(0)).get(stray).await.is_err());

    // Committed through the other gateway: whole, and nothing left to find.
    let key = ObjectKey::new("slow").unwrap();
    other
        .svc
        .commit(&f.bucket, &key, record_of(&w))
        .await
        .unwrap();
    drop(w);
    assert_eq!(f.scrub(false, true).await.found, Counts::default());
    let rec = f.record(&key).await;
    let got: Vec<Bytes> = f.svc.read(&rec, 0..rec.size).try_collect().await.unwrap();
    assert_eq!(got.concat(), vec![7u8; 9000]);
}

#[tokio::test]
async fn degraded_reads_queue_their_stripe_for_repair() {
    let f = fixture(6, &[20_000]).await;
    let key = f.objects[0].0.clone();
    let (node, sid) = f.shards(&key).await[0];
    f.store(node).delete(sid).await.unwrap();
    f.read_all_back().await;
    assert_eq!(f.svc.repair_hints().len(), 1);
    assert_eq!(f.healer.drain_hints().await, 1);
    assert!(f.store(node).get(sid).await.is_ok());
    assert_eq!(f.scrub(false, false).await.found, Counts::default());
}

#[tokio::test]
async fn a_hint_from_before_a_drain_never_refills_the_drained_node() {
    // The drain race: a degraded read queued its stripe with the record it read, which names
    // a node that is drained (and emptied by a scrub) before the hint runs.
    let f = fixture(7, &[20_000]).await;
    let key = f.objects[0].0.clone();
    let (node, sid) = f.shards(&key).await[0];
    f.store(node).delete(sid).await.unwrap();
    f.read_all_back().await;
    assert_eq!(f.svc.repair_hints().len(), 1);
    f.svc
        .membership()
        .set_drained([node].into_iter().collect())
        .unwrap();
    let r = f.scrub(false, true).await;
    assert_eq!(r.damage_remaining(), 0, "{r:#?}");
    assert_eq!(f.healer.drain_hints().await, 0);
    assert_eq!(
        f.store(node).stats().await.unwrap().shards,
        0,
        "the drained node stays empty"
    );
    f.read_all_back().await;
}

/// Metadata whose answers to relocations are lost while armed: the relocation is applied
/// (`commit`) or not, and either way the caller hears that the outcome is unknown.
struct LostRelocations {
    inner: Arc<dyn MetadataStore>,
    commit: bool,
    armed: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl MetadataStore for LostRelocations {
    async fn apply(&self, cmd: Command) -> cairn_metadata::Result<cairn_metadata::CommandOutput> {
        let lost = matches!(cmd, Command::RelocateShards { .. })
            && self.armed.load(std::sync::atomic::Ordering::SeqCst);
        if !lost {
            return self.inner.apply(cmd).await;
        }
        if self.commit {
            self.inner.apply(cmd).await?;
        }
        Err(cairn_metadata::MetadataError::Indeterminate(
            "the answer was lost".into(),
        ))
    }
    async fn get_bucket(&self, name: &BucketName) -> cairn_metadata::Result<Option<BucketRecord>> {
        self.inner.get_bucket(name).await
    }
    async fn list_buckets(&self) -> cairn_metadata::Result<Vec<BucketRecord>> {
        self.inner.list_buckets().await
    }
    async fn get_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
    ) -> cairn_metadata::Result<Option<ObjectRecord>> {
        self.inner.get_object(bucket, key).await
    }
    async fn list_objects(
        &self,
        bucket: &BucketName,
        query: &cairn_metadata::ListQuery,
    ) -> cairn_metadata::Result<cairn_metadata::ListPage<ObjectRecord>> {
        self.inner.list_objects(bucket, query).await
    }
    async fn get_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        sel: &cairn_metadata::VersionSel,
    ) -> cairn_metadata::Result<Option<cairn_metadata::VersionRecord>> {
        self.inner.get_version(bucket, key, sel).await
    }
    async fn list_versions(
        &self,
        bucket: &BucketName,
        query: &cairn_metadata::VersionQuery,
    ) -> cairn_metadata::Result<cairn_metadata::VersionPage> {
        self.inner.list_versions(bucket, query).await
    }
    async fn get_access_key(
        &self,
        access_key: &str,
    ) -> cairn_metadata::Result<Option<cairn_metadata::AccessKeyRecord>> {
        self.inner.get_access_key(access_key).await
    }
    async fn get_bucket_config(
        &self,
        bucket: &BucketName,
        kind: cairn_metadata::BucketConfigKind,
    ) -> cairn_metadata::Result<Option<Vec<u8>>> {
        self.inner.get_bucket_config(bucket, kind).await
    }
    async fn get_bucket_configs(
        &self,
        bucket: &BucketName,
    ) -> cairn_metadata::Result<Vec<(cairn_metadata::BucketConfigKind, Vec<u8>)>> {
        self.inner.get_bucket_configs(bucket).await
    }
    async fn list_access_keys(
        &self,
    ) -> cairn_metadata::Result<Vec<cairn_metadata::AccessKeyRecord>> {
        self.inner.list_access_keys().await
    }
    async fn gc_pending(
        &self,
        limit: usize,
    ) -> cairn_metadata::Result<Vec<(u64, cairn_metadata::GcEntry)>> {
        self.inner.gc_pending(limit).await
    }
    async fn get_sys(&self, key: &str) -> cairn_metadata::Result<Option<Vec<u8>>> {
        self.inner.get_sys(key).await
    }
    async fn scan_sys(&self, prefix: &str) -> cairn_metadata::Result<Vec<(String, Vec<u8>)>> {
        self.inner.scan_sys(prefix).await
    }
    async fn get_upload(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
    ) -> cairn_metadata::Result<Option<cairn_metadata::UploadRecord>> {
        self.inner.get_upload(bucket, key, upload_id).await
    }
    async fn list_parts(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &str,
        after: u32,
        max: usize,
    ) -> cairn_metadata::Result<(Vec<cairn_metadata::PartRecord>, bool)> {
        self.inner
            .list_parts(bucket, key, upload_id, after, max)
            .await
    }
    async fn list_uploads(
        &self,
        bucket: &BucketName,
        query: &cairn_metadata::UploadQuery,
    ) -> cairn_metadata::Result<cairn_metadata::UploadPage> {
        self.inner.list_uploads(bucket, query).await
    }
    async fn scan_data(
        &self,
        after: Option<cairn_metadata::DataAddress>,
        limit: usize,
    ) -> cairn_metadata::Result<cairn_metadata::DataPage> {
        self.inner.scan_data(after, limit).await
    }
}

async fn shard_counts(f: &Fixture) -> Vec<u64> {
    futures::future::join_all(f.stores.iter().map(|s| s.stats()))
        .await
        .into_iter()
        .map(|s| s.unwrap().shards)
        .collect()
}

/// Draining moves shards with `RelocateShards`; when its answer is lost the move may or may
/// not be recorded, so neither copy may go. Whichever it was, every shard metadata names is
/// still there, reads work, and once relocations answer again scrubs settle the rest.
#[tokio::test]
async fn a_relocation_whose_outcome_is_unknown_deletes_neither_copy() {
    for commit in [true, false] {
        let lost = Arc::new(std::sync::OnceLock::<Arc<LostRelocations>>::new());
        let slot = lost.clone();
        let f = fixture_with(7, &[20_000, 40_000, 9000], move |inner| {
            let m = Arc::new(LostRelocations {
                inner,
                commit,
                armed: true.into(),
            });
            let _ = slot.set(m.clone());
            m
        })
        .await;
        let before = shard_counts(&f).await;
        let moving = before[3];
        assert!(moving > 0);
        f.svc
            .membership()
            .set_drained([NodeId(3)].into_iter().collect())
            .unwrap();
        let r = f.scrub(false, true).await;
        assert_eq!(r.found, counts(0, 0, moving, 0), "commit {commit}: {r:#?}");
        assert_eq!(r.failed.misplaced, moving, "commit {commit}: {r:#?}");
        let after = shard_counts(&f).await;
        assert_eq!(after[3], moving, "commit {commit}: the old copies stay");
        assert_eq!(
            after.iter().sum::<u64>(),
            before.iter().sum::<u64>() + moving,
            "commit {commit}: the new copies stay"
        );
        let r = f.scrub(false, false).await;
        assert_eq!(r.found.missing, 0, "commit {commit}: {r:#?}");
        f.read_all_back().await;

        // Answers come back: the drain completes and nothing is lost on the way.
        lost.get()
            .unwrap()
            .armed
            .store(false, std::sync::atomic::Ordering::SeqCst);
        for _ in 0..3 {
            let r = f.scrub(false, true).await;
            assert_eq!(r.found.missing, 0, "commit {commit}: {r:#?}");
            assert_eq!(r.failed, Counts::default(), "commit {commit}: {r:#?}");
            if r.found == Counts::default() {
                break;
            }
        }
        assert_eq!(f.scrub(false, false).await.found, Counts::default());
        let after = shard_counts(&f).await;
        assert_eq!(after[3], 0, "commit {commit}: the drained node is empty");
        assert_eq!(after.iter().sum::<u64>(), before.iter().sum::<u64>());
        f.read_all_back().await;
    }
}

mod background;
