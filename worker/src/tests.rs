use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};

use crate::{Job, Round, Schedule, Worker, WorkerError, WorkerRegistry, WorkerState};

/// A job whose rounds do `batches` batches of work; each batch takes `batch_ms`, counted as
/// started and finished, with a safe point between batches.
struct Batches {
    batches: u64,
    batch_ms: u64,
    started: Arc<AtomicU64>,
    finished: Arc<AtomicU64>,
    /// How many times a checkpoint answered "shutting down".
    told_to_stop: Arc<AtomicU64>,
}

impl Batches {
    fn new(batches: u64, batch_ms: u64) -> Batches {
        Batches {
            batches,
            batch_ms,
            started: Arc::default(),
            finished: Arc::default(),
            told_to_stop: Arc::default(),
        }
    }
}

impl Job for Batches {
    async fn round(&mut self, worker: &Worker) -> Result<Round, String> {
        for b in 0..self.batches {
            if !worker.checkpoint().await {
                self.told_to_stop.fetch_add(1, Ordering::SeqCst);
                return Ok(Round::Done(format!("stopped after {b} batches")));
            }
            self.started.fetch_add(1, Ordering::SeqCst);
            worker.set_progress(format!("batch {}/{}", b + 1, self.batches));
            tokio::time::sleep(Duration::from_millis(self.batch_ms)).await;
            self.finished.fetch_add(1, Ordering::SeqCst);
        }
        Ok(Round::Done(format!("{} batches", self.batches)))
    }
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn the_registry_lists_by_name_and_refuses_duplicates_and_bad_names() {
    let reg = WorkerRegistry::new();
    reg.register("scrub", "scrubs").unwrap();
    reg.add(Worker::new("gc", "collects")).unwrap();
    assert_eq!(
        reg.register("gc", "again").unwrap_err(),
        WorkerError::Duplicate("gc".into())
    );
    for bad in ["", "GC", "a/b", "a b"] {
        assert_eq!(
            reg.register(bad, "x").unwrap_err(),
            WorkerError::InvalidName(bad.into())
        );
    }
    let names: Vec<String> = reg.snapshot().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["gc", "scrub"]);
    // Clones share the list.
    let other = reg.clone();
    other.register("compaction", "compacts").unwrap();
    assert_eq!(reg.snapshot().len(), 3);
    assert_eq!(
        reg.pause("nope").unwrap_err(),
        WorkerError::NotFound("nope".into())
    );
    assert_eq!(
        reg.resume("nope").unwrap_err(),
        WorkerError::NotFound("nope".into())
    );
    let s = reg.pause("gc").unwrap();
    assert!(s.paused);
    assert_eq!(
        s.state,
        WorkerState::Paused,
        "an idle worker is paused at once"
    );
    assert!(reg.get("gc").unwrap().is_paused());
    let s = reg.resume("gc").unwrap();
    assert!(!s.paused);
    assert_eq!(s.state, WorkerState::Idle);
}

#[test]
fn snapshots_serialize_with_lower_case_states() {
    let w = Worker::new("gc", "collects");
    w.pause();
    let v = serde_json::to_value(w.snapshot()).unwrap();
    assert_eq!(v["state"], "paused");
    assert_eq!(v["paused"], true);
    assert_eq!(v["name"], "gc");
    for s in [
        WorkerState::Running,
        WorkerState::Idle,
        WorkerState::Pausing,
        WorkerState::Paused,
        WorkerState::Failed,
        WorkerState::Stopped,
    ] {
        assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
    }
}

#[test]
fn rounds_record_progress_errors_and_times() {
    let w = Worker::new("x", "");
    w.begin_round();
    let s = w.snapshot();
    assert_eq!(s.state, WorkerState::Running);
    assert!(s.round_started_ms.is_some());
    assert_eq!(s.round_finished_ms, None);
    w.end_round(Err("disk on fire".into()));
    let s = w.snapshot();
    assert_eq!(s.state, WorkerState::Failed);
    assert_eq!(s.rounds, 1);
    assert_eq!(s.last_error.as_deref(), Some("disk on fire"));
    let failed_at = s.last_error_ms.expect("error time");
    assert!(failed_at >= s.round_started_ms.unwrap());
    w.begin_round();
    w.end_round(Ok("fine again".into()));
    let s = w.snapshot();
    assert_eq!(s.state, WorkerState::Idle);
    assert_eq!(s.rounds, 2);
    assert_eq!(s.progress, "fine again");
    // The last error stays, with its time, after a good round.
    assert_eq!(s.last_error.as_deref(), Some("disk on fire"));
    assert_eq!(s.last_error_ms, Some(failed_at));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_in_a_round_waits_for_the_batch_and_then_holds_until_resumed() {
    let job = Batches::new(6, 60);
    let (started, finished) = (job.started.clone(), job.finished.clone());
    let w = Worker::new("batches", "");
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(
        w.clone()
            .run(job, Schedule::every(Duration::ZERO).at_start(), rx),
    );
    until("the first batch", || started.load(Ordering::SeqCst) >= 1).await;
    w.pause();
    // The batch under way is finished before the job stops: pausing, then paused.
    let s = w.snapshot();
    assert!(s.paused);
    if s.state != WorkerState::Paused {
        assert_eq!(s.state, WorkerState::Pausing);
    }
    until("the safe point", || {
        w.snapshot().state == WorkerState::Paused
    })
    .await;
    let held = started.load(Ordering::SeqCst);
    assert_eq!(
        finished.load(Ordering::SeqCst),
        held,
        "paused with a batch half done"
    );
    assert!(held < 6, "the pause did not stop the round");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(started.load(Ordering::SeqCst), held, "worked while paused");
    assert_eq!(w.snapshot().rounds, 0);
    w.resume();
    until("the round's end", || w.snapshot().rounds == 1).await;
    assert_eq!(finished.load(Ordering::SeqCst), 6);
    let s = w.snapshot();
    assert_eq!(s.state, WorkerState::Idle);
    assert_eq!(s.progress, "6 batches");
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops")
        .unwrap();
    assert_eq!(w.snapshot().state, WorkerState::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_worker_starts_no_round_until_resumed_even_when_woken() {
    let job = Batches::new(1, 1);
    let started = job.started.clone();
    let wake = Arc::new(Notify::new());
    let w = Worker::new("gc", "");
    w.pause();
    let (tx, rx) = watch::channel(false);
    let schedule = Schedule::every(Duration::from_millis(20)).woken_by(wake.clone());
    let task = tokio::spawn(w.clone().run(job, schedule, rx));
    for _ in 0..10 {
        wake.notify_one();
        w.wake();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        started.load(Ordering::SeqCst),
        0,
        "a round ran while paused"
    );
    assert_eq!(w.snapshot().state, WorkerState::Paused);
    w.resume();
    until("a round after resuming", || w.snapshot().rounds >= 1).await;
    assert!(started.load(Ordering::SeqCst) >= 1);
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_a_worker_parked_at_a_safe_point() {
    let job = Batches::new(5, 30);
    let (started, told) = (job.started.clone(), job.told_to_stop.clone());
    let w = Worker::new("batches", "");
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(
        w.clone()
            .run(job, Schedule::every(Duration::ZERO).at_start(), rx),
    );
    until("the first batch", || started.load(Ordering::SeqCst) >= 1).await;
    w.pause();
    until("the safe point", || {
        w.snapshot().state == WorkerState::Paused
    })
    .await;
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("a parked worker stops on shutdown")
        .unwrap();
    assert_eq!(told.load(Ordering::SeqCst), 1, "the job was told to stop");
    assert_eq!(w.snapshot().state, WorkerState::Stopped);
}

/// Fails its first round, then succeeds; skips every third call.
struct Flaky {
    calls: Arc<AtomicU64>,
}

impl Job for Flaky {
    async fn round(&mut self, _: &Worker) -> Result<Round, String> {
        let calls = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        match calls {
            1 => Err("first round fails".into()),
            n if n % 3 == 0 => Ok(Round::Skipped),
            n => Ok(Round::Done(format!("call {n}"))),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_and_skips_are_recorded_and_the_gate_holds_rounds() {
    let (open_tx, open) = watch::channel(false);
    let w = Worker::new("flaky", "");
    let (tx, rx) = watch::channel(false);
    let schedule = Schedule::every(Duration::from_millis(10))
        .at_start()
        .gated(open, "not the leader");
    let calls = Arc::new(AtomicU64::new(0));
    let job = Flaky {
        calls: calls.clone(),
    };
    let task = tokio::spawn(w.clone().run(job, schedule, rx));
    until("standby", || {
        w.snapshot().progress == "standby: not the leader"
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let s = w.snapshot();
    assert_eq!(
        (s.rounds, s.state),
        (0, WorkerState::Idle),
        "ran with the gate shut"
    );
    open_tx.send(true).unwrap();
    until("the failed round", || w.snapshot().rounds >= 1).await;
    let s = w.snapshot();
    assert_eq!(s.last_error.as_deref(), Some("first round fails"));
    until("later rounds", || w.snapshot().rounds >= 4).await;
    open_tx.send(false).unwrap();
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops")
        .unwrap();
    let s = w.snapshot();
    // Every third call was skipped: rounds count only the others.
    let calls = calls.load(Ordering::SeqCst);
    assert_eq!(s.rounds, calls - calls / 3, "{calls} calls");
    assert_eq!(s.last_error.as_deref(), Some("first round fails"));
    assert_eq!(s.state, WorkerState::Stopped);
}
