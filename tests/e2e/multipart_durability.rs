//! Multipart uploads and durability end to end: dead parts' shards are freed on disk,
//! deleting a bucket aborts its uploads, acknowledged parts survive SIGKILL.

use std::time::{Duration, Instant};

use crate::common::*;
use crate::multipart::{complete, create, multipart_etag, upload, MIB};

#[tokio::test(flavor = "multi_thread")]
async fn aborted_and_replaced_parts_free_their_shards() {
    let server = Server::start_with(&["--segment-size", "1048576", "--compaction-interval", "1"]);
    let s3 = client(&server);
    s3.create_bucket().bucket("gcb").send().await.unwrap();
    put_bytes(&s3, "gcb", "keep", &random_bytes(2 * MIB, 5)).await;
    let base = server.datanode_bytes();
    let id = create(&s3, "gcb", "doomed").await;
    for n in 1..=3 {
        upload(
            &s3,
            "gcb",
            "doomed",
            &id,
            n,
            random_bytes(5 * MIB, n as u64),
        )
        .await;
    }
    // Re-uploading part 2 twice: the replaced bodies are garbage at once.
    for seed in [10, 11] {
        upload(&s3, "gcb", "doomed", &id, 2, random_bytes(5 * MIB, seed)).await;
    }
    let full = server.datanode_bytes();
    assert!(
        full > base + (25 << 20),
        "5 × 5 MiB of parts plus parity, got {full} over {base}"
    );
    s3.abort_multipart_upload()
        .bucket("gcb")
        .key("doomed")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = server.datanode_bytes();
        if now < base + (4 << 20) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "disk use only fell from {full} to {now} (base {base})"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(get_bytes(&s3, "gcb", "keep").await == random_bytes(2 * MIB, 5));
    let r = s3
        .list_parts()
        .bucket("gcb")
        .key("doomed")
        .upload_id(&id)
        .send()
        .await;
    assert_eq!(code_of(&r.unwrap_err()).as_deref(), Some("NoSuchUpload"));
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_bucket_aborts_its_uploads() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("gone").send().await.unwrap();
    let id = create(&s3, "gone", "k").await;
    upload(&s3, "gone", "k", &id, 1, random_bytes(MIB, 4)).await;
    put_bytes(&s3, "gone", "obj", b"x").await;
    let err = s3.delete_bucket().bucket("gone").send().await.unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("BucketNotEmpty"));
    s3.delete_object()
        .bucket("gone")
        .key("obj")
        .send()
        .await
        .unwrap();
    // Only an upload in progress left: the bucket goes, and the upload with it.
    s3.delete_bucket().bucket("gone").send().await.unwrap();
    s3.create_bucket().bucket("gone").send().await.unwrap();
    let uploads = s3
        .list_multipart_uploads()
        .bucket("gone")
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty());
    let r = s3
        .list_parts()
        .bucket("gone")
        .key("k")
        .upload_id(&id)
        .send()
        .await;
    assert_eq!(code_of(&r.unwrap_err()).as_deref(), Some("NoSuchUpload"));
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_survive_a_crash_and_complete_after_restart() {
    let mut server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("crash").send().await.unwrap();
    let id = create(&s3, "crash", "k").await;
    let bodies = [
        random_bytes(5 * MIB, 31),
        random_bytes(5 * MIB + 9, 32),
        random_bytes(77, 33),
    ];
    let e1 = upload(&s3, "crash", "k", &id, 1, bodies[0].clone()).await;
    let e2 = upload(&s3, "crash", "k", &id, 2, bodies[1].clone()).await;
    // SIGKILL: acknowledged parts are durable.
    server.restart();
    let s3 = client(&server);
    let parts = s3
        .list_parts()
        .bucket("crash")
        .key("k")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    let listed: Vec<_> = parts
        .parts()
        .iter()
        .map(|p| (p.part_number().unwrap(), p.e_tag().unwrap().to_string()))
        .collect();
    assert_eq!(listed, [(1, e1.clone()), (2, e2.clone())]);
    let e3 = upload(&s3, "crash", "k", &id, 3, bodies[2].clone()).await;
    let etag = complete(&s3, "crash", "k", &id, &[(1, &e1), (2, &e2), (3, &e3)])
        .await
        .unwrap();
    let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
    assert_eq!(etag, multipart_etag(&refs));
    server.restart();
    let s3 = client(&server);
    assert!(get_bytes(&s3, "crash", "k").await == bodies.concat());
}
