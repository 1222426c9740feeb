//! Conditional PUT with aws-sdk-s3: `If-None-Match: *` creates only, `If-Match` replaces
//! only the expected version, and of racing creators exactly one wins.

use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn conditional_puts_create_once_and_replace_only_what_was_read() {
    let server = Server::start();
    let s3 = client(&server);
    s3.create_bucket().bucket("cond").send().await.unwrap();
    let put = |key: &'static str, body: Vec<u8>| {
        s3.put_object().bucket("cond").key(key).body(body.into())
    };

    let first = put("k", b"one".to_vec())
        .if_none_match("*")
        .send()
        .await
        .unwrap();
    let etag1 = first.e_tag().unwrap().to_string();
    let e = put("k", b"two".to_vec())
        .if_none_match("*")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&e).as_deref(), Some("PreconditionFailed"));
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(412));
    assert_eq!(get_bytes(&s3, "cond", "k").await, b"one");

    // If-None-Match with an ETag: refused while that ETag is current.
    let e = put("k", b"x".to_vec())
        .if_none_match(&etag1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&e).as_deref(), Some("PreconditionFailed"));
    put("other", b"x".to_vec())
        .if_none_match(&etag1)
        .send()
        .await
        .unwrap();

    // If-Match: only over the ETag that was read.
    let e = put("k", b"three".to_vec())
        .if_match("\"0123456789abcdef0123456789abcdef\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&e).as_deref(), Some("PreconditionFailed"));
    put("k", b"four".to_vec())
        .if_match(&etag1)
        .send()
        .await
        .unwrap();
    assert_eq!(get_bytes(&s3, "cond", "k").await, b"four");
    let e = put("missing", b"x".to_vec())
        .if_match(&etag1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&e).as_deref(), Some("NoSuchKey"));

    // A large (erasure-coded) body that loses its condition leaves no shards behind.
    let before = server
        .metric("cairn_datanode_shards{node=\"dn0\"}")
        .unwrap_or(0.0);
    let e = put("k", random_bytes(6 << 20, 3))
        .if_none_match("*")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code_of(&e).as_deref(), Some("PreconditionFailed"));
    assert_eq!(
        server
            .metric("cairn_datanode_shards{node=\"dn0\"}")
            .unwrap_or(0.0),
        before
    );

    // Eight racing creators of one key: exactly one wins, the others get 412.
    let racers = (0..8u64).map(|i| {
        let s3 = s3.clone();
        async move {
            s3.put_object()
                .bucket("cond")
                .key("race")
                .body(random_bytes(300_000, i).into())
                .if_none_match("*")
                .send()
                .await
                .map(|_| i)
                .map_err(|e| code_of(&e))
        }
    });
    let results = futures::future::join_all(racers).await;
    let winners: Vec<u64> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|c| c.as_deref() == Some("PreconditionFailed")));
    assert!(get_bytes(&s3, "cond", "race").await == random_bytes(300_000, winners[0]));
}
