//! One stripe's shards: encode and fan out to the placed datanodes, counting a stripe written
//! once the write quorum of shards is durable; read back only the data shards a range needs,
//! decoding from any k shards when some are missing, unreachable or corrupt.

use std::ops::Range;

use bytes::{Bytes, BytesMut};
use cairn_datanode::DatanodeError;
use cairn_erasure::StripeCodec;
use cairn_metadata::{ShardLoc, StripeLoc};
use cairn_types::{crc32c, EcScheme, ObjectId, ShardId};
use futures::future::join_all;

use crate::{ObjectService, ObjectsError};

impl ObjectService {
    /// Encodes `data` as stripe `stripe` of `id` and stores its shards in parallel.
    pub(crate) async fn write_stripe(
        &self,
        id: ObjectId,
        stripe: u32,
        data: Bytes,
    ) -> Result<StripeLoc, ObjectsError> {
        let total = self.codec.total_shards();
        let placement = self.placement();
        let nodes = placement.place(id, stripe, total);
        if nodes.len() < total {
            return Err(ObjectsError::NotEnoughDatanodes {
                available: nodes.len(),
                needed: total,
            });
        }
        let stores = nodes
            .iter()
            .map(|n| self.node(*n))
            .collect::<Result<Vec<_>, _>>()?;
        let shards = self.codec.encode(&data);
        let down = self.down();
        let locs: Vec<ShardLoc> = shards
            .iter()
            .zip(&nodes)
            .map(|(shard, node)| ShardLoc {
                node: *node,
                len: shard.len() as u64,
                crc32c: crc32c(shard),
            })
            .collect();
        let mut locs = locs;
        let writes = shards
            .iter()
            .cloned()
            .zip(stores)
            .enumerate()
            .map(|(i, (shard, store))| {
                // A datanode known to be down is not tried: its shard goes to a spare.
                let skip = down.contains(&nodes[i]);
                async move {
                    if skip {
                        return Err(DatanodeError::Closed);
                    }
                    store.put(ShardId::new(id, stripe, i as u32), shard).await
                }
            });
        let mut failed = Vec::new();
        let mut written = 0;
        for (i, r) in join_all(writes).await.into_iter().enumerate() {
            match r {
                Ok(info) if info.crc32c == locs[i].crc32c => written += 1,
                Ok(_) => {
                    tracing::warn!(%id, stripe, shard = i, "datanode stored a different checksum");
                    self.metrics.shard_write_failures.inc();
                    failed.push(i);
                }
                Err(e) => {
                    tracing::warn!(%id, stripe, shard = i, node = %locs[i].node, error = %e, "shard write failed");
                    self.metrics.shard_write_failures.inc();
                    failed.push(i);
                }
            }
        }
        // Hinted handoff: a shard whose node failed goes to the next distinct node on the
        // ring; the record names where it really is (the scrubber moves it home later).
        if !failed.is_empty() {
            let spare = placement
                .fallbacks(id, stripe, &nodes, failed.len() + down.len())
                .into_iter()
                .filter(|n| !down.contains(n));
            for (&i, node) in failed.iter().zip(spare) {
                let Ok(store) = self.node(node) else { continue };
                let sid = ShardId::new(id, stripe, i as u32);
                match store.put(sid, shards[i].clone()).await {
                    Ok(info) if info.crc32c == locs[i].crc32c => {
                        tracing::info!(%id, stripe, shard = i, %node, "shard handed off");
                        self.metrics.handoffs.inc();
                        locs[i].node = node;
                        written += 1;
                    }
                    _ => tracing::warn!(%id, stripe, shard = i, %node, "handoff failed too"),
                }
            }
        }
        let needed = self.config.write_quorum();
        if written < needed {
            return Err(ObjectsError::WriteQuorum { written, needed });
        }
        self.metrics.stripes_written.inc();
        // Shards that failed everywhere (but within quorum) are recorded where they belong;
        // the scrubber finds them missing and rebuilds them.
        Ok(StripeLoc {
            len: data.len() as u64,
            shards: locs,
        })
    }

    /// Fetches one shard and checks it against metadata; `None` if it is unavailable.
    async fn fetch_shard(&self, sid: ShardId, loc: &ShardLoc) -> Option<Bytes> {
        let store = match self.node(loc.node) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(shard = %sid, error = %e, "shard on an unknown datanode");
                return None;
            }
        };
        match store.get(sid).await {
            Ok(b) if b.len() as u64 == loc.len && crc32c(&b) == loc.crc32c => Some(b),
            Ok(_) => {
                tracing::warn!(shard = %sid, node = %loc.node, "shard differs from metadata");
                self.metrics.shard_read_failures.inc();
                None
            }
            Err(e) => {
                tracing::warn!(shard = %sid, node = %loc.node, error = %e, "shard read failed");
                self.metrics.shard_read_failures.inc();
                None
            }
        }
    }

    /// Bytes `r` (relative to the stripe) of stripe `stripe` of `id`.
    pub(crate) async fn read_stripe(
        &self,
        id: ObjectId,
        ec: EcScheme,
        stripe: u32,
        st: &StripeLoc,
        r: Range<u64>,
    ) -> Result<Bytes, ObjectsError> {
        let k = ec.data as usize;
        let total = st.shards.len();
        let shard_len = st.shards.first().map(|l| l.len).unwrap_or(0);
        if r.is_empty() {
            return Ok(Bytes::new());
        }
        if k == 0 || total < k || shard_len == 0 || r.end > st.len {
            return Err(ObjectsError::Inconsistent(format!(
                "stripe {stripe} of {id} has an impossible layout"
            )));
        }
        self.metrics.stripes_read.inc();
        let first = (r.start / shard_len) as usize;
        let last = ((r.end - 1) / shard_len) as usize;
        let sid = |i: usize| ShardId::new(id, stripe, i as u32);

        let mut shards: Vec<Option<Bytes>> = vec![None; total];
        let wanted: Vec<usize> = (first..=last).collect();
        let got = join_all(
            wanted
                .iter()
                .map(|&i| self.fetch_shard(sid(i), &st.shards[i])),
        )
        .await;
        for (&i, b) in wanted.iter().zip(got) {
            shards[i] = b;
        }
        let base = first as u64 * shard_len;
        if wanted.iter().all(|&i| shards[i].is_some()) {
            if first == last {
                let b = shards[first].take().unwrap_or_default();
                return Ok(b.slice((r.start - base) as usize..(r.end - base) as usize));
            }
            let mut buf = BytesMut::with_capacity(((last - first + 1) as u64 * shard_len) as usize);
            for b in shards[first..=last].iter().flatten() {
                buf.extend_from_slice(b);
            }
            return Ok(buf
                .freeze()
                .slice((r.start - base) as usize..(r.end - base) as usize));
        }

        // Degraded: fetch every other shard and decode from any k.
        let rest: Vec<usize> = (0..total).filter(|i| !wanted.contains(i)).collect();
        let got = join_all(
            rest.iter()
                .map(|&i| self.fetch_shard(sid(i), &st.shards[i])),
        )
        .await;
        for (&i, b) in rest.iter().zip(got) {
            shards[i] = b;
        }
        let available = shards.iter().filter(|s| s.is_some()).count();
        if available < k {
            return Err(ObjectsError::TooFewShards {
                available,
                needed: k,
            });
        }
        self.metrics.degraded_reads.inc();
        tracing::warn!(%id, stripe, available, total, "degraded read: decoding from parity");
        self.hints.push(crate::RepairHint {
            object: id,
            ec,
            stripe,
            loc: st.clone(),
        });
        let codec = StripeCodec::new(ec)?;
        let data = codec.decode(&mut shards, st.len as usize)?;
        Ok(data.slice(r.start as usize..r.end as usize))
    }
}
