//! Repair of what a scrub pass found, and of stripes degraded reads reported.
//!
//! - Missing or corrupt shard: read the stripe's other shards with the data path's
//!   [`StripeReader`] (k of them, checked against metadata), rebuild each lost shard as a
//!   combination of those k, check every rebuilt shard against the checksum metadata holds,
//!   and write it back to its datanode; if that datanode is unreachable, to a datanode of
//!   the stripe's ring placement (or the next on the ring) that holds none of the stripe's
//!   shards, and record the move in metadata.
//! - Misplaced shard (outside its stripe's ring placement): copy it to a placement node the
//!   stripe does not use, record the move in metadata, and only then delete the old copy. A
//!   second copy on a node metadata does not name is deleted when the named copy is healthy.
//!   A move metadata certainly did not record has its new copy deleted; one whose outcome is
//!   unknown (`MetadataError::Indeterminate`) keeps both copies, for a later scrub to settle.
//! - Orphaned shard: deleted once it has been seen orphaned for the grace period, is not part
//!   of a body this process or any other gateway node of the cluster is writing (when a node
//!   cannot be asked, no orphan is deleted), and a fresh read of metadata, taken after a
//!   metadata write barrier, still finds nothing that references it (so a write committed
//!   since the scrub began is never touched).
//!
//! Stripes are repaired in order of how many shards they lost, most first. Every write goes
//! through the [`Pacer`], whose rate can change while a repair runs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_datanode::ShardStore;
use cairn_metadata::{Command, CommandOutput};
use cairn_objects::{MembershipView, ObjectService, RepairHint, ShardSource, StripeReader};
use cairn_types::{NodeId, ObjectId, ShardId};
use futures::{stream, StreamExt};

use crate::expected::{Body, Expected};
use crate::report::{Counts, DamageKind};
use crate::scrub::{Damage, ScrubPass};
use crate::{HealError, Pacer, PeerInFlight, Tracker};

/// What a repair did.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub repaired: Counts,
    pub failed: Counts,
    pub deferred_orphans: u64,
    /// Why old-enough orphans were all kept (see [`remove_orphans`]).
    pub orphans_skipped: Option<String>,
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// The damage this repair fixed.
    pub fixed: HashSet<Damage>,
    /// Shards whose repair failed.
    pub failed_shards: HashSet<ShardId>,
    /// Shards this repair relocated, and the datanode metadata names for each now.
    pub moved_to: HashMap<ShardId, NodeId>,
    /// Time the stripes spent fetching shards, rebuilding, and writing, summed over the
    /// stripes in flight (so it can exceed the wall time): where a repair's time goes.
    pub spent: Spent,
}

/// Time summed over stripes, per step of a stripe's repair.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Spent {
    pub fetch: Duration,
    pub rebuild: Duration,
    pub write: Duration,
}

impl Tally {
    fn ok(&mut self, d: Damage) {
        self.repaired.add(d.kind, 1);
        self.fixed.insert(d);
    }

    fn absorb(&mut self, o: Tally) {
        self.repaired.add_all(&o.repaired);
        self.failed.add_all(&o.failed);
        self.deferred_orphans += o.deferred_orphans;
        self.bytes_read += o.bytes_read;
        self.bytes_written += o.bytes_written;
        self.fixed.extend(o.fixed);
        self.failed_shards.extend(o.failed_shards);
        self.moved_to.extend(o.moved_to);
        self.spent.fetch += o.spent.fetch;
        self.spent.rebuild += o.spent.rebuild;
        self.spent.write += o.spent.write;
    }

    fn fail(&mut self, d: Damage, why: &str) {
        tracing::warn!(kind = ?d.kind, node = %d.node, shard = %d.shard, why, "repair failed");
        self.failed.add(d.kind, 1);
        self.failed_shards.insert(d.shard);
    }
}

/// Context of one repair run: the membership it works with, and the datanodes the scrub
/// found unreachable (neither read from nor written to).
pub(crate) struct Repairer<'a> {
    pub objects: &'a ObjectService,
    pub view: &'a MembershipView,
    pub unreachable: &'a HashSet<NodeId>,
}

/// Stripes repaired at the same time: enough that the shards one datanode receives share
/// its group commits (a rebuilt datanode takes every stripe's lost shard, and one fsync per
/// shard caps it near 300 shards/s); each holds k + 1 shards in memory (16 × 5 MiB with the
/// defaults).
const PARALLEL_STRIPES: usize = 16;

impl ShardSource for Repairer<'_> {
    fn store(&self, node: NodeId) -> Option<Arc<dyn ShardStore>> {
        if self.unreachable.contains(&node) {
            return None;
        }
        self.view.store(node)
    }
}

impl Repairer<'_> {
    /// Repairs the non-orphan damage of `pass`, most damaged stripes first, a few stripes
    /// at a time, pacing writes through `pacer`.
    pub async fn repair_pass(
        &self,
        pass: &ScrubPass,
        tracker: &Tracker,
        pacer: &mut Pacer,
    ) -> Tally {
        let mut by_stripe: BTreeMap<(ObjectId, u32), Vec<Damage>> = BTreeMap::new();
        let mut strays = Vec::new();
        for d in &pass.damage {
            match d.kind {
                DamageKind::Orphaned => {}
                DamageKind::Misplaced if pass.expected.holder.get(&d.shard) != Some(&d.node) => {
                    strays.push(*d)
                }
                _ => by_stripe
                    .entry((d.shard.object, d.shard.stripe))
                    .or_default()
                    .push(*d),
            }
        }
        let mut order: Vec<((ObjectId, u32), Vec<Damage>)> = by_stripe.into_iter().collect();
        let lost = |ds: &[Damage]| {
            ds.iter()
                .filter(|d| d.kind != DamageKind::Misplaced)
                .count()
        };
        order.sort_by_key(|(_, ds)| std::cmp::Reverse(lost(ds)));
        tracker.phase("repair", (order.len() + strays.len()) as u64);
        let (stripes, started) = (order.len(), Instant::now());
        let mut tally = Tally::default();
        let mut results = stream::iter(order)
            .map(|((id, s), damage)| async move {
                // A safe point: a paused scrub starts no stripe; those under way finish.
                if !tracker.checkpoint().await {
                    return Tally::default();
                }
                match pass.expected.bodies.get(&id) {
                    Some(body) => self.repair_stripe(id, s, body, &damage).await,
                    None => {
                        let mut t = Tally::default();
                        damage.iter().for_each(|d| t.fail(*d, "body vanished"));
                        t
                    }
                }
            })
            .buffer_unordered(PARALLEL_STRIPES);
        while let Some(t) = results.next().await {
            let written = t.bytes_written;
            tally.absorb(t);
            tracker.step(0, 0, 0);
            tracker.bytes(tally.bytes_read, tally.bytes_written);
            pacer.pace(written).await;
        }
        drop(results);
        tracing::info!(
            stripes,
            ms = started.elapsed().as_millis() as u64,
            fetch_ms = tally.spent.fetch.as_millis() as u64,
            rebuild_ms = tally.spent.rebuild.as_millis() as u64,
            write_ms = tally.spent.write.as_millis() as u64,
            in_flight = PARALLEL_STRIPES,
            "stripes repaired (step times summed over the stripes in flight)"
        );
        for d in strays {
            if !tracker.checkpoint().await {
                break;
            }
            self.remove_stray(d, &pass.expected, &mut tally).await;
            tracker.step(0, 0, 0);
        }
        tally
    }

    /// Deletes a second copy of a live shard when the copy metadata names is healthy.
    async fn remove_stray(&self, d: Damage, expected: &Expected, tally: &mut Tally) {
        if tally.moved_to.get(&d.shard) == Some(&d.node) {
            // This pass relocated the shard onto this very copy (left there by a relocation
            // whose outcome was unknown): it is the copy metadata names now.
            tally.ok(d);
            return;
        }
        let holder = expected.holder.get(&d.shard).copied();
        // Repaired by now if it was damaged; otherwise healthy, unless its repair failed.
        let holder_ok = holder.is_some_and(|h| {
            !self.unreachable.contains(&h) && !tally.failed_shards.contains(&d.shard)
        });
        if !holder_ok {
            tally.fail(d, "the copy metadata names is not healthy");
            return;
        }
        match self.store(d.node) {
            Some(store) => match store.delete(d.shard).await {
                Ok(()) => tally.ok(d),
                Err(e) => tally.fail(d, &e.to_string()),
            },
            None => tally.fail(d, "datanode unreachable"),
        }
    }

    /// Rebuilds or moves the damaged shards of stripe `s` of body `id`.
    async fn repair_stripe(&self, id: ObjectId, s: u32, body: &Body, damage: &[Damage]) -> Tally {
        let mut out = Tally::default();
        let Some(st) = body.stripes.get(s as usize) else {
            damage.iter().for_each(|d| out.fail(*d, "no such stripe"));
            return out;
        };
        let total = st.shards.len();
        let lost: HashSet<usize> = damage
            .iter()
            .filter(|d| d.kind != DamageKind::Misplaced)
            .map(|d| d.shard.shard as usize)
            .collect();
        // The stripe's shards: the misplaced ones fetched as they are; or every other one
        // fetched, then all rebuilt.
        let mut reader = match StripeReader::new(id, s, body.ec, st.clone()) {
            Ok(r) => r,
            Err(e) => {
                damage.iter().for_each(|d| out.fail(*d, &e.to_string()));
                return out;
            }
        };
        let misplaced: Vec<usize> = damage
            .iter()
            .filter(|d| d.kind == DamageKind::Misplaced)
            .map(|d| d.shard.shard as usize)
            .collect();
        if lost.is_empty() {
            reader.fetch(self, &misplaced).await;
        } else {
            // k intact shards (and the misplaced ones, moved as they are), then only the
            // lost shards rebuilt, on a blocking thread: combining and checksumming a shard
            // takes a fraction of a millisecond of CPU that the async workers need for the
            // datanodes' I/O.
            let lost: Vec<usize> = lost.iter().copied().collect();
            let t = Instant::now();
            reader.fetch_for_rebuild(self, &lost, &misplaced).await;
            out.spent.fetch += t.elapsed();
            let t = Instant::now();
            let rebuilt = tokio::task::spawn_blocking(move || {
                let r = reader.rebuild_shards(&lost);
                (reader, r)
            })
            .await;
            let (back, r) = match rebuilt {
                Ok(done) => done,
                Err(e) => {
                    damage.iter().for_each(|d| out.fail(*d, &e.to_string()));
                    return out;
                }
            };
            reader = back;
            out.spent.rebuild += t.elapsed();
            if let Err(e) = r {
                out.bytes_read += reader.bytes_read();
                damage.iter().for_each(|d| out.fail(*d, &e.to_string()));
                return out;
            }
        }
        out.bytes_read += reader.bytes_read();
        let placement = self.view.placement();
        let ring = placement.place(id, s, total);
        let spare = placement.fallbacks(id, s, &ring, total);
        let drained = self.view.drained();
        let mut used: HashSet<NodeId> = st.shards.iter().map(|l| l.node).collect();
        let mut moves = Vec::new();
        let mut old_copies = Vec::new();
        let mut written = Vec::new();
        let t = Instant::now();
        for d in damage {
            let i = d.shard.shard as usize;
            let Some(bytes) = reader.shard(i).cloned() else {
                out.fail(*d, "shard unreadable");
                continue;
            };
            let Some(loc) = st.shards.get(i) else {
                continue;
            };
            // In place when the node is fine, not being drained, and inside the placement;
            // else a placement node the stripe does not use (for a lost shard, any free node
            // on the ring). Never back onto a drained node: a hint from a read that raced
            // with the drain would otherwise refill it.
            let in_place = d.kind != DamageKind::Misplaced
                && !drained.contains(&d.node)
                && self.store(d.node).is_some()
                && (ring.contains(&d.node) || !self.free_node(&ring, &used));
            let target = if in_place {
                Some(d.node)
            } else {
                let candidates: Vec<NodeId> = if d.kind == DamageKind::Misplaced {
                    ring.clone()
                } else {
                    ring.iter().chain(&spare).copied().collect()
                };
                self.take_free(&candidates, &mut used)
            };
            let Some(target) = target else {
                out.fail(*d, "no datanode free to hold the shard");
                continue;
            };
            match self.put(&mut out, target, d.shard, bytes, loc.crc32c).await {
                Ok(()) => {
                    if target != loc.node {
                        moves.push(cairn_metadata::ShardMove {
                            stripe: s,
                            shard: i as u32,
                            from: loc.node,
                            to: target,
                        });
                        old_copies.push((loc.node, d.shard));
                    }
                    written.push((*d, target));
                }
                Err(why) => out.fail(*d, &why),
            }
        }
        out.spent.write += t.elapsed();
        if !moves.is_empty() {
            let cmd = Command::RelocateShards {
                at: body.addresses.clone(),
                object: id,
                moves: moves.clone(),
            };
            match self.objects.metadata().apply(cmd).await {
                Ok(CommandOutput::Relocated(n)) if n > 0 => {}
                Err(e) if e.outcome_unknown() => {
                    // The move may be recorded (or be yet): metadata may name either copy,
                    // so both stay. A later scrub finds the one it does not name as a stray
                    // or an orphan and removes it then, against metadata of that moment.
                    tracing::warn!(error = %e, %id, "relocation outcome unknown; keeping both copies");
                    for (d, target) in written {
                        if target == d.node {
                            out.ok(d);
                        } else {
                            out.fail(d, "relocation outcome unknown; a later scrub settles it");
                        }
                    }
                    return out;
                }
                other => {
                    tracing::warn!(?other, %id, "relocation not recorded; removing the new copies");
                    for m in &moves {
                        if let Some(store) = self.store(m.to) {
                            let _ = store.delete(ShardId::new(id, s, m.shard)).await;
                        }
                    }
                    for (d, target) in written {
                        if target == d.node {
                            out.ok(d);
                        } else {
                            out.fail(d, "metadata changed during the repair");
                        }
                    }
                    return out;
                }
            }
            out.moved_to
                .extend(moves.iter().map(|m| (ShardId::new(id, s, m.shard), m.to)));
            for (node, shard) in old_copies {
                if let Some(store) = self.store(node) {
                    if let Err(e) = store.delete(shard).await {
                        tracing::warn!(%node, %shard, error = %e, "could not delete the old copy; the next scrub will");
                    }
                }
            }
        }
        for (d, _) in written {
            out.ok(d);
        }
        out
    }

    fn free_node(&self, ring: &[NodeId], used: &HashSet<NodeId>) -> bool {
        ring.iter()
            .any(|n| !used.contains(n) && self.store(*n).is_some())
    }

    fn take_free(&self, candidates: &[NodeId], used: &mut HashSet<NodeId>) -> Option<NodeId> {
        let n = candidates
            .iter()
            .copied()
            .find(|n| !used.contains(n) && self.store(*n).is_some())?;
        used.insert(n);
        Some(n)
    }

    async fn put(
        &self,
        out: &mut Tally,
        node: NodeId,
        sid: ShardId,
        bytes: Bytes,
        crc: u32,
    ) -> Result<(), String> {
        let store = self.store(node).ok_or("datanode unreachable")?;
        let len = bytes.len() as u64;
        // `bytes` were checked against `crc` (metadata's) where they were fetched or
        // rebuilt: the store takes the checksum as it is rather than computing it again.
        let info = store
            .put_with_crc(sid, bytes, crc)
            .await
            .map_err(|e| e.to_string())?;
        if info.crc32c != crc {
            return Err("the datanode stored another checksum".into());
        }
        out.bytes_written += len;
        Ok(())
    }

    /// Rebuilds a stripe a degraded read reported, in place on the datanodes its record
    /// names (moves and relocations are left to the scrub). Returns the shards rewritten.
    pub async fn repair_hint(&self, hint: &RepairHint) -> usize {
        let mut out = Tally::default();
        let st = &hint.loc;
        let sid = |i: usize| ShardId::new(hint.object, hint.stripe, i as u32);
        let mut reader = match StripeReader::new(hint.object, hint.stripe, hint.ec, st.clone()) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(object = %hint.object, stripe = hint.stripe, error = %e, "hinted repair impossible");
                return 0;
            }
        };
        reader.fetch_all(self).await;
        let bad = reader.missing();
        if bad.is_empty() {
            return 0;
        }
        if let Err(e) = reader.rebuild() {
            tracing::warn!(object = %hint.object, stripe = hint.stripe, error = %e, "hinted repair impossible");
            return 0;
        }
        let mut fixed = 0;
        for i in bad {
            let loc = st.shards[i];
            let Some(bytes) = reader.shard(i).cloned() else {
                continue;
            };
            // Only rewrite a shard the node really lacks or holds damaged now, and never on
            // a drained node: the hint may carry a record from before the scrub moved this
            // shard off it, and rewriting it there would refill the node being emptied.
            if self.store(loc.node).is_none() || self.view.drained().contains(&loc.node) {
                continue;
            }
            match self
                .put(&mut out, loc.node, sid(i), bytes, loc.crc32c)
                .await
            {
                Ok(()) => {
                    fixed += 1;
                    tracing::info!(shard = %sid(i), node = %loc.node, "repaired a shard a degraded read reported");
                }
                Err(why) => {
                    tracing::warn!(shard = %sid(i), node = %loc.node, why, "hinted repair failed")
                }
            }
        }
        fixed
    }
}

/// Deletes the orphans of `pass` that are old enough and still unreferenced.
///
/// The order of the checks is what makes this safe across gateways. A shard is only a
/// candidate once it was seen orphaned `grace` ago, so its body's writer started before
/// that. Then (1) every gateway node is asked for the bodies it is writing (`peers`; this
/// process's own through `objects`): a body absent there has had its commit answered (or was
/// discarded) before the question; (2) a metadata write barrier; (3) a fresh, linearizable
/// scan. A commit that was answered before (1) succeeded — the scan sees it, since reads are
/// linearizable (read index) — or failed for good, or its outcome is unknown: its entry may
/// still sit uncommitted in the leader's log, and a read index does not wait for those, but
/// the barrier is a write: once it is applied every entry before it in the log is committed
/// and applied, so the scan sees such a commit too. (A forwarded commit still travelling to
/// the leader after its gateway gave up on it is not covered; it would have to be late by
/// more than the grace period.)
pub(crate) async fn remove_orphans(
    objects: &ObjectService,
    view: &MembershipView,
    peers: Option<&dyn PeerInFlight>,
    pass: &ScrubPass,
    seen: &mut HashMap<(NodeId, ShardId), std::time::Instant>,
    grace: std::time::Duration,
    tally: &mut Tally,
) -> Result<(), HealError> {
    let now = std::time::Instant::now();
    let orphans: Vec<Damage> = pass
        .damage
        .iter()
        .filter(|d| d.kind == DamageKind::Orphaned)
        .copied()
        .collect();
    let current: HashSet<(NodeId, ShardId)> = orphans.iter().map(|d| (d.node, d.shard)).collect();
    seen.retain(|k, _| current.contains(k));
    let mut ready = Vec::new();
    for d in orphans {
        let first = *seen.entry((d.node, d.shard)).or_insert(now);
        if now.duration_since(first) < grace || objects.is_in_flight(d.shard.object) {
            tally.deferred_orphans += 1;
        } else {
            ready.push(d);
        }
    }
    if ready.is_empty() {
        return Ok(());
    }
    if let Some(peers) = peers {
        match peers.in_flight().await {
            Ok(busy) => {
                let before = ready.len();
                ready.retain(|d| !busy.contains(&d.shard.object));
                tally.deferred_orphans += (before - ready.len()) as u64;
            }
            Err(why) => {
                tracing::warn!(why, "orphan deletion skipped");
                tally.deferred_orphans += ready.len() as u64;
                tally.orphans_skipped = Some(format!("orphan deletion skipped: {why}"));
                return Ok(());
            }
        }
        if ready.is_empty() {
            return Ok(());
        }
    }
    barrier(objects).await?;
    let fresh = Expected::load(objects.metadata().as_ref(), None).await?;
    for d in ready {
        if fresh.holder.contains_key(&d.shard) {
            // Referenced after all (committed while the scrub ran): not damage.
            continue;
        }
        let Some(store) = view.store(d.node) else {
            continue;
        };
        match store.delete(d.shard).await {
            Ok(()) => {
                seen.remove(&(d.node, d.shard));
                tally.ok(d);
            }
            Err(e) => tally.fail(d, &e.to_string()),
        }
    }
    Ok(())
}

/// A metadata command, answered once applied: every entry before it in the Raft log is then
/// committed and applied too (see [`remove_orphans`]).
async fn barrier(objects: &ObjectService) -> Result<(), HealError> {
    objects.metadata().apply(Command::Barrier).await?;
    Ok(())
}
