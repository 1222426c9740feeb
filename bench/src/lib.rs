//! `cairn-bench`: a built-in S3 load generator (like MinIO's warp), exposed as `cairn bench`.
//!
//! Modules and what each owns:
//! - [`args`]: the command line ([`BenchArgs`]) and the parsers of sizes, durations, mixes.
//! - [`payload`]: the pool of random bodies with their CRC32C/SHA-256, and the fast PRNG.
//! - [`s3`]: the per-worker HTTP/1.1 connection, SigV4 signing, the S3 calls, error kinds.
//! - [`tls`]: the rustls client configuration (system roots, or `--insecure`).
//! - [`workload`]: one benchmark against one endpoint or the gateways of one cluster: set-up,
//!   preparation, measured runs, clean-up.
//! - [`worker`]: a worker: the endpoint it uses (`i % n`), the objects it owns, one operation.
//! - [`stats`]: per-worker recorders, HdrHistogram percentiles, per-run results, medians.
//! - [`cpu`]: client and server CPU time (`/proc/<pid>/stat`, `/metrics`), summed over the
//!   server's processes.
//! - [`null`]: the in-memory null S3 server, the ceiling of the client on this machine.
//! - [`report`]: the JSON [`Report`], the endpoint/null ratios, the summary table.
//! - [`html`]: the optional HTML page with an inline SVG throughput chart.
//! - [`xml`]: percent-encoding and the reading/escaping of XML element text.
//!
//! This file holds the entry points: [`run`] (as `cairn bench`), [`run_with_self_args`] (for
//! a binary whose subcommand differs) and [`benchmark`] (the report without printing).

pub mod args;
pub mod cpu;
pub mod html;
pub mod null;
pub mod payload;
pub mod report;
pub mod s3;
pub mod stats;
pub mod tls;
pub mod worker;
pub mod workload;
pub mod xml;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::cpu::ServerCpu;

pub use args::{BenchArgs, Endpoints, Mix, Op, Payload};
pub use null::{NullConfig, NullServer};
pub use report::{Ratios, Report};
pub use stats::{Medians, RunResult};
pub use workload::TargetReport;

/// Runs what `args` say, as the `bench` subcommand of the current executable: with
/// `--baseline-null` the null server is started as `<current exe> bench --serve-null ...`.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    run_with_self_args(args, &["bench"]).await
}

/// Like [`run`], for an executable whose arguments before the bench options differ:
/// `self_args` are what the current executable needs to reach these options (`&["bench"]`
/// for `cairn bench`, `&[]` for a binary that takes them directly, `&["tools", "bench"]`...).
/// The null-server child is started as `<current exe> <self_args...> --serve-null --listen
/// 127.0.0.1:0 --null-memory <n>`.
pub async fn run_with_self_args(args: BenchArgs, self_args: &[&str]) -> anyhow::Result<()> {
    if args.serve_null {
        return serve_null(&args).await;
    }
    let exe = std::env::current_exe().context("finding the current executable")?;
    let report = benchmark(&args, &exe, self_args).await?;
    print!("{}", report.summary());
    if let Some(path) = &args.json {
        write_json(&report, path)?;
    }
    if let Some(path) = &args.html {
        std::fs::write(path, html::render(&report))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let errors = report.total_errors();
    if errors > 0 && !args.allow_errors {
        bail!("{errors} operations failed (see the table; --allow-errors to exit 0 anyway)");
    }
    Ok(())
}

/// Writes `report` as pretty JSON to `path`.
pub fn write_json(report: &Report, path: &Path) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(report)?;
    std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))
}

/// Runs the benchmark and returns its report (printing only progress to stderr). With
/// `--baseline-null`, the null server is started as `<program> <self_args...> --serve-null`
/// and measured first: one null server, with the same concurrency, however many endpoints.
pub async fn benchmark(
    args: &BenchArgs,
    program: &Path,
    self_args: &[&str],
) -> anyhow::Result<Report> {
    if args.concurrency == 0 || args.runs == 0 {
        bail!("--concurrency and --runs must be at least 1");
    }
    let started_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let tag = format!("{:08x}", payload::Rng::from_entropy().next_u64() as u32);
    let bucket = args
        .bucket
        .clone()
        .unwrap_or_else(|| format!("cairn-bench-{tag}"));
    let prefix = format!("bench-{tag}/");
    // Every endpoint is checked before anything runs.
    let targets = workload::targets(args, args.endpoint.as_slice())?;
    // Measured first, while nothing else this benchmark starts is running.
    let md5 = tokio::task::spawn_blocking(md5_speed).await.ok();
    let null = if args.baseline_null {
        let child = NullChild::spawn(program, self_args, args.null_memory).await?;
        if !args.quiet {
            eprintln!(
                "[null] null server at {} (pid {})",
                child.endpoint, child.pid
            );
        }
        let null_targets = workload::targets(args, std::slice::from_ref(&child.endpoint))?;
        let cpu = ServerCpu::detect(&[child.pid], &[], &null_targets).await;
        let r = workload::bench_endpoint(args, "null", &null_targets, cpu, &bucket, &prefix)
            .await
            .context("benchmarking the null server")?;
        drop(child);
        Some(r)
    } else {
        None
    };
    let cpu = ServerCpu::detect(&args.server_pid, &args.metrics_url, &targets).await;
    let target = workload::bench_endpoint(args, "target", &targets, cpu, &bucket, &prefix).await?;
    let ratios = null.as_ref().map(|n| Ratios::of(&target, n));
    let md5_ratio = md5
        .filter(|m| *m > 0.0)
        .map(|m| target.median.mib_per_s / m);
    Ok(Report {
        tool: "cairn-bench".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        started_unix,
        args: args.clone(),
        target,
        null,
        ratios,
        md5_mib_per_s: md5,
        md5_ratio,
    })
}

/// MiB/s one core hashes with MD5 (the implementation the server uses), over 64 MiB of
/// random bytes hashed in 1 MiB pieces for at least half a second.
pub fn md5_speed() -> f64 {
    use md5::Digest;
    let mut rng = payload::Rng::from_entropy();
    let mut buf = vec![0u8; 64 << 20];
    for c in buf.chunks_mut(8) {
        let v = rng.next_u64().to_le_bytes();
        c.copy_from_slice(&v[..c.len()]);
    }
    let start = std::time::Instant::now();
    let mut bytes = 0u64;
    let mut md5 = md5::Md5::new();
    while start.elapsed() < Duration::from_millis(500) {
        for piece in buf.chunks(1 << 20) {
            md5.update(piece);
        }
        bytes += buf.len() as u64;
    }
    std::hint::black_box(md5.finalize());
    bytes as f64 / (1 << 20) as f64 / start.elapsed().as_secs_f64()
}

/// Serves the null server on `--listen` until interrupted; prints `listening on <addr>`.
async fn serve_null(args: &BenchArgs) -> anyhow::Result<()> {
    let config = NullConfig {
        memory_limit: args.null_memory,
        corrupt_gets: false,
    };
    let server = NullServer::start(&args.listen, config)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}", server.addr)?;
        out.flush()?;
    }
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// A null server running as a child process; killed when dropped.
pub struct NullChild {
    pub endpoint: String,
    pub pid: u32,
    _child: tokio::process::Child,
}

impl NullChild {
    /// Starts `<program> <self_args...> --serve-null --listen 127.0.0.1:0 --null-memory <n>`
    /// and waits for its `listening on <addr>` line.
    pub async fn spawn(program: &Path, self_args: &[&str], memory: u64) -> anyhow::Result<Self> {
        let mut child = tokio::process::Command::new(program)
            .args(self_args)
            .args(["--serve-null", "--listen", "127.0.0.1:0", "--null-memory"])
            .arg(memory.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting the null server ({})", program.display()))?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow!("the null server exited at once"))?;
        let stdout = child.stdout.take().expect("piped");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    return Ok(addr.trim().to_string());
                }
            }
            Err(std::io::Error::other("exited without `listening on`"))
        })
        .await
        .map_err(|_| anyhow!("the null server did not say where it listens within 20 s"))?
        .context("reading the null server's output")?;
        // Keep draining its stdout so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(NullChild {
            endpoint: format!("http://{line}"),
            pid,
            _child: child,
        })
    }
}
