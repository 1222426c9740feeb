//! `cairn server` arguments.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use cairn_types::EcScheme;

#[derive(clap::Args, Debug, Clone)]
#[command(args_override_self = true)]
pub struct ServerArgs {
    /// A TOML file of server settings: the same names as the flags (`node-id = 2`,
    /// `roles = "meta,data"`, `data-dir = ["/disk1", "/disk2"]`, …). Flags given on the
    /// command line win over the file.
    #[arg(long, env = "CAIRN_CONFIG")]
    pub config: Option<PathBuf>,
    /// This node's id in the cluster (unique, stable across restarts).
    #[arg(long, default_value_t = 1, env = "CAIRN_NODE_ID")]
    pub node_id: u64,
    /// What this node does: any of `meta` (a metadata voter), `data` (runs datanodes),
    /// `gateway` (serves S3 and the console), comma-separated. A node without `meta` keeps a
    /// non-voting replica of the metadata.
    #[arg(long, default_value = "meta,data,gateway", env = "CAIRN_ROLES")]
    pub roles: crate::cluster::Roles,
    /// Address of the cluster listener (Raft and node-to-node calls).
    #[arg(long, default_value = "127.0.0.1:9002", env = "CAIRN_CLUSTER_LISTEN")]
    pub cluster_listen: SocketAddr,
    /// Host name or IP other nodes reach this node at (its cluster listener and datanodes)
    /// [default: the listen IP, or the host name when listening on all interfaces].
    #[arg(long, env = "CAIRN_ADVERTISE")]
    pub advertise: Option<String>,
    /// Join the cluster that answers at this cluster address (`host:port` of any member) on
    /// first start, instead of starting a new one. Needs the cluster's secret
    /// (`CAIRN_CLUSTER_SECRET`).
    #[arg(long, env = "CAIRN_JOIN")]
    pub join: Option<String>,
    /// Plain HTTP between nodes, the cluster secret as bearer token on every call, instead
    /// of mutual TLS with certificates from the cluster CA: only for a network nobody else
    /// can see. Every node of a cluster must agree (a node with the other setting cannot
    /// reach the rest, nor they it).
    #[arg(long, env = "CAIRN_INSECURE_CLUSTER_TRANSPORT")]
    pub insecure_cluster_transport: bool,
    /// A datanode directory; repeat for several (one datanode each) [default: `--datanodes`
    /// directories under `<data>/datanodes/`].
    #[arg(long = "data-dir", env = "CAIRN_DATA_DIRS", value_delimiter = ',')]
    pub data_dirs: Vec<PathBuf>,
    /// Failure domain of this node's datanodes (a rack or room); stripes spread over zones
    /// and hosts.
    #[arg(long, default_value = "default", env = "CAIRN_ZONE")]
    pub zone: String,
    /// Seconds a metadata write or read waits for a leader and a quorum before failing with
    /// 503.
    #[arg(long, default_value_t = 5.0, env = "CAIRN_META_TIMEOUT")]
    pub meta_timeout: f64,
    /// Metadata log entries between snapshots (older entries are then dropped).
    #[arg(long, default_value_t = 10_000)]
    pub raft_snapshot_logs: u64,
    /// Milliseconds without a leader before a metadata node calls an election.
    #[arg(long, default_value_t = 1000)]
    pub raft_election_ms: u64,
    /// Seconds between datanode heartbeats; a datanode that misses three is marked down.
    #[arg(long, default_value_t = 1.0)]
    pub heartbeat_secs: f64,
    /// Directory that holds metadata and datanode segments.
    #[arg(long, default_value = "./cairn-data", env = "CAIRN_DATA")]
    pub data: PathBuf,
    /// Address of the S3 API.
    #[arg(long, default_value = "127.0.0.1:9000", env = "CAIRN_LISTEN")]
    pub listen: SocketAddr,
    /// Address of the admin API (health checks).
    #[arg(long, default_value = "127.0.0.1:9001", env = "CAIRN_ADMIN_LISTEN")]
    pub admin_listen: SocketAddr,
    /// Open connections the S3 listener accepts; at the cap the connection idle longest is
    /// closed to make room, or, when every one has a request in flight, the new one is
    /// refused. The admin (256), cluster and datanode listeners (1024 each) have their own
    /// caps; all caps are scaled down to leave 1024 descriptors of the open-file limit free.
    #[arg(long, default_value_t = 4096, env = "CAIRN_MAX_CONNECTIONS")]
    pub max_connections: usize,
    /// Seconds a client has to send a whole request head once it started one (and to finish a
    /// TLS handshake), on every listener.
    #[arg(long, default_value_t = 10.0, env = "CAIRN_HEADER_TIMEOUT", value_parser = parse_secs)]
    pub header_timeout: f64,
    /// Seconds a connection may stay open with no request in flight and no bytes moving (and
    /// a response may stay stuck because the client stopped reading), on every listener.
    #[arg(long, default_value_t = 60.0, env = "CAIRN_IDLE_TIMEOUT", value_parser = parse_secs)]
    pub idle_timeout: f64,
    /// Bytes per second a request body must average while the server waits for it, after a
    /// 10 s grace, e.g. `16KiB`; slower uploads fail and their connection closes. 0: off.
    #[arg(long, default_value = "16KiB", env = "CAIRN_MIN_BODY_RATE", value_parser = cairn_api::budget::parse_size)]
    pub min_body_rate: u64,
    /// Seconds an S3 or admin request without a body (GET, HEAD, DELETE, …) may take to its
    /// response head before it gets 503; 0: no limit. Streaming a response is not limited.
    #[arg(long, default_value_t = 300.0, env = "CAIRN_REQUEST_TIMEOUT", value_parser = parse_secs_or_off)]
    pub request_timeout: f64,
    /// PEM certificate chain (server certificate first): the S3 and admin listeners serve
    /// HTTPS. Reloaded when the file changes, for new connections.
    #[arg(long, env = "CAIRN_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `--tls-cert`.
    #[arg(long, env = "CAIRN_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The region this server reports.
    #[arg(long, default_value = "us-east-1", env = "CAIRN_REGION")]
    pub region: String,
    /// Memory that S3 request bodies in flight may hold together, e.g. `256MiB`, `1GiB` or
    /// plain bytes. Each upload reserves what it will hold (its length, at most the data
    /// path's per-request working set: 20 MiB with the default stripes) before its body is
    /// read; beyond the budget new uploads wait their turn (`--max-inflight-wait`), then get
    /// 503 SlowDown (with `Retry-After: 1`) instead of allocating. A budget below one
    /// working set lets one upload through at a time.
    #[arg(long, default_value = "1GiB", env = "CAIRN_MAX_INFLIGHT_BYTES", value_parser = cairn_api::budget::parse_size)]
    pub max_inflight_bytes: u64,
    /// Seconds an upload that finds `--max-inflight-bytes` spent waits for room (first come,
    /// first served; its body unread) before it is refused with 503 SlowDown. 0: refuse at
    /// once.
    #[arg(long, default_value_t = 20.0, env = "CAIRN_MAX_INFLIGHT_WAIT", value_parser = parse_secs_or_off)]
    pub max_inflight_wait: f64,
    /// S3 requests per second each access key may make (a token bucket with one second's
    /// burst); beyond it, 503 SlowDown with Retry-After. 0: unlimited. `cairn key
    /// set-limit` overrides it per key. Each gateway enforces it on its own requests.
    #[arg(long, default_value_t = 0, env = "CAIRN_KEY_OPS_PER_SEC")]
    pub key_ops_per_sec: u64,
    /// Body bytes per second (uploads and downloads) each access key may move, e.g.
    /// `100MiB`; 0: unlimited. `cairn key set-limit` overrides it per key.
    #[arg(long, default_value = "0", env = "CAIRN_KEY_BYTES_PER_SEC", value_parser = cairn_api::budget::parse_size)]
    pub key_bytes_per_sec: u64,
    /// S3 requests per second from each client address (IPv6: each /64), signed or not,
    /// checked before authentication. 0 (the default): unlimited — behind a load balancer,
    /// proxy or NAT many clients share one address.
    #[arg(long, default_value_t = 0, env = "CAIRN_IP_OPS_PER_SEC")]
    pub ip_ops_per_sec: u64,
    /// Body bytes per second from and to each client address, e.g. `50MiB`; 0 (the
    /// default): unlimited.
    #[arg(long, default_value = "0", env = "CAIRN_IP_BYTES_PER_SEC", value_parser = cairn_api::budget::parse_size)]
    pub ip_bytes_per_sec: u64,
    /// Data bytes per stripe.
    #[arg(long, default_value_t = 4 << 20)]
    pub stripe_size: usize,
    /// Objects smaller than this many bytes are stored inline in metadata.
    #[arg(long, default_value_t = 64 << 10)]
    pub inline_threshold: usize,
    /// Local datanodes to run, one directory each under `<data>/datanodes/` [default: 6 on
    /// first start, then what the data directory was last started with].
    #[arg(long, env = "CAIRN_DATANODES")]
    pub datanodes: Option<u32>,
    /// Erasure coding of new objects: DATA+PARITY shards per stripe, DATA+PARITY ≤ datanodes
    /// [default: 4+2 on first start, then the saved scheme]. A change applies to new writes.
    #[arg(long, value_parser = parse_ec, env = "CAIRN_EC")]
    pub ec: Option<EcScheme>,
    /// Address the local datanodes' internal shard servers bind to (ports chosen at start).
    #[arg(long, default_value = "127.0.0.1", env = "CAIRN_DATANODE_LISTEN")]
    pub datanode_listen: IpAddr,
    /// Size at which a datanode starts a new segment file, in bytes (compaction also seals a
    /// mostly dead segment early, so deleted data frees space whatever the fill).
    #[arg(long, default_value_t = cairn_datanode::DEFAULT_SEGMENT_SIZE)]
    pub segment_size: u64,
    /// Seconds between compaction passes (segments under 50% live are rewritten).
    #[arg(long, default_value_t = 60)]
    pub compaction_interval: u64,
    /// Domain for virtual-hosted-style requests (`bucket.<domain>`); repeat for several.
    /// Path-style requests keep working.
    #[arg(long, env = "CAIRN_DOMAIN", value_delimiter = ',')]
    pub domain: Vec<String>,
    /// Shards of a stripe that must be durable before a write succeeds (default DATA+1).
    #[arg(long)]
    pub write_quorum: Option<usize>,
    /// Seconds between lifecycle runs over the buckets with lifecycle rules (a run that
    /// takes longer starts the next one when it ends).
    #[arg(long, default_value_t = 3600, env = "CAIRN_LIFECYCLE_INTERVAL")]
    pub lifecycle_interval: u64,
    /// For tests only: a lifecycle "day" lasts this many seconds (0: a real day), like RGW's
    /// `rgw_lc_debug_interval`; runs then start every second or so.
    #[arg(long, default_value_t = 0, env = "CAIRN_LIFECYCLE_DAY_SECS")]
    pub lifecycle_day_secs: u64,
    /// Most lifecycle deletions and aborts per second (so that expiring millions of objects
    /// never crowds out requests).
    #[arg(long, default_value_t = 500, env = "CAIRN_LIFECYCLE_RATE")]
    pub lifecycle_rate: u32,
    /// Seconds between scheduled light scrubs (Merkle comparison; 0: only on request).
    #[arg(long, default_value_t = 3600, env = "CAIRN_SCRUB_INTERVAL")]
    pub scrub_interval: u64,
    /// Seconds between scheduled deep scrubs (every payload re-read; 0: only on request).
    #[arg(long, default_value_t = 7 * 24 * 3600, env = "CAIRN_DEEP_SCRUB_INTERVAL")]
    pub deep_scrub_interval: u64,
    /// Deep-scrub read rate per datanode, MB/s (0: unlimited).
    #[arg(long, default_value_t = 64.0)]
    pub deep_scrub_rate: f64,
    /// Repair write rate, MB/s (0: unlimited); change it live with `cairn repair --rate`.
    #[arg(long, default_value_t = 64.0, env = "CAIRN_REPAIR_RATE")]
    pub repair_rate: f64,
    /// Seconds a shard must be seen orphaned before repair deletes it.
    #[arg(long, default_value_t = 3600, env = "CAIRN_ORPHAN_GRACE")]
    pub orphan_grace: u64,
    /// Scheduled scrubs only report; nothing is repaired until asked.
    #[arg(long)]
    pub no_auto_repair: bool,
    /// How long a console login lasts, in seconds.
    #[arg(long, default_value_t = 12 * 3600)]
    pub console_session_secs: u64,
    /// The S3 URL browsers reach (for the console's download and share links); default: the
    /// host the console is reached at, with the S3 port.
    #[arg(long, env = "CAIRN_PUBLIC_S3_URL")]
    pub public_s3_url: Option<String>,
    /// Encryption at rest of new objects whose request and bucket ask for none: `sse-s3`
    /// (as AWS since 2023) or `none`. Objects already stored keep theirs.
    #[arg(long, default_value = "sse-s3", env = "CAIRN_DEFAULT_ENCRYPTION", value_parser = ["sse-s3", "none"])]
    pub default_encryption: String,
    /// File holding the key-encryption key (64 hex digits; readable by its owner only) that
    /// seals the master keys of encryption at rest where metadata keeps them; or the key
    /// itself in the environment variable `CAIRN_MASTER_KEY`. Keep it off the data disks.
    /// Every node of a cluster needs the same one. Default: derived from the cluster secret.
    #[arg(long, env = "CAIRN_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Accept SSE-C (customer-provided keys) over plain HTTP, which S3 refuses since the key
    /// would cross the network in the clear: for tests and trusted networks only.
    #[arg(long, env = "CAIRN_ALLOW_INSECURE_SSE_C")]
    pub allow_insecure_sse_c: bool,
}

/// MB/s to bytes a second.
pub fn mb_per_sec(mb: f64) -> u64 {
    (mb.max(0.0) * 1_048_576.0) as u64
}

/// A positive number of seconds.
fn parse_secs(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 * 365.0 => Ok(v),
        Ok(_) => Err(format!("expected a positive number of seconds, got {s:?}")),
        Err(_) => Err(format!("expected seconds such as 10 or 2.5, got {s:?}")),
    }
}

/// Seconds, or 0 for none.
fn parse_secs_or_off(s: &str) -> Result<f64, String> {
    if s.trim().parse::<f64>() == Ok(0.0) {
        return Ok(0.0);
    }
    parse_secs(s)
}

fn parse_ec(s: &str) -> Result<EcScheme, String> {
    s.parse()
}

impl ServerArgs {
    /// What the cluster membership needs of these arguments; `limits` are the cluster
    /// listener's connection limits.
    pub fn cluster_config(&self, limits: cairn_net::Limits) -> crate::cluster::ClusterConfig {
        crate::cluster::ClusterConfig {
            node_id: self.node_id,
            roles: self.roles,
            cluster_listen: self.cluster_listen,
            advertise: self.advertise.clone(),
            join: self.join.clone(),
            raft_election_ms: self.raft_election_ms,
            raft_snapshot_logs: self.raft_snapshot_logs,
            meta_timeout: self.meta_timeout,
            limits,
            setup: self.node_setup(),
        }
    }

    /// What certificate setup needs of these arguments.
    pub fn node_setup(&self) -> crate::pki::setup::NodeSetup {
        crate::pki::setup::NodeSetup {
            data: self.data.clone(),
            node_id: self.node_id,
            join: self.join.clone(),
            insecure_cluster_transport: self.insecure_cluster_transport,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ec() {
        assert_eq!(parse_ec("4+2"), Ok(EcScheme { data: 4, parity: 2 }));
        assert_eq!(parse_ec("1+0"), Ok(EcScheme::SINGLE));
        assert!(parse_ec("0+2").is_err());
        assert!(parse_ec("4").is_err());
        assert!(parse_ec("a+b").is_err());
    }

    #[test]
    fn parses_seconds() {
        assert_eq!(parse_secs("10"), Ok(10.0));
        assert_eq!(parse_secs("2.5"), Ok(2.5));
        assert!(parse_secs("0").is_err());
        assert!(parse_secs("-1").is_err());
        assert!(parse_secs("NaN").is_err());
        assert!(parse_secs("soon").is_err());
        assert_eq!(parse_secs_or_off("0"), Ok(0.0));
        assert_eq!(parse_secs_or_off("30"), Ok(30.0));
        assert!(parse_secs_or_off("-5").is_err());
    }
}
