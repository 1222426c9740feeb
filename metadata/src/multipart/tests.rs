use std::collections::BTreeMap;

use cairn_types::{EcScheme, ObjectId};

use super::*;
use crate::command::Command;
use crate::list::RawEntry;
use crate::records::{BucketRecord, ShardLoc, StripeLoc};
use crate::{CommandOutput, MemoryMetadataStore, MetadataStore};

fn bucket() -> BucketName {
    BucketName::new("uploads").unwrap()
}

fn key(k: &str) -> ObjectKey {
    ObjectKey::new(k).unwrap()
}

fn upload(id: &str) -> UploadRecord {
    UploadRecord {
        upload_id: id.into(),
        initiated_ms: 7,
        owner: "AK".into(),
        content_type: Some("text/plain".into()),
        headers: BTreeMap::new(),
        user_meta: BTreeMap::from([("color".to_string(), "blue".to_string())]),
        checksum_algorithm: None,
        checksum_type: None,
        tags: BTreeMap::new(),
        acl: None,
    }
}

/// A striped part of `size` bytes in one stripe of two shards.
fn part(n: u32, size: u64, md5: u8) -> PartRecord {
    PartRecord {
        part_number: n,
        size,
        etag: hex::encode([md5; 16]),
        last_modified_ms: 9,
        checksum: None,
        data: ObjectData::Striped {
            id: ObjectId::random(),
            ec: EcScheme { data: 1, parity: 1 },
            stripe_size: size,
            stripes: vec![StripeLoc {
                len: size,
                shards: vec![
                    ShardLoc {
                        node: NodeId(0),
                        len: size,
                        crc32c: 1,
                    },
                    ShardLoc {
                        node: NodeId(1),
                        len: size,
                        crc32c: 1,
                    },
                ],
            }],
        },
    }
}

async fn store() -> MemoryMetadataStore {
    let s = MemoryMetadataStore::new();
    s.apply(Command::CreateBucket(BucketRecord {
        name: bucket(),
        created_ms: 1,
        owner: "AK".into(),
    }))
    .await
    .unwrap();
    s
}

async fn create(s: &MemoryMetadataStore, k: &str, id: &str) {
    s.apply(Command::CreateUpload {
        bucket: bucket(),
        key: key(k),
        upload: upload(id),
    })
    .await
    .unwrap();
}

async fn put_part(s: &MemoryMetadataStore, k: &str, id: &str, p: PartRecord) -> crate::Result<()> {
    s.apply(Command::PutPart {
        bucket: bucket(),
        key: key(k),
        upload_id: id.into(),
        part: p,
    })
    .await
    .map(|_| ())
}

fn complete_cmd(k: &str, id: &str, parts: &[(u32, &PartRecord)]) -> Command {
    Command::CompleteUpload {
        bucket: bucket(),
        key: key(k),
        upload_id: id.into(),
        parts: parts
            .iter()
            .map(|(n, p)| CompletePart {
                part_number: *n,
                etag: p.etag.clone(),
                checksum: None,
            })
            .collect(),
        last_modified_ms: 42,
        version_id: "v1".into(),
        checksum: None,
        condition: Default::default(),
    }
}

/// Every shard id queued for GC.
async fn gc_shards(s: &MemoryMetadataStore) -> Vec<ShardId> {
    let mut out: Vec<ShardId> = s
        .gc_pending(1000)
        .await
        .unwrap()
        .into_iter()
        .flat_map(|(_, e)| e.shards.into_iter().map(|(_, id)| id))
        .collect();
    out.sort();
    out
}

fn shard_ids(p: &PartRecord) -> Vec<ShardId> {
    p.data.shards().into_iter().map(|(_, id)| id).collect()
}

#[tokio::test]
async fn complete_builds_the_object_and_collects_unlisted_parts() {
    let s = store().await;
    create(&s, "big", "u1").await;
    let p1 = part(1, MIN_PART_SIZE, 1);
    let p2 = part(2, MIN_PART_SIZE + 1, 2);
    let p3 = part(3, 10, 3);
    let stray = part(4, 10, 4);
    for p in [&p1, &p2, &p3, &stray] {
        put_part(&s, "big", "u1", p.clone()).await.unwrap();
    }
    // Re-uploading part 2 replaces it and queues the old part's shards.
    let p2b = part(2, MIN_PART_SIZE, 5);
    put_part(&s, "big", "u1", p2b.clone()).await.unwrap();
    assert_eq!(gc_shards(&s).await, shard_ids(&p2));
    let (listed, more) = s
        .list_parts(&bucket(), &key("big"), "u1", 0, 100)
        .await
        .unwrap();
    assert!(!more);
    assert_eq!(
        listed.iter().map(|p| p.etag.clone()).collect::<Vec<_>>(),
        [&p1, &p2b, &p3, &stray].map(|p| p.etag.clone())
    );

    let out = s
        .apply(complete_cmd("big", "u1", &[(1, &p1), (2, &p2b), (3, &p3)]))
        .await
        .unwrap();
    let CommandOutput::Completed(rec) = out else {
        panic!("expected Completed, got {out:?}");
    };
    let mut md5 = Md5::new();
    for b in [1u8, 5, 3] {
        md5.update([b; 16]);
    }
    assert_eq!(rec.etag, format!("{}-3", hex::encode(md5.finalize())));
    assert_eq!(rec.size, 2 * MIN_PART_SIZE + 10);
    assert_eq!(rec.user_meta["color"], "blue");
    assert_eq!(rec.last_modified_ms, 42);
    let ObjectData::Parts(parts) = &rec.data else {
        panic!("not a parts object");
    };
    assert_eq!(
        parts.iter().map(|p| p.part_number).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    let stored = s.get_object(&bucket(), &key("big")).await.unwrap().unwrap();
    assert_eq!(&stored, rec.as_ref());

    // The unlisted part went to GC with the replaced one; the upload and its parts are gone.
    let mut want: Vec<ShardId> = [shard_ids(&p2), shard_ids(&stray)].concat();
    want.sort();
    assert_eq!(gc_shards(&s).await, want);
    assert!(s
        .get_upload(&bucket(), &key("big"), "u1")
        .await
        .unwrap()
        .is_none());
    let (left, _) = s
        .list_parts(&bucket(), &key("big"), "u1", 0, 100)
        .await
        .unwrap();
    assert!(left.is_empty());
    // Completing again with the same parts answers with the object made, writing nothing;
    // with other parts (or another upload id) the upload is gone.
    let gc_before = gc_shards(&s).await;
    let again = s
        .apply(complete_cmd("big", "u1", &[(1, &p1), (2, &p2b), (3, &p3)]))
        .await
        .unwrap();
    assert_eq!(again, CommandOutput::Completed(rec.clone()));
    assert_eq!(rec.upload_id.as_deref(), Some("u1"));
    assert_eq!(gc_shards(&s).await, gc_before);
    assert!(matches!(
        s.apply(complete_cmd("big", "u1", &[(1, &p1)])).await,
        Err(MetadataError::NoSuchUpload)
    ));
    assert!(matches!(
        s.apply(complete_cmd("big", "u2", &[(1, &p1), (2, &p2b), (3, &p3)]))
            .await,
        Err(MetadataError::NoSuchUpload)
    ));
    assert!(matches!(
        put_part(&s, "big", "u1", part(1, 1, 1)).await,
        Err(MetadataError::NoSuchUpload)
    ));

    // Deleting the multipart object queues every part's shards.
    s.apply(Command::DeleteObject {
        bucket: bucket(),
        key: key("big"),
        marker_version_id: "m1".into(),
        marker_ms: 50,
    })
    .await
    .unwrap();
    let mut want: Vec<ShardId> = [&p1, &p2, &p2b, &p3, &stray]
        .iter()
        .flat_map(|p| shard_ids(p))
        .collect();
    want.sort();
    assert_eq!(gc_shards(&s).await, want);
}

#[tokio::test]
async fn completion_errors_leave_the_upload_untouched() {
    let s = store().await;
    create(&s, "k", "u").await;
    let small = part(1, MIN_PART_SIZE - 1, 1);
    let p2 = part(2, MIN_PART_SIZE, 2);
    let p3 = part(3, 1, 3);
    for p in [&small, &p2, &p3] {
        put_part(&s, "k", "u", p.clone()).await.unwrap();
    }
    let err = |r: crate::Result<CommandOutput>| r.unwrap_err();
    assert!(matches!(
        err(s.apply(complete_cmd("k", "u", &[(3, &p3), (2, &p2)])).await),
        MetadataError::InvalidPartOrder
    ));
    assert!(matches!(
        err(s.apply(complete_cmd("k", "u", &[(2, &p2), (2, &p2)])).await),
        MetadataError::InvalidPartOrder
    ));
    assert!(matches!(
        err(s.apply(complete_cmd("k", "u", &[(2, &p2), (4, &p3)])).await),
        MetadataError::InvalidPart(_)
    ));
    // Right number, wrong ETag.
    assert!(matches!(
        err(s.apply(complete_cmd("k", "u", &[(2, &p2), (3, &p2)])).await),
        MetadataError::InvalidPart(_)
    ));
    assert!(matches!(
        err(s
            .apply(complete_cmd("k", "u", &[(1, &small), (2, &p2)]))
            .await),
        MetadataError::EntityTooSmall { part_number: 1 }
    ));
    assert!(matches!(
        err(s.apply(complete_cmd("k", "u", &[])).await),
        MetadataError::InvalidArgument(_)
    ));
    assert!(matches!(
        err(s.apply(complete_cmd("k", "other", &[(2, &p2)])).await),
        MetadataError::NoSuchUpload
    ));
    // A small part is fine as the last one.
    assert!(gc_shards(&s).await.is_empty());
    s.apply(complete_cmd("k", "u", &[(2, &p2), (3, &p3)]))
        .await
        .unwrap();
    assert_eq!(gc_shards(&s).await, shard_ids(&small));
}

#[tokio::test]
async fn abort_and_bucket_delete_collect_every_part() {
    let s = store().await;
    create(&s, "a", "u1").await;
    create(&s, "b", "u2").await;
    let (p1, p2, p3) = (part(1, 5, 1), part(2, 5, 2), part(1, 5, 3));
    put_part(&s, "a", "u1", p1.clone()).await.unwrap();
    put_part(&s, "a", "u1", p2.clone()).await.unwrap();
    put_part(&s, "b", "u2", p3.clone()).await.unwrap();
    assert!(matches!(
        put_part(&s, "a", "u1", part(10_001, 5, 1)).await,
        Err(MetadataError::InvalidArgument(_))
    ));
    assert!(matches!(
        put_part(&s, "a", "u2", part(1, 5, 1)).await,
        Err(MetadataError::NoSuchUpload)
    ));
    s.apply(Command::AbortUpload {
        bucket: bucket(),
        key: key("a"),
        upload_id: "u1".into(),
    })
    .await
    .unwrap();
    let mut want = [shard_ids(&p1), shard_ids(&p2)].concat();
    want.sort();
    assert_eq!(gc_shards(&s).await, want);
    assert!(matches!(
        s.apply(Command::AbortUpload {
            bucket: bucket(),
            key: key("a"),
            upload_id: "u1".into(),
        })
        .await,
        Err(MetadataError::NoSuchUpload)
    ));
    // Deleting the bucket aborts the upload still in progress.
    s.apply(Command::DeleteBucket { name: bucket() })
        .await
        .unwrap();
    let mut want = [shard_ids(&p1), shard_ids(&p2), shard_ids(&p3)].concat();
    want.sort();
    assert_eq!(gc_shards(&s).await, want);
    let page = s
        .list_uploads(
            &bucket(),
            &UploadQuery {
                max_uploads: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(page.entries.is_empty());
}

#[tokio::test]
async fn list_parts_pages() {
    let s = store().await;
    create(&s, "k", "u").await;
    for n in [1, 2, 5, 9, 10_000] {
        put_part(&s, "k", "u", part(n, 1, n as u8)).await.unwrap();
    }
    let page = |after, max| {
        let s = s.clone();
        async move {
            let (parts, more) = s
                .list_parts(&bucket(), &key("k"), "u", after, max)
                .await
                .unwrap();
            (
                parts.iter().map(|p| p.part_number).collect::<Vec<_>>(),
                more,
            )
        }
    };
    assert_eq!(page(0, 2).await, (vec![1, 2], true));
    assert_eq!(page(2, 2).await, (vec![5, 9], true));
    assert_eq!(page(9, 2).await, (vec![10_000], false));
    assert_eq!(page(3, 100).await, (vec![5, 9, 10_000], false));
    assert_eq!(page(10_000, 100).await, (vec![], false));
    assert_eq!(page(0, 5).await, (vec![1, 2, 5, 9, 10_000], false));
}

struct VecCursor {
    keys: Vec<Vec<u8>>,
    pos: usize,
}

impl KeyCursor for VecCursor {
    fn seek(&mut self, key: &[u8]) {
        self.pos = self.keys.partition_point(|k| k.as_slice() < key);
    }
    fn next_entry(&mut self) -> Result<Option<RawEntry>, MetadataError> {
        let r = self.keys.get(self.pos).map(|k| {
            let id = k.rsplit(|b| *b == 0).next().unwrap();
            (k.clone(), encode(&upload(std::str::from_utf8(id).unwrap())))
        });
        self.pos += 1;
        Ok(r)
    }
}

/// Brute force: sort (key, id), drop what is at or before the markers, fold by delimiter.
fn naive(uploads: &[(&str, &str)], q: &UploadQuery) -> (Vec<String>, bool) {
    let mut all: Vec<(&str, &str)> = uploads.to_vec();
    all.sort();
    let marker = q.key_marker.clone().unwrap_or_default();
    let id_marker = q.upload_id_marker.clone().filter(|_| !marker.is_empty());
    let mut out: Vec<String> = Vec::new();
    for (k, id) in all {
        if !k.starts_with(&q.prefix) {
            continue;
        }
        if !marker.is_empty() {
            let after = match &id_marker {
                Some(m) => k > marker.as_str() || (k == marker && id > m.as_str()),
                None => k > marker.as_str(),
            };
            if !after {
                continue;
            }
        }
        let name = match q.delimiter.as_deref().filter(|d| !d.is_empty()) {
            Some(d) => match k[q.prefix.len()..].find(d) {
                Some(p) => {
                    let cp = &k[..q.prefix.len() + p + d.len()];
                    if !marker.is_empty() && cp <= marker.as_str() {
                        continue;
                    }
                    format!("P:{cp}")
                }
                None => format!("{k}/{id}"),
            },
            None => format!("{k}/{id}"),
        };
        if out.last() != Some(&name) {
            out.push(name);
        }
    }
    let truncated = out.len() > q.max_uploads;
    out.truncate(q.max_uploads);
    (out, truncated)
}

fn run(uploads: &[(&str, &str)], q: &UploadQuery) -> (Vec<String>, bool) {
    let mut keys: Vec<Vec<u8>> = uploads
        .iter()
        .map(|(k, id)| [k.as_bytes(), &[0], id.as_bytes()].concat())
        .collect();
    keys.sort();
    let mut c = VecCursor { keys, pos: 0 };
    let page = list_uploads(&mut c, q).unwrap();
    let names = page
        .entries
        .iter()
        .map(|e| match e {
            UploadEntry::Upload(k, rec) => format!("{k}/{}", rec.upload_id),
            UploadEntry::Prefix(p) => format!("P:{p}"),
        })
        .collect();
    (names, page.is_truncated)
}

#[test]
fn upload_listing_matches_naive_reference() {
    let uploads = [
        ("a", "01"),
        ("a", "02"),
        ("a/1", "03"),
        ("a/2", "04"),
        ("a/b/c", "05"),
        ("ab", "06"),
        ("b", "07"),
        ("b/x", "08"),
        ("b/x", "09"),
        ("c/d/e", "0a"),
        ("é/1", "0b"),
    ];
    let prefixes = ["", "a", "a/", "b/", "zz"];
    let delims = [None, Some("/"), Some("0")];
    let markers = [
        (None, None),
        (Some("a"), None),
        (Some("a"), Some("01")),
        (Some("a/"), None),
        (Some("b/x"), Some("08")),
        (None, Some("05")),
    ];
    for p in prefixes {
        for d in delims {
            for (km, um) in markers {
                for max in [0, 1, 2, 3, 100] {
                    let q = UploadQuery {
                        prefix: p.into(),
                        delimiter: d.map(Into::into),
                        key_marker: km.map(Into::into),
                        upload_id_marker: um.map(Into::into),
                        max_uploads: max,
                    };
                    assert_eq!(run(&uploads, &q), naive(&uploads, &q), "{q:?}");
                }
            }
        }
    }
}

#[tokio::test]
async fn upload_listing_pages_through_the_store() {
    let s = store().await;
    for (k, id) in [("x/1", "a1"), ("x/1", "a2"), ("x/2", "a3"), ("y", "a4")] {
        create(&s, k, id).await;
    }
    let mut seen = Vec::new();
    let (mut km, mut um): (Option<String>, Option<String>) = (None, None);
    loop {
        let page = s
            .list_uploads(
                &bucket(),
                &UploadQuery {
                    key_marker: km.clone(),
                    upload_id_marker: um.clone(),
                    max_uploads: 1,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        for e in &page.entries {
            if let UploadEntry::Upload(k, rec) = e {
                seen.push(format!("{k}:{}", rec.upload_id));
                km = Some(k.clone());
                um = Some(rec.upload_id.clone());
            }
        }
        if !page.is_truncated {
            break;
        }
    }
    assert_eq!(seen, ["x/1:a1", "x/1:a2", "x/2:a3", "y:a4"]);
}

#[tokio::test]
async fn ten_thousand_parts_complete() {
    let s = store().await;
    create(&s, "huge", "u").await;
    let parts: Vec<PartRecord> = (1..=MAX_PART_NUMBER)
        .map(|n| part(n, MIN_PART_SIZE, (n % 251) as u8))
        .collect();
    for p in &parts {
        put_part(&s, "huge", "u", p.clone()).await.unwrap();
    }
    let refs: Vec<(u32, &PartRecord)> = parts.iter().map(|p| (p.part_number, p)).collect();
    let started = std::time::Instant::now();
    let CommandOutput::Completed(rec) = s.apply(complete_cmd("huge", "u", &refs)).await.unwrap()
    else {
        panic!("not completed");
    };
    let took = started.elapsed();
    assert!(rec.etag.ends_with("-10000"), "{}", rec.etag);
    assert_eq!(rec.size, MIN_PART_SIZE * u64::from(MAX_PART_NUMBER));
    let stored = s
        .get_object(&bucket(), &key("huge"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.data.shards().len(), 2 * MAX_PART_NUMBER as usize);
    eprintln!(
        "completing 10 000 parts took {took:?}; object record {} bytes",
        crate::records::encode(&stored).len()
    );
    assert!(gc_shards(&s).await.is_empty());
}
