//! Server-side encryption as requests ask for it and responses report it: the
//! `x-amz-server-side-encryption` header (SSE-S3, `AES256`), the SSE-C headers (and their
//! `x-amz-copy-source-` variants), the bucket's default encryption and the server's, decided
//! here into one [`Protection`] per write; and the headers that tell a client how an object
//! is stored. What encryption does to bytes is `cairn-objects`' and `cairn-sse`'s.

use std::sync::Arc;

use axum::http::HeaderMap;
use cairn_metadata::{Encryption, ObjectData};
use cairn_objects::{CustomerKey, Protection};

use crate::error::{S3Error, S3ErrorCode};
use crate::headers::{header_str, set};
use crate::ApiState;

/// The header naming SSE-S3 (or KMS) on a write.
pub const SSE: &str = "x-amz-server-side-encryption";
/// The value of SSE-S3.
pub const AES256: &str = "AES256";

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

/// How a new object (or upload) is protected: as the request asks (`AES256` or SSE-C, not
/// both), else as the bucket's default (`bucket_default`, the stored algorithm) or the
/// server's says.
pub fn protection(
    st: &ApiState,
    h: &HeaderMap,
    bucket_default: Option<&str>,
) -> Result<Protection, S3Error> {
    let customer = customer_key(st, h)?;
    let asked = header_str(h, SSE);
    match (asked.as_deref(), customer) {
        (Some(_), Some(_)) => Err(invalid(
            "Server Side Encryption with Customer provided key is incompatible with the encryption method specified",
        )),
        (None, Some(k)) => Ok(Protection::Customer(k)),
        (Some(AES256), None) => Ok(Protection::Managed),
        (Some(a), None) if a.starts_with("aws:kms") => Err(S3Error::new(
            S3ErrorCode::NotImplemented,
            "SSE-KMS is not supported: use AES256 (SSE-S3) or a customer-provided key (SSE-C)",
        )),
        (Some(_), None) => Err(invalid(
            "The encryption method specified is not supported",
        )),
        (None, None) => Ok(default_protection(st, bucket_default)),
    }
}

/// What a write that asks for nothing gets.
pub fn default_protection(st: &ApiState, bucket_default: Option<&str>) -> Protection {
    match bucket_default {
        Some(_) => Protection::Managed,
        None if st.encryption.default_managed => Protection::Managed,
        None => Protection::Plain,
    }
}

/// Refuses SSE-S3 headers on a read (S3 answers 400: they only mean something on writes).
pub fn refuse_on_read(h: &HeaderMap) -> Result<(), S3Error> {
    if h.contains_key(SSE) {
        return Err(invalid(
            "x-amz-server-side-encryption is not valid on a GET or HEAD request",
        ));
    }
    Ok(())
}

/// Sets the headers that say how `data` is stored: `AES256` for SSE-S3; for SSE-C the
/// algorithm and the MD5 of the key the request gave (`key`).
pub fn report(h: &mut HeaderMap, data: &ObjectData, key: Option<&CustomerKey>) {
    match data.encryption() {
        Encryption::None => {}
        Encryption::Managed => set(h, SSE, AES256),
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
