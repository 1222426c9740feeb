//! HTTPS through `serve`: a handshake under the header timeout, the client's certificates in
//! the request extensions (mutual TLS), and the TLS source asked again for every connection.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpStream;

use super::{closed_within, exchange, limits, Server};
use cairn_net::{Limits, TlsSource};

struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        Pki {
            ca: CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    fn issue(&self, names: &[&str]) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let p = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
        let cert = p.signed_by(&key, &self.ca).unwrap();
        (
            vec![cert.der().clone()],
            PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap(),
        )
    }

    fn roots(&self) -> Arc<rustls::RootCertStore> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        Arc::new(roots)
    }
}

/// A server config that verifies client certificates when there are any, counting how often
/// it is asked for.
struct Source {
    config: Arc<rustls::ServerConfig>,
    asked: AtomicUsize,
}

impl TlsSource for Source {
    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        self.config.clone()
    }
}

fn client(pki: &Pki, cert: Option<(&Pki, &str)>) -> tokio_rustls::TlsConnector {
    let b = rustls::ClientConfig::builder_with_provider(cairn_net::crypto_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(pki.roots());
    let config = match cert {
        Some((issuer, name)) => {
            let (chain, key) = issuer.issue(&[name]);
            b.with_client_auth_cert(chain, key).unwrap()
        }
        None => b.with_no_client_auth(),
    };
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[tokio::test]
async fn https_with_and_without_client_certificates() {
    let pki = Pki::new();
    let (chain, key) = pki.issue(&["localhost"]);
    let verifier =
        WebPkiClientVerifier::builder_with_provider(pki.roots(), cairn_net::crypto_provider())
            .allow_unauthenticated()
            .build()
            .unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(cairn_net::crypto_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![cairn_net::ALPN_HTTP1.to_vec()];
    let source = Arc::new(Source {
        config: Arc::new(config),
        asked: AtomicUsize::new(0),
    });
    let srv = Server::start(limits(), Some(source.clone())).await;
    let name = ServerName::try_from("localhost").unwrap();

    let tcp = TcpStream::connect(srv.addr).await.unwrap();
    let mut s = client(&pki, Some((&pki, "node-a")))
        .connect(name.clone(), tcp)
        .await
        .unwrap();
    let r = exchange(&mut s, "GET /peer HTTP/1.1\r\nhost: localhost\r\n\r\n").await;
    assert!(r.ends_with("peer certificates: 1"), "{r}");

    let tcp = TcpStream::connect(srv.addr).await.unwrap();
    let mut s = client(&pki, None).connect(name.clone(), tcp).await.unwrap();
    let r = exchange(&mut s, "GET /peer HTTP/1.1\r\nhost: localhost\r\n\r\n").await;
    assert!(r.ends_with("no peer certificates"), "{r}");

    // A certificate from another CA fails the handshake.
    let other = Pki::new();
    let tcp = TcpStream::connect(srv.addr).await.unwrap();
    let refused = match client(&pki, Some((&other, "intruder")))
        .connect(name.clone(), tcp)
        .await
    {
        // TLS 1.3: the client learns of the rejection on its first read.
        Ok(mut s) => {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let _ = s.write_all(b"GET /peer HTTP/1.1\r\nhost: x\r\n\r\n").await;
            let mut buf = [0u8; 16];
            !matches!(s.read(&mut buf).await, Ok(n) if n > 0)
        }
        Err(_) => true,
    };
    assert!(refused);
    assert_eq!(
        source.asked.load(Ordering::SeqCst),
        3,
        "asked per connection"
    );
    assert_eq!(
        srv.metrics
            .tls_failures
            .get_or_create(&super::label())
            .get(),
        1
    );
    srv.stop().await;
}

#[tokio::test]
async fn a_stalled_handshake_is_cut_at_the_header_timeout() {
    let pki = Pki::new();
    let (chain, key) = pki.issue(&["localhost"]);
    let config = rustls::ServerConfig::builder_with_provider(cairn_net::crypto_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let source = Arc::new(Source {
        config: Arc::new(config),
        asked: AtomicUsize::new(0),
    });
    let srv = Server::start(
        Limits {
            header_timeout: Duration::from_millis(700),
            idle_timeout: Duration::from_secs(30),
            ..Limits::default()
        },
        Some(source),
    )
    .await;
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    let took = closed_within(&mut tcp, Duration::from_secs(3)).await;
    assert!(took >= Duration::from_millis(600), "{took:?}");
    assert_eq!(srv.timeouts("handshake"), 1);
    srv.stop().await;
}
