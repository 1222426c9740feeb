//! The Docker image: built with `docker/build-image.sh` (no registry, networking off), run as
//! a container with a volume, used through aws-sdk-s3 on a published port, stopped and
//! started again with its data intact; and the three-node cluster of `docker/compose.yml`
//! under an aws-cli workload (`tests/scripts/compose_cluster.sh`) with one container
//! stopped and started again.
//!
//! Needs a Docker engine. Without one the test says so and passes, unless
//! `CAIRN_REQUIRE_DOCKER=1` (CI sets it), where a missing engine fails it.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;

fn docker(args: &[&str]) -> (bool, String) {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("run docker");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn docker_available() -> bool {
    let ok = Command::new("docker")
        .arg("info")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok && std::env::var("CAIRN_REQUIRE_DOCKER").as_deref() == Ok("1") {
        panic!("CAIRN_REQUIRE_DOCKER=1 but no Docker engine answers");
    }
    ok
}

/// Removes the container and volume when the test ends, whatever happens.
struct Cleanup {
    container: String,
    volume: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.container]);
        let _ = docker(&["volume", "rm", "-f", &self.volume]);
    }
}

/// The host port published for the container's S3 port.
fn published_port(container: &str) -> u16 {
    let (ok, out) = docker(&["port", container, "9000/tcp"]);
    assert!(ok, "{out}");
    out.lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no published port in {out:?}"))
}

/// Builds the image `tag` from the binary under test with `docker/build-image.sh` (its base
/// made locally as `base`, no registry, networking off).
fn build_image(tag: &str, base: &str) {
    let out = Command::new("bash")
        .arg(repo_root().join("docker/build-image.sh"))
        .env("CAIRN_BIN", cairn_bin())
        .env("IMAGE", tag)
        .env("BASE_IMAGE", base)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "build-image.sh failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn wait_s3(s3: &aws_sdk_s3::Client) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while s3.list_buckets().send().await.is_err() {
        assert!(Instant::now() < deadline, "the container never answered S3");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn image_builds_offline_and_serves_s3_from_a_volume() {
    if !docker_available() {
        eprintln!("docker: no Docker engine here; skipping the image test");
        return;
    }
    let tag = format!("cairn-e2e:{}", std::process::id());
    build_image(&tag, &format!("cairn-e2e-base:{}", std::process::id()));
    let name = format!("cairn-e2e-{}", std::process::id());
    let cleanup = Cleanup {
        container: name.clone(),
        volume: format!("{name}-data"),
    };
    let (ok, out) = docker(&[
        "run",
        "-d",
        "--name",
        &cleanup.container,
        "-p",
        "127.0.0.1::9000",
        "-v",
        &format!("{}:/data", cleanup.volume),
        "-e",
        &format!("CAIRN_ROOT_ACCESS_KEY={ACCESS_KEY}"),
        "-e",
        &format!("CAIRN_ROOT_SECRET_KEY={SECRET_KEY}"),
        &tag,
    ]);
    assert!(ok, "docker run: {out}");

    let endpoint = |port: u16| format!("http://127.0.0.1:{port}");
    let s3 = client_for(&endpoint(published_port(&name)));
    wait_s3(&s3).await;
    s3.create_bucket().bucket("dock").send().await.unwrap();
    let data = random_bytes(5 << 20, 77);
    s3.put_object()
        .bucket("dock")
        .key("big")
        .body(data.clone().into())
        .send()
        .await
        .unwrap();

    // Stop and start the container: the volume keeps everything.
    let (ok, out) = docker(&["stop", "-t", "10", &name]);
    assert!(ok, "{out}");
    let (ok, out) = docker(&["start", &name]);
    assert!(ok, "{out}");
    let s3 = client_for(&endpoint(published_port(&name)));
    wait_s3(&s3).await;
    let got = s3
        .get_object()
        .bucket("dock")
        .key("big")
        .send()
        .await
        .unwrap();
    let body = got.body.collect().await.unwrap().into_bytes();
    assert!(
        body.as_ref() == data.as_slice(),
        "object changed across a restart"
    );
    let (_, logs) = docker(&["logs", &name]);
    assert!(
        logs.contains("S3 API listening on http://0.0.0.0:9000"),
        "{logs}"
    );
    drop(cleanup);
    let _ = docker(&["rmi", "-f", &tag]);
    let _ = docker(&[
        "rmi",
        "-f",
        &format!("cairn-e2e-base:{}", std::process::id()),
    ]);
}

/// The compose command of this machine: Compose v2 (`docker compose`) or v1
/// (`docker-compose`).
fn compose_command() -> Option<String> {
    let v2 = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if v2 {
        return Some("docker compose".into());
    }
    let v1 = Command::new("docker-compose")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    v1.then(|| "docker-compose".into())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Takes the compose project down (containers and volumes) when the test ends.
struct ComposeDown {
    compose: String,
    project: String,
    image: String,
}

impl Drop for ComposeDown {
    fn drop(&mut self) {
        let mut parts = self.compose.split(' ');
        let prog = parts.next().unwrap_or("docker-compose");
        let _ = Command::new(prog)
            .args(parts)
            .args([
                "-f",
                "docker/compose.yml",
                "-p",
                &self.project,
                "down",
                "-v",
                "-t",
                "5",
            ])
            .current_dir(repo_root())
            .env("CAIRN_IMAGE", &self.image)
            .output();
        let _ = docker(&["rmi", "-f", &self.image]);
    }
}

#[test]
fn the_compose_cluster_keeps_serving_with_a_node_down_and_the_node_catches_up() {
    if !docker_available() {
        eprintln!("docker: no Docker engine here; skipping the compose test");
        return;
    }
    let Some(compose) = compose_command() else {
        if std::env::var("CAIRN_REQUIRE_DOCKER").as_deref() == Ok("1") {
            panic!("CAIRN_REQUIRE_DOCKER=1 but neither `docker compose` nor `docker-compose` runs");
        }
        eprintln!("docker: no compose tool; skipping the compose test");
        return;
    };
    let pid = std::process::id();
    let image = format!("cairn-compose-e2e:{pid}");
    build_image(&image, &format!("cairn-compose-e2e-base:{pid}"));
    let _ = docker(&["rmi", "-f", &format!("cairn-compose-e2e-base:{pid}")]);
    let project = format!("cairne2e{pid}");
    let _down = ComposeDown {
        compose: compose.clone(),
        project: project.clone(),
        image: image.clone(),
    };
    let aws_dir = std::env::var("CAIRN_VENV")
        .map(|v| format!("{v}/bin:"))
        .unwrap_or_default();
    let mut cmd = Command::new("bash");
    cmd.arg(repo_root().join("tests/scripts/compose_cluster.sh"))
        .env("COMPOSE", &compose)
        .env("PROJECT", &project)
        .env("CAIRN_IMAGE", &image)
        .env("CAIRN_ROOT_ACCESS_KEY", ACCESS_KEY)
        .env("CAIRN_ROOT_SECRET_KEY", SECRET_KEY)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env_remove("AWS_PROFILE")
        .env(
            "PATH",
            format!("{aws_dir}{}", std::env::var("PATH").unwrap_or_default()),
        );
    for (name, _) in [
        ("CAIRN1_S3_PORT", 0),
        ("CAIRN2_S3_PORT", 0),
        ("CAIRN3_S3_PORT", 0),
        ("CAIRN1_ADMIN_PORT", 0),
        ("CAIRN2_ADMIN_PORT", 0),
        ("CAIRN3_ADMIN_PORT", 0),
    ] {
        cmd.env(name, free_port().to_string());
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() || !stdout.contains("ALL OK") {
        let mut parts = compose.split(' ');
        let prog = parts.next().unwrap();
        let logs = Command::new(prog)
            .args(parts)
            .args([
                "-f",
                "docker/compose.yml",
                "-p",
                &project,
                "logs",
                "--tail",
                "80",
            ])
            .current_dir(repo_root())
            .env("CAIRN_IMAGE", &image)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        panic!(
            "compose workload failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- logs\n{logs}"
        );
    }
    eprintln!("{stdout}");
}
