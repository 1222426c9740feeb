//! Memory stays bounded while streaming: a 1 GiB PUT and GET grow the server's peak RSS by
//! a small constant, not by the object size.

use std::io::Write;

use aws_sdk_s3::primitives::ByteStream;
use md5::{Digest, Md5};

use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn one_gib_put_and_get_in_bounded_memory() {
    const SIZE: usize = 1 << 30;
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("mem").send().await.unwrap();
    // Warm up allocator and caches with a small striped object first.
    s3.put_object()
        .bucket("mem")
        .key("warm")
        .body(ByteStream::from(random_bytes(9 << 20, 1)))
        .send()
        .await
        .unwrap();
    let before = server.peak_rss_kib();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.bin");
    let mut md5 = Md5::new();
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let block = random_bytes(1 << 20, 42);
        for i in 0..(SIZE >> 20) {
            // Vary each MiB so that nothing could deduplicate it.
            let mut b = block.clone();
            b[..8].copy_from_slice(&(i as u64).to_le_bytes());
            md5.update(&b);
            f.write_all(&b).unwrap();
        }
        f.flush().unwrap();
    }
    let expected = hex::encode(md5.finalize());
    let put = s3
        .put_object()
        .bucket("mem")
        .key("big")
        .body(ByteStream::from_path(&path).await.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(put.e_tag(), Some(format!("\"{expected}\"").as_str()));
    // The kernel updates the high-water mark lazily: a reading may come out a little
    // below an earlier one, hence the saturating differences below.
    let after_put = server.peak_rss_kib();

    let mut got = s3
        .get_object()
        .bucket("mem")
        .key("big")
        .send()
        .await
        .unwrap();
    let mut md5 = Md5::new();
    let mut n = 0usize;
    while let Some(chunk) = got.body.try_next().await.unwrap() {
        n += chunk.len();
        md5.update(&chunk);
    }
    assert_eq!(n, SIZE);
    assert_eq!(hex::encode(md5.finalize()), expected);
    let after_get = server.peak_rss_kib();
    eprintln!(
        "server peak RSS: before {before} KiB, after 1 GiB PUT {after_put} KiB, after GET {after_get} KiB"
    );
    // Bounded: far below the object size (1 GiB); a few stripes in flight plus buffers.
    assert!(
        after_put.saturating_sub(before) < 128 * 1024,
        "PUT grew peak RSS by {} KiB",
        after_put.saturating_sub(before)
    );
    assert!(
        after_get.saturating_sub(before) < 128 * 1024,
        "GET grew peak RSS by {} KiB",
        after_get.saturating_sub(before)
    );
}
