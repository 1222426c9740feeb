//! Raft groups of in-process nodes, each with its own RocksDB directory and a real cluster
//! listener on a loopback port: joining, forwarded writes, linearizable reads on followers,
//! snapshot installation for a node behind the purge point, and no-quorum failures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::*;
use crate::RaftMetadataStore;
use cairn_metadata::MetadataStore;

mod big_messages;
mod conformance;
mod format_fixture;

const SECRET: &str = "raft-unit-test-secret";

/// The tests' nodes talk plain HTTP with the secret (TLS is tested end to end).
fn transport() -> cairn_net::client::ClusterTransport {
    cairn_net::client::ClusterTransport::insecure(SECRET)
}

struct TestNode {
    node: Arc<RaftNode>,
    meta: RaftMetadataStore,
    server: JoinHandle<()>,
}

impl TestNode {
    async fn stop(self) {
        self.node.shutdown().await;
        self.server.abort();
        let _ = self.server.await;
    }
}

fn opts(snapshot_logs: u64) -> RaftOptions {
    RaftOptions {
        heartbeat: Duration::from_millis(50),
        election: Duration::from_millis(300),
        snapshot_logs,
        keep_logs: 5,
        timeout: Duration::from_secs(2),
    }
}

async fn start(id: NodeId, dir: &std::path::Path, port: u16, snapshot_logs: u64) -> TestNode {
    start_with(id, dir, port, opts(snapshot_logs)).await
}

async fn start_with(
    id: NodeId,
    dir: &std::path::Path,
    port: u16,
    options: RaftOptions,
) -> TestNode {
    start_failing(id, dir, port, options, Failpoints::default()).await
}

async fn start_failing(
    id: NodeId,
    dir: &std::path::Path,
    port: u16,
    options: RaftOptions,
    failpoints: Failpoints,
) -> TestNode {
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    // A node stopped just before may still be closing the database (its WAL sync thread).
    let deadline = Instant::now() + Duration::from_secs(5);
    let store = loop {
        match RocksMetadataStore::open(dir) {
            Ok(s) => break s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("reopening {}: {e}", dir.display()),
        }
    };
    let node = RaftNode::start_with(&store, id, addr, &transport(), options, failpoints)
        .await
        .unwrap();
    let app = service::router(node.clone(), SECRET.into());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    TestNode {
        meta: RaftMetadataStore::new(node.clone(), store),
        node,
        server,
    }
}

fn set(key: &str, value: &str) -> Command {
    Command::SetSys {
        key: key.into(),
        value: value.as_bytes().to_vec(),
    }
}

async fn three(dirs: &[tempfile::TempDir], snapshot_logs: u64) -> Vec<TestNode> {
    three_with(dirs, opts(snapshot_logs)).await
}

async fn three_with(dirs: &[tempfile::TempDir], options: RaftOptions) -> Vec<TestNode> {
    three_failing(dirs, options, Failpoints::default()).await
}

/// Three voters; node 1 (the first leader) runs with `failpoints`.
async fn three_failing(
    dirs: &[tempfile::TempDir],
    options: RaftOptions,
    failpoints: Failpoints,
) -> Vec<TestNode> {
    let n1 = start_failing(1, dirs[0].path(), 0, options.clone(), failpoints).await;
    n1.node.bootstrap().await.unwrap();
    assert!(n1.node.wait_for_leader(Duration::from_secs(5)).await);
    let mut nodes = vec![n1];
    for id in 2..=3 {
        let n = start_with(id, dirs[id as usize - 1].path(), 0, options.clone()).await;
        let seed = nodes[0].node.addr.clone();
        n.node
            .join(&seed, true, Instant::now() + Duration::from_secs(20))
            .await
            .unwrap();
        nodes.push(n);
    }
    nodes
}

/// Found by the fault campaign (seed 11004): a leader paused while the others elected a new
/// leader and took writes answered a stale read on resuming, because its read lease came from
/// openraft's metrics snapshot, which does not age while the Raft core is not running. Here
/// the old leader's core is frozen (its log appends wait, as in a paused process) while its
/// read path still runs; it must never answer the value the new leader overwrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_frozen_leader_never_serves_a_read_the_new_leader_made_stale() {
    let dirs = tempdirs(3);
    let stall = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let failpoints = Failpoints {
        log_stall: Some(stall.clone()),
        ..Failpoints::default()
    };
    let nodes = three_failing(&dirs, opts(10_000), failpoints).await;
    let old = &nodes[0];
    assert!(old.node.is_leader());
    old.meta.apply(set("k", "old")).await.unwrap();
    assert_eq!(old.meta.get_sys("k").await.unwrap(), Some(b"old".to_vec()));
    let old_term = old.node.status().term;
    // Freeze the leader's core: the next append (this write's) never returns until thawed.
    stall.store(true, Ordering::SeqCst);
    let frozen_write = {
        let meta = old.meta.clone();
        tokio::spawn(async move { meta.apply(set("during", "x")).await })
    };
    // The others stop hearing it and elect one of themselves.
    let deadline = Instant::now() + Duration::from_secs(15);
    let new = loop {
        if let Some(n) = nodes[1..].iter().find(|n| {
            let s = n.node.status();
            s.leader == Some(n.node.id) && s.term > old_term
        }) {
            break n;
        }
        assert!(Instant::now() < deadline, "no new leader was elected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    new.meta.apply(set("k", "new")).await.unwrap();
    // The frozen node still believes it leads (its metrics say so); its reads must either
    // fail or see the new value.
    assert_eq!(old.node.status().leader, Some(1), "{:?}", old.node.status());
    match old.meta.get_sys("k").await {
        Ok(v) => assert_eq!(v, Some(b"new".to_vec()), "a stale read"),
        Err(e) => assert!(matches!(e, MetadataError::Unavailable(_)), "{e:?}"),
    }
    // Thawed, it learns of the new term and reads the new value.
    stall.store(false, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match old.meta.get_sys("k").await {
            Ok(v) => {
                assert_eq!(v, Some(b"new".to_vec()));
                break;
            }
            Err(e) => assert!(Instant::now() < deadline, "{e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Its frozen write was never appended anywhere; it ends one way or another.
    let r = tokio::time::timeout(Duration::from_secs(20), frozen_write).await;
    assert!(
        r.is_ok(),
        "the write frozen with the old leader never ended"
    );
    for n in nodes {
        n.stop().await;
    }
}

fn tempdirs(n: usize) -> Vec<tempfile::TempDir> {
    (0..n).map(|_| tempfile::tempdir().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_anywhere_are_read_everywhere_at_once() {
    let dirs = tempdirs(3);
    let nodes = three(&dirs, 10_000).await;
    // The last joiner learns of its promotion when the change reaches it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = nodes[2].node.status();
        if status.members.iter().filter(|m| m.voter).count() == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "{status:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for i in 0..30 {
        let writer = &nodes[i % 3];
        let reader = &nodes[(i + 1) % 3];
        writer
            .meta
            .apply(set(&format!("k{i}"), &format!("v{i}")))
            .await
            .unwrap();
        // A linearizable read on another node sees it at once.
        assert_eq!(
            reader.meta.get_sys(&format!("k{i}")).await.unwrap(),
            Some(format!("v{i}").into_bytes()),
            "written on node {}, read on {}",
            i % 3 + 1,
            (i + 1) % 3 + 1
        );
    }
    // Command results (errors included) come back through forwarding.
    let err = nodes[1]
        .meta
        .apply(Command::DeleteBucket {
            name: cairn_types::BucketName::new("nope").unwrap(),
        })
        .await
        .unwrap_err();
    assert_eq!(err, MetadataError::NoSuchBucket);
    for n in nodes {
        n.stop().await;
    }
}

/// Found by the fault campaign: the leader asked to remove itself committed the removal and
/// then proposed a second change, and openraft's core panicked ("Only leader is allowed to
/// call update_effective_membership()"), leaving that node without metadata.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_leader_removes_itself_and_the_others_go_on() {
    let dirs = tempdirs(3);
    let nodes = three(&dirs, 10_000).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while nodes[2]
        .node
        .status()
        .members
        .iter()
        .filter(|m| m.voter)
        .count()
        < 3
    {
        assert!(Instant::now() < deadline, "node 3 never became a voter");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let leader = nodes
        .iter()
        .position(|n| n.node.is_leader())
        .expect("a leader");
    let id = nodes[leader].node.id;
    nodes[leader].node.remove_node(id).await.unwrap();
    // The two others elect a leader among themselves and take writes; the removed node is
    // no longer a member anywhere.
    let others: Vec<&TestNode> = nodes.iter().filter(|n| n.node.id != id).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match others[0].meta.apply(set("after", "removal")).await {
            Ok(_) => break,
            Err(e) => assert!(
                Instant::now() < deadline,
                "no writes after the removal: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        others[1].meta.get_sys("after").await.unwrap(),
        Some(b"removal".to_vec())
    );
    let members = others[1].node.status().members;
    assert!(members.iter().all(|m| m.id != id), "{members:?}");
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_behind_the_purged_log_catches_up_from_a_snapshot() {
    let dirs = tempdirs(3);
    let mut nodes = three(&dirs, 20).await;
    let lagging = nodes.pop().unwrap();
    let port: u16 = lagging
        .node
        .addr
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    lagging.stop().await;
    for i in 0..120 {
        nodes[i % 2]
            .meta
            .apply(set(&format!("s{i:03}"), "x"))
            .await
            .unwrap();
    }
    // Purging waits for the replication to the stopped node to give up its in-flight logs.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut extra = 0;
    let leader = loop {
        let leader = nodes.iter().find(|n| n.node.is_leader()).unwrap();
        if leader.node.status().purged_index.unwrap_or(0) > 50 || Instant::now() > deadline {
            break leader;
        }
        leader
            .meta
            .apply(set(&format!("t{extra:03}"), "x"))
            .await
            .unwrap();
        extra += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let purged = leader.node.status().purged_index.unwrap_or(0);
    assert!(
        purged > 50,
        "the leader purged its log: {:?}",
        leader.node.status()
    );
    // Back on the same address: Raft can only bring it up to date with a snapshot.
    let back = start(3, dirs[2].path(), port, 20).await;
    assert!(back.node.wait_for_leader(Duration::from_secs(10)).await);
    let got = back.meta.scan_sys("s").await.unwrap();
    assert_eq!(got.len(), 120);
    assert!(back.node.status().snapshot_index.unwrap_or(0) >= purged);
    back.stop().await;
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_quorum_writes_and_reads_are_unavailable() {
    let dirs = tempdirs(3);
    let mut nodes = three(&dirs, 10_000).await;
    nodes[0].meta.apply(set("before", "1")).await.unwrap();
    let a = nodes.pop().unwrap();
    let b = nodes.pop().unwrap();
    a.stop().await;
    b.stop().await;
    let t = Instant::now();
    // The leader proposed it: without a quorum its outcome is unknown, not a failure.
    let err = nodes[0].meta.apply(set("after", "2")).await.unwrap_err();
    assert!(matches!(err, MetadataError::Indeterminate(_)), "{err:?}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let err = nodes[0].meta.get_sys("before").await.unwrap_err();
    assert!(matches!(err, MetadataError::Unavailable(_)), "{err:?}");
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_share_entries_and_each_gets_its_own_result() {
    let dirs = tempdirs(3);
    let nodes = three(&dirs, 10_000).await;
    let entries = |nodes: &[TestNode]| -> u64 {
        nodes
            .iter()
            .map(|n| n.node.stats().entries.load(Ordering::Relaxed))
            .sum()
    };
    let before = entries(&nodes);
    // 64 writers on all three nodes race to create the same bucket, and 64 more each set
    // their own key: one creation wins, every other gets BucketExists, every set lands.
    let mut tasks = Vec::new();
    for i in 0..128usize {
        let meta = nodes[i % 3].meta.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                meta.apply(Command::CreateBucket(cairn_metadata::BucketRecord {
                    name: cairn_types::BucketName::new("race").unwrap(),
                    created_ms: i as i64,
                    owner: format!("owner{i}"),
                }))
                .await
            } else {
                meta.apply(set(&format!("own{i:03}"), &i.to_string())).await
            }
        }));
    }
    let mut created = 0;
    for (i, t) in tasks.into_iter().enumerate() {
        match (i % 2, t.await.unwrap()) {
            (0, Ok(_)) => created += 1,
            (0, Err(MetadataError::BucketExists { .. })) => {}
            (1, Ok(_)) => {}
            (k, r) => panic!("writer {i} ({k}): {r:?}"),
        }
    }
    assert_eq!(created, 1);
    for i in (1..128usize).step_by(2) {
        assert_eq!(
            nodes[(i + 1) % 3]
                .meta
                .get_sys(&format!("own{i:03}"))
                .await
                .unwrap(),
            Some(i.to_string().into_bytes())
        );
    }
    let used = entries(&nodes) - before;
    assert!(used < 128, "128 concurrent writes took {used} Raft entries");
    for n in nodes {
        n.stop().await;
    }
}

fn port_of(n: &TestNode) -> u16 {
    n.node.addr.rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_that_timed_out_without_a_quorum_commits_once_the_quorum_is_back() {
    let dirs = tempdirs(3);
    let mut nodes = three(&dirs, 10_000).await;
    let c = nodes.pop().unwrap();
    let port = port_of(&c);
    c.stop().await;
    nodes.pop().unwrap().stop().await;
    let err = nodes[0].meta.apply(set("maybe", "1")).await.unwrap_err();
    assert!(err.outcome_unknown(), "{err:?}");
    // The entry is in the leader's log: a follower back is all it needs to commit. So a
    // caller that took the error for "not written" (and, say, deleted the data the command
    // refers to) would be wrong.
    let back = start(3, dirs[2].path(), port, 10_000).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(v)) = nodes[0].meta.get_sys("maybe").await {
            assert_eq!(v, b"1");
            break;
        }
        assert!(Instant::now() < deadline, "the write never committed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    back.stop().await;
    for n in nodes {
        n.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_with_no_leader_known_is_definitely_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = RocksMetadataStore::open(dir.path()).unwrap();
    // Never bootstrapped: no leader, so nothing is ever proposed.
    let node = RaftNode::start(&store, 1, "127.0.0.1:9".into(), &transport(), opts(10_000))
        .await
        .unwrap();
    let meta = RaftMetadataStore::new(node.clone(), store);
    let err = meta.apply(set("k", "v")).await.unwrap_err();
    assert!(matches!(err, MetadataError::Unavailable(_)), "{err:?}");
    assert!(!err.outcome_unknown());
    node.shutdown().await;
}

fn object_record() -> cairn_metadata::ObjectRecord {
    cairn_metadata::ObjectRecord {
        size: 3,
        etag: "e".into(),
        last_modified_ms: 1,
        content_type: None,
        headers: Default::default(),
        user_meta: Default::default(),
        checksum: None,
        version_id: None,
        tags: Default::default(),
        acl: None,
        upload_id: None,
        data: cairn_metadata::ObjectData::Inline(vec![1, 2, 3]),
    }
}

/// The fail point of the e2e tests, on a group of one: the object write commits, its answer
/// comes after the timeout, and the writer is told the outcome is unknown (not that it
/// failed); commands that carry no object write are not delayed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_answered_after_the_timeout_is_indeterminate_yet_committed() {
    let dir = tempfile::tempdir().unwrap();
    let store = RocksMetadataStore::open(dir.path()).unwrap();
    let failpoints = Failpoints {
        commit_delay: Some(Duration::from_secs(4)),
        log_stall: None,
    };
    let mut o = opts(10_000);
    o.timeout = Duration::from_secs(1);
    let node = RaftNode::start_with(&store, 1, "127.0.0.1:9".into(), &transport(), o, failpoints)
        .await
        .unwrap();
    node.bootstrap().await.unwrap();
    assert!(node.wait_for_leader(Duration::from_secs(5)).await);
    let meta = RaftMetadataStore::new(node.clone(), store);
    let bucket = cairn_types::BucketName::new("failpoint").unwrap();
    let key = cairn_types::ObjectKey::new("k".to_string()).unwrap();
    meta.apply(Command::CreateBucket(cairn_metadata::BucketRecord {
        name: bucket.clone(),
        created_ms: 0,
        owner: "o".into(),
    }))
    .await
    .unwrap();
    let t = Instant::now();
    let err = meta
        .apply(Command::PutObject {
            bucket: bucket.clone(),
            key: key.clone(),
            record: object_record(),
            condition: cairn_metadata::WriteCondition::Always,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, MetadataError::Indeterminate(_)), "{err:?}");
    assert!(err.outcome_unknown());
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    let got = meta.get_object(&bucket, &key).await.unwrap();
    assert_eq!(got.map(|r| r.etag), Some("e".to_string()), "it did commit");
    // A command's own rejection is definite.
    let err = meta
        .apply(Command::DeleteBucket {
            name: cairn_types::BucketName::new("nope").unwrap(),
        })
        .await
        .unwrap_err();
    assert_eq!(err, MetadataError::NoSuchBucket);
    assert!(!err.outcome_unknown());
    node.shutdown().await;
}
