//! Server-side TLS: the [`TlsSource`] a listener asks for a rustls config on every new
//! connection, the client certificates handed to handlers ([`PeerCertificates`]), and
//! [`TlsFiles`], a certificate and key on disk that are reloaded when they change.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::pki_types::{ServerName, UnixTime};
use rustls::ServerConfig;
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::NetError;

/// The one ALPN protocol the listeners speak.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// How often, at most, [`TlsFiles`] looks at its files.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Supplies the current rustls server config for each new connection, so that a new
/// certificate applies to new connections without a restart. Configs should offer ALPN
/// `http/1.1` only ([`ALPN_HTTP1`]).
pub trait TlsSource: Send + Sync + 'static {
    fn server_config(&self) -> Arc<ServerConfig>;
}

/// The certificates the client presented (mutual TLS), in every request's extensions when
/// there are any; the end-entity certificate comes first.
#[derive(Clone, Debug)]
pub struct PeerCertificates(pub Arc<Vec<CertificateDer<'static>>>);

/// The crypto provider of every TLS config in Cairn (aws-lc-rs).
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Identifies one version of a file: a rewrite in place changes its modification time or
/// size, a rename over it changes its inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: m.modified().ok(),
        len: m.len(),
        inode: m.ino(),
    })
}

struct Current {
    config: Arc<ServerConfig>,
    /// The end-entity certificate `config` presents.
    leaf: CertificateDer<'static>,
    /// The file versions last tried (loaded, or failed to load: then not retried until one
    /// of the files changes again).
    tried: (Option<Stamp>, Option<Stamp>),
}

/// A PEM certificate chain and private key on disk, served by HTTPS listeners and reloaded
/// when either file changes (checked at most once a second, when a connection arrives). A
/// reload that fails (a half-written file, a key that does not match) keeps the previous
/// config and logs a warning; it is tried again when a file changes again.
pub struct TlsFiles {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Current>,
    last_check: Mutex<Instant>,
}

impl TlsFiles {
    /// Loads `cert` (PEM certificate chain, end-entity first) and `key` (PEM private key).
    pub fn load(cert: &Path, key: &Path) -> Result<Arc<TlsFiles>, NetError> {
        let tried = (stamp(cert), stamp(key));
        let (config, leaf) = load_config(cert, key)?;
        Ok(Arc::new(TlsFiles {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new(Current {
                config: Arc::new(config),
                leaf,
                tried,
            }),
            last_check: Mutex::new(Instant::now()),
        }))
    }

    pub fn cert_path(&self) -> &Path {
        &self.cert
    }

    pub fn key_path(&self) -> &Path {
        &self.key
    }

    /// The end-entity certificate served to new connections now.
    pub fn served_certificate(&self) -> CertificateDer<'static> {
        self.check();
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .leaf
            .clone()
    }

    /// A client config for the server's calls to itself (the console's S3 client over
    /// loopback): it accepts exactly the certificate these files serve now, whatever its
    /// names or issuer, with the handshake signature checked against it — so only a server
    /// holding the private key passes.
    pub fn loopback_client_config(self: &Arc<Self>) -> Result<rustls::ClientConfig, NetError> {
        let verifier = Arc::new(ServerCheck::new(
            Trust::Served(self.clone()),
            crypto_provider(),
        ));
        let mut config = rustls::ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(|source| NetError::Tls {
                cert: self.cert.clone(),
                key: self.key.clone(),
                source,
            })?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
        Ok(config)
    }

    /// Reloads the files now if they changed since they were last tried; `Ok(true)` when a new
    /// config was loaded. On error the previous config stays.
    pub fn reload_if_changed(&self) -> Result<bool, NetError> {
        let seen = (stamp(&self.cert), stamp(&self.key));
        {
            let cur = self.current.read().unwrap_or_else(PoisonError::into_inner);
            if cur.tried == seen {
                return Ok(false);
            }
        }
        let loaded = load_config(&self.cert, &self.key);
        let mut cur = self.current.write().unwrap_or_else(PoisonError::into_inner);
        cur.tried = seen;
        let (config, leaf) = loaded?;
        cur.config = Arc::new(config);
        cur.leaf = leaf;
        Ok(true)
    }

    /// At most once per [`CHECK_EVERY`]: reload if the files changed, logging the outcome.
    fn check(&self) {
        {
            let mut last = self
                .last_check
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if last.elapsed() < CHECK_EVERY {
                return;
            }
            *last = Instant::now();
        }
        match self.reload_if_changed() {
            Ok(true) => tracing::info!(
                cert = %self.cert.display(),
                "TLS certificate reloaded; new connections use it"
            ),
            Ok(false) => {}
            Err(e) => tracing::warn!(
                error = %e,
                "TLS certificate reload failed; still serving the previous certificate"
            ),
        }
    }
}

impl TlsSource for TlsFiles {
    fn server_config(&self) -> Arc<ServerConfig> {
        self.check();
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .config
            .clone()
    }
}

/// Which server certificates a client config built here accepts. Either way the handshake
/// signature is checked against the presented certificate, so only a server holding its
/// private key passes.
pub(crate) enum Trust {
    /// Exactly the certificate a [`TlsFiles`] serves now (see
    /// [`TlsFiles::loopback_client_config`]).
    Served(Arc<TlsFiles>),
    /// Any certificate: only where the answer is authenticated otherwise (the join request,
    /// whose reply carries a MAC keyed with the cluster secret).
    Any,
}

/// A [`ServerCertVerifier`] for a [`Trust`] policy.
pub(crate) struct ServerCheck {
    trust: Trust,
    provider: Arc<CryptoProvider>,
}

impl ServerCheck {
    pub(crate) fn new(trust: Trust, provider: Arc<CryptoProvider>) -> Self {
        ServerCheck { trust, provider }
    }
}

impl std::fmt::Debug for ServerCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.trust {
            Trust::Served(files) => f
                .debug_struct("ServerCheck::Served")
                .field("cert", &files.cert)
                .finish(),
            Trust::Any => f.write_str("ServerCheck::Any"),
        }
    }
}

impl ServerCertVerifier for ServerCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let accepted = match &self.trust {
            Trust::Served(files) => end_entity.as_ref() == files.served_certificate().as_ref(),
            Trust::Any => true,
        };
        if accepted {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, NetError> {
    std::fs::read(path).map_err(|source| NetError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn pem_error(path: &Path, e: rustls::pki_types::pem::Error) -> NetError {
    NetError::Pem {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// A server config (no client authentication, ALPN http/1.1) from PEM files, and the
/// end-entity certificate it presents.
fn load_config(
    cert: &Path,
    key: &Path,
) -> Result<(ServerConfig, CertificateDer<'static>), NetError> {
    let cert_pem = read(cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(cert, e))?;
    if chain.is_empty() {
        return Err(NetError::NoCertificate {
            path: cert.to_path_buf(),
        });
    }
    let key_pem = read(key)?;
    let key_der = match PrivateKeyDer::from_pem_slice(&key_pem) {
        Ok(k) => k,
        Err(rustls::pki_types::pem::Error::NoItemsFound) => {
            return Err(NetError::NoKey {
                path: key.to_path_buf(),
            })
        }
        Err(e) => return Err(pem_error(key, e)),
    };
    let tls_error = |source| NetError::Tls {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        source,
    };
    let leaf = chain[0].clone();
    let mut config = ServerConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(tls_error)?;
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    Ok((config, leaf))
}

#[cfg(test)]
#[path = "tls_tests.rs"]
mod tests;
