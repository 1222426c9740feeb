//! Behaviours the ceph s3-tests suite pinned down, driven through real clients:
//! GetObjectAttributes, DeleteObjects keys made of spaces, repeated and conditional
//! CompleteMultipartUpload, PUT with `Transfer-Encoding: chunked` and no length, listing
//! prefixes under `encoding-type=url`, `If-Match: *`, `x-amz-expected-bucket-owner`,
//! ListBuckets pages, expired presigned URLs and keys a URI cannot carry.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketCannedAcl, CompletedMultipartUpload, CompletedPart, Delete, EncodingType,
    ObjectAttributes, ObjectIdentifier,
};
use aws_sdk_s3::Client;

use crate::acl::anon;
use crate::common::*;

/// Uploads `parts` as the parts of a new upload of `key`; returns the upload id and the
/// completion naming them all.
async fn upload_parts(
    s3: &Client,
    bucket: &str,
    key: &str,
    parts: &[Vec<u8>],
) -> (String, CompletedMultipartUpload) {
    let up = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_string();
    let mut done = CompletedMultipartUpload::builder();
    for (i, data) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let p = s3
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .unwrap();
        done = done.parts(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(p.e_tag().unwrap())
                .build(),
        );
    }
    (id, done.build())
}

#[tokio::test(flavor = "multi_thread")]
async fn object_attributes_and_multipart_completion() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("attrs").send().await.unwrap();
    put_bytes(&s3, "attrs", "small", b"foo").await;
    let all = [
        ObjectAttributes::Etag,
        ObjectAttributes::Checksum,
        ObjectAttributes::ObjectParts,
        ObjectAttributes::StorageClass,
        ObjectAttributes::ObjectSize,
    ];
    let mut req = s3.get_object_attributes().bucket("attrs").key("small");
    for a in &all {
        req = req.object_attributes(a.clone());
    }
    let got = req.send().await.unwrap();
    assert_eq!(got.e_tag(), Some(md5_hex(b"foo").as_str()));
    assert_eq!(got.object_size(), Some(3));
    assert_eq!(got.storage_class().map(|c| c.as_str()), Some("STANDARD"));
    assert!(
        got.object_parts().is_none(),
        "a single-part object has no parts list"
    );
    assert!(got.version_id().is_none());
    assert!(got.last_modified().is_some());

    // A multipart object lists its parts, paged.
    let size = 5 << 20;
    let parts: Vec<Vec<u8>> = (0..4u64).map(|i| random_bytes(size, i)).collect();
    let (id, done) = upload_parts(&s3, "attrs", "multi", &parts).await;
    let first = s3
        .complete_multipart_upload()
        .bucket("attrs")
        .key("multi")
        .upload_id(&id)
        .multipart_upload(done.clone())
        .send()
        .await
        .unwrap();
    let etag = first.e_tag().unwrap().trim_matches('"').to_string();
    assert!(etag.ends_with("-4"));
    let page = s3
        .get_object_attributes()
        .bucket("attrs")
        .key("multi")
        .object_attributes(ObjectAttributes::ObjectParts)
        .object_attributes(ObjectAttributes::Etag)
        .max_parts(1)
        .part_number_marker("2")
        .send()
        .await
        .unwrap();
    assert_eq!(page.e_tag(), Some(etag.as_str()));
    let op = page.object_parts().expect("parts");
    assert_eq!(op.total_parts_count(), Some(4));
    assert_eq!(op.is_truncated(), Some(true));
    assert_eq!(op.next_part_number_marker(), Some("3"));
    let numbers: Vec<_> = op
        .parts()
        .iter()
        .map(|p| (p.part_number(), p.size()))
        .collect();
    assert_eq!(numbers, [(Some(3), Some(size as i64))]);
    let err = s3
        .get_object_attributes()
        .bucket("attrs")
        .key("missing")
        .object_attributes(ObjectAttributes::Etag)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("NoSuchKey"));

    // Completing again (the client lost the answer) gives the same object...
    let again = s3
        .complete_multipart_upload()
        .bucket("attrs")
        .key("multi")
        .upload_id(&id)
        .multipart_upload(done)
        .send()
        .await
        .unwrap();
    assert_eq!(again.e_tag(), first.e_tag());
    // ... but not with other parts.
    let one = CompletedMultipartUpload::builder()
        .parts(
            CompletedPart::builder()
                .part_number(1)
                .e_tag(format!("\"{}\"", md5_hex(&parts[0])))
                .build(),
        )
        .build();
    let err = s3
        .complete_multipart_upload()
        .bucket("attrs")
        .key("multi")
        .upload_id(&id)
        .multipart_upload(one)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("NoSuchUpload"));
    assert_eq!(get_bytes(&s3, "attrs", "multi").await, parts.concat());

    // Conditional completion: If-None-Match: * refuses to replace the object there.
    let (id2, done2) = upload_parts(&s3, "attrs", "multi", &[b"new".to_vec()]).await;
    let err = s3
        .complete_multipart_upload()
        .bucket("attrs")
        .key("multi")
        .upload_id(&id2)
        .if_none_match("*")
        .multipart_upload(done2.clone())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("PreconditionFailed"));
    s3.complete_multipart_upload()
        .bucket("attrs")
        .key("multi")
        .upload_id(&id2)
        .if_match(first.e_tag().unwrap())
        .multipart_upload(done2)
        .send()
        .await
        .unwrap();
    assert_eq!(get_bytes(&s3, "attrs", "multi").await, b"new");
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_prefixes_conditions_and_owners() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("odd").send().await.unwrap();

    // DeleteObjects keeps a key of spaces as it is.
    // (aws-sdk-s3 will not send a key of spaces itself; DeleteObjects carries it in XML.)
    let host = server.s3.to_string();
    for (path, body) in [("/odd/%20%20%20", &b"spaces"[..]), ("/odd/%20", b"space")] {
        let r = signed_raw_to(
            &server,
            &host,
            "PUT",
            path,
            &[],
            body,
            body,
            std::time::SystemTime::now(),
        );
        assert_eq!(r.status, 200, "{}", r.body_str());
    }
    let del = Delete::builder()
        .objects(ObjectIdentifier::builder().key("   ").build().unwrap())
        .build()
        .unwrap();
    let out = s3
        .delete_objects()
        .bucket("odd")
        .delete(del)
        .send()
        .await
        .unwrap();
    assert_eq!(out.deleted().len(), 1);
    assert_eq!(out.deleted()[0].key(), Some("   "));
    let keys: Vec<_> = s3
        .list_objects_v2()
        .bucket("odd")
        .send()
        .await
        .unwrap()
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect();
    assert_eq!(keys, [" "]);

    // encoding-type=url: V2 encodes its Prefix, V1 answers it as sent.
    let v1 = s3
        .list_objects()
        .bucket("odd")
        .prefix("a b")
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    assert_eq!(v1.prefix(), Some("a b"));
    let v2 = s3
        .list_objects_v2()
        .bucket("odd")
        .prefix("a b")
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    assert_eq!(v2.prefix(), Some("a%20b"));

    // If-Match: * replaces only an object that exists.
    put_bytes(&s3, "odd", "kept", b"first").await;
    s3.put_object()
        .bucket("odd")
        .key("kept")
        .if_match("*")
        .body(ByteStream::from_static(b"replaced"))
        .send()
        .await
        .unwrap();
    let err = s3
        .put_object()
        .bucket("odd")
        .key("absent")
        .if_match("*")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("NoSuchKey"));
    assert_eq!(get_bytes(&s3, "odd", "kept").await, b"replaced");

    // x-amz-expected-bucket-owner: the bucket's canonical owner id, or AccessDenied.
    let acl = s3.get_bucket_acl().bucket("odd").send().await.unwrap();
    let me = acl.owner().and_then(|o| o.id()).unwrap().to_string();
    s3.list_objects_v2()
        .bucket("odd")
        .expected_bucket_owner(&me)
        .send()
        .await
        .unwrap();
    let err = s3
        .list_objects_v2()
        .bucket("odd")
        .expected_bucket_owner(format!("{me}foo"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("AccessDenied"));

    // ListBuckets pages.
    for b in ["page-b", "page-c"] {
        s3.create_bucket().bucket(b).send().await.unwrap();
    }
    let first = s3.list_buckets().max_buckets(2).send().await.unwrap();
    let names: Vec<_> = first.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, ["odd", "page-b"]);
    let token = first
        .continuation_token()
        .expect("more buckets")
        .to_string();
    let rest = s3
        .list_buckets()
        .max_buckets(2)
        .continuation_token(token)
        .send()
        .await
        .unwrap();
    let names: Vec<_> = rest.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, ["page-c"]);
    assert!(rest.continuation_token().is_none());
    let err = s3.list_buckets().max_buckets(0).send().await.unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("InvalidArgument"));

    // A key with a control character is not a URI Cairn parses.
    let r = anon(&server, "GET", "/odd/a%01b", b"");
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (400, Some("InvalidURI"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn chunked_bodies_without_length_and_expired_presigned_urls() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket()
        .bucket("drop")
        .acl(BucketCannedAcl::PublicReadWrite)
        .send()
        .await
        .unwrap();
    // Transfer-Encoding: chunked and no Content-Length (curl -T -, streaming uploaders).
    let req = format!(
        "PUT /drop/streamed HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: chunked\r\nx-amz-acl: public-read\r\nConnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        server.s3
    );
    let r = raw_request(server.s3, req.as_bytes()).unwrap();
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(
        r.header("etag"),
        Some(format!("\"{}\"", md5_hex(b"hello world")).as_str())
    );
    assert_eq!(get_bytes(&s3, "drop", "streamed").await, b"hello world");

    // A presigned URL with a negative lifetime has expired: 403, not a malformed request.
    let url = format!(
        "/drop/streamed?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={ACCESS_KEY}%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20260101T000000Z&X-Amz-Expires=-1000&X-Amz-SignedHeaders=host&X-Amz-Signature=00"
    );
    let r = anon(&server, "GET", &url, b"");
    assert_eq!(
        (r.status, r.error_code().as_deref()),
        (403, Some("AccessDenied"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_part_read_by_number_carries_its_own_checksum() {
    use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode};
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("parts").send().await.unwrap();
    let up = s3
        .create_multipart_upload()
        .bucket("parts")
        .key("k")
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let bodies = [random_bytes(5 << 20, 7), b"tail".to_vec()];
    let mut done = CompletedMultipartUpload::builder();
    let mut sums = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        let n = i as i32 + 1;
        let p = s3
            .upload_part()
            .bucket("parts")
            .key("k")
            .upload_id(id)
            .part_number(n)
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            .body(ByteStream::from(body.clone()))
            .send()
            .await
            .unwrap();
        let sum = p.checksum_sha256().unwrap().to_string();
        done = done.parts(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(p.e_tag().unwrap())
                .checksum_sha256(&sum)
                .build(),
        );
        sums.push(sum);
    }
    s3.complete_multipart_upload()
        .bucket("parts")
        .key("k")
        .upload_id(id)
        .multipart_upload(done.build())
        .send()
        .await
        .unwrap();
    for (n, sum) in sums.iter().enumerate() {
        let got = s3
            .head_object()
            .bucket("parts")
            .key("k")
            .part_number(n as i32 + 1)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        assert_eq!(got.checksum_sha256(), Some(sum.as_str()));
        assert_eq!(got.checksum_type().map(|t| t.as_str()), Some("COMPOSITE"));
    }
    let whole = s3
        .head_object()
        .bucket("parts")
        .key("k")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert!(whole.checksum_sha256().unwrap().ends_with("-2"));
}
