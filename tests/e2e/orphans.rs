//! Orphan cleaning across gateways: an upload slower than `--orphan-grace` through a
//! follower's gateway, while the leader runs orphan-deleting scrubs again and again, keeps
//! every stripe (the leader asks each gateway node which bodies it is writing before it
//! deletes orphans), and reads back whole once committed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use aws_sdk_s3::presigning::PresigningConfig;
use bytes::Bytes;
use cairn_datanode::{RemoteShardStore, ShardStore};
use cairn_tests::cluster::Cluster;
use cairn_types::{ObjectId, ShardId};
use serde_json::Value;

use crate::common::*;

const BUCKET: &str = "orphans";
const STRIPE: usize = 128 << 10;
const GRACE_SECS: u64 = 2;

fn flags() -> Vec<&'static str> {
    vec![
        "--ec",
        "4+2",
        "--stripe-size",
        "131072",
        "--orphan-grace",
        "2",
        "--scrub-interval",
        "0",
        "--deep-scrub-interval",
        "0",
        "--repair-rate",
        "0",
        "--raft-election-ms",
        "600",
        "--heartbeat-secs",
        "0.5",
    ]
}

/// Runs `cairn scrub --json` with `args` against `server`; returns the report.
fn scrub(server: &Server, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    let (_, out, err) = server.cairn("scrub", &a);
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("scrub printed no JSON report ({e}): {out}\n{err}"))
}

/// PUTs `body` to the presigned `url` on `addr`, `chunk` bytes at a time with `pause` between
/// them; returns the HTTP status line and the response.
fn slow_put(
    addr: std::net::SocketAddr,
    url: &str,
    body: &[u8],
    chunk: usize,
    pause: Duration,
) -> String {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_at(rest.find('/').expect("a path"));
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nhost: {host}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    for (i, piece) in body.chunks(chunk).enumerate() {
        if i > 0 {
            std::thread::sleep(pause);
        }
        s.write_all(piece).unwrap();
    }
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    String::from_utf8_lossy(&resp).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_upload_through_a_follower_keeps_its_stripes_while_the_leader_cleans_orphans() {
    let c = Cluster::start(3, 2, &flags());
    let leader = c.leader(Duration::from_secs(30));
    let follower = (leader + 1) % 3;
    let s3 = client(c.node(follower));
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();

    // Ten stripes, one every 1.2 s: about 11 s in flight, more than 5× the grace period.
    let body = random_bytes(10 * STRIPE, 13);
    let url = s3
        .put_object()
        .bucket(BUCKET)
        .key("slow")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(600)).unwrap())
        .await
        .unwrap()
        .uri()
        .to_string();
    let addr = c.node(follower).s3;
    let sent = body.clone();
    let started = Instant::now();
    let upload = std::thread::spawn(move || {
        slow_put(addr, &url, &sent, STRIPE, Duration::from_millis(1200))
    });

    // The leader scrubs with repair (deleting orphans older than the grace) meanwhile.
    let mut deferred_max = 0;
    let mut cleaned = Vec::new();
    let mut scrubs = 0;
    while !upload.is_finished() {
        let r = scrub(c.node(leader), &["--repair"]);
        scrubs += 1;
        if r["repaired"]["orphaned"] != 0 || !r["orphans_skipped"].is_null() {
            cleaned.push(r.to_string());
        }
        deferred_max = deferred_max.max(r["deferred_orphans"].as_u64().unwrap_or(0));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let resp = upload.join().unwrap();
    let took = started.elapsed();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(
        took > Duration::from_secs(3 * GRACE_SECS),
        "the upload took only {took:?}"
    );
    // The scrubs saw the upload's shards (unreferenced, older than the grace) and kept them.
    assert!(
        scrubs >= 3 && deferred_max >= 6,
        "{scrubs} scrubs, at most {deferred_max} orphans deferred"
    );

    // Whole through every gateway.
    for i in 0..3 {
        let got = get_bytes(&client(c.node(i)), BUCKET, "slow").await;
        assert_eq!(md5_hex(&got), md5_hex(&body), "read through node {i}");
    }
    assert!(
        cleaned.is_empty(),
        "orphans deleted or skipped: {cleaned:?}"
    );
    // Nothing missing, nothing left over.
    let r = scrub(c.node(leader), &[]);
    for kind in ["missing", "corrupt", "misplaced", "orphaned"] {
        assert_eq!(r["found"][kind], 0, "{kind}: {r}");
    }
    assert_eq!(r["unrecoverable"].as_array().map(Vec::len), Some(0), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orphans_are_kept_while_a_gateway_node_does_not_answer() {
    let mut c = Cluster::start(3, 2, &flags());
    let leader = c.leader(Duration::from_secs(30));
    let down = (leader + 1) % 3;
    // A real orphan, written straight to one of the leader's datanodes.
    let view: Value = serde_json::from_str(&c.cluster_json(leader).unwrap().body_str()).unwrap();
    let addr = view["datanodes"]
        .as_array()
        .expect("datanodes")
        .iter()
        .find(|d| d["node"] == c.id(leader))
        .and_then(|d| d["addr"].as_str())
        .expect("a datanode of the leader")
        .to_string();
    // Written as a member would: with the leader's own certificate.
    let member =
        crate::cluster_tls::member_transport(&c.node(leader).data).client(Default::default());
    let store = RemoteShardStore::new(&member.url(&addr, ""), member);
    let stray = ShardId::new(ObjectId(0x5eed), 0, 0);
    store
        .put(stray, Bytes::from_static(b"left behind"))
        .await
        .unwrap();

    // With a gateway node down, the orphan is seen, grows old enough, and is still kept:
    // the report says which node did not answer.
    c.kill(down);
    let r = scrub(c.node(leader), &["--repair"]);
    assert!(r["found"]["orphaned"].as_u64().unwrap() >= 1, "{r}");
    tokio::time::sleep(Duration::from_millis(GRACE_SECS * 1000 + 500)).await;
    let r = scrub(c.node(leader), &["--repair"]);
    assert_eq!(r["repaired"]["orphaned"], 0, "{r}");
    let why = r["orphans_skipped"].as_str().unwrap_or_default();
    assert!(
        why.contains(&format!("node {} unreachable", c.id(down))),
        "{r}"
    );
    assert!(store.get(stray).await.is_ok(), "the orphan was deleted");

    // Back up: the next runs delete it.
    c.start_node(down);
    c.wait_datanodes(6, Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = scrub(c.node(leader), &["--repair"]);
        if store.get(stray).await.is_err() {
            assert!(r["orphans_skipped"].is_null(), "{r}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the orphan was never deleted: {r}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
