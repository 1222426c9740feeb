//! Encryption at rest as a client meets it: objects written with SSE-S3 (asked for, by the
//! bucket's default, by the server's default) and SSE-C, inline and striped, single-part and
//! multipart, read back whole and in ranges through aws-sdk-s3; then every file under the
//! data directory (segment files, RocksDB tables and WAL, Raft log) is searched for a
//! plaintext marker the objects carry: none may hold it. The same search on a server that
//! stores plaintext (`--default-encryption none`) finds the marker, so the search can fail.

use std::path::Path;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, ServerSideEncryption};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use md5::{Digest, Md5};

use crate::common::*;

pub(crate) const BUCKET: &str = "sealed";
const MARKER: &[u8] = b"CAIRN-PLAINTEXT-MARKER-7f3a9c";

/// A body of `len` bytes that carries the marker every 4 KiB.
pub(crate) fn marked(len: usize, seed: u64) -> Vec<u8> {
    let mut b = random_bytes(len, seed);
    let mut at = 0;
    while at + MARKER.len() <= len {
        b[at..at + MARKER.len()].copy_from_slice(MARKER);
        at += 4096;
    }
    b
}

/// Files under `dir` holding the marker.
pub(crate) fn files_with_marker(dir: &Path) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                if bytes.windows(MARKER.len()).any(|w| w == MARKER) {
                    hits.push(p.display().to_string());
                }
            }
        }
    }
    hits
}

struct Ssec {
    key: String,
    md5: String,
}

fn ssec(byte: u8) -> Ssec {
    let raw = [byte; 32];
    Ssec {
        key: B64.encode(raw),
        md5: B64.encode(Md5::digest(raw)),
    }
}

pub(crate) async fn get_range(
    s3: &aws_sdk_s3::Client,
    key: &str,
    range: Option<(u64, u64)>,
) -> Vec<u8> {
    let mut req = s3.get_object().bucket(BUCKET).key(key);
    if let Some((a, b)) = range {
        req = req.range(format!("bytes={a}-{b}"));
    }
    let out = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {key}: {e:?}"));
    out.body.collect().await.unwrap().into_bytes().to_vec()
}

/// Each inclusive byte range `(a, b)` of `key` reads back as those bytes of `body`.
pub(crate) async fn assert_ranges(
    s3: &aws_sdk_s3::Client,
    key: &str,
    body: &[u8],
    ranges: &[(u64, u64)],
) {
    for &(a, b) in ranges {
        assert_eq!(
            get_range(s3, key, Some((a, b))).await,
            body[a as usize..=b as usize],
            "{key} bytes={a}-{b}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn encrypted_objects_leave_no_plaintext_on_disk_and_read_back_exactly() {
    let mut server = Server::start_with(&["--allow-insecure-sse-c"]);
    let s3 = client(&server);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();

    // The server's default (SSE-S3), inline and striped.
    let small = marked(3000, 1);
    let large = marked(9 << 20, 2);
    put_bytes(&s3, BUCKET, "small", &small).await;
    put_bytes(&s3, BUCKET, "large", &large).await;
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key("large")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256)
    );
    assert_eq!(
        head.e_tag(),
        Some(format!("\"{}\"", md5_hex(&large)).as_str())
    );
    assert_eq!(get_range(&s3, "small", None).await, small);
    assert_eq!(get_range(&s3, "large", None).await, large);
    // Ranges across chunk (64 KiB) and stripe (4 MiB) boundaries.
    assert_ranges(
        &s3,
        "large",
        &large,
        &[
            (0, 0),
            (65535, 65536),
            (65530, 200_000),
            ((4 << 20) - 7, (4 << 20) + 70_000),
            ((9 << 20) - 100, (9 << 20) - 1),
        ],
    )
    .await;

    // Asked for explicitly; a GET that sends the SSE-S3 header is refused.
    let asked = marked(100_000, 3);
    let put = s3
        .put_object()
        .bucket(BUCKET)
        .key("asked")
        .server_side_encryption(ServerSideEncryption::Aes256)
        .body(ByteStream::from(asked.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        put.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256)
    );
    let bad = s3
        .get_object()
        .bucket(BUCKET)
        .key("asked")
        .customize()
        .mutate_request(|r| {
            r.headers_mut()
                .insert("x-amz-server-side-encryption", "AES256");
        })
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&bad).as_deref(), Some("InvalidArgument"));

    // SSE-C: the key on every read; none, or another, is refused.
    let k = ssec(7);
    let secret = marked(300_000, 4);
    let put = s3
        .put_object()
        .bucket(BUCKET)
        .key("customer")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&k.key)
        .sse_customer_key_md5(&k.md5)
        .body(ByteStream::from(secret.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(put.sse_customer_key_md5(), Some(k.md5.as_str()));
    let got = s3
        .get_object()
        .bucket(BUCKET)
        .key("customer")
        .range("bytes=70000-140000")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&k.key)
        .sse_customer_key_md5(&k.md5)
        .send()
        .await
        .unwrap();
    assert_eq!(got.sse_customer_algorithm(), Some("AES256"));
    let got = got.body.collect().await.unwrap().into_bytes();
    assert_eq!(got.as_ref(), &secret[70000..=140000]);
    let none = s3.get_object().bucket(BUCKET).key("customer").send().await;
    let e = none.unwrap_err();
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(400));
    let other = ssec(8);
    let wrong = s3
        .head_object()
        .bucket(BUCKET)
        .key("customer")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&other.key)
        .sse_customer_key_md5(&other.md5)
        .send()
        .await
        .unwrap_err();
    assert_eq!(wrong.raw_response().map(|r| r.status().as_u16()), Some(403));

    // A multipart SSE-C upload: each part needs the upload's key.
    let up = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key("parts")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&k.key)
        .sse_customer_key_md5(&k.md5)
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let p1 = marked(5 << 20, 5);
    let p2 = marked(1 << 20, 6);
    let wrong_part = s3
        .upload_part()
        .bucket(BUCKET)
        .key("parts")
        .upload_id(id)
        .part_number(1)
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&other.key)
        .sse_customer_key_md5(&other.md5)
        .body(ByteStream::from(p1.clone()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        wrong_part.raw_response().map(|r| r.status().as_u16()),
        Some(400)
    );
    let mut done = Vec::new();
    for (n, body) in [(1, &p1), (2, &p2)] {
        let r = s3
            .upload_part()
            .bucket(BUCKET)
            .key("parts")
            .upload_id(id)
            .part_number(n)
            .sse_customer_algorithm("AES256")
            .sse_customer_key(&k.key)
            .sse_customer_key_md5(&k.md5)
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
        done.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(r.e_tag().unwrap())
                .build(),
        );
    }
    // Completed with the upload's key too (refused without it).
    let keyless = s3
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key("parts")
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done.clone()))
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        keyless.raw_response().map(|r| r.status().as_u16()),
        Some(400)
    );
    s3.complete_multipart_upload()
        .bucket(BUCKET)
        .key("parts")
        .upload_id(id)
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&k.key)
        .sse_customer_key_md5(&k.md5)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let whole: Vec<u8> = [p1.clone(), p2.clone()].concat();
    let got = s3
        .get_object()
        .bucket(BUCKET)
        .key("parts")
        .range(format!("bytes={}-{}", (5 << 20) - 10, (5 << 20) + 10))
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&k.key)
        .sse_customer_key_md5(&k.md5)
        .send()
        .await
        .unwrap();
    let got = got.body.collect().await.unwrap().into_bytes();
    assert_eq!(got.as_ref(), &whole[(5 << 20) - 10..=(5 << 20) + 10]);

    // A copy of the SSE-C object into SSE-S3 (the source key given), and back.
    s3.copy_object()
        .bucket(BUCKET)
        .key("copied")
        .copy_source(format!("{BUCKET}/customer"))
        .copy_source_sse_customer_algorithm("AES256")
        .copy_source_sse_customer_key(&k.key)
        .copy_source_sse_customer_key_md5(&k.md5)
        .send()
        .await
        .unwrap();
    assert_eq!(get_range(&s3, "copied", None).await, secret);

    // The bucket's default, as GetBucketEncryption reports it.
    put_default_encryption(&s3, BUCKET).await;
    let enc = s3
        .get_bucket_encryption()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let rule = &enc.server_side_encryption_configuration().unwrap().rules()[0];
    assert_eq!(
        rule.apply_server_side_encryption_by_default()
            .map(|d| d.sse_algorithm()),
        Some(&ServerSideEncryption::Aes256)
    );

    // Stopped, so that nothing is only in memory: no file holds the marker.
    assert!(server.terminate());
    let hits = files_with_marker(&server.data);
    assert!(hits.is_empty(), "plaintext found in {hits:?}");

    // Restarted, everything still reads (the master key comes back from metadata).
    server.restart();
    let s3 = client(&server);
    assert_eq!(get_range(&s3, "large", None).await, large);
    assert_eq!(get_range(&s3, "small", None).await, small);

    // The control: a server storing plaintext leaves the marker on disk; there a bucket
    // whose default asks for SSE-S3 still gets it.
    let mut plain = Server::start_with(&["--default-encryption", "none"]);
    let s3 = client(&plain);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    put_bytes(&s3, BUCKET, "small", &small).await;
    put_bytes(&s3, BUCKET, "large", &large).await;
    let head = s3
        .head_object()
        .bucket(BUCKET)
        .key("large")
        .send()
        .await
        .unwrap();
    assert_eq!(head.server_side_encryption(), None);
    s3.create_bucket().bucket("defaulted").send().await.unwrap();
    put_default_encryption(&s3, "defaulted").await;
    put_bytes(&s3, "defaulted", "x", &small).await;
    let head = s3
        .head_object()
        .bucket("defaulted")
        .key("x")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256)
    );
    // Without --allow-insecure-sse-c, SSE-C over plain HTTP is refused (the key would cross
    // the network in the clear).
    let refused = s3
        .put_object()
        .bucket(BUCKET)
        .key("ssec")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&k.key)
        .sse_customer_key_md5(&k.md5)
        .body(ByteStream::from(small.clone()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&refused).as_deref(), Some("InvalidRequest"));
    assert!(plain.terminate());
    let hits = files_with_marker(&plain.data);
    assert!(
        hits.iter().any(|h| h.contains("datanodes")),
        "a plaintext server's segment files should hold the marker: {hits:?}"
    );
}

async fn put_default_encryption(s3: &aws_sdk_s3::Client, bucket: &str) {
    s3.put_bucket_encryption()
        .bucket(bucket)
        .server_side_encryption_configuration(
            aws_sdk_s3::types::ServerSideEncryptionConfiguration::builder()
                .rules(
                    aws_sdk_s3::types::ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(
                            aws_sdk_s3::types::ServerSideEncryptionByDefault::builder()
                                .sse_algorithm(ServerSideEncryption::Aes256)
                                .build()
                                .unwrap(),
                        )
                        .build(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

/// `GET /admin/master-keys` as JSON.
fn master_keys(server: &Server) -> serde_json::Value {
    let r = server.admin_call("GET", "/admin/master-keys", "");
    serde_json::from_str(&r.body_str()).unwrap_or_else(|e| panic!("{e}: {}", r.body_str()))
}

/// Writes `n` small (inline) and a few striped objects under `prefix`; returns them.
async fn write_many(s3: &aws_sdk_s3::Client, prefix: &str, n: usize) -> Vec<(String, Vec<u8>)> {
    use futures::{stream, StreamExt};
    let objs: Vec<(String, Vec<u8>)> = (0..n)
        .map(|i| {
            let size = if i % 500 == 0 { 300_000 } else { 200 };
            (format!("{prefix}{i:05}"), marked(size, i as u64))
        })
        .collect();
    stream::iter(objs.clone())
        .for_each_concurrent(
            16,
            |(k, b)| async move { put_bytes(s3, BUCKET, &k, &b).await },
        )
        .await;
    objs
}

#[tokio::test(flavor = "multi_thread")]
async fn master_key_rotation_under_load_survives_a_sigkill_and_keeps_every_object_readable() {
    let mut server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let before = write_many(&s3, "before/", 4000).await;
    assert_eq!(master_keys(&server)["active"], 1);

    // Rotation starts; writes and reads go on meanwhile.
    let (ok, out) = server.cairn_admin(&["rotate-master-key", "--no-wait"]);
    assert!(ok, "{out}");
    let during = write_many(&s3, "during/", 300).await;
    for (k, b) in before.iter().step_by(97) {
        assert_eq!(&get_bytes(&s3, BUCKET, k).await, b, "{k}");
    }
    // Killed in the middle of the re-wrap (if it already ended, the kill still checks
    // that its end was recorded).
    let v = master_keys(&server);
    assert_eq!(v["active"], 2, "{v}");
    let was_done = v["rotation"]["done"] == true;
    server.kill();
    server.restart();
    let s3 = client(&server);
    // The restarted node carries the rotation on to its end by itself.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let end = loop {
        let v = master_keys(&server);
        if v["rotation"]["done"] == true {
            break v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the rotation did not finish after the restart: {v}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(end["rotation"]["target"], 2, "{end}");
    assert_eq!(end["keys"], serde_json::json!([1, 2]), "{end}");
    // Done means a whole pass found no data key under key 1. (The count can fall short
    // of the 4000 objects: keys re-wrapped on the page the kill cut short were not saved
    // in the count, and the resumed pass found them done.)
    assert!(
        end["rotation"]["passes"].as_u64().unwrap() >= 2
            && end["rotation"]["rewrapped"].as_u64().unwrap() > 0,
        "{end} (done before the kill: {was_done})"
    );
    let after = write_many(&s3, "after/", 50).await;
    for (k, b) in before.iter().chain(&during).chain(&after) {
        assert_eq!(&get_bytes(&s3, BUCKET, k).await, b, "{k}");
    }
    // A second rotation, followed by the CLI to its end.
    let (ok, out) = server.cairn_admin(&["rotate-master-key"]);
    assert!(ok && out.contains("master key 3"), "{out}");
    let v = master_keys(&server);
    assert_eq!(v["rotation"]["done"], true, "{v}");
    assert_eq!(v["rotation"]["target"], 3, "{v}");
    for (k, b) in before.iter().step_by(13) {
        assert_eq!(&get_bytes(&s3, BUCKET, k).await, b, "{k}");
    }
}
