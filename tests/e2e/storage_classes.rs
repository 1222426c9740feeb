//! Storage classes as a user meets them: aws-cli uploads with `--storage-class` (single and
//! multipart) and without, a class the operator adds with `cairn admin storage-class`, a
//! bucket default, copies that change the class; HEAD, ListObjectsV2 and `cairn status` show
//! it; unknown classes get `InvalidStorageClass`. Then datanodes are stopped one by one on
//! the default server (six datanodes): each class keeps every object readable while no more
//! datanodes are down than it has parity shards, and one more loses only that class's
//! objects. Last, a lost shard of a 4+1 object is rebuilt by `cairn repair` in its own
//! scheme.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use aws_sdk_s3::types::StorageClass;
use cairn_datanode::ShardStore;
use futures::{stream, StreamExt};

use crate::common::*;

const BUCKET: &str = "classes";
const MIB: usize = 1 << 20;

/// Runs aws-cli against `server`; panics with its output when it fails.
fn aws(server: &Server, args: &[&str]) -> String {
    let out = super::scripted::aws_env(&mut Command::new(super::scripted::tool("aws")))
        .args(["--endpoint-url", &server.endpoint()])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("could not run aws-cli: {e} (set CAIRN_VENV)"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "aws {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Writes `n` files of `size` bytes under `dir`, seeded from `seed`; returns their names.
fn files(dir: &Path, n: usize, size: usize, seed: u64) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    (0..n)
        .map(|i| {
            let name = format!("f{i}");
            std::fs::write(dir.join(&name), random_bytes(size, seed + i as u64)).unwrap();
            name
        })
        .collect()
}

/// Whether the object reads back exactly as `want`; `None` when it cannot be read at all.
async fn reads(s3: &aws_sdk_s3::Client, key: &str, want: &[u8]) -> Option<()> {
    let out = s3.get_object().bucket(BUCKET).key(key).send().await.ok()?;
    let got = out.body.collect().await.ok()?.into_bytes();
    assert!(
        got.as_ref() == want,
        "{key}: a read answered other bytes than were written"
    );
    Some(())
}

/// The class HEAD names (`None`: STANDARD, left out as S3 does).
async fn head_class(s3: &aws_sdk_s3::Client, key: &str) -> Option<StorageClass> {
    let h = s3
        .head_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap();
    h.storage_class().cloned()
}

/// How many of `objects` (key → bytes) cannot be read (never wrong bytes).
async fn unreadable(s3: &aws_sdk_s3::Client, objects: &BTreeMap<String, Vec<u8>>) -> usize {
    stream::iter(objects.iter())
        .map(|(k, v)| async move { reads(s3, k, v).await.is_none() })
        .buffer_unordered(6)
        .filter(|bad| std::future::ready(*bad))
        .count()
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn each_class_keeps_its_own_erasure_coding_through_datanode_losses() {
    if super::scripted::skip() {
        return;
    }
    let mut server = Server::start_with(&super::scrub::flags());
    let s3 = client(&server);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();

    // The operator's classes: refused when the cluster cannot hold them.
    let (ok, out) = server.cairn_admin(&["storage-class", "GLACIER", "--ec", "3+3"]);
    assert!(ok, "{out}");
    for (args, why) in [
        (["storage-class", "DEEP_ARCHIVE", "--ec", "8+4"], "needs 12"),
        (["storage-class", "STANDARD", "--ec", "2+1"], "--ec"),
        (
            ["storage-class", "COLD", "--ec", "2+1"],
            "not an S3 storage class",
        ),
    ] {
        let (ok, out) = server.cairn_admin(&args);
        assert!(!ok && out.contains(why), "{args:?}: {out}");
    }
    let (ok, status, err) = server.cairn("status", &[]);
    assert!(ok, "{status}{err}");
    assert!(
        status.contains(
            "storage classes: GLACIER 3+3, REDUCED_REDUNDANCY 4+1 (built-in), STANDARD 4+2"
        ),
        "{status}"
    );

    // aws-cli: a directory per class, small (2 stripes) and multipart (20 MiB) files.
    let tmp = tempfile::tempdir().unwrap();
    let mut objects: BTreeMap<&str, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    for (class, seed) in [
        ("STANDARD", 100),
        ("REDUCED_REDUNDANCY", 200),
        ("GLACIER", 300),
    ] {
        let dir = tmp.path().join(class);
        let mut names = files(&dir, 8, 5 * MIB, seed);
        let big = dir.join("big");
        std::fs::write(&big, random_bytes(20 * MIB, seed + 50)).unwrap();
        names.push("big".into());
        let dest = format!("s3://{BUCKET}/{class}/");
        let mut args = vec![
            "s3",
            "cp",
            "--recursive",
            "--quiet",
            dir.to_str().unwrap(),
            &dest,
        ];
        if class != "STANDARD" {
            args.extend(["--storage-class", class]);
        }
        aws(&server, &args);
        let set = objects.entry(class).or_default();
        for n in names {
            set.insert(format!("{class}/{n}"), std::fs::read(dir.join(&n)).unwrap());
        }
    }
    // HEAD (aws-cli and the SDK) and ListObjectsV2 name each object's class; STANDARD is
    // left out of HEAD, as S3 does.
    let head = aws(
        &server,
        &[
            "s3api",
            "head-object",
            "--bucket",
            BUCKET,
            "--key",
            "REDUCED_REDUNDANCY/big",
        ],
    );
    assert!(
        head.contains("\"StorageClass\": \"REDUCED_REDUNDANCY\""),
        "{head}"
    );
    for (class, set) in &objects {
        for key in set.keys() {
            let want = (*class != "STANDARD").then(|| StorageClass::from(*class));
            assert_eq!(head_class(&s3, key).await, want, "{key}");
        }
    }
    let listed = s3.list_objects_v2().bucket(BUCKET).send().await.unwrap();
    assert_eq!(listed.contents().len(), 27);
    for o in listed.contents() {
        let key = o.key().unwrap();
        let class = key.split('/').next().unwrap();
        assert_eq!(o.storage_class().map(|c| c.as_str()), Some(class), "{key}");
    }

    // Unknown classes, S3's or not, are refused before anything is stored.
    for bad in ["COLD", "STANDARD_IA"] {
        let err = s3
            .put_object()
            .bucket(BUCKET)
            .key("bad")
            .storage_class(StorageClass::from(bad))
            .body(vec![1u8; 1000].into())
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            code_of(&err).as_deref(),
            Some("InvalidStorageClass"),
            "{bad}"
        );
    }
    let err = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key("bad")
        .storage_class(StorageClass::from("DEEP_ARCHIVE"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("InvalidStorageClass"));

    // A bucket default applies to writes that name no class; a copy takes the class it is
    // given (or the default), never its source's; a copy onto itself may change the class.
    let (ok, out) = server.cairn_admin(&["bucket-storage-class", BUCKET, "GLACIER"]);
    assert!(ok, "{out}");
    let data = random_bytes(5 * MIB, 7);
    put_bytes(&s3, BUCKET, "GLACIER/by-default", &data).await;
    objects
        .get_mut("GLACIER")
        .unwrap()
        .insert("GLACIER/by-default".into(), data);
    let (ok, out) = server.cairn_admin(&["bucket-storage-class", BUCKET, "--clear"]);
    assert!(ok, "{out}");
    s3.copy_object()
        .bucket(BUCKET)
        .key("STANDARD/copied")
        .copy_source(format!("{BUCKET}/REDUCED_REDUNDANCY/f0"))
        .send()
        .await
        .unwrap();
    let copied = objects["REDUCED_REDUNDANCY"]["REDUCED_REDUNDANCY/f0"].clone();
    objects
        .get_mut("STANDARD")
        .unwrap()
        .insert("STANDARD/copied".into(), copied);
    let moved = objects
        .get_mut("STANDARD")
        .unwrap()
        .remove("STANDARD/f1")
        .unwrap();
    s3.copy_object()
        .bucket(BUCKET)
        .key("STANDARD/f1")
        .copy_source(format!("{BUCKET}/STANDARD/f1"))
        .storage_class(StorageClass::Glacier)
        .send()
        .await
        .unwrap();
    objects
        .get_mut("GLACIER")
        .unwrap()
        .insert("STANDARD/f1".into(), moved);
    for (key, class) in [
        ("STANDARD/copied", None),
        ("STANDARD/f1", Some(StorageClass::Glacier)),
        ("GLACIER/by-default", Some(StorageClass::Glacier)),
    ] {
        assert_eq!(head_class(&s3, key).await, class, "{key}");
    }

    // Datanodes lost one after another: a class reads while no more are down than its
    // parity shards; one more loses only objects of that class.
    let parity = [("REDUCED_REDUNDANCY", 1), ("STANDARD", 2), ("GLACIER", 3)];
    for down in 1..=4u32 {
        server.stop_datanode(down - 1);
        for (class, m) in parity {
            let lost = unreadable(&s3, &objects[class]).await;
            println!(
                "{down} datanode(s) down: {lost} of {} {class} objects unreadable",
                objects[class].len()
            );
            if down <= m {
                assert_eq!(lost, 0, "{class} ({m} parity) with {down} datanodes down");
            } else if down == m + 1 {
                assert!(
                    lost > 0,
                    "{class} ({m} parity) still fully readable with {down} down: not its scheme?"
                );
            }
        }
    }
    for i in 0..4 {
        server.start_datanode(i);
    }
    for (class, _) in parity {
        assert_eq!(
            unreadable(&s3, &objects[class]).await,
            0,
            "{class} once every datanode is back"
        );
    }

    // Every shard of dn5 lost while the server is down: `cairn repair` rebuilds each stripe
    // in its object's own scheme, so that one more lost datanode afterwards still leaves
    // every 4+1 object readable (without the rebuilt shards most would not be).
    assert!(server.terminate());
    let store = super::scrub::open_store(&super::scrub::dn_dir(&server, 5)).await;
    let lost = store.list(None, usize::MAX).await.unwrap();
    assert!(lost.len() > 20, "dn5 held {} shards", lost.len());
    for s in &lost {
        store.delete(s.id).await.unwrap();
    }
    store.close().await;
    server.restart();
    let s3 = client(&server);
    let (ok, out, err) = server.cairn("repair", &[]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains(&format!("repaired: missing {}", lost.len())),
        "{out}"
    );
    let (ok, out, err) = server.cairn("scrub", &["--deep"]);
    assert!(ok, "damage after the repair:\n{out}{err}");
    server.stop_datanode(0);
    assert_eq!(
        unreadable(&s3, &objects["REDUCED_REDUNDANCY"]).await,
        0,
        "4+1 objects after the repair, with dn0 stopped"
    );
}
