//! [`StripeCodec`]: one stripe in, k + m shards out, and back.

use std::fmt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use cairn_types::EcScheme;
use reed_solomon_erasure::galois_8::ReedSolomon;

use crate::ErasureError;

/// Most shards (data + parity) one stripe may have: the size of GF(2⁸), the field the backend
/// computes in.
pub const MAX_SHARDS: usize = 256;

/// Encodes stripes into `k` data + `m` parity shards and decodes them from any `k` of them.
///
/// Shard `i < k` holds bytes `i·L .. (i+1)·L` of the stripe (zero-padded at the end), where
/// `L = shard_len(len)`; shards `k..k+m` are Reed–Solomon parity over GF(2⁸). The codec keeps no
/// per-stripe state: callers store the stripe's original length next to its shards.
///
/// Cheap to clone (the coding matrices are shared) and safe to use from many threads.
#[derive(Clone)]
pub struct StripeCodec {
    scheme: EcScheme,
    k: usize,
    m: usize,
    /// `None` exactly when `m == 0`: the stripe is only split.
    rs: Option<Arc<ReedSolomon>>,
}

impl fmt::Debug for StripeCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StripeCodec({}+{})", self.k, self.m)
    }
}

impl StripeCodec {
    /// A codec for `scheme`, which needs at least one data shard and at most
    /// [`MAX_SHARDS`] shards in all.
    pub fn new(scheme: EcScheme) -> Result<Self, ErasureError> {
        let invalid = |reason| ErasureError::InvalidScheme {
            data: scheme.data,
            parity: scheme.parity,
            reason,
        };
        let (k, m) = (usize::from(scheme.data), usize::from(scheme.parity));
        if k == 0 {
            return Err(invalid("at least one data shard is needed"));
        }
        if k + m > MAX_SHARDS {
            return Err(invalid("more than 256 shards in all"));
        }
        let rs = if m == 0 {
            None
        } else {
            Some(Arc::new(ReedSolomon::new(k, m).map_err(|e| {
                ErasureError::Backend(format!("building the {k}+{m} code: {e}"))
            })?))
        };
        Ok(StripeCodec { scheme, k, m, rs })
    }

    pub fn scheme(&self) -> EcScheme {
        self.scheme
    }

    /// `k`: shards that hold the stripe's bytes.
    pub fn data_shards(&self) -> usize {
        self.k
    }

    /// `m`: shards that may be lost.
    pub fn parity_shards(&self) -> usize {
        self.m
    }

    /// `k + m`.
    pub fn total_shards(&self) -> usize {
        self.k + self.m
    }

    /// Length of every shard of a stripe of `data_len` bytes: `ceil(data_len / k)`.
    pub fn shard_len(&self, data_len: usize) -> usize {
        data_len.div_ceil(self.k)
    }

    /// Splits `data` into `k` data shards (the last zero-padded) followed by `m` parity shards,
    /// all [`shard_len`](Self::shard_len)`(data.len())` bytes long.
    ///
    /// The shards are slices of one buffer: a shard kept alone keeps the whole stripe's
    /// allocation alive.
    pub fn encode(&self, data: &[u8]) -> Vec<Bytes> {
        let len = self.shard_len(data.len());
        let n = self.total_shards();
        if len == 0 {
            return vec![Bytes::new(); n];
        }
        // Only the padding and the parity part are zeroed (the backend overwrites parity).
        let mut buf = Vec::with_capacity(n * len);
        buf.extend_from_slice(data);
        buf.resize(n * len, 0);
        if let Some(rs) = &self.rs {
            let (data_part, parity_part) = buf.split_at_mut(self.k * len);
            let inputs: Vec<&[u8]> = data_part.chunks(len).collect();
            let mut outputs: Vec<&mut [u8]> = parity_part.chunks_mut(len).collect();
            // Cannot fail: k inputs and m outputs, all `len > 0` bytes long, match the code.
            rs.encode_sep(&inputs, &mut outputs)
                .expect("encode inputs match the code");
        }
        let buf = Bytes::from(buf);
        (0..n).map(|i| buf.slice(i * len..(i + 1) * len)).collect()
    }

    /// [`Self::encode`] without copying the data: when `data` splits into `k` equal shards
    /// (a full stripe whose size `k` divides), the data shards are slices of `data` itself
    /// and only the parity is a new buffer; otherwise the same as [`Self::encode`].
    pub fn encode_bytes(&self, data: Bytes) -> Vec<Bytes> {
        let len = self.shard_len(data.len());
        if len == 0 || len * self.k != data.len() {
            return self.encode(&data);
        }
        let mut shards: Vec<Bytes> = (0..self.k)
            .map(|i| data.slice(i * len..(i + 1) * len))
            .collect();
        if let Some(rs) = &self.rs {
            // The backend overwrites parity.
            let mut parity = vec![0u8; self.m * len];
            let mut outputs: Vec<&mut [u8]> = parity.chunks_mut(len).collect();
            // Cannot fail: k inputs and m outputs, all `len > 0` bytes long, match the code.
            rs.encode_sep(&shards, &mut outputs)
                .expect("encode inputs match the code");
            let parity = Bytes::from(parity);
            shards.extend((0..self.m).map(|i| parity.slice(i * len..(i + 1) * len)));
        }
        shards
    }

    /// Returns the stripe's original `data_len` bytes from `shards` (`k + m` slots in encode
    /// order, `None` for a lost shard), which need at least `k` shards present.
    ///
    /// Lost data shards are reconstructed and written back into their slots (as slices of the
    /// returned stripe's buffer); lost parity shards stay `None`. Present shards must all be
    /// `shard_len(data_len)` bytes long. Parity shards used for reconstruction are put back
    /// unchanged (they are borrowed mutably by the backend and copied only if shared).
    pub fn decode(
        &self,
        shards: &mut [Option<Bytes>],
        data_len: usize,
    ) -> Result<Bytes, ErasureError> {
        let (k, len) = (self.k, self.shard_len(data_len));
        let present = self.check_shards(shards, Some(len), None)?.1;
        if present < k {
            return Err(ErasureError::TooFewShards { present, needed: k });
        }
        if len == 0 {
            for slot in &mut shards[..k] {
                slot.get_or_insert_with(Bytes::new);
            }
            return Ok(Bytes::new());
        }
        let data_missing = shards[..k].iter().filter(|s| s.is_none()).count();

        if data_missing == 0 {
            if let [Some(only)] = &shards[..k] {
                return Ok(only.slice(..data_len));
            }
            let mut out = BytesMut::with_capacity(k * len);
            for shard in shards[..k].iter().flatten() {
                out.extend_from_slice(shard);
            }
            out.truncate(data_len);
            return Ok(out.freeze());
        }

        // Some data shard is lost, so len > 0 and m > 0 (present >= k).
        let mut out = Vec::with_capacity(k * len);
        for shard in &shards[..k] {
            match shard {
                Some(s) => out.extend_from_slice(s),
                None => out.resize(out.len() + len, 0),
            }
        }
        // Borrow exactly as many parity shards as data shards are lost; the backend wants them
        // mutable, so take them out of their slots and put them back afterwards.
        let mut parity: Vec<(usize, BytesMut)> = Vec::with_capacity(data_missing);
        for (i, slot) in shards.iter_mut().enumerate().skip(k) {
            if parity.len() == data_missing {
                break;
            }
            if let Some(s) = slot.take() {
                let owned = s.try_into_mut().unwrap_or_else(|s| BytesMut::from(&s[..]));
                parity.push((i, owned));
            }
        }
        let data_present: Vec<bool> = shards[..k].iter().map(Option::is_some).collect();
        let result = self.reconstruct_data(&mut out, len, &data_present, &mut parity);
        for (i, s) in parity {
            shards[i] = Some(s.freeze());
        }
        result?;

        let out = Bytes::from(out);
        for (i, slot) in shards[..k].iter_mut().enumerate() {
            if slot.is_none() {
                *slot = Some(out.slice(i * len..(i + 1) * len));
            }
        }
        Ok(out.slice(..data_len))
    }

    /// Rebuilds shard `index` (data or parity) from the other shards, of which at least `k`
    /// must be present; whatever `shards[index]` holds is ignored, so a shard that failed its
    /// checksum can be passed as it is. All other present shards must have one length.
    ///
    /// This is the repair path: the shard comes out as a combination of `k` present shards
    /// (data shards first), one pass over each into one new buffer; the stripe is neither
    /// decoded nor re-encoded (see [`crate::combine`]).
    pub fn reconstruct_shard(
        &self,
        shards: &[Option<Bytes>],
        index: usize,
    ) -> Result<Bytes, ErasureError> {
        let (k, n) = (self.k, self.total_shards());
        if index >= n {
            return Err(ErasureError::ShardIndexOutOfRange { index, total: n });
        }
        let (len, present) = self.check_shards(shards, None, Some(index))?;
        if present < k {
            return Err(ErasureError::TooFewShards { present, needed: k });
        }
        if len == 0 {
            return Ok(Bytes::new());
        }
        let from: Vec<usize> = (0..n)
            .filter(|&i| i != index && shards[i].is_some())
            .take(k)
            .collect();
        let inputs: Vec<&[u8]> = from.iter().filter_map(|&i| shards[i].as_deref()).collect();
        let coeffs = crate::combine::coefficients(self.backend()?, k, index, &from)?;
        let mut out = vec![0u8; len];
        crate::combine::combine(&coeffs, &inputs, &mut out);
        Ok(Bytes::from(out))
    }

    /// Checks the slot count and that every present shard (but `skip`) is `len` bytes long,
    /// or, without `len`, that they agree on one length. Returns that length and how many
    /// shards are present.
    fn check_shards(
        &self,
        shards: &[Option<Bytes>],
        len: Option<usize>,
        skip: Option<usize>,
    ) -> Result<(usize, usize), ErasureError> {
        let expected_count = self.total_shards();
        if shards.len() != expected_count {
            return Err(ErasureError::WrongShardCount {
                expected: expected_count,
                got: shards.len(),
            });
        }
        let mut len = len;
        let mut present = 0;
        for (index, shard) in shards.iter().enumerate() {
            let Some(shard) = shard else { continue };
            if Some(index) == skip {
                continue;
            }
            present += 1;
            let expected = *len.get_or_insert(shard.len());
            if shard.len() != expected {
                return Err(ErasureError::WrongShardLength {
                    index,
                    expected,
                    got: shard.len(),
                });
            }
        }
        Ok((len.unwrap_or(0), present))
    }

    /// Fills the lost data shards in `data` (`k` shards of `len > 0` bytes laid end to end;
    /// shard `i` is present when `data_present[i]`) from the present data shards and `parity`
    /// (at least as many `(index, bytes)` as data shards are lost).
    fn reconstruct_data(
        &self,
        data: &mut [u8],
        len: usize,
        data_present: &[bool],
        parity: &mut [(usize, BytesMut)],
    ) -> Result<(), ErasureError> {
        if len == 0 {
            return Ok(());
        }
        let rs = self.backend()?;
        let n = self.total_shards();
        // The backend takes `(buffer, present)` per slot; absent parity needs no buffer.
        let mut slots: Vec<(&mut [u8], bool)> = Vec::with_capacity(n);
        slots.extend(data.chunks_mut(len).zip(data_present).map(|(c, &p)| (c, p)));
        slots.resize_with(n, || (<&mut [u8]>::default(), false));
        for (i, s) in parity.iter_mut() {
            slots[*i] = (&mut s[..], true);
        }
        rs.reconstruct_data(&mut slots)
            .map_err(|e| ErasureError::Backend(format!("reconstructing data shards: {e}")))
    }

    fn backend(&self) -> Result<&ReedSolomon, ErasureError> {
        self.rs.as_deref().ok_or(ErasureError::TooFewShards {
            present: 0,
            needed: self.k,
        })
    }
}
