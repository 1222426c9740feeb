//! Multipart upload end to end with aws-sdk-s3 (default checksum settings: CRC32 trailers on
//! every part): round trips, ranges and `partNumber`, errors, listings, GC of dead parts and a
//! 1 GiB upload. Copies are in `copy`, multipart checksums in `multipart_checksums`, GC and
//! crash behaviour in `multipart_durability`.

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use md5::{Digest, Md5};

use crate::common::*;

pub(crate) const MIB: usize = 1 << 20;

pub(crate) async fn create(s3: &Client, bucket: &str, key: &str) -> String {
    s3.create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_string()
}

pub(crate) async fn upload(
    s3: &Client,
    bucket: &str,
    key: &str,
    id: &str,
    n: i32,
    data: Vec<u8>,
) -> String {
    s3.upload_part()
        .bucket(bucket)
        .key(key)
        .upload_id(id)
        .part_number(n)
        .body(ByteStream::from(data))
        .send()
        .await
        .unwrap_or_else(|e| panic!("part {n}: {e:?}"))
        .e_tag()
        .unwrap()
        .to_string()
}

fn completed(parts: &[(i32, &str)]) -> CompletedMultipartUpload {
    CompletedMultipartUpload::builder()
        .set_parts(Some(
            parts
                .iter()
                .map(|(n, e)| CompletedPart::builder().part_number(*n).e_tag(*e).build())
                .collect(),
        ))
        .build()
}

pub(crate) async fn complete(
    s3: &Client,
    bucket: &str,
    key: &str,
    id: &str,
    parts: &[(i32, &str)],
) -> Result<String, Option<String>> {
    s3.complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(id)
        .multipart_upload(completed(parts))
        .send()
        .await
        .map(|r| r.e_tag().unwrap().to_string())
        .map_err(|e| code_of(&e))
}

/// The multipart ETag of parts with these bodies.
pub(crate) fn multipart_etag(parts: &[&[u8]]) -> String {
    let mut md5 = Md5::new();
    for p in parts {
        md5.update(Md5::digest(p));
    }
    format!("\"{}-{}\"", hex::encode(md5.finalize()), parts.len())
}

async fn get_range(s3: &Client, bucket: &str, key: &str, range: &str) -> Vec<u8> {
    let got = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .range(range)
        .send()
        .await
        .unwrap();
    got.body.collect().await.unwrap().into_bytes().to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn parts_uploaded_out_of_order_round_trip() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("mpu").send().await.unwrap();
    let id = s3
        .create_multipart_upload()
        .bucket("mpu")
        .key("dir/big.bin")
        .content_type("application/x-test")
        .metadata("color", "blue")
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_string();
    let sizes = [5 * MIB, 5 * MIB + 7, 6 * MIB + 1, 40_000];
    let bodies: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, s)| random_bytes(*s, i as u64 + 100))
        .collect();
    // All parts at once, the later ones first: they arrive in any order.
    let mut tasks = Vec::new();
    for (i, body) in bodies.iter().enumerate().rev() {
        let (s3, id, body) = (s3.clone(), id.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20 * i as u64)).await;
            (
                i as i32 + 1,
                upload(&s3, "mpu", "dir/big.bin", &id, i as i32 + 1, body).await,
            )
        }));
    }
    let mut etags = Vec::new();
    for t in tasks {
        etags.push(t.await.unwrap());
    }
    etags.sort();
    for (n, e) in &etags {
        assert_eq!(e, &format!("\"{}\"", md5_hex(&bodies[*n as usize - 1])));
    }
    // A re-uploaded part replaces the first upload of that number.
    let replaced = random_bytes(5 * MIB, 999);
    etags[0].1 = upload(&s3, "mpu", "dir/big.bin", &id, 1, replaced.clone()).await;
    let bodies = [
        replaced,
        bodies[1].clone(),
        bodies[2].clone(),
        bodies[3].clone(),
    ];
    let refs: Vec<(i32, &str)> = etags.iter().map(|(n, e)| (*n, e.as_str())).collect();
    let etag = complete(&s3, "mpu", "dir/big.bin", &id, &refs)
        .await
        .unwrap();
    let parts: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
    assert_eq!(etag, multipart_etag(&parts));
    let all = bodies.concat();

    let got = s3
        .get_object()
        .bucket("mpu")
        .key("dir/big.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(got.e_tag(), Some(etag.as_str()));
    assert_eq!(got.content_type(), Some("application/x-test"));
    assert_eq!(got.metadata().unwrap()["color"], "blue");
    assert_eq!(got.content_length(), Some(all.len() as i64));
    let body = got.body.collect().await.unwrap().into_bytes();
    assert!(body.as_ref() == all.as_slice(), "multipart body differs");

    // Ranges across part boundaries (and stripe boundaries inside parts).
    let b1 = 5 * MIB;
    let b2 = b1 + 5 * MIB + 7;
    let b3 = b2 + 6 * MIB + 1;
    for (a, b) in [
        (b1 - 10, b1 + 10),
        (b1 - 1, b1),
        (b2 - 3, b3 + 5),
        (4 * MIB - 1, b2 + 1),
        (b3, all.len() - 1),
        (0, all.len() - 1),
    ] {
        let got = get_range(&s3, "mpu", "dir/big.bin", &format!("bytes={a}-{b}")).await;
        assert!(got == all[a..=b], "range {a}-{b} differs");
    }
    let tail = get_range(&s3, "mpu", "dir/big.bin", "bytes=-40005").await;
    assert!(tail == all[all.len() - 40005..]);

    // partNumber reads one part.
    for n in 1..=4 {
        let got = s3
            .get_object()
            .bucket("mpu")
            .key("dir/big.bin")
            .part_number(n)
            .send()
            .await
            .unwrap();
        assert_eq!(got.parts_count(), Some(4));
        assert_eq!(got.e_tag(), Some(etag.as_str()));
        let body = got.body.collect().await.unwrap().into_bytes();
        assert!(
            body.as_ref() == bodies[n as usize - 1].as_slice(),
            "part {n}"
        );
    }
    let head = s3
        .head_object()
        .bucket("mpu")
        .key("dir/big.bin")
        .part_number(3)
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(6 * MIB as i64 + 1));
    assert_eq!(head.parts_count(), Some(4));
    let err = s3
        .get_object()
        .bucket("mpu")
        .key("dir/big.bin")
        .part_number(5)
        .send()
        .await
        .unwrap_err();
    // As S3 (and ceph s3-tests) answer a part number past the last part.
    assert_eq!(code_of(&err).as_deref(), Some("InvalidPart"));
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(400));

    // Listing shows the multipart ETag; the upload is gone.
    let list = s3.list_objects_v2().bucket("mpu").send().await.unwrap();
    assert_eq!(list.contents()[0].e_tag(), Some(etag.as_str()));
    assert_eq!(list.contents()[0].size(), Some(all.len() as i64));
    let uploads = s3
        .list_multipart_uploads()
        .bucket("mpu")
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty());

    // A plain object answers partNumber=1 with itself and nothing more.
    put_bytes(&s3, "mpu", "plain", b"just one part").await;
    let got = s3
        .get_object()
        .bucket("mpu")
        .key("plain")
        .part_number(1)
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"just one part"
    );
    let err = s3
        .get_object()
        .bucket("mpu")
        .key("plain")
        .part_number(2)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("InvalidPart"));
}

#[tokio::test(flavor = "multi_thread")]
async fn completion_and_upload_errors() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("err").send().await.unwrap();
    let id = create(&s3, "err", "k").await;
    let p1 = random_bytes(5 * MIB, 1);
    let small = random_bytes(MIB, 2);
    let e1 = upload(&s3, "err", "k", &id, 1, p1.clone()).await;
    let e2 = upload(&s3, "err", "k", &id, 2, small.clone()).await;
    let e3 = upload(&s3, "err", "k", &id, 3, b"tail".to_vec()).await;

    let c = |parts: Vec<(i32, String)>| {
        let s3 = s3.clone();
        let id = id.clone();
        async move {
            let refs: Vec<(i32, &str)> = parts.iter().map(|(n, e)| (*n, e.as_str())).collect();
            complete(&s3, "err", "k", &id, &refs).await
        }
    };
    assert_eq!(
        c(vec![(2, e2.clone()), (1, e1.clone())])
            .await
            .unwrap_err()
            .as_deref(),
        Some("InvalidPartOrder")
    );
    assert_eq!(
        c(vec![(1, e1.clone()), (4, e3.clone())])
            .await
            .unwrap_err()
            .as_deref(),
        Some("InvalidPart")
    );
    assert_eq!(
        c(vec![(1, e1.clone()), (3, e2.clone())])
            .await
            .unwrap_err()
            .as_deref(),
        Some("InvalidPart")
    );
    assert_eq!(
        c(vec![(1, e1.clone()), (2, e2.clone()), (3, e3.clone())])
            .await
            .unwrap_err()
            .as_deref(),
        Some("EntityTooSmall")
    );
    assert_eq!(
        c(vec![]).await.unwrap_err().as_deref(),
        Some("MalformedXML")
    );
    // A small part is fine as the last one; part 2 is left out (and collected).
    let etag = c(vec![(1, e1.clone()), (3, e3.clone())]).await.unwrap();
    assert_eq!(etag, multipart_etag(&[&p1, b"tail"]));
    assert!(get_bytes(&s3, "err", "k").await == [p1.as_slice(), b"tail"].concat());

    // The upload is finished: every later operation on it is NoSuchUpload.
    assert_eq!(
        c(vec![(1, e1.clone())]).await.unwrap_err().as_deref(),
        Some("NoSuchUpload")
    );
    let no_such_upload = |id: String| {
        let s3 = s3.clone();
        async move {
            let r = s3
                .upload_part()
                .bucket("err")
                .key("k")
                .upload_id(&id)
                .part_number(1)
                .body(ByteStream::from_static(b"x"))
                .send()
                .await;
            assert_eq!(code_of(&r.unwrap_err()).as_deref(), Some("NoSuchUpload"));
            let r = s3
                .list_parts()
                .bucket("err")
                .key("k")
                .upload_id(&id)
                .send()
                .await;
            assert_eq!(code_of(&r.unwrap_err()).as_deref(), Some("NoSuchUpload"));
            let r = s3
                .abort_multipart_upload()
                .bucket("err")
                .key("k")
                .upload_id(&id)
                .send()
                .await;
            assert_eq!(code_of(&r.unwrap_err()).as_deref(), Some("NoSuchUpload"));
        }
    };
    no_such_upload(id.clone()).await;
    no_such_upload("0123456789abcdef".into()).await;
    no_such_upload("not-an-id".into()).await;
    // The id of an upload of another key does not name an upload of this one.
    let other = create(&s3, "err", "other").await;
    no_such_upload(other.clone()).await;

    for n in [0, 10_001] {
        let r = s3
            .upload_part()
            .bucket("err")
            .key("other")
            .upload_id(&other)
            .part_number(n)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await;
        assert_eq!(
            code_of(&r.unwrap_err()).as_deref(),
            Some("InvalidArgument"),
            "{n}"
        );
    }
    let r = s3
        .create_multipart_upload()
        .bucket("missing")
        .key("k")
        .send()
        .await;
    assert_eq!(code_of(&r.unwrap_err()).as_deref(), Some("NoSuchBucket"));
    s3.abort_multipart_upload()
        .bucket("err")
        .key("other")
        .upload_id(&other)
        .send()
        .await
        .unwrap();
    no_such_upload(other).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_parts_and_uploads_paginate() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("lst").send().await.unwrap();
    let id = create(&s3, "lst", "parts").await;
    for n in [1, 2, 3, 7, 9] {
        upload(&s3, "lst", "parts", &id, n, vec![n as u8; n as usize]).await;
    }
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = s3
            .list_parts()
            .bucket("lst")
            .key("parts")
            .upload_id(&id)
            .max_parts(2)
            .set_part_number_marker(marker.clone())
            .send()
            .await
            .unwrap();
        pages += 1;
        for p in page.parts() {
            assert_eq!(p.size(), p.part_number().map(i64::from));
            seen.push(p.part_number().unwrap());
        }
        if page.is_truncated() != Some(true) {
            break;
        }
        marker = page.next_part_number_marker().map(str::to_string);
    }
    assert_eq!(seen, [1, 2, 3, 7, 9]);
    assert_eq!(pages, 3);
    let parts = s3
        .list_parts()
        .bucket("lst")
        .key("parts")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(parts.parts().len(), 5);
    // Default SDK settings send CRC32 per part; the part listing carries it.
    assert!(parts.parts().iter().all(|p| p.checksum_crc32().is_some()));

    // Uploads: several per key, under prefixes.
    let mut want = vec![("parts".to_string(), id.clone())];
    for k in ["a/1", "a/2", "b", "b", "c/x/y", "d"] {
        want.push((k.to_string(), create(&s3, "lst", k).await));
    }
    want.sort();
    let mut got = Vec::new();
    let (mut km, mut um): (Option<String>, Option<String>) = (None, None);
    loop {
        let page = s3
            .list_multipart_uploads()
            .bucket("lst")
            .max_uploads(2)
            .set_key_marker(km.clone())
            .set_upload_id_marker(um.clone())
            .send()
            .await
            .unwrap();
        assert!(page.uploads().len() <= 2);
        for u in page.uploads() {
            got.push((
                u.key().unwrap().to_string(),
                u.upload_id().unwrap().to_string(),
            ));
        }
        if page.is_truncated() != Some(true) {
            break;
        }
        km = page.next_key_marker().map(str::to_string);
        um = page.next_upload_id_marker().map(str::to_string);
    }
    assert_eq!(got, want);
    let page = s3
        .list_multipart_uploads()
        .bucket("lst")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let prefixes: Vec<_> = page
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(prefixes, ["a/", "c/"]);
    let keys: Vec<_> = page.uploads().iter().filter_map(|u| u.key()).collect();
    assert_eq!(keys, ["b", "b", "d", "parts"]);
    let page = s3
        .list_multipart_uploads()
        .bucket("lst")
        .prefix("a/")
        .send()
        .await
        .unwrap();
    let keys: Vec<_> = page.uploads().iter().filter_map(|u| u.key()).collect();
    assert_eq!(keys, ["a/1", "a/2"]);
}

/// 1 GiB in 16 parts of 64 MiB, four in flight; the server's memory stays bounded.
#[tokio::test(flavor = "multi_thread")]
async fn one_gib_in_parallel_64_mib_parts() {
    const PART: usize = 64 * MIB;
    const PARTS: usize = 16;
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("gib").send().await.unwrap();
    let id = create(&s3, "gib", "big").await;
    let rss_before = server.peak_rss_kib();
    let started = Instant::now();
    let part_body = |n: usize| random_bytes(PART, 1000 + n as u64);
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(4));
    let mut tasks = Vec::new();
    for n in 1..=PARTS {
        let (s3, id, sem) = (s3.clone(), id.clone(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.unwrap();
            let body = part_body(n);
            let md5 = Md5::digest(&body);
            let etag = upload(&s3, "gib", "big", &id, n as i32, body).await;
            (n, etag, md5)
        }));
    }
    let mut parts = Vec::new();
    for t in tasks {
        parts.push(t.await.unwrap());
    }
    let uploaded = started.elapsed();
    let refs: Vec<(i32, &str)> = parts
        .iter()
        .map(|(n, e, _)| (*n as i32, e.as_str()))
        .collect();
    let etag = complete(&s3, "gib", "big", &id, &refs).await.unwrap();
    let mut md5 = Md5::new();
    for (_, _, m) in &parts {
        md5.update(m);
    }
    assert_eq!(etag, format!("\"{}-{PARTS}\"", hex::encode(md5.finalize())));
    let rss_put = server.peak_rss_kib();

    let started_get = Instant::now();
    let mut got = s3
        .get_object()
        .bucket("gib")
        .key("big")
        .send()
        .await
        .unwrap();
    let mut n = 0usize;
    let mut whole = Md5::new();
    while let Some(chunk) = got.body.try_next().await.unwrap() {
        n += chunk.len();
        whole.update(&chunk);
    }
    let read = started_get.elapsed();
    assert_eq!(n, PART * PARTS);
    let mut want = Md5::new();
    for p in 1..=PARTS {
        want.update(part_body(p));
    }
    assert_eq!(whole.finalize(), want.finalize());
    let rss_get = server.peak_rss_kib();
    eprintln!(
        "1 GiB multipart: 16 × 64 MiB parts (4 in flight) uploaded in {:.1} s, read back in {:.1} s; \
         server peak RSS {rss_before} KiB before, {rss_put} KiB after the upload, {rss_get} KiB after the read",
        uploaded.as_secs_f64(),
        read.as_secs_f64()
    );
    // Bounded by the parts in flight (each holds a few stripes and their shards), not by the
    // object: four 64 MiB parts at once measured about 220 MiB over the baseline.
    assert!(
        rss_put - rss_before < 384 * 1024,
        "upload grew peak RSS by {} KiB",
        rss_put - rss_before
    );
}
