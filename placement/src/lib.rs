//! Placement: which datanodes hold the shards of a stripe.
//!
//! The [`Placement`] trait is the seam the data path uses. Law: for a given placement
//! (and ring epoch), `place` is deterministic and returns distinct nodes. Two
//! implementations: [`StaticPlacement`], a fixed node list with a hash-based start, which is
//! all a single-datanode server needs; and [`Ring`] (module [`ring`]), the consistent-hash
//! ring with virtual nodes in proportion to weight and host/zone spreading, whose laws are
//! stated in its module docs. This crate is pure and synchronous: no I/O, no clock, no
//! randomness, and it depends only on `cairn-types`.

use cairn_types::{NodeId, ObjectId};

pub mod ring;

pub use ring::{ring_epoch, ring_stats, NodeInfo, Ring, RingError};

/// Chooses datanodes for stripes.
pub trait Placement: Send + Sync + 'static {
    /// `count` distinct nodes for stripe `stripe` of object `object`, in shard order; fewer
    /// if the cluster has fewer nodes.
    fn place(&self, object: ObjectId, stripe: u32, count: usize) -> Vec<NodeId>;

    /// Up to `count` further distinct nodes, not in `exclude`, to hold shards whose placed
    /// node is down (hinted handoff). Deterministic like `place`.
    fn fallbacks(
        &self,
        object: ObjectId,
        stripe: u32,
        exclude: &[NodeId],
        count: usize,
    ) -> Vec<NodeId> {
        let _ = (object, stripe, exclude, count);
        Vec::new()
    }
}

/// A fixed list of nodes; stripe `s` of object `o` starts at a position derived from a hash
/// of `(o, s)` and takes the following nodes in list order.
#[derive(Debug, Clone)]
pub struct StaticPlacement {
    nodes: Vec<NodeId>,
}

impl StaticPlacement {
    pub fn new(mut nodes: Vec<NodeId>) -> Self {
        nodes.sort();
        nodes.dedup();
        StaticPlacement { nodes }
    }
}

/// A 64-bit mix of an object id and stripe index (splitmix64 finaliser).
pub fn stripe_hash(object: ObjectId, stripe: u32) -> u64 {
    let mut z = (object.0 as u64) ^ ((object.0 >> 64) as u64) ^ (u64::from(stripe) << 32);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Placement for StaticPlacement {
    fn place(&self, object: ObjectId, stripe: u32, count: usize) -> Vec<NodeId> {
        let n = self.nodes.len();
        if n == 0 {
            return Vec::new();
        }
        let start = (stripe_hash(object, stripe) % n as u64) as usize;
        (0..count.min(n))
            .map(|i| self.nodes[(start + i) % n])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_distinct() {
        let p = StaticPlacement::new((0..6).map(NodeId).collect());
        for o in 0..200u128 {
            for s in 0..4 {
                let a = p.place(ObjectId(o * 7919), s, 4);
                assert_eq!(a, p.place(ObjectId(o * 7919), s, 4));
                let mut d = a.clone();
                d.sort();
                d.dedup();
                assert_eq!(d.len(), 4);
            }
        }
        assert_eq!(p.place(ObjectId(1), 0, 10).len(), 6);
        assert!(StaticPlacement::new(vec![])
            .place(ObjectId(1), 0, 1)
            .is_empty());
    }

    #[test]
    fn spreads_first_shards() {
        let p = StaticPlacement::new((0..4).map(NodeId).collect());
        let mut counts = [0usize; 4];
        for o in 0..4000u128 {
            counts[p.place(ObjectId(o), 0, 1)[0].0 as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
    }
}
