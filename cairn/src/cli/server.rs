//! `cairn server` arguments.

use std::net::SocketAddr;
use std::path::PathBuf;

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
}
