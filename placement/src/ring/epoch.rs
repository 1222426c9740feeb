//! The ring epoch: which ring a placement was computed on.
//!
//! Gateways build their rings independently, from the membership they read from metadata
//! (datanode registry, drained list); nothing hands out epoch numbers. So the epoch is
//! derived from exactly what the ring is built from — every node's id, weight, host and
//! zone, and the virtual nodes per unit of weight — by a fixed hash. Two gateways that see the
//! same membership compute the same epoch; any change that can move a placement (a node
//! added or removed, re-weighted (drained nodes have weight 0), moved to another host or
//! zone) gives another one. The order of the node list does not matter. An epoch names a
//! ring, it does not order rings: going back to an earlier membership gives back its epoch,
//! which is right, since the placements are those of that ring again.
//!
//! The value is part of what operators see (status, metrics), so the hash is pinned by a
//! test, and it is kept below 2⁵³ so that JSON readers and Prometheus (both `f64`) show it
//! exactly. It is never 0, which stays free for a ring built with no membership behind it.

use super::{mix64, NodeInfo};

const EPOCH_SEED: u64 = 0x5EED_0000_6570_6F63; // "epoc"

/// The epoch of the ring over `nodes` with `vnodes_per_weight` (see the module docs).
pub fn ring_epoch(nodes: &[NodeInfo], vnodes_per_weight: u32) -> u64 {
    let mut sorted: Vec<&NodeInfo> = nodes.iter().collect();
    sorted.sort_by_key(|n| n.id);
    let mut h = mix64(EPOCH_SEED ^ u64::from(vnodes_per_weight));
    h = mix64(h ^ sorted.len() as u64);
    for n in sorted {
        h = mix64(h ^ u64::from(n.id.0));
        h = mix64(h ^ u64::from(n.weight));
        h = hash_str(h, &n.zone);
        h = hash_str(h, &n.host);
    }
    (h >> 11).max(1)
}

/// Folds `s` into `h`: its length first (so that "ab","c" and "a","bc" differ), then its
/// bytes eight at a time.
fn hash_str(mut h: u64, s: &str) -> u64 {
    h = mix64(h ^ s.len() as u64);
    for chunk in s.as_bytes().chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = mix64(h ^ u64::from_le_bytes(word));
    }
    h
}

#[cfg(test)]
mod tests {
    use cairn_types::NodeId;

    use super::*;

    fn node(id: u32, weight: u32, zone: &str, host: &str) -> NodeInfo {
        NodeInfo {
            id: NodeId(id),
            weight,
            host: host.into(),
            zone: zone.into(),
        }
    }

    fn six() -> Vec<NodeInfo> {
        (0..6)
            .map(|i| node(i, 1, "z", &format!("node{}", i / 2)))
            .collect()
    }

    #[test]
    fn the_same_membership_in_any_order_has_one_epoch() {
        let a = six();
        let mut b = a.clone();
        b.reverse();
        b.swap(1, 4);
        assert_eq!(ring_epoch(&a, 128), ring_epoch(&b, 128));
    }

    #[test]
    fn every_change_that_can_move_a_placement_changes_the_epoch() {
        let base = six();
        let e = ring_epoch(&base, 128);
        let mut changed: Vec<Vec<NodeInfo>> = Vec::new();
        // Added, removed.
        let mut v = base.clone();
        v.push(node(6, 1, "z", "node3"));
        changed.push(v);
        changed.push(base[..5].to_vec());
        // Re-weighted, drained (weight 0).
        for w in [0, 2] {
            let mut v = base.clone();
            v[3].weight = w;
            changed.push(v);
        }
        // Another host, another zone.
        let mut v = base.clone();
        v[2].host = "node9".into();
        changed.push(v);
        let mut v = base.clone();
        v[2].zone = "y".into();
        changed.push(v);
        // Same count, another id.
        let mut v = base.clone();
        v[5].id = NodeId(7);
        changed.push(v);
        // Strings split differently.
        let mut v = base.clone();
        (v[0].zone, v[0].host) = ("zn".into(), "ode0".into());
        changed.push(v);
        let mut epochs: Vec<u64> = changed.iter().map(|v| ring_epoch(v, 128)).collect();
        epochs.push(ring_epoch(&base, 64));
        for x in &epochs {
            assert_ne!(*x, e);
        }
        let mut distinct = epochs.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), epochs.len(), "{epochs:?}");
    }

    #[test]
    fn epochs_are_pinned_nonzero_and_exact_as_doubles() {
        // Pinned: gateways of different versions must agree on the epoch of one membership.
        assert_eq!(ring_epoch(&six(), 128), 5_399_121_528_197_326);
        assert_eq!(ring_epoch(&[], 128), ring_epoch(&[], 128));
        for n in 0..50u32 {
            let nodes: Vec<NodeInfo> = (0..n).map(|i| node(i, i % 3, "z", "h")).collect();
            let e = ring_epoch(&nodes, 128);
            assert!(e > 0 && e < 1 << 53);
            assert_eq!(e as f64 as u64, e);
        }
    }
}
