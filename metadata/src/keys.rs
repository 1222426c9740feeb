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
}

impl Cf {
    pub const ALL: [Cf; 8] = [
        Cf::Buckets,
        Cf::Objects,
        Cf::Keys,
        Cf::Gc,
        Cf::Sys,
        Cf::BucketConfig,
        Cf::Uploads,
        Cf::Parts,
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
