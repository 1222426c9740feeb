//! The consistent-hash ring: virtual nodes in proportion to weight, host and zone spreading.
//!
//! A [`Ring`] is built once from a node list, an epoch and a number of virtual nodes per unit
//! of weight, and never changes; a membership change builds a new ring with a new epoch.
//! [`Ring::with_derived_epoch`] takes the epoch [`ring_epoch`] derives from the node list, so
//! that every process building the ring of one membership gives it the same epoch.
//! Node `n` of weight `w` owns `w × vnodes_per_weight` virtual nodes; virtual node `v` of node
//! `n` sits at [`vnode_position`]`(n, v)`. Stripe `s` of object `o` starts at
//! [`ring_key_hash`]`(o, s)`, and the ring is walked clockwise (increasing position, wrapping
//! at 2⁶⁴) from the first virtual node whose position is ≥ that hash. The walk yields each
//! node at its first virtual node, giving the *successor list* of distinct nodes.
//!
//! [`Ring::place`] takes `count` nodes from the successor list in passes, each scanning it
//! from the start and skipping nodes already taken:
//!
//! 1. take a node only if both its zone and its host are not yet used;
//! 2. then in rounds r = 1, 2, …: take a node only if its host has fewer than r nodes taken
//!    (round 1: a host not yet used), until `count` are taken — so no host gets more than
//!    its even share while other hosts still have untaken nodes.
//!
//! A host is identified by the pair (zone, host name), so the same host name in two zones
//! names two hosts. Shard `i` goes to the `i`-th node returned (pass order, not ring order).
//! [`Ring::fallbacks`] is the successor list minus an exclusion list, with no spreading: the
//! next nodes on the ring, for hinted handoff when placed nodes are down.
//!
//! # Laws
//!
//! Proven in `ring/tests.rs` with proptest, against a naive implementation that sorts every
//! virtual node and runs the three passes over the whole walk.
//!
//! - **Deterministic**: `place` depends only on the ring (node list as a set, weights, hosts,
//!   zones, `vnodes_per_weight`) and on `(object, stripe, count)` — not on the order of the
//!   node list, the process or the version; the hashes are fixed functions pinned by tests.
//! - **Distinct and complete**: `place` returns `min(count, P)` distinct nodes, where `P` is
//!   the number of *placeable* nodes (those owning at least one virtual node: weight > 0 and
//!   `vnodes_per_weight` > 0). An empty ring places nothing.
//! - **Spreading**: the result covers `min(count, Z)` zones and `min(count, H)` hosts, where
//!   `Z` and `H` count the zones and hosts of placeable nodes; with hosts of equal size no
//!   host gets more than `⌈count / H⌉` nodes.
//! - **Minimal movement**: if the ring gains one node `x`, a placement that changes contains
//!   `x` (nothing moves between old nodes because of `x`); with `count = 1` it becomes `[x]`.
//!   Without zone or host constraints (every node alone in its zone, or all nodes on one
//!   host) a changed placement differs from the old one by exactly one node, replaced by `x`.
//!   Removing a node is the same law read backwards.
//! - **Weights**: the expected share of first placements of a node is its weight over the
//!   total weight; with `V` virtual nodes a node's share deviates by about `1/√V` relative.
//!
//! The ring holds at most [`MAX_RING_VNODES`] virtual nodes; [`Ring::new`] refuses more, and
//! refuses a node id given twice, rather than guessing.

use std::collections::BTreeMap;

use cairn_types::{NodeId, ObjectId};
use serde::{Deserialize, Serialize};

use crate::Placement;

mod epoch;

pub use epoch::ring_epoch;

/// Upper bound on the virtual nodes of one ring (64 MiB of positions), so that no node list
/// can make [`Ring::new`] allocate without bound.
pub const MAX_RING_VNODES: u64 = 1 << 22;

/// One datanode as the ring sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeInfo {
    pub id: NodeId,
    /// Capacity units; the node owns `weight × vnodes_per_weight` virtual nodes. A weight of
    /// 0 keeps the node in the ring's list but never places anything on it.
    pub weight: u32,
    pub host: String,
    pub zone: String,
}

/// Why a node list cannot make a ring.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    #[error("node {0} appears more than once")]
    DuplicateNode(NodeId),
    #[error("ring would hold {requested} virtual nodes; the limit is {max}")]
    TooManyVnodes { requested: u64, max: u64 },
}

/// The splitmix64 finaliser (with its golden-ratio increment): a bijection on `u64`.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const VNODE_SEED: u64 = 0x5EED_0000_7269_6E67; // "ring"
const KEY_SEED: u64 = 0x5EED_0000_6B65_7973; // "keys"

/// Position of virtual node `vnode` of `node` on the ring. Part of the persistent format:
/// changing it moves every shard. The input `(node << 32 | vnode)` is injective and
/// [`mix64`] is a bijection, so no two virtual nodes ever share a position.
pub fn vnode_position(node: NodeId, vnode: u32) -> u64 {
    mix64(((u64::from(node.0) << 32) | u64::from(vnode)) ^ VNODE_SEED)
}

/// Where stripe `stripe` of `object` starts its walk. Part of the persistent format. Unlike
/// [`crate::stripe_hash`] (kept for [`crate::StaticPlacement`]), every bit of the object id
/// passes through a full mixing round before the stripe index is folded in.
pub fn ring_key_hash(object: ObjectId, stripe: u32) -> u64 {
    let h = mix64(object.0 as u64 ^ KEY_SEED);
    let h = mix64(h ^ (object.0 >> 64) as u64);
    mix64(h ^ u64::from(stripe))
}

/// An immutable consistent-hash ring of one epoch. See the module docs for the algorithm and
/// its laws. Serialises as `{epoch, vnodes_per_weight, nodes}` and is rebuilt on load.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RingSpec", into = "RingSpec")]
pub struct Ring {
    epoch: u64,
    vnodes_per_weight: u32,
    /// Sorted by id, ids distinct.
    nodes: Vec<NodeInfo>,
    /// Per node (same index as `nodes`): interned zone and (zone, host).
    zone_of: Vec<u32>,
    host_of: Vec<u32>,
    /// Zones, hosts and nodes that own at least one virtual node.
    zones: usize,
    hosts: usize,
    placeable: usize,
    /// `(position, node index)`, sorted by position (positions are distinct).
    vnodes: Vec<(u64, u32)>,
}

/// The serialised form of a [`Ring`]: what it is built from.
#[derive(Serialize, Deserialize)]
struct RingSpec {
    epoch: u64,
    vnodes_per_weight: u32,
    nodes: Vec<NodeInfo>,
}

impl TryFrom<RingSpec> for Ring {
    type Error = RingError;
    fn try_from(s: RingSpec) -> Result<Self, RingError> {
        Ring::new(s.epoch, s.nodes, s.vnodes_per_weight)
    }
}

impl From<Ring> for RingSpec {
    fn from(r: Ring) -> Self {
        RingSpec {
            epoch: r.epoch,
            vnodes_per_weight: r.vnodes_per_weight,
            nodes: r.nodes,
        }
    }
}

impl Ring {
    /// Builds the ring of `epoch` over `nodes` (in any order). Fails if a node id appears
    /// twice or if the ring would exceed [`MAX_RING_VNODES`] virtual nodes.
    pub fn new(
        epoch: u64,
        mut nodes: Vec<NodeInfo>,
        vnodes_per_weight: u32,
    ) -> Result<Ring, RingError> {
        nodes.sort_by_key(|n| n.id);
        if let Some(w) = nodes.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(RingError::DuplicateNode(w[0].id));
        }
        let owned = |n: &NodeInfo| u64::from(n.weight) * u64::from(vnodes_per_weight);
        let requested = nodes
            .iter()
            .fold(0u64, |acc, n| acc.saturating_add(owned(n)));
        if requested > MAX_RING_VNODES {
            return Err(RingError::TooManyVnodes {
                requested,
                max: MAX_RING_VNODES,
            });
        }

        // Zones and hosts are interned over placeable nodes only; the others are never met
        // on a walk, so their slots hold a placeholder.
        let mut zone_ids: BTreeMap<&str, u32> = BTreeMap::new();
        let mut host_ids: BTreeMap<(&str, &str), u32> = BTreeMap::new();
        let mut zone_of = Vec::with_capacity(nodes.len());
        let mut host_of = Vec::with_capacity(nodes.len());
        let mut placeable = 0;
        // The limit above keeps every count below 2^22, so these conversions cannot fail.
        let mut vnodes = Vec::with_capacity(usize::try_from(requested).unwrap_or(0));
        for (i, n) in nodes.iter().enumerate() {
            let count = u32::try_from(owned(n)).unwrap_or(0);
            if count == 0 {
                zone_of.push(u32::MAX);
                host_of.push(u32::MAX);
                continue;
            }
            placeable += 1;
            let next = zone_ids.len() as u32;
            zone_of.push(*zone_ids.entry(n.zone.as_str()).or_insert(next));
            let next = host_ids.len() as u32;
            host_of.push(
                *host_ids
                    .entry((n.zone.as_str(), n.host.as_str()))
                    .or_insert(next),
            );
            vnodes.extend((0..count).map(|v| (vnode_position(n.id, v), i as u32)));
        }
        let (zones, hosts) = (zone_ids.len(), host_ids.len());
        vnodes.sort_unstable();
        Ok(Ring {
            epoch,
            vnodes_per_weight,
            nodes,
            zone_of,
            host_of,
            zones,
            hosts,
            placeable,
            vnodes,
        })
    }

    /// [`Ring::new`] with the epoch [`ring_epoch`] derives from `nodes` and
    /// `vnodes_per_weight`: equal for equal memberships, different when one changes.
    pub fn with_derived_epoch(
        nodes: Vec<NodeInfo>,
        vnodes_per_weight: u32,
    ) -> Result<Ring, RingError> {
        let epoch = ring_epoch(&nodes, vnodes_per_weight);
        Ring::new(epoch, nodes, vnodes_per_weight)
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn vnodes_per_weight(&self) -> u32 {
        self.vnodes_per_weight
    }

    /// Every node of the ring, sorted by id, including those of weight 0.
    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    pub fn node(&self, id: NodeId) -> Option<&NodeInfo> {
        let i = self.nodes.binary_search_by_key(&id, |n| n.id).ok()?;
        self.nodes.get(i)
    }

    /// Number of virtual nodes on the ring.
    pub fn vnode_count(&self) -> usize {
        self.vnodes.len()
    }

    /// Number of nodes that own at least one virtual node: the most `place` can return.
    pub fn placeable_count(&self) -> usize {
        self.placeable
    }

    /// `count` distinct nodes for stripe `stripe` of `object`, spread over zones then hosts
    /// (the passes of the module docs); `min(count, placeable_count())` of them.
    pub fn place(&self, object: ObjectId, stripe: u32, count: usize) -> Vec<NodeId> {
        let want = count.min(self.placeable);
        if want == 0 {
            return Vec::new();
        }
        let mut walk = Walk::new(self, ring_key_hash(object, stripe));
        let mut pick = Picker {
            out: Vec::with_capacity(want),
            taken: vec![false; self.nodes.len()],
            zone_used: vec![false; self.zones],
            host_count: vec![0; self.hosts],
            zones_used: 0,
        };
        // Pass 1: new zone and new host. Once every zone is used no node can qualify.
        let mut k = 0;
        while pick.out.len() < want && pick.zones_used < self.zones {
            let Some(n) = walk.get(k) else { break };
            k += 1;
            let (z, h) = (self.zone_of[n] as usize, self.host_of[n] as usize);
            if !pick.taken[n] && !pick.zone_used[z] && pick.host_count[h] == 0 {
                pick.take(n, z, h);
            }
        }
        // Pass 2, in rounds r = 1, 2, …: a node whose host has fewer than r nodes taken
        // (r = 1: a new host), so that a stripe spreads as evenly over hosts as the ring
        // allows and losing one host loses as few shards as possible.
        let mut r = 1;
        while pick.out.len() < want {
            let before = pick.out.len();
            let mut k = 0;
            while pick.out.len() < want {
                let Some(n) = walk.get(k) else { break };
                k += 1;
                let (z, h) = (self.zone_of[n] as usize, self.host_of[n] as usize);
                if !pick.taken[n] && pick.host_count[h] < r {
                    pick.take(n, z, h);
                }
            }
            if pick.out.len() == before && r > want {
                break;
            }
            r += 1;
        }
        pick.out.into_iter().map(|n| self.nodes[n].id).collect()
    }

    /// The first `count` distinct nodes on the ring walk of `(object, stripe)` that are not
    /// in `exclude`, in ring order and without zone or host spreading. For hinted handoff:
    /// `fallbacks(o, s, &placed, down.len())` names where the shards of down nodes go.
    pub fn fallbacks(
        &self,
        object: ObjectId,
        stripe: u32,
        exclude: &[NodeId],
        count: usize,
    ) -> Vec<NodeId> {
        let mut out = Vec::with_capacity(count.min(self.placeable));
        if count == 0 || self.placeable == 0 {
            return out;
        }
        let mut walk = Walk::new(self, ring_key_hash(object, stripe));
        let mut k = 0;
        while out.len() < count {
            let Some(n) = walk.get(k) else { break };
            k += 1;
            let id = self.nodes[n].id;
            if !exclude.contains(&id) {
                out.push(id);
            }
        }
        out
    }
}

/// The successor list of one walk, produced lazily: `get(k)` is the `k`-th distinct node
/// (as an index into `Ring::nodes`) met walking clockwise from the start.
struct Walk<'a> {
    ring: &'a Ring,
    start: usize,
    steps: usize,
    seen: Vec<bool>,
    order: Vec<usize>,
}

impl<'a> Walk<'a> {
    fn new(ring: &'a Ring, key: u64) -> Self {
        // First virtual node at or after `key`, wrapping to the lowest position.
        let start = ring.vnodes.partition_point(|&(p, _)| p < key);
        Walk {
            ring,
            start,
            steps: 0,
            seen: vec![false; ring.nodes.len()],
            order: Vec::new(),
        }
    }

    fn get(&mut self, k: usize) -> Option<usize> {
        let len = self.ring.vnodes.len();
        while self.order.len() <= k && self.order.len() < self.ring.placeable && self.steps < len {
            let (_, n) = self.ring.vnodes[(self.start + self.steps) % len];
            self.steps += 1;
            let n = n as usize;
            if !self.seen[n] {
                self.seen[n] = true;
                self.order.push(n);
            }
        }
        self.order.get(k).copied()
    }
}

struct Picker {
    out: Vec<usize>,
    taken: Vec<bool>,
    zone_used: Vec<bool>,
    /// Nodes taken per host.
    host_count: Vec<usize>,
    zones_used: usize,
}

impl Picker {
    fn take(&mut self, n: usize, z: usize, h: usize) {
        self.out.push(n);
        self.taken[n] = true;
        if !self.zone_used[z] {
            self.zone_used[z] = true;
            self.zones_used += 1;
        }
        self.host_count[h] += 1;
    }
}

impl Placement for Ring {
    fn place(&self, object: ObjectId, stripe: u32, count: usize) -> Vec<NodeId> {
        Ring::place(self, object, stripe, count)
    }

    fn fallbacks(
        &self,
        object: ObjectId,
        stripe: u32,
        exclude: &[NodeId],
        count: usize,
    ) -> Vec<NodeId> {
        Ring::fallbacks(self, object, stripe, exclude, count)
    }
}

/// Share of first placements (`count = 1`) per node over `samples` pseudo-random stripes,
/// for every node of the ring in id order (0.0 for nodes of weight 0, and for all nodes when
/// `samples` is 0). The samples are a fixed sequence, so the figures are reproducible.
pub fn ring_stats(ring: &Ring, samples: usize) -> Vec<(NodeId, f64)> {
    let mut counts = vec![0u64; ring.nodes.len()];
    for i in 0..samples as u64 {
        let object = ObjectId((u128::from(mix64(2 * i)) << 64) | u128::from(mix64(2 * i + 1)));
        if let Some(id) = ring.place(object, (i % 8) as u32, 1).first() {
            if let Ok(n) = ring.nodes.binary_search_by_key(id, |n| n.id) {
                counts[n] += 1;
            }
        }
    }
    ring.nodes
        .iter()
        .zip(counts)
        .map(|(n, c)| {
            let share = if samples == 0 {
                0.0
            } else {
                c as f64 / samples as f64
            };
            (n.id, share)
        })
        .collect()
}

#[cfg(test)]
mod tests;
