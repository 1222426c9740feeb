//! Objects: put and get, overwrites and deletes (with the GC of what they replace), listings
//! with prefix, delimiter, start-after and page size, and write conditions.

use super::fixtures::*;
use super::{case, check, check_eq, check_err, Case, CaseResult};
use crate::versions::Deletion;
use crate::{CommandOutput, ListEntry, ListQuery, MetadataError, MetadataStore, WriteCondition};

pub fn cases() -> Vec<Case> {
    vec![
        case!(objects::put_get_roundtrip),
        case!(objects::overwrite_queues_the_old_shards),
        case!(objects::delete_unversioned),
        case!(objects::list_in_key_order_under_a_prefix),
        case!(objects::list_folds_common_prefixes),
        case!(objects::list_pages_with_start_after),
        case!(objects::list_max_keys_zero),
        case!(objects::list_stays_inside_its_bucket),
        case!(objects::condition_if_absent),
        case!(objects::condition_if_match),
        case!(objects::condition_if_none_match),
    ]
}

pub async fn put_get_roundtrip(s: &dyn MetadataStore) -> CaseResult {
    let b = with_bucket(s).await?;
    let rec = object("etag1", striped(1, &[0, 1, 2]));
    let out = put(s, &b, "dir/file.txt", rec.clone()).await?;
    check_eq!(out, CommandOutput::Stored(Box::new(rec.clone())));
    check_eq!(s.get_object(&b, &key("dir/file.txt")).await?, Some(rec));
    check_eq!(s.get_object(&b, &key("dir/file")).await?, None);
    check_eq!(s.get_object(&b, &key("dir/file.txt2")).await?, None);
    check!(gc_shards(s).await?.is_empty(), "a first put queued GC");
    Ok(())
}

pub async fn overwrite_queues_the_old_shards(s: &dyn MetadataStore) -> CaseResult {
    let b = with_bucket(s).await?;
    put(s, &b, "k", object("one", striped(1, &[0, 1]))).await?;
    put(s, &b, "k", object("two", striped(2, &[1, 2]))).await?;
    check_eq!(gc_shards(s).await?, shards_of(1, &[0, 1]));
    check_eq!(
        s.get_object(&b, &key("k")).await?.map(|o| o.etag),
        Some("two".to_string())
    );
    // Inline bodies have no shards: replacing one queues nothing more.
    put(s, &b, "i", inline("a")).await?;
    put(s, &b, "i", inline("b")).await?;
    check_eq!(s.gc_pending(10).await?.len(), 1);
    Ok(())
}

pub async fn delete_unversioned(s: &dyn MetadataStore) -> CaseResult {
    let b = with_bucket(s).await?;
    put(s, &b, "k", object("e", striped(3, &[4]))).await?;
    let out = delete(s, &b, "k", "").await?;
    let gone = Deletion {
        version_id: None,
        delete_marker: false,
        existed: true,
    };
    check_eq!(out, CommandOutput::Deleted(gone.clone()));
    check_eq!(s.get_object(&b, &key("k")).await?, None);
    check_eq!(gc_shards(s).await?, shards_of(3, &[4]));
    let again = delete(s, &b, "k", "").await?;
    check_eq!(
        again,
        CommandOutput::Deleted(Deletion {
            existed: false,
            ..gone
        })
    );
    Ok(())
}

fn q(prefix: &str, delimiter: Option<&str>, after: Option<&str>, max: usize) -> ListQuery {
    ListQuery {
        prefix: prefix.into(),
        delimiter: delimiter.map(Into::into),
        start_after: after.map(Into::into),
        max_keys: max,
    }
}

const KEYS: [&str; 9] = ["a", "a/1", "a/2", "a/b/c", "ab", "b", "c/d/e", "c/d/f", "é"];

async fn put_keys(s: &dyn MetadataStore) -> Result<crate::BucketName, MetadataError> {
    let b = with_bucket(s).await?;
    // Written out of order: listings are in key (UTF-8 byte) order whatever the write order.
    for k in KEYS.iter().rev() {
        put(s, &b, k, inline(k)).await?;
    }
    Ok(b)
}

pub async fn list_in_key_order_under_a_prefix(s: &dyn MetadataStore) -> CaseResult {
    let b = put_keys(s).await?;
    let (all, truncated) = list_names(s, &b, q("", None, None, 1000)).await?;
    check_eq!(all, KEYS);
    check!(!truncated, "a complete listing is truncated");
    check_eq!(
        list_names(s, &b, q("a/", None, None, 1000)).await?.0,
        ["a/1", "a/2", "a/b/c"]
    );
    check_eq!(
        list_names(s, &b, q("zz", None, None, 1000)).await?.0,
        Vec::<String>::new()
    );
    let page = s.list_objects(&b, &q("a", None, None, 1)).await?;
    match page.entries.as_slice() {
        [ListEntry::Object(k, rec)] => {
            check_eq!(k, "a");
            check_eq!(rec.etag, "a");
        }
        other => return Err(super::fail!("first page {other:?}")),
    }
    check!(page.is_truncated, "one of several is not truncated");
    Ok(())
}

pub async fn list_folds_common_prefixes(s: &dyn MetadataStore) -> CaseResult {
    let b = put_keys(s).await?;
    let page = s.list_objects(&b, &q("", Some("/"), None, 1000)).await?;
    let names: Vec<&str> = page.entries.iter().map(|e| e.name()).collect();
    check_eq!(names, ["a", "a/", "ab", "b", "c/", "é"]);
    let kinds: Vec<bool> = page.entries.iter().map(is_object).collect();
    check_eq!(kinds, [true, false, true, true, false, true]);
    check_eq!(
        list_names(s, &b, q("c/", Some("/"), None, 1000)).await?.0,
        ["c/d/"]
    );
    check_eq!(
        list_names(s, &b, q("a/", Some("/"), None, 1000)).await?.0,
        ["a/1", "a/2", "a/b/"]
    );
    // A delimiter of several characters, and an empty one (no folding).
    check_eq!(
        list_names(s, &b, q("", Some("/d/"), None, 1000))
            .await?
            .0
            .len(),
        8
    );
    check_eq!(
        list_names(s, &b, q("", Some(""), None, 1000)).await?.0,
        KEYS
    );
    Ok(())
}

pub async fn list_pages_with_start_after(s: &dyn MetadataStore) -> CaseResult {
    let b = put_keys(s).await?;
    for delimiter in [None, Some("/")] {
        let full = list_names(s, &b, q("", delimiter, None, 1000)).await?.0;
        for max in 1..=4 {
            let mut seen = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let (page, truncated) =
                    list_names(s, &b, q("", delimiter, after.as_deref(), max)).await?;
                check!(
                    page.len() <= max,
                    "page of {} with max-keys {max}",
                    page.len()
                );
                seen.extend(page.iter().cloned());
                after = page.last().cloned();
                if !truncated {
                    break;
                }
                check!(seen.len() <= full.len(), "paging does not end");
            }
            check_eq!(seen, full);
        }
    }
    // A start point inside a folded prefix does not list the prefix again.
    check_eq!(
        list_names(s, &b, q("", Some("/"), Some("a/1"), 1000))
            .await?
            .0,
        ["ab", "b", "c/", "é"]
    );
    check_eq!(
        list_names(s, &b, q("", None, Some("b"), 1000)).await?.0,
        ["c/d/e", "c/d/f", "é"]
    );
    Ok(())
}

pub async fn list_max_keys_zero(s: &dyn MetadataStore) -> CaseResult {
    let b = put_keys(s).await?;
    check_eq!(
        list_names(s, &b, q("", None, None, 0)).await?,
        (vec![], false)
    );
    Ok(())
}

pub async fn list_stays_inside_its_bucket(s: &dyn MetadataStore) -> CaseResult {
    let b1 = bucket("bucket1");
    let b10 = bucket("bucket10");
    create_bucket(s, &b1).await?;
    create_bucket(s, &b10).await?;
    put(s, &b1, "one", inline("1")).await?;
    put(s, &b10, "ten", inline("10")).await?;
    check_eq!(list_names(s, &b1, q("", None, None, 100)).await?.0, ["one"]);
    check_eq!(
        list_names(s, &b10, q("", None, None, 100)).await?.0,
        ["ten"]
    );
    check_eq!(s.get_object(&b1, &key("ten")).await?, None);
    Ok(())
}

pub async fn condition_if_absent(s: &dyn MetadataStore) -> CaseResult {
    let b = with_bucket(s).await?;
    put_if(s, &b, "k", inline("first"), WriteCondition::IfAbsent).await?;
    let r = put_if(
        s,
        &b,
        "k",
        object("second", striped(9, &[1])),
        WriteCondition::IfAbsent,
    )
    .await;
    check_err!(r, MetadataError::PreconditionFailed(_));
    check_eq!(
        s.get_object(&b, &key("k")).await?.map(|o| o.etag),
        Some("first".to_string())
    );
    check!(gc_shards(s).await?.is_empty(), "a refused write queued GC");
    Ok(())
}

pub async fn condition_if_match(s: &dyn MetadataStore) -> CaseResult {
    let b = with_bucket(s).await?;
    let r = put_if(s, &b, "k", inline("x"), WriteCondition::IfMatch("*".into())).await;
    check_err!(r, MetadataError::NoSuchKey);
    let r = put_if(
        s,
        &b,
        "k",
        inline("x"),
        WriteCondition::IfMatch("e1".into()),
    )
    .await;
    check_err!(r, MetadataError::NoSuchKey);
    put(s, &b, "k", inline("e1")).await?;
    let r = put_if(
        s,
        &b,
        "k",
        inline("e2"),
        WriteCondition::IfMatch("other".into()),
    )
    .await;
    check_err!(r, MetadataError::PreconditionFailed(_));
    put_if(
        s,
        &b,
        "k",
        inline("e2"),
        WriteCondition::IfMatch("e1".into()),
    )
    .await?;
    put_if(
        s,
        &b,
        "k",
        inline("e3"),
        WriteCondition::IfMatch("*".into()),
    )
    .await?;
    check_eq!(
        s.get_object(&b, &key("k")).await?.map(|o| o.etag),
        Some("e3".to_string())
    );
    Ok(())
}

pub async fn condition_if_none_match(s: &dyn MetadataStore) -> CaseResult {
    let b = with_bucket(s).await?;
    put_if(
        s,
        &b,
        "k",
        inline("e1"),
        WriteCondition::IfNoneMatch("e1".into()),
    )
    .await?;
    let r = put_if(
        s,
        &b,
        "k",
        inline("e2"),
        WriteCondition::IfNoneMatch("e1".into()),
    )
    .await;
    check_err!(r, MetadataError::PreconditionFailed(_));
    put_if(
        s,
        &b,
        "k",
        inline("e2"),
        WriteCondition::IfNoneMatch("zz".into()),
    )
    .await?;
    check_eq!(
        s.get_object(&b, &key("k")).await?.map(|o| o.etag),
        Some("e2".to_string())
    );
    Ok(())
}
