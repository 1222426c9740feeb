//! Deleted data frees disk at the defaults a small deployment runs: the default segment size
//! (which a small server never fills), compaction sealing the mostly dead active segment, and
//! a SIGKILL in the middle of a compaction pass.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use futures::StreamExt;
use serde_json::Value;

use crate::common::*;

const BUCKET: &str = "space";
const KEYS: u64 = 200;
const SIZE: usize = 2 << 20;
/// Compaction interval of the test server, seconds.
const INTERVAL: u64 = 5;
/// What a datanode may hold beyond 1.5x its live bytes: `seal_min_dead` (4 MiB) of dead
/// records its active segment may keep, segment and record headers, and its small files.
const PER_DATANODE: u64 = 8 << 20;

fn body(key: u64, round: u64) -> Vec<u8> {
    random_bytes(SIZE, key * 100 + round)
}

/// Writes every key `rounds` times over (8 at once), `first_round` numbering the contents.
async fn overwrite(s3: &Client, first_round: u64, rounds: u64) {
    let puts = (first_round..first_round + rounds)
        .flat_map(|round| (0..KEYS).map(move |k| (k, round)))
        .map(|(k, round)| {
            let s3 = s3.clone();
            async move { put_bytes(&s3, BUCKET, &format!("k{k:03}"), &body(k, round)).await }
        });
    futures::stream::iter(puts)
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
}

/// Deletes 90% of the keys (those not divisible by 10).
async fn delete_most(s3: &Client) {
    let deletes = (0..KEYS).filter(|k| k % 10 != 0).map(|k| {
        let s3 = s3.clone();
        async move {
            s3.delete_object()
                .bucket(BUCKET)
                .key(format!("k{k:03}"))
                .send()
                .await
                .unwrap();
        }
    });
    futures::stream::iter(deletes)
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
}

/// Live bytes the datanodes report (payloads of the shards they hold), and their count.
fn live_bytes(server: &Server) -> (u64, usize) {
    let (ok, out) = server.cairn_admin(&["datanodes"]);
    assert!(ok, "{out}");
    let nodes: Value = serde_json::from_str(&out).unwrap();
    let nodes = nodes.as_array().unwrap();
    let live = nodes
        .iter()
        .map(|n| n["live_bytes"].as_u64().unwrap())
        .sum();
    (live, nodes.len())
}

/// Live bytes once the survivors are all that is left: a tenth of the keys, 4+2.
const SURVIVING_LIVE: u64 = (KEYS / 10) * SIZE as u64 * 3 / 2;

/// Waits for garbage collection to delete the shards of the deleted and overwritten
/// objects (live bytes down to [`SURVIVING_LIVE`]), then for the datanodes' files to take at
/// most 1.5x the live bytes plus [`PER_DATANODE`] each, which must happen within two
/// compaction intervals (plus a second for the pass itself). Returns the (disk, live)
/// figures, how long GC took and how long reclaiming took after it.
fn wait_for_reclaim(server: &Server) -> (u64, u64, Duration, Duration) {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(180);
    loop {
        let (live, _) = live_bytes(server);
        if live <= SURVIVING_LIVE + SURVIVING_LIVE / 20 {
            break;
        }
        assert!(Instant::now() < deadline, "GC left {live} live bytes");
        std::thread::sleep(Duration::from_millis(100));
    }
    let collected = Instant::now();
    let deadline = collected + Duration::from_secs(2 * INTERVAL + 1);
    loop {
        let (live, datanodes) = live_bytes(server);
        let disk = server.datanode_bytes();
        if disk <= live * 3 / 2 + datanodes as u64 * PER_DATANODE {
            return (disk, live, collected - start, collected.elapsed());
        }
        assert!(
            Instant::now() < deadline,
            "disk use {disk} bytes for {live} live bytes {:?} after GC finished",
            collected.elapsed()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every datanode's segment file names.
fn segment_files(server: &Server) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for dn in std::fs::read_dir(server.data.join("datanodes")).unwrap() {
        let dn = dn.unwrap().path();
        for f in std::fs::read_dir(&dn).unwrap() {
            let name = f.unwrap().file_name().to_string_lossy().into_owned();
            if name.starts_with("seg-") {
                out.insert(format!("{}/{name}", dn.display()));
            }
        }
    }
    out
}

async fn check_survivors(s3: &Client, round: u64) {
    for k in (0..KEYS).filter(|k| k % 10 == 0) {
        let got = get_bytes(s3, BUCKET, &format!("k{k:03}")).await;
        assert!(got == body(k, round), "k{k:03} changed");
    }
    let listed = s3
        .list_objects_v2()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap()
        .key_count()
        .unwrap_or(0);
    assert_eq!(listed as u64, KEYS / 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleted_data_frees_disk_at_the_default_segment_size_even_across_a_kill() {
    // Default flags (six datanodes, 4+2, default segment size) but a short compaction
    // interval, as the deployment in the issue ran.
    let mut server = Server::start_with(&["--compaction-interval", &INTERVAL.to_string()]);
    let s3 = client(&server);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();

    // 200 keys of 2 MiB written three times: 1.2 GiB through overwrites.
    let started = Instant::now();
    overwrite(&s3, 0, 3).await;
    let full = server.datanode_bytes();
    println!(
        "wrote {} MiB in {:.1?}; datanodes hold {} MiB on disk",
        (3 * KEYS as usize * SIZE) >> 20,
        started.elapsed(),
        full >> 20
    );
    delete_most(&s3).await;
    let (disk, live, gc, took) = wait_for_reclaim(&server);
    println!(
        "after deleting 90%: GC took {gc:.1?}, then {} MiB on disk for {} MiB live ({:.2}x) after {took:.1?}",
        disk >> 20,
        live >> 20,
        disk as f64 / live as f64
    );
    check_survivors(&s3, 2).await;
    // `cairn status` shows each datanode's space amplification.
    let (ok, status, err) = server.cairn("status", &[]);
    assert!(ok, "{status}{err}");
    assert!(status.contains(" amp "), "{status}");
    assert!(
        status
            .lines()
            .filter(|l| l.starts_with("dn") && !l.starts_with("dn "))
            .all(|l| l.contains("x ")),
        "{status}"
    );
    let amp = server
        .metric("cairn_datanode_space_amplification{node=\"dn0\"}")
        .expect("amplification metric");
    assert!((0.9..1.6).contains(&amp), "datanode 0 amplification {amp}");

    // Again, and this time the server is SIGKILLed as soon as compaction changes a segment
    // file (it sealed an active segment or removed a compacted one).
    overwrite(&s3, 10, 3).await;
    delete_most(&s3).await;
    let before = segment_files(&server);
    let deleted_at = Instant::now();
    loop {
        if segment_files(&server) != before {
            break;
        }
        assert!(
            deleted_at.elapsed() < Duration::from_secs(4 * INTERVAL),
            "compaction never started"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    server.kill();
    println!(
        "killed {:.1?} after the deletes, {} MiB on disk",
        deleted_at.elapsed(),
        server.datanode_bytes() >> 20
    );
    server.restart();
    let s3 = client(&server);
    let (disk, live, gc, took) = wait_for_reclaim(&server);
    println!(
        "after the restart: GC took {gc:.1?}, then {} MiB on disk for {} MiB live ({:.2}x) after {took:.1?}",
        disk >> 20,
        live >> 20,
        disk as f64 / live as f64
    );
    check_survivors(&s3, 12).await;
}
