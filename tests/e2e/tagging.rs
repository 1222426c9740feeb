//! Object tagging end to end with aws-sdk-s3: `x-amz-tagging` on PUT and multipart uploads,
//! Put/Get/DeleteObjectTagging (per version), `x-amz-tagging-count`, the tag limits, and
//! `x-amz-tagging-directive` on copies.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, CompletedMultipartUpload, CompletedPart, Tag, Tagging, TaggingDirective,
};
use aws_sdk_s3::Client;

use crate::common::*;
use crate::multipart::upload;
use crate::versioning::{set_versioning, status_of};

fn tagging(pairs: &[(&str, &str)]) -> Tagging {
    let mut b = Tagging::builder();
    for (k, v) in pairs {
        b = b.tag_set(Tag::builder().key(*k).value(*v).build().unwrap());
    }
    b.build().unwrap()
}

async fn tags_of(
    s3: &Client,
    bucket: &str,
    key: &str,
    version: Option<&str>,
) -> Vec<(String, String)> {
    let got = s3
        .get_object_tagging()
        .bucket(bucket)
        .key(key)
        .set_version_id(version.map(str::to_string))
        .send()
        .await
        .unwrap();
    let mut tags: Vec<_> = got
        .tag_set()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    tags.sort();
    tags
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn tagging_round_trips_limits_and_copies() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("tags").send().await.unwrap();
    // No tags: an empty TagSet and no count header.
    put_bytes(&s3, "tags", "plain", b"x").await;
    assert!(tags_of(&s3, "tags", "plain", None).await.is_empty());
    let got = s3
        .get_object()
        .bucket("tags")
        .key("plain")
        .send()
        .await
        .unwrap();
    assert_eq!(got.tag_count(), None);

    // x-amz-tagging on PUT, URL-encoded.
    s3.put_object()
        .bucket("tags")
        .key("k")
        .tagging("team=data%20eng&tier=gold&empty=")
        .body(ByteStream::from_static(b"hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags_of(&s3, "tags", "k", None).await,
        pairs(&[("empty", ""), ("team", "data eng"), ("tier", "gold")])
    );
    let head = s3
        .head_object()
        .bucket("tags")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(head.tag_count(), Some(3));

    // PutObjectTagging replaces the whole set; DeleteObjectTagging empties it.
    s3.put_object_tagging()
        .bucket("tags")
        .key("k")
        .tagging(tagging(&[("a", "1"), ("é", &"v".repeat(256))]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags_of(&s3, "tags", "k", None).await,
        pairs(&[("a", "1"), ("é", &"v".repeat(256))])
    );
    s3.delete_object_tagging()
        .bucket("tags")
        .key("k")
        .send()
        .await
        .unwrap();
    assert!(tags_of(&s3, "tags", "k", None).await.is_empty());

    // Limits: 10 tags at most, key ≤ 128 and value ≤ 256 characters, no duplicate keys.
    let ten: Vec<(String, String)> = (0..10).map(|i| (format!("k{i}"), "v".into())).collect();
    let as_ref: Vec<(&str, &str)> = ten.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    s3.put_object_tagging()
        .bucket("tags")
        .key("k")
        .tagging(tagging(&as_ref))
        .send()
        .await
        .unwrap();
    let long_key = "k".repeat(129);
    let long_value = "v".repeat(257);
    let eleven: Vec<(String, String)> = (0..11).map(|i| (format!("k{i}"), "v".into())).collect();
    let eleven: Vec<(&str, &str)> = eleven
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    for bad in [
        eleven,
        vec![(long_key.as_str(), "v")],
        vec![("k", long_value.as_str())],
        vec![("k", "1"), ("k", "2")],
    ] {
        let err = s3
            .put_object_tagging()
            .bucket("tags")
            .key("k")
            .tagging(tagging(&bad))
            .send()
            .await
            .unwrap_err();
        assert_eq!(code_of(&err).as_deref(), Some("InvalidTag"), "{bad:?}");
        assert_eq!(status_of(&err), Some(400));
    }
    assert_eq!(tags_of(&s3, "tags", "k", None).await.len(), 10);
    let err = s3
        .put_object()
        .bucket("tags")
        .key("k2")
        .tagging("a=1&a=2")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("InvalidTag"));
    let err = s3
        .get_object_tagging()
        .bucket("tags")
        .key("missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("NoSuchKey"));

    // Copies keep the source's tags (COPY) or take the request's (REPLACE).
    s3.put_object_tagging()
        .bucket("tags")
        .key("k")
        .tagging(tagging(&[("src", "yes")]))
        .send()
        .await
        .unwrap();
    s3.copy_object()
        .bucket("tags")
        .key("c1")
        .copy_source("tags/k")
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags_of(&s3, "tags", "c1", None).await,
        pairs(&[("src", "yes")])
    );
    s3.copy_object()
        .bucket("tags")
        .key("c2")
        .copy_source("tags/k")
        .tagging_directive(TaggingDirective::Replace)
        .tagging("dst=1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags_of(&s3, "tags", "c2", None).await,
        pairs(&[("dst", "1")])
    );
    s3.copy_object()
        .bucket("tags")
        .key("c3")
        .copy_source("tags/k")
        .tagging_directive(TaggingDirective::Replace)
        .send()
        .await
        .unwrap();
    assert!(tags_of(&s3, "tags", "c3", None).await.is_empty());

    // Multipart uploads take their tags at creation.
    let up = s3
        .create_multipart_upload()
        .bucket("tags")
        .key("mp")
        .tagging("mp=1")
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_string();
    let e1 = upload(&s3, "tags", "mp", &up, 1, b"part".to_vec()).await;
    s3.complete_multipart_upload()
        .bucket("tags")
        .key("mp")
        .upload_id(&up)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(CompletedPart::builder().part_number(1).e_tag(e1).build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags_of(&s3, "tags", "mp", None).await,
        pairs(&[("mp", "1")])
    );

    // Object tags do not leak into the bucket's own tag set.
    let err = s3
        .get_bucket_tagging()
        .bucket("tags")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("NoSuchTagSet"));
}

#[tokio::test(flavor = "multi_thread")]
async fn tags_belong_to_versions() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("tvers").send().await.unwrap();
    set_versioning(&s3, "tvers", BucketVersioningStatus::Enabled).await;
    let put = |body: &'static [u8], tags: &'static str| {
        let s3 = s3.clone();
        async move {
            s3.put_object()
                .bucket("tvers")
                .key("k")
                .tagging(tags)
                .body(ByteStream::from_static(body))
                .send()
                .await
                .unwrap()
                .version_id()
                .unwrap()
                .to_string()
        }
    };
    let v1 = put(b"one", "v=1").await;
    let v2 = put(b"two", "v=2").await;
    assert_eq!(
        tags_of(&s3, "tvers", "k", Some(&v1)).await,
        pairs(&[("v", "1")])
    );
    assert_eq!(tags_of(&s3, "tvers", "k", None).await, pairs(&[("v", "2")]));
    let set = s3
        .put_object_tagging()
        .bucket("tvers")
        .key("k")
        .version_id(&v1)
        .tagging(tagging(&[("old", "yes")]))
        .send()
        .await
        .unwrap();
    assert_eq!(set.version_id(), Some(v1.as_str()));
    assert_eq!(
        tags_of(&s3, "tvers", "k", Some(&v1)).await,
        pairs(&[("old", "yes")])
    );
    assert_eq!(
        tags_of(&s3, "tvers", "k", Some(&v2)).await,
        pairs(&[("v", "2")])
    );
    let got = s3
        .get_object()
        .bucket("tvers")
        .key("k")
        .version_id(&v1)
        .send()
        .await
        .unwrap();
    assert_eq!(got.tag_count(), Some(1));
    let err = s3
        .get_object_tagging()
        .bucket("tvers")
        .key("k")
        .version_id("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("NoSuchVersion"));
}
