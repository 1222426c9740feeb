//! SIGKILL in the middle of a stream of PUTs: after a restart every acknowledged object is
//! intact and no half-written object is visible.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;

use crate::common::*;

#[tokio::test(flavor = "multi_thread")]
async fn kill_during_puts_loses_no_acknowledged_write() {
    // Small stripes so that large objects span many shards and the kill lands mid-object.
    let mut server = Server::start_with(&["--stripe-size", "262144"]);
    let s3 = client(&server);
    s3.create_bucket().bucket("crash").send().await.unwrap();

    // What each key was (or is being) written with, and which writes were acknowledged.
    let sent: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let acked: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let mut tasks = Vec::new();
    for w in 0..8u64 {
        let (s3, sent, acked) = (s3.clone(), sent.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0u64.. {
                let size = match i % 4 {
                    0 => 10,
                    1 => 70_000,
                    2 => 1_000_000,
                    _ => 3_000_000,
                } + (w * 31 + i) as usize;
                let data = random_bytes(size, w * 1000 + i);
                let key = format!("w{w}/obj{i}");
                sent.lock().unwrap().insert(key.clone(), md5_hex(&data));
                let r = s3
                    .put_object()
                    .bucket("crash")
                    .key(&key)
                    .body(ByteStream::from(data))
                    .send()
                    .await;
                match r {
                    Ok(_) => {
                        acked.lock().unwrap().insert(key, String::new());
                    }
                    Err(_) => return,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    server.kill();
    for t in tasks {
        let _ = t.await;
    }
    let acked: Vec<String> = acked.lock().unwrap().keys().cloned().collect();
    assert!(
        acked.len() > 10,
        "too few writes before the kill: {}",
        acked.len()
    );

    server.restart();
    let s3 = client(&server);
    let sent = sent.lock().unwrap().clone();
    for key in &acked {
        let got = s3
            .get_object()
            .bucket("crash")
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("acknowledged {key} lost: {e:?}"));
        let body = got.body.collect().await.unwrap().into_bytes();
        assert_eq!(md5_hex(&body), sent[key], "acknowledged {key} corrupted");
    }
    // Everything listed (including writes in flight at the kill) is whole.
    let mut token = None;
    let mut listed = 0;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket("crash")
            .set_continuation_token(token)
            .send()
            .await
            .unwrap();
        for o in page.contents() {
            let key = o.key().unwrap();
            let got = s3
                .get_object()
                .bucket("crash")
                .key(key)
                .send()
                .await
                .unwrap();
            let body = got.body.collect().await.unwrap().into_bytes();
            assert_eq!(md5_hex(&body), sent[key], "listed {key} is not whole");
            listed += 1;
        }
        if page.is_truncated() != Some(true) {
            break;
        }
        token = page.next_continuation_token().map(str::to_string);
    }
    assert!(listed >= acked.len());
}
