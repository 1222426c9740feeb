//! Server-side copies end to end: UploadPartCopy with ranges, CopyObject with both metadata
//! directives, onto itself, with source conditions, from missing sources and from a multipart
//! source.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::MetadataDirective;

use crate::common::*;
use crate::multipart::{complete, create, multipart_etag, upload, MIB};

#[tokio::test(flavor = "multi_thread")]
async fn upload_part_copy_with_ranges() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("upc").send().await.unwrap();
    let src = random_bytes(12 * MIB + 5, 77);
    put_bytes(&s3, "upc", "src key+1", &src).await;
    let id = create(&s3, "upc", "dst").await;
    let copy = |n: i32, range: Option<String>| {
        let (s3, id) = (s3.clone(), id.clone());
        async move {
            s3.upload_part_copy()
                .bucket("upc")
                .key("dst")
                .upload_id(&id)
                .part_number(n)
                .copy_source("upc/src%20key%2B1")
                .set_copy_source_range(range)
                .send()
                .await
        }
    };
    let split = 7 * MIB + 3;
    let r1 = copy(1, Some(format!("bytes=0-{}", split - 1)))
        .await
        .unwrap();
    let e1 = r1.copy_part_result().unwrap().e_tag().unwrap().to_string();
    assert_eq!(e1, format!("\"{}\"", md5_hex(&src[..split])));
    let e2 = copy(2, Some(format!("bytes={split}-{}", src.len() - 1)))
        .await
        .unwrap()
        .copy_part_result()
        .unwrap()
        .e_tag()
        .unwrap()
        .to_string();
    let e3 = copy(3, None)
        .await
        .unwrap()
        .copy_part_result()
        .unwrap()
        .e_tag()
        .unwrap()
        .to_string();
    let err = copy(4, Some(format!("bytes=0-{}", src.len())))
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("InvalidRange"));
    let err = copy(4, Some("bytes=9-2".into())).await.unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("InvalidArgument"));
    let etag = complete(&s3, "upc", "dst", &id, &[(1, &e1), (2, &e2), (3, &e3)])
        .await
        .unwrap();
    assert_eq!(etag, multipart_etag(&[&src[..split], &src[split..], &src]));
    assert!(get_bytes(&s3, "upc", "dst").await == [src.as_slice(), &src].concat());
}

#[tokio::test(flavor = "multi_thread")]
async fn copy_object_directives_conditions_and_sources() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("cpy").send().await.unwrap();
    s3.create_bucket().bucket("cpy2").send().await.unwrap();
    let data = random_bytes(9 * MIB + 11, 3);
    let put = s3
        .put_object()
        .bucket("cpy")
        .key("src")
        .body(ByteStream::from(data.clone()))
        .content_type("text/x-src")
        .metadata("origin", "src")
        .send()
        .await
        .unwrap();
    let src_etag = put.e_tag().unwrap().to_string();

    // COPY (the default) keeps the metadata, into another bucket.
    let r = s3
        .copy_object()
        .bucket("cpy2")
        .key("copy")
        .copy_source("cpy/src")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.copy_object_result().unwrap().e_tag(),
        Some(src_etag.as_str())
    );
    let head = s3
        .head_object()
        .bucket("cpy2")
        .key("copy")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("text/x-src"));
    assert_eq!(head.metadata().unwrap()["origin"], "src");
    assert!(get_bytes(&s3, "cpy2", "copy").await == data);

    // REPLACE takes the request's metadata.
    s3.copy_object()
        .bucket("cpy")
        .key("replaced")
        .copy_source("cpy/src")
        .metadata_directive(MetadataDirective::Replace)
        .content_type("text/x-new")
        .metadata("origin", "new")
        .send()
        .await
        .unwrap();
    let head = s3
        .head_object()
        .bucket("cpy")
        .key("replaced")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("text/x-new"));
    assert_eq!(head.metadata().unwrap()["origin"], "new");

    // Onto itself only with REPLACE.
    let err = s3
        .copy_object()
        .bucket("cpy")
        .key("src")
        .copy_source("cpy/src")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("InvalidRequest"));
    s3.copy_object()
        .bucket("cpy")
        .key("src")
        .copy_source("cpy/src")
        .metadata_directive(MetadataDirective::Replace)
        .metadata("origin", "self")
        .send()
        .await
        .unwrap();
    let head = s3
        .head_object()
        .bucket("cpy")
        .key("src")
        .send()
        .await
        .unwrap();
    assert_eq!(head.metadata().unwrap()["origin"], "self");
    assert_eq!(head.e_tag(), Some(src_etag.as_str()));
    assert!(get_bytes(&s3, "cpy", "src").await == data);

    // Conditions on the source.
    let cond = |m: Option<&str>, nm: Option<&str>| {
        let s3 = s3.clone();
        let (m, nm) = (m.map(str::to_string), nm.map(str::to_string));
        async move {
            s3.copy_object()
                .bucket("cpy")
                .key("cond")
                .copy_source("cpy/src")
                .set_copy_source_if_match(m)
                .set_copy_source_if_none_match(nm)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| code_of(&e))
        }
    };
    assert_eq!(
        cond(Some("\"nope\""), None).await,
        Err(Some("PreconditionFailed".into()))
    );
    assert_eq!(
        cond(None, Some(&src_etag)).await,
        Err(Some("PreconditionFailed".into()))
    );
    assert_eq!(cond(Some(&src_etag), Some("\"other\"")).await, Ok(()));
    let future = aws_smithy_types::DateTime::from_secs(4_000_000_000);
    let err = s3
        .copy_object()
        .bucket("cpy")
        .key("cond")
        .copy_source("cpy/src")
        .copy_source_if_modified_since(future)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("PreconditionFailed"));
    let past = aws_smithy_types::DateTime::from_secs(1_000_000_000);
    let err = s3
        .copy_object()
        .bucket("cpy")
        .key("cond")
        .copy_source("cpy/src")
        .copy_source_if_unmodified_since(past)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("PreconditionFailed"));

    // Missing sources and versions.
    for (source, code) in [
        ("cpy/missing", "NoSuchKey"),
        ("nobucket/src", "NoSuchBucket"),
        ("cpy/src?versionId=abc", "NoSuchVersion"),
        ("cpy", "InvalidArgument"),
    ] {
        let err = s3
            .copy_object()
            .bucket("cpy")
            .key("x")
            .copy_source(source)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code_of(&err).as_deref(), Some(code), "{source}");
    }
    s3.copy_object()
        .bucket("cpy")
        .key("v")
        .copy_source("cpy/src?versionId=null")
        .send()
        .await
        .unwrap();

    // A multipart source becomes one single-part object.
    let id = create(&s3, "cpy", "mpu").await;
    let p1 = random_bytes(5 * MIB, 8);
    let e1 = upload(&s3, "cpy", "mpu", &id, 1, p1.clone()).await;
    let e2 = upload(&s3, "cpy", "mpu", &id, 2, b"end".to_vec()).await;
    complete(&s3, "cpy", "mpu", &id, &[(1, &e1), (2, &e2)])
        .await
        .unwrap();
    let whole = [p1.as_slice(), b"end"].concat();
    let r = s3
        .copy_object()
        .bucket("cpy")
        .key("flat")
        .copy_source("cpy/mpu")
        .send()
        .await
        .unwrap();
    let want = format!("\"{}\"", md5_hex(&whole));
    assert_eq!(r.copy_object_result().unwrap().e_tag(), Some(want.as_str()));
    assert!(get_bytes(&s3, "cpy", "flat").await == whole);
    let head = s3
        .head_object()
        .bucket("cpy")
        .key("flat")
        .part_number(1)
        .send()
        .await
        .unwrap();
    assert_eq!(head.parts_count(), None);
}
