//! Requests signed by the `aws-sigv4` crate (an independent implementation) must verify;
//! any change must not.

use std::time::Duration as StdDuration;

use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
    SignatureLocation, SigningSettings, UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;

use super::*;
use crate::canonical::uri_encode_into;
use crate::{authenticate, AuthError, Authenticated, PayloadMode, RequestParts};

const HOST: &str = "cairn.example:9000";
const NOW: &str = "20261122T101500Z";

struct Req {
    method: &'static str,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
}

impl Req {
    fn auth_with(&self, secrets: &HashMap<String, String>) -> Result<Authenticated, AuthError> {
        let parts = RequestParts {
            method: self.method,
            raw_path: &self.path,
            raw_query: self.query.as_deref(),
            headers: &self.headers,
        };
        authenticate(&parts, secrets, ts(NOW))
    }

    fn auth(&self) -> Result<Authenticated, AuthError> {
        self.auth_with(&secrets())
    }
}

/// Signs with aws-sigv4 as an S3 client would; `presign` switches to query parameters.
fn aws_sign(
    method: &'static str,
    path: &str,
    query: Option<&str>,
    extra: &[(&str, &str)],
    body: SignableBody<'_>,
    presign: Option<u64>,
    region: &str,
) -> Req {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = if presign.is_some() {
        PayloadChecksumKind::NoHeader
    } else {
        PayloadChecksumKind::XAmzSha256
    };
    settings.excluded_headers = None;
    if let Some(secs) = presign {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(StdDuration::from_secs(secs));
    }
    let identity = identity();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("s3")
        .time(system_time(ts(NOW)))
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let uri = match query {
        Some(q) => format!("http://{HOST}{path}?{q}"),
        None => format!("http://{HOST}{path}"),
    };
    let mut all: Vec<(&str, &str)> = vec![("host", HOST)];
    all.extend_from_slice(extra);
    let signable = SignableRequest::new(method, uri, all.iter().copied(), body).unwrap();
    let (instructions, _sig) = sign(signable, &params).unwrap().into_parts();
    let (hdrs, qparams) = instructions.into_parts();
    let mut headers = super::headers(&all);
    for h in hdrs {
        headers.append(
            HeaderName::from_bytes(h.name().as_bytes()).unwrap(),
            HeaderValue::from_str(h.value()).unwrap(),
        );
    }
    let mut query = query.map(str::to_owned);
    for (n, v) in qparams {
        let q = query.get_or_insert_with(String::new);
        if !q.is_empty() {
            q.push('&');
        }
        q.push_str(n);
        q.push('=');
        uri_encode_into(v.as_bytes(), false, q);
    }
    Req {
        method,
        path: path.to_owned(),
        query,
        headers,
    }
}

fn header_signed(path: &str, query: Option<&str>, extra: &[(&str, &str)]) -> Req {
    aws_sign(
        "GET",
        path,
        query,
        extra,
        SignableBody::empty(),
        None,
        "us-east-1",
    )
}

fn presigned(path: &str, query: Option<&str>, secs: u64) -> Req {
    aws_sign(
        "GET",
        path,
        query,
        &[],
        SignableBody::UnsignedPayload,
        Some(secs),
        "eu-west-3",
    )
}

fn assert_signed(r: Result<Authenticated, AuthError>) -> (String, PayloadMode) {
    match r {
        Ok(Authenticated::Signed {
            access_key,
            region,
            payload,
            ..
        }) => {
            assert_eq!(access_key, AK);
            (region, payload)
        }
        other => panic!("expected signed, got {other:?}"),
    }
}

const PATHS: &[&str] = &[
    "/",
    "/bucket",
    "/bucket/plain.txt",
    "/bucket/with%20space",
    "/bucket/plus+sign",
    "/bucket/%E2%98%83/snow%C3%A9man",
    "/bucket/dir/sub/key%21%2A%27%28%29",
    "/bucket/tilde~and_dash-.dot",
    "/bucket/percent%2525",
];

const QUERIES: &[&str] = &[
    "list-type=2&prefix=a%2Fb&delimiter=%2F",
    "uploads",
    "partNumber=3&uploadId=abc%3D%3D",
    "prefix=a+b&max-keys=10",
    "prefix=%E2%98%83&encoding-type=url",
    "z=1&a=2&a=1&m=",
];

#[test]
fn header_signed_requests_verify() {
    for path in PATHS {
        for query in std::iter::once(None).chain(QUERIES.iter().map(|q| Some(*q))) {
            let req = header_signed(path, query, &[("x-amz-meta-note", "  two   spaces ")]);
            let (region, payload) = assert_signed(req.auth());
            assert_eq!(region, "us-east-1");
            assert!(
                matches!(payload, PayloadMode::Sha256(_)),
                "{path} {query:?}"
            );
        }
    }
}

#[test]
fn presigned_requests_verify() {
    for path in PATHS {
        for query in std::iter::once(None).chain(QUERIES.iter().map(|q| Some(*q))) {
            let req = presigned(path, query, 3600);
            let (region, payload) = assert_signed(req.auth());
            assert_eq!(region, "eu-west-3", "region comes from the scope");
            assert_eq!(payload, PayloadMode::Unsigned);
        }
    }
}

#[test]
fn tampering_fails() {
    let base = header_signed(
        "/bucket/key%20one",
        Some("a=1&b=2"),
        &[("x-amz-meta-x", "v")],
    );
    assert_signed(base.auth());

    let mut r = header_signed(
        "/bucket/key%20one",
        Some("a=1&b=2"),
        &[("x-amz-meta-x", "v")],
    );
    r.path = "/bucket/key%20two".into();
    assert_eq!(r.auth(), Err(AuthError::SignatureDoesNotMatch));

    let mut r = header_signed(
        "/bucket/key%20one",
        Some("a=1&b=2"),
        &[("x-amz-meta-x", "v")],
    );
    r.query = Some("a=1&b=3".into());
    assert_eq!(r.auth(), Err(AuthError::SignatureDoesNotMatch));

    let mut r = header_signed(
        "/bucket/key%20one",
        Some("a=1&b=2"),
        &[("x-amz-meta-x", "v")],
    );
    r.headers
        .insert("x-amz-meta-x", HeaderValue::from_static("w"));
    assert_eq!(r.auth(), Err(AuthError::SignatureDoesNotMatch));

    let r = header_signed(
        "/bucket/key%20one",
        Some("a=1&b=2"),
        &[("x-amz-meta-x", "v")],
    );
    let wrong = HashMap::from([(AK.to_owned(), "not-the-secret".to_owned())]);
    assert_eq!(r.auth_with(&wrong), Err(AuthError::SignatureDoesNotMatch));

    let mut r = header_signed("/bucket/k", None, &[]);
    r.headers.insert(
        "x-amz-content-sha256",
        HeaderValue::from_static("UNSIGNED-PAYLOAD"),
    );
    assert_eq!(r.auth(), Err(AuthError::SignatureDoesNotMatch));

    let mut r = presigned("/bucket/k", Some("versionId=1"), 60);
    let q = r.query.take().unwrap();
    r.query = Some(q.replace("versionId=1", "versionId=2"));
    assert_eq!(r.auth(), Err(AuthError::SignatureDoesNotMatch));

    let mut r = presigned("/bucket/k", None, 60);
    r.method = "PUT";
    assert_eq!(r.auth(), Err(AuthError::SignatureDoesNotMatch));
}

#[test]
fn raw_characters_in_path_fall_back_to_reencoding() {
    // Signed as "/bucket/a%21b" but a proxy delivered "!" raw: same key, accepted.
    let mut r = header_signed("/bucket/a%21b", None, &[]);
    r.path = "/bucket/a!b".into();
    assert_signed(r.auth());
}

#[test]
fn payload_modes_and_missing_content_sha256() {
    let streaming = aws_sign(
        "PUT",
        "/b/k",
        None,
        &[
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "5"),
        ],
        SignableBody::StreamingSignedPayloadTrailer,
        None,
        "us-east-1",
    );
    let r = streaming.auth();
    let Ok(Authenticated::Signed {
        payload: PayloadMode::StreamingSignedTrailer,
        chunk_ctx: Some(ctx),
        ..
    }) = r
    else {
        panic!("{r:?}")
    };
    assert_eq!(ctx.datetime, NOW);

    let unsigned_trailer = aws_sign(
        "PUT",
        "/b/k",
        None,
        &[],
        SignableBody::StreamingUnsignedPayloadTrailer,
        None,
        "us-east-1",
    );
    let r = unsigned_trailer.auth();
    assert!(
        matches!(
            r,
            Ok(Authenticated::Signed {
                payload: PayloadMode::StreamingUnsignedTrailer,
                chunk_ctx: None,
                ..
            })
        ),
        "{r:?}"
    );

    let mut r = header_signed("/b/k", None, &[]);
    r.headers.remove("x-amz-content-sha256");
    assert!(matches!(r.auth(), Err(AuthError::InvalidRequest(_))));

    let mut r = header_signed("/b/k", None, &[]);
    r.headers
        .insert("x-amz-content-sha256", HeaderValue::from_static("bogus"));
    assert!(matches!(r.auth(), Err(AuthError::InvalidArgument(_))));
}

#[test]
fn presigned_with_content_sha256_header_and_expiry() {
    let r = presigned("/b/k", None, 600);
    assert_signed(r.auth());
    let parts_at = |r: &Req, now: &str| {
        let parts = RequestParts {
            method: r.method,
            raw_path: &r.path,
            raw_query: r.query.as_deref(),
            headers: &r.headers,
        };
        authenticate(&parts, &secrets(), ts(now))
    };
    assert!(parts_at(&r, "20261122T102500Z").is_ok());
    assert_eq!(
        parts_at(&r, "20261122T102501Z"),
        Err(AuthError::AccessDenied("Request has expired".into()))
    );
    // The max expiry is a week.
    let r = presigned("/b/k", None, 604_800);
    assert_signed(r.auth());
}

#[test]
fn anonymous_and_unsupported() {
    let h = headers(&[("host", HOST)]);
    let parts = RequestParts {
        method: "GET",
        raw_path: "/b/k",
        raw_query: Some("versionId=3"),
        headers: &h,
    };
    assert_eq!(
        authenticate(&parts, &secrets(), ts(NOW)),
        Ok(Authenticated::Anonymous)
    );
    let v2 = headers(&[("host", HOST), ("authorization", "AWS AKID:c2lnbmF0dXJl")]);
    let parts = RequestParts {
        headers: &v2,
        ..parts
    };
    // SigV2 is supported (see `sigv2_tests`); without a date it is refused.
    assert!(matches!(
        authenticate(&parts, &secrets(), ts(NOW)),
        Err(AuthError::AccessDenied(_))
    ));
    let unsupported = headers(&[("host", HOST), ("authorization", "AWS4-HMAC-SHA1 x")]);
    let parts = RequestParts {
        headers: &unsupported,
        ..parts
    };
    assert!(matches!(
        authenticate(&parts, &secrets(), ts(NOW)),
        Err(AuthError::InvalidRequest(_))
    ));
    let malformed = headers(&[
        ("host", HOST),
        ("authorization", "AWS4-HMAC-SHA256 Credential=AKID/2026/x"),
    ]);
    let parts = RequestParts {
        headers: &malformed,
        ..parts
    };
    assert!(matches!(
        authenticate(&parts, &secrets(), ts(NOW)),
        Err(AuthError::AuthorizationHeaderMalformed(_))
    ));
    let wrong_service = headers(&[
        ("host", HOST),
        ("x-amz-date", NOW),
        ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
        (
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261122/us-east-1/iam/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=00",
        ),
    ]);
    let parts = RequestParts {
        headers: &wrong_service,
        ..parts
    };
    assert!(matches!(
        authenticate(&parts, &secrets(), ts(NOW)),
        Err(AuthError::AuthorizationHeaderMalformed(_))
    ));
    let wrong_date = headers(&[
        ("host", HOST),
        ("x-amz-date", NOW),
        ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
        (
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261121/us-east-1/s3/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=00",
        ),
    ]);
    let parts = RequestParts {
        headers: &wrong_date,
        ..parts
    };
    assert!(matches!(
        authenticate(&parts, &secrets(), ts(NOW)),
        Err(AuthError::AuthorizationHeaderMalformed(_))
    ));
}

#[test]
fn far_future_presigned_does_not_overflow() {
    let q = "X-Amz-Algorithm=AWS4-HMAC-SHA256\
        &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F99991231%2Fus-east-1%2Fs3%2Faws4_request\
        &X-Amz-Date=99991231T235959Z&X-Amz-Expires=604800&X-Amz-SignedHeaders=host\
        &X-Amz-Signature=00";
    let h = headers(&[("host", HOST)]);
    for now in [NOW, "99991231T235959Z"] {
        let parts = RequestParts {
            method: "GET",
            raw_path: "/",
            raw_query: Some(q),
            headers: &h,
        };
        assert!(matches!(
            authenticate(&parts, &secrets(), ts(now)),
            Err(AuthError::AccessDenied(_))
        ));
    }
}

proptest::proptest! {
    #[test]
    fn random_requests_never_panic(
        authz in proptest::option::of("(AWS4-HMAC-SHA256 )?(Credential=[A-Za-z0-9/]{0,40})?(, ?SignedHeaders=[a-z;-]{0,30})?(, ?Signature=[0-9a-f]{0,64})?"),
        query in proptest::option::of("[A-Za-z0-9=&%+-]{0,60}"),
        path in "/[A-Za-z0-9%+/]{0,30}",
        date in "(20261122T10[0-9]{4}Z|[0-9TZ]{0,16})",
        sha in "(UNSIGNED-PAYLOAD|STREAMING-[A-Z0-9-]{0,40}|[0-9a-f]{0,64})",
    ) {
        let mut pairs = vec![("host", HOST), ("x-amz-date", date.as_str()), ("x-amz-content-sha256", sha.as_str())];
        if let Some(a) = &authz {
            pairs.push(("authorization", a.as_str()));
        }
        let h = headers(&pairs);
        let parts = RequestParts { method: "GET", raw_path: &path, raw_query: query.as_deref(), headers: &h };
        let _ = authenticate(&parts, &secrets(), ts(NOW));
        let presigned_query = format!(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={}&X-Amz-Date={date}&X-Amz-Expires={}&X-Amz-SignedHeaders=host&X-Amz-Signature=00",
            authz.as_deref().unwrap_or(""),
            query.as_deref().unwrap_or("9"),
        );
        let parts = RequestParts { raw_query: Some(&presigned_query), ..parts };
        let _ = authenticate(&parts, &secrets(), ts(NOW));
    }
}

const UNSIGNED: &str = "There were headers present in the request which were not signed";

fn unsigned_headers_denied(r: Result<Authenticated, AuthError>) {
    assert_eq!(r, Err(AuthError::AccessDenied(UNSIGNED.into())));
}

fn presigned_put(extra: &[(&str, &str)]) -> Req {
    aws_sign(
        "PUT",
        "/public/upload.txt",
        None,
        extra,
        SignableBody::UnsignedPayload,
        Some(3600),
        "us-east-1",
    )
}

#[test]
fn presigned_url_with_unsigned_amz_headers_is_refused() {
    // A presigned PUT (only `host` signed) replayed with headers that would turn it into a
    // CopyObject of another bucket's private object, made public.
    let mut r = presigned_put(&[]);
    assert!(r
        .query
        .as_deref()
        .unwrap()
        .contains("X-Amz-SignedHeaders=host&"));
    assert_signed(r.auth());
    r.headers.insert(
        "x-amz-copy-source",
        HeaderValue::from_static("secret/private.txt"),
    );
    unsigned_headers_denied(r.auth());
    r.headers
        .insert("x-amz-acl", HeaderValue::from_static("public-read"));
    unsigned_headers_denied(r.auth());
    r.headers.remove("x-amz-copy-source");
    unsigned_headers_denied(r.auth());

    // The same headers signed into the URL are fine.
    let r = presigned_put(&[
        ("x-amz-copy-source", "secret/private.txt"),
        ("x-amz-acl", "public-read"),
    ]);
    assert!(r
        .query
        .as_deref()
        .unwrap()
        .contains("X-Amz-SignedHeaders=host%3Bx-amz-acl%3Bx-amz-copy-source&"));
    assert_signed(r.auth());
    // ... but only with the signed values.
    let mut changed = presigned_put(&[("x-amz-acl", "private")]);
    changed
        .headers
        .insert("x-amz-acl", HeaderValue::from_static("public-read"));
    assert_eq!(changed.auth(), Err(AuthError::SignatureDoesNotMatch));

    // x-amz-content-sha256 needs no signature (it is the canonical request's payload line).
    let mut r = presigned_put(&[]);
    r.headers.insert(
        "x-amz-content-sha256",
        HeaderValue::from_static("UNSIGNED-PAYLOAD"),
    );
    assert_signed(r.auth());
}

#[test]
fn header_signed_request_with_unsigned_amz_headers_is_refused() {
    let signed = header_signed("/b/k", None, &[("x-amz-acl", "public-read")]);
    assert_signed(signed.auth());

    let mut r = header_signed("/b/k", None, &[]);
    r.headers
        .insert("x-amz-acl", HeaderValue::from_static("public-read"));
    unsigned_headers_denied(r.auth());
    // Any x-amz-* name counts, whatever its case on the wire.
    let mut r = header_signed("/b/k", None, &[]);
    r.headers.insert(
        HeaderName::from_bytes(b"X-Amz-Meta-Extra").unwrap(),
        HeaderValue::from_static("1"),
    );
    unsigned_headers_denied(r.auth());
    // Other headers may be left unsigned, as with AWS.
    let mut r = header_signed("/b/k", None, &[]);
    r.headers
        .insert("user-agent", HeaderValue::from_static("curl/8"));
    r.headers
        .insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
    assert_signed(r.auth());
}

/// A header-signed GET of `/b/k` whose signature is computed by hand over exactly the
/// headers `signed` (names sorted, lowercase).
fn hand_signed(signed: &[&str]) -> Req {
    let h = headers(&[
        ("host", HOST),
        ("x-amz-date", NOW),
        ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
    ]);
    let mut creq = String::from("GET\n/b/k\n\n");
    for name in signed {
        creq.push_str(&format!("{name}:{}\n", h[*name].to_str().unwrap()));
    }
    let list = signed.join(";");
    creq.push_str(&format!("\n{list}\nUNSIGNED-PAYLOAD"));
    let scope = "20261122/us-east-1/s3/aws4_request";
    let sts = format!(
        "AWS4-HMAC-SHA256\n{NOW}\n{scope}\n{}",
        crate::canonical::sha256_hex(creq.as_bytes())
    );
    let key = crate::canonical::signing_key(SK, "20261122", "us-east-1", "s3");
    let sig = crate::canonical::sign_hex(&key, sts.as_bytes());
    let mut headers = h;
    headers.insert(
        "authorization",
        HeaderValue::from_str(&format!(
            "AWS4-HMAC-SHA256 Credential={AK}/{scope}, SignedHeaders={list}, Signature={sig}"
        ))
        .unwrap(),
    );
    Req {
        method: "GET",
        path: "/b/k".into(),
        query: None,
        headers,
    }
}

#[test]
fn host_must_be_signed() {
    let host_denied = Err(AuthError::AccessDenied("host must be signed".into()));
    // The hand-made signature is right: with host it verifies.
    assert_signed(hand_signed(&["host", "x-amz-content-sha256", "x-amz-date"]).auth());
    assert_eq!(
        hand_signed(&["x-amz-content-sha256", "x-amz-date"]).auth(),
        host_denied
    );

    // Presigned: a URL signed over no headers at all.
    let mut r = presigned("/b/k", None, 60);
    let q = r.query.take().unwrap();
    assert!(q.contains("X-Amz-SignedHeaders=host&"));
    r.query = Some(q.replace("X-Amz-SignedHeaders=host&", "X-Amz-SignedHeaders=&"));
    assert_eq!(r.auth(), host_denied);
    r.query = Some(q.replace(
        "X-Amz-SignedHeaders=host&",
        "X-Amz-SignedHeaders=x-amz-date&",
    ));
    assert_eq!(r.auth(), host_denied);
}

#[test]
fn extreme_presigned_expires_and_dates_do_not_panic() {
    let h = headers(&[("host", HOST)]);
    let max = i64::MAX.to_string();
    let min = i64::MIN.to_string();
    let huge = "9".repeat(40);
    let earliest = OffsetDateTime::from_unix_timestamp(-377_705_116_800).unwrap();
    let latest = OffsetDateTime::from_unix_timestamp(253_402_300_799).unwrap();
    for date in ["20261122T101500Z", "99991231T235959Z", "00000101T000000Z"] {
        for expires in [max.as_str(), min.as_str(), huge.as_str(), "0", "604800"] {
            let q = format!(
                "X-Amz-Algorithm=AWS4-HMAC-SHA256\
                 &X-Amz-Credential={AK}%2F{}%2Fus-east-1%2Fs3%2Faws4_request\
                 &X-Amz-Date={date}&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host\
                 &X-Amz-Signature=00",
                &date[..8]
            );
            for now in [ts(NOW), earliest, latest] {
                let parts = RequestParts {
                    method: "GET",
                    raw_path: "/b/k",
                    raw_query: Some(&q),
                    headers: &h,
                };
                let r = authenticate(&parts, &secrets(), now);
                assert!(r.is_err(), "{date} {expires} at {now}: {r:?}");
            }
        }
        // Header-signed with the same dates.
        let h = headers(&[
            ("host", HOST),
            ("x-amz-date", date),
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
            (
                "authorization",
                &format!(
                    "AWS4-HMAC-SHA256 Credential={AK}/{}/us-east-1/s3/aws4_request, \
                     SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=00",
                    &date[..8]
                ),
            ),
        ]);
        for now in [ts(NOW), earliest, latest] {
            let parts = RequestParts {
                method: "GET",
                raw_path: "/b/k",
                raw_query: None,
                headers: &h,
            };
            assert!(authenticate(&parts, &secrets(), now).is_err());
        }
    }
}
