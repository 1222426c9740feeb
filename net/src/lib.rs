//! `cairn-net` owns the accept loop of every listener of `cairn server` (S3, admin/console,
//! cluster, datanode): HTTP/1.1 over plain TCP or rustls, with the limits hyper alone does not
//! enforce.
//!
//! - **Header timeout**: once the first byte of a request head arrives, the whole head must
//!   arrive within [`Limits::header_timeout`], or the connection is dropped (slowloris). A TLS
//!   handshake gets the same budget.
//! - **Idle timeout**: a connection with no request in flight and no bytes moving for
//!   [`Limits::idle_timeout`] is closed, and so is a connection whose response has stopped
//!   moving for as long (a client that stopped reading).
//! - **Connection cap** ([`Limits::max_connections`], per listener): when it is reached, the
//!   connection that has been quiet longest without a request in flight (an idle keep-alive
//!   connection or a head that is still trickling in) is evicted to make room; when every
//!   connection has a request in flight, the new connection is closed at once.
//! - **Minimum body rate**: request bodies are wrapped in [`MinRateBody`]; the clock runs only
//!   while the server waits for body bytes, and after [`Limits::body_grace`] the body must
//!   have averaged [`Limits::min_body_rate`] over that waiting time, or the handler sees a
//!   [`BodyTooSlow`] error and the connection closes after its response.
//! - **Request timeout** for requests without a body ([`Limits::request_timeout`]): the
//!   response head must be ready in time, else 503 and the handler is cancelled.
//!
//! Every request carries the client's address as
//! `axum::extract::ConnectInfo<SocketAddr>` and, when a TLS client presented certificates,
//! [`PeerCertificates`]. See `docs/security.md` ("Network") for the operator's view.

mod accept;
mod body;
pub mod client;
mod conn;
mod fd;
mod metrics;
mod service;
mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

pub use body::{BodyTooSlow, MinRateBody};
pub use fd::{
    fit_connection_caps, nofile_soft_limit, raise_nofile_limit, NofileLimit, RESERVED_FDS,
};
pub use metrics::{ListenerLabels, NetMetrics, TimeoutLabels};
pub use tls::{crypto_provider, PeerCertificates, TlsFiles, TlsSource, ALPN_HTTP1};

/// The errors of this crate: bad certificate or key files, and the descriptor limit.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Pem { path: PathBuf, reason: String },
    #[error("{path}: no certificate found (expected PEM \"BEGIN CERTIFICATE\" blocks)")]
    NoCertificate { path: PathBuf },
    #[error("{path}: no private key found (expected a PEM PKCS#8, PKCS#1 or SEC1 key)")]
    NoKey { path: PathBuf },
    #[error("TLS configuration from {cert} and {key}: {source}")]
    Tls {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
    #[error("open-file limit: {0}")]
    Rlimit(std::io::Error),
}

/// What one listener tolerates from its clients. `Limits { request_timeout: None,
/// ..Limits::default() }` is the usual way to change one field.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The whole request head must arrive within this, counted from its first byte (and a TLS
    /// handshake must finish within this, counted from the accept).
    pub header_timeout: Duration,
    /// A connection with no request in flight and no bytes moving is closed after this; so is
    /// one whose response stopped moving (the client stopped reading) for as long.
    pub idle_timeout: Duration,
    /// Open connections on this listener; see the crate docs for what happens beyond it.
    pub max_connections: usize,
    /// Bytes per second a request body must average (over the time the server waits for it)
    /// once `body_grace` of waiting has passed; 0 turns the check off.
    pub min_body_rate: u64,
    pub body_grace: Duration,
    /// Time to the response head for requests without a body; `None` = no limit.
    pub request_timeout: Option<Duration>,
    /// The answer to a request that missed `request_timeout` (the listener's protocol: the
    /// S3 listener answers with an S3 error document). A `Connection: close` header is
    /// added to it. Default: a plain-text 503.
    pub timed_out: fn() -> http::Response<axum::body::Body>,
    /// On shutdown, how long in-flight requests may take to finish before their connections
    /// are dropped.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
            min_body_rate: 16 * 1024,
            body_grace: Duration::from_secs(10),
            request_timeout: Some(Duration::from_secs(300)),
            timed_out: service::plain_timed_out,
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// A bound listener with its name (the `listener` label of [`NetMetrics`]), limits and,
/// for HTTPS, where its server certificate comes from.
pub struct Listener {
    listener: TcpListener,
    name: &'static str,
    limits: Limits,
    tls: Option<Arc<dyn TlsSource>>,
    metrics: NetMetrics,
}

impl Listener {
    /// Counts into [`NetMetrics::global`]; see [`Listener::with_metrics`].
    pub fn new(
        listener: TcpListener,
        name: &'static str,
        limits: Limits,
        tls: Option<Arc<dyn TlsSource>>,
    ) -> Listener {
        Listener {
            listener,
            name,
            limits,
            tls,
            metrics: NetMetrics::global(),
        }
    }

    /// Counts into `metrics` instead of the process-wide set.
    pub fn with_metrics(mut self, metrics: NetMetrics) -> Listener {
        self.metrics = metrics;
        self
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Whether connections are TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serves `app` until `shutdown` completes: then stops accepting, lets in-flight requests
    /// finish (for at most [`Limits::drain_timeout`]) and returns.
    pub async fn serve(
        self,
        app: axum::Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        accept::run(self, app, shutdown).await
    }
}

/// Pending connections the kernel may queue for a listener made by [`bind`] (it caps this
/// at `net.core.somaxconn`): enough to absorb a burst of connects while the accept loop
/// catches up, where a short queue would drop them and leave clients retrying for seconds.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds a TCP listener on `addr` (address reuse on, [`LISTEN_BACKLOG`] pending
/// connections).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves `app` on `listener` with `limits` (HTTPS when `tls` is given) until `shutdown`
/// completes; see [`Listener::serve`].
pub async fn serve(
    listener: TcpListener,
    name: &'static str,
    app: axum::Router,
    limits: Limits,
    tls: Option<Arc<dyn TlsSource>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    Listener::new(listener, name, limits, tls)
        .serve(app, shutdown)
        .await
}
