//! The stripe reader GET and repair share: only checked shards are used, a source may
//! refuse a datanode, and a rebuild writes nothing back unless every shard matches metadata.

use super::*;

/// Six datanodes, 4+2: one striped body of one full stripe; returns its record.
async fn one_stripe() -> (Fixture, ObjectId, StripeLoc) {
    let f = fixture_with(6, EcScheme { data: 4, parity: 2 }).await;
    let data: Vec<u8> = (0..STRIPE).map(|i| (i * 13 % 251) as u8).collect();
    let w = f.svc.write_body(body(&data, 400)).await.unwrap();
    let ObjectData::Striped { id, stripes, .. } = w.data else {
        panic!("striped")
    };
    (f, id, stripes[0].clone())
}

fn data() -> Vec<u8> {
    (0..STRIPE).map(|i| (i * 13 % 251) as u8).collect()
}

/// The view, with datanodes in `refused` not to be asked.
struct Refusing {
    view: Arc<MembershipView>,
    refused: Vec<NodeId>,
}

impl ShardSource for Refusing {
    fn store(&self, node: NodeId) -> Option<Arc<dyn ShardStore>> {
        (!self.refused.contains(&node))
            .then(|| self.view.store(node))
            .flatten()
    }
}

fn store_of(f: &Fixture, node: NodeId) -> &Arc<MemStore> {
    &f.stores[node.0 as usize]
}

#[tokio::test]
async fn a_range_reads_only_its_data_shards_and_missing_ones_are_decoded_from_parity() {
    let (f, id, loc) = one_stripe().await;
    let ec = EcScheme { data: 4, parity: 2 };
    let view = f.svc.membership().view();
    let mut r = StripeReader::new(id, 0, ec, loc.clone()).unwrap();
    // Shards are 250 bytes: 300..600 lies in data shards 1 and 2.
    let wanted = r.data_shards_of(&(300..600));
    assert_eq!(wanted, [1, 2]);
    assert_eq!(r.fetch(view.as_ref(), &wanted).await, 0);
    assert_eq!(r.slice(300..600).unwrap(), data()[300..600]);
    assert_eq!(r.bytes_read(), 500);
    for (i, l) in loc.shards.iter().enumerate() {
        let gets = store_of(&f, l.node).gets.lock().unwrap().len();
        assert_eq!(gets, usize::from(i == 1 || i == 2), "shard {i}");
    }

    // Shard 1 corrupt and shard 4's datanode refused: both count as missing, the refused
    // one is never asked, and the stripe decodes from the four left.
    let bad = loc.shards[1].node;
    let sid = ShardId::new(id, 0, 1);
    store_of(&f, bad)
        .shards
        .lock()
        .unwrap()
        .insert(sid, Bytes::from(vec![0u8; 250]));
    let refused = loc.shards[4].node;
    let src = Refusing {
        view,
        refused: vec![refused],
    };
    let before = store_of(&f, refused).gets.lock().unwrap().len();
    let mut r = StripeReader::new(id, 0, ec, loc.clone()).unwrap();
    assert_eq!(r.fetch(&src, &[1, 2]).await, 1);
    assert!(r.slice(300..600).is_none());
    assert_eq!(r.fetch_all(&src).await, 1);
    assert_eq!(r.missing(), [1, 4]);
    assert_eq!(r.available(), 4);
    assert_eq!(store_of(&f, refused).gets.lock().unwrap().len(), before);
    assert_eq!(r.decode().unwrap(), data());
    // A rebuild fills every shard with what metadata says it holds.
    r.rebuild().unwrap();
    for (i, l) in loc.shards.iter().enumerate() {
        assert_eq!(cairn_types::crc32c(r.shard(i).unwrap()), l.crc32c);
    }
    // One more missing is one too many.
    let src = Refusing {
        view: f.svc.membership().view(),
        refused: vec![refused, loc.shards[5].node],
    };
    let mut r = StripeReader::new(id, 0, ec, loc).unwrap();
    r.fetch_all(&src).await;
    assert!(matches!(
        r.decode(),
        Err(ObjectsError::TooFewShards {
            available: 3,
            needed: 4
        })
    ));
    assert!(r.rebuild().is_err());
}

#[tokio::test]
async fn a_rebuild_that_does_not_match_metadata_is_refused() {
    let (f, id, mut loc) = one_stripe().await;
    let ec = EcScheme { data: 4, parity: 2 };
    // Metadata expects other bytes for shard 5 than the stripe's data encodes to.
    loc.shards[5].crc32c ^= 1;
    let mut r = StripeReader::new(id, 0, ec, loc.clone()).unwrap();
    r.fetch(f.svc.membership().view().as_ref(), &[0, 1, 2, 3])
        .await;
    assert_eq!(r.decode().unwrap(), data());
    let e = r.rebuild().unwrap_err();
    assert!(e.to_string().contains("rebuilt shard 5"), "{e}");
    assert!(r.shard(5).is_none(), "nothing rebuilt is kept");
    // Impossible layouts are refused before anything is read.
    let mut short = loc.clone();
    short.shards.truncate(3);
    assert!(StripeReader::new(id, 0, ec, short).is_err());
    let mut uneven = loc;
    uneven.shards[2].len += 1;
    assert!(StripeReader::new(id, 0, ec, uneven).is_err());
}

/// Repair's path: k intact shards fetched (data shards first, one more when one of them is
/// missing), only the lost shards rebuilt, each checked against metadata.
#[tokio::test]
async fn a_repair_reads_k_shards_and_rebuilds_only_the_lost_ones() {
    let (f, id, loc) = one_stripe().await;
    let ec = EcScheme { data: 4, parity: 2 };
    let gets = |f: &Fixture| -> Vec<usize> {
        loc.shards
            .iter()
            .map(|l| store_of(f, l.node).gets.lock().unwrap().len())
            .collect()
    };
    // Lost: data shard 1 and parity shard 5.
    let before = gets(&f);
    let view = f.svc.membership().view();
    let mut r = StripeReader::new(id, 0, ec, loc.clone()).unwrap();
    r.fetch_for_rebuild(view.as_ref(), &[1, 5], &[]).await;
    let asked: Vec<usize> = gets(&f).iter().zip(&before).map(|(a, b)| a - b).collect();
    assert_eq!(
        asked,
        [1, 0, 1, 1, 1, 0],
        "only k shards, never the lost ones"
    );
    r.rebuild_shards(&[1, 5]).unwrap();
    for i in [1, 5] {
        assert_eq!(
            cairn_types::crc32c(r.shard(i).unwrap()),
            loc.shards[i].crc32c
        );
    }
    // Shard 0's datanode refuses: one more shard is fetched in its place.
    let src = Refusing {
        view: view.clone(),
        refused: vec![loc.shards[0].node],
    };
    let before = gets(&f);
    let mut r = StripeReader::new(id, 0, ec, loc.clone()).unwrap();
    r.fetch_for_rebuild(&src, &[2], &[]).await;
    let asked: Vec<usize> = gets(&f).iter().zip(&before).map(|(a, b)| a - b).collect();
    assert_eq!(asked, [0, 1, 0, 1, 1, 1]);
    r.rebuild_shards(&[2]).unwrap();
    assert_eq!(
        cairn_types::crc32c(r.shard(2).unwrap()),
        loc.shards[2].crc32c
    );
    // A rebuilt shard that does not match metadata is refused and not kept.
    let mut wrong = loc.clone();
    wrong.shards[4].crc32c ^= 1;
    let mut r = StripeReader::new(id, 0, ec, wrong).unwrap();
    r.fetch_for_rebuild(view.as_ref(), &[4], &[]).await;
    assert!(r.rebuild_shards(&[4]).is_err());
    assert!(r.shard(4).is_none());
}
