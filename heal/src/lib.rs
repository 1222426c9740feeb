//! Self-healing: the scrubber compares what metadata says each datanode should hold with what
//! it holds, and the repairer fixes what it finds.
//!
//! A scrub ([`Healer::run_scrub`]) loads the expected state from metadata (every object,
//! version and upload part that references shards, [`expected`]), builds per datanode the
//! Merkle summary of the shards it should hold and compares it top-down with the datanode's
//! own trees over the datanode protocol, fetching only subtrees whose hashes differ
//! ([`scrub`]); `deep` first makes each datanode re-read and verify its payloads
//! (quarantining corrupt ones). Findings are classified as missing, corrupt, misplaced or
//! orphaned ([`report::DamageKind`]); with `repair`, [`repair`] rebuilds, moves and deletes.
//! Degraded reads queue their stripe ([`cairn_objects::RepairHints`]); the background loop
//! ([`Healer::run`]) repairs those at once and runs light and deep scrubs on a schedule.
//!
//! One scrub runs at a time. Reports go to the admin API and, summarised, into a history
//! kept in metadata (`sys/scrub-history`, [`cairn_metadata::cluster_state`]).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cairn_metadata::{cluster_state, Command, MetadataError};
use cairn_objects::ObjectService;
use cairn_types::clock::now_ms;
use cairn_types::{NodeId, ObjectId, ShardId};
use cairn_worker::Worker;
use futures::future::BoxFuture;

mod background;
mod expected;
mod metrics;
mod repair;
pub mod report;
mod scrub;

pub use metrics::HealMetrics;
pub use report::{Counts, DamageKind, Finding, NodeScrub, Progress, ScrubReport, Unrecoverable};

/// Errors of scrubbing and repair.
#[derive(Debug, thiserror::Error)]
pub enum HealError {
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error("a scrub is already running (id {0})")]
    Busy(u64),
    #[error("invalid scrub request: {0}")]
    Invalid(String),
    #[error("the scrub was stopped: the server is shutting down")]
    Stopped,
}

/// What one scrub does.
#[derive(Debug, Clone, Default)]
pub struct ScrubOptions {
    /// Re-read and verify every payload first.
    pub deep: bool,
    /// Only these datanodes (all when `None`).
    pub nodes: Option<Vec<NodeId>>,
    /// Only objects of this bucket (orphans are then not looked for).
    pub bucket: Option<String>,
    /// Repair what is found.
    pub repair: bool,
    /// Deep-scrub read rate per datanode, bytes a second (0: unlimited).
    pub deep_rate: u64,
    /// Who asked (`cli`, `schedule`, `console`).
    pub trigger: String,
}

/// Scheduling and rate settings.
#[derive(Debug, Clone)]
pub struct HealConfig {
    /// Light scrub period (zero: never on its own).
    pub scrub_interval: Duration,
    /// Deep scrub period (zero: never on its own).
    pub deep_interval: Duration,
    /// Whether scheduled scrubs repair what they find.
    pub auto_repair: bool,
    /// Repair write rate, bytes a second (0: unlimited); changeable at run time.
    pub repair_rate: u64,
    /// Deep-scrub read rate per datanode, bytes a second (0: unlimited).
    pub deep_rate: u64,
    /// How long a shard must have been seen orphaned before it is deleted.
    pub orphan_grace: Duration,
}

impl Default for HealConfig {
    fn default() -> Self {
        HealConfig {
            scrub_interval: Duration::from_secs(3600),
            deep_interval: Duration::from_secs(7 * 24 * 3600),
            auto_repair: true,
            repair_rate: 64 << 20,
            deep_rate: 64 << 20,
            orphan_grace: Duration::from_secs(3600),
        }
    }
}

/// The other gateway nodes of the cluster, as the orphan cleaner sees them: before deleting
/// orphans it asks every one for the bodies it is writing (its [`ObjectService::in_flight_ids`])
/// and keeps their shards.
pub trait PeerInFlight: Send + Sync {
    /// The union of the object ids every other gateway node has in flight, or (when one of
    /// them did not answer) why not — then no orphan is deleted this run.
    fn in_flight(&self) -> BoxFuture<'_, Result<HashSet<ObjectId>, String>>;
}

/// Reports kept in the history.
pub const HISTORY_LEN: usize = cluster_state::SCRUB_HISTORY_LEN;

/// The scrubber and repairer of one gateway; clones share everything.
#[derive(Clone)]
pub struct Healer {
    inner: Arc<Inner>,
}

struct Inner {
    objects: ObjectService,
    config: HealConfig,
    repair_rate: Arc<AtomicU64>,
    job: Arc<tokio::sync::Mutex<()>>,
    progress: Mutex<Option<Progress>>,
    last: Mutex<Option<ScrubReport>>,
    orphans_seen: tokio::sync::Mutex<HashMap<(NodeId, ShardId), Instant>>,
    peers: Mutex<Option<Arc<dyn PeerInFlight>>>,
    next_id: AtomicU64,
    metrics: HealMetrics,
    /// Scrubs, scheduled or asked for ([`background`]).
    scrub_worker: Worker,
    /// Repairs of the stripes degraded reads queued.
    repair_worker: Worker,
}

/// The healer's state for the admin API.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct HealStatus {
    pub running: Option<Progress>,
    pub last: Option<ScrubReport>,
    /// Stripes queued by degraded reads.
    pub repair_queue: usize,
    /// Damage the last scrub left unrepaired.
    pub repair_backlog: u64,
    pub repair_rate: u64,
    pub scrub_interval_secs: u64,
    pub deep_interval_secs: u64,
}

impl Healer {
    pub fn new(objects: ObjectService, config: HealConfig) -> Healer {
        Healer {
            inner: Arc::new(Inner {
                repair_rate: Arc::new(AtomicU64::new(config.repair_rate)),
                objects,
                config,
                job: Arc::new(tokio::sync::Mutex::new(())),
                progress: Mutex::new(None),
                last: Mutex::new(None),
                orphans_seen: tokio::sync::Mutex::new(HashMap::new()),
                peers: Mutex::new(None),
                next_id: AtomicU64::new(1),
                metrics: HealMetrics::default(),
                scrub_worker: Worker::new("scrub", "light and deep scrubs, and their repairs"),
                repair_worker: Worker::new(
                    "repair",
                    "repairs the stripes degraded reads found damaged",
                ),
            }),
        }
    }

    /// Makes the orphan cleaner ask the cluster's other gateway nodes for their bodies in
    /// flight (without it, only this process's own are known).
    pub fn set_peer_in_flight(&self, peers: Arc<dyn PeerInFlight>) {
        *lock(&self.inner.peers) = Some(peers);
    }

    pub fn metrics(&self) -> &HealMetrics {
        &self.inner.metrics
    }

    /// The deep-scrub rate scheduled scrubs use (bytes a second per datanode).
    pub fn default_deep_rate(&self) -> u64 {
        self.inner.config.deep_rate
    }

    /// Sets the repair write rate (bytes a second, 0: unlimited), also for a running repair.
    pub fn set_repair_rate(&self, bytes_per_sec: u64) {
        self.inner
            .repair_rate
            .store(bytes_per_sec, Ordering::Relaxed);
        tracing::info!(bytes_per_sec, "repair rate changed");
    }

    pub fn status(&self) -> HealStatus {
        let last = lock(&self.inner.last).clone();
        HealStatus {
            running: lock(&self.inner.progress).clone(),
            repair_backlog: last.as_ref().map_or(0, ScrubReport::damage_remaining),
            last,
            repair_queue: self.inner.objects.repair_hints().len(),
            repair_rate: self.inner.repair_rate.load(Ordering::Relaxed),
            scrub_interval_secs: self.inner.config.scrub_interval.as_secs(),
            deep_interval_secs: self.inner.config.deep_interval.as_secs(),
        }
    }

    /// Summaries of past scrubs, newest last.
    pub async fn history(&self) -> Result<Vec<ScrubReport>, HealError> {
        Ok(cluster_state::scrub_history(self.inner.objects.metadata().as_ref()).await?)
    }

    /// Starts a scrub in the background; returns its id, or `Busy` when one runs.
    pub fn start(&self, opts: ScrubOptions) -> Result<u64, HealError> {
        let guard = self
            .inner
            .job
            .clone()
            .try_lock_owned()
            .map_err(|_| HealError::Busy(self.running_id()))?;
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.set_progress(Some(Progress {
            id,
            phase: "starting".into(),
            started_ms: now_ms(),
            ..Progress::default()
        }));
        let this = self.clone();
        tokio::spawn(async move {
            let _guard = guard;
            if this.scrub_round(id, opts).await.is_err() {
                this.set_progress(None);
            }
        });
        Ok(id)
    }

    /// Runs a scrub to the end (waiting for a running one to finish first).
    pub async fn run_scrub(&self, opts: ScrubOptions) -> Result<ScrubReport, HealError> {
        let _guard = self.inner.job.lock().await;
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.scrub_round(id, opts).await
    }

    /// An asked-for scrub as a round of the `scrub` worker (the job lock held).
    async fn scrub_round(&self, id: u64, opts: ScrubOptions) -> Result<ScrubReport, HealError> {
        let worker = &self.inner.scrub_worker;
        worker.begin_round();
        let r = self.scrub_locked(id, opts).await;
        worker.end_round(match &r {
            Ok(report) => Ok(background::summary(report)),
            Err(e) => {
                tracing::error!(error = %e, "scrub failed");
                Err(format!("scrub {id}: {e}"))
            }
        });
        r
    }

    fn running_id(&self) -> u64 {
        lock(&self.inner.progress).as_ref().map_or(0, |p| p.id)
    }

    fn set_progress(&self, p: Option<Progress>) {
        *lock(&self.inner.progress) = p;
    }

    async fn scrub_locked(&self, id: u64, opts: ScrubOptions) -> Result<ScrubReport, HealError> {
        // One membership for the whole pass: the datanodes scrubbed, the ring shards are
        // checked against, and where repairs go.
        let view = self.inner.objects.membership().view();
        if let Some(ns) = &opts.nodes {
            if let Some(bad) = ns.iter().find(|n| !view.nodes().contains_key(n)) {
                return Err(HealError::Invalid(format!("no datanode {bad}")));
            }
        }
        let started = Instant::now();
        let started_ms = now_ms();
        let tracker = Tracker::new(self.clone(), id, started_ms);
        let objects = &self.inner.objects;
        let gc: HashSet<(NodeId, ShardId)> = objects
            .metadata()
            .gc_pending(usize::MAX)
            .await?
            .into_iter()
            .flat_map(|(_, e)| e.shards)
            .collect();
        let pass = scrub::run(objects, &view, &opts, &gc, &tracker).await?;
        tracing::info!(
            id,
            ms = started.elapsed().as_millis() as u64,
            damage = pass.damage.len(),
            "scrub pass compared"
        );
        let mut report = ScrubReport {
            id,
            started_ms,
            deep: opts.deep,
            repair: opts.repair,
            bucket: opts.bucket.clone(),
            trigger: opts.trigger.clone(),
            nodes: pass.nodes.clone(),
            unrecoverable: pass.unrecoverable.clone(),
            bytes_read: pass.bytes_read,
            ..ScrubReport::default()
        };
        for n in &report.nodes {
            report.partitions_checked += n.partitions_checked;
            report.shards_checked += n.shards_expected;
        }
        for d in &pass.damage {
            report.found.add(d.kind, 1);
        }
        let mut fixed = HashSet::new();
        if opts.repair {
            let unreachable: HashSet<NodeId> = pass.unreachable.iter().copied().collect();
            let mut pacer = Pacer::new(self.inner.repair_rate.clone());
            let r = repair::Repairer {
                objects,
                view: &view,
                unreachable: &unreachable,
            };
            let mut tally = r.repair_pass(&pass, &tracker, &mut pacer).await;
            let mut seen = self.inner.orphans_seen.lock().await;
            let peers = lock(&self.inner.peers).clone();
            repair::remove_orphans(
                objects,
                &view,
                peers.as_deref(),
                &pass,
                &mut seen,
                self.inner.config.orphan_grace,
                &mut tally,
            )
            .await?;
            report.repaired = tally.repaired;
            report.failed = tally.failed;
            report.deferred_orphans = tally.deferred_orphans;
            report.orphans_skipped = tally.orphans_skipped.take();
            report.bytes_read += tally.bytes_read;
            report.bytes_written = tally.bytes_written;
            fixed = tally.fixed;
        }
        report.findings_truncated = pass.damage.len() > report::MAX_FINDINGS;
        report.findings = pass
            .damage
            .iter()
            .take(report::MAX_FINDINGS)
            .map(|d| Finding {
                kind: d.kind,
                node: d.node.0,
                shard: d.shard.to_string(),
                object: pass.expected.name_of(d.shard.object),
                repaired: fixed.contains(d),
            })
            .collect();
        report.duration_ms = started.elapsed().as_millis() as u64;
        self.inner.metrics.record(&report);
        tracing::info!(
            id,
            deep = report.deep,
            shards = report.shards_checked,
            found = report.found.total(),
            repaired = report.repaired.total(),
            unrecoverable = report.unrecoverable.len(),
            ms = report.duration_ms,
            "scrub finished"
        );
        self.save(&report).await;
        self.set_progress(None);
        Ok(report)
    }

    async fn save(&self, report: &ScrubReport) {
        *lock(&self.inner.last) = Some(report.clone());
        let cmd = Command::RecordScrub(Box::new(report.summary()));
        if let Err(e) = self.inner.objects.metadata().apply(cmd).await {
            tracing::warn!(error = %e, "could not save the scrub history");
        }
    }

    /// Repairs the stripes degraded reads queued; returns the shards rewritten.
    pub async fn drain_hints(&self) -> usize {
        self.drain_hints_at_safe_points(None).await.1
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Updates the running scrub's [`Progress`].
pub(crate) struct Tracker {
    healer: Healer,
}

impl Tracker {
    fn new(healer: Healer, id: u64, started_ms: i64) -> Tracker {
        healer.set_progress(Some(Progress {
            id,
            phase: "starting".into(),
            started_ms,
            ..Progress::default()
        }));
        Tracker { healer }
    }

    fn update(&self, f: impl FnOnce(&mut Progress)) {
        if let Some(p) = lock(&self.healer.inner.progress).as_mut() {
            f(p);
            p.elapsed_ms = (now_ms() - p.started_ms).max(0) as u64;
            self.healer.inner.scrub_worker.set_progress(format!(
                "scrub {}: {} {}/{}, {} shard(s) checked",
                p.id, p.phase, p.done, p.total, p.shards_checked
            ));
        }
    }

    /// A safe point of the scrub (between datanodes, before each stripe repair): waits while
    /// the `scrub` worker is paused; `false` when the server is shutting down meanwhile.
    pub async fn checkpoint(&self) -> bool {
        self.healer.inner.scrub_worker.checkpoint().await
    }

    pub fn phase(&self, phase: &str, total: u64) {
        self.update(|p| {
            p.phase = phase.into();
            p.done = 0;
            p.total = total;
        });
    }

    pub fn step(&self, n: u64, shards: u64, bytes_read: u64) {
        self.update(|p| {
            p.done += n.max(1);
            p.shards_checked += shards;
            p.bytes_read += bytes_read;
        });
    }

    pub fn bytes(&self, read: u64, written: u64) {
        self.update(|p| {
            p.bytes_read = p.bytes_read.max(read);
            p.bytes_written = written;
        });
    }
}

/// Spaces repair writes so that they average at most the (changeable) rate.
pub(crate) struct Pacer {
    rate: Arc<AtomicU64>,
    window_start: Instant,
    bytes: u64,
}

impl Pacer {
    fn new(rate: Arc<AtomicU64>) -> Pacer {
        Pacer {
            rate,
            window_start: Instant::now(),
            bytes: 0,
        }
    }

    /// Accounts `n` bytes written and sleeps as long as the rate asks.
    pub async fn pace(&mut self, n: u64) {
        let rate = self.rate.load(Ordering::Relaxed);
        if rate == 0 {
            return;
        }
        // A fresh window every few seconds, so a rate change applies quickly.
        if self.window_start.elapsed() > Duration::from_secs(5) {
            self.window_start = Instant::now();
            self.bytes = 0;
        }
        self.bytes += n;
        let due = Duration::from_secs_f64(self.bytes as f64 / rate as f64);
        let elapsed = self.window_start.elapsed();
        if due > elapsed {
            tokio::time::sleep((due - elapsed).min(Duration::from_secs(5))).await;
        }
    }
}

#[cfg(test)]
mod tests;
