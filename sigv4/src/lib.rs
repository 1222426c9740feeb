//! Server-side request authentication for Cairn's S3 API: AWS Signature Version 4
//! (SigV4) for S3, the legacy Signature Version 2 (SigV2), `aws-chunked` streaming bodies
//! and body integrity checks.
//!
//! The crate knows nothing of HTTP servers; it works on plain request parts and on byte
//! streams (`futures::Stream<Item = Result<Bytes, _>>`).
//!
//! A typical PUT goes through three steps:
//!
//! 1. [`authenticate`] the request head ([`RequestParts`]): header-signed
//!    (`Authorization: AWS4-HMAC-SHA256 ...`) or presigned (`X-Amz-*` query parameters),
//!    or SigV2 (`Authorization: AWS AKID:signature`, or `AWSAccessKeyId` / `Signature` /
//!    `Expires` query parameters as in boto3's default presigned URLs; HMAC-SHA1, no
//!    region, body unsigned). The result tells the caller who signed, in which region, and how the body is
//!    protected ([`PayloadMode`]). [`Authenticated::Anonymous`] is returned for requests
//!    without any authentication: the caller decides what to do with them.
//! 2. For the streaming payload modes, decode the `aws-chunked` body with
//!    [`decode_aws_chunked`] (verifying chunk and trailer signatures as data flows).
//! 3. Wrap the (decoded) body with [`verify_body`], which checks `x-amz-content-sha256`,
//!    `Content-MD5` and `x-amz-checksum-*` (header or trailer) and reports a mismatch as
//!    the stream's last item, before its end.
//!
//! ```ignore
//! let auth = cairn_sigv4::authenticate(&parts, &secrets, OffsetDateTime::now_utc())?;
//! let Authenticated::Signed { payload, chunk_ctx, .. } = auth else { return deny() };
//! let (body, slot) = match ChunkMode::from_payload(payload) {
//!     Some(mode) => {
//!         let dec = decode_aws_chunked(raw_body, mode, chunk_ctx, trailer_names(headers))
//!             .with_decoded_length(decoded_len);
//!         let slot = dec.trailer_slot();
//!         (dec.boxed(), Some(slot))
//!     }
//!     None => (raw_body.map_err(|e| AuthError::Transport(e.to_string())).boxed(), None),
//! };
//! let expect = BodyExpectations::from_headers(headers, payload, slot.as_ref())?;
//! let (body, handle) = verify_body(body, expect);
//! // ... store `body`; commit only if it ended without error; then `handle.get()`.
//! ```
//!
//! Browser form uploads (POST Object) sign their policy document instead of the request:
//! [`verify_post_policy`] checks such a signature, [`sign_post_policy_v4`] and
//! [`sign_post_policy_v2`] make one.
//!
//! Every failure is an [`AuthError`], whose [`AuthError::s3_code`] and
//! [`AuthError::http_status`] give the S3 error to answer with.

mod canonical;
mod checksum;
mod chunked;
mod dates;
mod error;
mod post;
mod sigv2;
mod verify;

#[cfg(test)]
mod tests;

pub use canonical::EMPTY_SHA256_HEX;
pub use checksum::{
    trailer_names, verify_body, BodyExpectations, ChecksumAlgorithm, Checksummer, ExpectedChecksum,
    VerifiedBody, VerifiedHandle, VerifyBody,
};
pub use chunked::{
    decode_aws_chunked, AwsChunkedDecoder, ChunkMode, TrailerSlot, Trailers, DEFAULT_MAX_CHUNK_SIZE,
};
pub use dates::{MAX_PRESIGNED_EXPIRES, MAX_SKEW};
pub use error::AuthError;
pub use post::{
    post_credential, sign_post_policy_v2, sign_post_policy_v4, verify_post_policy, PostSignature,
    POST_ALGORITHM,
};
pub use verify::{
    authenticate, Authenticated, ChunkSigningContext, PayloadMode, RequestParts, SecretLookup,
};
