//! Encryption at rest of bodies (the cryptography is `cairn-sse`'s): a body to protect is
//! sealed as it streams, before it is cut into stripes, so shards and inline records hold
//! only ciphertext and scrubbing and repair never need a key; its data key, wrapped, goes
//! into the record as [`ObjectData::Encrypted`]. Reads open only the chunks a range touches.
//!
//! This module owns the node's [`Keyring`] of master keys and KMS keys (loaded from
//! metadata), what a [`Protection`] asks for, how an upload records the protection of its
//! parts ([`UPLOAD_SSE_HEADER`]), and the checks of a customer key against a stored body.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, RwLock};

use bytes::{Bytes, BytesMut};
use cairn_metadata::master_keys::{self, StoredKmsKey, StoredMasterKey};
use cairn_metadata::{
    Command, EncryptedData, MetadataError, ObjectData, SealedKey, UPLOAD_SSE_HEADER,
};
use cairn_sse::{DataKey, Kek, Keyring, KmsKey, MasterKey, RunOpener, Sealer};
use cairn_types::EcScheme;
use futures::future::BoxFuture;
use futures::stream::{self, BoxStream};
use futures::{FutureExt, Stream, StreamExt, TryStreamExt};

pub use cairn_sse::CustomerKey;

use crate::{ObjectService, ObjectsError, PutError, WrittenBody};

/// How a new body is stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Protection {
    /// As sent.
    #[default]
    Plain,
    /// SSE-S3: sealed under a data key wrapped by the cluster's active master key.
    Managed,
    /// SSE-C: sealed under a data key wrapped by the client's key.
    Customer(Arc<CustomerKey>),
    /// SSE-KMS: sealed under a data key wrapped by the built-in KMS key of this name.
    Kms(String),
}

/// The KMS key `aws:kms` without a key id uses, made on first use (as AWS makes the
/// `aws/s3` key of an account).
pub const DEFAULT_KMS_KEY: &str = "aws/s3";

impl Protection {
    /// What an upload stores under [`UPLOAD_SSE_HEADER`] so that its parts are protected
    /// alike: `AES256`, or for SSE-C `C <salt> <mac>` (hex) recognizing the key.
    pub(crate) fn upload_mark(&self) -> Result<Option<String>, ObjectsError> {
        Ok(match self {
            Protection::Plain => None,
            Protection::Managed => Some("AES256".into()),
            Protection::Kms(name) => Some(format!("K {name}")),
            Protection::Customer(k) => {
                let (salt, mac) = k.fingerprint()?;
                Some(format!("C {} {}", hex::encode(salt), hex::encode(mac)))
            }
        })
    }

    /// The protection of a part of an upload whose headers are `headers`, the part
    /// request carrying `customer` (SSE-C uploads need the upload's key on every part).
    pub(crate) fn of_part(
        headers: &std::collections::BTreeMap<String, String>,
        customer: Option<Arc<CustomerKey>>,
    ) -> Result<Protection, ObjectsError> {
        let mark = headers.get(UPLOAD_SSE_HEADER).map(String::as_str);
        match (mark, customer) {
            (None, None) => Ok(Protection::Plain),
            (Some("AES256"), None) => Ok(Protection::Managed),
            (Some(m), None) if m.starts_with("K ") => Ok(Protection::Kms(m[2..].to_string())),
            (Some(m), Some(k)) if m.starts_with("C ") => {
                let mut it = m[2..].split(' ').map(hex::decode);
                match (it.next(), it.next()) {
                    (Some(Ok(salt)), Some(Ok(mac))) if k.matches(&salt, &mac) => {
                        Ok(Protection::Customer(k))
                    }
                    _ => Err(ObjectsError::Sse(cairn_sse::SseError::InvalidCustomerKey(
                        "The customer-provided key is not the one the upload was created with."
                            .into(),
                    ))),
                }
            }
            (Some(m), None) if m.starts_with("C ") => Err(ObjectsError::CustomerKeyRequired),
            (_, Some(_)) => Err(ObjectsError::CustomerKeyNotApplicable),
            (Some(other), None) => Err(ObjectsError::Inconsistent(format!(
                "unknown upload encryption {other:?}"
            ))),
        }
    }
}

/// The node's master keys (replaced whole when they change) and the key-encryption key
/// that opens them.
#[derive(Default)]
pub(crate) struct KeyringCell {
    ring: RwLock<Arc<Keyring>>,
    kek: RwLock<Option<Kek>>,
    /// A rotation's re-wrap is running in this process.
    pub(crate) rewrapping: std::sync::atomic::AtomicBool,
}

impl KeyringCell {
    fn get(&self) -> Arc<Keyring> {
        self.ring.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, ring: Keyring) {
        *self.ring.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(ring);
    }

    fn kek(&self) -> Result<Kek, ObjectsError> {
        self.kek
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| {
                ObjectsError::Config("encryption at rest has no key-encryption key".into())
            })
    }
}

impl ObjectService {
    /// Installs the master keys (from metadata, opened with this node's key-encryption
    /// key); the highest id wraps new data keys.
    pub fn set_keyring(&self, ring: Keyring) {
        self.keyring.set(ring);
    }

    /// The master keys in force.
    pub fn keyring(&self) -> Arc<Keyring> {
        self.keyring.get()
    }

    /// Opens the master keys metadata holds with `kek` and installs them; when there are
    /// none yet, makes the first (nodes starting at once: one key wins, all use it).
    /// Returns the ids loaded.
    pub async fn load_keyring(&self, kek: Kek) -> Result<Vec<u32>, ObjectsError> {
        *self.keyring.kek.write().unwrap_or_else(|e| e.into_inner()) = Some(kek);
        self.reload_keyring().await?;
        if self.keyring().active().is_none() {
            self.add_master_key().await?;
        }
        Ok(self.keyring().ids())
    }

    /// Reads the master and KMS keys from metadata again (another node may have added one).
    pub async fn reload_keyring(&self) -> Result<(), ObjectsError> {
        let kek = self.keyring.kek()?;
        let mut kms = Vec::new();
        for s in master_keys::kms_stored(&*self.meta).await? {
            kms.push(KmsKey::open(&s.name, &s.sealed, &kek).map_err(|_| {
                ObjectsError::Config(format!(
                    "this node's key-encryption key does not open KMS key {:?}: every node \
                     needs the same --master-key-file / CAIRN_MASTER_KEY (or none, and the \
                     same cluster secret)",
                    s.name
                ))
            })?);
        }
        let mut keys = Vec::new();
        for s in master_keys::stored(&*self.meta).await? {
            keys.push(MasterKey::open(s.id, &s.sealed, &kek).map_err(|_| {
                ObjectsError::Config(format!(
                    "this node's key-encryption key does not open master key {}: every node \
                     needs the same --master-key-file / CAIRN_MASTER_KEY (or none, and the \
                     same cluster secret)",
                    s.id
                ))
            })?);
        }
        self.keyring.set(Keyring::new(keys).with_kms(kms));
        Ok(())
    }

    /// Makes KMS key `name`; `false` when a key of that name exists already (it stays:
    /// data may be wrapped by it).
    pub async fn create_kms_key(&self, name: &str) -> Result<bool, ObjectsError> {
        if !KmsKey::valid_name(name) {
            return Err(ObjectsError::Config(format!(
                "bad KMS key name {name:?}: 1 to {} letters, digits and / _ - . :",
                KmsKey::MAX_NAME
            )));
        }
        let kek = self.keyring.kek()?;
        let rec = StoredKmsKey {
            name: name.to_string(),
            sealed: KmsKey::generate(name)?.seal(&kek)?,
            created_ms: cairn_types::clock::now_ms(),
        };
        let made = match self.meta.apply(Command::AddKmsKey(rec)).await {
            Ok(_) => true,
            Err(MetadataError::Conflict(_)) => false,
            Err(e) => return Err(e.into()),
        };
        self.reload_keyring().await?;
        Ok(made)
    }

    /// The KMS keys: name and when each was made (ms since the epoch).
    pub async fn kms_keys(&self) -> Result<Vec<(String, i64)>, ObjectsError> {
        Ok(master_keys::kms_stored(&*self.meta)
            .await?
            .into_iter()
            .map(|k| (k.name, k.created_ms))
            .collect())
    }

    /// Checks that what `prot` needs exists before any data is taken: the KMS key an
    /// SSE-KMS write names (read again from metadata when this node lacks it; the default
    /// key is made on first use).
    pub async fn check_protection(&self, prot: &Protection) -> Result<(), ObjectsError> {
        let Protection::Kms(name) = prot else {
            return Ok(());
        };
        if self.keyring().has_kms(name) {
            return Ok(());
        }
        self.reload_keyring().await?;
        if self.keyring().has_kms(name) {
            return Ok(());
        }
        if name == DEFAULT_KMS_KEY {
            self.create_kms_key(name).await?;
            return Ok(());
        }
        Err(ObjectsError::KmsKeyNotFound(name.clone()))
    }

    /// Adds a new master key, the next id, which becomes the one new data keys are wrapped
    /// with; returns its id. Keys of other nodes added meanwhile are kept (ids are never
    /// reused).
    pub async fn add_master_key(&self) -> Result<u32, ObjectsError> {
        let kek = self.keyring.kek()?;
        let mut last = None;
        for _ in 0..5 {
            self.reload_keyring().await?;
            let id = self.keyring().active().unwrap_or(0) + 1;
            let mk = MasterKey::generate(id)?;
            let rec = StoredMasterKey {
                id,
                sealed: mk.seal(&kek)?,
            };
            match self.meta.apply(Command::AddMasterKey(rec)).await {
                Ok(_) => {
                    self.reload_keyring().await?;
                    return Ok(id);
                }
                // Another node added key `id` first, or the outcome is unknown: read again.
                Err(e @ (MetadataError::Conflict(_) | MetadataError::Indeterminate(_))) => {
                    last = Some(e)
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.reload_keyring().await?;
        match (self.keyring().active(), last) {
            (Some(id), _) => Ok(id),
            (None, Some(e)) => Err(e.into()),
            (None, None) => Err(ObjectsError::Inconsistent("no master key".into())),
        }
    }

    /// Streams `body` into storage coded in `ec` and protected as `prot` asks. A protected
    /// body's size and MD5 are the plaintext's.
    pub async fn write_body_protected<S, E>(
        &self,
        body: S,
        ec: EcScheme,
        prot: &Protection,
    ) -> Result<WrittenBody, PutError<E>>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
    {
        let dk = match prot {
            Protection::Plain => return self.write_body_as(body, ec).await,
            _ => DataKey::generate().map_err(|e| PutError::Store(e.into()))?,
        };
        self.check_protection(prot).await?;
        let key = match prot {
            Protection::Plain => unreachable!("returned above"),
            Protection::Managed => {
                let (master, wrapped) = self
                    .keyring()
                    .wrap(&dk)
                    .map_err(|e| PutError::Store(e.into()))?;
                SealedKey::Managed { master, wrapped }
            }
            Protection::Customer(k) => {
                let (salt, mac) = k.fingerprint().map_err(|e| PutError::Store(e.into()))?;
                let wrapped = k.wrap(&dk).map_err(|e| PutError::Store(e.into()))?;
                SealedKey::Customer { salt, mac, wrapped }
            }
            Protection::Kms(name) => SealedKey::Kms {
                key_id: name.clone(),
                wrapped: self
                    .keyring()
                    .wrap_kms(name, &dk)
                    .map_err(|e| PutError::Store(e.into()))?,
            },
        };
        let chunk = cairn_sse::CHUNK;
        // The plaintext's MD5 (the ETag) on a thread of its own, as for plain bodies; the
        // sealed bytes are not hashed again.
        let plain = Arc::new(Mutex::new(PlainMd5::default()));
        let sealed = seal_stream(body, Sealer::new(&dk, chunk), plain.clone());
        let mut w = self.write_body_inner(sealed, ec, false).await?;
        let done = std::mem::take(&mut *plain.lock().unwrap_or_else(|e| e.into_inner()));
        w.size = done.size;
        w.md5_hex = hex::encode(done.finish().await.map_err(PutError::Store)?);
        w.data = ObjectData::Encrypted(Box::new(EncryptedData {
            key,
            chunk_size: chunk,
            plain_size: w.size,
            data: std::mem::replace(&mut w.data, ObjectData::Inline(Vec::new())),
        }));
        Ok(w)
    }

    /// Whether `customer` (the key a request gave) is the one `upload`'s parts need:
    /// SSE-C uploads need theirs, others none.
    pub fn check_upload_key(
        &self,
        upload: &cairn_metadata::UploadRecord,
        customer: Option<Arc<CustomerKey>>,
    ) -> Result<(), ObjectsError> {
        Protection::of_part(&upload.headers, customer).map(|_| ())
    }

    /// The data key of an encrypted body, opened with the master keys or `customer`.
    fn open_key(
        &self,
        e: &EncryptedData,
        customer: Option<&CustomerKey>,
    ) -> Result<DataKey, ObjectsError> {
        match (&e.key, customer) {
            (SealedKey::Managed { master, wrapped }, None) => {
                Ok(self.keyring().unwrap(*master, wrapped)?)
            }
            (SealedKey::Kms { key_id, wrapped }, None) => {
                Ok(self.keyring().unwrap_kms(key_id, wrapped)?)
            }
            (SealedKey::Managed { .. } | SealedKey::Kms { .. }, Some(_)) => {
                Err(ObjectsError::CustomerKeyNotApplicable)
            }
            (SealedKey::Customer { .. }, None) => Err(ObjectsError::CustomerKeyRequired),
            (SealedKey::Customer { salt, mac, wrapped }, Some(k)) => {
                if !k.matches(salt, mac) {
                    return Err(ObjectsError::CustomerKeyMismatch);
                }
                k.unwrap(wrapped)
                    .map_err(|_| ObjectsError::CustomerKeyMismatch)
            }
        }
    }

    /// Whether `data` can be read with `customer` (the key a request sent, if any): an
    /// SSE-C body needs its key, any other body none. Checked before a response starts.
    pub fn check_key(
        &self,
        data: &ObjectData,
        customer: Option<&CustomerKey>,
    ) -> Result<(), ObjectsError> {
        match data {
            ObjectData::Encrypted(e) => self.open_key(e, customer).map(|_| ()),
            ObjectData::Parts(parts) => parts
                .iter()
                .try_for_each(|p| self.check_key(&p.data, customer)),
            _ if customer.is_some() => Err(ObjectsError::CustomerKeyNotApplicable),
            _ => Ok(()),
        }
    }

    /// [`Self::check_key`], after reloading the keys from metadata when the data names one
    /// this node has not loaded yet (another node rotated, or made a KMS key).
    pub async fn prepare_read(
        &self,
        data: &ObjectData,
        customer: Option<&CustomerKey>,
    ) -> Result<(), ObjectsError> {
        match self.check_key(data, customer) {
            Err(ObjectsError::Sse(
                cairn_sse::SseError::UnknownMasterKey(_) | cairn_sse::SseError::UnknownKmsKey(_),
            )) => {
                self.reload_keyring().await?;
                self.check_key(data, customer)
            }
            other => other,
        }
    }

    /// `range` (plaintext offsets) of an encrypted body: the sealed chunks covering it,
    /// read as any body, then opened.
    pub(crate) fn read_encrypted(
        &self,
        view: Arc<crate::MembershipView>,
        e: &EncryptedData,
        range: std::ops::Range<u64>,
        customer: Option<Arc<CustomerKey>>,
    ) -> BoxStream<'static, Result<Bytes, ObjectsError>> {
        let key = match self.open_key(e, customer.as_deref()) {
            Ok(k) => k,
            Err(err) => return stream::once(async move { Err(err) }).boxed(),
        };
        let (first, sealed) = cairn_sse::sealed_range(e.chunk_size, e.plain_size, &range);
        let skip = range
            .start
            .saturating_sub(first * u64::from(e.chunk_size.max(1)));
        let inner = self.read_data_in(view, &e.data, sealed, customer);
        open_stream(
            inner,
            RunOpener::new(&key, e.chunk_size, e.plain_size, self.plain_buffers.clone()),
            first,
            skip,
            range.end.saturating_sub(range.start),
        )
    }
}

/// Plaintext handed to the MD5 thread and not yet hashed, at most (beyond it the stream
/// waits, so memory stays bounded when hashing is slower than the network).
const MD5_BACKLOG: u64 = 8 << 20;
/// Bodies up to this size are hashed at the end, in place; larger ones on the MD5 thread.
const MD5_IN_PLACE: u64 = 256 << 10;

/// The MD5 and length of a body's plaintext as it streams: small bodies' bytes are kept and
/// hashed at the end; beyond [`MD5_IN_PLACE`] they go to an MD5 thread of their own.
#[derive(Default)]
struct PlainMd5 {
    early: Vec<Bytes>,
    hasher: Option<crate::hasher::StripeHasher>,
    size: u64,
}

impl PlainMd5 {
    /// Takes the next bytes; returns the hashing to wait for when there is a thread.
    fn take(&mut self, b: &Bytes) -> Option<BoxFuture<'static, Result<(), ObjectsError>>> {
        self.size += b.len() as u64;
        if self.hasher.is_none() && self.size <= MD5_IN_PLACE {
            self.early.push(b.clone());
            return None;
        }
        let h = self
            .hasher
            .get_or_insert_with(crate::hasher::StripeHasher::start);
        for e in self.early.drain(..) {
            drop(h.hash(e));
        }
        Some(h.hash(b.clone()).boxed())
    }

    async fn finish(self) -> Result<[u8; 16], ObjectsError> {
        match self.hasher {
            Some(h) => h.finish().await,
            None => {
                use md5::Digest;
                let mut m = md5::Md5::new();
                self.early.iter().for_each(|b| m.update(b));
                Ok(m.finalize().into())
            }
        }
    }
}

/// `body` sealed chunk by chunk; its plaintext goes to `plain` (MD5 and length).
fn seal_stream<S, E>(
    body: S,
    sealer: Sealer,
    plain: Arc<Mutex<PlainMd5>>,
) -> impl Stream<Item = Result<Bytes, E>> + Send
where
    S: Stream<Item = Result<Bytes, E>> + Send,
{
    type Hashing = BoxFuture<'static, Result<(), ObjectsError>>;
    struct State<B> {
        body: B,
        sealer: Option<Sealer>,
        plain: Arc<Mutex<PlainMd5>>,
        backlog: VecDeque<(Hashing, u64)>,
        queued: u64,
    }
    let state = State {
        body: Box::pin(body),
        sealer: Some(sealer),
        plain,
        backlog: VecDeque::new(),
        queued: 0,
    };
    stream::unfold(state, |mut st| async move {
        loop {
            st.sealer.as_ref()?;
            let chunk = match st.body.next().await {
                Some(Ok(chunk)) => chunk,
                Some(Err(e)) => {
                    st.sealer = None;
                    return Some((Err(e), st));
                }
                None => {
                    let last = st.sealer.take()?.finish();
                    return Some((Ok(last), st));
                }
            };
            let n = chunk.len() as u64;
            let hashing = st
                .plain
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(&chunk);
            if let Some(h) = hashing {
                st.backlog.push_back((h, n));
                st.queued += n;
            }
            while st.queued > MD5_BACKLOG {
                let Some((h, n)) = st.backlog.pop_front() else {
                    break;
                };
                // A failed MD5 thread shows at the end, in `finish`.
                let _ = h.await;
                st.queued -= n;
            }
            let out = st.sealer.as_mut()?.push(&chunk);
            if !out.is_empty() {
                return Some((Ok(out), st));
            }
        }
    })
}

/// Gathers the sealed bytes of a read into pieces of whole chunks without copying them:
/// each piece the stripes hand over keeps its whole chunks (opened later from where they
/// lie); only a chunk that straddles two pieces is copied together (`carry`).
struct RunGatherer {
    sealed_chunk: usize,
    carry: BytesMut,
    pieces: Vec<Bytes>,
    /// The index of the run's first chunk, and of the chunk after what is gathered.
    first: u64,
    next: u64,
}

impl RunGatherer {
    fn push(&mut self, mut b: Bytes) {
        if !self.carry.is_empty() {
            let need = self.sealed_chunk - self.carry.len();
            if b.len() < need {
                self.carry.extend_from_slice(&b);
                return;
            }
            self.carry.extend_from_slice(&b.split_to(need));
            let whole = std::mem::take(&mut self.carry).freeze();
            self.add(whole);
        }
        let whole = b.len() / self.sealed_chunk * self.sealed_chunk;
        self.carry.extend_from_slice(&b[whole..]);
        b.truncate(whole);
        if !b.is_empty() {
            self.add(b);
        }
    }

    fn add(&mut self, whole: Bytes) {
        self.next += (whole.len() / self.sealed_chunk) as u64;
        self.pieces.push(whole);
    }

    /// The whole chunks gathered so far, with the index of the first (at the end, what is
    /// left too: the body's shorter last chunk).
    fn take(&mut self, end: bool) -> Option<(u64, Vec<Bytes>)> {
        if end && !self.carry.is_empty() {
            let last = std::mem::take(&mut self.carry).freeze();
            self.pieces.push(last);
            self.next += 1;
        }
        if self.pieces.is_empty() {
            return None;
        }
        let at = self.first;
        self.first = self.next;
        Some((at, std::mem::take(&mut self.pieces)))
    }
}

/// The plaintext range (`skip` bytes into chunk `first`, `len` bytes long) of the sealed
/// chunks `inner` streams: gathered into pieces of whole chunks (in order), opened as they
/// come (into the service's reused plaintext buffers), then trimmed to the range. Opening
/// runs on the request's task: AES-GCM opens a stripe's shard (1 MiB) in about a tenth of
/// a millisecond, little more than handing it to a blocking thread and back costs
/// (measured: 7-10% more GET throughput than doing so one run at a time; two runs ahead on
/// blocking threads, GET ×1 the same and more server CPU per GiB).
fn open_stream(
    inner: BoxStream<'static, Result<Bytes, ObjectsError>>,
    run: RunOpener,
    first: u64,
    skip: u64,
    len: u64,
) -> BoxStream<'static, Result<Bytes, ObjectsError>> {
    let gather = RunGatherer {
        sealed_chunk: run.sealed_chunk(),
        carry: BytesMut::new(),
        pieces: Vec::new(),
        first,
        next: first,
    };
    let runs = stream::unfold(
        (inner, gather, false),
        |(mut inner, mut gather, mut ended)| async move {
            loop {
                if let Some(r) = gather.take(ended) {
                    return Some((Ok(r), (inner, gather, ended)));
                }
                if ended {
                    return None;
                }
                match inner.next().await {
                    Some(Ok(b)) => gather.push(b),
                    Some(Err(e)) => {
                        gather.pieces.clear();
                        gather.carry.clear();
                        return Some((Err(e), (inner, gather, true)));
                    }
                    None => ended = true,
                }
            }
        },
    );
    let opened = runs
        .map(move |r| {
            let (at, pieces) = r?;
            run.open_pieces(at, pieces).map_err(ObjectsError::from)
        })
        .map_ok(|plain| stream::iter(plain.into_iter().map(Ok)))
        .try_flatten()
        .boxed();
    // Trim to the range; a body that ends before the range does is an error.
    stream::unfold(
        (opened, skip, len, false),
        |(mut opened, mut skip, mut left, done)| async move {
            if done {
                return None;
            }
            loop {
                match opened.next().await {
                    Some(Ok(b)) => {
                        let s = (skip.min(b.len() as u64)) as usize;
                        skip -= s as u64;
                        let take = ((b.len() - s) as u64).min(left) as usize;
                        left -= take as u64;
                        if take > 0 {
                            return Some((Ok(b.slice(s..s + take)), (opened, skip, left, false)));
                        }
                    }
                    Some(Err(e)) => return Some((Err(e), (opened, skip, left, true))),
                    None if left > 0 => {
                        let e = cairn_sse::SseError::Length("the sealed body ends early".into());
                        return Some((Err(e.into()), (opened, skip, left, true)));
                    }
                    None => return None,
                }
            }
        },
    )
    .boxed()
}
