//! Small-object PUT throughput on a three-node loopback cluster (real `cairn server`
//! processes, Raft over loopback), with 1 and with 32 concurrent clients spread over the
//! three gateways, in the same run. Concurrent metadata writes share Raft entries' appends,
//! log fsyncs and state-machine batches, so throughput grows with concurrency instead of
//! paying one replicated fsync per PUT.
//!
//! ```sh
//! cargo test -p cairn-tests --bench cluster_puts -- --bench      # debug build of cairn
//! ```

use std::time::Instant;

use aws_credential_types::Credentials;
use aws_sdk_s3::config::{BehaviorVersion, Region};
use aws_sdk_s3::Client;
use cairn_tests::cluster::Cluster;
use cairn_tests::{ACCESS_KEY, SECRET_KEY};
use futures::{stream, StreamExt};

async fn rate(gateways: &[Client], clients: usize, puts: usize, tag: &str) -> f64 {
    let start = Instant::now();
    stream::iter(0..puts)
        .for_each_concurrent(clients, |i| async move {
            gateways[i % gateways.len()]
                .put_object()
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
        println!(
            "cluster_puts: run with `cargo test -p cairn-tests --bench cluster_puts -- --bench`"
        );
        return;
    }
    let c = Cluster::start(3, 2, &["--ec", "4+2", "--scrub-interval", "0"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let gateways: Vec<Client> = (0..3)
            .map(|i| {
                let creds = Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "bench");
                let conf = aws_sdk_s3::Config::builder()
                    .behavior_version(BehaviorVersion::latest())
                    .region(Region::new("us-east-1"))
                    .endpoint_url(c.node(i).endpoint())
                    .credentials_provider(creds)
                    .force_path_style(true)
                    .build();
                Client::from_conf(conf)
            })
            .collect();
        gateways[0]
            .create_bucket()
            .bucket("small")
            .send()
            .await
            .unwrap();
        rate(&gateways, 4, 200, "warmup").await;
        let one = rate(&gateways, 1, 300, "one").await;
        let many = rate(&gateways, 32, 3000, "many").await;
        if let Ok(n) = std::env::var("CAIRN_BENCH_CLIENTS") {
            let n: usize = n.parse().unwrap();
            let r = rate(&gateways, n, 100 * n, "extra").await;
            println!("3-node cluster, 1 KiB PUTs, {n} clients: {r:8.1} PUT/s");
        }
        println!("3-node cluster, 1 KiB PUTs, 1 client:   {one:8.1} PUT/s");
        println!("3-node cluster, 1 KiB PUTs, 32 clients: {many:8.1} PUT/s");
        println!("32 clients / 1 client: {:.2}x", many / one);
    });
}
