//! The object data path: a body stream is cut into stripes stored as shards on datanodes (or
//! kept inline in the metadata record when small), committed to metadata only after every
//! shard is durable; reads stream stripes back, touching only those a range needs (across the
//! parts of a multipart object too, each part being its own inline or striped body); replaced
//! and deleted objects' shards are removed by a background garbage collector.
//!
//! Which datanodes exist, where they are, which are drained or down, and the ring over them
//! is the [`Membership`] (module `membership`), a value the service shares with the garbage
//! collector, the healer and the cluster watcher; each operation takes one
//! [`MembershipView`] and uses it throughout. Stripes are read by the one [`StripeReader`]
//! (module `reader`), which repair uses too.
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
use cairn_erasure::StripeCodec;
use cairn_metadata::{
    Command, CommandOutput, Deletion, MetadataError, MetadataStore, ObjectData, ObjectRecord,
    StripeLoc, WriteCondition,
};
use cairn_types::{BucketName, EcScheme, NodeId, ObjectId, ObjectKey, ShardId};
use futures::stream::{self, BoxStream, FuturesOrdered};
use futures::{Stream, StreamExt, TryStreamExt};
use md5::{Digest, Md5};
use tokio::sync::Notify;

mod classes;
mod gc;
mod hasher;
mod in_flight;
pub mod membership;
mod metrics;
mod reader;
mod rewrap;
mod sealed;
mod service;
mod stripe;

pub use cairn_sse::Kek;
pub use classes::{class_of, set_class};
pub use gc::GcWorker;
pub use in_flight::{InFlight, RepairHint, RepairHints};
pub use membership::{Membership, MembershipView, NodeMap, NodeTopology, RingMetrics};
pub use metrics::{ObjectMetrics, ShardTraffic};
pub use reader::{ShardSource, StripeReader};
pub use sealed::{CustomerKey, Protection, DEFAULT_KMS_KEY};
pub use service::*;

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
    #[error("invalid data-path configuration: {0}")]
    Config(String),
    #[error("{available} datanodes are registered; the erasure coding needs {needed}")]
    NotEnoughDatanodes { available: usize, needed: usize },
    #[error("only {written} of {needed} required shards of a stripe were stored")]
    WriteQuorum { written: usize, needed: usize },
    #[error("only {available} of the {needed} shards needed to read a stripe are available")]
    TooFewShards { available: usize, needed: usize },
    #[error(transparent)]
    Erasure(#[from] cairn_erasure::ErasureError),
    #[error("the body has {received} bytes, {declared} were declared")]
    IncompleteBody { declared: u64, received: u64 },
    #[error("the part's checksum is {got}; the upload's parts carry {expected}")]
    ChecksumTypeMismatch { expected: String, got: String },
    #[error("no object at key {key}")]
    NoSuchKey {
        key: String,
        /// The version id of the delete marker that is the key's newest entry, if one is.
        delete_marker: Option<String>,
    },
    #[error("no version {version_id} of key {key}")]
    NoSuchVersion { key: String, version_id: String },
    #[error("version {version_id} is a delete marker")]
    IsDeleteMarker { version_id: String },
    #[error("the checksum of part {part_number} is not the one uploaded")]
    PartChecksumMismatch { part_number: u32 },
    #[error("the object size given ({claimed}) is not the object's size ({actual})")]
    ObjectSizeMismatch { claimed: String, actual: u64 },
    #[error("the {header} given is not the object's checksum")]
    BadDigest { header: String },
    #[error("the storage class {0} is not one this cluster has")]
    InvalidStorageClass(String),
    #[error(transparent)]
    Sse(#[from] cairn_sse::SseError),
    #[error("the object is encrypted with a customer-provided key, which the request must give")]
    CustomerKeyRequired,
    #[error("the customer-provided key is not the one the object is encrypted with")]
    CustomerKeyMismatch,
    #[error("the object is not encrypted with a customer-provided key")]
    CustomerKeyNotApplicable,
    #[error("KMS key {0:?} does not exist")]
    KmsKeyNotFound(String),
}

impl ObjectsError {
    /// Whether the metadata command that failed with this error may still have taken
    /// effect (see [`MetadataError::outcome_unknown`]). Data written for such a command must
    /// be kept, never discarded: the orphan scrub removes it later if nothing refers to it.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, ObjectsError::Metadata(e) if e.outcome_unknown())
    }
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
    /// Stripes a read fetches ahead of the one being sent (and so holds in memory).
    pub read_ahead: usize,
    /// Reed-Solomon layout of new stripes.
    pub ec: EcScheme,
    /// Shards of a stripe that must be durable before it counts as written; `None` means
    /// k+1 (capped at k+m).
    pub write_quorum: Option<usize>,
    /// Accept fewer datanodes than the scheme needs (a cluster whose other nodes have not
    /// registered yet): striped writes fail with [`ObjectsError::NotEnoughDatanodes`] until
    /// [`Membership::set_nodes`] brings enough.
    pub allow_fewer_datanodes: bool,
}

impl ObjectsConfig {
    /// The effective write quorum.
    pub fn write_quorum(&self) -> usize {
        self.write_quorum
            .unwrap_or((self.ec.data as usize + 1).min(self.ec.total()))
    }
}

impl Default for ObjectsConfig {
    fn default() -> Self {
        ObjectsConfig {
            stripe_size: 4 << 20,
            inline_threshold: 64 << 10,
            max_in_flight: 2,
            read_ahead: 3,
            ec: EcScheme { data: 4, parity: 2 },
            write_quorum: None,
            allow_fewer_datanodes: false,
        }
    }
}

/// A body written to storage but not yet committed to metadata. While it exists its object
/// id counts as in flight ([`ObjectService::is_in_flight`]), so that the scrubber never takes
/// its shards for orphans; drop it only after the commit (or the discard).
#[derive(Debug)]
pub struct WrittenBody {
    pub data: ObjectData,
    pub size: u64,
    /// Hex MD5 of the body (the ETag of a single-part upload).
    pub md5_hex: String,
    pub in_flight: InFlight,
}

/// The object data service.
#[derive(Clone)]
pub struct ObjectService {
    meta: Arc<dyn MetadataStore>,
    membership: Membership,
    codec: StripeCodec,
    config: ObjectsConfig,
    gc_wakeup: Arc<Notify>,
    metrics: ObjectMetrics,
    in_flight: in_flight::InFlightSet,
    hints: RepairHints,
    classes: Arc<classes::ClassTable>,
    keyring: Arc<sealed::KeyringCell>,
    /// Buffers encrypted bodies are opened into, reused across reads.
    plain_buffers: cairn_sse::PlainBuffers,
}

impl ObjectService {
    /// A service writing new objects with `config.ec` over `nodes`. Fails when the scheme is
    /// invalid, needs more datanodes than there are, or the write quorum is out of range.
    pub fn new(
        meta: Arc<dyn MetadataStore>,
        nodes: BTreeMap<NodeId, Arc<dyn ShardStore>>,
        config: ObjectsConfig,
    ) -> Result<Self, ObjectsError> {
        let codec = StripeCodec::new(config.ec).map_err(|e| ObjectsError::Config(e.to_string()))?;
        let total = codec.total_shards();
        if total > nodes.len() && !config.allow_fewer_datanodes {
            return Err(ObjectsError::Config(format!(
                "erasure coding {}+{} needs {total} datanodes, there are {}",
                config.ec.data,
                config.ec.parity,
                nodes.len()
            )));
        }
        let quorum = config.write_quorum();
        if quorum < codec.data_shards() || quorum > total {
            return Err(ObjectsError::Config(format!(
                "write quorum {quorum} must be between {} and {total}",
                codec.data_shards()
            )));
        }
        let metrics = ObjectMetrics::default();
        let membership = Membership::with_metrics(nodes, total, metrics.ring.clone())?;
        Ok(ObjectService {
            meta,
            membership,
            codec,
            config,
            gc_wakeup: Arc::new(Notify::new()),
            metrics,
            in_flight: in_flight::InFlightSet::default(),
            hints: RepairHints::default(),
            classes: Arc::default(),
            keyring: Arc::default(),
            plain_buffers: cairn_sse::PlainBuffers::default(),
        })
    }

    /// The datanodes, their places, drained and down ones, and the ring: shared with
    /// whoever keeps them current. Take one [`Membership::view`] per operation.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// Whether a body with this object id is being written and not yet committed or
    /// discarded by this process.
    pub fn is_in_flight(&self, id: ObjectId) -> bool {
        self.in_flight.contains(id)
    }

    /// The object ids of every body this process is writing and has not committed or
    /// discarded yet (what other nodes' orphan cleaners ask for before deleting).
    pub fn in_flight_ids(&self) -> Vec<ObjectId> {
        self.in_flight.ids()
    }

    /// Stripes that degraded reads found damaged, for the repairer.
    pub fn repair_hints(&self) -> &RepairHints {
        &self.hints
    }

    /// Reads that had to decode from parity because a shard was missing or corrupt.
    pub fn degraded_reads(&self) -> u64 {
        self.metrics.degraded_reads.get()
    }

    /// The data path's counters (for the metrics endpoint).
    pub fn metrics(&self) -> &ObjectMetrics {
        &self.metrics
    }

    /// The erasure-coding scheme of `STANDARD` (new objects that name no class).
    pub fn scheme(&self) -> EcScheme {
        self.codec.scheme()
    }

    pub fn metadata(&self) -> &Arc<dyn MetadataStore> {
        &self.meta
    }

    /// The garbage collector for this service's shards.
    pub fn gc_worker(&self) -> GcWorker {
        GcWorker::new(
            self.meta.clone(),
            self.membership.clone(),
            self.gc_wakeup.clone(),
        )
    }

    /// Wakes the garbage collector (after deletes, or when this node becomes the one that
    /// collects).
    pub fn wake_gc(&self) {
        self.gc_wakeup.notify_one();
    }

    /// The most memory one body being written ([`Self::write_body`]) holds at a time, in
    /// bytes: the stripe being gathered; for each of the `max_in_flight` stripes being
    /// written and hashed its data and its parity shards (data shards are slices of the
    /// stripe; a stripe that `k` does not divide is copied whole into its shards); and a
    /// stripe's worth for the buffers of the connections involved. Local datanodes keep the
    /// shards they are given (no copy); remote ones hold theirs in their own process. Bodies
    /// below this size hold about their own size. With the defaults (4 MiB stripes, 2 in
    /// flight, 4+2): 4 + 2 × (4 + 2) + 4 = 20 MiB.
    pub fn write_working_set(&self) -> u64 {
        let stripe = self.config.stripe_size as u64;
        let ec = self.codec.scheme();
        let k = u64::from(ec.data.max(1));
        let shard = stripe.div_ceil(k);
        let coded = if stripe.is_multiple_of(k) {
            stripe + shard * u64::from(ec.parity)
        } else {
            stripe + shard * ec.total() as u64
        };
        let in_flight = self.config.max_in_flight.max(1) as u64;
        stripe + in_flight * coded + stripe
    }

    /// [`Self::write_body_as`] in the `STANDARD` scheme.
    pub async fn write_body<S, E>(&self, body: S) -> Result<WrittenBody, PutError<E>>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
    {
        self.write_body_as(body, self.codec.scheme()).await
    }

    /// Streams `body` into storage, its stripes coded in `ec`. Nothing is visible to readers
    /// until [`Self::commit`]. On error, shards already written are removed (best effort;
    /// the orphan scrub removes what a crash leaves behind). Every stripe is placed by the
    /// membership of the start.
    pub async fn write_body_as<S, E>(
        &self,
        body: S,
        ec: EcScheme,
    ) -> Result<WrittenBody, PutError<E>>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
    {
        self.write_body_inner(body, ec, true).await
    }

    /// [`Self::write_body_as`]; without `md5`, the body is not hashed (its MD5 is left
    /// zero: a sealed body's ETag is its plaintext's, computed before sealing).
    pub(crate) async fn write_body_inner<S, E>(
        &self,
        body: S,
        ec: EcScheme,
        md5: bool,
    ) -> Result<WrittenBody, PutError<E>>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
    {
        let codec = self.codec_for(ec).map_err(PutError::Store)?;
        let view = self.membership.view();
        let id = ObjectId::random();
        let in_flight = self.in_flight.enter(id);
        let mut body = std::pin::pin!(body);
        // Started with the first stripe: a body that stays inline is hashed at the end.
        let mut hasher: Option<hasher::StripeHasher> = None;
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
                let mut rest = chunk.unwrap_or_default();
                size += rest.len() as u64;
                // Fill the stripe being gathered; emit it when full, and at the end the
                // remainder unless it goes inline. A striped body gathers each stripe in one
                // buffer of exactly the stripe size: no regrowth, no copy, and allocations of
                // one size that the allocator reuses.
                loop {
                    let n = rest.len().min(stripe_size - buf.len());
                    if n > 0 {
                        let striped =
                            next_stripe > 0 || buf.len() + n > self.config.inline_threshold;
                        if striped && buf.capacity() < stripe_size {
                            buf.reserve(stripe_size - buf.len());
                        }
                        buf.extend_from_slice(&rest.split_to(n));
                    }
                    let full = buf.len() == stripe_size;
                    let last = done
                        && !buf.is_empty()
                        && (next_stripe > 0 || buf.len() >= self.config.inline_threshold);
                    if !full && !last {
                        break;
                    }
                    let data = std::mem::take(&mut buf).freeze();
                    // The stripe counts as in flight until it is both written and hashed.
                    let hashed = match md5 {
                        true => futures::FutureExt::boxed(
                            hasher
                                .get_or_insert_with(hasher::StripeHasher::start)
                                .hash(data.clone()),
                        ),
                        false => futures::FutureExt::boxed(futures::future::ready(Ok(()))),
                    };
                    let (this, view, codec) = (self.clone(), view.clone(), codec.clone());
                    let stripe = next_stripe;
                    next_stripe += 1;
                    pending.push_back(async move {
                        let (written, hashed) = futures::join!(
                            this.write_stripe(&view, &codec, id, stripe, data),
                            hashed
                        );
                        hashed?;
                        written
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

        let md5 = match (result, hasher) {
            (Err(e), _) => Err(e),
            (Ok(()), None) if !md5 => Ok([0u8; 16]),
            (Ok(()), None) => Ok(Md5::digest(&buf).into()),
            (Ok(()), Some(h)) => h.finish().await.map_err(PutError::Store),
        };
        let md5: [u8; 16] = match md5 {
            Ok(md5) => md5,
            Err(e) => {
                // Let in-flight writes finish so that their shards can be removed too.
                while pending.next().await.is_some() {}
                self.remove_shards(&view, id, ec, next_stripe).await;
                return Err(e);
            }
        };
        let data = if next_stripe == 0 {
            ObjectData::Inline(buf.to_vec())
        } else {
            ObjectData::Striped {
                id,
                ec,
                stripe_size: stripe_size as u64,
                stripes,
            }
        };
        Ok(WrittenBody {
            data,
            size,
            md5_hex: hex::encode(md5),
            in_flight,
        })
    }

    /// Removes every shard that stripes `0..stripes` of `id`, coded in `ec`, may have
    /// written when placed by `view` (placement is deterministic, and deleting an absent
    /// shard is fine).
    async fn remove_shards(&self, view: &MembershipView, id: ObjectId, ec: EcScheme, stripes: u32) {
        let total = ec.total();
        let placement = view.placement();
        for s in 0..stripes {
            let placed = placement.place(id, s, total);
            let spare = placement.fallbacks(id, s, &placed, total);
            for (i, node) in placed.iter().enumerate() {
                // A shard may also have been handed off to any spare node.
                for n in std::iter::once(node).chain(&spare) {
                    if let Some(store) = view.store(*n) {
                        if let Err(e) = store.delete(ShardId::new(id, s, i as u32)).await {
                            tracing::warn!(error = %e, "could not remove shard of a failed upload");
                        }
                    }
                }
            }
        }
    }

    /// Discards a written body that will not be committed.
    pub async fn discard(&self, body: WrittenBody) {
        self.discard_data(&body.data).await;
    }

    /// Removes the shards of data that nothing references (a body whose commit failed).
    /// Never after a commit whose outcome is unknown ([`ObjectsError::outcome_unknown`]):
    /// the commit may have taken effect, and the data would be lost.
    async fn discard_data(&self, data: &ObjectData) {
        if let ObjectData::Striped {
            id, stripes, ec, ..
        } = data.stored()
        {
            let view = self.membership.view();
            self.remove_shards(&view, *id, *ec, stripes.len() as u32)
                .await;
        }
    }

    /// Commits `record` as the object at `key`; returns the stored record (with its final
    /// version id). Shards no version references any more go to GC.
    pub async fn commit(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        record: ObjectRecord,
    ) -> Result<ObjectRecord, ObjectsError> {
        self.commit_if(bucket, key, record, WriteCondition::Always)
            .await
    }

    /// [`Self::commit`] only if the key's current object satisfies `condition` (checked in
    /// the same metadata step as the write).
    pub async fn commit_if(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        record: ObjectRecord,
        condition: WriteCondition,
    ) -> Result<ObjectRecord, ObjectsError> {
        let out = self
            .meta
            .apply(Command::PutObject {
                bucket: bucket.clone(),
                key: key.clone(),
                record,
                condition,
            })
            .await?;
        self.gc_wakeup.notify_one();
        match out {
            CommandOutput::Stored(rec) => Ok(*rec),
            other => Err(ObjectsError::Inconsistent(format!(
                "PutObject answered {other:?}"
            ))),
        }
    }

    /// Deletes the object at `key` (absent is fine): removes it, or adds a delete marker
    /// with id `marker_id` in a versioned bucket.
    pub async fn delete(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        marker_id: String,
        now_ms: i64,
    ) -> Result<Deletion, ObjectsError> {
        self.apply_delete(Command::DeleteObject {
            bucket: bucket.clone(),
            key: key.clone(),
            marker_version_id: marker_id,
            marker_ms: now_ms,
        })
        .await
    }

    /// Removes one version for good (`None`: the null version); its shards go to GC.
    /// Refused while Object Lock protects it (`bypass_governance`: the caller may remove a
    /// version under GOVERNANCE retention).
    pub async fn delete_version(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        version_id: Option<String>,
        bypass_governance: bool,
    ) -> Result<Deletion, ObjectsError> {
        self.apply_delete(Command::DeleteVersionAt {
            bucket: bucket.clone(),
            key: key.clone(),
            version_id,
            now_ms: cairn_types::clock::now_ms(),
            bypass_governance,
        })
        .await
    }

    async fn apply_delete(&self, cmd: Command) -> Result<Deletion, ObjectsError> {
        let out = self.meta.apply(cmd).await?;
        self.gc_wakeup.notify_one();
        match out {
            CommandOutput::Deleted(d) => Ok(d),
            other => Err(ObjectsError::Inconsistent(format!(
                "a delete answered {other:?}"
            ))),
        }
    }

    /// Applies a multipart command (`PutPart`, `CompleteUpload`, `AbortUpload`…), waking the
    /// garbage collector afterwards since such commands may queue dead shards.
    pub(crate) async fn apply_upload_command(
        &self,
        cmd: Command,
    ) -> Result<CommandOutput, ObjectsError> {
        let out = self.meta.apply(cmd).await?;
        self.gc_wakeup.notify_one();
        Ok(out)
    }

    /// Streams `range` (byte offsets within the object, already validated against its size)
    /// of `record`'s data. Stripes are fetched `max_in_flight` at a time, in order.
    pub fn read(
        &self,
        record: &ObjectRecord,
        range: Range<u64>,
    ) -> BoxStream<'static, Result<Bytes, ObjectsError>> {
        self.read_with(record, range, None)
    }

    /// [`Self::read`] of an object that may be encrypted with a customer-provided key
    /// (`customer`, the key the request gave).
    pub fn read_with(
        &self,
        record: &ObjectRecord,
        range: Range<u64>,
        customer: Option<Arc<CustomerKey>>,
    ) -> BoxStream<'static, Result<Bytes, ObjectsError>> {
        self.read_data_in(self.membership.view(), &record.data, range, customer)
    }

    /// Streams `range` of `data` (offsets within it), every stripe read with the membership
    /// of the call.
    pub fn read_data(
        &self,
        data: &ObjectData,
        range: Range<u64>,
    ) -> BoxStream<'static, Result<Bytes, ObjectsError>> {
        self.read_data_in(self.membership.view(), data, range, None)
    }

    pub(crate) fn read_data_in(
        &self,
        view: Arc<MembershipView>,
        data: &ObjectData,
        range: Range<u64>,
        customer: Option<Arc<CustomerKey>>,
    ) -> BoxStream<'static, Result<Bytes, ObjectsError>> {
        match data {
            ObjectData::Encrypted(e) => self.read_encrypted(view, e, range, customer),
            ObjectData::Parts(parts) => {
                // Only the parts the range touches, one after the other.
                let mut pieces = Vec::new();
                let mut offset = 0u64;
                for p in parts {
                    let (start, end) = (offset, offset + p.size);
                    offset = end;
                    if end <= range.start || start >= range.end || p.size == 0 {
                        continue;
                    }
                    let lo = range.start.max(start) - start;
                    let hi = range.end.min(end) - start;
                    pieces.push((p.data.clone(), lo..hi));
                }
                if offset < range.end {
                    let err = ObjectsError::Inconsistent("range beyond the object's parts".into());
                    return stream::once(async move { Err(err) }).boxed();
                }
                let this = self.clone();
                stream::iter(pieces)
                    .flat_map(move |(data, r)| match data {
                        ObjectData::Parts(_) => stream::once(async {
                            Err(ObjectsError::Inconsistent("nested parts".into()))
                        })
                        .boxed(),
                        data => this.read_data_in(view.clone(), &data, r, customer.clone()),
                    })
                    .boxed()
            }
            ObjectData::Inline(bytes) => {
                let (s, e) = (range.start as usize, range.end as usize);
                let out = bytes
                    .get(s..e)
                    .map(Bytes::copy_from_slice)
                    .ok_or_else(|| ObjectsError::Inconsistent("inline range out of bounds".into()));
                stream::once(async move { out }).boxed()
            }
            ObjectData::Striped {
                id, stripes, ec, ..
            } => {
                let (id, ec) = (*id, *ec);
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
                    parts.push((i as u32, st.clone(), lo..hi));
                }
                let this = self.clone();
                stream::iter(parts)
                    .map(move |(s, st, r)| {
                        let (this, view) = (this.clone(), view.clone());
                        async move { this.read_stripe(&view, id, ec, s, &st, r).await }
                    })
                    // The next stripes are fetched while the current one is sent.
                    .buffered(self.config.read_ahead.max(1))
                    .map_ok(|pieces| stream::iter(pieces.into_iter().map(Ok)))
                    .try_flatten()
                    .boxed()
            }
        }
    }
}

/// How often the GC worker polls when nothing wakes it.
pub(crate) const GC_POLL: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests;
