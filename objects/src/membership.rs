//! Membership: the datanodes the data path can reach, where they are (host, zone), which are
//! being drained and which are down, and the placement ring built over them.
//!
//! A [`Membership`] is one shared, cheap-to-clone value: the object service, its garbage
//! collector, the healer and the cluster watcher hold clones of it. Writers (the watcher, the
//! admin API) replace parts of it; readers take a [`MembershipView`] once per operation (a
//! PUT, a GET, a GC batch, a scrub pass) and use only that, so that one operation never mixes
//! the datanodes of one membership with the ring of another.
//!
//! Invariants of every view: the ring lists exactly the datanodes of `nodes`; drained ones
//! (always a subset of `nodes`) have weight 0, so they get no new placements but stay
//! readable. The ring's epoch is derived from what it is built from
//! ([`cairn_placement::ring_epoch`]): gateways that read the same registry and drained list
//! from metadata build rings of the same epoch, and any change of them gives a new epoch.
//! Down datanodes (missed heartbeats, a local observation) do not change the ring: writes
//! skip them for spares.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, PoisonError, RwLock};

use cairn_datanode::ShardStore;
use cairn_placement::{NodeInfo, Placement, Ring};
use cairn_types::NodeId;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

use crate::ObjectsError;

/// Every datanode the data path can reach, by id.
pub type NodeMap = BTreeMap<NodeId, Arc<dyn ShardStore>>;

/// Where a datanode is, for spreading a stripe's shards over hosts and zones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTopology {
    pub host: String,
    pub zone: String,
}

/// Virtual nodes per unit of datanode weight.
const RING_VNODES_PER_WEIGHT: u32 = 128;

/// One consistent view of the membership, as of the moment it was taken.
#[derive(Clone)]
pub struct MembershipView {
    nodes: Arc<NodeMap>,
    topology: Arc<BTreeMap<NodeId, NodeTopology>>,
    drained: BTreeSet<NodeId>,
    down: BTreeSet<NodeId>,
    ring: Arc<Ring>,
}

impl MembershipView {
    /// Every datanode, by id.
    pub fn nodes(&self) -> &NodeMap {
        &self.nodes
    }

    /// The client of datanode `id`, if it is a member.
    pub fn store(&self, id: NodeId) -> Option<Arc<dyn ShardStore>> {
        self.nodes.get(&id).cloned()
    }

    /// The client of datanode `id`, or [`ObjectsError::UnknownNode`].
    pub fn node(&self, id: NodeId) -> Result<Arc<dyn ShardStore>, ObjectsError> {
        self.store(id).ok_or(ObjectsError::UnknownNode(id))
    }

    /// Host and zone of each datanode (empty for a single-host service).
    pub fn topology(&self) -> &BTreeMap<NodeId, NodeTopology> {
        &self.topology
    }

    /// Datanodes being drained: kept readable, given no new placements.
    pub fn drained(&self) -> &BTreeSet<NodeId> {
        &self.drained
    }

    /// Datanodes whose heartbeats stopped: writes do not try them.
    pub fn down(&self) -> &BTreeSet<NodeId> {
        &self.down
    }

    /// The ring new stripes are placed by.
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// The ring as the data path's placement.
    pub fn placement(&self) -> &dyn Placement {
        self.ring.as_ref()
    }

    /// The ring's epoch (see the module docs).
    pub fn epoch(&self) -> u64 {
        self.ring.epoch()
    }
}

/// The ring's figures for the metrics endpoint; clones share the same values.
#[derive(Clone, Debug, Default)]
pub struct RingMetrics {
    /// The epoch of the current ring.
    pub epoch: Gauge,
    /// Times this process replaced its ring with one of another epoch.
    pub changes: Counter,
}

/// The shared, changing membership (see the module docs).
#[derive(Clone)]
pub struct Membership {
    view: Arc<RwLock<Arc<MembershipView>>>,
    /// Datanodes a stripe needs (k+m): a drain may not leave fewer placeable.
    stripe_width: usize,
    metrics: RingMetrics,
    /// Drain changes made through this node (started, finished): see [`LocalDrains`].
    local_drains: Arc<(std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64)>,
}

/// Where this node's own drain changes stand, for whoever applies the stored drained list:
/// a stored value read while a local change was under way may predate it (and would undo
/// it); one read after every local change finished may not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalDrains {
    pub started: u64,
    pub finished: u64,
}

impl LocalDrains {
    /// Whether no local change was under way.
    pub fn settled(&self) -> bool {
        self.started == self.finished
    }
}

impl Membership {
    /// A membership of `nodes`, all in one place, none drained or down, for stripes of
    /// `stripe_width` shards.
    pub fn new(nodes: NodeMap, stripe_width: usize) -> Result<Self, ObjectsError> {
        Self::with_metrics(nodes, stripe_width, RingMetrics::default())
    }

    pub(crate) fn with_metrics(
        nodes: NodeMap,
        stripe_width: usize,
        metrics: RingMetrics,
    ) -> Result<Self, ObjectsError> {
        let topology = BTreeMap::new();
        let ring = build_ring(nodes.keys(), &BTreeSet::new(), &topology, 0)?;
        metrics.epoch.set(ring.epoch() as i64);
        let view = MembershipView {
            nodes: Arc::new(nodes),
            topology: Arc::new(topology),
            drained: BTreeSet::new(),
            down: BTreeSet::new(),
            ring,
        };
        Ok(Membership {
            view: Arc::new(RwLock::new(Arc::new(view))),
            stripe_width,
            metrics,
            local_drains: Arc::default(),
        })
    }

    /// Marks the start of a drain change made through this node (before it is applied here
    /// and stored); [`Self::finish_local_drain`] marks its end, whatever its outcome.
    pub fn start_local_drain(&self) {
        self.local_drains
            .0
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn finish_local_drain(&self) {
        self.local_drains
            .1
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// The local drain changes so far.
    pub fn local_drains(&self) -> LocalDrains {
        // Finished first: a change that finishes between the two loads counts as under way.
        let finished = self
            .local_drains
            .1
            .load(std::sync::atomic::Ordering::SeqCst);
        let started = self
            .local_drains
            .0
            .load(std::sync::atomic::Ordering::SeqCst);
        LocalDrains { started, finished }
    }

    /// The membership as it is now: take it once per operation.
    pub fn view(&self) -> Arc<MembershipView> {
        self.view
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The ring's metrics.
    pub fn metrics(&self) -> &RingMetrics {
        &self.metrics
    }

    /// Replaces the view with `change(current)`, under the write lock so that concurrent
    /// changes do not lose each other.
    fn update<T>(
        &self,
        change: impl FnOnce(&MembershipView) -> Result<(MembershipView, T), ObjectsError>,
    ) -> Result<T, ObjectsError> {
        let mut slot = self.view.write().unwrap_or_else(PoisonError::into_inner);
        let (next, out) = change(&slot)?;
        if next.epoch() != slot.epoch() {
            self.metrics.epoch.set(next.epoch() as i64);
            self.metrics.changes.inc();
            tracing::info!(
                epoch = next.epoch(),
                datanodes = next.nodes.len(),
                drained = next.drained.len(),
                "ring rebuilt"
            );
        }
        *slot = Arc::new(next);
        Ok(out)
    }

    /// Rebuilds the ring with `drained` datanodes given no placements (their shards stay
    /// readable and become misplaced, so the scrubber moves them off). Refused when fewer
    /// than a stripe's width of datanodes would remain, or a datanode is unknown.
    pub fn set_drained(&self, drained: BTreeSet<NodeId>) -> Result<(), ObjectsError> {
        self.update(|cur| {
            if let Some(n) = drained.iter().find(|n| !cur.nodes.contains_key(n)) {
                return Err(ObjectsError::UnknownNode(*n));
            }
            let ring = build_ring(cur.nodes.keys(), &drained, &cur.topology, self.stripe_width)?;
            Ok((
                MembershipView {
                    drained,
                    ring,
                    ..cur.clone()
                },
                (),
            ))
        })
    }

    /// Replaces the set of datanodes (the cluster's registry changed) and rebuilds the ring
    /// over them, spreading each stripe over hosts and zones. Drained datanodes that are no
    /// longer listed stop being drained. With fewer datanodes than a stripe needs the ring
    /// still covers those there are, and striped writes fail with
    /// [`ObjectsError::NotEnoughDatanodes`] until more register.
    pub fn set_nodes(&self, nodes: NodeMap, topology: BTreeMap<NodeId, NodeTopology>) {
        let _ = self.update(|cur| {
            let mut drained = cur.drained.clone();
            drained.retain(|n| nodes.contains_key(n));
            let ring = match build_ring(nodes.keys(), &drained, &topology, 0) {
                Ok(ring) => ring,
                Err(e) => {
                    // Only a ring too large to build fails here; keep the old one.
                    tracing::warn!(error = %e, "could not rebuild the ring; keeping the old one");
                    cur.ring.clone()
                }
            };
            Ok((
                MembershipView {
                    nodes: Arc::new(nodes),
                    topology: Arc::new(topology),
                    drained,
                    down: cur.down.clone(),
                    ring,
                },
                (),
            ))
        });
    }

    /// Takes datanode `id` out of the view and the ring (it was removed from the cluster).
    /// Refused when fewer than a stripe's width of placeable datanodes would remain, or
    /// when `id` is unknown.
    pub fn remove_node(&self, id: NodeId) -> Result<(), ObjectsError> {
        self.update(|cur| {
            if !cur.nodes.contains_key(&id) {
                return Err(ObjectsError::UnknownNode(id));
            }
            let mut nodes = (*cur.nodes).clone();
            nodes.remove(&id);
            let mut topology = (*cur.topology).clone();
            topology.remove(&id);
            let mut drained = cur.drained.clone();
            drained.remove(&id);
            let mut down = cur.down.clone();
            down.remove(&id);
            let ring = build_ring(nodes.keys(), &drained, &topology, self.stripe_width)?;
            Ok((
                MembershipView {
                    nodes: Arc::new(nodes),
                    topology: Arc::new(topology),
                    drained,
                    down,
                    ring,
                },
                (),
            ))
        })
    }

    /// Marks the datanodes that stopped answering heartbeats: new shards skip them (to the
    /// next distinct node on the ring) instead of waiting for them to fail.
    pub fn set_down(&self, down: BTreeSet<NodeId>) {
        let _ = self.update(|cur| {
            Ok((
                MembershipView {
                    down,
                    ..cur.clone()
                },
                (),
            ))
        });
    }
}

/// The ring over `nodes`, drained ones with weight 0; it must place `needed` nodes.
fn build_ring<'a>(
    nodes: impl Iterator<Item = &'a NodeId>,
    drained: &BTreeSet<NodeId>,
    topology: &BTreeMap<NodeId, NodeTopology>,
    needed: usize,
) -> Result<Arc<Ring>, ObjectsError> {
    // Datanodes without a known place share one host and zone (a single-node server).
    let infos: Vec<NodeInfo> = nodes
        .map(|id| {
            let t = topology.get(id);
            NodeInfo {
                id: *id,
                weight: u32::from(!drained.contains(id)),
                host: t.map_or_else(|| "local".into(), |t| t.host.clone()),
                zone: t.map_or_else(|| "local".into(), |t| t.zone.clone()),
            }
        })
        .collect();
    let ring = Ring::with_derived_epoch(infos, RING_VNODES_PER_WEIGHT)
        .map_err(|e| ObjectsError::Config(e.to_string()))?;
    if ring.placeable_count() < needed {
        return Err(ObjectsError::Config(format!(
            "{} datanodes would be left for new writes; the erasure coding needs {needed}",
            ring.placeable_count()
        )));
    }
    Ok(Arc::new(ring))
}

#[cfg(test)]
mod tests;
