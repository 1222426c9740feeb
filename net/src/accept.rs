//! The accept loop of one listener: the connection cap (evicting the quietest idle
//! connection, or refusing when none is idle), the TLS handshake under the header timeout,
//! one task per connection, and the drain on shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::conn::ConnState;
use crate::metrics::Timeout;
use crate::service::{self, ConnService, Ctx};
use crate::tls::{PeerCertificates, TlsSource};
use crate::Listener;

/// The open connections of one listener.
#[derive(Default)]
struct Table {
    next: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<ConnState>>>,
}

impl Table {
    fn len(&self) -> usize {
        self.conns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn insert(&self, state: Arc<ConnState>) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.conns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, state);
        id
    }

    fn remove(&self, id: u64) {
        self.conns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }

    /// Asks the connection quiet for longest (no request in flight) to close; false when
    /// there is none.
    fn evict_one(&self) -> bool {
        let conns = self.conns.lock().unwrap_or_else(PoisonError::into_inner);
        let victim = conns
            .values()
            .filter_map(|c| c.quiet_since().map(|t| (t, c)))
            .min_by_key(|(t, _)| *t)
            .map(|(_, c)| c.clone());
        drop(conns);
        victim.is_some_and(|c| c.evict())
    }
}

/// Removes a connection from the table and the open gauge however its task ends.
struct Registered {
    table: Arc<Table>,
    id: u64,
    ctx: Arc<Ctx>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.table.remove(self.id);
        self.ctx.metrics.closed(self.ctx.name);
    }
}

/// Accept errors that concern one connection only.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

pub(crate) async fn run(
    listener: Listener,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let Listener {
        listener,
        name,
        limits,
        tls,
        metrics,
    } = listener;
    let ctx = Arc::new(Ctx {
        name,
        limits,
        metrics,
    });
    let table = Arc::new(Table::default());
    let (drain_tx, drain_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Err(e) = done {
                    if e.is_panic() {
                        tracing::error!(listener = name, error = %e, "a connection task panicked");
                    }
                }
            }
            accepted = listener.accept() => {
                let (tcp, remote) = match accepted {
                    Ok(a) => a,
                    Err(e) if is_connection_error(&e) => continue,
                    Err(e) => {
                        // Out of descriptors, most likely: back off instead of spinning.
                        tracing::warn!(listener = name, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                if table.len() >= ctx.limits.max_connections {
                    if table.evict_one() {
                        ctx.metrics.evicted(name);
                    } else {
                        ctx.metrics.refused(name);
                        tracing::debug!(listener = name, %remote, "connection cap reached; refused");
                        drop(tcp);
                        continue;
                    }
                }
                ctx.metrics.accepted(name);
                ctx.metrics.opened(name);
                let state = Arc::new(ConnState::new());
                let id = table.insert(state.clone());
                let registered = Registered { table: table.clone(), id, ctx: ctx.clone() };
                let svc = ConnService { app: app.clone(), remote, peer: None, state, ctx: ctx.clone() };
                tasks.spawn(connection(tcp, svc, tls.clone(), drain_rx.clone(), registered));
            }
        }
    }
    drop(listener);
    let _ = drain_tx.send(true);
    let open = tasks.len();
    if open > 0 {
        tracing::debug!(listener = name, open, "draining connections");
    }
    let drained = tokio::time::timeout(ctx.limits.drain_timeout, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            listener = name,
            left = tasks.len(),
            "requests still running after the drain timeout; closing their connections"
        );
        tasks.shutdown().await;
    }
    Ok(())
}

/// One accepted connection: TLS first when configured, then HTTP.
async fn connection(
    tcp: TcpStream,
    mut svc: ConnService,
    tls: Option<Arc<dyn TlsSource>>,
    mut drain: watch::Receiver<bool>,
    _registered: Registered,
) {
    let _ = tcp.set_nodelay(true);
    let Some(tls) = tls else {
        service::drive(tcp, svc, drain).await;
        return;
    };
    let ctx = svc.ctx.clone();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.server_config());
    let handshake = tokio::time::timeout(ctx.limits.header_timeout, acceptor.accept(tcp));
    let state = svc.state.clone();
    let evicted = async {
        loop {
            state.wake.notified().await;
            if state.evicted() {
                return;
            }
        }
    };
    let stream = tokio::select! {
        r = handshake => r,
        _ = evicted => return,
        _ = drain.wait_for(|d| *d) => return,
    };
    let stream = match stream {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            ctx.metrics.tls_failed(ctx.name);
            tracing::debug!(listener = ctx.name, remote = %svc.remote, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            ctx.metrics.timed_out(ctx.name, Timeout::Handshake);
            return;
        }
    };
    svc.peer = stream
        .get_ref()
        .1
        .peer_certificates()
        .filter(|c| !c.is_empty())
        .map(|c| PeerCertificates(Arc::new(c.iter().map(|c| c.clone().into_owned()).collect())));
    service::drive(stream, svc, drain).await;
}
