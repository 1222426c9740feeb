//! `cairn-chaos`: runs a fault campaign (needs root: network namespaces and iptables) and
//! prints, last, `chaos: R runs, F faults, O operations, A anomalies`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cairn_chaos::nemesis::FaultKind;
use cairn_chaos::run::{run_one, RunConfig, RunResult};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "cairn-chaos",
    about = "A fault campaign against a five-node Cairn cluster"
)]
struct Args {
    /// The `cairn` binary the nodes run.
    #[arg(long)]
    bin: PathBuf,
    /// Where runs keep their directories (a run without anomalies removes its own).
    #[arg(long)]
    out: PathBuf,
    /// Minutes the campaign runs (new runs start until this is spent; at least one).
    #[arg(long, default_value_t = 3.0)]
    minutes: f64,
    /// At most this many runs.
    #[arg(long)]
    runs: Option<usize>,
    /// Seconds of workload and faults per run.
    #[arg(long, default_value_t = 60)]
    run_secs: u64,
    /// Seed of the first run (run i uses seed + i) [default: from the clock].
    #[arg(long)]
    seed: Option<u64>,
    /// Fault kinds to choose from (comma-separated) [default: all].
    #[arg(long, value_delimiter = ',')]
    faults: Vec<FaultKind>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    clients: u32,
    /// Keep every run's directory, not only those with anomalies.
    #[arg(long)]
    keep: bool,
}

#[derive(Default)]
struct PerKind {
    runs: usize,
    faults: usize,
    ops: usize,
    anomalies: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() % 1_000_000)
            .unwrap_or(1)
    });
    let kinds = if args.faults.is_empty() {
        FaultKind::ALL.to_vec()
    } else {
        args.faults.clone()
    };
    std::fs::create_dir_all(&args.out)?;
    let cfg = RunConfig {
        bin: std::fs::canonicalize(&args.bin)?,
        out: std::fs::canonicalize(&args.out)?,
        secs: args.run_secs,
        kinds: kinds.clone(),
        clients: args.clients,
        keep: args.keep,
        node_flags: vec!["--stripe-size".into(), (1 << 20).to_string()],
    };
    let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
    eprintln!(
        "chaos: campaign of {} min, runs of {} s, first seed {seed}, faults {}",
        args.minutes,
        args.run_secs,
        names.join(",")
    );
    let began = Instant::now();
    let budget = Duration::from_secs_f64(args.minutes * 60.0);
    let mut results: Vec<RunResult> = Vec::new();
    let mut errors = 0usize;
    let mut i = 0usize;
    while (i == 0 || began.elapsed() < budget) && args.runs.is_none_or(|r| i < r) {
        let s = seed + i as u64;
        eprintln!("chaos: run {} (seed {s})", i + 1);
        match run_one(&cfg, i, s) {
            Ok(r) => {
                eprintln!(
                    "chaos: run {} (seed {s}): {} operations ({} unknown), {} faults, {} anomalies, {} keys, {} lists, {} versions checked, {} minority writes refused{}",
                    i + 1,
                    r.ops,
                    r.unknown_ops,
                    r.faults.values().sum::<usize>(),
                    r.anomalies.len(),
                    r.keys_checked,
                    r.lists_checked,
                    r.versions_checked,
                    r.minority_writes_refused,
                    r.dir.as_ref().map(|d| format!(", kept in {}", d.display())).unwrap_or_default()
                );
                for a in r.anomalies.iter().take(20) {
                    eprintln!("chaos:   ANOMALY {}: {}", a.kind, a.detail);
                }
                if !r.inconclusive_keys.is_empty() {
                    eprintln!("chaos:   inconclusive keys: {:?}", r.inconclusive_keys);
                }
                results.push(r);
            }
            Err(e) => {
                errors += 1;
                eprintln!("chaos: run {} (seed {s}) could not run: {e:#}", i + 1);
                if errors >= 3 {
                    eprintln!("chaos: giving up after {errors} runs that could not run");
                    break;
                }
            }
        }
        i += 1;
    }
    summary(&results, &kinds);
    let faults: usize = results
        .iter()
        .map(|r| r.faults.values().sum::<usize>())
        .sum();
    let ops: usize = results.iter().map(|r| r.ops).sum();
    let anomalies: usize = results.iter().map(|r| r.anomalies.len()).sum::<usize>() + errors;
    println!(
        "chaos: {} runs, {faults} faults, {ops} operations, {anomalies} anomalies",
        results.len() + errors
    );
    if anomalies > 0 {
        std::process::exit(1);
    }
    Ok(())
}

fn summary(results: &[RunResult], kinds: &[FaultKind]) {
    let mut per: BTreeMap<FaultKind, PerKind> = BTreeMap::new();
    for r in results {
        for (k, n) in &r.faults {
            let p = per.entry(*k).or_default();
            p.runs += 1;
            p.faults += n;
            p.ops += r.ops;
            p.anomalies += r.anomalies.len();
        }
    }
    println!(
        "{:<16} {:>6} {:>7} {:>11} {:>10}",
        "fault", "runs", "faults", "operations", "anomalies"
    );
    for k in kinds {
        let p = per
            .get(k)
            .map_or((0, 0, 0, 0), |p| (p.runs, p.faults, p.ops, p.anomalies));
        println!(
            "{:<16} {:>6} {:>7} {:>11} {:>10}",
            k.name(),
            p.0,
            p.1,
            p.2,
            p.3
        );
    }
    println!(
        "minority side: {} writes sent to nodes cut off from the voters' majority, none acknowledged (any would be an anomaly above)",
        results.iter().map(|r| r.minority_writes_refused).sum::<usize>()
    );
    for kind in [FaultKind::IsolateLeader, FaultKind::Pause] {
        let mut ms: Vec<Option<u64>> = results
            .iter()
            .flat_map(|r| r.failovers.iter())
            .filter(|(k, _)| *k == kind)
            .map(|(_, ms)| *ms)
            .collect();
        let overlapped = results
            .iter()
            .flat_map(|r| r.failovers_overlapped.iter())
            .filter(|k| **k == kind)
            .count();
        if ms.is_empty() && overlapped == 0 {
            continue;
        }
        let none = ms.iter().filter(|m| m.is_none()).count();
        let mut got: Vec<u64> = ms.drain(..).flatten().collect();
        got.sort_unstable();
        let median = got.get(got.len() / 2).copied().unwrap_or(0);
        let worst = got.last().copied().unwrap_or(0);
        println!(
            "failover after {}: {} faults alone, median {median} ms, worst {worst} ms, {none} without a new leader before the fault ended; {overlapped} overlapped another fault (not measured)",
            if kind == FaultKind::Pause { "SIGSTOP of the leader" } else { "isolating the leader" },
            got.len() + none
        );
    }
}
