//! The workload: concurrent aws-sdk-s3 clients through every gateway, each operation
//! recorded with its invocation and completion time and outcome (ok, failed, unknown).
//!
//! Keys come from small pools so that operations on a key overlap: 40 keys under four
//! prefixes in bucket `chaos`, 8 keys in the versioned bucket `chaos-versioned`. Values are
//! inline (16 B – 8 KiB), one stripe (100 – 400 KiB) or several stripes (1.2 – 2.5 MiB,
//! stripes of 1 MiB), and multipart uploads of 5 MiB and a tail.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_sdk_s3::config::{BehaviorVersion, Region};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::cluster::{Cluster, ACCESS_KEY, SECRET_KEY};
use crate::history::{
    content, etag_of, identify, multipart_etag, Kind, Observed, Op, OpId, Outcome,
};

pub const BUCKET: &str = "chaos";
pub const VERSIONED: &str = "chaos-versioned";
pub const PREFIXES: usize = 4;
const KEYS_PER_PREFIX: usize = 10;
const VERSIONED_KEYS: usize = 8;
const PART: usize = 5 << 20;
/// The client gives up on an operation after this long (its outcome is then unknown).
const OP_TIMEOUT: Duration = Duration::from_secs(10);

/// Every key the clients write (the probes' of `nodes` nodes among them).
pub fn keys(nodes: usize) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for p in 0..PREFIXES {
        for k in 0..KEYS_PER_PREFIX {
            out.push((BUCKET, format!("p{p}/k{k}")));
        }
    }
    for k in 0..VERSIONED_KEYS {
        out.push((VERSIONED, format!("v{k}")));
    }
    for n in 0..nodes {
        out.push((BUCKET, probe_key(n)));
    }
    out
}

/// The key node `n`'s probe writes (outside the listed prefixes).
fn probe_key(n: usize) -> String {
    format!("probe/n{}", n + 1)
}

/// A probe writes a small object through its own node this often, so that the moment a
/// node takes writes again after a fault shows in the history whatever the other clients
/// are stuck on.
const PROBE_EVERY: Duration = Duration::from_millis(200);
/// Client numbers from here on are probes (one per node).
const PROBE_CLIENT: u32 = 1000;

/// The shared state of a run's clients.
pub struct Workload {
    clients: Vec<Client>,
    start: Instant,
    next: AtomicU64,
    ops: Mutex<Vec<Op>>,
    /// Every ETag a write of this run could produce, and its value.
    etags: Mutex<HashMap<String, (OpId, u32)>>,
    /// The value each key was last seen with (for If-Match).
    last_seen: Mutex<HashMap<(String, String), OpId>>,
    stop: AtomicBool,
    /// Nodes the nemesis killed: clients leave them alone until they are back.
    pub down: Vec<AtomicBool>,
}

fn client(endpoint: &str) -> Client {
    let creds = Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "cairn-chaos");
    let timeouts = aws_sdk_s3::config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_timeout(OP_TIMEOUT)
        .build();
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
        .force_path_style(true)
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .timeout_config(timeouts)
        .build();
    Client::from_conf(conf)
}

/// How an SDK call failed.
enum Failure {
    /// The server answered with this status and code.
    Status(u16, String),
    /// No answer, or not a whole one.
    NoAnswer(String),
}

fn failure<E: ProvideErrorMetadata + std::fmt::Debug>(
    e: &SdkError<E, aws_smithy_runtime_api_shim::HttpResponse>,
) -> Failure {
    match e {
        SdkError::ServiceError(se) => Failure::Status(
            se.raw().status().as_u16(),
            se.err().code().unwrap_or("").to_string(),
        ),
        other => Failure::NoAnswer(format!("{other:?}").chars().take(200).collect()),
    }
}

/// The SDK's response type, named through the S3 crate.
mod aws_smithy_runtime_api_shim {
    pub type HttpResponse = aws_sdk_s3::config::http::HttpResponse;
}

/// A write's outcome from an SDK failure: a 412 (or 404 for If-Match) says the condition
/// did not hold; other 4xx say nothing was written; the rest may have been.
fn write_failed(f: Failure, conditional: bool) -> Outcome {
    match f {
        Failure::Status(412, _) if conditional => Outcome::Ok(Observed::NotApplied),
        Failure::Status(404, _) if conditional => Outcome::Ok(Observed::NotApplied),
        Failure::Status(s, code) if (400..500).contains(&s) => {
            Outcome::Failed(format!("{s} {code}"))
        }
        Failure::Status(s, code) => Outcome::Unknown(format!("{s} {code}")),
        Failure::NoAnswer(why) => Outcome::Unknown(why),
    }
}

fn read_failed(f: Failure) -> Outcome {
    match f {
        Failure::Status(404, _) => Outcome::Ok(Observed::Absent),
        Failure::Status(s, code) if (400..500).contains(&s) => {
            Outcome::Failed(format!("{s} {code}"))
        }
        Failure::Status(s, code) => Outcome::Unknown(format!("{s} {code}")),
        Failure::NoAnswer(why) => Outcome::Unknown(why),
    }
}

impl Workload {
    pub fn new(nodes: usize, start: Instant) -> Arc<Workload> {
        Arc::new(Workload {
            clients: (0..nodes)
                .map(|i| client(&Cluster::s3_endpoint(i)))
                .collect(),
            start,
            next: AtomicU64::new(1),
            ops: Mutex::new(Vec::new()),
            etags: Mutex::new(HashMap::new()),
            last_seen: Mutex::new(HashMap::new()),
            stop: AtomicBool::new(false),
            down: (0..nodes).map(|_| AtomicBool::new(false)).collect(),
        })
    }

    pub fn now(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    pub fn ops(&self) -> Vec<Op> {
        let mut ops = self.ops.lock().expect("ops").clone();
        ops.sort_by_key(|o| o.invoke);
        ops
    }

    fn id(&self) -> OpId {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Makes the buckets (through node 0; retried while the cluster settles).
    pub async fn setup(&self) -> anyhow::Result<()> {
        let s3 = &self.clients[0];
        for b in [BUCKET, VERSIONED] {
            let mut tries = 0;
            loop {
                match s3.create_bucket().bucket(b).send().await {
                    Ok(_) => break,
                    Err(e) if tries < 20 => {
                        tries += 1;
                        let _ = e;
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(e) => anyhow::bail!("creating bucket {b}: {e:?}"),
                }
            }
        }
        let on = aws_sdk_s3::types::VersioningConfiguration::builder()
            .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
            .build();
        s3.put_bucket_versioning()
            .bucket(VERSIONED)
            .versioning_configuration(on)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("enabling versioning: {e:?}"))?;
        Ok(())
    }

    fn record(&self, op: Op) {
        self.ops.lock().expect("ops").push(op);
    }

    fn seen(&self, bucket: &str, key: &str, value: OpId) {
        self.last_seen
            .lock()
            .expect("seen")
            .insert((bucket.to_string(), key.to_string()), value);
    }

    /// Runs `clients` concurrent clients, and one probe per node, until [`Workload::stop`].
    pub async fn run(self: &Arc<Self>, clients: u32, seed: u64) {
        let mut tasks: Vec<_> = (0..clients)
            .map(|c| {
                let w = self.clone();
                tokio::spawn(async move { w.client_loop(c, seed ^ (u64::from(c) << 32)).await })
            })
            .collect();
        tasks.extend((0..self.clients.len()).map(|n| {
            let w = self.clone();
            tokio::spawn(async move { w.probe_loop(n).await })
        }));
        for t in tasks {
            let _ = t.await;
        }
    }

    /// Small unconditional PUTs of node `n`'s probe key through node `n`, one at a time.
    async fn probe_loop(self: Arc<Self>, n: usize) {
        let client = PROBE_CLIENT + n as u32;
        while !self.stop.load(Ordering::SeqCst) {
            if !self.down[n].load(Ordering::SeqCst) {
                let op = self
                    .put(client, n, BUCKET, &probe_key(n), 256, Cond::None)
                    .await;
                self.record(op);
            }
            tokio::time::sleep(PROBE_EVERY).await;
        }
    }

    async fn client_loop(self: Arc<Self>, client: u32, seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let n = self.clients.len();
        while !self.stop.load(Ordering::SeqCst) {
            let up: Vec<usize> = (0..n)
                .filter(|i| !self.down[*i].load(Ordering::SeqCst))
                .collect();
            if up.is_empty() {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            let node = up[rng.gen_range(0..up.len())];
            let dice = rng.gen_range(0..100);
            let (bucket, key) = if dice < 88 {
                let p = rng.gen_range(0..PREFIXES);
                (
                    BUCKET,
                    format!("p{p}/k{}", rng.gen_range(0..KEYS_PER_PREFIX)),
                )
            } else {
                (VERSIONED, format!("v{}", rng.gen_range(0..VERSIONED_KEYS)))
            };
            let size = match rng.gen_range(0..100) {
                0..=59 => rng.gen_range(16..8 << 10),
                60..=89 => rng.gen_range(100 << 10..400 << 10),
                _ => rng.gen_range(1_200 << 10..2_500 << 10),
            };
            let op = match (bucket, dice) {
                (VERSIONED, 88..=95) => {
                    self.put(client, node, bucket, &key, size, Cond::None).await
                }
                (VERSIONED, _) => self.get(client, node, bucket, &key).await,
                (_, 0..=21) => self.put(client, node, bucket, &key, size, Cond::None).await,
                (_, 22..=43) => self.get(client, node, bucket, &key).await,
                (_, 44..=49) => self.head(client, node, bucket, &key).await,
                (_, 50..=57) => self.delete(client, node, bucket, &key).await,
                (_, 58..=67) => {
                    self.put(client, node, bucket, &key, size, Cond::IfAbsent)
                        .await
                }
                (_, 68..=75) => {
                    let last = self
                        .last_seen
                        .lock()
                        .expect("seen")
                        .get(&(bucket.to_string(), key.clone()))
                        .copied();
                    match last {
                        Some(v) => {
                            self.put(client, node, bucket, &key, size, Cond::IfMatch(v))
                                .await
                        }
                        None => self.get(client, node, bucket, &key).await,
                    }
                }
                (_, 76..=78) => {
                    self.multipart(client, node, bucket, &key, rng.gen_range(16..200 << 10))
                        .await
                }
                _ => {
                    let prefix = format!("p{}/", rng.gen_range(0..PREFIXES));
                    self.list(client, node, bucket, &prefix).await
                }
            };
            self.record(op);
        }
    }

    fn op(&self, client: u32, node: usize, bucket: &str, key: &str, kind: Kind) -> Op {
        Op {
            id: 0,
            client,
            node,
            bucket: bucket.into(),
            key: key.into(),
            kind,
            invoke: self.now(),
            complete: 0,
            outcome: Outcome::Unknown("not completed".into()),
        }
    }

    fn finish(&self, mut op: Op, outcome: Outcome) -> Op {
        op.complete = self.now();
        op.outcome = outcome;
        op
    }

    async fn put(
        &self,
        client: u32,
        node: usize,
        bucket: &str,
        key: &str,
        size: u32,
        cond: Cond,
    ) -> Op {
        let value = self.id();
        let body = content(value, size);
        let etag = etag_of(&body);
        self.etags
            .lock()
            .expect("etags")
            .insert(etag.clone(), (value, size));
        let kind = match cond {
            Cond::None => Kind::Put {
                value,
                size,
                multipart: false,
            },
            Cond::IfAbsent => Kind::PutIfAbsent { value, size },
            Cond::IfMatch(expect) => Kind::PutIfMatch {
                value,
                size,
                expect,
            },
        };
        let expect_etag = match cond {
            Cond::IfMatch(v) => self.etag_of_value(v),
            _ => None,
        };
        let mut op = self.op(client, node, bucket, key, kind);
        op.id = value;
        let mut req = self.clients[node]
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(body));
        match cond {
            Cond::None => {}
            Cond::IfAbsent => req = req.if_none_match("*"),
            Cond::IfMatch(_) => req = req.if_match(expect_etag.unwrap_or_default()),
        }
        let outcome = match req.send().await {
            Ok(out) => {
                self.seen(bucket, key, value);
                Outcome::Ok(Observed::Written {
                    version: out.version_id().map(str::to_string),
                })
            }
            Err(e) => write_failed(failure(&e), !matches!(cond, Cond::None)),
        };
        self.finish(op, outcome)
    }

    fn etag_of_value(&self, v: OpId) -> Option<String> {
        self.etags
            .lock()
            .expect("etags")
            .iter()
            .find(|(_, (id, _))| *id == v)
            .map(|(e, _)| e.clone())
    }

    async fn multipart(&self, client: u32, node: usize, bucket: &str, key: &str, tail: u32) -> Op {
        let value = self.id();
        let size = PART as u32 + tail;
        let body = content(value, size);
        let (p1, p2) = body.split_at(PART);
        let etag = multipart_etag(&[p1, p2]);
        self.etags
            .lock()
            .expect("etags")
            .insert(etag, (value, size));
        let mut op = self.op(
            client,
            node,
            bucket,
            key,
            Kind::Put {
                value,
                size,
                multipart: true,
            },
        );
        op.id = value;
        let s3 = &self.clients[node];
        let upload = match s3
            .create_multipart_upload()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(u) => u.upload_id().unwrap_or_default().to_string(),
            Err(e) => {
                return self.finish(
                    op,
                    Outcome::Failed(format!("create: {:?}", failure_text(failure(&e)))),
                )
            }
        };
        let mut parts = Vec::new();
        for (n, data) in [(1, p1), (2, p2)] {
            match s3
                .upload_part()
                .bucket(bucket)
                .key(key)
                .upload_id(&upload)
                .part_number(n)
                .body(ByteStream::from(data.to_vec()))
                .send()
                .await
            {
                Ok(p) => parts.push(
                    CompletedPart::builder()
                        .part_number(n)
                        .e_tag(p.e_tag().unwrap_or_default())
                        .build(),
                ),
                Err(e) => {
                    let _ = s3
                        .abort_multipart_upload()
                        .bucket(bucket)
                        .key(key)
                        .upload_id(&upload)
                        .send()
                        .await;
                    // Nothing is visible until the upload completes.
                    return self.finish(
                        op,
                        Outcome::Failed(format!("part {n}: {}", failure_text(failure(&e)))),
                    );
                }
            }
        }
        let done = CompletedMultipartUpload::builder()
            .set_parts(Some(parts))
            .build();
        let outcome = match s3
            .complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(&upload)
            .multipart_upload(done)
            .send()
            .await
        {
            Ok(out) => {
                self.seen(bucket, key, value);
                Outcome::Ok(Observed::Written {
                    version: out.version_id().map(str::to_string),
                })
            }
            Err(e) => write_failed(failure(&e), false),
        };
        self.finish(op, outcome)
    }

    async fn delete(&self, client: u32, node: usize, bucket: &str, key: &str) -> Op {
        let mut op = self.op(client, node, bucket, key, Kind::Delete);
        op.id = self.id();
        let outcome = match self.clients[node]
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => Outcome::Ok(Observed::Written {
                version: out.version_id().map(str::to_string),
            }),
            Err(e) => write_failed(failure(&e), false),
        };
        self.finish(op, outcome)
    }

    /// What a value read whole is: which write it is, or why it is none.
    fn judge(&self, bytes: &[u8], etag: Option<&str>) -> Observed {
        let id = match identify(bytes) {
            Ok(id) => id,
            Err(why) => return Observed::Corrupt(why),
        };
        if let Some(e) = etag {
            match self.etags.lock().expect("etags").get(e) {
                Some((v, _)) if *v == id => {}
                other => {
                    return Observed::Corrupt(format!(
                        "bytes of value {id} under ETag {e} (which names {other:?})"
                    ))
                }
            }
        }
        Observed::Value(id)
    }

    pub async fn get(&self, client: u32, node: usize, bucket: &str, key: &str) -> Op {
        self.get_version(client, node, bucket, key, None).await
    }

    /// GET (of one version when `version` names it).
    pub async fn get_version(
        &self,
        client: u32,
        node: usize,
        bucket: &str,
        key: &str,
        version: Option<(String, OpId)>,
    ) -> Op {
        let kind = match &version {
            Some((v, value)) => Kind::GetVersion {
                version: v.clone(),
                value: *value,
            },
            None => Kind::Get,
        };
        let mut op = self.op(client, node, bucket, key, kind);
        op.id = self.id();
        let mut req = self.clients[node].get_object().bucket(bucket).key(key);
        if let Some((v, _)) = &version {
            req = req.version_id(v);
        }
        let outcome = match req.send().await {
            Ok(out) => {
                let etag = out.e_tag().map(str::to_string);
                match tokio::time::timeout(OP_TIMEOUT, out.body.collect()).await {
                    Ok(Ok(b)) => {
                        let seen = self.judge(&b.into_bytes(), etag.as_deref());
                        if let Observed::Value(v) = seen {
                            self.seen(bucket, key, v);
                        }
                        Outcome::Ok(seen)
                    }
                    Ok(Err(e)) => Outcome::Unknown(format!("body: {e}")),
                    Err(_) => Outcome::Unknown("body timed out".into()),
                }
            }
            Err(e) => read_failed(failure(&e)),
        };
        self.finish(op, outcome)
    }

    async fn head(&self, client: u32, node: usize, bucket: &str, key: &str) -> Op {
        let mut op = self.op(client, node, bucket, key, Kind::Head);
        op.id = self.id();
        let outcome = match self.clients[node]
            .head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => {
                let etag = out.e_tag().unwrap_or_default().to_string();
                let len = out.content_length().unwrap_or(-1);
                match self.etags.lock().expect("etags").get(&etag) {
                    Some((v, size)) if i64::from(*size) == len => Outcome::Ok(Observed::Value(*v)),
                    Some((v, size)) => Outcome::Ok(Observed::Corrupt(format!(
                        "HEAD says {len} bytes for value {v} of {size}"
                    ))),
                    None => {
                        Outcome::Ok(Observed::Corrupt(format!("HEAD gave unknown ETag {etag}")))
                    }
                }
            }
            Err(e) => read_failed(failure(&e)),
        };
        self.finish(op, outcome)
    }

    async fn list(&self, client: u32, node: usize, bucket: &str, prefix: &str) -> Op {
        let mut op = self.op(client, node, bucket, prefix, Kind::List);
        op.id = self.id();
        let outcome = match self.clients[node]
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .send()
            .await
        {
            Ok(out) if out.is_truncated() == Some(true) => Outcome::Ok(Observed::Corrupt(format!(
                "a listing of {prefix} was truncated"
            ))),
            Ok(out) => Outcome::Ok(Observed::Keys(
                out.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string))
                    .collect(),
            )),
            Err(e) => match failure(&e) {
                Failure::Status(s, c) if (400..500).contains(&s) => {
                    Outcome::Failed(format!("{s} {c}"))
                }
                f => Outcome::Unknown(failure_text(f)),
            },
        };
        self.finish(op, outcome)
    }

    /// After the faults: reads every key through every gateway (retrying what does not
    /// answer for up to `patience`), and every acknowledged version of the versioned bucket
    /// through one of them, into the history.
    pub async fn final_reads(&self, patience: Duration) -> Vec<String> {
        let mut unanswered = Vec::new();
        let client = u32::MAX;
        // One deadline for all: reads that do not answer are retried until it passes, then
        // each is tried once.
        let deadline = Instant::now() + patience;
        for (bucket, key) in keys(self.clients.len()) {
            for node in 0..self.clients.len() {
                loop {
                    let op = self.get(client, node, bucket, &key).await;
                    let answered = matches!(op.outcome, Outcome::Ok(_));
                    if answered || Instant::now() > deadline {
                        if !answered {
                            unanswered.push(format!(
                                "{bucket}/{key} on node {}: {:?}",
                                node + 1,
                                op.outcome
                            ));
                        }
                        self.record(op);
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        let versions: Vec<(String, String, OpId, usize)> = self
            .ops()
            .iter()
            .filter(|o| o.bucket == VERSIONED)
            .filter_map(|o| match (&o.kind, &o.outcome) {
                (Kind::Put { value, .. }, Outcome::Ok(Observed::Written { version: Some(v) })) => {
                    Some((
                        o.key.clone(),
                        v.clone(),
                        *value,
                        (*value as usize) % self.clients.len(),
                    ))
                }
                _ => None,
            })
            .collect();
        for (key, version, value, node) in versions {
            loop {
                let op = self
                    .get_version(
                        client,
                        node,
                        VERSIONED,
                        &key,
                        Some((version.clone(), value)),
                    )
                    .await;
                if matches!(op.outcome, Outcome::Ok(_)) || Instant::now() > deadline {
                    self.record(op);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        unanswered
    }
}

#[derive(Clone, Copy)]
enum Cond {
    None,
    IfAbsent,
    IfMatch(OpId),
}

fn failure_text(f: Failure) -> String {
    match f {
        Failure::Status(s, c) => format!("{s} {c}"),
        Failure::NoAnswer(w) => w,
    }
}
