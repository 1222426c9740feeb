//! Every erasure-coding layout Cairn recommends (2+1, 4+2, 8+4) survives the loss or
//! corruption of any `m` of its datanodes, for bodies around the stripe boundaries: checked
//! through the real write and read paths (placement, shard checksums, degraded reads).

use proptest::prelude::*;

use super::*;

const LAYOUTS: [(u8, u8); 3] = [(2, 1), (4, 2), (8, 4)];

/// Body sizes: the edges named by the codec's contract, then anything up to five stripes.
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(STRIPE - 1),
        Just(STRIPE),
        Just(STRIPE + 1),
        0..5 * STRIPE,
    ]
}

/// How a node's shards are damaged.
#[derive(Debug, Clone, Copy)]
enum Damage {
    /// Every shard gone (a wiped disk).
    Lost,
    /// One byte of every shard flipped (silent corruption; only the checksum can tell).
    Flipped,
    /// Every shard cut short (a torn write).
    Truncated,
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        Just(Damage::Lost),
        Just(Damage::Flipped),
        Just(Damage::Truncated)
    ]
}

fn apply_damage(store: &MemStore, how: Damage) {
    let mut shards = store.shards.lock().unwrap();
    match how {
        Damage::Lost => shards.clear(),
        Damage::Flipped => {
            for v in shards.values_mut() {
                let mut b = v.to_vec();
                if !b.is_empty() {
                    let at = b.len() / 2;
                    b[at] ^= 0x5a;
                }
                *v = Bytes::from(b);
            }
        }
        Damage::Truncated => {
            for v in shards.values_mut() {
                *v = v.slice(..v.len() / 2);
            }
        }
    }
}

async fn check_layout(
    k: u8,
    m: u8,
    size: usize,
    victims: Vec<(usize, Damage)>,
) -> Result<(), TestCaseError> {
    let n = u32::from(k) + u32::from(m);
    // Inline threshold 0: even a 1-byte body goes through the codec.
    let f = fixture_inline(n, EcScheme { data: k, parity: m }, 0).await;
    let data: Vec<u8> = (0..size).map(|i| (i * 131 % 251) as u8).collect();
    let w = f.svc.write_body(body(&data, 377)).await.unwrap();
    prop_assert_eq!(w.size, size as u64);
    let rec = record(w);
    let stripes = size.div_ceil(STRIPE);
    prop_assert_eq!(shard_count(&f), stripes * n as usize);

    // Damage m distinct nodes (the strategy may repeat one; the set is what counts).
    let mut drawn = BTreeMap::new();
    for (v, how) in victims {
        drawn.entry(v % n as usize).or_insert(how);
    }
    let mut hit: BTreeMap<usize, Damage> = drawn.into_iter().take(usize::from(m)).collect();
    for (&i, &how) in &hit {
        apply_damage(&f.stores[i], how);
    }
    prop_assert_eq!(read_all(&f.svc, &rec, 0..size as u64).await, data.clone());
    if size > 2 {
        let r = 1..size as u64 - 1;
        prop_assert_eq!(
            read_all(&f.svc, &rec, r.clone()).await,
            &data[r.start as usize..r.end as usize]
        );
    }
    // One more damaged node than parity: wherever a needed shard is gone that is an
    // error; a read that still succeeds (it needed only surviving data shards) must be exact.
    // Every node damaged: always an error.
    if stripes > 0 {
        for i in 0..n as usize {
            if hit.len() > usize::from(m) {
                break;
            }
            hit.entry(i).or_insert_with(|| {
                apply_damage(&f.stores[i], Damage::Lost);
                Damage::Lost
            });
        }
        let r: Vec<_> = f.svc.read(&rec, 0..size as u64).collect().await;
        if r.iter().all(|x| x.is_ok()) {
            let got: Vec<u8> = r.into_iter().flat_map(|x| x.unwrap().to_vec()).collect();
            prop_assert_eq!(got, data.clone());
        }
        for st in &f.stores {
            apply_damage(st, Damage::Lost);
        }
        let r: Vec<_> = f.svc.read(&rec, 0..size as u64).collect().await;
        prop_assert!(r.iter().any(|x| x.is_err()), "read {} parts", r.len());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_m_damaged_nodes_still_read_back(
        layout in 0..LAYOUTS.len(),
        size in size(),
        victims in proptest::collection::vec((0usize..64, damage()), 4),
    ) {
        let (k, m) = LAYOUTS[layout];
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(check_layout(k, m, size, victims))?;
    }
}

/// The edge sizes for every layout, deterministically, with every single-node loss pattern
/// widened to `m` consecutive nodes.
#[tokio::test]
async fn edge_sizes_for_every_layout() {
    for (k, m) in LAYOUTS {
        let n = usize::from(k) + usize::from(m);
        for size in [0, 1, STRIPE - 1, STRIPE, STRIPE + 1] {
            for first in 0..n {
                let victims = (0..usize::from(m))
                    .map(|j| ((first + j) % n, Damage::Flipped))
                    .collect();
                check_layout(k, m, size, victims).await.unwrap();
            }
        }
    }
}
