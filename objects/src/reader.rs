//! The one stripe reader: fetches a stripe's shards from the datanodes its record names,
//! checks each against the length and CRC32C metadata holds, and decodes the stripe from any
//! k of them. GET uses it to read a byte range (only the data shards the range covers, all
//! of them when one is missing); repair uses it to rebuild the shards it knows are lost
//! (every other shard, then [`StripeReader::rebuild`]).
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
        for (&i, (bytes, read)) in todo.iter().zip(got) {
            self.bytes_read += read;
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
    /// fetched intact; `None` otherwise (then decode).
    pub fn slice(&self, r: Range<u64>) -> Option<Bytes> {
        let wanted = self.data_shards_of(&r);
        let (first, last) = (*wanted.first()?, *wanted.last()?);
        let base = first as u64 * self.shard_len();
        let (lo, hi) = ((r.start - base) as usize, (r.end - base) as usize);
        if first == last {
            return Some(self.shard(first)?.slice(lo..hi));
        }
        let mut buf = BytesMut::with_capacity((wanted.len() as u64 * self.shard_len()) as usize);
        for &i in &wanted {
            buf.extend_from_slice(self.shard(i)?);
        }
        Some(buf.freeze().slice(lo..hi))
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
async fn fetch_shard(src: &dyn ShardSource, sid: ShardId, loc: &ShardLoc) -> (Option<Bytes>, u64) {
    let Some(store) = src.store(loc.node) else {
        tracing::debug!(shard = %sid, node = %loc.node, "shard on a datanode that cannot be asked");
        return (None, 0);
    };
    match store.get(sid).await {
        Ok(b) if b.len() as u64 == loc.len && crc32c(&b) == loc.crc32c => {
            let n = b.len() as u64;
            (Some(b), n)
        }
        Ok(b) => {
            tracing::warn!(shard = %sid, node = %loc.node, "shard differs from metadata");
            (None, b.len() as u64)
        }
        Err(e) => {
            tracing::warn!(shard = %sid, node = %loc.node, error = %e, "shard read failed");
            (None, 0)
        }
    }
}

impl ObjectService {
    /// Bytes `r` (relative to the stripe) of stripe `stripe` of `id`: only the data shards
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
    ) -> Result<Bytes, ObjectsError> {
        if r.is_empty() {
            return Ok(Bytes::new());
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
        if let Some(bytes) = reader.slice(r.clone()) {
            return Ok(bytes);
        }
        // Degraded: fetch every other shard and decode from any k.
        let failed = reader.fetch_all(view).await;
        self.metrics.shard_read_failures.inc_by(failed as u64);
        let data = reader.decode()?;
        self.metrics.degraded_reads.inc();
        tracing::warn!(%id, stripe, available = reader.available(), total = st.shards.len(), "degraded read: decoding from parity");
        self.hints.push(crate::RepairHint {
            object: id,
            ec,
            stripe,
            loc: st.clone(),
        });
        Ok(data.slice(r.start as usize..r.end as usize))
    }
}
