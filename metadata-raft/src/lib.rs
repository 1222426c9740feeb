//! Replicated metadata (crate `cairn-metadata-raft`): the [`Command`]s of the metadata core
//! ([`cairn_metadata::command`]) go through a Raft log (openraft) before the core's state
//! machine applies them, on every metadata node alike, to a local RocksDB replica
//! ([`cairn_metadata_rocks::RocksMetadataStore`], which also holds the log).
//!
//! - [`log_store`]: log and vote in the metadata RocksDB database;
//! - [`state_machine`]: applies committed entries; snapshots and their installation;
//! - [`rpc`]: the HTTP client for peers and for calls to the leader;
//! - [`service`]: the routes of the cluster listener;
//! - [`limits`]: how big its messages can be, and the caps on commands and batches;
//! - [`store`]: [`RaftMetadataStore`], the [`cairn_metadata::MetadataStore`] the rest of
//!   Cairn uses;
//! - `format`: the versioned envelope of log entries, snapshots and `raft_meta` values
//!   (fixtures of old bytes in `tests/fixtures/`, replayed by the tests).
//!
//! Guarantees: a write returns `Ok` only once a majority of voters has it in their synced
//! logs and it is applied; a read first obtains a read index from the leader (which confirms
//! its leadership with a quorum) and waits until this replica has applied up to it, so every
//! read sees every write acknowledged before it began, from any node. Without a quorum
//! reads, and writes that were never proposed (no leader known), fail with
//! [`MetadataError::Unavailable`] after the configured timeout; a write that was proposed
//! but not answered in time (or whose answer was lost on the way back) fails with
//! [`MetadataError::Indeterminate`], since its entry may still commit.

mod format;
mod membership;
mod reads;
use reads::ReadBarrier;
pub mod limits;
pub mod log_store;
pub mod rpc;
pub mod service;
pub mod state_machine;
mod store;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::ClientWriteError;
use openraft::{Config, Raft, ServerState, SnapshotPolicy};
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Mutex as AsyncMutex};

pub use openraft::BasicNode;
pub use rpc::{CallError, RpcClient};
pub use service::{ChangeReply, JoinRequest, ReadIndexReply, RemoveRequest, WriteReply};
pub use store::RaftMetadataStore;

use cairn_metadata::command::{Command, CommandOutput};
use cairn_metadata::{MetadataError, Result};
use cairn_metadata_rocks::RocksMetadataStore;

/// Column families Raft adds to the metadata database.
/// (Created by [`RocksMetadataStore::open`] with the state's, see
/// [`cairn_metadata_rocks::LOG_COLUMN_FAMILIES`].)
pub const LOG_CF: &str = cairn_metadata_rocks::LOG_COLUMN_FAMILIES[0];
pub const META_CF: &str = cairn_metadata_rocks::LOG_COLUMN_FAMILIES[1];
#[cfg(test)]
pub(crate) const RAFT_CFS: [&str; 2] = [LOG_CF, META_CF];

pub type NodeId = u64;
/// What applying one command gave (its error is part of the replicated outcome).
pub type ApplyResult = std::result::Result<CommandOutput, MetadataError>;

/// One Raft entry: the commands that were waiting to be proposed together (applied in
/// order, each over the writes of those before it, each with its own result).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandBatch(pub Vec<Command>);

openraft::declare_raft_types!(
    /// Cairn's Raft types: batches of commands in, one result per command out.
    pub TypeConfig:
        D = CommandBatch,
        R = Vec<ApplyResult>,
        NodeId = NodeId,
        Node = BasicNode,
);

pub type Entry = openraft::Entry<TypeConfig>;

/// Tuning of the Raft group.
#[derive(Debug, Clone)]
pub struct RaftOptions {
    /// Leader heartbeat period.
    pub heartbeat: Duration,
    /// A follower that hears nothing for a random time in `[election, 1.25 × election]`
    /// starts an election (at least 3 heartbeats).
    pub election: Duration,
    /// A snapshot is built once this many entries were applied since the last one; the log
    /// before it is then purged (keeping `keep_logs` entries for slow followers).
    pub snapshot_logs: u64,
    pub keep_logs: u64,
    /// How long a write or read waits for a leader and a quorum before failing with
    /// [`MetadataError::Unavailable`] (or [`MetadataError::Indeterminate`] for a write that
    /// was proposed).
    pub timeout: Duration,
}

impl Default for RaftOptions {
    fn default() -> Self {
        RaftOptions {
            heartbeat: Duration::from_millis(150),
            election: Duration::from_millis(1000),
            snapshot_logs: 10_000,
            keep_logs: 1_000,
            timeout: Duration::from_secs(5),
        }
    }
}

/// Counters of this node's metadata traffic (for `/metrics`).
#[derive(Debug, Default)]
pub struct RaftStats {
    /// Commands proposed from this node, and their total time to commit and apply.
    pub writes: AtomicU64,
    pub write_micros: AtomicU64,
    /// Reads made linearizable, and their total wait for the read index.
    pub reads: AtomicU64,
    pub read_wait_micros: AtomicU64,
    /// Read-index rounds actually made (concurrent reads share one).
    pub read_rounds: AtomicU64,
    /// Raft entries this node proposed as leader (each carries one or more commands).
    pub entries: AtomicU64,
    /// Calls that forwarded writes to the leader, and the writes they carried.
    pub forward_calls: AtomicU64,
    pub forwarded: AtomicU64,
    /// WAL syncs that made appended log entries durable (one per group of appends).
    pub wal_syncs: Arc<AtomicU64>,
}

/// One node's membership as [`RaftNode::status`] reports it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MemberStatus {
    pub id: NodeId,
    pub addr: String,
    pub voter: bool,
}

/// The Raft group as this node sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterStatus {
    pub id: NodeId,
    /// `leader`, `follower`, `candidate` or `learner`.
    pub state: String,
    pub leader: Option<NodeId>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub last_applied_index: Option<u64>,
    pub snapshot_index: Option<u64>,
    pub purged_index: Option<u64>,
    pub members: Vec<MemberStatus>,
    /// Milliseconds since a quorum last acknowledged this leader (leaders only).
    pub millis_since_quorum_ack: Option<u64>,
}

/// A running Raft member: this node's replica plus the means to reach the leader.
pub struct RaftNode {
    pub raft: Raft<TypeConfig>,
    pub id: NodeId,
    pub addr: String,
    rpc: RpcClient,
    timeout: Duration,
    reads: ReadBarrier,
    forwarding: Forwarding,
    proposing: Proposing,
    stats: RaftStats,
    applied: Arc<state_machine::AppliedMark>,
    failpoints: Failpoints,
    /// How long after a quorum acknowledged it the leader may answer read indexes without
    /// asking the quorum again (well inside the lease followers give it).
    lease: Duration,
    /// The read lease this leader holds: (term, until). Taken from the *start* of a quorum
    /// round that confirmed it leads (monotonic clock), never from a metrics snapshot, which
    /// does not age while the process is paused.
    read_lease: std::sync::Mutex<Option<(u64, tokio::time::Instant)>>,
}

impl RaftNode {
    /// Starts Raft over `store`'s database; `addr` is where peers reach this node's cluster
    /// listener, over `transport`.
    pub async fn start(
        store: &RocksMetadataStore,
        id: NodeId,
        addr: String,
        transport: &cairn_net::client::ClusterTransport,
        opts: RaftOptions,
    ) -> Result<Arc<RaftNode>> {
        Self::start_with(store, id, addr, transport, opts, Failpoints::from_env()).await
    }

    pub(crate) async fn start_with(
        store: &RocksMetadataStore,
        id: NodeId,
        addr: String,
        transport: &cairn_net::client::ClusterTransport,
        opts: RaftOptions,
        failpoints: Failpoints,
    ) -> Result<Arc<RaftNode>> {
        let hb = opts.heartbeat.as_millis().max(10) as u64;
        let el = opts.election.as_millis().max(3 * hb as u128) as u64;
        let config = Config {
            cluster_name: "cairn".into(),
            heartbeat_interval: hb,
            // openraft's leader lease is `election_timeout_max`: a follower refuses every
            // vote until that long after it last heard the leader, so the first election
            // round after a leader dies always fails, and failover takes two rounds. A
            // narrow range (1.25 × min instead of 2 ×) shortens both; the fault campaign
            // measured paused-leader failovers of 3.9 s median, 8.5 s worst with 2 ×.
            election_timeout_min: el,
            election_timeout_max: el + el / 4,
            install_snapshot_timeout: 30_000,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(opts.snapshot_logs.max(1)),
            max_in_snapshot_log_to_keep: opts.keep_logs,
            max_payload_entries: 256,
            // Snapshots travel in chunks of this size (openraft's chunked transport); the
            // snapshot route's body limit is derived from it.
            snapshot_max_chunk_size: limits::SNAPSHOT_CHUNK_BYTES as u64,
            ..Config::default()
        }
        .validate()
        .map_err(|e| MetadataError::Engine(format!("raft config: {e}")))?;
        let rpc = RpcClient::new(transport);
        let stats = RaftStats::default();
        let mut log = log_store::LogStore::new(store.clone(), stats.wal_syncs.clone());
        log.stall = failpoints.log_stall.clone();
        let applied = Arc::new(state_machine::AppliedMark::default());
        let sm = state_machine::StateMachine::new(store.clone(), applied.clone());
        let network = rpc::Network { rpc: rpc.clone() };
        let raft = Raft::new(id, Arc::new(config), network, log, sm)
            .await
            .map_err(|e| MetadataError::Engine(format!("starting raft: {e}")))?;
        Ok(Arc::new(RaftNode {
            raft,
            id,
            addr,
            rpc,
            timeout: opts.timeout,
            reads: ReadBarrier::default(),
            forwarding: Forwarding::default(),
            proposing: Proposing {
                pending: Default::default(),
                slots: tokio::sync::Semaphore::new(PROPOSALS_IN_FLIGHT),
            },
            stats,
            applied,
            failpoints,
            lease: Duration::from_millis(el / 2),
            read_lease: std::sync::Mutex::new(None),
        }))
    }

    /// Whether this node has ever been part of a Raft group (bootstrapped or joined).
    pub async fn is_initialized(&self) -> Result<bool> {
        self.raft
            .is_initialized()
            .await
            .map_err(|e| MetadataError::Engine(e.to_string()))
    }

    /// Makes this node a cluster of one (only when it is in none).
    pub async fn bootstrap(&self) -> Result<()> {
        if self.is_initialized().await? {
            return Ok(());
        }
        let members = BTreeMap::from([(self.id, BasicNode::new(&self.addr))]);
        self.raft
            .initialize(members)
            .await
            .map_err(|e| MetadataError::Engine(format!("bootstrapping raft: {e}")))
    }

    /// Asks the cluster reachable at `seed` (any member's cluster address) to add this node,
    /// retrying until `deadline`.
    pub async fn join(&self, seed: &str, voter: bool, deadline: Instant) -> Result<()> {
        let req = JoinRequest {
            id: self.id,
            addr: self.addr.clone(),
            voter,
        };
        let mut target = seed.to_string();
        loop {
            let r: std::result::Result<ChangeReply, CallError> = self
                .rpc
                .call(&target, "/raft/join", &req, Duration::from_secs(30))
                .await;
            let why = match r {
                Ok(ChangeReply::Done) => return Ok(()),
                Ok(ChangeReply::NotLeader) => "not the leader".to_string(),
                Ok(ChangeReply::Failed(m)) => m,
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(MetadataError::Unavailable(format!(
                    "joining the cluster at {seed}: {why}"
                )));
            }
            tracing::info!(seed = %target, %why, "join not accepted yet; retrying");
            target = seed.to_string();
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The leader as this node knows it, with its cluster address.
    pub fn leader(&self) -> Option<(NodeId, String)> {
        // Borrowed, not cloned: this runs for every write.
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let id = m.current_leader?;
        let node = m.membership_config.membership().get_node(&id)?;
        Some((id, node.addr.clone()))
    }

    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().current_leader == Some(self.id)
    }

    /// Resolves once this node no longer sees `leader` as the leader (another leader was
    /// elected, or an election started). A call in flight to a leader that was cut off or
    /// paused would otherwise wait for its whole timeout, and every call queued behind it
    /// with it.
    pub(crate) async fn leader_changed(&self, leader: NodeId) {
        let mut rx = self.raft.metrics();
        loop {
            if rx.borrow_and_update().current_leader != Some(leader) {
                return;
            }
            if rx.changed().await.is_err() {
                // Raft shut down: nothing will change any more.
                return std::future::pending().await;
            }
        }
    }

    /// Waits until a leader is known (or `timeout` passes).
    pub async fn wait_for_leader(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut rx = self.raft.metrics();
        loop {
            if rx.borrow().current_leader.is_some() {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, rx.changed()).await.is_err() {
                return false;
            }
        }
    }

    /// Proposes `cmd` and waits until it is committed and applied, going through the leader
    /// wherever it is. Retries only where the command certainly was not proposed.
    pub async fn write(&self, cmd: Command) -> Result<CommandOutput> {
        limits::check_command(&cmd)?;
        let started = Instant::now();
        let r = self.write_inner(cmd).await;
        self.stats.writes.fetch_add(1, Ordering::Relaxed);
        self.stats
            .write_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        r
    }

    /// The applied log index and the counters of this node (for `/metrics`).
    pub fn stats(&self) -> &RaftStats {
        &self.stats
    }

    /// Loops only while every attempt so far certainly did not propose `cmd` (no leader
    /// known, the leader refused it before proposing, the leader was unreachable), so a
    /// retry never doubles a command and an [`MetadataError::Unavailable`] is definite. Any
    /// answer that leaves the outcome open ends the loop with
    /// [`MetadataError::Indeterminate`].
    async fn write_inner(&self, cmd: Command) -> Result<CommandOutput> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(MetadataError::Unavailable(
                    "no metadata leader answered in time".into(),
                ));
            }
            match self.leader() {
                Some((id, _)) if id == self.id => match self.write_as_leader(cmd.clone()).await {
                    WriteReply::Applied(r) => return r,
                    WriteReply::Unavailable(m) => return Err(MetadataError::Unavailable(m)),
                    WriteReply::Indeterminate(m) => return Err(MetadataError::Indeterminate(m)),
                    WriteReply::NotLeader => {}
                },
                Some((id, addr)) => match self.forward(id, &addr, cmd.clone(), left).await {
                    Ok(WriteReply::Applied(r)) => return r,
                    Ok(WriteReply::Unavailable(m)) => return Err(MetadataError::Unavailable(m)),
                    Ok(WriteReply::Indeterminate(m)) => {
                        return Err(MetadataError::Indeterminate(m))
                    }
                    Ok(WriteReply::NotLeader) | Err(CallError::Unreachable(..)) => {}
                    Err(e @ CallError::Refused(..)) => {
                        return Err(MetadataError::Unavailable(e.to_string()))
                    }
                    // Sent, but the answer was lost: the leader may have committed it.
                    Err(e @ CallError::Failed(..)) => {
                        return Err(MetadataError::Indeterminate(format!(
                            "forwarding the write to the metadata leader: {e}"
                        )))
                    }
                },
                None => {}
            }
            if Instant::now() >= deadline {
                return Err(MetadataError::Unavailable(
                    "no metadata leader answered in time".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends `cmd` to the leader at `addr`, together with every other command waiting to
    /// go there: whoever gets the turn sends what is pending in one call, so concurrent
    /// writers on a follower share round trips (group forwarding). One call carries at most
    /// [`limits::MAX_BATCH_BYTES`] of commands, oldest first; the turn holder goes on calling
    /// until its own command went (each call with `left` as its timeout), so that no
    /// command stays behind without a writer to send it.
    async fn forward(
        &self,
        leader: NodeId,
        addr: &str,
        cmd: Command,
        left: Duration,
    ) -> std::result::Result<WriteReply, CallError> {
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        self.forwarding
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((cmd, tx));
        let _turn = self.forwarding.turn.lock().await;
        loop {
            if let Ok(r) = rx.try_recv() {
                return r;
            }
            let batch = limits::take_batch(
                &mut self
                    .forwarding
                    .pending
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
                limits::MAX_BATCH_BYTES,
            );
            if batch.is_empty() {
                // Our command went with another writer's call, whose answer never reached us
                // (that writer was cancelled mid-call): it may have been handled.
                return Err(CallError::Failed(
                    addr.to_string(),
                    "forwarded write lost".into(),
                ));
            }
            self.forward_batch(leader, addr, batch, left).await;
        }
    }

    /// One forwarding call: sends `batch` and hands each writer its answer (or the call's
    /// error). The call is given up as soon as `leader` stops being the leader here: its
    /// outcome is then unknown (the old leader may have committed it before it was cut off),
    /// but the writers learn that at once instead of after the whole timeout.
    async fn forward_batch(
        &self,
        leader: NodeId,
        addr: &str,
        batch: Vec<PendingForward>,
        left: Duration,
    ) {
        let (cmds, replies): (Vec<Command>, Vec<_>) = batch.into_iter().unzip();
        if self.leader().map(|(id, _)| id) != Some(leader) {
            // Queued behind a call to a leader that is gone: not sent, so certainly not
            // proposed; each writer tries again with the leader it sees now.
            for reply in replies {
                let _ = reply.send(Ok(WriteReply::NotLeader));
            }
            return;
        }
        self.stats.forward_calls.fetch_add(1, Ordering::Relaxed);
        self.stats
            .forwarded
            .fetch_add(cmds.len() as u64, Ordering::Relaxed);
        let r: std::result::Result<Vec<WriteReply>, CallError> = tokio::select! {
            r = self.rpc.call(addr, "/raft/write-batch", &cmds, left) => r,
            () = self.leader_changed(leader) => Err(CallError::Failed(
                addr.to_string(),
                "the metadata leader changed while the write was in flight".into(),
            )),
        };
        match r {
            Ok(answers) if answers.len() == replies.len() => {
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(Ok(answer));
                }
            }
            Ok(answers) => {
                let e = CallError::Failed(
                    addr.to_string(),
                    format!("{} answers for {} commands", answers.len(), replies.len()),
                );
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }

    /// The leader's half of a batch of forwarded writes: all proposed at once.
    pub async fn write_batch_as_leader(&self, cmds: Vec<Command>) -> Vec<WriteReply> {
        futures::future::join_all(cmds.into_iter().map(|c| self.write_as_leader(c))).await
    }

    /// The leader's half of a write: queue `cmd` for the next Raft entry and wait until that
    /// entry is committed and applied. Commands that arrive while an entry is being proposed
    /// share the next entry (and so its append, replication and fsyncs).
    ///
    /// [`WriteReply::NotLeader`] and [`WriteReply::Unavailable`] only when `cmd` certainly
    /// was not appended to the log; [`WriteReply::Indeterminate`] whenever it may have been.
    pub async fn write_as_leader(&self, cmd: Command) -> WriteReply {
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        self.proposing
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((cmd, tx));
        let Ok(slot) = self.proposing.slots.acquire().await else {
            // The slots are never closed; were they, `cmd` might still be taken by a writer
            // holding one.
            return WriteReply::Indeterminate("shutting down".into());
        };
        // Propose what is pending, oldest first, one entry of at most
        // `limits::MAX_BATCH_BYTES` at a time, until ours went: no command stays behind
        // without a writer holding a slot to propose it.
        loop {
            if let Ok(r) = rx.try_recv() {
                return r;
            }
            let batch = limits::take_batch(
                &mut self
                    .proposing
                    .pending
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
                limits::MAX_BATCH_BYTES,
            );
            if batch.is_empty() {
                // Ours went with a proposal still in flight in another slot.
                drop(slot);
                return rx.await.unwrap_or_else(|_| proposal_lost());
            }
            self.propose_batch(batch).await;
        }
    }

    /// Proposes one entry of waiting commands and hands each writer its answer.
    async fn propose_batch(&self, batch: Vec<(Command, tokio::sync::oneshot::Sender<WriteReply>)>) {
        let (cmds, replies): (Vec<Command>, Vec<_>) = batch.into_iter().unzip();
        self.stats.entries.fetch_add(1, Ordering::Relaxed);
        let delay = self.failpoints.commit_delay_for(&cmds);
        let proposal = self.propose(CommandBatch(cmds), delay);
        let outcome = match tokio::time::timeout(self.timeout, proposal).await {
            Ok(outcome) => outcome,
            Err(_) => Err(WriteReply::Indeterminate(format!(
                "no quorum of metadata nodes acknowledged the write within {:?}; it may still \
                 commit",
                self.timeout
            ))),
        };
        match outcome {
            Ok(results) => {
                for (reply, r) in replies.into_iter().zip(results) {
                    let _ = reply.send(WriteReply::Applied(r));
                }
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(e.clone());
                }
            }
        }
    }

    /// Proposes one entry and waits until it is applied; the error says whether the entry
    /// may still commit ([`WriteReply::Indeterminate`]) or certainly will not.
    async fn propose(
        &self,
        batch: CommandBatch,
        delay: Option<Duration>,
    ) -> std::result::Result<Vec<ApplyResult>, WriteReply> {
        let n = batch.0.len();
        let mut rx = match self.raft.client_write_ff(batch).await {
            Ok(rx) => rx,
            // Raft had stopped: the entry never reached it.
            Err(e) => return Err(WriteReply::Unavailable(e.to_string())),
        };
        // Raft refuses an entry it does not lead for (ForwardToLeader) as it takes the
        // request, and takes requests in order: once a request sent after ours was handled,
        // a refusal is already waiting. A ForwardToLeader that comes later means the entry
        // was appended, then truncated by a newer leader, yet another node may hold it and
        // still commit it.
        let early = match self.raft.with_raft_state(|_| ()).await {
            Ok(()) => match rx.try_recv() {
                Ok(Err(ClientWriteError::ForwardToLeader(_))) => return Err(WriteReply::NotLeader),
                Ok(answer) => Some(answer),
                Err(tokio::sync::oneshot::error::TryRecvError::Empty) => None,
                Err(tokio::sync::oneshot::error::TryRecvError::Closed) => {
                    return Err(proposal_lost())
                }
            },
            Err(e) => return Err(WriteReply::Indeterminate(e.to_string())),
        };
        let answer = match early {
            Some(answer) => answer,
            None => rx.await.map_err(|_| proposal_lost())?,
        };
        if let Some(delay) = delay {
            // Fail point (tests only): the entry is applied, the answer comes late.
            tokio::time::sleep(delay).await;
        }
        match answer {
            Ok(resp) if resp.data.len() == n => Ok(resp.data),
            Ok(resp) => Err(WriteReply::Indeterminate(format!(
                "{} results for {n} commands",
                resp.data.len()
            ))),
            Err(ClientWriteError::ForwardToLeader(_)) => Err(WriteReply::Indeterminate(
                "metadata leadership changed after the write was proposed; it may still commit"
                    .into(),
            )),
            Err(e) => Err(WriteReply::Indeterminate(e.to_string())),
        }
    }

    /// This node's view of the group.
    pub fn status(&self) -> ClusterStatus {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let members = membership
            .nodes()
            .map(|(id, n)| MemberStatus {
                id: *id,
                addr: n.addr.clone(),
                voter: voters.contains(id),
            })
            .collect();
        let state = match m.state {
            ServerState::Leader => "leader",
            ServerState::Follower => "follower",
            ServerState::Candidate => "candidate",
            ServerState::Learner => "learner",
            ServerState::Shutdown => "shutdown",
        };
        ClusterStatus {
            id: self.id,
            state: state.into(),
            leader: m.current_leader,
            term: m.current_term,
            last_log_index: m.last_log_index,
            last_applied_index: m.last_applied.map(|l| l.index),
            snapshot_index: m.snapshot.map(|l| l.index),
            purged_index: m.purged.map(|l| l.index),
            members,
            millis_since_quorum_ack: m.millis_since_quorum_ack,
        }
    }

    /// A watch that says whether this node is the leader, for work that must run once per
    /// cluster (garbage collection, scheduled scrubs).
    pub fn leadership(&self) -> watch::Receiver<bool> {
        let (tx, rx) = watch::channel(self.is_leader());
        let mut metrics = self.raft.metrics();
        let id = self.id;
        tokio::spawn(async move {
            while metrics.changed().await.is_ok() {
                let leader = metrics.borrow().current_leader == Some(id);
                tx.send_if_modified(|v| std::mem::replace(v, leader) != leader);
                if tx.is_closed() {
                    return;
                }
            }
        });
        rx
    }

    pub async fn shutdown(&self) {
        let _ = self.raft.shutdown().await;
    }
}

/// Raft entries the leader proposes at once; commands arriving meanwhile wait and share the
/// next one. One gave the biggest entries and the best throughput (`cluster_puts` bench:
/// about 7.5 commands per entry at 32 clients, against 4 with two in flight).
const PROPOSALS_IN_FLIGHT: usize = 1;

/// The answer to a write whose proposal was dropped before it answered (the writer that
/// proposed it was cancelled, or Raft stopped): it may have been appended.
fn proposal_lost() -> WriteReply {
    WriteReply::Indeterminate("the proposal was lost; it may still commit".into())
}

/// Fault injection for tests, read once when a node starts. Honoured only when the
/// environment also has `CAIRN_FAILPOINTS=1`; never set these in production.
///
/// - `CAIRN_FAILPOINT_COMMIT_DELAY_MS`: the leader answers every Raft entry that carries an
///   object or part write (`PutObject`, `PutPart`) this many milliseconds after the entry
///   was committed and applied. With a delay longer than `--meta-timeout` the writer gets
///   [`MetadataError::Indeterminate`] for a write that did commit.
///
/// `log_stall` has no environment variable: only the unit tests set it, to freeze a node's
/// Raft core as a paused process would (see [`log_store::LogStore`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct Failpoints {
    pub commit_delay: Option<Duration>,
    pub log_stall: Option<Arc<std::sync::atomic::AtomicBool>>,
}

impl Failpoints {
    fn from_env() -> Self {
        if std::env::var("CAIRN_FAILPOINTS").as_deref() != Ok("1") {
            return Failpoints::default();
        }
        let commit_delay = std::env::var("CAIRN_FAILPOINT_COMMIT_DELAY_MS")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|&ms| ms > 0)
            .map(Duration::from_millis);
        if let Some(d) = commit_delay {
            tracing::warn!(delay = ?d, "fail point: object and part writes answer late");
        }
        Failpoints {
            commit_delay,
            log_stall: None,
        }
    }

    fn commit_delay_for(&self, cmds: &[Command]) -> Option<Duration> {
        let writes_data =
            |c: &Command| matches!(c, Command::PutObject { .. } | Command::PutPart { .. });
        self.commit_delay.filter(|_| cmds.iter().any(writes_data))
    }
}

/// Commands waiting to be proposed by the leader, and the proposal slots.
struct Proposing {
    pending: std::sync::Mutex<Vec<(Command, tokio::sync::oneshot::Sender<WriteReply>)>>,
    slots: tokio::sync::Semaphore,
}

/// Commands waiting to be forwarded to the leader, and the turn to send them.
#[derive(Default)]
struct Forwarding {
    pending: std::sync::Mutex<Vec<PendingForward>>,
    turn: AsyncMutex<()>,
}

type PendingForward = (
    Command,
    tokio::sync::oneshot::Sender<std::result::Result<WriteReply, CallError>>,
);
