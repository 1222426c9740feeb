//! https endpoints: a TLS terminator with a self-signed certificate in front of the null
//! server; `--insecure` benchmarks through it, verification refuses it.

use std::sync::Arc;
use std::time::Duration;

use cairn_bench::{BenchArgs, NullConfig, NullServer, Op, Report};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};

/// Accepts TLS on a loopback port and forwards the plain bytes to `backend`.
async fn tls_front(backend: std::net::SocketAddr) -> std::net::SocketAddr {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = CertificateDer::from(key.cert.der().to_vec());
    let pkey = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], pkey)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_and_without_verification() {
    let server = NullServer::start("127.0.0.1:0", NullConfig::default())
        .await
        .unwrap();
    let front = tls_front(server.addr).await;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("tls.json");
    let mut a = BenchArgs::defaults();
    a.endpoint = format!("https://localhost:{}", front.port())
        .parse()
        .unwrap();
    a.op = Op::Get;
    a.size = 64 << 10;
    a.concurrency = 2;
    a.objects = 10;
    a.duration = Duration::from_millis(700);
    a.warmup = Duration::from_millis(100);
    a.json = Some(json.clone());
    a.quiet = true;
    a.insecure = true;
    cairn_bench::run_with_self_args(a.clone(), &[])
        .await
        .unwrap();
    let r: Report = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(r.target.endpoint.starts_with("https://"));
    assert!(r.target.runs[0].ops > 0 && r.target.runs[0].errors == 0);

    // Verified against the system's roots, the self-signed certificate is refused.
    a.insecure = false;
    let err = cairn_bench::run_with_self_args(a, &[]).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains("tls") || text.contains("root"), "{text}");
}
