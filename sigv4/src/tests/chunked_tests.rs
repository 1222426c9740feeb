//! aws-chunked decoding: bodies signed by `aws-sigv4` (`sign_chunk` / `sign_trailer`),
//! framing errors, and property tests over arbitrary splits and random input.

use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::http::Headers;
use proptest::prelude::*;

use super::vectors::{chunked_example_body, SEED};
use super::*;
use crate::{
    decode_aws_chunked, verify_body, AuthError, BodyExpectations, ChecksumAlgorithm, Checksummer,
    ChunkMode, ChunkSigningContext, ExpectedChecksum, DEFAULT_MAX_CHUNK_SIZE,
};

const NOW: &str = "20261122T101500Z";
const SEED2: &str = "7b2d6c4bb1b25b0a54a1a0f9f2b0a9f6f8a4a5f05f5d3b5c1a1e9b2c3d4e5f60";

fn ctx() -> ChunkSigningContext {
    ChunkSigningContext::new(SK, NOW, "us-east-1", SEED2)
}

fn example_ctx() -> ChunkSigningContext {
    ChunkSigningContext::new(SK, "20130524T000000Z", "us-east-1", SEED)
}

fn crc32(data: &[u8]) -> String {
    let mut c = Checksummer::new(ChecksumAlgorithm::Crc32);
    c.update(data);
    c.finalize()
}

/// Encodes `data` as a signed aws-chunked body with aws-sigv4's signer; with `trailers`
/// (signed-trailer mode) they follow the final chunk with their signature.
fn encode_signed(data: &[u8], chunk: usize, trailers: Option<&[(&str, &str)]>) -> Vec<u8> {
    let identity = identity();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(system_time(ts(NOW)))
        .settings(())
        .build()
        .unwrap();
    let mut prev = SEED2.to_owned();
    let mut out = Vec::new();
    let pieces: Vec<&[u8]> = data.chunks(chunk).chain(std::iter::once(&[][..])).collect();
    for piece in pieces {
        let sig = v4::sign_chunk(&Bytes::copy_from_slice(piece), &prev, &params)
            .unwrap()
            .signature()
            .to_owned();
        out.extend_from_slice(format!("{:x};chunk-signature={sig}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        if !piece.is_empty() {
            out.extend_from_slice(b"\r\n");
        }
        prev = sig;
    }
    if let Some(trailers) = trailers {
        let mut h = Headers::new();
        for (n, v) in trailers {
            out.extend_from_slice(format!("{n}:{v}\r\n").as_bytes());
            h.insert(n.to_string(), v.to_string());
        }
        let sig = v4::sign_trailer(&h, &prev, &params).unwrap();
        out.extend_from_slice(
            format!("x-amz-trailer-signature:{}\r\n", sig.signature()).as_bytes(),
        );
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn encode_unsigned(data: &[u8], chunk: usize, trailers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in data.chunks(chunk) {
        out.extend_from_slice(format!("{:X}\r\n", piece.len()).as_bytes());
        out.extend_from_slice(piece);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n");
    for (n, v) in trailers {
        out.extend_from_slice(format!("{n}:{v}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn decode(
    body: &[u8],
    mode: ChunkMode,
    names: &[&str],
) -> (Vec<u8>, Option<AuthError>, crate::TrailerSlot) {
    let dec = decode_aws_chunked(
        split_stream(body, &[]),
        mode,
        Some(ctx()),
        names.iter().map(|s| s.to_string()).collect(),
    );
    let slot = dec.trailer_slot();
    let (data, err) = drain(dec);
    (data, err, slot)
}

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 251) as u8).collect()
}

#[test]
fn signed_bodies_from_aws_sigv4_decode() {
    for (len, chunk) in [(0, 8), (1, 8), (8, 8), (100, 7), (70_000, 65_536)] {
        let data = payload(len);
        let body = encode_signed(&data, chunk, None);
        let dec = decode_aws_chunked(
            split_stream(&body, &[3, 50]),
            ChunkMode::Signed,
            Some(ctx()),
            vec![],
        )
        .with_decoded_length(Some(len as u64));
        let (got, err) = drain(dec);
        assert_eq!(err, None, "len {len}");
        assert_eq!(got, data);
    }
}

#[test]
fn signed_trailer_verifies_and_feeds_checksum() {
    let data = payload(1000);
    let crc = crc32(&data);
    let body = encode_signed(&data, 300, Some(&[("x-amz-checksum-crc32", &crc)]));
    let (got, err, slot) = decode(&body, ChunkMode::SignedTrailer, &["x-amz-checksum-crc32"]);
    assert_eq!((got.as_slice(), err), (data.as_slice(), None));
    assert_eq!(slot.get("x-amz-checksum-crc32"), Some(crc.clone()));

    // Through verify_body, as the S3 layer would chain them.
    let dec = decode_aws_chunked(
        split_stream(&body, &[17]),
        ChunkMode::SignedTrailer,
        Some(ctx()),
        vec!["x-amz-checksum-crc32".into()],
    );
    let expect = BodyExpectations {
        checksum: Some((
            ChecksumAlgorithm::Crc32,
            ExpectedChecksum::Trailer(dec.trailer_slot()),
        )),
        ..Default::default()
    };
    let (stream, handle) = verify_body(dec, expect);
    let (got, err) = drain(stream);
    assert_eq!((got.len(), err), (1000, None));
    let verified = handle.get().unwrap();
    assert_eq!(verified.checksum, Some((ChecksumAlgorithm::Crc32, crc)));
    assert_eq!(verified.length, 1000);

    // A correctly signed but wrong checksum: BadDigest, as the last item.
    let wrong = encode_signed(&data, 300, Some(&[("x-amz-checksum-crc32", "AAAAAA==")]));
    let dec = decode_aws_chunked(
        split_stream(&wrong, &[]),
        ChunkMode::SignedTrailer,
        Some(ctx()),
        vec!["x-amz-checksum-crc32".into()],
    );
    let expect = BodyExpectations::from_headers(
        &headers(&[("x-amz-trailer", "x-amz-checksum-crc32")]),
        crate::PayloadMode::StreamingSignedTrailer,
        Some(&dec.trailer_slot()),
    )
    .unwrap();
    let (stream, handle) = verify_body(dec, expect);
    let items = collect(stream);
    assert!(matches!(items.last(), Some(Err(AuthError::BadDigest(_)))));
    assert!(items[..items.len() - 1].iter().all(Result::is_ok));
    assert_eq!(handle.get(), None);

    // A trailer changed after signing: SignatureDoesNotMatch.
    let text = String::from_utf8_lossy(&body).into_owned();
    let tampered = text.replace(
        &format!("x-amz-checksum-crc32:{}", crc32(&data)),
        "x-amz-checksum-crc32:AAAAAA==",
    );
    assert_ne!(tampered, text);
    let (_, err, _) = decode(tampered.as_bytes(), ChunkMode::SignedTrailer, &[]);
    assert_eq!(err, Some(AuthError::SignatureDoesNotMatch));
}

#[test]
fn unsigned_trailer_bodies() {
    let data = payload(5000);
    let mut c = Checksummer::new(ChecksumAlgorithm::Crc32c);
    c.update(&data);
    let crc = c.finalize();
    let body = encode_unsigned(&data, 1024, &[("x-amz-checksum-crc32c", &crc)]);
    let (got, err, slot) = decode(
        &body,
        ChunkMode::UnsignedTrailer,
        &["x-amz-checksum-crc32c"],
    );
    assert_eq!((got.as_slice(), err), (data.as_slice(), None));
    assert_eq!(slot.get("x-amz-checksum-crc32c"), Some(crc));

    // Wrong value: BadDigest from verify_body.
    let body = encode_unsigned(&data, 1024, &[("x-amz-checksum-crc32c", "AAAAAA==")]);
    let dec = decode_aws_chunked(
        split_stream(&body, &[]),
        ChunkMode::UnsignedTrailer,
        None,
        vec!["x-amz-checksum-crc32c".into()],
    );
    let expect = BodyExpectations::from_headers(
        &headers(&[("x-amz-trailer", "x-amz-checksum-crc32c")]),
        crate::PayloadMode::StreamingUnsignedTrailer,
        Some(&dec.trailer_slot()),
    )
    .unwrap();
    let (_, err) = drain(verify_body(dec, expect).0);
    assert!(matches!(err, Some(AuthError::BadDigest(_))), "{err:?}");

    // Announced trailer missing.
    let body = encode_unsigned(&data, 1024, &[]);
    let (_, err, _) = decode(
        &body,
        ChunkMode::UnsignedTrailer,
        &["x-amz-checksum-crc32c"],
    );
    assert!(matches!(err, Some(AuthError::InvalidRequest(_))), "{err:?}");
    // No trailer at all is fine when none was announced.
    let (got, err, _) = decode(&body, ChunkMode::UnsignedTrailer, &[]);
    assert_eq!((got.len(), err), (5000, None));
}

#[test]
fn every_truncation_is_incomplete() {
    let body = chunked_example_body();
    for cut in (0..body.len())
        .step_by(97)
        .chain(body.len() - 90..body.len())
    {
        let dec = decode_aws_chunked(
            split_stream(&body[..cut], &[]),
            ChunkMode::Signed,
            Some(example_ctx()),
            vec![],
        );
        let (_, err) = drain(dec);
        assert_eq!(err, Some(AuthError::IncompleteBody), "cut at {cut}");
    }
}

#[test]
fn upfront_reservation_is_capped() {
    use crate::chunked::{upfront_reservation, MAX_UPFRONT_RESERVATION};
    assert_eq!(MAX_UPFRONT_RESERVATION, 64 << 10);
    assert_eq!(upfront_reservation(100, 0), 100);
    assert_eq!(upfront_reservation(100, 40), 60);
    assert_eq!(upfront_reservation(100, 500), 0);
    assert_eq!(
        upfront_reservation(DEFAULT_MAX_CHUNK_SIZE, 0),
        MAX_UPFRONT_RESERVATION
    );
    assert_eq!(
        upfront_reservation(DEFAULT_MAX_CHUNK_SIZE, 1 << 20),
        MAX_UPFRONT_RESERVATION
    );
    assert_eq!(upfront_reservation(usize::MAX, 0), MAX_UPFRONT_RESERVATION);
}

#[test]
fn declared_chunk_size_is_not_reserved_up_front() {
    use futures::FutureExt as _;
    // A header announcing a 16 MiB signed chunk, then only a few bytes.
    let head = format!(
        "{:x};chunk-signature={}\r\nabc",
        DEFAULT_MAX_CHUNK_SIZE,
        "0".repeat(64)
    );
    let small = |cap: usize| cap < 1 << 20;

    // While the client holds the connection open without sending more.
    let input = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from(head.clone()))])
        .chain(futures::stream::pending());
    let mut dec = decode_aws_chunked(input, ChunkMode::Signed, Some(ctx()), vec![]);
    assert!(dec.next().now_or_never().is_none(), "waits for the data");
    assert!(small(dec.buffer_capacity()), "{}", dec.buffer_capacity());

    // And when the input ends there: a clean IncompleteBody, nothing yielded.
    let input = split_stream(head.as_bytes(), &[]);
    let mut dec = decode_aws_chunked(input, ChunkMode::Signed, Some(ctx()), vec![]);
    let first = futures::executor::block_on(dec.next());
    assert_eq!(first, Some(Err(AuthError::IncompleteBody)));
    assert!(small(dec.buffer_capacity()), "{}", dec.buffer_capacity());
    assert_eq!(futures::executor::block_on(dec.next()), None);
}

#[test]
fn large_signed_chunks_still_decode_as_they_arrive() {
    // One chunk of the maximum size (and one over the reservation cap), delivered in 8 KiB
    // pieces: the buffer grows with the data and the chunk verifies whole.
    for size in [DEFAULT_MAX_CHUNK_SIZE, (64 << 10) + 1] {
        let data = payload(size);
        let body = encode_signed(&data, size, None);
        let cuts: Vec<usize> = (1..body.len() / 8192).map(|i| i * 8192).collect();
        let dec = decode_aws_chunked(
            split_stream(&body, &cuts),
            ChunkMode::Signed,
            Some(ctx()),
            vec![],
        );
        let (got, err) = drain(dec);
        assert_eq!(err, None, "{size}");
        assert!(got == data, "{size}: decoded bytes differ");
    }
    // A chunk over the limit is still refused, before any of its data is read.
    let dec = decode_aws_chunked(
        split_stream(
            format!(
                "{:x};chunk-signature={}\r\n",
                DEFAULT_MAX_CHUNK_SIZE + 1,
                "0".repeat(64)
            )
            .as_bytes(),
            &[],
        ),
        ChunkMode::Signed,
        Some(ctx()),
        vec![],
    );
    assert_eq!(
        drain(dec).1,
        Some(AuthError::InvalidChunk("chunk too large".into()))
    );
}

#[test]
fn framing_errors() {
    let invalid = |body: &[u8], mode: ChunkMode| {
        let (_, err, _) = decode(body, mode, &[]);
        assert!(matches!(err, Some(AuthError::InvalidChunk(_))), "{err:?}");
    };
    invalid(b"zz\r\n", ChunkMode::UnsignedTrailer);
    invalid(b"\r\n", ChunkMode::UnsignedTrailer);
    invalid(b"5\r\nhelloXX0\r\n\r\n", ChunkMode::UnsignedTrailer);
    invalid(
        b"5\r\nhello\r\n0\r\n\r\ngarbage",
        ChunkMode::UnsignedTrailer,
    );
    invalid(
        b"5\r\nhello\r\n0\r\nno-colon\r\n\r\n",
        ChunkMode::UnsignedTrailer,
    );
    invalid(b"5\r\nhello\r\n0\r\n\r\n", ChunkMode::Signed);
    invalid(b"5;chunk-signature=abc\r\nhello\r\n", ChunkMode::Signed);
    invalid(b"11111111111111111\r\n", ChunkMode::UnsignedTrailer);
    invalid(&[b'1'; 5000], ChunkMode::UnsignedTrailer);
    // Trailers are not allowed in the plain signed mode.
    let mut body = encode_signed(b"abc", 8, None);
    body.truncate(body.len() - 2);
    body.extend_from_slice(b"x-amz-checksum-crc32:AAAAAA==\r\n\r\n");
    invalid(&body, ChunkMode::Signed);
    // Stray CRLFs after the end are tolerated.
    let (got, err, _) = decode(
        b"5\r\nhello\r\n0\r\n\r\n\r\n",
        ChunkMode::UnsignedTrailer,
        &[],
    );
    assert_eq!((got.as_slice(), err), (&b"hello"[..], None));

    // Chunk bigger than the cap.
    let body = encode_signed(&payload(100), 100, None);
    let dec = decode_aws_chunked(
        split_stream(&body, &[]),
        ChunkMode::Signed,
        Some(ctx()),
        vec![],
    )
    .with_max_chunk_size(64);
    assert!(matches!(drain(dec).1, Some(AuthError::InvalidChunk(_))));
    // Signed mode without a context.
    let dec = decode_aws_chunked(split_stream(&body, &[]), ChunkMode::Signed, None, vec![]);
    assert!(matches!(drain(dec).1, Some(AuthError::InvalidRequest(_))));
}

#[test]
fn decoded_length_is_checked() {
    let body = encode_signed(&payload(100), 40, None);
    let run = |len: u64| {
        let dec = decode_aws_chunked(
            split_stream(&body, &[]),
            ChunkMode::Signed,
            Some(ctx()),
            vec![],
        )
        .with_decoded_length(Some(len));
        drain(dec).1
    };
    assert_eq!(run(100), None);
    assert_eq!(run(101), Some(AuthError::IncompleteBody));
    assert!(matches!(run(99), Some(AuthError::InvalidRequest(_))));
}

#[test]
fn transport_errors_are_reported() {
    let s = futures::stream::iter(vec![
        Ok(Bytes::from_static(b"5\r\nhel")),
        Err(std::io::Error::other("connection reset")),
    ]);
    let (got, err) = drain(decode_aws_chunked(
        s,
        ChunkMode::UnsignedTrailer,
        None,
        vec![],
    ));
    assert_eq!(got, b"hel");
    assert!(matches!(err, Some(AuthError::Transport(m)) if m.contains("reset")));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_split_gives_the_same_bytes(cuts in proptest::collection::vec(0usize..100_000, 0..12)) {
        let body = chunked_example_body();
        let dec = decode_aws_chunked(split_stream(&body, &cuts), ChunkMode::Signed, Some(example_ctx()), vec![]);
        let (got, err) = drain(dec);
        prop_assert_eq!(err, None);
        prop_assert_eq!(got, vec![b'a'; 66560]);

        let data = payload(3000);
        let body = encode_unsigned(&data, 700, &[("x-amz-checksum-crc32", &crc32(&data))]);
        let dec = decode_aws_chunked(split_stream(&body, &cuts), ChunkMode::UnsignedTrailer, None, vec![]);
        let (got, err) = drain(dec);
        prop_assert_eq!(err, None);
        prop_assert_eq!(got, data);
    }

    #[test]
    fn random_input_never_panics(
        input in proptest::collection::vec(any::<u8>(), 0..512),
        cuts in proptest::collection::vec(0usize..512, 0..6),
        mode in prop_oneof![Just(ChunkMode::Signed), Just(ChunkMode::SignedTrailer), Just(ChunkMode::UnsignedTrailer)],
    ) {
        let dec = decode_aws_chunked(split_stream(&input, &cuts), mode, Some(ctx()), vec!["x-amz-checksum-crc32".into()]);
        let _ = collect(dec);
    }

    #[test]
    fn mutated_signed_body_fails_or_is_unchanged(pos in 0usize..600, byte in any::<u8>()) {
        let data = payload(400);
        let body = encode_signed(&data, 150, Some(&[("x-amz-checksum-crc32", &crc32(&data))]));
        let mut bad = body.clone();
        let pos = pos % bad.len();
        bad[pos] = byte;
        let (got, err, _) = decode(&bad, ChunkMode::SignedTrailer, &[]);
        if err.is_none() {
            prop_assert_eq!(got, data);
        }
    }

    #[test]
    fn text_like_garbage_never_panics(s in "([0-9a-fA-F]{0,6}(;chunk-signature=[0-9a-f]{0,64})?\r?\n?[a-z:\\-]{0,12}\r?\n?){0,6}") {
        for mode in [ChunkMode::Signed, ChunkMode::SignedTrailer, ChunkMode::UnsignedTrailer] {
            let dec = decode_aws_chunked(split_stream(s.as_bytes(), &[1, 5]), mode, Some(ctx()), vec![]);
            let _ = collect(dec);
        }
    }
}
