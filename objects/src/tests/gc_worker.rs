//! The garbage collector as a worker: paused, it deletes nothing (not even when woken by a
//! delete); resumed, it frees the queued shards and counts the round.

use std::time::Duration;

use cairn_worker::{Worker, WorkerState};
use tokio::sync::watch;

use super::*;

async fn until(what: &str, mut ok: impl FnMut() -> bool) {
    for _ in 0..500 {
        if ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_gc_frees_nothing_until_resumed() {
    let f = fixture().await;
    let key = ObjectKey::new("k").unwrap();
    let w = f.svc.write_body(body(&[5u8; 2500], 700)).await.unwrap();
    f.svc.commit(&f.bucket, &key, record(w)).await.unwrap();
    let shards = || f.store.shards.lock().unwrap().len();
    assert_eq!(shards(), 3);

    let worker = Worker::new("gc", "");
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(f.svc.gc_worker().run(worker.clone(), None, rx));
    until("the first round", || worker.snapshot().rounds >= 1).await;
    worker.pause();
    assert_eq!(worker.snapshot().state, WorkerState::Paused);
    let rounds = worker.snapshot().rounds;

    // The delete queues the shards and wakes the collector: it stays parked.
    f.svc.delete(&f.bucket, &key, "m".into(), 0).await.unwrap();
    f.svc.wake_gc();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(shards(), 3, "a paused collector deleted shards");
    assert_eq!(worker.snapshot().rounds, rounds);
    assert_eq!(worker.snapshot().state, WorkerState::Paused);

    worker.resume();
    until("the shards to be freed", || shards() == 0).await;
    until("the round to be counted", || {
        worker.snapshot().rounds > rounds
    })
    .await;
    let s = worker.snapshot();
    assert_eq!(s.state, WorkerState::Idle);
    // (Later rounds may already have run and found nothing: the progress names the last.)
    assert!(s.progress.contains("deleted"), "{s:?}");
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops")
        .unwrap();
    assert_eq!(worker.snapshot().state, WorkerState::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gc_gated_off_waits_in_standby() {
    let f = fixture().await;
    let worker = Worker::new("gc", "");
    let (_lead_tx, leading) = watch::channel(false);
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(f.svc.gc_worker().run(worker.clone(), Some(leading), rx));
    until("standby", || {
        worker.snapshot().progress.starts_with("standby")
    })
    .await;
    assert_eq!(worker.snapshot().rounds, 0);
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops")
        .unwrap();
}
