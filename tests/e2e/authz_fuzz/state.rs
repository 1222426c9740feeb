//! The owner's bucket: populated before the run and read back whole after it, to prove
//! that no request changed anything.

use super::*;

/// An answer as comparable text: `show` of the output, or the error's code.
pub(super) fn text<T, E, R>(
    r: Result<T, aws_sdk_s3::error::SdkError<E, R>>,
    show: impl FnOnce(T) -> String,
) -> String
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match r {
        Ok(out) => show(out),
        Err(e) => match code_of(&e) {
            Some(code) => format!("error {code}"),
            None => format!("error {e:?}"),
        },
    }
}

/// What the owner sees of the bucket (and both keys of their buckets), as comparable text:
/// every version (content MD5, metadata, ACL, tags), the delete marker, the bucket's ACL,
/// tags, versioning and CORS, the pending upload and its part, and the bucket lists. An
/// answer that is an error is recorded as its code (a change too, if it was not one).
pub(super) async fn snapshot(
    owner: &Client,
    x: &Client,
    upload_id: &str,
) -> BTreeMap<String, String> {
    let mut s = BTreeMap::new();
    let listed = owner.list_object_versions().bucket(BUCKET).send().await;
    let v = match listed {
        Ok(v) => v,
        Err(e) => {
            s.insert("versions".into(), text(Err::<(), _>(e), |_| String::new()));
            return s;
        }
    };
    assert_ne!(
        v.is_truncated(),
        Some(true),
        "the bucket's versions fit a page"
    );
    for o in v.versions() {
        let (k, vid) = (
            o.key().unwrap_or_default(),
            o.version_id().unwrap_or_default(),
        );
        s.insert(format!("version {k} {vid}"), format!("{o:?}"));
        let got = owner
            .get_object()
            .bucket(BUCKET)
            .key(k)
            .version_id(vid)
            .send()
            .await;
        let object = match got {
            Ok(got) => {
                let meta = format!(
                    "type={:?} length={:?} etag={:?} metadata={:?} tags={:?} modified={:?}",
                    got.content_type(),
                    got.content_length(),
                    got.e_tag(),
                    got.metadata(),
                    got.tag_count(),
                    got.last_modified(),
                );
                match got.body.collect().await {
                    Ok(data) => format!("{meta} md5={}", md5_hex(&data.into_bytes())),
                    Err(e) => format!("{meta} body error {e}"),
                }
            }
            Err(e) => text(Err::<(), _>(e), |_| String::new()),
        };
        s.insert(format!("object {k} {vid}"), object);
        let acl = owner
            .get_object_acl()
            .bucket(BUCKET)
            .key(k)
            .version_id(vid)
            .send()
            .await;
        s.insert(
            format!("acl {k} {vid}"),
            text(acl, |a| format!("{:?} {:?}", a.owner(), a.grants())),
        );
        let tags = owner
            .get_object_tagging()
            .bucket(BUCKET)
            .key(k)
            .version_id(vid)
            .send()
            .await;
        s.insert(
            format!("tags {k} {vid}"),
            text(tags, |t| format!("{:?}", t.tag_set())),
        );
    }
    for m in v.delete_markers() {
        let (k, vid) = (
            m.key().unwrap_or_default(),
            m.version_id().unwrap_or_default(),
        );
        s.insert(format!("marker {k} {vid}"), format!("{m:?}"));
    }
    let acl = owner.get_bucket_acl().bucket(BUCKET).send().await;
    s.insert(
        "bucket acl".into(),
        text(acl, |a| format!("{:?} {:?}", a.owner(), a.grants())),
    );
    let tags = owner.get_bucket_tagging().bucket(BUCKET).send().await;
    s.insert(
        "bucket tags".into(),
        text(tags, |t| format!("{:?}", t.tag_set())),
    );
    let ver = owner.get_bucket_versioning().bucket(BUCKET).send().await;
    s.insert(
        "bucket versioning".into(),
        text(ver, |v| format!("{:?} {:?}", v.status(), v.mfa_delete())),
    );
    let cors = owner.get_bucket_cors().bucket(BUCKET).send().await;
    s.insert(
        "bucket cors".into(),
        text(cors, |c| format!("rules {:?}", c.cors_rules())),
    );
    let ups = owner.list_multipart_uploads().bucket(BUCKET).send().await;
    s.insert(
        "uploads".into(),
        text(ups, |u| {
            let v: Vec<String> = u.uploads().iter().map(|u| format!("{u:?}")).collect();
            format!("{v:?}")
        }),
    );
    let parts = owner
        .list_parts()
        .bucket(BUCKET)
        .key(UPLOAD_KEY)
        .upload_id(upload_id)
        .send()
        .await;
    s.insert(
        "parts".into(),
        text(parts, |p| {
            let v: Vec<String> = p.parts().iter().map(|p| format!("{p:?}")).collect();
            format!("{v:?}")
        }),
    );
    for (who, c) in [("owner", owner), ("X", x)] {
        let b = c.list_buckets().send().await;
        s.insert(
            format!("buckets of {who}"),
            text(b, |b| {
                let names: Vec<&str> = b.buckets().iter().filter_map(|b| b.name()).collect();
                format!("{names:?}")
            }),
        );
    }
    // A bucket X made would not be in the owner's list: asking for its ACL tells.
    let other = owner.get_bucket_acl().bucket("otherbucket").send().await;
    s.insert("otherbucket".into(), text(other, |_| "exists".into()));
    s
}

pub(super) fn diff(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in before {
        match after.get(k) {
            None => out.push(format!("gone: {k}: {v}")),
            Some(w) if w != v => out.push(format!("changed: {k}:\n    was {v}\n    now {w}")),
            _ => {}
        }
    }
    for (k, v) in after {
        if !before.contains_key(k) {
            out.push(format!("new: {k}: {v}"));
        }
    }
    out
}

/// The owner makes the private bucket: versioned, small and striped objects, one with tags,
/// one with metadata, one overwritten, one deleted (behind a delete marker), bucket tags,
/// and a multipart upload left in progress with one part. Returns (keys, version ids,
/// upload id, part ETag).
pub(super) async fn populate(s3: &Client) -> (Vec<String>, Vec<String>, String, String) {
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    s3.put_bucket_versioning()
        .bucket(BUCKET)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    put_bytes(s3, BUCKET, "small", b"a small private object").await;
    put_bytes(s3, BUCKET, "dir/nested.txt", b"nested private object").await;
    put_bytes(s3, BUCKET, "big", &random_bytes(1_536_017, 13)).await;
    s3.put_object()
        .bucket(BUCKET)
        .key("tagged")
        .tagging("team=blue&k=v")
        .body(ByteStream::from_static(b"tagged private object"))
        .send()
        .await
        .unwrap();
    s3.put_object()
        .bucket(BUCKET)
        .key("meta")
        .content_type("text/plain")
        .metadata("color", "green")
        .body(ByteStream::from_static(b"object with metadata"))
        .send()
        .await
        .unwrap();
    put_bytes(s3, BUCKET, "twice", b"first version").await;
    put_bytes(s3, BUCKET, "twice", b"second version").await;
    put_bytes(s3, BUCKET, "gone", b"deleted object").await;
    s3.delete_object()
        .bucket(BUCKET)
        .key("gone")
        .send()
        .await
        .unwrap();
    s3.put_bucket_tagging()
        .bucket(BUCKET)
        .tagging(
            Tagging::builder()
                .tag_set(Tag::builder().key("env").value("prod").build().unwrap())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let upload_id = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(UPLOAD_KEY)
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_string();
    let part = s3
        .upload_part()
        .bucket(BUCKET)
        .key(UPLOAD_KEY)
        .upload_id(&upload_id)
        .part_number(1)
        .body(ByteStream::from_static(b"the first part"))
        .send()
        .await
        .unwrap();
    let part_etag = part.e_tag().unwrap().to_string();
    let v = s3
        .list_object_versions()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap();
    let mut ids: Vec<String> = v
        .versions()
        .iter()
        .filter_map(|o| o.version_id())
        .chain(v.delete_markers().iter().filter_map(|m| m.version_id()))
        .map(str::to_string)
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 9, "8 versions and a delete marker: {ids:?}");
    let keys = [
        "small",
        "dir/nested.txt",
        "big",
        "tagged",
        "meta",
        "twice",
        "gone",
        UPLOAD_KEY,
    ]
    .map(str::to_string)
    .to_vec();
    (keys, ids, upload_id, part_etag)
}
