//! How every admin subcommand finds and authenticates to a server's admin API.
//!
//! Address: `--admin-url`, else `CAIRN_ADMIN_URL`, else `http://127.0.0.1:9001` (a bare
//! `host:port` works too). An `https://` URL (a server started with `--tls-cert`) is verified
//! against `--ca-bundle` (`CAIRN_CA_BUNDLE`), else the system's CA certificates. Credentials, the first that is set: the root key
//! (`CAIRN_ROOT_ACCESS_KEY` and `CAIRN_ROOT_SECRET_KEY`, which sign each call without
//! sending the secret), an admin token (`CAIRN_ADMIN_TOKEN`, the cluster secret), then, for
//! a server on this host, the cluster secret or the root credentials in its data directory
//! (`--data`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
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
    /// PEM CA certificates that an `https://` admin URL's certificate must chain to [default:
    /// the system's CA certificates].
    #[arg(long, env = "CAIRN_CA_BUNDLE", global = true)]
    pub ca_bundle: Option<PathBuf>,
}

/// Where the admin API is.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    tls: bool,
    addr: SocketAddr,
    /// `host:port` as given, for the Host header.
    host: String,
    /// The host alone, the name the certificate must carry.
    name: String,
}

/// Anything a request can go over: a socket, or TLS over one.
trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

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
    fn target(&self) -> anyhow::Result<Target> {
        let url = self.admin_url.as_str();
        let (tls, rest) = match url.split_once("://") {
            Some(("https", rest)) => (true, rest),
            Some(("http", rest)) => (false, rest),
            Some((scheme, _)) => bail!("unsupported scheme {scheme}:// in the admin URL {url}"),
            None => (false, url),
        };
        let host = rest.split('/').next().unwrap_or(rest);
        let addr = host
            .to_socket_addrs()
            .with_context(|| format!("resolving the admin address {host}"))?
            .next()
            .with_context(|| format!("no address for {host}"))?;
        let name = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(v6),
            None => host.rsplit_once(':').map_or(host, |(h, _)| h),
        };
        Ok(Target {
            tls,
            addr,
            host: host.to_string(),
            name: name.to_string(),
        })
    }

    /// What an `https://` admin URL's certificate must chain to.
    fn tls_config(&self) -> anyhow::Result<Arc<rustls::ClientConfig>> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::CertificateDer;
        let mut roots = rustls::RootCertStore::empty();
        match &self.ca_bundle {
            Some(path) => {
                let pem = std::fs::read(path)
                    .with_context(|| format!("reading the CA bundle {}", path.display()))?;
                for cert in CertificateDer::pem_slice_iter(&pem) {
                    let cert =
                        cert.with_context(|| format!("reading the CA bundle {}", path.display()))?;
                    roots
                        .add(cert)
                        .with_context(|| format!("a certificate in {}", path.display()))?;
                }
                if roots.is_empty() {
                    bail!("no certificates in the CA bundle {}", path.display());
                }
            }
            None => {
                for cert in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(cert);
                }
                if roots.is_empty() {
                    bail!("no system CA certificates found: give --ca-bundle (CAIRN_CA_BUNDLE)");
                }
            }
        }
        let mut config = rustls::ClientConfig::builder_with_provider(cairn_net::crypto_provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![cairn_net::ALPN_HTTP1.to_vec()];
        Ok(Arc::new(config))
    }

    /// A connection to the admin API, TLS for an `https://` URL.
    fn connect(&self, t: &Target) -> anyhow::Result<Box<dyn Stream>> {
        let tcp = TcpStream::connect_timeout(&t.addr, Duration::from_secs(5))
            .with_context(|| format!("connecting to the admin API at {}", t.addr))?;
        tcp.set_read_timeout(Some(Duration::from_secs(24 * 3600)))?;
        if !t.tls {
            return Ok(Box::new(tcp));
        }
        let name = rustls::pki_types::ServerName::try_from(t.name.clone())
            .with_context(|| format!("{} is not a valid server name", t.name))?;
        let tls = rustls::ClientConnection::new(self.tls_config()?, name)
            .context("setting up TLS to the admin API")?;
        Ok(Box::new(rustls::StreamOwned::new(tls, tcp)))
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
        let target = self.target()?;
        let host = &target.host;
        let authorization = match self.credential()? {
            Credential::Token(t) => format!("Bearer {t}"),
            Credential::Root { access_key, secret } => {
                let now = cairn_types::clock::now_ms() / 1000;
                auth::sign(&access_key, &secret, method, path, now, body.as_bytes())
            }
        };
        let mut conn = self.connect(&target)?;
        write!(
            conn,
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {authorization}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        conn.flush()?;
        let mut raw = Vec::new();
        match conn.read_to_end(&mut raw) {
            Ok(_) => {}
            // A TLS peer that closed without close_notify, after its whole reply.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
            Err(e) if target.tls => {
                return Err(e).with_context(|| {
                    format!(
                        "TLS with the admin API at {} (is --ca-bundle the CA of its certificate?)",
                        target.addr
                    )
                })
            }
            Err(e) => return Err(e.into()),
        }
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
                ca_bundle: None,
            };
            let t = c.target().unwrap();
            assert_eq!(t.addr, "127.0.0.1:9001".parse().unwrap());
            assert!(!t.tls);
            assert_eq!(t.name, "127.0.0.1");
        }
    }

    #[test]
    fn https_urls_name_the_host_the_certificate_must_carry() {
        let c = |url: &str| Connection {
            admin_url: url.into(),
            data: PathBuf::new(),
            ca_bundle: None,
        };
        let t = c("https://localhost:9001/").target().unwrap();
        assert!(t.tls);
        assert_eq!(
            (t.host.as_str(), t.name.as_str()),
            ("localhost:9001", "localhost")
        );
        assert_eq!(t.addr.port(), 9001);
        let t = c("https://[::1]:9443").target().unwrap();
        assert_eq!((t.host.as_str(), t.name.as_str()), ("[::1]:9443", "::1"));
        let err = c("ftp://127.0.0.1:9001").target().unwrap_err().to_string();
        assert!(err.contains("ftp://"), "{err}");
    }

    #[test]
    fn a_ca_bundle_without_certificates_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "nothing here").unwrap();
        let c = Connection {
            admin_url: "https://127.0.0.1:9001".into(),
            data: PathBuf::new(),
            ca_bundle: Some(empty),
        };
        let err = c.tls_config().unwrap_err().to_string();
        assert!(err.contains("no certificates"), "{err}");
        let missing = Connection {
            ca_bundle: Some(dir.path().join("missing.pem")),
            ..c
        };
        assert!(missing.tls_config().is_err());
    }
}
