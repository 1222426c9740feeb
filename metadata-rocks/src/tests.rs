//! Tests of the RocksDB store: the conformance suite, and what is the engine's own —
//! group commit, reopening, RocksDB iterators under listings.
use std::collections::BTreeMap;

use cairn_metadata::records::{ObjectData, ShardLoc, StripeLoc};
use cairn_metadata::{ListEntry, WriteCondition};
use cairn_types::{EcScheme, NodeId, ObjectId};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_conformance_suite() {
    let mut dirs = Vec::new();
    let cases = cairn_metadata::testing::run_conformance(move || {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksMetadataStore::open(dir.path()).unwrap();
        // Earlier stores are dropped by the suite; their directories go with the factory.
        dirs.push(dir);
        async move { Arc::new(store) as Arc<dyn MetadataStore> }
    })
    .await;
    assert!(cases >= 50, "{cases} cases");
}

fn bucket(name: &str) -> BucketName {
    BucketName::new(name).unwrap()
}

fn obj(size: u64, striped: bool) -> ObjectRecord {
    ObjectRecord {
        size,
        etag: "e".into(),
        last_modified_ms: 1,
        content_type: None,
        headers: BTreeMap::new(),
        user_meta: BTreeMap::new(),
        checksum: None,
        version_id: None,
        tags: Default::default(),
        acl: None,
        upload_id: None,
        data: if striped {
            ObjectData::Striped {
                id: ObjectId::random(),
                ec: EcScheme::SINGLE,
                stripe_size: 4,
                stripes: vec![StripeLoc {
                    len: size,
                    shards: vec![ShardLoc {
                        node: NodeId(0),
                        len: size,
                        crc32c: 7,
                    }],
                }],
            }
        } else {
            ObjectData::Inline(vec![1, 2, 3])
        },
    }
}

#[tokio::test]
async fn access_keys_are_listed_in_order_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let key = |ak: &str| AccessKeyRecord {
        access_key: ak.into(),
        secret_key: format!("secret-of-{ak}"),
        name: ak.to_lowercase(),
        created_ms: 1,
    };
    {
        let s = RocksMetadataStore::open(dir.path()).unwrap();
        assert!(s.list_access_keys().await.unwrap().is_empty());
        for ak in ["BBB", "AAA", "CCC"] {
            s.apply(Command::PutAccessKey(key(ak))).await.unwrap();
        }
    }
    let s = RocksMetadataStore::open(dir.path()).unwrap();
    let got: Vec<String> = s
        .list_access_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.access_key)
        .collect();
    assert_eq!(got, ["AAA", "BBB", "CCC"]);
    assert_eq!(s.get_access_key("BBB").await.unwrap(), Some(key("BBB")));
}

#[tokio::test]
async fn bucket_config_is_set_cleared_and_dies_with_its_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let s = RocksMetadataStore::open(dir.path()).unwrap();
    let b = bucket("conf");
    let set = |kind, value: Option<&[u8]>| Command::SetBucketConfig {
        bucket: b.clone(),
        kind,
        value: value.map(<[u8]>::to_vec),
    };
    assert!(matches!(
        s.apply(set(BucketConfigKind::Cors, Some(b"x"))).await,
        Err(MetadataError::NoSuchBucket)
    ));
    let rec = BucketRecord {
        name: b.clone(),
        created_ms: 1,
        owner: "AK".into(),
    };
    s.apply(Command::CreateBucket(rec.clone())).await.unwrap();
    s.apply(set(BucketConfigKind::Cors, Some(b"<CORS/>")))
        .await
        .unwrap();
    s.apply(set(BucketConfigKind::Versioning, Some(b"Enabled")))
        .await
        .unwrap();
    let get = |kind| s.get_bucket_config(&b, kind);
    assert_eq!(
        get(BucketConfigKind::Cors).await.unwrap().as_deref(),
        Some(&b"<CORS/>"[..])
    );
    assert_eq!(get(BucketConfigKind::Tagging).await.unwrap(), None);
    s.apply(set(BucketConfigKind::Cors, None)).await.unwrap();
    assert_eq!(get(BucketConfigKind::Cors).await.unwrap(), None);
    // A bucket created again under the same name starts with no configuration.
    s.apply(Command::DeleteBucket { name: b.clone() })
        .await
        .unwrap();
    s.apply(Command::CreateBucket(rec)).await.unwrap();
    assert_eq!(get(BucketConfigKind::Versioning).await.unwrap(), None);
}

#[tokio::test]
async fn buckets_objects_gc_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let b = bucket("photos");
    {
        let s = RocksMetadataStore::open(dir.path()).unwrap();
        let rec = BucketRecord {
            name: b.clone(),
            created_ms: 5,
            owner: "AK".into(),
        };
        s.apply(Command::CreateBucket(rec.clone())).await.unwrap();
        assert!(matches!(
            s.apply(Command::CreateBucket(rec)).await,
            Err(MetadataError::BucketExists { .. })
        ));
        let k = ObjectKey::new("a/b").unwrap();
        let put = |r| Command::PutObject {
            bucket: b.clone(),
            key: k.clone(),
            record: r,
            condition: WriteCondition::Always,
        };
        assert!(matches!(
            s.apply(put(obj(3, true))).await.unwrap(),
            CommandOutput::Stored(r) if r.size == 3 && r.version_id.is_none()
        ));
        // Overwrite queues the first version's shard for GC.
        s.apply(put(obj(4, false))).await.unwrap();
        let gc = s.gc_pending(10).await.unwrap();
        assert_eq!(gc.len(), 1);
        assert_eq!(gc[0].1.shards.len(), 1);
        assert!(matches!(
            s.apply(Command::DeleteBucket { name: b.clone() }).await,
            Err(MetadataError::BucketNotEmpty)
        ));
        s.apply(Command::GcDone {
            seqs: vec![gc[0].0],
        })
        .await
        .unwrap();
        assert!(s.gc_pending(10).await.unwrap().is_empty());
    }
    let s = RocksMetadataStore::open(dir.path()).unwrap();
    let got = s
        .get_object(&b, &ObjectKey::new("a/b").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.size, 4);
    let page = s
        .list_objects(
            &b,
            &ListQuery {
                delimiter: Some("/".into()),
                max_keys: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.entries, vec![ListEntry::Prefix("a/".into())]);
    s.apply(Command::DeleteObject {
        bucket: b.clone(),
        key: ObjectKey::new("a/b").unwrap(),
        marker_version_id: "m".into(),
        marker_ms: 1,
    })
    .await
    .unwrap();
    s.apply(Command::DeleteBucket { name: b.clone() })
        .await
        .unwrap();
    assert!(s.get_bucket(&b).await.unwrap().is_none());
    assert!(matches!(
        s.apply(Command::DeleteObject {
            bucket: b,
            key: ObjectKey::new("x").unwrap(),
            marker_version_id: "m".into(),
            marker_ms: 1,
        })
        .await,
        Err(MetadataError::NoSuchBucket)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commands_share_commits_and_each_sees_the_ones_before() {
    let dir = tempfile::tempdir().unwrap();
    let s = RocksMetadataStore::open(dir.path()).unwrap();
    let b = bucket("group");
    s.apply(Command::CreateBucket(BucketRecord {
        name: b.clone(),
        created_ms: 0,
        owner: "o".into(),
    }))
    .await
    .unwrap();
    let before = s.commit_count();
    // 64 writers; half of them race for the same key with If-None-Match: *, so exactly
    // one of those may win even when they land in one batch.
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let s = s.clone();
            let b = b.clone();
            tokio::spawn(async move {
                let (key, condition) = if i % 2 == 0 {
                    (format!("k{i}"), WriteCondition::Always)
                } else {
                    ("contended".to_string(), WriteCondition::IfAbsent)
                };
                s.apply(Command::PutObject {
                    bucket: b,
                    key: ObjectKey::new(key).unwrap(),
                    record: obj(1, false),
                    condition,
                })
                .await
            })
        })
        .collect();
    let mut won = 0;
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            Ok(_) if i % 2 == 1 => won += 1,
            Ok(_) => {}
            Err(MetadataError::PreconditionFailed(_)) if i % 2 == 1 => {}
            Err(e) => panic!("writer {i}: {e}"),
        }
    }
    assert_eq!(won, 1, "one conditional writer wins");
    let commits = s.commit_count() - before;
    assert!(commits < 64, "{commits} commits for 64 commands");
    let page = s
        .list_objects(
            &b,
            &ListQuery {
                max_keys: 1000,
                ..ListQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.entries.len(), 33);
    eprintln!("64 concurrent commands: {commits} synced batches");
}

#[tokio::test]
async fn data_scans_page_through_objects_versions_and_parts_and_relocations_apply() {
    let dir = tempfile::tempdir().unwrap();
    let s = RocksMetadataStore::open(dir.path()).unwrap();
    let b = bucket("scan");
    s.apply(Command::CreateBucket(BucketRecord {
        name: b.clone(),
        created_ms: 0,
        owner: "o".into(),
    }))
    .await
    .unwrap();
    let put = |key: &str, rec: ObjectRecord| Command::PutObject {
        bucket: b.clone(),
        key: ObjectKey::new(key).unwrap(),
        record: rec,
        condition: WriteCondition::Always,
    };
    for i in 0..5 {
        s.apply(put(&format!("k{i}"), obj(10, true))).await.unwrap();
    }
    s.apply(put("inline", obj(3, false))).await.unwrap();
    // Versioning: the next write lives in `versions` too.
    s.apply(Command::SetBucketConfig {
        bucket: b.clone(),
        kind: BucketConfigKind::Versioning,
        value: Some(b"Enabled".to_vec()),
    })
    .await
    .unwrap();
    let mut v = obj(10, true);
    v.version_id = Some("v1".into());
    s.apply(put("versioned", v)).await.unwrap();

    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = s.scan_data(after.take(), 2).await.unwrap();
        assert!(page.entries.len() <= 2);
        all.extend(page.entries);
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let names: Vec<&str> = all.iter().map(|e| e.name.as_str()).collect();
    // The five objects and the versioned one as current objects, then the versions (the
    // five became null versions when versioning was enabled) — inline bodies skipped.
    assert_eq!(all.len(), 6 + 6, "{names:?}");
    assert!(names.contains(&"scan/versioned (version v1)"), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("inline")));

    // Relocate the versioned object's shard at both of its addresses.
    let ObjectData::Striped { id, .. } = all
        .iter()
        .find(|e| e.name == "scan/versioned")
        .unwrap()
        .data
        .clone()
    else {
        panic!("striped")
    };
    let at: Vec<DataAddress> = all
        .iter()
        .filter(|e| e.name.starts_with("scan/versioned"))
        .map(|e| e.address.clone())
        .collect();
    assert_eq!(at.len(), 2);
    let mv = |from, to| cairn_metadata::ShardMove {
        stripe: 0,
        shard: 0,
        from: NodeId(from),
        to: NodeId(to),
    };
    let out = s
        .apply(Command::RelocateShards {
            at: at.clone(),
            object: id,
            moves: vec![mv(0, 4)],
        })
        .await
        .unwrap();
    assert_eq!(out, CommandOutput::Relocated(2));
    let rec = s
        .get_object(&b, &ObjectKey::new("versioned").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.data.shards()[0].0, NodeId(4));
    // A stale move (the shard is no longer on node 0) changes nothing.
    let out = s
        .apply(Command::RelocateShards {
            at,
            object: id,
            moves: vec![mv(0, 5)],
        })
        .await
        .unwrap();
    assert_eq!(out, CommandOutput::Relocated(0));
}

#[tokio::test]
async fn listing_does_not_leak_across_buckets() {
    let dir = tempfile::tempdir().unwrap();
    let s = RocksMetadataStore::open(dir.path()).unwrap();
    for name in ["aaa", "aaa-b", "aab"] {
        let b = bucket(name);
        s.apply(Command::CreateBucket(BucketRecord {
            name: b.clone(),
            created_ms: 0,
            owner: "o".into(),
        }))
        .await
        .unwrap();
        s.apply(Command::PutObject {
            bucket: b,
            key: ObjectKey::new(format!("k-{name}")).unwrap(),
            record: obj(1, false),
            condition: WriteCondition::Always,
        })
        .await
        .unwrap();
    }
    let page = s
        .list_objects(
            &bucket("aaa"),
            &ListQuery {
                max_keys: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let names: Vec<_> = page.entries.iter().map(|e| e.name().to_string()).collect();
    assert_eq!(names, ["k-aaa"]);
    assert_eq!(s.list_buckets().await.unwrap().len(), 3);
}
