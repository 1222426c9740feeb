//! Access policies as operators write them, driven through aws-sdk-s3, plain HTTP and the
//! `cairn` CLI: bucket policies (allow, deny over ACLs and ownership, conditions on the
//! client address, the listing prefix and the transport), keys' identity policies, Block
//! Public Access at bucket and cluster level, and Object Ownership.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ObjectCannedAcl, ObjectOwnership, OwnershipControls, OwnershipControlsRule,
    PublicAccessBlockConfiguration,
};
use aws_sdk_s3::Client;

use crate::acl::{anon, denied, new_user, ALT_KEY, ALT_SECRET};
use crate::common::*;

/// Ok, or the S3 error code of the answer.
fn outcome<T, E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    r: Result<T, aws_sdk_s3::error::SdkError<E, R>>,
) -> Result<(), String> {
    r.map(|_| ())
        .map_err(|e| code_of(&e).unwrap_or_else(|| format!("{e:?}")))
}

async fn put(s3: &Client, bucket: &str, key: &str) -> Result<(), String> {
    let body = ByteStream::from_static(b"data");
    outcome(
        s3.put_object()
            .bucket(bucket)
            .key(key)
            .body(body)
            .send()
            .await,
    )
}

async fn get(s3: &Client, bucket: &str, key: &str) -> Result<(), String> {
    outcome(s3.get_object().bucket(bucket).key(key).send().await)
}

async fn set_policy(s3: &Client, bucket: &str, doc: &str) -> Result<(), String> {
    outcome(
        s3.put_bucket_policy()
            .bucket(bucket)
            .policy(doc)
            .send()
            .await,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_policies_allow_deny_and_condition() {
    let server = Server::start();
    let s3 = client(&server);
    let alt = new_user(&server, "alt", ALT_KEY, ALT_SECRET);
    s3.create_bucket().bucket("pol").send().await.unwrap();
    for k in ["public/a", "private/b"] {
        put(&s3, "pol", k).await.unwrap();
    }
    // Nothing public yet.
    assert!(denied(&anon(&server, "GET", "/pol/public/a", b"")));
    let status = s3
        .get_bucket_policy_status()
        .bucket("pol")
        .send()
        .await
        .unwrap();
    assert_eq!(
        status.policy_status().and_then(|p| p.is_public()),
        Some(false)
    );
    let missing = s3
        .get_bucket_policy()
        .bucket("pol")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&missing).as_deref(), Some("NoSuchBucketPolicy"));

    // Anonymous GET of one prefix, from this machine only.
    let doc = r#"{"Version":"2012-10-17","Statement":[
        {"Sid":"PublicPrefix","Effect":"Allow","Principal":"*","Action":"s3:GetObject",
         "Resource":"arn:aws:s3:::pol/public/*","Condition":{"IpAddress":{"aws:SourceIp":"127.0.0.0/8"}}},
        {"Sid":"AltLists","Effect":"Allow","Principal":{"AWS":"ALTUSERKEY0000000001"},"Action":"s3:ListBucket",
         "Resource":"arn:aws:s3:::pol","Condition":{"StringLike":{"s3:prefix":"public/*"}}}]}"#;
    set_policy(&s3, "pol", doc).await.unwrap();
    let got = s3.get_bucket_policy().bucket("pol").send().await.unwrap();
    assert_eq!(
        got.policy(),
        Some(doc),
        "the document comes back as it was put"
    );
    assert_eq!(anon(&server, "GET", "/pol/public/a", b"").status, 200);
    assert!(denied(&anon(&server, "GET", "/pol/private/b", b"")));
    // The condition pins the address: this policy is not public.
    let status = s3
        .get_bucket_policy_status()
        .bucket("pol")
        .send()
        .await
        .unwrap();
    assert_eq!(
        status.policy_status().and_then(|p| p.is_public()),
        Some(false)
    );

    // The same from an address the condition does not name: refused.
    let far = doc.replace("127.0.0.0/8", "10.0.0.0/8");
    set_policy(&s3, "pol", &far).await.unwrap();
    assert!(denied(&anon(&server, "GET", "/pol/public/a", b"")));
    set_policy(&s3, "pol", doc).await.unwrap();

    // s3:prefix: alt may list public/ only, and learns about missing keys there only.
    let list = |prefix: Option<&str>| {
        let mut r = alt.s3.list_objects_v2().bucket("pol");
        if let Some(p) = prefix {
            r = r.prefix(p);
        }
        r.send()
    };
    let page = list(Some("public/")).await.unwrap();
    assert_eq!(page.contents().len(), 1);
    assert_eq!(
        code_of(&list(None).await.unwrap_err()).as_deref(),
        Some("AccessDenied")
    );
    assert_eq!(
        code_of(&list(Some("private/")).await.unwrap_err()).as_deref(),
        Some("AccessDenied")
    );
    let head = |k: &'static str| alt.s3.head_object().bucket("pol").key(k).send();
    let e = head("public/none").await.unwrap_err();
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(404));
    let e = head("private/none").await.unwrap_err();
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(403));

    // An explicit Deny beats an ACL and ownership, even the owner's...
    s3.put_object_acl()
        .bucket("pol")
        .key("private/b")
        .acl(ObjectCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();
    assert_eq!(anon(&server, "GET", "/pol/private/b", b"").status, 200);
    let deny = r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pol/private/*"}]}"#;
    set_policy(&s3, "pol", deny).await.unwrap();
    assert!(denied(&anon(&server, "GET", "/pol/private/b", b"")));
    assert_eq!(
        get(&s3, "pol", "private/b").await,
        Err("AccessDenied".into())
    );
    assert_eq!(get(&s3, "pol", "public/a").await, Ok(()));
    // ...but never locks the owner out of the policy itself.
    let lockout = r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::pol","arn:aws:s3:::pol/*"]}]}"#;
    set_policy(&s3, "pol", lockout).await.unwrap();
    assert_eq!(
        get(&s3, "pol", "public/a").await,
        Err("AccessDenied".into())
    );
    s3.get_bucket_policy().bucket("pol").send().await.unwrap();
    s3.delete_bucket_policy()
        .bucket("pol")
        .send()
        .await
        .unwrap();
    assert_eq!(get(&s3, "pol", "public/a").await, Ok(()));

    // A bucket policy never gives another key the policy operations.
    let all = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::pol","arn:aws:s3:::pol/*"]}]}"#;
    set_policy(&s3, "pol", all).await.unwrap();
    assert_eq!(put(&alt.s3, "pol", "by-alt").await, Ok(()));
    let e = alt
        .s3
        .get_bucket_policy()
        .bucket("pol")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&e).as_deref(), Some("AccessDenied"));
    let status = s3
        .get_bucket_policy_status()
        .bucket("pol")
        .send()
        .await
        .unwrap();
    assert_eq!(
        status.policy_status().and_then(|p| p.is_public()),
        Some(true)
    );

    // aws:SecureTransport: this listener is plain HTTP.
    let tls_only = r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::pol/*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}"#;
    set_policy(&s3, "pol", tls_only).await.unwrap();
    assert_eq!(
        get(&s3, "pol", "public/a").await,
        Err("AccessDenied".into())
    );
    s3.delete_bucket_policy()
        .bucket("pol")
        .send()
        .await
        .unwrap();

    // Malformed policies, and policies about another bucket, are refused with a reason.
    for bad in [
        "{",
        r#"{"Statement":[]}"#,
        r#"{"Statement":[{"Effect":"Perhaps","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pol/*"}]}"#,
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::other/*"}]}"#,
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pol/*","Condition":{"Sometimes":{"aws:SourceIp":"1.2.3.4"}}}]}"#,
    ] {
        assert_eq!(
            set_policy(&s3, "pol", bad).await,
            Err("MalformedPolicy".into()),
            "{bad}"
        );
    }
    let big = format!(
        r#"{{"Statement":[{{"Sid":"{}","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::pol/*"}}]}}"#,
        "x".repeat(21 << 10)
    );
    assert_eq!(
        set_policy(&s3, "pol", &big).await,
        Err("MalformedPolicy".into())
    );
    // Only the owner sets a policy.
    assert_eq!(
        set_policy(&alt.s3, "pol", all).await,
        Err("AccessDenied".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_with_a_policy_can_do_exactly_what_it_allows() {
    let server = Server::start();
    let s3 = client(&server);
    // The operator reads what the backup tool writes: the bucket owner owns every object.
    s3.create_bucket()
        .bucket("backups")
        .object_ownership(ObjectOwnership::BucketOwnerEnforced)
        .send()
        .await
        .unwrap();
    s3.create_bucket().bucket("elsewhere").send().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("restic.json");
    std::fs::write(
        &file,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::backups/restic/*"}]}"#,
    )
    .unwrap();
    let (ok, out) = server.cairn_key(&[
        "create",
        "restic",
        "--access-key",
        "RESTICKEY00000000001",
        "--secret-key",
        "restic-secret-000000000000000000000001",
        "--policy",
        file.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    let restic = client_with(
        &server,
        "RESTICKEY00000000001",
        "restic-secret-000000000000000000000001",
        "us-east-1",
    );
    assert_eq!(put(&restic, "backups", "restic/snap-1").await, Ok(()));
    assert_eq!(
        get(&restic, "backups", "restic/snap-1").await,
        Err("AccessDenied".into())
    );
    assert_eq!(
        put(&restic, "backups", "other/x").await,
        Err("AccessDenied".into())
    );
    assert_eq!(
        put(&restic, "elsewhere", "restic/x").await,
        Err("AccessDenied".into())
    );
    let e = restic
        .list_objects_v2()
        .bucket("backups")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&e).as_deref(), Some("AccessDenied"));
    let e = restic
        .delete_object()
        .bucket("backups")
        .key("restic/snap-1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&e).as_deref(), Some("AccessDenied"));
    let e = restic
        .create_bucket()
        .bucket("mine")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&e).as_deref(), Some("AccessDenied"));
    // The object is there, written by the key, owned by the bucket owner.
    assert_eq!(get(&s3, "backups", "restic/snap-1").await, Ok(()));

    // The policy reads back; a malformed one is refused with the parser's reason.
    let (ok, out) = server.cairn_key(&["get-policy", "RESTICKEY00000000001"]);
    assert!(ok && out.contains("backups/restic/*"), "{out}");
    std::fs::write(
        &file,
        r#"{"Statement":[{"Effect":"Allow","Action":"s3:PutObject"}]}"#,
    )
    .unwrap();
    let (ok, out) =
        server.cairn_key(&["set-policy", "RESTICKEY00000000001", file.to_str().unwrap()]);
    assert!(
        !ok && out.contains("400") && out.contains("Resource"),
        "{out}"
    );
    // The root key takes none.
    std::fs::write(
        &file,
        r#"{"Statement":[{"Effect":"Deny","Action":"s3:*","Resource":"*"}]}"#,
    )
    .unwrap();
    let (ok, out) = server.cairn_key(&["set-policy", ACCESS_KEY, file.to_str().unwrap()]);
    assert!(!ok && out.contains("root"), "{out}");

    // A wider policy set later counts at once; removing it gives back what ownership gives.
    std::fs::write(
        &file,
        r#"{"Statement":[{"Effect":"Allow","Action":["s3:PutObject","s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::backups","arn:aws:s3:::backups/restic/*"]}]}"#,
    )
    .unwrap();
    let (ok, out) =
        server.cairn_key(&["set-policy", "RESTICKEY00000000001", file.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert_eq!(get(&restic, "backups", "restic/snap-1").await, Ok(()));
    restic
        .list_objects_v2()
        .bucket("backups")
        .send()
        .await
        .unwrap();
    let (ok, out) = server.cairn_key(&["delete-policy", "RESTICKEY00000000001"]);
    assert!(ok, "{out}");
    // Without a policy it is an ordinary key again: it may make buckets of its own, and
    // has nothing in another key's bucket (whose owner owns what it wrote there).
    restic.create_bucket().bucket("mine").send().await.unwrap();
    assert_eq!(
        get(&restic, "backups", "restic/snap-1").await,
        Err("AccessDenied".into())
    );
    let e = restic
        .list_objects_v2()
        .bucket("backups")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&e).as_deref(), Some("AccessDenied"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_public_access_at_bucket_and_cluster_level() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("bpa").send().await.unwrap();
    put(&s3, "bpa", "k").await.unwrap();
    let e = s3
        .get_public_access_block()
        .bucket("bpa")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_of(&e).as_deref(),
        Some("NoSuchPublicAccessBlockConfiguration")
    );
    let public = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::bpa/*"}]}"#;
    let block = |acls: bool, ignore: bool, policy: bool, restrict: bool| {
        s3.put_public_access_block()
            .bucket("bpa")
            .public_access_block_configuration(
                PublicAccessBlockConfiguration::builder()
                    .block_public_acls(acls)
                    .ignore_public_acls(ignore)
                    .block_public_policy(policy)
                    .restrict_public_buckets(restrict)
                    .build(),
            )
            .send()
    };
    block(false, false, true, false).await.unwrap();
    let got = s3
        .get_public_access_block()
        .bucket("bpa")
        .send()
        .await
        .unwrap();
    let c = got.public_access_block_configuration().unwrap();
    assert_eq!(c.block_public_policy(), Some(true));
    assert_eq!(c.block_public_acls(), Some(false));
    assert_eq!(
        set_policy(&s3, "bpa", public).await,
        Err("AccessDenied".into())
    );
    // A policy pinned to an address is not public: allowed.
    let pinned = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::bpa/*","Condition":{"IpAddress":{"aws:SourceIp":"127.0.0.1/32"}}}]}"#;
    set_policy(&s3, "bpa", pinned).await.unwrap();
    assert_eq!(anon(&server, "GET", "/bpa/k", b"").status, 200);

    // RestrictPublicBuckets: a public policy already in place gives outsiders nothing.
    block(false, false, false, false).await.unwrap();
    set_policy(&s3, "bpa", public).await.unwrap();
    assert_eq!(anon(&server, "GET", "/bpa/k", b"").status, 200);
    block(false, false, false, true).await.unwrap();
    assert!(denied(&anon(&server, "GET", "/bpa/k", b"")));
    s3.delete_bucket_policy()
        .bucket("bpa")
        .send()
        .await
        .unwrap();

    // BlockPublicAcls refuses public ACLs; IgnorePublicAcls makes existing ones count for
    // nothing.
    s3.put_object()
        .bucket("bpa")
        .key("open")
        .acl(ObjectCannedAcl::PublicRead)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    assert_eq!(anon(&server, "GET", "/bpa/open", b"").status, 200);
    block(true, false, false, false).await.unwrap();
    let e = s3
        .put_object()
        .bucket("bpa")
        .key("open2")
        .acl(ObjectCannedAcl::PublicRead)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&e).as_deref(), Some("AccessDenied"));
    let e = s3
        .put_bucket_acl()
        .bucket("bpa")
        .acl(aws_sdk_s3::types::BucketCannedAcl::PublicRead)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&e).as_deref(), Some("AccessDenied"));
    assert_eq!(anon(&server, "GET", "/bpa/open", b"").status, 200);
    block(false, true, false, false).await.unwrap();
    assert!(denied(&anon(&server, "GET", "/bpa/open", b"")));
    s3.delete_public_access_block()
        .bucket("bpa")
        .send()
        .await
        .unwrap();
    assert_eq!(anon(&server, "GET", "/bpa/open", b"").status, 200);

    // The cluster-wide setting covers buckets without their own.
    let (ok, out) = server.cairn_admin(&[
        "public-access-block",
        "--ignore-public-acls",
        "--block-public-policy",
    ]);
    assert!(ok, "{out}");
    assert!(denied(&anon(&server, "GET", "/bpa/open", b"")));
    assert_eq!(
        set_policy(&s3, "bpa", public).await,
        Err("AccessDenied".into())
    );
    let (ok, out) = server.cairn_admin(&["public-access-block"]);
    assert!(ok && out.contains("\"ignore_public_acls\": true"), "{out}");
    let (ok, out) = server.cairn_admin(&["public-access-block", "--clear"]);
    assert!(ok, "{out}");
    assert_eq!(anon(&server, "GET", "/bpa/open", b"").status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_ownership_decides_who_owns_what_others_write() {
    let server = Server::start();
    let s3 = client(&server);
    let alt = new_user(&server, "alt", ALT_KEY, ALT_SECRET);
    let root = crate::acl::root_id(&server);
    s3.create_bucket()
        .bucket("own")
        .object_ownership(ObjectOwnership::BucketOwnerEnforced)
        .send()
        .await
        .unwrap();
    let got = s3
        .get_bucket_ownership_controls()
        .bucket("own")
        .send()
        .await
        .unwrap();
    let rule = &got.ownership_controls().unwrap().rules()[0];
    assert_eq!(
        rule.object_ownership(),
        &ObjectOwnership::BucketOwnerEnforced
    );
    let all = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::own","arn:aws:s3:::own/*"]}]}"#;
    set_policy(&s3, "own", all).await.unwrap();
    put(&alt.s3, "own", "by-alt").await.unwrap();
    let acl = alt
        .s3
        .get_object_acl()
        .bucket("own")
        .key("by-alt")
        .send()
        .await
        .unwrap();
    assert_eq!(acl.owner().and_then(|o| o.id()), Some(root.as_str()));
    let e = alt
        .s3
        .put_object()
        .bucket("own")
        .key("x")
        .acl(ObjectCannedAcl::Private)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_of(&e).as_deref(),
        Some("AccessControlListNotSupported")
    );
    let e = s3
        .put_bucket_acl()
        .bucket("own")
        .acl(aws_sdk_s3::types::BucketCannedAcl::Private)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_of(&e).as_deref(),
        Some("AccessControlListNotSupported")
    );

    // ObjectWriter (set later): the writer owns what it writes.
    let controls = |o: ObjectOwnership| {
        OwnershipControls::builder()
            .rules(
                OwnershipControlsRule::builder()
                    .object_ownership(o)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    };
    s3.put_bucket_ownership_controls()
        .bucket("own")
        .ownership_controls(controls(ObjectOwnership::ObjectWriter))
        .send()
        .await
        .unwrap();
    put(&alt.s3, "own", "by-alt-2").await.unwrap();
    let acl = alt
        .s3
        .get_object_acl()
        .bucket("own")
        .key("by-alt-2")
        .send()
        .await
        .unwrap();
    assert_eq!(acl.owner().and_then(|o| o.id()), Some(alt.id.as_str()));

    // A bucket with a public ACL cannot switch to BucketOwnerEnforced.
    s3.put_bucket_acl()
        .bucket("own")
        .acl(aws_sdk_s3::types::BucketCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();
    let e = s3
        .put_bucket_ownership_controls()
        .bucket("own")
        .ownership_controls(controls(ObjectOwnership::BucketOwnerEnforced))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_of(&e).as_deref(),
        Some("InvalidBucketAclWithObjectOwnership")
    );
    s3.delete_bucket_ownership_controls()
        .bucket("own")
        .send()
        .await
        .unwrap();
    let e = s3
        .get_bucket_ownership_controls()
        .bucket("own")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code_of(&e).as_deref(),
        Some("OwnershipControlsNotFoundError")
    );
}
