//! The object data path: a body stream is cut into stripes stored as shards on datanodes (or
//! kept inline in the metadata record when small), committed to metadata only after every
//! shard is durable; reads stream stripes back, touching only those a range needs; replaced
//! and deleted objects' shards are removed by a background garbage collector.
//!
//! Depends only on the [`MetadataStore`] and [`ShardStore`] traits, never on HTTP or an
//! engine. Invariants: an object record is committed only after all its shards are fsynced
//! (so a crash never exposes a half-written object), and at most `max_in_flight` stripes of a
//! body are held in memory at once (so memory does not grow with object size).

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use cairn_datanode::{DatanodeError, ShardStore};
use cairn_metadata::{
    Command, CommandOutput, MetadataError, MetadataStore, ObjectData, ObjectRecord, ShardLoc,
    StripeLoc,
};
use cairn_placement::{Placement, StaticPlacement};
use cairn_types::{BucketName, EcScheme, NodeId, ObjectId, ObjectKey, ShardId};
use futures::stream::{self, BoxStream, FuturesOrdered};
use futures::{Stream, StreamExt, TryStreamExt};
use md5::{Digest, Md5};
use tokio::sync::Notify;

mod gc;

pub use gc::GcWorker;

/// Errors of the object data path.
#[derive(Debug, thiserror::Error)]
pub enum ObjectsError {
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error(transparent)]
    Datanode(#[from] DatanodeError),
    #[error("no datanode {0} in this cluster")]
    UnknownNode(NodeId),
    #[error("object data is inconsistent: {0}")]
    Inconsistent(String),
}

/// A failure while writing a body: either the body stream itself failed (a client error,
/// a bad checksum…) or storing it did.
#[derive(Debug, thiserror::Error)]
pub enum PutError<E> {
    #[error("request body: {0}")]
    Body(E),
    #[error(transparent)]
    Store(#[from] ObjectsError),
}

/// Tunables of the data path.
#[derive(Debug, Clone)]
pub struct ObjectsConfig {
    /// Data bytes per stripe.
    pub stripe_size: usize,
    /// Bodies smaller than this are stored inline in the metadata record.
    pub inline_threshold: usize,
    /// Stripes written concurrently (and so held in memory) per body.
    pub max_in_flight: usize,
}

impl Default for ObjectsConfig {
    fn default() -> Self {
        ObjectsConfig {
            stripe_size: 4 << 20,
            inline_threshold: 64 << 10,
            max_in_flight: 2,
        }
    }
}

/// A body written to storage but not yet committed to metadata.
#[derive(Debug)]
pub struct WrittenBody {
    pub data: ObjectData,
    pub size: u64,
    /// Hex MD5 of the body (the ETag of a single-part upload).
    pub md5_hex: String,
}

/// The object data service.
#[derive(Clone)]
pub struct ObjectService {
    meta: Arc<dyn MetadataStore>,
    nodes: Arc<BTreeMap<NodeId, Arc<dyn ShardStore>>>,
    placement: Arc<dyn Placement>,
    config: ObjectsConfig,
    gc_wakeup: Arc<Notify>,
}

impl ObjectService {
    pub fn new(
        meta: Arc<dyn MetadataStore>,
        nodes: BTreeMap<NodeId, Arc<dyn ShardStore>>,
        config: ObjectsConfig,
    ) -> Self {
        let placement = Arc::new(StaticPlacement::new(nodes.keys().copied().collect()));
        ObjectService {
            meta,
            nodes: Arc::new(nodes),
            placement,
            config,
            gc_wakeup: Arc::new(Notify::new()),
        }
    }

    pub fn metadata(&self) -> &Arc<dyn MetadataStore> {
        &self.meta
    }

    pub fn nodes(&self) -> &BTreeMap<NodeId, Arc<dyn ShardStore>> {
        &self.nodes
    }

    /// The garbage collector for this service's shards.
    pub fn gc_worker(&self) -> GcWorker {
        GcWorker::new(
            self.meta.clone(),
            self.nodes.clone(),
            self.gc_wakeup.clone(),
        )
    }

    fn node(&self, id: NodeId) -> Result<&Arc<dyn ShardStore>, ObjectsError> {
        self.nodes.get(&id).ok_or(ObjectsError::UnknownNode(id))
    }

    /// Where stripe `stripe` of object `id` goes (one shard per stripe until erasure coding).
    fn place(&self, id: ObjectId, stripe: u32) -> Result<NodeId, ObjectsError> {
        self.placement
            .place(id, stripe, 1)
            .first()
            .copied()
            .ok_or_else(|| ObjectsError::Inconsistent("no datanodes configured".into()))
    }

    /// Streams `body` into storage. Nothing is visible to readers until [`Self::commit`].
    /// On error, shards already written are removed (best effort; the orphan scrub removes
    /// what a crash leaves behind).
    pub async fn write_body<S, E>(&self, body: S) -> Result<WrittenBody, PutError<E>>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
    {
        let id = ObjectId::random();
        let mut body = std::pin::pin!(body);
        let mut md5 = Md5::new();
        let mut buf = BytesMut::new();
        let mut size: u64 = 0;
        let mut pending = FuturesOrdered::new();
        let mut stripes: Vec<StripeLoc> = Vec::new();
        let mut next_stripe: u32 = 0;
        let stripe_size = self.config.stripe_size;

        let result: Result<(), PutError<E>> = async {
            loop {
                let chunk = body.next().await.transpose().map_err(PutError::Body)?;
                let done = chunk.is_none();
                if let Some(chunk) = chunk {
                    md5.update(&chunk);
                    size += chunk.len() as u64;
                    buf.extend_from_slice(&chunk);
                }
                // Emit full stripes; at the end, the remainder unless it goes inline.
                while buf.len() >= stripe_size
                    || (done
                        && !buf.is_empty()
                        && (next_stripe > 0 || buf.len() >= self.config.inline_threshold))
                {
                    let take = buf.len().min(stripe_size);
                    let data = buf.split_to(take).freeze();
                    let node = self.place(id, next_stripe)?;
                    let store = self.node(node)?.clone();
                    let sid = ShardId::new(id, next_stripe, 0);
                    next_stripe += 1;
                    pending.push_back(async move {
                        let len = data.len() as u64;
                        let info = store.put(sid, data).await?;
                        Ok::<_, ObjectsError>(StripeLoc {
                            len,
                            shards: vec![ShardLoc {
                                node,
                                len: info.len,
                                crc32c: info.crc32c,
                            }],
                        })
                    });
                    while pending.len() >= self.config.max_in_flight {
                        if let Some(r) = pending.next().await {
                            stripes.push(r?);
                        }
                    }
                }
                if done {
                    break;
                }
            }
            while let Some(r) = pending.next().await {
                stripes.push(r?);
            }
            Ok(())
        }
        .await;

        if let Err(e) = result {
            // Let in-flight writes finish so that their shards can be removed too.
            while pending.next().await.is_some() {}
            self.remove_shards(id, next_stripe).await;
            return Err(e);
        }
        let data = if next_stripe == 0 {
            ObjectData::Inline(buf.to_vec())
        } else {
            ObjectData::Striped {
                id,
                ec: EcScheme::SINGLE,
                stripe_size: stripe_size as u64,
                stripes,
            }
        };
        Ok(WrittenBody {
            data,
            size,
            md5_hex: hex::encode(md5.finalize()),
        })
    }

    async fn remove_shards(&self, id: ObjectId, stripes: u32) {
        for s in 0..stripes {
            if let Ok(node) = self.place(id, s) {
                if let Ok(store) = self.node(node) {
                    if let Err(e) = store.delete(ShardId::new(id, s, 0)).await {
                        tracing::warn!(error = %e, "could not remove shard of a failed upload");
                    }
                }
            }
        }
    }

    /// Discards a written body that will not be committed.
    pub async fn discard(&self, body: WrittenBody) {
        if let ObjectData::Striped { id, stripes, .. } = &body.data {
            self.remove_shards(*id, stripes.len() as u32).await;
        }
    }

    /// Commits `record` as the object at `key`; the replaced object's shards go to GC.
    pub async fn commit(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        record: ObjectRecord,
    ) -> Result<(), ObjectsError> {
        let out = self
            .meta
            .apply(Command::PutObject {
                bucket: bucket.clone(),
                key: key.clone(),
                record,
            })
            .await?;
        self.after_replace(out);
        Ok(())
    }

    /// Deletes the object at `key` (absent is fine); returns whether one existed.
    pub async fn delete(&self, bucket: &BucketName, key: &ObjectKey) -> Result<bool, ObjectsError> {
        let out = self
            .meta
            .apply(Command::DeleteObject {
                bucket: bucket.clone(),
                key: key.clone(),
            })
            .await?;
        let existed = matches!(out, CommandOutput::Replaced(Some(_)));
        self.after_replace(out);
        Ok(existed)
    }

    fn after_replace(&self, out: CommandOutput) {
        if let CommandOutput::Replaced(Some(old)) = out {
            if !old.data.shards().is_empty() {
                self.gc_wakeup.notify_one();
            }
        }
    }

    /// Streams `range` (byte offsets within the object, already validated against its size)
    /// of `record`'s data. Stripes are fetched `max_in_flight` at a time, in order.
    pub fn read(
        &self,
        record: &ObjectRecord,
        range: Range<u64>,
    ) -> BoxStream<'static, Result<Bytes, ObjectsError>> {
        match &record.data {
            ObjectData::Inline(bytes) => {
                let (s, e) = (range.start as usize, range.end as usize);
                let out = bytes
                    .get(s..e)
                    .map(Bytes::copy_from_slice)
                    .ok_or_else(|| ObjectsError::Inconsistent("inline range out of bounds".into()));
                stream::once(async move { out }).boxed()
            }
            ObjectData::Striped { id, stripes, .. } => {
                let mut parts = Vec::new();
                let mut offset = 0u64;
                for (i, st) in stripes.iter().enumerate() {
                    let (start, end) = (offset, offset + st.len);
                    offset = end;
                    if end <= range.start || start >= range.end {
                        continue;
                    }
                    let lo = range.start.max(start) - start;
                    let hi = range.end.min(end) - start;
                    parts.push((ShardId::new(*id, i as u32, 0), st.shards.clone(), lo..hi));
                }
                let this = self.clone();
                stream::iter(parts)
                    .map(move |(sid, shards, r)| {
                        let this = this.clone();
                        async move { this.read_stripe(sid, &shards, r).await }
                    })
                    .buffered(self.config.max_in_flight)
                    .into_stream()
                    .boxed()
            }
        }
    }

    async fn read_stripe(
        &self,
        sid: ShardId,
        shards: &[ShardLoc],
        r: Range<u64>,
    ) -> Result<Bytes, ObjectsError> {
        let loc = shards
            .first()
            .ok_or_else(|| ObjectsError::Inconsistent(format!("stripe {sid} has no shards")))?;
        let data = self.node(loc.node)?.get(sid).await?;
        if data.len() as u64 != loc.len || crc_fast::crc32_iscsi(&data) != loc.crc32c {
            return Err(ObjectsError::Datanode(DatanodeError::Corrupt {
                id: sid,
                reason: "shard differs from the metadata record".into(),
            }));
        }
        let (lo, hi) = (r.start as usize, r.end as usize);
        if hi > data.len() {
            return Err(ObjectsError::Inconsistent(format!("stripe {sid} is short")));
        }
        Ok(data.slice(lo..hi))
    }
}

/// How often the GC worker polls when nothing wakes it.
pub(crate) const GC_POLL: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests;
