//! Body integrity: S3 additional checksums (`x-amz-checksum-*`), `Content-MD5` and the
//! signed `x-amz-content-sha256`, verified while the body streams through.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use crc_fast::{CrcAlgorithm, Digest as CrcDigest};
use futures::Stream;
use http::HeaderMap;
use md5::Md5;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::{AuthError, PayloadMode, TrailerSlot};

/// An S3 additional-checksum algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumAlgorithm {
    /// CRC-32 (ISO-HDLC, as zlib), 4 bytes.
    Crc32,
    /// CRC-32C (Castagnoli / iSCSI), 4 bytes.
    Crc32c,
    /// CRC-64/NVME, 8 bytes.
    Crc64Nvme,
    /// SHA-1, 20 bytes.
    Sha1,
    /// SHA-256, 32 bytes.
    Sha256,
}

impl ChecksumAlgorithm {
    /// All algorithms.
    pub const ALL: [ChecksumAlgorithm; 5] = [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32c,
        ChecksumAlgorithm::Crc64Nvme,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
    ];

    /// Parses a header (or trailer) name such as `x-amz-checksum-crc32` (case-insensitive).
    pub fn from_header_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.header_name().eq_ignore_ascii_case(name.trim()))
    }

    /// Parses an algorithm name as in `x-amz-sdk-checksum-algorithm` (`CRC32`, `CRC64NVME`...;
    /// case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The header carrying this checksum, e.g. `x-amz-checksum-crc32`.
    pub fn header_name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "x-amz-checksum-crc32",
            ChecksumAlgorithm::Crc32c => "x-amz-checksum-crc32c",
            ChecksumAlgorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
            ChecksumAlgorithm::Sha1 => "x-amz-checksum-sha1",
            ChecksumAlgorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// The S3 name, e.g. `CRC32` (as in `ChecksumAlgorithm` XML elements).
    pub fn name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "CRC32",
            ChecksumAlgorithm::Crc32c => "CRC32C",
            ChecksumAlgorithm::Crc64Nvme => "CRC64NVME",
            ChecksumAlgorithm::Sha1 => "SHA1",
            ChecksumAlgorithm::Sha256 => "SHA256",
        }
    }

    /// Length of the raw (not base64) digest in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c => 4,
            ChecksumAlgorithm::Crc64Nvme => 8,
            ChecksumAlgorithm::Sha1 => 20,
            ChecksumAlgorithm::Sha256 => 32,
        }
    }

    /// Decodes a base64 checksum value, checking its length.
    pub fn decode_value(self, value: &str) -> Option<Vec<u8>> {
        BASE64
            .decode(value.trim())
            .ok()
            .filter(|raw| raw.len() == self.digest_len())
    }
}

enum Inner {
    Crc32(CrcDigest),
    Crc64(CrcDigest),
    Sha1(Sha1),
    Sha256(Sha256),
}

/// Streaming computation of one [`ChecksumAlgorithm`].
pub struct Checksummer {
    algorithm: ChecksumAlgorithm,
    inner: Inner,
}

impl Checksummer {
    /// A fresh checksum state.
    pub fn new(algorithm: ChecksumAlgorithm) -> Self {
        let inner = match algorithm {
            ChecksumAlgorithm::Crc32 => Inner::Crc32(CrcDigest::new(CrcAlgorithm::Crc32IsoHdlc)),
            ChecksumAlgorithm::Crc32c => Inner::Crc32(CrcDigest::new(CrcAlgorithm::Crc32Iscsi)),
            ChecksumAlgorithm::Crc64Nvme => Inner::Crc64(CrcDigest::new(CrcAlgorithm::Crc64Nvme)),
            ChecksumAlgorithm::Sha1 => Inner::Sha1(Sha1::new()),
            ChecksumAlgorithm::Sha256 => Inner::Sha256(Sha256::new()),
        };
        Checksummer { algorithm, inner }
    }

    /// The algorithm computed.
    pub fn algorithm(&self) -> ChecksumAlgorithm {
        self.algorithm
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.inner {
            Inner::Crc32(d) | Inner::Crc64(d) => d.update(data),
            Inner::Sha1(d) => d.update(data),
            Inner::Sha256(d) => d.update(data),
        }
    }

    /// The raw digest (big-endian for the CRCs).
    pub fn finalize_raw(self) -> Vec<u8> {
        match self.inner {
            // A 32-bit CRC occupies the low 4 bytes of the u64.
            Inner::Crc32(d) => d.finalize().to_be_bytes()[4..].to_vec(),
            Inner::Crc64(d) => d.finalize().to_be_bytes().to_vec(),
            Inner::Sha1(d) => d.finalize().to_vec(),
            Inner::Sha256(d) => d.finalize().to_vec(),
        }
    }

    /// The digest as S3 transmits it: base64 of the raw digest.
    pub fn finalize(self) -> String {
        BASE64.encode(self.finalize_raw())
    }
}

/// Where the expected value of an additional checksum comes from.
#[derive(Debug, Clone)]
pub enum ExpectedChecksum {
    /// A base64 value from an `x-amz-checksum-*` request header.
    Header(String),
    /// The value arrives in an aws-chunked trailer (read from the slot at the end).
    Trailer(TrailerSlot),
    /// Nothing to compare; compute it anyway (to store it).
    ComputeOnly,
}

/// What [`verify_body`] checks. Build with [`BodyExpectations::from_headers`] or by hand.
#[derive(Debug, Clone, Default)]
pub struct BodyExpectations {
    /// The signed `x-amz-content-sha256` (payload mode `Sha256`).
    pub sha256: Option<[u8; 32]>,
    /// The `Content-MD5` digest.
    pub content_md5: Option<[u8; 16]>,
    /// Also compute the MD5 when no `Content-MD5` was sent (e.g. for the ETag).
    pub compute_md5: bool,
    /// An additional checksum to verify or compute.
    pub checksum: Option<(ChecksumAlgorithm, ExpectedChecksum)>,
    /// The exact body length expected (e.g. `Content-Length` of a non-chunked body).
    pub length: Option<u64>,
}

impl BodyExpectations {
    /// Reads `Content-MD5`, `x-amz-checksum-*`, `x-amz-trailer` and
    /// `x-amz-sdk-checksum-algorithm` from the request headers, and the SHA-256 from the
    /// payload mode. `trailers` is the decoder's [`TrailerSlot`] for trailer modes.
    pub fn from_headers(
        headers: &HeaderMap,
        payload: PayloadMode,
        trailers: Option<&TrailerSlot>,
    ) -> Result<Self, AuthError> {
        let mut out = BodyExpectations {
            sha256: match payload {
                PayloadMode::Sha256(h) => Some(h),
                _ => None,
            },
            ..Default::default()
        };
        if let Some(v) = headers.get("content-md5") {
            let raw = v
                .to_str()
                .ok()
                .and_then(|s| BASE64.decode(s.trim()).ok())
                .ok_or(AuthError::InvalidDigest)?;
            out.content_md5 = Some(raw.try_into().map_err(|_| AuthError::InvalidDigest)?);
        }
        let multiple = || {
            AuthError::InvalidRequest(
                "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."
                    .into(),
            )
        };
        for alg in ChecksumAlgorithm::ALL {
            let Some(v) = headers.get(alg.header_name()) else {
                continue;
            };
            if out.checksum.is_some() {
                return Err(multiple());
            }
            // A value that cannot be the algorithm's digest can never match the body: S3
            // answers it as a bad digest (ceph s3-tests `test_object_checksum_sha256`).
            let invalid = || {
                AuthError::BadDigest(format!(
                    "The {} you specified is not a valid {} digest.",
                    alg.header_name(),
                    alg.header_name().trim_start_matches("x-amz-checksum-")
                ))
            };
            let value = v.to_str().map_err(|_| invalid())?.trim().to_owned();
            alg.decode_value(&value).ok_or_else(invalid)?;
            out.checksum = Some((alg, ExpectedChecksum::Header(value)));
        }
        let trailer_mode = matches!(
            payload,
            PayloadMode::StreamingSignedTrailer | PayloadMode::StreamingUnsignedTrailer
        );
        if let (true, Some(slot)) = (trailer_mode, trailers) {
            for name in trailer_names(headers) {
                if let Some(alg) = ChecksumAlgorithm::from_header_name(&name) {
                    if out.checksum.is_some() {
                        return Err(multiple());
                    }
                    out.checksum = Some((alg, ExpectedChecksum::Trailer(slot.clone())));
                }
            }
        }
        if out.checksum.is_none() {
            let sdk_alg = headers
                .get("x-amz-sdk-checksum-algorithm")
                .and_then(|v| v.to_str().ok())
                .and_then(ChecksumAlgorithm::from_name);
            out.checksum = sdk_alg.map(|a| (a, ExpectedChecksum::ComputeOnly));
        }
        Ok(out)
    }
}

/// The lowercase names listed in the `x-amz-trailer` header(s).
pub fn trailer_names(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("x-amz-trailer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect()
}

/// What [`verify_body`] established once the body ended cleanly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBody {
    /// Body length in bytes.
    pub length: u64,
    /// The additional checksum (algorithm, base64 value) — verified unless it was
    /// [`ExpectedChecksum::ComputeOnly`].
    pub checksum: Option<(ChecksumAlgorithm, String)>,
    /// The body MD5, when `Content-MD5` was sent or `compute_md5` was set.
    pub md5: Option<[u8; 16]>,
}

/// Read-after-the-end access to what [`verify_body`] verified.
#[derive(Debug, Clone, Default)]
pub struct VerifiedHandle(Arc<Mutex<Option<VerifiedBody>>>);

impl VerifiedHandle {
    /// `Some` only after the stream ended cleanly (all checks passed).
    pub fn get(&self) -> Option<VerifiedBody> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The stream returned by [`verify_body`].
pub struct VerifyBody<S> {
    inner: Pin<Box<S>>,
    expected: BodyExpectations,
    sha256: Option<Sha256>,
    md5: Option<Md5>,
    checksum: Option<Checksummer>,
    length: u64,
    handle: VerifiedHandle,
    done: bool,
}

/// Passes the body through while hashing it; when `inner` ends, compares the results with
/// `expected` and, on a mismatch, yields the error as the **last item before the end** (so a
/// consumer that commits only after a clean end never stores a bad body). Errors of `inner`
/// are passed through and end the stream. After a clean end, the [`VerifiedHandle`] holds
/// the verified values.
///
/// Mismatches: length → `IncompleteBody`; SHA-256 → `ContentSha256Mismatch`; MD5 and
/// additional checksums → `BadDigest`.
pub fn verify_body<S>(inner: S, expected: BodyExpectations) -> (VerifyBody<S>, VerifiedHandle)
where
    S: Stream<Item = Result<Bytes, AuthError>>,
{
    let handle = VerifiedHandle::default();
    let stream = VerifyBody {
        inner: Box::pin(inner),
        sha256: expected.sha256.map(|_| Sha256::new()),
        md5: (expected.content_md5.is_some() || expected.compute_md5).then(Md5::new),
        checksum: expected
            .checksum
            .as_ref()
            .map(|(a, _)| Checksummer::new(*a)),
        expected,
        length: 0,
        handle: handle.clone(),
        done: false,
    };
    (stream, handle)
}

impl<S> VerifyBody<S> {
    fn finish(&mut self) -> Result<(), AuthError> {
        if let Some(want) = self.expected.length {
            if self.length != want {
                return Err(AuthError::IncompleteBody);
            }
        }
        if let (Some(want), Some(h)) = (self.expected.sha256, self.sha256.take()) {
            if h.finalize().as_slice() != want.as_slice() {
                return Err(AuthError::ContentSha256Mismatch);
            }
        }
        let md5: Option<[u8; 16]> = self.md5.take().map(|h| h.finalize().into());
        if let (Some(want), Some(got)) = (self.expected.content_md5, md5) {
            if want != got {
                return Err(AuthError::BadDigest(
                    "The Content-MD5 you specified did not match what we received.".into(),
                ));
            }
        }
        let mut checksum = None;
        if let (Some((alg, expected)), Some(c)) = (&self.expected.checksum, self.checksum.take()) {
            let raw = c.finalize_raw();
            let want = match expected {
                ExpectedChecksum::Header(v) => Some(v.clone()),
                ExpectedChecksum::Trailer(slot) => {
                    Some(slot.get(alg.header_name()).ok_or_else(|| {
                        AuthError::InvalidRequest(format!(
                            "the trailer {} was not received",
                            alg.header_name()
                        ))
                    })?)
                }
                ExpectedChecksum::ComputeOnly => None,
            };
            if let Some(want) = want {
                if alg.decode_value(&want).as_deref() != Some(raw.as_slice()) {
                    return Err(AuthError::BadDigest(format!(
                        "The {} you specified did not match the calculated checksum.",
                        alg.name()
                    )));
                }
            }
            checksum = Some((*alg, BASE64.encode(&raw)));
        }
        *self.handle.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(VerifiedBody {
            length: self.length,
            checksum,
            md5,
        });
        Ok(())
    }
}

impl<S> Stream for VerifyBody<S>
where
    S: Stream<Item = Result<Bytes, AuthError>>,
{
    type Item = Result<Bytes, AuthError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match this.inner.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(data))) => {
                this.length += data.len() as u64;
                if let Some(h) = &mut this.sha256 {
                    h.update(&data);
                }
                if let Some(h) = &mut this.md5 {
                    h.update(&data);
                }
                if let Some(c) = &mut this.checksum {
                    c.update(&data);
                }
                Poll::Ready(Some(Ok(data)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.done = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                this.done = true;
                match this.finish() {
                    Ok(()) => Poll::Ready(None),
                    Err(e) => Poll::Ready(Some(Err(e))),
                }
            }
        }
    }
}
