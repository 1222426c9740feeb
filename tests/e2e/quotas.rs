//! Bucket quotas in a three-node cluster: concurrent writers through every gateway cannot
//! take a bucket past its quota (objects or bytes) — the metadata state machine decides each
//! commit — and the usage the cluster reports stays exact through a SIGKILL of the metadata
//! leader and through deletes, multipart parts included.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use cairn_tests::cluster::Cluster;
use serde_json::Value;

use crate::common::*;

fn quota_view(c: &Cluster, i: usize, bucket: &str) -> Value {
    let r = c
        .node(i)
        .admin_call("GET", &format!("/admin/buckets/{bucket}/quota"), "");
    assert_eq!(r.status, 200, "{}", r.body_str());
    serde_json::from_slice(&r.body).unwrap()
}

/// What the bucket holds by listing: (bytes, objects).
async fn listed(s3: &Client, bucket: &str) -> (u64, u64) {
    let (mut bytes, mut objects) = (0, 0);
    let mut pages = s3.list_objects_v2().bucket(bucket).into_paginator().send();
    while let Some(page) = pages.next().await {
        for o in page.unwrap().contents() {
            bytes += o.size().unwrap() as u64;
            objects += 1;
        }
    }
    (bytes, objects)
}

/// Writers through all three gateways, each PUTting new keys of `size` bytes until the
/// quota has refused it three times; the number of acknowledged PUTs.
async fn fill(s3: &[Client], bucket: &str, size: usize) -> u64 {
    let acked = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..6usize {
        let (s3, acked, bucket) = (s3[w % 3].clone(), acked.clone(), bucket.to_string());
        writers.push(tokio::spawn(async move {
            let mut refused = 0;
            let mut n = 0u64;
            while refused < 3 {
                n += 1;
                let r = s3
                    .put_object()
                    .bucket(&bucket)
                    .key(format!("w{w}/{n}"))
                    .body(ByteStream::from(random_bytes(size, n * 10 + w as u64)))
                    .send()
                    .await;
                match r {
                    Ok(_) => {
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    // A busy cluster may answer 503 (the write's outcome is then unknown:
                    // the listing below counts what landed).
                    Err(e)
                        if matches!(
                            code_of(&e).as_deref(),
                            Some("ServiceUnavailable" | "SlowDown")
                        ) => {}
                    Err(e) => {
                        assert_eq!(code_of(&e).as_deref(), Some("QuotaExceeded"), "{e:?}");
                        refused += 1;
                    }
                }
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    acked.load(Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 6)]
async fn concurrent_writers_cannot_pass_a_quota_and_usage_stays_exact() {
    let mut c = Cluster::start(
        3,
        2,
        &[
            "--ec",
            "4+2",
            "--raft-election-ms",
            "600",
            "--heartbeat-secs",
            "0.5",
        ],
    );
    c.wait_datanodes(6, Duration::from_secs(30));
    let s3: Vec<Client> = (0..3).map(|i| no_retry(c.node(i))).collect();
    for b in ["by-count", "by-size"] {
        s3[0].create_bucket().bucket(b).send().await.unwrap();
    }
    let (ok, out) = c
        .node(1)
        .cairn_admin(&["bucket-quota", "by-count", "--max-objects", "40"]);
    assert!(ok, "{out}");
    let (ok, out) = c
        .node(2)
        .cairn_admin(&["bucket-quota", "by-size", "--max-bytes", "300K"]);
    assert!(ok, "{out}");
    assert!(out.contains("307200"), "{out}");

    // Objects: exactly up to the limit, never past it.
    let acked = fill(&s3, "by-count", 2000).await;
    assert!(
        acked <= 40,
        "every acknowledged PUT fits the quota: {acked}"
    );
    assert_eq!(
        listed(&s3[0], "by-count").await,
        (80_000, 40),
        "and the quota fills"
    );
    // Bytes: 10 KiB objects under 300 KiB.
    let acked = fill(&s3, "by-size", 10 << 10).await;
    assert!(acked <= 30, "{acked}");
    assert_eq!(listed(&s3[0], "by-size").await, (30 * (10 << 10), 30));
    let v = quota_view(&c, 0, "by-size");
    assert_eq!(v["usage"]["bytes"], 30 * (10 << 10), "{v}");
    // A multipart part counts its bytes: the bucket is full.
    let up = s3[1]
        .create_multipart_upload()
        .bucket("by-size")
        .key("big")
        .send()
        .await
        .unwrap();
    let part = s3[1]
        .upload_part()
        .bucket("by-size")
        .key("big")
        .upload_id(up.upload_id().unwrap())
        .part_number(1)
        .body(ByteStream::from(vec![7u8; 1024]))
        .send()
        .await;
    assert_eq!(
        code_of(&part.unwrap_err()).as_deref(),
        Some("QuotaExceeded")
    );

    // The leader dies; the new one reports the same exact usage.
    let leader = c.leader(Duration::from_secs(20));
    c.kill(leader);
    let new_leader = c.leader(Duration::from_secs(20));
    for (b, bytes, objects) in [
        ("by-count", 80_000u64, 40u64),
        ("by-size", 30 * (10 << 10), 30),
    ] {
        let v = quota_view(&c, new_leader, b);
        assert_eq!(
            (v["usage"]["bytes"].as_u64(), v["usage"]["objects"].as_u64()),
            (Some(bytes), Some(objects)),
            "{v}"
        );
    }
    // Deleting frees exactly what the objects held, and room for as many new ones.
    let s3 = &s3[new_leader];
    for n in 1..=5 {
        s3.delete_object()
            .bucket("by-count")
            .key(format!("w0/{n}"))
            .send()
            .await
            .unwrap();
    }
    let v = quota_view(&c, new_leader, "by-count");
    assert_eq!(
        (v["usage"]["bytes"].as_u64(), v["usage"]["objects"].as_u64()),
        (Some(70_000), Some(35)),
        "{v}"
    );
    for n in 0..5 {
        s3.put_object()
            .bucket("by-count")
            .key(format!("again/{n}"))
            .body(ByteStream::from(vec![1u8; 100]))
            .send()
            .await
            .unwrap();
    }
    let r = s3
        .put_object()
        .bucket("by-count")
        .key("one-too-many")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert_eq!(code_of(&r.unwrap_err()).as_deref(), Some("QuotaExceeded"));
    let v = quota_view(&c, new_leader, "by-count");
    assert_eq!(v["usage"]["objects"], 40, "{v}");
    assert_eq!(v["usage"]["bytes"], 70_500, "{v}");
    assert_eq!(listed(s3, "by-count").await, (70_500, 40));
    // `cairn status` shows usage against the quota.
    let (ok, out, _) = c.node(new_leader).cairn("status", &[]);
    assert!(ok, "{out}");
    assert!(
        out.contains("quota: bucket by-count: 70500 bytes (no limit), 40 of 40 objects"),
        "{out}"
    );
    // Clearing the quota lets writes through again.
    let (ok, out) = c
        .node(new_leader)
        .cairn_admin(&["bucket-quota", "by-count", "--clear"]);
    assert!(ok, "{out}");
    s3.put_object()
        .bucket("by-count")
        .key("one-too-many")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
}
