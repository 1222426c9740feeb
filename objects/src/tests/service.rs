//! The object service's S3 operations: write conditions, the two-phase write's cleanup
//! rule, version lookups, copies, multipart uploads and bucket operations.

use cairn_metadata::{
    Grant, Grantee, MetadataError, ObjectAcl, Permission, VersionEntry, VersionQuery, VersionSel,
    VersioningState, WriteCondition,
};

use super::*;

fn acl() -> ObjectAcl {
    ObjectAcl {
        owner: "o".into(),
        grants: private_acl("o"),
    }
}

fn put(f: &Fixture, key: &str, condition: WriteCondition, size: Option<u64>) -> PutObject {
    PutObject {
        protection: Default::default(),
        bucket: f.bucket.clone(),
        key: ObjectKey::new(key).unwrap(),
        metadata: ObjectMetadata {
            content_type: Some("text/plain".into()),
            headers: Default::default(),
            user_meta: [("a".to_string(), "b".to_string())].into(),
        },
        tags: [("t".to_string(), "1".to_string())].into(),
        acl: acl(),
        condition,
        size,
    }
}

/// A striped body (over the fixtures' inline threshold): three stripes.
fn data(seed: u8) -> Vec<u8> {
    (0..2500u32).map(|i| (i as u8).wrapping_mul(seed)).collect()
}

async fn put_data(
    f: &Fixture,
    key: &str,
    condition: WriteCondition,
    bytes: &[u8],
) -> Result<ObjectRecord, ObjectsError> {
    f.svc
        .put_object(
            put(f, key, condition, Some(bytes.len() as u64)),
            body(bytes, 300),
            || None,
        )
        .await
        .map_err(|e| match e {
            PutError::Body(e) => panic!("body error {e}"),
            PutError::Store(e) => e,
        })
}

fn precondition_failed(e: &ObjectsError) -> bool {
    matches!(
        e,
        ObjectsError::Metadata(MetadataError::PreconditionFailed(_))
    )
}

#[test]
fn write_conditions_check_the_current_object() {
    let cur = ObjectRecord {
        size: 0,
        etag: "e1".into(),
        last_modified_ms: 0,
        content_type: None,
        headers: Default::default(),
        user_meta: Default::default(),
        checksum: None,
        data: cairn_metadata::ObjectData::Inline(Vec::new()),
        version_id: None,
        tags: Default::default(),
        acl: None,
        upload_id: None,
    };
    let c = |cond: WriteCondition, current: Option<&ObjectRecord>| cond.check(current);
    assert!(c(WriteCondition::Always, Some(&cur)).is_ok());
    assert!(c(WriteCondition::IfAbsent, None).is_ok());
    assert!(matches!(
        c(WriteCondition::IfAbsent, Some(&cur)),
        Err(MetadataError::PreconditionFailed(_))
    ));
    assert!(matches!(
        c(WriteCondition::IfMatch("e1".into()), None),
        Err(MetadataError::NoSuchKey)
    ));
    assert!(c(WriteCondition::IfMatch("e1".into()), Some(&cur)).is_ok());
    assert!(c(WriteCondition::IfMatch("*".into()), Some(&cur)).is_ok());
    assert!(c(WriteCondition::IfMatch("e2".into()), Some(&cur)).is_err());
    assert!(c(WriteCondition::IfNoneMatch("e1".into()), Some(&cur)).is_err());
    assert!(c(WriteCondition::IfNoneMatch("e2".into()), Some(&cur)).is_ok());
    assert!(c(WriteCondition::IfNoneMatch("e1".into()), None).is_ok());
}

#[tokio::test]
async fn puts_store_the_record_and_refuse_failed_conditions_before_storing() {
    let f = fixture().await;
    let first = data(3);
    let rec = put_data(&f, "k", WriteCondition::IfAbsent, &first)
        .await
        .unwrap();
    assert_eq!(rec.size, first.len() as u64);
    assert_eq!(rec.content_type.as_deref(), Some("text/plain"));
    assert_eq!(rec.user_meta.get("a").map(String::as_str), Some("b"));
    assert_eq!(rec.tags.len(), 1);
    assert_eq!(rec.acl.as_ref().map(|a| a.owner.as_str()), Some("o"));
    // An unversioned bucket keeps no version ids.
    assert_eq!(rec.version_id, None);
    assert_eq!(read_all(&f.svc, &rec, 0..rec.size).await, first);
    let shards = shard_count(&f);
    assert_eq!(shards, 3);

    // Refused early: nothing more is stored, the current object stays.
    let e = put_data(&f, "k", WriteCondition::IfAbsent, &data(5))
        .await
        .unwrap_err();
    assert!(precondition_failed(&e), "{e:?}");
    let e = put_data(&f, "k", WriteCondition::IfMatch("nope".into()), &data(5))
        .await
        .unwrap_err();
    assert!(precondition_failed(&e), "{e:?}");
    let e = put_data(
        &f,
        "k",
        WriteCondition::IfNoneMatch(rec.etag.clone()),
        &data(5),
    )
    .await
    .unwrap_err();
    assert!(precondition_failed(&e), "{e:?}");
    let e = put_data(&f, "absent", WriteCondition::IfMatch("x".into()), &data(5))
        .await
        .unwrap_err();
    assert!(matches!(
        e,
        ObjectsError::Metadata(MetadataError::NoSuchKey)
    ));
    assert_eq!(shard_count(&f), shards);

    // A condition that holds replaces the object (the old shards go to GC).
    let second = data(7);
    let rec2 = put_data(&f, "k", WriteCondition::IfMatch(rec.etag.clone()), &second)
        .await
        .unwrap();
    let k = ObjectKey::new("k").unwrap();
    let cur = f
        .svc
        .object_version(&f.bucket, &k, &VersionSel::Latest)
        .await
        .unwrap();
    assert_eq!(cur.record.etag, rec2.etag);
    assert_eq!(
        read_all(&f.svc, &cur.record, 0..cur.record.size).await,
        second
    );
}

#[tokio::test]
async fn a_body_of_another_length_than_declared_is_discarded() {
    let f = fixture().await;
    let bytes = data(3);
    let e = f
        .svc
        .put_object(
            put(
                &f,
                "k",
                WriteCondition::Always,
                Some(bytes.len() as u64 + 1),
            ),
            body(&bytes, 300),
            || None,
        )
        .await
        .unwrap_err();
    assert!(matches!(
        e,
        PutError::Store(ObjectsError::IncompleteBody {
            declared: 2501,
            received: 2500
        })
    ));
    assert_eq!(shard_count(&f), 0);
    let k = ObjectKey::new("k").unwrap();
    assert!(matches!(
        f.svc
            .object_version(&f.bucket, &k, &VersionSel::Latest)
            .await,
        Err(ObjectsError::NoSuchKey { .. })
    ));
}

#[tokio::test]
async fn a_definite_commit_failure_discards_the_body_an_unknown_outcome_keeps_it() {
    let f = fixture().await;
    let commit_failing = |e: MetadataError| {
        let f = &f;
        async move {
            let w = f.svc.write_body(body(&data(3), 400)).await.unwrap();
            assert_eq!(shard_count(f), 3);
            f.svc
                .commit_written(
                    w,
                    |_| Ok(()),
                    |_, ()| async move { Err::<(), _>(ObjectsError::Metadata(e)) },
                )
                .await
                .unwrap_err()
        }
    };
    let e = commit_failing(MetadataError::Conflict("lost a race".into())).await;
    assert!(!e.outcome_unknown());
    assert_eq!(shard_count(&f), 0, "a definite failure discards the shards");

    let e = commit_failing(MetadataError::Indeterminate("timed out".into())).await;
    assert!(e.outcome_unknown());
    assert_eq!(shard_count(&f), 3, "an unknown outcome keeps the shards");

    // A refusal before the commit discards too, and the commit never runs.
    let w = f.svc.write_body(body(&data(5), 400)).await.unwrap();
    let ran = std::cell::Cell::new(false);
    let e = f
        .svc
        .commit_written(
            w,
            |_| {
                Err::<(), _>(ObjectsError::IncompleteBody {
                    declared: 1,
                    received: 2,
                })
            },
            |_, ()| {
                ran.set(true);
                async { Ok(()) }
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ObjectsError::IncompleteBody { .. }));
    assert!(!ran.get());
    assert_eq!(shard_count(&f), 3);
}

#[tokio::test]
async fn lookups_select_versions_and_name_delete_markers() {
    let f = fixture().await;
    let k = ObjectKey::new("k").unwrap();
    f.svc
        .set_versioning(&f.bucket, VersioningState::Enabled)
        .await
        .unwrap();
    assert!(f
        .svc
        .set_versioning(&f.bucket, VersioningState::Unversioned)
        .await
        .is_err());
    let v1 = put_data(&f, "k", WriteCondition::Always, b"one")
        .await
        .unwrap();
    let v1_id = v1.version_id.clone().unwrap();
    let (d, marker) = f
        .svc
        .delete_object(&f.bucket, &k, VersionSel::Latest, false)
        .await
        .unwrap();
    assert!(d.delete_marker);
    let marker = marker.unwrap();
    match f
        .svc
        .object_version(&f.bucket, &k, &VersionSel::Latest)
        .await
    {
        Err(ObjectsError::NoSuchKey { delete_marker, .. }) => {
            assert_eq!(delete_marker.as_deref(), Some(marker.as_str()))
        }
        other => panic!("{other:?}"),
    }
    let old = f
        .svc
        .object_version(&f.bucket, &k, &VersionSel::Id(Some(v1_id.clone())))
        .await
        .unwrap();
    assert_eq!(old.record.etag, v1.etag);
    assert_eq!(old.version_id.as_deref(), Some(v1_id.as_str()));
    assert!(matches!(
        f.svc
            .object_version(&f.bucket, &k, &VersionSel::Id(Some(marker.clone())))
            .await,
        Err(ObjectsError::IsDeleteMarker { version_id }) if version_id == marker
    ));
    assert!(matches!(
        f.svc
            .object_version(&f.bucket, &k, &VersionSel::Id(Some("nope".into())))
            .await,
        Err(ObjectsError::NoSuchVersion { .. })
    ));
    // Removing the marker for good brings v1 back.
    f.svc
        .delete_object(&f.bucket, &k, VersionSel::Id(Some(marker)), false)
        .await
        .unwrap();
    let cur = f
        .svc
        .object_version(&f.bucket, &k, &VersionSel::Latest)
        .await
        .unwrap();
    assert_eq!(cur.record.etag, v1.etag);
    // Tags and ACL of a named version.
    let id = f
        .svc
        .set_object_tags(
            &f.bucket,
            &k,
            VersionSel::Latest,
            [("x".into(), "y".into())].into(),
        )
        .await
        .unwrap();
    assert_eq!(id.as_deref(), Some(v1_id.as_str()));
    let mut public = acl();
    public.grants.push(Grant {
        grantee: Grantee::AllUsers,
        permission: Permission::Read,
    });
    f.svc
        .set_object_acl(
            &f.bucket,
            &k,
            VersionSel::Latest,
            public.clone(),
            &cur.record,
        )
        .await
        .unwrap();
    let now = f
        .svc
        .object_version(&f.bucket, &k, &VersionSel::Latest)
        .await
        .unwrap();
    assert_eq!(now.record.tags.get("x").map(String::as_str), Some("y"));
    assert_eq!(now.record.acl, Some(public.clone()));
    // An ACL change against a version that changed since is refused.
    let stale = ObjectRecord {
        etag: "other".into(),
        ..cur.record
    };
    assert!(f
        .svc
        .set_object_acl(&f.bucket, &k, VersionSel::Latest, public, &stale)
        .await
        .is_err());
}

#[tokio::test]
async fn copies_carry_or_replace_metadata_and_tags() {
    let f = fixture().await;
    let bytes = data(9);
    let src = put_data(&f, "src", WriteCondition::Always, &bytes)
        .await
        .unwrap();
    let copy = |metadata, tags| CopyObject {
        protection: Default::default(),
        source_key: None,
        bucket: f.bucket.clone(),
        key: ObjectKey::new("dst").unwrap(),
        source: src.clone(),
        metadata,
        tags,
        acl: acl(),
        checksum: Some(cairn_sigv4::ChecksumAlgorithm::Crc32),
        lock: Default::default(),
        storage_class: "STANDARD".into(),
    };
    let same = f.svc.copy_object(copy(None, None)).await.unwrap();
    assert_eq!(same.etag, src.etag);
    assert_eq!(same.user_meta, src.user_meta);
    assert_eq!(same.tags, src.tags);
    assert_eq!(same.version_id, None);
    let mut want = cairn_sigv4::Checksummer::new(cairn_sigv4::ChecksumAlgorithm::Crc32);
    want.update(&bytes);
    assert_eq!(
        same.checksum.as_ref().map(|c| c.value.clone()),
        Some(want.finalize())
    );
    assert_eq!(read_all(&f.svc, &same, 0..same.size).await, bytes);
    let replaced = f
        .svc
        .copy_object(copy(
            Some(ObjectMetadata::default()),
            Some(Default::default()),
        ))
        .await
        .unwrap();
    assert!(replaced.user_meta.is_empty() && replaced.tags.is_empty());
    assert_eq!(replaced.content_type, None);
}

#[tokio::test]
async fn multipart_uploads_complete_once_and_answer_a_repeat() {
    let f = fixture().await;
    let key = ObjectKey::new("mp").unwrap();
    let upload = f
        .svc
        .create_upload(NewUpload {
            protection: Default::default(),
            bucket: f.bucket.clone(),
            key: key.clone(),
            metadata: ObjectMetadata::default(),
            tags: Default::default(),
            acl: acl(),
            checksum_algorithm: None,
            checksum_type: None,
        })
        .await
        .unwrap();
    let got = f
        .svc
        .upload(&f.bucket, &key, &upload.upload_id)
        .await
        .unwrap();
    assert_eq!(got.upload_id, upload.upload_id);
    let target = |n| PartTarget {
        customer_key: None,
        bucket: f.bucket.clone(),
        key: key.clone(),
        upload_id: upload.upload_id.clone(),
        part_number: n,
    };
    // A part shorter than declared is discarded.
    let e = f
        .svc
        .put_part(target(1), &upload, 9999, body(&data(3), 500), || None)
        .await
        .unwrap_err();
    assert!(matches!(
        e,
        PutError::Store(ObjectsError::IncompleteBody { .. })
    ));
    assert_eq!(shard_count(&f), 0);
    // The only part may be small.
    let bytes = data(3);
    let part = f
        .svc
        .put_part(
            target(1),
            &upload,
            bytes.len() as u64,
            body(&bytes, 500),
            || None,
        )
        .await
        .unwrap();
    let (parts, more) = f
        .svc
        .list_parts(&f.bucket, &key, &upload.upload_id, 0, 10)
        .await
        .unwrap();
    assert_eq!((parts.len(), more), (1, false));
    let complete = CompleteUpload {
        bucket: f.bucket.clone(),
        key: key.clone(),
        upload_id: upload.upload_id.clone(),
        parts: vec![ListedPart {
            part_number: 1,
            etag: part.etag.clone(),
            checksum: None,
        }],
        claimed_checksum: None,
        claimed_size: Some("1".into()),
        condition: WriteCondition::Always,
    };
    assert!(matches!(
        f.svc.complete_upload(complete.clone()).await,
        Err(ObjectsError::ObjectSizeMismatch { actual: 2500, .. })
    ));
    let complete = CompleteUpload {
        claimed_size: None,
        ..complete
    };
    let made = f.svc.complete_upload(complete.clone()).await.unwrap();
    assert_eq!(made.size, bytes.len() as u64);
    assert_eq!(read_all(&f.svc, &made, 0..made.size).await, bytes);
    // Repeated: the same object; the upload itself is gone.
    let again = f.svc.complete_upload(complete).await.unwrap();
    assert_eq!(again.etag, made.etag);
    assert!(matches!(
        f.svc.upload(&f.bucket, &key, &upload.upload_id).await,
        Err(ObjectsError::Metadata(MetadataError::NoSuchUpload))
    ));
    assert!(f
        .svc
        .abort_upload(&f.bucket, &key, &upload.upload_id)
        .await
        .is_err());
}

#[tokio::test]
async fn buckets_are_created_once_and_list_their_null_versions() {
    let f = fixture().await;
    let b = BucketName::new("other").unwrap();
    assert_eq!(
        f.svc.create_bucket(&b, "me", None).await.unwrap(),
        BucketCreated::Created
    );
    assert_eq!(
        f.svc.create_bucket(&b, "me", None).await.unwrap(),
        BucketCreated::AlreadyOwned { same_acl: true }
    );
    let public = vec![Grant {
        grantee: Grantee::AllUsers,
        permission: Permission::Read,
    }];
    assert_eq!(
        f.svc.create_bucket(&b, "me", Some(public)).await.unwrap(),
        BucketCreated::AlreadyOwned { same_acl: false }
    );
    assert!(f.svc.create_bucket(&b, "you", None).await.is_err());
    let mine = f.svc.list_buckets("me", "", "", 10).await.unwrap();
    assert_eq!(mine.buckets.len(), 1);
    assert!(!mine.truncated);
    assert_eq!(
        f.svc.bucket_acl(&mine.buckets[0]).await.unwrap(),
        private_acl("me")
    );

    // An unversioned bucket lists each object as its null version.
    put_data(&f, "a", WriteCondition::Always, b"1")
        .await
        .unwrap();
    put_data(&f, "b", WriteCondition::Always, b"2")
        .await
        .unwrap();
    let q = VersionQuery {
        max_keys: 1,
        ..Default::default()
    };
    let page = f.svc.list_versions(&f.bucket, &q).await.unwrap();
    assert!(page.is_truncated);
    assert_eq!(page.next_key_marker.as_deref(), Some("a"));
    assert_eq!(page.next_version_id_marker.as_deref(), Some("null"));
    assert!(matches!(
        &page.entries[..],
        [VersionEntry::Version {
            is_latest: true,
            ..
        }]
    ));
    f.svc.delete_bucket(&b).await.unwrap();
    assert!(f.svc.bucket(&b).await.is_err());
}

#[test]
fn upload_and_version_ids_sort_by_time() {
    let (a, b) = (new_upload_id(1_000), new_upload_id(2_000));
    assert!(a < b);
    assert_eq!(a.len(), 44);
    let (a, b) = (new_version_id(1_000), new_version_id(2_000));
    assert!(a < b);
    assert_eq!(a.len(), 32);
}
