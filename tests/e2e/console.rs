//! The web console in a real headless Chromium: `tests/console/console_test.py` (Playwright
//! for Python, the system's Chromium) walks it against a `cairn server` started here. The
//! screenshots land in `<target dir>/console-screenshots/`.
//!
//! Needs the virtualenv of `scripts/test.sh` (with `playwright`) and Debian's `chromium`;
//! without them the test says so and passes, unless `CAIRN_REQUIRE_BROWSER=1` (set by CI,
//! which installs both).

use std::path::PathBuf;
use std::process::Command;

use crate::common::*;

/// The venv's Python and Chromium, if both are there (see the module documentation);
/// also used by the POST Object browser test.
pub(crate) fn browser() -> Option<(PathBuf, PathBuf)> {
    let venv = PathBuf::from(
        std::env::var("CAIRN_VENV")
            .unwrap_or_else(|_| cairn_tests::repo_root().join(".venv").display().to_string()),
    );
    let python = venv.join("bin").join("python3");
    let chromium =
        PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    let has_playwright = Command::new(&python)
        .args(["-c", "import playwright"])
        .output()
        .is_ok_and(|o| o.status.success());
    if has_playwright && chromium.exists() {
        return Some((python, chromium));
    }
    let why = format!(
        "console browser test needs playwright in {} and Chromium at {}",
        venv.display(),
        chromium.display()
    );
    assert!(
        std::env::var("CAIRN_REQUIRE_BROWSER").as_deref() != Ok("1"),
        "{why}"
    );
    eprintln!("SKIPPED: {why}");
    None
}

pub(crate) fn screenshots() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/e2e-… → target/console-screenshots
    let target = exe.ancestors().nth(3).unwrap().to_path_buf();
    target.join("console-screenshots")
}

fn journey(server: &Server, python: &PathBuf, chromium: &PathBuf, which: &str) {
    journey_with(server, python, chromium, which, &[]);
}

fn journey_with(
    server: &Server,
    python: &PathBuf,
    chromium: &PathBuf,
    which: &str,
    envs: &[(&str, &str)],
) {
    let script = cairn_tests::repo_root().join("tests/console/console_test.py");
    let out = Command::new(python)
        .arg(script)
        .arg(which)
        .envs(envs.iter().copied())
        .env("CAIRN_CONSOLE_URL", format!("http://{}", server.admin))
        .env("CAIRN_ACCESS_KEY", cairn_tests::ACCESS_KEY)
        .env("CAIRN_SECRET_KEY", cairn_tests::SECRET_KEY)
        .env("CAIRN_CLUSTER_SECRET", server.cluster_secret())
        .env("CAIRN_SCREENSHOTS", screenshots())
        .env("CHROMIUM", chromium)
        .output()
        .expect("run the console test");
    assert!(
        out.status.success(),
        "console {which} journey failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn console_walkthrough_in_headless_chromium() {
    let Some((python, chromium)) = browser() else {
        return;
    };
    let server = Server::start_with(&["--scrub-interval", "0"]);
    journey(&server, &python, &chromium, "main");
}

#[test]
fn an_expired_console_session_says_so() {
    let Some((python, chromium)) = browser() else {
        return;
    };
    let server = Server::start_with(&["--console-session-secs", "2"]);
    journey(&server, &python, &chromium, "expiry");
}

#[test]
fn the_console_shows_no_cluster_view_to_other_keys() {
    let Some((python, chromium)) = browser() else {
        return;
    };
    let server = Server::start();
    let (ak, sk) = ("CONSOLEUSER000000002", "console-user-secret-9876543210");
    let (ok, out) = server.cairn_key(&["create", "bob", "--access-key", ak, "--secret-key", sk]);
    assert!(ok, "{out}");
    journey_with(
        &server,
        &python,
        &chromium,
        "nonroot",
        &[("CAIRN_USER_ACCESS_KEY", ak), ("CAIRN_USER_SECRET_KEY", sk)],
    );
}

#[test]
fn the_console_edits_bucket_and_key_policies() {
    let Some((python, chromium)) = browser() else {
        return;
    };
    let server = Server::start();
    let (ak, sk) = ("CONSOLEUSER000000003", "console-user-secret-policy-0003");
    let (ok, out) = server.cairn_key(&["create", "carol", "--access-key", ak, "--secret-key", sk]);
    assert!(ok, "{out}");
    journey_with(
        &server,
        &python,
        &chromium,
        "permissions",
        &[
            ("CAIRN_USER_ACCESS_KEY", ak),
            ("CAIRN_S3_URL", &server.endpoint()),
        ],
    );
}

#[test]
fn the_console_sets_quotas_and_shows_lifecycle_runs() {
    let Some((python, chromium)) = browser() else {
        return;
    };
    let server = Server::start_with(&["--lifecycle-day-secs", "1"]);
    journey(&server, &python, &chromium, "governance");
}

/// Logs in to the console API as `ak`/`sk`; returns the session cookie (`name=value`).
pub(crate) fn console_login(server: &Server, ak: &str, sk: &str) -> String {
    let body = serde_json::json!({ "access_key": ak, "secret_key": sk }).to_string();
    let r = raw_request(
        server.admin,
        format!(
            "POST /console/api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body_str());
    let cookie = r.header("set-cookie").expect("a session cookie");
    cookie.split(';').next().unwrap().to_string()
}

pub(crate) fn console_call(server: &Server, method: &str, path: &str, cookie: &str) -> RawResponse {
    console_send(server, method, path, cookie, "{}")
}

pub(crate) fn console_send(
    server: &Server,
    method: &str,
    path: &str,
    cookie: &str,
    body: &str,
) -> RawResponse {
    raw_request(
        server.admin,
        format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap()
}

fn json_of(r: &RawResponse) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body_str()))
}

/// The cluster view names every datanode and, in scrub findings, other keys' buckets and
/// objects: it used to be served to any logged-in key. Only the root key gets it now; other
/// keys get a 403 (as for starting a scrub), and no session at all a 401.
#[test]
fn the_console_cluster_view_is_for_the_root_key_only() {
    let server = Server::start_with(&["--scrub-interval", "0"]);
    let (ak, sk) = ("CONSOLEUSER000000001", "console-user-secret-0123456789");
    let (ok, out) = server.cairn_key(&["create", "alice", "--access-key", ak, "--secret-key", sk]);
    assert!(ok, "{out}");

    let user = console_login(&server, ak, sk);
    let me: serde_json::Value =
        serde_json::from_slice(&console_call(&server, "GET", "/console/api/me", &user).body)
            .unwrap();
    assert_eq!(me["root"], false, "{me}");
    for (method, path) in [
        ("GET", "/console/api/cluster"),
        ("POST", "/console/api/scrub"),
        ("POST", "/console/api/workers/gc/pause"),
        ("GET", "/console/api/keys"),
        ("GET", "/console/api/keys/CONSOLEUSER000000001/policy"),
        ("PUT", "/console/api/keys/CONSOLEUSER000000001/policy"),
        ("DELETE", "/console/api/keys/CONSOLEUSER000000001/policy"),
        ("GET", "/console/api/public-access-block"),
        ("PUT", "/console/api/public-access-block"),
        ("DELETE", "/console/api/public-access-block"),
    ] {
        let r = console_call(&server, method, path, &user);
        assert_eq!(r.status, 403, "{method} {path}: {}", r.body_str());
        let err: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(err["error"], "AccessDenied", "{err}");
        assert!(!r.body_str().contains("datanodes"), "{}", r.body_str());
    }
    // The user's own data calls still work.
    let r = console_call(&server, "GET", "/console/api/buckets", &user);
    assert_eq!(r.status, 200, "{}", r.body_str());

    let r = console_call(&server, "GET", "/console/api/cluster", "cairn_session=");
    assert_eq!(r.status, 401, "{}", r.body_str());

    let root = console_login(&server, ACCESS_KEY, SECRET_KEY);
    let r = console_call(&server, "GET", "/console/api/cluster", &root);
    assert_eq!(r.status, 200, "{}", r.body_str());
    let c: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(c["datanodes"].as_array().map(Vec::len), Some(6), "{c}");
    assert!(c.get("scrub_history").is_some(), "{c}");
    // The node's background workers, which the root key may pause and resume.
    let names: Vec<&str> = c["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "cluster-watcher",
            "compaction",
            "gc",
            "lifecycle",
            "repair",
            "scrub"
        ],
        "{c}"
    );
    let gc_paused = |server: &Server| {
        let r = server.admin_call("GET", "/admin/workers", "");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .find(|w| w["name"] == "gc")
            .unwrap()["paused"]
            == true
    };
    assert!(!gc_paused(&server), "the user's refused call paused gc");
    let r = console_call(&server, "POST", "/console/api/workers/gc/pause", &root);
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert!(gc_paused(&server));
    let r = console_call(&server, "POST", "/console/api/workers/nope/pause", &root);
    assert_eq!(r.status, 404, "{}", r.body_str());
    let r = console_call(&server, "POST", "/console/api/workers/gc/resume", &root);
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert!(!gc_paused(&server));
}

/// The Permissions tab's calls are S3 calls signed with the session's key: another key gets
/// S3's AccessDenied on a bucket it does not own; S3's refusals come back with their code
/// and S3's own message; the keys page's calls check policies as the admin API does.
#[test]
fn the_console_permission_calls_run_as_the_key() {
    let server = Server::start();
    let (ak, sk) = ("CONSOLEUSER000000004", "console-user-secret-policy-0004");
    let (ok, out) = server.cairn_key(&["create", "dave", "--access-key", ak, "--secret-key", sk]);
    assert!(ok, "{out}");
    let root = console_login(&server, ACCESS_KEY, SECRET_KEY);
    let user = console_login(&server, ak, sk);
    let r = console_send(
        &server,
        "POST",
        "/console/api/buckets",
        &root,
        r#"{"name":"perm"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body_str());

    // Nothing set yet: nulls, not errors.
    for (what, field) in [
        ("policy", "policy"),
        ("public-access-block", "public_access_block"),
        ("ownership", "ownership"),
    ] {
        let r = console_call(
            &server,
            "GET",
            &format!("/console/api/buckets/perm/{what}"),
            &root,
        );
        assert_eq!(r.status, 200, "{what}: {}", r.body_str());
        assert!(json_of(&r)[field].is_null(), "{what}: {}", r.body_str());
    }
    let r = console_call(
        &server,
        "GET",
        "/console/api/buckets/perm/policy-status",
        &root,
    );
    assert_eq!(json_of(&r)["public"], false, "{}", r.body_str());

    // A malformed policy: 400 MalformedPolicy with the parser's message.
    let bad = serde_json::json!({ "policy": r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObjekt","Resource":"arn:aws:s3:::perm/*"}]}"# });
    let r = console_send(
        &server,
        "PUT",
        "/console/api/buckets/perm/policy",
        &root,
        &bad.to_string(),
    );
    assert_eq!(r.status, 400, "{}", r.body_str());
    let e = json_of(&r);
    assert_eq!(e["error"], "MalformedPolicy", "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("s3:GetObjekt"),
        "{e}"
    );

    // Another key: S3 refuses it the owner's bucket configuration, read or write.
    let good = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::perm/*"}]}"#;
    let body = serde_json::json!({ "policy": good }).to_string();
    let r = console_send(
        &server,
        "PUT",
        "/console/api/buckets/perm/policy",
        &user,
        &body,
    );
    assert_eq!(r.status, 403, "{}", r.body_str());
    assert_eq!(json_of(&r)["error"], "AccessDenied", "{}", r.body_str());
    for what in [
        "policy",
        "public-access-block",
        "ownership",
        "policy-status",
    ] {
        let r = console_call(
            &server,
            "GET",
            &format!("/console/api/buckets/perm/{what}"),
            &user,
        );
        assert_eq!(r.status, 403, "{what}: {}", r.body_str());
    }

    // The owner saves it; Block Public Access then refuses it with S3's reason.
    let r = console_send(
        &server,
        "PUT",
        "/console/api/buckets/perm/policy",
        &root,
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.body_str());
    let r = console_call(&server, "GET", "/console/api/buckets/perm/policy", &root);
    assert_eq!(json_of(&r)["policy"], good, "stored verbatim");
    let r = console_call(
        &server,
        "GET",
        "/console/api/buckets/perm/policy-status",
        &root,
    );
    assert_eq!(json_of(&r)["public"], true, "{}", r.body_str());
    let pab = r#"{"block_public_acls":false,"ignore_public_acls":false,"block_public_policy":true,"restrict_public_buckets":false}"#;
    let r = console_send(
        &server,
        "PUT",
        "/console/api/buckets/perm/public-access-block",
        &root,
        pab,
    );
    assert_eq!(r.status, 200, "{}", r.body_str());
    let r = console_call(
        &server,
        "GET",
        "/console/api/buckets/perm/public-access-block",
        &root,
    );
    assert_eq!(
        json_of(&r)["public_access_block"]["block_public_policy"],
        true,
        "{}",
        r.body_str()
    );
    let r = console_send(
        &server,
        "PUT",
        "/console/api/buckets/perm/policy",
        &root,
        &body,
    );
    assert_eq!(r.status, 403, "{}", r.body_str());
    let e = json_of(&r);
    assert_eq!(e["error"], "AccessDenied", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("Block Public Access"),
        "{e}"
    );

    // Object Ownership: only the three settings.
    let r = console_send(
        &server,
        "PUT",
        "/console/api/buckets/perm/ownership",
        &root,
        r#"{"ownership":"Nobody"}"#,
    );
    assert_eq!(r.status, 400, "{}", r.body_str());
    let r = console_send(
        &server,
        "PUT",
        "/console/api/buckets/perm/ownership",
        &root,
        r#"{"ownership":"BucketOwnerEnforced"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body_str());
    let r = console_call(&server, "GET", "/console/api/buckets/perm/ownership", &root);
    assert_eq!(
        json_of(&r)["ownership"],
        "BucketOwnerEnforced",
        "{}",
        r.body_str()
    );
    let r = console_call(
        &server,
        "DELETE",
        "/console/api/buckets/perm/ownership",
        &root,
    );
    assert_eq!(r.status, 200, "{}", r.body_str());
    let r = console_call(&server, "GET", "/console/api/buckets/perm/ownership", &root);
    assert!(json_of(&r)["ownership"].is_null(), "{}", r.body_str());

    // Key policies: checked as the admin API checks them; none for the root key.
    let keys = json_of(&console_call(&server, "GET", "/console/api/keys", &root));
    let has = |keys: &serde_json::Value| {
        keys.as_array()
            .unwrap()
            .iter()
            .find(|k| k["access_key"] == ak)
            .unwrap()["has_policy"]
            .clone()
    };
    assert_eq!(has(&keys), false, "{keys}");
    let path = format!("/console/api/keys/{ak}/policy");
    let r = console_send(&server, "PUT", &path, &root, &body);
    assert_eq!(
        r.status,
        400,
        "a principal in an identity policy: {}",
        r.body_str()
    );
    assert_eq!(json_of(&r)["error"], "MalformedPolicy", "{}", r.body_str());
    let doc = r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::perm/*"}]}"#;
    let body = serde_json::json!({ "policy": doc }).to_string();
    let r = console_send(&server, "PUT", &path, &root, &body);
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(
        json_of(&console_call(&server, "GET", &path, &root))["policy"],
        doc
    );
    let admin = server.admin_call("GET", &format!("/admin/keys/{ak}/policy"), "");
    assert_eq!(admin.body_str(), doc);
    assert_eq!(
        has(&json_of(&console_call(
            &server,
            "GET",
            "/console/api/keys",
            &root
        ))),
        true
    );
    let r = console_send(
        &server,
        "PUT",
        &format!("/console/api/keys/{ACCESS_KEY}/policy"),
        &root,
        &body,
    );
    assert_eq!(r.status, 409, "{}", r.body_str());
    assert!(
        json_of(&r)["message"].as_str().unwrap().contains("root"),
        "{}",
        r.body_str()
    );
    let r = console_call(
        &server,
        "GET",
        "/console/api/keys/NOSUCHKEY00000000000/policy",
        &root,
    );
    assert_eq!(r.status, 404, "{}", r.body_str());
    let r = console_call(&server, "DELETE", &path, &root);
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert!(json_of(&console_call(&server, "GET", &path, &root))["policy"].is_null());

    // The cluster-wide Block Public Access, as the admin API shows it.
    let r = console_send(
        &server,
        "PUT",
        "/console/api/public-access-block",
        &root,
        pab,
    );
    assert_eq!(r.status, 200, "{}", r.body_str());
    let admin = server.admin_call("GET", "/admin/public-access-block", "");
    let v: serde_json::Value = serde_json::from_slice(&admin.body).unwrap();
    assert_eq!(v["block_public_policy"], true, "{v}");
    let r = console_call(&server, "DELETE", "/console/api/public-access-block", &root);
    assert_eq!(
        json_of(&r)["block_public_policy"],
        false,
        "{}",
        r.body_str()
    );
}
