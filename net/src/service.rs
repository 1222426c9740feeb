//! The hyper service of one connection: hands each request to the axum router with the
//! client's address (and TLS client certificates) in its extensions, its body wrapped in the
//! minimum-rate check, bodiless requests under the request timeout, and the response body
//! holding the request's place in the connection's state until it is sent; and the driver
//! that serves one connection with it beside the watchdog of `conn.rs`.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::ConnectInfo;
use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body::{Body as _, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tower::ServiceExt;

use crate::body::MinRateBody;
use crate::conn::{Action, ConnState, RequestGuard, TrackedIo};
use crate::metrics::Timeout;
use crate::tls::PeerCertificates;
use crate::{Limits, NetMetrics};

/// What every connection of one listener shares.
pub(crate) struct Ctx {
    pub name: &'static str,
    pub limits: Limits,
    pub metrics: NetMetrics,
}

#[derive(Clone)]
pub(crate) struct ConnService {
    pub app: axum::Router,
    pub remote: SocketAddr,
    pub peer: Option<PeerCertificates>,
    pub state: Arc<ConnState>,
    pub ctx: Arc<Ctx>,
}

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<GuardedBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let mut guard = self.state.begin_request();
        let (mut parts, body) = req.into_parts();
        parts.extensions.insert(ConnectInfo(self.remote));
        if let Some(peer) = &self.peer {
            parts.extensions.insert(peer.clone());
        }
        let bodiless = body.is_end_stream();
        let limits = &self.ctx.limits;
        let state = self.state.clone();
        let ctx = self.ctx.clone();
        let body = MinRateBody::new(body, limits.min_body_rate, limits.body_grace).on_too_slow(
            move || {
                ctx.metrics.timed_out(ctx.name, Timeout::BodyRate);
                tracing::debug!(
                    listener = ctx.name,
                    "request body too slow; closing the connection"
                );
                state.close_after_response();
            },
        );
        let request = Request::from_parts(parts, axum::body::Body::new(body));
        let routed = self.app.clone().oneshot(request);
        let timeout = limits.request_timeout.filter(|_| bodiless);
        let ctx = self.ctx.clone();
        Box::pin(async move {
            let response = match timeout {
                None => routed.await,
                Some(t) => match tokio::time::timeout(t, routed).await {
                    Ok(r) => r,
                    Err(_) => {
                        ctx.metrics.timed_out(ctx.name, Timeout::Request);
                        let mut r = (ctx.limits.timed_out)();
                        r.headers_mut()
                            .insert(header::CONNECTION, HeaderValue::from_static("close"));
                        Ok(r)
                    }
                },
            };
            let response = match response {
                Ok(r) => r,
                Err(never) => match never {},
            };
            guard.responding();
            Ok(response.map(|body| GuardedBody {
                inner: body,
                _guard: guard,
            }))
        })
    }
}

/// The default answer to a request whose handler did not answer within the request
/// timeout ([`crate::Limits::timed_out`]): a plain-text 503.
pub(crate) fn plain_timed_out() -> Response<axum::body::Body> {
    let mut r = Response::new(axum::body::Body::from(
        "the server did not answer this request in time\n",
    ));
    *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// A response body that keeps its request counted as in flight until hyper is done with it.
pub(crate) struct GuardedBody {
    inner: axum::body::Body,
    _guard: RequestGuard,
}

impl http_body::Body for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves HTTP/1.1 on `io` until the client leaves, a rule of the watchdog closes the
/// connection, or the listener drains (then in-flight requests finish first).
pub(crate) async fn drive<IO>(io: IO, svc: ConnService, mut drain: watch::Receiver<bool>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let state = svc.state.clone();
    let ctx = svc.ctx.clone();
    let limits = &ctx.limits;
    let io = TokioIo::new(TrackedIo::new(io, state.clone()));
    let mut builder = http1::Builder::new();
    // hyper's own header timer starts whenever it waits for a head, idle or not: set it past
    // both of ours as a backstop; the watchdog below is what enforces them.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout + limits.idle_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(io, svc);
    tokio::pin!(conn);
    let mut closing_since: Option<u64> = None;
    let mut draining = *drain.borrow();
    loop {
        let now = state.now_ms();
        let close_asked = state.close_asked();
        if (draining || close_asked) && closing_since.is_none() {
            conn.as_mut().graceful_shutdown();
            closing_since = Some(now);
        }
        let until = match state.evaluate(limits, now, closing_since) {
            Action::Drop(why) => {
                if let Some(why) = why {
                    ctx.metrics.timed_out(ctx.name, why);
                    tracing::debug!(listener = ctx.name, reason = ?why, "connection closed");
                }
                return;
            }
            Action::WaitUntil(ms) => state.at(ms),
        };
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(listener = ctx.name, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = tokio::time::sleep_until(until) => {}
            _ = state.wake.notified() => {}
            changed = drain.changed(), if !draining => {
                draining = changed.is_err() || *drain.borrow();
            }
        }
    }
}
