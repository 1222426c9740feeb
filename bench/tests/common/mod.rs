//! What the end-to-end tests of the benchmark share: arguments for a short quiet run that
//! writes its JSON report, and reading that report back.

use std::path::Path;
use std::time::Duration;

use cairn_bench::{BenchArgs, Op, Report};

/// A short run of `op` against `endpoints` (one, or a comma-separated list), unsigned,
/// 64 KiB objects, 2 workers, its report written to `json`.
pub fn args_for(endpoints: &str, op: Op, json: &Path) -> BenchArgs {
    let mut a = BenchArgs::defaults();
    a.endpoint = endpoints.parse().expect("an endpoint list");
    a.op = op;
    a.size = 64 << 10;
    a.concurrency = 2;
    a.duration = Duration::from_millis(1500);
    a.warmup = Duration::from_millis(200);
    a.objects = 40;
    a.json = Some(json.to_path_buf());
    a.quiet = true;
    a.access_key = None;
    a.secret_key = None;
    a
}

pub fn read_report(path: &Path) -> Report {
    let text = std::fs::read_to_string(path).expect("the JSON report was written");
    serde_json::from_str(&text).expect("the JSON report parses back")
}
