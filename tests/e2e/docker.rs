//! The Docker image: built with `docker/build-image.sh` (no registry, networking off), run as
//! a container with a volume, used through aws-sdk-s3 on a published port, stopped and
//! started again with its data intact.
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
    let root = repo_root();
    let out = Command::new("bash")
        .arg(root.join("docker/build-image.sh"))
        .env("CAIRN_BIN", cairn_bin())
        .env("IMAGE", &tag)
        .env(
            "BASE_IMAGE",
            format!("cairn-e2e-base:{}", std::process::id()),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "build-image.sh failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
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
