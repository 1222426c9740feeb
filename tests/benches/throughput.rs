//! End-to-end PUT/GET throughput of one large object through the S3 API, erasure-coded
//! (the default: six local datanodes, 4+2) against the plain single-datanode path
//! (`--datanodes 1 --ec 1+0`), measured in the same run so that the ratio is what counts.
//!
//! Run (the servers are the release `cairn` binary next to the bench executable):
//!
//! ```sh
//! cargo build --release -p cairn
//! cargo bench -p cairn-tests --bench throughput            # 256 MiB, 3 rounds
//! CAIRN_BENCH_MIB=64 CAIRN_BENCH_ROUNDS=5 cargo bench -p cairn-tests --bench throughput
//! ```

use std::time::Instant;

use aws_credential_types::Credentials;
use aws_sdk_s3::config::{BehaviorVersion, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use cairn_tests::{random_bytes, Server, ACCESS_KEY, SECRET_KEY};

fn client(server: &Server) -> Client {
    let creds = Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "cairn-bench");
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(server.endpoint())
        .credentials_provider(creds)
        .force_path_style(true)
        .build();
    Client::from_conf(conf)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median PUT and GET rates in MiB/s over `rounds` of one `data`-sized object.
async fn measure(server: &Server, data: &[u8], rounds: usize) -> (f64, f64) {
    let s3 = client(server);
    s3.create_bucket().bucket("bench").send().await.unwrap();
    let mib = data.len() as f64 / (1 << 20) as f64;
    let (mut puts, mut gets) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        let key = format!("obj{r}");
        let body = ByteStream::from(data.to_vec());
        let t = Instant::now();
        s3.put_object()
            .bucket("bench")
            .key(&key)
            .body(body)
            .send()
            .await
            .unwrap();
        puts.push(mib / t.elapsed().as_secs_f64());
        let t = Instant::now();
        let mut got = s3
            .get_object()
            .bucket("bench")
            .key(&key)
            .send()
            .await
            .unwrap()
            .body;
        let mut n = 0usize;
        while let Some(chunk) = got.try_next().await.unwrap() {
            n += chunk.len();
        }
        gets.push(mib / t.elapsed().as_secs_f64());
        assert_eq!(n, data.len());
    }
    (median(puts), median(gets))
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing special. Only
    // run the (slow) measurement under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        println!("throughput: run with `cargo bench -p cairn-tests --bench throughput`");
        return;
    }
    let size = env_usize("CAIRN_BENCH_MIB", 256) << 20;
    let rounds = env_usize("CAIRN_BENCH_ROUNDS", 3).max(1);
    let data = random_bytes(size, 1);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let layouts: [(&str, &[&str]); 2] = [
        ("single datanode, 1+0", &["--datanodes", "1", "--ec", "1+0"]),
        ("six datanodes, 4+2", &[]),
    ];
    let mut results = Vec::new();
    for (name, args) in layouts {
        let server = Server::start_with(args);
        let (put, get) = rt.block_on(measure(&server, &data, rounds));
        println!("{name:<24} PUT {put:8.1} MiB/s   GET {get:8.1} MiB/s");
        results.push((put, get));
    }
    let (base, ec) = (results[0], results[1]);
    println!(
        "4+2 / single: PUT {:.2}x, GET {:.2}x ({} MiB object, median of {rounds})",
        ec.0 / base.0,
        ec.1 / base.1,
        size >> 20
    );
}
