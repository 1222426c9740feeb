//! ListObjects v1 and v2 through aws-sdk-s3: prefixes, delimiters, paging, odd key names.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::EncodingType;

use crate::common::*;

async fn put_keys(s3: &aws_sdk_s3::Client, bucket: &str, keys: &[String]) {
    for k in keys {
        s3.put_object()
            .bucket(bucket)
            .key(k)
            .body(ByteStream::from(k.as_bytes().to_vec()))
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn v2_paging_prefix_delimiter() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("list").send().await.unwrap();
    let mut keys: Vec<String> = (0..25).map(|i| format!("flat/{i:03}")).collect();
    keys.extend(["a/1", "a/2", "a/b/3", "b", "c/x/y", "d"].map(String::from));
    put_keys(&s3, "list", &keys).await;
    keys.sort();

    // Paging with a small page size visits every key once, in order.
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket("list")
            .max_keys(7)
            .set_continuation_token(token.clone())
            .send()
            .await
            .unwrap();
        assert!(page.key_count().unwrap() <= 7);
        seen.extend(page.contents().iter().map(|o| o.key().unwrap().to_string()));
        if page.is_truncated() != Some(true) {
            break;
        }
        token = page.next_continuation_token().map(str::to_string);
        assert!(token.is_some());
    }
    assert_eq!(seen, keys);

    let page = s3
        .list_objects_v2()
        .bucket("list")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let prefixes: Vec<_> = page
        .common_prefixes()
        .iter()
        .map(|p| p.prefix().unwrap().to_string())
        .collect();
    assert_eq!(prefixes, ["a/", "c/", "flat/"]);
    let top: Vec<_> = page.contents().iter().map(|o| o.key().unwrap()).collect();
    assert_eq!(top, ["b", "d"]);

    let page = s3
        .list_objects_v2()
        .bucket("list")
        .prefix("a/")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let objs: Vec<_> = page.contents().iter().map(|o| o.key().unwrap()).collect();
    assert_eq!(objs, ["a/1", "a/2"]);
    assert_eq!(page.common_prefixes()[0].prefix(), Some("a/b/"));

    let page = s3
        .list_objects_v2()
        .bucket("list")
        .start_after("flat/020")
        .max_keys(3)
        .send()
        .await
        .unwrap();
    let objs: Vec<_> = page.contents().iter().map(|o| o.key().unwrap()).collect();
    assert_eq!(objs, ["flat/021", "flat/022", "flat/023"]);
    assert_eq!(page.is_truncated(), Some(true));

    // Common prefixes count toward max-keys and paging continues after them.
    let page = s3
        .list_objects_v2()
        .bucket("list")
        .delimiter("/")
        .max_keys(2)
        .send()
        .await
        .unwrap();
    assert_eq!(page.common_prefixes()[0].prefix(), Some("a/"));
    assert_eq!(page.contents()[0].key(), Some("b"));
    assert_eq!(page.key_count(), Some(2));
    let next = s3
        .list_objects_v2()
        .bucket("list")
        .delimiter("/")
        .max_keys(2)
        .continuation_token(page.next_continuation_token().unwrap())
        .send()
        .await
        .unwrap();
    let objs: Vec<_> = next.contents().iter().map(|o| o.key().unwrap()).collect();
    assert_eq!(objs, ["d"]);
    assert_eq!(next.common_prefixes()[0].prefix(), Some("c/"));
    assert_eq!(next.is_truncated(), Some(true));
    let err = s3
        .list_objects_v2()
        .bucket("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&err).as_deref(), Some("NoSuchBucket"));
}

#[tokio::test(flavor = "multi_thread")]
async fn v1_markers_and_url_encoding() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("list1").send().await.unwrap();
    let keys: Vec<String> = [
        "plain",
        "with space",
        "amp&plus+dash-é\"quote",
        "dir/sub/file",
        "dir/x",
        "percent%20literal",
        "tilde~star*",
    ]
    .map(String::from)
    .to_vec();
    put_keys(&s3, "list1", &keys).await;
    let mut sorted = keys.clone();
    sorted.sort();

    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = s3
            .list_objects()
            .bucket("list1")
            .max_keys(2)
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap();
        let names: Vec<String> = page
            .contents()
            .iter()
            .map(|o| o.key().unwrap().to_string())
            .collect();
        seen.extend(names.clone());
        if page.is_truncated() != Some(true) {
            break;
        }
        marker = page
            .next_marker()
            .map(str::to_string)
            .or(names.last().cloned());
    }
    assert_eq!(seen, sorted);

    let page = s3
        .list_objects()
        .bucket("list1")
        .encoding_type(EncodingType::Url)
        .prefix("with")
        .send()
        .await
        .unwrap();
    assert_eq!(page.contents()[0].key(), Some("with%20space"));

    for k in &keys {
        let got = s3.get_object().bucket("list1").key(k).send().await.unwrap();
        let body = got.body.collect().await.unwrap().into_bytes();
        assert_eq!(body.as_ref(), k.as_bytes());
    }
}

/// `cairn admin populate` fills a bucket through the object service (in slices, many PUTs
/// at once); the objects list, page and read back like uploaded ones.
#[tokio::test(flavor = "multi_thread")]
async fn admin_populate_makes_objects_that_list_and_read_like_uploads() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("many").send().await.unwrap();
    let (ok, out) = server.cairn_admin(&[
        "populate", "many", "--keys", "2500", "--prefix", "p/", "--size", "3",
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("created 2500 objects"), "{out}");
    let (ok, out) = server.cairn_admin(&["populate", "nope", "--keys", "1"]);
    assert!(!ok && out.contains("404"), "{out}");
    let (ok, out) = server.cairn_admin(&["populate", "many", "--keys", "1", "--size", "65"]);
    assert!(!ok && out.contains("size at most 64"), "{out}");
    assert_eq!(
        server
            .admin_call("POST", "/admin/buckets/many/populate", "{\"count\":1}")
            .status,
        200
    );

    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket("many")
            .prefix("p/")
            .max_keys(1000)
            .set_continuation_token(token.take())
            .send()
            .await
            .unwrap();
        for o in page.contents() {
            assert_eq!(o.size(), Some(3));
            keys.push(o.key().unwrap().to_string());
        }
        match page.next_continuation_token() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    let want: Vec<String> = (0..2500).map(|n| format!("p/{n:010}")).collect();
    assert_eq!(keys, want);
    assert_eq!(get_bytes(&s3, "many", "p/0000001234").await, vec![0u8; 3]);
    let head = s3
        .head_object()
        .bucket("many")
        .key("p/0000002499")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.e_tag(),
        Some(format!("\"{}\"", md5_hex(&[0u8; 3])).as_str())
    );
    // The call without credentials is refused like every admin route.
    let body = "{\"count\":1}";
    let anonymous = cairn_tests::raw_request(
        server.admin,
        format!(
            "POST /admin/buckets/many/populate HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(anonymous.status, 401);
}
