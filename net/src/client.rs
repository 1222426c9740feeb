//! Traffic between nodes (Raft, forwarded writes, the datanode shard protocol, in-flight
//! queries, heartbeats): how a node calls another one ([`ClusterClient`]) and how the
//! receiving server decides that a call comes from a cluster member
//! ([`ClusterTransport::authenticated`]).
//!
//! - [`ClusterTransport::Tls`] (the default): HTTPS with mutual TLS 1.3. The client presents
//!   this node's certificate and accepts only a server certificate that chains to the
//!   cluster CA and names [`CLUSTER_SERVER_NAME`] — whatever host or address it dialled, so
//!   verification does not depend on advertise addresses. Servers verify the client's
//!   certificate against the same CA during the handshake (rustls' `WebPkiClientVerifier`),
//!   so a request is a member's exactly when it carries [`PeerCertificates`]. No secret
//!   crosses the network.
//! - [`ClusterTransport::Insecure`] (`--insecure-cluster-transport`): plain HTTP with the
//!   cluster secret as `Authorization: Bearer` on every call, compared in constant time, for
//!   trusted networks only.
//!
//! The certificates themselves (the cluster CA, issuing node certificates, the join
//! protocol) are made by `cairn server`; this module only turns PEM into rustls configs.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue, Request};
use http_body_util::Full;
use hyper_rustls::{FixedServerNameResolver, HttpsConnector};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::TokioExecutor;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, DnsName, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use subtle::ConstantTimeEq;

use crate::tls::{ServerCheck, Trust};
use crate::{crypto_provider, PeerCertificates, TlsSource, ALPN_HTTP1};

/// The DNS name in every node certificate, which clients verify as the server's name.
pub const CLUSTER_SERVER_NAME: &str = "cairn-cluster";

/// The only TLS version between nodes: every node runs the same code, nothing older is needed.
static VERSIONS: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

fn general(what: &str, e: impl std::fmt::Display) -> rustls::Error {
    rustls::Error::General(format!("{what}: {e}"))
}

fn certificates(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, rustls::Error> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| general(what, e))?;
    if certs.is_empty() {
        return Err(general(what, "no PEM certificate"));
    }
    Ok(certs)
}

/// This node's side of mutual TLS: a client config that presents its certificate and trusts
/// only the cluster CA, and server configs that demand (datanodes) or accept (the cluster
/// listener, whose join route serves nodes that have no certificate yet) a client
/// certificate chaining to that CA.
#[derive(Debug)]
pub struct ClusterTls {
    client: Arc<ClientConfig>,
    cluster_listener: Arc<ServerConfig>,
    datanode: Arc<ServerConfig>,
}

impl ClusterTls {
    /// From the cluster CA's certificate, this node's certificate and its private key (PEM).
    /// Fails when a PEM does not parse or the key does not belong to the certificate.
    pub fn from_pem(ca_pem: &str, cert_pem: &str, key_pem: &str) -> Result<Self, rustls::Error> {
        let mut roots = RootCertStore::empty();
        for ca in certificates(ca_pem, "cluster CA certificate")? {
            roots.add(ca)?;
        }
        let roots = Arc::new(roots);
        let chain = certificates(cert_pem, "node certificate")?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| general("node key", e))?;
        let provider = crypto_provider();

        // ALPN (http/1.1) is set by the connector (`ClusterClient::tls`).
        let client = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(VERSIONS)?
            .with_root_certificates(roots.clone())
            .with_client_auth_cert(chain.clone(), key.clone_key())?;

        let server = |optional: bool| -> Result<Arc<ServerConfig>, rustls::Error> {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone());
            let verifier = if optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|e| general("client verifier", e))?;
            let mut config = ServerConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(VERSIONS)?
                .with_client_cert_verifier(verifier)
                .with_single_cert(chain.clone(), key.clone_key())?;
            config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
            Ok(Arc::new(config))
        };
        Ok(ClusterTls {
            client: Arc::new(client),
            cluster_listener: server(true)?,
            datanode: server(false)?,
        })
    }
}

/// A fixed server config.
struct Fixed(Arc<ServerConfig>);

impl TlsSource for Fixed {
    fn server_config(&self) -> Arc<ServerConfig> {
        self.0.clone()
    }
}

/// How this node talks to the others, and what its servers demand of callers. Cheap to clone.
#[derive(Clone, Debug)]
pub enum ClusterTransport {
    /// Mutual TLS (the default).
    Tls(Arc<ClusterTls>),
    /// Plain HTTP with the cluster secret as bearer token (`--insecure-cluster-transport`).
    Insecure(Arc<str>),
}

impl ClusterTransport {
    /// Plain HTTP with `secret` as bearer token.
    pub fn insecure(secret: &str) -> Self {
        ClusterTransport::Insecure(secret.into())
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, ClusterTransport::Tls(_))
    }

    /// What the cluster listener serves with: TLS where a client certificate is verified
    /// when presented (the join route is for nodes without one; every other route demands
    /// one through [`ClusterTransport::authenticated`]); `None` for plain HTTP.
    pub fn cluster_listener_tls(&self) -> Option<Arc<dyn TlsSource>> {
        match self {
            ClusterTransport::Tls(t) => Some(Arc::new(Fixed(t.cluster_listener.clone()))),
            ClusterTransport::Insecure(_) => None,
        }
    }

    /// What datanode listeners serve with: TLS that refuses, during the handshake, a client
    /// without a certificate from the cluster CA; `None` for plain HTTP.
    pub fn datanode_tls(&self) -> Option<Arc<dyn TlsSource>> {
        match self {
            ClusterTransport::Tls(t) => Some(Arc::new(Fixed(t.datanode.clone()))),
            ClusterTransport::Insecure(_) => None,
        }
    }

    /// The bearer token this node's servers accept: the cluster secret without TLS, none
    /// (empty, which matches nothing) with TLS.
    pub fn bearer_secret(&self) -> &str {
        match self {
            ClusterTransport::Tls(_) => "",
            ClusterTransport::Insecure(secret) => secret,
        }
    }

    /// Whether a request that reached one of this node's cluster or datanode servers comes
    /// from a member: with TLS, it came with a client certificate (which the handshake
    /// verified against the cluster CA); without, it carries the cluster secret as a
    /// non-empty bearer token (compared in constant time; an empty secret lets nothing in).
    pub fn authenticated(&self, extensions: &http::Extensions, headers: &HeaderMap) -> bool {
        verified_peer(extensions) || bearer_matches(headers, self.bearer_secret())
    }

    /// A client for calls to other nodes.
    pub fn client(&self, options: ClientOptions) -> ClusterClient {
        match self {
            ClusterTransport::Tls(t) => ClusterClient::tls(t.client.clone(), options),
            ClusterTransport::Insecure(secret) => ClusterClient::plain(Some(secret), options),
        }
    }
}

/// Whether the request's connection presented a client certificate. Listeners only hand
/// on certificates that their TLS config verified (for the cluster's servers: against the
/// cluster CA), so this means "a cluster member".
pub fn verified_peer(extensions: &http::Extensions) -> bool {
    extensions
        .get::<PeerCertificates>()
        .is_some_and(|c| !c.0.is_empty())
}

/// Whether `headers` carry `Authorization: Bearer <secret>` with a non-empty secret
/// (decided by [`secret_matches`]).
pub fn bearer_matches(headers: &HeaderMap, secret: &str) -> bool {
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .unwrap_or(b"");
    secret_matches(token, secret)
}

/// The one decision "this bearer token is the cluster secret", wherever a token arrives
/// (cluster and datanode listeners, the admin API): compared in constant time, and an empty
/// token or an empty secret never matches.
pub fn secret_matches(token: &[u8], secret: &str) -> bool {
    !token.is_empty() && !secret.is_empty() && bool::from(token.ct_eq(secret.as_bytes()))
}

/// Connection settings of a [`ClusterClient`].
#[derive(Debug, Clone, Copy)]
pub struct ClientOptions {
    pub connect_timeout: Duration,
    /// Idle pooled connections are closed after this.
    pub pool_idle_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(5),
            pool_idle_timeout: Duration::from_secs(60),
        }
    }
}

/// A keep-alive HTTP/1.1 client for other nodes' cluster and datanode listeners: HTTPS with
/// this node's certificate, or plain HTTP with the bearer secret added to every request.
#[derive(Clone)]
pub struct ClusterClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    scheme: &'static str,
    bearer: Option<HeaderValue>,
}

impl std::fmt::Debug for ClusterClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterClient")
            .field("scheme", &self.scheme)
            .finish_non_exhaustive()
    }
}

fn http_connector(options: ClientOptions) -> HttpConnector {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(options.connect_timeout));
    http.enforce_http(false);
    http
}

impl ClusterClient {
    /// HTTPS with `config` (which must not set ALPN: the connector offers http/1.1); the
    /// server must present a certificate for [`CLUSTER_SERVER_NAME`] (as far as `config`'s
    /// verifier checks it).
    pub fn tls(config: Arc<ClientConfig>, options: ClientOptions) -> Self {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*config).clone())
            .https_only()
            .with_server_name_resolver(FixedServerNameResolver::new(ServerName::DnsName(
                DnsName::try_from(CLUSTER_SERVER_NAME)
                    .expect("a valid DNS name")
                    .to_owned(),
            )))
            .enable_http1()
            .wrap_connector(http_connector(options));
        ClusterClient {
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(options.pool_idle_timeout)
                .build(connector),
            scheme: "https",
            bearer: None,
        }
    }

    /// Plain HTTP; with `secret`, every request carries it as bearer token. A secret that
    /// cannot be a header value is not sent (such calls are refused with 401).
    pub fn plain(secret: Option<&str>, options: ClientOptions) -> Self {
        let bearer = secret.and_then(|s| {
            let mut v = HeaderValue::from_str(&format!("Bearer {s}")).ok()?;
            v.set_sensitive(true);
            Some(v)
        });
        if secret.is_some() && bearer.is_none() {
            tracing::warn!("the cluster secret is not a valid HTTP header value; it is not sent");
        }
        // Never used for TLS (plain URLs only); the connector type is the same as for HTTPS.
        let unused = ClientConfig::builder_with_provider(crypto_provider())
            .with_protocol_versions(VERSIONS)
            .expect("TLS 1.3 is supported by the provider")
            .with_root_certificates(RootCertStore::empty())
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(unused)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http_connector(options));
        ClusterClient {
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(options.pool_idle_timeout)
                .build(connector),
            scheme: "http",
            bearer,
        }
    }

    /// HTTPS that accepts any server certificate and presents none: only for the join
    /// request, whose answer is authenticated by a MAC keyed with the cluster secret instead
    /// (the joiner has no CA to verify against yet).
    pub fn unverified_tls(options: ClientOptions) -> Self {
        let provider = crypto_provider();
        let config = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(VERSIONS)
            .expect("TLS 1.3 is supported by the provider")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ServerCheck::new(Trust::Any, provider)))
            .with_no_client_auth();
        Self::tls(Arc::new(config), options)
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        self.scheme
    }

    /// The URL of `path_and_query` on the node listening at `addr` (`host:port`).
    pub fn url(&self, addr: &str, path_and_query: &str) -> String {
        format!("{}://{addr}{path_and_query}", self.scheme)
    }

    /// Sends `req` (adding the bearer token in plain mode).
    pub fn request(&self, mut req: Request<Full<Bytes>>) -> ResponseFuture {
        if let Some(b) = &self.bearer {
            req.headers_mut().insert(AUTHORIZATION, b.clone());
        }
        self.client.request(req)
    }
}

/// Checks that `cert_pem` (a node certificate) chains to `ca_pem` and names
/// [`CLUSTER_SERVER_NAME`] — what every peer will check of it.
pub fn verify_node_certificate(ca_pem: &str, cert_pem: &str) -> Result<(), rustls::Error> {
    let mut roots = RootCertStore::empty();
    for ca in certificates(ca_pem, "cluster CA certificate")? {
        roots.add(ca)?;
    }
    let chain = certificates(cert_pem, "node certificate")?;
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        crypto_provider(),
    )
    .build()
    .map_err(|e| general("server verifier", e))?;
    let name = ServerName::try_from(CLUSTER_SERVER_NAME).map_err(|e| general("server name", e))?;
    verifier.verify_server_cert(&chain[0], &chain[1..], &name, &[], UnixTime::now())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: Option<&'static str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(a) = auth {
            h.insert(AUTHORIZATION, HeaderValue::from_static(a));
        }
        h
    }

    #[test]
    fn only_the_secret_as_a_non_empty_bearer_token_is_let_in() {
        let secret = "net-unit-test-secret-0123456789abcdef";
        let t = ClusterTransport::insecure(secret);
        let none = http::Extensions::new();
        assert!(t.authenticated(
            &none,
            &headers(Some("Bearer net-unit-test-secret-0123456789abcdef"))
        ));
        for bad in [
            None,
            Some(""),
            Some("Bearer"),
            Some("Bearer "),
            Some("Bearer net-unit-test-secret"),
            Some("net-unit-test-secret-0123456789abcdef"),
            Some("Basic net-unit-test-secret-0123456789abcdef"),
        ] {
            assert!(!t.authenticated(&none, &headers(bad)), "{bad:?}");
        }
        // A certificate the listener verified is enough; an empty list is not one.
        let mut ext = http::Extensions::new();
        ext.insert(PeerCertificates(Arc::new(vec![CertificateDer::from(
            vec![1u8, 2, 3],
        )])));
        assert!(t.authenticated(&ext, &headers(None)));
        let mut empty_list = http::Extensions::new();
        empty_list.insert(PeerCertificates(Arc::new(Vec::new())));
        assert!(!t.authenticated(&empty_list, &headers(None)));
        // An empty secret matches nothing, an empty token least of all.
        let empty = ClusterTransport::insecure("");
        for auth in [None, Some("Bearer "), Some("Bearer x")] {
            assert!(!empty.authenticated(&none, &headers(auth)), "{auth:?}");
        }
    }

    #[test]
    fn a_token_matches_only_the_whole_non_empty_secret() {
        assert!(secret_matches(b"s3cret-value", "s3cret-value"));
        for (token, secret) in [
            (&b""[..], ""),
            (b"", "s3cret-value"),
            (b"s3cret-value", ""),
            (b"s3cret", "s3cret-value"),
            (b"s3cret-value-and-more", "s3cret-value"),
            (b"S3CRET-VALUE", "s3cret-value"),
        ] {
            assert!(!secret_matches(token, secret), "{token:?} vs {secret:?}");
        }
    }

    #[test]
    fn bad_pem_is_an_error_not_a_panic() {
        for (ca, cert, key) in [
            ("", "", ""),
            ("not pem", "not pem", "not pem"),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "",
                "",
            ),
        ] {
            assert!(ClusterTls::from_pem(ca, cert, key).is_err());
        }
        assert!(verify_node_certificate("", "").is_err());
    }
}
