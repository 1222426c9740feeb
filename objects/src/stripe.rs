//! Writing one stripe: encode and fan out to the placed datanodes, counting the stripe written
//! once the write quorum of shards is durable, handing the shards of failed or down datanodes
//! off to spares. (Reading is the [`crate::StripeReader`]'s.)

use bytes::Bytes;
use cairn_datanode::DatanodeError;
use cairn_erasure::StripeCodec;
use cairn_metadata::{ShardLoc, StripeLoc};
use cairn_types::{crc32c, ObjectId, ShardId};
use futures::future::join_all;

use crate::membership::MembershipView;
use crate::{ObjectService, ObjectsError};

impl ObjectService {
    /// Encodes `data` with `codec` as stripe `stripe` of `id` and stores its shards in
    /// parallel, placed by `view`.
    pub(crate) async fn write_stripe(
        &self,
        view: &MembershipView,
        codec: &StripeCodec,
        id: ObjectId,
        stripe: u32,
        data: Bytes,
    ) -> Result<StripeLoc, ObjectsError> {
        let total = codec.total_shards();
        let placement = view.placement();
        let nodes = placement.place(id, stripe, total);
        if nodes.len() < total {
            return Err(ObjectsError::NotEnoughDatanodes {
                available: nodes.len(),
                needed: total,
            });
        }
        let stores = nodes
            .iter()
            .map(|n| view.node(*n))
            .collect::<Result<Vec<_>, _>>()?;
        let data_len = data.len() as u64;
        let (shards, crcs) = encode(codec, data).await?;
        let down = view.down();
        let mut locs: Vec<ShardLoc> = shards
            .iter()
            .zip(&nodes)
            .zip(&crcs)
            .map(|((shard, node), crc)| ShardLoc {
                node: *node,
                len: shard.len() as u64,
                crc32c: *crc,
            })
            .collect();
        let local: Vec<bool> = stores.iter().map(|s| s.is_local()).collect();
        let writes = shards
            .iter()
            .cloned()
            .zip(stores)
            .enumerate()
            .map(|(i, (shard, store))| {
                // A datanode known to be down is not tried: its shard goes to a spare.
                let skip = down.contains(&nodes[i]);
                let crc = crcs[i];
                async move {
                    if skip {
                        return Err(DatanodeError::Closed);
                    }
                    store
                        .put_with_crc(ShardId::new(id, stripe, i as u32), shard, crc)
                        .await
                }
            });
        let mut failed = Vec::new();
        let mut written = 0;
        for (i, r) in join_all(writes).await.into_iter().enumerate() {
            match r {
                Ok(info) if info.crc32c == locs[i].crc32c => {
                    self.metrics.shard_traffic("write", local[i], locs[i].len);
                    written += 1;
                }
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
                let Some(store) = view.store(node) else {
                    continue;
                };
                let sid = ShardId::new(id, stripe, i as u32);
                match store.put_with_crc(sid, shards[i].clone(), crcs[i]).await {
                    Ok(info) if info.crc32c == locs[i].crc32c => {
                        tracing::info!(%id, stripe, shard = i, %node, "shard handed off");
                        self.metrics.handoffs.inc();
                        self.metrics
                            .shard_traffic("write", store.is_local(), locs[i].len);
                        locs[i].node = node;
                        written += 1;
                    }
                    _ => tracing::warn!(%id, stripe, shard = i, %node, "handoff failed too"),
                }
            }
        }
        let needed = self.write_quorum_for(codec.scheme());
        if written < needed {
            return Err(ObjectsError::WriteQuorum { written, needed });
        }
        self.metrics.stripes_written.inc();
        // Shards that failed everywhere (but within quorum) are recorded where they belong;
        // the scrubber finds them missing and rebuilds them.
        Ok(StripeLoc {
            len: data_len,
            shards: locs,
        })
    }
}

/// The shards of a stripe (data shards are slices of `data`, see
/// [`StripeCodec::encode_bytes`]) and the CRC32C of each, the one checksum computed on a
/// shard's way in. Big stripes are coded on a blocking thread so that the async workers keep
/// serving sockets meanwhile.
async fn encode(codec: &StripeCodec, data: Bytes) -> Result<(Vec<Bytes>, Vec<u32>), ObjectsError> {
    let big = data.len() >= BLOCKING_ENCODE_BYTES;
    let codec = codec.clone();
    let work = move || {
        let shards = codec.encode_bytes(data);
        let crcs = shards.iter().map(|s| crc32c(s)).collect::<Vec<_>>();
        (shards, crcs)
    };
    if !big {
        return Ok(work());
    }
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ObjectsError::Inconsistent(format!("encoding task failed: {e}")))
}

/// Stripes of at least this many bytes are encoded off the async worker threads.
const BLOCKING_ENCODE_BYTES: usize = 256 << 10;
