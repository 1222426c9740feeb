//! `cairn server` arguments.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use cairn_types::EcScheme;

#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    /// Directory that holds metadata and datanode segments.
    #[arg(long, default_value = "./cairn-data", env = "CAIRN_DATA")]
    pub data: PathBuf,
    /// Address of the S3 API.
    #[arg(long, default_value = "127.0.0.1:9000", env = "CAIRN_LISTEN")]
    pub listen: SocketAddr,
    /// Address of the admin API (health checks).
    #[arg(long, default_value = "127.0.0.1:9001", env = "CAIRN_ADMIN_LISTEN")]
    pub admin_listen: SocketAddr,
    /// The region this server reports.
    #[arg(long, default_value = "us-east-1", env = "CAIRN_REGION")]
    pub region: String,
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
    /// Size at which a datanode starts a new segment file, in bytes.
    #[arg(long, default_value_t = 1 << 30)]
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
}

fn parse_ec(s: &str) -> Result<EcScheme, String> {
    let (k, m) = s
        .split_once('+')
        .ok_or_else(|| format!("expected DATA+PARITY such as 4+2, got {s:?}"))?;
    let data: u8 = k
        .trim()
        .parse()
        .map_err(|_| format!("bad data shard count {k:?}"))?;
    let parity: u8 = m
        .trim()
        .parse()
        .map_err(|_| format!("bad parity shard count {m:?}"))?;
    if data == 0 {
        return Err("at least one data shard is needed".into());
    }
    Ok(EcScheme { data, parity })
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
}
