//! Removing a datanode: drained, emptied by a repair scrub, then removed; it leaves the
//! registry, the ring and every listing, objects read throughout, a restart leaves its
//! directory alone, and a wiped directory comes back as a new datanode.

use futures::{stream, StreamExt};
use serde_json::Value;

use crate::common::*;

const BUCKET: &str = "removal";

/// The scrub tests' flags (no scheduled scrubs, no orphan grace, no rate limits), with a
/// seventh datanode so that one can go.
fn flags() -> Vec<&'static str> {
    let mut flags = super::scrub::flags();
    flags.extend(["--datanodes", "7"]);
    flags
}

/// Objects of several shapes: inline, one stripe, several stripes.
fn objects() -> Vec<(String, Vec<u8>)> {
    [100usize, 70_000, 1 << 20, (9 << 20) + 5]
        .iter()
        .cycle()
        .take(24)
        .enumerate()
        .map(|(i, &n)| (format!("o{i:02}"), random_bytes(n, 500 + i as u64)))
        .collect()
}

async fn check_all(s3: &aws_sdk_s3::Client, objects: &[(String, Vec<u8>)]) {
    let bad: Vec<String> = stream::iter(objects)
        .map(|(key, data)| async move {
            (&get_bytes(s3, BUCKET, key).await != data).then(|| key.clone())
        })
        .buffer_unordered(8)
        .filter_map(|x| async move { x })
        .collect()
        .await;
    assert!(bad.is_empty(), "objects with wrong bytes: {bad:?}");
}

/// Datanode ids `cairn admin datanodes` lists, and each one's shard count.
fn listed(server: &Server) -> Vec<(u64, u64)> {
    let (ok, out) = server.cairn_admin(&["datanodes"]);
    assert!(ok, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["id"].as_u64().unwrap(),
                n["shards"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .collect()
}

/// The ids in `cairn status`'s datanode table and its ring line.
fn status(server: &Server) -> (Vec<String>, String) {
    let (ok, out, err) = server.cairn("status", &[]);
    assert!(ok, "{out}{err}");
    let ids = out
        .lines()
        .filter(|l| l.starts_with("dn") && !l.starts_with("dn "))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    let ring = out
        .lines()
        .find(|l| l.starts_with("ring:"))
        .unwrap_or_default()
        .to_string();
    (ids, ring)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_drained_datanode_is_removed_and_every_object_stays_readable() {
    let mut server = Server::start_with(&flags());
    let s3 = client(&server);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let objects = objects();
    for (k, v) in &objects {
        put_bytes(&s3, BUCKET, k, v).await;
    }
    let held = listed(&server)
        .iter()
        .find(|(id, _)| *id == 3)
        .map(|(_, n)| *n)
        .unwrap();
    assert!(held > 0, "dn3 holds shards");

    // Not drained, or drained but still holding shards: refused, nothing changes.
    let (ok, out) = server.cairn_admin(&["remove-datanode", "3"]);
    assert!(!ok && out.contains("not drained"), "{out}");
    let (ok, out) = server.cairn_admin(&["drain-datanode", "3"]);
    assert!(ok, "{out}");
    let (ok, out) = server.cairn_admin(&["remove-datanode", "3"]);
    assert!(!ok && out.contains("still holds"), "{out}");
    let (ok, out) = server.cairn_admin(&["remove-datanode", "42"]);
    assert!(!ok && out.contains("no such datanode"), "{out}");

    // A repair scrub empties it while a reader goes over every object, then it goes.
    let reader = std::thread::spawn({
        let endpoint = server.endpoint();
        let objects = objects.clone();
        move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async {
                let s3 = client_for(&endpoint);
                for _ in 0..3 {
                    check_all(&s3, &objects).await;
                }
            })
        }
    });
    let (ok, out, err) = server.cairn("scrub", &["--repair"]);
    assert!(ok, "{out}{err}");
    let (ok, out) = server.cairn_admin(&["remove-datanode", "3"]);
    assert!(ok, "{out}");
    reader.join().expect("every object read while removing");
    check_all(&s3, &objects).await;

    // Gone from the listings, the ring and the console's view of the cluster.
    assert!(listed(&server).iter().all(|(id, _)| *id != 3));
    let (ids, ring) = status(&server);
    assert_eq!(ids, ["dn0", "dn1", "dn2", "dn4", "dn5", "dn6"], "{ring}");
    assert!(
        ring.contains("6 datanodes (6 placeable), drained: none"),
        "{ring}"
    );
    let session = super::console::console_login(&server, ACCESS_KEY, SECRET_KEY);
    let r = super::console::console_call(&server, "GET", "/console/api/cluster", &session);
    assert_eq!(r.status, 200, "{}", r.body_str());
    let console: Value = serde_json::from_slice(&r.body).unwrap();
    let in_ring: Vec<u64> = console["ring"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["node"].as_u64().unwrap())
        .collect();
    assert_eq!(in_ring, [0, 1, 2, 4, 5, 6], "the console's ring");
    let shown: Vec<u64> = console["datanodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_u64().unwrap())
        .collect();
    assert_eq!(shown, [0, 1, 2, 4, 5, 6], "the console's datanodes");
    // Six left for 4+2: no other datanode can be drained (so none removed).
    let (ok, out) = server.cairn_admin(&["drain-datanode", "4"]);
    assert!(!ok, "{out}");
    // Writes go on without it.
    put_bytes(&s3, BUCKET, "after", &random_bytes(3 << 20, 9)).await;
    let (ok, r, err) = server.cairn("scrub", &["--json"]);
    assert!(ok, "{r}{err}");

    // A restart leaves its directory alone (marked, not served, not listed).
    let dir = server.data.join("datanodes").join("dn3");
    assert!(dir.join("REMOVED").exists());
    server.restart();
    let s3 = client(&server);
    check_all(&s3, &objects).await;
    assert_eq!(
        status(&server).0,
        ["dn0", "dn1", "dn2", "dn4", "dn5", "dn6"]
    );

    // Without its marker file (as when its node was down during the removal) but not
    // wiped, the slot's removal marker in metadata still keeps it out, and marks it again.
    assert!(server.terminate());
    std::fs::remove_file(dir.join("REMOVED")).unwrap();
    server.restart();
    assert_eq!(
        status(&server).0,
        ["dn0", "dn1", "dn2", "dn4", "dn5", "dn6"]
    );
    assert!(dir.join("REMOVED").exists());

    // Wiped, it registers again as a new datanode and takes placements.
    assert!(server.terminate());
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    server.restart();
    let s3 = client(&server);
    let (ids, ring) = status(&server);
    assert_eq!(
        ids,
        ["dn0", "dn1", "dn2", "dn4", "dn5", "dn6", "dn7"],
        "{ring}"
    );
    assert!(ring.contains("7 datanodes (7 placeable)"), "{ring}");
    check_all(&s3, &objects).await;
}
