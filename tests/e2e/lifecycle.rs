//! Lifecycle rules through real clients: the configuration API (S3's validation, the
//! document read back as it was put, `x-amz-expiration`), and the worker in a three-node
//! cluster with a lifecycle day of two seconds — about 2,000 objects under prefix, tag, size,
//! noncurrent (NewerNoncurrentVersions), expired-delete-marker and multipart rules, the
//! metadata leader SIGKILLed in the middle of a run, and afterwards exactly the objects the
//! rules name gone and every other byte-exact.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    AbortIncompleteMultipartUpload, BucketLifecycleConfiguration, BucketVersioningStatus,
    ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleAndOperator,
    LifecycleRuleFilter, NoncurrentVersionExpiration, Tag, VersioningConfiguration,
};
use aws_sdk_s3::Client;
use cairn_tests::cluster::Cluster;
use futures::StreamExt;
use serde_json::Value;

use crate::common::*;

fn rule(id: &str) -> aws_sdk_s3::types::builders::LifecycleRuleBuilder {
    LifecycleRule::builder()
        .id(id)
        .status(ExpirationStatus::Enabled)
}

fn prefix(p: &str) -> LifecycleRuleFilter {
    LifecycleRuleFilter::builder().prefix(p).build()
}

fn days(d: i32) -> LifecycleExpiration {
    LifecycleExpiration::builder().days(d).build()
}

async fn put_rules(s3: &Client, bucket: &str, rules: Vec<LifecycleRule>) {
    s3.put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .set_rules(Some(rules))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn configurations_are_validated_stored_and_reported() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("rules").send().await.unwrap();
    let none = s3
        .get_bucket_lifecycle_configuration()
        .bucket("rules")
        .send()
        .await;
    assert_eq!(
        code_of(&none.unwrap_err()).as_deref(),
        Some("NoSuchLifecycleConfiguration")
    );
    // S3's refusals.
    let bad = |r: LifecycleRule| {
        let s3 = s3.clone();
        async move {
            let e = s3
                .put_bucket_lifecycle_configuration()
                .bucket("rules")
                .lifecycle_configuration(
                    BucketLifecycleConfiguration::builder()
                        .rules(r)
                        .build()
                        .unwrap(),
                )
                .send()
                .await
                .unwrap_err();
            code_of(&e)
        }
    };
    assert_eq!(
        bad(rule(&"a".repeat(256))
            .filter(prefix(""))
            .expiration(days(1))
            .build()
            .unwrap())
        .await
        .as_deref(),
        Some("InvalidArgument")
    );
    assert_eq!(
        bad(rule("zero")
            .filter(prefix(""))
            .expiration(days(0))
            .build()
            .unwrap())
        .await
        .as_deref(),
        Some("InvalidArgument")
    );
    assert_eq!(
        bad(rule("none").filter(prefix("")).build().unwrap())
            .await
            .as_deref(),
        Some("InvalidRequest")
    );
    // Stored as put, a missing id made up.
    put_rules(
        &s3,
        "rules",
        vec![
            rule("logs")
                .filter(prefix("logs/"))
                .expiration(days(7))
                .build()
                .unwrap(),
            LifecycleRule::builder()
                .status(ExpirationStatus::Disabled)
                .filter(
                    LifecycleRuleFilter::builder()
                        .and(
                            LifecycleRuleAndOperator::builder()
                                .prefix("tmp/")
                                .tags(Tag::builder().key("k").value("v").build().unwrap())
                                .object_size_greater_than(10)
                                .build(),
                        )
                        .build(),
                )
                .expiration(days(3))
                .build()
                .unwrap(),
        ],
    )
    .await;
    let got = s3
        .get_bucket_lifecycle_configuration()
        .bucket("rules")
        .send()
        .await
        .unwrap();
    assert_eq!(got.rules().len(), 2);
    assert_eq!(got.rules()[0].id(), Some("logs"));
    assert_eq!(got.rules()[0].expiration().unwrap().days(), Some(7));
    let and = got.rules()[1].filter().unwrap().and().unwrap();
    assert_eq!(
        (and.prefix(), and.object_size_greater_than()),
        (Some("tmp/"), Some(10))
    );
    assert!(got.rules()[1].id().is_some_and(|id| !id.is_empty()));
    // x-amz-expiration on PUT and HEAD of what a rule expires, none on the rest.
    let put = s3
        .put_object()
        .bucket("rules")
        .key("logs/a")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    let exp = put.expiration().expect("x-amz-expiration on PUT");
    assert!(
        exp.starts_with("expiry-date=\"") && exp.ends_with("GMT\", rule-id=\"logs\""),
        "{exp}"
    );
    let head = s3
        .head_object()
        .bucket("rules")
        .key("logs/a")
        .send()
        .await
        .unwrap();
    assert_eq!(head.expiration(), Some(exp));
    let other = s3
        .put_object()
        .bucket("rules")
        .key("other")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.expiration(), None);
    s3.delete_bucket_lifecycle()
        .bucket("rules")
        .send()
        .await
        .unwrap();
    let none = s3
        .get_bucket_lifecycle_configuration()
        .bucket("rules")
        .send()
        .await;
    assert_eq!(
        code_of(&none.unwrap_err()).as_deref(),
        Some("NoSuchLifecycleConfiguration")
    );
}

/// What one key should hold when the rules are done: its bodies, newest first (empty: gone).
type Expected = BTreeMap<String, Vec<(String, Vec<u8>)>>;

async fn put(s3: &Client, bucket: &str, key: &str, body: Vec<u8>, tags: Option<&str>) -> String {
    let mut req = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body));
    if let Some(t) = tags {
        req = req.tagging(t);
    }
    req.send()
        .await
        .unwrap()
        .version_id()
        .unwrap_or("null")
        .to_string()
}

fn status(c: &Cluster, i: usize) -> Option<Value> {
    let r = c.node(i).admin_call("GET", "/admin/status", "");
    (r.status == 200)
        .then(|| serde_json::from_slice(&r.body).ok())
        .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 6)]
async fn rules_expire_exactly_what_they_name_across_a_leader_kill() {
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
            "--lifecycle-day-secs",
            "2",
            "--lifecycle-rate",
            "100",
        ],
    );
    c.wait_datanodes(6, Duration::from_secs(30));
    let s3: Vec<Client> = (0..3).map(|i| client(c.node(i))).collect();
    s3[0].create_bucket().bucket("plain").send().await.unwrap();
    s3[0]
        .create_bucket()
        .bucket("history")
        .send()
        .await
        .unwrap();
    s3[0]
        .put_bucket_versioning()
        .bucket("history")
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();

    // 1,600 objects in an unversioned bucket, through all three gateways.
    let mut jobs = Vec::new();
    for i in 0..400u64 {
        let small = random_bytes(1000, i);
        let sized = random_bytes(if i % 2 == 0 { 3000 } else { 1000 }, 10_000 + i);
        jobs.push((
            "logs/".to_string() + &i.to_string(),
            random_bytes(200, 20_000 + i),
            None,
            true,
        ));
        jobs.push((format!("keep/{i}"), small, None, false));
        jobs.push((
            format!("tmp/{i}"),
            random_bytes(300, 30_000 + i),
            (i % 2 == 0).then_some("class=scratch"),
            i % 2 == 0,
        ));
        jobs.push((format!("media/{i}"), sized, None, i % 2 == 0));
    }
    let mut expected_plain = BTreeMap::new();
    let written: Vec<_> = futures::stream::iter(jobs.into_iter().enumerate())
        .map(|(n, (key, body, tags, expires))| {
            let s3 = s3[n % 3].clone();
            async move {
                put(&s3, "plain", &key, body.clone(), tags).await;
                (key, body, expires)
            }
        })
        .buffer_unordered(24)
        .collect()
        .await;
    for (key, body, expires) in written {
        if !expires {
            expected_plain.insert(key, body);
        }
    }
    // A versioned bucket: 60 keys of 4 versions, 60 deleted keys, 100 untouched keys, and
    // multipart uploads left incomplete.
    let mut expected_history: Expected = BTreeMap::new();
    let hist: Vec<_> = futures::stream::iter(0..60u64)
        .map(|i| {
            let s3 = s3[i as usize % 3].clone();
            async move {
                let key = format!("hist/{i}");
                let mut versions = Vec::new();
                for v in 0..4 {
                    let body = random_bytes(500, 40_000 + i * 10 + v);
                    let id = put(&s3, "history", &key, body.clone(), None).await;
                    versions.push((id, body));
                }
                versions.reverse();
                versions.truncate(2); // current + the newest noncurrent stay
                (key, versions)
            }
        })
        .buffer_unordered(12)
        .collect()
        .await;
    expected_history.extend(hist);
    for i in 0..60u64 {
        let key = format!("dm/{i}");
        put(&s3[0], "history", &key, random_bytes(100, 50_000 + i), None).await;
        s3[1]
            .delete_object()
            .bucket("history")
            .key(&key)
            .send()
            .await
            .unwrap();
    }
    for i in 0..100u64 {
        let key = format!("live/{i}");
        let body = random_bytes(700, 60_000 + i);
        let id = put(&s3[2], "history", &key, body.clone(), None).await;
        expected_history.insert(key, vec![(id, body)]);
    }
    // Every object written so far is due two seconds (one lifecycle day) from now.
    let due_ms = cairn_types::clock::now_ms() + 2_000;
    let mut kept_uploads = BTreeSet::new();
    for (prefix, n) in [("mpu/", 5), ("keepmpu/", 2)] {
        for i in 0..n {
            let key = format!("{prefix}{i}");
            s3[0]
                .create_multipart_upload()
                .bucket("history")
                .key(&key)
                .send()
                .await
                .unwrap();
            if prefix == "keepmpu/" {
                kept_uploads.insert(key);
            }
        }
    }

    put_rules(
        &s3[0],
        "plain",
        vec![
            rule("logs")
                .filter(prefix("logs/"))
                .expiration(days(1))
                .build()
                .unwrap(),
            rule("not-yet")
                .filter(prefix("keep/"))
                .expiration(days(1000))
                .build()
                .unwrap(),
            rule("scratch")
                .filter(
                    LifecycleRuleFilter::builder()
                        .tag(
                            Tag::builder()
                                .key("class")
                                .value("scratch")
                                .build()
                                .unwrap(),
                        )
                        .build(),
                )
                .expiration(days(1))
                .build()
                .unwrap(),
            rule("big")
                .filter(
                    LifecycleRuleFilter::builder()
                        .and(
                            LifecycleRuleAndOperator::builder()
                                .prefix("media/")
                                .object_size_greater_than(2000)
                                .build(),
                        )
                        .build(),
                )
                .expiration(days(1))
                .build()
                .unwrap(),
        ],
    )
    .await;
    put_rules(
        &s3[1],
        "history",
        vec![
            rule("hist")
                .filter(prefix("hist/"))
                .noncurrent_version_expiration(
                    NoncurrentVersionExpiration::builder()
                        .noncurrent_days(1)
                        .newer_noncurrent_versions(1)
                        .build(),
                )
                .build()
                .unwrap(),
            rule("dm")
                .filter(prefix("dm/"))
                .expiration(
                    LifecycleExpiration::builder()
                        .expired_object_delete_marker(true)
                        .build(),
                )
                .noncurrent_version_expiration(
                    NoncurrentVersionExpiration::builder()
                        .noncurrent_days(1)
                        .build(),
                )
                .build()
                .unwrap(),
            rule("uploads")
                .filter(prefix("mpu/"))
                .abort_incomplete_multipart_upload(
                    AbortIncompleteMultipartUpload::builder()
                        .days_after_initiation(1)
                        .build(),
                )
                .build()
                .unwrap(),
        ],
    )
    .await;

    // Kill the metadata leader while a run is under way.
    let leader = c.leader(Duration::from_secs(20));
    let observer = (leader + 1) % 3;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = None;
    let at_kill = loop {
        if let Some(v) = status(&c, observer) {
            last = Some(v["lifecycle"].clone());
            let l = &v["lifecycle"];
            let t = &l["this_run"];
            let done =
                t["expired"].as_u64().unwrap_or(0) + t["noncurrent_removed"].as_u64().unwrap_or(0);
            if l["bucket"].is_string() && done >= 100 {
                break l.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "no lifecycle run got under way: {last:?} {:?}",
            status(&c, leader).map(|v| v["workers"].clone())
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    c.kill(leader);
    let new_leader = c.leader(Duration::from_secs(20));
    assert_ne!(new_leader, leader);
    // The new leader continues that run and finishes it.
    let deadline = Instant::now() + Duration::from_secs(120);
    let finished = loop {
        if let Some(v) = status(&c, new_leader) {
            let l = &v["lifecycle"];
            if l["resumed"].as_u64().unwrap_or(0) >= 1
                && l["run"].as_u64() > at_kill["run"].as_u64()
            {
                break l.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "the run was not continued to its end: {at_kill:#} now {:#}",
            status(&c, new_leader)
                .map(|v| (v["lifecycle"].clone(), v["workers"].clone()))
                .unwrap_or_default()
                .1
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!("lifecycle run at the kill: {at_kill}\nafter: {finished}");
    // A run may start before some objects are due (they go in the next one): wait for a
    // whole run that started once everything was due.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut due_run = None;
    loop {
        if let Some(v) = status(&c, new_leader) {
            let l = &v["lifecycle"];
            let (run, started) = (
                l["run"].as_u64().unwrap_or(0),
                l["run_started_ms"].as_i64().unwrap_or(0),
            );
            if due_run.is_none() && started > due_ms {
                due_run = Some(run);
            }
            if due_run.is_some_and(|r| run > r || (run == r && l["bucket"].is_null())) {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no run after the objects were due finished"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Exactly what the rules name is gone; everything else is intact.
    let s3 = &s3[new_leader];
    let mut listed = BTreeSet::new();
    let mut pages = s3.list_objects_v2().bucket("plain").into_paginator().send();
    while let Some(page) = pages.next().await {
        for o in page.unwrap().contents() {
            listed.insert(o.key().unwrap().to_string());
        }
    }
    let want: BTreeSet<String> = expected_plain.keys().cloned().collect();
    assert_eq!(
        listed.len(),
        want.len(),
        "objects left in the unversioned bucket"
    );
    assert_eq!(listed, want);
    let bodies: Vec<_> = futures::stream::iter(expected_plain.iter())
        .map(|(k, body)| async move {
            let got = s3.get_object().bucket("plain").key(k).send().await.unwrap();
            (
                k,
                got.body.collect().await.unwrap().into_bytes().to_vec() == *body,
            )
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert!(
        bodies.iter().all(|(_, same)| *same),
        "every kept object byte-exact"
    );

    let mut history: Expected = BTreeMap::new();
    let mut markers = 0;
    let (mut key_marker, mut id_marker) = (None::<String>, None::<String>);
    loop {
        let page = s3
            .list_object_versions()
            .bucket("history")
            .set_key_marker(key_marker.clone())
            .set_version_id_marker(id_marker.clone())
            .send()
            .await
            .unwrap();
        markers += page.delete_markers().len();
        for v in page.versions() {
            history
                .entry(v.key().unwrap().to_string())
                .or_default()
                .push((v.version_id().unwrap().to_string(), Vec::new()));
        }
        if !page.is_truncated().unwrap_or(false) {
            break;
        }
        key_marker = page.next_key_marker().map(str::to_string);
        id_marker = page.next_version_id_marker().map(str::to_string);
    }
    assert_eq!(markers, 0, "every expired delete marker is gone");
    let ids = |e: &Expected| -> BTreeMap<String, Vec<String>> {
        e.iter()
            .map(|(k, v)| (k.clone(), v.iter().map(|(id, _)| id.clone()).collect()))
            .collect()
    };
    assert_eq!(
        ids(&history),
        ids(&expected_history),
        "versions left in the versioned bucket"
    );
    for (key, versions) in &expected_history {
        for (id, body) in versions {
            let got = s3
                .get_object()
                .bucket("history")
                .key(key)
                .version_id(id)
                .send()
                .await
                .unwrap();
            assert_eq!(
                &got.body.collect().await.unwrap().into_bytes().to_vec(),
                body,
                "{key} {id}"
            );
        }
    }
    let uploads = s3
        .list_multipart_uploads()
        .bucket("history")
        .send()
        .await
        .unwrap();
    let left: BTreeSet<String> = uploads
        .uploads()
        .iter()
        .map(|u| u.key().unwrap().to_string())
        .collect();
    assert_eq!(left, kept_uploads);
}
