//! Encrypted bodies through the data path: shards and inline records hold no plaintext,
//! any range reads back exactly, a damaged shard is decoded from parity and damaged
//! ciphertext is refused, and SSE-C bodies open only with their key.

use proptest::prelude::*;

use super::*;
use crate::{CustomerKey, Protection};

const MARK: &[u8] = b"PLAINTEXT-MARK";

fn marked(len: usize) -> Vec<u8> {
    let mut v: Vec<u8> = (0..len).map(|i| (i * 7 + i / 1000) as u8).collect();
    for at in (0..len.saturating_sub(MARK.len())).step_by(500) {
        v[at..at + MARK.len()].copy_from_slice(MARK);
    }
    v
}

fn has_mark(b: &[u8]) -> bool {
    b.windows(MARK.len()).any(|w| w == MARK)
}

fn with_keys(f: &Fixture) {
    f.svc.set_keyring(cairn_sse::Keyring::new([
        cairn_sse::MasterKey::generate(1).unwrap()
    ]));
}

async fn write(f: &Fixture, data: &[u8], prot: &Protection) -> ObjectRecord {
    let ec = f.svc.scheme();
    let w = f
        .svc
        .write_body_protected(body(data, 777), ec, prot)
        .await
        .unwrap();
    assert_eq!(w.size, data.len() as u64);
    assert_eq!(w.md5_hex, hex::encode(Md5::digest(data)));
    record(w)
}

fn customer(byte: u8) -> Arc<CustomerKey> {
    use base64::Engine;
    let raw = [byte; 32];
    let b64 = base64::engine::general_purpose::STANDARD;
    Arc::new(
        CustomerKey::from_headers(
            Some("AES256"),
            Some(&b64.encode(raw)),
            Some(&b64.encode(Md5::digest(raw))),
        )
        .unwrap()
        .unwrap(),
    )
}

#[tokio::test]
async fn sealed_bodies_leave_no_plaintext_in_shards_or_records() {
    let f = fixture_with(6, EcScheme { data: 4, parity: 2 }).await;
    with_keys(&f);
    let data = marked(150_000);
    let rec = write(&f, &data, &Protection::Managed).await;
    assert_eq!(rec.data.encryption(), cairn_metadata::Encryption::Managed);
    for s in &f.stores {
        for b in s.shards.lock().unwrap().values() {
            assert!(!has_mark(b), "a shard holds plaintext");
        }
    }
    assert_eq!(read_all(&f.svc, &rec, 0..150_000).await, data);
    // Small bodies stay inline, sealed.
    let small = marked(60);
    let rec = write(&f, &small, &Protection::Managed).await;
    let ObjectData::Encrypted(e) = &rec.data else {
        panic!("not encrypted: {:?}", rec.data)
    };
    let ObjectData::Inline(sealed) = &e.data else {
        panic!("not inline")
    };
    assert!(!has_mark(sealed));
    assert_eq!(read_all(&f.svc, &rec, 0..60).await, small);
    // The control: a plain body's shards do hold the mark.
    let rec = write(&f, &data, &Protection::Plain).await;
    assert_eq!(rec.data.encryption(), cairn_metadata::Encryption::None);
    let plain_shards = f
        .stores
        .iter()
        .any(|s| s.shards.lock().unwrap().values().any(|b| has_mark(b)));
    assert!(plain_shards);
}

#[tokio::test]
async fn a_flipped_ciphertext_byte_is_decoded_from_parity_or_refused_never_served() {
    let f = fixture_with(6, EcScheme { data: 4, parity: 2 }).await;
    with_keys(&f);
    let data = marked(20_000);
    let rec = write(&f, &data, &Protection::Managed).await;
    // A shard changed on disk (its checksum no longer matches): read from parity.
    {
        let mut shards = f.stores[2].shards.lock().unwrap();
        let id = *shards.keys().nth(3).unwrap();
        let mut b = shards[&id].to_vec();
        b[5] ^= 0x40;
        shards.insert(id, Bytes::from(b));
    }
    assert_eq!(read_all(&f.svc, &rec, 0..20_000).await, data);
    // Ciphertext changed where no checksum sees it (an inline record): an error, no bytes.
    let small = marked(70);
    let mut rec = write(&f, &small, &Protection::Managed).await;
    if let ObjectData::Encrypted(e) = &mut rec.data {
        if let ObjectData::Inline(b) = &mut e.data {
            b[3] ^= 1;
        }
    }
    let got: Vec<_> = f.svc.read(&rec, 0..70).collect().await;
    assert!(
        got.iter().any(|r| r.is_err()),
        "damaged ciphertext was served"
    );
    assert!(got
        .iter()
        .all(|r| r.as_ref().map_or(true, |b| b.is_empty())));
}

#[tokio::test]
async fn customer_keyed_bodies_open_only_with_their_key() {
    let f = fixture_with(6, EcScheme { data: 4, parity: 2 }).await;
    with_keys(&f);
    let data = marked(9_000);
    let key = customer(1);
    let rec = write(&f, &data, &Protection::Customer(key.clone())).await;
    assert_eq!(rec.data.encryption(), cairn_metadata::Encryption::Customer);
    assert!(matches!(
        f.svc.check_key(&rec.data, None),
        Err(ObjectsError::CustomerKeyRequired)
    ));
    assert!(matches!(
        f.svc.check_key(&rec.data, Some(&customer(2))),
        Err(ObjectsError::CustomerKeyMismatch)
    ));
    f.svc.check_key(&rec.data, Some(&key)).unwrap();
    let got: Vec<Bytes> = f
        .svc
        .read_with(&rec, 100..8_000, Some(key))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(got.concat(), data[100..8_000]);
    // A key given for a body that is not SSE-C is refused.
    let plain = write(&f, &data, &Protection::Managed).await;
    assert!(matches!(
        f.svc.check_key(&plain.data, Some(&customer(1))),
        Err(ObjectsError::CustomerKeyNotApplicable)
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn any_range_of_a_sealed_striped_body_reads_back_exactly(
        len in 1usize..200_000,
        a in 0usize..200_000,
        b in 0usize..200_000,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let f = fixture_with(6, EcScheme { data: 4, parity: 2 }).await;
            with_keys(&f);
            let data = marked(len);
            let rec = write(&f, &data, &Protection::Managed).await;
            let (lo, hi) = (a.min(b) % len, (a.max(b) % len).max(a.min(b) % len) + 1);
            let got = read_all(&f.svc, &rec, lo as u64..hi as u64).await;
            assert_eq!(got, data[lo..hi].to_vec(), "range {lo}..{hi} of {len}");
        });
    }
}

fn managed_put(f: &Fixture, key: &str) -> PutObject {
    PutObject {
        bucket: f.bucket.clone(),
        key: ObjectKey::new(key).unwrap(),
        metadata: Default::default(),
        tags: Default::default(),
        acl: cairn_metadata::ObjectAcl {
            owner: "o".into(),
            grants: Vec::new(),
        },
        condition: cairn_metadata::WriteCondition::Always,
        size: None,
        protection: Protection::Managed,
    }
}

async fn stored_master(f: &Fixture, key: &str) -> u32 {
    let rec = f
        .svc
        .metadata()
        .get_object(&f.bucket, &ObjectKey::new(key).unwrap())
        .await
        .unwrap()
        .unwrap();
    match &rec.data {
        ObjectData::Encrypted(e) => match e.key {
            cairn_metadata::SealedKey::Managed { master, .. } => master,
            _ => panic!("not SSE-S3"),
        },
        other => panic!("not encrypted: {other:?}"),
    }
}

#[tokio::test]
async fn rotation_rewraps_every_data_key_and_resumes_where_it_stopped() {
    let f = fixture_with(6, EcScheme { data: 4, parity: 2 }).await;
    // The first master key is made at the first load, and found again at the next.
    let kek = cairn_sse::Kek::derive("secret");
    assert_eq!(f.svc.load_keyring(kek.clone()).await.unwrap(), vec![1]);
    assert_eq!(f.svc.load_keyring(kek).await.unwrap(), vec![1]);
    let mut bodies = Vec::new();
    for i in 0..600 {
        // Inline and striped bodies alike.
        let data = marked(if i % 2 == 0 { 40 } else { 3000 + i });
        let key = format!("k{i:04}");
        f.svc
            .put_object(managed_put(&f, &key), body(&data, 500), || None)
            .await
            .unwrap();
        bodies.push((key, data));
    }
    assert_eq!(stored_master(&f, "k0000").await, 1);
    assert_eq!(f.svc.start_rotation().await.unwrap(), 2);
    // New writes use key 2 at once.
    let late = marked(5000);
    f.svc
        .put_object(managed_put(&f, "late"), body(&late, 999), || None)
        .await
        .unwrap();
    assert_eq!(stored_master(&f, "late").await, 2);
    // Stopped after the first page (as a killed node would): the saved place is kept...
    let mut p = f.svc.rewrap_progress().await.unwrap().unwrap();
    let first = f.svc.metadata().scan_data(None, 256).await.unwrap();
    p.after = first.next.clone();
    p.scanned = 256;
    f.svc
        .metadata()
        .apply(Command::SetRewrapProgress(Some(p)))
        .await
        .unwrap();
    // ...and the run carries on from it; the first page is done by the second pass.
    let seen = std::sync::Mutex::new(Vec::new());
    let done = f
        .svc
        .run_rewrap(|p| seen.lock().unwrap().push(p.clone()))
        .await
        .unwrap()
        .unwrap();
    assert!(done.done && done.target == 2);
    assert!(done.passes >= 2, "{done:?}");
    assert_eq!(done.rewrapped, 600, "{done:?}");
    assert!(seen.lock().unwrap().len() > 2);
    for (key, data) in &bodies {
        assert_eq!(stored_master(&f, key).await, 2, "{key}");
        let rec = f
            .svc
            .metadata()
            .get_object(&f.bucket, &ObjectKey::new(key).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&read_all(&f.svc, &rec, 0..rec.size).await, data, "{key}");
    }
    // Nothing left: running again does nothing.
    let again = f.svc.run_rewrap(|_| {}).await.unwrap().unwrap();
    assert_eq!(again.rewrapped, 600);
}
