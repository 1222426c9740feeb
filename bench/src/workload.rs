//! One benchmark against one endpoint: bucket set-up, preparation of the objects
//! (uncounted), the measured runs (warm-up, then the window, each worker on its own
//! connection with its own recorder), CPU readings around the window, and the clean-up.
//!
//! Each worker owns a share of the prepared objects (object `i` belongs to worker
//! `i % concurrency`) and remembers which pool buffer each holds, so GETs can be checked and
//! mixed workloads never race on a key.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use serde::{Deserialize, Serialize};

use crate::args::{BenchArgs, Mix, Op, Payload};
use crate::cpu::{self_cpu, ServerCpu};
use crate::payload::{Pool, Rng};
use crate::s3::{Conn, Done, OpError, Target};
use crate::stats::{Medians, Recorder, RunResult};

/// What was measured against one endpoint.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TargetReport {
    /// "target" or "null".
    pub label: String,
    pub endpoint: String,
    pub bucket: String,
    pub prefix: String,
    pub runs: Vec<RunResult>,
    pub median: Medians,
}

/// What a benchmark needs that is the same for every worker.
struct Env {
    op: Op,
    mix: Mix,
    bucket: String,
    prefix: String,
    list_page: usize,
    timeout: Duration,
    pool: Pool,
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

/// The name of the operation a (non-mixed) workload runs.
fn kind_of(op: Op) -> &'static str {
    match op {
        Op::Put => "put",
        Op::Mixed => "mixed",
        Op::Get => "get",
        Op::List => "list",
        Op::Delete => "delete",
    }
}

impl Env {
    fn object_key(&self, index: usize) -> String {
        format!("{}obj/{index:08}", self.prefix)
    }
}

/// A prepared object a worker owns: its index and the pool buffer it holds (none: absent).
#[derive(Clone, Copy)]
struct Slot {
    index: usize,
    buf: Option<usize>,
}

struct Worker {
    id: usize,
    conn: Conn,
    rng: Rng,
    slots: Vec<Slot>,
    /// Positions in `slots` of the objects that exist.
    present: Vec<usize>,
    puts: u64,
    list_token: Option<String>,
}

impl Worker {
    /// Uploads every absent object of this worker (uncounted).
    async fn prepare(&mut self, env: &Env) -> Result<(), OpError> {
        for pos in 0..self.slots.len() {
            if self.slots[pos].buf.is_some() {
                continue;
            }
            let index = self.slots[pos].index;
            let buf = index % env.pool.len();
            let key = env.object_key(index);
            let mut tries = 0;
            loop {
                match self
                    .conn
                    .put(&env.bucket, &key, &env.pool.buffers[buf])
                    .await
                {
                    Ok(_) => break,
                    Err(e) if tries < 3 => {
                        tries += 1;
                        let _ = e;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => return Err(OpError(format!("preparing {key}: {e}"))),
                }
            }
            self.slots[pos].buf = Some(buf);
            self.present.push(pos);
        }
        Ok(())
    }

    /// One operation of the workload and its kind, within `env.timeout`. `Ok(None)`:
    /// nothing left to do (delete ran out).
    async fn op(&mut self, env: &Env) -> (&'static str, Result<Option<Done>, OpError>) {
        match tokio::time::timeout(env.timeout, self.op_untimed(env)).await {
            Ok(r) => r,
            Err(_) => {
                self.conn.reset();
                (kind_of(env.op), Err(OpError("timeout".into())))
            }
        }
    }

    async fn op_untimed(&mut self, env: &Env) -> (&'static str, Result<Option<Done>, OpError>) {
        match env.op {
            Op::Put => ("put", self.put_new(env).await.map(Some)),
            Op::Get => ("get", self.get(env).await.map(Some)),
            Op::List => ("list", self.list(env).await.map(Some)),
            Op::Delete => ("delete", self.delete(env).await),
            Op::Mixed => {
                let roll = self.rng.below(100) as u32;
                if roll < env.mix.get && !self.present.is_empty() {
                    ("get", self.get(env).await.map(Some))
                } else if roll < env.mix.get + env.mix.delete && !self.present.is_empty() {
                    ("delete", self.delete(env).await)
                } else {
                    ("put", self.put_slot(env).await.map(Some))
                }
            }
        }
    }

    async fn put_new(&mut self, env: &Env) -> Result<Done, OpError> {
        self.puts += 1;
        let key = format!("{}put/{}-{}", env.prefix, self.id, self.puts);
        let buf = (self.puts as usize + self.id) % env.pool.len();
        self.conn
            .put(&env.bucket, &key, &env.pool.buffers[buf])
            .await
    }

    /// PUT over a random owned object (mixed), with a random buffer.
    async fn put_slot(&mut self, env: &Env) -> Result<Done, OpError> {
        if self.slots.is_empty() {
            return self.put_new(env).await;
        }
        let pos = self.rng.below(self.slots.len());
        let buf = self.rng.below(env.pool.len());
        let key = env.object_key(self.slots[pos].index);
        let was = self.slots[pos].buf;
        // Until the answer the object's content is unknown: forget it, then record it.
        if was.is_some() {
            self.present.retain(|p| *p != pos);
        }
        self.slots[pos].buf = None;
        let done = self
            .conn
            .put(&env.bucket, &key, &env.pool.buffers[buf])
            .await?;
        self.slots[pos].buf = Some(buf);
        self.present.push(pos);
        Ok(done)
    }

    async fn get(&mut self, env: &Env) -> Result<Done, OpError> {
        if self.present.is_empty() {
            return Err(OpError("no object to read".into()));
        }
        let pos = self.present[self.rng.below(self.present.len())];
        let slot = self.slots[pos];
        let buf = &env.pool.buffers[slot.buf.expect("present")];
        let key = env.object_key(slot.index);
        self.conn
            .get(&env.bucket, &key, buf.data.len() as u64, buf.crc32c)
            .await
    }

    async fn delete(&mut self, env: &Env) -> Result<Option<Done>, OpError> {
        if self.present.is_empty() {
            return Ok(None);
        }
        let i = self.rng.below(self.present.len());
        let pos = self.present.swap_remove(i);
        self.slots[pos].buf = None;
        let key = env.object_key(self.slots[pos].index);
        self.conn.delete(&env.bucket, &key).await.map(Some)
    }

    async fn list(&mut self, env: &Env) -> Result<Done, OpError> {
        let prefix = format!("{}obj/", env.prefix);
        let token = self.list_token.take();
        let page = self
            .conn
            .list_page(&env.bucket, &prefix, env.list_page, token.as_deref())
            .await?;
        self.list_token = page.next;
        Ok(Done {
            bytes: 0,
            items: page.keys.len() as u64,
        })
    }
}

/// Runs the whole benchmark (set-up, runs, clean-up) against `endpoint`.
pub async fn bench_endpoint(
    args: &BenchArgs,
    label: &str,
    endpoint: &str,
    server_pid: Option<u32>,
    bucket: &str,
    prefix: &str,
) -> anyhow::Result<TargetReport> {
    let target = Arc::new(Target::new(
        endpoint,
        args.insecure,
        args.credentials(),
        &args.region,
        args.payload,
    )?);
    let say = |s: String| {
        if !args.quiet {
            eprintln!("[{label}] {s}");
        }
    };
    let size = usize::try_from(args.size).context("--size does not fit in memory")?;
    if args.op != Op::Put && args.objects == 0 {
        anyhow::bail!("--op {} needs --objects of at least 1", args.op);
    }
    let env = Arc::new(Env {
        op: args.op,
        mix: args.mix,
        bucket: bucket.to_string(),
        prefix: prefix.to_string(),
        list_page: args.list_page.max(1),
        timeout: args.timeout.max(Duration::from_millis(1)),
        pool: Pool::new(
            pool_count(args.pool, args.size),
            size,
            args.payload == Payload::Signed,
            Rng::from_entropy().next_u64(),
        ),
    });
    let concurrency = args.concurrency.max(1);

    let mut admin = Conn::new(target.clone());
    let created = timed!(env.timeout, admin, create_bucket(bucket))
        .map_err(|e| anyhow!("creating bucket {bucket} at {endpoint}: {e}"))?;
    say(format!(
        "bucket {bucket} {}",
        if created { "created" } else { "exists" }
    ));

    let needs_objects = args.op != Op::Put;
    let objects = if needs_objects { args.objects } else { 0 };
    let mut workers: Vec<Worker> = (0..concurrency)
        .map(|id| Worker {
            id,
            conn: Conn::new(target.clone()),
            rng: Rng::new(Rng::from_entropy().next_u64() ^ ((id as u64 + 1) * 0x9E37)),
            slots: (id..objects)
                .step_by(concurrency)
                .map(|index| Slot { index, buf: None })
                .collect(),
            present: Vec::new(),
            puts: 0,
            list_token: None,
        })
        .collect();

    let mut server_cpu = ServerCpu::detect(server_pid, args.metrics_url.as_deref(), &target).await;
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
        if let Err(e) = cleanup(&target, &env, concurrency, created).await {
            eprintln!("[{label}] clean-up incomplete: {e}");
        }
    }
    outcome?;
    let median = Medians::of(&runs);
    Ok(TargetReport {
        label: label.to_string(),
        endpoint: target.endpoint(),
        bucket: bucket.to_string(),
        prefix: prefix.to_string(),
        runs,
        median,
    })
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
        (Some(a), Some(b)) => Some((b - a, server_cpu.source())),
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
    #[test]
    fn pool_count() {
        use super::pool_count;
        assert_eq!(pool_count(4, 1 << 20), 4);
        assert_eq!(pool_count(4, 512 << 20), 2);
        assert_eq!(pool_count(4, 4 << 30), 1);
        assert_eq!(pool_count(0, 1), 1);
    }
}
