//! The codec's laws (see the crate docs), checked for random schemes, stripe lengths and loss
//! patterns, against a naive reference for the data layout.

use bytes::Bytes;
use cairn_erasure::{ErasureError, StripeCodec};
use cairn_types::EcScheme;
use proptest::prelude::*;

/// A scheme, a stripe and a permutation of the shard indices (the first few are "lost").
fn case() -> impl Strategy<Value = (u8, u8, Vec<u8>, Vec<usize>)> {
    (1u8..=8, 0u8..=4).prop_flat_map(|(k, m)| {
        let n = usize::from(k) + usize::from(m);
        (
            Just(k),
            Just(m),
            prop_oneof![
                // Small lengths, where padding and k ∤ len dominate.
                proptest::collection::vec(any::<u8>(), 0..=64),
                proptest::collection::vec(any::<u8>(), 0..=100_000),
            ],
            Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
        )
    })
}

fn codec(k: u8, m: u8) -> StripeCodec {
    StripeCodec::new(EcScheme { data: k, parity: m }).expect("valid scheme")
}

/// Naive data shards: the stripe, zero-padded to k·L, cut into k pieces.
fn naive_data_shards(data: &[u8], k: usize) -> Vec<Vec<u8>> {
    let len = data.len().div_ceil(k);
    let mut padded = data.to_vec();
    padded.resize(k * len, 0);
    (0..k)
        .map(|i| padded[i * len..(i + 1) * len].to_vec())
        .collect()
}

fn lose(shards: &[Bytes], lost: &[usize]) -> Vec<Option<Bytes>> {
    let mut slots: Vec<Option<Bytes>> = shards.iter().cloned().map(Some).collect();
    for &i in lost {
        slots[i] = None;
    }
    slots
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn shape_matches_the_naive_layout((k, m, data, _order) in case()) {
        let c = codec(k, m);
        let (k, m) = (usize::from(k), usize::from(m));
        let shards = c.encode(&data);
        prop_assert_eq!(shards.len(), k + m);
        let len = data.len().div_ceil(k);
        prop_assert_eq!(c.shard_len(data.len()), len);
        prop_assert!(shards.iter().all(|s| s.len() == len));
        for (got, want) in shards.iter().zip(naive_data_shards(&data, k)) {
            prop_assert_eq!(&got[..], &want[..]);
        }
        // Deterministic: the same stripe always gives the same shards.
        prop_assert_eq!(c.encode(&data), shards);
    }

    #[test]
    fn zero_copy_encoding_equals_encoding((k, m, data, _order) in case(), whole in any::<bool>()) {
        let c = codec(k, m);
        // Half the cases cut the stripe to a multiple of k, where data shards are slices.
        let cut = if whole { data.len() - data.len() % usize::from(k) } else { data.len() };
        let data = bytes::Bytes::from(data[..cut].to_vec());
        let shards = c.encode_bytes(data.clone());
        prop_assert_eq!(&shards, &c.encode(&data));
        if whole && !data.is_empty() {
            // No copy: the first data shard is the stripe's own memory.
            prop_assert_eq!(shards[0].as_ptr(), data.as_ptr());
        }
    }

    #[test]
    fn any_k_shards_decode_and_rebuild(
        (k, m, data, order) in case(),
        lost_count in 0usize..=4,
    ) {
        let c = codec(k, m);
        let lost = &order[..lost_count.min(usize::from(m))];
        let shards = c.encode(&data);

        let mut slots = lose(&shards, lost);
        let got = c.decode(&mut slots, data.len()).expect("at most m shards lost");
        prop_assert_eq!(&got[..], &data[..]);
        // Lost data shards come back; parity slots are left as they were.
        for (i, (slot, shard)) in slots.iter().zip(&shards).enumerate() {
            if i < usize::from(k) || !lost.contains(&i) {
                prop_assert_eq!(slot.as_ref(), Some(shard), "slot {}", i);
            } else {
                prop_assert!(slot.is_none());
            }
        }

        let slots = lose(&shards, lost);
        for &i in lost {
            prop_assert_eq!(&c.reconstruct_shard(&slots, i).expect("rebuild")[..], &shards[i][..]);
        }
        // Rebuilding a shard that is present treats its own slot as lost.
        if lost.len() < usize::from(m) {
            if let Some(&i) = order.get(lost.len()) {
                prop_assert_eq!(&c.reconstruct_shard(&slots, i).expect("rebuild")[..], &shards[i][..]);
            }
        }
    }

    #[test]
    fn more_than_m_lost_is_an_error((k, m, data, order) in case(), extra in 1usize..=3) {
        let c = codec(k, m);
        let n = usize::from(k) + usize::from(m);
        let lost = &order[..(usize::from(m) + extra).min(n)];
        let shards = c.encode(&data);
        let mut slots = lose(&shards, lost);
        let is_too_few = matches!(
            c.decode(&mut slots, data.len()),
            Err(ErasureError::TooFewShards { .. })
        );
        prop_assert!(is_too_few);
        // Rebuilding one of the lost shards from the rest fails the same way.
        let is_too_few = matches!(
            c.reconstruct_shard(&slots, lost[0]),
            Err(ErasureError::TooFewShards { .. })
        );
        prop_assert!(is_too_few);
    }

    #[test]
    fn wrong_shard_length_is_an_error(
        (k, m, data, order) in case(),
        grow in any::<bool>(),
    ) {
        let c = codec(k, m);
        let shards = c.encode(&data);
        let victim = order[0];
        let mut slots = lose(&shards, &[]);
        let bad = if grow || shards[victim].is_empty() {
            let mut v = shards[victim].to_vec();
            v.push(7);
            Bytes::from(v)
        } else {
            shards[victim].slice(1..)
        };
        slots[victim] = Some(bad);
        let is_wrong_len = matches!(
            c.decode(&mut slots, data.len()),
            Err(ErasureError::WrongShardLength { .. })
        );
        prop_assert!(is_wrong_len);
        // reconstruct_shard infers the length from the others, so it needs two that disagree:
        // rebuilding a shard other than the bad one must refuse.
        if let Some(&other) = order.get(1) {
            let is_wrong_len = matches!(
                c.reconstruct_shard(&slots, other),
                Err(ErasureError::WrongShardLength { .. })
            );
            // With only two shards in all, the bad one may be the only other present shard.
            prop_assert!(is_wrong_len || usize::from(k) + usize::from(m) == 2);
        }
    }
}
