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

/// Plaintext buffers [`RunOpener`] opens into, taken back for reuse once the last `Bytes`
/// made of one is dropped (after the socket took it). Reuse is what makes opening one pass:
/// the plaintext is written once, into memory that is already there, instead of being
/// opened where the ciphertext lies and then moved down over the tags (a second pass), or
/// written into fresh memory the allocator has to zero first. Buffers are
/// [`PlainBuffers::SIZE`] bytes; at most [`PlainBuffers::KEEP`] wait for reuse. A buffer
/// holds stale plaintext of earlier reads; only what an opening wrote is ever handed out.
#[derive(Clone, Default)]
pub struct PlainBuffers {
    free: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
}

impl PlainBuffers {
    /// Bytes of a pooled buffer.
    pub const SIZE: usize = 1 << 20;
    /// Buffers kept for reuse, at most.
    pub const KEEP: usize = 32;
    /// Plaintext below this many bytes gets a buffer of its own size (not from the pool).
    const SMALL: usize = 128 << 10;

    /// A buffer of at least `len` bytes.
    fn take(&self, len: usize) -> Vec<u8> {
        if (Self::SMALL..=Self::SIZE).contains(&len) {
            if let Some(b) = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop() {
                return b;
            }
            return vec![0; Self::SIZE];
        }
        vec![0; len]
    }

    /// `len` bytes of `buf` as `Bytes`; `buf` comes back to the pool when they are dropped.
    fn hand_out(&self, mut buf: Vec<u8>, len: usize) -> Bytes {
        if buf.len() != Self::SIZE {
            buf.truncate(len);
            return Bytes::from(buf);
        }
        Bytes::from_owner(Lent {
            buf,
            len,
            home: self.clone(),
        })
    }

    /// Buffers waiting for reuse.
    pub fn idle(&self) -> usize {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// A pooled buffer lent out as `Bytes`.
struct Lent {
    buf: Vec<u8>,
    len: usize,
    home: PlainBuffers,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        let mut free = self.home.free.lock().unwrap_or_else(|e| e.into_inner());
        if free.len() < PlainBuffers::KEEP {
            free.push(std::mem::take(&mut self.buf));
        }
    }
}

/// Opens runs of whole sealed chunks, each run on its own (so that runs can be opened on
/// several threads at once), into [`PlainBuffers`]: one pass over the ciphertext, wherever
/// it lies (shared or not), writing the plaintext once.
#[derive(Clone)]
pub struct RunOpener {
    key: std::sync::Arc<LessSafeKey>,
    chunk: usize,
    last: u64,
    buffers: PlainBuffers,
}

impl RunOpener {
    /// For a body of `plain` bytes sealed in `chunk`-byte chunks, opening into `buffers`.
    pub fn new(key: &DataKey, chunk: u32, plain: u64, buffers: PlainBuffers) -> RunOpener {
        RunOpener {
            key: std::sync::Arc::new(aead_key(key)),
            chunk: chunk.max(1) as usize,
            last: chunk_count(plain, chunk) - 1,
            buffers,
        }
    }

    /// Sealed bytes of one whole chunk.
    pub fn sealed_chunk(&self) -> usize {
        self.chunk + TAG
    }

    /// Opens `pieces` of sealed chunks, each holding whole chunks (they follow one another
    /// from chunk `first` on; the last may be the body's shorter last chunk). Returns the
    /// plaintext in buffers of up to [`PlainBuffers::SIZE`] bytes (or one chunk, when
    /// chunks are larger), so that a client's body is sent in a few large writes.
    pub fn open_pieces(&self, first: u64, pieces: Vec<Bytes>) -> Result<Vec<Bytes>, SseError> {
        let sc = self.sealed_chunk();
        // Chunks per output buffer.
        let per_buf = (PlainBuffers::SIZE / self.chunk).max(1);
        let mut out = Vec::new();
        let mut index = first;
        for sealed in pieces {
            let (whole, rest) = (sealed.len() / sc, sealed.len() % sc);
            if rest != 0 && (rest < TAG || index + whole as u64 != self.last) {
                let at = index + whole as u64;
                return Err(SseError::Length(format!("chunk {at} is cut short")));
            }
            let mut chunks = whole + usize::from(rest != 0);
            let mut read = 0;
            while chunks > 0 {
                let here = per_buf.min(chunks);
                let end = (read + here * sc).min(sealed.len());
                let mut buf = self.buffers.take(end - read - here * TAG);
                let mut write = 0;
                for _ in 0..here {
                    let n = sc.min(sealed.len() - read);
                    let (text, tag) = sealed[read..read + n].split_at(n - TAG);
                    self.key
                        .open_separate_gather(
                            nonce(index),
                            Aad::from([u8::from(index == self.last)]),
                            text,
                            tag,
                            &mut buf[write..write + text.len()],
                        )
                        .map_err(|_| SseError::Corrupt(index))?;
                    write += text.len();
                    read += n;
                    index += 1;
                }
                out.push(self.buffers.hand_out(buf, write));
                chunks -= here;
            }
        }
        Ok(out)
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
        let run = RunOpener::new(key, chunk, plain, PlainBuffers::default());
        let (first, want) = sealed_range(chunk, plain, &range);
        let want = want.start as usize..(want.end as usize).min(sealed.len());
        let mut out = Vec::new();
        let mut i = first;
        // Runs of `feed` chunks, opened one by one as the data path opens them, odd runs
        // whole and even runs as pieces of a chunk each, every other one shared with
        // another handle (opening must not need the piece to itself).
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
    fn plaintext_buffers_are_reused_once_dropped_and_the_ciphertext_is_left_alone() {
        let key = DataKey::generate().unwrap();
        let n = 3 * PlainBuffers::SIZE / 2;
        let plain = body(n);
        let sealed = Bytes::from(seal_all(&key, CHUNK, &plain, &[n]));
        let pool = PlainBuffers::default();
        let run = RunOpener::new(&key, CHUNK, n as u64, pool.clone());
        let out = run.open_pieces(0, vec![sealed.clone()]).unwrap();
        assert_eq!(out.len(), 2, "one buffer per SIZE bytes of plaintext");
        assert_eq!(out[0].len(), PlainBuffers::SIZE);
        assert_eq!(out.concat(), plain);
        assert_eq!(
            sealed,
            seal_all(&key, CHUNK, &plain, &[n]),
            "opened out of place"
        );
        let first = out[0].as_ptr();
        assert_eq!(pool.idle(), 0);
        drop(out);
        assert_eq!(pool.idle(), 2, "both buffers came back");
        let again = run.open_pieces(0, vec![sealed]).unwrap();
        assert_eq!(pool.idle(), 0);
        assert!(
            again.iter().any(|b| b.as_ptr() == first),
            "a buffer was reused"
        );
        assert_eq!(
            again.concat(),
            plain,
            "no stale bytes from the earlier opening"
        );
    }

    #[test]
    fn the_pool_keeps_at_most_keep_buffers() {
        let key = DataKey::generate().unwrap();
        let n = PlainBuffers::SIZE * (PlainBuffers::KEEP + 3);
        let plain = body(n);
        let sealed = Bytes::from(seal_all(&key, CHUNK, &plain, &[n]));
        let pool = PlainBuffers::default();
        let run = RunOpener::new(&key, CHUNK, n as u64, pool.clone());
        let out = run.open_pieces(0, vec![sealed]).unwrap();
        assert_eq!(out.len(), PlainBuffers::KEEP + 3);
        drop(out);
        assert_eq!(pool.idle(), PlainBuffers::KEEP);
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
