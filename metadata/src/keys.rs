//! Column families and the order-preserving key encodings inside them.
//!
//! Object keys are `bucket 0x00 key`: bucket names never contain 0x00 and keys never contain
//! control characters, so all objects of a bucket are one contiguous range sorted by key bytes
//! (S3's UTF-8 binary order), and a listing is a range scan.
//!
//! Bucket configuration documents are `bucket 0x00 kind` in `bucket_config`, one per
//! [`crate::BucketConfigKind`].
//! Multipart uploads are `bucket 0x00 key 0x00 upload-id` in `uploads` (sorted by key, then
//! by upload id, which starts with the initiation time), and their parts are
//! `bucket 0x00 key 0x00 upload-id 0x00 part-number (u32 big-endian)` in `parts`, so the parts
//! of one upload are one range in part-number order. Upload ids are generated hex and never
//! contain 0x00.
//!
//! Object versions and delete markers are `bucket 0x00 key 0x00 order` in `versions`, where
//! `order` is `u64::MAX - seq` big-endian and `seq` grows with every version written (a
//! counter in `sys`): the versions of a key are one range, newest first, and listing every
//! version of a bucket is one range scan in S3's order (keys ascending, newest first).

use cairn_types::BucketName;

/// The column families of the metadata state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cf {
    Buckets,
    Objects,
    Keys,
    Gc,
    Sys,
    Uploads,
    Parts,
    BucketConfig,
    Versions,
}

impl Cf {
    pub const ALL: [Cf; 9] = [
        Cf::Buckets,
        Cf::Objects,
        Cf::Keys,
        Cf::Gc,
        Cf::Sys,
        Cf::BucketConfig,
        Cf::Uploads,
        Cf::Parts,
        Cf::Versions,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Cf::Buckets => "buckets",
            Cf::Objects => "objects",
            Cf::Keys => "keys",
            Cf::Gc => "gc",
            Cf::Sys => "sys",
            Cf::BucketConfig => "bucket_config",
            Cf::Uploads => "uploads",
            Cf::Parts => "parts",
            Cf::Versions => "versions",
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

/// The key of an upload in `uploads`.
pub fn upload(bucket: &BucketName, key: &str, upload_id: &str) -> Vec<u8> {
    let mut k = object(bucket, key);
    k.push(0);
    k.extend_from_slice(upload_id.as_bytes());
    k
}

/// The common prefix of every part key of an upload in `parts`.
pub fn parts_prefix(bucket: &BucketName, key: &str, upload_id: &str) -> Vec<u8> {
    let mut k = upload(bucket, key, upload_id);
    k.push(0);
    k
}

pub fn part(bucket: &BucketName, key: &str, upload_id: &str, part_number: u32) -> Vec<u8> {
    let mut k = parts_prefix(bucket, key, upload_id);
    k.extend_from_slice(&part_number.to_be_bytes());
    k
}

/// The key of one configuration document of a bucket in `bucket_config`.
pub fn bucket_config(bucket: &BucketName, kind: crate::BucketConfigKind) -> Vec<u8> {
    let mut k = object_prefix(bucket);
    k.push(kind as u8);
    k
}

/// The common prefix of every version key of `key` in `versions`.
pub fn versions_prefix(bucket: &BucketName, key: &str) -> Vec<u8> {
    let mut k = object(bucket, key);
    k.push(0);
    k
}

/// The key of the version with sequence number `seq` of `key` in `versions`.
pub fn version(bucket: &BucketName, key: &str, seq: u64) -> Vec<u8> {
    let mut k = versions_prefix(bucket, key);
    k.extend_from_slice(&version_order(seq));
    k
}

/// The order bytes of sequence number `seq`: later versions sort first.
pub fn version_order(seq: u64) -> [u8; 8] {
    (u64::MAX - seq).to_be_bytes()
}

/// Splits a `versions` key with the bucket prefix stripped into the object key and its
/// order bytes.
pub fn split_version_key(k: &[u8]) -> Option<(&[u8], [u8; 8])> {
    if k.len() < 9 || k[k.len() - 9] != 0 {
        return None;
    }
    let (key, rest) = k.split_at(k.len() - 9);
    let order: [u8; 8] = rest[1..].try_into().ok()?;
    Some((key, order))
}
