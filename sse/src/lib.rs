//! Encryption at rest: the cryptography, and nothing about where bytes are stored.
//!
//! - [`chunks`]: a body is sealed in fixed-size chunks with AES-256-GCM under its own random
//!   [`DataKey`], so that a range read opens only the chunks it touches and every chunk is
//!   authenticated (a changed byte, a reordered or a dropped chunk is an error, never data).
//! - [`keys`]: the data keys, the cluster's master keys that wrap them (SSE-S3), the named
//!   KMS keys that wrap them for SSE-KMS, and the key-encryption key that seals master and
//!   KMS keys where they are stored.
//! - [`customer`]: SSE-C, keys a client sends with each request: parsed and checked from
//!   the request headers, never stored (only a salted HMAC that recognizes the key again).
//!
//! The storage layers above decide what is encrypted, keep the wrapped keys with the object
//! record, and encrypt before erasure coding: shards hold ciphertext, so scrubbing and repair
//! never need a key.

pub mod chunks;
pub mod customer;
pub mod keys;

pub use chunks::{sealed_len, sealed_range, PlainBuffers, RunOpener, Sealer, CHUNK, TAG};
pub use customer::CustomerKey;
pub use keys::{DataKey, Kek, Keyring, KmsKey, MasterKey};

/// Errors of encryption and decryption.
#[derive(Debug, thiserror::Error)]
pub enum SseError {
    /// A chunk failed authentication: the stored bytes are not what was written.
    #[error("encrypted chunk {0} failed authentication")]
    Corrupt(u64),
    /// The sealed data is shorter or longer than its record says.
    #[error("encrypted data has the wrong length: {0}")]
    Length(String),
    /// A wrapped key does not open with the key given (a wrong customer key, a wrong
    /// key-encryption key, or a damaged record).
    #[error("the key does not open this data")]
    WrongKey,
    /// The record names a master key this node's keyring lacks.
    #[error("master key {0} is not in this node's keyring")]
    UnknownMasterKey(u32),
    /// The record names a KMS key this node's keyring lacks.
    #[error("KMS key {0:?} does not exist")]
    UnknownKmsKey(String),
    /// Request headers for SSE-C that are missing, malformed or inconsistent.
    #[error("{0}")]
    InvalidCustomerKey(String),
    /// A key-encryption key that is not 32 bytes of hex, or a key file with loose
    /// permissions.
    #[error("key-encryption key: {0}")]
    Kek(String),
    /// The operating system's random source failed.
    #[error("the system random source failed")]
    Random,
}

/// Fills `buf` from the system's random source.
pub fn random(buf: &mut [u8]) -> Result<(), SseError> {
    use aws_lc_rs::rand::{SecureRandom, SystemRandom};
    SystemRandom::new().fill(buf).map_err(|_| SseError::Random)
}
