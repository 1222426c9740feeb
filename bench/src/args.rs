//! The command line: [`BenchArgs`] and the parsers of its values (sizes such as `64MiB`,
//! durations such as `15s`, mixes such as `get=60,put=30,delete=10`, endpoint lists such as
//! `http://10.0.0.1:9000,http://10.0.0.2:9000`).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The workload a benchmark runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// PUT new objects.
    Put,
    /// GET prepared objects (each body is checked: length and CRC32C).
    Get,
    /// GET, PUT and DELETE on the prepared objects in the proportions of `--mix`.
    Mixed,
    /// ListObjectsV2 over the prepared objects, page by page.
    List,
    /// DELETE prepared objects (a run ends early when they are all gone).
    Delete,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Op::Put => "put",
            Op::Get => "get",
            Op::Mixed => "mixed",
            Op::List => "list",
            Op::Delete => "delete",
        };
        f.write_str(s)
    }
}

/// How request bodies are signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Payload {
    /// `x-amz-content-sha256: UNSIGNED-PAYLOAD`.
    Unsigned,
    /// The SHA-256 of the body (computed once per pool buffer).
    Signed,
}

/// Percentages of GET, PUT and DELETE in a mixed workload (they add up to 100).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mix {
    pub get: u32,
    pub put: u32,
    pub delete: u32,
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            get: 60,
            put: 30,
            delete: 10,
        }
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "get={},put={},delete={}",
            self.get, self.put, self.delete
        )
    }
}

/// The S3 endpoints of one benchmark, in order: the gateways of one cluster (worker `i` uses
/// entry `i % n`). Written to JSON as the entries joined with `,`, as the single endpoint was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints(Vec<String>);

impl Endpoints {
    /// Parses `http://a:9000` or `http://a:9000,http://b:9000,...`: the entries are trimmed,
    /// and an empty or repeated entry is an error naming it. Each entry is checked as a URL
    /// when the benchmark builds its [`crate::s3::Target`].
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut list: Vec<String> = Vec::new();
        for (i, entry) in s.split(',').map(str::trim).enumerate() {
            if entry.is_empty() {
                return Err(format!("entry {} of `{s}` is empty", i + 1));
            }
            if list.iter().any(|e| e == entry) {
                return Err(format!("`{entry}` is listed twice in `{s}`"));
            }
            list.push(entry.to_string());
        }
        Ok(Endpoints(list))
    }

    /// The entries (at least one).
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

impl fmt::Display for Endpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

impl std::str::FromStr for Endpoints {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Endpoints::parse(s)
    }
}

impl Serialize for Endpoints {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Endpoints {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Endpoints::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Parses `get=60,put=30,delete=10` (any order; a missing kind is 0; the total must be 100).
pub fn parse_mix(s: &str) -> Result<Mix, String> {
    let mut mix = Mix {
        get: 0,
        put: 0,
        delete: 0,
    };
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}`: expected kind=percent"))?;
        let v: u32 = v
            .trim()
            .trim_end_matches('%')
            .parse()
            .map_err(|_| format!("`{part}`: the percentage is not a whole number"))?;
        match k.trim().to_ascii_lowercase().as_str() {
            "get" => mix.get = v,
            "put" => mix.put = v,
            "delete" | "del" => mix.delete = v,
            other => return Err(format!("unknown operation `{other}` (get, put, delete)")),
        }
    }
    let total = mix.get + mix.put + mix.delete;
    if total != 100 {
        return Err(format!("the percentages add up to {total}, not 100"));
    }
    Ok(mix)
}

/// Splits `s` (trimmed) into its leading number and the unit after it.
fn number_and_unit<'a>(s: &'a str, units: &str) -> Result<(f64, &'a str), String> {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num = num
        .parse()
        .map_err(|_| format!("`{s}`: expected a number followed by {units}"))?;
    Ok((num, unit))
}

/// Parses a byte size: a number with an optional unit. `KiB`/`MiB`/`GiB`/`TiB` (and the
/// short `K`/`M`/`G`/`T`, `k`...) are powers of 1024, `KB`/`MB`/`GB`/`TB` powers of 1000,
/// `B` or nothing is bytes. Fractions are allowed (`1.5MiB`).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, unit) = number_and_unit(s, "a unit such as KiB")?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "ki" | "kib" => 1 << 10,
        "m" | "mi" | "mib" => 1 << 20,
        "g" | "gi" | "gib" => 1 << 30,
        "t" | "ti" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        other => return Err(format!("`{s}`: unknown unit `{other}`")),
    };
    let bytes = num * mult as f64;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("`{s}`: out of range"));
    }
    Ok(bytes.round() as u64)
}

/// Parses a duration: a number with `ms`, `s`, `m` or `h` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = number_and_unit(s, "ms, s, m or h")?;
    let secs = match unit.trim() {
        "ms" => num / 1000.0,
        "" | "s" => num,
        "m" | "min" => num * 60.0,
        "h" => num * 3600.0,
        other => return Err(format!("`{s}`: unknown unit `{other}`")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("`{s}`: {e}"))
}

/// `cairn bench`: an S3 load generator (like warp) and a null S3 server to measure the
/// client's own ceiling on this machine.
#[derive(Clone, Debug, PartialEq, clap::Args, Serialize, Deserialize)]
pub struct BenchArgs {
    /// The workload: put, get, mixed, list or delete.
    #[arg(long, value_enum, default_value_t = Op::Put)]
    pub op: Op,

    /// Percentages of a mixed workload, e.g. `get=60,put=30,delete=10` (must add up to 100).
    #[arg(long, value_parser = parse_mix, default_value = "get=60,put=30,delete=10")]
    pub mix: Mix,

    /// Object size: bytes or with a unit (4KiB, 64MiB, 1GiB; KB/MB/GB are powers of 1000).
    #[arg(long, value_parser = parse_size, default_value = "1MiB")]
    pub size: u64,

    /// Concurrent workers; each owns one connection.
    #[arg(long, short = 'c', default_value_t = 8)]
    pub concurrency: usize,

    /// How long each measured run lasts (e.g. 15s, 500ms, 2m).
    #[arg(long, value_parser = parse_duration, default_value = "15s")]
    #[serde(with = "secs")]
    pub duration: Duration,

    /// Warm-up before each measured run; operations started in it are not counted (none for
    /// delete, which would only use up objects).
    #[arg(long, value_parser = parse_duration, default_value = "3s")]
    #[serde(with = "secs")]
    pub warmup: Duration,

    /// Objects uploaded before measuring get, list, delete and mixed (not counted).
    #[arg(long, default_value_t = 200)]
    pub objects: usize,

    /// Bucket to use; created if missing (default: a random `cairn-bench-xxxxxxxx`).
    #[arg(long)]
    pub bucket: Option<String>,

    /// S3 endpoint, path style: `http://host:port` or `https://host:port`. Several gateways of
    /// one cluster: a comma-separated list (`http://10.0.0.1:9000,http://10.0.0.2:9000`);
    /// worker i uses endpoint i mod n (`-c 4` over 3 endpoints: 2, 1 and 1 workers), each
    /// worker uploads and reads its own objects through its own endpoint, and the bucket is
    /// created and cleaned up through the first.
    #[arg(
        long,
        value_name = "URL[,URL...]",
        value_parser = Endpoints::parse,
        default_value = "http://127.0.0.1:9000"
    )]
    pub endpoint: Endpoints,

    /// With an https endpoint: accept any server certificate (no verification).
    #[arg(long)]
    pub insecure: bool,

    /// Access key (else env CAIRN_ACCESS_KEY, AWS_ACCESS_KEY_ID or CAIRN_ROOT_ACCESS_KEY;
    /// none: unsigned requests).
    #[arg(long, env = "CAIRN_ACCESS_KEY", hide_env_values = true)]
    #[serde(skip)]
    pub access_key: Option<String>,

    /// Secret key (else env CAIRN_SECRET_KEY, AWS_SECRET_ACCESS_KEY or CAIRN_ROOT_SECRET_KEY).
    #[arg(long, env = "CAIRN_SECRET_KEY", hide_env_values = true)]
    #[serde(skip)]
    pub secret_key: Option<String>,

    /// Signing region.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,

    /// Body signing: `unsigned` (UNSIGNED-PAYLOAD) or `signed` (the body's SHA-256).
    #[arg(long, value_enum, default_value_t = Payload::Unsigned)]
    pub payload: Payload,

    /// Keep the objects and the bucket at the end (default: delete what the run made).
    #[arg(long)]
    pub keep: bool,

    /// Keys per ListObjectsV2 page (max-keys) for `--op list`.
    #[arg(long, default_value_t = 1000)]
    pub list_page: usize,

    /// With `--op list`: list this prefix of the existing bucket (`--bucket`) instead of
    /// objects the benchmark uploads first (none are then uploaded; `--objects` is ignored).
    /// For listings at scale, e.g. a bucket filled by `cairn admin populate`.
    #[arg(long)]
    pub list_prefix: Option<String>,

    /// Write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,

    /// Write a simple HTML report (throughput per second as an inline SVG chart) to this file.
    #[arg(long)]
    pub html: Option<std::path::PathBuf>,

    /// Measured runs (each with its warm-up); the report has each run and the median.
    #[arg(long, default_value_t = 1)]
    pub runs: usize,

    /// Exit successfully even if operations failed (errors are still reported).
    #[arg(long)]
    pub allow_errors: bool,

    /// PIDs of the server processes, comma-separated (`--server-pid 4101,4102,4103`), to read
    /// their CPU time from /proc; the server CPU reported is the sum over them. With neither
    /// this nor --metrics-url, `<endpoint>/metrics` of every endpoint is tried and the
    /// `process_cpu_seconds_total` of those that answer are summed.
    #[arg(long, value_name = "PID[,PID...]", value_delimiter = ',')]
    #[serde(default, with = "one_or_many")]
    pub server_pid: Vec<u32>,

    /// URLs of the servers' Prometheus metrics with `process_cpu_seconds_total`,
    /// comma-separated, when not `<endpoint>/metrics` (e.g. admin listeners:
    /// `http://127.0.0.1:9001/metrics,http://127.0.0.1:9101/metrics`); the figures are summed.
    #[arg(long, value_name = "URL[,URL...]", value_delimiter = ',')]
    #[serde(default, with = "one_or_many")]
    pub metrics_url: Vec<String>,

    /// First run the same workload against a null server started as a child process, and
    /// report the endpoint/null throughput ratio. With several endpoints the baseline is still
    /// one null server, run with the same --concurrency (every worker on it).
    #[arg(long)]
    pub baseline_null: bool,

    /// Serve the null S3 server instead of benchmarking (prints `listening on <addr>`).
    #[arg(long)]
    pub serve_null: bool,

    /// Address the null server listens on.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,

    /// Memory the null server keeps object bodies in; the oldest are dropped beyond it.
    #[arg(long, value_parser = parse_size, default_value = "4GiB")]
    pub null_memory: u64,

    /// Longest an operation may take before it counts as a `timeout` error (its connection
    /// is then dropped).
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    #[serde(with = "secs")]
    pub timeout: Duration,

    /// Distinct random buffers the bodies are drawn from (fewer if they would take more
    /// than 1 GiB together).
    #[arg(long, default_value_t = 4)]
    pub pool: usize,

    /// Print nothing but the summary table.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

impl BenchArgs {
    /// The arguments with their defaults, as if none were given on the command line.
    pub fn defaults() -> Self {
        Self::parse_from_words(std::iter::empty::<String>()).expect("the defaults parse")
    }

    /// The arguments from command-line words (without a program name), e.g.
    /// `["--endpoint", "http://a:9000,http://b:9000", "-c", "4"]`.
    pub fn parse_from_words<I, T>(words: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::{Args, FromArgMatches};
        let cmd = BenchArgs::augment_args(clap::Command::new("bench").no_binary_name(true));
        let m = cmd.try_get_matches_from(words)?;
        BenchArgs::from_arg_matches(&m)
    }

    /// The credentials: the arguments (or CAIRN_ACCESS_KEY / CAIRN_SECRET_KEY), else
    /// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, else Cairn's root key
    /// (CAIRN_ROOT_ACCESS_KEY / CAIRN_ROOT_SECRET_KEY). A pair is taken whole from one place.
    pub fn credentials(&self) -> Option<(String, String)> {
        if let (Some(a), Some(s)) = (&self.access_key, &self.secret_key) {
            return Some((a.clone(), s.clone()));
        }
        let env = |a: &str, s: &str| Some((std::env::var(a).ok()?, std::env::var(s).ok()?));
        env("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
            .or_else(|| env("CAIRN_ROOT_ACCESS_KEY", "CAIRN_ROOT_SECRET_KEY"))
    }
}

/// Durations as (fractional) seconds in the JSON.
mod secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = f64::deserialize(d)?;
        Duration::try_from_secs_f64(v).map_err(serde::de::Error::custom)
    }
}

/// A list in the JSON; also read from what a single `--server-pid`/`--metrics-url` used to be
/// written as (`null` or one value).
mod one_or_many {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(v: &[T], s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form<T> {
        Many(Vec<T>),
        One(T),
        None(()),
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<Vec<T>, D::Error>
    where
        T: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(match Form::deserialize(d)? {
            Form::Many(v) => v,
            Form::One(x) => vec![x],
            Form::None(()) => Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1gib"), Ok(1 << 30));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("4KB"), Ok(4000));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("123"), Ok(123));
        assert_eq!(parse_size("123B"), Ok(123));
        assert_eq!(parse_size("1.5MiB"), Ok(3 << 19));
        assert_eq!(parse_size(" 2 MiB "), Ok(2 << 20));
        assert!(parse_size("").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("4XB").is_err());
        assert!(parse_size("-4KiB").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert!(parse_duration("3 days").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn mixes() {
        assert_eq!(
            parse_mix("get=60,put=30,delete=10"),
            Ok(Mix {
                get: 60,
                put: 30,
                delete: 10
            })
        );
        assert_eq!(
            parse_mix("put=50, get=50"),
            Ok(Mix {
                get: 50,
                put: 50,
                delete: 0
            })
        );
        assert_eq!(parse_mix("get=100%").map(|m| m.get), Ok(100));
        assert!(parse_mix("get=60,put=30").is_err());
        assert!(parse_mix("get=60,put=30,head=10").is_err());
        assert!(parse_mix("get60").is_err());
        assert!(parse_mix("get=x,put=100").is_err());
        let m = Mix::default();
        assert_eq!(parse_mix(&m.to_string()), Ok(m));
    }

    #[test]
    fn defaults_parse() {
        let a = BenchArgs::defaults();
        assert_eq!(a.op, Op::Put);
        assert_eq!(a.size, 1 << 20);
        assert_eq!(a.list_page, 1000);
        assert_eq!(a.null_memory, 4 << 30);
        assert_eq!(a.region, "us-east-1");
        assert_eq!(a.endpoint.as_slice(), ["http://127.0.0.1:9000"]);
        assert!(a.server_pid.is_empty() && a.metrics_url.is_empty());
    }

    #[test]
    fn endpoint_lists() {
        let e = Endpoints::parse("http://a:9000, http://b:9000 ,http://c:9000").unwrap();
        assert_eq!(
            e.as_slice(),
            ["http://a:9000", "http://b:9000", "http://c:9000"]
        );
        assert_eq!(e.to_string(), "http://a:9000,http://b:9000,http://c:9000");
        assert_eq!(
            Endpoints::parse("http://a:9000").unwrap().as_slice().len(),
            1
        );
        let err = Endpoints::parse("http://a:9000,,http://c:9000").unwrap_err();
        assert!(err.contains("entry 2") && err.contains("empty"), "{err}");
        assert!(Endpoints::parse("").unwrap_err().contains("entry 1"));
        let err = Endpoints::parse("http://a:9000,http://b:9000,http://a:9000").unwrap_err();
        assert!(err.contains("`http://a:9000` is listed twice"), "{err}");
        // The JSON form is the joined string, as the single endpoint used to be.
        let json = serde_json::to_string(&e).unwrap();
        assert_eq!(json, "\"http://a:9000,http://b:9000,http://c:9000\"");
        assert_eq!(serde_json::from_str::<Endpoints>(&json).unwrap(), e);
        assert!(serde_json::from_str::<Endpoints>("\"a,,b\"").is_err());
    }

    #[test]
    fn command_line_lists() {
        let a = BenchArgs::parse_from_words([
            "--endpoint",
            "http://a:9000,http://b:9100",
            "--server-pid",
            "41,42,43",
            "--metrics-url",
            "http://a:9001/metrics,http://b:9101/metrics",
        ])
        .unwrap();
        assert_eq!(a.endpoint.as_slice(), ["http://a:9000", "http://b:9100"]);
        assert_eq!(a.server_pid, [41, 42, 43]);
        assert_eq!(
            a.metrics_url,
            ["http://a:9001/metrics", "http://b:9101/metrics"]
        );
        // A bad entry is named in the error.
        let err = BenchArgs::parse_from_words(["--server-pid", "41,4x2"]).unwrap_err();
        assert!(err.to_string().contains("'4x2'"), "{err}");
        let err = BenchArgs::parse_from_words(["--endpoint", "http://a:9000,"]).unwrap_err();
        assert!(err.to_string().contains("entry 2"), "{err}");
    }

    #[test]
    fn pid_and_metrics_lists_in_json() {
        let mut a = BenchArgs::defaults();
        a.server_pid = vec![7, 8];
        a.metrics_url = vec!["http://m/metrics".into()];
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["server_pid"], serde_json::json!([7, 8]));
        assert_eq!(json["endpoint"], "http://127.0.0.1:9000");
        let back: BenchArgs = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, a);
        // Reports written when these were single values still read.
        let mut old = json;
        old["server_pid"] = serde_json::json!(7);
        old["metrics_url"] = serde_json::Value::Null;
        let back: BenchArgs = serde_json::from_value(old).unwrap();
        assert_eq!(back.server_pid, [7]);
        assert!(back.metrics_url.is_empty());
    }
}
