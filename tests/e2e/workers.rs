//! Background workers end to end: `cairn status` and `GET /admin/workers` list every job of
//! the server; pausing garbage collection keeps a deleted object's shards on the datanodes
//! (past several collection periods) until it is resumed, and then they are freed.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

const BUCKET: &str = "workers";
const WORKERS: [&str; 6] = [
    "cluster-watcher",
    "compaction",
    "gc",
    "lifecycle",
    "repair",
    "scrub",
];

/// Live shards over every datanode, from `cairn admin datanodes`.
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

/// The named worker as `GET /admin/workers` shows it.
fn worker(server: &Server, name: &str) -> Value {
    let r = server.admin_call("GET", "/admin/workers", "");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == name)
        .unwrap_or_else(|| panic!("no worker {name} in {v:#}"))
        .clone()
}

fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_lists_workers_and_paused_gc_frees_nothing_until_resumed() {
    let server = Server::start_with(&["--scrub-interval", "0", "--deep-scrub-interval", "0"]);

    // `cairn status` has a workers table naming every background job.
    let (ok, out, err) = server.cairn("status", &[]);
    assert!(ok, "{out}\n{err}");
    let table: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("worker "))
        .collect();
    assert!(!table.is_empty(), "no workers table in:\n{out}");
    for name in WORKERS {
        assert!(
            table.iter().any(|l| l.starts_with(&format!("{name} "))),
            "no line for {name} in:\n{out}"
        );
    }
    let (ok, out, err) = server.cairn("status", &["--json"]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let mut names: Vec<&str> = v["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, WORKERS);
    // The watcher's first look runs at start.
    wait_for("the watcher's first round", 10, || {
        worker(&server, "cluster-watcher")["rounds"].as_u64() > Some(0)
    });

    // Admin auth like every admin route; unknown workers are 404.
    assert_eq!(server.admin_get("/admin/workers").status, 401);
    let (ok, out) = server.cairn_admin(&["pause-worker", "no-such-worker"]);
    assert!(!ok && out.contains("no worker"), "{out}");

    // An object with shards on the datanodes (1 MiB in one 4+2 stripe: 6 shards).
    let s3 = client(&server);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let base = total_shards(&server);
    s3.put_object()
        .bucket(BUCKET)
        .key("big")
        .body(vec![7u8; 1 << 20].into())
        .send()
        .await
        .unwrap();
    let stored = total_shards(&server);
    assert_eq!(stored, base + 6);

    // Pause GC: it parks (it was idle, so at once) and shows as paused.
    let (ok, out) = server.cairn_admin(&["pause-worker", "gc"]);
    assert!(ok, "{out}");
    assert!(out.contains("\"paused\": true"), "{out}");
    assert_eq!(worker(&server, "gc")["state"], "paused");
    let (_, listing) = server.cairn_admin(&["workers"]);
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("gc ") && l.contains("paused")),
        "{listing}"
    );
    let rounds = worker(&server, "gc")["rounds"].as_u64().unwrap();

    // Delete: the shards are queued for collection, but stay while GC is paused — through
    // the delete's wake-up and more than one collection period (5 s).
    s3.delete_object()
        .bucket(BUCKET)
        .key("big")
        .send()
        .await
        .unwrap();
    let held_until = Instant::now() + Duration::from_secs(7);
    while Instant::now() < held_until {
        assert_eq!(
            total_shards(&server),
            stored,
            "shards were freed while GC was paused"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let gc = worker(&server, "gc");
    assert_eq!(gc["state"], "paused", "{gc:#}");
    assert_eq!(
        gc["rounds"].as_u64(),
        Some(rounds),
        "a round ran while paused"
    );

    // Resume: the parked round goes on and frees them.
    let (ok, out) = server.cairn_admin(&["resume-worker", "gc"]);
    assert!(ok, "{out}");
    wait_for("the shards to be freed", 15, || {
        total_shards(&server) == base
    });
    wait_for("the gc round to be counted", 10, || {
        worker(&server, "gc")["rounds"].as_u64() > Some(rounds)
    });
    let gc = worker(&server, "gc");
    assert_eq!(gc["paused"], false);
    assert_ne!(gc["state"], "paused");
}
