//! A three-node cluster of real `cairn server` processes on loopback (each node meta + data +
//! gateway with two datanode directories, erasure coding 4+2 over the six datanodes),
//! driven through aws-sdk-s3 against different gateways: read-after-write and
//! list-after-write across gateways, the leader killed during PUTs, no quorum, a node
//! catching up from a snapshot, and a node joining a running cluster.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use cairn_tests::cluster::Cluster;
use serde_json::Value;

use crate::common::*;

const BUCKET: &str = "cluster";

fn ec_flags() -> Vec<&'static str> {
    vec![
        "--ec",
        "4+2",
        "--raft-election-ms",
        "600",
        "--heartbeat-secs",
        "0.5",
    ]
}

fn cluster_view(c: &Cluster, i: usize) -> Value {
    let r = c.cluster_json(i).expect("running");
    assert_eq!(r.status, 200, "{}", r.body_str());
    serde_json::from_str(&r.body_str()).expect("cluster JSON")
}

/// The ring epoch every running gateway shows (`/admin/cluster`), once all of them show one
/// epoch over `datanodes` datanodes with `drained` drained (their watchers catch up within a
/// few heartbeats).
fn agreed_ring(c: &Cluster, datanodes: u64, drained: &[u64]) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rings: Vec<Value> = c
            .running()
            .into_iter()
            .map(|i| cluster_view(c, i)["ring"].clone())
            .collect();
        let epochs: BTreeSet<u64> = rings.iter().filter_map(|r| r["epoch"].as_u64()).collect();
        let settled = rings
            .iter()
            .all(|r| r["datanodes"] == datanodes && r["drained"] == serde_json::json!(drained));
        if settled && epochs.len() == 1 {
            return epochs.into_iter().next().unwrap_or_default();
        }
        assert!(
            Instant::now() < deadline,
            "the gateways do not agree on a ring of {datanodes} datanodes, {drained:?} drained: {rings:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

async fn put(s3: &Client, key: &str, data: Vec<u8>) -> Result<(), String> {
    s3.put_object()
        .bucket(BUCKET)
        .key(key)
        .body(ByteStream::from(data))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("{:?}", code_of(&e).unwrap_or_else(|| format!("{e:?}"))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_on_one_gateway_is_read_and_listed_on_the_others_at_once() {
    let c = Cluster::start(3, 2, &ec_flags());
    let s3: Vec<Client> = (0..3).map(|i| client(c.node(i))).collect();
    s3[0].create_bucket().bucket(BUCKET).send().await.unwrap();
    for i in 0..45usize {
        let (w, r, l) = (i % 3, (i + 1) % 3, (i + 2) % 3);
        let key = format!("k{i:03}");
        // Inline and striped objects alternate (striped ones spread over all three nodes).
        let data = random_bytes(if i % 2 == 0 { 2_000 } else { 300_000 }, i as u64);
        put_bytes(&s3[w], BUCKET, &key, &data).await;
        assert_eq!(
            get_bytes(&s3[r], BUCKET, &key).await,
            data,
            "{key} written on gateway {w}, read on {r}"
        );
        let listed = s3[l].list_objects_v2().bucket(BUCKET).send().await.unwrap();
        let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
        assert_eq!(
            keys.len(),
            i + 1,
            "listing on gateway {l} after write {i} on {w}"
        );
        assert!(keys.contains(&key.as_str()));
        // Overwrite and delete are seen at once too.
        if i % 5 == 0 {
            let newer = random_bytes(1_000, 1000 + i as u64);
            put_bytes(&s3[r], BUCKET, &key, &newer).await;
            assert_eq!(get_bytes(&s3[l], BUCKET, &key).await, newer);
        }
    }
    s3[2]
        .delete_object()
        .bucket(BUCKET)
        .key("k000")
        .send()
        .await
        .unwrap();
    let gone = s3[1].head_object().bucket(BUCKET).key("k000").send().await;
    assert!(gone.is_err(), "deleted on gateway 2, still there on 1");

    // Each gateway wrote shards to its own datanodes directly and to the others' over the
    // network, and counted both (`cairn_shard_bytes_total`): the cross-node share.
    for i in 0..3 {
        let m = |op: &str, path: &str| {
            c.node(i)
                .metric(&format!(
                    "cairn_shard_bytes_total{{op=\"{op}\",path=\"{path}\"}}"
                ))
                .unwrap_or(0.0)
        };
        let (local, remote) = (m("write", "local"), m("write", "remote"));
        assert!(
            local > 0.0 && remote > local,
            "gateway {i}: {local} bytes written locally, {remote} remotely"
        );
        assert!(
            m("read", "local") + m("read", "remote") > 0.0,
            "gateway {i} read no shards"
        );
    }

    // Every node shows the same cluster: three voters, one leader, six datanodes up.
    let views: Vec<Value> = (0..3).map(|i| cluster_view(&c, i)).collect();
    let leader = &views[0]["raft"]["leader"];
    assert!(leader.is_u64(), "{:#}", views[0]);
    for v in &views {
        assert_eq!(&v["raft"]["leader"], leader);
        let voters = v["raft"]["members"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["voter"] == true)
            .count();
        assert_eq!(voters, 3, "{v:#}");
        let up = v["datanodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["up"] == true)
            .count();
        assert_eq!(up, 6, "{v:#}");
    }
    // `cairn status` and `cairn node list` show the nodes with their roles and the leader.
    let (ok, out, err) = c.node(1).cairn("status", &[]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("raft, 3 voter(s)"), "{out}");
    for id in 1..=3 {
        assert!(out.contains(&format!("node{id}")), "{out}");
    }
    assert!(out.contains("meta,data,gateway"), "{out}");
    assert!(out.contains("dn5"), "{out}");
    let (ok, out, err) = c.node(2).cairn("node", &["list"]);
    assert!(ok, "{out}{err}");
    assert_eq!(out.matches("voter").count(), 3, "{out}");
    assert_eq!(out.matches(" yes ").count(), 1, "one leader: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 6)]
async fn killing_the_leader_during_puts_loses_no_acknowledged_write() {
    let mut c = Cluster::start(3, 2, &ec_flags());
    let leader = c.leader(Duration::from_secs(20));
    let s3: Vec<Client> = (0..3).map(|i| no_retry(c.node(i))).collect();
    s3[(leader + 1) % 3]
        .create_bucket()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();

    let acked = Arc::new(Mutex::new(Vec::<(String, Vec<u8>)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let dead = Arc::new(AtomicUsize::new(usize::MAX));
    let last_ack = Arc::new(Mutex::new(Instant::now()));
    let gaps = Arc::new(Mutex::new(Vec::<Duration>::new()));
    let mut writers = Vec::new();
    for w in 0..6usize {
        let (s3, acked, stop, dead) = (s3.clone(), acked.clone(), stop.clone(), dead.clone());
        let (last_ack, gaps) = (last_ack.clone(), gaps.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let g = (w + n as usize) % 3;
                n += 1;
                if dead.load(Ordering::Relaxed) == g {
                    continue;
                }
                let key = format!("w{w}/{n:05}");
                let data = random_bytes(1_000 + (n as usize % 7) * 500, n * 31 + w as u64);
                if put(&s3[g], &key, data.clone()).await.is_ok() {
                    let now = Instant::now();
                    let mut last = last_ack.lock().unwrap();
                    gaps.lock().unwrap().push(now.duration_since(*last));
                    *last = now;
                    drop(last);
                    acked.lock().unwrap().push((key, data));
                } else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = acked.lock().unwrap().len();
    assert!(
        before > 20,
        "writes were flowing before the kill ({before})"
    );
    dead.store(leader, Ordering::Relaxed);
    gaps.lock().unwrap().clear();
    let killed_at = Instant::now();
    c.kill(leader);
    // A new leader among the other two, and writes acknowledged again, within seconds.
    let new_leader = c.leader(Duration::from_secs(15));
    assert_ne!(new_leader, leader);
    let took_over = killed_at.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > before + 20, "writes resumed after the kill");
    let longest_gap = gaps
        .lock()
        .unwrap()
        .iter()
        .max()
        .copied()
        .unwrap_or_default();
    eprintln!(
        "leader node{} killed: node{} leads after {took_over:?}; longest gap between acknowledged PUTs {longest_gap:?}; {} PUTs acknowledged",
        leader + 1,
        new_leader + 1,
        acked.len()
    );
    assert!(longest_gap < Duration::from_secs(10), "{longest_gap:?}");

    // Every acknowledged PUT is readable from both surviving gateways.
    let alive: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    for (j, (key, data)) in acked.iter().enumerate() {
        let g = alive[j % 2];
        assert_eq!(
            &get_bytes(&client(c.node(g)), BUCKET, key).await,
            data,
            "{key}"
        );
    }

    // The killed node rejoins and catches up: its own gateway serves every object.
    c.start_node(leader);
    let s3_back = client(c.node(leader));
    for (key, data) in &acked {
        assert_eq!(
            &get_bytes(&s3_back, BUCKET, key).await,
            data,
            "{key} on the rejoined node"
        );
    }
    // The listing has every acknowledged key (and may have a few more: PUTs whose answer was
    // lost with the leader can still have committed — an unknown outcome, never a loss).
    let listed = list_all(&s3_back).await;
    for (key, _) in &acked {
        assert!(
            listed.contains(key),
            "{key} missing from the rejoined node's listing"
        );
    }
    assert!(
        listed.len() <= acked.len() + 12,
        "{} listed, {} acknowledged",
        listed.len(),
        acked.len()
    );
    let back = cluster_view(&c, leader);
    let lead = cluster_view(&c, new_leader);
    assert!(
        back["raft"]["last_applied_index"].as_u64()
            >= lead["raft"]["last_applied_index"].as_u64().map(|i| i - 5),
        "{back:#} vs {lead:#}"
    );
}

async fn list_all(s3: &Client) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(BUCKET)
            .set_continuation_token(token)
            .send()
            .await
            .unwrap();
        out.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(String::from)),
        );
        token = page.next_continuation_token().map(String::from);
        if token.is_none() {
            return out;
        }
    }
}

/// Three nodes with a short metadata timeout, and object `before` = "kept" written through
/// node 0 (whose client, without retries, comes with them).
async fn three_nodes_holding_one_object() -> (Cluster, Client) {
    let mut flags = ec_flags();
    flags.extend(["--meta-timeout", "2"]);
    let c = Cluster::start(3, 2, &flags);
    let s3 = no_retry(c.node(0));
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    put(&s3, "before", b"kept".to_vec()).await.unwrap();
    (c, s3)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_metadata_quorum_writes_fail_with_503_until_a_node_returns() {
    let (mut c, s3) = three_nodes_holding_one_object().await;
    c.stop(1);
    c.stop(2);
    // Writes fail cleanly: 503 ServiceUnavailable, quickly, never acknowledged.
    let t = Instant::now();
    let err = put(&s3, "lonely", b"x".to_vec()).await.unwrap_err();
    assert!(err.contains("ServiceUnavailable"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    // A linearizable read cannot be served either (this node may be stale).
    let read = s3.get_object().bucket(BUCKET).key("before").send().await;
    assert_eq!(
        code_of(&read.unwrap_err()).as_deref(),
        Some("ServiceUnavailable")
    );
    // One node back: a quorum again; writes succeed (and the failed one never appeared).
    c.start_node(1);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match put(&s3, "after", b"y".to_vec()).await {
            Ok(()) => break,
            Err(e) => assert!(Instant::now() < deadline, "writes never came back: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let s3b = client(c.node(1));
    assert_eq!(get_bytes(&s3b, BUCKET, "before").await, b"kept");
    assert_eq!(get_bytes(&s3b, BUCKET, "after").await, b"y");
    let keys = list_all(&s3b).await;
    assert!(
        !keys.contains("lonely") || {
            // A write that timed out may still commit once a quorum returns (S3 clients treat a
            // 503 as "unknown outcome"); if it did, it is whole.
            get_bytes(&s3b, BUCKET, "lonely").await == b"x"
        }
    );
}

/// Found by the fault campaign: a node restarted while its metadata group had no quorum read
/// the root key, got "unavailable" and exited, so a cluster whose nodes come back one by one
/// (a power cut, a rolling restart gone wrong) never did.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_restarted_one_by_one_after_a_full_stop_wait_for_a_quorum() {
    let (mut c, _) = three_nodes_holding_one_object().await;
    for i in [1, 2, 0] {
        c.stop(i);
    }
    // Node 0 alone has no quorum for well over the metadata timeout before node 1 returns.
    c.start_nodes_apart(&[0, 1], Duration::from_secs(8));
    let s3 = no_retry(c.node(0));
    assert_eq!(get_bytes(&s3, BUCKET, "before").await, b"kept");
    put(&s3, "after", b"back".to_vec()).await.unwrap();
    assert_eq!(
        get_bytes(&client(c.node(1)), BUCKET, "after").await,
        b"back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_restarted_behind_a_snapshot_catches_up() {
    let mut flags = ec_flags();
    flags.extend(["--raft-snapshot-logs", "40"]);
    let mut c = Cluster::start(3, 2, &flags);
    let s3 = client(c.node(0));
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    put_bytes(&s3, BUCKET, "first", b"1").await;
    c.stop(2);
    // Enough writes that the others snapshot and drop the log node 3 would need.
    for i in 0..200u64 {
        let g = (i % 2) as usize;
        put_bytes(
            &client(c.node(g)),
            BUCKET,
            &format!("o{i:03}"),
            &random_bytes(500, i),
        )
        .await;
    }
    // The leader purges its log behind a snapshot asynchronously (and may hold off while a
    // replication stream to the stopped node still reads it): wait for it, writing on.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut extra = 0u64;
    let purged = loop {
        let lead = cluster_view(&c, c.leader(Duration::from_secs(10)));
        let purged = lead["raft"]["purged_index"].as_u64().unwrap_or(0);
        if purged > 50 {
            break purged;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the leader purged its log: {lead:#}"
        );
        put_bytes(&s3, BUCKET, &format!("extra{extra:03}"), b"x").await;
        extra += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    c.start_node(2);
    let s3c = client(c.node(2));
    for i in 0..200u64 {
        assert_eq!(
            get_bytes(&s3c, BUCKET, &format!("o{i:03}")).await,
            random_bytes(500, i)
        );
    }
    let back = cluster_view(&c, 2);
    assert!(
        back["raft"]["snapshot_index"].as_u64().unwrap_or(0) >= purged,
        "node 3 installed a snapshot at least as new as the purge point: {back:#}"
    );
    assert_eq!(list_all(&s3c).await.len(), 201 + extra as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fresh_node_joins_a_running_cluster_and_serves() {
    let mut c = Cluster::start(3, 2, &ec_flags());
    let s3 = client(c.node(0));
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let six = agreed_ring(&c, 6, &[]);
    let mut written = Vec::new();
    for i in 0..20u64 {
        let data = random_bytes(if i % 2 == 0 { 800 } else { 200_000 }, i);
        put_bytes(&s3, BUCKET, &format!("j{i:02}"), &data).await;
        written.push(data);
    }
    let n = c.add_node(1, &ec_flags());
    c.wait_datanodes(7, Duration::from_secs(30));
    let v = cluster_view(&c, 0);
    let members = v["raft"]["members"].as_array().unwrap();
    assert!(
        members.iter().any(|m| m["id"] == 4 && m["voter"] == true),
        "node 4 is a voter: {v:#}"
    );
    // The new datanode gave every gateway, the new one too, a new ring of one epoch.
    let seven = agreed_ring(&c, 7, &[]);
    assert_ne!(seven, six, "a datanode joined and the ring epoch stayed");
    for i in [0, n] {
        assert_eq!(c.node(i).metric("cairn_ring_epoch"), Some(seven as f64));
    }
    // Its gateway serves what was there, and takes writes that the others see.
    let s3d = client(c.node(n));
    for (i, data) in written.iter().enumerate() {
        assert_eq!(&get_bytes(&s3d, BUCKET, &format!("j{i:02}")).await, data);
    }
    for i in 0..12u64 {
        put_bytes(
            &s3d,
            BUCKET,
            &format!("new{i}"),
            &random_bytes(300_000, 100 + i),
        )
        .await;
    }
    for i in 0..12u64 {
        assert_eq!(
            get_bytes(&s3, BUCKET, &format!("new{i}")).await,
            random_bytes(300_000, 100 + i)
        );
    }
    // Its datanode is in the ring: some of the new stripes have a shard on it (as the next
    // heartbeat reports).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let status: Value = {
        let (ok, out, err) = c.node(0).cairn("status", &["--json"]);
        assert!(ok, "{out}{err}");
        serde_json::from_str(&out).unwrap()
    };
    let dn6 = status["datanodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == 6)
        .cloned()
        .unwrap_or_else(|| panic!("datanode 6 in {status:#}"));
    assert_eq!(dn6["node"], 4);
    assert!(dn6["shards"].as_u64().unwrap_or(0) > 0, "{status:#}");

    // `cairn node remove` takes it out of the metadata group, `cairn node add` puts it back.
    let addr = c.node(n).cluster.clone().expect("cluster address");
    let voters = |c: &Cluster| -> Vec<u64> {
        let v = cluster_view(c, 0);
        v["raft"]["members"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["voter"] == true)
            .filter_map(|m| m["id"].as_u64())
            .collect()
    };
    let (ok, out, err) = c.node(1).cairn("node", &["remove", "4"]);
    assert!(ok, "{out}{err}");
    assert_eq!(voters(&c), vec![1, 2, 3]);
    let (ok, out, err) = c.node(0).cairn("node", &["add", "4", &addr]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("is now a voter"), "{out}");
    assert_eq!(voters(&c), vec![1, 2, 3, 4]);
    let (ok, out, err) = c.node(0).cairn("node", &["remove", "9"]);
    assert!(!ok, "removing an unknown node fails: {out}{err}");
    // Writes through it still work after all that.
    put_bytes(&s3d, BUCKET, "after-rejoin", b"ok").await;
    assert_eq!(get_bytes(&s3, BUCKET, "after-rejoin").await, b"ok");

    // Draining its datanode through one gateway changes the ring epoch on all of them;
    // undraining it through another gives back the epoch of that membership.
    let (ok, out) = c.node(n).cairn_admin(&["drain-datanode", "6"]);
    assert!(ok, "{out}");
    let drained = agreed_ring(&c, 7, &[6]);
    assert!(
        drained != seven && drained != six,
        "{drained} {seven} {six}"
    );
    let (ok, out, err) = c.node(1).cairn("status", &[]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains(&format!(
            "ring: epoch {drained}, 7 datanodes (6 placeable), drained: dn6"
        )),
        "{out}"
    );
    let (ok, out) = c.node(1).cairn_admin(&["undrain-datanode", "6"]);
    assert!(ok, "{out}");
    assert_eq!(agreed_ring(&c, 7, &[]), seven);
    let (ok, out, err) = c.node(2).cairn("node", &["list"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains(&format!("ring: epoch {seven}, 7 datanodes")),
        "{out}"
    );

    // Drained again, emptied by a repair scrub and removed through node 1: node 4, which runs
    // it, retires it (its watcher sees the removal), and every gateway drops it.
    let (ok, out) = c.node(n).cairn_admin(&["drain-datanode", "6"]);
    assert!(ok, "{out}");
    agreed_ring(&c, 7, &[6]);
    let (ok, out, err) = c.node(0).cairn("scrub", &["--repair"]);
    assert!(ok, "{out}{err}");
    let (ok, out) = c.node(0).cairn_admin(&["remove-datanode", "6"]);
    assert!(ok, "{out}");
    agreed_ring(&c, 6, &[]);
    let marker = c.node(n).data.join("disk0").join("REMOVED");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "node 4 never retired dn6");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (ok, out, err) = c.node(n).cairn("status", &[]);
    assert!(ok, "{out}{err}");
    assert!(!out.lines().any(|l| l.starts_with("dn6 ")), "{out}");
    for (i, data) in written.iter().enumerate() {
        assert_eq!(&get_bytes(&s3d, BUCKET, &format!("j{i:02}")).await, data);
    }
    for i in 0..12u64 {
        assert_eq!(
            get_bytes(&s3d, BUCKET, &format!("new{i}")).await,
            random_bytes(300_000, 100 + i)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_without_the_meta_role_is_a_non_voting_replica_that_serves() {
    let mut c = Cluster::start(3, 2, &ec_flags());
    let s3 = client(c.node(0));
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    put_bytes(&s3, BUCKET, "before", &random_bytes(200_000, 1)).await;
    let mut flags = ec_flags();
    flags.extend(["--roles", "data,gateway"]);
    let n = c.add_node(1, &flags);
    c.wait_datanodes(7, Duration::from_secs(30));
    let v = cluster_view(&c, 0);
    let me = v["raft"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == 4)
        .cloned()
        .unwrap_or_else(|| panic!("node 4 is a member: {v:#}"));
    assert_eq!(me["voter"], false, "{v:#}");
    let node4 = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == 4)
        .cloned()
        .unwrap();
    assert_eq!(node4["roles"], "data,gateway");
    assert_eq!(node4["metadata"], "learner");
    // It reads and writes like any gateway; its writes go through the voters.
    let s3d = client(c.node(n));
    assert_eq!(
        get_bytes(&s3d, BUCKET, "before").await,
        random_bytes(200_000, 1)
    );
    put_bytes(&s3d, BUCKET, "from-learner", b"hello").await;
    assert_eq!(get_bytes(&s3, BUCKET, "from-learner").await, b"hello");
    // Losing it costs the metadata quorum nothing: with node 4 and one voter down, writes
    // still commit on the two voters left.
    c.kill(n);
    c.kill(2);
    put_bytes(&client(c.node(1)), BUCKET, "two-voters", b"x").await;
    assert_eq!(get_bytes(&s3, BUCKET, "two-voters").await, b"x");
}
