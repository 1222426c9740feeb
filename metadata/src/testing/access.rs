//! Access keys: storing and listing, the root key (rotation; it can be neither deleted nor
//! disabled), deletion tombstones, disabling, and rate-limit overrides.

use super::{case, check, check_eq, check_err, Case, CaseResult};
use crate::access_keys::{self, DELETED_PREFIX, DISABLED_PREFIX};
use crate::key_limits::{self, Limit, LimitChange, LIMITS_PREFIX};
use crate::records::AccessKeyRecord;
use crate::{Command, MetadataError, MetadataStore};

pub fn cases() -> Vec<Case> {
    vec![
        case!(access::put_get_list),
        case!(access::root_key_rotation),
        case!(access::delete_leaves_a_tombstone),
        case!(access::disable_and_enable),
        case!(access::limits_set_change_clear),
    ]
}

fn ak(id: &str) -> AccessKeyRecord {
    AccessKeyRecord {
        access_key: id.into(),
        secret_key: format!("secret-of-{id}"),
        name: format!("name of {id}"),
        created_ms: 3,
    }
}

fn ids(keys: &[AccessKeyRecord]) -> Vec<&str> {
    keys.iter().map(|k| k.access_key.as_str()).collect()
}

pub async fn put_get_list(s: &dyn MetadataStore) -> CaseResult {
    check!(
        s.list_access_keys().await?.is_empty(),
        "a fresh store has keys"
    );
    for id in ["KEYB", "KEYA", "KEYC"] {
        s.apply(Command::PutAccessKey(ak(id))).await?;
    }
    check_eq!(s.get_access_key("KEYA").await?, Some(ak("KEYA")));
    check_eq!(s.get_access_key("KEYZ").await?, None);
    check_eq!(ids(&s.list_access_keys().await?), ["KEYA", "KEYB", "KEYC"]);
    let mut changed = ak("KEYB");
    changed.secret_key = "new".into();
    s.apply(Command::PutAccessKey(changed.clone())).await?;
    check_eq!(s.get_access_key("KEYB").await?, Some(changed));
    Ok(())
}

async fn root(s: &dyn MetadataStore) -> Result<Option<String>, MetadataError> {
    access_keys::decode_root(s.get_sys(access_keys::ROOT_KEY).await?.as_deref())
}

pub async fn root_key_rotation(s: &dyn MetadataStore) -> CaseResult {
    check_eq!(root(s).await?, None);
    s.apply(Command::RotateRootKey {
        record: ak("ROOT1"),
    })
    .await?;
    check_eq!(root(s).await?.as_deref(), Some("ROOT1"));
    // Repeating the rotation that happened changes nothing; an existing key is refused.
    s.apply(Command::RotateRootKey {
        record: ak("ROOT1"),
    })
    .await?;
    s.apply(Command::PutAccessKey(ak("OTHER"))).await?;
    let r = s
        .apply(Command::RotateRootKey {
            record: ak("OTHER"),
        })
        .await;
    check_err!(r, MetadataError::InvalidArgument(_));
    s.apply(Command::RotateRootKey {
        record: ak("ROOT2"),
    })
    .await?;
    check_eq!(root(s).await?.as_deref(), Some("ROOT2"));
    check_eq!(
        ids(&s.list_access_keys().await?),
        ["OTHER", "ROOT1", "ROOT2"]
    );
    Ok(())
}

pub async fn delete_leaves_a_tombstone(s: &dyn MetadataStore) -> CaseResult {
    s.apply(Command::RotateRootKey { record: ak("ROOT") })
        .await?;
    s.apply(Command::PutAccessKey(ak("BOB"))).await?;
    let del = |id: &str| Command::DeleteAccessKey {
        access_key: id.into(),
        at_ms: 77,
    };
    check_err!(
        s.apply(del("ROOT")).await,
        MetadataError::InvalidArgument(_)
    );
    check_err!(
        s.apply(del("NOBODY")).await,
        MetadataError::InvalidArgument(_)
    );
    s.apply(del("BOB")).await?;
    check_eq!(s.get_access_key("BOB").await?, None);
    // Deleting again is a retried command: nothing changes, no error.
    s.apply(del("BOB")).await?;
    let tombs = access_keys::marked(&s.scan_sys(DELETED_PREFIX).await?, DELETED_PREFIX);
    check_eq!(tombs.into_iter().collect::<Vec<_>>(), ["BOB"]);
    check_err!(
        s.apply(Command::PutAccessKey(ak("BOB"))).await,
        MetadataError::InvalidArgument(_)
    );
    check_eq!(ids(&s.list_access_keys().await?), ["ROOT"]);
    Ok(())
}

pub async fn disable_and_enable(s: &dyn MetadataStore) -> CaseResult {
    s.apply(Command::RotateRootKey { record: ak("ROOT") })
        .await?;
    s.apply(Command::PutAccessKey(ak("BOB"))).await?;
    let set = |id: &str, enabled| Command::SetAccessKeyEnabled {
        access_key: id.into(),
        enabled,
        at_ms: 5,
    };
    let disabled = || async {
        let scan = s.scan_sys(DISABLED_PREFIX).await?;
        Ok::<_, MetadataError>(
            access_keys::marked(&scan, DISABLED_PREFIX)
                .into_iter()
                .collect::<Vec<_>>(),
        )
    };
    check_err!(
        s.apply(set("ROOT", false)).await,
        MetadataError::InvalidArgument(_)
    );
    check_err!(
        s.apply(set("NOBODY", false)).await,
        MetadataError::InvalidArgument(_)
    );
    s.apply(set("BOB", false)).await?;
    check_eq!(disabled().await?, ["BOB"]);
    check!(
        s.get_access_key("BOB").await?.is_some(),
        "disabling removed the key"
    );
    s.apply(set("BOB", true)).await?;
    check_eq!(disabled().await?, Vec::<String>::new());
    Ok(())
}

pub async fn limits_set_change_clear(s: &dyn MetadataStore) -> CaseResult {
    s.apply(Command::PutAccessKey(ak("BOB"))).await?;
    let set = |ops, bytes| Command::SetAccessKeyLimits {
        access_key: "BOB".into(),
        ops_per_sec: ops,
        bytes_per_sec: bytes,
    };
    let limits = || async {
        Ok::<_, MetadataError>(key_limits::decode_all(&s.scan_sys(LIMITS_PREFIX).await?))
    };
    s.apply(set(
        LimitChange::Set(Limit::PerSecond(10)),
        LimitChange::Keep,
    ))
    .await?;
    s.apply(set(LimitChange::Keep, LimitChange::Set(Limit::Unlimited)))
        .await?;
    let got = limits().await?;
    check_eq!(
        got.get("BOB").and_then(|l| l.ops_per_sec),
        Some(Limit::PerSecond(10))
    );
    check_eq!(
        got.get("BOB").and_then(|l| l.bytes_per_sec),
        Some(Limit::Unlimited)
    );
    let zero = s
        .apply(set(
            LimitChange::Set(Limit::PerSecond(0)),
            LimitChange::Keep,
        ))
        .await;
    check_err!(zero, MetadataError::InvalidArgument(_));
    s.apply(set(LimitChange::Clear, LimitChange::Clear)).await?;
    check!(limits().await?.is_empty(), "cleared limits remain");
    let unknown = s
        .apply(Command::SetAccessKeyLimits {
            access_key: "NOBODY".into(),
            ops_per_sec: LimitChange::Clear,
            bytes_per_sec: LimitChange::Keep,
        })
        .await;
    check_err!(unknown, MetadataError::InvalidArgument(_));
    // Deleting a key removes its override.
    s.apply(set(
        LimitChange::Set(Limit::PerSecond(3)),
        LimitChange::Keep,
    ))
    .await?;
    s.apply(Command::DeleteAccessKey {
        access_key: "BOB".into(),
        at_ms: 1,
    })
    .await?;
    check!(limits().await?.is_empty(), "a deleted key's limits remain");
    Ok(())
}
