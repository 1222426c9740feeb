//! End-to-end: the benchmark against the in-process null server on a loopback port chosen at
//! run time, with the JSON report written to a temporary directory and read back.

use std::path::Path;
use std::time::Duration;

use cairn_bench::{NullConfig, NullServer, Op, Payload, Report};

mod common;
use common::{args_for, read_report};

fn check_clean(r: &Report, op: Op) {
    assert_eq!(r.tool, "cairn-bench");
    assert_eq!(r.args.op, op);
    assert_eq!(r.target.runs.len(), r.args.runs);
    for run in &r.target.runs {
        assert!(run.ops > 0, "{op}: no operations: {run:?}");
        assert_eq!(run.errors, 0, "{op}: errors: {:?}", run.errors_by_kind);
        assert!(run.latency.p50_ms > 0.0 && run.latency.max_ms >= run.latency.p99_ms);
        assert!(!run.per_second.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_then_get_against_null_server() {
    let server = NullServer::start("127.0.0.1:0", NullConfig::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();

    let json = dir.path().join("put.json");
    let mut a = args_for(&server.endpoint(), Op::Put, &json);
    a.keep = true;
    a.bucket = Some("kept".into());
    cairn_bench::run_with_self_args(a, &[]).await.unwrap();
    let r = read_report(&json);
    check_clean(&r, Op::Put);
    let run = &r.target.runs[0];
    assert!(run.bytes > 0 && run.bytes == run.ops * (64 << 10));
    assert!(run.mib_per_s > 0.0);
    assert!(r.null.is_none() && r.ratios.is_none());
    // The null server's /metrics gives the (whole test process's) CPU time.
    assert_eq!(run.cpu.server_source.as_deref(), Some("metrics"));
    assert!(run.cpu.client_seconds_per_gib.is_some() && run.cpu.server_seconds.is_some());
    // --keep left the objects there (those PUT in the warm-up too, which are not counted).
    let kept = list_count(&server, "kept").await;
    assert!(
        kept >= run.ops as usize && kept > 0,
        "{kept} kept, {} counted",
        run.ops
    );

    // LIST of what is there (--list-prefix): nothing uploaded, every page has keys; a
    // prefix with nothing under it is an error, not a fast empty listing.
    let json = dir.path().join("list.json");
    let mut a = args_for(&server.endpoint(), Op::List, &json);
    a.bucket = Some("kept".into());
    a.list_prefix = Some("bench-".into());
    a.list_page = 7;
    // (The null server answers every bucket PUT as a creation: keep it.)
    a.keep = true;
    a.objects = 0;
    cairn_bench::run_with_self_args(a, &[]).await.unwrap();
    let r = read_report(&json);
    check_clean(&r, Op::List);
    assert_eq!(list_count(&server, "kept").await, kept, "nothing uploaded");
    let mut a = args_for(&server.endpoint(), Op::List, &json);
    a.bucket = Some("kept".into());
    a.list_prefix = Some("none/".into());
    a.allow_errors = true;
    a.keep = true;
    cairn_bench::run_with_self_args(a, &[]).await.unwrap();
    let r = read_report(&json);
    assert!(
        r.target.runs[0].errors > 0,
        "an empty listing counted as fast"
    );

    // GET, with signed payloads and credentials (the null server ignores them), 2 runs.
    let json = dir.path().join("get.json");
    let mut a = args_for(&server.endpoint(), Op::Get, &json);
    a.payload = Payload::Signed;
    a.access_key = Some("AKIDEXAMPLE".into());
    a.secret_key = Some("secret".into());
    a.runs = 2;
    a.html = Some(dir.path().join("get.html"));
    a.metrics_url = vec![format!("{}/metrics", server.endpoint())];
    cairn_bench::run_with_self_args(a, &[]).await.unwrap();
    let r = read_report(&json);
    check_clean(&r, Op::Get);
    assert_eq!(r.target.runs.len(), 2);
    assert!(r
        .target
        .runs
        .iter()
        .all(|run| run.bytes == run.ops * (64 << 10)));
    assert_eq!(r.target.median.runs, 2);
    assert!(r
        .target
        .runs
        .iter()
        .all(|run| run.cpu.server_source.as_deref() == Some("metrics")));
    let html = std::fs::read_to_string(dir.path().join("get.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("<polyline"));
    // Clean-up removed the bucket's objects (and the bucket).
    assert_eq!(list_count(&server, &r.target.bucket).await, 0);
}

/// Keys in `bucket` as the null server lists them (through the crate's own client).
async fn list_count(server: &NullServer, bucket: &str) -> usize {
    let target = std::sync::Arc::new(
        cairn_bench::s3::Target::new(
            &server.endpoint(),
            false,
            None,
            "us-east-1",
            Payload::Unsigned,
        )
        .unwrap(),
    );
    let mut conn = cairn_bench::s3::Conn::new(target);
    let mut n = 0;
    let mut token = None;
    loop {
        let page = match conn.list_page(bucket, "", 7, token.as_deref()).await {
            Ok(p) => p,
            Err(e) if e.0.contains("NoSuchBucket") => return 0,
            Err(e) => panic!("listing: {e}"),
        };
        n += page.keys.len();
        token = page.next;
        if token.is_none() {
            return n;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_get_bodies_are_errors() {
    let server = NullServer::start(
        "127.0.0.1:0",
        NullConfig {
            corrupt_gets: true,
            ..NullConfig::default()
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bad.json");
    let mut a = args_for(&server.endpoint(), Op::Get, &json);
    a.duration = Duration::from_millis(800);
    // Without --allow-errors the run fails...
    let err = cairn_bench::run_with_self_args(a.clone(), &[])
        .await
        .expect_err("corrupted bodies must fail the run");
    assert!(err.to_string().contains("operations failed"), "{err}");
    let r = read_report(&json);
    let run = &r.target.runs[0];
    assert!(run.errors > 0);
    assert_eq!(run.ops, 0, "no corrupted GET counts as a success");
    assert_eq!(
        run.errors_by_kind.get("get: crc mismatch"),
        Some(&run.errors)
    );
    // ...and with it the run succeeds but still reports them.
    a.allow_errors = true;
    cairn_bench::run_with_self_args(a, &[]).await.unwrap();
    assert!(read_report(&json).total_errors() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_delete_and_mixed() {
    let server = NullServer::start("127.0.0.1:0", NullConfig::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();

    let json = dir.path().join("list.json");
    let mut a = args_for(&server.endpoint(), Op::List, &json);
    a.objects = 25;
    a.list_page = 10;
    a.duration = Duration::from_millis(700);
    cairn_bench::run_with_self_args(a, &[]).await.unwrap();
    let r = read_report(&json);
    check_clean(&r, Op::List);
    let run = &r.target.runs[0];
    // Pages of 10, 10, 5 over and over: about 25 keys per 3 pages.
    assert!(run.items > 0);
    let per_page = run.items as f64 / run.ops as f64;
    assert!((7.0..=9.5).contains(&per_page), "{per_page} keys per page");

    let json = dir.path().join("delete.json");
    let mut a = args_for(&server.endpoint(), Op::Delete, &json);
    a.objects = 30;
    a.duration = Duration::from_secs(5);
    a.bucket = Some("del".into());
    a.keep = true;
    cairn_bench::run_with_self_args(a, &[]).await.unwrap();
    let r = read_report(&json);
    check_clean(&r, Op::Delete);
    let run = &r.target.runs[0];
    assert_eq!(run.ops, 30, "each prepared object deleted once");
    assert!(run.exhausted && run.elapsed_s < 5.0);
    assert_eq!(list_count(&server, "del").await, 0);

    let json = dir.path().join("mixed.json");
    let mut a = args_for(&server.endpoint(), Op::Mixed, &json);
    a.mix = cairn_bench::args::parse_mix("get=50,put=30,delete=20").unwrap();
    a.duration = Duration::from_millis(800);
    a.runs = 2;
    cairn_bench::run_with_self_args(a, &[]).await.unwrap();
    let r = read_report(&json);
    check_clean(&r, Op::Mixed);
    for run in &r.target.runs {
        let by = &run.by_op;
        assert!(
            by["get"].ops > 0 && by["put"].ops > 0 && by["delete"].ops > 0,
            "{by:?}"
        );
        assert_eq!(by.values().map(|k| k.ops).sum::<u64>(), run.ops);
        // Every GET and PUT moved a whole object.
        assert_eq!(by["get"].bytes + by["put"].bytes, run.bytes);
        assert_eq!(by["get"].bytes, by["get"].ops * (64 << 10));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baseline_null_child_process() {
    let server = NullServer::start("127.0.0.1:0", NullConfig::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("baseline.json");
    let mut a = args_for(&server.endpoint(), Op::Put, &json);
    a.duration = Duration::from_millis(700);
    a.baseline_null = true;
    // The test binary is not the bench binary: start the child from the crate's own binary.
    let program = Path::new(env!("CARGO_BIN_EXE_cairn-bench"));
    let r = cairn_bench::benchmark(&a, program, &[]).await.unwrap();
    check_clean(&r, Op::Put);
    let null = r.null.as_ref().expect("a null baseline");
    assert!(null.runs[0].ops > 0 && null.runs[0].errors == 0);
    assert_ne!(null.endpoint, r.target.endpoint);
    // The child's CPU is read from /proc by its pid.
    assert_eq!(null.runs[0].cpu.server_source.as_deref(), Some("pid"));
    let ratios = r.ratios.as_ref().expect("ratios");
    let t = ratios.throughput.unwrap();
    assert!(t > 0.0 && t.is_finite());
    cairn_bench::write_json(&r, &json).unwrap();
    let back = read_report(&json);
    assert_eq!(back.args, r.args);
    assert_eq!(back.target.runs[0].ops, r.target.runs[0].ops);
    assert_eq!(
        back.null.as_ref().unwrap().runs[0].bytes,
        null.runs[0].bytes
    );
    assert!((back.ratios.unwrap().throughput.unwrap() - t).abs() < 1e-9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_server_basic_calls() {
    let server = NullServer::start("127.0.0.1:0", NullConfig::default())
        .await
        .unwrap();
    let target = std::sync::Arc::new(
        cairn_bench::s3::Target::new(
            &server.endpoint(),
            false,
            None,
            "us-east-1",
            Payload::Unsigned,
        )
        .unwrap(),
    );
    let mut conn = cairn_bench::s3::Conn::new(target);
    assert!(conn.create_bucket("b").await.unwrap());
    let pool = cairn_bench::payload::Pool::new(1, 1000, false, 1);
    let buf = &pool.buffers[0];
    let keys: Vec<String> = (0..25).map(|i| format!("k/{i:03} &<x>")).collect();
    for k in &keys {
        let key = cairn_bench::s3::uri_encode(k);
        conn.put("b", &key, buf).await.unwrap();
    }
    // The odd characters survive the XML listing.
    let page = conn.list_page("b", "k/", 1000, None).await.unwrap();
    assert_eq!(page.keys, keys);
    let key0 = cairn_bench::s3::uri_encode(&keys[0]);
    conn.get("b", &key0, 1000, buf.crc32c).await.unwrap();
    let wrong = conn
        .get("b", &key0, 1000, buf.crc32c ^ 1)
        .await
        .unwrap_err();
    assert_eq!(wrong.0, "crc mismatch");
    let short = conn.get("b", &key0, 999, buf.crc32c).await.unwrap_err();
    assert_eq!(short.0, "length mismatch");
    let missing = conn.get("b", "nope", 1000, 0).await.unwrap_err();
    assert_eq!(missing.0, "http 404 NoSuchKey");
    assert_eq!(conn.delete_many("b", &keys[..20]).await.unwrap(), 0);
    assert_eq!(list_count(&server, "b").await, 5);
    conn.delete("b", &key0).await.unwrap();
    assert_eq!(list_count(&server, "b").await, 5, "already gone");
    conn.delete_bucket("b").await.unwrap();
    assert_eq!(list_count(&server, "b").await, 0);
}

/// A server that creates buckets and lists nothing but never answers anything else.
async fn stalling_server() -> std::net::SocketAddr {
    use http_body_util::Full;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|req: http::Request<_>| async move {
                    let bucket_call = req.uri().path().matches('/').count() == 1;
                    if !bucket_call {
                        std::future::pending::<()>().await;
                    }
                    let body = if req.method() == http::Method::GET {
                        "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>"
                    } else {
                        ""
                    };
                    Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                        bytes::Bytes::from_static(body.as_bytes()),
                    )))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_operations_time_out() {
    let addr = stalling_server().await;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("stall.json");
    let mut a = args_for(&format!("http://{addr}"), Op::Put, &json);
    a.duration = Duration::from_millis(1000);
    a.warmup = Duration::ZERO;
    a.timeout = Duration::from_millis(300);
    a.allow_errors = true;
    let started = std::time::Instant::now();
    cairn_bench::run_with_self_args(a, &[]).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let r = read_report(&json);
    let run = &r.target.runs[0];
    assert_eq!(run.ops, 0);
    // Two workers, each timing out every 300 ms for a second.
    let timeouts = run.errors_by_kind.get("put: timeout").copied().unwrap_or(0);
    assert!((4..=10).contains(&timeouts), "{:?}", run.errors_by_kind);
}
