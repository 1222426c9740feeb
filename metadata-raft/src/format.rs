//! The versioned envelope of everything Raft keeps on disk: log entries (`raft_log`), the
//! values of `raft_meta` (vote, committed and purged log ids, applied state, membership,
//! the stored snapshot) and the bytes of a snapshot (`SnapshotDump`, which also travel to
//! followers). This module alone encodes and decodes them.
//!
//! An enveloped value is [`MAGIC`] (ten `0xFF` bytes), one version byte, then the postcard
//! body of that version. [`CURRENT`] is written; decoding accepts it and the legacy form
//! (version 0: the bare postcard body, as written before the envelope existed), and refuses
//! a version it does not know with an error that says so.
//!
//! Why the legacy form is told apart without ambiguity: every legacy value starts with
//! either a postcard varint (a `u64` term of a `LogId`, `Vote` or `Entry`, or the `usize`
//! length of a `SnapshotDump`'s list) or a one-byte `Option` tag (`Option<LogId>`,
//! `StoredMembership`, the stored snapshot's `SnapshotMeta`). Postcard writes a `u64` varint
//! in at most ten bytes and the tenth, when there is one, has its high bit clear; an
//! `Option` tag is `0` or `1`. So no legacy value can begin with ten `0xFF` bytes (the
//! tests below also check that postcard refuses to read the magic as any of these types).
//! A one-byte prefix would not do: a varint can start with any byte.
//!
//! Versions: 1 has the same body as 0 (the types in `TypeConfig` today). When a stored
//! type changes (e.g. a `Command` or the `ObjectRecord` it embeds), add version 2, make the
//! decoder read version-1 bodies with the old types and convert them, write version 2, and
//! add a fixture of version-1 bytes (see `tests/format_fixture.rs`).

use serde::de::DeserializeOwned;
use serde::Serialize;

use cairn_metadata::{MetadataError, Result};

/// What an enveloped value starts with.
pub(crate) const MAGIC: [u8; 10] = [0xFF; 10];

/// The version written.
pub(crate) const CURRENT: u8 = 1;

/// `value` in the current envelope.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&MAGIC);
    out.push(CURRENT);
    postcard::to_extend(value, out)
        .map_err(|e| MetadataError::Engine(format!("encoding a Raft value: {e}")))
}

/// Decodes a value written in the current envelope or in the legacy (version 0) form;
/// `what` names it in errors.
pub(crate) fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T> {
    let (version, body) = match bytes.strip_prefix(&MAGIC[..]) {
        None => (0, bytes),
        Some(rest) => match rest.split_first() {
            Some((v, body)) => (*v, body),
            None => {
                return Err(MetadataError::Corrupt(format!(
                    "{what}: a Raft format envelope without a version"
                )))
            }
        },
    };
    match version {
        // Version 1 wraps the body of version 0 unchanged.
        0 | CURRENT => postcard::from_bytes(body).map_err(|e| {
            MetadataError::Corrupt(format!("{what} (Raft format version {version}): {e}"))
        }),
        v => Err(MetadataError::Engine(format!(
            "{what} is in Raft format version {v}, newer than this build reads \
             (up to {CURRENT}): it was written by a newer Cairn; upgrade this node"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload, LogId, Membership, StoredMembership, Vote};

    use super::*;
    use crate::state_machine::SnapshotDump;
    use crate::{BasicNode, CommandBatch, Entry, NodeId};
    use cairn_metadata::Command;

    fn log_id(term: u64, index: u64) -> LogId<NodeId> {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    fn entry(term: u64) -> Entry {
        Entry {
            log_id: log_id(term, 42),
            payload: EntryPayload::Normal(CommandBatch(vec![Command::SetSys {
                key: "k".into(),
                value: b"v".to_vec(),
            }])),
        }
    }

    fn membership() -> StoredMembership<NodeId, BasicNode> {
        let nodes = std::collections::BTreeMap::from([(1, BasicNode::new("a:1"))]);
        StoredMembership::new(Some(log_id(1, 1)), Membership::new(vec![[1].into()], nodes))
    }

    fn dump() -> SnapshotDump {
        SnapshotDump {
            cfs: vec![("sys".into(), vec![(b"k".to_vec(), b"v".to_vec())])],
        }
    }

    fn same<T: Serialize>(a: &T, b: &T) -> bool {
        postcard::to_allocvec(a).unwrap() == postcard::to_allocvec(b).unwrap()
    }

    #[test]
    fn values_round_trip_in_the_current_envelope() {
        // Terms whose varints start with 0xFF and run long, as well as small ones.
        for term in [0, 1, 127, 255, u64::MAX >> 1, u64::MAX] {
            let e = entry(term);
            let bytes = encode(&e).unwrap();
            assert_eq!(&bytes[..10], &MAGIC);
            assert_eq!(bytes[10], CURRENT);
            let back: Entry = decode("entry", &bytes).unwrap();
            assert!(same(&back, &e));
            let vote = Vote::new_committed(term, 3);
            assert_eq!(
                decode::<Vote<NodeId>>("vote", &encode(&vote).unwrap()).unwrap(),
                vote
            );
        }
        let committed = Some(log_id(2, 9));
        let back: Option<LogId<NodeId>> =
            decode("committed", &encode(&committed).unwrap()).unwrap();
        assert_eq!(back, committed);
        let m = membership();
        let back: StoredMembership<NodeId, BasicNode> =
            decode("membership", &encode(&m).unwrap()).unwrap();
        assert_eq!(back, m);
        let back: SnapshotDump = decode("snapshot", &encode(&dump()).unwrap()).unwrap();
        assert_eq!(back.cfs, dump().cfs);
    }

    #[test]
    fn legacy_bare_postcard_still_decodes() {
        for term in [0, 1, 127, 255, u64::MAX] {
            let e = entry(term);
            let back: Entry = decode("entry", &postcard::to_allocvec(&e).unwrap()).unwrap();
            assert!(same(&back, &e));
            let vote = Vote::new(term, 2);
            let back: Vote<NodeId> =
                decode("vote", &postcard::to_allocvec(&vote).unwrap()).unwrap();
            assert_eq!(back, vote);
        }
        let none: Option<LogId<NodeId>> = None;
        let back: Option<LogId<NodeId>> =
            decode("committed", &postcard::to_allocvec(&none).unwrap()).unwrap();
        assert_eq!(back, None);
        let back: SnapshotDump =
            decode("snapshot", &postcard::to_allocvec(&dump()).unwrap()).unwrap();
        assert_eq!(back.cfs, dump().cfs);
    }

    /// The ground of the legacy detection: postcard reads none of the legacy types from
    /// bytes that start with the magic, whatever follows.
    #[test]
    fn no_legacy_value_can_start_with_the_magic() {
        for tail in [&[][..], &[0u8][..], &[1, 0, 0, 0, 0][..], &[0x7f; 64][..]] {
            let bytes: Vec<u8> = MAGIC.iter().chain(tail).copied().collect();
            assert!(postcard::from_bytes::<Entry>(&bytes).is_err());
            assert!(postcard::from_bytes::<Vote<NodeId>>(&bytes).is_err());
            assert!(postcard::from_bytes::<LogId<NodeId>>(&bytes).is_err());
            assert!(postcard::from_bytes::<Option<LogId<NodeId>>>(&bytes).is_err());
            assert!(postcard::from_bytes::<StoredMembership<NodeId, BasicNode>>(&bytes).is_err());
            assert!(postcard::from_bytes::<SnapshotDump>(&bytes).is_err());
        }
        // And the longest legacy varint prefix postcard writes is not the magic.
        let max = postcard::to_allocvec(&Vote::<NodeId>::new(u64::MAX, u64::MAX)).unwrap();
        assert_ne!(&max[..10], &MAGIC);
    }

    #[test]
    fn an_unknown_version_is_a_clear_error() {
        let mut bytes = encode(&Vote::<NodeId>::new(1, 1)).unwrap();
        bytes[10] = CURRENT + 1;
        let err = decode::<Vote<NodeId>>("the vote", &bytes)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("the vote is in Raft format version 2"),
            "{err}"
        );
        assert!(err.contains("newer"), "{err}");
    }

    #[test]
    fn damaged_bytes_are_errors_not_panics() {
        let err = decode::<Entry>("entry", &MAGIC).unwrap_err().to_string();
        assert!(err.contains("without a version"), "{err}");
        let mut cut = encode(&entry(5)).unwrap();
        cut.truncate(cut.len() - 3);
        assert!(decode::<Entry>("entry", &cut).is_err());
        assert!(decode::<Entry>("entry", &[]).is_err());
        assert!(decode::<Vote<NodeId>>("vote", &[0xFF; 5]).is_err());
    }
}
