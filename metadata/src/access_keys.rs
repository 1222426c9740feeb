//! The lifecycle of access keys in the state machine: deleting a key (which leaves a
//! tombstone), disabling and enabling one, and rotating the root key.
//!
//! A key's record ([`AccessKeyRecord`], column family `keys`) keeps its first shape: records
//! and the `PutAccessKey` commands in Raft logs and snapshots are postcard, which is not
//! self-describing, so a new field would make every stored record and every old log entry
//! undecodable. What changes during a key's life is kept beside the record, in `sys`, as
//! small JSON values ([`KeyMark`]):
//!
//! - `root-access-key` ([`ROOT_KEY`]): the access key that is the cluster's root key (its
//!   record is an ordinary one), in the versioned encoding of [`crate::cluster_state`]
//!   (older builds: the access key's bytes). [`Command::DesignateRootKey`] sets it once, on
//!   a new cluster; [`Command::RotateRootKey`] changes it;
//! - `access-key/disabled/<access key>` ([`DISABLED_PREFIX`]): the key exists but signs
//!   nothing until it is enabled again;
//! - `access-key/deleted/<access key>` ([`DELETED_PREFIX`]): the tombstone of a deleted key.
//!   Its record is gone; the tombstone stays for good, so a deleted access key id is never
//!   used again — buckets and objects still name it as their owner, and a new key under the
//!   same id would own them — and a node started with it in its configuration does not bring
//!   it back;
//! - `access-key/limits/<access key>`: the key's rate-limit override, kept by
//!   [`crate::key_limits`];
//! - `access-key/policy/<access key>` ([`POLICY_PREFIX`]): the key's identity policy, the
//!   JSON document as it was set ([`Command::SetAccessKeyPolicy`]; the S3 front end checks
//!   and evaluates it). A key without one keeps the rights of its ownership and ACL grants.
//!
//! The root key can be neither deleted nor disabled; [`Command::RotateRootKey`] makes a new
//! key the root, and the old one stays an ordinary key until it is deleted.
//!
//! [`Command::RotateRootKey`]: crate::Command::RotateRootKey
//! [`Command::SetAccessKeyPolicy`]: crate::Command::SetAccessKeyPolicy
//! [`Command::DesignateRootKey`]: crate::Command::DesignateRootKey

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::keys::Cf;
use crate::records::{decode, encode, AccessKeyRecord};
use crate::state::{del, put, StateView, Write};
use crate::MetadataError;

/// Key in `sys` of the cluster's root access key (the access key's bytes).
pub const ROOT_KEY: &str = "root-access-key";
/// Prefix in `sys` of the marks of disabled keys.
pub const DISABLED_PREFIX: &str = "access-key/disabled/";
/// Prefix in `sys` of the tombstones of deleted keys.
pub const DELETED_PREFIX: &str = "access-key/deleted/";

/// Prefix in `sys` of the keys' rate-limit overrides (kept by [`crate::key_limits`]).
pub const LIMITS_PREFIX: &str = "access-key/limits/";

/// The `sys` key of `access_key`'s rate-limit override.
pub fn limits_key(access_key: &str) -> String {
    format!("{LIMITS_PREFIX}{access_key}")
}

/// Prefix in `sys` of the keys' identity policies.
pub const POLICY_PREFIX: &str = "access-key/policy/";

/// The `sys` key of `access_key`'s identity policy.
pub fn policy_key(access_key: &str) -> String {
    format!("{POLICY_PREFIX}{access_key}")
}

/// When a key was disabled or deleted (and, for a deleted one, its name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyMark {
    pub at_ms: i64,
    #[serde(default)]
    pub name: String,
}

/// The `sys` key of `access_key`'s disabled mark.
pub fn disabled_key(access_key: &str) -> String {
    format!("{DISABLED_PREFIX}{access_key}")
}

/// The `sys` key of `access_key`'s tombstone.
pub fn deleted_key(access_key: &str) -> String {
    format!("{DELETED_PREFIX}{access_key}")
}

/// The access keys of a `sys` scan over [`DISABLED_PREFIX`] (or [`DELETED_PREFIX`]).
pub fn marked(entries: &[(String, Vec<u8>)], prefix: &str) -> BTreeSet<String> {
    entries
        .iter()
        .filter_map(|(k, _)| k.strip_prefix(prefix))
        .map(str::to_string)
        .collect()
}

/// The value stored under [`ROOT_KEY`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct RootKey {
    access_key: String,
}

impl crate::records::Stored for RootKey {}

/// The value to store under [`ROOT_KEY`] for `access_key`.
fn encode_root(access_key: &str) -> Vec<u8> {
    encode(&RootKey {
        access_key: access_key.to_string(),
    })
}

/// The root access key from the value stored under [`ROOT_KEY`] (older builds stored the
/// access key's bytes); `None` when none is designated.
pub fn decode_root(value: Option<&[u8]>) -> Result<Option<String>, MetadataError> {
    let Some(raw) = value else {
        return Ok(None);
    };
    let rec = crate::records::decode_value(raw, "root key", |r| {
        Some(RootKey {
            access_key: String::from_utf8_lossy(r).into_owned(),
        })
    })?;
    Ok(Some(rec.access_key).filter(|s| !s.is_empty()))
}

fn sys_get(view: &dyn StateView, key: &str) -> Result<Option<Vec<u8>>, MetadataError> {
    view.get(Cf::Sys, key.as_bytes())
}

fn root(view: &dyn StateView) -> Result<Option<String>, MetadataError> {
    decode_root(sys_get(view, ROOT_KEY)?.as_deref())
}

fn record(
    view: &dyn StateView,
    access_key: &str,
) -> Result<Option<AccessKeyRecord>, MetadataError> {
    view.get(Cf::Keys, access_key.as_bytes())?
        .map(|v| decode(&v))
        .transpose()
}

fn is_deleted(view: &dyn StateView, access_key: &str) -> Result<bool, MetadataError> {
    Ok(sys_get(view, &deleted_key(access_key))?.is_some())
}

fn mark(at_ms: i64, name: &str) -> Vec<u8> {
    serde_json::to_vec(&KeyMark {
        at_ms,
        name: name.to_string(),
    })
    .unwrap_or_default()
}

fn refuse_deleted(access_key: &str) -> MetadataError {
    MetadataError::InvalidArgument(format!(
        "access key {access_key} was deleted; a deleted access key is never used again (its \
         buckets and objects still name it as their owner)"
    ))
}

fn no_such_key(access_key: &str) -> MetadataError {
    MetadataError::InvalidArgument(format!("access key {access_key} does not exist"))
}

/// `PutAccessKey`: creates or replaces a key's record; a deleted key's id is refused.
pub(crate) fn put_key(
    view: &dyn StateView,
    rec: &AccessKeyRecord,
    writes: &mut Vec<Write>,
) -> Result<(), MetadataError> {
    if is_deleted(view, &rec.access_key)? {
        return Err(refuse_deleted(&rec.access_key));
    }
    writes.push(put(
        Cf::Keys,
        rec.access_key.as_bytes().to_vec(),
        encode(rec),
    ));
    Ok(())
}

/// `DeleteAccessKey`: removes the record, any disabled mark, rate-limit override
/// ([`crate::key_limits`]) and identity policy, and leaves a tombstone. The root key is refused; deleting a
/// deleted key again changes nothing (a retried command).
pub(crate) fn delete(
    view: &dyn StateView,
    access_key: &str,
    at_ms: i64,
    writes: &mut Vec<Write>,
) -> Result<(), MetadataError> {
    if root(view)?.as_deref() == Some(access_key) {
        return Err(MetadataError::InvalidArgument(format!(
            "access key {access_key} is the root key and cannot be deleted; make another key \
             the root first (`cairn key rotate-root`), then delete this one"
        )));
    }
    let Some(rec) = record(view, access_key)? else {
        if is_deleted(view, access_key)? {
            return Ok(());
        }
        return Err(no_such_key(access_key));
    };
    writes.push(del(Cf::Keys, access_key.as_bytes().to_vec()));
    writes.push(del(Cf::Sys, disabled_key(access_key).into_bytes()));
    writes.push(del(Cf::Sys, limits_key(access_key).into_bytes()));
    writes.push(del(Cf::Sys, policy_key(access_key).into_bytes()));
    writes.push(put(
        Cf::Sys,
        deleted_key(access_key).into_bytes(),
        mark(at_ms, &rec.name),
    ));
    Ok(())
}

/// `SetAccessKeyPolicy`: sets (`Some`, the JSON document) or removes (`None`) the identity
/// policy of an existing key (a deleted or unknown key is refused).
pub(crate) fn set_policy(
    view: &dyn StateView,
    access_key: &str,
    policy: Option<&str>,
    writes: &mut Vec<Write>,
) -> Result<(), MetadataError> {
    if record(view, access_key)?.is_none() {
        if is_deleted(view, access_key)? {
            return Err(MetadataError::InvalidArgument(format!(
                "access key {access_key} was deleted"
            )));
        }
        return Err(no_such_key(access_key));
    }
    let k = policy_key(access_key).into_bytes();
    writes.push(match policy {
        Some(doc) => put(Cf::Sys, k, doc.as_bytes().to_vec()),
        None => del(Cf::Sys, k),
    });
    Ok(())
}

/// `SetAccessKeyEnabled`: sets or clears a key's disabled mark. The root key cannot be
/// disabled.
pub(crate) fn set_enabled(
    view: &dyn StateView,
    access_key: &str,
    enabled: bool,
    at_ms: i64,
    writes: &mut Vec<Write>,
) -> Result<(), MetadataError> {
    if record(view, access_key)?.is_none() {
        return Err(if is_deleted(view, access_key)? {
            refuse_deleted(access_key)
        } else {
            no_such_key(access_key)
        });
    }
    let k = disabled_key(access_key).into_bytes();
    if enabled {
        writes.push(del(Cf::Sys, k));
        return Ok(());
    }
    if root(view)?.as_deref() == Some(access_key) {
        return Err(MetadataError::InvalidArgument(format!(
            "access key {access_key} is the root key and cannot be disabled; make another key \
             the root first (`cairn key rotate-root`)"
        )));
    }
    writes.push(put(Cf::Sys, k, mark(at_ms, "")));
    Ok(())
}

/// `RotateRootKey`: stores `rec`, a new key, and makes it the root key; the previous root
/// key stays, as an ordinary key. The id must be new (an existing or deleted key is refused),
/// except that repeating a rotation that happened changes nothing.
pub(crate) fn rotate_root(
    view: &dyn StateView,
    rec: &AccessKeyRecord,
    writes: &mut Vec<Write>,
) -> Result<(), MetadataError> {
    let ak = &rec.access_key;
    if is_deleted(view, ak)? {
        return Err(refuse_deleted(ak));
    }
    if let Some(existing) = record(view, ak)? {
        if root(view)?.as_deref() == Some(ak.as_str()) && existing.secret_key == rec.secret_key {
            return Ok(());
        }
        return Err(MetadataError::InvalidArgument(format!(
            "access key {ak} already exists; the new root key needs a new access key"
        )));
    }
    writes.push(put(Cf::Keys, ak.as_bytes().to_vec(), encode(rec)));
    writes.push(put(Cf::Sys, ROOT_KEY.as_bytes().to_vec(), encode_root(ak)));
    Ok(())
}

/// `DesignateRootKey`: makes an existing key the root key of a cluster that has none yet
/// (its first node's key). Designating the root key again changes nothing; another key is
/// refused while a root key is designated ([`Command::RotateRootKey`] changes it), and so is
/// an unknown or deleted key.
///
/// [`Command::RotateRootKey`]: crate::Command::RotateRootKey
pub(crate) fn designate_root(
    view: &dyn StateView,
    access_key: &str,
    writes: &mut Vec<Write>,
) -> Result<(), MetadataError> {
    match root(view)? {
        Some(r) if r == access_key => return Ok(()),
        Some(r) => {
            return Err(MetadataError::InvalidArgument(format!(
                "the cluster's root key is {r} already; `cairn key rotate-root` changes it"
            )))
        }
        None => {}
    }
    if record(view, access_key)?.is_none() {
        return Err(if is_deleted(view, access_key)? {
            refuse_deleted(access_key)
        } else {
            no_such_key(access_key)
        });
    }
    writes.push(put(
        Cf::Sys,
        ROOT_KEY.as_bytes().to_vec(),
        encode_root(access_key),
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Command, MemoryMetadataStore, MetadataStore};

    fn key(ak: &str) -> AccessKeyRecord {
        AccessKeyRecord {
            access_key: ak.into(),
            secret_key: format!("secret-of-{ak}"),
            name: ak.to_lowercase(),
            created_ms: 1,
        }
    }

    async fn disabled(s: &MemoryMetadataStore) -> BTreeSet<String> {
        marked(&s.scan_sys(DISABLED_PREFIX).await.unwrap(), DISABLED_PREFIX)
    }

    fn refused(r: Result<crate::CommandOutput, MetadataError>, what: &str) -> String {
        match r {
            Err(MetadataError::InvalidArgument(m)) => m,
            other => panic!("{what}: {other:?}"),
        }
    }

    #[tokio::test]
    async fn keys_are_disabled_enabled_and_deleted_for_good() {
        let s = MemoryMetadataStore::new();
        for ak in ["ROOT", "ALICE", "BOB"] {
            s.apply(Command::PutAccessKey(key(ak))).await.unwrap();
        }
        s.apply(Command::DesignateRootKey {
            access_key: "ROOT".into(),
        })
        .await
        .unwrap();

        let set = |ak: &str, enabled| Command::SetAccessKeyEnabled {
            access_key: ak.into(),
            enabled,
            at_ms: 5,
        };
        s.apply(set("ALICE", false)).await.unwrap();
        assert_eq!(disabled(&s).await, BTreeSet::from(["ALICE".to_string()]));
        // Disabled keys keep their record.
        assert_eq!(s.get_access_key("ALICE").await.unwrap(), Some(key("ALICE")));
        s.apply(set("ALICE", true)).await.unwrap();
        assert!(disabled(&s).await.is_empty());

        // The root key is neither disabled nor deleted; unknown keys are refused.
        let m = refused(s.apply(set("ROOT", false)).await, "disable root");
        assert!(m.contains("root key"), "{m}");
        let del = |ak: &str| Command::DeleteAccessKey {
            access_key: ak.into(),
            at_ms: 7,
        };
        let m = refused(s.apply(del("ROOT")).await, "delete root");
        assert!(m.contains("rotate-root"), "{m}");
        assert!(s.get_access_key("ROOT").await.unwrap().is_some());
        let m = refused(s.apply(del("NOBODY")).await, "delete unknown");
        assert!(m.contains("does not exist"), "{m}");
        refused(s.apply(set("NOBODY", true)).await, "enable unknown");
        // Enabling the root key (never disabled) is harmless.
        s.apply(set("ROOT", true)).await.unwrap();

        // Deleting a disabled key removes its record and its mark, and leaves a tombstone.
        s.apply(set("BOB", false)).await.unwrap();
        s.apply(del("BOB")).await.unwrap();
        assert_eq!(s.get_access_key("BOB").await.unwrap(), None);
        assert!(disabled(&s).await.is_empty());
        let tomb: KeyMark =
            serde_json::from_slice(&s.get_sys(&deleted_key("BOB")).await.unwrap().unwrap())
                .unwrap();
        assert_eq!(
            tomb,
            KeyMark {
                at_ms: 7,
                name: "bob".into()
            }
        );
        // A repeated delete is done already; the id cannot come back, nor be enabled.
        s.apply(del("BOB")).await.unwrap();
        let m = refused(
            s.apply(Command::PutAccessKey(key("BOB"))).await,
            "re-create",
        );
        assert!(m.contains("never used again"), "{m}");
        refused(s.apply(set("BOB", true)).await, "enable deleted");
        let names: Vec<String> = s
            .list_access_keys()
            .await
            .unwrap()
            .into_iter()
            .map(|k| k.access_key)
            .collect();
        assert_eq!(names, ["ALICE", "ROOT"]);
    }

    #[tokio::test]
    async fn rotation_makes_a_new_root_and_keeps_the_old_key() {
        let s = MemoryMetadataStore::new();
        s.apply(Command::PutAccessKey(key("OLDROOT")))
            .await
            .unwrap();
        s.apply(Command::DesignateRootKey {
            access_key: "OLDROOT".into(),
        })
        .await
        .unwrap();
        s.apply(Command::PutAccessKey(key("ALICE"))).await.unwrap();

        let rotate = |ak: &str| Command::RotateRootKey { record: key(ak) };
        // Only to a new id.
        let m = refused(s.apply(rotate("ALICE")).await, "rotate to an existing key");
        assert!(m.contains("already exists"), "{m}");
        s.apply(rotate("NEWROOT")).await.unwrap();
        let root_now = decode_root(s.get_sys(ROOT_KEY).await.unwrap().as_deref()).unwrap();
        assert_eq!(root_now.as_deref(), Some("NEWROOT"));
        assert!(s.get_access_key("NEWROOT").await.unwrap().is_some());
        // Repeating the same rotation is harmless.
        s.apply(rotate("NEWROOT")).await.unwrap();

        // The old root is an ordinary key now: it can be disabled and deleted; the new one
        // cannot.
        s.apply(Command::DeleteAccessKey {
            access_key: "OLDROOT".into(),
            at_ms: 9,
        })
        .await
        .unwrap();
        refused(
            s.apply(Command::DeleteAccessKey {
                access_key: "NEWROOT".into(),
                at_ms: 9,
            })
            .await,
            "delete the new root",
        );
        let m = refused(
            s.apply(rotate("OLDROOT")).await,
            "rotate back to a deleted id",
        );
        assert!(m.contains("never used again"), "{m}");
    }
}
