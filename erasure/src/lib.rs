//! The stripe codec: Reed–Solomon erasure coding of one stripe into `k` data + `m` parity
//! shards, reconstruction from any `k` of them, and the shard checksum.
//!
//! This crate owns byte arithmetic only. It does no I/O, knows nothing of objects, placement or
//! datanodes, and depends on no Cairn crate but `cairn-types` (for [`EcScheme`]). The backend's
//! types never appear in its API.
//!
//! # Laws
//!
//! For every scheme `k + m` with `k ≥ 1`, `m ≥ 0` and `k + m ≤ 256` ([`MAX_SHARDS`], the size of
//! GF(2⁸)), and every stripe `d` of `len` bytes:
//!
//! 1. **Shape.** [`StripeCodec::encode`]`(d)` returns `k + m` shards, each exactly
//!    `L = ceil(len / k)` bytes ([`StripeCodec::shard_len`]): data shards `0..k` hold `d` in
//!    order, the last zero-padded, then parity shards `k..k+m`. The shards do not record
//!    `len`; the caller keeps it. `len = 0` gives `k + m` empty shards.
//! 2. **Any k suffice.** Given any `k` of the `k + m` shards (the others `None`),
//!    [`StripeCodec::decode`] returns exactly `d`, and [`StripeCodec::reconstruct_shard`]
//!    rebuilds any one shard, data or parity, byte for byte as `encode` made it.
//! 3. **Fewer than k is an error**, never a panic or wrong bytes: [`ErasureError::TooFewShards`].
//!    So are a slot count other than `k + m` and present shards of the wrong length.
//! 4. **`m = 0` degenerates to splitting**: data shards are plain slices of the stripe and
//!    every one of them is needed.
//!
//! Encoding is deterministic and the code is fixed by `(k, m)`, so shards written today decode
//! with any later build — as long as the backend stays the same: the two Reed–Solomon crates
//! considered use different codes and cannot read each other's parity.
//!
//! # Backend
//!
//! [`reed-solomon-erasure`] 6 with `simd-accel` (a systematic Vandermonde-derived code over
//! GF(2⁸), its inner loop in C built for AVX2), chosen over `reed-solomon-simd` 3.1 by
//! `benches/codec.rs`: 4+2, 1 MiB shards (4 MiB stripe), one core of this 2-core x86-64 box,
//! throughput in stripe bytes (GB = 10⁹ B):
//!
//! | 4+2, 1 MiB shards | encode | decode, data shards 0 and 1 lost |
//! |---|---|---|
//! | `reed-solomon-erasure` 6 + `simd-accel` | 12.9–19.1 GB/s | 10.2–18.1 GB/s |
//! | `reed-solomon-simd` 3.1 | 9.3–11.9 GB/s | 1.4–2.2 GB/s |
//! | ratio | 1.4–1.6× | 7.4–8.3× |
//! | [`StripeCodec`] (adds copying into owned shards) | 7.9–9.2 GB/s | 6.4–8.9 GB/s |
//!
//! (Two runs of `cargo bench -p cairn-erasure -- --warm-up-time 1 --measurement-time 3`; the
//! lower figures were taken while a parallel build shared the two cores. The raw backend
//! rows encode in place and decode from prepared buffers; the [`StripeCodec`] rows include
//! allocating the shards and copying the stripe, so they are what a caller sees.)
//!
//! `simd-accel` compiles its C kernel with `-march=haswell` (unless
//! `RUST_REED_SOLOMON_ERASURE_ARCH` says otherwise) whatever the Rust target flags are, so
//! the binary needs an AVX2 CPU; for older CPUs build with that variable set.
//!
//! A GET that finds a data shard missing decodes on the hot path, and repair decodes every
//! stripe it touches, so decode speed decides.
//!
//! [`reed-solomon-erasure`]: https://docs.rs/reed-solomon-erasure/6
//! [`EcScheme`]: cairn_types::EcScheme

mod codec;
mod combine;

pub use codec::{StripeCodec, MAX_SHARDS};

/// What can go wrong while coding a stripe. Every variant is permanent for the given inputs
/// except [`TooFewShards`](Self::TooFewShards), which fetching more shards may cure
/// ([`is_retryable`](Self::is_retryable)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErasureError {
    #[error("invalid erasure scheme {data}+{parity}: {reason}")]
    InvalidScheme {
        data: u8,
        parity: u8,
        reason: &'static str,
    },
    #[error("expected {expected} shard slots, got {got}")]
    WrongShardCount { expected: usize, got: usize },
    #[error("shard {index} is {got} bytes long, expected {expected}")]
    WrongShardLength {
        index: usize,
        expected: usize,
        got: usize,
    },
    #[error("shard index {index} is out of range for {total} shards")]
    ShardIndexOutOfRange { index: usize, total: usize },
    #[error("only {present} shards present, {needed} needed")]
    TooFewShards { present: usize, needed: usize },
    /// The backend refused inputs this crate had checked: a bug here, not in the caller.
    #[error("erasure backend failed: {0}")]
    Backend(String),
}

impl ErasureError {
    /// Whether the same operation may succeed with more shards (a retry after fetching more).
    pub fn is_retryable(&self) -> bool {
        match self {
            ErasureError::TooFewShards { .. } => true,
            ErasureError::InvalidScheme { .. }
            | ErasureError::WrongShardCount { .. }
            | ErasureError::WrongShardLength { .. }
            | ErasureError::ShardIndexOutOfRange { .. }
            | ErasureError::Backend(_) => false,
        }
    }
}

#[cfg(test)]
mod tests;
