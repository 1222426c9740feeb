//! Background jobs in one shape: every job of a Cairn process (garbage collection, scrubbing
//! and repair, segment compaction, the cluster watcher) is a [`Worker`] with a name, a state,
//! free-text progress, a count of rounds, the last error and when it happened, and a pause
//! switch; a [`WorkerRegistry`] lists them for `cairn status`, the admin API and the console.
//!
//! A job runs in rounds ([`Job::round`]), started by [`Worker::run`] on a [`Schedule`]
//! (a period, wake-ups, a gate such as "this node leads", shutdown). Pausing is cooperative:
//! [`Worker::pause`] only sets a switch; the runner checks it before every round, and a job
//! checks it at its own safe points inside a round ([`Worker::checkpoint`]: between batches,
//! segments, datanodes, stripes), so a paused job never stops in the middle of a unit of work.
//! A worker paused while a round runs is `pausing` until the round reaches a safe point.
//!
//! Invariants: a worker's state is one of [`WorkerState`]; `paused` in a snapshot is the
//! switch, `state` what the job is doing about it; nothing is persisted (a restarted process
//! starts with every worker running). Depends on nothing heavier than tokio's sync and time.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use cairn_types::clock::now_ms;
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};

mod run;

pub use run::{Job, Round, Rounds, Schedule};

/// Errors of the registry.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WorkerError {
    #[error("no worker named {0:?}")]
    NotFound(String),
    #[error("a worker named {0:?} is already registered")]
    Duplicate(String),
    #[error("invalid worker name {0:?} (lower-case letters, digits and '-')")]
    InvalidName(String),
}

/// What a worker is doing, as shown to operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkerState {
    /// In a round.
    Running,
    /// Waiting for its next round.
    Idle,
    /// Paused by an operator, but still in a round until its next safe point.
    Pausing,
    /// Paused, holding no half-done work.
    Paused,
    /// Its last round failed; it waits for the next one.
    Failed,
    /// It has ended (the process is shutting down).
    Stopped,
}

impl WorkerState {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerState::Running => "running",
            WorkerState::Idle => "idle",
            WorkerState::Pausing => "pausing",
            WorkerState::Paused => "paused",
            WorkerState::Failed => "failed",
            WorkerState::Stopped => "stopped",
        }
    }
}

/// A worker as `GET /admin/workers` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerSnapshot {
    pub name: String,
    /// What the job does, in a few words.
    pub about: String,
    pub state: WorkerState,
    /// The pause switch (the state says whether the job has reached a safe point yet).
    pub paused: bool,
    /// Free text: what the running round is at, or what the last one did.
    pub progress: String,
    /// Rounds finished (a round a job skips because nothing was due does not count).
    pub rounds: u64,
    pub last_error: Option<String>,
    pub last_error_ms: Option<i64>,
    /// When the last (or running) round started and when the last one finished.
    pub round_started_ms: Option<i64>,
    pub round_finished_ms: Option<i64>,
}

/// What the job is doing, before the pause switch is taken into account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Running,
    /// Waiting at a safe point for the pause switch to clear.
    Parked,
    Failed,
    Stopped,
}

#[derive(Debug)]
struct Status {
    phase: Phase,
    progress: String,
    rounds: u64,
    last_error: Option<(String, i64)>,
    started_ms: Option<i64>,
    finished_ms: Option<i64>,
}

struct Inner {
    name: String,
    about: String,
    status: Mutex<Status>,
    paused: watch::Sender<bool>,
    /// Wakes the runner for a round now.
    wake: Notify,
    /// The shutdown switch of the running loop, so a job parked at a safe point ends.
    shutdown: Mutex<Option<watch::Receiver<bool>>>,
}

/// One background job's handle: cheap to clone, shared by the job, the registry and the
/// admin API.
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker, idle and not paused. Register it with [`WorkerRegistry::add`] to list it.
    pub fn new(name: impl Into<String>, about: impl Into<String>) -> Worker {
        Worker {
            inner: Arc::new(Inner {
                name: name.into(),
                about: about.into(),
                status: Mutex::new(Status {
                    phase: Phase::Idle,
                    progress: String::new(),
                    rounds: 0,
                    last_error: None,
                    started_ms: None,
                    finished_ms: None,
                }),
                paused: watch::channel(false).0,
                wake: Notify::new(),
                shutdown: Mutex::new(None),
            }),
        }
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    fn status(&self) -> MutexGuard<'_, Status> {
        self.inner
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The worker as it is now.
    pub fn snapshot(&self) -> WorkerSnapshot {
        let paused = self.is_paused();
        let s = self.status();
        let state = match (s.phase, paused) {
            (Phase::Stopped, _) => WorkerState::Stopped,
            (Phase::Running, true) => WorkerState::Pausing,
            (_, true) => WorkerState::Paused,
            (Phase::Running | Phase::Parked, false) => WorkerState::Running,
            (Phase::Idle, false) => WorkerState::Idle,
            (Phase::Failed, false) => WorkerState::Failed,
        };
        WorkerSnapshot {
            name: self.inner.name.clone(),
            about: self.inner.about.clone(),
            state,
            paused,
            progress: s.progress.clone(),
            rounds: s.rounds,
            last_error: s.last_error.as_ref().map(|(e, _)| e.clone()),
            last_error_ms: s.last_error.as_ref().map(|(_, t)| *t),
            round_started_ms: s.started_ms,
            round_finished_ms: s.finished_ms,
        }
    }

    /// Sets the pause switch: the job stops at its next safe point and starts no round
    /// until [`Self::resume`].
    pub fn pause(&self) {
        if !self.inner.paused.send_replace(true) {
            tracing::info!(worker = %self.inner.name, "worker paused");
        }
    }

    /// Clears the pause switch: a job parked at a safe point goes on.
    pub fn resume(&self) {
        if self.inner.paused.send_replace(false) {
            tracing::info!(worker = %self.inner.name, "worker resumed");
        }
    }

    pub fn is_paused(&self) -> bool {
        *self.inner.paused.borrow()
    }

    /// Asks for a round now (it runs once the current one, if any, is done).
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Replaces the progress text.
    pub fn set_progress(&self, progress: impl Into<String>) {
        self.status().progress = progress.into();
    }

    /// A safe point: returns at once unless the worker is paused; then waits, shown as
    /// `paused`, until it is resumed (`true`) or the process shuts down (`false`: the job
    /// should end its round without starting more work).
    pub async fn checkpoint(&self) -> bool {
        let mut paused = self.inner.paused.subscribe();
        if !*paused.borrow_and_update() {
            return true;
        }
        let shutdown = self
            .inner
            .shutdown
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let before = std::mem::replace(&mut self.status().phase, Phase::Parked);
        tracing::info!(worker = %self.inner.name, "worker parked at a safe point");
        let resumed = async {
            while *paused.borrow_and_update() {
                if paused.changed().await.is_err() {
                    break;
                }
            }
        };
        let go_on = tokio::select! {
            () = resumed => true,
            () = run::wait_true(shutdown) => false,
        };
        let mut s = self.status();
        if s.phase == Phase::Parked {
            s.phase = before;
        }
        go_on
    }

    /// Marks the start of a round (the runner does this; so does a job that runs a round on
    /// demand, such as an operator's scrub).
    pub fn begin_round(&self) {
        let mut s = self.status();
        s.phase = Phase::Running;
        s.started_ms = Some(now_ms());
    }

    /// Marks the end of a round begun with [`Self::begin_round`]: `Ok(summary)` makes it
    /// idle with the summary as progress, `Err` failed with the error recorded.
    pub fn end_round(&self, outcome: Result<String, String>) {
        let now = now_ms();
        let mut s = self.status();
        s.rounds += 1;
        s.finished_ms = Some(now);
        match outcome {
            Ok(summary) => {
                s.phase = Phase::Idle;
                s.progress = summary;
            }
            Err(e) => {
                tracing::warn!(worker = %self.inner.name, error = %e, "worker round failed");
                s.phase = Phase::Failed;
                s.last_error = Some((e, now));
            }
        }
    }

    /// Leaves the worker idle with `progress`, its round count unchanged (a round that found
    /// nothing due, or a gate that is closed).
    fn idle(&self, progress: Option<String>, started_ms: Option<i64>) {
        let mut s = self.status();
        if s.phase == Phase::Running {
            s.phase = Phase::Idle;
        }
        s.started_ms = started_ms;
        if let Some(p) = progress {
            s.progress = p;
        }
    }

    fn stopped(&self) {
        self.status().phase = Phase::Stopped;
    }
}

/// Every worker of the process, by name; clones share the list.
#[derive(Clone, Default)]
pub struct WorkerRegistry {
    workers: Arc<Mutex<BTreeMap<String, Worker>>>,
}

impl WorkerRegistry {
    pub fn new() -> WorkerRegistry {
        WorkerRegistry::default()
    }

    fn map(&self) -> MutexGuard<'_, BTreeMap<String, Worker>> {
        self.workers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates and lists a worker.
    pub fn register(&self, name: &str, about: &str) -> Result<Worker, WorkerError> {
        let w = Worker::new(name, about);
        self.add(w.clone())?;
        Ok(w)
    }

    /// Lists a worker made elsewhere (a library that owns its jobs makes their handles).
    pub fn add(&self, worker: Worker) -> Result<(), WorkerError> {
        let name = worker.name().to_string();
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid {
            return Err(WorkerError::InvalidName(name));
        }
        let mut map = self.map();
        if map.contains_key(&name) {
            return Err(WorkerError::Duplicate(name));
        }
        map.insert(name, worker);
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<Worker> {
        self.map().get(name).cloned()
    }

    /// Every worker, by name.
    pub fn snapshot(&self) -> Vec<WorkerSnapshot> {
        let workers: Vec<Worker> = self.map().values().cloned().collect();
        workers.iter().map(Worker::snapshot).collect()
    }

    /// Pauses the named worker; answers its state after.
    pub fn pause(&self, name: &str) -> Result<WorkerSnapshot, WorkerError> {
        let w = self
            .get(name)
            .ok_or_else(|| WorkerError::NotFound(name.into()))?;
        w.pause();
        Ok(w.snapshot())
    }

    /// Resumes the named worker; answers its state after.
    pub fn resume(&self, name: &str) -> Result<WorkerSnapshot, WorkerError> {
        let w = self
            .get(name)
            .ok_or_else(|| WorkerError::NotFound(name.into()))?;
        w.resume();
        Ok(w.snapshot())
    }
}

#[cfg(test)]
mod tests;
