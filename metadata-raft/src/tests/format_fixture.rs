//! Old Raft bytes, checked in: `metadata-raft/tests/fixtures/raft-v0.hex` holds the `raft_log`
//! and `raft_meta` column families of a node written by the code of before the versioned
//! envelope (legacy v0, see [`crate::format`]), `raft-v1.hex` the same state in
//! envelope version 1. The tests here load those bytes into a fresh database the way
//! RocksDB held them, open the Raft store on it and check that the snapshot installs, the
//! log replays and the vote and committed index decode.
//!
//! `write_format_fixture` is the generator that made the files. Never re-run it over an
//! existing fixture (it refuses to): the point of a file is that its bytes are old. When the
//! format gets a new version, run it once (`cargo test -p cairn-metadata-raft
//! write_format_fixture -- --ignored`) to add `raft-v{N}.hex`, and add tests loading it.
//!
//! A file is text: one `cf<TAB>key-hex<TAB>value-hex` line per stored key, in key order.

use std::collections::BTreeMap;

use openraft::storage::{RaftLogStorage, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{CommittedLeaderId, EntryPayload, LogId, Membership, RaftLogReader, Vote};

use super::*;
use crate::format;
use crate::log_store::LogStore;
use crate::state_machine::{AppliedMark, StateMachine};
use cairn_metadata::records::{ObjectData, ShardLoc, StripeLoc, UploadRecord};
use cairn_metadata::{BucketRecord, ObjectRecord};

const V0_FIXTURE: &str = include_str!("../../tests/fixtures/raft-v0.hex");
const V1_FIXTURE: &str = include_str!("../../tests/fixtures/raft-v1.hex");

fn log_id(index: u64) -> LogId<NodeId> {
    LogId::new(CommittedLeaderId::new(1, 1), index)
}

fn entry(index: u64, payload: EntryPayload<TypeConfig>) -> Entry {
    Entry {
        log_id: log_id(index),
        payload,
    }
}

fn batch(index: u64, cmds: Vec<Command>) -> Entry {
    entry(index, EntryPayload::Normal(CommandBatch(cmds)))
}

fn bucket() -> cairn_types::BucketName {
    cairn_types::BucketName::new("photos").unwrap()
}

fn key(k: &str) -> cairn_types::ObjectKey {
    cairn_types::ObjectKey::new(k.to_string()).unwrap()
}

fn record(size: u64, data: ObjectData) -> ObjectRecord {
    ObjectRecord {
        size,
        etag: format!("etag-{size}"),
        last_modified_ms: 1_700_000_000_000,
        content_type: Some("application/octet-stream".into()),
        headers: BTreeMap::from([("cache-control".to_string(), "no-cache".to_string())]),
        user_meta: BTreeMap::from([("origin".to_string(), "fixture".to_string())]),
        checksum: None,
        version_id: None,
        tags: Default::default(),
        acl: None,
        upload_id: None,
        data,
    }
}

fn striped() -> ObjectData {
    ObjectData::Striped {
        id: cairn_types::ObjectId(0x0123_4567_89ab_cdef_0011_2233_4455_6677),
        ec: cairn_types::EcScheme::SINGLE,
        stripe_size: 4096,
        stripes: vec![StripeLoc {
            len: 5000,
            shards: vec![ShardLoc {
                node: cairn_types::NodeId(0),
                len: 5000,
                crc32c: 0xdead_beef,
            }],
        }],
    }
}

fn put(k: &str, record: ObjectRecord) -> Command {
    Command::PutObject {
        bucket: bucket(),
        key: key(k),
        record,
        condition: Default::default(),
    }
}

fn set_sys(k: &str, v: &[u8]) -> Command {
    Command::SetSys {
        key: k.into(),
        value: v.to_vec(),
    }
}

/// The log of the fixture: entries 1–6 are in the snapshot, 7–8 only in the log.
fn fixture_log() -> Vec<Entry> {
    let members = BTreeMap::from([(1, BasicNode::new("127.0.0.1:7000"))]);
    vec![
        entry(
            1,
            EntryPayload::Membership(Membership::new(vec![[1].into()], members)),
        ),
        entry(2, EntryPayload::Blank),
        batch(
            3,
            vec![
                Command::CreateBucket(BucketRecord {
                    name: bucket(),
                    created_ms: 1_700_000_000_000,
                    owner: "AKFIXTURE".into(),
                }),
                set_sys("fixture/a", b"one"),
            ],
        ),
        batch(
            4,
            vec![put(
                "hello.txt",
                record(3, ObjectData::Inline(b"hi!".to_vec())),
            )],
        ),
        batch(
            5,
            vec![
                put("big.bin", record(5000, striped())),
                Command::CreateUpload {
                    bucket: bucket(),
                    key: key("multi.bin"),
                    upload: UploadRecord {
                        upload_id: "upload-1".into(),
                        initiated_ms: 1_700_000_000_500,
                        owner: "AKFIXTURE".into(),
                        content_type: None,
                        headers: BTreeMap::new(),
                        user_meta: BTreeMap::new(),
                        checksum_algorithm: None,
                        checksum_type: None,
                        tags: Default::default(),
                        acl: None,
                    },
                },
            ],
        ),
        entry(6, EntryPayload::Blank),
        batch(
            7,
            vec![
                Command::DeleteObject {
                    bucket: bucket(),
                    key: key("hello.txt"),
                    marker_version_id: String::new(),
                    marker_ms: 1_700_000_001_000,
                },
                set_sys("fixture/b", b"two"),
            ],
        ),
        batch(
            8,
            vec![
                put("after.txt", record(2, ObjectData::Inline(b"ok".to_vec()))),
                Command::AbortUpload {
                    bucket: bucket(),
                    key: key("multi.bin"),
                    upload_id: "upload-1".into(),
                },
            ],
        ),
    ]
}

/// Every key and value of the Raft column families, in key order.
fn dump_raft_cfs(inner: &RocksMetadataStore) -> String {
    let mut out = String::new();
    for cf in RAFT_CFS {
        let handle = inner.cf_named(cf).unwrap();
        let mut it = inner.db().raw_iterator_cf(handle);
        it.seek_to_first();
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            out.push_str(&format!("{cf}\t{}\t{}\n", hex(k), hex(v)));
            it.next();
        }
        it.status().unwrap();
    }
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length in the fixture");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex in the fixture"))
        .collect()
}

/// The generator of the fixtures: it writes `raft-v{CURRENT}.hex` with the code of the
/// tree and refuses to overwrite a file that exists (see the module doc). `raft-v0.hex`
/// was made by it before the envelope existed, and `raft-v1.hex` right after. Entries are
/// written to `raft_log` as `LogStore::append` writes them (openraft keeps the append
/// callback private); the vote, committed index, purge point, applied state and snapshot go
/// through the stores' own code.
#[tokio::test]
#[ignore = "writes a checked-in fixture; run by hand only for a new format version"]
async fn write_format_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let store = RocksMetadataStore::open(dir.path()).unwrap();
    let inner = store.clone();
    let mut log = LogStore::new(inner.clone(), Default::default());
    let mut sm = StateMachine::new(inner.clone(), Arc::new(AppliedMark::default()));
    let entries = fixture_log();
    {
        let cf = inner.cf_named(LOG_CF).unwrap();
        for e in &entries {
            let bytes = format::encode(e).unwrap();
            inner
                .db()
                .put_cf(cf, e.log_id.index.to_be_bytes(), bytes)
                .unwrap();
        }
    }
    log.save_vote(&Vote::new_committed(1, 1)).await.unwrap();
    sm.apply(entries[..6].to_vec()).await.unwrap();
    sm.build_snapshot().await.unwrap();
    log.purge(log_id(3)).await.unwrap();
    log.save_committed(Some(log_id(8))).await.unwrap();
    inner.db().flush_wal(true).unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/raft-v{}.hex", format::CURRENT));
    assert!(
        !path.exists(),
        "{} exists: old fixtures stay as they are",
        path.display()
    );
    std::fs::write(path, dump_raft_cfs(&inner)).unwrap();
}

/// A fresh database holding the fixture's Raft column families (and nothing else).
fn load_fixture(text: &str, dir: &std::path::Path) -> RocksMetadataStore {
    let store = RocksMetadataStore::open(dir).unwrap();
    let mut lines = 0;
    for line in text.lines().filter(|l| !l.is_empty()) {
        let mut parts = line.split('\t');
        let (Some(cf), Some(k), Some(v), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            panic!("bad fixture line: {line}");
        };
        let handle = store.cf_named(cf).unwrap();
        store.db().put_cf(handle, unhex(k), unhex(v)).unwrap();
        lines += 1;
    }
    assert!(lines > 0, "empty fixture");
    store
}

#[tokio::test]
async fn the_v0_snapshot_installs() {
    snapshot_installs(V0_FIXTURE).await;
}

#[tokio::test]
async fn the_v1_snapshot_installs() {
    snapshot_installs(V1_FIXTURE).await;
}

#[tokio::test]
async fn a_v0_log_replays_over_its_snapshot() {
    log_replays_over_its_snapshot(V0_FIXTURE, false).await;
}

#[tokio::test]
async fn a_v1_log_replays_over_its_snapshot() {
    log_replays_over_its_snapshot(V1_FIXTURE, true).await;
}

/// The snapshot kept in the fixture decodes and installs: the state of entries 1–6.
async fn snapshot_installs(fixture: &str) {
    let dir = tempfile::tempdir().unwrap();
    let store = load_fixture(fixture, dir.path());
    let mut sm = StateMachine::new(store.clone(), Arc::new(AppliedMark::default()));
    let snap = sm
        .get_current_snapshot()
        .await
        .unwrap()
        .expect("a snapshot");
    assert_eq!(snap.meta.last_log_id, Some(log_id(6)));
    let voters: Vec<NodeId> = snap.meta.last_membership.membership().voter_ids().collect();
    assert_eq!(voters, vec![1]);
    sm.install_snapshot(&snap.meta, snap.snapshot)
        .await
        .unwrap();
    let (applied, membership) = sm.applied_state().await.unwrap();
    assert_eq!(applied, Some(log_id(6)));
    assert_eq!(membership.log_id(), &Some(log_id(1)));
    let b = bucket();
    assert!(store.get_bucket(&b).await.unwrap().is_some());
    let hello = store
        .get_object(&b, &key("hello.txt"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hello.data, ObjectData::Inline(b"hi!".to_vec()));
    assert!(store
        .get_object(&b, &key("after.txt"))
        .await
        .unwrap()
        .is_none());
    assert!(store
        .get_upload(&b, &key("multi.bin"), "upload-1")
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store.get_sys("fixture/a").await.unwrap(),
        Some(b"one".to_vec())
    );
    assert_eq!(store.get_sys("fixture/b").await.unwrap(), None);
}

/// The fixture's log, vote and committed index decode; a Raft node started on the fixture
/// (after installing its snapshot) replays entries 7–8 on top and ends in the state of the
/// whole log.
/// `enveloped`: whether the fixture's log entries are in the envelope (not legacy).
async fn log_replays_over_its_snapshot(fixture: &str, enveloped: bool) {
    let dir = tempfile::tempdir().unwrap();
    let store = load_fixture(fixture, dir.path());
    {
        let mut log = LogStore::new(store.clone(), Default::default());
        assert_eq!(
            log.read_vote().await.unwrap(),
            Some(Vote::new_committed(1, 1))
        );
        assert_eq!(log.read_committed().await.unwrap(), Some(log_id(8)));
        let state = log.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(log_id(3)));
        assert_eq!(state.last_log_id, Some(log_id(8)));
        let read = log.try_get_log_entries(4..9).await.unwrap();
        let expected = fixture_log();
        assert_eq!(read.len(), 5);
        for (got, want) in read.iter().zip(&expected[3..]) {
            assert_eq!(got.log_id, want.log_id);
            assert_eq!(
                postcard::to_allocvec(&got.payload).unwrap(),
                postcard::to_allocvec(&want.payload).unwrap()
            );
        }
        let mut sm = StateMachine::new(store.clone(), Arc::new(AppliedMark::default()));
        let snap = sm
            .get_current_snapshot()
            .await
            .unwrap()
            .expect("a snapshot");
        sm.install_snapshot(&snap.meta, snap.snapshot)
            .await
            .unwrap();
    }
    let node = RaftNode::start(
        &store,
        1,
        "127.0.0.1:7000".into(),
        &transport(),
        opts(10_000),
    )
    .await
    .unwrap();
    // Raft re-applies the committed entries after the snapshot while it starts.
    assert_eq!(node.applied.get(), Some(log_id(8)));
    let b = bucket();
    assert!(store.get_bucket(&b).await.unwrap().is_some());
    assert!(store
        .get_object(&b, &key("hello.txt"))
        .await
        .unwrap()
        .is_none());
    let after = store
        .get_object(&b, &key("after.txt"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.data, ObjectData::Inline(b"ok".to_vec()));
    let big = store
        .get_object(&b, &key("big.bin"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(big.data, striped());
    assert!(store
        .get_upload(&b, &key("multi.bin"), "upload-1")
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store.get_sys("fixture/a").await.unwrap(),
        Some(b"one".to_vec())
    );
    assert_eq!(
        store.get_sys("fixture/b").await.unwrap(),
        Some(b"two".to_vec())
    );
    // What was rewritten is in the current envelope; the old entries stay as they were and
    // keep decoding next to new ones.
    let raw = |cf: &str, k: &[u8]| {
        let handle = store.cf_named(cf).unwrap();
        store.db().get_cf(handle, k).unwrap().unwrap()
    };
    let applied = raw(META_CF, b"sm-applied");
    assert_eq!(&applied[..10], &format::MAGIC);
    assert_eq!(applied[10], format::CURRENT);
    let entry8 = raw(LOG_CF, &8u64.to_be_bytes());
    assert_eq!(entry8.starts_with(&format::MAGIC), enveloped);
    node.shutdown().await;
    let mut log = LogStore::new(store.clone(), Default::default());
    log.save_vote(&Vote::new_committed(2, 1)).await.unwrap();
    assert!(raw(META_CF, b"vote").starts_with(&format::MAGIC));
    assert_eq!(
        log.read_vote().await.unwrap(),
        Some(Vote::new_committed(2, 1))
    );
    assert_eq!(log.try_get_log_entries(4..9).await.unwrap().len(), 5);
}
