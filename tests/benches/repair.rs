//! Repair speed: MB/s of shards rebuilt after one datanode of six (4+2) loses everything,
//! against the raw sequential read speed of the same disk (the surviving datanodes' segment
//! files), measured in the same run.
//!
//! Run (the server is the release `cairn` binary next to the bench executable):
//!
//! ```sh
//! cargo build --release -p cairn
//! cargo bench -p cairn-tests --bench repair                 # 2 GiB of objects
//! CAIRN_BENCH_MIB=512 cargo bench -p cairn-tests --bench repair  # quicker, noisier
//! ```
//!
//! Both figures read through the page cache unless the kernel lets the bench drop it
//! (`/proc/sys/vm/drop_caches`, root outside a container) and `CAIRN_BENCH_WARM` is unset;
//! the output says which. Cold, both are bound by the disk, and a rebuilt shard needs k
//! shards read: rebuilt / raw is at most (parallel read rate / sequential read rate) / k.

use std::io::Read;
use std::time::Instant;

use aws_credential_types::Credentials;
use aws_sdk_s3::config::{BehaviorVersion, Region};
use aws_sdk_s3::Client;
use cairn_tests::{random_bytes, Server, ACCESS_KEY, SECRET_KEY};

/// Drops the page cache (unless `CAIRN_BENCH_WARM` is set: both figures then read what
/// the cache holds, which compares the data path's own costs rather than the disk's).
fn drop_caches() -> bool {
    std::env::var_os("CAIRN_BENCH_WARM").is_none()
        && std::fs::write("/proc/sys/vm/drop_caches", "3\n").is_ok()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("repair: run with `cargo bench -p cairn-tests --bench repair`");
        return;
    }
    let mib: usize = std::env::var("CAIRN_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2048);
    let flags = [
        "--scrub-interval",
        "0",
        "--deep-scrub-interval",
        "0",
        "--repair-rate",
        "0",
        "--orphan-grace",
        "0",
    ];
    let mut server = Server::start_with(&flags);
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
        s3.create_bucket().bucket("bench").send().await.unwrap();
        for i in 0..mib.div_ceil(32) {
            s3.put_object()
                .bucket("bench")
                .key(format!("o{i}"))
                .body(random_bytes(32 << 20, i as u64).into())
                .send()
                .await
                .unwrap();
        }
    });
    assert!(server.terminate());

    // Baseline: read the surviving datanodes' segment files sequentially, once, the first
    // read since they were written (as the repair's is). One pass only: on a virtual disk a
    // second pass may come from the host's cache (seen here: 0.7-1.1 GB/s first, 2-3 GB/s
    // after), which measures the host, not the disk.
    let dropped = drop_caches();
    let start = Instant::now();
    let mut raw = 0u64;
    let mut buf = vec![0u8; 4 << 20];
    for dn in 1..6 {
        let dir = server.data.join("datanodes").join(format!("dn{dn}"));
        for e in std::fs::read_dir(dir).unwrap() {
            let mut f = std::fs::File::open(e.unwrap().path()).unwrap();
            loop {
                let n = f.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                raw += n as u64;
            }
        }
    }
    let raw_rate = raw as f64 / start.elapsed().as_secs_f64() / 1048576.0;

    std::fs::remove_dir_all(server.data.join("datanodes").join("dn0")).unwrap();
    server.restart();
    drop_caches();
    let (_, out, err) = server.cairn("repair", &["--json"]);
    let r: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("no report ({e}): {out}{err}"));
    let written = r["bytes_written"].as_u64().unwrap() as f64;
    let read = r["bytes_read"].as_u64().unwrap() as f64;
    let secs = r["duration_ms"].as_u64().unwrap() as f64 / 1000.0;
    assert_eq!(r["failed"]["missing"], 0, "{r}");
    let rebuilt = written / secs / 1048576.0;
    println!(
        "page cache dropped: {}",
        if dropped {
            "yes"
        } else {
            "no (figures include cached reads)"
        }
    );
    println!(
        "raw sequential read of 5 datanodes: {:.0} MiB in {:.2} s = {raw_rate:.1} MiB/s",
        raw as f64 / 1048576.0,
        raw as f64 / 1048576.0 / raw_rate
    );
    println!(
        "repair after losing 1 of 6 datanodes: rebuilt {:.0} MiB ({} shards) in {secs:.2} s = {rebuilt:.1} MiB/s written, {:.1} MiB/s read",
        written / 1048576.0,
        r["repaired"]["missing"],
        read / secs / 1048576.0
    );
    println!(
        "repair read rate / raw read rate: {:.2}x; rebuilt rate / raw read rate: {:.2}x",
        read / secs / 1048576.0 / raw_rate,
        rebuilt / raw_rate
    );
}
