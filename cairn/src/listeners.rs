//! The limits of each listener of `cairn server` ([`cairn_net::Limits`]) from its flags: the
//! S3 listener's connection cap is `--max-connections`, the admin, cluster and datanode
//! listeners have fixed caps of their own, and all of them are fitted under the open-file
//! limit (raised to the hard limit at start) so that descriptors stay free for RocksDB,
//! segment files and outgoing connections. Also the HTTPS certificate of the S3 and admin
//! listeners (`--tls-cert`, `--tls-key`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use cairn_net::{Limits, TlsFiles};

use crate::cli::server::ServerArgs;

/// Connection cap of the admin (and console) listener.
const ADMIN_CAP: usize = 256;
/// Connection cap of the cluster listener and of each datanode listener.
const INTERNAL_CAP: usize = 1024;
/// Datanodes assumed when the flags do not say (the server's default).
const DEFAULT_DATANODES: usize = 6;

/// The connection cap of each listener, after fitting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub s3: usize,
    pub admin: usize,
    pub cluster: usize,
    pub datanode: usize,
}

/// Local datanodes the flags ask for (each has a listener).
fn local_datanodes(args: &ServerArgs) -> usize {
    if !args.roles.data {
        0
    } else if !args.data_dirs.is_empty() {
        args.data_dirs.len()
    } else {
        args.datanodes.map_or(DEFAULT_DATANODES, |n| n as usize)
    }
}

/// The caps for `args` under an open-file limit of `fd_limit`.
pub fn caps_for(args: &ServerArgs, fd_limit: u64) -> Caps {
    let datanodes = local_datanodes(args);
    let s3 = if args.roles.gateway {
        args.max_connections.max(1)
    } else {
        0
    };
    let wanted = [s3, ADMIN_CAP, INTERNAL_CAP, INTERNAL_CAP * datanodes];
    let fitted = cairn_net::fit_connection_caps(&wanted, fd_limit);
    Caps {
        s3: fitted[0].max(1),
        admin: fitted[1],
        cluster: fitted[2],
        datanode: fitted[3]
            .checked_div(datanodes)
            .map_or(INTERNAL_CAP, |c| c.max(1)),
    }
}

/// The caps for `args` under the current open-file limit.
pub fn caps(args: &ServerArgs) -> Caps {
    caps_for(args, cairn_net::nofile_soft_limit())
}

/// Raises the open-file limit and logs the connection caps; once, at start.
pub fn prepare_descriptors(args: &ServerArgs) {
    match cairn_net::raise_nofile_limit() {
        Ok(l) if l.soft > l.before => {
            tracing::info!(from = l.before, to = l.soft, "raised the open-file limit")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
    let soft = cairn_net::nofile_soft_limit();
    let c = caps_for(args, soft);
    let wanted = args.max_connections;
    if args.roles.gateway && c.s3 < wanted {
        tracing::warn!(
            wanted,
            cap = c.s3,
            open_file_limit = soft,
            "--max-connections lowered to fit the open-file limit (raise `ulimit -n`)"
        );
    }
    tracing::info!(
        s3 = c.s3,
        admin = c.admin,
        cluster = c.cluster,
        per_datanode = c.datanode,
        open_file_limit = soft,
        reserved = cairn_net::RESERVED_FDS,
        "connection caps"
    );
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.001))
}

/// What every listener shares: the timeouts and the body rate.
fn base(args: &ServerArgs, cap: usize) -> Limits {
    Limits {
        header_timeout: secs(args.header_timeout),
        idle_timeout: secs(args.idle_timeout),
        max_connections: cap,
        min_body_rate: args.min_body_rate,
        request_timeout: (args.request_timeout > 0.0).then(|| secs(args.request_timeout)),
        ..Limits::default()
    }
}

pub fn s3(args: &ServerArgs) -> Limits {
    Limits {
        timed_out: cairn_api::timed_out_response,
        ..base(args, caps(args).s3)
    }
}

pub fn admin(args: &ServerArgs) -> Limits {
    base(args, caps(args).admin)
}

/// Raft and node-to-node calls: no request timeout (a join or a snapshot may take long).
pub fn cluster(args: &ServerArgs) -> Limits {
    Limits {
        request_timeout: None,
        ..base(args, caps(args).cluster)
    }
}

/// The shard protocol: no request timeout (deep scrubs and Merkle walks take long).
pub fn datanode(args: &ServerArgs) -> Limits {
    Limits {
        request_timeout: None,
        ..base(args, caps(args).datanode)
    }
}

/// The HTTPS certificate of the S3 and admin listeners, when `--tls-cert` is given.
pub fn tls(args: &ServerArgs) -> anyhow::Result<Option<Arc<TlsFiles>>> {
    match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Ok(Some(TlsFiles::load(cert, key).with_context(|| {
            format!(
                "loading the TLS certificate {} and key {}",
                cert.display(),
                key.display()
            )
        })?)),
        (None, None) => Ok(None),
        _ => anyhow::bail!("--tls-cert and --tls-key go together"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ServerArgs,
    }

    fn args(extra: &[&str]) -> ServerArgs {
        let mut argv = vec!["cairn"];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).expect("flags").args
    }

    #[test]
    fn caps_fit_under_the_descriptor_limit() {
        let a = args(&[]);
        let roomy = caps_for(&a, 1 << 20);
        assert_eq!(
            roomy,
            Caps {
                s3: 4096,
                admin: ADMIN_CAP,
                cluster: INTERNAL_CAP,
                datanode: INTERNAL_CAP
            }
        );
        let tight = caps_for(&a, 4096);
        let total = tight.s3 + tight.admin + tight.cluster + tight.datanode * DEFAULT_DATANODES;
        assert!(total as u64 <= 4096 - cairn_net::RESERVED_FDS, "{tight:?}");
        assert!(tight.s3 > tight.admin, "{tight:?}");
    }

    #[test]
    fn flags_reach_the_limits() {
        let a = args(&[
            "--header-timeout",
            "3",
            "--idle-timeout",
            "7.5",
            "--min-body-rate",
            "1KiB",
            "--request-timeout",
            "0",
            "--max-connections",
            "100",
        ]);
        let l = base(&a, 100);
        assert_eq!(l.header_timeout, Duration::from_secs(3));
        assert_eq!(l.idle_timeout, Duration::from_millis(7500));
        assert_eq!(l.min_body_rate, 1024);
        assert_eq!(l.request_timeout, None);
        assert_eq!(caps_for(&a, 1 << 20).s3, 100);
        let d = args(&[]);
        assert_eq!(base(&d, 1).request_timeout, Some(Duration::from_secs(300)));
        assert_eq!(datanode(&d).request_timeout, None);
    }

    #[test]
    fn tls_flags_go_together() {
        let mut cli = vec!["cairn", "--tls-cert", "c.pem"];
        assert!(Cli::try_parse_from(cli.clone()).is_err());
        cli.extend(["--tls-key", "k.pem"]);
        let a = Cli::try_parse_from(cli).unwrap().args;
        let err = tls(&a).err().expect("missing files").to_string();
        assert!(err.contains("c.pem"), "{err}");
    }
}
