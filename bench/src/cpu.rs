//! CPU time of the client (this process) and of the server: `/proc/<pid>/stat` (user +
//! system time) or the Prometheus `process_cpu_seconds_total` from `<endpoint>/metrics`.

use std::sync::Arc;

use crate::s3::{Conn, Target};

/// Linux reports /proc times in USER_HZ, which is 100 on every architecture it runs on.
const USER_HZ: f64 = 100.0;

/// User + system CPU seconds from the text of a `/proc/<pid>/stat` file.
pub fn parse_proc_stat(text: &str) -> Option<f64> {
    // The command name (field 2) is in parentheses and may hold spaces or ')'.
    let after = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// CPU seconds used so far by this process.
pub fn self_cpu() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|t| parse_proc_stat(&t))
        .unwrap_or(0.0)
}

/// CPU seconds used so far by process `pid`, if it can be read.
pub fn pid_cpu(pid: u32) -> Option<f64> {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|t| parse_proc_stat(&t))
}

/// `process_cpu_seconds_total` from Prometheus text, if present.
pub fn parse_metrics_cpu(text: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let rest = l.strip_prefix("process_cpu_seconds_total")?;
        // Allow labels: `process_cpu_seconds_total{...} 1.5`.
        let value = match rest.strip_prefix('{') {
            Some(r) => &r[r.find('}')? + 1..],
            None => rest,
        };
        value.split_whitespace().next()?.parse().ok()
    })
}

/// Reads the server's CPU time one way or the other.
pub enum ServerCpu {
    Pid(u32),
    /// A connection to the metrics listener and the path to GET.
    Metrics(Conn, String),
    None,
}

impl ServerCpu {
    /// With a pid, `/proc`; else `metrics_url` or `<endpoint>/metrics` if it answers with
    /// the figure now; else none.
    pub async fn detect(pid: Option<u32>, metrics_url: Option<&str>, target: &Arc<Target>) -> Self {
        if let Some(pid) = pid {
            if pid_cpu(pid).is_some() {
                return ServerCpu::Pid(pid);
            }
            eprintln!("note: cannot read /proc/{pid}/stat; server CPU not measured");
            return ServerCpu::None;
        }
        let (mut conn, path) = match metrics_url {
            Some(url) => match metrics_target(url, target) {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("note: --metrics-url {url}: {e}; server CPU not measured");
                    return ServerCpu::None;
                }
            },
            None => (Conn::new(target.clone()), "/metrics".to_string()),
        };
        let found =
            tokio::time::timeout(std::time::Duration::from_secs(2), conn.get_unsigned(&path))
                .await
                .ok()
                .and_then(|r| r.ok())
                .and_then(|b| parse_metrics_cpu(&String::from_utf8_lossy(&b)));
        match found {
            Some(_) => ServerCpu::Metrics(conn, path),
            None => {
                if metrics_url.is_some() {
                    eprintln!("note: no process_cpu_seconds_total at --metrics-url; server CPU not measured");
                }
                ServerCpu::None
            }
        }
    }

    /// The server's CPU seconds so far.
    pub async fn read(&mut self) -> Option<f64> {
        match self {
            ServerCpu::Pid(pid) => pid_cpu(*pid),
            ServerCpu::Metrics(conn, path) => conn
                .get_unsigned(path)
                .await
                .ok()
                .and_then(|b| parse_metrics_cpu(&String::from_utf8_lossy(&b))),
            ServerCpu::None => None,
        }
    }

    /// "pid", "metrics" or "" (none).
    pub fn source(&self) -> &'static str {
        match self {
            ServerCpu::Pid(_) => "pid",
            ServerCpu::Metrics(..) => "metrics",
            ServerCpu::None => "",
        }
    }
}

/// A connection to the host of `url` (unsigned, same TLS settings as `like`) and its path.
fn metrics_target(url: &str, like: &Target) -> anyhow::Result<(Conn, String)> {
    let uri: http::Uri = url.parse()?;
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .filter(|p| p != "/")
        .unwrap_or_else(|| "/metrics".into());
    let base = format!(
        "{}://{}",
        uri.scheme_str().unwrap_or("http"),
        uri.authority().ok_or_else(|| anyhow::anyhow!("no host"))?
    );
    let target = Target::new(&base, like.insecure, None, "us-east-1", like.payload)?;
    Ok((Conn::new(Arc::new(target)), path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat() {
        let t = "1234 (my (odd) prog) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0";
        assert_eq!(parse_proc_stat(t), Some(3.0));
        assert!(self_cpu() >= 0.0);
        assert!(pid_cpu(std::process::id()).is_some());
    }

    #[test]
    fn metrics() {
        let t = "# HELP process_cpu_seconds_total x\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 12.5\n";
        assert_eq!(parse_metrics_cpu(t), Some(12.5));
        assert_eq!(
            parse_metrics_cpu("process_cpu_seconds_total{a=\"b\"} 2"),
            Some(2.0)
        );
        assert_eq!(parse_metrics_cpu("other 1"), None);
    }
}
