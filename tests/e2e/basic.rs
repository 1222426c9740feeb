//! The main walk through every bucket and object operation with aws-sdk-s3.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};

use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn bucket_lifecycle() {
    let server = Server::start();
    let s3 = client(&server);
    assert!(s3.list_buckets().send().await.unwrap().buckets().is_empty());
    s3.create_bucket().bucket("alpha").send().await.unwrap();
    s3.create_bucket().bucket("beta.2").send().await.unwrap();
    // us-east-1: creating one's own bucket again with the same ACL is a 200 that changes
    // nothing; asking for another ACL is refused.
    s3.create_bucket().bucket("alpha").send().await.unwrap();
    let err = s3
        .create_bucket()
        .bucket("alpha")
        .acl(aws_sdk_s3::types::BucketCannedAcl::PublicRead)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("BucketAlreadyExists"));
    let names: Vec<_> = s3
        .list_buckets()
        .send()
        .await
        .unwrap()
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_string))
        .collect();
    assert_eq!(names, ["alpha", "beta.2"]);
    s3.head_bucket().bucket("alpha").send().await.unwrap();
    let err = s3.head_bucket().bucket("nope").send().await.unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(404));
    let loc = s3
        .get_bucket_location()
        .bucket("alpha")
        .send()
        .await
        .unwrap();
    assert!(loc
        .location_constraint()
        .is_none_or(|c| c.as_str().is_empty()));

    s3.put_object()
        .bucket("alpha")
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    let err = s3.delete_bucket().bucket("alpha").send().await.unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("BucketNotEmpty"));
    s3.delete_object()
        .bucket("alpha")
        .key("k")
        .send()
        .await
        .unwrap();
    s3.delete_bucket().bucket("alpha").send().await.unwrap();
    let err = s3.delete_bucket().bucket("alpha").send().await.unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("NoSuchBucket"));
    let err = s3
        .create_bucket()
        .bucket("Bad_Name")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("InvalidBucketName"));
}

#[tokio::test(flavor = "multi_thread")]
async fn objects_of_every_size_round_trip() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("sizes").send().await.unwrap();
    for (i, size) in [0usize, 1, 64 << 10, 5 << 20, (5 << 20) + 3, 200 << 20]
        .into_iter()
        .enumerate()
    {
        let data = random_bytes(size, i as u64 + 1);
        let key = format!("obj-{size}");
        let put = s3
            .put_object()
            .bucket("sizes")
            .key(&key)
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .unwrap();
        assert_eq!(
            put.e_tag(),
            Some(format!("\"{}\"", md5_hex(&data)).as_str())
        );
        let got = s3
            .get_object()
            .bucket("sizes")
            .key(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(got.content_length(), Some(size as i64));
        assert_eq!(got.e_tag(), put.e_tag());
        let body = got.body.collect().await.unwrap().into_bytes();
        assert!(body.as_ref() == data.as_slice(), "size {size} differs");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_headers_and_head() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("meta").send().await.unwrap();
    s3.put_object()
        .bucket("meta")
        .key("dir/report.csv")
        .body(ByteStream::from_static(b"a,b\n1,2\n"))
        .content_type("text/csv")
        .content_encoding("identity")
        .content_disposition("attachment; filename=\"r.csv\"")
        .content_language("en")
        .cache_control("max-age=60")
        .metadata("owner", "ops")
        .metadata("Project-Name", "cairn")
        .send()
        .await
        .unwrap();
    let head = s3
        .head_object()
        .bucket("meta")
        .key("dir/report.csv")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(8));
    assert_eq!(head.content_type(), Some("text/csv"));
    assert_eq!(head.content_encoding(), Some("identity"));
    assert_eq!(
        head.content_disposition(),
        Some("attachment; filename=\"r.csv\"")
    );
    assert_eq!(head.content_language(), Some("en"));
    assert_eq!(head.cache_control(), Some("max-age=60"));
    let meta = head.metadata().unwrap();
    assert_eq!(meta.get("owner").map(String::as_str), Some("ops"));
    assert_eq!(meta.get("project-name").map(String::as_str), Some("cairn"));
    assert!(head.last_modified().is_some());
    let err = s3
        .head_object()
        .bucket("meta")
        .key("missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(404));
    let err = s3
        .get_object()
        .bucket("meta")
        .key("missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("NoSuchKey"));
}

#[tokio::test(flavor = "multi_thread")]
async fn ranges_and_conditionals() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("rng").send().await.unwrap();
    // Large enough to span several 4 MiB stripes.
    let data = random_bytes(9 << 20, 7);
    s3.put_object()
        .bucket("rng")
        .key("big")
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .unwrap();
    let n = data.len();
    let stripe = 4usize << 20;
    let cases: Vec<(String, usize, usize)> = vec![
        ("bytes=0-0".into(), 0, 1),
        ("bytes=100-199".into(), 100, 200),
        (
            format!("bytes={}-{}", stripe - 5, stripe + 5),
            stripe - 5,
            stripe + 6,
        ),
        ("bytes=8388000-".into(), 8388000, n),
        ("bytes=-1000".into(), n - 1000, n),
        (format!("bytes=5-{}", n + 100), 5, n),
    ];
    for (range, lo, hi) in cases {
        let got = s3
            .get_object()
            .bucket("rng")
            .key("big")
            .range(&range)
            .send()
            .await
            .unwrap();
        assert_eq!(
            got.content_range(),
            Some(format!("bytes {}-{}/{}", lo, hi - 1, n).as_str())
        );
        let body = got.body.collect().await.unwrap().into_bytes();
        assert!(body.as_ref() == &data[lo..hi], "{range}");
    }
    let err = s3
        .get_object()
        .bucket("rng")
        .key("big")
        .range(format!("bytes={n}-"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("InvalidRange"));
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(416));

    let etag = format!("\"{}\"", md5_hex(&data));
    let err = s3
        .get_object()
        .bucket("rng")
        .key("big")
        .if_none_match(&etag)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(304));
    let err = s3
        .get_object()
        .bucket("rng")
        .key("big")
        .if_match("\"0123\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("PreconditionFailed"));
    s3.get_object()
        .bucket("rng")
        .key("big")
        .if_match(&etag)
        .range("bytes=0-3")
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn overwrite_delete_and_delete_objects() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("del").send().await.unwrap();
    for i in 0..5 {
        s3.put_object()
            .bucket("del")
            .key(format!("k{i}"))
            .body(ByteStream::from(random_bytes(100_000, i)))
            .send()
            .await
            .unwrap();
    }
    let v2 = random_bytes(70_000, 99);
    s3.put_object()
        .bucket("del")
        .key("k0")
        .body(ByteStream::from(v2.clone()))
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket("del")
        .key("k0")
        .send()
        .await
        .unwrap();
    assert!(got.body.collect().await.unwrap().into_bytes().as_ref() == v2.as_slice());
    // Deleting a missing key succeeds, as in S3.
    s3.delete_object()
        .bucket("del")
        .key("never")
        .send()
        .await
        .unwrap();

    let ids = ["k1", "k2", "absent"]
        .iter()
        .map(|k| ObjectIdentifier::builder().key(*k).build().unwrap())
        .collect::<Vec<_>>();
    let out = s3
        .delete_objects()
        .bucket("del")
        .delete(Delete::builder().set_objects(Some(ids)).build().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(out.deleted().len(), 3);
    assert!(out.errors().is_empty());
    let quiet = s3
        .delete_objects()
        .bucket("del")
        .delete(
            Delete::builder()
                .objects(ObjectIdentifier::builder().key("k3").build().unwrap())
                .quiet(true)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert!(quiet.deleted().is_empty());
    let left: Vec<_> = s3
        .list_objects_v2()
        .bucket("del")
        .send()
        .await
        .unwrap()
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_string))
        .collect();
    assert_eq!(left, ["k0", "k4"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn data_survives_restart_and_other_regions_sign_in() {
    let mut server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("keep").send().await.unwrap();
    let big = random_bytes(6 << 20, 3);
    for (k, v) in [("small", b"tiny".to_vec()), ("big", big.clone())] {
        s3.put_object()
            .bucket("keep")
            .key(k)
            .body(ByteStream::from(v))
            .send()
            .await
            .unwrap();
    }
    assert!(server.terminate(), "graceful shutdown must exit 0");
    server.restart();
    // A client configured for another region still gets in.
    let s3 = client_with(&server, ACCESS_KEY, SECRET_KEY, "eu-west-3");
    let got = s3
        .get_object()
        .bucket("keep")
        .key("big")
        .send()
        .await
        .unwrap();
    assert!(got.body.collect().await.unwrap().into_bytes().as_ref() == big.as_slice());
    let got = s3
        .get_object()
        .bucket("keep")
        .key("small")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"tiny"
    );
}

/// A second server on a data directory in use stops at once and says why; the first one
/// keeps serving.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_server_on_the_same_data_directory_is_refused() {
    let server = Server::start();
    let out = std::process::Command::new(cairn_tests::cairn_bin())
        .arg("server")
        .arg("--data")
        .arg(&server.data)
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(["--cluster-listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("is another cairn server using this data directory?"),
        "{err}"
    );
    let s3 = client(&server);
    s3.list_buckets().send().await.unwrap();
}
