//! A streaming `multipart/form-data` parser (RFC 7578), for browser form uploads.
//!
//! [`FormParser`] is sans-IO: bytes go in with [`FormParser::push`] (and
//! [`FormParser::finish`] once the body has ended), events come out of
//! [`FormParser::next_event`]: a part's head, pieces of its data, its end, the end of the
//! form. A part's data is handed out as soon as it cannot be the start of the next
//! boundary, so memory stays bounded whatever the size of a part: the parser holds at
//! most what was pushed since the last event plus a boundary's length, and refuses a
//! preamble or a part's header block longer than [`MAX_PREAMBLE`] / [`MAX_PART_HEAD`].
//! [`FormReader`] drives it from a body stream.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures::Stream;
use percent_encoding::percent_decode_str;

/// Most bytes before the first boundary.
pub const MAX_PREAMBLE: usize = 8 * 1024;
/// Most bytes of one part's header block.
pub const MAX_PART_HEAD: usize = 8 * 1024;
/// Longest boundary (RFC 2046).
const MAX_BOUNDARY: usize = 70;
/// Most spaces and tabs after a boundary, before its line end.
const MAX_PADDING: usize = 256;

/// Why a form cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    /// Not well-formed `multipart/form-data` (the message says where).
    #[error("{0}")]
    Malformed(String),
    /// The body ended inside the form.
    #[error("the request body ended before the end of the form")]
    Truncated,
}

fn malformed(msg: impl Into<String>) -> FormError {
    FormError::Malformed(msg.into())
}

/// What a part says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartHead {
    /// The form field's name, as sent.
    pub name: String,
    /// The file name, for a file field (`filename=`, or `filename*=UTF-8''…`).
    pub filename: Option<String>,
    /// The part's own `Content-Type`, if any.
    pub content_type: Option<String>,
}

/// One step through a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormEvent {
    /// A part begins.
    Part(PartHead),
    /// A piece of the current part's data (never empty).
    Data(Bytes),
    /// The current part has ended.
    PartEnd,
    /// The closing boundary: the form is complete (what follows is ignored).
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Preamble,
    AfterBoundary,
    Head,
    Body,
    Done,
}

/// The parser (see the module documentation).
#[derive(Debug)]
pub struct FormParser {
    /// `\r\n--boundary`: what ends a part's data.
    delimiter: Vec<u8>,
    buf: BytesMut,
    state: State,
    /// The input has ended.
    finished: bool,
    /// A delimiter was found after data that was handed out: `PartEnd` is next.
    part_ended: bool,
}

/// The boundary of a `multipart/form-data` content type, if it is one.
pub fn boundary(content_type: &str) -> Option<String> {
    let (mime, params) = content_type.split_once(';').unwrap_or((content_type, ""));
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params_of(params)
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v)
        .filter(|b| !b.is_empty() && b.len() <= MAX_BOUNDARY)
}

impl FormParser {
    /// A parser for a form whose parts are separated by `boundary`.
    pub fn new(boundary: &str) -> Result<FormParser, FormError> {
        if boundary.is_empty() || boundary.len() > MAX_BOUNDARY {
            return Err(malformed(
                "the multipart boundary must be 1 to 70 characters",
            ));
        }
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary.as_bytes());
        Ok(FormParser {
            delimiter,
            buf: BytesMut::new(),
            state: State::Preamble,
            finished: false,
            part_ended: false,
        })
    }

    /// More of the body. Nothing may be pushed after [`FormParser::finish`].
    pub fn push(&mut self, bytes: &[u8]) {
        if self.state != State::Done {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// The body has ended.
    pub fn finish(&mut self) {
        self.finished = true;
    }

    /// Whether the parser needs more input before its next event ([`FormParser::next_event`]
    /// answered `Ok(None)`); false once the form is complete.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The next event, or `Ok(None)` when more input is needed. After an error or
    /// [`FormEvent::End`] the parser stays where it is.
    pub fn next_event(&mut self) -> Result<Option<FormEvent>, FormError> {
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::Preamble => {
                    // The first boundary is `--boundary` at the very start, or a delimiter
                    // (`\r\n--boundary`) after a preamble.
                    let first = &self.delimiter[2..];
                    if self.buf.starts_with(first) {
                        self.buf.advance(first.len());
                        self.state = State::AfterBoundary;
                        continue;
                    }
                    // The limits are checked the same way whatever the input's split: a
                    // delimiter that starts within the limit has arrived whole once the
                    // buffer holds the limit and a delimiter's length.
                    if let Some(at) = find(&self.buf, &self.delimiter) {
                        if at > MAX_PREAMBLE {
                            return Err(malformed(
                                "no multipart boundary at the start of the body",
                            ));
                        }
                        self.buf.advance(at + self.delimiter.len());
                        self.state = State::AfterBoundary;
                        continue;
                    }
                    if self.buf.len() >= MAX_PREAMBLE + self.delimiter.len() {
                        return Err(malformed("no multipart boundary at the start of the body"));
                    }
                    return self.need_more();
                }
                State::AfterBoundary => {
                    if self.buf.len() < 2 {
                        return self.need_more();
                    }
                    if self.buf.starts_with(b"--") {
                        self.buf.clear();
                        self.state = State::Done;
                        return Ok(Some(FormEvent::End));
                    }
                    let pad = self
                        .buf
                        .iter()
                        .position(|b| *b != b' ' && *b != b'\t')
                        .unwrap_or(self.buf.len());
                    if pad > MAX_PADDING {
                        return Err(malformed("a multipart boundary line is too long"));
                    }
                    if self.buf.len() < pad + 2 {
                        return self.need_more();
                    }
                    if &self.buf[pad..pad + 2] != b"\r\n" {
                        return Err(malformed("a multipart boundary is not followed by CRLF"));
                    }
                    self.buf.advance(pad + 2);
                    self.state = State::Head;
                }
                State::Head => {
                    // An empty header block is a bare CRLF.
                    let end = if self.buf.starts_with(b"\r\n") {
                        Some((0, 2))
                    } else {
                        find(&self.buf, b"\r\n\r\n").map(|at| (at, at + 4))
                    };
                    let Some((head_len, consumed)) = end else {
                        if self.buf.len() >= MAX_PART_HEAD + 4 {
                            return Err(malformed("a part's headers are too long"));
                        }
                        return self.need_more();
                    };
                    if head_len > MAX_PART_HEAD {
                        return Err(malformed("a part's headers are too long"));
                    }
                    let head = parse_head(&self.buf[..head_len])?;
                    self.buf.advance(consumed);
                    self.state = State::Body;
                    // The delimiter search starts at the data's first byte: an empty part
                    // is immediately followed by `\r\n--boundary`.
                    return Ok(Some(FormEvent::Part(head)));
                }
                State::Body => {
                    if self.part_ended {
                        self.part_ended = false;
                        self.state = State::AfterBoundary;
                        return Ok(Some(FormEvent::PartEnd));
                    }
                    if let Some(at) = find(&self.buf, &self.delimiter) {
                        let data = self.buf.split_to(at).freeze();
                        self.buf.advance(self.delimiter.len());
                        if data.is_empty() {
                            self.state = State::AfterBoundary;
                            return Ok(Some(FormEvent::PartEnd));
                        }
                        self.part_ended = true;
                        return Ok(Some(FormEvent::Data(data)));
                    }
                    // Everything that cannot be the start of a delimiter is data.
                    let keep = partial_suffix(&self.buf, &self.delimiter);
                    let ready = self.buf.len() - keep;
                    if ready > 0 {
                        return Ok(Some(FormEvent::Data(self.buf.split_to(ready).freeze())));
                    }
                    return self.need_more();
                }
            }
        }
    }

    fn need_more(&self) -> Result<Option<FormEvent>, FormError> {
        if self.finished {
            Err(FormError::Truncated)
        } else {
            Ok(None)
        }
    }
}

/// Where `needle` first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let mut from = 0;
    while let Some(i) = hay[from..=hay.len() - needle.len()]
        .iter()
        .position(|b| *b == first)
    {
        let at = from + i;
        if hay[at..].starts_with(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// The length of the longest suffix of `hay` that is a proper prefix of `needle`.
fn partial_suffix(hay: &[u8], needle: &[u8]) -> usize {
    let max = (needle.len() - 1).min(hay.len());
    (1..=max)
        .rev()
        .find(|&n| hay[hay.len() - n..] == needle[..n])
        .unwrap_or(0)
}

/// A part's header block: `Content-Disposition: form-data; name="…"[; filename="…"]` and
/// an optional `Content-Type`; other headers are ignored.
fn parse_head(block: &[u8]) -> Result<PartHead, FormError> {
    let text =
        std::str::from_utf8(block).map_err(|_| malformed("a part's headers are not UTF-8"))?;
    let (mut name, mut filename, mut filename_ext, mut content_type) = (None, None, None, None);
    let mut disposition = false;
    for line in text.split("\r\n") {
        let Some((h, v)) = line.split_once(':') else {
            return Err(malformed(format!(
                "a part has a malformed header line {line:?}"
            )));
        };
        let v = v.trim();
        if h.trim().eq_ignore_ascii_case("content-disposition") {
            let (kind, params) = v.split_once(';').unwrap_or((v, ""));
            if !kind.trim().eq_ignore_ascii_case("form-data") {
                return Err(malformed("a part's Content-Disposition is not form-data"));
            }
            disposition = true;
            for (k, val) in params_of(params) {
                match k.to_ascii_lowercase().as_str() {
                    "name" => name = Some(val),
                    "filename" => filename = Some(val),
                    "filename*" => filename_ext = ext_value(&val),
                    _ => {}
                }
            }
        } else if h.trim().eq_ignore_ascii_case("content-type") {
            content_type = Some(v.to_string());
        }
    }
    if !disposition {
        return Err(malformed("a part has no Content-Disposition"));
    }
    let name = name.ok_or_else(|| malformed("a part's Content-Disposition has no name"))?;
    Ok(PartHead {
        name,
        filename: filename_ext.or(filename),
        content_type,
    })
}

/// `key=value` parameters after a `;`: tokens or quoted strings. Quoted strings end at the
/// next quote, as browsers write them (they percent-encode quotes in names and file
/// names, and send backslashes as they are).
fn params_of(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ';' || c.is_ascii_whitespace());
        let Some(eq) = rest.find('=') else {
            return out;
        };
        let key = rest[..eq].trim().to_string();
        let after = rest[eq + 1..].trim_start();
        let (value, next) = match after.strip_prefix('"') {
            Some(q) => match q.find('"') {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => (q, ""),
            },
            None => match after.find(';') {
                Some(end) => (after[..end].trim_end(), &after[end..]),
                None => (after.trim_end(), ""),
            },
        };
        out.push((key, value.to_string()));
        rest = next;
    }
}

/// An RFC 8187 extended value (`UTF-8''caf%C3%A9.txt`).
fn ext_value(v: &str) -> Option<String> {
    let mut parts = v.splitn(3, '\'');
    let (charset, _lang, value) = (parts.next()?, parts.next()?, parts.next()?);
    if !charset.eq_ignore_ascii_case("utf-8") {
        return None;
    }
    percent_decode_str(value)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// Reads a form from a body stream with a [`FormParser`]: pulls the body only when the
/// parser needs more, so memory stays bounded.
pub struct FormReader<S> {
    body: S,
    parser: FormParser,
    body_ended: bool,
    /// Bytes read after the end of the form.
    epilogue: u64,
}

/// An error of the body stream itself, or of the form.
#[derive(Debug)]
pub enum ReadError<E> {
    Body(E),
    Form(FormError),
}

impl<S, E> FormReader<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    pub fn new(body: S, parser: FormParser) -> FormReader<S> {
        FormReader {
            body,
            parser,
            body_ended: false,
            epilogue: 0,
        }
    }

    /// The next event of the form, reading the body as needed.
    pub fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Result<FormEvent, ReadError<E>>> {
        loop {
            if let Some(ev) = self.parser.next_event().map_err(ReadError::Form)? {
                return Poll::Ready(Ok(ev));
            }
            if self.parser.is_done() {
                // Asked again after the end: the end again.
                return Poll::Ready(Ok(FormEvent::End));
            }
            match Pin::new(&mut self.body).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => self.parser.push(&chunk),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(ReadError::Body(e))),
                Poll::Ready(None) => {
                    self.body_ended = true;
                    self.parser.finish();
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// The next event of the form.
    pub async fn event(&mut self) -> Result<FormEvent, ReadError<E>> {
        futures::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    /// After [`FormEvent::End`]: reads what is left of the body (the epilogue, which is
    /// ignored) to its end, so that an error of the body stream itself (a failed integrity
    /// check of the whole request) is seen; more than `limit` bytes of it is an error.
    pub fn poll_body_end(
        &mut self,
        cx: &mut Context<'_>,
        limit: u64,
    ) -> Poll<Result<(), ReadError<E>>> {
        while !self.body_ended {
            match Pin::new(&mut self.body).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    self.epilogue += chunk.len() as u64;
                    if self.epilogue > limit {
                        return Poll::Ready(Err(ReadError::Form(malformed(
                            "too much data after the end of the form",
                        ))));
                    }
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(ReadError::Body(e))),
                Poll::Ready(None) => self.body_ended = true,
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
#[path = "form_tests.rs"]
mod tests;
