//! Measurements: what each worker records while it runs ([`Recorder`], lock-free because
//! each worker owns one), how they merge into one run's [`RunResult`], and the medians over
//! runs ([`Medians`]).

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Counts of one kind of operation (get, put, ...) in a window.
pub struct KindStats {
    /// Latency in microseconds.
    pub hist: Histogram<u64>,
    pub ops: u64,
    pub bytes: u64,
}

impl KindStats {
    fn new() -> Self {
        KindStats {
            hist: new_histogram(),
            ops: 0,
            bytes: 0,
        }
    }
}

/// 1 µs to 1 hour, 3 significant digits.
fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds")
}

/// One worker's counts during the measured window.
pub struct Recorder {
    /// Latency in microseconds.
    pub hist: Histogram<u64>,
    pub ops: u64,
    pub bytes: u64,
    pub items: u64,
    pub errors: BTreeMap<String, u64>,
    /// Per second from the window's start (by completion time): (ops, bytes).
    pub per_second: Vec<(u64, u64)>,
    /// Completion of the last counted operation, from the window's start.
    pub last_done: Duration,
    /// The same counts by kind of operation.
    pub kinds: BTreeMap<&'static str, KindStats>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Self {
        Recorder {
            hist: new_histogram(),
            ops: 0,
            bytes: 0,
            items: 0,
            errors: BTreeMap::new(),
            per_second: Vec::new(),
            last_done: Duration::ZERO,
            kinds: BTreeMap::new(),
        }
    }

    /// Counts a successful operation of `kind` that took `latency` and finished at `done`
    /// (from the window's start).
    pub fn ok(
        &mut self,
        kind: &'static str,
        latency: Duration,
        done: Duration,
        bytes: u64,
        items: u64,
    ) {
        let us = (latency.as_micros() as u64).max(1);
        self.hist.saturating_record(us);
        let k = self.kinds.entry(kind).or_insert_with(KindStats::new);
        k.hist.saturating_record(us);
        k.ops += 1;
        k.bytes += bytes;
        self.ops += 1;
        self.bytes += bytes;
        self.items += items;
        let sec = done.as_secs() as usize;
        if self.per_second.len() <= sec {
            self.per_second.resize(sec + 1, (0, 0));
        }
        self.per_second[sec].0 += 1;
        self.per_second[sec].1 += bytes;
        self.last_done = self.last_done.max(done);
    }

    pub fn error(&mut self, kind: &str, done: Duration) {
        match self.errors.get_mut(kind) {
            Some(n) => *n += 1,
            None => {
                self.errors.insert(kind.to_string(), 1);
            }
        }
        self.last_done = self.last_done.max(done);
    }

    pub fn merge(&mut self, other: &Recorder) {
        self.hist.add(&other.hist).expect("same bounds");
        self.ops += other.ops;
        self.bytes += other.bytes;
        self.items += other.items;
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        if self.per_second.len() < other.per_second.len() {
            self.per_second.resize(other.per_second.len(), (0, 0));
        }
        for (i, (o, b)) in other.per_second.iter().enumerate() {
            self.per_second[i].0 += o;
            self.per_second[i].1 += b;
        }
        self.last_done = self.last_done.max(other.last_done);
        for (kind, o) in &other.kinds {
            let k = self.kinds.entry(kind).or_insert_with(KindStats::new);
            k.hist.add(&o.hist).expect("same bounds");
            k.ops += o.ops;
            k.bytes += o.bytes;
        }
    }
}

/// One kind of operation within a run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct KindResult {
    pub ops: u64,
    pub bytes: u64,
    pub ops_per_s: f64,
    pub mib_per_s: f64,
    pub latency: Latency,
}

/// Latency percentiles in milliseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Latency::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }
}

/// One second of a run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Second {
    pub second: u64,
    pub ops: u64,
    pub mib: f64,
}

/// CPU time used during the measured window, and per GiB moved.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Cpu {
    pub client_seconds: f64,
    pub client_seconds_per_gib: Option<f64>,
    /// Only when the server's CPU time could be read (`--server-pid` or `/metrics`).
    pub server_seconds: Option<f64>,
    pub server_seconds_per_gib: Option<f64>,
    /// Where the server's figure came from: "pid", "metrics" or absent.
    pub server_source: Option<String>,
    /// How many server processes (pids or metrics listeners) `server_seconds` sums.
    #[serde(default)]
    pub server_processes: Option<usize>,
}

/// The result of one measured run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunResult {
    pub run: usize,
    /// Seconds the counted operations spanned.
    pub elapsed_s: f64,
    pub ops: u64,
    pub bytes: u64,
    /// Keys listed (list workload).
    pub items: u64,
    pub errors: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub ops_per_s: f64,
    pub mib_per_s: f64,
    pub latency: Latency,
    pub per_second: Vec<Second>,
    /// The successful operations by kind ("get", "put", "delete", "list").
    pub by_op: BTreeMap<String, KindResult>,
    pub cpu: Cpu,
    /// Workers ran out of objects before the window ended (delete): the run is shorter.
    pub exhausted: bool,
}

impl RunResult {
    /// The run's result from the merged recorder; `window` is the nominal measured time (the
    /// run lasts at least that long, or until its last counted operation ended if later).
    /// The per-second series stops at the window's end (operations that finished after it
    /// are in the totals only); with a zero window (a run that ran out) it is whole.
    pub fn from_recorder(run: usize, rec: &Recorder, window: Duration) -> Self {
        let elapsed = rec.last_done.max(window).as_secs_f64().max(1e-9);
        let errors = rec.errors.values().sum();
        RunResult {
            run,
            elapsed_s: elapsed,
            ops: rec.ops,
            bytes: rec.bytes,
            items: rec.items,
            errors,
            errors_by_kind: rec.errors.clone(),
            ops_per_s: rec.ops as f64 / elapsed,
            mib_per_s: rec.bytes as f64 / MIB / elapsed,
            latency: Latency::of(&rec.hist),
            per_second: rec
                .per_second
                .iter()
                .take(if window.is_zero() {
                    usize::MAX
                } else {
                    window.as_secs_f64().ceil() as usize
                })
                .enumerate()
                .map(|(i, (o, b))| Second {
                    second: i as u64,
                    ops: *o,
                    mib: *b as f64 / MIB,
                })
                .collect(),
            by_op: rec
                .kinds
                .iter()
                .map(|(k, v)| {
                    let r = KindResult {
                        ops: v.ops,
                        bytes: v.bytes,
                        ops_per_s: v.ops as f64 / elapsed,
                        mib_per_s: v.bytes as f64 / MIB / elapsed,
                        latency: Latency::of(&v.hist),
                    };
                    (k.to_string(), r)
                })
                .collect(),
            cpu: Cpu::default(),
            exhausted: false,
        }
    }

    /// Fills in the CPU figures from the seconds used in the window; `server` is the server's
    /// seconds, where they came from and how many processes they sum.
    pub fn set_cpu(&mut self, client: f64, server: Option<(f64, &str, usize)>) {
        let gib = self.bytes as f64 / GIB;
        let per_gib = |s: f64| (gib > 0.0).then(|| s / gib);
        self.cpu = Cpu {
            client_seconds: client,
            client_seconds_per_gib: per_gib(client),
            server_seconds: server.map(|s| s.0),
            server_seconds_per_gib: server.and_then(|s| per_gib(s.0)),
            server_source: server.map(|s| s.1.to_string()),
            server_processes: server.map(|s| s.2),
        };
    }
}

/// The median of each figure over the runs.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Medians {
    pub runs: usize,
    pub ops_per_s: f64,
    pub mib_per_s: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub errors: f64,
    pub client_cpu_seconds_per_gib: Option<f64>,
    pub server_cpu_seconds_per_gib: Option<f64>,
}

impl Medians {
    pub fn of(runs: &[RunResult]) -> Self {
        let m = |f: &dyn Fn(&RunResult) -> f64| median(runs.iter().map(f).collect()).unwrap_or(0.0);
        let opt =
            |f: &dyn Fn(&RunResult) -> Option<f64>| median(runs.iter().filter_map(f).collect());
        Medians {
            runs: runs.len(),
            ops_per_s: m(&|r| r.ops_per_s),
            mib_per_s: m(&|r| r.mib_per_s),
            p50_ms: m(&|r| r.latency.p50_ms),
            p90_ms: m(&|r| r.latency.p90_ms),
            p99_ms: m(&|r| r.latency.p99_ms),
            p999_ms: m(&|r| r.latency.p999_ms),
            max_ms: m(&|r| r.latency.max_ms),
            errors: m(&|r| r.errors as f64),
            client_cpu_seconds_per_gib: opt(&|r| r.cpu.client_seconds_per_gib),
            server_cpu_seconds_per_gib: opt(&|r| r.cpu.server_seconds_per_gib),
        }
    }
}

/// The median (the mean of the two middle values for an even count); `None` when empty.
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0]), Some(3.0));
        assert_eq!(median(vec![5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn percentiles() {
        let mut r = Recorder::new();
        // 1..=1000 ms, one each.
        for ms in 1..=1000u64 {
            r.ok(
                "get",
                Duration::from_millis(ms),
                Duration::from_millis(ms),
                1 << 20,
                0,
            );
        }
        let l = Latency::of(&r.hist);
        let close = |a: f64, b: f64| (a - b).abs() / b < 0.01;
        assert!(close(l.p50_ms, 500.0), "{l:?}");
        assert!(close(l.p90_ms, 900.0), "{l:?}");
        assert!(close(l.p99_ms, 990.0), "{l:?}");
        assert!(close(l.p999_ms, 999.0), "{l:?}");
        assert!(close(l.max_ms, 1000.0), "{l:?}");
        assert!(close(l.mean_ms, 500.5), "{l:?}");
        let run = RunResult::from_recorder(0, &r, Duration::from_secs(1));
        assert_eq!(run.ops, 1000);
        assert!((run.mib_per_s - 1000.0).abs() < 1e-6);
        // The op that finished at 1.000 s is past the 1 s window: in the totals only.
        assert_eq!(run.per_second.len(), 1);
        assert_eq!(run.per_second[0].ops, 999);
        // A run that ran out (zero window) keeps its whole series.
        let run = RunResult::from_recorder(0, &r, Duration::ZERO);
        assert_eq!(run.per_second.len(), 2);
        assert!((run.elapsed_s - 1.0).abs() < 1e-9);
    }

    #[test]
    fn merge_and_median_runs() {
        let mut a = Recorder::new();
        a.ok(
            "get",
            Duration::from_millis(2),
            Duration::from_millis(10),
            10,
            0,
        );
        a.error("crc mismatch", Duration::from_millis(20));
        let mut b = Recorder::new();
        b.ok(
            "put",
            Duration::from_millis(4),
            Duration::from_millis(1500),
            20,
            3,
        );
        b.error("crc mismatch", Duration::from_millis(20));
        a.merge(&b);
        assert_eq!((a.ops, a.bytes, a.items), (2, 30, 3));
        assert_eq!(a.errors["crc mismatch"], 2);
        assert_eq!(a.per_second, vec![(1, 10), (1, 20)]);
        assert_eq!(a.kinds["get"].ops, 1);
        assert_eq!(a.kinds["put"].bytes, 20);
        let mut runs: Vec<RunResult> = (0..3)
            .map(|i| RunResult::from_recorder(i, &a, Duration::from_secs(1 + i as u64)))
            .collect();
        runs[0].set_cpu(1.0, None);
        let m = Medians::of(&runs);
        assert_eq!(m.runs, 3);
        assert!((m.ops_per_s - runs[1].ops_per_s).abs() < 1e-9);
        assert_eq!(m.errors, 2.0);
        assert_eq!(m.server_cpu_seconds_per_gib, None);
    }
}
