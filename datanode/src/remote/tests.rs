use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use bytes::Bytes;
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
        let app = router(local.clone(), SECRET.to_string());
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
        RemoteShardStore::new(&self.base, SECRET.to_string())
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
    let task = tokio::spawn(serve(listener, app, async move {
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
        let bad = RemoteShardStore::new(&server.base, secret.to_string());
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
async fn corrupted_download_is_detected() {
    // A fake datanode whose reply bytes do not match the checksum header.
    let id = sid(7);
    let good_crc = format!("{:08x}", crc_fast::crc32_iscsi(b"hello world"));
    let app = axum::Router::new().route(
        "/shards/{id}",
        get(move || {
            let crc = good_crc.clone();
            async move { ([(CRC_HEADER, crc)], "hellO world") }
        }),
    );
    let (base, stop, task) = spawn_router(app).await;
    let remote = RemoteShardStore::new(&base, SECRET.to_string());
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
    let remote = RemoteShardStore::new(&base, SECRET.to_string());
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
    let wrong_crc = crc_fast::crc32_iscsi(b"other bytes");
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
        RemoteShardStore::new(&base, SECRET.to_string()).with_timeout(Duration::from_millis(200));
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
