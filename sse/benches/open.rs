//! What opening a sealed body costs per byte, as a GET pays it: one stripe shard (1 MiB of
//! plaintext, 64 KiB chunks) at a time, its ciphertext fresh in cache (the shard read's
//! CRC32C pass just touched it).
//!
//! - `run opener`: `RunOpener::open_pieces`, into reused plaintext buffers (one pass);
//! - `in place, then moved` (the baseline, the data path before): each chunk opened where
//!   it lies, its plaintext moved down over the tags before it;
//! - `cipher alone`: each chunk opened where it lies, nothing moved (the floor), and the
//!   same with other chunk sizes (what the 64 KiB chunk costs against larger ones).
//!
//! `cargo bench -p cairn-sse --bench open`

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use bytes::{Bytes, BytesMut};
use cairn_sse::{DataKey, PlainBuffers, RunOpener, Sealer, CHUNK, TAG};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

const PLAIN: usize = 1 << 20;

fn nonce(i: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&i.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

/// Opens every chunk of `sealed` where it lies; with `compact`, moves each chunk's
/// plaintext down over the tags before it. Returns the plaintext length.
fn open_in_place(key: &LessSafeKey, sealed: &mut [u8], last: u64, compact: bool) -> usize {
    let sc = CHUNK as usize + TAG;
    let (mut read, mut write, mut i) = (0, 0, 0u64);
    while read < sealed.len() {
        let n = sc.min(sealed.len() - read);
        let len = key
            .open_in_place(
                nonce(i),
                Aad::from([u8::from(i == last)]),
                &mut sealed[read..read + n],
            )
            .expect("opens")
            .len();
        if compact && write != read {
            sealed.copy_within(read..read + len, write);
        }
        write += len;
        read += n;
        i += 1;
    }
    write
}

fn bench(c: &mut Criterion) {
    let key = DataKey::generate().unwrap();
    let plain: Vec<u8> = (0..PLAIN).map(|i| (i * 31 + i / 4093) as u8).collect();
    let mut sealer = Sealer::new(&key, CHUNK);
    let mut sealed = BytesMut::new();
    sealed.extend_from_slice(&sealer.push(&plain));
    sealed.extend_from_slice(&sealer.finish());
    let sealed = sealed.freeze();
    let last = (PLAIN / CHUNK as usize - 1) as u64;
    let aead = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key.bytes()).unwrap());
    let run = RunOpener::new(&key, CHUNK, PLAIN as u64, PlainBuffers::default());

    let mut g = c.benchmark_group("open a 1 MiB shard of sealed 64 KiB chunks");
    g.throughput(Throughput::Bytes(PLAIN as u64));
    let fresh = || BytesMut::from(&sealed[..]);
    g.bench_function("run opener (reused buffers, one pass)", |b| {
        b.iter_batched(
            fresh,
            |s| {
                let out = run.open_pieces(0, vec![s.freeze()]).unwrap();
                assert_eq!(out.iter().map(Bytes::len).sum::<usize>(), PLAIN);
                out
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("in place, then moved over the tags (before)", |b| {
        b.iter_batched(
            fresh,
            |mut s| {
                let n = open_in_place(&aead, &mut s, last, true);
                s.truncate(n);
                s.freeze()
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("cipher alone (in place, not moved)", |b| {
        b.iter_batched(
            fresh,
            |mut s| open_in_place(&aead, &mut s, last, false),
            BatchSize::PerIteration,
        )
    });
    for chunk in [16usize << 10, 64 << 10, 256 << 10, 1 << 20] {
        let mut sealed = plain.clone();
        let mut out = Vec::new();
        for (i, c) in sealed.chunks_mut(chunk).enumerate() {
            let tag = aead
                .seal_in_place_separate_tag(nonce(i as u64), Aad::from([0u8]), c)
                .unwrap();
            out.extend_from_slice(c);
            out.extend_from_slice(tag.as_ref());
        }
        g.bench_function(format!("cipher alone, {} KiB chunks", chunk >> 10), |b| {
            b.iter_batched(
                || out.clone(),
                |mut s| {
                    for (i, c) in s.chunks_mut(chunk + TAG).enumerate() {
                        aead.open_in_place(nonce(i as u64), Aad::from([0u8]), c)
                            .unwrap();
                    }
                    s
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
