//! Per-key rate-limit overrides in the state machine: what `cairn key set-limit` stores.
//!
//! A key's override lives beside its record, in `sys`, under `access-key/limits/<access
//! key>` ([`LIMITS_PREFIX`]) as a small JSON value ([`KeyLimits`]), for the same reason as
//! the other marks of [`crate::access_keys`]: the key record itself is postcard and keeps
//! its first shape. Each dimension (requests per second, bytes per second) is either absent
//! (the gateway's default applies), a rate, or explicitly unlimited. A key without any
//! override has no record; deleting a key removes its record.
//!
//! [`Command::SetAccessKeyLimits`] changes one or both dimensions in one deterministic step,
//! so two operators changing different dimensions of one key at once do not undo each
//! other. The gateways enforce the limits (see `cairn_api::limits`); this module only keeps
//! them.
//!
//! [`Command::SetAccessKeyLimits`]: crate::Command::SetAccessKeyLimits

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::access_keys::deleted_key;
use crate::keys::Cf;
use crate::state::{del, put, StateView, Write};
use crate::MetadataError;

pub use crate::access_keys::{limits_key, LIMITS_PREFIX};

/// One dimension of an override.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// At most this many per second (never 0).
    PerSecond(u64),
    /// No limit, whatever the gateway's default.
    Unlimited,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::PerSecond(n) => write!(f, "{n}"),
            Limit::Unlimited => f.write_str("unlimited"),
        }
    }
}

/// A key's override; `None` in a dimension: the gateway's default for all keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops_per_sec: Option<Limit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes_per_sec: Option<Limit>,
}

impl KeyLimits {
    /// No override in either dimension.
    pub fn is_default(&self) -> bool {
        self.ops_per_sec.is_none() && self.bytes_per_sec.is_none()
    }
}

/// What [`Command::SetAccessKeyLimits`](crate::Command::SetAccessKeyLimits) does to one
/// dimension of a key's override.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LimitChange {
    /// Leaves it as it is.
    #[default]
    Keep,
    /// Removes it: the gateway's default applies again.
    Clear,
    /// Sets it.
    Set(Limit),
}

impl LimitChange {
    /// The dimension after this change.
    pub fn apply(self, current: Option<Limit>) -> Option<Limit> {
        match self {
            LimitChange::Keep => current,
            LimitChange::Clear => None,
            LimitChange::Set(l) => Some(l),
        }
    }
}

/// Decodes one stored override.
pub fn decode(value: &[u8]) -> Result<KeyLimits, MetadataError> {
    serde_json::from_slice(value)
        .map_err(|e| MetadataError::Corrupt(format!("rate limits of an access key: {e}")))
}

/// The overrides of a `sys` scan over [`LIMITS_PREFIX`], access key → limits. An entry that
/// does not decode (written by a newer version, say) is left out, so that it cannot stop the
/// gateways from learning every other key's state; its key gets the defaults.
pub fn decode_all(entries: &[(String, Vec<u8>)]) -> BTreeMap<String, KeyLimits> {
    entries
        .iter()
        .filter_map(|(k, v)| {
            let ak = k.strip_prefix(LIMITS_PREFIX)?;
            let limits = decode(v).ok()?;
            Some((ak.to_string(), limits))
        })
        .collect()
}

/// `SetAccessKeyLimits`: changes the override of an existing key (a deleted or unknown key
/// is refused, as is a rate of 0 — clearing is said with [`LimitChange::Clear`]). An
/// override left empty is removed.
pub(crate) fn set(
    view: &dyn StateView,
    access_key: &str,
    ops_per_sec: LimitChange,
    bytes_per_sec: LimitChange,
    writes: &mut Vec<Write>,
) -> Result<(), MetadataError> {
    for change in [ops_per_sec, bytes_per_sec] {
        if change == LimitChange::Set(Limit::PerSecond(0)) {
            return Err(MetadataError::InvalidArgument(
                "a rate limit of 0 per second would refuse everything; clear the limit instead"
                    .into(),
            ));
        }
    }
    if view.get(Cf::Keys, access_key.as_bytes())?.is_none() {
        let why = if view
            .get(Cf::Sys, deleted_key(access_key).as_bytes())?
            .is_some()
        {
            "was deleted"
        } else {
            "does not exist"
        };
        return Err(MetadataError::InvalidArgument(format!(
            "access key {access_key} {why}"
        )));
    }
    let k = limits_key(access_key).into_bytes();
    let current = view
        .get(Cf::Sys, &k)?
        .map(|v| decode(&v))
        .transpose()?
        .unwrap_or_default();
    let next = KeyLimits {
        ops_per_sec: ops_per_sec.apply(current.ops_per_sec),
        bytes_per_sec: bytes_per_sec.apply(current.bytes_per_sec),
    };
    if next.is_default() {
        writes.push(del(Cf::Sys, k));
    } else {
        let value = serde_json::to_vec(&next)
            .map_err(|e| MetadataError::Corrupt(format!("encoding rate limits: {e}")))?;
        writes.push(put(Cf::Sys, k, value));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::AccessKeyRecord;
    use crate::{Command, MemoryMetadataStore, MetadataStore};

    fn key(ak: &str) -> AccessKeyRecord {
        AccessKeyRecord {
            access_key: ak.into(),
            secret_key: format!("secret-of-{ak}"),
            name: ak.to_lowercase(),
            created_ms: 1,
        }
    }

    fn set(ak: &str, ops: LimitChange, bytes: LimitChange) -> Command {
        Command::SetAccessKeyLimits {
            access_key: ak.into(),
            ops_per_sec: ops,
            bytes_per_sec: bytes,
        }
    }

    async fn limits(s: &MemoryMetadataStore) -> BTreeMap<String, KeyLimits> {
        decode_all(&s.scan_sys(LIMITS_PREFIX).await.unwrap())
    }

    #[tokio::test]
    async fn overrides_are_set_per_dimension_cleared_and_go_with_the_key() {
        let s = MemoryMetadataStore::new();
        s.apply(Command::PutAccessKey(key("ALICE"))).await.unwrap();
        use LimitChange::*;

        s.apply(set("ALICE", Set(Limit::PerSecond(20)), Keep))
            .await
            .unwrap();
        // Another dimension later leaves the first one alone.
        s.apply(set("ALICE", Keep, Set(Limit::Unlimited)))
            .await
            .unwrap();
        let want = KeyLimits {
            ops_per_sec: Some(Limit::PerSecond(20)),
            bytes_per_sec: Some(Limit::Unlimited),
        };
        assert_eq!(limits(&s).await, BTreeMap::from([("ALICE".into(), want)]));

        // Clearing one dimension keeps the other; clearing both removes the record.
        s.apply(set("ALICE", Clear, Keep)).await.unwrap();
        assert_eq!(
            limits(&s).await["ALICE"],
            KeyLimits {
                ops_per_sec: None,
                bytes_per_sec: Some(Limit::Unlimited)
            }
        );
        s.apply(set("ALICE", Keep, Clear)).await.unwrap();
        assert!(limits(&s).await.is_empty());
        assert_eq!(s.get_sys(&limits_key("ALICE")).await.unwrap(), None);

        // A rate of 0 and unknown keys are refused.
        let zero = s.apply(set("ALICE", Set(Limit::PerSecond(0)), Keep)).await;
        assert!(
            matches!(zero, Err(MetadataError::InvalidArgument(ref m)) if m.contains("clear")),
            "{zero:?}"
        );
        let unknown = s.apply(set("NOBODY", Set(Limit::PerSecond(5)), Keep)).await;
        assert!(
            matches!(unknown, Err(MetadataError::InvalidArgument(ref m)) if m.contains("does not exist")),
            "{unknown:?}"
        );

        // Deleting the key removes its override; the deleted id is refused.
        s.apply(set("ALICE", Set(Limit::PerSecond(3)), Keep))
            .await
            .unwrap();
        s.apply(Command::DeleteAccessKey {
            access_key: "ALICE".into(),
            at_ms: 2,
        })
        .await
        .unwrap();
        assert!(limits(&s).await.is_empty());
        let deleted = s.apply(set("ALICE", Set(Limit::PerSecond(5)), Keep)).await;
        assert!(
            matches!(deleted, Err(MetadataError::InvalidArgument(ref m)) if m.contains("deleted")),
            "{deleted:?}"
        );
    }

    #[test]
    fn undecodable_entries_are_left_out() {
        let good = serde_json::to_vec(&KeyLimits {
            ops_per_sec: Some(Limit::PerSecond(7)),
            bytes_per_sec: None,
        })
        .unwrap();
        let entries = vec![
            (limits_key("A"), good),
            (
                limits_key("B"),
                b"{\"ops_per_sec\":{\"per_fortnight\":1}}".to_vec(),
            ),
        ];
        let all = decode_all(&entries);
        assert_eq!(all.len(), 1);
        assert_eq!(all["A"].ops_per_sec, Some(Limit::PerSecond(7)));
    }
}
