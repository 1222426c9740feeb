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

/// Logs in to the console API as `ak`/`sk`; returns the session cookie (`name=value`).
fn console_login(server: &Server, ak: &str, sk: &str) -> String {
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

fn console_call(server: &Server, method: &str, path: &str, cookie: &str) -> RawResponse {
    raw_request(
        server.admin,
        format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        )
        .as_bytes(),
    )
    .unwrap()
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
        ["cluster-watcher", "compaction", "gc", "repair", "scrub"],
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
