//! Scrubbing and repair end to end, driven through `cairn scrub` / `cairn repair` against the
//! default server (six local datanodes, 4+2). Faults are injected while the server is down,
//! straight into the datanode directories: shard records deleted, payload bytes flipped,
//! garbage records appended, a whole datanode directory deleted; a SIGKILL during PUTs
//! leaves orphans. The test knows what it injected and checks that the scrub reports exactly
//! that, repairs it, that a second scrub is clean and that every object reads back with its
//! original MD5.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_datanode::{LocalShardStore, ShardStore, StoreOptions};
use cairn_types::{ObjectId, ShardId};
use futures::{stream, StreamExt};
use serde_json::Value;

use crate::common::*;

const MIB: usize = 1 << 20;
const STRIPE: usize = 4 * MIB;
const BUCKET: &str = "scrub";

pub(crate) fn flags() -> Vec<&'static str> {
    vec![
        "--scrub-interval",
        "0",
        "--deep-scrub-interval",
        "0",
        "--orphan-grace",
        "0",
        "--deep-scrub-rate",
        "0",
        "--repair-rate",
        "0",
    ]
}

/// Shards an object of `size` bytes occupies. The server runs at its default, encryption at
/// rest (SSE-S3), so what is stored is the sealed body, a tag longer per 64 KiB chunk: that is
/// what goes inline (under 64 KiB) or is cut into stripes. A 12 MiB body takes four stripes.
fn shards_of(size: usize) -> usize {
    let stored = cairn_sse::sealed_len(size as u64, cairn_sse::CHUNK) as usize;
    if stored < 64 << 10 {
        0
    } else {
        stored.div_ceil(STRIPE) * 6
    }
}

/// Mixed sizes: inline, single-stripe, multi-stripe.
fn sizes(n: usize, seed: u64) -> Vec<usize> {
    let mut x = seed | 1;
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match i % 20 {
                0..=3 => (x % (64 << 10)) as usize,
                4..=17 => (64 << 10) + (x % (400 << 10)) as usize,
                18 => 4 * MIB + (x % (5 * MIB as u64)) as usize,
                _ => (x % (2 * MIB as u64)) as usize,
            }
        })
        .collect()
}

async fn write_objects(s3: &aws_sdk_s3::Client, sizes: &[usize], prefix: &str, seed: u64) {
    stream::iter(sizes.iter().copied().enumerate())
        .for_each_concurrent(8, |(i, n)| async move {
            put_bytes(
                s3,
                BUCKET,
                &format!("{prefix}{i:05}"),
                &random_bytes(n, seed + i as u64),
            )
            .await;
        })
        .await;
}

/// Multipart objects: two 5 MiB parts and a tail, completed through the SDK.
async fn write_multipart(s3: &aws_sdk_s3::Client, key: &str, seed: u64) -> Vec<u8> {
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    let body = random_bytes(10 * MIB + 300_000, seed);
    let up = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let mut parts = Vec::new();
    for (n, chunk) in body.chunks(5 * MIB).enumerate() {
        let r = s3
            .upload_part()
            .bucket(BUCKET)
            .key(key)
            .upload_id(id)
            .part_number(n as i32 + 1)
            .body(chunk.to_vec().into())
            .send()
            .await
            .unwrap();
        parts.push(
            CompletedPart::builder()
                .part_number(n as i32 + 1)
                .e_tag(r.e_tag().unwrap())
                .build(),
        );
    }
    s3.complete_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    body
}

/// Every object's key and MD5, as written.
type Written = BTreeMap<String, (usize, String)>;

async fn check_all(s3: &aws_sdk_s3::Client, written: &Written) {
    let bad: Vec<String> = stream::iter(written.iter())
        .map(|(key, (len, md5))| async move {
            let got = get_bytes(s3, BUCKET, key).await;
            (got.len() != *len || md5_hex(&got) != *md5).then(|| key.clone())
        })
        .buffer_unordered(8)
        .filter_map(|x| async move { x })
        .collect()
        .await;
    assert!(bad.is_empty(), "objects with wrong bytes: {bad:?}");
}

pub(crate) fn dn_dir(server: &Server, i: u32) -> std::path::PathBuf {
    server.data.join("datanodes").join(format!("dn{i}"))
}

pub(crate) async fn open_store(dir: &Path) -> LocalShardStore {
    LocalShardStore::open(dir, StoreOptions::default()).expect("open datanode offline")
}

/// Runs `cairn scrub` with `args` and `--json`; returns the exit status and the report.
fn scrub(server: &Server, args: &[&str]) -> (bool, Value) {
    let mut a = args.to_vec();
    a.push("--json");
    let (ok, out, err) = server.cairn("scrub", &a);
    let report: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("scrub printed no JSON report ({e}): {out}\n{err}"));
    (ok, report)
}

fn counts(v: &Value) -> [u64; 4] {
    ["missing", "corrupt", "misplaced", "orphaned"].map(|k| v[k].as_u64().unwrap_or(u64::MAX))
}

fn total_shards(server: &Server) -> u64 {
    let (ok, out) = server.cairn_admin(&["datanodes"]);
    assert!(ok, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|n| n["shards"].as_u64().expect("datanode reachable"))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scrub_reports_exactly_the_injected_damage_and_repairs_all_of_it() {
    let mut server = Server::start_with(&flags());
    let s3 = client(&server);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let sz = sizes(2500, 0x5eed);
    write_objects(&s3, &sz, "obj/", 1000).await;
    let mut written: Written = sz
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let key = format!("obj/{i:05}");
            (key, (n, md5_hex(&random_bytes(n, 1000 + i as u64))))
        })
        .collect();
    for m in 0..3 {
        let key = format!("multipart/{m}");
        let body = write_multipart(&s3, &key, 77 + m).await;
        written.insert(key, (body.len(), md5_hex(&body)));
    }
    // Each multipart object: two 5 MiB parts of two stripes each, and a one-stripe tail.
    let live_shards: usize = sz.iter().map(|&n| shards_of(n)).sum::<usize>() + 3 * 5 * 6;

    // A clean cluster scrubs clean, and a light scrub reads no payload.
    let (ok, clean) = scrub(&server, &[]);
    assert!(ok, "{clean}");
    assert_eq!(counts(&clean["found"]), [0; 4], "{clean}");
    assert_eq!(clean["bytes_read"], 0);
    assert_eq!(clean["shards_checked"], live_shards as u64);
    let (wire, listing): (u64, u64) = clean["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["wire_bytes"].as_u64().unwrap(),
                n["listing_bytes"].as_u64().unwrap(),
            )
        })
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    eprintln!("clean scrub of {live_shards} shards: compared {wire} bytes of hashes vs {listing} bytes of listings");
    assert!(wire * 5 < listing, "{wire} vs {listing}");

    // Faults, injected with the server down.
    assert!(server.terminate(), "clean shutdown");
    let mut by_node: Vec<Vec<ShardId>> = Vec::new();
    for i in 0..6 {
        let store = open_store(&dn_dir(&server, i)).await;
        by_node.push(
            store
                .list(None, usize::MAX)
                .await
                .unwrap()
                .iter()
                .map(|s| s.id)
                .collect(),
        );
        store.close().await;
    }
    assert_eq!(by_node.iter().map(Vec::len).sum::<usize>(), live_shards);
    // Every stripe has one shard on each datanode; dn5 is wiped whole, so each other fault
    // goes to a stripe of its own (two lost shards per stripe at most).
    let stripes: Vec<(ObjectId, u32)> = by_node[1]
        .iter()
        .map(|s| (s.object, s.stripe))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let shard_on = |node: usize, (o, s): (ObjectId, u32)| {
        *by_node[node]
            .iter()
            .find(|id| id.object == o && id.stripe == s)
            .expect("a shard of every stripe on every datanode")
    };
    // Bit rot is not injected into dn2's newest records: a restart cannot tell a bad
    // payload at the end of the active segment from a write that never reached the disk,
    // and cuts it off (the tail check of datanode/src/recovery.rs looks at the last 16).
    let newest: BTreeSet<ShardId> = {
        let dn2 = open_store(&dn_dir(&server, 2)).await;
        // Segment files are named by number (zero-padded), so (file, offset) is write order.
        let mut located: Vec<(std::path::PathBuf, u64, ShardId)> = by_node[2]
            .iter()
            .map(|id| {
                let (file, offset, _) = dn2.payload_location(*id).expect("located");
                (file, offset, *id)
            })
            .collect();
        dn2.close().await;
        located.sort();
        located
            .iter()
            .rev()
            .take(32)
            .map(|(_, _, id)| *id)
            .collect()
    };
    let mut pick = stripes.iter().step_by(stripes.len() / 30);
    let deleted: Vec<(ObjectId, u32)> = pick.by_ref().take(15).copied().collect();
    let flipped: Vec<(ObjectId, u32)> = pick
        .by_ref()
        .filter(|st| !newest.contains(&shard_on(2, **st)))
        .take(10)
        .copied()
        .collect();
    assert_eq!(flipped.len(), 10);
    {
        let dn1 = open_store(&dn_dir(&server, 1)).await;
        for &st in &deleted {
            dn1.delete(shard_on(1, st)).await.unwrap();
        }
        dn1.close().await;
        let dn2 = open_store(&dn_dir(&server, 2)).await;
        let mut flips = Vec::new();
        for &st in &flipped {
            flips.push(dn2.payload_location(shard_on(2, st)).expect("located"));
        }
        dn2.close().await;
        for (path, offset, len) in flips {
            use std::io::{Read, Seek, SeekFrom, Write};
            let mut f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
                .unwrap();
            let at = offset + len / 2;
            let mut b = [0u8];
            f.seek(SeekFrom::Start(at)).unwrap();
            f.read_exact(&mut b).unwrap();
            f.seek(SeekFrom::Start(at)).unwrap();
            f.write_all(&[b[0] ^ 0x5a]).unwrap();
        }
        let dn3 = open_store(&dn_dir(&server, 3)).await;
        for g in 0..7u32 {
            let id = ShardId::new(ObjectId(0xbad0_0000_0000 + g as u128), 0, g);
            dn3.put(id, Bytes::from(random_bytes(1000 + g as usize, g as u64)))
                .await
                .unwrap();
        }
        dn3.close().await;
    }
    std::fs::remove_dir_all(dn_dir(&server, 5)).unwrap();
    let wiped = by_node[5].len();

    // Orphans: SIGKILL while eight 12 MiB PUTs are being written. Where the kill lands is
    // timing; rounds repeat (new keys) until one leaves orphans behind.
    let survivors = live_shards - deleted.len() - wiped + 7;
    let mut crash_orphans = 0;
    for round in 0..5u64 {
        server.restart();
        let s3 = client(&server);
        let before = total_shards(&server);
        let crash_writes = tokio::spawn({
            let s3 = s3.clone();
            async move {
                stream::iter(0..8)
                    .for_each_concurrent(8, |i| {
                        let s3 = s3.clone();
                        async move {
                            let _ = s3
                                .put_object()
                                .bucket(BUCKET)
                                .key(format!("crash/{round}-{i}"))
                                .body(random_bytes(12 * MIB, 500 + i).into())
                                .send()
                                .await;
                        }
                    })
                    .await
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        while total_shards(&server) < before + 6 {
            assert!(
                Instant::now() < deadline,
                "crash writes never reached the datanodes"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        server.kill();
        crash_writes.abort();
        server.restart();
        let s3 = client(&server);
        let l = s3
            .list_objects_v2()
            .bucket(BUCKET)
            .prefix("crash/")
            .send()
            .await
            .unwrap();
        let committed: usize = l
            .contents()
            .iter()
            .map(|o| shards_of(o.size().unwrap() as usize))
            .sum();
        let held = total_shards(&server) as usize;
        crash_orphans = held - survivors - committed;
        eprintln!(
            "crash round {round}: {crash_orphans} orphaned shards ({committed} shards of committed crash PUTs)"
        );
        if crash_orphans > 0 {
            break;
        }
    }
    assert!(crash_orphans > 0, "no kill left orphans to find");
    let s3 = client(&server);

    // One deep scrub with repair finds exactly that, and repairs it.
    let (ok, r) = scrub(&server, &["--deep", "--repair"]);
    let want = [
        (deleted.len() + wiped) as u64,
        flipped.len() as u64,
        0,
        (7 + crash_orphans) as u64,
    ];
    assert_eq!(counts(&r["found"]), want, "{r}");
    assert_eq!(counts(&r["repaired"]), want, "{r}");
    assert_eq!(counts(&r["failed"]), [0; 4], "{r}");
    assert_eq!(r["unrecoverable"].as_array().unwrap().len(), 0);
    assert!(ok, "scrub --repair exits 0 once all is repaired: {r}");
    let dn5 = &r["nodes"][5];
    assert_eq!(dn5["found"]["missing"], wiped as u64);
    eprintln!(
        "repair: {} read, {} written in {} ms",
        r["bytes_read"], r["bytes_written"], r["duration_ms"]
    );

    // A second scrub, light and deep, finds nothing.
    for args in [&[][..], &["--deep"][..]] {
        let (ok, again) = scrub(&server, args);
        assert!(ok, "{again}");
        assert_eq!(counts(&again["found"]), [0; 4], "{args:?}: {again}");
    }
    check_all(&s3, &written).await;

    // The history has both scrubs, and `cairn status` shows the last one per datanode.
    let (ok, status, err) = server.cairn("status", &[]);
    assert!(ok, "{status}{err}");
    assert!(status.contains("last scrub"), "{status}");
    assert!(status.contains("dn5"), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_third_loss_on_a_stripe_is_reported_unrecoverable_with_the_object_name() {
    let mut server = Server::start_with(&flags());
    let s3 = client(&server);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    put_bytes(&s3, BUCKET, "two-lost", &random_bytes(300_000, 1)).await;
    put_bytes(&s3, BUCKET, "three-lost", &random_bytes(300_000, 2)).await;
    // Which object is which: the datanodes hold shards of two object ids.
    assert!(server.terminate());
    let mut objects: HashMap<ObjectId, Vec<(u32, ShardId)>> = HashMap::new();
    for i in 0..6 {
        let store = open_store(&dn_dir(&server, i)).await;
        for s in store.list(None, usize::MAX).await.unwrap() {
            objects.entry(s.id.object).or_default().push((i, s.id));
        }
        store.close().await;
    }
    assert_eq!(objects.len(), 2);
    let mut ids: Vec<&ObjectId> = objects.keys().collect();
    ids.sort();
    // Two shards off the first object, three off the second.
    for (id, n) in [(ids[0], 2), (ids[1], 3)] {
        for &(node, sid) in objects[id].iter().take(n) {
            let store = open_store(&dn_dir(&server, node)).await;
            store.delete(sid).await.unwrap();
            store.close().await;
        }
    }
    server.restart();
    let (ok, out, err) = server.cairn("repair", &[]);
    assert!(
        !ok,
        "damage remains, so the exit status is non-zero:\n{out}{err}"
    );
    assert!(out.contains("UNRECOVERABLE"), "{out}");
    let named = if out.contains("scrub/three-lost") {
        "three-lost"
    } else {
        "two-lost"
    };
    assert!(out.contains(&format!("scrub/{named}")), "{out}");
    assert!(out.contains("repaired: missing 2"), "{out}");
    // The one with two losses reads back; the other is reported, not silently wrong.
    let s3 = client(&server);
    let survivor = if named == "three-lost" {
        "two-lost"
    } else {
        "three-lost"
    };
    let seed = if survivor == "two-lost" { 1 } else { 2 };
    assert_eq!(
        get_bytes(&s3, BUCKET, survivor).await,
        random_bytes(300_000, seed)
    );
    let (ok, again) = scrub(&server, &[]);
    assert!(!ok);
    assert_eq!(again["found"]["missing"], 3, "{again}");
    assert_eq!(
        again["unrecoverable"][0]["objects"][0],
        format!("{BUCKET}/{named}")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_seventh_datanode_takes_about_a_seventh_of_the_shards_and_nothing_else_moves() {
    let mut server = Server::start_with(&flags());
    let s3 = client(&server);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let sz: Vec<usize> = (0..400).map(|i| (100 << 10) + i * 997).collect();
    write_objects(&s3, &sz, "r/", 9).await;
    let written: Written = sz
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            (
                format!("r/{i:05}"),
                (n, md5_hex(&random_bytes(n, 9 + i as u64))),
            )
        })
        .collect();
    let total: u64 = sz.iter().map(|&n| shards_of(n) as u64).sum();
    assert!(server.terminate());
    let mut args = flags();
    args.extend(["--datanodes", "7"]);
    server.restart_with(&args);
    let s3 = client(&server);
    // Everything reads while shards are still where they were.
    check_all(&s3, &written).await;
    let (dry_ok, dry, _) = server.cairn("repair", &["--dry-run", "--json"]);
    assert!(!dry_ok, "misplaced shards are damage until moved");
    let dry: Value = serde_json::from_str(&dry).unwrap();
    let misplaced = dry["found"]["misplaced"].as_u64().unwrap();
    assert_eq!(counts(&dry["found"])[0..2], [0, 0]);
    let share = misplaced as f64 / total as f64;
    eprintln!(
        "adding a 7th datanode: {misplaced} of {total} shards to move ({:.1}%, ideal 14.3%)",
        share * 100.0
    );
    assert!((0.10..0.19).contains(&share), "{share}");

    let (ok, r) = scrub(&server, &["--repair"]);
    assert!(ok, "{r}");
    assert_eq!(r["repaired"]["misplaced"], misplaced);
    let (ok, out) = server.cairn_admin(&["datanodes"]);
    assert!(ok);
    let nodes: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        nodes[6]["shards"].as_u64(),
        Some(misplaced),
        "the new node holds what moved"
    );
    let held: u64 = nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["shards"].as_u64().unwrap())
        .sum();
    assert_eq!(held, total, "old copies were deleted");
    let (ok, again) = scrub(&server, &[]);
    assert!(ok);
    assert_eq!(counts(&again["found"]), [0; 4], "{again}");
    check_all(&s3, &written).await;

    // Draining dn0: new writes avoid it, a repair empties it, and every object reads
    // throughout (a reader loops over all of them while the repair runs).
    let (ok, out) = server.cairn_admin(&["drain-datanode", "0"]);
    assert!(ok, "{out}");
    let held_by_dn0 = nodes[0]["shards"].as_u64().unwrap();
    let reader = std::thread::spawn({
        let endpoint = server.endpoint();
        let written = written.clone();
        move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async {
                let s3 = client_for(&endpoint);
                for _ in 0..2 {
                    check_all(&s3, &written).await;
                }
            })
        }
    });
    let (ok, r) = scrub(&server, &["--repair"]);
    assert!(ok, "{r}");
    assert_eq!(r["found"]["misplaced"], held_by_dn0, "{r}");
    reader.join().expect("every object read while draining");
    // Reads that raced with the moves may have queued their stripes for repair with records
    // naming dn0; once those hints ran, dn0 is still empty after this one repair scrub.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let heal: Value =
            serde_json::from_str(&server.admin_call("GET", "/admin/scrub", "").body_str()).unwrap();
        // A hint leaves the queue before its repair runs: wait for the worker to be idle too.
        let workers: Value =
            serde_json::from_slice(&server.admin_call("GET", "/admin/workers", "").body).unwrap();
        let repair_idle = workers
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["name"] == "repair" && w["state"] == "idle");
        if heal["repair_queue"] == 0 && repair_idle {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "hints never ran: {heal}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (_, out) = server.cairn_admin(&["datanodes"]);
    let nodes: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(nodes[0]["shards"], 0, "the drained datanode is empty");
    assert_eq!(nodes[0]["draining"], true);
    let (ok, status, _) = server.cairn("status", &[]);
    assert!(ok && status.contains("draining"), "{status}");
    // A restart keeps it drained.
    server.restart();
    let s3 = client(&server);
    put_bytes(&s3, BUCKET, "after-drain", &random_bytes(1 << 20, 3)).await;
    let (_, out) = server.cairn_admin(&["datanodes"]);
    let nodes: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(nodes[0]["shards"], 0, "new writes avoid a drained datanode");
    check_all(&s3, &written).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_degraded_read_repairs_its_stripe_without_waiting_for_a_scrub() {
    let mut server = Server::start_with(&flags());
    let s3 = client(&server);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let body = random_bytes(3 << 20, 11);
    put_bytes(&s3, BUCKET, "hinted", &body).await;
    assert!(server.terminate());
    // A data shard (a GET reads only those), wherever it is.
    let mut lost = None;
    for i in 0..6 {
        let store = open_store(&dn_dir(&server, i)).await;
        let id = store.list(None, 1).await.unwrap()[0].id;
        if lost.is_none() && id.shard < 4 {
            store.delete(id).await.unwrap();
            lost = Some(id);
        }
        store.close().await;
    }
    assert!(lost.is_some());
    server.restart();
    let s3 = client(&server);
    assert_eq!(get_bytes(&s3, BUCKET, "hinted").await, body);
    let deadline = Instant::now() + Duration::from_secs(20);
    while server
        .metric("cairn_repair_hinted_shards_total")
        .unwrap_or(0.0)
        < 1.0
    {
        assert!(
            Instant::now() < deadline,
            "the degraded read queued no repair"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (ok, r) = scrub(&server, &[]);
    assert!(ok, "{r}");
    assert_eq!(counts(&r["found"]), [0; 4], "the shard was rebuilt: {r}");
}

#[test]
fn admin_commands_authenticate_with_the_root_key_from_the_environment() {
    let server = Server::start_with(&flags());
    let empty = tempfile::tempdir().unwrap();
    let run = |secret: &str| {
        std::process::Command::new(cairn_tests::cairn_bin())
            .args(["status", "--admin-url"])
            .arg(format!("http://{}", server.admin))
            .arg("--data")
            .arg(empty.path())
            .env("CAIRN_ROOT_ACCESS_KEY", cairn_tests::ACCESS_KEY)
            .env("CAIRN_ROOT_SECRET_KEY", secret)
            .env_remove("CAIRN_ADMIN_TOKEN")
            .env_remove("CAIRN_CLUSTER_SECRET")
            .output()
            .unwrap()
    };
    let ok = run(cairn_tests::SECRET_KEY);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("erasure coding: 4+2"));
    let bad = run("not-the-root-secret-at-all");
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("401"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    // Unauthenticated calls are refused with a reason.
    let r = server.admin_get("/admin/scrub");
    assert_eq!(r.status, 401);
}
