//! `cairn bench` against a real `cairn server`, the way an operator runs it: a short signed
//! PUT run and a GET run (every body checked), each with the null-server baseline in the
//! same run, read back from the JSON the tool writes.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::*;

fn bench(server: &Server, dir: &Path, name: &str, extra: &[&str]) -> (bool, Value, String) {
    let json = dir.join(format!("{name}.json"));
    let out = Command::new(cairn_bin())
        .arg("bench")
        .args(["--endpoint", &server.endpoint()])
        .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
        .args([
            "--duration",
            "2s",
            "--warmup",
            "500ms",
            "--concurrency",
            "2",
        ])
        .args(["--server-pid", &server.pid().to_string()])
        .arg("--json")
        .arg(&json)
        .args(extra)
        .output()
        .expect("running cairn bench");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report = std::fs::read(&json)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    (out.status.success(), report, text)
}

fn num(v: &Value, path: &[&str]) -> f64 {
    let mut v = v;
    for p in path {
        v = &v[*p];
    }
    v.as_f64()
        .unwrap_or_else(|| panic!("{} is not a number in {v}", path.join(".")))
}

#[test]
fn bench_puts_and_gets_against_cairn_with_a_null_baseline() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();

    // Striped objects (over the inline threshold), signed payloads, baseline in the run.
    let (ok, put, text) = bench(
        &server,
        dir.path(),
        "put",
        &[
            "--op",
            "put",
            "--size",
            "5MiB",
            "--payload",
            "signed",
            "--baseline-null",
        ],
    );
    assert!(ok, "cairn bench put failed:\n{text}");
    let target = &put["target"]["median"];
    let run = &put["target"]["runs"][0];
    assert!(
        num(run, &["ops"]) > 0.0 && num(run, &["bytes"]) > 0.0,
        "{put}"
    );
    assert!(num(target, &["mib_per_s"]) > 0.0, "{put}");
    assert_eq!(num(target, &["errors"]), 0.0, "{put}");
    // The null server ran in the same invocation and the ratio is target / null.
    let null = num(&put["null"]["median"], &["mib_per_s"]);
    let ratio = num(&put["ratios"], &["throughput"]);
    assert!(null > 0.0 && ratio > 0.0, "{put}");
    let want = num(target, &["mib_per_s"]) / null;
    assert!(
        (ratio - want).abs() <= want * 0.01 + 1e-9,
        "{ratio} vs {want}: {put}"
    );
    // It saw the server's CPU through its pid.
    assert!(num(target, &["server_cpu_seconds_per_gib"]) > 0.0, "{put}");

    let (ok, get, text) = bench(
        &server,
        dir.path(),
        "get",
        &["--op", "get", "--size", "5MiB", "--objects", "6"],
    );
    assert!(ok, "cairn bench get failed:\n{text}");
    let run = &get["target"]["runs"][0];
    assert!(
        num(run, &["ops"]) > 0.0 && num(run, &["bytes"]) > 0.0,
        "{get}"
    );
    assert_eq!(num(&get["target"]["median"], &["errors"]), 0.0, "{get}");
}
