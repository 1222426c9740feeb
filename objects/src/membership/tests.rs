use async_trait::async_trait;
use bytes::Bytes;
use cairn_datanode::{DatanodeError, ShardInfo, StoreStats};
use cairn_types::{ObjectId, ShardId};

use super::*;

/// A datanode client that is never called: membership only holds it.
struct Idle;

#[async_trait]
impl ShardStore for Idle {
    async fn put(&self, _: ShardId, _: Bytes) -> cairn_datanode::Result<ShardInfo> {
        Err(DatanodeError::Closed)
    }
    async fn get(&self, _: ShardId) -> cairn_datanode::Result<Bytes> {
        Err(DatanodeError::Closed)
    }
    async fn delete(&self, _: ShardId) -> cairn_datanode::Result<()> {
        Err(DatanodeError::Closed)
    }
    async fn list(&self, _: Option<ShardId>, _: usize) -> cairn_datanode::Result<Vec<ShardInfo>> {
        Ok(Vec::new())
    }
    async fn stats(&self) -> cairn_datanode::Result<StoreStats> {
        Ok(StoreStats::default())
    }
}

fn nodes(ids: impl IntoIterator<Item = u32>) -> NodeMap {
    ids.into_iter()
        .map(|i| (NodeId(i), Arc::new(Idle) as Arc<dyn ShardStore>))
        .collect()
}

/// Datanode `i` on host `node{i / 2}` (two datanodes per host), zone `z`.
fn topology(ids: impl IntoIterator<Item = u32>) -> BTreeMap<NodeId, NodeTopology> {
    ids.into_iter()
        .map(|i| {
            let t = NodeTopology {
                host: format!("node{}", i / 2),
                zone: "z".into(),
            };
            (NodeId(i), t)
        })
        .collect()
}

fn set(ids: &[u32]) -> BTreeSet<NodeId> {
    ids.iter().copied().map(NodeId).collect()
}

/// Shards per stripe (2+2).
const WIDTH: usize = 4;

/// A gateway's membership after it learnt `ids` with their topology and `drained`.
fn gateway(ids: std::ops::Range<u32>, drained: &[u32]) -> Membership {
    let m = Membership::new(nodes(ids.clone()), WIDTH).unwrap();
    m.set_nodes(nodes(ids.clone()), topology(ids));
    m.set_drained(set(drained)).unwrap();
    m
}

#[test]
fn gateways_that_learn_the_same_membership_agree_on_the_epoch() {
    // One gateway started with every datanode; another with fewer, then learnt the rest,
    // drained one too many and undrained it, and was marked some datanodes down.
    let a = gateway(0..7, &[3]);
    let b = Membership::new(nodes(0..2), WIDTH).unwrap();
    b.set_nodes(nodes(0..4), topology(0..4));
    b.set_nodes(nodes(0..7), topology(0..7));
    b.set_drained(set(&[1, 3])).unwrap();
    b.set_drained(set(&[3])).unwrap();
    b.set_down(set(&[5]));
    let (va, vb) = (a.view(), b.view());
    assert_eq!(va.epoch(), vb.epoch());
    assert_ne!(va.epoch(), 0);
    assert_eq!(va.ring(), vb.ring());
    // Down is this gateway's own observation, not part of the ring.
    assert_eq!(vb.down(), &set(&[5]));
    assert!(va.down().is_empty());
}

#[test]
fn every_membership_change_changes_the_epoch_and_down_does_not() {
    let m = gateway(0..6, &[]);
    let mut seen = vec![m.view().epoch()];
    let mut changed = |what: &str, m: &Membership| {
        let e = m.view().epoch();
        assert!(
            !seen.contains(&e),
            "{what}: epoch {e} seen before ({seen:?})"
        );
        seen.push(e);
    };
    m.set_nodes(nodes(0..7), topology(0..7));
    changed("a datanode added", &m);
    m.set_drained(set(&[2])).unwrap();
    changed("a datanode drained", &m);
    m.set_drained(set(&[2, 4])).unwrap();
    changed("another drained", &m);
    let mut moved = topology(0..7);
    moved.get_mut(&NodeId(6)).unwrap().zone = "y".into();
    m.set_nodes(nodes(0..7), moved.clone());
    changed("a datanode in another zone", &m);
    m.set_nodes(nodes((0..7).filter(|&i| i != 5)), topology(0..7));
    changed("a datanode removed", &m);
    let before = m.view().epoch();
    m.set_down(set(&[0, 1]));
    assert_eq!(
        m.view().epoch(),
        before,
        "down datanodes do not change the ring"
    );
    assert_eq!(m.metrics().epoch.get(), before as i64);
    // Six ring changes after the start (add, two drains, zone, remove, plus the topology).
    assert_eq!(m.metrics().changes.get(), 6);
    // Undoing changes brings the epoch of that membership back.
    let fresh = gateway(0..6, &[]);
    m.set_drained(set(&[])).unwrap();
    m.set_nodes(nodes(0..6), topology(0..6));
    assert_eq!(m.view().epoch(), fresh.view().epoch());
}

#[test]
fn a_view_is_a_snapshot_and_a_refused_change_changes_nothing() {
    let m = gateway(0..7, &[]);
    let old = m.view();
    m.set_drained(set(&[6])).unwrap();
    // The view taken before still has the old ring and drained set, as one whole.
    assert!(old.drained().is_empty());
    assert_eq!(old.ring().node(NodeId(6)).unwrap().weight, 1);
    let new = m.view();
    assert_eq!(new.drained(), &set(&[6]));
    assert_eq!(new.ring().node(NodeId(6)).unwrap().weight, 0);
    let o = ObjectId(42);
    for s in 0..50 {
        assert!(!new.placement().place(o, s, 6).contains(&NodeId(6)));
    }
    // Four drained would leave three of the four a stripe needs; an unknown datanode is
    // refused.
    assert!(matches!(
        m.set_drained(set(&[3, 4, 5, 6])),
        Err(ObjectsError::Config(_))
    ));
    assert!(matches!(
        m.set_drained(set(&[9])),
        Err(ObjectsError::UnknownNode(NodeId(9)))
    ));
    assert_eq!(m.view().epoch(), new.epoch());
    assert_eq!(m.view().drained(), &set(&[6]));
}

#[test]
fn a_datanode_that_leaves_stops_being_drained() {
    let m = gateway(0..8, &[7]);
    m.set_nodes(nodes(0..7), topology(0..7));
    let v = m.view();
    assert!(v.drained().is_empty());
    assert!(v.store(NodeId(7)).is_none());
    assert!(matches!(
        v.node(NodeId(7)),
        Err(ObjectsError::UnknownNode(_))
    ));
    assert_eq!(v.ring().nodes().len(), 7);
    assert_eq!(v.epoch(), gateway(0..7, &[]).view().epoch());
}
