//! SSE-KMS with the built-in KMS, as a client and an operator meet it: keys made with
//! `cairn admin kms-key`, objects written with `aws:kms` (a named key, the default `aws/s3`,
//! a bucket default naming a key), single-part, multipart and copied, reported on PUT, HEAD
//! and GET with their key and read back exactly; a key that does not exist is refused before
//! anything is stored; `cairn status` lists the keys; no file under the data directory holds
//! the plaintext; after a restart every object still reads (the keys come back from metadata,
//! sealed).

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
};

use crate::common::*;
use crate::encryption::{assert_ranges, files_with_marker, get_range, marked, BUCKET};

/// `cairn admin kms-key` (list) as JSON: the key names.
fn kms_names(server: &Server) -> Vec<String> {
    let (ok, out) = server.cairn_admin(&["kms-key"]);
    assert!(ok, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap().to_string())
        .collect()
}

async fn head_kms(s3: &aws_sdk_s3::Client, key: &str) -> (Option<String>, Option<String>) {
    let h = s3
        .head_object()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
        .unwrap();
    (
        h.server_side_encryption().map(|e| e.as_str().to_string()),
        h.ssekms_key_id().map(str::to_string),
    )
}

fn kms(id: &str) -> (Option<String>, Option<String>) {
    (Some("aws:kms".into()), Some(id.into()))
}

#[tokio::test(flavor = "multi_thread")]
async fn sse_kms_objects_use_their_named_key_and_leave_no_plaintext_on_disk() {
    let mut server = Server::start_with(&[]);
    let s3 = client(&server);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();

    // Keys are made by the operator; making one again keeps it.
    assert!(kms_names(&server).is_empty());
    let (ok, out) = server.cairn_admin(&["kms-key", "testkey-1"]);
    assert!(ok && out.contains("\"created\": true"), "{out}");
    let (ok, out) = server.cairn_admin(&["kms-key", "testkey-1"]);
    assert!(ok && out.contains("\"created\": false"), "{out}");
    let (ok, out) = server.cairn_admin(&["kms-key", "alias/backups"]);
    assert!(ok, "{out}");
    let (ok, out) = server.cairn_admin(&["kms-key", "no spaces"]);
    assert!(!ok, "{out}");
    assert_eq!(kms_names(&server), ["alias/backups", "testkey-1"]);

    // A named key: PUT, HEAD and GET report it; ranges across chunks and stripes are exact.
    let large = marked(9 << 20, 11);
    let put = s3
        .put_object()
        .bucket(BUCKET)
        .key("large")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id("testkey-1")
        .body(ByteStream::from(large.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        put.server_side_encryption(),
        Some(&ServerSideEncryption::AwsKms)
    );
    assert_eq!(put.ssekms_key_id(), Some("testkey-1"));
    assert_eq!(head_kms(&s3, "large").await, kms("testkey-1"));
    let got = s3
        .get_object()
        .bucket(BUCKET)
        .key("large")
        .send()
        .await
        .unwrap();
    assert_eq!(got.ssekms_key_id(), Some("testkey-1"));
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        &large[..]
    );
    assert_ranges(
        &s3,
        "large",
        &large,
        &[(65530, 200_000), ((4 << 20) - 7, (4 << 20) + 70_000)],
    )
    .await;

    // A key that does not exist: refused before anything is stored.
    let small = marked(3000, 12);
    let err = s3
        .put_object()
        .bucket(BUCKET)
        .key("nokey")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id("testkey-404")
        .body(ByteStream::from(small.clone()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("KMS.NotFoundException"));
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400));
    assert!(s3
        .head_object()
        .bucket(BUCKET)
        .key("nokey")
        .send()
        .await
        .is_err());
    // A key id without aws:kms, or with AES256, is a contradiction.
    for alg in [None, Some(ServerSideEncryption::Aes256)] {
        let err = s3
            .put_object()
            .bucket(BUCKET)
            .key("bad")
            .set_server_side_encryption(alg)
            .ssekms_key_id("testkey-1")
            .body(ByteStream::from(small.clone()))
            .send()
            .await
            .unwrap_err();
        assert_eq!(code_of(&err).as_deref(), Some("InvalidArgument"));
    }

    // aws:kms without a key id: the default key, made on first use.
    s3.put_object()
        .bucket(BUCKET)
        .key("small")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .body(ByteStream::from(small.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(head_kms(&s3, "small").await, kms("aws/s3"));
    assert!(kms_names(&server).contains(&"aws/s3".to_string()));
    // The SSE headers mean nothing on a read: refused.
    let bad = s3
        .get_object()
        .bucket(BUCKET)
        .key("small")
        .customize()
        .mutate_request(|r| {
            r.headers_mut()
                .insert("x-amz-server-side-encryption-aws-kms-key-id", "testkey-1");
        })
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&bad).as_deref(), Some("InvalidArgument"));

    // Multipart: the upload's key for every part, reported on creation and completion.
    let err = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key("parts")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id("testkey-404")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("KMS.NotFoundException"));
    let up = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key("parts")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id("alias/backups")
        .send()
        .await
        .unwrap();
    assert_eq!(up.ssekms_key_id(), Some("alias/backups"));
    let id = up.upload_id().unwrap();
    let (p1, p2) = (marked(5 << 20, 13), marked(300_000, 14));
    let mut done = Vec::new();
    for (n, body) in [(1, &p1), (2, &p2)] {
        let r = s3
            .upload_part()
            .bucket(BUCKET)
            .key("parts")
            .upload_id(id)
            .part_number(n)
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.ssekms_key_id(), Some("alias/backups"));
        done.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(r.e_tag().unwrap())
                .build(),
        );
    }
    let c = s3
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key("parts")
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(c.ssekms_key_id(), Some("alias/backups"));
    assert_eq!(head_kms(&s3, "parts").await, kms("alias/backups"));
    let whole = [p1, p2].concat();
    assert_ranges(&s3, "parts", &whole, &[((5 << 20) - 10, (5 << 20) + 10)]).await;

    // A copy into another key: as the copy asks.
    s3.copy_object()
        .bucket(BUCKET)
        .key("copied")
        .copy_source(format!("{BUCKET}/small"))
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id("testkey-1")
        .send()
        .await
        .unwrap();
    assert_eq!(head_kms(&s3, "copied").await, kms("testkey-1"));
    assert_eq!(get_range(&s3, "copied", None).await, small);

    // A bucket default naming a key: GetBucketEncryption reports it, plain writes get it.
    s3.put_bucket_encryption()
        .bucket(BUCKET)
        .server_side_encryption_configuration(
            ServerSideEncryptionConfiguration::builder()
                .rules(
                    ServerSideEncryptionRule::builder()
                        .apply_server_side_encryption_by_default(
                            ServerSideEncryptionByDefault::builder()
                                .sse_algorithm(ServerSideEncryption::AwsKms)
                                .kms_master_key_id("testkey-1")
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
    let enc = s3
        .get_bucket_encryption()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let d = enc.server_side_encryption_configuration().unwrap().rules()[0]
        .apply_server_side_encryption_by_default()
        .unwrap()
        .clone();
    assert_eq!(d.sse_algorithm(), &ServerSideEncryption::AwsKms);
    assert_eq!(d.kms_master_key_id(), Some("testkey-1"));
    put_bytes(&s3, BUCKET, "defaulted", &small).await;
    assert_eq!(head_kms(&s3, "defaulted").await, kms("testkey-1"));

    // `cairn status` lists the keys.
    let (ok, status, err) = server.cairn("status", &[]);
    assert!(ok, "{status}{err}");
    assert!(
        status.contains(
            "encryption at rest: master keys 1 (active 1), KMS keys alias/backups, aws/s3, testkey-1"
        ),
        "{status}"
    );

    // Nothing in the clear on disk; after a restart everything reads.
    assert!(server.terminate());
    let hits = files_with_marker(&server.data);
    assert!(hits.is_empty(), "plaintext found in {hits:?}");
    server.restart();
    let s3 = client(&server);
    assert_eq!(get_range(&s3, "large", None).await, large);
    assert_eq!(get_range(&s3, "parts", None).await, whole);
    assert_eq!(get_range(&s3, "defaulted", None).await, small);
}
