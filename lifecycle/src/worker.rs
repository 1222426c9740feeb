//! The lifecycle worker: on the metadata leader, walks every bucket that has lifecycle rules,
//! key by key in pages, and carries out what [`plan_key`] asks (and aborts the incomplete
//! multipart uploads the rules name) through the object service.
//!
//! A run is resumable: after every page the worker records in the metadata (replicated with
//! it) the bucket and last key it finished, so a restarted process or a new leader continues
//! the run there instead of starting over. Every action is decided from the state it acts
//! on, so doing a page twice (a crash between its actions and its record) changes nothing:
//! an expired object already hidden behind a marker is not current any more, a version
//! already removed is not listed.
//!
//! Pacing: at most `actions_per_sec` deletes per second, and a pause between pages, so that a
//! bucket with millions of expired objects never crowds out foreground requests.

use std::time::Duration;

use cairn_metadata::{
    cluster_state, BucketConfigKind, Command, MetadataError, UploadEntry, UploadQuery,
    VersionEntry, VersionQuery, VersionRecord, VersionSel, VersioningState,
};
use cairn_objects::{ObjectService, ObjectsError};
use cairn_types::clock::now_ms;
use cairn_types::{BucketName, ObjectKey};
use cairn_worker::{Job, Round, Worker};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};

use crate::rules::LifecycleConfig;
use crate::schedule::{plan_key, Action, DayLength};

/// Keys listed per page.
const PAGE: usize = 500;

/// What this process's worker has done since it started, as Prometheus counters (the
/// persisted [`Progress`] has the cluster's totals); clones share the values.
#[derive(Debug, Clone, Default)]
pub struct LifecycleStats {
    /// Lifecycle actions done, by `action` (`expire`, `noncurrent`, `delete_marker`,
    /// `abort_upload`) and `outcome` (`done`, `locked`: Object Lock kept the version,
    /// `failed`).
    pub actions: Family<ActionLabels, Counter>,
    /// Complete runs over every bucket with rules.
    pub runs: Counter,
    /// When the last complete run finished (seconds since the epoch).
    pub last_run: Gauge,
}

/// Labels of `cairn_lifecycle_actions_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub action: &'static str,
    pub outcome: &'static str,
}

impl LifecycleStats {
    /// Registers the counters under the `cairn_lifecycle` prefix.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("cairn_lifecycle");
        r.register(
            "actions",
            "Lifecycle actions by action and outcome",
            self.actions.clone(),
        );
        r.register("runs", "Complete lifecycle runs", self.runs.clone());
        r.register(
            "last_run_seconds",
            "When the last complete lifecycle run finished",
            self.last_run.clone(),
        );
    }
}

/// Counts of one kind of action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub expired: u64,
    pub noncurrent_removed: u64,
    pub markers_removed: u64,
    pub uploads_aborted: u64,
    pub locked: u64,
    pub failures: u64,
}

/// What became of one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Done {
    Expired,
    NoncurrentRemoved,
    MarkerRemoved,
    UploadAborted,
    /// Object Lock protects the version: left alone.
    Locked,
    Failed,
}

impl Counts {
    fn bump(&mut self, d: Done) {
        let n = match d {
            Done::Expired => &mut self.expired,
            Done::NoncurrentRemoved => &mut self.noncurrent_removed,
            Done::MarkerRemoved => &mut self.markers_removed,
            Done::UploadAborted => &mut self.uploads_aborted,
            Done::Locked => &mut self.locked,
            Done::Failed => &mut self.failures,
        };
        *n += 1;
    }
}

/// The worker's persisted state (JSON in the metadata's `lifecycle-progress`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// The run in progress (or last run) number.
    pub run: u64,
    pub run_started_ms: i64,
    /// Where the run in progress stands: the bucket being walked…
    pub bucket: Option<String>,
    /// …and the last key of it whose actions are done.
    pub key_marker: Option<String>,
    /// Buckets with rules this run has finished.
    pub buckets_done: u64,
    /// Runs continued by a process that did not start them (a restart, a new leader).
    #[serde(default)]
    pub resumed: u64,
    /// When the last complete run finished, and how long it took.
    pub last_run_finished_ms: Option<i64>,
    pub last_run_ms: Option<i64>,
    /// Actions of the run in progress, and of every run.
    pub this_run: Counts,
    pub total: Counts,
}

impl Progress {
    pub fn decode(raw: &[u8]) -> Option<Progress> {
        serde_json::from_slice(raw).ok()
    }

    /// The recorded progress of the cluster's lifecycle runs.
    pub async fn load(objects: &ObjectService) -> Result<Progress, MetadataError> {
        Ok(
            cluster_state::lifecycle_progress(objects.metadata().as_ref())
                .await?
                .and_then(|raw| Progress::decode(&raw))
                .unwrap_or_default(),
        )
    }
}

/// The job the `lifecycle` worker runs.
pub struct LifecycleJob {
    objects: ObjectService,
    day: DayLength,
    actions_per_sec: u32,
    stats: LifecycleStats,
    /// While this says `false` (this node stopped leading), the run stops at its next page.
    leading: Option<tokio::sync::watch::Receiver<bool>>,
    /// The run this process is in (to tell a run it continues from one it started).
    current_run: Option<u64>,
}

impl LifecycleJob {
    pub fn new(objects: ObjectService, day: DayLength, actions_per_sec: u32) -> Self {
        LifecycleJob {
            objects,
            day,
            actions_per_sec: actions_per_sec.max(1),
            stats: LifecycleStats::default(),
            leading: None,
            current_run: None,
        }
    }

    /// Stops a run at its next page once `leading` turns `false` (the new leader continues
    /// it from the recorded progress).
    pub fn while_leading(mut self, leading: tokio::sync::watch::Receiver<bool>) -> Self {
        self.leading = Some(leading);
        self
    }

    fn still_leading(&self) -> bool {
        self.leading.as_ref().is_none_or(|l| *l.borrow())
    }

    pub fn stats(&self) -> LifecycleStats {
        self.stats.clone()
    }

    async fn save(&self, p: &Progress) -> Result<(), ObjectsError> {
        let raw = serde_json::to_vec(p).expect("plain struct serialises");
        self.objects
            .metadata()
            .apply(Command::SetLifecycleProgress(raw))
            .await?;
        Ok(())
    }

    /// One run (or the rest of one): every bucket with rules, from where the record says.
    async fn run(&mut self, worker: &Worker) -> Result<Round, ObjectsError> {
        let mut p = Progress::load(&self.objects).await?;
        if p.bucket.is_none() {
            p.run += 1;
            p.run_started_ms = now_ms();
            p.buckets_done = 0;
            p.this_run = Counts::default();
        } else if self.current_run != Some(p.run) {
            p.resumed += 1;
            tracing::info!(run = p.run, bucket = ?p.bucket, after = ?p.key_marker, "continuing a lifecycle run another process started");
        }
        self.current_run = Some(p.run);
        let mut buckets = self.objects.metadata().list_buckets().await?;
        buckets.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        for b in buckets {
            if p.bucket.as_deref().is_some_and(|at| b.name.as_str() < at) {
                continue;
            }
            if p.bucket.as_deref() != Some(b.name.as_str()) {
                p.bucket = Some(b.name.as_str().to_string());
                p.key_marker = None;
            }
            let Some(raw) = self
                .objects
                .bucket_config(&b.name, BucketConfigKind::Lifecycle)
                .await?
            else {
                continue;
            };
            let cfg = match LifecycleConfig::decode(&raw) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(bucket = %b.name, error = %e, "skipping unreadable lifecycle rules");
                    continue;
                }
            };
            worker.set_progress(format!("run {}: bucket {}", p.run, b.name));
            if !self.bucket(worker, &b.name, &cfg, &mut p).await? {
                return Ok(Round::Done(format!(
                    "run {} stopped at bucket {} (paused, or no longer the leader)",
                    p.run, b.name
                )));
            }
            p.buckets_done += 1;
        }
        let now = now_ms();
        p.bucket = None;
        p.key_marker = None;
        p.last_run_finished_ms = Some(now);
        p.last_run_ms = Some(now - p.run_started_ms);
        self.save(&p).await?;
        self.stats.runs.inc();
        self.stats.last_run.set(now / 1000);
        let c = p.this_run;
        Ok(Round::Done(format!(
            "run {} over {} buckets with rules: {} expired, {} noncurrent versions and {} delete markers removed, {} uploads aborted, {} locked versions kept",
            p.run, p.buckets_done, c.expired, c.noncurrent_removed, c.markers_removed, c.uploads_aborted, c.locked
        )))
    }

    /// Walks one bucket from `p.key_marker`; `false` when paused at a safe point.
    async fn bucket(
        &mut self,
        worker: &Worker,
        bucket: &BucketName,
        cfg: &LifecycleConfig,
        p: &mut Progress,
    ) -> Result<bool, ObjectsError> {
        let versioned = self.objects.versioning(bucket).await? != VersioningState::Unversioned;
        loop {
            let (keys, next) = self.page(bucket, p.key_marker.clone()).await?;
            let now = now_ms();
            for (key, versions) in &keys {
                let plan = plan_key(cfg, key, versions, now, self.day);
                self.carry_out(bucket, key, plan.actions, versioned, p)
                    .await;
            }
            if let Some((last, _)) = keys.last() {
                p.key_marker = Some(last.clone());
            }
            if next.is_none() {
                break;
            }
            self.save(p).await?;
            if !self.still_leading() || !worker.checkpoint().await {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if cfg
            .rules
            .iter()
            .any(|r| r.enabled && r.abort_incomplete_days.is_some())
        {
            self.uploads(bucket, cfg, p).await?;
        }
        self.save(p).await?;
        Ok(true)
    }

    /// The next keys after `after`, each with all its versions (newest first), and whether
    /// more follow. A page never splits a key's versions: a key cut off at the end of a
    /// page is listed again whole on the next one.
    async fn page(
        &self,
        bucket: &BucketName,
        after: Option<String>,
    ) -> Result<(Vec<(String, Vec<VersionRecord>)>, Option<String>), ObjectsError> {
        let mut max = PAGE;
        loop {
            let page = self
                .objects
                .list_versions(
                    bucket,
                    &VersionQuery {
                        prefix: String::new(),
                        delimiter: None,
                        key_marker: after.clone(),
                        version_id_marker: None,
                        max_keys: max,
                    },
                )
                .await?;
            let mut keys: Vec<(String, Vec<VersionRecord>)> = Vec::new();
            for e in page.entries {
                if let VersionEntry::Version { key, version, .. } = e {
                    match keys.last_mut() {
                        Some((k, vs)) if *k == key => vs.push(*version),
                        _ => keys.push((key, vec![*version])),
                    }
                }
            }
            if !page.is_truncated {
                return Ok((keys, None));
            }
            if keys.len() > 1 {
                let cut = keys.pop().map(|(k, _)| k);
                return Ok((keys, cut));
            }
            // One key with more versions than a page: list it with a larger one.
            max = max.saturating_mul(4);
        }
    }

    async fn carry_out(
        &mut self,
        bucket: &BucketName,
        key: &str,
        actions: Vec<Action>,
        versioned: bool,
        p: &mut Progress,
    ) {
        let Ok(key) = ObjectKey::new(key.to_string()) else {
            return;
        };
        let mut failed = false;
        for a in actions {
            let (sel, done, label) = match &a {
                Action::ExpireCurrent { .. } => (VersionSel::Latest, Done::Expired, "expire"),
                Action::DeleteVersion {
                    expired_marker: true,
                    ..
                } if failed => continue,
                Action::DeleteVersion {
                    version_id,
                    expired_marker,
                    ..
                } => (
                    VersionSel::Id(version_id.clone()),
                    if *expired_marker {
                        Done::MarkerRemoved
                    } else {
                        Done::NoncurrentRemoved
                    },
                    if *expired_marker {
                        "delete_marker"
                    } else {
                        "noncurrent"
                    },
                ),
            };
            self.pace().await;
            let outcome = match self.objects.delete_object(bucket, &key, sel, false).await {
                Ok(_) => {
                    tracing::debug!(%bucket, %key, action = ?a, versioned, "lifecycle action");
                    done
                }
                Err(ObjectsError::Metadata(MetadataError::ObjectLocked(_))) => Done::Locked,
                Err(e) => {
                    tracing::warn!(%bucket, %key, action = ?a, error = %e, "lifecycle action failed");
                    Done::Failed
                }
            };
            failed |= matches!(outcome, Done::Locked | Done::Failed);
            self.count(p, label, outcome);
        }
    }

    /// Counts an outcome of `action` in the run's, the cluster's and this process's counts.
    fn count(&self, p: &mut Progress, action: &'static str, outcome: Done) {
        p.this_run.bump(outcome);
        p.total.bump(outcome);
        let outcome = match outcome {
            Done::Locked => "locked",
            Done::Failed => "failed",
            _ => "done",
        };
        self.stats
            .actions
            .get_or_create(&ActionLabels { action, outcome })
            .inc();
    }

    /// Aborts the bucket's incomplete multipart uploads the rules name.
    async fn uploads(
        &mut self,
        bucket: &BucketName,
        cfg: &LifecycleConfig,
        p: &mut Progress,
    ) -> Result<(), ObjectsError> {
        let mut query = UploadQuery {
            max_uploads: PAGE,
            ..UploadQuery::default()
        };
        loop {
            let page = self.objects.list_uploads(bucket, &query).await?;
            let now = now_ms();
            let mut last = None;
            for e in &page.entries {
                let UploadEntry::Upload(key, u) = e else {
                    continue;
                };
                last = Some((key.clone(), u.upload_id.clone()));
                let due = cfg.rules.iter().any(|r| {
                    r.enabled
                        && r.abort_incomplete_days
                            .is_some_and(|d| now >= self.day.due(u.initiated_ms, d))
                        && r.matches_upload(key)
                });
                let Ok(k) = ObjectKey::new(key.clone()) else {
                    continue;
                };
                if !due {
                    continue;
                }
                self.pace().await;
                let outcome = match self.objects.abort_upload(bucket, &k, &u.upload_id).await {
                    Ok(()) | Err(ObjectsError::Metadata(MetadataError::NoSuchUpload)) => {
                        Done::UploadAborted
                    }
                    Err(e) => {
                        tracing::warn!(%bucket, %key, error = %e, "aborting an upload failed");
                        Done::Failed
                    }
                };
                self.count(p, "abort_upload", outcome);
            }
            match (page.is_truncated, last) {
                (true, Some((key, id))) => {
                    query.key_marker = Some(key);
                    query.upload_id_marker = Some(id);
                }
                _ => return Ok(()),
            }
        }
    }

    /// Waits so that actions stay under `actions_per_sec`.
    async fn pace(&self) {
        tokio::time::sleep(Duration::from_secs(1) / self.actions_per_sec).await;
    }
}

impl Job for LifecycleJob {
    async fn round(&mut self, worker: &Worker) -> Result<Round, String> {
        self.run(worker).await.map_err(|e| e.to_string())
    }
}
