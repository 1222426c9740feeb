//! Multipart uploads: creating, recording parts (replacing one queues its shards), listing
//! parts and uploads, completing (part order, ETags, too-small parts, repeated completions,
//! write conditions) and aborting.

use md5::{Digest, Md5};

use super::fixtures::*;
use super::{case, check, check_eq, check_err, fail, Case, CaseResult};
use crate::records::{ObjectData, ObjectRecord};
use crate::{
    Command, CommandOutput, CompletePart, MetadataError, MetadataStore, UploadEntry, UploadQuery,
    WriteCondition, MIN_PART_SIZE,
};

pub fn cases() -> Vec<Case> {
    vec![
        case!(multipart::create_get_and_refuse_duplicates),
        case!(multipart::parts_need_an_upload_and_a_valid_number),
        case!(multipart::replacing_a_part_queues_its_shards),
        case!(multipart::list_parts_pages),
        case!(multipart::complete_makes_the_object),
        case!(multipart::complete_checks_part_order),
        case!(multipart::complete_refuses_small_parts),
        case!(multipart::complete_checks_the_parts),
        case!(multipart::complete_repeated_answers_the_same_object),
        case!(multipart::complete_checks_the_write_condition),
        case!(multipart::abort_queues_every_part),
        case!(multipart::list_uploads_with_markers_and_prefixes),
    ]
}

fn cp(n: u32, etag: &str) -> CompletePart {
    CompletePart {
        part_number: n,
        etag: etag.into(),
        checksum: None,
    }
}

fn complete(b: &crate::BucketName, k: &str, id: &str, parts: Vec<CompletePart>) -> Command {
    complete_if(b, k, id, parts, WriteCondition::Always)
}

fn complete_if(
    b: &crate::BucketName,
    k: &str,
    id: &str,
    parts: Vec<CompletePart>,
    condition: WriteCondition,
) -> Command {
    Command::CompleteUpload {
        bucket: b.clone(),
        key: key(k),
        upload_id: id.into(),
        parts,
        last_modified_ms: 5_000,
        checksum: None,
        version_id: "v-complete".into(),
        condition,
    }
}

pub async fn create_get_and_refuse_duplicates(s: &dyn MetadataStore) -> CaseResult {
    let b = with_bucket(s).await?;
    create_upload(s, &b, "k", "u1").await?;
    check_eq!(s.get_upload(&b, &key("k"), "u1").await?, Some(upload("u1")));
    check_eq!(s.get_upload(&b, &key("k"), "u2").await?, None);
    check_eq!(s.get_upload(&b, &key("other"), "u1").await?, None);
    check_err!(
        create_upload(s, &b, "k", "u1").await,
        MetadataError::UploadExists
    );
    check_err!(
        create_upload(s, &b, "k", "").await,
        MetadataError::InvalidArgument(_)
    );
    Ok(())
}

pub async fn parts_need_an_upload_and_a_valid_number(s: &dyn MetadataStore) -> CaseResult {
    let b = with_bucket(s).await?;
    let p = |n| part(n, 10, &md5ish('a'), ObjectData::Inline(vec![1]));
    check_err!(
        put_part(s, &b, "k", "u1", p(1)).await,
        MetadataError::NoSuchUpload
    );
    create_upload(s, &b, "k", "u1").await?;
    check_err!(
        put_part(s, &b, "k", "u1", p(0)).await,
        MetadataError::InvalidArgument(_)
    );
    check_err!(
        put_part(s, &b, "k", "u1", p(10_001)).await,
        MetadataError::InvalidArgument(_)
    );
    put_part(s, &b, "k", "u1", p(10_000)).await?;
    let nested = part(2, 10, &md5ish('b'), ObjectData::Parts(vec![]));
    check_err!(
        put_part(s, &b, "k", "u1", nested).await,
        MetadataError::InvalidArgument(_)
    );
    Ok(())
}

pub async fn replacing_a_part_queues_its_shards(s: &dyn MetadataStore) -> CaseResult {
    let b = with_bucket(s).await?;
    create_upload(s, &b, "k", "u1").await?;
    put_part(
        s,
        &b,
        "k",
        "u1",
        part(3, 10, &md5ish('a'), striped(1, &[1])),
    )
    .await?;
    put_part(
        s,
        &b,
        "k",
        "u1",
        part(3, 20, &md5ish('b'), striped(2, &[2])),
    )
    .await?;
    check_eq!(gc_shards(s).await?, shards_of(1, &[1]));
    let (parts, more) = s.list_parts(&b, &key("k"), "u1", 0, 10).await?;
    check!(!more, "one part reported more");
    check_eq!(parts.iter().map(|p| p.size).collect::<Vec<_>>(), [20]);
    Ok(())
}

pub async fn list_parts_pages(s: &dyn MetadataStore) -> CaseResult {
    let b = with_bucket(s).await?;
    create_upload(s, &b, "k", "u1").await?;
    create_upload(s, &b, "k", "u2").await?;
    for n in [9, 1, 10_000, 2, 5] {
        put_part(
            s,
            &b,
            "k",
            "u1",
            part(n, 10, &md5ish('a'), ObjectData::Inline(vec![])),
        )
        .await?;
    }
    put_part(
        s,
        &b,
        "k",
        "u2",
        part(3, 10, &md5ish('a'), ObjectData::Inline(vec![])),
    )
    .await?;
    let bk = &b;
    let page = |after, max| async move {
        let (parts, more) = s.list_parts(bk, &key("k"), "u1", after, max).await?;
        Ok::<_, MetadataError>((
            parts.iter().map(|p| p.part_number).collect::<Vec<_>>(),
            more,
        ))
    };
    check_eq!(page(0, 2).await?, (vec![1, 2], true));
    check_eq!(page(2, 2).await?, (vec![5, 9], true));
    check_eq!(page(9, 2).await?, (vec![10_000], false));
    check_eq!(page(0, 5).await?, (vec![1, 2, 5, 9, 10_000], false));
    check_eq!(page(10_000, 5).await?, (vec![], false));
    Ok(())
}

/// An upload with part 1 (large, striped), 2 (small) and 3 (small, never completed).
async fn three_parts(s: &dyn MetadataStore) -> Result<crate::BucketName, MetadataError> {
    let b = with_bucket(s).await?;
    create_upload(s, &b, "k", "u1").await?;
    put_part(
        s,
        &b,
        "k",
        "u1",
        part(1, MIN_PART_SIZE, &md5ish('a'), striped(1, &[1])),
    )
    .await?;
    put_part(
        s,
        &b,
        "k",
        "u1",
        part(2, 10, &md5ish('b'), ObjectData::Inline(vec![2])),
    )
    .await?;
    put_part(
        s,
        &b,
        "k",
        "u1",
        part(3, 10, &md5ish('c'), striped(3, &[3])),
    )
    .await?;
    Ok(b)
}

fn completed(out: CommandOutput) -> Result<ObjectRecord, super::Failure> {
    match out {
        CommandOutput::Completed(r) => Ok(*r),
        other => Err(fail!("completion gave {other:?}")),
    }
}

pub async fn complete_makes_the_object(s: &dyn MetadataStore) -> CaseResult {
    let b = three_parts(s).await?;
    let out = s
        .apply(complete(
            &b,
            "k",
            "u1",
            vec![cp(1, &md5ish('a')), cp(2, &md5ish('b'))],
        ))
        .await?;
    let rec = completed(out)?;
    let mut md5 = Md5::new();
    md5.update(hex::decode(md5ish('a')).unwrap_or_default());
    md5.update(hex::decode(md5ish('b')).unwrap_or_default());
    check_eq!(rec.etag, format!("{}-2", hex::encode(md5.finalize())));
    check_eq!(rec.size, MIN_PART_SIZE + 10);
    check_eq!(rec.upload_id.as_deref(), Some("u1"));
    check_eq!(rec.content_type.as_deref(), Some("video/mp4"));
    check_eq!(rec.tags, upload("u1").tags);
    check_eq!(rec.version_id, None);
    match &rec.data {
        ObjectData::Parts(p) => {
            check_eq!(p.iter().map(|p| p.part_number).collect::<Vec<_>>(), [1, 2])
        }
        other => return Err(fail!("completed data {other:?}")),
    }
    check_eq!(s.get_object(&b, &key("k")).await?, Some(rec));
    check_eq!(s.get_upload(&b, &key("k"), "u1").await?, None);
    check_eq!(
        s.list_parts(&b, &key("k"), "u1", 0, 10).await?,
        (vec![], false)
    );
    check_eq!(gc_shards(s).await?, shards_of(3, &[3]));
    Ok(())
}

pub async fn complete_checks_part_order(s: &dyn MetadataStore) -> CaseResult {
    let b = three_parts(s).await?;
    let r = s
        .apply(complete(
            &b,
            "k",
            "u1",
            vec![cp(2, &md5ish('b')), cp(1, &md5ish('a'))],
        ))
        .await;
    check_err!(r, MetadataError::InvalidPartOrder);
    let r = s
        .apply(complete(
            &b,
            "k",
            "u1",
            vec![cp(1, &md5ish('a')), cp(1, &md5ish('a'))],
        ))
        .await;
    check_err!(r, MetadataError::InvalidPartOrder);
    check!(
        s.get_upload(&b, &key("k"), "u1").await?.is_some(),
        "a refused completion ended the upload"
    );
    Ok(())
}

pub async fn complete_refuses_small_parts(s: &dyn MetadataStore) -> CaseResult {
    let b = three_parts(s).await?;
    let r = s
        .apply(complete(
            &b,
            "k",
            "u1",
            vec![cp(2, &md5ish('b')), cp(3, &md5ish('c'))],
        ))
        .await;
    check_err!(r, MetadataError::EntityTooSmall { part_number: 2 });
    // The last part may be small.
    s.apply(complete(
        &b,
        "k",
        "u1",
        vec![cp(1, &md5ish('a')), cp(3, &md5ish('c'))],
    ))
    .await?;
    Ok(())
}

pub async fn complete_checks_the_parts(s: &dyn MetadataStore) -> CaseResult {
    let b = three_parts(s).await?;
    let r = s
        .apply(complete(&b, "k", "u1", vec![cp(1, &md5ish('f'))]))
        .await;
    check_err!(r, MetadataError::InvalidPart(_));
    let r = s
        .apply(complete(
            &b,
            "k",
            "u1",
            vec![cp(1, &md5ish('a')), cp(7, &md5ish('a'))],
        ))
        .await;
    check_err!(r, MetadataError::InvalidPart(_));
    check_err!(
        s.apply(complete(&b, "k", "u1", vec![])).await,
        MetadataError::InvalidArgument(_)
    );
    check_err!(
        s.apply(complete(&b, "k", "u9", vec![cp(1, &md5ish('a'))]))
            .await,
        MetadataError::NoSuchUpload
    );
    check_eq!(s.get_object(&b, &key("k")).await?, None);
    Ok(())
}

pub async fn complete_repeated_answers_the_same_object(s: &dyn MetadataStore) -> CaseResult {
    let b = three_parts(s).await?;
    let parts = vec![cp(1, &md5ish('a')), cp(2, &md5ish('b'))];
    let first = completed(s.apply(complete(&b, "k", "u1", parts.clone())).await?)?;
    let again = completed(s.apply(complete(&b, "k", "u1", parts)).await?)?;
    check_eq!(again, first);
    let other = s
        .apply(complete(&b, "k", "u1", vec![cp(1, &md5ish('a'))]))
        .await;
    check_err!(other, MetadataError::NoSuchUpload);
    check_eq!(s.gc_pending(10).await?.len(), 1);
    Ok(())
}

pub async fn complete_checks_the_write_condition(s: &dyn MetadataStore) -> CaseResult {
    let b = three_parts(s).await?;
    put(s, &b, "k", inline("there")).await?;
    let parts = vec![cp(1, &md5ish('a'))];
    let r = s
        .apply(complete_if(&b, "k", "u1", parts, WriteCondition::IfAbsent))
        .await;
    check_err!(r, MetadataError::PreconditionFailed(_));
    check!(
        s.get_upload(&b, &key("k"), "u1").await?.is_some(),
        "the refused completion ended the upload"
    );
    check_eq!(
        s.get_object(&b, &key("k")).await?.map(|o| o.etag),
        Some("there".to_string())
    );
    Ok(())
}

pub async fn abort_queues_every_part(s: &dyn MetadataStore) -> CaseResult {
    let b = three_parts(s).await?;
    let abort = || Command::AbortUpload {
        bucket: b.clone(),
        key: key("k"),
        upload_id: "u1".into(),
    };
    s.apply(abort()).await?;
    check_eq!(
        gc_shards(s).await?,
        [shards_of(1, &[1]), shards_of(3, &[3])].concat()
    );
    check_eq!(s.get_upload(&b, &key("k"), "u1").await?, None);
    check_err!(s.apply(abort()).await, MetadataError::NoSuchUpload);
    Ok(())
}

fn upload_names(entries: &[UploadEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| match e {
            UploadEntry::Upload(k, rec) => format!("{k}#{}", rec.upload_id),
            UploadEntry::Prefix(p) => p.clone(),
        })
        .collect()
}

pub async fn list_uploads_with_markers_and_prefixes(s: &dyn MetadataStore) -> CaseResult {
    let b = with_bucket(s).await?;
    for (k, id) in [
        ("a", "02"),
        ("a", "01"),
        ("d/x", "05"),
        ("d/y", "06"),
        ("e", "07"),
    ] {
        create_upload(s, &b, k, id).await?;
    }
    let bk = &b;
    let list = |q: UploadQuery| async move { s.list_uploads(bk, &q).await };
    let q =
        |prefix: &str, delim: Option<&str>, km: Option<&str>, um: Option<&str>, max| UploadQuery {
            prefix: prefix.into(),
            delimiter: delim.map(Into::into),
            key_marker: km.map(Into::into),
            upload_id_marker: um.map(Into::into),
            max_uploads: max,
        };
    let all = list(q("", None, None, None, 100)).await?;
    check_eq!(
        upload_names(&all.entries),
        ["a#01", "a#02", "d/x#05", "d/y#06", "e#07"]
    );
    check!(!all.is_truncated, "complete listing truncated");
    let folded = list(q("", Some("/"), None, None, 100)).await?;
    check_eq!(
        upload_names(&folded.entries),
        ["a#01", "a#02", "d/", "e#07"]
    );
    let page = list(q("", None, None, None, 2)).await?;
    check_eq!(upload_names(&page.entries), ["a#01", "a#02"]);
    check!(page.is_truncated, "a first page of two is not truncated");
    let after_id = list(q("", None, Some("a"), Some("01"), 100)).await?;
    check_eq!(
        upload_names(&after_id.entries),
        ["a#02", "d/x#05", "d/y#06", "e#07"]
    );
    let after_key = list(q("", Some("/"), Some("a"), None, 100)).await?;
    check_eq!(upload_names(&after_key.entries), ["d/", "e#07"]);
    let past_prefix = list(q("", Some("/"), Some("d/"), None, 100)).await?;
    check_eq!(upload_names(&past_prefix.entries), ["e#07"]);
    let under = list(q("d/", None, None, None, 100)).await?;
    check_eq!(upload_names(&under.entries), ["d/x#05", "d/y#06"]);
    Ok(())
}
