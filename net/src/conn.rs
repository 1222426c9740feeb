//! One connection: what it is doing ([`ConnState`]: bytes moving, a request head arriving,
//! requests in flight), the IO wrapper that records it, and the watchdog's rules (header and
//! idle timeouts, evictions, graceful shutdown) that the driver in `service.rs` applies.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::metrics::Timeout;
use crate::Limits;

/// After a close was decided (shutdown, a too-slow body), how long a connection with no
/// request in flight may still take to flush and close by itself.
const CLOSE_GRACE_MS: u64 = 1000;

/// An idle connection younger than this is never evicted (its last response may still be
/// on its way out).
pub(crate) const EVICT_MIN_QUIET_MS: u64 = 1000;

const CLOSE_NONE: u8 = 0;
const CLOSE_AFTER_RESPONSE: u8 = 1;
const CLOSE_EVICT: u8 = 2;

/// What one connection is doing, shared by its IO wrapper, its service, its watchdog and the
/// listener's table (for eviction). Times are milliseconds since the accept.
pub(crate) struct ConnState {
    start: Instant,
    last_activity: AtomicU64,
    /// When the first byte of the request head now arriving came, plus one (0: none).
    head_started: AtomicU64,
    in_flight: AtomicUsize,
    /// Requests whose response head is with hyper (the body is being sent).
    responding: AtomicUsize,
    close: AtomicU8,
    /// Wakes the watchdog: a head started, a request ended, a close was asked for.
    pub(crate) wake: Notify,
}

/// What the watchdog does next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Close the connection now, counting the reason if there is one.
    Drop(Option<Timeout>),
    /// Look again at this time (ms since the accept), or when woken.
    WaitUntil(u64),
}

impl ConnState {
    pub(crate) fn new() -> ConnState {
        ConnState {
            start: Instant::now(),
            last_activity: AtomicU64::new(0),
            head_started: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            responding: AtomicUsize::new(0),
            close: AtomicU8::new(CLOSE_NONE),
            wake: Notify::new(),
        }
    }

    /// Whether closing the connection was asked for (after a response, or an eviction).
    pub(crate) fn close_asked(&self) -> bool {
        self.close.load(Ordering::Relaxed) != CLOSE_NONE
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    pub(crate) fn at(&self, ms: u64) -> Instant {
        self.start + Duration::from_millis(ms)
    }

    fn on_read(&self) {
        let now = self.now_ms();
        self.last_activity.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.head_started.load(Ordering::Relaxed) == 0
        {
            self.head_started.store(now + 1, Ordering::Relaxed);
            self.wake.notify_one();
        }
    }

    fn on_write(&self) {
        self.last_activity.store(self.now_ms(), Ordering::Relaxed);
    }

    /// A request head was parsed and goes to the handler.
    pub(crate) fn begin_request(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_started.store(0, Ordering::Relaxed);
        RequestGuard {
            state: self.clone(),
            responding: false,
        }
    }

    /// Close the connection once the request in flight is answered (a too-slow body).
    pub(crate) fn close_after_response(&self) {
        let _ = self.close.compare_exchange(
            CLOSE_NONE,
            CLOSE_AFTER_RESPONSE,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        self.wake.notify_one();
    }

    /// Asks the connection to close to make room; false if it is already closing.
    pub(crate) fn evict(&self) -> bool {
        let ok = self
            .close
            .compare_exchange(
                CLOSE_NONE,
                CLOSE_EVICT,
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_ok();
        if ok {
            self.wake.notify_one();
        }
        ok
    }

    pub(crate) fn evicted(&self) -> bool {
        self.close.load(Ordering::Relaxed) == CLOSE_EVICT
    }

    /// Since when this connection has been quiet with no request in flight, if it has for
    /// at least [`EVICT_MIN_QUIET_MS`] and is not closing already: the eviction candidates.
    pub(crate) fn quiet_since(&self) -> Option<Instant> {
        if self.in_flight.load(Ordering::Relaxed) > 0
            || self.close.load(Ordering::Relaxed) != CLOSE_NONE
        {
            return None;
        }
        let head = self.head_started.load(Ordering::Relaxed);
        let since = if head > 0 {
            head - 1
        } else {
            self.last_activity.load(Ordering::Relaxed)
        };
        (self.now_ms().saturating_sub(since) >= EVICT_MIN_QUIET_MS).then(|| self.at(since))
    }

    /// The watchdog's rules, at `now` (ms since the accept); `closing_since` is when a
    /// graceful close began.
    pub(crate) fn evaluate(&self, limits: &Limits, now: u64, closing_since: Option<u64>) -> Action {
        let ms = |d: Duration| d.as_millis() as u64;
        let in_flight = self.in_flight.load(Ordering::Relaxed);
        let last = self.last_activity.load(Ordering::Relaxed);
        let due = |deadline: u64, why: Option<Timeout>| {
            if now >= deadline {
                Action::Drop(why)
            } else {
                Action::WaitUntil(deadline)
            }
        };
        if in_flight == 0 {
            if self.evicted() {
                return Action::Drop(None);
            }
            let head = self.head_started.load(Ordering::Relaxed);
            if let Some(since) = closing_since {
                let grace = due(since + CLOSE_GRACE_MS, None);
                if head == 0 || grace == Action::Drop(None) {
                    return grace;
                }
            }
            if head > 0 {
                due(head - 1 + ms(limits.header_timeout), Some(Timeout::Header))
            } else {
                due(last + ms(limits.idle_timeout), Some(Timeout::Idle))
            }
        } else if self.responding.load(Ordering::Relaxed) > 0 {
            due(
                last + ms(limits.idle_timeout),
                Some(Timeout::StalledResponse),
            )
        } else {
            // A handler at work or reading the body: the body rate and the request timeout
            // guard those.
            Action::WaitUntil(now + 3_600_000)
        }
    }
}

/// Held for one request from its head to the end of its response.
pub(crate) struct RequestGuard {
    state: Arc<ConnState>,
    responding: bool,
}

impl RequestGuard {
    /// The response head goes to hyper.
    pub(crate) fn responding(&mut self) {
        if !self.responding {
            self.responding = true;
            self.state.responding.fetch_add(1, Ordering::Relaxed);
            self.state.wake.notify_one();
        }
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        if self.responding {
            self.state.responding.fetch_sub(1, Ordering::Relaxed);
        }
        self.state
            .last_activity
            .store(self.state.now_ms(), Ordering::Relaxed);
        if self.state.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.state.wake.notify_one();
        }
    }
}

/// The connection's IO, recording when bytes move.
pub(crate) struct TrackedIo<IO> {
    inner: IO,
    state: Arc<ConnState>,
}

impl<IO> TrackedIo<IO> {
    pub(crate) fn new(inner: IO, state: Arc<ConnState>) -> Self {
        TrackedIo { inner, state }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for TrackedIo<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.state.on_read();
        }
        r
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for TrackedIo<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.state.on_write();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.state.on_write();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            header_timeout: Duration::from_secs(3),
            idle_timeout: Duration::from_secs(10),
            ..Limits::default()
        }
    }

    #[test]
    fn an_idle_connection_times_out_after_the_idle_timeout() {
        let s = ConnState::new();
        assert_eq!(s.evaluate(&limits(), 0, None), Action::WaitUntil(10_000));
        assert_eq!(
            s.evaluate(&limits(), 10_000, None),
            Action::Drop(Some(Timeout::Idle))
        );
    }

    #[test]
    fn a_trickling_head_times_out_after_the_header_timeout() {
        let s = ConnState::new();
        s.last_activity.store(500, Ordering::Relaxed);
        s.head_started.store(501, Ordering::Relaxed);
        // More bytes keep coming: activity does not extend the head's deadline.
        s.last_activity.store(3_000, Ordering::Relaxed);
        assert_eq!(s.evaluate(&limits(), 3_000, None), Action::WaitUntil(3_500));
        assert_eq!(
            s.evaluate(&limits(), 3_500, None),
            Action::Drop(Some(Timeout::Header))
        );
    }

    #[test]
    fn a_request_in_flight_is_left_alone_until_its_response_stalls() {
        let s = Arc::new(ConnState::new());
        let mut g = s.begin_request();
        assert!(matches!(
            s.evaluate(&limits(), 50_000, None),
            Action::WaitUntil(t) if t > 3_000_000
        ));
        g.responding();
        assert_eq!(
            s.evaluate(&limits(), 50_000, None),
            Action::Drop(Some(Timeout::StalledResponse))
        );
        assert!(
            s.quiet_since().is_none(),
            "busy connections are not evicted"
        );
        drop(g);
        assert_eq!(s.in_flight.load(Ordering::Relaxed), 0);
        assert_eq!(s.responding.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn closing_drops_a_quiet_connection_after_the_grace() {
        let s = ConnState::new();
        assert_eq!(
            s.evaluate(&limits(), 100, Some(100)),
            Action::WaitUntil(100 + CLOSE_GRACE_MS)
        );
        assert_eq!(
            s.evaluate(&limits(), 100 + CLOSE_GRACE_MS, Some(100)),
            Action::Drop(None)
        );
    }

    #[test]
    fn an_evicted_idle_connection_is_dropped_at_once() {
        let s = ConnState::new();
        assert!(s.evict());
        assert!(!s.evict(), "evicted once");
        assert_eq!(s.evaluate(&limits(), 0, None), Action::Drop(None));
    }
}
