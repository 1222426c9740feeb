//! The healer's background work as two workers ([`cairn_worker`]): `scrub` runs light and
//! deep scrubs on their schedules (on the metadata leader only, when gated), and `repair`
//! repairs the stripes degraded reads queue, as they come. Asked-for scrubs (the admin API,
//! `cairn scrub`) count as rounds of `scrub` too, and stop at the same safe points: between
//! datanodes while scrubbing, before each stripe while repairing.

use std::collections::HashSet;
use std::time::Duration;

use cairn_worker::{Job, Round, Schedule, Worker};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::{repair, HealConfig, Healer, ScrubOptions, ScrubReport};

/// The longest the `scrub` worker sleeps between looks at its schedule, so a deep scrub
/// starts at most this late when light scrubs are rare or off.
const SCHEDULE_TICK: Duration = Duration::from_secs(60);

impl Healer {
    /// The healer's workers (`scrub`, `repair`), for the process's registry.
    pub fn workers(&self) -> Vec<Worker> {
        vec![
            self.inner.scrub_worker.clone(),
            self.inner.repair_worker.clone(),
        ]
    }

    /// Background work until `shutdown`: repairs hinted stripes as they come, and runs light
    /// and deep scrubs on their schedules.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        self.run_gated(None, shutdown).await
    }

    /// Like [`Self::run`], but scheduled scrubs run only while `active` is true (in a
    /// cluster: on the metadata leader, so that one node scrubs). Hinted repairs from this
    /// node's own degraded reads always run.
    pub async fn run_while(self, active: watch::Receiver<bool>, shutdown: watch::Receiver<bool>) {
        self.run_gated(Some(active), shutdown).await
    }

    async fn run_gated(
        self,
        active: Option<watch::Receiver<bool>>,
        shutdown: watch::Receiver<bool>,
    ) {
        let cfg = self.inner.config.clone();
        let scrub = ScrubJob::new(self.clone(), &cfg);
        let mut scrubs = Schedule::every(scrub.tick()).cancel_on_shutdown();
        if let Some(a) = active {
            scrubs = scrubs.gated(a, "not the metadata leader");
        }
        let hints = Schedule::every(Duration::ZERO)
            .at_start()
            .woken_by(self.inner.objects.repair_hints().wakeup());
        tokio::join!(
            self.inner
                .scrub_worker
                .clone()
                .run(scrub, scrubs, shutdown.clone()),
            self.inner
                .repair_worker
                .clone()
                .run(HintJob(self.clone()), hints, shutdown),
        );
    }

    /// Repairs queued hints, pausing before each one at `worker`'s switch; returns the
    /// hints taken and the shards rewritten.
    pub(crate) async fn drain_hints_at_safe_points(
        &self,
        worker: Option<&Worker>,
    ) -> (usize, usize) {
        let objects = &self.inner.objects;
        let unreachable = HashSet::new();
        let (mut stripes, mut fixed) = (0, 0);
        loop {
            if let Some(w) = worker {
                if !w.checkpoint().await {
                    break;
                }
            }
            let Some(hint) = objects.repair_hints().pop() else {
                break;
            };
            let view = objects.membership().view();
            let r = repair::Repairer {
                objects,
                view: &view,
                unreachable: &unreachable,
            };
            let n = r.repair_hint(&hint).await;
            self.inner.metrics.hinted_repairs.inc_by(n as u64);
            stripes += 1;
            fixed += n;
            if let Some(w) = worker {
                w.set_progress(format!(
                    "{stripes} hinted stripe(s) checked, {fixed} shard(s) rewritten, {} queued",
                    objects.repair_hints().len()
                ));
            }
        }
        (stripes, fixed)
    }
}

/// What a finished scrub leaves as the `scrub` worker's progress.
pub(crate) fn summary(r: &ScrubReport) -> String {
    format!(
        "last scrub {} ({}, {}): {} shard(s) checked, {} damage found, {} repaired",
        r.id,
        if r.deep { "deep" } else { "light" },
        r.trigger,
        r.shards_checked,
        r.found.total(),
        r.repaired.total()
    )
}

/// Scheduled scrubs: a deep one when due, else a light one when due.
pub(crate) struct ScrubJob {
    healer: Healer,
    light: Option<Duration>,
    deep: Option<Duration>,
    pub(crate) next_light: Option<Instant>,
    pub(crate) next_deep: Option<Instant>,
    auto_repair: bool,
    deep_rate: u64,
}

impl ScrubJob {
    pub(crate) fn new(healer: Healer, cfg: &HealConfig) -> ScrubJob {
        let nonzero = |d: Duration| (!d.is_zero()).then_some(d);
        let (light, deep) = (nonzero(cfg.scrub_interval), nonzero(cfg.deep_interval));
        let now = Instant::now();
        ScrubJob {
            healer,
            light,
            deep,
            next_light: light.map(|d| now + d),
            next_deep: deep.map(|d| now + d),
            auto_repair: cfg.auto_repair,
            deep_rate: cfg.deep_rate,
        }
    }

    /// How often the schedule is looked at (zero: never, both scrubs are off).
    pub(crate) fn tick(&self) -> Duration {
        match (self.light, self.deep) {
            (None, None) => Duration::ZERO,
            (l, d) => l
                .into_iter()
                .chain(d)
                .min()
                .unwrap_or(SCHEDULE_TICK)
                .min(SCHEDULE_TICK),
        }
    }
}

impl Job for ScrubJob {
    async fn round(&mut self, _worker: &Worker) -> Result<Round, String> {
        let now = Instant::now();
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        let deep = due(self.next_deep);
        if !deep && !due(self.next_light) {
            return Ok(Round::Skipped);
        }
        // A deep scrub checks all a light one does: both schedules restart from now.
        if deep {
            self.next_deep = self.deep.map(|d| now + d);
        }
        self.next_light = self.light.map(|d| now + d);
        let opts = ScrubOptions {
            deep,
            repair: self.auto_repair,
            deep_rate: self.deep_rate,
            trigger: "schedule".into(),
            ..ScrubOptions::default()
        };
        let healer = &self.healer;
        let _guard = healer.inner.job.lock().await;
        let id = healer
            .inner
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match healer.scrub_locked(id, opts).await {
            Ok(report) => Ok(Round::Done(summary(&report))),
            Err(e) => {
                healer.set_progress(None);
                Err(format!("scheduled scrub {id} failed: {e}"))
            }
        }
    }
}

/// Hinted repairs: whatever degraded reads queued.
struct HintJob(Healer);

impl Job for HintJob {
    async fn round(&mut self, worker: &Worker) -> Result<Round, String> {
        let (stripes, fixed) = self.0.drain_hints_at_safe_points(Some(worker)).await;
        if stripes == 0 {
            return Ok(Round::Skipped);
        }
        Ok(Round::Done(format!(
            "last round: {stripes} hinted stripe(s), {fixed} shard(s) rewritten"
        )))
    }
}
