use bytes::Bytes;
use cairn_types::EcScheme;

use crate::{ErasureError, StripeCodec, MAX_SHARDS};

fn codec(data: u8, parity: u8) -> StripeCodec {
    StripeCodec::new(EcScheme { data, parity }).expect("valid scheme")
}

fn some(shards: &[Bytes]) -> Vec<Option<Bytes>> {
    shards.iter().cloned().map(Some).collect()
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
}

#[test]
fn rejects_invalid_schemes() {
    for (data, parity) in [(0, 0), (0, 2), (200, 57), (255, 255)] {
        let err = StripeCodec::new(EcScheme { data, parity }).unwrap_err();
        assert!(matches!(err, ErasureError::InvalidScheme { .. }), "{err}");
    }
    for (data, parity) in [(1, 0), (255, 0), (200, 56), (128, 128), (1, 255)] {
        let c = codec(data, parity);
        assert_eq!(c.total_shards(), usize::from(data) + usize::from(parity));
        assert!(c.total_shards() <= MAX_SHARDS);
    }
}

#[test]
fn shard_layout_is_the_padded_stripe() {
    let c = codec(4, 2);
    let data = pattern(10);
    let shards = c.encode(&data);
    assert_eq!(shards.len(), 6);
    assert_eq!(c.shard_len(10), 3);
    assert!(shards.iter().all(|s| s.len() == 3));
    assert_eq!(&shards[0][..], &data[0..3]);
    assert_eq!(&shards[2][..], &data[6..9]);
    assert_eq!(&shards[3][..], &[data[9], 0, 0]);
}

#[test]
fn empty_stripe() {
    let c = codec(3, 2);
    let shards = c.encode(&[]);
    assert_eq!(shards.len(), 5);
    assert!(shards.iter().all(Bytes::is_empty));
    let mut slots = some(&shards);
    slots[0] = None;
    slots[4] = None;
    assert_eq!(c.decode(&mut slots, 0).unwrap(), Bytes::new());
    assert_eq!(
        slots[0],
        Some(Bytes::new()),
        "decode fills lost data shards"
    );
    assert_eq!(c.reconstruct_shard(&slots, 0).unwrap(), Bytes::new());
    slots[0] = None;
    slots[1] = None;
    assert!(matches!(
        c.decode(&mut slots, 0),
        Err(ErasureError::TooFewShards {
            present: 2,
            needed: 3
        })
    ));
}

#[test]
fn decode_fills_lost_data_shards_and_keeps_parity() {
    let c = codec(4, 2);
    let data = pattern(4 * 1000 + 3);
    let shards = c.encode(&data);
    let mut slots = some(&shards);
    slots[1] = None;
    slots[3] = None;
    let got = c.decode(&mut slots, data.len()).unwrap();
    assert_eq!(&got[..], &data[..]);
    for (slot, shard) in slots.iter().zip(&shards) {
        assert_eq!(slot.as_ref(), Some(shard));
    }
}

#[test]
fn decode_leaves_lost_parity_alone() {
    let c = codec(2, 2);
    let data = pattern(64);
    let shards = c.encode(&data);
    let mut slots = some(&shards);
    slots[3] = None;
    assert_eq!(&c.decode(&mut slots, 64).unwrap()[..], &data[..]);
    assert!(slots[3].is_none());
}

#[test]
fn single_data_shard_is_replication() {
    let c = codec(1, 2);
    let data = pattern(33);
    let shards = c.encode(&data);
    assert!(shards.iter().all(|s| s[..] == data[..]));
    let mut slots = vec![None, None, Some(shards[2].clone())];
    assert_eq!(&c.decode(&mut slots, 33).unwrap()[..], &data[..]);
}

#[test]
fn no_parity_is_splitting() {
    let c = codec(3, 0);
    let data = pattern(7);
    let shards = c.encode(&data);
    assert_eq!(shards.concat()[..7], data[..]);
    let mut slots = some(&shards);
    assert_eq!(&c.decode(&mut slots, 7).unwrap()[..], &data[..]);
    slots[2] = None;
    assert!(matches!(
        c.decode(&mut slots, 7),
        Err(ErasureError::TooFewShards { .. })
    ));
    let all = some(&shards);
    assert!(matches!(
        c.reconstruct_shard(&all, 0),
        Err(ErasureError::TooFewShards { .. })
    ));
}

#[test]
fn reconstruct_shard_ignores_the_slot_it_rebuilds() {
    let c = codec(3, 2);
    let data = pattern(301);
    let shards = c.encode(&data);
    for index in 0..5 {
        let mut slots = some(&shards);
        // A corrupt copy of the shard itself must not be used.
        slots[index] = Some(Bytes::from(vec![0xAA; 7]));
        slots[(index + 1) % 5] = None;
        assert_eq!(c.reconstruct_shard(&slots, index).unwrap(), shards[index]);
    }
}

#[test]
fn bad_inputs_are_errors() {
    let c = codec(4, 2);
    let data = pattern(400);
    let shards = c.encode(&data);

    let mut short = some(&shards[..5]);
    assert_eq!(
        c.decode(&mut short, 400),
        Err(ErasureError::WrongShardCount {
            expected: 6,
            got: 5
        })
    );
    assert!(matches!(
        c.reconstruct_shard(&short, 0),
        Err(ErasureError::WrongShardCount { .. })
    ));

    let mut slots = some(&shards);
    assert_eq!(
        c.decode(&mut slots, 401),
        Err(ErasureError::WrongShardLength {
            index: 0,
            expected: 101,
            got: 100
        })
    );
    slots[4] = Some(shards[4].slice(1..));
    assert!(matches!(
        c.decode(&mut slots, 400),
        Err(ErasureError::WrongShardLength { index: 4, .. })
    ));
    assert!(matches!(
        c.reconstruct_shard(&slots, 0),
        Err(ErasureError::WrongShardLength { .. })
    ));

    let slots = some(&shards);
    assert_eq!(
        c.reconstruct_shard(&slots, 6),
        Err(ErasureError::ShardIndexOutOfRange { index: 6, total: 6 })
    );
}

#[test]
fn too_few_shards_is_retryable() {
    let c = codec(2, 1);
    let shards = c.encode(&pattern(10));
    let mut slots = vec![Some(shards[0].clone()), None, None];
    let err = c.decode(&mut slots, 10).unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(!ErasureError::WrongShardCount {
        expected: 1,
        got: 2
    }
    .is_retryable());
}

#[test]
fn shared_parity_is_not_modified() {
    // The parity Bytes handed to decode is shared with `shards`; decode must copy, not write.
    let c = codec(2, 2);
    let data = pattern(1 << 16);
    let shards = c.encode(&data);
    let before: Vec<Vec<u8>> = shards.iter().map(|s| s.to_vec()).collect();
    let mut slots = some(&shards);
    slots[0] = None;
    slots[1] = None;
    assert_eq!(&c.decode(&mut slots, data.len()).unwrap()[..], &data[..]);
    for (s, b) in shards.iter().zip(&before) {
        assert_eq!(&s[..], &b[..]);
    }
}
