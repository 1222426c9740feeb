//! Runs the scripted client walks (aws-cli and boto3, from pip) against a real server.
//! The tools come from the virtualenv that `scripts/test.sh` prepares (`CAIRN_VENV`), or
//! from PATH. Set `CAIRN_SKIP_SCRIPTED=1` to skip them on a machine without Python tools.

use std::path::PathBuf;
use std::process::Command;

use crate::common::*;

pub(crate) fn tool(name: &str) -> PathBuf {
    if let Ok(venv) = std::env::var("CAIRN_VENV") {
        let p = PathBuf::from(venv).join("bin").join(name);
        if p.exists() {
            return p;
        }
    }
    PathBuf::from(name)
}

pub(crate) fn skip() -> bool {
    std::env::var("CAIRN_SKIP_SCRIPTED").is_ok_and(|v| v == "1")
}

/// Points `cmd`'s AWS tools at the root key of the test server, ignoring any profile.
pub(crate) fn aws_env(cmd: &mut Command) -> &mut Command {
    cmd.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
}

fn run_script(cmd: &mut Command, server: &Server) {
    let out = aws_env(cmd)
        .env("CAIRN_ENDPOINT", server.endpoint())
        .env(
            "PATH",
            format!(
                "{}:{}",
                tool("aws")
                    .parent()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .output()
        .unwrap_or_else(|e| {
            panic!("could not run {cmd:?}: {e} (run scripts/test.sh, or set CAIRN_SKIP_SCRIPTED=1)")
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{cmd:?} failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(stdout.contains("ALL OK"), "script did not finish: {stdout}");
}

#[test]
fn aws_cli_walk() {
    if skip() {
        return;
    }
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    run_script(
        Command::new("bash")
            .arg(repo_root().join("tests/scripts/aws_cli_walk.sh"))
            .env("WORK_DIR", tmp.path()),
        &server,
    );
}

#[test]
fn aws_cli_policies() {
    if skip() {
        return;
    }
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let policy = tmp.path().join("restic-policy.json");
    std::fs::write(
        &policy,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::backups/restic/*"}]}"#,
    )
    .unwrap();
    let (ak, sk) = (
        "RESTICCLIKEY00000001",
        "restic-cli-secret-00000000000000000001",
    );
    let (ok, out) = server.cairn_key(&[
        "create",
        "restic",
        "--access-key",
        ak,
        "--secret-key",
        sk,
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    run_script(
        Command::new("bash")
            .arg(repo_root().join("tests/scripts/aws_cli_policies.sh"))
            .env("WORK_DIR", tmp.path())
            .env("RESTIC_ACCESS_KEY", ak)
            .env("RESTIC_SECRET_KEY", sk),
        &server,
    );
}

#[test]
fn boto3_walk() {
    if skip() {
        return;
    }
    let server = Server::start();
    run_script(
        Command::new(tool("python3")).arg(repo_root().join("tests/scripts/boto3_walk.py")),
        &server,
    );
}
