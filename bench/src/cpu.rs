//! CPU time of the client (this process) and of the server: `/proc/<pid>/stat` (user +
//! system time) or the Prometheus `process_cpu_seconds_total` from `<endpoint>/metrics`. A
//! server may be several processes (the gateways of a cluster, given as several pids or
//! metrics URLs, or found at several endpoints): its CPU time is their sum ([`ServerCpu`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

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

/// Where one server process's CPU time is read.
enum Source {
    /// A file in the format of `/proc/<pid>/stat` (`/proc/<pid>/stat` itself for a pid).
    Stat(PathBuf),
    /// A connection to a metrics listener and the path to GET.
    Metrics(Conn, String),
}

impl Source {
    async fn read(&mut self) -> Option<f64> {
        match self {
            Source::Stat(path) => std::fs::read_to_string(path)
                .ok()
                .and_then(|t| parse_proc_stat(&t)),
            Source::Metrics(conn, path) => metrics_cpu(conn, path).await,
        }
    }
}

/// `process_cpu_seconds_total` at `path` over `conn`, if it answers with it.
async fn metrics_cpu(conn: &mut Conn, path: &str) -> Option<f64> {
    let body = conn.get_unsigned(path).await.ok()?;
    parse_metrics_cpu(&String::from_utf8_lossy(&body))
}

/// [`metrics_cpu`] within 2 s: whether a metrics listener answers when first asked.
async fn probe(conn: &mut Conn, path: &str) -> bool {
    tokio::time::timeout(Duration::from_secs(2), metrics_cpu(conn, path))
        .await
        .ok()
        .flatten()
        .is_some()
}

/// Reads the CPU time of the server processes one way or the other; a reading is the sum
/// over all of them.
pub struct ServerCpu {
    sources: Vec<Source>,
    /// "pid", "metrics" or "" (none).
    kind: &'static str,
}

impl ServerCpu {
    fn none() -> Self {
        ServerCpu {
            sources: Vec::new(),
            kind: "",
        }
    }

    /// With pids, `/proc` (each pid counted once; all must be readable now); else the
    /// `metrics_urls` (all must answer with the figure now); else `<endpoint>/metrics` of each
    /// distinct target, keeping those that answer with the figure now; else none.
    pub async fn detect(pids: &[u32], metrics_urls: &[String], targets: &[Arc<Target>]) -> Self {
        if !pids.is_empty() {
            let mut sources = Vec::new();
            let mut seen = Vec::new();
            for &pid in pids {
                if seen.contains(&pid) {
                    continue;
                }
                seen.push(pid);
                if pid_cpu(pid).is_none() {
                    eprintln!("note: cannot read /proc/{pid}/stat; server CPU not measured");
                    return ServerCpu::none();
                }
                sources.push(Source::Stat(format!("/proc/{pid}/stat").into()));
            }
            return ServerCpu {
                sources,
                kind: "pid",
            };
        }
        let Some(first) = targets.first() else {
            return ServerCpu::none();
        };
        if !metrics_urls.is_empty() {
            let mut sources = Vec::new();
            let mut seen: Vec<&str> = Vec::new();
            for url in metrics_urls {
                if seen.contains(&url.as_str()) {
                    continue;
                }
                seen.push(url);
                let (mut conn, path) = match metrics_target(url, first) {
                    Ok(x) => x,
                    Err(e) => {
                        eprintln!("note: --metrics-url {url}: {e}; server CPU not measured");
                        return ServerCpu::none();
                    }
                };
                if !probe(&mut conn, &path).await {
                    eprintln!(
                        "note: no process_cpu_seconds_total at --metrics-url {url}; server CPU not measured"
                    );
                    return ServerCpu::none();
                }
                sources.push(Source::Metrics(conn, path));
            }
            return ServerCpu {
                sources,
                kind: "metrics",
            };
        }
        let mut sources = Vec::new();
        let mut seen = Vec::new();
        let mut silent = Vec::new();
        for target in targets {
            let endpoint = target.endpoint();
            if seen.contains(&endpoint) {
                continue;
            }
            seen.push(endpoint.clone());
            let mut conn = Conn::new(target.clone());
            if probe(&mut conn, "/metrics").await {
                sources.push(Source::Metrics(conn, "/metrics".into()));
            } else {
                silent.push(endpoint);
            }
        }
        if sources.is_empty() {
            return ServerCpu::none();
        }
        if !silent.is_empty() {
            eprintln!(
                "note: no process_cpu_seconds_total at {}/metrics; server CPU is that of the other {} endpoint(s)",
                silent.join("/metrics, "),
                sources.len()
            );
        }
        ServerCpu {
            sources,
            kind: "metrics",
        }
    }

    /// The CPU seconds of all the server processes so far (none if any cannot be read).
    pub async fn read(&mut self) -> Option<f64> {
        if self.sources.is_empty() {
            return None;
        }
        let mut total = 0.0;
        for source in &mut self.sources {
            total += source.read().await?;
        }
        Some(total)
    }

    /// "pid", "metrics" or "" (none).
    pub fn source(&self) -> &'static str {
        self.kind
    }

    /// How many processes a reading sums.
    pub fn processes(&self) -> usize {
        self.sources.len()
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

    /// A `/proc/<pid>/stat` line with `utime` and `stime` ticks.
    fn stat_line(pid: u32, utime: u64, stime: u64) -> String {
        format!("{pid} (srv) S 1 {pid} {pid} 0 -1 4194560 100 0 0 0 {utime} {stime} 0 0 20 0 1 0")
    }

    #[tokio::test]
    async fn stat_readings_are_summed() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        std::fs::write(&a, stat_line(10, 250, 50)).unwrap();
        std::fs::write(&b, stat_line(11, 100, 25)).unwrap();
        let mut cpu = ServerCpu {
            sources: vec![Source::Stat(a.clone()), Source::Stat(b.clone())],
            kind: "pid",
        };
        assert_eq!(cpu.processes(), 2);
        assert_eq!(cpu.read().await, Some(3.0 + 1.25));
        // One process moves on: the sum follows.
        std::fs::write(&b, stat_line(11, 200, 25)).unwrap();
        assert_eq!(cpu.read().await, Some(3.0 + 2.25));
        // One cannot be read (it exited): no figure rather than a partial sum.
        std::fs::remove_file(&a).unwrap();
        assert_eq!(cpu.read().await, None);
        assert_eq!(ServerCpu::none().read().await, None);
    }

    #[tokio::test]
    async fn pids_are_read_from_proc_once_each() {
        let me = std::process::id();
        let cpu = ServerCpu::detect(&[me, me], &[], &[]).await;
        assert_eq!((cpu.source(), cpu.processes()), ("pid", 1));
        // An unreadable pid among them: not measured at all.
        let cpu = ServerCpu::detect(&[me, u32::MAX], &[], &[]).await;
        assert_eq!((cpu.source(), cpu.processes()), ("", 0));
    }

    /// A listener answering `GET /metrics` with `process_cpu_seconds_total <cpu>`, or 404
    /// everywhere when `cpu` is none.
    async fn metrics_server(cpu: Option<f64>) -> Arc<Target> {
        use http_body_util::Full;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: http::Request<_>| {
                        let mut resp = http::Response::new(Full::new(bytes::Bytes::new()));
                        match cpu {
                            Some(v) if req.uri().path() == "/metrics" => {
                                let text = format!("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {v}\n");
                                *resp.body_mut() = Full::new(bytes::Bytes::from(text));
                            }
                            _ => *resp.status_mut() = http::StatusCode::NOT_FOUND,
                        }
                        async move { Ok::<_, std::convert::Infallible>(resp) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        let target = Target::new(
            &format!("http://{addr}"),
            false,
            None,
            "us-east-1",
            crate::args::Payload::Unsigned,
        )
        .unwrap();
        Arc::new(target)
    }

    #[tokio::test]
    async fn metrics_of_every_endpoint_are_summed() {
        let a = metrics_server(Some(1.25)).await;
        let b = metrics_server(Some(2.5)).await;
        let silent = metrics_server(None).await;
        // Without pids or URLs: each endpoint's /metrics, those that answer (a twice: once).
        let targets = [a.clone(), silent.clone(), b.clone(), a.clone()];
        let mut cpu = ServerCpu::detect(&[], &[], &targets).await;
        assert_eq!((cpu.source(), cpu.processes()), ("metrics", 2));
        assert_eq!(cpu.read().await, Some(3.75));
        let mut none = ServerCpu::detect(&[], &[], std::slice::from_ref(&silent)).await;
        assert_eq!((none.source(), none.read().await), ("", None));

        // Explicit URLs (another path, another host than the endpoint): summed as well.
        let urls = [
            format!("{}/metrics", a.endpoint()),
            format!("{}/metrics", b.endpoint()),
        ];
        let mut cpu = ServerCpu::detect(&[], &urls, std::slice::from_ref(&silent)).await;
        assert_eq!((cpu.source(), cpu.processes()), ("metrics", 2));
        assert_eq!(cpu.read().await, Some(3.75));
        // One URL without the figure: not measured (a partial sum would mislead).
        let urls = [urls[0].clone(), format!("{}/metrics", silent.endpoint())];
        let cpu = ServerCpu::detect(&[], &urls, &[a]).await;
        assert_eq!((cpu.source(), cpu.processes()), ("", 0));
    }
}
