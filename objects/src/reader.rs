//! The one stripe reader: fetches a stripe's shards from the datanodes its record names,
//! checks each against the length and CRC32C metadata holds, and decodes the stripe from any
//! k of them. GET uses it to read a byte range (only the data shards the range covers, all
//! of them when one is missing); repair uses it to rebuild the shards it knows are lost
//! (k others, then [`StripeReader::rebuild_shards`]).
//!
//! A shard that is absent, unreachable, on an unknown datanode, or differs from metadata
//! counts as missing; nothing unchecked is ever returned or decoded from.

use std::ops::Range;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use cairn_datanode::ShardStore;
use cairn_erasure::StripeCodec;
use cairn_metadata::{ShardLoc, StripeLoc};
use cairn_types::{crc32c, EcScheme, NodeId, ObjectId, ShardId};
use futures::future::join_all;

use crate::membership::MembershipView;
use crate::{ObjectService, ObjectsError};

/// Where a [`StripeReader`] gets datanode clients from.
pub trait ShardSource: Sync {
    /// The client of datanode `node`, or `None` if it must not (or cannot) be asked.
    fn store(&self, node: NodeId) -> Option<Arc<dyn ShardStore>>;
}

impl ShardSource for MembershipView {
    fn store(&self, node: NodeId) -> Option<Arc<dyn ShardStore>> {
        MembershipView::store(self, node)
    }
}

/// The shards of one stripe, read so far.
pub struct StripeReader {
    id: ObjectId,
    stripe: u32,
    ec: EcScheme,
    loc: StripeLoc,
    /// Per shard: `None` until fetched; then `Some(None)` if it was missing.
    shards: Vec<Option<Option<Bytes>>>,
    bytes_read: u64,
    /// The part of `bytes_read` that came from other nodes' datanodes.
    remote_bytes_read: u64,
}

impl StripeReader {
    /// A reader of stripe `stripe` of body `id`, coded with `ec`, stored as `loc` says.
    /// Fails when the layout is impossible (no data shards, fewer shards than data shards,
    /// empty shards, shards of different lengths).
    pub fn new(
        id: ObjectId,
        stripe: u32,
        ec: EcScheme,
        loc: StripeLoc,
    ) -> Result<Self, ObjectsError> {
        let k = ec.data as usize;
        let shard_len = loc.shards.first().map_or(0, |l| l.len);
        if k == 0
            || loc.shards.len() < k
            || shard_len == 0
            || loc.shards.iter().any(|l| l.len != shard_len)
        {
            return Err(ObjectsError::Inconsistent(format!(
                "stripe {stripe} of {id} has an impossible layout"
            )));
        }
        Ok(StripeReader {
            id,
            stripe,
            ec,
            shards: vec![None; loc.shards.len()],
            loc,
            bytes_read: 0,
            remote_bytes_read: 0,
        })
    }

    /// The stripe's record.
    pub fn loc(&self) -> &StripeLoc {
        &self.loc
    }

    /// Bytes of every shard a datanode returned (checked or not).
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Counts what this reader fetched in the traffic metrics.
    fn count_traffic(&self, metrics: &crate::ObjectMetrics) {
        let remote = self.remote_bytes_read;
        metrics.shard_traffic("read", false, remote);
        metrics.shard_traffic("read", true, self.bytes_read - remote);
    }

    fn sid(&self, i: usize) -> ShardId {
        ShardId::new(self.id, self.stripe, i as u32)
    }

    /// Fetches the shards `which` (indices; those already fetched and out-of-range ones are
    /// skipped) in parallel from `src`. Returns how many of them are missing.
    pub async fn fetch(&mut self, src: &dyn ShardSource, which: &[usize]) -> usize {
        let todo: Vec<usize> = which
            .iter()
            .copied()
            .filter(|&i| i < self.shards.len() && self.shards[i].is_none())
            .collect();
        let got = join_all(
            todo.iter()
                .map(|&i| fetch_shard(src, self.sid(i), &self.loc.shards[i])),
        )
        .await;
        let mut missing = 0;
        for (&i, (bytes, read, local)) in todo.iter().zip(got) {
            self.bytes_read += read;
            if !local {
                self.remote_bytes_read += read;
            }
            missing += usize::from(bytes.is_none());
            self.shards[i] = Some(bytes);
        }
        missing
    }

    /// Fetches every shard not fetched yet; returns how many of them are missing.
    pub async fn fetch_all(&mut self, src: &dyn ShardSource) -> usize {
        let all: Vec<usize> = (0..self.shards.len()).collect();
        self.fetch(src, &all).await
    }

    /// Shard `i` if it was fetched intact (or rebuilt).
    pub fn shard(&self, i: usize) -> Option<&Bytes> {
        self.shards.get(i)?.as_ref()?.as_ref()
    }

    /// The shards fetched and found missing.
    pub fn missing(&self) -> Vec<usize> {
        (0..self.shards.len())
            .filter(|&i| matches!(self.shards[i], Some(None)))
            .collect()
    }

    /// Shards fetched intact.
    pub fn available(&self) -> usize {
        self.shards
            .iter()
            .filter(|s| matches!(s, Some(Some(_))))
            .count()
    }

    fn shard_len(&self) -> u64 {
        self.loc.shards.first().map_or(0, |l| l.len)
    }

    /// The data shards that hold bytes `r` of the stripe.
    pub fn data_shards_of(&self, r: &Range<u64>) -> Vec<usize> {
        if r.is_empty() {
            return Vec::new();
        }
        let len = self.shard_len();
        ((r.start / len) as usize..=((r.end - 1) / len) as usize).collect()
    }

    /// Bytes `r` of the stripe straight from its data shards, if every one it needs was
    /// fetched intact; `None` otherwise (then decode). One contiguous buffer: see
    /// [`Self::pieces`] for the same bytes without a copy.
    pub fn slice(&self, r: Range<u64>) -> Option<Bytes> {
        let pieces = self.pieces(r)?;
        if pieces.len() == 1 {
            return pieces.into_iter().next();
        }
        let mut buf = BytesMut::with_capacity(pieces.iter().map(Bytes::len).sum());
        for p in &pieces {
            buf.extend_from_slice(p);
        }
        Some(buf.freeze())
    }

    /// Bytes `r` of the stripe as slices of the data shards that hold them, in order (no
    /// copy), if every one it needs was fetched intact; `None` otherwise (then decode).
    pub fn pieces(&self, r: Range<u64>) -> Option<Vec<Bytes>> {
        let len = self.shard_len();
        let mut out = Vec::new();
        for i in self.data_shards_of(&r) {
            let base = i as u64 * len;
            let lo = r.start.max(base) - base;
            let hi = r.end.min(base + len) - base;
            out.push(self.shard(i)?.slice(lo as usize..hi as usize));
        }
        Some(out)
    }

    /// The stripe's data, decoded from any k intact shards.
    pub fn decode(&self) -> Result<Bytes, ObjectsError> {
        let (k, available) = (self.ec.data as usize, self.available());
        if available < k {
            return Err(ObjectsError::TooFewShards {
                available,
                needed: k,
            });
        }
        let mut shards: Vec<Option<Bytes>> =
            self.shards.iter().cloned().map(Option::flatten).collect();
        let codec = StripeCodec::new(self.ec)?;
        Ok(codec.decode(&mut shards, self.loc.len as usize)?)
    }

    /// Fetches, besides the shards `also` wants, intact shards other than `lost` until k
    /// are at hand: data shards first (decoding from them is a copy), more only when some
    /// are missing. Repair reads k shards per stripe this way, not every surviving one.
    pub async fn fetch_for_rebuild(
        &mut self,
        src: &dyn ShardSource,
        lost: &[usize],
        also: &[usize],
    ) {
        self.fetch(src, also).await;
        let k = self.ec.data as usize;
        let mut candidates = (0..self.shards.len())
            .filter(|i| !lost.contains(i) && self.shards[*i].is_none())
            .collect::<Vec<_>>()
            .into_iter();
        while self.available() < k {
            let batch: Vec<usize> = candidates.by_ref().take(k - self.available()).collect();
            if batch.is_empty() {
                break;
            }
            self.fetch(src, &batch).await;
        }
    }

    /// Rebuilds the shards `lost` from the intact ones (at least k), each as a combination
    /// of k intact shards in a buffer of its own (the stripe is not decoded). Fails unless
    /// every rebuilt shard matches metadata (length and CRC32C), so a shard rebuilt from
    /// inputs damaged in a way their checksums did not catch is never written back.
    /// Compute-bound: callers on an async runtime run it on a blocking thread.
    pub fn rebuild_shards(&mut self, lost: &[usize]) -> Result<(), ObjectsError> {
        let (k, available) = (self.ec.data as usize, self.available());
        if available < k {
            return Err(ObjectsError::TooFewShards {
                available,
                needed: k,
            });
        }
        let intact: Vec<Option<Bytes>> = self
            .shards
            .iter()
            .enumerate()
            .map(|(i, s)| s.clone().flatten().filter(|_| !lost.contains(&i)))
            .collect();
        let codec = StripeCodec::new(self.ec)?;
        let mut rebuilt = Vec::with_capacity(lost.len());
        for &i in lost {
            let Some(loc) = self.loc.shards.get(i) else {
                return Err(ObjectsError::Inconsistent(format!(
                    "shard {i} of stripe {} of {} was not rebuilt",
                    self.stripe, self.id
                )));
            };
            let shard = codec.reconstruct_shard(&intact, i)?;
            if shard.len() as u64 != loc.len || crc32c(&shard) != loc.crc32c {
                return Err(ObjectsError::Inconsistent(format!(
                    "rebuilt shard {i} does not match metadata (decoded from damaged shards?)"
                )));
            }
            rebuilt.push((i, shard));
        }
        for (i, shard) in rebuilt {
            self.shards[i] = Some(Some(shard));
        }
        Ok(())
    }

    /// Decodes the stripe and re-encodes it, filling every shard; fails unless every
    /// re-encoded shard matches metadata (so a stripe decoded from shards that were damaged
    /// in a way their checksums did not catch is never written back).
    pub fn rebuild(&mut self) -> Result<(), ObjectsError> {
        let data = self.decode()?;
        let all = StripeCodec::new(self.ec)?.encode(&data);
        if all.len() != self.loc.shards.len() {
            return Err(ObjectsError::Inconsistent(format!(
                "stripe {} of {} has {} shards, its coding makes {}",
                self.stripe,
                self.id,
                self.loc.shards.len(),
                all.len()
            )));
        }
        for (i, shard) in all.iter().enumerate() {
            let loc = &self.loc.shards[i];
            if shard.len() as u64 != loc.len || crc32c(shard) != loc.crc32c {
                return Err(ObjectsError::Inconsistent(format!(
                    "rebuilt shard {i} does not match metadata (decoded from damaged shards?)"
                )));
            }
        }
        self.shards = all.into_iter().map(|s| Some(Some(s))).collect();
        Ok(())
    }
}

/// Fetches one shard and checks it against metadata: the shard if intact, and the bytes the
/// datanode returned.
async fn fetch_shard(
    src: &dyn ShardSource,
    sid: ShardId,
    loc: &ShardLoc,
) -> (Option<Bytes>, u64, bool) {
    let Some(store) = src.store(loc.node) else {
        tracing::debug!(shard = %sid, node = %loc.node, "shard on a datanode that cannot be asked");
        return (None, 0, true);
    };
    let local = store.is_local();
    // The checksum the store verified the bytes against (computed once, where they were
    // read or where they arrived) is compared with metadata's.
    match store.get_with_crc(sid).await {
        Ok((b, crc)) if b.len() as u64 == loc.len && crc == loc.crc32c => {
            let n = b.len() as u64;
            (Some(b), n, local)
        }
        Ok((b, _)) => {
            tracing::warn!(shard = %sid, node = %loc.node, "shard differs from metadata");
            (None, b.len() as u64, local)
        }
        Err(e) => {
            tracing::warn!(shard = %sid, node = %loc.node, error = %e, "shard read failed");
            (None, 0, local)
        }
    }
}

impl ObjectService {
    /// Bytes `r` (relative to the stripe) of stripe `stripe` of `id`, as pieces in order:
    /// only the data shards
    /// the range covers, or — when one of them is missing — every shard, decoding from any
    /// k and queueing the stripe for repair.
    pub(crate) async fn read_stripe(
        &self,
        view: &MembershipView,
        id: ObjectId,
        ec: EcScheme,
        stripe: u32,
        st: &StripeLoc,
        r: Range<u64>,
    ) -> Result<Vec<Bytes>, ObjectsError> {
        if r.is_empty() {
            return Ok(Vec::new());
        }
        let mut reader = StripeReader::new(id, stripe, ec, st.clone())?;
        if r.end > st.len {
            return Err(ObjectsError::Inconsistent(format!(
                "stripe {stripe} of {id} has an impossible layout"
            )));
        }
        self.metrics.stripes_read.inc();
        let wanted = reader.data_shards_of(&r);
        let failed = reader.fetch(view, &wanted).await;
        self.metrics.shard_read_failures.inc_by(failed as u64);
        if let Some(pieces) = reader.pieces(r.clone()) {
            reader.count_traffic(&self.metrics);
            return Ok(pieces);
        }
        // Degraded: fetch every other shard and decode from any k.
        let failed = reader.fetch_all(view).await;
        self.metrics.shard_read_failures.inc_by(failed as u64);
        reader.count_traffic(&self.metrics);
        let data = reader.decode()?;
        self.metrics.degraded_reads.inc();
        tracing::warn!(%id, stripe, available = reader.available(), total = st.shards.len(), "degraded read: decoding from parity");
        self.hints.push(crate::RepairHint {
            object: id,
            ec,
            stripe,
            loc: st.clone(),
        });
        Ok(vec![data.slice(r.start as usize..r.end as usize)])
    }
}
