//! One benchmark over several endpoints: two in-process null servers stand for two gateways
//! of one cluster. Each worker keeps to its own endpoint (and uploads and reads its own
//! objects there), so two independent null servers serve a GET workload without errors.

use std::path::Path;
use std::time::Duration;

use cairn_bench::{BenchArgs, NullConfig, NullServer, Op};

mod common;
use common::read_report;

/// [`common::args_for`], smaller: 16 KiB objects, 3 workers, 1 s.
fn args_for(endpoints: &str, op: Op, json: &Path) -> BenchArgs {
    let mut a = common::args_for(endpoints, op, json);
    a.size = 16 << 10;
    a.concurrency = 3;
    a.duration = Duration::from_millis(1000);
    a.objects = 12;
    a
}

async fn null_server() -> NullServer {
    NullServer::start("127.0.0.1:0", NullConfig::default())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_spread_over_two_null_servers() {
    let (a, b) = (null_server().await, null_server().await);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("get.json");
    let list = format!("{},{}", a.endpoint(), b.endpoint());
    cairn_bench::run_with_self_args(args_for(&list, Op::Get, &json), &[])
        .await
        .unwrap();
    let r = read_report(&json);
    assert_eq!(r.target.endpoints, [a.endpoint(), b.endpoint()]);
    assert_eq!(r.target.endpoint, list);
    assert_eq!(r.args.endpoint.to_string(), list);
    let run = &r.target.runs[0];
    assert!(run.ops > 0, "{run:?}");
    assert_eq!(run.errors, 0, "{:?}", run.errors_by_kind);
    assert_eq!(run.bytes, run.ops * (16 << 10));
    // Workers 0 and 2 use a, worker 1 uses b. b saw nothing but worker 1's uploads of its
    // 4 objects (1, 4, 7, 10) and its GETs: more than 4 requests means it served GETs.
    assert!(b.requests() > 4, "b served {} requests", b.requests());
    // a also had the bucket created (1), its 8 objects uploaded and, at the end, a listing, a
    // DeleteObjects and the bucket deleted (3): more than 12 means it served GETs too.
    assert!(
        a.requests() > 1 + 8 + 3,
        "a served {} requests",
        a.requests()
    );
    // Both answered /metrics: the server CPU is the sum of the two readings.
    assert_eq!(run.cpu.server_source.as_deref(), Some("metrics"));
    assert_eq!(run.cpu.server_processes, Some(2));
    let summary = r.summary();
    assert!(
        summary.contains(&format!(
            "target  {} (2 workers), {} (1 worker); server CPU: sum of 2 processes (metrics)",
            a.endpoint(),
            b.endpoint()
        )),
        "{summary}"
    );

    // Server pids, summed: this process and a child.
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let json = dir.path().join("put.json");
    let mut args = args_for(&list, Op::Put, &json);
    args.server_pid = vec![std::process::id(), child.id()];
    let (before_a, before_b) = (a.requests(), b.requests());
    let result = cairn_bench::run_with_self_args(args, &[]).await;
    child.kill().unwrap();
    child.wait().unwrap();
    result.unwrap();
    let r = read_report(&json);
    let run = &r.target.runs[0];
    assert!(run.ops > 0 && run.errors == 0, "{run:?}");
    assert_eq!(run.cpu.server_source.as_deref(), Some("pid"));
    assert_eq!(run.cpu.server_processes, Some(2));
    assert!(a.requests() > before_a && b.requests() > before_b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_entry_stops_the_benchmark_before_any_request() {
    let a = null_server().await;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bad.json");
    let list = format!("{},ftp://127.0.0.1:21", a.endpoint());
    let err = cairn_bench::run_with_self_args(args_for(&list, Op::Put, &json), &[])
        .await
        .expect_err("ftp is not an S3 endpoint");
    let text = format!("{err:#}");
    assert!(
        text.contains("entry 2 of 2") && text.contains("ftp://127.0.0.1:21"),
        "{text}"
    );
    assert_eq!(a.requests(), 0);
    assert!(!json.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_null_baseline_is_one_server_with_the_same_concurrency() {
    let (a, b) = (null_server().await, null_server().await);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("baseline.json");
    let list = format!("{},{}", a.endpoint(), b.endpoint());
    let mut args = args_for(&list, Op::Put, &json);
    args.duration = Duration::from_millis(700);
    args.baseline_null = true;
    let program = Path::new(env!("CARGO_BIN_EXE_cairn-bench"));
    let r = cairn_bench::benchmark(&args, program, &[]).await.unwrap();
    let null = r.null.as_ref().expect("a null baseline");
    assert_eq!(null.endpoints.len(), 1);
    assert!(!r.target.endpoints.contains(&null.endpoints[0]));
    assert_eq!(r.target.endpoints.len(), 2);
    assert!(null.runs[0].ops > 0 && null.runs[0].errors == 0);
    assert_eq!(null.runs[0].cpu.server_processes, Some(1));
    let summary = r.summary();
    assert!(
        summary.contains(&format!("null    {} (3 workers)", null.endpoints[0])),
        "{summary}"
    );
    assert!(a.requests() > 0 && b.requests() > 0);
}
