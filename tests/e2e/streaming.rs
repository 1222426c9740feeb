//! aws-chunked uploads signed chunk by chunk (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`) and
//! unsigned with a trailing checksum, built with `aws-sigv4` (independent of Cairn's code)
//! and sent raw, so that each framing is exercised end to end whatever the SDK's default.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use bytes::Bytes;

use crate::common::*;

const STREAMING: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";

/// A PUT with a signed aws-chunked body; `tamper` flips a byte of the second chunk's data
/// after signing.
fn streaming_put(server: &Server, path: &str, data: &[u8], tamper: bool) -> RawResponse {
    let host = server.s3.to_string();
    let identity = Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "t").into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let now = SystemTime::now();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(now)
        .settings(settings)
        .build()
        .unwrap();
    let chunk_params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(now)
        .settings(())
        .build()
        .unwrap();
    let headers = [
        ("host".to_string(), host),
        ("content-encoding".to_string(), "aws-chunked".to_string()),
        (
            "x-amz-decoded-content-length".to_string(),
            data.len().to_string(),
        ),
    ];
    let url = format!("http://{}{path}", server.s3);
    let signable = SignableRequest::new(
        "PUT",
        url.as_str(),
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Precomputed(STREAMING.to_string()),
    )
    .unwrap();
    let (instructions, seed) = sign(signable, &params.into()).unwrap().into_parts();
    let mut body = Vec::new();
    let mut prev = seed;
    let pieces: Vec<&[u8]> = data
        .chunks(64 * 1024)
        .chain(std::iter::once(&[][..]))
        .collect();
    for (i, piece) in pieces.into_iter().enumerate() {
        let sig = v4::sign_chunk(&Bytes::copy_from_slice(piece), &prev, &chunk_params)
            .unwrap()
            .signature()
            .to_string();
        body.extend_from_slice(format!("{:x};chunk-signature={sig}\r\n", piece.len()).as_bytes());
        let start = body.len();
        body.extend_from_slice(piece);
        if tamper && i == 1 {
            body[start] ^= 1;
        }
        body.extend_from_slice(b"\r\n");
        prev = sig;
    }
    let mut req = format!("PUT {path} HTTP/1.1\r\n");
    for (k, v) in headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain(instructions.headers())
    {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(&body);
    raw_request(server.s3, &bytes).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_chunks_are_verified_and_decoded() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("stream").send().await.unwrap();
    let data = random_bytes(300_000, 5);

    let r = streaming_put(&server, "/stream/good", &data, false);
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(
        r.header("etag"),
        Some(format!("\"{}\"", md5_hex(&data)).as_str())
    );
    let got = s3
        .get_object()
        .bucket("stream")
        .key("good")
        .send()
        .await
        .unwrap();
    // aws-chunked is transfer framing, not the object's encoding.
    assert_eq!(got.content_encoding(), None);
    let body = got.body.collect().await.unwrap().into_bytes();
    assert!(body.as_ref() == data.as_slice());

    let r = streaming_put(&server, "/stream/bad", &data, true);
    assert_eq!(r.status, 403, "{}", r.body_str());
    assert_eq!(r.error_code().as_deref(), Some("SignatureDoesNotMatch"));
    let err = s3
        .head_object()
        .bucket("stream")
        .key("bad")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(404));
}
