//! What `cairn` logs: `RUST_LOG` when it is set; otherwise Cairn's own crates at INFO and
//! every dependency (openraft, hyper, RocksDB bindings, the AWS SDK) at WARN, so that a
//! newcomer starting a server sees Cairn's events — listeners, credentials, joins — and not
//! the internals of the libraries under it.

use tracing_subscriber::EnvFilter;

/// Cairn's crates (their tracing targets) logged at INFO by default.
const OWN_CRATES: &[&str] = &[
    "cairn",
    "cairn_api",
    "cairn_bench",
    "cairn_chaos",
    "cairn_datanode",
    "cairn_erasure",
    "cairn_heal",
    "cairn_lifecycle",
    "cairn_metadata",
    "cairn_metadata_raft",
    "cairn_metadata_rocks",
    "cairn_net",
    "cairn_objects",
    "cairn_placement",
    "cairn_sse",
    "cairn_policy",
    "cairn_sigv4",
    "cairn_types",
    "cairn_worker",
];

/// The default filter directive: dependencies at WARN, Cairn at INFO.
pub fn default_directive() -> String {
    let mut d = String::from("warn");
    for c in OWN_CRATES {
        d.push(',');
        d.push_str(c);
        d.push_str("=info");
    }
    d
}

/// `RUST_LOG` if set to something (and valid), else [`default_directive`]. An empty
/// `RUST_LOG` (what `RUST_LOG: ${RUST_LOG:-}` in the compose file gives) is unset.
pub fn filter() -> EnvFilter {
    filter_from(std::env::var("RUST_LOG").ok().as_deref())
}

fn filter_from(rust_log: Option<&str>) -> EnvFilter {
    rust_log
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .and_then(|s| EnvFilter::try_new(s).ok())
        .unwrap_or_else(|| EnvFilter::new(default_directive()))
}

/// Installs the stderr subscriber with [`filter`].
pub fn init() {
    tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        .init();
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What a subscriber with the filter from `rust_log` writes for a fixed set of events.
    fn logged(rust_log: Option<&str>) -> String {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(filter_from(rust_log))
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "openraft::engine", "raft state dump");
            tracing::warn!(target: "openraft::engine", "raft warning");
            tracing::info!(target: "hyper::proto", "hyper detail");
            tracing::info!(target: "cairn::server", "cairn event");
            tracing::info!(target: "cairn_metadata_raft", "metadata event");
            tracing::debug!(target: "cairn::server", "cairn debug");
        });
        let bytes = out.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn dependencies_log_warnings_only_and_cairn_logs_info() {
        for unset in [None, Some(""), Some("  ")] {
            check_default(&logged(unset));
        }
        // RUST_LOG wins when it says something.
        let all = logged(Some("info"));
        assert!(all.contains("raft state dump"), "{all}");
        let debug = logged(Some("cairn=debug"));
        assert!(
            debug.contains("cairn debug") && !debug.contains("raft warning"),
            "{debug}"
        );
    }

    fn check_default(text: &str) {
        assert!(text.contains("cairn event"), "{text}");
        assert!(text.contains("metadata event"), "{text}");
        assert!(text.contains("raft warning"), "{text}");
        assert!(!text.contains("raft state dump"), "{text}");
        assert!(!text.contains("hyper detail"), "{text}");
        assert!(!text.contains("cairn debug"), "{text}");
    }

    #[test]
    fn every_workspace_crate_is_named() {
        // A crate added to the workspace but not here would log nothing at INFO.
        let manifest = include_str!("../../Cargo.toml");
        let members = manifest
            .split("members = [")
            .nth(1)
            .and_then(|s| s.split(']').next())
            .expect("workspace members");
        for m in members.split(',').map(|m| m.trim().trim_matches('"')) {
            if m.is_empty() || m == "tests" {
                continue;
            }
            let target = if m == "cairn" {
                "cairn".to_string()
            } else {
                format!("cairn_{}", m.replace('-', "_"))
            };
            assert!(OWN_CRATES.contains(&target.as_str()), "{target} missing");
        }
    }
}
