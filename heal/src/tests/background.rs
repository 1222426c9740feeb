//! The healer's workers: pausing holds a scrub at a safe point (and hinted repairs before
//! their next stripe) until resumed; asked-for scrubs count as rounds of `scrub`.

use std::time::Duration;

use cairn_worker::{Job, WorkerState};
use tokio::sync::watch;

use super::*;
use crate::background::ScrubJob;

fn worker(f: &Fixture, name: &str) -> cairn_worker::Worker {
    f.healer
        .workers()
        .into_iter()
        .find(|w| w.name() == name)
        .unwrap()
}

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
async fn a_paused_scrub_waits_at_a_safe_point_and_finishes_when_resumed() {
    let f = fixture(6, &[5000, 20_000]).await;
    let scrub = worker(&f, "scrub");
    scrub.pause();
    let healer = f.healer.clone();
    let task = tokio::spawn(async move {
        healer
            .run_scrub(ScrubOptions {
                trigger: "test".into(),
                ..ScrubOptions::default()
            })
            .await
    });
    until("the scrub to park", || {
        scrub.snapshot().state == WorkerState::Paused
    })
    .await;
    // Parked before the first datanode: nothing of the pass is done, and it stays so.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!task.is_finished(), "a paused scrub ran to the end");
    let p = f.healer.status().running.expect("a running scrub");
    assert_eq!((p.phase.as_str(), p.done, p.total), ("scrub", 0, 6));
    assert!(
        scrub.snapshot().progress.contains("scrub 0/6"),
        "{:?}",
        scrub.snapshot()
    );
    scrub.resume();
    let report = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the scrub finishes once resumed")
        .unwrap()
        .unwrap();
    assert_eq!(report.found, Counts::default());
    assert_eq!(report.nodes.len(), 6);
    let s = scrub.snapshot();
    assert_eq!((s.state, s.rounds), (WorkerState::Idle, 1));
    assert!(
        s.progress.starts_with(&format!("last scrub {}", report.id)),
        "{s:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_repair_worker_leaves_hints_queued_until_resumed() {
    let f = fixture(6, &[20_000]).await;
    let repair = worker(&f, "repair");
    repair.pause();
    let (tx, rx) = watch::channel(false);
    let task = tokio::spawn(f.healer.clone().run(rx));
    let key = f.objects[0].0.clone();
    let (node, sid) = f.shards(&key).await[0];
    f.store(node).delete(sid).await.unwrap();
    f.read_all_back().await;
    assert_eq!(f.svc.repair_hints().len(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        f.svc.repair_hints().len(),
        1,
        "a paused worker took the hint"
    );
    assert!(f.store(node).get(sid).await.is_err());
    assert_eq!(repair.snapshot().state, WorkerState::Paused);
    repair.resume();
    until("the hinted repair", || repair.snapshot().rounds == 1).await;
    assert!(
        f.store(node).get(sid).await.is_ok(),
        "the shard was rewritten"
    );
    assert!(f.svc.repair_hints().is_empty());
    assert!(repair.snapshot().progress.contains("1 hinted stripe"));
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops")
        .unwrap();
    assert_eq!(repair.snapshot().state, WorkerState::Stopped);
}

#[tokio::test]
async fn scheduled_scrubs_run_only_when_due_and_deep_goes_first() {
    let f = fixture(6, &[5000]).await;
    let cfg = HealConfig {
        scrub_interval: Duration::from_secs(3600),
        deep_interval: Duration::from_secs(7200),
        orphan_grace: Duration::ZERO,
        ..HealConfig::default()
    };
    let mut job = ScrubJob::new(f.healer.clone(), &cfg);
    assert_eq!(job.tick(), Duration::from_secs(60));
    let scrub = worker(&f, "scrub");
    assert_eq!(job.round(&scrub).await, Ok(cairn_worker::Round::Skipped));
    assert!(
        f.healer.status().last.is_none(),
        "a scrub ran before it was due"
    );
    // Both due: the deep one runs, and both schedules restart.
    let past = tokio::time::Instant::now() - Duration::from_secs(1);
    job.next_light = Some(past);
    job.next_deep = Some(past);
    let done = job.round(&scrub).await.unwrap();
    assert!(
        matches!(&done, cairn_worker::Round::Done(s) if s.contains("(deep, schedule)")),
        "{done:?}"
    );
    let last = f.healer.status().last.unwrap();
    assert!(last.deep && last.trigger == "schedule");
    assert_eq!(job.round(&scrub).await, Ok(cairn_worker::Round::Skipped));
    // Only the light one due: a light scrub.
    job.next_light = Some(past);
    job.round(&scrub).await.unwrap();
    assert!(!f.healer.status().last.unwrap().deep);
    // Scrubs off: the schedule is never looked at.
    let off = HealConfig {
        scrub_interval: Duration::ZERO,
        deep_interval: Duration::ZERO,
        ..HealConfig::default()
    };
    assert_eq!(ScrubJob::new(f.healer.clone(), &off).tick(), Duration::ZERO);
}
