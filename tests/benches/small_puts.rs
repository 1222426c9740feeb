//! Small-object PUT throughput with 1 and with 32 concurrent clients against one server, in
//! the same run: metadata group commit lets concurrent PUTs share fsyncs, so the ratio shows
//! how well small writes scale with concurrency.
//!
//! ```sh
//! cargo test -p cairn-tests --bench small_puts -- --bench      # debug build of cairn
//! ```

use std::time::Instant;

use aws_credential_types::Credentials;
use aws_sdk_s3::config::{BehaviorVersion, Region};
use aws_sdk_s3::Client;
use cairn_tests::{Server, ACCESS_KEY, SECRET_KEY};
use futures::{stream, StreamExt};

async fn rate(s3: &Client, clients: usize, puts: usize, tag: &str) -> f64 {
    let start = Instant::now();
    stream::iter(0..puts)
        .for_each_concurrent(clients, |i| async move {
            s3.put_object()
                .bucket("small")
                .key(format!("{tag}/{i}"))
                .body(vec![7u8; 1024].into())
                .send()
                .await
                .unwrap();
        })
        .await;
    puts as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("small_puts: run with `cargo test -p cairn-tests --bench small_puts -- --bench`");
        return;
    }
    let server = Server::start_with(&["--scrub-interval", "0"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let creds = Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "bench");
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(server.endpoint())
            .credentials_provider(creds)
            .force_path_style(true)
            .build();
        let s3 = Client::from_conf(conf);
        s3.create_bucket().bucket("small").send().await.unwrap();
        rate(&s3, 4, 200, "warmup").await;
        let one = rate(&s3, 1, 400, "one").await;
        let many = rate(&s3, 32, 3200, "many").await;
        println!("1 KiB PUTs, 1 client:   {one:8.1} PUT/s");
        println!("1 KiB PUTs, 32 clients: {many:8.1} PUT/s");
        println!("32 clients / 1 client: {:.2}x", many / one);
    });
}
