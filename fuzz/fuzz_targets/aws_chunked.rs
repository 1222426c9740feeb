//! `decode_aws_chunked` never panics, whatever the bytes and however they are split into
//! stream items, in all three chunk modes; its stream always ends, with at most one error,
//! which is the last item.
//!
//! Input layout: `flags`, `n`, then `n & 7` piece lengths (one byte each), then (if
//! `flags & 4`) a little-endian u16 decoded length, then the body. The body is cut into
//! pieces of the given lengths (empty pieces included), the rest is the last piece.
//! Flags: 1 = announce trailer `x-amz-checksum-crc32`; 2 = max chunk size 64;
//! 4 = check a decoded length; 8 = the transport fails after the last piece.
#![no_main]

use bytes::Bytes;
use cairn_sigv4::{decode_aws_chunked, ChunkMode, ChunkSigningContext};
use futures::StreamExt;
use libfuzzer_sys::fuzz_target;

/// The context the signed seeds were made with (the AWS documentation example).
fn ctx() -> ChunkSigningContext {
    ChunkSigningContext::new(
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "20130524T000000Z",
        "us-east-1",
        "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
    )
}

fuzz_target!(|data: &[u8]| {
    let (flags, rest) = match data {
        [f, rest @ ..] => (*f, rest),
        [] => return,
    };
    let (n, mut rest) = match rest {
        [n, rest @ ..] => ((*n & 7) as usize, rest),
        [] => (0, rest),
    };
    let mut lens = Vec::with_capacity(n);
    for _ in 0..n {
        if let [l, r @ ..] = rest {
            lens.push(*l as usize);
            rest = r;
        }
    }
    let decoded_length = if flags & 4 != 0 {
        if rest.len() < 2 {
            return;
        }
        let l = u16::from_le_bytes([rest[0], rest[1]]) as u64;
        rest = &rest[2..];
        Some(l)
    } else {
        None
    };
    let body = rest;
    let mut pieces = Vec::new();
    let mut at = 0;
    for l in lens {
        let end = (at + l).min(body.len());
        pieces.push(Bytes::copy_from_slice(&body[at..end]));
        at = end;
    }
    pieces.push(Bytes::copy_from_slice(&body[at..]));
    let trailer_names = if flags & 1 != 0 {
        vec!["x-amz-checksum-crc32".to_owned()]
    } else {
        Vec::new()
    };

    for mode in [
        ChunkMode::Signed,
        ChunkMode::SignedTrailer,
        ChunkMode::UnsignedTrailer,
    ] {
        let mut items: Vec<Result<Bytes, String>> = pieces.iter().cloned().map(Ok).collect();
        if flags & 8 != 0 {
            items.push(Err("connection reset".to_owned()));
        }
        let item_count = items.len();
        let ctx = (mode != ChunkMode::UnsignedTrailer).then(ctx);
        let mut dec = decode_aws_chunked(
            futures::stream::iter(items),
            mode,
            ctx,
            trailer_names.clone(),
        )
        .with_decoded_length(decoded_length);
        if flags & 2 != 0 {
            dec = dec.with_max_chunk_size(64);
        }
        let slot = dec.trailer_slot();
        futures::executor::block_on(async {
            let mut decoded = 0usize;
            let mut polls = 0usize;
            // Every Ok item carries at least one body byte or follows an input item, so a
            // correct decoder ends well within this bound.
            let bound = body.len() + item_count + 4;
            while let Some(item) = dec.next().await {
                polls += 1;
                assert!(polls <= bound, "stream does not end ({mode:?})");
                match item {
                    Ok(b) => decoded += b.len(),
                    Err(_) => {
                        assert!(
                            dec.next().await.is_none(),
                            "item after an error ({mode:?})"
                        );
                        break;
                    }
                }
            }
            assert!(decoded <= body.len());
        });
        let _ = slot.all();
    }
});
