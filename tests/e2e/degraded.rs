//! Degraded operation of the default server (six local datanodes, 4+2): 200 objects of mixed
//! sizes read back byte-exact with two datanodes stopped and again with bytes flipped inside
//! a datanode's segment files; the degraded reads show in `/metrics`. With three datanodes
//! stopped a PUT fails with a clear 503 and leaves nothing behind, and the server recovers
//! when they return. Datanodes are stopped and started with `cairn admin`, as an operator
//! would.

use std::time::{Duration, Instant};

use futures::{stream, StreamExt};

use crate::common::*;

const MIB: usize = 1 << 20;

/// Sizes of the 200 objects: the edges around inline storage and stripes, two large
/// objects, and a spread of small and medium ones (≈ 180 MiB in all).
fn sizes() -> Vec<usize> {
    let mut v = vec![
        0,
        1,
        (64 << 10) - 1,
        64 << 10,
        4 * MIB - 1,
        4 * MIB,
        4 * MIB + 1,
        50 * MIB,
        20 * MIB + 3,
    ];
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    while v.len() < 200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Half small (< 200 KiB), half up to 2 MiB.
        let cap = if x & 1 == 0 { 200 << 10 } else { 2 * MIB };
        v.push((x >> 8) as usize % cap);
    }
    v
}

fn key(i: usize) -> String {
    format!("mixed/{i:03}")
}

async fn check_all(s3: &aws_sdk_s3::Client, sizes: &[usize], when: &str) {
    let bad: Vec<String> = stream::iter(sizes.iter().copied().enumerate())
        .map(|(i, n)| async move {
            let got = get_bytes(s3, "deg", &key(i)).await;
            (got.len() != n || got != random_bytes(n, i as u64)).then(|| key(i))
        })
        .buffer_unordered(8)
        .filter_map(|x| async move { x })
        .collect()
        .await;
    assert!(bad.is_empty(), "wrong bytes {when}: {bad:?}");
}

fn degraded_reads(server: &Server) -> f64 {
    server
        .metric("cairn_degraded_reads_total")
        .expect("cairn_degraded_reads_total in /metrics")
}

/// Flips one byte every `step` bytes of every segment file of datanode `i`; returns how
/// many bytes were flipped.
fn flip_bytes(server: &Server, i: u32, step: u64) -> usize {
    use std::io::{Read, Seek, SeekFrom, Write};
    let dir = server.data.join("datanodes").join(format!("dn{i}"));
    let mut flipped = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let len = f.metadata().unwrap().len();
        let mut at = step / 2;
        while at < len {
            let mut b = [0u8];
            f.seek(SeekFrom::Start(at)).unwrap();
            f.read_exact(&mut b).unwrap();
            b[0] ^= 0xA5;
            f.seek(SeekFrom::Start(at)).unwrap();
            f.write_all(&b).unwrap();
            flipped += 1;
            at += step;
        }
        f.sync_all().unwrap();
    }
    flipped
}

#[tokio::test(flavor = "multi_thread")]
async fn mixed_objects_survive_stopped_datanodes_and_flipped_bytes() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("deg").send().await.unwrap();
    let sizes = sizes();
    let total: usize = sizes.iter().sum();
    let started = Instant::now();
    stream::iter(sizes.iter().copied().enumerate())
        .for_each_concurrent(8, |(i, n)| {
            let s3 = &s3;
            async move { put_bytes(s3, "deg", &key(i), &random_bytes(n, i as u64)).await }
        })
        .await;
    println!(
        "put 200 objects, {:.1} MiB, in {:.1?}",
        total as f64 / MIB as f64,
        started.elapsed()
    );
    check_all(&s3, &sizes, "with every datanode up").await;
    assert_eq!(degraded_reads(&server), 0.0);

    // Two datanodes down: every object still reads, through parity.
    server.stop_datanode(0);
    server.stop_datanode(3);
    let m = server.metrics();
    assert!(m.contains(r#"cairn_datanode_up{node="dn0"} 0"#), "{m}");
    assert!(m.contains(r#"cairn_datanode_up{node="dn1"} 1"#), "{m}");
    check_all(&s3, &sizes, "with dn0 and dn3 stopped").await;
    let after_stop = degraded_reads(&server);
    assert!(after_stop > 0.0, "no degraded read counted");
    println!("degraded stripe reads with two datanodes stopped: {after_stop}");

    // Back up; then silent corruption inside one datanode's segment files.
    server.start_datanode(0);
    server.start_datanode(3);
    assert_eq!(server.admin_get("/health/ready").status, 200);
    let flipped = flip_bytes(&server, 1, 64 << 10);
    assert!(flipped > 100, "only {flipped} bytes flipped");
    check_all(&s3, &sizes, "with flipped bytes on dn1").await;
    let after_flip = degraded_reads(&server);
    assert!(
        after_flip > after_stop,
        "corruption was not noticed: {after_stop} -> {after_flip}"
    );
    println!(
        "flipped {flipped} bytes on dn1: {} more degraded reads",
        after_flip - after_stop
    );
    assert!(
        server
            .metric("cairn_shard_read_failures_total")
            .unwrap_or(0.0)
            > 0.0
    );
    assert!(
        server
            .metric(r#"cairn_s3_requests_total{op="GetObject",status="2xx"}"#)
            .unwrap_or(0.0)
            >= 600.0
    );
}

/// Shards held by the datanodes that answer, from `GET /admin/datanodes`.
fn shards_on_serving_nodes(server: &Server) -> u64 {
    let (ok, out) = server.cairn_admin(&["datanodes"]);
    assert!(ok, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("datanodes JSON");
    v.as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["shards"].as_u64())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn three_stopped_datanodes_fail_puts_with_503_and_recover() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("deg").send().await.unwrap();
    let before = random_bytes(3 * MIB, 1);
    put_bytes(&s3, "deg", "before", &before).await;

    for i in [1, 2, 4] {
        server.stop_datanode(i);
    }
    let (ok, out) = server.cairn_admin(&["datanodes"]);
    assert!(ok && out.contains("\"serving\": false"), "{out}");
    let shards = shards_on_serving_nodes(&server);

    let started = Instant::now();
    let r = s3
        .put_object()
        .bucket("deg")
        .key("during")
        .body(random_bytes(3 * MIB, 2).into())
        .send()
        .await;
    let took = started.elapsed();
    let err = r.expect_err("a PUT with three of six datanodes down must fail");
    assert_eq!(
        code_of(&err).as_deref(),
        Some("ServiceUnavailable"),
        "{err:?}"
    );
    assert_eq!(
        err.raw_response().map(|r| r.status().as_u16()),
        Some(503),
        "{err:?}"
    );
    // The SDK retries a 503 a few times; even so the answer is quick, not a hang.
    assert!(took < Duration::from_secs(30), "PUT took {took:?}");
    // Nothing half-written: no object, and no shard left on the datanodes that took some.
    let head = s3.head_object().bucket("deg").key("during").send().await;
    assert!(head.is_err(), "a failed PUT left an object");
    assert_eq!(shards_on_serving_nodes(&server), shards);
    // Small objects live in metadata and still work; reading a striped one cannot.
    put_bytes(&s3, "deg", "small", b"tiny").await;
    let got = s3.get_object().bucket("deg").key("before").send().await;
    match got {
        Err(e) => assert_eq!(code_of(&e).as_deref(), Some("ServiceUnavailable")),
        Ok(out) => assert!(out.body.collect().await.is_err(), "served unreadable bytes"),
    }
    assert_eq!(server.admin_get("/health/ready").status, 503);

    for i in [1, 2, 4] {
        server.start_datanode(i);
    }
    assert_eq!(server.admin_get("/health/ready").status, 200);
    let during = random_bytes(3 * MIB, 2);
    put_bytes(&s3, "deg", "during", &during).await;
    assert!(get_bytes(&s3, "deg", "during").await == during);
    assert!(get_bytes(&s3, "deg", "before").await == before);
    assert_eq!(get_bytes(&s3, "deg", "small").await, b"tiny");
    // Stopping twice, starting twice and unknown datanodes are answered, not crashed on.
    let (ok, out) = server.cairn_admin(&["start-datanode", "1"]);
    assert!(ok && out.contains("already"), "{out}");
    let (ok, out) = server.cairn_admin(&["stop-datanode", "9"]);
    assert!(!ok, "{out}");
}
