//! The admin API and `cairn admin`: access keys created by an operator work for S3 clients
//! at once and after a restart; operator calls need the cluster secret; the data directory
//! is the server's user's alone.

use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn created_keys_sign_requests_and_survive_restart() {
    let mut server = Server::start();
    let (ok, out) = server.cairn_admin(&["create-key", "--name", "alice"]);
    assert!(ok, "{out}");
    let created: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let ak = created["access_key"].as_str().unwrap().to_string();
    let sk = created["secret_key"].as_str().unwrap().to_string();
    assert_eq!(created["name"], "alice");

    let alice = client_with(&server, &ak, &sk, "us-east-1");
    alice.create_bucket().bucket("alices").send().await.unwrap();
    put_bytes(&alice, "alices", "k", b"hello").await;

    // Chosen keys work too; a clash with another secret is refused.
    let (ok, out) = server.cairn_admin(&[
        "create-key",
        "--name",
        "bob",
        "--access-key",
        "BOBACCESSKEY0000",
        "--secret-key",
        "bob-secret-0123456789",
    ]);
    assert!(ok, "{out}");
    let (ok, out) = server.cairn_admin(&[
        "create-key",
        "--access-key",
        "BOBACCESSKEY0000",
        "--secret-key",
        "another-secret-0123",
    ]);
    assert!(!ok && out.contains("already exists"), "{out}");
    let (ok, out) = server.cairn_admin(&["create-key", "--access-key", "bad key"]);
    assert!(!ok && out.contains("access_key must be"), "{out}");

    // Listing shows names, never secrets.
    let (ok, out) = server.cairn_admin(&["keys"]);
    assert!(ok, "{out}");
    assert!(out.contains(&ak) && out.contains("BOBACCESSKEY0000") && out.contains(ACCESS_KEY));
    assert!(!out.contains(&sk) && !out.contains("bob-secret"), "{out}");

    server.restart();
    let alice = client_with(&server, &ak, &sk, "us-east-1");
    assert_eq!(get_bytes(&alice, "alices", "k").await, b"hello");
    let bob = client_with(
        &server,
        "BOBACCESSKEY0000",
        "bob-secret-0123456789",
        "us-east-1",
    );
    bob.list_buckets().send().await.unwrap();
    let wrong = client_with(
        &server,
        "BOBACCESSKEY0000",
        "another-secret-0123",
        "us-east-1",
    );
    let err = wrong.list_buckets().send().await.unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("SignatureDoesNotMatch"));
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_actions_need_the_cluster_secret() {
    let server = Server::start();
    for req in [
        &b"POST /admin/datanodes/0/stop HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"[..],
        b"POST /admin/keys HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        b"POST /admin/datanodes/0/remove HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        b"POST /admin/datanodes/0/remove HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        b"PUT /admin/storage-classes/GLACIER HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\nConnection: close\r\n\r\n{\"ec\":\"1+1\"}",
        b"PUT /admin/storage-classes/GLACIER HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\nContent-Length: 12\r\nConnection: close\r\n\r\n{\"ec\":\"1+1\"}",
        b"DELETE /admin/storage-classes/REDUCED_REDUNDANCY HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"PUT /admin/buckets/b/storage-class HTTP/1.1\r\nHost: x\r\nContent-Length: 19\r\nConnection: close\r\n\r\n{\"class\":\"GLACIER\"}",
        b"POST /admin/master-keys/rotate HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        b"POST /admin/master-keys/rotate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        b"GET /admin/master-keys HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"POST /admin/kms-keys/stolen HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        b"POST /admin/kms-keys/stolen HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        b"GET /admin/kms-keys HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        // An empty bearer token is refused, whatever the secret.
        b"GET /admin/keys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \r\nConnection: close\r\n\r\n",
    ] {
        let r = raw_request(server.admin, req).unwrap();
        assert_eq!(r.status, 401, "{}", r.body_str());
    }
    assert_eq!(server.admin_get("/admin/datanodes").status, 401);
    assert_eq!(server.admin_get("/admin/keys").status, 401);
    // Nothing was stopped or created.
    assert_eq!(server.admin_get("/health/ready").status, 200);
    let (ok, out) = server.cairn_admin(&["keys"]);
    assert!(ok, "{out}");
    let keys: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 1, "{out}");
    let (ok, out) = server.cairn_admin(&["datanodes"]);
    assert!(ok, "{out}");
    let nodes: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        nodes.as_array().unwrap().len(),
        6,
        "no datanode was removed: {out}"
    );
    let (ok, out) = server.cairn_admin(&["storage-class"]);
    assert!(ok, "{out}");
    assert_eq!(
        out.trim(),
        "REDUCED_REDUNDANCY 4+1 (built-in), STANDARD 4+2",
        "no storage class was set"
    );
    let (ok, out) = server.cairn_admin(&["master-keys"]);
    assert!(ok, "{out}");
    let keys: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        keys["keys"],
        serde_json::json!([1]),
        "no master key was added: {out}"
    );
    let (ok, out) = server.cairn_admin(&["kms-key"]);
    assert!(ok, "{out}");
    assert_eq!(out.trim(), "[]", "no KMS key was made");
}

/// The data directory, `meta/` and the datanodes' segment files used to be created with the
/// umask's modes (0755 / 0644): any user of the host could read the objects, and the secrets
/// were protected by their own mode only. Now every directory Cairn makes is 0700 and every
/// file it writes (root credentials, cluster secret, segments) 0600.
///
/// RocksDB creates what is inside `meta/` itself, with the process umask, so those files
/// (and any directory RocksDB makes there) may be open to others: what protects them is that
/// `meta/` and the data directory are 0700. So the walk below checks `meta/` itself and every
/// directory and file outside it, and leaves RocksDB's own entries alone.
#[tokio::test(flavor = "multi_thread")]
async fn the_data_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // Without root credentials in the environment, so that they are generated and saved.
    let unset = |k: &str| (k.to_string(), String::new());
    let server = Server::spawn_in(
        &data,
        Vec::new(),
        vec![
            unset("CAIRN_ROOT_ACCESS_KEY"),
            unset("CAIRN_ROOT_SECRET_KEY"),
        ],
    );
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("root-credentials.json")).unwrap())
            .unwrap();
    let s3 = client_with(
        &server,
        saved["access_key"].as_str().unwrap(),
        saved["secret_key"].as_str().unwrap(),
        "us-east-1",
    );
    // Big enough to be striped over the datanodes rather than kept inline in metadata.
    s3.create_bucket().bucket("private").send().await.unwrap();
    put_bytes(&s3, "private", "big", &random_bytes(1 << 20, 7)).await;

    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the data directory");
    for name in ["root-credentials.json", "cluster-secret"] {
        assert_eq!(mode(&data.join(name)), 0o600, "{name}");
    }
    let (mut dirs, mut files, mut segments) = (vec![data.clone()], 0, 0);
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            let m = mode(&path);
            assert_eq!(m & 0o077, 0, "{} is mode {m:03o}", path.display());
            if path == data.join("meta") {
                continue;
            }
            if path.is_dir() {
                dirs.push(path);
            } else {
                files += 1;
                segments += path.extension().is_some_and(|x| x == "dat") as usize;
            }
        }
    }
    assert!(segments >= 6, "{segments} segment files of {files} files");
    // The directories directly under the data directory (meta/, datanodes/) are 0700 too.
    for e in std::fs::read_dir(&data).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            assert_eq!(mode(&path), 0o700, "{}", path.display());
        }
    }
}

/// A short cluster secret (README once showed `CAIRN_CLUSTER_SECRET=s3cret`) used to be
/// accepted; the server now refuses to start with one under 32 bytes and says why.
#[test]
fn a_short_cluster_secret_is_refused_at_start() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(cairn_bin())
        .arg("server")
        .arg("--data")
        .arg(tmp.path().join("data"))
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(["--cluster-listen", "127.0.0.1:0"])
        .env("CAIRN_CLUSTER_SECRET", "s3cret")
        .env("CAIRN_ROOT_ACCESS_KEY", ACCESS_KEY)
        .env("CAIRN_ROOT_SECRET_KEY", SECRET_KEY)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("cairn server kept running with a 6-byte cluster secret");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert!(stderr.contains("at least 32"), "{stderr}");
    assert!(!tmp.path().join("data/cluster-secret").exists());
}
