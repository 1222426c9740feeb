use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use bytes::Bytes;
use cairn_net::client::{ClusterClient, ClusterTransport};
use cairn_types::{ObjectId, ShardId};
use http::{Method, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::server::{encode_id, CRC_HEADER};
use crate::testing::run_conformance;
use crate::{
    router, serve, DatanodeError, LocalShardStore, RemoteShardStore, ShardStore, StoreOptions,
};

const SECRET: &str = "s3cret-cluster-key";

/// A plain-HTTP client presenting `secret` (TLS is tested end to end).
fn plain(secret: &str) -> ClusterClient {
    ClusterTransport::insecure(secret).client(Default::default())
}

struct TestServer {
    base: String,
    local: Arc<LocalShardStore>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    async fn start(options: StoreOptions) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let local = Arc::new(LocalShardStore::open(dir.path(), options).unwrap());
        let app = router(local.clone(), ClusterTransport::insecure(SECRET));
        let (base, stop, task) = spawn_router(app).await;
        TestServer {
            base,
            local,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        }
    }

    fn client(&self) -> RemoteShardStore {
        RemoteShardStore::new(&self.base, plain(SECRET))
    }

    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

async fn spawn_router(
    app: axum::Router,
) -> (String, oneshot::Sender<()>, JoinHandle<io::Result<()>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, app, None, async move {
        let _ = rx.await;
    }));
    (format!("http://{addr}"), tx, task)
}

fn sid(n: u32) -> ShardId {
    ShardId::new(ObjectId(42), n / 16, n % 16)
}

#[tokio::test]
async fn local_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalShardStore::open(dir.path(), StoreOptions::default()).unwrap();
    run_conformance(&store).await;
    // Rerunning on the same store works: the suite cleans up after itself.
    run_conformance(&store).await;
}

#[tokio::test]
async fn remote_store_conforms() {
    let mut server = TestServer::start(StoreOptions::default()).await;
    let remote = server.client();
    run_conformance(&remote).await;
    run_conformance(&remote).await;
    server.stop().await;
}

#[tokio::test]
async fn remote_conforms_alongside_other_shards_and_matches_local_view() {
    let mut server = TestServer::start(StoreOptions::default()).await;
    let remote = server.client();
    for n in 0..5 {
        remote
            .put(sid(n), Bytes::from(vec![n as u8; 10]))
            .await
            .unwrap();
    }
    run_conformance(&remote).await;
    assert_eq!(
        remote.stats().await.unwrap(),
        server.local.stats().await.unwrap()
    );
    assert_eq!(
        remote.list(None, usize::MAX).await.unwrap(),
        server.local.list(None, usize::MAX).await.unwrap()
    );
    server.stop().await;
}

#[tokio::test]
async fn wrong_secret_is_refused_and_not_not_found() {
    let mut server = TestServer::start(StoreOptions::default()).await;
    server
        .client()
        .put(sid(1), Bytes::from_static(b"x"))
        .await
        .unwrap();
    for secret in ["wrong", "", "s3cret-cluster-ke", "s3cret-cluster-key2"] {
        let bad = RemoteShardStore::new(&server.base, plain(secret));
        for err in [
            bad.get(sid(1)).await.unwrap_err(),
            bad.get(sid(2)).await.unwrap_err(),
            bad.put(sid(3), Bytes::from_static(b"y")).await.unwrap_err(),
            bad.delete(sid(1)).await.unwrap_err(),
            bad.list(None, 10).await.unwrap_err(),
            bad.stats().await.unwrap_err(),
        ] {
            match err {
                DatanodeError::Io(e) => assert_eq!(e.kind(), io::ErrorKind::PermissionDenied),
                other => panic!("expected PermissionDenied, got {other:?}"),
            }
        }
    }
    // Nothing changed through the refused requests.
    let good = server.client();
    assert_eq!(good.get(sid(1)).await.unwrap(), Bytes::from_static(b"x"));
    assert!(matches!(
        good.get(sid(3)).await,
        Err(DatanodeError::NotFound(_))
    ));
    server.stop().await;
}

#[tokio::test]
async fn an_empty_secret_lets_nothing_in() {
    // A datanode misconfigured with an empty secret must not accept an empty bearer token
    // (`Authorization: Bearer `), nor a missing one.
    let dir = tempfile::tempdir().unwrap();
    let local = Arc::new(LocalShardStore::open(dir.path(), StoreOptions::default()).unwrap());
    let (base, stop, task) = spawn_router(router(local, ClusterTransport::insecure(""))).await;
    for secret in ["", " "] {
        let bad = RemoteShardStore::new(&base, plain(secret));
        match bad.stats().await.unwrap_err() {
            DatanodeError::Io(e) => assert_eq!(e.kind(), io::ErrorKind::PermissionDenied),
            other => panic!("expected PermissionDenied, got {other:?}"),
        }
    }
    // No Authorization header, and a bare `Bearer` (which HTTP trims to no token).
    for auth in [
        "",
        "Authorization: Bearer\r\n",
        "Authorization: Bearer \r\n",
    ] {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
            .await
            .unwrap();
        let req = format!("GET /stats HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n");
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut reply = String::new();
        tcp.read_to_string(&mut reply).await.unwrap();
        assert!(reply.starts_with("HTTP/1.1 401"), "{auth:?}: {reply}");
    }
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn corrupted_download_is_detected() {
    // A fake datanode whose reply bytes do not match the checksum header.
    let id = sid(7);
    let good_crc = format!("{:08x}", cairn_types::crc32c(b"hello world"));
    let app = axum::Router::new().route(
        "/shards/{id}",
        get(move || {
            let crc = good_crc.clone();
            async move { ([(CRC_HEADER, crc)], "hellO world") }
        }),
    );
    let (base, stop, task) = spawn_router(app).await;
    let remote = RemoteShardStore::new(&base, plain(SECRET));
    match remote.get(id).await {
        Err(DatanodeError::Corrupt { id: got, reason }) => {
            assert_eq!(got, id);
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let _ = stop.send(());
    task.await.unwrap().unwrap();

    // A reply without the header is not trusted either.
    let app = axum::Router::new().route("/shards/{id}", get(|| async { "hello" }));
    let (base, stop, task) = spawn_router(app).await;
    let remote = RemoteShardStore::new(&base, plain(SECRET));
    assert!(matches!(
        remote.get(id).await,
        Err(DatanodeError::Corrupt { .. })
    ));
    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn corrupted_upload_is_refused_and_not_stored() {
    let mut server = TestServer::start(StoreOptions::default()).await;
    let remote = server.client();
    let id = sid(9);
    let path = format!("/shards/{}", encode_id(&id));
    let wrong_crc = cairn_types::crc32c(b"other bytes");
    let reply = remote
        .send(
            Method::PUT,
            &path,
            Bytes::from_static(b"shard"),
            Some(wrong_crc),
        )
        .await
        .unwrap();
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert!(matches!(
        RemoteShardStore::status_error(&reply, Some(id), Some(5)),
        DatanodeError::Corrupt { .. }
    ));
    assert!(matches!(
        server.local.get(id).await,
        Err(DatanodeError::NotFound(_))
    ));
    server.stop().await;
}

#[tokio::test]
async fn malformed_ids_and_queries_are_bad_requests() {
    let mut server = TestServer::start(StoreOptions::default()).await;
    let remote = server.client();
    for (method, path) in [
        (Method::GET, "/shards/zz".to_string()),
        (Method::GET, format!("/shards/{}", "0".repeat(46))),
        (Method::PUT, format!("/shards/{}", "g".repeat(48))),
        (Method::DELETE, "/shards/1234".to_string()),
        (Method::GET, "/shards?after=nothex".to_string()),
        (Method::GET, "/shards?limit=-1".to_string()),
    ] {
        let reply = remote
            .send(method.clone(), &path, Bytes::new(), None)
            .await
            .unwrap();
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{method} {path}");
    }
    server.stop().await;
}

#[tokio::test]
async fn too_large_maps_to_too_large() {
    let options = StoreOptions {
        max_shard_size: 1024,
        ..StoreOptions::default()
    };
    let mut server = TestServer::start(options).await;
    let remote = server.client();
    match remote.put(sid(1), Bytes::from(vec![0u8; 2000])).await {
        Err(DatanodeError::TooLarge(n)) => assert_eq!(n, 2000),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    remote
        .put(sid(1), Bytes::from(vec![0u8; 1024]))
        .await
        .unwrap();
    server.stop().await;
}

#[tokio::test]
async fn stopped_server_gives_retryable_error() {
    let mut server = TestServer::start(StoreOptions::default()).await;
    let remote = server.client();
    remote
        .put(sid(1), Bytes::from_static(b"abc"))
        .await
        .unwrap();
    // The pooled keep-alive connection is now idle; stop the server under it.
    server.stop().await;
    for err in [
        remote.get(sid(1)).await.unwrap_err(),
        remote
            .put(sid(2), Bytes::from_static(b"d"))
            .await
            .unwrap_err(),
        remote.stats().await.unwrap_err(),
    ] {
        assert!(err.is_retryable(), "{err:?}");
        assert!(!matches!(err, DatanodeError::NotFound(_)));
    }
}

#[tokio::test]
async fn unresponsive_server_times_out() {
    let app = axum::Router::new().route(
        "/stats",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "{}"
        }),
    );
    let (base, stop, task) = spawn_router(app).await;
    let remote =
        RemoteShardStore::new(&base, plain(SECRET)).with_timeout(Duration::from_millis(200));
    match remote.stats().await {
        Err(DatanodeError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::TimedOut),
        other => panic!("expected a timeout, got {other:?}"),
    }
    let _ = stop.send(());
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_puts_through_remote_client() {
    let mut server = TestServer::start(StoreOptions::default()).await;
    let remote = Arc::new(server.client());
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..64u32 {
        let remote = remote.clone();
        tasks.spawn(async move {
            let data = Bytes::from(vec![n as u8; 1000 + n as usize * 37]);
            let info = remote.put(sid(n), data.clone()).await.unwrap();
            assert_eq!(info.len, data.len() as u64);
            assert_eq!(remote.get(sid(n)).await.unwrap(), data);
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let listed = remote.list(None, usize::MAX).await.unwrap();
    assert_eq!(listed.len(), 64);
    assert_eq!(remote.stats().await.unwrap().shards, 64);
    server.stop().await;
}

#[tokio::test]
async fn list_pages_past_the_server_cap() {
    let mut server = TestServer::start(StoreOptions::default()).await;
    let remote = server.client();
    let n = crate::server::MAX_LIST_LIMIT as u32 + 5;
    let mut tasks = tokio::task::JoinSet::new();
    let local = server.local.clone();
    for chunk in 0..8u32 {
        let local = local.clone();
        tasks.spawn(async move {
            for i in (chunk..n).step_by(8) {
                local.put(sid(i), Bytes::new()).await.unwrap();
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let all = remote.list(None, usize::MAX).await.unwrap();
    assert_eq!(all.len(), n as usize);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    // 10_002 shards follow all[2]; ask for one fewer than that, over two server pages.
    let some = remote.list(Some(all[2].id), 10_001).await.unwrap();
    assert_eq!(some.len(), 10_001);
    assert_eq!(some[0].id, all[3].id);
    assert_eq!(some.last().unwrap().id, all[n as usize - 2].id);
    server.stop().await;
}

/// Ids spread over all Merkle partitions.
fn spread_id(n: u32) -> ShardId {
    let object = (n as u128 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
    ShardId::new(ObjectId(object), 0, n % 6)
}

#[tokio::test]
async fn merkle_and_deep_scrub_over_the_wire_match_the_local_store() {
    use crate::merkle::{MerkleSummary, NodePath};
    use std::os::unix::fs::FileExt;

    let mut server = TestServer::start(StoreOptions::default()).await;
    let remote = server.client();
    for n in 0..400 {
        remote
            .put(spread_id(n), Bytes::from(vec![n as u8; 100 + n as usize]))
            .await
            .unwrap();
    }
    let roots = remote.merkle_roots().await.unwrap();
    assert_eq!(roots, server.local.merkle_roots().await.unwrap());
    assert_eq!(
        roots,
        MerkleSummary::build(remote.list(None, usize::MAX).await.unwrap()).roots()
    );
    for (p, path) in [(0u8, ""), (17, "3"), (200, "ab"), (255, "fff"), (99, "012")] {
        let path = NodePath::parse(path).unwrap();
        assert_eq!(
            remote.merkle_node(p, path).await.unwrap(),
            server.local.merkle_node(p, path).await.unwrap(),
            "{p}/{path}"
        );
    }

    // Damage one payload on disk; a deep scrub through the client quarantines it.
    let victim = spread_id(123);
    let loc = server
        .local
        .shared()
        .read_state()
        .index
        .get(&victim)
        .unwrap();
    let seg = server
        .local
        .dir()
        .join(crate::segment::segment_file_name(loc.segment));
    let f = std::fs::OpenOptions::new().write(true).open(seg).unwrap();
    f.write_all_at(b"rot", loc.offset + 10).unwrap();
    let expected = MerkleSummary::build(remote.list(None, usize::MAX).await.unwrap());
    let clean = crate::diff_against_store(&expected, &remote).await.unwrap();
    assert!(clean.is_clean());
    assert_eq!(clean.requests, 1, "a clean diff is one request");
    let report = remote.deep_scrub(1 << 30).await.unwrap();
    assert_eq!(report.corrupt, vec![victim]);
    assert_eq!(report.shards_checked, 400);
    assert!(matches!(
        remote.get(victim).await,
        Err(DatanodeError::NotFound(_))
    ));
    let d = crate::diff_against_store(&expected, &remote).await.unwrap();
    assert_eq!(d.missing, vec![victim]);
    assert!(d.extra.is_empty() && d.changed.is_empty());
    // The roots, then one node per inner level and the leaf.
    assert_eq!(d.requests, 1 + crate::merkle::DEPTH as u64 + 1);
    let after = remote.merkle_roots().await.unwrap();
    let p = crate::merkle::partition_of(&victim) as usize;
    assert_ne!(after[p], roots[p]);
    assert_eq!(
        after,
        MerkleSummary::build(remote.list(None, usize::MAX).await.unwrap()).roots()
    );
    server.stop().await;
}

#[tokio::test]
async fn malformed_merkle_and_scrub_requests_are_bad_requests() {
    let mut server = TestServer::start(StoreOptions::default()).await;
    let remote = server.client();
    for (method, path) in [
        (Method::GET, "/merkle/256"),
        (Method::GET, "/merkle/-1"),
        (Method::GET, "/merkle/+5"),
        (Method::GET, "/merkle/0005"),
        (Method::GET, "/merkle/abc"),
        (Method::GET, "/merkle/1/g"),
        (Method::GET, "/merkle/1/0000"),
        (Method::GET, "/merkle/1/A"),
        (Method::GET, "/merkle/1/%20"),
        (Method::GET, "/merkle/%ff/1"),
        (Method::POST, "/scrub/deep"),
        (Method::POST, "/scrub/deep?rate=fast"),
        (Method::POST, "/scrub/deep?rate=-1"),
    ] {
        let reply = remote
            .send(method.clone(), path, Bytes::new(), None)
            .await
            .unwrap();
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{method} {path}");
    }
    for path in ["/merkle", "/merkle/0", "/merkle/255/fff", "/merkle/7/0a"] {
        let reply = remote
            .send(Method::GET, path, Bytes::new(), None)
            .await
            .unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{path}");
    }
    let wrong = RemoteShardStore::new(&server.base, plain("wrong"));
    for result in [
        wrong.merkle_roots().await.map(|_| ()),
        wrong
            .merkle_node(3, crate::merkle::NodePath::ROOT)
            .await
            .map(|_| ()),
        wrong.deep_scrub(0).await.map(|_| ()),
    ] {
        match result {
            Err(DatanodeError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::PermissionDenied),
            other => panic!("expected PermissionDenied, got {other:?}"),
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn inconsistent_merkle_replies_are_refused() {
    let zero = "0".repeat(64);
    let one = format!("{}1", "0".repeat(63));
    let children: Vec<String> = vec![zero.clone(); 16];
    let inner = serde_json::json!({ "hash": one, "children": children }).to_string();
    // A leaf whose entry lies in another partition than the one asked for.
    // Its hash is right, so only the placement check can refuse it.
    let stray_id = ShardId::from_bytes(&[9u8; 24]);
    let stray_hash = crate::merkle::leaf_hash(&[crate::ShardInfo {
        id: stray_id,
        len: 1,
        crc32c: 0,
    }]);
    let entries = vec![serde_json::json!({ "id": encode_id(&stray_id), "len": 1, "crc32c": 0 })];
    let leaf =
        serde_json::json!({ "hash": hex::encode(stray_hash), "entries": entries }).to_string();
    let app = axum::Router::new()
        .route("/merkle/{p}", get(move || async move { inner }))
        .route("/merkle/{p}/{path}", get(move || async move { leaf }))
        .route(
            "/merkle",
            get(|| async { r#"{"partitions":256,"fanout":16,"depth":2,"roots":[]}"# }),
        );
    let (base, stop, task) = spawn_router(app).await;
    let remote = RemoteShardStore::new(&base, plain(SECRET));
    let leaf_path = crate::merkle::NodePath::parse("123").unwrap();
    for result in [
        remote.merkle_roots().await.map(|_| ()),
        remote
            .merkle_node(1, crate::merkle::NodePath::ROOT)
            .await
            .map(|_| ()),
        remote.merkle_node(1, leaf_path).await.map(|_| ()),
        // A leaf reply for an inner path is the wrong kind of node.
        remote
            .merkle_node(1, crate::merkle::NodePath::parse("12").unwrap())
            .await
            .map(|_| ()),
    ] {
        match result {
            Err(DatanodeError::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::InvalidData),
            other => panic!("expected InvalidData, got {other:?}"),
        }
    }
    let _ = stop.send(());
    task.abort();
}

/// Figures for the docs: JSON bytes of the replies a clean and a one-shard diff fetch, for
/// 100k shards, against the JSON listing of all of them. `--nocapture` prints them.
#[test]
fn wire_figures_for_100k_shards() {
    use crate::merkle::{diff_summaries, MerkleSummary, NodePath, DEPTH, FANOUT, PARTITIONS};
    use crate::server::{WireNode, WireRoots, WireShardInfo};

    let infos: Vec<crate::ShardInfo> = (0..100_000)
        .map(|n| crate::ShardInfo {
            id: spread_id(n),
            len: 1 << 20,
            crc32c: n.wrapping_mul(0x2545_F491),
        })
        .collect();
    let summary = MerkleSummary::build(infos.iter().copied());
    let listing: usize = infos
        .chunks(crate::server::MAX_LIST_LIMIT)
        .map(|page| {
            let wire: Vec<WireShardInfo> = page.iter().map(WireShardInfo::from).collect();
            serde_json::to_vec(&wire).unwrap().len()
        })
        .sum();
    let roots = serde_json::to_vec(&WireRoots {
        partitions: PARTITIONS,
        fanout: FANOUT,
        depth: DEPTH,
        roots: summary.roots().iter().map(hex::encode).collect(),
    })
    .unwrap()
    .len();
    // One differing shard: the roots, then each node down to its leaf.
    let victim = infos[4242].id;
    let p = crate::merkle::partition_of(&victim);
    let tree = summary.partition(p);
    let nibbles: Vec<u8> = victim.to_bytes()[1..3]
        .iter()
        .flat_map(|b| [b >> 4, b & 0xf])
        .take(DEPTH)
        .collect();
    let mut one = roots;
    for level in 0..=DEPTH {
        let path = NodePath::new(&nibbles[..level]).unwrap();
        one += serde_json::to_vec(&WireNode::from(&tree.node(path)))
            .unwrap()
            .len();
    }
    let mut edited = infos.clone();
    edited.remove(4242);
    let d = diff_summaries(&summary, &MerkleSummary::build(edited));
    assert_eq!(d.missing, vec![victim]);
    println!(
        "100k shards, JSON on the wire: full listing {listing} B in {} requests; clean diff {roots} B \
         in 1 request; one missing shard {one} B in {} requests",
        infos.len().div_ceil(crate::server::MAX_LIST_LIMIT),
        2 + DEPTH,
    );
    assert!(roots * 100 < listing);
    assert!(one * 50 < listing);
}
