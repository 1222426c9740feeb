//! The sealed body format: plaintext cut into chunks of `chunk` bytes (the last one shorter,
//! possibly empty; an empty body is one empty chunk), each sealed with AES-256-GCM under the
//! body's data key and stored as ciphertext followed by its 16-byte tag. Chunk `i` uses the
//! nonce `i` (8 bytes big-endian, then 4 zero bytes) — unique because every body has its own
//! random data key — and the associated data `[1]` for the body's last chunk, `[0]` for the
//! others, so a truncated body does not authenticate.
//!
//! [`Sealer`] seals a stream; [`sealed_range`] says which sealed bytes cover a plaintext
//! range, and [`RunOpener`] opens them, a run of whole chunks at a time.

use std::ops::Range;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use bytes::{Bytes, BytesMut};

use crate::{DataKey, SseError};

/// Plaintext bytes per chunk of new bodies (stored with each body, so it may change).
pub const CHUNK: u32 = 64 * 1024;
/// Bytes of the authentication tag after each chunk.
pub const TAG: usize = 16;

/// Chunks a body of `plain` bytes is sealed in.
pub fn chunk_count(plain: u64, chunk: u32) -> u64 {
    plain.div_ceil(u64::from(chunk.max(1))).max(1)
}

/// Sealed bytes of a body of `plain` bytes.
pub fn sealed_len(plain: u64, chunk: u32) -> u64 {
    plain + chunk_count(plain, chunk) * TAG as u64
}

fn aead_key(key: &DataKey) -> LessSafeKey {
    // A 32-byte key always makes an AES-256 key.
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key.bytes()).expect("32-byte key"))
}

fn nonce(index: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&index.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

/// Seals a body as it streams: [`Sealer::push`] returns the chunks complete so far (the
/// last one is held back, since only the end tells it is the last), [`Sealer::finish`] the
/// rest.
pub struct Sealer {
    key: LessSafeKey,
    chunk: usize,
    next: u64,
    /// Plaintext not sealed yet (at most one chunk).
    pending: BytesMut,
}

impl Sealer {
    pub fn new(key: &DataKey, chunk: u32) -> Sealer {
        Sealer {
            key: aead_key(key),
            chunk: chunk.max(1) as usize,
            next: 0,
            pending: BytesMut::new(),
        }
    }

    fn seal_one(&mut self, plain: &[u8], last: bool, out: &mut BytesMut) {
        let at = out.len();
        out.extend_from_slice(plain);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                nonce(self.next),
                Aad::from([u8::from(last)]),
                &mut out[at..],
            )
            // Fails only for inputs beyond GCM's limit (64 GiB per chunk).
            .expect("chunk within AES-GCM limits");
        out.extend_from_slice(tag.as_ref());
        self.next += 1;
    }

    /// Takes more plaintext; returns the sealed chunks it completed (maybe empty).
    pub fn push(&mut self, mut data: &[u8]) -> Bytes {
        // A chunk is sealed only once a byte after it has arrived: then it is not the last.
        let total = self.pending.len() + data.len();
        if total <= self.chunk {
            self.pending.extend_from_slice(data);
            return Bytes::new();
        }
        let ready = (total - 1) / self.chunk;
        let mut out = BytesMut::with_capacity(ready * (self.chunk + TAG));
        if !self.pending.is_empty() {
            let need = self.chunk - self.pending.len();
            let mut first = std::mem::take(&mut self.pending);
            first.extend_from_slice(&data[..need]);
            data = &data[need..];
            self.seal_one(&first, false, &mut out);
        }
        while data.len() > self.chunk {
            let (now, rest) = data.split_at(self.chunk);
            self.seal_one(now, false, &mut out);
            data = rest;
        }
        self.pending.extend_from_slice(data);
        out.freeze()
    }

    /// Seals the last chunk.
    pub fn finish(mut self) -> Bytes {
        let last = std::mem::take(&mut self.pending);
        let mut out = BytesMut::with_capacity(last.len() + TAG);
        self.seal_one(&last, true, &mut out);
        out.freeze()
    }
}

/// The index of the first chunk covering plaintext `range` of a body of `plain` bytes, and
/// the sealed bytes holding every chunk the range touches.
pub fn sealed_range(chunk: u32, plain: u64, range: &Range<u64>) -> (u64, Range<u64>) {
    let c = u64::from(chunk.max(1));
    let sealed_chunk = c + TAG as u64;
    let last = chunk_count(plain, chunk) - 1;
    let first = (range.start / c).min(last);
    if range.is_empty() {
        let at = first * sealed_chunk;
        return (first, at..at);
    }
    let end_chunk = (range.end - 1) / c;
    let end = ((end_chunk + 1) * sealed_chunk).min(sealed_len(plain, chunk));
    (first, first * sealed_chunk..end)
}

/// Opens runs of whole sealed chunks, each run on its own (so that runs can be opened on
/// several threads at once), in place: no copy beyond the one that gathered the run.
#[derive(Clone)]
pub struct RunOpener {
    key: std::sync::Arc<LessSafeKey>,
    chunk: usize,
    last: u64,
}

impl RunOpener {
    /// For a body of `plain` bytes sealed in `chunk`-byte chunks.
    pub fn new(key: &DataKey, chunk: u32, plain: u64) -> RunOpener {
        RunOpener {
            key: std::sync::Arc::new(aead_key(key)),
            chunk: chunk.max(1) as usize,
            last: chunk_count(plain, chunk) - 1,
        }
    }

    /// Sealed bytes of one whole chunk.
    pub fn sealed_chunk(&self) -> usize {
        self.chunk + TAG
    }

    /// Opens `pieces` of sealed chunks, each holding whole chunks (they follow one another
    /// from chunk `first` on; the last may be the body's shorter last chunk): a piece
    /// nothing else shares is opened where it lies, with no copy; a shared one is copied
    /// first. Returns each piece's plaintext.
    pub fn open_pieces(&self, first: u64, pieces: Vec<Bytes>) -> Result<Vec<Bytes>, SseError> {
        let mut out = Vec::with_capacity(pieces.len());
        let mut index = first;
        for p in pieces {
            let buf = p.try_into_mut().unwrap_or_else(|b| BytesMut::from(&b[..]));
            let (plain, next) = self.open_in_place(index, buf)?;
            out.push(plain);
            index = next;
        }
        Ok(out)
    }

    /// Opens the whole chunks of `sealed` from chunk `index` on where they lie, moving each
    /// chunk's plaintext down over the tags before it, so that the plaintext comes out as
    /// one buffer (a client's body is then sent in a few large writes, not one per chunk).
    /// Returns it and the index after the last chunk.
    fn open_in_place(
        &self,
        mut index: u64,
        mut sealed: BytesMut,
    ) -> Result<(Bytes, u64), SseError> {
        let sc = self.sealed_chunk();
        let (mut read, mut write) = (0, 0);
        while read < sealed.len() {
            let n = sc.min(sealed.len() - read);
            if n < TAG || (n < sc && index != self.last) {
                return Err(SseError::Length(format!("chunk {index} is cut short")));
            }
            let len = self
                .key
                .open_in_place(
                    nonce(index),
                    Aad::from([u8::from(index == self.last)]),
                    &mut sealed[read..read + n],
                )
                .map_err(|_| SseError::Corrupt(index))?
                .len();
            if write != read {
                sealed.copy_within(read..read + len, write);
            }
            write += len;
            read += n;
            index += 1;
        }
        sealed.truncate(write);
        Ok((sealed.freeze(), index))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seal_all(key: &DataKey, chunk: u32, plain: &[u8], pieces: &[usize]) -> Vec<u8> {
        let mut s = Sealer::new(key, chunk);
        let mut out = Vec::new();
        let mut rest = plain;
        for &p in pieces.iter().cycle().take(plain.len() + 1) {
            if rest.is_empty() {
                break;
            }
            let n = p.max(1).min(rest.len());
            out.extend_from_slice(&s.push(&rest[..n]));
            rest = &rest[n..];
        }
        out.extend_from_slice(&s.finish());
        out
    }

    fn open_range(
        key: &DataKey,
        chunk: u32,
        sealed: &[u8],
        plain: u64,
        range: Range<u64>,
        feed: usize,
    ) -> Result<Vec<u8>, SseError> {
        if range.is_empty() {
            return Ok(Vec::new());
        }
        let run = RunOpener::new(key, chunk, plain);
        let (first, want) = sealed_range(chunk, plain, &range);
        let want = want.start as usize..(want.end as usize).min(sealed.len());
        let mut out = Vec::new();
        let mut i = first;
        // Runs of `feed` chunks, opened one by one as the data path opens them, odd runs
        // whole and even runs as pieces of a chunk each, every other one shared (opened
        // from a copy) and the rest not (opened where they lie).
        for (r, piece) in sealed[want]
            .chunks(run.sealed_chunk() * feed.max(1))
            .enumerate()
        {
            let opened = if r % 2 == 1 {
                run.open_pieces(i, vec![Bytes::copy_from_slice(piece)])?
            } else {
                let pieces: Vec<Bytes> = piece
                    .chunks(run.sealed_chunk())
                    .map(Bytes::copy_from_slice)
                    .collect();
                let _shared: Vec<Bytes> = pieces.iter().step_by(2).cloned().collect();
                run.open_pieces(i, pieces)?
            };
            for c in opened {
                out.extend_from_slice(&c);
            }
            i += piece.len().div_ceil(run.sealed_chunk()) as u64;
        }
        let skip = (range.start - first * u64::from(chunk)) as usize;
        let len = (range.end - range.start) as usize;
        out.get(skip..skip + len)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| SseError::Length("the sealed body ends early".into()))
    }

    fn body(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn a_piece_nothing_shares_is_opened_where_it_lies() {
        let key = DataKey::generate().unwrap();
        let plain = body(40);
        let sealed = Bytes::from(seal_all(&key, 16, &plain, &[40]));
        let at = sealed.as_ptr();
        let run = RunOpener::new(&key, 16, 40);
        let out = run.open_pieces(0, vec![sealed]).unwrap();
        assert_eq!(out.len(), 1, "one buffer per piece");
        assert_eq!(out.concat(), plain);
        assert_eq!(out[0].as_ptr(), at, "opened in place, not copied");
    }

    #[test]
    fn sealed_lengths_count_one_tag_per_chunk_and_one_for_an_empty_body() {
        assert_eq!(sealed_len(0, 16), 16);
        assert_eq!(sealed_len(16, 16), 32);
        assert_eq!(sealed_len(17, 16), 49);
        let key = DataKey::generate().unwrap();
        for n in [0usize, 1, 15, 16, 17, 100] {
            let sealed = seal_all(&key, 16, &body(n), &[5]);
            assert_eq!(sealed.len() as u64, sealed_len(n as u64, 16), "{n}");
        }
    }

    #[test]
    fn a_changed_byte_a_dropped_chunk_or_another_key_is_refused() {
        let key = DataKey::generate().unwrap();
        let plain = body(100);
        let sealed = seal_all(&key, 16, &plain, &[100]);
        let n = plain.len() as u64;
        assert_eq!(open_range(&key, 16, &sealed, n, 0..n, 7).unwrap(), plain);
        let mut flipped = sealed.clone();
        flipped[40] ^= 1;
        assert!(matches!(
            open_range(&key, 16, &flipped, n, 0..n, 7),
            Err(SseError::Corrupt(1))
        ));
        // The body cut after a whole chunk: its new last chunk was not sealed as the last.
        let cut = &sealed[..64];
        assert!(open_range(&key, 16, cut, 32, 0..32, 64).is_err());
        let other = DataKey::generate().unwrap();
        assert!(open_range(&other, 16, &sealed, n, 0..n, 7).is_err());
    }

    proptest! {
        #[test]
        fn any_range_opens_to_exactly_its_plaintext(
            len in 0usize..400,
            chunk in 1u32..64,
            a in 0usize..400,
            b in 0usize..400,
            push in 1usize..90,
            feed in 1usize..90,
        ) {
            let key = DataKey::generate().unwrap();
            let plain = body(len);
            let sealed = seal_all(&key, chunk, &plain, &[push]);
            prop_assert_eq!(sealed.len() as u64, sealed_len(len as u64, chunk));
            let (lo, hi) = (a.min(b).min(len), a.max(b).min(len));
            let got = open_range(&key, chunk, &sealed, len as u64, lo as u64..hi as u64, feed);
            prop_assert_eq!(got.unwrap(), plain[lo..hi].to_vec());

        }
    }
}
