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

fn browser() -> Option<(PathBuf, PathBuf)> {
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

fn screenshots() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/e2e-… → target/console-screenshots
    let target = exe.ancestors().nth(3).unwrap().to_path_buf();
    target.join("console-screenshots")
}

fn journey(server: &Server, python: &PathBuf, chromium: &PathBuf, which: &str) {
    let script = cairn_tests::repo_root().join("tests/console/console_test.py");
    let out = Command::new(python)
        .arg(script)
        .arg(which)
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
