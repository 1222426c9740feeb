//! Bucket versioning end to end with aws-sdk-s3: enabling and suspending, versions of inline,
//! erasure-coded and multipart objects read back by id, delete markers, deleting versions by
//! id, ListObjectVersions paging, suspending. Copies, DeleteObjects and GC are in
//! `versioning_ops`, object tagging in `tagging`.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, CompletedMultipartUpload, CompletedPart, VersioningConfiguration,
};
use aws_sdk_s3::Client;

use crate::common::*;
use crate::multipart::{create, upload, MIB};

pub(crate) async fn set_versioning(s3: &Client, bucket: &str, status: BucketVersioningStatus) {
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(VersioningConfiguration::builder().status(status).build())
        .send()
        .await
        .unwrap();
}

pub(crate) async fn put_version(
    s3: &Client,
    bucket: &str,
    key: &str,
    data: &[u8],
) -> Option<String> {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(data.to_vec()))
        .send()
        .await
        .unwrap()
        .version_id()
        .map(str::to_string)
}

pub(crate) async fn get_version(s3: &Client, bucket: &str, key: &str, id: &str) -> Vec<u8> {
    let got = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .version_id(id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {key}?versionId={id}: {e:?}"));
    assert_eq!(got.version_id(), Some(id));
    got.body.collect().await.unwrap().into_bytes().to_vec()
}

/// Every (key, version id, is delete marker) ListObjectVersions returns with `max_keys` per
/// page, following NextKeyMarker/NextVersionIdMarker; and the number of pages.
pub(crate) async fn all_versions(
    s3: &Client,
    bucket: &str,
    max_keys: i32,
) -> (Vec<(String, String, bool)>, usize) {
    let mut out = Vec::new();
    let (mut km, mut vm): (Option<String>, Option<String>) = (None, None);
    let mut pages = 0;
    loop {
        let page = s3
            .list_object_versions()
            .bucket(bucket)
            .max_keys(max_keys)
            .set_key_marker(km.clone())
            .set_version_id_marker(vm.clone())
            .send()
            .await
            .unwrap();
        pages += 1;
        let mut entries: Vec<(String, String, bool, bool)> = Vec::new();
        for v in page.versions() {
            entries.push((
                v.key().unwrap().into(),
                v.version_id().unwrap().into(),
                false,
                v.is_latest().unwrap(),
            ));
        }
        for m in page.delete_markers() {
            entries.push((
                m.key().unwrap().into(),
                m.version_id().unwrap().into(),
                true,
                m.is_latest().unwrap(),
            ));
        }
        assert!(entries.len() <= max_keys as usize);
        out.extend(entries.into_iter().map(|(k, v, m, _)| (k, v, m)));
        if !page.is_truncated().unwrap_or(false) {
            break;
        }
        km = page.next_key_marker().map(str::to_string);
        vm = page.next_version_id_marker().map(str::to_string);
        assert!(km.is_some(), "a truncated page names where to continue");
    }
    (out, pages)
}

pub(crate) fn status_of<E>(err: &aws_sdk_s3::error::SdkError<E>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

pub(crate) fn header_of<E>(err: &aws_sdk_s3::error::SdkError<E>, name: &str) -> Option<String> {
    err.raw_response()
        .and_then(|r| r.headers().get(name))
        .map(str::to_string)
}

#[tokio::test(flavor = "multi_thread")]
async fn versions_markers_and_deletes_by_id() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("vers").send().await.unwrap();
    // Never versioned: an empty configuration and no version ids.
    let conf = s3
        .get_bucket_versioning()
        .bucket("vers")
        .send()
        .await
        .unwrap();
    assert_eq!(conf.status(), None);
    let pre = random_bytes(100, 1);
    assert_eq!(put_version(&s3, "vers", "k", &pre).await, None);
    put_bytes(&s3, "vers", "other", b"o").await;
    // An unversioned bucket lists each object as its null version.
    assert_eq!(
        all_versions(&s3, "vers", 1).await,
        (
            vec![
                ("k".to_string(), "null".to_string(), false),
                ("other".into(), "null".into(), false)
            ],
            2
        )
    );
    s3.delete_object()
        .bucket("vers")
        .key("other")
        .send()
        .await
        .unwrap();

    set_versioning(&s3, "vers", BucketVersioningStatus::Enabled).await;
    let conf = s3
        .get_bucket_versioning()
        .bucket("vers")
        .send()
        .await
        .unwrap();
    assert_eq!(conf.status(), Some(&BucketVersioningStatus::Enabled));

    // Three versions: inline, erasure-coded (> 64 KiB, several stripes) and multipart.
    let small = random_bytes(1000, 2);
    let big = random_bytes(9 * MIB + 12345, 3);
    let v1 = put_version(&s3, "vers", "k", &small).await.unwrap();
    let v2 = put_version(&s3, "vers", "k", &big).await.unwrap();
    let (p1, p2) = (random_bytes(5 * MIB, 4), random_bytes(777, 5));
    let up = create(&s3, "vers", "k").await;
    let e1 = upload(&s3, "vers", "k", &up, 1, p1.clone()).await;
    let e2 = upload(&s3, "vers", "k", &up, 2, p2.clone()).await;
    let done = s3
        .complete_multipart_upload()
        .bucket("vers")
        .key("k")
        .upload_id(&up)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(CompletedPart::builder().part_number(1).e_tag(e1).build())
                .parts(CompletedPart::builder().part_number(2).e_tag(e2).build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let v3 = done.version_id().unwrap().to_string();
    assert!(v1 != v2 && v2 != v3 && v1 != v3);
    let multi = [p1.as_slice(), p2.as_slice()].concat();

    assert_eq!(get_version(&s3, "vers", "k", &v1).await, small);
    assert_eq!(get_version(&s3, "vers", "k", &v2).await, big);
    assert_eq!(get_version(&s3, "vers", "k", &v3).await, multi);
    // The pre-versioning object is the null version.
    assert_eq!(get_version(&s3, "vers", "k", "null").await, pre);
    assert_eq!(get_bytes(&s3, "vers", "k").await, multi);
    let head = s3
        .head_object()
        .bucket("vers")
        .key("k")
        .version_id(&v2)
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(big.len() as i64));
    let err = s3
        .get_object()
        .bucket("vers")
        .key("k")
        .version_id("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("NoSuchVersion"));
    assert_eq!(status_of(&err), Some(404));

    // A delete marker hides the key from GET and listings.
    let del = s3
        .delete_object()
        .bucket("vers")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(del.delete_marker(), Some(true));
    let marker = del.version_id().unwrap().to_string();
    let err = s3
        .get_object()
        .bucket("vers")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("NoSuchKey"));
    assert_eq!(
        header_of(&err, "x-amz-delete-marker").as_deref(),
        Some("true")
    );
    let err = s3
        .get_object()
        .bucket("vers")
        .key("k")
        .version_id(&marker)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), Some(405));
    let listed = s3.list_objects_v2().bucket("vers").send().await.unwrap();
    assert!(listed.contents().is_empty());
    // Old versions stay readable.
    assert_eq!(get_version(&s3, "vers", "k", &v2).await, big);

    // Deleting the marker by id brings the multipart version back.
    let del = s3
        .delete_object()
        .bucket("vers")
        .key("k")
        .version_id(&marker)
        .send()
        .await
        .unwrap();
    assert_eq!(del.delete_marker(), Some(true));
    assert_eq!(del.version_id(), Some(marker.as_str()));
    assert_eq!(get_bytes(&s3, "vers", "k").await, multi);
    // Deleting the current version makes the previous one current.
    s3.delete_object()
        .bucket("vers")
        .key("k")
        .version_id(&v3)
        .send()
        .await
        .unwrap();
    assert_eq!(get_bytes(&s3, "vers", "k").await, big);
    let err = s3
        .get_object()
        .bucket("vers")
        .key("k")
        .version_id(&v3)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("NoSuchVersion"));

    // A bucket holding versions or markers cannot be deleted.
    let err = s3.delete_bucket().bucket("vers").send().await.unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("BucketNotEmpty"));
    for id in [v2.as_str(), v1.as_str(), "null"] {
        s3.delete_object()
            .bucket("vers")
            .key("k")
            .version_id(id)
            .send()
            .await
            .unwrap();
    }
    assert!(all_versions(&s3, "vers", 1000).await.0.is_empty());
    s3.delete_bucket().bucket("vers").send().await.unwrap();

    // Once enabled, never back to unversioned: bad bodies are refused.
    s3.create_bucket().bucket("conf").send().await.unwrap();
    let bad = s3
        .put_bucket_versioning()
        .bucket("conf")
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::from("Off"))
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&bad).as_deref(), Some("MalformedXML"));
    let mfa = s3
        .put_bucket_versioning()
        .bucket("conf")
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .mfa_delete(aws_sdk_s3::types::MfaDelete::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&mfa).as_deref(), Some("NotImplemented"));
}

#[tokio::test(flavor = "multi_thread")]
async fn listing_versions_pages_in_s3_order() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("lvers").send().await.unwrap();
    set_versioning(&s3, "lvers", BucketVersioningStatus::Enabled).await;
    // Written interleaved so that key order and write order differ.
    let mut want: Vec<(String, Vec<(String, bool)>)> = ["b", "a/x", "c", "a"]
        .iter()
        .map(|k| (k.to_string(), Vec::new()))
        .collect();
    for round in 0..3 {
        for (key, hist) in want.iter_mut() {
            if round == 2 && key == "c" {
                let d = s3
                    .delete_object()
                    .bucket("lvers")
                    .key(key.as_str())
                    .send()
                    .await
                    .unwrap();
                hist.push((d.version_id().unwrap().to_string(), true));
            } else {
                let id = put_version(&s3, "lvers", key, format!("{key}{round}").as_bytes()).await;
                hist.push((id.unwrap(), false));
            }
        }
    }
    want.sort();
    let expected: Vec<(String, String, bool)> = want
        .iter()
        .flat_map(|(k, hist)| {
            hist.iter()
                .rev()
                .map(move |(id, m)| (k.clone(), id.clone(), *m))
        })
        .collect();
    let (full, pages) = all_versions(&s3, "lvers", 1000).await;
    assert_eq!(pages, 1);
    // The SDK separates versions from markers; compare as sets, then order of versions.
    let mut sorted_full = full.clone();
    sorted_full.sort();
    let mut sorted_want = expected.clone();
    sorted_want.sort();
    assert_eq!(sorted_full, sorted_want);
    let versions_only: Vec<_> = expected.iter().filter(|e| !e.2).cloned().collect();
    assert_eq!(
        full.iter().filter(|e| !e.2).cloned().collect::<Vec<_>>(),
        versions_only
    );
    for max in 1..=expected.len() as i32 + 1 {
        let (got, pages) = all_versions(&s3, "lvers", max).await;
        let mut got_sorted = got.clone();
        got_sorted.sort();
        assert_eq!(got_sorted, sorted_want, "max-keys {max}");
        assert_eq!(
            got.len(),
            expected.len(),
            "no entry twice with max-keys {max}"
        );
        assert_eq!(
            pages,
            expected.len().div_ceil(max as usize).max(1),
            "max-keys {max}"
        );
    }
    // Latest flags: exactly one per key, on its newest entry.
    let page = s3
        .list_object_versions()
        .bucket("lvers")
        .send()
        .await
        .unwrap();
    let latest: Vec<_> = page
        .versions()
        .iter()
        .filter(|v| v.is_latest() == Some(true))
        .map(|v| v.key().unwrap().to_string())
        .collect();
    assert_eq!(latest, ["a", "a/x", "b"]);
    assert_eq!(page.delete_markers().len(), 1);
    assert_eq!(page.delete_markers()[0].is_latest(), Some(true));
    // Prefix and delimiter fold `a/x` into a common prefix.
    let page = s3
        .list_object_versions()
        .bucket("lvers")
        .prefix("a")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    assert_eq!(page.versions().len(), 3);
    assert_eq!(page.common_prefixes()[0].prefix(), Some("a/"));
    let err = s3
        .list_object_versions()
        .bucket("lvers")
        .version_id_marker("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("InvalidArgument"));
}

#[tokio::test(flavor = "multi_thread")]
async fn suspended_buckets_overwrite_the_null_version() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("susp").send().await.unwrap();
    set_versioning(&s3, "susp", BucketVersioningStatus::Enabled).await;
    let v1 = put_version(&s3, "susp", "k", b"one").await.unwrap();
    set_versioning(&s3, "susp", BucketVersioningStatus::Suspended).await;
    let conf = s3
        .get_bucket_versioning()
        .bucket("susp")
        .send()
        .await
        .unwrap();
    assert_eq!(conf.status(), Some(&BucketVersioningStatus::Suspended));
    let got = s3
        .put_object()
        .bucket("susp")
        .key("k")
        .body(ByteStream::from_static(b"two"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.version_id(), None);
    put_version(&s3, "susp", "k", b"three").await;
    assert_eq!(get_version(&s3, "susp", "k", "null").await, b"three");
    assert_eq!(get_version(&s3, "susp", "k", &v1).await, b"one");
    let (all, _) = all_versions(&s3, "susp", 1000).await;
    assert_eq!(
        all,
        [
            ("k".to_string(), "null".to_string(), false),
            ("k".into(), v1.clone(), false)
        ]
    );
    // A suspended delete puts a null delete marker in place of the null version.
    let d = s3
        .delete_object()
        .bucket("susp")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(d.delete_marker(), Some(true));
    assert_eq!(d.version_id(), Some("null"));
    let (all, _) = all_versions(&s3, "susp", 1000).await;
    let mut ids: Vec<_> = all.iter().map(|(_, v, m)| (v.as_str(), *m)).collect();
    ids.sort();
    let mut want = vec![("null", true), (v1.as_str(), false)];
    want.sort();
    assert_eq!(ids, want);
}
