//! The lifecycle of access keys: `cairn key disable|enable|delete` and `cairn key
//! rotate-root` against real servers. A disabled or deleted key is refused
//! (`InvalidAccessKeyId`) and its console sessions end; the root key can be neither; a
//! rotated root key is the only one that signs admin calls while the old one keeps working
//! for S3 until it is deleted, also across a restart with the old key still in
//! `CAIRN_ROOT_*`; and in a three-node cluster a change made through one node reaches the
//! other gateways within a few heartbeats.

use std::process::Command;
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use cairn_tests::cluster::Cluster;

use crate::common::*;

/// The S3 error code of ListBuckets signed with `s3`'s key (`None`: it succeeded).
async fn list_code(s3: &Client) -> Option<String> {
    match s3.list_buckets().send().await {
        Ok(_) => None,
        Err(e) => Some(code_of(&e).unwrap_or_else(|| format!("{e:?}"))),
    }
}

/// Polls ListBuckets with `ak`/`sk` on `server` until it answers `want` (`None`: success);
/// panics after `within`. Returns how long it took.
async fn wait_for_answer(
    server: &Server,
    ak: &str,
    sk: &str,
    want: Option<&str>,
    within: Duration,
) -> Duration {
    let s3 = client_with(server, ak, sk, "us-east-1");
    let start = Instant::now();
    loop {
        let got = list_code(&s3).await;
        if got.as_deref() == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "{ak} on {}: still {got:?} after {within:?}, want {want:?}",
            server.s3
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `cairn key <args>` against `server`'s admin API, signed with the root key `ak`/`sk`
/// (as an operator with `CAIRN_ROOT_*` set would); returns success and everything printed.
fn cairn_key_signed(server: &Server, ak: &str, sk: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(cairn_bin())
        .arg("key")
        .arg("--admin")
        .arg(server.admin.to_string())
        .arg("--data")
        .arg("/nonexistent")
        .args(args)
        .env("CAIRN_ROOT_ACCESS_KEY", ak)
        .env("CAIRN_ROOT_SECRET_KEY", sk)
        .env_remove("CAIRN_ADMIN_TOKEN")
        .env_remove("CAIRN_CLUSTER_SECRET")
        .output()
        .expect("run cairn");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// The value after `label` in `cairn key create|rotate-root` output.
fn field(out: &str, label: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in {out}"))
        .trim()
        .to_string()
}

/// The STATE column (the fourth) of `ak` in `cairn key list` output, if it is listed.
fn listed_state(list: &str, ak: &str) -> Option<String> {
    list.lines().find_map(|l| {
        let cols: Vec<&str> = l.split('\t').collect();
        (cols[0] == ak).then(|| cols.get(3).copied().unwrap_or("").to_string())
    })
}

fn list_keys(server: &Server) -> String {
    let (ok, out) = server.cairn_key(&["list"]);
    assert!(ok, "{out}");
    out
}

/// Logs in to the console API; returns the response (status, and the cookie on success).
fn console_login(server: &Server, ak: &str, sk: &str) -> RawResponse {
    let body = serde_json::json!({ "access_key": ak, "secret_key": sk }).to_string();
    raw_request(
        server.admin,
        format!(
            "POST /console/api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap()
}

/// The session cookie (`name=value`) of a successful login.
fn session_cookie(server: &Server, ak: &str, sk: &str) -> String {
    let r = console_login(server, ak, sk);
    assert_eq!(r.status, 200, "{}", r.body_str());
    let cookie = r.header("set-cookie").expect("a session cookie");
    cookie.split(';').next().unwrap().to_string()
}

fn console_get(server: &Server, path: &str, cookie: &str) -> RawResponse {
    raw_request(
        server.admin,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .unwrap()
}

fn json(r: &RawResponse) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|_| panic!("JSON: {}", r.body_str()))
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_are_disabled_enabled_and_deleted() {
    let server = Server::start();
    let (ak, sk) = ("KEYSLIFECYCLE0001", "keys-lifecycle-secret-0001");
    let (ok, out) = server.cairn_key(&["create", "alice", "--access-key", ak, "--secret-key", sk]);
    assert!(ok, "{out}");
    let alice = client_with(&server, ak, sk, "us-east-1");
    alice.create_bucket().bucket("alices").send().await.unwrap();
    put_bytes(&alice, "alices", "k", b"hello").await;
    let cookie = session_cookie(&server, ak, sk);
    assert_eq!(console_get(&server, "/console/api/me", &cookie).status, 200);
    assert_eq!(
        listed_state(&list_keys(&server), ak).as_deref(),
        Some("enabled")
    );

    // Disabled: every request signed with it is refused, its session ends, it cannot log in.
    let (ok, out) = server.cairn_key(&["disable", ak]);
    assert!(ok && out.contains("disabled"), "{out}");
    assert_eq!(
        list_code(&alice).await.as_deref(),
        Some("InvalidAccessKeyId")
    );
    let err = alice
        .get_object()
        .bucket("alices")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("InvalidAccessKeyId"));
    let r = console_get(&server, "/console/api/me", &cookie);
    assert_eq!(r.status, 401, "{}", r.body_str());
    assert_eq!(json(&r)["error"], "SessionInvalid");
    assert_eq!(console_login(&server, ak, sk).status, 401);
    assert_eq!(
        listed_state(&list_keys(&server), ak).as_deref(),
        Some("disabled")
    );
    // Creating it again does not enable it.
    let (ok, out) = server.cairn_key(&["create", "alice", "--access-key", ak, "--secret-key", sk]);
    assert!(!ok && out.contains("disabled"), "{out}");

    // Enabled again: as before.
    let (ok, out) = server.cairn_key(&["enable", ak]);
    assert!(ok && out.contains("enabled"), "{out}");
    assert_eq!(get_bytes(&alice, "alices", "k").await, b"hello");
    let cookie = session_cookie(&server, ak, sk);
    assert_eq!(console_get(&server, "/console/api/me", &cookie).status, 200);

    // Deleted: refused, gone from the list, its session over, its id dead for good.
    let (ok, out) = server.cairn_key(&["delete", ak]);
    assert!(ok && out.contains("deleted"), "{out}");
    assert_eq!(
        list_code(&alice).await.as_deref(),
        Some("InvalidAccessKeyId")
    );
    let list = list_keys(&server);
    assert_eq!(listed_state(&list, ak), None, "{list}");
    let r = console_get(&server, "/console/api/me", &cookie);
    assert_eq!(r.status, 401, "{}", r.body_str());
    assert_eq!(console_login(&server, ak, sk).status, 401);
    let (ok, out) = server.cairn_key(&["create", "again", "--access-key", ak, "--secret-key", sk]);
    assert!(!ok && out.contains("never used again"), "{out}");
    let (ok, out) = server.cairn_key(&["enable", ak]);
    assert!(!ok && out.contains("404"), "{out}");
    let (ok, out) = server.cairn_key(&["delete", ak]);
    assert!(!ok && out.contains("404"), "{out}");
    // Its bucket stays, and the root key now manages it as its owner.
    let root = client(&server);
    root.head_bucket().bucket("alices").send().await.unwrap();

    // The root key is neither deleted nor disabled.
    for action in ["delete", "disable"] {
        let (ok, out) = server.cairn_key(&[action, ACCESS_KEY]);
        assert!(!ok && out.contains("root key"), "{action}: {out}");
    }
    assert_eq!(list_code(&root).await, None);
    assert_eq!(
        listed_state(&list_keys(&server), ACCESS_KEY).as_deref(),
        Some("root")
    );

    // After a restart, the same.
    let mut server = server;
    server.restart();
    let alice = client_with(&server, ak, sk, "us-east-1");
    assert_eq!(
        list_code(&alice).await.as_deref(),
        Some("InvalidAccessKeyId")
    );
    assert_eq!(list_code(&client(&server)).await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_root_key_rotates_without_downtime() {
    let mut server = Server::start();
    let old_root = client(&server);
    old_root
        .create_bucket()
        .bucket("rooted")
        .send()
        .await
        .unwrap();
    put_bytes(&old_root, "rooted", "k", b"before").await;
    let old_cookie = session_cookie(&server, ACCESS_KEY, SECRET_KEY);

    // Rotated by the root key itself (a signed admin call).
    let (ok, out) = cairn_key_signed(&server, ACCESS_KEY, SECRET_KEY, &["rotate-root"]);
    assert!(ok, "{out}");
    let new_ak = field(&out, "access key:");
    let new_sk = field(&out, "secret key:");
    assert_ne!(new_ak, ACCESS_KEY);
    assert!(
        out.contains(&format!("cairn key delete {ACCESS_KEY}")),
        "{out}"
    );

    // The new root signs admin calls and is the console's root; the old one is an ordinary
    // key: it still works for S3 (and keeps its bucket), not for admin calls.
    let new_root = client_with(&server, &new_ak, &new_sk, "us-east-1");
    assert_eq!(list_code(&new_root).await, None);
    let (ok, list) = cairn_key_signed(&server, &new_ak, &new_sk, &["list"]);
    assert!(ok, "{list}");
    assert_eq!(listed_state(&list, &new_ak).as_deref(), Some("root"));
    assert_eq!(listed_state(&list, ACCESS_KEY).as_deref(), Some("enabled"));
    let (ok, out) = cairn_key_signed(&server, ACCESS_KEY, SECRET_KEY, &["list"]);
    assert!(!ok && out.contains("not the root key"), "{out}");
    assert_eq!(get_bytes(&old_root, "rooted", "k").await, b"before");
    put_bytes(&old_root, "rooted", "k2", b"after").await;
    let me = json(&console_get(&server, "/console/api/me", &old_cookie));
    assert_eq!(me["root"], false, "{me}");
    assert_eq!(
        console_get(&server, "/console/api/cluster", &old_cookie).status,
        403
    );
    let new_cookie = session_cookie(&server, &new_ak, &new_sk);
    assert_eq!(
        console_get(&server, "/console/api/cluster", &new_cookie).status,
        200
    );
    // Rotating to a key that exists is refused.
    let (ok, out) = server.cairn_key(&[
        "rotate-root",
        "--access-key",
        ACCESS_KEY,
        "--secret-key",
        SECRET_KEY,
    ]);
    assert!(!ok && out.contains("already exists"), "{out}");

    // Clients moved: the old key is deleted and refused; the new root cannot be deleted.
    let (ok, out) = cairn_key_signed(&server, &new_ak, &new_sk, &["delete", ACCESS_KEY]);
    assert!(ok, "{out}");
    assert_eq!(
        list_code(&old_root).await.as_deref(),
        Some("InvalidAccessKeyId")
    );
    assert_eq!(
        console_get(&server, "/console/api/me", &old_cookie).status,
        401
    );
    let (ok, out) = server.cairn_key(&["delete", &new_ak]);
    assert!(!ok && out.contains("root key"), "{out}");

    // A restart with the old key still in CAIRN_ROOT_* (the harness sets it) does not bring
    // it back: the cluster's root key stays the new one.
    server.restart();
    let old_root = client(&server);
    assert_eq!(
        list_code(&old_root).await.as_deref(),
        Some("InvalidAccessKeyId")
    );
    let new_root = client_with(&server, &new_ak, &new_sk, "us-east-1");
    assert_eq!(list_code(&new_root).await, None);
    let (ok, list) = cairn_key_signed(&server, &new_ak, &new_sk, &["list"]);
    assert!(ok, "{list}");
    assert_eq!(listed_state(&list, ACCESS_KEY), None, "{list}");
    assert_eq!(listed_state(&list, &new_ak).as_deref(), Some("root"));
}

/// A key disabled, enabled or deleted through one node, and a root rotation, reach the
/// other gateways within a few heartbeats (default 1 s).
#[tokio::test(flavor = "multi_thread")]
async fn key_changes_reach_every_gateway() {
    let c = Cluster::start(3, 2, &["--ec", "4+2"]);
    let within = Duration::from_secs(10);
    let (ak, sk) = ("KEYSCLUSTER000001", "keys-cluster-secret-0001");
    let (ok, out) =
        c.node(0)
            .cairn_key(&["create", "carol", "--access-key", ak, "--secret-key", sk]);
    assert!(ok, "{out}");
    for i in 0..3 {
        wait_for_answer(c.node(i), ak, sk, None, within).await;
    }

    let (ok, out) = c.node(1).cairn_key(&["disable", ak]);
    assert!(ok, "{out}");
    for i in 0..3 {
        let took = wait_for_answer(c.node(i), ak, sk, Some("InvalidAccessKeyId"), within).await;
        eprintln!(
            "disabled through node 2: refused on node {} after {took:?}",
            i + 1
        );
    }
    let (ok, out) = c.node(2).cairn_key(&["enable", ak]);
    assert!(ok, "{out}");
    for i in 0..3 {
        wait_for_answer(c.node(i), ak, sk, None, within).await;
    }

    let (ok, out) = c.node(0).cairn_key(&["delete", ak]);
    assert!(ok, "{out}");
    // Through node 1 itself at once.
    assert_eq!(
        list_code(&client_with(c.node(0), ak, sk, "us-east-1"))
            .await
            .as_deref(),
        Some("InvalidAccessKeyId")
    );
    for i in [1, 2] {
        let took = wait_for_answer(c.node(i), ak, sk, Some("InvalidAccessKeyId"), within).await;
        eprintln!(
            "deleted through node 1: refused on node {} after {took:?}",
            i + 1
        );
        assert!(took < Duration::from_secs(5), "node {}: {took:?}", i + 1);
    }

    // A rotation through node 1: the new root key signs admin calls on node 3 soon after.
    let (ok, out) = c.node(0).cairn_key(&["rotate-root"]);
    assert!(ok, "{out}");
    let (new_ak, new_sk) = (field(&out, "access key:"), field(&out, "secret key:"));
    let start = Instant::now();
    loop {
        let (ok, list) = cairn_key_signed(c.node(2), &new_ak, &new_sk, &["list"]);
        if ok {
            assert_eq!(listed_state(&list, &new_ak).as_deref(), Some("root"));
            break;
        }
        assert!(
            start.elapsed() < within,
            "node 3 never took the new root: {list}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (ok, out) = cairn_key_signed(c.node(2), ACCESS_KEY, SECRET_KEY, &["list"]);
    assert!(!ok && out.contains("not the root key"), "{out}");
    // The old root still works for S3 everywhere until it is deleted.
    for i in 0..3 {
        assert_eq!(list_code(&client(c.node(i))).await, None);
    }
}

/// A deleted key's buckets stay; the root key manages them as their owner, nobody else does.
#[tokio::test(flavor = "multi_thread")]
async fn the_root_key_manages_the_buckets_of_a_deleted_key() {
    let server = Server::start();
    let root = client(&server);
    let gone = crate::acl::new_user(
        &server,
        "gone",
        "GONEKEY0000000000001",
        "gone-secret-0000000000000000000000001",
    );
    let other = crate::acl::new_user(
        &server,
        "other",
        "OTHERKEY000000000001",
        "other-secret-000000000000000000000001",
    );
    gone.s3
        .create_bucket()
        .bucket("left-behind")
        .send()
        .await
        .unwrap();
    put_bytes(&gone.s3, "left-behind", "k", b"data").await;
    // Before the deletion the bucket is its owner's alone.
    let e = root
        .list_objects_v2()
        .bucket("left-behind")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&e).as_deref(), Some("AccessDenied"));
    let (ok, out) = server.cairn_key(&["delete", "GONEKEY0000000000001"]);
    assert!(ok, "{out}");
    let listed = root
        .list_objects_v2()
        .bucket("left-behind")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.contents().len(), 1);
    let e = other
        .s3
        .list_objects_v2()
        .bucket("left-behind")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&e).as_deref(), Some("AccessDenied"));
    root.delete_object()
        .bucket("left-behind")
        .key("k")
        .send()
        .await
        .unwrap();
    root.delete_bucket()
        .bucket("left-behind")
        .send()
        .await
        .unwrap();
}
