//! Rate limits on the S3 listener of a real server, driven by aws-sdk-s3 with retries off
//! (so every answer is seen): a key limited with `cairn key set-limit` to 20 requests a
//! second and driven at 200 gets about its rate through and 503 SlowDown with Retry-After
//! for the rest, while another key at the same rate is never refused; the throttling
//! metric counts the refusals, `cairn key list` shows the limit, and clearing it restores
//! full speed. A bytes-per-second limit lets one large body through and refuses the next
//! request until the debt is paid; a per-address limit throttles every client of one
//! address, signed or anonymous. In a cluster, a limit set through one node is enforced by
//! every gateway within a heartbeat or two, each gateway on its own requests.

use std::time::{Duration, Instant};

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use cairn_tests::cluster::Cluster;
use tokio::task::JoinSet;

use crate::common::*;

/// A client for `ak`/`sk` that does not retry.
fn key_client(server: &Server, ak: &str, sk: &str) -> Client {
    let conf = client_with(server, ak, sk, "us-east-1")
        .config()
        .to_builder()
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .build();
    Client::from_conf(conf)
}

/// Creates an access key named `name` through `cairn key create`; its key pair.
fn create_key(server: &Server, name: &str) -> (String, String) {
    let (ok, out) = server.cairn_key(&["create", name]);
    assert!(ok, "{out}");
    let field = |label: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(label))
            .unwrap_or_else(|| panic!("no {label:?} in {out}"))
            .trim()
            .to_string()
    };
    (field("access key:"), field("secret key:"))
}

/// The OPS/S and BYTES/S columns of `ak` in `cairn key list`.
fn listed_limits(server: &Server, ak: &str) -> (String, String) {
    let (ok, out) = server.cairn_key(&["list"]);
    assert!(ok, "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("{ak}\t")))
        .unwrap_or_else(|| panic!("{ak} not listed: {out}"));
    let cols: Vec<&str> = line.split('\t').collect();
    assert_eq!(cols.len(), 6, "{line}");
    (cols[4].to_string(), cols[5].to_string())
}

/// What one request got.
enum Answer {
    Ok,
    /// 503 SlowDown and its Retry-After (None: missing or not a whole number ≥ 1).
    SlowDown(Option<u64>),
    Other(String),
}

/// How a run went.
#[derive(Debug, Default)]
struct Tally {
    sent: usize,
    ok: usize,
    slow_down: usize,
    /// SlowDown answers without a valid Retry-After.
    bad_retry_after: usize,
    other: Vec<String>,
    /// Slowest successful answer.
    max_ok_latency: Duration,
}

fn answer<O, E>(r: Result<O, aws_sdk_s3::error::SdkError<E, HttpResponse>>) -> Answer
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug,
{
    match r {
        Ok(_) => Answer::Ok,
        Err(e) => {
            let raw = e.raw_response();
            let status = raw.map(|r| r.status().as_u16());
            if code_of(&e).as_deref() == Some("SlowDown") && status == Some(503) {
                let retry = raw
                    .and_then(|r| r.headers().get("retry-after"))
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .filter(|s| *s >= 1);
                Answer::SlowDown(retry)
            } else {
                Answer::Other(format!("{status:?} {:?}", code_of(&e)))
            }
        }
    }
}

/// ListBuckets with `s3`, `per_sec` times a second for `run`, each in its own task (an
/// open loop: a refused or slow answer does not slow the sender).
async fn drive(s3: Client, per_sec: u32, run: Duration) -> Tally {
    let mut tick = tokio::time::interval(Duration::from_secs(1) / per_sec);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = JoinSet::new();
    let start = Instant::now();
    let mut tally = Tally::default();
    while start.elapsed() < run {
        tick.tick().await;
        let s3 = s3.clone();
        tasks.spawn(async move {
            let sent = Instant::now();
            let a = answer(s3.list_buckets().send().await);
            (a, sent.elapsed())
        });
        tally.sent += 1;
    }
    while let Some(done) = tasks.join_next().await {
        let (a, took) = done.expect("request task");
        match a {
            Answer::Ok => {
                tally.ok += 1;
                tally.max_ok_latency = tally.max_ok_latency.max(took);
            }
            Answer::SlowDown(retry) => {
                tally.slow_down += 1;
                if retry.is_none() {
                    tally.bad_retry_after += 1;
                }
            }
            Answer::Other(what) => tally.other.push(what),
        }
    }
    tally
}

fn throttled(server: &Server, ak: &str, reason: &str) -> f64 {
    server
        .metric(&format!(
            "cairn_s3_throttled_total{{key=\"{ak}\",reason=\"{reason}\"}}"
        ))
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_over_its_limit_is_slowed_down_and_another_key_is_not() {
    let server = Server::start();
    let (a_ak, a_sk) = create_key(&server, "limited");
    let (b_ak, b_sk) = create_key(&server, "unlimited");
    let (ok, out) = server.cairn_key(&["set-limit", &a_ak, "--ops-per-sec", "20"]);
    assert!(ok, "{out}");
    assert!(out.contains("requests per second 20"), "{out}");
    assert_eq!(
        listed_limits(&server, &a_ak),
        ("20".into(), "default".into())
    );
    assert_eq!(
        listed_limits(&server, &b_ak),
        ("default".into(), "default".into())
    );

    let run = Duration::from_secs(5);
    let (a, b) = tokio::join!(
        drive(key_client(&server, &a_ak, &a_sk), 200, run),
        drive(key_client(&server, &b_ak, &b_sk), 200, run)
    );
    println!("limited key at 200/s for 5 s: {a:?}");
    println!("other key at 200/s for 5 s: {b:?}");
    assert!(a.other.is_empty() && b.other.is_empty(), "{a:?} {b:?}");
    // The burst (20) plus 20 a second for the five seconds the requests arrive over.
    let expected = 20 + 20 * 5;
    assert!(
        (expected - 25..=expected + 15).contains(&a.ok),
        "{} requests of the limited key succeeded, expected about {expected}",
        a.ok
    );
    assert_eq!(a.ok + a.slow_down, a.sent);
    assert!(a.slow_down >= a.sent / 2, "{a:?}");
    assert_eq!(a.bad_retry_after, 0, "every SlowDown carries Retry-After");
    // The other key is not touched by the first one's limit.
    assert_eq!(b.slow_down, 0, "{b:?}");
    assert_eq!(b.ok, b.sent);
    assert!(b.sent >= 900, "{b:?}");
    // Every refusal is counted, per key and reason; none for the other key.
    assert_eq!(throttled(&server, &a_ak, "ops"), a.slow_down as f64);
    assert_eq!(throttled(&server, &b_ak, "ops"), 0.0);

    // Cleared: full speed again.
    let (ok, out) = server.cairn_key(&["set-limit", &a_ak, "--clear"]);
    assert!(ok, "{out}");
    assert_eq!(
        listed_limits(&server, &a_ak),
        ("default".into(), "default".into())
    );
    let again = drive(
        key_client(&server, &a_ak, &a_sk),
        200,
        Duration::from_secs(2),
    )
    .await;
    println!("the same key after --clear: {again:?}");
    assert_eq!(again.slow_down, 0, "{again:?}");
    assert_eq!(again.ok, again.sent);

    // Bad input is refused with a reason, never half-applied.
    let (ok, out) = server.cairn_key(&["set-limit", &a_ak, "--ops-per-sec", "lots"]);
    assert!(!ok && out.contains("unlimited"), "{out}");
    let (ok, out) = server.cairn_key(&["set-limit", "NOSUCHKEY0000000"]);
    assert!(!ok && out.contains("--clear"), "{out}");
    let (ok, out) = server.cairn_key(&["set-limit", "NOSUCHKEY0000000", "--ops-per-sec", "5"]);
    assert!(!ok && out.contains("does not exist"), "{out}");
}

/// The Retry-After of a SlowDown, or a panic naming what came instead.
fn slow_down_secs(a: Answer) -> u64 {
    match a {
        Answer::SlowDown(Some(s)) => s,
        Answer::SlowDown(None) => panic!("SlowDown without a valid Retry-After"),
        Answer::Ok => panic!("admitted, expected SlowDown"),
        Answer::Other(what) => panic!("expected SlowDown, got {what}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bytes_limit_admits_a_large_body_then_refuses_until_the_debt_is_paid() {
    let server = Server::start();
    let (ak, sk) = create_key(&server, "bytes");
    let (ok, out) = server.cairn_key(&["set-limit", &ak, "--bytes-per-sec", "100KB"]);
    assert!(ok, "{out}");
    assert_eq!(
        listed_limits(&server, &ak),
        ("default".into(), "100000".into())
    );
    let s3 = key_client(&server, &ak, &sk);
    s3.create_bucket().bucket("metered").send().await.unwrap();

    // 300 kB up: admitted (the bucket held a second's worth), two seconds of debt.
    let body = random_bytes(300_000, 7);
    s3.put_object()
        .bucket("metered")
        .key("big")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    let wait = slow_down_secs(answer(s3.list_buckets().send().await));
    println!("after a 300 kB PUT at 100 kB/s: Retry-After {wait}");
    assert!((1..=2).contains(&wait), "Retry-After {wait}");
    tokio::time::sleep(Duration::from_secs(wait)).await;

    // 300 kB down: admitted, charged after the answer; the next request waits again.
    let got = s3
        .get_object()
        .bucket("metered")
        .key("big")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        &body[..]
    );
    let wait = slow_down_secs(answer(s3.list_buckets().send().await));
    println!("after a 300 kB GET at 100 kB/s: Retry-After {wait}");
    assert!((2..=3).contains(&wait), "Retry-After {wait}");
    assert!(throttled(&server, &ak, "bytes") >= 2.0);
    tokio::time::sleep(Duration::from_secs(wait)).await;
    assert!(matches!(answer(s3.list_buckets().send().await), Answer::Ok));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_over_its_limit_is_slowed_down_signed_or_not() {
    let server = Server::start_with(&["--ip-ops-per-sec", "20"]);
    let t = drive(no_retry(&server), 100, Duration::from_secs(2)).await;
    println!("one address at 100/s for 2 s, limited to 20/s: {t:?}");
    assert!(t.other.is_empty(), "{t:?}");
    let expected = 20 + 20 * 2;
    assert!(
        (expected - 15..=expected + 10).contains(&t.ok),
        "{} succeeded, expected about {expected}",
        t.ok
    );
    assert_eq!(t.bad_retry_after, 0);
    let ip_throttled = || {
        server
            .metric("cairn_s3_ip_throttled_total{reason=\"ops\"}")
            .unwrap_or(0.0)
    };
    assert_eq!(ip_throttled(), t.slow_down as f64);

    // Anonymous requests count too, before any authentication.
    let mut refused = 0;
    for _ in 0..40 {
        let r = raw_request(
            server.s3,
            b"GET /anybucket HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .expect("anonymous request");
        if r.status == 503 {
            assert_eq!(
                r.error_code().as_deref(),
                Some("SlowDown"),
                "{}",
                r.body_str()
            );
            assert!(r.header("retry-after").is_some());
            refused += 1;
        }
    }
    assert!(refused >= 10, "{refused} of 40 anonymous requests refused");
    assert_eq!(ip_throttled(), (t.slow_down + refused) as f64);
}

/// `n` ListBuckets with `s3` at once: how many succeeded and how many got SlowDown.
async fn burst(s3: &Client, n: usize) -> (usize, usize) {
    let answers =
        futures::future::join_all((0..n).map(|_| async { answer(s3.list_buckets().send().await) }))
            .await;
    let mut counts = (0, 0);
    for a in answers {
        match a {
            Answer::Ok => counts.0 += 1,
            Answer::SlowDown(_) => counts.1 += 1,
            Answer::Other(what) => panic!("{what}"),
        }
    }
    counts
}

/// Bursts of 15 on `s3`, a second apart (the bucket refills in between), until one's
/// SlowDown count is zero (`refused == false`) or not; how long that took.
async fn until_bursts(s3: &Client, refused: bool, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let (_, slow) = burst(s3, 15).await;
        if (slow > 0) == refused {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "still {slow} SlowDown after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_limit_set_through_one_node_is_enforced_by_every_gateway_on_its_own() {
    let c = Cluster::start(2, 3, &["--ec", "4+2"]);
    let (ak, sk) = create_key(c.node(0), "clustered");
    let on = |i: usize| key_client(c.node(i), &ak, &sk);
    let within = Duration::from_secs(10);
    // The key reaches node 2 within a heartbeat or two.
    let start = Instant::now();
    while let Answer::Other(what) = answer(on(1).list_buckets().send().await) {
        assert!(
            start.elapsed() < within,
            "the key never reached node 2: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (ok, out) = c
        .node(0)
        .cairn_key(&["set-limit", &ak, "--ops-per-sec", "5"]);
    assert!(ok, "{out}");
    let took = until_bursts(&on(1), true, within).await;
    println!("limit set through node 1: enforced on node 2 after {took:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");

    // Per gateway: each admits its own burst of five.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (first, second) = (on(0), on(1));
    let (a, b) = tokio::join!(burst(&first, 10), burst(&second, 10));
    println!("10 at once on each gateway, limit 5/s: node 1 {a:?}, node 2 {b:?}");
    assert!(
        (5..=6).contains(&a.0) && (5..=6).contains(&b.0),
        "{a:?} {b:?}"
    );

    // Cleared through node 2: node 1 is at full speed again soon after.
    let (ok, out) = c.node(1).cairn_key(&["set-limit", &ak, "--clear"]);
    assert!(ok, "{out}");
    let took = until_bursts(&on(0), false, within).await;
    println!("limit cleared through node 2: lifted on node 1 after {took:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
}
