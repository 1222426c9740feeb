//! Hostile connections against a real `cairn server`: 2,000 idle connections and 500
//! slowloris connections on the S3 port while an aws-sdk-s3 client keeps working (each of
//! its requests must answer within 1 s); the slow ones are cut at the header timeout and the
//! idle ones at the idle timeout. HTTPS (`--tls-cert`) with aws-cli, boto3 and a certificate
//! swapped on disk is in [`tls`].

mod tls;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::common::*;

const IDLE: usize = 2000;
const SLOW: usize = 500;
const HEADER_TIMEOUT: Duration = Duration::from_secs(3);
const IDLE_TIMEOUT: Duration = Duration::from_secs(8);
/// Slack for the server to notice and for this process to see the close.
const SLACK: Duration = Duration::from_secs(3);

/// Raises this process's open-file limit: the test holds ~2,600 sockets.
fn enough_descriptors() {
    let l = cairn_net::raise_nofile_limit().expect("raising the open-file limit");
    let need = (IDLE + SLOW + 200) as u64;
    assert!(
        l.soft >= need,
        "this test needs {need} descriptors; the open-file limit is {} (hard {:?})",
        l.soft,
        l.hard
    );
}

async fn connect(addr: SocketAddr) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match TcpStream::connect(addr).await {
            Ok(s) => return s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("connecting to {addr}: {e}"),
        }
    }
}

/// Waits until the server closes `s` (EOF or reset), for at most `max`; how long it took.
async fn until_closed(s: &mut TcpStream, max: Duration) -> Option<Duration> {
    let t = Instant::now();
    let mut buf = [0u8; 512];
    loop {
        let left = max.checked_sub(t.elapsed())?;
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(t.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// One slowloris connection: a request head one byte every 2–3 s, until the server cuts it;
/// returns the time from the first byte to the close, or None if it was never cut.
async fn slowloris(addr: SocketAddr, i: usize) -> Option<Duration> {
    let mut s = connect(addr).await;
    let head = format!("GET /hostile/k{i} HTTP/1.1\r\nHost: x\r\nX-Padding: ");
    let bytes = head.bytes().chain(std::iter::repeat(b'a'));
    let pause = Duration::from_millis(2000 + (i as u64 * 37) % 1000);
    let start = Instant::now();
    let mut buf = [0u8; 256];
    for b in bytes {
        if s.write_all(&[b]).await.is_err() {
            return Some(start.elapsed());
        }
        match tokio::time::timeout(pause, s.read(&mut buf)).await {
            Err(_) => {}
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => panic!("the server answered a partial head"),
        }
        if start.elapsed() > HEADER_TIMEOUT + 4 * SLACK {
            return None;
        }
    }
    None
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_and_slowloris_connections_do_not_starve_a_normal_client() {
    enough_descriptors();
    let server = Server::start_with(&[
        "--header-timeout",
        &HEADER_TIMEOUT.as_secs().to_string(),
        "--idle-timeout",
        &IDLE_TIMEOUT.as_secs().to_string(),
    ]);
    let addr = server.s3;
    let s3 = client(&server);
    s3.create_bucket().bucket("hostile").send().await.unwrap();
    let payload = random_bytes(256 << 10, 14);
    put_bytes(&s3, "hostile", "warm", &payload).await;

    // The normal client: PUT, GET and LIST in a loop until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let normal = {
        let (s3, stop, payload) = (s3.clone(), stop.clone(), payload.clone());
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let key = format!("k{}", i % 16);
                let t = Instant::now();
                put_bytes(&s3, "hostile", &key, &payload).await;
                latencies.push(("PUT", t.elapsed()));
                let t = Instant::now();
                let got = get_bytes(&s3, "hostile", &key).await;
                latencies.push(("GET", t.elapsed()));
                assert_eq!(got, payload);
                let t = Instant::now();
                let list = s3
                    .list_objects_v2()
                    .bucket("hostile")
                    .send()
                    .await
                    .expect("LIST");
                latencies.push(("LIST", t.elapsed()));
                assert!(list.key_count().unwrap_or(0) >= 1);
                i += 1;
            }
            latencies
        })
    };

    // 2,000 idle connections (no byte sent), opened 200 at a time.
    let gate = Arc::new(Semaphore::new(200));
    let started = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..IDLE {
        let gate = gate.clone();
        idle.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await.unwrap();
            let mut s = connect(addr).await;
            drop(permit);
            until_closed(&mut s, IDLE_TIMEOUT + 2 * SLACK).await
        }));
    }
    // 500 slowloris connections.
    let slow: Vec<_> = (0..SLOW)
        .map(|i| tokio::spawn(slowloris(addr, i)))
        .collect();

    let mut slow_closes = Vec::new();
    for t in slow {
        slow_closes.push(
            t.await
                .unwrap()
                .expect("a slowloris connection was never cut"),
        );
    }
    let mut idle_closes = Vec::new();
    let mut never = 0;
    for t in idle {
        match t.await.unwrap() {
            Some(d) => idle_closes.push(d),
            None => never += 1,
        }
    }
    assert_eq!(
        never,
        0,
        "idle connections never closed ({} closed)",
        idle_closes.len()
    );
    let hostile_for = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let latencies = normal.await.unwrap();

    slow_closes.sort();
    idle_closes.sort();
    let mut all: Vec<Duration> = latencies.iter().map(|(_, d)| *d).collect();
    all.sort();
    println!(
        "hostile: {IDLE} idle + {SLOW} slowloris connections for {:.1} s; normal client: {} requests, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        hostile_for.as_secs_f64(),
        all.len(),
        percentile(&all, 0.5).as_secs_f64() * 1e3,
        percentile(&all, 0.99).as_secs_f64() * 1e3,
        all.last().unwrap().as_secs_f64() * 1e3,
    );
    println!(
        "slowloris cut after {:.2}–{:.2} s (header timeout {} s); idle closed after {:.2}–{:.2} s (idle timeout {} s)",
        slow_closes[0].as_secs_f64(),
        slow_closes.last().unwrap().as_secs_f64(),
        HEADER_TIMEOUT.as_secs(),
        idle_closes[0].as_secs_f64(),
        idle_closes.last().unwrap().as_secs_f64(),
        IDLE_TIMEOUT.as_secs(),
    );
    for op in ["PUT", "GET", "LIST"] {
        let mut of: Vec<Duration> = latencies
            .iter()
            .filter(|(o, _)| *o == op)
            .map(|(_, d)| *d)
            .collect();
        of.sort();
        println!(
            "  {op}: {} requests, p50 {:.1} ms, max {:.1} ms",
            of.len(),
            percentile(&of, 0.5).as_secs_f64() * 1e3,
            of.last().unwrap().as_secs_f64() * 1e3
        );
    }
    for (op, d) in &latencies {
        assert!(*d < Duration::from_secs(1), "{op} took {d:?} under attack");
    }
    assert!(all.len() >= 30, "too few normal requests: {}", all.len());
    // Cut at the header timeout, counted from the first byte: not before, not much after.
    assert!(slow_closes[0] >= HEADER_TIMEOUT - Duration::from_millis(300));
    assert!(*slow_closes.last().unwrap() <= HEADER_TIMEOUT + SLACK);
    // Idle connections: closed at the idle timeout (counted from the accept).
    assert!(idle_closes[0] >= IDLE_TIMEOUT - Duration::from_millis(500));
    assert!(*idle_closes.last().unwrap() <= IDLE_TIMEOUT + 2 * SLACK);
    let timeouts = |reason: &str| {
        server
            .metric(&format!(
                "cairn_net_timeouts_total{{listener=\"s3\",reason=\"{reason}\"}}"
            ))
            .unwrap_or(0.0)
    };
    assert!(timeouts("header") >= SLOW as f64, "{}", server.metrics());
    assert!(timeouts("idle") >= IDLE as f64);
}
