//! Streaming decoder of `aws-chunked` request bodies (`Content-Encoding: aws-chunked`).
//!
//! Wire format (every line ends with CRLF):
//!
//! ```text
//! <hex-size>[;chunk-signature=<64 hex>]\r\n<data>\r\n      (repeated)
//! 0[;chunk-signature=<64 hex>]\r\n                          (final chunk)
//! <trailer-name>:<value>\r\n                                (0..n trailers)
//! [x-amz-trailer-signature:<64 hex>\r\n]                    (signed-trailer mode)
//! \r\n
//! ```
//!
//! Chunk signatures chain from the request signature:
//! `HMAC(key, "AWS4-HMAC-SHA256-PAYLOAD\n{datetime}\n{scope}\n{previous}\n{sha256("")}\n{sha256(data)}")`,
//! and the trailer signature is
//! `HMAC(key, "AWS4-HMAC-SHA256-TRAILER\n{datetime}\n{scope}\n{final chunk sig}\n{sha256(trailers)}")`
//! where `trailers` is `name:value\n` per trailer, sorted by name.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures::Stream;
use sha2::{Digest, Sha256};

use crate::canonical::{is_hex64, sha256_hex, sign_hex, signatures_equal, EMPTY_SHA256_HEX};
use crate::{AuthError, ChunkSigningContext, PayloadMode};

/// Default largest chunk accepted in the signed modes (each chunk is buffered once, the
/// buffer growing as the chunk's data arrives).
pub const DEFAULT_MAX_CHUNK_SIZE: usize = 16 << 20;
const MAX_LINE: usize = 4096;
const MAX_TRAILER_BYTES: usize = 16 << 10;
const TRAILER_SIGNATURE: &str = "x-amz-trailer-signature";

/// Which flavour of `aws-chunked` the body uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkMode {
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: signed chunks, no trailers.
    Signed,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`: signed chunks and signed trailers.
    SignedTrailer,
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: unsigned chunks, unsigned trailers.
    UnsignedTrailer,
}

impl ChunkMode {
    /// The chunk mode of a streaming payload mode; `None` for non-streaming modes.
    pub fn from_payload(mode: PayloadMode) -> Option<Self> {
        match mode {
            PayloadMode::StreamingSigned => Some(ChunkMode::Signed),
            PayloadMode::StreamingSignedTrailer => Some(ChunkMode::SignedTrailer),
            PayloadMode::StreamingUnsignedTrailer => Some(ChunkMode::UnsignedTrailer),
            PayloadMode::Unsigned | PayloadMode::Sha256(_) => None,
        }
    }

    fn signed(self) -> bool {
        matches!(self, ChunkMode::Signed | ChunkMode::SignedTrailer)
    }
}

/// Shared slot through which the decoder hands the (verified) trailers to whoever needs
/// them (e.g. [`crate::verify_body`]). Filled just before the decoder's stream ends.
#[derive(Debug, Clone, Default)]
pub struct TrailerSlot(Arc<Mutex<Option<Trailers>>>);

/// Trailer `(lowercase name, value)` pairs in arrival order.
pub type Trailers = Vec<(String, String)>;

impl TrailerSlot {
    /// An empty slot.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of trailer `name` (lowercase), once the trailers have been read.
    pub fn get(&self, name: &str) -> Option<String> {
        let guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        guard
            .as_ref()?
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    /// All trailers (lowercase names) once read; `None` before the body was fully decoded.
    pub fn all(&self) -> Option<Vec<(String, String)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, trailers: Vec<(String, String)>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(trailers);
    }
}

enum State {
    /// Expecting a chunk header line.
    Header,
    /// Inside a chunk's data: `remaining` bytes still to come.
    Data {
        remaining: usize,
        signature: Option<String>,
    },
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// Reading trailer lines up to the empty line.
    Trailers,
    /// Terminator seen; only the end of the input may follow.
    Done,
    /// Stream ended (cleanly or after yielding an error).
    Finished,
}

/// The `aws-chunked` decoding stream returned by [`decode_aws_chunked`]: yields the decoded
/// object bytes, each chunk only after its signature verified; a framing, signature or
/// length error is yielded once as the last item.
pub struct AwsChunkedDecoder<S> {
    inner: Pin<Box<S>>,
    mode: ChunkMode,
    ctx: Option<ChunkSigningContext>,
    prev_signature: String,
    trailer_names: Vec<String>,
    trailers: Vec<(String, String)>,
    trailer_bytes: usize,
    slot: TrailerSlot,
    decoded_length: Option<u64>,
    max_chunk_size: usize,
    seen: u64,
    buf: BytesMut,
    eof: bool,
    state: State,
}

/// Decodes an `aws-chunked` body.
///
/// `ctx` is required for the signed modes (else the first item is an `InvalidRequest`
/// error); `trailer_names` are the names announced in `x-amz-trailer` (each must arrive).
/// Errors of `inner` become [`AuthError::Transport`]; an early end is
/// [`AuthError::IncompleteBody`]; bad framing is [`AuthError::InvalidChunk`]; a bad chunk or
/// trailer signature is [`AuthError::SignatureDoesNotMatch`].
pub fn decode_aws_chunked<S, E>(
    inner: S,
    mode: ChunkMode,
    ctx: Option<ChunkSigningContext>,
    trailer_names: Vec<String>,
) -> AwsChunkedDecoder<S>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::fmt::Display,
{
    let prev_signature = ctx
        .as_ref()
        .map(|c| c.seed_signature.clone())
        .unwrap_or_default();
    AwsChunkedDecoder {
        inner: Box::pin(inner),
        mode,
        ctx,
        prev_signature,
        trailer_names: trailer_names
            .into_iter()
            .map(|n| n.trim().to_ascii_lowercase())
            .filter(|n| !n.is_empty())
            .collect(),
        trailers: Vec::new(),
        trailer_bytes: 0,
        slot: TrailerSlot::new(),
        decoded_length: None,
        max_chunk_size: DEFAULT_MAX_CHUNK_SIZE,
        seen: 0,
        buf: BytesMut::new(),
        eof: false,
        state: State::Header,
    }
}

impl<S> AwsChunkedDecoder<S> {
    /// Checks the decoded length against `x-amz-decoded-content-length`: fewer bytes is
    /// `IncompleteBody`, more is `InvalidRequest`.
    pub fn with_decoded_length(mut self, length: Option<u64>) -> Self {
        self.decoded_length = length;
        self
    }

    /// Changes the largest chunk accepted in the signed modes (default 16 MiB).
    pub fn with_max_chunk_size(mut self, max: usize) -> Self {
        self.max_chunk_size = max;
        self
    }

    /// The capacity of the input buffer (tests check it does not follow declared sizes).
    #[cfg(test)]
    pub(crate) fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The slot that receives the trailers when the body has been decoded.
    pub fn trailer_slot(&self) -> TrailerSlot {
        self.slot.clone()
    }

    /// One step of parsing over the buffered input: `Ok(Some(bytes))` to yield,
    /// `Ok(None)` when more input is needed (or the stream is finished).
    fn step(&mut self) -> Result<Option<Bytes>, AuthError> {
        loop {
            match &mut self.state {
                State::Header => {
                    let Some(line) = self.take_line()? else {
                        return Ok(None);
                    };
                    self.start_chunk(&line)?;
                }
                State::Data {
                    remaining,
                    signature,
                } => {
                    if signature.is_some() {
                        // Signed: buffer the whole chunk, verify, then release it.
                        if self.buf.len() < *remaining {
                            return Ok(None);
                        }
                        let data = self.buf.split_to(*remaining).freeze();
                        let sig = signature.take().unwrap_or_default();
                        self.verify_chunk(&data, &sig)?;
                        self.state = State::DataEnd;
                        return Ok(Some(data));
                    }
                    let n = (*remaining).min(self.buf.len());
                    if n == 0 {
                        return Ok(None);
                    }
                    *remaining -= n;
                    if *remaining == 0 {
                        self.state = State::DataEnd;
                    }
                    return Ok(Some(self.buf.split_to(n).freeze()));
                }
                State::DataEnd => {
                    if self.buf.len() < 2 {
                        return Ok(None);
                    }
                    if &self.buf[..2] != b"\r\n" {
                        return Err(invalid("chunk data not followed by CRLF"));
                    }
                    self.buf.advance(2);
                    self.state = State::Header;
                }
                State::Trailers => {
                    let Some(line) = self.take_line()? else {
                        return Ok(None);
                    };
                    if line.is_empty() {
                        self.finish_trailers()?;
                        self.state = State::Done;
                    } else {
                        self.add_trailer(&line)?;
                    }
                }
                State::Done => {
                    // Tolerate stray CR/LF after the terminator, nothing else.
                    if self.buf.iter().any(|b| !matches!(b, b'\r' | b'\n')) {
                        return Err(invalid("data after the final chunk"));
                    }
                    self.buf.clear();
                    if self.eof {
                        self.state = State::Finished;
                    }
                    return Ok(None);
                }
                State::Finished => return Ok(None),
            }
        }
    }

    /// Takes one CRLF-terminated line (without the CRLF) from the buffer.
    fn take_line(&mut self) -> Result<Option<String>, AuthError> {
        let Some(pos) = self.buf.windows(2).position(|w| w == b"\r\n") else {
            if self.buf.len() > MAX_LINE {
                return Err(invalid("line too long"));
            }
            return Ok(None);
        };
        if pos > MAX_LINE {
            return Err(invalid("line too long"));
        }
        let line = self.buf.split_to(pos);
        self.buf.advance(2);
        String::from_utf8(line.to_vec())
            .map(Some)
            .map_err(|_| invalid("line is not valid UTF-8"))
    }

    fn start_chunk(&mut self, line: &str) -> Result<(), AuthError> {
        let (size_hex, ext) = match line.split_once(';') {
            Some((s, e)) => (s, Some(e)),
            None => (line, None),
        };
        if size_hex.is_empty()
            || size_hex.len() > 16
            || !size_hex.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(invalid("bad chunk size"));
        }
        let size = u64::from_str_radix(size_hex, 16).map_err(|_| invalid("bad chunk size"))?;
        let signature = if self.mode.signed() {
            let sig = ext
                .and_then(|e| e.strip_prefix("chunk-signature="))
                .filter(|s| is_hex64(s))
                .ok_or_else(|| invalid("missing or malformed chunk-signature"))?;
            Some(sig.to_owned())
        } else {
            None
        };
        let limit = if self.mode.signed() {
            self.max_chunk_size as u64
        } else {
            u64::MAX
        };
        if size > limit {
            return Err(invalid("chunk too large"));
        }
        self.seen = self.seen.saturating_add(size);
        if let Some(expected) = self.decoded_length {
            if self.seen > expected {
                return Err(AuthError::InvalidRequest(
                    "body is longer than x-amz-decoded-content-length".into(),
                ));
            }
        }
        if size == 0 {
            if let Some(sig) = signature {
                self.verify_chunk(&[], &sig)?;
            }
            self.state = State::Trailers;
            return Ok(());
        }
        // The size fits in usize: signed sizes are capped, unsigned ones stream.
        let remaining = usize::try_from(size).map_err(|_| invalid("chunk too large"))?;
        if signature.is_some() {
            // Only a little up front: the declared size is the client's word, and the
            // buffer grows with the data that actually arrives.
            self.buf
                .reserve(upfront_reservation(remaining, self.buf.len()));
        }
        self.state = State::Data {
            remaining,
            signature,
        };
        Ok(())
    }

    fn ctx(&self) -> Result<&ChunkSigningContext, AuthError> {
        self.ctx.as_ref().ok_or_else(|| {
            AuthError::InvalidRequest("signed aws-chunked body without a signing context".into())
        })
    }

    fn verify_chunk(&mut self, data: &[u8], provided: &str) -> Result<(), AuthError> {
        let ctx = self.ctx()?;
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{}\n{EMPTY_SHA256_HEX}\n{}",
            ctx.datetime,
            ctx.scope,
            self.prev_signature,
            hex::encode(Sha256::digest(data))
        );
        let computed = sign_hex(&ctx.signing_key, sts.as_bytes());
        if !signatures_equal(&computed, provided) {
            return Err(AuthError::SignatureDoesNotMatch);
        }
        self.prev_signature = computed;
        Ok(())
    }

    fn add_trailer(&mut self, line: &str) -> Result<(), AuthError> {
        if self.mode == ChunkMode::Signed {
            return Err(invalid("trailers are not allowed in this payload mode"));
        }
        self.trailer_bytes += line.len() + 2;
        if self.trailer_bytes > MAX_TRAILER_BYTES || self.trailers.len() >= 64 {
            return Err(invalid("trailers too large"));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid("malformed trailer line"))?;
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() {
            return Err(invalid("malformed trailer line"));
        }
        self.trailers.push((name, value.trim().to_owned()));
        Ok(())
    }

    fn finish_trailers(&mut self) -> Result<(), AuthError> {
        let sig_pos = self
            .trailers
            .iter()
            .position(|(n, _)| n == TRAILER_SIGNATURE);
        let signature = sig_pos.map(|p| self.trailers.remove(p).1);
        match (self.mode, signature) {
            (ChunkMode::SignedTrailer, Some(sig)) => self.verify_trailer(&sig)?,
            (ChunkMode::SignedTrailer, None) if !self.trailers.is_empty() => {
                return Err(invalid("missing x-amz-trailer-signature"));
            }
            (ChunkMode::UnsignedTrailer, Some(_)) => {
                return Err(invalid("unexpected x-amz-trailer-signature"));
            }
            _ => {}
        }
        if let Some(missing) = self
            .trailer_names
            .iter()
            .find(|n| !self.trailers.iter().any(|(t, _)| t == *n))
        {
            return Err(AuthError::InvalidRequest(format!(
                "the trailer {missing} announced in x-amz-trailer was not sent"
            )));
        }
        if let Some(expected) = self.decoded_length {
            if self.seen != expected {
                return Err(AuthError::IncompleteBody);
            }
        }
        self.slot.set(std::mem::take(&mut self.trailers));
        Ok(())
    }

    fn verify_trailer(&mut self, provided: &str) -> Result<(), AuthError> {
        let mut sorted: Vec<&(String, String)> = self.trailers.iter().collect();
        sorted.sort();
        let mut canonical = String::new();
        for (n, v) in sorted {
            canonical.push_str(n);
            canonical.push(':');
            canonical.push_str(v);
            canonical.push('\n');
        }
        let ctx = self.ctx()?;
        let sts = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{}\n{}",
            ctx.datetime,
            ctx.scope,
            self.prev_signature,
            sha256_hex(canonical.as_bytes())
        );
        if !signatures_equal(&sign_hex(&ctx.signing_key, sts.as_bytes()), provided) {
            return Err(AuthError::SignatureDoesNotMatch);
        }
        Ok(())
    }
}

/// The most buffer space reserved for a signed chunk before its data arrives.
pub(crate) const MAX_UPFRONT_RESERVATION: usize = 64 << 10;

/// How much buffer space to reserve when a signed chunk of `declared` bytes starts with
/// `buffered` bytes already at hand: what is still missing, but at most
/// [`MAX_UPFRONT_RESERVATION`], so that a header announcing a large chunk costs memory only
/// as its data is received.
pub(crate) fn upfront_reservation(declared: usize, buffered: usize) -> usize {
    declared
        .saturating_sub(buffered)
        .min(MAX_UPFRONT_RESERVATION)
}

fn invalid(msg: &str) -> AuthError {
    AuthError::InvalidChunk(msg.to_owned())
}

impl<S, E> Stream for AwsChunkedDecoder<S>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: std::fmt::Display,
{
    type Item = Result<Bytes, AuthError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if matches!(this.state, State::Finished) {
                return Poll::Ready(None);
            }
            match this.step() {
                Ok(Some(data)) => return Poll::Ready(Some(Ok(data))),
                Err(e) => {
                    this.state = State::Finished;
                    return Poll::Ready(Some(Err(e)));
                }
                Ok(None) => {}
            }
            if matches!(this.state, State::Finished) {
                return Poll::Ready(None);
            }
            if this.eof {
                // Input ended before the terminator.
                this.state = State::Finished;
                return Poll::Ready(Some(Err(AuthError::IncompleteBody)));
            }
            match this.inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(bytes))) => this.buf.extend_from_slice(&bytes),
                Poll::Ready(Some(Err(e))) => {
                    this.state = State::Finished;
                    return Poll::Ready(Some(Err(AuthError::Transport(e.to_string()))));
                }
                Poll::Ready(None) => this.eof = true,
            }
        }
    }
}
