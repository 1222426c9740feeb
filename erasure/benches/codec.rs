//! Backend shoot-out for the stripe codec: `reed-solomon-erasure` (with `simd-accel`) against
//! `reed-solomon-simd`, 4+2 with 1 MiB shards (a 4 MiB stripe), plus the chosen backend as
//! wrapped by [`StripeCodec`] for 4+2 and 8+4.
//!
//! Throughput is reported in stripe bytes (decimal: GB = 10⁹ B) (4 MiB per iteration) for encode and for decode with
//! two data shards lost, so the figures compare directly with the PUT/GET data rate.
//!
//! Run: `cargo bench -p cairn-erasure -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use bytes::Bytes;
use cairn_erasure::StripeCodec;
use cairn_types::EcScheme;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

const K: usize = 4;
const M: usize = 2;
const SHARD: usize = 1 << 20;
const STRIPE: usize = K * SHARD;
/// Data shards dropped before every decode.
const LOST: [usize; 2] = [0, 1];

/// Deterministic pseudo-random bytes (xorshift), so no backend can shortcut zeros.
fn pseudo_random(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn stripe() -> Vec<u8> {
    pseudo_random(STRIPE)
}

fn data_shards(stripe: &[u8]) -> Vec<Vec<u8>> {
    stripe.chunks(SHARD).map(<[u8]>::to_vec).collect()
}

fn rse(c: &mut Criterion) {
    use reed_solomon_erasure::galois_8::ReedSolomon;
    let rs = ReedSolomon::new(K, M).expect("4+2 is valid");
    let mut shards = data_shards(&stripe());
    shards.extend((0..M).map(|_| vec![0u8; SHARD]));

    let mut g = c.benchmark_group("rs-erasure-simd-accel 4+2 1MiB");
    g.throughput(Throughput::BytesDecimal(STRIPE as u64));
    g.bench_function("encode", |b| {
        b.iter(|| rs.encode(black_box(&mut shards)).expect("encode"))
    });
    rs.encode(&mut shards).expect("encode");
    g.bench_function("decode 2 data lost", |b| {
        b.iter_batched(
            || {
                let mut v: Vec<Option<Vec<u8>>> = shards.iter().cloned().map(Some).collect();
                for i in LOST {
                    v[i] = None;
                }
                v
            },
            |mut v| {
                rs.reconstruct_data(&mut v).expect("decode");
                v
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn rss(c: &mut Criterion) {
    use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};
    let data = data_shards(&stripe());
    let mut enc = ReedSolomonEncoder::new(K, M, SHARD).expect("4+2 is valid");

    let mut g = c.benchmark_group("rs-simd 4+2 1MiB");
    g.throughput(Throughput::BytesDecimal(STRIPE as u64));
    g.bench_function("encode", |b| {
        b.iter(|| {
            for s in &data {
                enc.add_original_shard(black_box(s)).expect("add");
            }
            // Parity stays in the encoder's buffers (no copy), like the in-place
            // reed-solomon-erasure encode above.
            let r = enc.encode().expect("encode");
            r.recovery_iter().map(black_box).count()
        })
    });
    for s in &data {
        enc.add_original_shard(s).expect("add");
    }
    let parity: Vec<Vec<u8>> = enc
        .encode()
        .expect("encode")
        .recovery_iter()
        .map(<[u8]>::to_vec)
        .collect();

    let mut dec = ReedSolomonDecoder::new(K, M, SHARD).expect("4+2 is valid");
    g.bench_function("decode 2 data lost", |b| {
        b.iter(|| {
            for (i, s) in data.iter().enumerate() {
                if !LOST.contains(&i) {
                    dec.add_original_shard(i, black_box(s)).expect("add");
                }
            }
            for (i, p) in parity.iter().enumerate() {
                dec.add_recovery_shard(i, black_box(p)).expect("add");
            }
            let r = dec.decode().expect("decode");
            r.restored_original_iter().map(black_box).count()
        })
    });
    g.finish();
}

/// The chosen backend through [`StripeCodec`], for the layouts Cairn recommends: 4+2 (the
/// default) and 8+4 (wide stripes), 1 MiB shards, decoding with `m` data shards lost.
fn stripe_codec(c: &mut Criterion) {
    for (k, m) in [(4usize, 2usize), (8, 4)] {
        let codec = StripeCodec::new(EcScheme {
            data: k as u8,
            parity: m as u8,
        })
        .expect("valid scheme");
        let len = k * SHARD;
        let data = pseudo_random(len);
        let shards = codec.encode(&data);

        let mut g = c.benchmark_group(format!("StripeCodec {k}+{m} 1MiB"));
        g.throughput(Throughput::BytesDecimal(len as u64));
        g.bench_function("encode", |b| b.iter(|| codec.encode(black_box(&data))));
        g.bench_function(format!("decode {m} data lost"), |b| {
            b.iter_batched(
                || {
                    // Unshared buffers, like shards just read from datanodes.
                    let mut v: Vec<Option<Bytes>> = shards
                        .iter()
                        .map(|s| Some(Bytes::from(s.to_vec())))
                        .collect();
                    for slot in v.iter_mut().take(m) {
                        *slot = None;
                    }
                    v
                },
                |mut v| codec.decode(&mut v, len).expect("decode"),
                BatchSize::LargeInput,
            )
        });
        g.finish();
    }
}

/// Rebuilding the one shard a lost datanode held (what repair does per stripe), 4+2 with
/// 1 MiB shards, a data shard and a parity shard lost: as a combination of k shards
/// ([`StripeCodec::reconstruct_shard`]) against what repair did before, in the same run:
/// decoding the stripe, and re-encoding it when the lost shard is a parity shard. Throughput counts the rebuilt shard's bytes.
fn rebuild_one(c: &mut Criterion) {
    let (k, m) = (4usize, 2usize);
    let codec = StripeCodec::new(EcScheme {
        data: k as u8,
        parity: m as u8,
    })
    .expect("valid scheme");
    let len = k * SHARD;
    let shards = codec.encode(&pseudo_random(len));
    let mut g = c.benchmark_group("rebuild one lost shard 4+2 1MiB");
    g.throughput(Throughput::BytesDecimal(SHARD as u64));
    for lost in [1usize, 5] {
        let slots = || -> Vec<Option<Bytes>> {
            let mut v: Vec<Option<Bytes>> = shards
                .iter()
                .map(|s| Some(Bytes::from(s.to_vec())))
                .collect();
            v[lost] = None;
            v
        };
        g.bench_function(format!("shard {lost}: combination of k"), |b| {
            b.iter_batched(
                slots,
                |v| codec.reconstruct_shard(&v, lost).expect("rebuild"),
                BatchSize::LargeInput,
            )
        });
        let old = if lost < k {
            "decode"
        } else {
            "decode + re-encode"
        };
        g.bench_function(format!("shard {lost}: {old}"), |b| {
            b.iter_batched(
                slots,
                |mut v| {
                    let data = codec.decode(&mut v, len).expect("decode");
                    if lost < k {
                        v[lost].clone().expect("decoded")
                    } else {
                        codec.encode_bytes(data)[lost].clone()
                    }
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, rse, rss, stripe_codec, rebuild_one);
criterion_main!(benches);
