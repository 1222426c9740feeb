//! One benchmark against one set of endpoints (one endpoint, or the gateways of one
//! cluster): bucket set-up, preparation of the objects (uncounted), the measured runs
//! (warm-up, then the window, each worker on its own connection with its own recorder), the
//! server's CPU readings around the window, and the clean-up. The workers themselves, which
//! endpoint each uses and which objects each owns, are in [`crate::worker`].
//!
//! The bucket is created, and at the end listed and emptied, through the first endpoint; the
//! endpoints are meant to share their metadata (one cluster), so that is where every worker
//! finds it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use serde::{Deserialize, Serialize};

use crate::args::{BenchArgs, Op, Payload};
use crate::cpu::{self_cpu, ServerCpu};
use crate::payload::{Pool, Rng};
use crate::s3::{Conn, OpError, Target};
use crate::stats::{Medians, Recorder, RunResult};
use crate::worker::{self, workers_per_endpoint, Env, Worker};

/// What was measured against one set of endpoints.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TargetReport {
    /// "target" or "null".
    pub label: String,
    /// The endpoints joined with `,` (one endpoint: just it).
    pub endpoint: String,
    /// The endpoints, in order (worker `i` used entry `i % n`); empty in reports written
    /// before there could be several.
    #[serde(default)]
    pub endpoints: Vec<String>,
    pub bucket: String,
    pub prefix: String,
    pub runs: Vec<RunResult>,
    pub median: Medians,
}

/// A [`Target`] for each endpoint, with the arguments' TLS setting, credentials, region and
/// payload signing; an entry that is not a usable endpoint is an error naming it.
pub fn targets(args: &BenchArgs, endpoints: &[String]) -> anyhow::Result<Vec<Arc<Target>>> {
    endpoints
        .iter()
        .enumerate()
        .map(|(i, e)| {
            Target::new(
                e,
                args.insecure,
                args.credentials(),
                &args.region,
                args.payload,
            )
            .map(Arc::new)
            .map_err(|err| anyhow!("--endpoint entry {} of {}: {err:#}", i + 1, endpoints.len()))
        })
        .collect()
}

/// Pool buffers for `requested` bodies of `size` bytes: at most 1 GiB of them, at least one.
fn pool_count(requested: usize, size: u64) -> usize {
    let fit = (1u64 << 30) / size.max(1);
    requested.clamp(1, fit.clamp(1, usize::MAX as u64) as usize)
}

/// `$conn.$call(args...)` within `$t`; on expiry the connection is dropped and the result
/// is a `timeout` error.
macro_rules! timed {
    ($t:expr, $conn:expr, $call:ident ( $($a:expr),* $(,)? )) => {
        match tokio::time::timeout($t, $conn.$call($($a),*)).await {
            Ok(r) => r,
            Err(_) => {
                $conn.reset();
                Err(OpError("timeout".into()))
            }
        }
    };
}

/// Runs the whole benchmark (set-up, runs, clean-up) against `targets` (at least one), the
/// server's CPU read through `server_cpu`.
pub async fn bench_endpoint(
    args: &BenchArgs,
    label: &str,
    targets: &[Arc<Target>],
    mut server_cpu: ServerCpu,
    bucket: &str,
    prefix: &str,
) -> anyhow::Result<TargetReport> {
    let first = targets
        .first()
        .ok_or_else(|| anyhow!("no endpoint to benchmark"))?;
    let endpoints: Vec<String> = targets.iter().map(|t| t.endpoint()).collect();
    let say = |s: String| {
        if !args.quiet {
            eprintln!("[{label}] {s}");
        }
    };
    let size = usize::try_from(args.size).context("--size does not fit in memory")?;
    let existing = args.list_prefix.clone().filter(|_| args.op == Op::List);
    if args.list_prefix.is_some() && existing.is_none() {
        anyhow::bail!("--list-prefix goes with --op list");
    }
    if args.op != Op::Put && existing.is_none() && args.objects == 0 {
        anyhow::bail!("--op {} needs --objects of at least 1", args.op);
    }
    let env = Arc::new(Env {
        op: args.op,
        mix: args.mix,
        bucket: bucket.to_string(),
        prefix: prefix.to_string(),
        list_page: args.list_page.max(1),
        list_prefix: existing.clone(),
        timeout: args.timeout.max(Duration::from_millis(1)),
        pool: Pool::new(
            pool_count(args.pool, args.size),
            size,
            args.payload == Payload::Signed,
            Rng::from_entropy().next_u64(),
        ),
    });
    let concurrency = args.concurrency.max(1);
    if targets.len() > 1 {
        say(format!(
            "{} endpoints: {}",
            targets.len(),
            spread(&endpoints, concurrency)
        ));
    }

    let mut admin = Conn::new(first.clone());
    let created = timed!(env.timeout, admin, create_bucket(bucket))
        .map_err(|e| anyhow!("creating bucket {bucket} at {}: {e}", endpoints[0]))?;
    say(format!(
        "bucket {bucket} {}",
        if created { "created" } else { "exists" }
    ));

    let needs_objects = args.op != Op::Put && existing.is_none();
    let objects = if needs_objects { args.objects } else { 0 };
    let mut workers = worker::workers(targets, concurrency, objects);

    let mut runs = Vec::new();
    let mut outcome = Ok(());
    for run in 0..args.runs.max(1) {
        if needs_objects && (run == 0 || args.op != Op::Mixed) {
            let started = Instant::now();
            match prepare(workers, &env).await {
                Ok(w) => workers = w,
                Err(e) => {
                    outcome = Err(e);
                    workers = Vec::new();
                    break;
                }
            }
            say(format!(
                "prepared {objects} objects of {} bytes in {:.1}s",
                args.size,
                started.elapsed().as_secs_f64()
            ));
        }
        let (w, result) = measure(workers, &env, run, args, &mut server_cpu).await;
        workers = w;
        say(format!(
            "run {}: {:.1} MiB/s, {:.1} ops/s, p50 {:.2} ms, {} errors",
            run + 1,
            result.mib_per_s,
            result.ops_per_s,
            result.latency.p50_ms,
            result.errors
        ));
        runs.push(result);
    }
    drop(workers);

    if !args.keep {
        if let Err(e) = cleanup(first, &env, concurrency, created).await {
            eprintln!("[{label}] clean-up incomplete: {e}");
        }
    }
    outcome?;
    let median = Medians::of(&runs);
    Ok(TargetReport {
        label: label.to_string(),
        endpoint: endpoints.join(","),
        endpoints,
        bucket: bucket.to_string(),
        prefix: prefix.to_string(),
        runs,
        median,
    })
}

/// `http://a (2 workers), http://b (1 worker)`: the endpoints and how many of `concurrency`
/// workers use each.
pub fn spread(endpoints: &[String], concurrency: usize) -> String {
    let counts = workers_per_endpoint(concurrency, endpoints.len());
    endpoints
        .iter()
        .zip(counts)
        .map(|(e, n)| format!("{e} ({n} worker{})", if n == 1 { "" } else { "s" }))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn prepare(workers: Vec<Worker>, env: &Arc<Env>) -> anyhow::Result<Vec<Worker>> {
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|mut w| {
            let env = env.clone();
            tokio::spawn(async move {
                let r = w.prepare(&env).await;
                (w, r)
            })
        })
        .collect();
    let mut out = Vec::new();
    let mut first_err = None;
    for t in tasks {
        let (w, r) = t.await.context("a preparing worker panicked")?;
        if let Err(e) = r {
            first_err.get_or_insert(e);
        }
        out.push(w);
    }
    match first_err {
        Some(e) => Err(anyhow!("{e}")),
        None => Ok(out),
    }
}

/// One measured run: warm-up, then the window; the CPU is read at the window's start and
/// after the last worker stops.
async fn measure(
    workers: Vec<Worker>,
    env: &Arc<Env>,
    run: usize,
    args: &BenchArgs,
    server_cpu: &mut ServerCpu,
) -> (Vec<Worker>, RunResult) {
    let t0 = Instant::now();
    // Deleting in a warm-up would only use up objects: deletes are measured from the start.
    let warmup = if env.op == Op::Delete {
        Duration::ZERO
    } else {
        args.warmup
    };
    let warm_end = t0 + warmup;
    let end = warm_end + args.duration;
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|mut w| {
            let env = env.clone();
            tokio::spawn(async move {
                let mut rec = Recorder::new();
                let mut exhausted = false;
                loop {
                    let start = Instant::now();
                    if start >= end {
                        break;
                    }
                    let (kind, result) = w.op(&env).await;
                    let done = Instant::now();
                    let counted = start >= warm_end;
                    match result {
                        Ok(Some(d)) if counted => {
                            rec.ok(kind, done - start, done - warm_end, d.bytes, d.items)
                        }
                        Ok(Some(_)) => {}
                        Ok(None) => {
                            exhausted = true;
                            break;
                        }
                        Err(e) => {
                            if counted {
                                rec.error(&format!("{kind}: {e}"), done - warm_end);
                            }
                            if e.0.starts_with("connect") {
                                tokio::time::sleep(Duration::from_millis(5)).await;
                            }
                        }
                    }
                }
                (w, rec, exhausted)
            })
        })
        .collect();
    tokio::time::sleep_until(warm_end.into()).await;
    let cpu0 = self_cpu();
    let srv0 = server_cpu.read().await;
    let mut merged = Recorder::new();
    let mut workers = Vec::new();
    let mut exhausted = false;
    for t in tasks {
        match t.await {
            Ok((w, rec, out)) => {
                merged.merge(&rec);
                exhausted |= out;
                workers.push(w);
            }
            Err(_) => merged.error("worker panicked", Duration::ZERO),
        }
    }
    let cpu1 = self_cpu();
    let srv1 = server_cpu.read().await;
    // A run that ran out of objects lasted until its last operation.
    let window = if exhausted {
        Duration::ZERO
    } else {
        args.duration
    };
    let mut result = RunResult::from_recorder(run, &merged, window);
    result.exhausted = exhausted;
    let server = match (srv0, srv1) {
        (Some(a), Some(b)) => Some((b - a, server_cpu.source(), server_cpu.processes())),
        _ => None,
    };
    result.set_cpu(cpu1 - cpu0, server);
    (workers, result)
}

/// Deletes every key under the prefix, then the bucket if this benchmark created it.
async fn cleanup(
    target: &Arc<Target>,
    env: &Arc<Env>,
    concurrency: usize,
    delete_bucket: bool,
) -> anyhow::Result<()> {
    let mut conn = Conn::new(target.clone());
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let page = timed!(
            env.timeout,
            conn,
            list_page(&env.bucket, &env.prefix, 1000, token.as_deref())
        )
        .map_err(|e| anyhow!("listing {}: {e}", env.bucket))?;
        keys.extend(page.keys);
        token = page.next;
        if token.is_none() {
            break;
        }
    }
    let keys = Arc::new(keys);
    let tasks: Vec<_> = (0..concurrency)
        .map(|w| {
            let keys = keys.clone();
            let env = env.clone();
            let mut conn = Conn::new(target.clone());
            tokio::spawn(async move {
                let mut failed = 0usize;
                // Batches of 1000 with DeleteObjects; one by one where that is refused.
                for batch in keys.chunks(1000).skip(w).step_by(concurrency) {
                    match timed!(env.timeout, conn, delete_many(&env.bucket, batch)) {
                        Ok(n) => failed += n,
                        Err(e) if e.0.starts_with("http ") => {
                            for key in batch {
                                if timed!(env.timeout, conn, delete(&env.bucket, key)).is_err() {
                                    failed += 1;
                                }
                            }
                        }
                        Err(_) => failed += batch.len(),
                    }
                }
                failed
            })
        })
        .collect();
    let mut failed = 0;
    for t in tasks {
        failed += t.await.unwrap_or(1);
    }
    if failed > 0 {
        return Err(anyhow!("{failed} of {} objects not deleted", keys.len()));
    }
    if delete_bucket {
        timed!(env.timeout, conn, delete_bucket(&env.bucket))
            .map_err(|e| anyhow!("deleting bucket {}: {e}", env.bucket))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_count() {
        use super::pool_count;
        assert_eq!(pool_count(4, 1 << 20), 4);
        assert_eq!(pool_count(4, 512 << 20), 2);
        assert_eq!(pool_count(4, 4 << 30), 1);
        assert_eq!(pool_count(0, 1), 1);
    }

    #[test]
    fn targets_name_a_bad_entry() {
        let args = BenchArgs::defaults();
        let list = |s: &str| s.split(',').map(String::from).collect::<Vec<_>>();
        let ts = targets(&args, &list("http://127.0.0.1:9000,http://localhost:9100")).unwrap();
        let names: Vec<String> = ts.iter().map(|t| t.endpoint()).collect();
        assert_eq!(names, ["http://127.0.0.1:9000", "http://localhost:9100"]);
        let err = targets(&args, &list("http://a:9000,ftp://b:21,http://c:9000"));
        let text = err.err().expect("ftp is refused").to_string();
        assert!(
            text.contains("entry 2 of 3") && text.contains("`ftp://b:21`"),
            "{text}"
        );
        let err = targets(&args, &list("http://a:9000/some/path"));
        let text = err.err().expect("a path is refused").to_string();
        assert!(text.contains("entry 1 of 1"), "{text}");
    }

    #[test]
    fn spread_names_the_workers_of_each_endpoint() {
        let e = ["http://a".to_string(), "http://b".into(), "http://c".into()];
        assert_eq!(
            spread(&e, 4),
            "http://a (2 workers), http://b (1 worker), http://c (1 worker)"
        );
        assert_eq!(spread(&e[..1], 1), "http://a (1 worker)");
    }
}
