//! Request bodies: a pool of a few random (incompressible) buffers made once, with the
//! CRC32C and SHA-256 of each, and the small fast PRNG the workers draw from.

use bytes::Bytes;
use sha2::{Digest, Sha256};

/// SplitMix64: small, fast and good enough for bodies, key choice and operation choice.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// A seed from the clock and the process id (not for anything secret).
    pub fn from_entropy() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Rng(nanos ^ (u64::from(std::process::id()) << 32))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the tiny modulo bias does not matter here).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        rest.copy_from_slice(&last[..rest.len()]);
    }
}

/// One body: its bytes (cloned per request without copying) and their checksums.
#[derive(Clone, Debug)]
pub struct Buffer {
    pub data: Bytes,
    pub crc32c: u32,
    /// Hex SHA-256, only when bodies are signed.
    pub sha256: Option<String>,
}

/// The buffers bodies are drawn from; an object records the index of the one it was PUT with.
#[derive(Debug)]
pub struct Pool {
    pub buffers: Vec<Buffer>,
}

impl Pool {
    /// `count` buffers of `size` random bytes; with `sha256`, each one's SHA-256 too.
    pub fn new(count: usize, size: usize, sha256: bool, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let buffers = (0..count.max(1))
            .map(|_| {
                let mut v = vec![0u8; size];
                rng.fill(&mut v);
                let crc32c = crc32c(&v);
                let sha = sha256.then(|| hex::encode(Sha256::digest(&v)));
                Buffer {
                    data: Bytes::from(v),
                    crc32c,
                    sha256: sha,
                }
            })
            .collect();
        Pool { buffers }
    }

    pub fn len(&self) -> usize {
        self.buffers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buffers.is_empty()
    }
}

/// CRC32C (Castagnoli) of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, data) as u32
}

/// CRC32C computed over pieces as they arrive.
pub struct Crc32c(crc_fast::Digest);

impl Crc32c {
    pub fn new() -> Self {
        Crc32c(crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi))
    }

    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub fn finish(&self) -> u32 {
        self.0.finalize() as u32
    }
}

impl Default for Crc32c {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incremental_crc_matches_whole() {
        let pool = Pool::new(2, 100_003, true, 7);
        assert_eq!(pool.len(), 2);
        assert_ne!(pool.buffers[0].data, pool.buffers[1].data);
        let b = &pool.buffers[1];
        let mut c = Crc32c::new();
        for piece in b.data.chunks(4096) {
            c.update(piece);
        }
        assert_eq!(c.finish(), b.crc32c);
        assert_eq!(b.sha256.as_ref().map(String::len), Some(64));
        // The known CRC32C check value.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn rng_below_in_range() {
        let mut r = Rng::new(1);
        for _ in 0..1000 {
            assert!(r.below(7) < 7);
        }
    }
}
