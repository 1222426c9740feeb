//! The report: [`Report`] (what `--json` writes), the endpoint/null ratios, and the
//! human-readable summary table printed to stdout (which the HTML page shows too): the
//! endpoints of each side and their workers, then a row per run and the medians.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::args::BenchArgs;
use crate::workload::TargetReport;

/// Everything a benchmark measured; written as JSON by `--json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// "cairn-bench".
    pub tool: String,
    /// The version of this crate.
    pub version: String,
    /// Seconds since the Unix epoch when the benchmark started.
    pub started_unix: u64,
    /// The arguments (without the credentials).
    pub args: BenchArgs,
    /// The endpoint under test.
    pub target: TargetReport,
    /// The null server, with `--baseline-null`.
    pub null: Option<TargetReport>,
    /// Endpoint / null, with `--baseline-null`.
    pub ratios: Option<Ratios>,
    /// Single-core MD5 speed on this machine, measured in the same invocation (the bound
    /// of one PUT stream on any S3 server, whose ETag is the body's MD5).
    #[serde(default)]
    pub md5_mib_per_s: Option<f64>,
    /// Target throughput / [`Report::md5_mib_per_s`].
    #[serde(default)]
    pub md5_ratio: Option<f64>,
}

/// Ratios of the endpoint's medians to the null server's.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Ratios {
    /// Throughput (MiB/s) of the endpoint divided by that of the null server.
    pub throughput: Option<f64>,
    /// Operations per second, endpoint / null.
    pub ops_per_s: Option<f64>,
    /// Median latency, endpoint / null.
    pub p50_latency: Option<f64>,
}

impl Ratios {
    pub fn of(target: &TargetReport, null: &TargetReport) -> Self {
        let div = |a: f64, b: f64| (b > 0.0).then(|| a / b);
        Ratios {
            throughput: div(target.median.mib_per_s, null.median.mib_per_s),
            ops_per_s: div(target.median.ops_per_s, null.median.ops_per_s),
            p50_latency: div(target.median.p50_ms, null.median.p50_ms),
        }
    }
}

impl Report {
    /// Operations that failed, over all runs and endpoints.
    pub fn total_errors(&self) -> u64 {
        let sum = |t: &TargetReport| t.runs.iter().map(|r| r.errors).sum::<u64>();
        sum(&self.target) + self.null.as_ref().map(sum).unwrap_or(0)
    }

    /// The summary table.
    pub fn summary(&self) -> String {
        let a = &self.args;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "cairn-bench {}: op={} size={} concurrency={} duration={:.1}s warmup={:.1}s payload={:?}{}",
            self.version,
            a.op,
            human_bytes(a.size),
            a.concurrency,
            a.duration.as_secs_f64(),
            a.warmup.as_secs_f64(),
            a.payload,
            if a.op == crate::args::Op::Mixed {
                format!(" mix={}", a.mix)
            } else {
                String::new()
            }
        );
        for t in std::iter::once(&self.target).chain(self.null.as_ref()) {
            let _ = writeln!(s, "{:<7} {}", t.label, endpoints_line(t, a.concurrency));
        }
        let _ = writeln!(
            s,
            "{:<7} {:>4} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>9} {:>9}",
            "target",
            "run",
            "MiB/s",
            "ops/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99.9",
            "max ms",
            "errors",
            "cli s/GiB",
            "srv s/GiB"
        );
        let opt = |v: Option<f64>| v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "-".into());
        for t in std::iter::once(&self.target).chain(self.null.as_ref()) {
            for r in &t.runs {
                let _ = writeln!(
                    s,
                    "{:<7} {:>4} {:>10.1} {:>10.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>7} {:>9} {:>9}",
                    t.label,
                    r.run + 1,
                    r.mib_per_s,
                    r.ops_per_s,
                    r.latency.p50_ms,
                    r.latency.p90_ms,
                    r.latency.p99_ms,
                    r.latency.p999_ms,
                    r.latency.max_ms,
                    r.errors,
                    opt(r.cpu.client_seconds_per_gib),
                    opt(r.cpu.server_seconds_per_gib),
                );
            }
            let m = &t.median;
            let _ = writeln!(
                s,
                "{:<7} {:>4} {:>10.1} {:>10.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>7} {:>9} {:>9}",
                t.label,
                "med",
                m.mib_per_s,
                m.ops_per_s,
                m.p50_ms,
                m.p90_ms,
                m.p99_ms,
                m.p999_ms,
                m.max_ms,
                m.errors,
                opt(m.client_cpu_seconds_per_gib),
                opt(m.server_cpu_seconds_per_gib),
            );
            for r in &t.runs {
                if r.by_op.len() > 1 {
                    for (kind, k) in &r.by_op {
                        let _ = writeln!(
                            s,
                            "  {} run {} {kind:<6}: {:.1} MiB/s, {:.1} ops/s, p50 {:.2} ms, p99 {:.2} ms",
                            t.label,
                            r.run + 1,
                            k.mib_per_s,
                            k.ops_per_s,
                            k.latency.p50_ms,
                            k.latency.p99_ms
                        );
                    }
                }
                if r.exhausted {
                    let _ = writeln!(
                        s,
                        "  {} run {}: ran out of objects after {:.2}s (raise --objects)",
                        t.label,
                        r.run + 1,
                        r.elapsed_s
                    );
                }
                for (kind, n) in &r.errors_by_kind {
                    let _ = writeln!(s, "  {} run {}: {n} x {kind}", t.label, r.run + 1);
                }
                if r.items > 0 {
                    let _ = writeln!(
                        s,
                        "  {} run {}: {} keys listed ({:.0} keys/s)",
                        t.label,
                        r.run + 1,
                        r.items,
                        r.items as f64 / r.elapsed_s
                    );
                }
            }
        }
        if let Some(r) = &self.ratios {
            let _ = writeln!(
                s,
                "endpoint/null: throughput {}, ops/s {}, p50 latency {}",
                opt(r.throughput),
                opt(r.ops_per_s),
                opt(r.p50_latency)
            );
        }
        if let (Some(m), Some(r)) = (self.md5_mib_per_s, self.md5_ratio) {
            let _ = writeln!(
                s,
                "single-core MD5 here: {m:.1} MiB/s; target throughput / MD5: {r:.3}"
            );
        }
        s
    }
}

/// The endpoints of `t` with the workers of each, and how many processes its server CPU
/// sums when more than one.
fn endpoints_line(t: &TargetReport, concurrency: usize) -> String {
    // Reports written before `endpoints` existed have only the joined string.
    let endpoints: Vec<String> = if t.endpoints.is_empty() {
        t.endpoint.split(',').map(String::from).collect()
    } else {
        t.endpoints.clone()
    };
    let mut line = crate::workload::spread(&endpoints, concurrency.max(1));
    let summed = t
        .runs
        .iter()
        .filter_map(|r| Some((r.cpu.server_processes?, r.cpu.server_source.as_deref()?)))
        .max();
    if let Some((n, source)) = summed.filter(|(n, _)| *n > 1) {
        let _ = write!(line, "; server CPU: sum of {n} processes ({source})");
    }
    line
}

/// `1.0 MiB`-style sizes.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Medians, Recorder, RunResult};
    use std::time::Duration;

    #[test]
    fn endpoints_are_shown() {
        let mut run = RunResult::from_recorder(0, &Recorder::new(), Duration::from_secs(1));
        run.set_cpu(0.5, Some((2.0, "metrics", 2)));
        let target = TargetReport {
            label: "target".into(),
            endpoint: "http://a:9000,http://b:9100".into(),
            endpoints: vec!["http://a:9000".into(), "http://b:9100".into()],
            bucket: "b".into(),
            prefix: "p/".into(),
            runs: vec![run.clone()],
            median: Medians::of(std::slice::from_ref(&run)),
        };
        let mut args = BenchArgs::defaults();
        args.concurrency = 3;
        let mut report = Report {
            tool: "cairn-bench".into(),
            version: "0".into(),
            started_unix: 0,
            args,
            target,
            null: None,
            ratios: None,
            md5_mib_per_s: None,
            md5_ratio: None,
        };
        let text = report.summary();
        assert!(
            text.contains("target  http://a:9000 (2 workers), http://b:9100 (1 worker); server CPU: sum of 2 processes (metrics)"),
            "{text}"
        );
        // A report from before `endpoints`: the joined string is split.
        report.target.endpoints.clear();
        report.target.runs[0].set_cpu(0.5, None);
        let text = report.summary();
        assert!(
            text.contains("target  http://a:9000 (2 workers), http://b:9100 (1 worker)\n"),
            "{text}"
        );
        // And such a report still reads back.
        let mut json = serde_json::to_value(&report).unwrap();
        json["target"].as_object_mut().unwrap().remove("endpoints");
        let back: Report = serde_json::from_value(json).unwrap();
        assert!(back.target.endpoints.is_empty());
        assert_eq!(back.target.endpoint, "http://a:9000,http://b:9100");
    }

    #[test]
    fn bytes() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(64 << 10), "64.0 KiB");
        assert_eq!(human_bytes(3 << 29), "1.5 GiB");
    }
}
