//! One scrub pass: load the expected state from metadata, compare it with every selected
//! datanode through Merkle diffs (optionally after a deep verification of the payloads), and
//! classify each difference ([`DamageKind`]). Also finds shards outside their stripe's ring
//! placement and stripes that lost more shards than their parity covers.

use std::collections::{BTreeSet, HashMap, HashSet};

use cairn_datanode::merkle::{MerkleSummary, ENTRY_BYTES, PARTITIONS};
use cairn_datanode::{diff_against_store, ShardStore};
use cairn_objects::{MembershipView, ObjectService};
use cairn_types::clock::now_ms;
use cairn_types::{NodeId, ShardId};

use crate::expected::Expected;
use crate::report::{DamageKind, DeepFigures, NodeScrub, Unrecoverable};
use crate::{HealError, ScrubOptions, Tracker};

/// One damaged shard, as the repair works on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Damage {
    pub kind: DamageKind,
    pub node: NodeId,
    pub shard: ShardId,
}

/// What a pass found.
#[derive(Debug, Default)]
pub(crate) struct ScrubPass {
    pub expected: Expected,
    pub damage: Vec<Damage>,
    pub unreachable: BTreeSet<NodeId>,
    pub nodes: Vec<NodeScrub>,
    pub unrecoverable: Vec<Unrecoverable>,
    pub bytes_read: u64,
}

/// Runs a scrub pass over the selected datanodes. `gc_pending` are shards already queued for
/// deletion: held but unreferenced, they are not orphans.
pub(crate) async fn run(
    objects: &ObjectService,
    view: &MembershipView,
    opts: &ScrubOptions,
    gc_pending: &HashSet<(NodeId, ShardId)>,
    tracker: &Tracker,
) -> Result<ScrubPass, HealError> {
    tracker.phase("metadata", 0);
    let expected = Expected::load(objects.metadata().as_ref(), opts.bucket.as_deref()).await?;
    let selected: Vec<(NodeId, std::sync::Arc<dyn ShardStore>)> = view
        .nodes()
        .iter()
        .filter(|(id, _)| opts.nodes.as_ref().is_none_or(|ns| ns.contains(id)))
        .map(|(id, s)| (*id, s.clone()))
        .collect();
    tracker.phase("scrub", selected.len() as u64);
    let mut pass = ScrubPass::default();
    for (node, store) in selected {
        // A safe point: between datanodes, nothing of the pass is half done.
        if !tracker.checkpoint().await {
            return Err(HealError::Stopped);
        }
        let report = scrub_node(node, store.as_ref(), &expected, opts, gc_pending, &mut pass).await;
        tracker.step(
            1,
            report.shards_expected,
            report.deep.as_ref().map_or(0, |d| d.bytes_read),
        );
        if !report.reachable {
            pass.unreachable.insert(node);
        }
        pass.bytes_read += report.deep.as_ref().map_or(0, |d| d.bytes_read);
        pass.nodes.push(report);
    }
    find_misplaced(view, opts, &expected, &mut pass);
    find_unrecoverable(&expected, &mut pass);
    pass.expected = expected;
    Ok(pass)
}

async fn scrub_node(
    node: NodeId,
    store: &dyn ShardStore,
    expected: &Expected,
    opts: &ScrubOptions,
    gc_pending: &HashSet<(NodeId, ShardId)>,
    pass: &mut ScrubPass,
) -> NodeScrub {
    let mine = expected.per_node.get(&node).cloned().unwrap_or_default();
    let mut report = NodeScrub {
        node: node.0,
        shards_expected: mine.len() as u64,
        listing_bytes: (mine.len() * ENTRY_BYTES) as u64,
        ..NodeScrub::default()
    };
    let mut quarantined = HashSet::new();
    if opts.deep {
        match store.deep_scrub(opts.deep_rate).await {
            Ok(r) => {
                quarantined.extend(r.corrupt.iter().copied());
                report.deep = Some(DeepFigures {
                    shards_checked: r.shards_checked,
                    bytes_read: r.bytes_read,
                    corrupt: r.corrupt.len() as u64,
                });
            }
            Err(e) => {
                report.error = Some(format!("deep scrub failed: {e}"));
                tracing::warn!(%node, error = %e, "deep scrub failed");
                return report;
            }
        }
    }
    let summary = MerkleSummary::build(mine);
    let diff = match diff_against_store(&summary, store).await {
        Ok(d) => d,
        Err(e) => {
            report.error = Some(format!("datanode unreachable: {e}"));
            tracing::warn!(%node, error = %e, "scrub: datanode unreachable");
            return report;
        }
    };
    report.reachable = true;
    report.partitions_checked = PARTITIONS as u64;
    report.hashes_compared = diff.nodes_compared;
    report.entries_compared = diff.entries_compared;
    report.requests = diff.requests;
    report.wire_bytes = diff.wire_bytes_estimate();
    let differing: HashSet<u8> = diff
        .missing
        .iter()
        .chain(&diff.extra)
        .chain(&diff.changed)
        .map(cairn_datanode::merkle::partition_of)
        .collect();
    report.partitions_differing = differing.len() as u64;
    let mut push = |kind, shard| {
        report.found.add(kind, 1);
        pass.damage.push(Damage { kind, node, shard });
    };
    for id in diff.changed {
        push(DamageKind::Corrupt, id);
    }
    for id in diff.missing {
        if quarantined.contains(&id) {
            push(DamageKind::Corrupt, id);
        } else {
            push(DamageKind::Missing, id);
        }
    }
    for id in diff.extra {
        match expected.holder.get(&id) {
            // A second copy of a live shard.
            Some(holder) if *holder != node => push(DamageKind::Misplaced, id),
            Some(_) => {}
            None if gc_pending.contains(&(node, id)) => {}
            // Without the whole expected state, unreferenced shards prove nothing.
            None if opts.bucket.is_some() => {}
            None => push(DamageKind::Orphaned, id),
        }
    }
    report.finished_ms = now_ms();
    report
}

/// Shards held where metadata says but outside their stripe's ring placement.
fn find_misplaced(
    view: &MembershipView,
    opts: &ScrubOptions,
    expected: &Expected,
    pass: &mut ScrubPass,
) {
    let damaged: HashSet<(NodeId, ShardId)> =
        pass.damage.iter().map(|d| (d.node, d.shard)).collect();
    let mut per_node: HashMap<NodeId, u64> = HashMap::new();
    for (id, body) in &expected.bodies {
        for (s, st) in body.stripes.iter().enumerate() {
            let placed = view.placement().place(*id, s as u32, st.shards.len());
            if placed.len() < st.shards.len() {
                continue;
            }
            for (i, loc) in st.shards.iter().enumerate() {
                let shard = ShardId::new(*id, s as u32, i as u32);
                let selected = opts.nodes.as_ref().is_none_or(|ns| ns.contains(&loc.node));
                if placed.contains(&loc.node)
                    || !selected
                    || pass.unreachable.contains(&loc.node)
                    || damaged.contains(&(loc.node, shard))
                {
                    continue;
                }
                pass.damage.push(Damage {
                    kind: DamageKind::Misplaced,
                    node: loc.node,
                    shard,
                });
                *per_node.entry(loc.node).or_default() += 1;
            }
        }
    }
    for n in &mut pass.nodes {
        if let Some(c) = per_node.get(&NodeId(n.node)) {
            n.found.add(DamageKind::Misplaced, *c);
        }
    }
}

/// Stripes with fewer than k shards left (damaged or on unreachable datanodes).
fn find_unrecoverable(expected: &Expected, pass: &mut ScrubPass) {
    let mut lost: HashMap<(cairn_types::ObjectId, u32), usize> = HashMap::new();
    for d in &pass.damage {
        if matches!(d.kind, DamageKind::Missing | DamageKind::Corrupt) {
            *lost.entry((d.shard.object, d.shard.stripe)).or_default() += 1;
        }
    }
    if !pass.unreachable.is_empty() {
        for (id, body) in &expected.bodies {
            for (s, st) in body.stripes.iter().enumerate() {
                let down = st
                    .shards
                    .iter()
                    .filter(|l| pass.unreachable.contains(&l.node))
                    .count();
                if down > 0 {
                    *lost.entry((*id, s as u32)).or_default() += down;
                }
            }
        }
    }
    let mut out: Vec<Unrecoverable> = lost
        .into_iter()
        .filter_map(|((id, s), n)| {
            let body = expected.bodies.get(&id)?;
            let total = body.stripes.get(s as usize)?.shards.len();
            let needed = body.ec.data as usize;
            let available = total.saturating_sub(n);
            (available < needed).then(|| Unrecoverable {
                stripe: format!("{id}/{s}"),
                available,
                needed,
                objects: body.names.clone(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.stripe.cmp(&b.stripe));
    for u in &out {
        tracing::error!(stripe = %u.stripe, objects = ?u.objects, available = u.available, needed = u.needed, "unrecoverable stripe");
    }
    pass.unrecoverable = out;
}
