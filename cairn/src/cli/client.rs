//! How every admin subcommand finds and authenticates to a server's admin API.
//!
//! Address: `--admin-url`, else `CAIRN_ADMIN_URL`, else `http://127.0.0.1:9001` (a bare
//! `host:port` works too). Credentials, the first that is set: the root key
//! (`CAIRN_ROOT_ACCESS_KEY` and `CAIRN_ROOT_SECRET_KEY`, which sign each call without
//! sending the secret), an admin token (`CAIRN_ADMIN_TOKEN`, the cluster secret), then, for
//! a server on this host, the cluster secret or the root credentials in its data directory
//! (`--data`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

use crate::admin::auth;

#[derive(clap::Args, Debug, Clone)]
pub struct Connection {
    /// URL of the server's admin API (or host:port).
    #[arg(
        long = "admin-url",
        visible_alias = "admin",
        env = "CAIRN_ADMIN_URL",
        default_value = "http://127.0.0.1:9001",
        global = true
    )]
    pub admin_url: String,
    /// Data directory of a server on this host, whose cluster secret authenticates calls
    /// when no key or token is in the environment.
    #[arg(
        long,
        default_value = "./cairn-data",
        env = "CAIRN_DATA",
        global = true
    )]
    pub data: PathBuf,
}

enum Credential {
    Token(String),
    Root { access_key: String, secret: String },
}

/// A reply of the admin API.
pub struct Reply {
    pub status: u16,
    pub body: String,
}

impl Reply {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON, or an error naming the status and what the server said.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> anyhow::Result<T> {
        if !self.ok() {
            bail!("the server answered {}: {}", self.status, self.body.trim());
        }
        serde_json::from_str(&self.body).context("malformed JSON from the admin API")
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Connection {
    fn addr(&self) -> anyhow::Result<(SocketAddr, String)> {
        let rest = self
            .admin_url
            .strip_prefix("http://")
            .unwrap_or(&self.admin_url);
        if self.admin_url.starts_with("https://") {
            bail!("the admin API speaks plain HTTP; use an http:// URL (or a TLS proxy)");
        }
        let host = rest.split('/').next().unwrap_or(rest);
        let addr = host
            .to_socket_addrs()
            .with_context(|| format!("resolving the admin address {host}"))?
            .next()
            .with_context(|| format!("no address for {host}"))?;
        Ok((addr, host.to_string()))
    }

    fn credential(&self) -> anyhow::Result<Credential> {
        if let (Some(access_key), Some(secret)) =
            (env("CAIRN_ROOT_ACCESS_KEY"), env("CAIRN_ROOT_SECRET_KEY"))
        {
            return Ok(Credential::Root { access_key, secret });
        }
        if let Some(t) = env("CAIRN_ADMIN_TOKEN").or_else(|| env("CAIRN_CLUSTER_SECRET")) {
            return Ok(Credential::Token(t));
        }
        if let Ok(s) = std::fs::read_to_string(self.data.join("cluster-secret")) {
            return Ok(Credential::Token(s.trim().to_string()));
        }
        if let Ok(raw) = std::fs::read_to_string(self.data.join(crate::credentials::FILE_NAME)) {
            if let Ok(c) = serde_json::from_str::<crate::credentials::RootCredentials>(&raw) {
                return Ok(Credential::Root {
                    access_key: c.access_key,
                    secret: c.secret_key,
                });
            }
        }
        bail!(
            "no admin credentials: set CAIRN_ROOT_ACCESS_KEY and CAIRN_ROOT_SECRET_KEY (or \
             CAIRN_ADMIN_TOKEN), or point --data at the server's data directory"
        )
    }

    /// One call; `body` is sent as JSON.
    pub fn call(&self, method: &str, path: &str, body: &str) -> anyhow::Result<Reply> {
        let (addr, host) = self.addr()?;
        let authorization = match self.credential()? {
            Credential::Token(t) => format!("Bearer {t}"),
            Credential::Root { access_key, secret } => {
                let now = crate::server::time_ms() / 1000;
                auth::sign(&access_key, &secret, method, path, now, body.as_bytes())
            }
        };
        let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .with_context(|| format!("connecting to the admin API at {addr}"))?;
        conn.set_read_timeout(Some(Duration::from_secs(24 * 3600)))?;
        write!(
            conn,
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {authorization}\r\n\
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
        Ok(Reply { status, body })
    }
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

    #[test]
    fn admin_urls_and_bare_addresses_resolve() {
        for url in [
            "http://127.0.0.1:9001",
            "127.0.0.1:9001",
            "http://127.0.0.1:9001/",
        ] {
            let c = Connection {
                admin_url: url.into(),
                data: PathBuf::new(),
            };
            assert_eq!(c.addr().unwrap().0, "127.0.0.1:9001".parse().unwrap());
        }
    }
}
