//! One run of a campaign: a fresh cluster, the workload and the nemesis together, then the
//! faults healed, repair, the final reads through every gateway, a deep scrub, and the
//! checkers over the history. A run that finds anomalies keeps its directory: the history,
//! the schedule and nemesis log, and every node's log.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::checks::{self, Anomaly};
use crate::cluster::Cluster;
use crate::history::Op;
use crate::nemesis::{schedule, Applied, FaultKind, Nemesis};
use crate::workload::Workload;

pub const NODES: usize = 5;

pub struct RunConfig {
    pub bin: PathBuf,
    pub out: PathBuf,
    pub secs: u64,
    pub kinds: Vec<FaultKind>,
    pub clients: u32,
    /// Keep the directory of a run without anomalies too.
    pub keep: bool,
    /// Flags for every node.
    pub node_flags: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct RunResult {
    pub seed: u64,
    pub ops: usize,
    pub unknown_ops: usize,
    pub faults: BTreeMap<FaultKind, usize>,
    pub failovers: Vec<(FaultKind, Option<u64>)>,
    /// Faults on the leader that overlapped another fault (not measured).
    pub failovers_overlapped: Vec<FaultKind>,
    pub anomalies: Vec<Anomaly>,
    pub keys_checked: usize,
    pub lists_checked: usize,
    pub versions_checked: usize,
    pub minority_writes_refused: usize,
    pub inconclusive_keys: Vec<String>,
    pub dir: Option<PathBuf>,
}

fn anomaly(kind: &str, detail: String) -> Anomaly {
    Anomaly {
        kind: kind.into(),
        detail,
    }
}

fn write_json(path: &Path, v: &impl Serialize) {
    if let Ok(text) = serde_json::to_string_pretty(v) {
        let _ = std::fs::write(path, text);
    }
}

/// Runs one run with `seed`.
pub fn run_one(cfg: &RunConfig, index: usize, seed: u64) -> anyhow::Result<RunResult> {
    let dir = cfg.out.join(format!("run-{index:03}-seed-{seed}"));
    // A kept or interrupted earlier run with this seed must not be reopened.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let plan = schedule(seed, &cfg.kinds, cfg.secs);
    write_json(&dir.join("schedule.json"), &plan);
    let cluster = Cluster::start(&cfg.bin, &dir, NODES, &cfg.node_flags)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let start = Instant::now();
    let workload = Workload::new(NODES, start);
    rt.block_on(workload.setup())?;
    let cluster = Arc::new(Mutex::new(cluster));
    let mut nemesis = Nemesis {
        cluster: cluster.clone(),
        workload: workload.clone(),
        log: Vec::new(),
    };
    let w = workload.clone();
    let clients = cfg.clients;
    let load = rt.spawn(async move { w.run(clients, seed).await });
    let until = start + Duration::from_secs(cfg.secs);
    nemesis.run(&plan, until);
    if let Some(rest) = until.checked_duration_since(Instant::now()) {
        std::thread::sleep(rest);
    }
    workload.stop();
    let _ = rt.block_on(load);

    let mut extra = Vec::new();
    {
        let mut c = cluster.lock().expect("cluster");
        for i in 0..c.len() {
            if let Some(status) = c.exited(i) {
                extra.push(anomaly(
                    "node-exited",
                    format!("node {} exited on its own ({status})", i + 1),
                ));
            }
        }
    }
    nemesis.heal_all();
    for i in 0..NODES {
        workload.down[i].store(false, std::sync::atomic::Ordering::SeqCst);
    }
    let c = cluster.lock().expect("cluster");
    if let Err(e) = c.wait_converged(Duration::from_secs(120)) {
        extra.push(anomaly("no-convergence", format!("{e:#}")));
    }
    let repair = c.admin_waiting(
        0,
        "POST",
        "/admin/scrub",
        r#"{"repair": true, "wait": true, "trigger": "chaos"}"#,
        Duration::from_secs(600),
    );
    if !matches!(&repair, Ok(r) if r.status == 200) {
        extra.push(anomaly(
            "repair-failed",
            format!("{:?}", repair.map(|r| (r.status, r.body))),
        ));
    }
    drop(c);
    for miss in rt.block_on(workload.final_reads(Duration::from_secs(60))) {
        extra.push(anomaly("not-served", miss));
    }
    let c = cluster.lock().expect("cluster");
    match c.admin_waiting(
        0,
        "POST",
        "/admin/scrub",
        r#"{"deep": true, "wait": true, "trigger": "chaos"}"#,
        Duration::from_secs(600),
    ) {
        Ok(r) if r.status == 200 => {
            let v: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
            let found = &v["found"];
            let damage =
                found["missing"].as_u64().unwrap_or(0) + found["corrupt"].as_u64().unwrap_or(0);
            let unrecoverable = v["unrecoverable"].as_array().map_or(0, Vec::len);
            if damage > 0 || unrecoverable > 0 {
                extra.push(anomaly(
                    "scrub-damage",
                    format!("deep scrub after repair found {found} and {unrecoverable} unrecoverable stripes"),
                ));
            }
        }
        other => extra.push(anomaly(
            "scrub-failed",
            format!("{:?}", other.map(|r| (r.status, r.body))),
        )),
    }
    drop(c);

    write_json(&dir.join("nemesis.json"), &nemesis.log);
    let ops = workload.ops();
    let report = checks::check(&ops, &nemesis.minority_windows());
    let mut anomalies = extra;
    anomalies.extend(report.anomalies);
    // Failover is measured on faults that held alone: with another fault at the same time
    // (a second node stopped, a partition) a quorum may not exist at all.
    let alone = |a: &Applied| {
        !nemesis
            .log
            .iter()
            .any(|b| !std::ptr::eq(a, b) && b.from < a.to && a.from < b.to)
    };
    let (failovers, failovers_overlapped) = nemesis
        .log
        .iter()
        .filter(|a| a.leader.is_some())
        .partition::<Vec<&Applied>, _>(|a| alone(a));
    let failovers = failovers
        .into_iter()
        .filter_map(|a| Some((a.kind, failover(a, a.leader?, &ops))))
        .collect();
    let failovers_overlapped = failovers_overlapped.iter().map(|a| a.kind).collect();
    let result = RunResult {
        seed,
        ops: ops.len(),
        unknown_ops: ops
            .iter()
            .filter(|o| matches!(o.outcome, crate::history::Outcome::Unknown(_)))
            .count(),
        faults: nemesis.counts(),
        failovers,
        failovers_overlapped,
        anomalies,
        keys_checked: report.keys_checked,
        lists_checked: report.lists_checked,
        versions_checked: report.versions_checked,
        minority_writes_refused: report.minority_writes_refused,
        inconclusive_keys: report.inconclusive_keys,
        dir: None,
    };
    drop(nemesis);
    // Stop the nodes before deciding what to keep.
    drop(Arc::try_unwrap(cluster).ok());
    if result.anomalies.is_empty() && !cfg.keep {
        let _ = std::fs::remove_dir_all(&dir);
        return Ok(result);
    }
    if let Ok(mut f) = std::fs::File::create(dir.join("history.jsonl")) {
        for op in &ops {
            let _ = serde_json::to_writer(&mut f, op);
            let _ = f.write_all(b"\n");
        }
    }
    Ok(RunResult {
        dir: Some(dir.clone()),
        ..result
    })
    .inspect(|r| write_json(&dir.join("result.json"), r))
}

/// Milliseconds from a fault that cut off or stopped leader `old` until the first write
/// sent after it began was acknowledged by another node: no write can commit before a new
/// leader is elected, so this bounds the failover as a client sees it (`None`: no write
/// succeeded before the fault ended).
fn failover(a: &Applied, old: usize, ops: &[Op]) -> Option<u64> {
    ops.iter()
        .filter(|o| o.kind.is_write() && o.acknowledged() && o.node != old)
        .filter(|o| o.invoke >= a.from && o.complete <= a.to)
        .map(|o| (o.complete - a.from) / 1000)
        .min()
}
