//! Loading and reloading [`TlsFiles`], and the loopback verifier.

use super::*;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Ca(CertifiedIssuer<'static, KeyPair>);

fn ca(name: &str) -> Ca {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, name.to_string());
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    Ca(CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap())
}

impl Ca {
    /// A server certificate for localhost and 127.0.0.1: (cert PEM, key PEM).
    fn leaf(&self) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let p =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        let cert = p.signed_by(&key, &self.0).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

struct Files {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
}

fn files(pair: &(String, String)) -> Files {
    let dir = tempfile::tempdir().unwrap();
    let f = Files {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
        _dir: dir,
    };
    write(&f, pair);
    f
}

fn write(f: &Files, (cert, key): &(String, String)) {
    std::fs::write(&f.cert, cert).unwrap();
    std::fs::write(&f.key, key).unwrap();
}

fn der(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

#[test]
fn loads_a_pair_and_offers_http1_only() {
    let pair = ca("one").leaf();
    let f = files(&pair);
    let tls = TlsFiles::load(&f.cert, &f.key).unwrap();
    assert_eq!(tls.served_certificate(), der(&pair.0));
    assert_eq!(
        tls.server_config().alpn_protocols,
        vec![b"http/1.1".to_vec()]
    );
}

#[test]
fn reloads_when_the_files_change() {
    let first = ca("one").leaf();
    let f = files(&first);
    let tls = TlsFiles::load(&f.cert, &f.key).unwrap();
    assert!(!tls.reload_if_changed().unwrap(), "nothing changed yet");
    let second = ca("two").leaf();
    write(&f, &second);
    assert!(tls.reload_if_changed().unwrap());
    assert_eq!(tls.served_certificate(), der(&second.0));
    assert!(!tls.reload_if_changed().unwrap());
}

#[test]
fn a_failed_reload_keeps_the_previous_certificate() {
    let first = ca("one").leaf();
    let f = files(&first);
    let tls = TlsFiles::load(&f.cert, &f.key).unwrap();
    // A renewal caught half-way: the new certificate with the old key.
    let second = ca("two").leaf();
    std::fs::write(&f.cert, &second.0).unwrap();
    let err = tls.reload_if_changed().unwrap_err();
    assert!(matches!(err, NetError::Tls { .. }), "{err}");
    assert_eq!(tls.served_certificate(), der(&first.0));
    // Not tried again until a file changes again…
    assert!(!tls.reload_if_changed().unwrap());
    // …then the completed pair loads.
    std::fs::write(&f.key, &second.1).unwrap();
    assert!(tls.reload_if_changed().unwrap());
    assert_eq!(tls.served_certificate(), der(&second.0));
    // Garbage keeps the good config too.
    std::fs::write(&f.cert, "not a certificate").unwrap();
    assert!(matches!(
        tls.reload_if_changed(),
        Err(NetError::NoCertificate { .. })
    ));
    assert_eq!(tls.served_certificate(), der(&second.0));
}

#[test]
fn new_connections_pick_up_a_change_within_a_second_or_so() {
    let first = ca("one").leaf();
    let f = files(&first);
    let tls = TlsFiles::load(&f.cert, &f.key).unwrap();
    let second = ca("two").leaf();
    write(&f, &second);
    std::thread::sleep(CHECK_EVERY + Duration::from_millis(100));
    // `server_config` is what the accept loop calls per connection.
    let _ = tls.server_config();
    assert_eq!(tls.served_certificate(), der(&second.0));
}

#[test]
fn bad_files_are_clear_errors() {
    let pair = ca("one").leaf();
    let f = files(&pair);
    let missing = f.cert.with_file_name("missing.pem");
    assert!(matches!(
        TlsFiles::load(&missing, &f.key),
        Err(NetError::Read { .. })
    ));
    // A key where the certificate should be, and the other way round.
    let e = TlsFiles::load(&f.key, &f.key).err().unwrap();
    assert!(matches!(e, NetError::NoCertificate { .. }), "{e}");
    let e = TlsFiles::load(&f.cert, &f.cert).err().unwrap();
    assert!(matches!(e, NetError::NoKey { .. }), "{e}");
    // A key of another certificate.
    let other = ca("two").leaf();
    std::fs::write(&f.key, &other.1).unwrap();
    let e = TlsFiles::load(&f.cert, &f.key).err().unwrap();
    assert!(matches!(e, NetError::Tls { .. }), "{e}");
}

/// A handshake over an in-memory pipe: the server serves `server`, the client uses
/// `client`; returns whether the client got the server's byte.
async fn handshake(server: Arc<ServerConfig>, client: rustls::ClientConfig) -> bool {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let srv = tokio::spawn(async move {
        let acceptor = tokio_rustls::TlsAcceptor::from(server);
        if let Ok(mut s) = acceptor.accept(a).await {
            let _ = s.write_all(b"!").await;
            let _ = s.flush().await;
        }
    });
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let name = ServerName::try_from("cairn.example").unwrap();
    let ok = match connector.connect(name, b).await {
        Ok(mut s) => {
            let mut byte = [0u8; 1];
            s.read_exact(&mut byte).await.is_ok() && &byte == b"!"
        }
        Err(_) => false,
    };
    let _ = srv.await;
    ok
}

#[tokio::test]
async fn the_loopback_client_trusts_exactly_the_served_certificate() {
    let one = files(&ca("one").leaf());
    let two = files(&ca("two").leaf());
    let tls_one = TlsFiles::load(&one.cert, &one.key).unwrap();
    let tls_two = TlsFiles::load(&two.cert, &two.key).unwrap();
    // Any name: the certificate itself is what is trusted.
    assert!(
        handshake(
            tls_one.server_config(),
            tls_one.loopback_client_config().unwrap()
        )
        .await
    );
    assert!(
        !handshake(
            tls_two.server_config(),
            tls_one.loopback_client_config().unwrap()
        )
        .await,
        "another certificate is refused"
    );
    // After a reload, the new certificate is the trusted one.
    write(&one, &ca("three").leaf());
    assert!(tls_one.reload_if_changed().unwrap());
    assert!(
        handshake(
            tls_one.server_config(),
            tls_one.loopback_client_config().unwrap()
        )
        .await
    );
}
