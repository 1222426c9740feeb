//! Column families and the order-preserving key encodings inside them.
//!
//! Object keys are `bucket 0x00 key`: bucket names never contain 0x00 and keys never contain
//! control characters, so all objects of a bucket are one contiguous range sorted by key bytes
//! (S3's UTF-8 binary order), and a listing is a range scan.
//!
//! Bucket configuration documents are `bucket 0x00 kind` in `bucket_config`, one per
//! [`crate::BucketConfigKind`].

use cairn_types::BucketName;

/// The column families of the metadata state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cf {
    Buckets,
    Objects,
    Keys,
    Gc,
    Sys,
    BucketConfig,
}

impl Cf {
    pub const ALL: [Cf; 6] = [
        Cf::Buckets,
        Cf::Objects,
        Cf::Keys,
        Cf::Gc,
        Cf::Sys,
        Cf::BucketConfig,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Cf::Buckets => "buckets",
            Cf::Objects => "objects",
            Cf::Keys => "keys",
            Cf::Gc => "gc",
            Cf::Sys => "sys",
            Cf::BucketConfig => "bucket_config",
        }
    }
}

pub fn bucket(name: &BucketName) -> Vec<u8> {
    name.as_str().as_bytes().to_vec()
}

pub fn object_prefix(bucket: &BucketName) -> Vec<u8> {
    let mut k = Vec::with_capacity(bucket.as_str().len() + 1);
    k.extend_from_slice(bucket.as_str().as_bytes());
    k.push(0);
    k
}

pub fn object(bucket: &BucketName, key: &str) -> Vec<u8> {
    let mut k = object_prefix(bucket);
    k.extend_from_slice(key.as_bytes());
    k
}

/// The key of one configuration document of a bucket in `bucket_config`.
pub fn bucket_config(bucket: &BucketName, kind: crate::BucketConfigKind) -> Vec<u8> {
    let mut k = object_prefix(bucket);
    k.push(kind as u8);
    k
}
