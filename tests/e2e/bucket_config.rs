//! Bucket-level S3 surface with real clients: ownership between access keys, bucket tagging,
//! CORS (configuration, browser preflight, headers on actual requests), ACLs, the default
//! "nothing configured" answers SDKs ask for, and virtual-hosted-style addressing.

use std::time::SystemTime;

use aws_sdk_s3::types::{CorsConfiguration, CorsRule, ObjectCannedAcl, Tag, Tagging};

use crate::common::*;

fn new_user(server: &Server, name: &str) -> aws_sdk_s3::Client {
    let (ok, out) = server.cairn_admin(&["create-key", "--name", name]);
    assert!(ok, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    client_with(
        server,
        v["access_key"].as_str().unwrap(),
        v["secret_key"].as_str().unwrap(),
        "us-east-1",
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn buckets_belong_to_the_key_that_created_them() {
    let server = Server::start();
    let root = client(&server);
    let alice = new_user(&server, "alice");
    root.create_bucket().bucket("roots").send().await.unwrap();
    put_bytes(&root, "roots", "secret.txt", b"root only").await;
    alice.create_bucket().bucket("alices").send().await.unwrap();

    // Each key lists only its own buckets.
    let names = |out: aws_sdk_s3::operation::list_buckets::ListBucketsOutput| -> Vec<String> {
        out.buckets()
            .iter()
            .filter_map(|b| b.name().map(str::to_string))
            .collect()
    };
    assert_eq!(names(root.list_buckets().send().await.unwrap()), ["roots"]);
    assert_eq!(
        names(alice.list_buckets().send().await.unwrap()),
        ["alices"]
    );

    // Nothing in root's bucket is reachable with alice's key.
    let denied = |e: Option<String>| assert_eq!(e.as_deref(), Some("AccessDenied"));
    denied(code_of(
        &alice
            .get_object()
            .bucket("roots")
            .key("secret.txt")
            .send()
            .await
            .unwrap_err(),
    ));
    denied(code_of(
        &alice
            .list_objects_v2()
            .bucket("roots")
            .send()
            .await
            .unwrap_err(),
    ));
    denied(code_of(
        &alice
            .put_object()
            .bucket("roots")
            .key("x")
            .body(b"x".to_vec().into())
            .send()
            .await
            .unwrap_err(),
    ));
    denied(code_of(
        &alice
            .delete_object()
            .bucket("roots")
            .key("secret.txt")
            .send()
            .await
            .unwrap_err(),
    ));
    denied(code_of(
        &alice
            .delete_bucket()
            .bucket("roots")
            .send()
            .await
            .unwrap_err(),
    ));
    denied(code_of(
        &alice
            .get_bucket_acl()
            .bucket("roots")
            .send()
            .await
            .unwrap_err(),
    ));
    // Nor can it be copied out into a bucket alice owns.
    denied(code_of(
        &alice
            .copy_object()
            .bucket("alices")
            .key("stolen")
            .copy_source("roots/secret.txt")
            .send()
            .await
            .unwrap_err(),
    ));
    // Taking an existing name is a conflict, not a takeover.
    let e = alice
        .create_bucket()
        .bucket("roots")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&e).as_deref(), Some("BucketAlreadyExists"));
    assert_eq!(get_bytes(&root, "roots", "secret.txt").await, b"root only");
}

#[tokio::test(flavor = "multi_thread")]
async fn bucket_tagging_acl_and_default_answers() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("conf").send().await.unwrap();

    let e = s3
        .get_bucket_tagging()
        .bucket("conf")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&e).as_deref(), Some("NoSuchTagSet"));
    let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build().unwrap();
    let tagging = Tagging::builder()
        .tag_set(tag("team", "storage"))
        .tag_set(tag("cost center", "42 & up"))
        .build()
        .unwrap();
    s3.put_bucket_tagging()
        .bucket("conf")
        .tagging(tagging)
        .send()
        .await
        .unwrap();
    let got = s3.get_bucket_tagging().bucket("conf").send().await.unwrap();
    let pairs: Vec<(String, String)> = got
        .tag_set()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("cost center".to_string(), "42 & up".to_string()),
            ("team".to_string(), "storage".to_string())
        ]
    );
    let dup = Tagging::builder()
        .tag_set(tag("a", "1"))
        .tag_set(tag("a", "2"))
        .build()
        .unwrap();
    let e = s3
        .put_bucket_tagging()
        .bucket("conf")
        .tagging(dup)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&e).as_deref(), Some("InvalidTag"));
    s3.delete_bucket_tagging()
        .bucket("conf")
        .send()
        .await
        .unwrap();
    let e = s3
        .get_bucket_tagging()
        .bucket("conf")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&e).as_deref(), Some("NoSuchTagSet"));

    // ACLs (the rest is in `acl`): the owner has full control by default and is named by
    // its canonical user id and display name.
    let acl = s3.get_bucket_acl().bucket("conf").send().await.unwrap();
    let owner_id = acl.owner().and_then(|o| o.id()).unwrap().to_string();
    assert_eq!(owner_id.len(), 64);
    assert_eq!(acl.owner().and_then(|o| o.display_name()), Some("root"));
    let grants = acl.grants();
    assert_eq!(grants.len(), 1);
    assert_eq!(
        grants[0].permission().map(|p| p.as_str()),
        Some("FULL_CONTROL")
    );
    assert_eq!(
        grants[0].grantee().and_then(|g| g.id()),
        Some(owner_id.as_str())
    );
    s3.put_bucket_acl()
        .bucket("conf")
        .acl(aws_sdk_s3::types::BucketCannedAcl::Private)
        .send()
        .await
        .unwrap();
    put_bytes(&s3, "conf", "obj", b"data").await;
    let oacl = s3
        .get_object_acl()
        .bucket("conf")
        .key("obj")
        .send()
        .await
        .unwrap();
    assert_eq!(oacl.grants().len(), 1);
    let e = s3
        .get_object_acl()
        .bucket("conf")
        .key("missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&e).as_deref(), Some("NoSuchKey"));
    s3.put_object()
        .bucket("conf")
        .key("private")
        .acl(ObjectCannedAcl::Private)
        .body(b"x".to_vec().into())
        .send()
        .await
        .unwrap();

    // What SDKs and tools ask by default gets S3's "none configured" answers.
    let n = s3
        .get_bucket_notification_configuration()
        .bucket("conf")
        .send()
        .await
        .unwrap();
    assert!(n.topic_configurations().is_empty());
    let code = |e: Option<String>| e.unwrap_or_default();
    assert_eq!(
        code(code_of(
            &s3.get_bucket_lifecycle_configuration()
                .bucket("conf")
                .send()
                .await
                .unwrap_err()
        )),
        "NoSuchLifecycleConfiguration"
    );
    assert_eq!(
        code(code_of(
            &s3.get_bucket_encryption()
                .bucket("conf")
                .send()
                .await
                .unwrap_err()
        )),
        "ServerSideEncryptionConfigurationNotFoundError"
    );
    assert_eq!(
        code(code_of(
            &s3.get_object_lock_configuration()
                .bucket("conf")
                .send()
                .await
                .unwrap_err()
        )),
        "ObjectLockConfigurationNotFoundError"
    );
    assert_eq!(
        code(code_of(
            &s3.get_bucket_ownership_controls()
                .bucket("conf")
                .send()
                .await
                .unwrap_err()
        )),
        "OwnershipControlsNotFoundError"
    );
    assert_eq!(
        code(code_of(
            &s3.get_bucket_policy()
                .bucket("conf")
                .send()
                .await
                .unwrap_err()
        )),
        "NoSuchBucketPolicy"
    );
    assert_eq!(
        code(code_of(
            &s3.get_public_access_block()
                .bucket("conf")
                .send()
                .await
                .unwrap_err()
        )),
        "NoSuchPublicAccessBlockConfiguration"
    );
    let ps = s3
        .get_bucket_policy_status()
        .bucket("conf")
        .send()
        .await
        .unwrap();
    assert_eq!(ps.policy_status().and_then(|p| p.is_public()), Some(false));
    s3.delete_bucket_lifecycle()
        .bucket("conf")
        .send()
        .await
        .unwrap();
    // Setting what Cairn cannot honour is a clear 501.
    let e = s3
        .put_bucket_accelerate_configuration()
        .bucket("conf")
        .accelerate_configuration(
            aws_sdk_s3::types::AccelerateConfiguration::builder()
                .status(aws_sdk_s3::types::BucketAccelerateStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&e).as_deref(), Some("NotImplemented"));
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(501));
}

fn options(server: &Server, path: &str, headers: &[(&str, &str)]) -> RawResponse {
    let mut req = format!("OPTIONS {path} HTTP/1.1\r\nHost: x\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Connection: close\r\n\r\n");
    raw_request(server.s3, req.as_bytes()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn cors_configuration_preflight_and_response_headers() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("web").send().await.unwrap();
    put_bytes(&s3, "web", "app.js", b"console.log(1)").await;
    let e = s3.get_bucket_cors().bucket("web").send().await.unwrap_err();
    assert_eq!(code_of(&e).as_deref(), Some("NoSuchCORSConfiguration"));
    // No configuration: preflights are refused.
    let r = options(
        &server,
        "/web/app.js",
        &[
            ("Origin", "https://app.example.com"),
            ("Access-Control-Request-Method", "GET"),
        ],
    );
    assert_eq!(r.status, 403, "{}", r.body_str());
    assert_eq!(r.error_code().as_deref(), Some("AccessForbidden"));

    let rule = CorsRule::builder()
        .allowed_origins("https://*.example.com")
        .allowed_methods("GET")
        .allowed_methods("PUT")
        .allowed_headers("x-amz-*")
        .allowed_headers("content-type")
        .expose_headers("ETag")
        .max_age_seconds(600)
        .build()
        .unwrap();
    s3.put_bucket_cors()
        .bucket("web")
        .cors_configuration(
            CorsConfiguration::builder()
                .cors_rules(rule)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let got = s3.get_bucket_cors().bucket("web").send().await.unwrap();
    assert_eq!(got.cors_rules().len(), 1);
    assert_eq!(got.cors_rules()[0].allowed_methods(), ["GET", "PUT"]);
    assert_eq!(got.cors_rules()[0].max_age_seconds(), Some(600));

    // An allowed preflight, without any credentials, as a browser sends it.
    let r = options(
        &server,
        "/web/app.js",
        &[
            ("Origin", "https://app.example.com"),
            ("Access-Control-Request-Method", "PUT"),
            ("Access-Control-Request-Headers", "Content-Type, X-Amz-Date"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(r.header("access-control-allow-methods"), Some("GET, PUT"));
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("content-type, x-amz-date")
    );
    assert_eq!(r.header("access-control-max-age"), Some("600"));
    // Wrong origin, method or header: refused.
    for (origin, method, hdrs) in [
        ("https://evil.example.org", "GET", ""),
        ("https://app.example.com", "DELETE", ""),
        ("https://app.example.com", "GET", "authorization-extra"),
    ] {
        let mut h = vec![
            ("Origin", origin),
            ("Access-Control-Request-Method", method),
        ];
        if !hdrs.is_empty() {
            h.push(("Access-Control-Request-Headers", hdrs));
        }
        let r = options(&server, "/web/app.js", &h);
        assert_eq!(r.status, 403, "{origin} {method} {hdrs}: {}", r.body_str());
    }
    let r = options(
        &server,
        "/web/app.js",
        &[("Access-Control-Request-Method", "GET")],
    );
    assert_eq!(r.status, 400);
    let r = options(
        &server,
        "/nobucket/x",
        &[
            ("Origin", "https://a.example.com"),
            ("Access-Control-Request-Method", "GET"),
        ],
    );
    assert_eq!(r.status, 404);

    // An actual (signed) request from an allowed origin carries the CORS headers.
    let host = server.s3.to_string();
    let r = signed_raw_to(
        &server,
        &host,
        "GET",
        "/web/app.js",
        &[("origin", "https://app.example.com")],
        b"",
        b"",
        SystemTime::now(),
    );
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(r.header("access-control-expose-headers"), Some("ETag"));

    s3.delete_bucket_cors().bucket("web").send().await.unwrap();
    let e = s3.get_bucket_cors().bucket("web").send().await.unwrap_err();
    assert_eq!(code_of(&e).as_deref(), Some("NoSuchCORSConfiguration"));
}

#[tokio::test(flavor = "multi_thread")]
async fn virtual_hosted_style_requests() {
    let server = Server::start_with(&["--domain", "s3.cairn.test"]);
    let s3 = client(&server);
    s3.create_bucket().bucket("vhost").send().await.unwrap();
    put_bytes(&s3, "vhost", "dir/a b.txt", b"hello vhost").await;
    let port = server.s3.port();
    let host = format!("vhost.s3.cairn.test:{port}");
    let r = signed_raw_to(
        &server,
        &host,
        "GET",
        "/dir/a%20b.txt",
        &[],
        b"",
        b"",
        SystemTime::now(),
    );
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(r.body, b"hello vhost");
    let r = signed_raw_to(
        &server,
        &host,
        "PUT",
        "/new.txt",
        &[],
        b"via vhost",
        b"via vhost",
        SystemTime::now(),
    );
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(get_bytes(&s3, "vhost", "new.txt").await, b"via vhost");
    let r = signed_raw_to(
        &server,
        &host,
        "GET",
        "/?list-type=2",
        &[],
        b"",
        b"",
        SystemTime::now(),
    );
    assert_eq!(r.status, 200);
    assert!(
        r.body_str().contains("<Key>dir/a b.txt</Key>"),
        "{}",
        r.body_str()
    );
    // The bare domain is path style.
    let bare = format!("s3.cairn.test:{port}");
    let r = signed_raw_to(
        &server,
        &bare,
        "GET",
        "/vhost/new.txt",
        &[],
        b"",
        b"",
        SystemTime::now(),
    );
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(r.body, b"via vhost");
    let r = signed_raw_to(
        &server,
        &format!("missing.s3.cairn.test:{port}"),
        "GET",
        "/k",
        &[],
        b"",
        b"",
        SystemTime::now(),
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code().as_deref(), Some("NoSuchBucket"));
    // The metrics name the operations the requests were, whatever the addressing style: one
    // virtual-hosted GetObject, one path-style GetObject on the bare domain, one ListObjectsV2
    // (the SDK's own calls were path style and are counted too).
    let count = |op: &str| {
        server
            .metric(&format!(
                r#"cairn_s3_requests_total{{op="{op}",status="2xx"}}"#
            ))
            .unwrap_or(0.0)
    };
    assert_eq!(count("GetObject"), 3.0, "{}", server.metrics());
    assert_eq!(count("ListObjectsV2"), 1.0);
    assert_eq!(count("ListObjects"), 0.0);
    assert_eq!(count("PutObject"), 2.0);
}
