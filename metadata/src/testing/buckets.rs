//! Buckets: creating, looking up, listing, deleting (only when empty; uploads in progress
//! are aborted), configuration documents, and commands on a bucket that does not exist.

use super::fixtures::*;
use super::{case, check, check_eq, check_err, fail, Case, CaseResult};
use crate::records::BucketRecord;
use crate::{BucketConfigKind, Command, MetadataError, MetadataStore};

pub fn cases() -> Vec<Case> {
    vec![
        case!(buckets::create_get_list),
        case!(buckets::create_twice_names_the_owner),
        case!(buckets::delete_missing),
        case!(buckets::delete_refused_while_objects_remain),
        case!(buckets::delete_refused_while_versions_remain),
        case!(buckets::delete_aborts_uploads),
        case!(buckets::configs_set_get_clear),
        case!(buckets::commands_need_the_bucket),
    ]
}

pub async fn create_get_list(s: &dyn MetadataStore) -> CaseResult {
    check_eq!(s.list_buckets().await?, Vec::<BucketRecord>::new());
    for name in ["zeta", "alpha", "alpha-2"] {
        s.apply(Command::CreateBucket(BucketRecord {
            name: bucket(name),
            created_ms: 42,
            owner: format!("owner-{name}"),
        }))
        .await?;
    }
    let got = s.get_bucket(&bucket("alpha")).await?;
    check_eq!(
        got,
        Some(BucketRecord {
            name: bucket("alpha"),
            created_ms: 42,
            owner: "owner-alpha".into(),
        })
    );
    check_eq!(s.get_bucket(&bucket("beta")).await?, None);
    let names: Vec<String> = s
        .list_buckets()
        .await?
        .into_iter()
        .map(|b| b.name.as_str().to_string())
        .collect();
    check_eq!(names, ["alpha", "alpha-2", "zeta"]);
    Ok(())
}

pub async fn create_twice_names_the_owner(s: &dyn MetadataStore) -> CaseResult {
    create_bucket(s, &b()).await?;
    let again = s
        .apply(Command::CreateBucket(BucketRecord {
            name: b(),
            created_ms: 9,
            owner: "SOMEONE-ELSE".into(),
        }))
        .await;
    check_err!(again, MetadataError::BucketExists { owner } if owner == "OWNER");
    check_eq!(s.get_bucket(&b()).await?.map(|r| r.created_ms), Some(1));
    Ok(())
}

pub async fn delete_missing(s: &dyn MetadataStore) -> CaseResult {
    let r = s.apply(Command::DeleteBucket { name: b() }).await;
    check_err!(r, MetadataError::NoSuchBucket);
    Ok(())
}

pub async fn delete_refused_while_objects_remain(s: &dyn MetadataStore) -> CaseResult {
    let b = with_bucket(s).await?;
    // A bucket whose name extends this one's must not count as its content.
    let other = bucket("conformance-other");
    create_bucket(s, &other).await?;
    put(s, &other, "x", inline("e")).await?;
    put(s, &b, "k", inline("e")).await?;
    let r = s.apply(Command::DeleteBucket { name: b.clone() }).await;
    check_err!(r, MetadataError::BucketNotEmpty);
    delete(s, &b, "k", "").await?;
    s.apply(Command::DeleteBucket { name: b.clone() }).await?;
    check_eq!(s.get_bucket(&b).await?, None);
    check!(
        s.get_bucket(&other).await?.is_some(),
        "the other bucket went too"
    );
    Ok(())
}

pub async fn delete_refused_while_versions_remain(s: &dyn MetadataStore) -> CaseResult {
    let b = with_bucket(s).await?;
    set_versioning(s, &b, Some("Enabled")).await?;
    put(s, &b, "k", versioned(inline("e"), "v1")).await?;
    delete(s, &b, "k", "m1").await?;
    check_eq!(s.get_object(&b, &key("k")).await?, None);
    let r = s.apply(Command::DeleteBucket { name: b.clone() }).await;
    check_err!(r, MetadataError::BucketNotEmpty);
    Ok(())
}

pub async fn delete_aborts_uploads(s: &dyn MetadataStore) -> CaseResult {
    let b = with_bucket(s).await?;
    create_upload(s, &b, "big", "u1").await?;
    put_part(
        s,
        &b,
        "big",
        "u1",
        part(1, 100, &md5ish('a'), striped(5, &[1, 2])),
    )
    .await?;
    s.apply(Command::DeleteBucket { name: b.clone() }).await?;
    check_eq!(gc_shards(s).await?, shards_of(5, &[1, 2]));
    create_bucket(s, &b).await?;
    check_eq!(s.get_upload(&b, &key("big"), "u1").await?, None);
    check_eq!(
        s.list_parts(&b, &key("big"), "u1", 0, 10).await?,
        (vec![], false)
    );
    Ok(())
}

pub async fn configs_set_get_clear(s: &dyn MetadataStore) -> CaseResult {
    let b = with_bucket(s).await?;
    for kind in [
        BucketConfigKind::Cors,
        BucketConfigKind::Tagging,
        BucketConfigKind::Acl,
    ] {
        check_eq!(s.get_bucket_config(&b, kind).await?, None);
    }
    let set = |kind, value: Option<&[u8]>| Command::SetBucketConfig {
        bucket: b.clone(),
        kind,
        value: value.map(<[u8]>::to_vec),
    };
    s.apply(set(BucketConfigKind::Cors, Some(b"[cors]")))
        .await?;
    s.apply(set(BucketConfigKind::Tagging, Some(b"{tags}")))
        .await?;
    check_eq!(
        s.get_bucket_config(&b, BucketConfigKind::Cors).await?,
        Some(b"[cors]".to_vec())
    );
    check_eq!(s.get_bucket_config(&b, BucketConfigKind::Acl).await?, None);
    // All of a bucket's documents in one read, in kind order, and only this bucket's.
    create_bucket(s, &bucket("conformance-x")).await?;
    s.apply(Command::SetBucketConfig {
        bucket: bucket("conformance-x"),
        kind: BucketConfigKind::Policy,
        value: Some(b"{}".to_vec()),
    })
    .await?;
    check_eq!(
        s.get_bucket_configs(&b).await?,
        vec![
            (BucketConfigKind::Cors, b"[cors]".to_vec()),
            (BucketConfigKind::Tagging, b"{tags}".to_vec()),
            // A new bucket's usage, counted by the state machine from its creation.
            (
                BucketConfigKind::Usage,
                br#"{"bytes":0,"objects":0}"#.to_vec()
            )
        ]
    );
    s.apply(set(BucketConfigKind::Cors, None)).await?;
    check_eq!(s.get_bucket_config(&b, BucketConfigKind::Cors).await?, None);
    check_eq!(
        s.get_bucket_config(&b, BucketConfigKind::Tagging).await?,
        Some(b"{tags}".to_vec())
    );
    // Deleting the bucket deletes its documents: a new bucket of that name starts bare.
    s.apply(Command::DeleteBucket { name: b.clone() }).await?;
    create_bucket(s, &b).await?;
    check_eq!(
        s.get_bucket_config(&b, BucketConfigKind::Tagging).await?,
        None
    );
    Ok(())
}

pub async fn commands_need_the_bucket(s: &dyn MetadataStore) -> CaseResult {
    let b = b();
    check_err!(
        put(s, &b, "k", inline("e")).await,
        MetadataError::NoSuchBucket
    );
    check_err!(delete(s, &b, "k", "").await, MetadataError::NoSuchBucket);
    check_err!(
        create_upload(s, &b, "k", "u1").await,
        MetadataError::NoSuchBucket
    );
    let cfg = s
        .apply(Command::SetBucketConfig {
            bucket: b.clone(),
            kind: BucketConfigKind::Cors,
            value: Some(b"x".to_vec()),
        })
        .await;
    check_err!(cfg, MetadataError::NoSuchBucket);
    if s.get_bucket(&b).await?.is_some() {
        return Err(fail!("a refused command created the bucket"));
    }
    Ok(())
}
