//! The GC queue, system values, the datanode registry, the scan of shard references and
//! moving shards.

use cairn_types::NodeId;

use super::fixtures::*;
use super::{case, check, check_eq, check_err, Case, CaseResult};
use crate::data_refs::{DataAddress, DataTable, ShardMove};
use crate::records::ObjectData;
use crate::registry::{self, DatanodeRecord};
use crate::{Command, CommandOutput, MetadataStore};

pub fn cases() -> Vec<Case> {
    vec![
        case!(system::gc_queue_in_order_until_done),
        case!(system::sys_values_and_prefix_scans),
        case!(system::datanode_registry_keeps_ids),
        case!(system::a_removed_datanode_leaves_the_registry_and_its_slot_takes_a_new_id),
        case!(system::storage_classes_are_set_replaced_and_removed),
        case!(system::master_and_kms_keys_are_added_once_and_data_keys_rewrapped),
        case!(system::scan_data_pages_every_reference),
        case!(system::relocate_moves_shards_where_still_referenced),
    ]
}

pub async fn gc_queue_in_order_until_done(s: &dyn MetadataStore) -> CaseResult {
    let b = with_bucket(s).await?;
    check!(
        s.gc_pending(10).await?.is_empty(),
        "a fresh store has GC work"
    );
    for i in 1..=3u128 {
        put(
            s,
            &b,
            &format!("k{i}"),
            object("e", striped(i, &[i as u32])),
        )
        .await?;
        delete(s, &b, &format!("k{i}"), "").await?;
    }
    let first = s.gc_pending(2).await?;
    check_eq!(first.len(), 2);
    check!(
        first[0].0 < first[1].0,
        "GC entries out of order: {first:?}"
    );
    check_eq!(first[0].1.shards, shards_of(1, &[1]));
    check_eq!(first[1].1.shards, shards_of(2, &[2]));
    s.apply(Command::GcDone {
        seqs: first.iter().map(|(seq, _)| *seq).collect(),
    })
    .await?;
    let rest = s.gc_pending(10).await?;
    check_eq!(rest.len(), 1);
    check_eq!(rest[0].1.shards, shards_of(3, &[3]));
    check!(rest[0].0 > first[1].0, "sequence numbers went back");
    // A later entry still gets a fresh number after the queue emptied.
    s.apply(Command::GcDone {
        seqs: vec![rest[0].0],
    })
    .await?;
    put(s, &b, "k9", object("e", striped(9, &[9]))).await?;
    delete(s, &b, "k9", "").await?;
    let last = s.gc_pending(10).await?;
    check_eq!(last.len(), 1);
    check!(last[0].0 > rest[0].0, "a sequence number was reused");
    Ok(())
}

pub async fn sys_values_and_prefix_scans(s: &dyn MetadataStore) -> CaseResult {
    check_eq!(s.get_sys("cfg/a").await?, None);
    for (k, v) in [("cfg/b", "2"), ("cfg/a", "1"), ("cfh", "x"), ("cf", "y")] {
        s.apply(Command::SetSys {
            key: k.into(),
            value: v.as_bytes().to_vec(),
        })
        .await?;
    }
    check_eq!(s.get_sys("cfg/a").await?, Some(b"1".to_vec()));
    let scan = s.scan_sys("cfg/").await?;
    check_eq!(
        scan,
        [
            ("cfg/a".to_string(), b"1".to_vec()),
            ("cfg/b".to_string(), b"2".to_vec())
        ]
    );
    let keys: Vec<String> = s
        .scan_sys("cf")
        .await?
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    check_eq!(keys, ["cf", "cfg/a", "cfg/b", "cfh"]);
    s.apply(Command::SetSys {
        key: "cfg/a".into(),
        value: b"3".to_vec(),
    })
    .await?;
    check_eq!(s.get_sys("cfg/a").await?, Some(b"3".to_vec()));
    Ok(())
}

fn datanode(node: u64, index: u32, addr: &str) -> DatanodeRecord {
    DatanodeRecord {
        id: 999,
        node,
        index,
        addr: addr.into(),
        zone: "z1".into(),
        registered_ms: 8,
    }
}

pub async fn datanode_registry_keeps_ids(s: &dyn MetadataStore) -> CaseResult {
    let reg = |r| Command::RegisterDatanode(r);
    check_eq!(
        s.apply(reg(datanode(1, 0, "h1:1"))).await?,
        CommandOutput::Registered(0)
    );
    check_eq!(
        s.apply(reg(datanode(1, 1, "h1:2"))).await?,
        CommandOutput::Registered(1)
    );
    check_eq!(
        s.apply(reg(datanode(2, 0, "h2:1"))).await?,
        CommandOutput::Registered(2)
    );
    // The same directory again keeps its id and takes its new address.
    check_eq!(
        s.apply(reg(datanode(1, 1, "h1:9"))).await?,
        CommandOutput::Registered(1)
    );
    let all = registry::decode_all(&s.scan_sys(registry::PREFIX).await?)?;
    let seen: Vec<(u32, &str)> = all.iter().map(|r| (r.id, r.addr.as_str())).collect();
    check_eq!(seen, [(0, "h1:1"), (1, "h1:9"), (2, "h2:1")]);
    Ok(())
}

pub async fn storage_classes_are_set_replaced_and_removed(s: &dyn MetadataStore) -> CaseResult {
    use crate::storage_class;
    use cairn_types::EcScheme;
    let set = |name: &str, ec: Option<EcScheme>| Command::SetStorageClass {
        name: name.into(),
        ec,
    };
    check!(
        storage_class::defined(s).await?.is_empty(),
        "a fresh store has storage classes"
    );
    let (a, b) = (
        EcScheme { data: 4, parity: 4 },
        EcScheme { data: 3, parity: 1 },
    );
    s.apply(set("GLACIER", Some(EcScheme { data: 2, parity: 2 })))
        .await?;
    s.apply(set("GLACIER", Some(a))).await?;
    s.apply(set("REDUCED_REDUNDANCY", Some(b))).await?;
    check_err!(
        s.apply(set("STANDARD", Some(a))).await,
        crate::MetadataError::InvalidArgument(_)
    );
    check_err!(
        s.apply(set("ARCHIVE", Some(a))).await,
        crate::MetadataError::InvalidArgument(_)
    );
    let got: Vec<(String, EcScheme)> = storage_class::defined(s).await?.into_iter().collect();
    check_eq!(
        got,
        [
            ("GLACIER".to_string(), a),
            ("REDUCED_REDUNDANCY".to_string(), b)
        ]
    );
    s.apply(set("GLACIER", None)).await?;
    check_eq!(storage_class::defined(s).await?.len(), 1);
    // Only its own command writes under its prefix.
    check_err!(
        s.apply(Command::SetSys {
            key: format!("{}GLACIER", storage_class::PREFIX),
            value: vec![1],
        })
        .await,
        crate::MetadataError::InvalidArgument(_)
    );
    Ok(())
}

pub async fn a_removed_datanode_leaves_the_registry_and_its_slot_takes_a_new_id(
    s: &dyn MetadataStore,
) -> CaseResult {
    let reg = |r| Command::RegisterDatanode(r);
    for i in 0..3 {
        s.apply(reg(datanode(1, i, "h1:1"))).await?;
    }
    // Only a registered, drained datanode can be removed.
    check_err!(
        s.apply(Command::RemoveDatanode { id: 7 }).await,
        crate::MetadataError::InvalidArgument(_)
    );
    check_err!(
        s.apply(Command::RemoveDatanode { id: 1 }).await,
        crate::MetadataError::InvalidArgument(_)
    );
    let drained = [NodeId(1), NodeId(2)].into_iter().collect();
    s.apply(Command::SetDrained { nodes: drained }).await?;
    check_eq!(
        s.apply(Command::RemoveDatanode { id: 1 }).await?,
        CommandOutput::Done
    );
    let ids: Vec<u32> = registry::decode_all(&s.scan_sys(registry::PREFIX).await?)?
        .iter()
        .map(|r| r.id)
        .collect();
    check_eq!(ids, [0, 2]);
    check_eq!(
        crate::cluster_state::drained(s).await?,
        [NodeId(2)].into_iter().collect()
    );
    let removed = registry::decode_removed(&s.scan_sys(registry::REMOVED_PREFIX).await?)?;
    check_eq!(
        removed,
        [registry::RemovedSlot {
            node: 1,
            index: 1,
            id: 1
        }]
    );
    // A (wiped) directory registering in that slot is a new datanode; the marker goes.
    check_eq!(
        s.apply(reg(datanode(1, 1, "h1:5"))).await?,
        CommandOutput::Registered(3)
    );
    check!(
        s.scan_sys(registry::REMOVED_PREFIX).await?.is_empty(),
        "the removed marker stays"
    );
    Ok(())
}

pub async fn scan_data_pages_every_reference(s: &dyn MetadataStore) -> CaseResult {
    let b = with_bucket(s).await?;
    put(s, &b, "inline", inline("i")).await?;
    put(s, &b, "o1", object("e", striped(1, &[1]))).await?;
    put(s, &b, "o2", object("e", striped(2, &[1]))).await?;
    create_upload(s, &b, "up", "u1").await?;
    put_part(
        s,
        &b,
        "up",
        "u1",
        part(1, 10, &md5ish('a'), striped(3, &[2])),
    )
    .await?;
    put_part(
        s,
        &b,
        "up",
        "u1",
        part(2, 10, &md5ish('b'), ObjectData::Inline(vec![])),
    )
    .await?;
    set_versioning(s, &b, Some("Enabled")).await?;
    // Enabling copied o1 and o2 (and the inline one) into versions.
    let full = s.scan_data(None, 100).await?;
    let tables: Vec<DataTable> = full.entries.iter().map(|e| e.address.table).collect();
    check_eq!(
        tables,
        [
            DataTable::Objects,
            DataTable::Objects,
            DataTable::Versions,
            DataTable::Versions,
            DataTable::Parts
        ]
    );
    check_eq!(full.next, None);
    check_eq!(
        full.entries[0].address.bucket_and_key(),
        ("conformance".to_string(), "o1".to_string())
    );
    let mut seen = Vec::new();
    let mut after: Option<DataAddress> = None;
    loop {
        let page = s.scan_data(after.clone(), 2).await?;
        check!(page.entries.len() <= 2, "a page over its limit");
        seen.extend(page.entries.iter().map(|e| e.address.clone()));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
        check!(seen.len() <= full.entries.len(), "scan does not end");
    }
    let want: Vec<DataAddress> = full.entries.iter().map(|e| e.address.clone()).collect();
    check_eq!(seen, want);
    Ok(())
}

pub async fn relocate_moves_shards_where_still_referenced(s: &dyn MetadataStore) -> CaseResult {
    let b = with_bucket(s).await?;
    put(s, &b, "k", object("e", striped(7, &[1, 2]))).await?;
    let at: Vec<DataAddress> = s
        .scan_data(None, 10)
        .await?
        .entries
        .into_iter()
        .map(|e| e.address)
        .collect();
    let mv = |from, to| ShardMove {
        stripe: 0,
        shard: 1,
        from: NodeId(from),
        to: NodeId(to),
    };
    let relocate = |m: ShardMove, object| Command::RelocateShards {
        at: at.clone(),
        object: cairn_types::ObjectId(object),
        moves: vec![m],
    };
    check_eq!(
        s.apply(relocate(mv(2, 5), 7)).await?,
        CommandOutput::Relocated(1)
    );
    check_eq!(
        s.get_object(&b, &key("k")).await?.map(|o| o.data),
        Some(striped(7, &[1, 5]))
    );
    // The shard is no longer on node 2, and another body is not touched.
    check_eq!(
        s.apply(relocate(mv(2, 6), 7)).await?,
        CommandOutput::Relocated(0)
    );
    check_eq!(
        s.apply(relocate(mv(5, 6), 8)).await?,
        CommandOutput::Relocated(0)
    );
    check_eq!(
        s.get_object(&b, &key("k")).await?.map(|o| o.data),
        Some(striped(7, &[1, 5]))
    );
    Ok(())
}

pub async fn master_and_kms_keys_are_added_once_and_data_keys_rewrapped(
    s: &dyn MetadataStore,
) -> CaseResult {
    use crate::master_keys::{self, RewrapProgress, StoredMasterKey};
    use crate::records::{EncryptedData, SealedKey};
    let key = |id: u32| {
        Command::AddMasterKey(StoredMasterKey {
            id,
            sealed: vec![id as u8; 60],
        })
    };
    check!(
        master_keys::stored(s).await?.is_empty(),
        "a fresh store has master keys"
    );
    // Only the next id: not 2 first, not 1 twice.
    check_err!(s.apply(key(2)).await, crate::MetadataError::Conflict(_));
    s.apply(key(1)).await?;
    check_err!(s.apply(key(1)).await, crate::MetadataError::Conflict(_));
    s.apply(key(2)).await?;
    let ids: Vec<u32> = master_keys::stored(s).await?.iter().map(|k| k.id).collect();
    check_eq!(ids, [1, 2]);
    // A sealed inline body under key 1 is listed by the data scan and re-wrapped in place.
    let b = with_bucket(s).await?;
    let old = SealedKey::Managed {
        master: 1,
        wrapped: vec![1; 60],
    };
    let new = SealedKey::Managed {
        master: 2,
        wrapped: vec![2; 60],
    };
    let sealed = |k: &SealedKey| {
        ObjectData::Encrypted(Box::new(EncryptedData {
            key: k.clone(),
            chunk_size: 64,
            plain_size: 3,
            data: ObjectData::Inline(vec![0; 19]),
        }))
    };
    put(s, &b, "k", object("e", sealed(&old))).await?;
    let page = s.scan_data(None, 10).await?;
    check_eq!(page.entries.len(), 1);
    let at = page.entries[0].address.clone();
    let out = s
        .apply(Command::RewrapKeys {
            at: at.clone(),
            keys: vec![(old.clone(), new.clone())],
        })
        .await?;
    check!(
        matches!(out, CommandOutput::Relocated(1)),
        "rewrap answered {out:?}"
    );
    let rec = s
        .get_object(&b, &cairn_types::ObjectKey::new("k").expect("key"))
        .await?
        .expect("object");
    check_eq!(rec.data, sealed(&new));
    // A key that is no longer there is left alone.
    let out = s
        .apply(Command::RewrapKeys {
            at,
            keys: vec![(old, new)],
        })
        .await?;
    check!(
        matches!(out, CommandOutput::Relocated(0)),
        "rewrap answered {out:?}"
    );
    let p = RewrapProgress {
        target: 2,
        passes: 1,
        done: true,
        ..Default::default()
    };
    s.apply(Command::SetRewrapProgress(Some(p.clone()))).await?;
    check_eq!(master_keys::progress(s).await?, Some(p));
    // KMS keys: one per name, a taken name keeps its key, listed by name.
    let kms = |name: &str, b: u8| {
        Command::AddKmsKey(master_keys::StoredKmsKey {
            name: name.into(),
            sealed: vec![b; 60],
            created_ms: 1,
        })
    };
    s.apply(kms("testkey-2", 2)).await?;
    s.apply(kms("testkey-1", 1)).await?;
    check_err!(
        s.apply(kms("testkey-1", 9)).await,
        crate::MetadataError::Conflict(_)
    );
    let stored = master_keys::kms_stored(s).await?;
    let names: Vec<(&str, u8)> = stored
        .iter()
        .map(|k| (k.name.as_str(), k.sealed[0]))
        .collect();
    check_eq!(names, [("testkey-1", 1), ("testkey-2", 2)]);
    Ok(())
}
