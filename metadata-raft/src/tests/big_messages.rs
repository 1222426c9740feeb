//! Messages near the cluster listener's body limits: writes whose total is several times
//! a batch, a follower catching up on a log several times one append message, and a
//! snapshot several chunks long — all within the per-route limits of [`crate::limits`].

use super::*;

/// A 1 MiB value (distinct per key, so nothing could be shared).
fn big(i: usize) -> Vec<u8> {
    let mut v = vec![(i % 251) as u8; 1 << 20];
    v[..8].copy_from_slice(&(i as u64).to_le_bytes());
    v
}

fn set_big(i: usize) -> Command {
    Command::SetSys {
        key: format!("big{i:03}"),
        value: big(i),
    }
}

async fn write_concurrently(meta: &RaftMetadataStore, from: usize, n: usize) {
    let tasks: Vec<_> = (from..from + n)
        .map(|i| {
            let meta = meta.clone();
            tokio::spawn(async move { meta.apply(set_big(i)).await })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        t.await
            .unwrap()
            .unwrap_or_else(|e| panic!("write {}: {e}", from + i));
    }
}

/// Every value reads back (a node catching up may answer `Unavailable` for a while).
async fn check_all(meta: &RaftMetadataStore, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in 0..n {
        let got = loop {
            match meta.get_sys(&format!("big{i:03}")).await {
                Ok(v) => break v,
                Err(e) => {
                    assert!(Instant::now() < deadline, "reading value {i}: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        assert!(got == Some(big(i)), "value {i} differs");
    }
}

/// 48 MiB written at once through a follower: forwarded in calls and proposed in entries
/// of at most one batch each (one call or entry of all of them would be refused by the
/// route limits), and a follower that was down for all of it catches up from the log in
/// append messages within the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_beyond_one_message_go_in_several() {
    let dirs = tempdirs(3);
    // Each forwarded call carries up to 16 MiB that must be replicated and synced: this test
    // is about message sizes, not latency, so give each call 20 s (the server's default is
    // 5 s): on a loaded 2-core CI machine, with the conformance suite's Raft groups running
    // beside it in this binary, 5 s turned a slow write into an unknown outcome.
    let options = RaftOptions {
        timeout: Duration::from_secs(20),
        heartbeat: Duration::from_millis(200),
        election: Duration::from_secs(3),
        ..opts(10_000)
    };
    let mut nodes = three_with(&dirs, options.clone()).await;
    let lagging = nodes.pop().unwrap();
    let port = port_of(&lagging);
    lagging.stop().await;
    let writer = nodes
        .iter()
        .find(|n| !n.node.is_leader())
        .expect("a follower");
    write_concurrently(&writer.meta, 0, 48).await;
    let calls = writer.node.stats().forward_calls.load(Ordering::Relaxed);
    let entries: u64 = nodes
        .iter()
        .map(|n| n.node.stats().entries.load(Ordering::Relaxed))
        .sum();
    eprintln!("48 writes of 1 MiB: {calls} forwarding calls, {entries} entries");
    assert!(entries >= 3, "48 MiB cannot go in fewer than 3 entries");
    check_all(&nodes[0].meta, 48).await;
    // Back: 48 MiB of log to replay, more than any one append message may carry.
    let back = start_with(3, dirs[2].path(), port, options).await;
    assert!(back.node.wait_for_leader(Duration::from_secs(10)).await);
    check_all(&back.meta, 48).await;
    back.stop().await;
    for n in nodes {
        n.stop().await;
    }
}

/// A follower behind the purged log gets a snapshot of about 24 MiB: openraft sends it in
/// chunks of `SNAPSHOT_CHUNK_BYTES`, each within the snapshot route's limit (the whole
/// snapshot in one message would be refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_snapshot_bigger_than_a_chunk_arrives_in_chunks() {
    let dirs = tempdirs(3);
    let mut nodes = three(&dirs, 8).await;
    let lagging = nodes.pop().unwrap();
    let port = port_of(&lagging);
    lagging.stop().await;
    for i in 0..24 {
        nodes[i % 2].meta.apply(set_big(i)).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut extra = 0;
    let purged = loop {
        let leader = nodes.iter().find(|n| n.node.is_leader()).unwrap();
        let purged = leader.node.status().purged_index.unwrap_or(0);
        if purged > 24 {
            break purged;
        }
        assert!(Instant::now() < deadline, "{:?}", leader.node.status());
        leader
            .meta
            .apply(set(&format!("t{extra:03}"), "x"))
            .await
            .unwrap();
        extra += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let back = start(3, dirs[2].path(), port, 8).await;
    assert!(back.node.wait_for_leader(Duration::from_secs(10)).await);
    check_all(&back.meta, 24).await;
    assert!(back.node.status().snapshot_index.unwrap_or(0) >= purged);
    back.stop().await;
    for n in nodes {
        n.stop().await;
    }
}
