//! The admin API and `cairn admin`: access keys created by an operator work for S3 clients
//! at once and after a restart; operator calls need the cluster secret.

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
}
