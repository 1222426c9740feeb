//! Bad input: each gets its S3 error (code, status, XML body) and the server keeps serving.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;

use crate::common::*;

/// Sends a request signed with aws-sigv4 (independent of Cairn's code) at `time`.
fn signed_raw(
    server: &Server,
    method: &str,
    path_and_query: &str,
    extra: &[(&str, &str)],
    body: &[u8],
    time: SystemTime,
) -> RawResponse {
    signed_raw_sending(server, method, path_and_query, extra, body, body, time)
}

/// Like [`signed_raw`], but signs `body` and then sends `sent` instead.
fn signed_raw_sending(
    server: &Server,
    method: &str,
    path_and_query: &str,
    extra: &[(&str, &str)],
    body: &[u8],
    sent: &[u8],
    time: SystemTime,
) -> RawResponse {
    let host = server.s3.to_string();
    signed_raw_to(
        server,
        &host,
        method,
        path_and_query,
        extra,
        body,
        sent,
        time,
    )
}

fn assert_s3_error(r: &RawResponse, status: u16, code: &str) {
    assert_eq!(r.status, status, "body: {}", r.body_str());
    assert_eq!(
        r.error_code().as_deref(),
        Some(code),
        "body: {}",
        r.body_str()
    );
    assert!(r.body_str().contains("<RequestId>"));
    assert!(r.header("x-amz-request-id").is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn authentication_failures() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("auth").send().await.unwrap();
    s3.put_object()
        .bucket("auth")
        .key("k")
        .body(ByteStream::from_static(b"secret data"))
        .send()
        .await
        .unwrap();

    let wrong_secret = client_with(&server, ACCESS_KEY, "not-the-secret", "us-east-1");
    let err = wrong_secret.list_buckets().send().await.unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("SignatureDoesNotMatch"));
    let err = wrong_secret
        .put_object()
        .bucket("auth")
        .key("k")
        .body(ByteStream::from_static(b"overwrite"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("SignatureDoesNotMatch"));
    let unknown = client_with(&server, "NOSUCHKEY", SECRET_KEY, "us-east-1");
    let err = unknown.list_buckets().send().await.unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("InvalidAccessKeyId"));

    // Anonymous requests are refused.
    let r = raw_request(
        server.s3,
        b"GET /auth/k HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_s3_error(&r, 403, "AccessDenied");

    // A request signed 20 minutes ago is refused; one signed now is served.
    let old = SystemTime::now() - Duration::from_secs(20 * 60);
    let r = signed_raw(&server, "GET", "/auth/k", &[], b"", old);
    assert_s3_error(&r, 403, "RequestTimeTooSkewed");
    let r = signed_raw(&server, "GET", "/auth/k", &[], b"", SystemTime::now());
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"secret data");

    // A body that does not match its signed SHA-256 is refused and not stored.
    let r = signed_raw_sending(
        &server,
        "PUT",
        "/auth/k",
        &[],
        b"signed body",
        b"other body!",
        SystemTime::now(),
    );
    assert_s3_error(&r, 400, "XAmzContentSHA256Mismatch");
    let r = signed_raw(&server, "GET", "/auth/k", &[], b"", SystemTime::now());
    assert_eq!(r.body, b"secret data");

    // Presigned URLs: valid works without credentials; expired is refused.
    let url = s3
        .get_object()
        .bucket("auth")
        .key("k")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(60)).unwrap())
        .await
        .unwrap();
    let path = url
        .uri()
        .strip_prefix(&server.endpoint())
        .unwrap()
        .to_string();
    let r = raw_request(
        server.s3,
        format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            server.s3
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.body_str());
    let tampered = path.replace("/auth/k", "/auth/other");
    let r = raw_request(
        server.s3,
        format!(
            "GET {tampered} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            server.s3
        )
        .as_bytes(),
    )
    .unwrap();
    assert_s3_error(&r, 403, "SignatureDoesNotMatch");
    let url = s3
        .get_object()
        .bucket("auth")
        .key("k")
        .presigned(
            PresigningConfig::builder()
                .start_time(SystemTime::now() - Duration::from_secs(120))
                .expires_in(Duration::from_secs(60))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let path = url
        .uri()
        .strip_prefix(&server.endpoint())
        .unwrap()
        .to_string();
    let r = raw_request(
        server.s3,
        format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            server.s3
        )
        .as_bytes(),
    )
    .unwrap();
    assert_s3_error(&r, 403, "AccessDenied");
    let too_long = path.replace("X-Amz-Expires=60", "X-Amz-Expires=604801");
    let r = raw_request(
        server.s3,
        format!(
            "GET {too_long} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            server.s3
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.body_str());
    // Still serving.
    s3.head_object()
        .bucket("auth")
        .key("k")
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_names_xml_and_bodies() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("bad").send().await.unwrap();
    let now = SystemTime::now;

    for bucket in ["/ab", "/UPPER", "/a_b", "/-ab", "/192.168.0.1"] {
        let r = signed_raw(&server, "PUT", bucket, &[], b"", now());
        assert_s3_error(&r, 400, "InvalidBucketName");
    }
    for key in ["/bad/a/../../etc/passwd", "/bad/..", "/bad/x/./y"] {
        let r = signed_raw(&server, "PUT", key, &[], b"data", now());
        assert_s3_error(&r, 400, "InvalidArgument");
    }
    // A control character in the key is a URI S3 cannot parse.
    for key in ["/bad/ctl%01char", "/bad/nl%0Akey"] {
        let r = signed_raw(&server, "PUT", key, &[], b"data", now());
        assert_s3_error(&r, 400, "InvalidURI");
    }
    let long = format!("/bad/{}", "k".repeat(1025));
    let r = signed_raw(&server, "PUT", &long, &[], b"data", now());
    assert_s3_error(&r, 400, "KeyTooLongError");

    let r = signed_raw(
        &server,
        "POST",
        "/bad?delete",
        &[],
        b"<Delete><Object><Key>a",
        now(),
    );
    assert_s3_error(&r, 400, "MalformedXML");
    let r = signed_raw(
        &server,
        "POST",
        "/bad?delete",
        &[],
        b"not xml at all",
        now(),
    );
    assert_s3_error(&r, 400, "MalformedXML");
    let r = signed_raw(
        &server,
        "POST",
        "/bad?delete",
        &[("content-md5", "AAAAAAAAAAAAAAAAAAAAAA==")],
        b"<Delete><Object><Key>a</Key></Object></Delete>",
        now(),
    );
    assert_s3_error(&r, 400, "BadDigest");

    let r = signed_raw(
        &server,
        "PUT",
        "/bad/cs",
        &[("x-amz-checksum-crc32", "AAAAAA==")],
        b"payload",
        now(),
    );
    assert_s3_error(&r, 400, "BadDigest");
    let r = signed_raw(&server, "GET", "/bad/cs", &[], b"", now());
    assert_s3_error(&r, 404, "NoSuchKey");

    let r = signed_raw(
        &server,
        "GET",
        "/bad?list-type=2&max-keys=-1",
        &[],
        b"",
        now(),
    );
    assert_s3_error(&r, 400, "InvalidArgument");
    let r = signed_raw(
        &server,
        "GET",
        "/bad?list-type=2&encoding-type=base64",
        &[],
        b"",
        now(),
    );
    assert_s3_error(&r, 400, "InvalidArgument");
    let r = signed_raw(&server, "GET", "/nosuchbucket/k", &[], b"", now());
    assert_s3_error(&r, 404, "NoSuchBucket");
    let r = signed_raw(&server, "PATCH", "/bad/k", &[], b"", now());
    assert_s3_error(&r, 405, "MethodNotAllowed");

    s3.put_object()
        .bucket("bad")
        .key("small")
        .body(ByteStream::from_static(b"0123456789"))
        .send()
        .await
        .unwrap();
    let r = signed_raw(
        &server,
        "GET",
        "/bad/small",
        &[("range", "bytes=10-20")],
        b"",
        now(),
    );
    assert_s3_error(&r, 416, "InvalidRange");
    let r = signed_raw(
        &server,
        "GET",
        "/bad/small",
        &[("range", "bytes=8-20")],
        b"",
        now(),
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, b"89");

    // Garbage on the wire gets an HTTP error, not a crash.
    let r = raw_request(server.s3, b"\x00\x01garbage\r\n\r\n");
    assert!(r.map(|r| r.status >= 400).unwrap_or(true));
    // A body shorter than its Content-Length is never stored.
    {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(server.s3).unwrap();
        s.write_all(b"PUT /bad/short HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly a few")
            .unwrap();
    }
    let r = signed_raw(&server, "GET", "/bad/short", &[], b"", now());
    assert_s3_error(&r, 404, "NoSuchKey");
    s3.head_object()
        .bucket("bad")
        .key("small")
        .send()
        .await
        .unwrap();
}

/// Range positions at (and past) the limits of a u64 are clamped to the object, never wrapped:
/// `bytes=0-18446744073709551615` is the whole object as a 206, as S3 answers it.
#[tokio::test(flavor = "multi_thread")]
async fn ranges_at_the_limits_of_u64() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("huge").send().await.unwrap();
    put_bytes(&s3, "huge", "six", b"abcdef").await;
    let now = SystemTime::now;
    let get =
        |range: &str| signed_raw(&server, "GET", "/huge/six", &[("range", range)], b"", now());
    for (range, content_range, body) in [
        (
            "bytes=0-18446744073709551615",
            "bytes 0-5/6",
            &b"abcdef"[..],
        ),
        ("bytes=4-18446744073709551615", "bytes 4-5/6", b"ef"),
        ("bytes=0-99999999999999999999999", "bytes 0-5/6", b"abcdef"),
        ("bytes=-18446744073709551615", "bytes 0-5/6", b"abcdef"),
    ] {
        let r = get(range);
        assert_eq!(r.status, 206, "{range}: {}", r.body_str());
        assert_eq!(r.header("content-range"), Some(content_range), "{range}");
        assert_eq!(r.body, body, "{range}");
    }
    for range in [
        "bytes=18446744073709551615-18446744073709551615",
        "bytes=18446744073709551615-",
        "bytes=99999999999999999999999-",
    ] {
        assert_s3_error(&get(range), 416, "InvalidRange");
    }
}
