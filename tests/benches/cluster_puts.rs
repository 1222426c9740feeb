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

/// Sums of the metadata counters over the three nodes, and the leader's WAL syncs.
#[derive(Default, Clone, Copy)]
struct Meta {
    writes: f64,
    write_seconds: f64,
    wal_syncs_leader: f64,
    entries_leader: f64,
    wal_syncs_all: f64,
    forward_calls: f64,
    forwarded: f64,
    read_rounds: f64,
    reads: f64,
}

fn scrape(c: &Cluster) -> Meta {
    let mut m = Meta::default();
    for i in 0..3 {
        let text = c.node(i).metrics();
        let get = |name: &str| {
            text.lines()
                .find_map(|l| {
                    l.strip_prefix(name)
                        .and_then(|v| v.trim().parse::<f64>().ok())
                })
                .unwrap_or(0.0)
        };
        m.writes += get("cairn_meta_writes_total ");
        m.write_seconds += get("cairn_meta_write_seconds_total ");
        m.wal_syncs_all += get("cairn_meta_wal_syncs_total ");
        if get("cairn_meta_is_leader ") == 1.0 {
            m.wal_syncs_leader = get("cairn_meta_wal_syncs_total ");
            m.entries_leader = get("cairn_meta_raft_entries_total ");
        }
        m.forward_calls += get("cairn_meta_forward_calls_total ");
        m.forwarded += get("cairn_meta_forwarded_writes_total ");
        m.read_rounds += get("cairn_meta_read_rounds_total ");
        m.reads += get("cairn_meta_reads_total ");
    }
    m
}

fn report(label: &str, a: Meta, b: Meta) {
    let writes = b.writes - a.writes;
    println!(
        "  {label}: {writes:.0} metadata writes, {:.2} ms each, in {:.0} Raft entries; leader WAL syncs {:.0} ({:.1} writes per sync), all nodes {:.0}; forwarded {:.0} in {:.0} calls; {:.0} reads in {:.0} read-index rounds",
        (b.write_seconds - a.write_seconds) * 1000.0 / writes.max(1.0),
        b.entries_leader - a.entries_leader,
        b.wal_syncs_leader - a.wal_syncs_leader,
        writes / (b.wal_syncs_leader - a.wal_syncs_leader).max(1.0),
        b.wal_syncs_all - a.wal_syncs_all,
        b.forwarded - a.forwarded,
        b.forward_calls - a.forward_calls,
        b.reads - a.reads,
        b.read_rounds - a.read_rounds,
    );
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
        let m0 = scrape(&c);
        let one = rate(&gateways, 1, 300, "one").await;
        let m1 = scrape(&c);
        let many = rate(&gateways, 32, 3000, "many").await;
        let m2 = scrape(&c);
        if let Ok(n) = std::env::var("CAIRN_BENCH_CLIENTS") {
            let n: usize = n.parse().unwrap();
            let r = rate(&gateways, n, 100 * n, "extra").await;
            println!("3-node cluster, 1 KiB PUTs, {n} clients: {r:8.1} PUT/s");
        }
        println!("3-node cluster, 1 KiB PUTs, 1 client:   {one:8.1} PUT/s");
        println!("3-node cluster, 1 KiB PUTs, 32 clients: {many:8.1} PUT/s");
        println!("32 clients / 1 client: {:.2}x", many / one);
        report("1 client", m0, m1);
        report("32 clients", m1, m2);
    });
}
