//! `cairn admin`: operator actions against a running server's admin API.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};

#[derive(clap::Args, Debug, Clone)]
pub struct AdminArgs {
    /// Address of the server's admin API.
    #[arg(long, default_value = "127.0.0.1:9001", env = "CAIRN_ADMIN_ADDR")]
    pub admin: SocketAddr,
    /// Data directory of the server (its cluster secret authenticates admin calls; or set
    /// CAIRN_CLUSTER_SECRET).
    #[arg(long, default_value = "./cairn-data", env = "CAIRN_DATA")]
    pub data: PathBuf,
    #[command(subcommand)]
    pub action: AdminAction,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum AdminAction {
    /// List the local datanodes: address, directory, serving or stopped, usage.
    Datanodes,
    /// Stop serving a datanode (the cluster sees it as down).
    StopDatanode { id: u32 },
    /// Serve a stopped datanode again on its old address.
    StartDatanode { id: u32 },
    /// List the access keys (without secrets).
    Keys,
    /// Create an access key; prints it with its secret (shown only this once).
    CreateKey {
        /// A name for the key's owner.
        #[arg(long, default_value = "")]
        name: String,
        /// Use this access key instead of a generated one.
        #[arg(long)]
        access_key: Option<String>,
        /// Use this secret instead of a generated one.
        #[arg(long)]
        secret_key: Option<String>,
    },
}

pub fn run(args: AdminArgs) -> anyhow::Result<()> {
    let secret = cluster_secret(&args.data)?;
    let mut body = String::new();
    let (method, path) = match &args.action {
        AdminAction::Datanodes => ("GET", "/admin/datanodes".to_string()),
        AdminAction::StopDatanode { id } => ("POST", format!("/admin/datanodes/{id}/stop")),
        AdminAction::StartDatanode { id } => ("POST", format!("/admin/datanodes/{id}/start")),
        AdminAction::Keys => ("GET", "/admin/keys".to_string()),
        AdminAction::CreateKey {
            name,
            access_key,
            secret_key,
        } => {
            body = serde_json::json!({
                "name": name,
                "access_key": access_key,
                "secret_key": secret_key,
            })
            .to_string();
            ("POST", "/admin/keys".to_string())
        }
    };
    let (status, body) = request(args.admin, method, &path, &secret, &body)?;
    print!("{body}");
    if !body.ends_with('\n') {
        println!();
    }
    if !(200..300).contains(&status) {
        bail!("the server answered {status}");
    }
    Ok(())
}

pub(crate) fn cluster_secret(data: &Path) -> anyhow::Result<String> {
    if let Ok(s) = std::env::var("CAIRN_CLUSTER_SECRET") {
        if !s.is_empty() {
            return Ok(s);
        }
    }
    let path = data.join("cluster-secret");
    let s = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading the cluster secret from {} (use --data or CAIRN_CLUSTER_SECRET)",
            path.display()
        )
    })?;
    Ok(s.trim().to_string())
}

/// One HTTP/1.1 request with `Connection: close`; returns the status and the body.
pub(crate) fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    secret: &str,
    body: &str,
) -> anyhow::Result<(u16, String)> {
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("connecting to the admin API at {addr}"))?;
    conn.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(
        conn,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {secret}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("malformed reply from the admin API")?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("malformed status line from the admin API")?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dechunks_bodies() {
        assert_eq!(
            dechunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            "hello world"
        );
        assert_eq!(dechunk("zz\r\n"), "");
    }
}
