//! The minimum upload rate: [`MinRateBody`] wraps a request body and fails it when the client
//! sends too slowly. The clock runs only while the reader waits for bytes (a handler that
//! has not started reading, or reads slowly, is not the client's fault); once that waiting
//! time passes the grace period, the bytes received must keep up with `min_rate` × waiting
//! time. A timer makes a client that sends nothing at all fail at the same moment.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// The error a too-slow body ends with.
#[derive(Debug, Clone, thiserror::Error)]
#[error("request body too slow: {received} bytes in {waited:?} of waiting (minimum {min_rate} bytes/s after {grace:?})")]
pub struct BodyTooSlow {
    pub received: u64,
    pub waited: Duration,
    pub min_rate: u64,
    pub grace: Duration,
}

type Callback = Box<dyn FnOnce() + Send + Sync>;

/// A request body that must average `min_rate` bytes per second of waiting once `grace` of
/// waiting has passed; see the module docs.
pub struct MinRateBody<B> {
    inner: B,
    min_rate: u64,
    grace: Duration,
    received: u64,
    /// Waiting time of the finished waits.
    waited: Duration,
    /// When the current wait started.
    waiting_since: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
    failed: Option<BodyTooSlow>,
    on_too_slow: Option<Callback>,
}

impl<B> MinRateBody<B> {
    /// `min_rate` 0 turns the check off.
    pub fn new(inner: B, min_rate: u64, grace: Duration) -> MinRateBody<B> {
        MinRateBody {
            inner,
            min_rate,
            grace,
            received: 0,
            waited: Duration::ZERO,
            waiting_since: None,
            timer: None,
            failed: None,
            on_too_slow: None,
        }
    }

    /// Runs `f` once, when the body fails for being too slow.
    pub fn on_too_slow(mut self, f: impl FnOnce() + Send + Sync + 'static) -> Self {
        self.on_too_slow = Some(Box::new(f));
        self
    }

    /// How long the reader may have waited in all, given the bytes received so far.
    fn allowed_wait(&self) -> Duration {
        let earned = Duration::from_secs_f64(self.received as f64 / self.min_rate as f64);
        earned.max(self.grace)
    }

    fn fail(&mut self, waited: Duration) -> BodyTooSlow {
        let e = BodyTooSlow {
            received: self.received,
            waited,
            min_rate: self.min_rate,
            grace: self.grace,
        };
        self.failed = Some(e.clone());
        self.timer = None;
        if let Some(f) = self.on_too_slow.take() {
            f();
        }
        e
    }
}

impl<B> Body for MinRateBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Some(e) = &this.failed {
            return Poll::Ready(Some(Err(Box::new(e.clone()))));
        }
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if this.min_rate == 0 {
            return polled.map(|f| f.map(|r| r.map_err(Into::into)));
        }
        match polled {
            Poll::Ready(frame) => {
                if let Some(since) = this.waiting_since.take() {
                    this.waited += since.elapsed();
                }
                if let Some(Ok(f)) = &frame {
                    if let Some(d) = f.data_ref() {
                        this.received += d.len() as u64;
                    }
                }
                Poll::Ready(frame.map(|r| r.map_err(Into::into)))
            }
            Poll::Pending => {
                let now = Instant::now();
                let since = *this.waiting_since.get_or_insert(now);
                let waited = this.waited + now.saturating_duration_since(since);
                let allowed = this.allowed_wait();
                if waited >= allowed {
                    return Poll::Ready(Some(Err(Box::new(this.fail(waited)))));
                }
                let deadline = now + (allowed - waited);
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                if timer.as_mut().poll(cx).is_ready() {
                    let waited = this.waited + since.elapsed();
                    return Poll::Ready(Some(Err(Box::new(this.fail(waited)))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use tokio::sync::mpsc;

    type Chan = mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>;

    /// A body fed through a channel by the test.
    struct ChanBody(mpsc::Receiver<Result<Frame<Bytes>, std::io::Error>>);

    impl Body for ChanBody {
        type Data = Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            self.0.poll_recv(cx)
        }
    }

    fn channel_body() -> (Chan, MinRateBody<ChanBody>) {
        let (tx, rx) = mpsc::channel(16);
        (
            tx,
            MinRateBody::new(ChanBody(rx), 1000, Duration::from_secs(2)),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_fast_body_passes() {
        let (tx, body) = channel_body();
        let sender = tokio::spawn(async move {
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_millis(500)).await;
                tx.send(Ok(Frame::data(Bytes::from(vec![0u8; 1000]))))
                    .await
                    .unwrap();
            }
        });
        let all = body.collect().await.expect("fast enough").to_bytes();
        assert_eq!(all.len(), 10_000);
        sender.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_fails_after_the_grace() {
        let (tx, body) = channel_body();
        let flagged = Arc::new(AtomicBool::new(false));
        let f = flagged.clone();
        let mut body = body.on_too_slow(move || f.store(true, Ordering::SeqCst));
        tx.send(Ok(Frame::data(Bytes::from(vec![0u8; 500]))))
            .await
            .unwrap();
        let start = Instant::now();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap().len(), 500);
        // Nothing more arrives: 500 bytes earn 0.5 s, the grace is 2 s.
        let err = body.frame().await.unwrap().unwrap_err();
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_secs(2) && waited < Duration::from_millis(2100),
            "{waited:?}"
        );
        assert!(err.to_string().contains("too slow"), "{err}");
        assert!(flagged.load(Ordering::SeqCst));
        // The body stays failed.
        assert!(body.frame().await.unwrap().is_err());
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickling_body_fails_once_its_average_drops() {
        let (tx, mut body) = channel_body();
        let sender = tokio::spawn(async move {
            // 100 bytes/s against a 1000 bytes/s minimum.
            for _ in 0..100 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if tx
                    .send(Ok(Frame::data(Bytes::from(vec![0u8; 100]))))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        let start = Instant::now();
        let mut got = 0;
        let err = loop {
            match body.frame().await {
                Some(Ok(f)) => got += f.into_data().unwrap().len(),
                Some(Err(e)) => break e,
                None => panic!("the body ended"),
            }
        };
        assert!(err.is::<BodyTooSlow>());
        // Fails at 2 s (the grace), having received about 200 bytes.
        assert!(
            start.elapsed() <= Duration::from_millis(2100),
            "{:?}",
            start.elapsed()
        );
        assert!(got <= 200, "{got}");
        drop(body);
        sender.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn time_the_reader_does_not_wait_is_not_counted() {
        let (tx, mut body) = channel_body();
        // Everything is there already; the reader dawdles 10 s between frames.
        for _ in 0..5 {
            tx.send(Ok(Frame::data(Bytes::from(vec![0u8; 10]))))
                .await
                .unwrap();
        }
        drop(tx);
        let mut got = 0;
        while let Some(f) = body.frame().await {
            got += f
                .expect("the client was never slow")
                .into_data()
                .unwrap()
                .len();
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
        assert_eq!(got, 50);
    }

    #[tokio::test(start_paused = true)]
    async fn rate_zero_turns_the_check_off() {
        let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1);
        let mut body = MinRateBody::new(ChanBody(rx), 0, Duration::ZERO);
        let sender = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            tx.send(Ok(Frame::data(Bytes::from_static(b"late"))))
                .await
                .unwrap();
        });
        let f = body.frame().await.unwrap().unwrap();
        assert_eq!(f.into_data().unwrap(), Bytes::from_static(b"late"));
        sender.await.unwrap();
    }
}
