//! The typed cluster-state commands through `apply`, their encodings, and the values older
//! builds stored.

use std::collections::BTreeMap;

use super::*;
use crate::access_keys::{self, ROOT_KEY};
use crate::command::{apply, RawKv};
use crate::records::{AccessKeyRecord, BucketConfigKind, BucketRecord};
use crate::scrub_report::{DamageKind, Finding};
use crate::{keys, Command, VersioningState};

/// A plain in-memory state that `apply`'s writes go into.
#[derive(Default)]
struct Mem(BTreeMap<(&'static str, Vec<u8>), Vec<u8>>);

impl StateView for Mem {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.0.get(&(cf.name(), key.to_vec())).cloned())
    }
    fn any_with_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<bool> {
        Ok(!self.scan_prefix(cf, prefix)?.is_empty())
    }
    fn scan_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<Vec<RawKv>> {
        Ok(self
            .0
            .iter()
            .filter(|((n, k), _)| *n == cf.name() && k.starts_with(prefix))
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect())
    }
}

impl Mem {
    fn run(&mut self, cmd: Command) -> Result<()> {
        let (writes, _) = apply(&*self, &cmd)?;
        for w in writes {
            match w.value {
                Some(v) => self.0.insert((w.cf.name(), w.key), v),
                None => self.0.remove(&(w.cf.name(), w.key)),
            };
        }
        Ok(())
    }

    fn sys(&self, key: &str) -> Option<Vec<u8>> {
        self.0.get(&("sys", key.as_bytes().to_vec())).cloned()
    }

    fn set_raw(&mut self, key: &str, value: &[u8]) {
        self.0
            .insert(("sys", key.as_bytes().to_vec()), value.to_vec());
    }
}

fn invalid(r: Result<()>) -> String {
    match r {
        Err(MetadataError::InvalidArgument(m)) => m,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

fn key(ak: &str) -> AccessKeyRecord {
    AccessKeyRecord {
        access_key: ak.into(),
        secret_key: format!("secret-of-{ak}"),
        name: ak.to_lowercase(),
        created_ms: 1,
    }
}

#[test]
fn typed_values_are_stored_versioned_and_read_back() {
    let mut m = Mem::default();
    // Datanodes 0..=7 registered: only registered ones can be drained.
    for index in 0..8 {
        m.run(Command::RegisterDatanode(crate::registry::DatanodeRecord {
            id: 0,
            node: 1,
            index,
            addr: format!("h:{index}"),
            zone: String::new(),
            registered_ms: 0,
        }))
        .unwrap();
    }
    let drained = BTreeSet::from([NodeId(3), NodeId(7)]);
    m.run(Command::SetDrained {
        nodes: drained.iter().copied().chain([NodeId(42)]).collect(),
    })
    .unwrap();
    let raw = m.sys(DRAINED_KEY).unwrap();
    assert_eq!(
        raw[0],
        crate::records::VALUE_FORMAT_V1,
        "a format byte first"
    );
    assert_eq!(decode_drained(&raw).unwrap(), drained);

    let ec = EcScheme { data: 8, parity: 3 };
    m.run(Command::SetEcScheme(ec)).unwrap();
    assert_eq!(decode_ec(&m.sys(EC_KEY).unwrap()).unwrap(), ec);
    let m0 = invalid(m.run(Command::SetEcScheme(EcScheme { data: 0, parity: 2 })));
    assert!(m0.contains("data shard"), "{m0}");
    assert_eq!(decode_ec(&m.sys(EC_KEY).unwrap()).unwrap(), ec);

    let node = NodeRecord {
        id: 2,
        roles: "meta,data".into(),
        cluster_addr: "10.0.0.2:7000".into(),
        admin_addr: "10.0.0.2:9001".into(),
        s3_addr: None,
        zone: "a".into(),
        started_ms: 5,
    };
    m.run(Command::RecordNode(node.clone())).unwrap();
    assert_eq!(
        decode_node(&m.sys(&node_key(2)).unwrap()).unwrap(),
        node,
        "under {}",
        node_key(2)
    );
}

#[test]
fn the_first_cluster_ca_stays() {
    let mut m = Mem::default();
    let ca = |n: &str| ClusterCaRecord {
        cert_pem: format!("cert {n}"),
        key_pem: format!("key {n}"),
    };
    m.run(Command::SetClusterCa(ca("one"))).unwrap();
    m.run(Command::SetClusterCa(ca("two"))).unwrap();
    assert_eq!(decode_ca(&m.sys(CA_KEY).unwrap()).unwrap(), ca("one"));
}

#[test]
fn the_scrub_history_keeps_summaries_of_the_latest_runs() {
    let mut m = Mem::default();
    for id in 0..(SCRUB_HISTORY_LEN as u64 + 3) {
        let mut r = ScrubReport {
            id,
            ..ScrubReport::default()
        };
        r.found.add(DamageKind::Missing, id);
        r.findings.push(Finding {
            kind: DamageKind::Missing,
            node: 1,
            shard: "o/0/1".into(),
            object: None,
            repaired: false,
        });
        m.run(Command::RecordScrub(Box::new(r))).unwrap();
    }
    let h = decode_scrub_history(&m.sys(SCRUB_HISTORY_KEY).unwrap()).unwrap();
    assert_eq!(h.len(), SCRUB_HISTORY_LEN);
    assert_eq!(h.first().unwrap().id, 3, "the oldest went");
    let last = h.last().unwrap();
    assert_eq!(last.id, SCRUB_HISTORY_LEN as u64 + 2);
    assert_eq!(last.found.missing, last.id);
    assert!(
        last.findings.is_empty() && last.findings_truncated,
        "{last:?}"
    );
}

#[test]
fn values_older_builds_stored_as_text_still_read() {
    assert_eq!(
        decode_drained(b"[4,1]").unwrap(),
        BTreeSet::from([NodeId(1), NodeId(4)])
    );
    assert_eq!(
        decode_ec(b"[4,2]").unwrap(),
        EcScheme { data: 4, parity: 2 }
    );
    let ca = decode_ca(br#"{"cert_pem":"C","key_pem":"K"}"#).unwrap();
    assert_eq!((ca.cert_pem.as_str(), ca.key_pem.as_str()), ("C", "K"));
    let n = decode_node(
        br#"{"id":3,"roles":"data","cluster_addr":"h:1","admin_addr":"h:2","s3_addr":"h:3","zone":"z","started_ms":9}"#,
    )
    .unwrap();
    assert_eq!((n.id, n.s3_addr.as_deref()), (3, Some("h:3")));
    let old_report = serde_json::to_vec(&vec![ScrubReport {
        id: 4,
        trigger: "cli".into(),
        ..ScrubReport::default()
    }])
    .unwrap();
    let h = decode_scrub_history(&old_report).unwrap();
    assert_eq!((h.len(), h[0].id, h[0].trigger.as_str()), (1, 4, "cli"));
    assert_eq!(
        access_keys::decode_root(Some(b"ROOTKEY")).unwrap(),
        Some("ROOTKEY".into())
    );
    assert_eq!(
        VersioningState::parse(Some(b"Enabled")).unwrap(),
        VersioningState::Enabled
    );
    assert_eq!(
        VersioningState::parse(Some(b"Suspended")).unwrap(),
        VersioningState::Suspended
    );
    // Text that is none of these is corrupt, not silently empty.
    assert!(matches!(
        decode_drained(b"not json"),
        Err(MetadataError::Corrupt(_))
    ));
    assert!(VersioningState::parse(Some(b"Maybe")).is_err());

    // A scrub recorded over an old (JSON) history keeps that history.
    let mut m = Mem::default();
    m.set_raw(SCRUB_HISTORY_KEY, &old_report);
    m.run(Command::RecordScrub(Box::default())).unwrap();
    let h = decode_scrub_history(&m.sys(SCRUB_HISTORY_KEY).unwrap()).unwrap();
    assert_eq!(h.iter().map(|r| r.id).collect::<Vec<_>>(), [4, 0]);
}

#[test]
fn set_sys_is_refused_for_keys_apply_keeps() {
    let mut m = Mem::default();
    let set = |k: &str| Command::SetSys {
        key: k.into(),
        value: b"x".to_vec(),
    };
    for k in [
        "gc-next-seq",
        "version-next-seq",
        "datanode-next-id",
        "datanode/00000001",
        "datanode-slot/1/0",
        ROOT_KEY,
        "access-key/deleted/BOB",
        "access-key/limits/BOB",
        DRAINED_KEY,
        EC_KEY,
        CA_KEY,
        "node/00000000000000000001",
        SCRUB_HISTORY_KEY,
        "orphan-barrier",
    ] {
        let msg = invalid(m.run(set(k)));
        assert!(msg.contains(k), "{msg}");
        assert_eq!(m.sys(k), None, "{k} not written");
    }
    // Other keys (what old logs wrote besides cluster state) still apply.
    m.run(set("fixture/a")).unwrap();
    assert_eq!(m.sys("fixture/a"), Some(b"x".to_vec()));
}

#[test]
fn the_root_key_is_designated_once() {
    let mut m = Mem::default();
    let designate = |ak: &str| Command::DesignateRootKey {
        access_key: ak.into(),
    };
    let msg = invalid(m.run(designate("ROOT")));
    assert!(msg.contains("does not exist"), "{msg}");
    m.run(Command::PutAccessKey(key("ROOT"))).unwrap();
    m.run(Command::PutAccessKey(key("OTHER"))).unwrap();
    m.run(designate("ROOT")).unwrap();
    let root = |m: &Mem| access_keys::decode_root(m.sys(ROOT_KEY).as_deref()).unwrap();
    assert_eq!(root(&m).as_deref(), Some("ROOT"));
    assert!(m.sys(ROOT_KEY).unwrap()[0] < b' ', "the versioned encoding");
    m.run(designate("ROOT")).unwrap();
    let msg = invalid(m.run(designate("OTHER")));
    assert!(msg.contains("rotate-root"), "{msg}");
    assert_eq!(root(&m).as_deref(), Some("ROOT"));

    // A root key stored by an older build (its bytes) is the root key too.
    let mut m = Mem::default();
    m.run(Command::PutAccessKey(key("OLD"))).unwrap();
    m.set_raw(ROOT_KEY, b"OLD");
    m.run(designate("OLD")).unwrap();
    invalid(m.run(Command::DeleteAccessKey {
        access_key: "OLD".into(),
        at_ms: 1,
    }));
}

#[test]
fn versioning_state_is_a_typed_value() {
    let mut m = Mem::default();
    let b = cairn_types::BucketName::new("vbucket").unwrap();
    let set = |state| Command::SetVersioning {
        bucket: b.clone(),
        state,
    };
    assert!(matches!(
        m.run(set(VersioningState::Enabled)),
        Err(MetadataError::NoSuchBucket)
    ));
    m.run(Command::CreateBucket(BucketRecord {
        name: b.clone(),
        created_ms: 0,
        owner: "AK".into(),
    }))
    .unwrap();
    let stored = |m: &Mem| {
        m.0.get(&(
            "bucket_config",
            keys::bucket_config(&b, BucketConfigKind::Versioning),
        ))
        .cloned()
    };
    m.run(set(VersioningState::Unversioned)).unwrap();
    assert_eq!(stored(&m), None);
    m.run(set(VersioningState::Enabled)).unwrap();
    let raw = stored(&m).unwrap();
    assert_ne!(raw, b"Enabled");
    assert_eq!(
        VersioningState::parse(Some(&raw)).unwrap(),
        VersioningState::Enabled
    );
    m.run(set(VersioningState::Suspended)).unwrap();
    assert_eq!(
        VersioningState::parse(stored(&m).as_deref()).unwrap(),
        VersioningState::Suspended
    );
    assert!(matches!(
        m.run(set(VersioningState::Unversioned)),
        Err(MetadataError::IllegalVersioning(_))
    ));
}

#[test]
fn new_commands_are_appended_after_the_old_ones() {
    // postcard encodes the variant index: the old commands keep theirs (SetAccessKeyLimits
    // is the 22nd, index 21), the typed ones follow.
    let idx = |c: &Command| postcard::to_allocvec(c).unwrap()[0];
    assert_eq!(
        idx(&Command::SetAccessKeyLimits {
            access_key: String::new(),
            ops_per_sec: Default::default(),
            bytes_per_sec: Default::default(),
        }),
        21
    );
    assert_eq!(
        idx(&Command::SetSys {
            key: String::new(),
            value: Vec::new()
        }),
        11
    );
    assert_eq!(
        idx(&Command::SetDrained {
            nodes: BTreeSet::new()
        }),
        22
    );
    assert_eq!(idx(&Command::Barrier), 28);
    assert_eq!(
        idx(&Command::SetAccessKeyPolicy {
            access_key: String::new(),
            policy: None
        }),
        30
    );
    assert_eq!(idx(&Command::SetPublicAccessBlock(None)), 31);
    assert_eq!(
        idx(&Command::SetObjectLegalHold {
            bucket: cairn_types::BucketName::new("b-b").unwrap(),
            key: cairn_types::ObjectKey::new("k").unwrap(),
            version: crate::VersionSel::Latest,
            on: false,
        }),
        34
    );
}

#[test]
fn key_policies_follow_their_key() {
    let mut m = Mem::default();
    let set = |p: Option<&str>| Command::SetAccessKeyPolicy {
        access_key: "AK1".into(),
        policy: p.map(str::to_string),
    };
    assert!(invalid(m.run(set(Some("{}")))).contains("does not exist"));
    m.run(Command::PutAccessKey(key("AK1"))).unwrap();
    m.run(set(Some(r#"{"Statement":[]}"#))).unwrap();
    let k = access_keys::policy_key("AK1");
    assert_eq!(m.sys(&k).as_deref(), Some(&br#"{"Statement":[]}"#[..]));
    m.run(set(None)).unwrap();
    assert_eq!(m.sys(&k), None);
    m.run(set(Some("{}"))).unwrap();
    m.run(Command::DeleteAccessKey {
        access_key: "AK1".into(),
        at_ms: 5,
    })
    .unwrap();
    assert_eq!(m.sys(&k), None, "deleting a key drops its policy");
    assert!(invalid(m.run(set(Some("{}")))).contains("was deleted"));
}

#[test]
fn the_cluster_public_access_block_is_a_typed_value() {
    let mut m = Mem::default();
    let pab = PublicAccessBlock {
        block_public_policy: true,
        ..Default::default()
    };
    m.run(Command::SetPublicAccessBlock(Some(pab))).unwrap();
    let raw = m.sys(PUBLIC_ACCESS_BLOCK_KEY).unwrap();
    assert!(raw[0] < 0x09, "versioned encoding");
    assert_eq!(
        decode_value::<PublicAccessBlock>(&raw, "pab", |_| None).unwrap(),
        pab
    );
    assert!(owned_by_apply(PUBLIC_ACCESS_BLOCK_KEY));
    m.run(Command::SetPublicAccessBlock(None)).unwrap();
    assert_eq!(m.sys(PUBLIC_ACCESS_BLOCK_KEY), None);
}
