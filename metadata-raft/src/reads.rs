//! Linearizable reads: the leader confirms its leadership (a lease, else a quorum round)
//! and names the index a reader must have applied; followers ask the leader for it, and
//! concurrent reads share one round ([`ReadBarrier`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use openraft::error::RaftError;
use openraft::ServerState;
use tokio::sync::Mutex as AsyncMutex;

use super::{RaftNode, ReadIndexReply};
use cairn_metadata::{MetadataError, Result};

impl RaftNode {
    /// The leader's half of a linearizable read: confirm leadership with a quorum and say up
    /// to where the reader must have applied.
    pub async fn read_index_as_leader(&self) -> ReadIndexReply {
        // Leader lease: followers refuse to elect anyone else for an election timeout after
        // they last heard from this leader. A quorum round that confirmed this node leads
        // proves they heard from it after the round started, so until half an election
        // timeout after that start it still leads, and everything acknowledged so far is
        // applied here once it applied an entry of its own term. The lease is timed from
        // the round's start on the monotonic clock: the fault campaign found a leader
        // paused (SIGSTOP) for seconds answer a stale listing on resuming when the lease
        // came from openraft's metrics snapshot, which does not age while paused.
        {
            let metrics = self.raft.metrics();
            let m = metrics.borrow();
            let leased = self
                .read_lease
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .is_some_and(|(term, until)| {
                    term == m.current_term && tokio::time::Instant::now() < until
                });
            if m.state == ServerState::Leader && leased {
                if let Some(applied) = self.applied.get() {
                    if applied.leader_id.get_term() == m.current_term {
                        return ReadIndexReply::Index(Some(applied.index));
                    }
                }
            }
        }
        let started = tokio::time::Instant::now();
        let term = self.raft.metrics().borrow().current_term;
        match tokio::time::timeout(self.timeout, self.raft.get_read_log_id()).await {
            Ok(Ok((read, _applied))) => {
                // Confirmed as leader of `term` at some point after `started`.
                if self.raft.metrics().borrow().current_term == term {
                    *self
                        .read_lease
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) =
                        Some((term, started + self.lease));
                }
                ReadIndexReply::Index(read.map(|l| l.index))
            }
            Ok(Err(RaftError::APIError(openraft::error::CheckIsLeaderError::ForwardToLeader(
                _,
            )))) => ReadIndexReply::NotLeader,
            Ok(Err(e)) => ReadIndexReply::Unavailable(e.to_string()),
            Err(_) => ReadIndexReply::Unavailable(format!(
                "no quorum of metadata nodes confirmed the leader within {:?}",
                self.timeout
            )),
        }
    }

    /// Returns once this replica has applied everything committed before the call began (as
    /// the leader confirmed with a quorum). Concurrent callers share leader round trips.
    pub async fn linearize(&self) -> Result<()> {
        let started = Instant::now();
        let r = self.linearize_inner().await;
        self.stats.reads.fetch_add(1, Ordering::Relaxed);
        self.stats
            .read_wait_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        r
    }

    async fn linearize_inner(&self) -> Result<()> {
        let index = self.reads.index(self).await?;
        if let Some(index) = index {
            let applied = self.raft.metrics().borrow().last_applied.map(|l| l.index);
            if applied.is_none_or(|a| a < index) {
                self.raft
                    .wait(Some(self.timeout))
                    .applied_index_at_least(Some(index), "linearizable read")
                    .await
                    .map_err(|e| {
                        MetadataError::Unavailable(format!("catching up with the leader: {e}"))
                    })?;
            }
        }
        Ok(())
    }

    /// One read-index round trip (to ourselves when leader), retried across leader changes.
    async fn fetch_read_index(&self) -> Result<Option<u64>> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let reply = match self.leader() {
                Some((id, _)) if id == self.id => Some(self.read_index_as_leader().await),
                // A read is safe to repeat: when the leader changes mid-call, ask the new one.
                Some((id, addr)) => tokio::select! {
                    r = self.rpc.call::<_, ReadIndexReply>(&addr, "/raft/read-index", &(), left) => r.ok(),
                    () = self.leader_changed(id) => None,
                },
                None => None,
            };
            match reply {
                Some(ReadIndexReply::Index(i)) => return Ok(i),
                Some(ReadIndexReply::Unavailable(m)) => return Err(MetadataError::Unavailable(m)),
                Some(ReadIndexReply::NotLeader) | None => {}
            }
            if Instant::now() >= deadline {
                return Err(MetadataError::Unavailable(
                    "no metadata leader confirmed the read in time".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Shares read-index round trips between concurrent reads. A read may only use a round that
/// started after the read did; rounds run one at a time, and all reads waiting when one
/// starts share it.
#[derive(Default)]
pub(super) struct ReadBarrier {
    started: AtomicU64,
    round: AsyncMutex<()>,
    last: std::sync::Mutex<Option<RoundResult>>,
}

/// A finished read-index round: its number and the index it got.
type RoundResult = (u64, Result<Option<u64>>);

impl ReadBarrier {
    async fn index(&self, node: &RaftNode) -> Result<Option<u64>> {
        let need = self.started.load(Ordering::SeqCst) + 1;
        let done = |last: &std::sync::Mutex<Option<RoundResult>>| match &*last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            Some((round, r)) if *round >= need => Some(r.clone()),
            _ => None,
        };
        let _turn = self.round.lock().await;
        if let Some(r) = done(&self.last) {
            return r;
        }
        let round = self.started.fetch_add(1, Ordering::SeqCst) + 1;
        node.stats.read_rounds.fetch_add(1, Ordering::Relaxed);
        let r = node.fetch_read_index().await;
        *self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((round, r.clone()));
        r
    }
}
