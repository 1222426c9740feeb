//! Authentication glue: the key ring, SigV4 verification of each request, and the body
//! pipeline (aws-chunked decoding and integrity checks) that every body passes through.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::extract::Request;
use bytes::{Bytes, BytesMut};
use cairn_sigv4::{
    decode_aws_chunked, trailer_names, verify_body, AuthError, Authenticated, BodyExpectations,
    ChecksumAlgorithm, ChunkMode, ChunkSigningContext, ExpectedChecksum, PayloadMode, RequestParts,
    SecretLookup, VerifiedHandle,
};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use time::OffsetDateTime;

use crate::error::{S3Error, S3ErrorCode};
use crate::ApiState;

/// The access keys the gateway accepts (access key → secret), kept in memory and loaded
/// from metadata at start.
#[derive(Clone, Default)]
pub struct KeyRing(Arc<RwLock<HashMap<String, String>>>);

impl KeyRing {
    pub fn insert(&self, access_key: String, secret: String) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(access_key, secret);
    }
}

impl SecretLookup for KeyRing {
    fn secret_key(&self, access_key: &str) -> Option<String> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(access_key)
            .cloned()
    }
}

/// Who sent a request and how its body is protected.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The access key that signed the request; `None` for an anonymous (unsigned) one.
    pub access_key: Option<String>,
    pub payload: PayloadMode,
    chunk_ctx: Option<ChunkSigningContext>,
}

impl Caller {
    /// The caller of a CORS preflight: anonymous, without a body.
    pub fn preflight() -> Caller {
        Caller {
            access_key: None,
            payload: PayloadMode::Unsigned,
            chunk_ctx: None,
        }
    }

    pub fn is_anonymous(&self) -> bool {
        self.access_key.is_none()
    }

    /// The signing access key, or AccessDenied for an anonymous request (operations only
    /// keys can do: listing one's buckets, creating a bucket).
    pub fn require_key(&self) -> Result<&str, S3Error> {
        self.access_key
            .as_deref()
            .ok_or_else(|| S3Error::new(S3ErrorCode::AccessDenied, "Access Denied"))
    }
}

/// Authenticates `req`: a valid signature names its key; a request without any
/// authentication is anonymous (what it may do is for the ACLs to say). A bad signature is
/// an error, never anonymous.
pub fn authenticate(st: &ApiState, req: &Request) -> Result<Caller, S3Error> {
    let parts = RequestParts {
        method: req.method().as_str(),
        raw_path: req.uri().path(),
        raw_query: req.uri().query(),
        headers: req.headers(),
    };
    match cairn_sigv4::authenticate(&parts, &st.keys, OffsetDateTime::now_utc())? {
        Authenticated::Anonymous => Ok(Caller {
            access_key: None,
            payload: anonymous_payload(req)?,
            chunk_ctx: None,
        }),
        Authenticated::Signed {
            access_key,
            payload,
            chunk_ctx,
            ..
        } => Ok(Caller {
            access_key: Some(access_key),
            payload,
            chunk_ctx,
        }),
    }
}

/// How an unsigned request's body is framed: plain (optionally with its SHA-256 in
/// `x-amz-content-sha256`, verified), or aws-chunked with unsigned chunks and a checksum
/// trailer. Signed streaming modes need a signature.
fn anonymous_payload(req: &Request) -> Result<PayloadMode, S3Error> {
    let Some(v) = req.headers().get("x-amz-content-sha256") else {
        return Ok(PayloadMode::Unsigned);
    };
    let mode = PayloadMode::parse(v.to_str().unwrap_or("").trim())?;
    match mode {
        PayloadMode::StreamingSigned | PayloadMode::StreamingSignedTrailer => Err(S3Error::new(
            S3ErrorCode::AccessDenied,
            "A signed streaming payload needs a signed request",
        )),
        m => Ok(m),
    }
}

/// The request body, decoded and checked: aws-chunked framing removed (chunk and trailer
/// signatures verified), and `x-amz-content-sha256`, `Content-MD5` and `x-amz-checksum-*`
/// verified, with any mismatch surfacing as the stream's last item. The handle tells which
/// checksum was verified once the stream has ended cleanly.
pub fn body_stream(
    caller: &Caller,
    req: Request,
) -> Result<(BoxStream<'static, Result<Bytes, AuthError>>, BodyChecks), S3Error> {
    body_stream_with(caller, req, None)
}

/// [`body_stream`], computing `default_checksum` when the request names no checksum of its
/// own (a part of an upload created with `x-amz-checksum-algorithm`).
pub fn body_stream_with(
    caller: &Caller,
    req: Request,
    default_checksum: Option<ChecksumAlgorithm>,
) -> Result<(BoxStream<'static, Result<Bytes, AuthError>>, BodyChecks), S3Error> {
    let (parts, body) = req.into_parts();
    let raw = body.into_data_stream();
    let (stream, slot) = match ChunkMode::from_payload(caller.payload) {
        Some(mode) => {
            let decoded_len = parts
                .headers
                .get("x-amz-decoded-content-length")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let dec = decode_aws_chunked(
                raw,
                mode,
                caller.chunk_ctx.clone(),
                trailer_names(&parts.headers),
            )
            .with_decoded_length(decoded_len);
            let slot = dec.trailer_slot();
            (dec.boxed(), Some(slot))
        }
        None => (
            raw.map_err(|e| AuthError::Transport(e.to_string())).boxed(),
            None,
        ),
    };
    let mut expect = BodyExpectations::from_headers(&parts.headers, caller.payload, slot.as_ref())?;
    if expect.checksum.is_none() {
        expect.checksum = default_checksum.map(|a| (a, ExpectedChecksum::ComputeOnly));
    }
    let (stream, handle) = verify_body(stream, expect);
    Ok((stream.boxed(), BodyChecks(handle)))
}

/// What the body checks established, readable after the body ended cleanly.
pub struct BodyChecks(VerifiedHandle);

impl BodyChecks {
    /// The additional checksum (S3 algorithm name such as `CRC32C`, base64 value).
    pub fn checksum(&self) -> Option<(&'static str, String)> {
        self.0
            .get()
            .and_then(|v| v.checksum)
            .map(|(alg, value)| (alg.name(), value))
    }
}

/// Reads a small request body (XML documents) through the same checks, refusing more than
/// `limit` bytes.
pub async fn read_small_body(
    caller: &Caller,
    req: Request,
    limit: usize,
) -> Result<Bytes, S3Error> {
    let (mut stream, _) = body_stream(caller, req)?;
    let mut buf = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if buf.len() + chunk.len() > limit {
            return Err(S3Error::new(
                S3ErrorCode::InvalidRequest,
                format!("the request body is larger than {limit} bytes"),
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}
