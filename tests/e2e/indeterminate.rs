//! A metadata write whose outcome is unknown never destroys data. A fail point
//! (`CAIRN_FAILPOINTS=1`, `CAIRN_FAILPOINT_COMMIT_DELAY_MS`) makes the metadata leader answer
//! object and part writes only after they were committed and applied, and after the
//! server's `--meta-timeout`: the client gets a 503 for a write that did take effect. The
//! shards that write stored must still be there: reads return one whole version (the old or
//! the new, never an error or a short body) and a scrub finds nothing missing.

use std::path::Path;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use serde_json::Value;

use crate::common::*;

const BUCKET: &str = "unknown-outcome";
const MIB: usize = 1 << 20;
/// How long the fail point holds each answer back, against a one-second `--meta-timeout`.
const DELAY_MS: u64 = 2000;

fn args() -> Vec<String> {
    // A one-second timeout; no background scrub to race with the one the test runs.
    [
        "--meta-timeout",
        "1",
        "--scrub-interval",
        "0",
        "--deep-scrub-interval",
        "0",
    ]
    .map(String::from)
    .to_vec()
}

fn start(data: &Path, failpoint: bool) -> Server {
    let envs = if failpoint {
        vec![
            ("CAIRN_FAILPOINTS".to_string(), "1".to_string()),
            (
                "CAIRN_FAILPOINT_COMMIT_DELAY_MS".to_string(),
                DELAY_MS.to_string(),
            ),
        ]
    } else {
        Vec::new()
    };
    Server::spawn_in(data, args(), envs)
}

/// Runs `cairn scrub --json`; returns the report.
fn scrub(server: &Server) -> Value {
    let (_, out, err) = server.cairn("scrub", &["--json"]);
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("scrub printed no JSON report ({e}): {out}\n{err}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_answered_503_after_it_committed_keeps_its_data() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let v1 = random_bytes(MIB, 1);
    let v2 = random_bytes(MIB, 2);
    let part = random_bytes(MIB, 3);

    // Without the fail point: the bucket, v1 (striped: 1 MiB has shards) and an upload.
    let mut server = start(&data, false);
    let s3 = client(&server);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    put_bytes(&s3, BUCKET, "obj", &v1).await;
    let upload = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key("mp")
        .send()
        .await
        .unwrap();
    let upload_id = upload.upload_id().unwrap().to_string();
    assert!(server.terminate(), "clean stop");

    // With it: the overwrite and the part commit, but their answers come too late.
    let server = start(&data, true);
    let s3 = no_retry(&server);
    let err = s3
        .put_object()
        .bucket(BUCKET)
        .key("obj")
        .body(ByteStream::from(v2.clone()))
        .send()
        .await
        .expect_err("the overwrite's answer comes after --meta-timeout");
    assert_eq!(
        code_of(&err).as_deref(),
        Some("ServiceUnavailable"),
        "{err:?}"
    );
    let err = s3
        .upload_part()
        .bucket(BUCKET)
        .key("mp")
        .upload_id(&upload_id)
        .part_number(1)
        .body(ByteStream::from(part.clone()))
        .send()
        .await
        .expect_err("the part's answer comes after --meta-timeout");
    assert_eq!(
        code_of(&err).as_deref(),
        Some("ServiceUnavailable"),
        "{err:?}"
    );
    tokio::time::sleep(Duration::from_millis(DELAY_MS + 500)).await;

    // The object is one whole version, old or new.
    let got = s3.get_object().bucket(BUCKET).key("obj").send().await;
    let got = match got {
        Ok(o) => o.body.collect().await.expect("whole body").into_bytes(),
        Err(e) => panic!("GET after the unknown outcome: {e:?}"),
    };
    let md5 = md5_hex(&got);
    assert!(
        md5 == md5_hex(&v1) || md5 == md5_hex(&v2),
        "GET returned {} bytes that are neither v1 nor v2",
        got.len()
    );
    // The part committed: completing the upload with it gives an object that reads whole.
    s3.complete_multipart_upload()
        .bucket(BUCKET)
        .key("mp")
        .upload_id(&upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .e_tag(format!("\"{}\"", md5_hex(&part)))
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("complete with the part whose answer was lost");
    let got = s3.get_object().bucket(BUCKET).key("mp").send().await;
    let got = match got {
        Ok(o) => o.body.collect().await.expect("whole body").into_bytes(),
        Err(e) => panic!("GET of the completed upload: {e:?}"),
    };
    assert_eq!(md5_hex(&got), md5_hex(&part));

    // Every shard metadata references is there.
    let report = scrub(&server);
    assert_eq!(report["found"]["missing"], 0, "{report}");
    assert_eq!(report["found"]["corrupt"], 0, "{report}");
}
