//! Object Lock against an attacker holding the root key: a bucket with a default COMPLIANCE
//! retention of one day, and every way Cairn offers to remove or overwrite a version — S3
//! deletes with and without version ids, DeleteObjects, overwrites, bypass headers, shorter
//! or weaker retention, legal holds, lifecycle expiration, the console and the admin tools.
//! Every protected version must stay byte-exact. Also GOVERNANCE retention and legal holds
//! through real clients, and the bucket-level rules.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    BucketLifecycleConfiguration, BucketVersioningStatus, DefaultRetention, Delete,
    ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter,
    NoncurrentVersionExpiration, ObjectIdentifier, ObjectLockConfiguration, ObjectLockEnabled,
    ObjectLockLegalHold, ObjectLockLegalHoldStatus, ObjectLockMode, ObjectLockRetention,
    ObjectLockRetentionMode, ObjectLockRule, VersioningConfiguration,
};
use aws_sdk_s3::Client;

use crate::common::*;

const BUCKET: &str = "vault";

async fn lock_bucket(s3: &Client, bucket: &str, default: Option<(ObjectLockRetentionMode, i32)>) {
    s3.create_bucket()
        .bucket(bucket)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    if let Some((mode, days)) = default {
        s3.put_object_lock_configuration()
            .bucket(bucket)
            .object_lock_configuration(
                ObjectLockConfiguration::builder()
                    .object_lock_enabled(ObjectLockEnabled::Enabled)
                    .rule(
                        ObjectLockRule::builder()
                            .default_retention(
                                DefaultRetention::builder().mode(mode).days(days).build(),
                            )
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
}

async fn legal_hold(
    s3: &Client,
    bucket: &str,
    key: &str,
    vid: &str,
    on: ObjectLockLegalHoldStatus,
) {
    s3.put_object_legal_hold()
        .bucket(bucket)
        .key(key)
        .version_id(vid)
        .legal_hold(ObjectLockLegalHold::builder().status(on).build())
        .send()
        .await
        .unwrap();
}

/// Every version of the bucket: (key, version id) → body.
async fn versions(s3: &Client, bucket: &str) -> BTreeMap<(String, String), Vec<u8>> {
    let out = s3
        .list_object_versions()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    assert!(!out.is_truncated().unwrap_or(false));
    let mut all = BTreeMap::new();
    for v in out.versions() {
        let (k, id) = (v.key().unwrap(), v.version_id().unwrap());
        let body = s3
            .get_object()
            .bucket(bucket)
            .key(k)
            .version_id(id)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes()
            .to_vec();
        all.insert((k.to_string(), id.to_string()), body);
    }
    all
}

fn denied<T, E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    r: Result<T, aws_sdk_s3::error::SdkError<E, R>>,
    what: &str,
) {
    match r {
        Ok(_) => panic!("{what}: succeeded"),
        Err(e) => assert_eq!(
            code_of(&e).as_deref(),
            Some("AccessDenied"),
            "{what}: {e:?}"
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_root_key_attacker_cannot_destroy_compliance_locked_versions() {
    let server = Server::start_with(&["--lifecycle-day-secs", "1"]);
    let s3 = client(&server);
    lock_bucket(&s3, BUCKET, Some((ObjectLockRetentionMode::Compliance, 1))).await;
    for i in 0..6 {
        s3.put_object()
            .bucket(BUCKET)
            .key(format!("backup-{i}"))
            .body(ByteStream::from(random_bytes(1000 + i * 7000, i as u64)))
            .send()
            .await
            .unwrap();
    }
    let protected = versions(&s3, BUCKET).await;
    assert_eq!(protected.len(), 6);
    // Every version got the default retention, visible on HEAD.
    let (k0, v0) = protected.keys().next().unwrap().clone();
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key(&k0)
        .send()
        .await
        .unwrap();
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Compliance));
    let until = head.object_lock_retain_until_date().unwrap().secs();
    let now = DateTime::from(std::time::SystemTime::now()).secs();
    assert!(
        (until - now - 86_400).abs() < 120,
        "one day of retention: {until} vs {now}"
    );

    // 1. Deleting by version id, with and without the bypass header.
    for (k, v) in protected.keys() {
        denied(
            s3.delete_object()
                .bucket(BUCKET)
                .key(k)
                .version_id(v)
                .send()
                .await,
            "delete version",
        );
        denied(
            s3.delete_object()
                .bucket(BUCKET)
                .key(k)
                .version_id(v)
                .bypass_governance_retention(true)
                .send()
                .await,
            "delete version with bypass",
        );
    }
    // 2. DeleteObjects naming every version, with bypass: one AccessDenied per version.
    let ids: Vec<ObjectIdentifier> = protected
        .keys()
        .map(|(k, v)| {
            ObjectIdentifier::builder()
                .key(k)
                .version_id(v)
                .build()
                .unwrap()
        })
        .collect();
    let out = s3
        .delete_objects()
        .bucket(BUCKET)
        .bypass_governance_retention(true)
        .delete(
            Delete::builder()
                .set_objects(Some(ids))
                .quiet(true)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(out.errors().len(), 6, "{out:?}");
    assert!(out
        .errors()
        .iter()
        .all(|e| e.code() == Some("AccessDenied")));
    // 3. Deleting without a version id only hides the objects behind delete markers, and an
    //    overwrite only adds a version.
    s3.delete_object()
        .bucket(BUCKET)
        .key("backup-0")
        .send()
        .await
        .unwrap();
    s3.put_object()
        .bucket(BUCKET)
        .key("backup-1")
        .body(ByteStream::from_static(b"ransom note"))
        .send()
        .await
        .unwrap();
    // 4. Shortening, weakening or removing the retention; the legal hold does not unlock.
    let short = DateTime::from_secs(now + 60);
    denied(
        s3.put_object_retention()
            .bucket(BUCKET)
            .key(&k0)
            .version_id(&v0)
            .bypass_governance_retention(true)
            .retention(
                ObjectLockRetention::builder()
                    .mode(ObjectLockRetentionMode::Compliance)
                    .retain_until_date(short)
                    .build(),
            )
            .send()
            .await,
        "shorten compliance",
    );
    denied(
        s3.put_object_retention()
            .bucket(BUCKET)
            .key(&k0)
            .version_id(&v0)
            .bypass_governance_retention(true)
            .retention(
                ObjectLockRetention::builder()
                    .mode(ObjectLockRetentionMode::Governance)
                    .retain_until_date(DateTime::from_secs(until + 10))
                    .build(),
            )
            .send()
            .await,
        "compliance to governance",
    );
    denied(
        s3.put_object_retention()
            .bucket(BUCKET)
            .key(&k0)
            .version_id(&v0)
            .bypass_governance_retention(true)
            .retention(ObjectLockRetention::builder().build())
            .send()
            .await,
        "remove retention",
    );
    legal_hold(&s3, BUCKET, &k0, &v0, ObjectLockLegalHoldStatus::Off).await;
    denied(
        s3.delete_object()
            .bucket(BUCKET)
            .key(&k0)
            .version_id(&v0)
            .send()
            .await,
        "delete after legal hold off",
    );
    // 5. Versioning cannot be suspended (which would let overwrites replace versions).
    let suspend = s3
        .put_bucket_versioning()
        .bucket(BUCKET)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Suspended)
                .build(),
        )
        .send()
        .await;
    assert_eq!(
        code_of(&suspend.unwrap_err()).as_deref(),
        Some("InvalidBucketState")
    );
    // 6. Lifecycle rules that would expire everything, in lifecycle days of one second.
    s3.put_bucket_lifecycle_configuration()
        .bucket(BUCKET)
        .lifecycle_configuration(
            BucketLifecycleConfiguration::builder()
                .rules(
                    LifecycleRule::builder()
                        .id("wipe")
                        .status(ExpirationStatus::Enabled)
                        .filter(LifecycleRuleFilter::builder().prefix("").build())
                        .expiration(LifecycleExpiration::builder().days(1).build())
                        .noncurrent_version_expiration(
                            NoncurrentVersionExpiration::builder()
                                .noncurrent_days(1)
                                .build(),
                        )
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let mut locked = 0.0;
    for _ in 0..100 {
        locked = server
            .metric("cairn_lifecycle_actions_total{action=\"noncurrent\",outcome=\"locked\"}")
            .unwrap_or(0.0);
        if locked >= 6.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        locked >= 6.0,
        "the lifecycle worker tried and was refused: {locked}"
    );
    // 7. The console (signed in with the root key) and the admin tools.
    let cookie = crate::console::console_login(&server, ACCESS_KEY, SECRET_KEY);
    let keys: Vec<String> = (0..6).map(|i| format!("backup-{i}")).collect();
    let body = serde_json::json!({ "keys": keys }).to_string();
    let r = crate::console::console_send(
        &server,
        "POST",
        &format!("/console/api/buckets/{BUCKET}/delete"),
        &cookie,
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.body_str());
    let r = crate::console::console_call(
        &server,
        "DELETE",
        &format!("/console/api/buckets/{BUCKET}"),
        &cookie,
    );
    assert_ne!(
        r.status, 200,
        "the console cannot delete a bucket holding versions"
    );
    // (No admin command removes objects: the admin API has none, by design.)
    // Nothing was destroyed: every protected version is there, byte for byte.
    let after = versions(&s3, BUCKET).await;
    for (id, body) in &protected {
        assert_eq!(after.get(id), Some(body), "version {id:?} survived intact");
    }
    assert_eq!(
        after.len(),
        protected.len() + 1,
        "plus the overwrite's version"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn governance_retention_and_legal_holds_yield_only_as_s3_says() {
    let server = Server::start();
    let s3 = client(&server);
    // Object Lock needs versioning; a bucket created with it has both, for good.
    s3.create_bucket().bucket("plain").send().await.unwrap();
    let plain = s3
        .put_object_lock_configuration()
        .bucket("plain")
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .build(),
        )
        .send()
        .await;
    assert_eq!(
        code_of(&plain.unwrap_err()).as_deref(),
        Some("InvalidBucketState")
    );
    lock_bucket(&s3, "gov", None).await;
    let v = s3
        .get_bucket_versioning()
        .bucket("gov")
        .send()
        .await
        .unwrap();
    assert_eq!(v.status(), Some(&BucketVersioningStatus::Enabled));
    let until = DateTime::from_secs(DateTime::from(std::time::SystemTime::now()).secs() + 3600);
    let put = s3
        .put_object()
        .bucket("gov")
        .key("doc")
        .body(ByteStream::from_static(b"governed"))
        .object_lock_mode(ObjectLockMode::Governance)
        .object_lock_retain_until_date(until)
        .send()
        .await
        .unwrap();
    let vid = put.version_id().unwrap().to_string();
    let r = s3
        .get_object_retention()
        .bucket("gov")
        .key("doc")
        .version_id(&vid)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.retention().unwrap().mode(),
        Some(&ObjectLockRetentionMode::Governance)
    );
    denied(
        s3.delete_object()
            .bucket("gov")
            .key("doc")
            .version_id(&vid)
            .send()
            .await,
        "governance without bypass",
    );
    // A key allowed everything but the bypass cannot use the header.
    let ak = "EDITORKEY00000000001";
    let editor = crate::acl::new_user(
        &server,
        "editor",
        ak,
        "editor-secret-000000000000000000000000",
    )
    .s3;
    let policy = serde_json::json!({
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": ak}, "Action": "s3:*", "Resource": ["arn:aws:s3:::gov", "arn:aws:s3:::gov/*"]},
            {"Effect": "Deny", "Principal": {"AWS": ak}, "Action": "s3:BypassGovernanceRetention", "Resource": "arn:aws:s3:::gov/*"},
            {"Effect": "Deny", "Principal": {"AWS": ak}, "Action": "s3:PutObject", "Resource": "arn:aws:s3:::gov/*",
             "Condition": {"NumericLessThan": {"s3:object-lock-remaining-retention-days": "7"}}}
        ]
    });
    s3.put_bucket_policy()
        .bucket("gov")
        .policy(policy.to_string())
        .send()
        .await
        .unwrap();
    denied(
        editor
            .delete_object()
            .bucket("gov")
            .key("doc")
            .version_id(&vid)
            .bypass_governance_retention(true)
            .send()
            .await,
        "bypass without s3:BypassGovernanceRetention",
    );
    // A legal hold holds even with the bypass.
    legal_hold(&s3, "gov", "doc", &vid, ObjectLockLegalHoldStatus::On).await;
    denied(
        s3.delete_object()
            .bucket("gov")
            .key("doc")
            .version_id(&vid)
            .bypass_governance_retention(true)
            .send()
            .await,
        "legal hold with bypass",
    );
    let h = s3
        .head_object()
        .bucket("gov")
        .key("doc")
        .send()
        .await
        .unwrap();
    assert_eq!(
        h.object_lock_legal_hold_status(),
        Some(&ObjectLockLegalHoldStatus::On)
    );
    legal_hold(&s3, "gov", "doc", &vid, ObjectLockLegalHoldStatus::Off).await;
    // The owner may bypass governance.
    s3.delete_object()
        .bucket("gov")
        .key("doc")
        .version_id(&vid)
        .bypass_governance_retention(true)
        .send()
        .await
        .unwrap();
    // Lock headers on a bucket without Object Lock are refused, not ignored.
    let r = s3
        .put_object()
        .bucket("plain")
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .object_lock_mode(ObjectLockMode::Governance)
        .object_lock_retain_until_date(until)
        .send()
        .await;
    assert_eq!(code_of(&r.unwrap_err()).as_deref(), Some("InvalidRequest"));
}
