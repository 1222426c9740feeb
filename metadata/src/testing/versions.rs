//! Versioning: enabling (which adopts existing objects as `null` versions), suspending,
//! version histories, delete markers, deleting versions by id, listing versions with
//! markers, and setting tags and ACLs on one version.

use super::fixtures::*;
use super::{case, check, check_eq, check_err, fail, Case, CaseResult};
use crate::records::{Grant, Grantee, ObjectAcl, Permission, TagSet};
use crate::versions::{Deletion, VersionSel};
use crate::{
    Command, CommandOutput, MetadataError, MetadataStore, VersionEntry, VersionPage, VersionQuery,
};

pub fn cases() -> Vec<Case> {
    vec![
        case!(versions::enabling_adopts_objects_as_null),
        case!(versions::cannot_be_turned_off),
        case!(versions::enabled_puts_keep_history),
        case!(versions::enabled_put_needs_a_version_id),
        case!(versions::delete_adds_a_marker),
        case!(versions::deleting_the_newest_restores_the_previous),
        case!(versions::deleting_an_unknown_version_is_no_error),
        case!(versions::suspended_writes_replace_null),
        case!(versions::list_pages_with_markers),
        case!(versions::list_folds_common_prefixes),
        case!(versions::tags_on_latest_and_by_id),
        case!(versions::tag_errors),
        case!(versions::acl_set_and_conditional),
    ]
}

/// `key@id` for versions (`*` marks the latest, `!` a delete marker), `p/` for prefixes.
fn names(page: &VersionPage) -> Vec<String> {
    page.entries
        .iter()
        .map(|e| match e {
            VersionEntry::Version {
                key,
                is_latest,
                version,
            } => format!(
                "{key}@{}{}{}",
                version.id_str(),
                if *is_latest { "*" } else { "" },
                if version.is_delete_marker() { "!" } else { "" }
            ),
            VersionEntry::Prefix(p) => p.clone(),
        })
        .collect()
}

fn vq(max: usize) -> VersionQuery {
    VersionQuery {
        max_keys: max,
        ..Default::default()
    }
}

pub async fn enabling_adopts_objects_as_null(s: &dyn MetadataStore) -> CaseResult {
    let b = with_bucket(s).await?;
    put(s, &b, "old", inline("o")).await?;
    set_versioning(s, &b, Some("Enabled")).await?;
    check_eq!(
        s.get_bucket_config(&b, crate::BucketConfigKind::Versioning)
            .await?,
        Some(b"Enabled".to_vec())
    );
    let null = s
        .get_version(&b, &key("old"), &VersionSel::Id(None))
        .await?;
    check_eq!(
        null.and_then(|v| v.object).map(|o| o.etag),
        Some("o".to_string())
    );
    put(s, &b, "old", versioned(inline("n"), "v1")).await?;
    check_eq!(
        names(&s.list_versions(&b, &vq(100)).await?),
        ["old@v1*", "old@null"]
    );
    Ok(())
}

pub async fn cannot_be_turned_off(s: &dyn MetadataStore) -> CaseResult {
    let b = with_bucket(s).await?;
    set_versioning(s, &b, None).await?;
    set_versioning(s, &b, Some("Enabled")).await?;
    check_err!(
        set_versioning(s, &b, None).await,
        MetadataError::IllegalVersioning(_)
    );
    check_err!(
        set_versioning(s, &b, Some("Sometimes")).await,
        MetadataError::IllegalVersioning(_)
    );
    set_versioning(s, &b, Some("Suspended")).await?;
    set_versioning(s, &b, Some("Enabled")).await?;
    Ok(())
}

pub async fn enabled_puts_keep_history(s: &dyn MetadataStore) -> CaseResult {
    let b = with_bucket(s).await?;
    set_versioning(s, &b, Some("Enabled")).await?;
    let out = put(s, &b, "k", versioned(object("e1", striped(1, &[1])), "v1")).await?;
    match out {
        CommandOutput::Stored(r) => check_eq!(r.version_id.as_deref(), Some("v1")),
        other => return Err(fail!("put gave {other:?}")),
    }
    put(s, &b, "k", versioned(object("e2", striped(2, &[1])), "v2")).await?;
    check_eq!(
        names(&s.list_versions(&b, &vq(100)).await?),
        ["k@v2*", "k@v1"]
    );
    let v1 = s
        .get_version(&b, &key("k"), &VersionSel::Id(Some("v1".into())))
        .await?;
    check_eq!(
        v1.and_then(|v| v.object).map(|o| o.etag),
        Some("e1".to_string())
    );
    let latest = s.get_version(&b, &key("k"), &VersionSel::Latest).await?;
    check_eq!(latest.map(|v| v.version_id), Some(Some("v2".to_string())));
    check_eq!(
        s.get_object(&b, &key("k")).await?.map(|o| o.etag),
        Some("e2".to_string())
    );
    check!(
        gc_shards(s).await?.is_empty(),
        "a versioned overwrite queued GC"
    );
    Ok(())
}

pub async fn enabled_put_needs_a_version_id(s: &dyn MetadataStore) -> CaseResult {
    let b = with_bucket(s).await?;
    set_versioning(s, &b, Some("Enabled")).await?;
    check_err!(
        put(s, &b, "k", inline("e")).await,
        MetadataError::InvalidArgument(_)
    );
    check_err!(
        put(s, &b, "k", versioned(inline("e"), "null")).await,
        MetadataError::InvalidArgument(_)
    );
    check_err!(
        delete(s, &b, "k", "").await,
        MetadataError::InvalidArgument(_)
    );
    Ok(())
}

pub async fn delete_adds_a_marker(s: &dyn MetadataStore) -> CaseResult {
    let b = with_bucket(s).await?;
    set_versioning(s, &b, Some("Enabled")).await?;
    put(s, &b, "k", versioned(inline("e1"), "v1")).await?;
    let out = delete(s, &b, "k", "m1").await?;
    check_eq!(
        out,
        CommandOutput::Deleted(Deletion {
            version_id: Some("m1".into()),
            delete_marker: true,
            existed: true,
        })
    );
    check_eq!(s.get_object(&b, &key("k")).await?, None);
    let latest = s.get_version(&b, &key("k"), &VersionSel::Latest).await?;
    check!(
        latest.is_some_and(|v| v.is_delete_marker()),
        "the latest is not the marker"
    );
    check_eq!(
        list_names(s, &b, Default::default()).await?.0,
        Vec::<String>::new()
    );
    check_eq!(
        names(&s.list_versions(&b, &vq(100)).await?),
        ["k@m1*!", "k@v1"]
    );
    Ok(())
}

pub async fn deleting_the_newest_restores_the_previous(s: &dyn MetadataStore) -> CaseResult {
    let b = with_bucket(s).await?;
    set_versioning(s, &b, Some("Enabled")).await?;
    put(s, &b, "k", versioned(object("e1", striped(1, &[1])), "v1")).await?;
    put(s, &b, "k", versioned(object("e2", striped(2, &[2])), "v2")).await?;
    delete(s, &b, "k", "m1").await?;
    let del = |id: &str| Command::DeleteVersion {
        bucket: b.clone(),
        key: key("k"),
        version_id: Some(id.into()),
    };
    let out = s.apply(del("m1")).await?;
    check_eq!(
        out,
        CommandOutput::Deleted(Deletion {
            version_id: Some("m1".into()),
            delete_marker: true,
            existed: true,
        })
    );
    check_eq!(
        s.get_object(&b, &key("k")).await?.map(|o| o.etag),
        Some("e2".to_string())
    );
    s.apply(del("v2")).await?;
    check_eq!(
        s.get_object(&b, &key("k")).await?.map(|o| o.etag),
        Some("e1".to_string())
    );
    check_eq!(gc_shards(s).await?, shards_of(2, &[2]));
    check_eq!(names(&s.list_versions(&b, &vq(100)).await?), ["k@v1*"]);
    Ok(())
}

pub async fn deleting_an_unknown_version_is_no_error(s: &dyn MetadataStore) -> CaseResult {
    let b = with_bucket(s).await?;
    put(s, &b, "k", inline("e")).await?;
    let out = s
        .apply(Command::DeleteVersion {
            bucket: b.clone(),
            key: key("k"),
            version_id: Some("nope".into()),
        })
        .await?;
    check_eq!(
        out,
        CommandOutput::Deleted(Deletion {
            version_id: Some("nope".into()),
            delete_marker: false,
            existed: false,
        })
    );
    // Never versioned: the object there is the null version.
    s.apply(Command::DeleteVersion {
        bucket: b.clone(),
        key: key("k"),
        version_id: None,
    })
    .await?;
    check_eq!(s.get_object(&b, &key("k")).await?, None);
    Ok(())
}

pub async fn suspended_writes_replace_null(s: &dyn MetadataStore) -> CaseResult {
    let b = with_bucket(s).await?;
    set_versioning(s, &b, Some("Enabled")).await?;
    put(s, &b, "k", versioned(object("e1", striped(1, &[1])), "v1")).await?;
    set_versioning(s, &b, Some("Suspended")).await?;
    put(
        s,
        &b,
        "k",
        versioned(object("e2", striped(2, &[1])), "ignored"),
    )
    .await?;
    put(s, &b, "k", object("e3", striped(3, &[1]))).await?;
    check_eq!(
        names(&s.list_versions(&b, &vq(100)).await?),
        ["k@null*", "k@v1"]
    );
    check_eq!(
        s.get_object(&b, &key("k")).await?.map(|o| o.version_id),
        Some(None)
    );
    check_eq!(gc_shards(s).await?, shards_of(2, &[1]));
    delete(s, &b, "k", "ignored").await?;
    check_eq!(
        names(&s.list_versions(&b, &vq(100)).await?),
        ["k@null*!", "k@v1"]
    );
    check_eq!(
        gc_shards(s).await?,
        [shards_of(2, &[1]), shards_of(3, &[1])].concat()
    );
    Ok(())
}

async fn history(s: &dyn MetadataStore) -> Result<crate::BucketName, MetadataError> {
    let b = with_bucket(s).await?;
    set_versioning(s, &b, Some("Enabled")).await?;
    for (k, ids) in [("a", 3), ("a/x", 2), ("b", 1), ("c/y", 2)] {
        for i in 1..=ids {
            put(
                s,
                &b,
                k,
                versioned(inline("e"), &format!("{}{i}", k.replace('/', ""))),
            )
            .await?;
        }
    }
    delete(s, &b, "b", "bm").await?;
    Ok(b)
}

pub async fn list_pages_with_markers(s: &dyn MetadataStore) -> CaseResult {
    let b = history(s).await?;
    let full = names(&s.list_versions(&b, &vq(1000)).await?);
    check_eq!(
        full,
        ["a@a3*", "a@a2", "a@a1", "a/x@ax2*", "a/x@ax1", "b@bm*!", "b@b1", "c/y@cy2*", "c/y@cy1"]
    );
    for max in 1..=4 {
        let mut seen = Vec::new();
        let mut q = vq(max);
        loop {
            let page = s.list_versions(&b, &q).await?;
            check!(page.entries.len() <= max, "page longer than {max}");
            seen.extend(names(&page));
            if !page.is_truncated {
                break;
            }
            check!(
                page.next_key_marker.is_some(),
                "a truncated page without a marker"
            );
            q.key_marker = page.next_key_marker.clone();
            q.version_id_marker = page.next_version_id_marker.clone();
            check!(seen.len() <= full.len(), "paging does not end");
        }
        // Including which is the latest: a page starting inside a key does not mark its
        // first version there as the latest.
        check_eq!(seen, full);
    }
    let q = VersionQuery {
        key_marker: Some("a".into()),
        version_id_marker: Some("a2".into()),
        ..vq(2)
    };
    check_eq!(names(&s.list_versions(&b, &q).await?), ["a@a1", "a/x@ax2*"]);
    let q = VersionQuery {
        key_marker: Some("a/x".into()),
        ..vq(100)
    };
    check_eq!(names(&s.list_versions(&b, &q).await?).len(), 4);
    Ok(())
}

pub async fn list_folds_common_prefixes(s: &dyn MetadataStore) -> CaseResult {
    let b = history(s).await?;
    let q = VersionQuery {
        delimiter: Some("/".into()),
        ..vq(100)
    };
    check_eq!(
        names(&s.list_versions(&b, &q).await?),
        ["a@a3*", "a@a2", "a@a1", "a/", "b@bm*!", "b@b1", "c/"]
    );
    let q = VersionQuery {
        prefix: "c/".into(),
        delimiter: Some("/".into()),
        ..vq(100)
    };
    check_eq!(
        names(&s.list_versions(&b, &q).await?),
        ["c/y@cy2*", "c/y@cy1"]
    );
    Ok(())
}

fn tags(pairs: &[(&str, &str)]) -> TagSet {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub async fn tags_on_latest_and_by_id(s: &dyn MetadataStore) -> CaseResult {
    let b = with_bucket(s).await?;
    set_versioning(s, &b, Some("Enabled")).await?;
    put(s, &b, "k", versioned(inline("e1"), "v1")).await?;
    put(s, &b, "k", versioned(inline("e2"), "v2")).await?;
    let set = |version, t| Command::SetObjectTags {
        bucket: b.clone(),
        key: key("k"),
        version,
        tags: t,
    };
    let out = s
        .apply(set(VersionSel::Latest, tags(&[("a", "1")])))
        .await?;
    check_eq!(out, CommandOutput::Tagged(Some("v2".into())));
    check_eq!(
        s.get_object(&b, &key("k")).await?.map(|o| o.tags),
        Some(tags(&[("a", "1")]))
    );
    s.apply(set(
        VersionSel::Id(Some("v1".into())),
        tags(&[("old", "x")]),
    ))
    .await?;
    let v1 = s
        .get_version(&b, &key("k"), &VersionSel::Id(Some("v1".into())))
        .await?;
    check_eq!(
        v1.and_then(|v| v.object).map(|o| o.tags),
        Some(tags(&[("old", "x")]))
    );
    // The current object kept its own tags.
    check_eq!(
        s.get_object(&b, &key("k")).await?.map(|o| o.tags),
        Some(tags(&[("a", "1")]))
    );
    Ok(())
}

pub async fn tag_errors(s: &dyn MetadataStore) -> CaseResult {
    let b = with_bucket(s).await?;
    let set = |version| Command::SetObjectTags {
        bucket: b.clone(),
        key: key("k"),
        version,
        tags: tags(&[("a", "1")]),
    };
    check_err!(
        s.apply(set(VersionSel::Latest)).await,
        MetadataError::NoSuchKey
    );
    put(s, &b, "k", inline("e")).await?;
    check_err!(
        s.apply(set(VersionSel::Id(Some("zz".into())))).await,
        MetadataError::NoSuchVersion
    );
    set_versioning(s, &b, Some("Enabled")).await?;
    delete(s, &b, "k", "m1").await?;
    check_err!(
        s.apply(set(VersionSel::Id(Some("m1".into())))).await,
        MetadataError::DeleteMarker
    );
    Ok(())
}

pub async fn acl_set_and_conditional(s: &dyn MetadataStore) -> CaseResult {
    let b = with_bucket(s).await?;
    put(s, &b, "k", inline("e1")).await?;
    let acl = ObjectAcl {
        owner: "OWNER".into(),
        grants: vec![Grant {
            grantee: Grantee::AllUsers,
            permission: Permission::Read,
        }],
    };
    s.apply(Command::SetObjectAcl {
        bucket: b.clone(),
        key: key("k"),
        version: VersionSel::Latest,
        acl: acl.clone(),
    })
    .await?;
    let got = s.get_object(&b, &key("k")).await?;
    check_eq!(got.as_ref().and_then(|o| o.acl.clone()), Some(acl.clone()));
    check_eq!(got.map(|o| o.last_modified_ms), Some(1_000));
    let private = ObjectAcl {
        owner: "OWNER".into(),
        grants: vec![],
    };
    let cond = |etag: &str| Command::SetObjectAclIfUnchanged {
        bucket: b.clone(),
        key: key("k"),
        version: VersionSel::Latest,
        acl: private.clone(),
        etag: etag.into(),
        last_modified_ms: 1_000,
    };
    check_err!(s.apply(cond("stale")).await, MetadataError::Conflict(_));
    check_eq!(
        s.get_object(&b, &key("k")).await?.and_then(|o| o.acl),
        Some(acl)
    );
    s.apply(cond("e1")).await?;
    check_eq!(
        s.get_object(&b, &key("k")).await?.and_then(|o| o.acl),
        Some(private)
    );
    Ok(())
}
