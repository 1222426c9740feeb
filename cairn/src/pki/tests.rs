use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_net::client::{verify_node_certificate, ClusterTls, ClusterTransport};
use rcgen::{CertificateParams, IsCa, KeyPair};

use super::join::{self, CertificateReply, CertificateRequest};
use super::*;

const SECRET: &str = "pki-unit-test-secret-0123456789abcdef";

/// Whether `cert_pem` (with any intermediates after it) verifies against `ca_pem` as a
/// server certificate for `name`.
fn verifies_as(ca_pem: &str, cert_pem: &str, name: &str) -> bool {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let chain: Vec<_> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let v = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        cairn_net::crypto_provider(),
    )
    .build()
    .unwrap();
    let name = ServerName::try_from(name.to_string()).unwrap();
    use rustls::client::danger::ServerCertVerifier;
    v.verify_server_cert(&chain[0], &chain[1..], &name, &[], UnixTime::now())
        .is_ok()
}

#[test]
fn a_signed_csr_chains_to_the_ca_and_says_only_what_the_ca_decides() {
    let ca = ClusterCa::generate().unwrap();
    // The CSR asks for a CA certificate for another name: both are ignored.
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let mut wanted = CertificateParams::new(vec!["evil.example".to_string()]).unwrap();
    wanted.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let csr = wanted.serialize_request(&key).unwrap();
    let cert = ca.sign_csr(7, csr.der()).unwrap();
    verify_node_certificate(&ca.cert_pem, &cert).unwrap();
    assert!(verifies_as(&ca.cert_pem, &cert, CLUSTER_SERVER_NAME));
    assert!(!verifies_as(&ca.cert_pem, &cert, "evil.example"));
    // It cannot act as a CA: a certificate it signs does not chain to the cluster CA.
    let issuer =
        Issuer::from_ca_cert_pem(&cert, KeyPair::from_pem(&key.serialize_pem()).unwrap()).unwrap();
    let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let leaf = CertificateParams::new(vec![CLUSTER_SERVER_NAME.to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let chain = format!("{}{cert}", leaf.pem());
    assert!(!verifies_as(&ca.cert_pem, &chain, CLUSTER_SERVER_NAME));
    // With the CSR's key, the certificate makes a working TLS identity.
    let m = NodeMaterial {
        ca_pem: ca.cert_pem.clone(),
        cert_pem: cert,
        key_pem: key.serialize_pem(),
    };
    m.tls().unwrap();
    // With another key, it does not.
    let other = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let wrong_key = NodeMaterial {
        key_pem: other.serialize_pem(),
        ..m
    };
    assert!(wrong_key.tls().is_err());
}

#[test]
fn bad_csrs_are_refused() {
    let ca = ClusterCa::generate().unwrap();
    assert!(ca.sign_csr(1, b"").is_err());
    assert!(ca.sign_csr(1, b"not a csr").is_err());
    // A CSR whose signature does not verify (its last byte changed).
    let req = KeyAndCsr::generate(1).unwrap();
    let mut tampered = req.csr_der.clone();
    *tampered.last_mut().unwrap() ^= 1;
    assert!(ca.sign_csr(1, &tampered).is_err());
    // Another key type.
    let ed = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let csr = CertificateParams::default().serialize_request(&ed).unwrap();
    let e = ca.sign_csr(1, csr.der()).unwrap_err();
    assert!(e.0.contains("P-256"), "{}", e.0);
    // The untouched one is signed.
    ca.sign_csr(1, &req.csr_der).unwrap();
}

#[test]
fn a_certificate_from_another_ca_does_not_verify() {
    let ours = ClusterCa::generate().unwrap();
    let theirs = ClusterCa::generate().unwrap();
    let m = NodeMaterial::issue_locally(&theirs, 2).unwrap();
    assert!(verify_node_certificate(&ours.cert_pem, &m.cert_pem).is_err());
    verify_node_certificate(&theirs.cert_pem, &m.cert_pem).unwrap();
}

#[test]
fn join_macs_prove_the_secret_and_bind_every_field() {
    let csr = KeyAndCsr::generate(3).unwrap().csr_der;
    let req = CertificateRequest::new(SECRET, 3, csr.clone());
    assert!(req.verify(SECRET));
    assert!(!req.verify("another-secret-0123456789abcdef-0123"));
    assert!(!req.verify(""));
    let mut r = req.clone();
    r.node_id = 4;
    assert!(!r.verify(SECRET));
    let mut r = req.clone();
    r.nonce[0] ^= 1;
    assert!(!r.verify(SECRET));
    let mut r = req.clone();
    r.csr_der.push(0);
    assert!(!r.verify(SECRET));
    let mut r = req.clone();
    r.mac[31] ^= 1;
    assert!(!r.verify(SECRET));
    // Fresh nonces: two requests for the same CSR differ.
    assert_ne!(CertificateRequest::new(SECRET, 3, csr).nonce, req.nonce);

    let reply = CertificateReply::new(SECRET, &req.nonce, "ca".into(), "cert".into());
    assert!(reply.verify(SECRET, &req.nonce));
    assert!(!reply.verify(SECRET, &[0u8; 32]), "another request's nonce");
    assert!(!reply.verify("another-secret-0123456789abcdef-0123", &req.nonce));
    let mut r = reply.clone();
    r.ca_pem = "another ca".into();
    assert!(!r.verify(SECRET, &req.nonce));
    // Moving bytes between the fields changes the MAC (fields are length-prefixed).
    let shifted = CertificateReply {
        ca_pem: "cac".into(),
        cert_pem: "ert".into(),
        mac: reply.mac,
    };
    assert!(!shifted.verify(SECRET, &req.nonce));
    // A request's MAC is no reply's (the two are domain-separated).
    let forged = CertificateReply {
        ca_pem: String::new(),
        cert_pem: String::new(),
        mac: req.mac,
    };
    assert!(!forged.verify(SECRET, &req.nonce));
}

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn material_is_saved_private_and_loaded_whole_or_not_at_all() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(NodeMaterial::load(tmp.path()).unwrap().is_none());
    let ca = ClusterCa::generate().unwrap();
    let m = NodeMaterial::issue_locally(&ca, 1).unwrap();
    m.save(tmp.path()).unwrap();
    assert_eq!(mode(&dir(tmp.path())), 0o700);
    for f in [CA_FILE, CERT_FILE, KEY_FILE] {
        assert_eq!(mode(&dir(tmp.path()).join(f)), 0o600, "{f}");
    }
    assert_eq!(NodeMaterial::load(tmp.path()).unwrap(), Some(m));
    std::fs::remove_file(dir(tmp.path()).join(CA_FILE)).unwrap();
    let e = NodeMaterial::load(tmp.path()).unwrap_err();
    assert!(format!("{e:#}").contains("only part"), "{e:#}");
    // A key that is not the certificate's is refused at load.
    let other = NodeMaterial::issue_locally(&ca, 1).unwrap();
    let d = dir(tmp.path());
    std::fs::write(d.join(CA_FILE), &ca.cert_pem).unwrap();
    std::fs::write(d.join(KEY_FILE), &other.key_pem).unwrap();
    assert!(NodeMaterial::load(tmp.path()).is_err());

    assert!(load_pending_ca(tmp.path()).unwrap().is_none());
    save_pending_ca(tmp.path(), &ca).unwrap();
    assert_eq!(mode(&d.join(PENDING_CA_FILE)), 0o600);
    assert_eq!(load_pending_ca(tmp.path()).unwrap(), Some(ca));
    remove_pending_ca(tmp.path()).unwrap();
    remove_pending_ca(tmp.path()).unwrap();
    assert!(load_pending_ca(tmp.path()).unwrap().is_none());
}

#[test]
fn with_tls_a_bearer_token_proves_nothing() {
    let ca = ClusterCa::generate().unwrap();
    let m = NodeMaterial::issue_locally(&ca, 1).unwrap();
    let t = ClusterTransport::Tls(Arc::new(m.tls().unwrap()));
    let mut h = axum::http::HeaderMap::new();
    h.insert(
        axum::http::header::AUTHORIZATION,
        format!("Bearer {SECRET}").parse().unwrap(),
    );
    assert!(!t.authenticated(&axum::http::Extensions::new(), &h));
    assert_eq!(t.bearer_secret(), "");
}

/// A node serving the certificate route over `transport`, issuing from `ca`.
async fn serve_join(
    ca: &ClusterCa,
    transport: ClusterTransport,
    secret: &str,
) -> (String, tokio::sync::oneshot::Sender<()>, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let local = cairn_metadata_rocks::RocksMetadataStore::open(tmp.path()).unwrap();
    let issuer = Arc::new(join::Issuer::new(
        local,
        Some(ca.clone()),
        secret.to_string(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(cairn_net::serve(
        listener,
        "cluster",
        join::router(issuer),
        cairn_net::Limits::default(),
        transport.cluster_listener_tls(),
        async move {
            let _ = rx.await;
        },
    ));
    (addr, tx, tmp)
}

#[tokio::test]
async fn a_joiner_with_the_secret_gets_a_certificate_and_one_without_gets_none() {
    let ca = ClusterCa::generate().unwrap();
    let server = NodeMaterial::issue_locally(&ca, 1).unwrap();
    for tls in [true, false] {
        let transport = if tls {
            ClusterTransport::Tls(Arc::new(server.tls().unwrap()))
        } else {
            ClusterTransport::insecure(SECRET)
        };
        let (addr, stop, _tmp) = serve_join(&ca, transport, SECRET).await;
        let seeds = [addr];
        let deadline = Instant::now() + Duration::from_secs(10);
        let m = join::fetch(&seeds, 2, SECRET, tls, deadline).await.unwrap();
        assert_eq!(m.ca_pem, ca.cert_pem);
        verify_node_certificate(&ca.cert_pem, &m.cert_pem).unwrap();
        ClusterTls::from_pem(&m.ca_pem, &m.cert_pem, &m.key_pem).unwrap();

        // A wrong secret is refused at once (no retrying until the deadline).
        let started = Instant::now();
        let wrong = "wrong-secret-0123456789abcdef-0123456";
        let e = join::fetch(
            &seeds,
            3,
            wrong,
            tls,
            Instant::now() + Duration::from_secs(30),
        )
        .await
        .unwrap_err();
        assert!(format!("{e:#}").contains("refused"), "{e:#}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let _ = stop.send(());
    }
}

#[tokio::test]
async fn a_reply_not_authenticated_by_the_secret_is_refused() {
    // Someone in between who does not know the secret answers with its own CA (and a
    // certificate for the joiner's key): its reply MAC cannot be right, and the joiner
    // refuses it instead of trusting that CA.
    let theirs = ClusterCa::generate().unwrap();
    let fake = axum::Router::new().route(
        join::PATH,
        axum::routing::post(move |body: axum::body::Bytes| {
            let ca = theirs.clone();
            async move {
                let req: CertificateRequest = postcard::from_bytes(&body).unwrap();
                let cert = ca.sign_csr(req.node_id, &req.csr_der).unwrap();
                let reply = CertificateReply::new(
                    "not-the-secret-0123456789abcdef-0123",
                    &req.nonce,
                    ca.cert_pem.clone(),
                    cert,
                );
                postcard::to_allocvec(&reply).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(cairn_net::serve(
        listener,
        "cluster",
        fake,
        cairn_net::Limits::default(),
        None,
        async move {
            let _ = rx.await;
        },
    ));
    let e = join::fetch(
        &[addr],
        2,
        SECRET,
        false,
        Instant::now() + Duration::from_secs(5),
    )
    .await
    .unwrap_err();
    assert!(
        format!("{e:#}").contains("not authenticated by the cluster secret"),
        "{e:#}"
    );
    let _ = tx.send(());
}

/// `cairn server` arguments for a node with `data` and `extra` flags.
fn server_args(data: &std::path::Path, extra: &[&str]) -> crate::cli::server::ServerArgs {
    use clap::Parser;
    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        args: crate::cli::server::ServerArgs,
    }
    let mut argv = vec!["cairn", "--data", data.to_str().unwrap()];
    argv.extend_from_slice(extra);
    Cmd::try_parse_from(argv).unwrap().args
}

async fn apply(meta: &cairn_metadata_rocks::RocksMetadataStore, cmd: cairn_metadata::Command) {
    use cairn_metadata::MetadataStore;
    meta.apply(cmd).await.unwrap();
}

/// A root key, as a cluster's first node records it.
async fn root_key(meta: &cairn_metadata_rocks::RocksMetadataStore) {
    apply(
        meta,
        cairn_metadata::Command::PutAccessKey(cairn_metadata::AccessKeyRecord {
            access_key: "ROOTKEY".into(),
            secret_key: "secret".into(),
            name: "root".into(),
            created_ms: 0,
        }),
    )
    .await;
    apply(
        meta,
        cairn_metadata::Command::DesignateRootKey {
            access_key: "ROOTKEY".into(),
        },
    )
    .await;
}

async fn stored_ca(meta: &cairn_metadata_rocks::RocksMetadataStore) -> Option<ClusterCa> {
    ClusterCa::stored(meta).await.unwrap()
}

/// A record of node `id` in metadata, as `cairn server` writes at start.
async fn record(meta: &cairn_metadata_rocks::RocksMetadataStore, id: u64) {
    crate::cluster::record_node(
        meta,
        &crate::cluster::NodeRecord {
            id,
            roles: "meta,data,gateway".into(),
            cluster_addr: format!("127.0.0.1:{}", 1 + id),
            admin_addr: String::new(),
            s3_addr: None,
            zone: "default".into(),
            started_ms: 0,
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_first_node_makes_the_ca_and_stores_it_once_metadata_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let meta = cairn_metadata_rocks::RocksMetadataStore::open(&tmp.path().join("meta")).unwrap();
    let args = server_args(tmp.path(), &[]);
    let p = setup::prepare(&args.node_setup(), &meta, SECRET)
        .await
        .unwrap();
    assert!(p.transport.is_tls());
    let pending = load_pending_ca(tmp.path()).unwrap().expect("a pending CA");
    let m = NodeMaterial::load(tmp.path()).unwrap().unwrap();
    assert_eq!(m.ca_pem, pending.cert_pem);
    assert!(stored_ca(&meta).await.is_none());
    setup::finish(&meta, &args.node_setup(), &p.transport)
        .await
        .unwrap();
    assert_eq!(stored_ca(&meta).await, Some(pending));
    assert!(load_pending_ca(tmp.path()).unwrap().is_none());
    // The next start uses what it has.
    setup::prepare(&args.node_setup(), &meta, SECRET)
        .await
        .unwrap();
    assert_eq!(NodeMaterial::load(tmp.path()).unwrap(), Some(m));
}

#[tokio::test]
async fn a_single_node_from_before_tls_makes_its_ca_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let meta = cairn_metadata_rocks::RocksMetadataStore::open(&tmp.path().join("meta")).unwrap();
    // Metadata of a running cluster of one (root key, its own record), but no CA.
    root_key(&meta).await;
    record(&meta, 1).await;
    let args = server_args(tmp.path(), &[]);
    let p = setup::prepare(&args.node_setup(), &meta, SECRET)
        .await
        .unwrap();
    assert!(p.transport.is_tls());
    setup::finish(&meta, &args.node_setup(), &p.transport)
        .await
        .unwrap();
    let ca = stored_ca(&meta).await.expect("stored");
    let m = NodeMaterial::load(tmp.path()).unwrap().unwrap();
    verify_node_certificate(&ca.cert_pem, &m.cert_pem).unwrap();
}

#[tokio::test]
async fn a_larger_cluster_from_before_tls_moves_over_through_the_insecure_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let meta = cairn_metadata_rocks::RocksMetadataStore::open(&tmp.path().join("meta")).unwrap();
    root_key(&meta).await;
    for id in 1..=3 {
        record(&meta, id).await;
    }
    // With TLS it would have to ask the others (nobody answers here): with the flag it
    // starts, plain, and makes the CA and its certificate once metadata answers.
    let args = server_args(tmp.path(), &["--insecure-cluster-transport"]);
    let p = setup::prepare(&args.node_setup(), &meta, SECRET)
        .await
        .unwrap();
    assert!(!p.transport.is_tls());
    assert!(NodeMaterial::load(tmp.path()).unwrap().is_none());
    setup::finish(&meta, &args.node_setup(), &p.transport)
        .await
        .unwrap();
    let ca = stored_ca(&meta).await.expect("stored");
    let m = NodeMaterial::load(tmp.path()).unwrap().unwrap();
    assert_eq!(m.ca_pem, ca.cert_pem);
    // Restarted without the flag, it uses that certificate.
    let args = server_args(tmp.path(), &[]);
    let p = setup::prepare(&args.node_setup(), &meta, SECRET)
        .await
        .unwrap();
    assert!(p.transport.is_tls());
    assert_eq!(NodeMaterial::load(tmp.path()).unwrap(), Some(m));
}

#[tokio::test]
async fn the_ca_in_metadata_wins_over_a_node_certificate_from_another() {
    let tmp = tempfile::tempdir().unwrap();
    let meta = cairn_metadata_rocks::RocksMetadataStore::open(&tmp.path().join("meta")).unwrap();
    let cluster = ClusterCa::generate().unwrap();
    apply(&meta, cluster.store_command()).await;
    // Material from a CA that lost a race (two nodes made one at once).
    let lost = ClusterCa::generate().unwrap();
    NodeMaterial::issue_locally(&lost, 1)
        .unwrap()
        .save(tmp.path())
        .unwrap();
    let args = server_args(tmp.path(), &[]);
    setup::prepare(&args.node_setup(), &meta, SECRET)
        .await
        .unwrap();
    let m = NodeMaterial::load(tmp.path()).unwrap().unwrap();
    assert_eq!(m.ca_pem, cluster.cert_pem);
    verify_node_certificate(&cluster.cert_pem, &m.cert_pem).unwrap();
    // Lost material altogether: issued again from the replica's CA.
    std::fs::remove_dir_all(dir(tmp.path())).unwrap();
    setup::prepare(&args.node_setup(), &meta, SECRET)
        .await
        .unwrap();
    let again = NodeMaterial::load(tmp.path()).unwrap().unwrap();
    verify_node_certificate(&cluster.cert_pem, &again.cert_pem).unwrap();
}
