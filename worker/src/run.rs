//! The one loop every periodic job runs in: wait (period, wake-up or shutdown), honour the
//! pause switch, check the gate, run a round, record how it went.

use std::future::Future;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::Worker;

/// How one round went, when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Round {
    /// A round was done; the text becomes the worker's progress ("deleted 12 shards").
    Done(String),
    /// Nothing was due this time; not counted as a round.
    Skipped,
}

/// A background job: what one round does. The job keeps its own state between rounds.
pub trait Job: Send {
    /// Runs one round. `worker` is the job's handle: report progress with
    /// [`Worker::set_progress`] and call [`Worker::checkpoint`] at safe points (when it
    /// answers `false` the process is shutting down: end the round). An `Err` marks the
    /// worker failed until a later round succeeds.
    fn round(&mut self, worker: &Worker) -> impl Future<Output = Result<Round, String>> + Send;
}

/// When a worker's rounds run.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Time between rounds (from the end of one to the start of the next); zero: only
    /// when woken.
    pub every: Duration,
    /// Run the first round at once instead of after `every`.
    pub at_start: bool,
    /// Another wake-up besides [`Worker::wake`] (e.g. "a delete queued garbage").
    pub wake: Option<Arc<Notify>>,
    /// Rounds run only while this is `true` (e.g. "this node is the metadata leader"); the
    /// worker is idle, its progress saying why, meanwhile.
    pub gate: Option<(watch::Receiver<bool>, String)>,
    /// On shutdown, drop a running round instead of letting it finish (for long rounds
    /// that are safe to abandon at any point).
    pub cancel_on_shutdown: bool,
}

impl Schedule {
    /// A round every `every` (the first one after `every`).
    pub fn every(every: Duration) -> Schedule {
        Schedule {
            every,
            at_start: false,
            wake: None,
            gate: None,
            cancel_on_shutdown: false,
        }
    }

    pub fn at_start(mut self) -> Schedule {
        self.at_start = true;
        self
    }

    pub fn woken_by(mut self, wake: Arc<Notify>) -> Schedule {
        self.wake = Some(wake);
        self
    }

    /// Rounds only while `gate` is true; `why` says what the gate is ("not the metadata
    /// leader" is shown as "standby: not the metadata leader").
    pub fn gated(mut self, gate: watch::Receiver<bool>, why: impl Into<String>) -> Schedule {
        self.gate = Some((gate, why.into()));
        self
    }

    pub fn cancel_on_shutdown(mut self) -> Schedule {
        self.cancel_on_shutdown = true;
        self
    }
}

impl Worker {
    /// Runs `job` on `schedule` until `shutdown` turns true (or its sender is dropped), then
    /// marks the worker stopped. Before every round the pause switch is honoured (the worker
    /// waits, paused, until resumed) and the gate checked.
    pub async fn run<J: Job>(
        self,
        mut job: J,
        schedule: Schedule,
        shutdown: watch::Receiver<bool>,
    ) {
        let cancel = schedule.cancel_on_shutdown;
        let mut rounds = self.rounds(schedule, shutdown.clone());
        while rounds.next().await {
            let outcome = if cancel {
                tokio::select! {
                    r = job.round(&self) => r,
                    () = wait_true(Some(shutdown.clone())) => {
                        rounds.stop();
                        return;
                    }
                }
            } else {
                job.round(&self).await
            };
            rounds.finish(outcome);
        }
    }

    /// The rounds of a job that keeps its own loop (and its state in local variables):
    /// `while rounds.next().await { …; rounds.finish(outcome) }` waits, honours the pause
    /// switch and the gate exactly as [`Self::run`] does.
    pub fn rounds(&self, schedule: Schedule, shutdown: watch::Receiver<bool>) -> Rounds {
        *self
            .inner
            .shutdown
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(shutdown.clone());
        Rounds {
            worker: self.clone(),
            schedule,
            shutdown,
            first: true,
            open: None,
        }
    }
}

/// A worker's rounds, one [`Rounds::next`] at a time (see [`Worker::rounds`]).
pub struct Rounds {
    worker: Worker,
    schedule: Schedule,
    shutdown: watch::Receiver<bool>,
    first: bool,
    /// While a round is open: when the round before it started (restored if it is skipped).
    open: Option<Option<i64>>,
}

impl Rounds {
    /// Waits for the next round (the period, a wake-up), then for the pause switch to clear
    /// and the gate to open, and starts the round: `true`. `false` once the process shuts
    /// down; the worker is then stopped. A round still open is finished as done first.
    pub async fn next(&mut self) -> bool {
        if self.open.is_some() {
            let progress = self.worker.snapshot().progress;
            self.finish(Ok(Round::Done(progress)));
        }
        let w = self.worker.clone();
        loop {
            if !(self.first && self.schedule.at_start) {
                let every = self.schedule.every;
                let period = async {
                    if every.is_zero() {
                        std::future::pending::<()>().await
                    } else {
                        tokio::time::sleep(every).await
                    }
                };
                let external = async {
                    match &self.schedule.wake {
                        Some(n) => n.notified().await,
                        None => std::future::pending::<()>().await,
                    }
                };
                let stop = tokio::select! {
                    () = period => false,
                    () = external => false,
                    () = w.inner.wake.notified() => false,
                    () = wait_true(Some(self.shutdown.clone())) => true,
                };
                if stop {
                    self.stop();
                    return false;
                }
            }
            self.first = false;
            if *self.shutdown.borrow() || !w.checkpoint().await {
                self.stop();
                return false;
            }
            if let Some((gate, why)) = &self.schedule.gate {
                if !*gate.borrow() {
                    let started = w.snapshot().round_started_ms;
                    w.idle(Some(format!("standby: {why}")), started);
                    continue;
                }
            }
            self.open = Some(w.snapshot().round_started_ms);
            w.begin_round();
            return true;
        }
    }

    /// Ends the round [`Self::next`] started: done (its summary becomes the progress),
    /// skipped (not counted) or failed.
    pub fn finish(&mut self, outcome: Result<Round, String>) {
        let Some(before) = self.open.take() else {
            return;
        };
        match outcome {
            Ok(Round::Done(summary)) => self.worker.end_round(Ok(summary)),
            Ok(Round::Skipped) => self.worker.idle(None, before),
            Err(e) => self.worker.end_round(Err(e)),
        }
    }

    fn stop(&mut self) {
        self.open = None;
        self.worker.stopped();
        tracing::debug!(worker = %self.worker.name(), "worker stopped");
    }
}

/// Waits until `rx` (when there is one) reads `true`; forever if there is none or its
/// sender is gone without saying so.
pub(crate) async fn wait_true(rx: Option<watch::Receiver<bool>>) {
    let Some(mut rx) = rx else {
        return std::future::pending().await;
    };
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            // The sender is gone: treat it as a shutdown (as the old loops did).
            return;
        }
    }
}
