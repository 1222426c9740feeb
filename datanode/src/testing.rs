//! Conformance suite for [`ShardStore`] implementations. Every implementation (the local
//! segment store, the network client, decorators) must pass [`run_conformance`] so that
//! callers can rely on the same semantics whichever one they hold.

use bytes::Bytes;
use cairn_types::{ObjectId, ShardId};

use crate::merkle::{leaf_hash, node_hash, partition_of, MerkleNode, NodePath, DEPTH, PARTITIONS};
use crate::{DatanodeError, ShardInfo, ShardStore};

/// Object id reserved for the suite; [`run_conformance`] touches only shards of this object.
pub const CONFORMANCE_OBJECT: ObjectId = ObjectId(0xC0FF_EE00_0000_0000_0000_0000_0000_0001);

fn sid(stripe: u32, shard: u32) -> ShardId {
    ShardId::new(CONFORMANCE_OBJECT, stripe, shard)
}

fn payload(seed: u32, len: usize) -> Bytes {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(31).wrapping_add(seed) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// Exercises `store` and panics on the first deviation from the [`ShardStore`] contract.
/// `store` must hold no shards of [`CONFORMANCE_OBJECT`] and must accept shards of at least
/// 1 MiB; other shards it holds are left alone (but must not change concurrently, since
/// stats are compared before and after).
pub async fn run_conformance(store: &dyn ShardStore) {
    let before = store.stats().await.expect("stats");
    let roots_before = store.merkle_roots().await.expect("merkle roots");
    assert_eq!(roots_before.len(), PARTITIONS);
    let ours = |infos: Vec<crate::ShardInfo>| -> Vec<crate::ShardInfo> {
        infos
            .into_iter()
            .filter(|i| i.id.object == CONFORMANCE_OBJECT)
            .collect()
    };

    // Absent shard: NotFound naming the id; deleting it is fine.
    let absent = sid(99, 0);
    match store.get(absent).await {
        Err(DatanodeError::NotFound(id)) => assert_eq!(id, absent),
        other => panic!("get of an absent shard: expected NotFound, got {other:?}"),
    }
    store
        .delete(absent)
        .await
        .expect("delete of an absent shard");

    // Put and get back, including the empty shard and a 1 MiB one.
    let cases = [
        (sid(0, 0), payload(1, 1000)),
        (sid(0, 1), Bytes::new()),
        (sid(0, 2), payload(2, 1 << 20)),
        (sid(1, 0), payload(3, 1)),
    ];
    for (id, data) in &cases {
        let info = store.put(*id, data.clone()).await.expect("put");
        assert_eq!(info.id, *id);
        assert_eq!(info.len, data.len() as u64);
        assert_eq!(info.crc32c, cairn_types::crc32c(data), "crc of {id}");
    }
    for (id, data) in &cases {
        assert_eq!(
            &store.get(*id).await.expect("get"),
            data,
            "contents of {id}"
        );
    }

    // Overwrite replaces the contents.
    let replaced = payload(4, 777);
    let info = store
        .put(sid(0, 0), replaced.clone())
        .await
        .expect("overwrite");
    assert_eq!(info.len, 777);
    assert_eq!(store.get(sid(0, 0)).await.expect("get"), replaced);

    // Listing: id order, ids and lengths as stored.
    let all = ours(store.list(None, usize::MAX).await.expect("list"));
    let ids: Vec<ShardId> = all.iter().map(|i| i.id).collect();
    assert_eq!(ids, vec![sid(0, 0), sid(0, 1), sid(0, 2), sid(1, 0)]);
    assert_eq!(all[0].len, 777);
    assert_eq!(all[0].crc32c, cairn_types::crc32c(&replaced));
    assert_eq!(all[2].len, 1 << 20);

    // Paging: strictly after, at most `limit`, empty at the end.
    let page = store.list(Some(sid(0, 0)), 2).await.expect("list page");
    assert_eq!(
        page.iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![sid(0, 1), sid(0, 2)],
        "list is strictly after start_after"
    );
    assert!(store.list(None, 0).await.expect("list 0").is_empty());
    let mut paged = Vec::new();
    let mut after: Option<ShardId> = None;
    loop {
        let page = store.list(after, 1).await.expect("list paging");
        assert!(page.len() <= 1);
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        paged.extend(page);
    }
    assert_eq!(
        ours(paged),
        all,
        "paging one by one yields the full listing"
    );
    let last = *ids.last().expect("non-empty");
    assert!(ours(store.list(Some(last), 10).await.expect("list")).is_empty());

    // Stats count live shards and bytes.
    let mid = store.stats().await.expect("stats");
    assert_eq!(mid.shards, before.shards + 4);
    assert_eq!(
        mid.live_bytes,
        before.live_bytes + 777 + (1 << 20) + 1,
        "live bytes after overwrite"
    );

    // Merkle summary: the path from the root to the leaf holding our shards is consistent,
    // and the leaf lists them as stored.
    let leaf = check_merkle_path(store, &all).await;
    let p = partition_of(&sid(0, 0));
    assert_ne!(
        store.merkle_roots().await.expect("roots")[p as usize],
        roots_before[p as usize],
        "root of partition {p} changed by the puts"
    );

    // Deep scrub reads at least our shards and finds nothing wrong.
    let scrub = store.deep_scrub(0).await.expect("deep scrub");
    assert!(scrub.corrupt.is_empty(), "{scrub:?}");
    assert!(scrub.shards_checked >= 4);
    let our_bytes: u64 = 777 + (1 << 20) + 1;
    assert!(scrub.bytes_read >= our_bytes);

    // Delete: gone from get, list and stats; deleting again is fine.
    store.delete(sid(0, 2)).await.expect("delete");
    match store.get(sid(0, 2)).await {
        Err(DatanodeError::NotFound(id)) => assert_eq!(id, sid(0, 2)),
        other => panic!("get of a deleted shard: expected NotFound, got {other:?}"),
    }
    store.delete(sid(0, 2)).await.expect("second delete");
    let ids: Vec<ShardId> = ours(store.list(None, usize::MAX).await.expect("list"))
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, vec![sid(0, 0), sid(0, 1), sid(1, 0)]);
    let after_delete = store.stats().await.expect("stats");
    assert_eq!(after_delete.shards, before.shards + 3);
    assert_eq!(after_delete.live_bytes, before.live_bytes + 777 + 1);

    // Put after delete revives the shard.
    let revived = payload(5, 4096);
    store.put(sid(0, 2), revived.clone()).await.expect("re-put");
    assert_eq!(store.get(sid(0, 2)).await.expect("get"), revived);
    let relisted = ours(store.list(None, usize::MAX).await.expect("list"));
    let leaf_now = check_merkle_path(store, &relisted).await;
    assert_ne!(leaf_now, leaf, "leaf hash follows a changed shard");

    // Clean up so the suite can be rerun on the same store.
    for id in [sid(0, 0), sid(0, 1), sid(0, 2), sid(1, 0)] {
        store.delete(id).await.expect("cleanup delete");
    }
    let end = store.stats().await.expect("stats");
    assert_eq!(end.shards, before.shards);
    assert_eq!(end.live_bytes, before.live_bytes);
    assert!(ours(store.list(None, usize::MAX).await.expect("list")).is_empty());
    assert_eq!(
        store.merkle_roots().await.expect("roots"),
        roots_before,
        "roots return to where they were once our shards are gone"
    );
}

/// Walks from the root of our partition to the leaf holding the shards of
/// [`CONFORMANCE_OBJECT`], checking each node against its parent's view of it and its own
/// children or entries; the leaf must list exactly `ours` among our object's shards. Returns
/// the leaf's hash.
async fn check_merkle_path(store: &dyn ShardStore, ours: &[ShardInfo]) -> crate::merkle::Hash {
    let id_bytes = sid(0, 0).to_bytes();
    let p = partition_of(&sid(0, 0));
    let roots = store.merkle_roots().await.expect("roots");
    let mut expected_hash = roots[p as usize];
    let mut path = NodePath::ROOT;
    for level in 0..=DEPTH {
        let node = store.merkle_node(p, path).await.expect("merkle node");
        assert_eq!(node.hash(), expected_hash, "node {p}/{path} vs its parent");
        match node {
            MerkleNode::Inner { hash, children } => {
                assert!(level < DEPTH, "inner node at leaf depth {p}/{path}");
                assert_eq!(hash, node_hash(&children), "inner {p}/{path}");
                let b = id_bytes[1 + level / 2];
                let nibble = if level % 2 == 0 { b >> 4 } else { b & 0x0f };
                expected_hash = children[nibble as usize];
                path = path.child(nibble).expect("child of an inner node");
            }
            MerkleNode::Leaf { hash, entries } => {
                assert_eq!(level, DEPTH, "leaf above leaf depth {p}/{path}");
                assert_eq!(hash, leaf_hash(&entries), "leaf {p}/{path}");
                let mine: Vec<ShardInfo> = entries
                    .into_iter()
                    .filter(|e| e.id.object == CONFORMANCE_OBJECT)
                    .collect();
                assert_eq!(mine, ours, "leaf {p}/{path} lists our shards as stored");
                return hash;
            }
        }
    }
    panic!("no leaf below partition {p} after {DEPTH} levels");
}
