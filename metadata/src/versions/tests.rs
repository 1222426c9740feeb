use std::collections::BTreeMap;

use cairn_types::{EcScheme, ObjectId};

use super::*;
use crate::command::{Command, CommandOutput, WriteCondition};
use crate::records::{BucketRecord, ObjectData, ShardLoc, StripeLoc, TagSet};
use crate::{ListQuery, MemoryMetadataStore, MetadataStore, VersionEntry, VersionQuery};

fn bucket() -> BucketName {
    BucketName::new("vers").unwrap()
}

fn key(k: &str) -> ObjectKey {
    ObjectKey::new(k).unwrap()
}

/// A striped object with one shard, its ETag `etag`, carrying version id `id`.
fn obj(etag: &str, id: Option<&str>) -> ObjectRecord {
    ObjectRecord {
        size: 4,
        etag: etag.into(),
        last_modified_ms: 1,
        content_type: None,
        headers: BTreeMap::new(),
        user_meta: BTreeMap::new(),
        checksum: None,
        data: ObjectData::Striped {
            id: ObjectId::random(),
            ec: EcScheme::SINGLE,
            stripe_size: 4,
            stripes: vec![StripeLoc {
                len: 4,
                shards: vec![ShardLoc {
                    node: NodeId(0),
                    len: 4,
                    crc32c: 0,
                }],
            }],
        },
        version_id: id.map(str::to_string),
        tags: TagSet::new(),
        acl: None,
        upload_id: None,
    }
}

async fn store() -> MemoryMetadataStore {
    let s = MemoryMetadataStore::new();
    s.apply(Command::CreateBucket(BucketRecord {
        name: bucket(),
        created_ms: 0,
        owner: "AK".into(),
    }))
    .await
    .unwrap();
    s
}

async fn set_state(s: &MemoryMetadataStore, v: Option<&str>) -> Result<(), MetadataError> {
    s.apply(Command::SetBucketConfig {
        bucket: bucket(),
        kind: BucketConfigKind::Versioning,
        value: v.map(|v| v.as_bytes().to_vec()),
    })
    .await
    .map(|_| ())
}

async fn put_obj(s: &MemoryMetadataStore, k: &str, rec: ObjectRecord) -> ObjectRecord {
    match s
        .apply(Command::PutObject {
            bucket: bucket(),
            key: key(k),
            record: rec,
            condition: WriteCondition::Always,
        })
        .await
        .unwrap()
    {
        CommandOutput::Stored(r) => *r,
        other => panic!("{other:?}"),
    }
}

async fn delete(s: &MemoryMetadataStore, k: &str, marker: &str) -> Deletion {
    match s
        .apply(Command::DeleteObject {
            bucket: bucket(),
            key: key(k),
            marker_version_id: marker.into(),
            marker_ms: 2,
        })
        .await
        .unwrap()
    {
        CommandOutput::Deleted(d) => d,
        other => panic!("{other:?}"),
    }
}

async fn delete_version(s: &MemoryMetadataStore, k: &str, id: Option<&str>) -> Deletion {
    match s
        .apply(Command::DeleteVersion {
            bucket: bucket(),
            key: key(k),
            version_id: id.map(str::to_string),
        })
        .await
        .unwrap()
    {
        CommandOutput::Deleted(d) => d,
        other => panic!("{other:?}"),
    }
}

/// `id:etag` (or `id:marker`) of every version of `k`, newest first.
async fn history(s: &MemoryMetadataStore, k: &str) -> Vec<String> {
    let page = s
        .list_versions(
            &bucket(),
            &VersionQuery {
                prefix: k.into(),
                max_keys: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    page.entries
        .into_iter()
        .filter_map(|e| match e {
            VersionEntry::Version {
                key: vk, version, ..
            } if vk == k => Some(format!(
                "{}:{}",
                version.id_str(),
                version
                    .object
                    .as_ref()
                    .map_or("marker", |o| o.etag.as_str())
            )),
            _ => None,
        })
        .collect()
}

async fn current_etag(s: &MemoryMetadataStore, k: &str) -> Option<String> {
    s.get_object(&bucket(), &key(k))
        .await
        .unwrap()
        .map(|o| o.etag)
}

/// Every shard queued for GC so far.
async fn gc_shards(s: &MemoryMetadataStore) -> Vec<(NodeId, ShardId)> {
    let mut all: Vec<_> = s
        .gc_pending(1000)
        .await
        .unwrap()
        .into_iter()
        .flat_map(|(_, e)| e.shards)
        .collect();
    all.sort();
    all
}

fn shards(o: &ObjectRecord) -> Vec<(NodeId, ShardId)> {
    o.data.shards()
}

#[tokio::test]
async fn unversioned_buckets_keep_one_object_and_never_write_versions() {
    let s = store().await;
    let first = put_obj(&s, "k", obj("e1", Some("ignored"))).await;
    assert_eq!(first.version_id, None);
    put_obj(&s, "k", obj("e2", Some("ignored"))).await;
    assert_eq!(gc_shards(&s).await, shards(&first));
    assert!(history(&s, "k").await.is_empty());
    let d = delete(&s, "k", "m").await;
    assert!(!d.delete_marker && d.existed);
    assert_eq!(current_etag(&s, "k").await, None);
    assert!(history(&s, "k").await.is_empty());
}

#[tokio::test]
async fn enabling_keeps_old_objects_as_null_and_adds_versions() {
    let s = store().await;
    let old = put_obj(&s, "k", obj("e0", None)).await;
    set_state(&s, Some("Enabled")).await.unwrap();
    assert_eq!(history(&s, "k").await, ["null:e0"]);
    let v1 = put_obj(&s, "k", obj("e1", Some("v1"))).await;
    assert_eq!(v1.version_id.as_deref(), Some("v1"));
    put_obj(&s, "k", obj("e2", Some("v2"))).await;
    assert_eq!(history(&s, "k").await, ["v2:e2", "v1:e1", "null:e0"]);
    assert_eq!(current_etag(&s, "k").await.as_deref(), Some("e2"));
    // Nothing was garbage-collected: every version keeps its data.
    assert!(gc_shards(&s).await.is_empty());
    let get = |sel: VersionSel| {
        let s = s.clone();
        async move { s.get_version(&bucket(), &key("k"), &sel).await.unwrap() }
    };
    let null = get(VersionSel::Id(None)).await.unwrap();
    assert_eq!(null.object.unwrap().data, old.data);
    assert_eq!(
        get(VersionSel::Id(Some("v1".into())))
            .await
            .unwrap()
            .object
            .unwrap()
            .etag,
        "e1"
    );
    assert!(get(VersionSel::Id(Some("v9".into()))).await.is_none());
    // A version needs an id while enabled.
    assert!(matches!(
        s.apply(Command::PutObject {
            bucket: bucket(),
            key: key("k"),
            record: obj("e3", None),
            condition: WriteCondition::Always,
        })
        .await,
        Err(MetadataError::InvalidArgument(_))
    ));
    // Never back to unversioned; an unknown state is refused too.
    assert!(matches!(
        set_state(&s, None).await,
        Err(MetadataError::IllegalVersioning(_))
    ));
    assert!(matches!(
        set_state(&s, Some("Off")).await,
        Err(MetadataError::IllegalVersioning(_))
    ));
}

#[tokio::test]
async fn suspended_writes_replace_the_null_version() {
    let s = store().await;
    set_state(&s, Some("Enabled")).await.unwrap();
    put_obj(&s, "k", obj("e1", Some("v1"))).await;
    set_state(&s, Some("Suspended")).await.unwrap();
    let n1 = put_obj(&s, "k", obj("n1", Some("ignored"))).await;
    assert_eq!(n1.version_id, None);
    assert_eq!(history(&s, "k").await, ["null:n1", "v1:e1"]);
    assert!(gc_shards(&s).await.is_empty());
    put_obj(&s, "k", obj("n2", None)).await;
    assert_eq!(history(&s, "k").await, ["null:n2", "v1:e1"]);
    // The replaced null version's shards are queued, nothing else.
    assert_eq!(gc_shards(&s).await, shards(&n1));
    // A suspended delete replaces the null version with a null delete marker.
    let d = delete(&s, "k", "ignored").await;
    assert_eq!(d.version_id, None);
    assert!(d.delete_marker);
    assert_eq!(history(&s, "k").await, ["null:marker", "v1:e1"]);
    assert_eq!(current_etag(&s, "k").await, None);
    // Enabled again: versions pile up on top.
    set_state(&s, Some("Enabled")).await.unwrap();
    put_obj(&s, "k", obj("e3", Some("v3"))).await;
    assert_eq!(history(&s, "k").await, ["v3:e3", "null:marker", "v1:e1"]);
}

#[tokio::test]
async fn delete_markers_hide_the_key_and_deleting_by_id_makes_the_previous_current() {
    let s = store().await;
    set_state(&s, Some("Enabled")).await.unwrap();
    let v1 = put_obj(&s, "k", obj("e1", Some("v1"))).await;
    let v2 = put_obj(&s, "k", obj("e2", Some("v2"))).await;
    let d = delete(&s, "k", "m1").await;
    assert_eq!(d.version_id.as_deref(), Some("m1"));
    assert!(d.delete_marker);
    assert_eq!(current_etag(&s, "k").await, None);
    let latest = s
        .get_version(&bucket(), &key("k"), &VersionSel::Latest)
        .await
        .unwrap()
        .unwrap();
    assert!(latest.is_delete_marker());
    let listed = s
        .list_objects(
            &bucket(),
            &ListQuery {
                max_keys: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(listed.entries.is_empty());
    // A delete of a key that never existed still adds a marker.
    assert!(delete(&s, "ghost", "m2").await.delete_marker);
    assert_eq!(history(&s, "ghost").await, ["m2:marker"]);

    // Removing the marker makes v2 current again; nothing to collect.
    let d = delete_version(&s, "k", Some("m1")).await;
    assert!(d.delete_marker && d.existed);
    assert_eq!(current_etag(&s, "k").await.as_deref(), Some("e2"));
    assert!(gc_shards(&s).await.is_empty());
    // Removing the current version makes v1 current and collects v2's shards.
    delete_version(&s, "k", Some("v2")).await;
    assert_eq!(current_etag(&s, "k").await.as_deref(), Some("e1"));
    assert_eq!(gc_shards(&s).await, shards(&v2));
    // An unknown id is not an error and changes nothing.
    assert!(!delete_version(&s, "k", Some("nope")).await.existed);
    assert_eq!(history(&s, "k").await, ["v1:e1"]);
    // Removing an older version leaves the current one alone.
    put_obj(&s, "k", obj("e3", Some("v3"))).await;
    delete_version(&s, "k", Some("v1")).await;
    assert_eq!(current_etag(&s, "k").await.as_deref(), Some("e3"));
    let mut want = shards(&v1);
    want.extend(shards(&v2));
    want.sort();
    assert_eq!(gc_shards(&s).await, want);
    delete_version(&s, "k", Some("v3")).await;
    assert_eq!(current_etag(&s, "k").await, None);
}

#[tokio::test]
async fn a_bucket_with_versions_or_markers_is_not_empty() {
    let s = store().await;
    set_state(&s, Some("Enabled")).await.unwrap();
    put_obj(&s, "k", obj("e1", Some("v1"))).await;
    delete(&s, "k", "m1").await;
    let drop_bucket = || s.apply(Command::DeleteBucket { name: bucket() });
    // Only a version and a marker remain, no current object.
    assert!(matches!(
        drop_bucket().await,
        Err(MetadataError::BucketNotEmpty)
    ));
    delete_version(&s, "k", Some("v1")).await;
    assert!(matches!(
        drop_bucket().await,
        Err(MetadataError::BucketNotEmpty)
    ));
    delete_version(&s, "k", Some("m1")).await;
    drop_bucket().await.unwrap();
}

#[tokio::test]
async fn tags_belong_to_one_version() {
    let s = store().await;
    put_obj(&s, "k", obj("e0", None)).await;
    let tags = |pairs: &[(&str, &str)]| -> TagSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let set = |sel: VersionSel, t: TagSet| {
        s.apply(Command::SetObjectTags {
            bucket: bucket(),
            key: key("k"),
            version: sel,
            tags: t,
        })
    };
    set(VersionSel::Latest, tags(&[("a", "0")])).await.unwrap();
    set_state(&s, Some("Enabled")).await.unwrap();
    put_obj(&s, "k", obj("e1", Some("v1"))).await;
    set(VersionSel::Latest, tags(&[("b", "1")])).await.unwrap();
    let get = |sel: VersionSel| {
        let s = s.clone();
        async move {
            s.get_version(&bucket(), &key("k"), &sel)
                .await
                .unwrap()
                .unwrap()
                .object
                .unwrap()
                .tags
        }
    };
    assert_eq!(get(VersionSel::Id(None)).await, tags(&[("a", "0")]));
    assert_eq!(get(VersionSel::Latest).await, tags(&[("b", "1")]));
    assert_eq!(
        s.get_object(&bucket(), &key("k"))
            .await
            .unwrap()
            .unwrap()
            .tags,
        tags(&[("b", "1")])
    );
    set(VersionSel::Id(None), TagSet::new()).await.unwrap();
    assert!(get(VersionSel::Id(None)).await.is_empty());
    assert!(matches!(
        set(VersionSel::Id(Some("nope".into())), TagSet::new()).await,
        Err(MetadataError::NoSuchVersion)
    ));
    delete(&s, "k", "m1").await;
    assert!(matches!(
        set(VersionSel::Latest, TagSet::new()).await,
        Err(MetadataError::NoSuchKey)
    ));
    assert!(matches!(
        set(VersionSel::Id(Some("m1".into())), TagSet::new()).await,
        Err(MetadataError::DeleteMarker)
    ));
}

#[tokio::test]
async fn acls_belong_to_one_version_and_change_nothing_else() {
    use crate::records::{Grant, Grantee, ObjectAcl, Permission};
    let s = store().await;
    set_state(&s, Some("Enabled")).await.unwrap();
    put_obj(&s, "k", obj("e1", Some("v1"))).await;
    put_obj(&s, "k", obj("e2", Some("v2"))).await;
    let public = ObjectAcl {
        owner: "AK".into(),
        grants: vec![Grant {
            grantee: Grantee::AllUsers,
            permission: Permission::Read,
        }],
    };
    let version = |id: &str| {
        let s = s.clone();
        let sel = VersionSel::Id(Some(id.to_string()));
        async move {
            s.get_version(&bucket(), &key("k"), &sel)
                .await
                .unwrap()
                .unwrap()
                .object
                .unwrap()
        }
    };
    let before = version("v1").await;
    let out = s
        .apply(Command::SetObjectAcl {
            bucket: bucket(),
            key: key("k"),
            version: VersionSel::Id(Some("v1".into())),
            acl: public.clone(),
        })
        .await
        .unwrap();
    assert_eq!(out, CommandOutput::Tagged(Some("v1".into())));
    let after = version("v1").await;
    assert_eq!(after.acl.as_ref(), Some(&public));
    assert_eq!(ObjectRecord { acl: None, ..after }, before);
    // The current version (v2) kept its own.
    let cur = s.get_object(&bucket(), &key("k")).await.unwrap().unwrap();
    assert_eq!(cur.etag, "e2");
    assert_eq!(cur.acl, None);
    s.apply(Command::SetObjectAcl {
        bucket: bucket(),
        key: key("k"),
        version: VersionSel::Latest,
        acl: public.clone(),
    })
    .await
    .unwrap();
    let cur = s.get_object(&bucket(), &key("k")).await.unwrap().unwrap();
    assert_eq!(cur.acl.as_ref(), Some(&public));
    assert_eq!(version("v2").await.acl.as_ref(), Some(&public));
    assert!(matches!(
        s.apply(Command::SetObjectAcl {
            bucket: bucket(),
            key: key("nope"),
            version: VersionSel::Latest,
            acl: public,
        })
        .await,
        Err(MetadataError::NoSuchKey)
    ));
}

/// An ACL change checked against one write must not land on the next one, even when both
/// are the `null` version of an unversioned key.
#[tokio::test]
async fn a_checked_acl_change_refuses_a_record_overwritten_meanwhile() {
    use crate::records::{Grant, Grantee, ObjectAcl, Permission};
    let s = store().await;
    let checked = put_obj(&s, "k", obj("e1", None)).await;
    let public = ObjectAcl {
        owner: "AK".into(),
        grants: vec![Grant {
            grantee: Grantee::AllUsers,
            permission: Permission::Read,
        }],
    };
    let set = |rec: &ObjectRecord| Command::SetObjectAclIfUnchanged {
        bucket: bucket(),
        key: key("k"),
        version: VersionSel::Id(rec.version_id.clone()),
        acl: public.clone(),
        etag: rec.etag.clone(),
        last_modified_ms: rec.last_modified_ms,
    };
    // Another writer replaces the object between the check and the command.
    put_obj(
        &s,
        "k",
        ObjectRecord {
            last_modified_ms: 2,
            ..obj("e2", None)
        },
    )
    .await;
    assert!(matches!(
        s.apply(set(&checked)).await,
        Err(MetadataError::Conflict(_))
    ));
    let cur = s.get_object(&bucket(), &key("k")).await.unwrap().unwrap();
    assert_eq!((cur.etag.as_str(), cur.acl.as_ref()), ("e2", None));
    // Checked against the record that is there, it applies.
    s.apply(set(&cur)).await.unwrap();
    let cur = s.get_object(&bucket(), &key("k")).await.unwrap().unwrap();
    assert_eq!(cur.acl.as_ref(), Some(&public));
}

#[tokio::test]
async fn version_listing_spans_keys_in_s3_order() {
    let s = store().await;
    put_obj(&s, "b", obj("b0", None)).await;
    set_state(&s, Some("Enabled")).await.unwrap();
    put_obj(&s, "a", obj("a1", Some("a1"))).await;
    put_obj(&s, "b", obj("b1", Some("b1"))).await;
    put_obj(&s, "a", obj("a2", Some("a2"))).await;
    delete(&s, "a", "am").await;
    let page = s
        .list_versions(
            &bucket(),
            &VersionQuery {
                max_keys: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let got: Vec<String> = page
        .entries
        .iter()
        .map(|e| match e {
            VersionEntry::Version {
                key,
                is_latest,
                version,
            } => format!(
                "{key}@{}{}",
                version.id_str(),
                if *is_latest { "*" } else { "" }
            ),
            VersionEntry::Prefix(p) => p.clone(),
        })
        .collect();
    assert_eq!(got, ["a@am*", "a@a2", "a@a1", "b@b1*", "b@null"]);
}
