//! Server-side encryption as requests ask for it and responses report it: the
//! `x-amz-server-side-encryption` header (SSE-S3, `AES256`; SSE-KMS, `aws:kms` with the
//! key named by `x-amz-server-side-encryption-aws-kms-key-id`), the SSE-C headers (and their
//! `x-amz-copy-source-` variants), the bucket's default encryption and the server's, decided
//! here into one [`Protection`] per write; and the headers that tell a client how an object
//! is stored. What encryption does to bytes is `cairn-objects`' and `cairn-sse`'s.

use std::sync::Arc;

use axum::http::HeaderMap;
use cairn_metadata::{Encryption, ObjectData};
use cairn_objects::{CustomerKey, Protection, DEFAULT_KMS_KEY};
use cairn_sse::KmsKey;

use crate::error::{S3Error, S3ErrorCode};
use crate::headers::{header_str, set};
use crate::ApiState;

/// The header naming SSE-S3 (or KMS) on a write.
pub const SSE: &str = "x-amz-server-side-encryption";
/// The value of SSE-S3.
pub const AES256: &str = "AES256";
/// The value of SSE-KMS.
pub const AWS_KMS: &str = "aws:kms";
/// The header naming the KMS key of SSE-KMS.
pub const KMS_KEY_ID: &str = "x-amz-server-side-encryption-aws-kms-key-id";

fn invalid(msg: &str) -> S3Error {
    S3Error::new(S3ErrorCode::InvalidArgument, msg)
}

/// The customer key the headers starting with `prefix` give (`x-amz-server-side-encryption-
/// customer-` or `x-amz-copy-source-server-side-encryption-customer-`); `None` when they
/// give none. SSE-C over plain HTTP is refused unless the server allows it.
fn customer_key_at(
    st: &ApiState,
    h: &HeaderMap,
    prefix: &str,
) -> Result<Option<Arc<CustomerKey>>, S3Error> {
    let get = |suffix: &str| header_str(h, &format!("{prefix}{suffix}"));
    let (alg, key, md5) = (get("algorithm"), get("key"), get("key-md5"));
    let key = CustomerKey::from_headers(alg.as_deref(), key.as_deref(), md5.as_deref())
        .map_err(|e| invalid(&e.to_string()))?;
    if key.is_some() && !st.secure_transport && !st.encryption.allow_insecure_sse_c {
        return Err(S3Error::new(
            S3ErrorCode::InvalidRequest,
            "Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection.",
        ));
    }
    Ok(key.map(Arc::new))
}

/// The SSE-C key of the request's target object, if it gives one.
pub fn customer_key(st: &ApiState, h: &HeaderMap) -> Result<Option<Arc<CustomerKey>>, S3Error> {
    customer_key_at(st, h, "x-amz-server-side-encryption-customer-")
}

/// The SSE-C key of a copy's source, if the request gives one.
pub fn source_key(st: &ApiState, h: &HeaderMap) -> Result<Option<Arc<CustomerKey>>, S3Error> {
    customer_key_at(st, h, "x-amz-copy-source-server-side-encryption-customer-")
}

/// How a new object (or upload) is protected: as the request asks (`AES256`, `aws:kms`
/// with or without a key id, or SSE-C; one of them), else as the bucket's default
/// (`bucket_default`, as stored) or the server's says.
pub fn protection(
    st: &ApiState,
    h: &HeaderMap,
    bucket_default: Option<&str>,
) -> Result<Protection, S3Error> {
    let customer = customer_key(st, h)?;
    let asked = header_str(h, SSE);
    let kms_id = header_str(h, KMS_KEY_ID);
    match (asked.as_deref(), customer, kms_id) {
        (Some(_), Some(_), _) | (None, Some(_), Some(_)) => Err(invalid(
            "Server Side Encryption with Customer provided key is incompatible with the encryption method specified",
        )),
        (None, Some(k), None) => Ok(Protection::Customer(k)),
        (Some(AES256), None, None) => Ok(Protection::Managed),
        (Some(AWS_KMS), None, id) => kms(id.as_deref()),
        (Some(AES256), None, Some(_)) | (None, None, Some(_)) => Err(invalid(
            "x-amz-server-side-encryption-aws-kms-key-id is only valid with x-amz-server-side-encryption: aws:kms",
        )),
        (Some(a), None, _) if a.starts_with(AWS_KMS) => Err(S3Error::new(
            S3ErrorCode::NotImplemented,
            "Dual-layer SSE-KMS (aws:kms:dsse) is not supported: use aws:kms or AES256",
        )),
        (Some(_), None, _) => Err(invalid(
            "The encryption method specified is not supported",
        )),
        (None, None, None) => Ok(default_protection(st, bucket_default)),
    }
}

/// SSE-KMS under key `id` (none: the default key).
fn kms(id: Option<&str>) -> Result<Protection, S3Error> {
    match id.map(str::trim) {
        None | Some("") => Ok(Protection::Kms(DEFAULT_KMS_KEY.to_string())),
        // A name no key can have is a key that does not exist.
        Some(id) if !KmsKey::valid_name(id) => Err(S3Error::new(
            S3ErrorCode::KmsNotFound,
            "Invalid keyId: not a key name this cluster's KMS can have",
        )),
        Some(id) => Ok(Protection::Kms(id.to_string())),
    }
}

/// A bucket's default encryption as stored: `AES256`, or `aws:kms` and the key (a space
/// between), into the algorithm and the KMS key.
pub fn bucket_default(stored: &str) -> (&str, Option<&str>) {
    match stored.split_once(' ') {
        Some((alg, key)) => (alg, Some(key)),
        None => (stored, None),
    }
}

/// What a write that asks for nothing gets.
pub fn default_protection(st: &ApiState, bucket_default_stored: Option<&str>) -> Protection {
    match bucket_default_stored.map(bucket_default) {
        Some((AWS_KMS, key)) => Protection::Kms(key.unwrap_or(DEFAULT_KMS_KEY).to_string()),
        Some(_) => Protection::Managed,
        None if st.encryption.default_managed => Protection::Managed,
        None => Protection::Plain,
    }
}

/// Refuses SSE-S3 and SSE-KMS headers on a read (S3 answers 400: they only mean something
/// on writes).
pub fn refuse_on_read(h: &HeaderMap) -> Result<(), S3Error> {
    for name in [SSE, KMS_KEY_ID] {
        if h.contains_key(name) {
            return Err(invalid(&format!(
                "{name} is not valid on a GET or HEAD request"
            )));
        }
    }
    Ok(())
}

/// Sets the headers that say how `data` is stored: `AES256` for SSE-S3; `aws:kms` and the
/// key for SSE-KMS; for SSE-C the algorithm and the MD5 of the key the request gave (`key`).
pub fn report(h: &mut HeaderMap, data: &ObjectData, key: Option<&CustomerKey>) {
    match data.encryption() {
        Encryption::None => {}
        Encryption::Managed => set(h, SSE, AES256),
        Encryption::Kms => {
            set(h, SSE, AWS_KMS);
            if let Some(id) = data.kms_key_id() {
                set(h, KMS_KEY_ID, id);
            }
        }
        Encryption::Customer => {
            set(h, "x-amz-server-side-encryption-customer-algorithm", AES256);
            if let Some(k) = key {
                set(
                    h,
                    "x-amz-server-side-encryption-customer-key-md5",
                    k.key_md5(),
                );
            }
        }
    }
}

/// [`report`] for a protection asked for (an upload's creation, before any data exists).
pub fn report_protection(h: &mut HeaderMap, p: &Protection) {
    match p {
        Protection::Plain => {}
        Protection::Managed => set(h, SSE, AES256),
        Protection::Kms(id) => {
            set(h, SSE, AWS_KMS);
            set(h, KMS_KEY_ID, id);
        }
        Protection::Customer(k) => {
            set(h, "x-amz-server-side-encryption-customer-algorithm", AES256);
            set(
                h,
                "x-amz-server-side-encryption-customer-key-md5",
                k.key_md5(),
            );
        }
    }
}

/// Encryption defaults of this server.
#[derive(Debug, Clone, Copy)]
pub struct EncryptionConfig {
    /// New objects that ask for nothing are SSE-S3 (as AWS since 2023).
    pub default_managed: bool,
    /// Accept SSE-C over plain HTTP (tests, trusted networks).
    pub allow_insecure_sse_c: bool,
}

impl Default for EncryptionConfig {
    fn default() -> Self {
        EncryptionConfig {
            default_managed: true,
            allow_insecure_sse_c: false,
        }
    }
}
