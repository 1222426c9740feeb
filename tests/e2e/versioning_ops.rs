//! Versioned copies (CopyObject and UploadPartCopy from old versions), DeleteObjects with
//! version ids, and the datanode space that deleting versions for good frees.

use std::time::{Duration, Instant};

use aws_sdk_s3::types::{
    BucketVersioningStatus, CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier,
};

use crate::common::*;
use crate::multipart::{create, MIB};
use crate::versioning::{get_version, put_version, set_versioning};

fn datanode_bytes(server: &Server) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(server.data.join("datanodes")).unwrap() {
        for f in std::fs::read_dir(e.unwrap().path()).unwrap() {
            total += f.unwrap().metadata().unwrap().len();
        }
    }
    total
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_objects_and_copies_with_versions() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("dvers").send().await.unwrap();
    set_versioning(&s3, "dvers", BucketVersioningStatus::Enabled).await;
    let old = random_bytes(200 * 1024, 7);
    let a1 = put_version(&s3, "dvers", "a", &old).await.unwrap();
    let a2 = put_version(&s3, "dvers", "a", b"new").await.unwrap();
    let b1 = put_version(&s3, "dvers", "b", b"bee").await.unwrap();

    // Copy from an old (erasure-coded) version.
    let copied = s3
        .copy_object()
        .bucket("dvers")
        .key("restored")
        .copy_source(format!("dvers/a?versionId={a1}"))
        .send()
        .await
        .unwrap();
    assert_eq!(copied.copy_source_version_id(), Some(a1.as_str()));
    let new_id = copied.version_id().unwrap().to_string();
    assert_eq!(get_version(&s3, "dvers", "restored", &new_id).await, old);
    // Copying an old version onto its own key restores it as the newest.
    s3.copy_object()
        .bucket("dvers")
        .key("a")
        .copy_source(format!("dvers/a?versionId={a1}"))
        .send()
        .await
        .unwrap();
    assert_eq!(get_bytes(&s3, "dvers", "a").await, old);
    let err = s3
        .copy_object()
        .bucket("dvers")
        .key("x")
        .copy_source("dvers/a?versionId=nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("NoSuchVersion"));

    // UploadPartCopy from an old version.
    let up = create(&s3, "dvers", "mpcopy").await;
    let part = s3
        .upload_part_copy()
        .bucket("dvers")
        .key("mpcopy")
        .upload_id(&up)
        .part_number(1)
        .copy_source(format!("dvers/a?versionId={a1}"))
        .send()
        .await
        .unwrap();
    assert_eq!(part.copy_source_version_id(), Some(a1.as_str()));
    let etag = part
        .copy_part_result()
        .unwrap()
        .e_tag()
        .unwrap()
        .to_string();
    s3.complete_multipart_upload()
        .bucket("dvers")
        .key("mpcopy")
        .upload_id(&up)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(CompletedPart::builder().part_number(1).e_tag(etag).build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(get_bytes(&s3, "dvers", "mpcopy").await, old);

    // DeleteObjects: one version by id, one key without (a marker).
    let ids = |k: &str, v: Option<&str>| {
        ObjectIdentifier::builder()
            .key(k)
            .set_version_id(v.map(str::to_string))
            .build()
            .unwrap()
    };
    let out = s3
        .delete_objects()
        .bucket("dvers")
        .delete(
            Delete::builder()
                .objects(ids("a", Some(&a2)))
                .objects(ids("b", None))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let deleted = out.deleted();
    assert_eq!(deleted.len(), 2);
    let a = deleted.iter().find(|d| d.key() == Some("a")).unwrap();
    assert_eq!(a.version_id(), Some(a2.as_str()));
    assert_ne!(a.delete_marker(), Some(true));
    let b = deleted.iter().find(|d| d.key() == Some("b")).unwrap();
    assert_eq!(b.delete_marker(), Some(true));
    let marker = b.delete_marker_version_id().unwrap().to_string();
    let err = s3
        .get_object()
        .bucket("dvers")
        .key("a")
        .version_id(&a2)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("NoSuchVersion"));
    let err = s3
        .get_object()
        .bucket("dvers")
        .key("b")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("NoSuchKey"));
    // Removing the marker with DeleteObjects brings b back.
    let out = s3
        .delete_objects()
        .bucket("dvers")
        .delete(
            Delete::builder()
                .objects(ids("b", Some(&marker)))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(out.deleted()[0].delete_marker(), Some(true));
    assert_eq!(
        out.deleted()[0].delete_marker_version_id(),
        Some(marker.as_str())
    );
    assert_eq!(get_version(&s3, "dvers", "b", &b1).await, b"bee");
    assert_eq!(get_bytes(&s3, "dvers", "b").await, b"bee");
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_versions_for_good_frees_datanode_space() {
    // Small segments and a compaction pass every second, so that freed space shows soon.
    let server = Server::start_with(&["--segment-size", "1048576", "--compaction-interval", "1"]);
    let s3 = client(&server);
    s3.create_bucket().bucket("gcv").send().await.unwrap();
    set_versioning(&s3, "gcv", BucketVersioningStatus::Enabled).await;
    const N: u64 = 10;
    let mut ids = Vec::new();
    for i in 0..N {
        ids.push(
            put_version(&s3, "gcv", "k", &random_bytes(2 * MIB, 100 + i))
                .await
                .unwrap(),
        );
    }
    let full = datanode_bytes(&server);
    assert!(full > N * 2 * MIB as u64, "all versions are kept: {full}");
    // An overwrite in a versioned bucket frees nothing: wait a few compaction passes.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(datanode_bytes(&server) >= full * 9 / 10);
    for id in &ids[..N as usize - 1] {
        s3.delete_object()
            .bucket("gcv")
            .key("k")
            .version_id(id)
            .send()
            .await
            .unwrap();
    }
    assert_eq!(
        get_bytes(&s3, "gcv", "k").await,
        random_bytes(2 * MIB, 100 + N - 1)
    );
    let started = Instant::now();
    let target = full * 2 / 5;
    loop {
        let now = datanode_bytes(&server);
        if now <= target {
            println!(
                "deleting {} of {N} versions: {} MiB -> {} MiB in {:.1?}",
                N - 1,
                full >> 20,
                now >> 20,
                started.elapsed()
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "datanodes still use {now} of {full} bytes"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
