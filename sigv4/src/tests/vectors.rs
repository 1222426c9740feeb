//! The example requests published in the Amazon S3 SigV4 documentation.

use super::*;
use crate::{
    authenticate, decode_aws_chunked, AuthError, Authenticated, ChunkMode, PayloadMode,
    RequestParts, EMPTY_SHA256_HEX,
};

const SCOPE: &str = "Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request";

fn auth(
    method: &str,
    path: &str,
    query: Option<&str>,
    h: &HeaderMap,
    now: &str,
) -> Result<Authenticated, AuthError> {
    let req = RequestParts {
        method,
        raw_path: path,
        raw_query: query,
        headers: h,
    };
    authenticate(&req, &secrets(), ts(now))
}

fn signed(r: Result<Authenticated, AuthError>) -> (String, String, PayloadMode) {
    match r {
        Ok(Authenticated::Signed {
            access_key,
            region,
            payload,
            ..
        }) => (access_key, region, payload),
        other => panic!("expected a signed request, got {other:?}"),
    }
}

#[test]
fn get_object_example() {
    let authz = format!(
        "AWS4-HMAC-SHA256 {SCOPE},SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,\
         Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    );
    let h = headers(&[
        ("host", "examplebucket.s3.amazonaws.com"),
        ("range", "bytes=0-9"),
        ("x-amz-content-sha256", EMPTY_SHA256_HEX),
        ("x-amz-date", "20130524T000000Z"),
        ("authorization", &authz),
    ]);
    let (ak, region, payload) = signed(auth("GET", "/test.txt", None, &h, "20130524T000500Z"));
    assert_eq!((ak.as_str(), region.as_str()), (AK, "us-east-1"));
    let mut empty = [0u8; 32];
    hex::decode_to_slice(EMPTY_SHA256_HEX, &mut empty).unwrap();
    assert_eq!(payload, PayloadMode::Sha256(empty));

    // Any change breaks it.
    let tampered = headers(&[
        ("host", "examplebucket.s3.amazonaws.com"),
        ("range", "bytes=0-10"),
        ("x-amz-content-sha256", EMPTY_SHA256_HEX),
        ("x-amz-date", "20130524T000000Z"),
        ("authorization", &authz),
    ]);
    assert_eq!(
        auth("GET", "/test.txt", None, &tampered, "20130524T000500Z"),
        Err(AuthError::SignatureDoesNotMatch)
    );
    assert_eq!(
        auth("GET", "/test.tx", None, &h, "20130524T000500Z"),
        Err(AuthError::SignatureDoesNotMatch)
    );
    assert_eq!(
        auth("GET", "/test.txt", Some("a=b"), &h, "20130524T000500Z"),
        Err(AuthError::SignatureDoesNotMatch)
    );
    // Skew: 15 minutes is fine, 16 is not (both directions).
    assert!(auth("GET", "/test.txt", None, &h, "20130524T001500Z").is_ok());
    assert_eq!(
        auth("GET", "/test.txt", None, &h, "20130524T001600Z"),
        Err(AuthError::RequestTimeTooSkewed)
    );
    assert_eq!(
        auth("GET", "/test.txt", None, &h, "20130523T234300Z"),
        Err(AuthError::RequestTimeTooSkewed)
    );
    // Unknown key.
    let other = authz.replace("AKIAIOSFODNN7EXAMPLE", "AKIDUNKNOWN");
    let h2 = headers(&[
        ("host", "examplebucket.s3.amazonaws.com"),
        ("x-amz-content-sha256", EMPTY_SHA256_HEX),
        ("x-amz-date", "20130524T000000Z"),
        ("authorization", &other),
    ]);
    assert_eq!(
        auth("GET", "/test.txt", None, &h2, "20130524T000000Z"),
        Err(AuthError::InvalidAccessKeyId)
    );
}

#[test]
fn put_object_example_with_date_header() {
    let authz = format!(
        "AWS4-HMAC-SHA256 {SCOPE},\
         SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,\
         Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
    );
    let body_sha = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";
    let h = headers(&[
        ("host", "examplebucket.s3.amazonaws.com"),
        ("date", "Fri, 24 May 2013 00:00:00 GMT"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ("x-amz-content-sha256", body_sha),
        ("authorization", &authz),
    ]);
    let (_, _, payload) = signed(auth(
        "PUT",
        "/test%24file.text",
        None,
        &h,
        "20130524T000000Z",
    ));
    let PayloadMode::Sha256(hash) = payload else {
        panic!("expected Sha256, got {payload:?}")
    };
    assert_eq!(hex::encode(hash), body_sha);
    assert_eq!(
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            b"Welcome to Amazon S3."
        )),
        body_sha
    );
}

#[test]
fn get_bucket_lifecycle_and_list_objects_examples() {
    let h = |sig: &str| {
        let authz = format!(
            "AWS4-HMAC-SHA256 {SCOPE},SignedHeaders=host;x-amz-content-sha256;x-amz-date,\
             Signature={sig}"
        );
        headers(&[
            ("host", "examplebucket.s3.amazonaws.com"),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-content-sha256", EMPTY_SHA256_HEX),
            ("authorization", &authz),
        ])
    };
    let lifecycle = h("fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
    signed(auth(
        "GET",
        "/",
        Some("lifecycle"),
        &lifecycle,
        "20130524T000000Z",
    ));
    let list = h("34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
    signed(auth(
        "GET",
        "/",
        Some("max-keys=2&prefix=J"),
        &list,
        "20130524T000000Z",
    ));
    // Parameter order on the wire does not matter.
    signed(auth(
        "GET",
        "/",
        Some("prefix=J&max-keys=2"),
        &list,
        "20130524T000000Z",
    ));
    assert_eq!(
        auth(
            "GET",
            "/",
            Some("max-keys=3&prefix=J"),
            &list,
            "20130524T000000Z"
        ),
        Err(AuthError::SignatureDoesNotMatch)
    );
}

const PRESIGNED_QUERY: &str = "X-Amz-Algorithm=AWS4-HMAC-SHA256\
    &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
    &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
    &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

#[test]
fn presigned_example() {
    let h = headers(&[("host", "examplebucket.s3.amazonaws.com")]);
    let q = Some(PRESIGNED_QUERY);
    let (_, region, payload) = signed(auth("GET", "/test.txt", q, &h, "20130524T120000Z"));
    assert_eq!(region, "us-east-1");
    assert_eq!(payload, PayloadMode::Unsigned);
    // Valid up to the last second, expired after; presigned URLs are not skew-checked
    // against the past.
    assert!(auth("GET", "/test.txt", q, &h, "20130525T000000Z").is_ok());
    assert_eq!(
        auth("GET", "/test.txt", q, &h, "20130525T000001Z"),
        Err(AuthError::AccessDenied("Request has expired".into()))
    );
    assert!(matches!(
        auth("GET", "/test.txt", q, &h, "20130523T000000Z"),
        Err(AuthError::AccessDenied(_))
    ));
    // A negative X-Amz-Expires is a URL that expired at once (before its signature is
    // even looked at); a non-number is malformed.
    let negative = PRESIGNED_QUERY.replace("X-Amz-Expires=86400", "X-Amz-Expires=-7");
    assert_eq!(
        auth("GET", "/test.txt", Some(&negative), &h, "20130524T000000Z"),
        Err(AuthError::AccessDenied("Request has expired".into()))
    );
    let junk = PRESIGNED_QUERY.replace("X-Amz-Expires=86400", "X-Amz-Expires=soon");
    assert!(matches!(
        auth("GET", "/test.txt", Some(&junk), &h, "20130524T000000Z"),
        Err(AuthError::AuthorizationQueryParametersError(_))
    ));
    assert_eq!(
        auth(
            "GET",
            "/test.txt",
            q,
            &headers(&[("host", "evil.example")]),
            "20130524T000000Z"
        ),
        Err(AuthError::SignatureDoesNotMatch)
    );
    let too_long = PRESIGNED_QUERY.replace("X-Amz-Expires=86400", "X-Amz-Expires=604801");
    assert!(matches!(
        auth("GET", "/test.txt", Some(&too_long), &h, "20130524T000000Z"),
        Err(AuthError::AuthorizationQueryParametersError(_))
    ));
    let missing = PRESIGNED_QUERY.replace("&X-Amz-SignedHeaders=host", "");
    assert!(matches!(
        auth("GET", "/test.txt", Some(&missing), &h, "20130524T000000Z"),
        Err(AuthError::AuthorizationQueryParametersError(_))
    ));
    // Both mechanisms at once.
    let both = headers(&[
        ("host", "examplebucket.s3.amazonaws.com"),
        ("authorization", "AWS4-HMAC-SHA256 Credential=x"),
    ]);
    assert!(matches!(
        auth("GET", "/test.txt", q, &both, "20130524T000000Z"),
        Err(AuthError::InvalidArgument(_))
    ));
}

pub const SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
pub const CHUNK1: &str = "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648";
pub const CHUNK2: &str = "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497";
pub const CHUNK3: &str = "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9";

/// The aws-chunked body of the "Transferring Payload in Multiple Chunks" example.
pub fn chunked_example_body() -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(format!("10000;chunk-signature={CHUNK1}\r\n").as_bytes());
    body.extend(std::iter::repeat_n(b'a', 65536));
    body.extend_from_slice(format!("\r\n400;chunk-signature={CHUNK2}\r\n").as_bytes());
    body.extend(std::iter::repeat_n(b'a', 1024));
    body.extend_from_slice(format!("\r\n0;chunk-signature={CHUNK3}\r\n\r\n").as_bytes());
    body
}

#[test]
fn chunked_upload_example() {
    let authz = format!(
        "AWS4-HMAC-SHA256 {SCOPE},SignedHeaders=content-encoding;content-length;host;\
         x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,\
         Signature={SEED}"
    );
    let h = headers(&[
        ("host", "s3.amazonaws.com"),
        ("x-amz-date", "20130524T000000Z"),
        ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ("authorization", &authz),
        ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "66560"),
        ("content-length", "66824"),
    ]);
    let r = auth(
        "PUT",
        "/examplebucket/chunkObject.txt",
        None,
        &h,
        "20130524T000000Z",
    );
    let Ok(Authenticated::Signed {
        payload, chunk_ctx, ..
    }) = r
    else {
        panic!("{r:?}")
    };
    assert_eq!(payload, PayloadMode::StreamingSigned);
    let ctx = chunk_ctx.expect("chunk context");
    assert_eq!(ctx.seed_signature, SEED);
    assert_eq!(ctx.scope, "20130524/us-east-1/s3/aws4_request");

    let body = chunked_example_body();
    assert_eq!(body.len(), 66824);
    let mode = ChunkMode::from_payload(payload).unwrap();
    let dec = decode_aws_chunked(
        split_stream(&body, &[7, 100, 65620]),
        mode,
        Some(ctx.clone()),
        vec![],
    )
    .with_decoded_length(Some(66560));
    let (data, err) = drain(dec);
    assert_eq!(err, None);
    assert_eq!(data, vec![b'a'; 66560]);

    // The same context built from the secret.
    let ctx2 = crate::ChunkSigningContext::new(SK, "20130524T000000Z", "us-east-1", SEED);
    assert_eq!(ctx2, ctx);

    // A flipped data byte in the second chunk: the first chunk is released, then an error.
    let mut bad = body.clone();
    let pos = bad.len() - 200;
    bad[pos] = b'b';
    let (data, err) = drain(decode_aws_chunked(
        split_stream(&bad, &[]),
        mode,
        Some(ctx),
        vec![],
    ));
    assert_eq!(data.len(), 65536);
    assert_eq!(err, Some(AuthError::SignatureDoesNotMatch));
}
