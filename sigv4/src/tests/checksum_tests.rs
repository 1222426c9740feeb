//! Checksums and `verify_body`.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use sha2::Digest;

use super::*;
use crate::{
    verify_body, AuthError, BodyExpectations, ChecksumAlgorithm, Checksummer, ExpectedChecksum,
    PayloadMode, VerifiedBody,
};

fn b64(raw: &[u8]) -> String {
    BASE64.encode(raw)
}

fn body(data: &'static [u8]) -> impl Stream<Item = Result<Bytes, AuthError>> {
    futures::stream::iter(
        data.chunks(3)
            .map(|c| Ok(Bytes::from_static(c)))
            .collect::<Vec<_>>(),
    )
}

#[test]
fn known_check_values() {
    let check = |alg, raw: &[u8]| {
        let mut c = Checksummer::new(alg);
        c.update(b"1234");
        c.update(b"56789");
        assert_eq!(c.finalize(), b64(raw), "{alg:?}");
    };
    check(ChecksumAlgorithm::Crc32, &0xCBF4_3926u32.to_be_bytes());
    check(ChecksumAlgorithm::Crc32c, &0xE306_9283u32.to_be_bytes());
    check(
        ChecksumAlgorithm::Crc64Nvme,
        &0xAE8B_1486_0A79_9888u64.to_be_bytes(),
    );
    check(
        ChecksumAlgorithm::Sha1,
        &hex::decode("f7c3bc1d808e04732adf679965ccc34ca7ae3441").unwrap(),
    );
    check(
        ChecksumAlgorithm::Sha256,
        &hex::decode("15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225").unwrap(),
    );
}

#[test]
fn names_round_trip() {
    for alg in ChecksumAlgorithm::ALL {
        assert_eq!(
            ChecksumAlgorithm::from_header_name(alg.header_name()),
            Some(alg)
        );
        assert_eq!(ChecksumAlgorithm::from_name(alg.name()), Some(alg));
        assert_eq!(
            ChecksumAlgorithm::from_header_name(&alg.header_name().to_uppercase()),
            Some(alg)
        );
    }
    assert_eq!(
        ChecksumAlgorithm::from_header_name("x-amz-checksum-md5"),
        None
    );
    assert_eq!(
        ChecksumAlgorithm::from_header_name("x-amz-checksum-type"),
        None
    );
}

#[test]
fn sha256_payload_is_checked_before_the_end() {
    let data: &'static [u8] = b"Welcome to Amazon S3.";
    let good: [u8; 32] = sha2::Sha256::digest(data).into();
    let (s, handle) = verify_body(
        body(data),
        BodyExpectations {
            sha256: Some(good),
            ..Default::default()
        },
    );
    let (got, err) = drain(s);
    assert_eq!((got.as_slice(), err), (data, None));
    assert_eq!(handle.get().map(|v| v.length), Some(21));

    let (s, handle) = verify_body(
        body(data),
        BodyExpectations {
            sha256: Some([0; 32]),
            ..Default::default()
        },
    );
    let items = collect(s);
    assert_eq!(items.last(), Some(&Err(AuthError::ContentSha256Mismatch)));
    assert!(items[..items.len() - 1].iter().all(Result::is_ok));
    assert_eq!(handle.get(), None);
}

#[test]
fn header_checksums_md5_and_length() {
    let data: &'static [u8] = b"hello world";
    let md5: [u8; 16] = md5::Md5::digest(data).into();
    let mut c = Checksummer::new(ChecksumAlgorithm::Crc64Nvme);
    c.update(data);
    let crc = c.finalize();
    let h = headers(&[
        ("content-md5", &b64(&md5)),
        ("x-amz-checksum-crc64nvme", &crc),
    ]);
    let expect = BodyExpectations::from_headers(&h, PayloadMode::Unsigned, None).unwrap();
    let (s, handle) = verify_body(body(data), expect);
    assert_eq!(drain(s).1, None);
    assert_eq!(
        handle.get(),
        Some(VerifiedBody {
            length: 11,
            checksum: Some((ChecksumAlgorithm::Crc64Nvme, crc.clone())),
            md5: Some(md5),
        })
    );

    // Wrong MD5.
    let h = headers(&[("content-md5", &b64(&[0u8; 16]))]);
    let expect = BodyExpectations::from_headers(&h, PayloadMode::Unsigned, None).unwrap();
    assert!(matches!(
        drain(verify_body(body(data), expect).0).1,
        Some(AuthError::BadDigest(_))
    ));
    // Wrong CRC (well-formed).
    let h = headers(&[("x-amz-checksum-crc32", "AAAAAA==")]);
    let expect = BodyExpectations::from_headers(&h, PayloadMode::Unsigned, None).unwrap();
    assert!(matches!(
        drain(verify_body(body(data), expect).0).1,
        Some(AuthError::BadDigest(_))
    ));
    // Malformed values and duplicates are rejected up front.
    let bad = |pairs: &[(&str, &str)]| {
        BodyExpectations::from_headers(&headers(pairs), PayloadMode::Unsigned, None).unwrap_err()
    };
    assert_eq!(bad(&[("content-md5", "nope")]), AuthError::InvalidDigest);
    assert!(matches!(
        bad(&[("x-amz-checksum-crc32", "AAAA")]),
        AuthError::BadDigest(_)
    ));
    assert!(matches!(
        bad(&[
            ("x-amz-checksum-crc32", "AAAAAA=="),
            ("x-amz-checksum-sha1", &b64(&[0; 20]))
        ]),
        AuthError::InvalidRequest(_)
    ));
    // Length mismatch.
    let expect = BodyExpectations {
        length: Some(12),
        ..Default::default()
    };
    assert_eq!(
        drain(verify_body(body(data), expect).0).1,
        Some(AuthError::IncompleteBody)
    );
}

#[test]
fn compute_only_and_errors_pass_through() {
    let data: &'static [u8] = b"abc";
    let h = headers(&[("x-amz-sdk-checksum-algorithm", "SHA256")]);
    let mut expect = BodyExpectations::from_headers(&h, PayloadMode::Unsigned, None).unwrap();
    assert!(matches!(
        expect.checksum,
        Some((ChecksumAlgorithm::Sha256, ExpectedChecksum::ComputeOnly))
    ));
    expect.compute_md5 = true;
    let (s, handle) = verify_body(body(data), expect);
    assert_eq!(drain(s).1, None);
    let v = handle.get().unwrap();
    assert_eq!(v.checksum.unwrap().1, b64(&sha2::Sha256::digest(data)));
    assert_eq!(v.md5, Some(md5::Md5::digest(data).into()));

    let failing = futures::stream::iter(vec![
        Ok(Bytes::from_static(b"x")),
        Err(AuthError::IncompleteBody),
        Ok(Bytes::from_static(b"never")),
    ]);
    let (s, handle) = verify_body(failing, BodyExpectations::default());
    let items = collect(s);
    assert_eq!(items.len(), 2);
    assert_eq!(items[1], Err(AuthError::IncompleteBody));
    assert_eq!(handle.get(), None);
}
