//! `cairn_net::serve` over real loopback sockets: the client's address in every request,
//! the header and idle timeouts, the connection cap with eviction, the minimum body rate, the
//! request timeout, graceful shutdown, and client certificates over TLS.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::routing::{get, put};
use axum::Router;
use cairn_net::{Limits, NetMetrics, PeerCertificates, TlsSource};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

fn app() -> Router {
    Router::new()
        .route(
            "/addr",
            get(|ConnectInfo(addr): ConnectInfo<SocketAddr>| async move { addr.to_string() }),
        )
        .route(
            "/sleep/{ms}",
            get(
                |axum::extract::Path(ms): axum::extract::Path<u64>| async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    "slept"
                },
            ),
        )
        .route(
            "/upload",
            put(|body: Bytes| async move { format!("got {}", body.len()) }),
        )
        .route(
            "/peer",
            get(|req: axum::extract::Request| async move {
                match req.extensions().get::<PeerCertificates>() {
                    Some(p) => format!("peer certificates: {}", p.0.len()),
                    None => "no peer certificates".to_string(),
                }
            }),
        )
}

struct Server {
    addr: SocketAddr,
    metrics: NetMetrics,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(limits: Limits, tls: Option<Arc<dyn TlsSource>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = NetMetrics::default();
        let (tx, rx) = oneshot::channel::<()>();
        let l =
            cairn_net::Listener::new(listener, "test", limits, tls).with_metrics(metrics.clone());
        let task = tokio::spawn(l.serve(app(), async move {
            let _ = rx.await;
        }));
        Server {
            addr,
            metrics,
            stop: Some(tx),
            task,
        }
    }

    async fn stop(mut self) -> Duration {
        let t = Instant::now();
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap().unwrap();
        t.elapsed()
    }

    fn timeouts(&self, reason: &str) -> u64 {
        self.metrics.timeouts_of("test", reason)
    }
}

fn limits() -> Limits {
    Limits {
        header_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(1),
        ..Limits::default()
    }
}

/// Sends one request on `s` and reads one response (status line, headers, a
/// Content-Length body).
async fn exchange<S: AsyncReadExt + AsyncWriteExt + Unpin>(s: &mut S, req: &str) -> String {
    s.write_all(req.as_bytes()).await.unwrap();
    read_response(s).await.expect("a response")
}

async fn read_response<S: AsyncReadExt + Unpin>(s: &mut S) -> Option<String> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.ok()?;
    Some(head + &String::from_utf8_lossy(&body))
}

/// Waits for the server to close `s`; returns how long that took (panics after `max`).
async fn closed_within(s: &mut TcpStream, max: Duration) -> Duration {
    let t = Instant::now();
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(max.saturating_sub(t.elapsed()), s.read(&mut buf)).await {
            Err(_) => panic!("still open after {max:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return t.elapsed(),
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn requests_carry_the_client_address() {
    let srv = Server::start(limits(), None).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let local = s.local_addr().unwrap();
    let r = exchange(&mut s, "GET /addr HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(r.ends_with(&local.to_string()), "{r}");
    srv.stop().await;
}

#[tokio::test]
async fn a_slowloris_head_is_cut_at_the_header_timeout() {
    let srv = Server::start(
        Limits {
            header_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(30),
            ..Limits::default()
        },
        None,
    )
    .await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let t = Instant::now();
    let head =
        b"GET /addr HTTP/1.1\r\nhost: x\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut sent = 0;
    let mut closed = false;
    for b in head.iter() {
        if s.write_all(&[*b]).await.is_err() {
            closed = true;
            break;
        }
        sent += 1;
        let mut buf = [0u8; 64];
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await {
            assert!(matches!(r, Ok(0) | Err(_)), "no response to a partial head");
            closed = true;
            break;
        }
    }
    let took = t.elapsed();
    assert!(closed, "the whole head went through ({sent} bytes)");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2000),
        "{took:?}"
    );
    assert_eq!(srv.timeouts("header"), 1);
    srv.stop().await;
}

#[tokio::test]
async fn idle_connections_close_after_the_idle_timeout_but_busy_ones_do_not() {
    let srv = Server::start(limits(), None).await;
    // Never sent a byte.
    let mut fresh = TcpStream::connect(srv.addr).await.unwrap();
    // Kept alive after a response.
    let mut kept = TcpStream::connect(srv.addr).await.unwrap();
    exchange(&mut kept, "GET /addr HTTP/1.1\r\nhost: x\r\n\r\n").await;
    // A handler working longer than the idle timeout.
    let mut busy = TcpStream::connect(srv.addr).await.unwrap();
    busy.write_all(b"GET /sleep/2500 HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let a = closed_within(&mut fresh, Duration::from_secs(3)).await;
    let b = closed_within(&mut kept, Duration::from_secs(3)).await;
    assert!(a >= Duration::from_millis(800), "{a:?}");
    assert!(b < Duration::from_secs(2), "{b:?}");
    let r = read_response(&mut busy).await.expect("the slow answer");
    assert!(r.ends_with("slept"), "{r}");
    assert_eq!(srv.timeouts("idle"), 2);
    srv.stop().await;
}

#[tokio::test]
async fn at_the_cap_the_idlest_connection_makes_room_or_the_new_one_is_refused() {
    let srv = Server::start(
        Limits {
            max_connections: 2,
            idle_timeout: Duration::from_secs(30),
            ..Limits::default()
        },
        None,
    )
    .await;
    let mut old = TcpStream::connect(srv.addr).await.unwrap();
    exchange(&mut old, "GET /addr HTTP/1.1\r\nhost: x\r\n\r\n").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut newer = TcpStream::connect(srv.addr).await.unwrap();
    exchange(&mut newer, "GET /addr HTTP/1.1\r\nhost: x\r\n\r\n").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Both quiet for over a second: the older one goes.
    let mut third = TcpStream::connect(srv.addr).await.unwrap();
    let r = exchange(&mut third, "GET /addr HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    closed_within(&mut old, Duration::from_secs(1)).await;
    let r = exchange(&mut newer, "GET /addr HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    // Now both have requests in flight: a new connection is refused at once.
    third
        .write_all(b"GET /sleep/1500 HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    newer
        .write_all(b"GET /sleep/1500 HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut refused = TcpStream::connect(srv.addr).await.unwrap();
    let _ = refused
        .write_all(b"GET /addr HTTP/1.1\r\nhost: x\r\n\r\n")
        .await;
    assert!(read_response(&mut refused).await.is_none());
    assert!(read_response(&mut third).await.unwrap().ends_with("slept"));
    assert!(read_response(&mut newer).await.unwrap().ends_with("slept"));
    let evicted = srv.metrics.evicted.get_or_create(&label()).get();
    let refused = srv.metrics.refused.get_or_create(&label()).get();
    assert_eq!((evicted, refused), (1, 1));
    srv.stop().await;
}

fn label() -> cairn_net::ListenerLabels {
    cairn_net::ListenerLabels {
        listener: "test".into(),
    }
}

#[tokio::test]
async fn a_slow_body_fails_and_its_connection_closes() {
    let srv = Server::start(
        Limits {
            min_body_rate: 10_000,
            body_grace: Duration::from_secs(1),
            ..limits()
        },
        None,
    )
    .await;
    // A fast upload passes.
    let mut fast = TcpStream::connect(srv.addr).await.unwrap();
    let body = vec![b'x'; 200_000];
    fast.write_all(b"PUT /upload HTTP/1.1\r\nhost: x\r\ncontent-length: 200000\r\n\r\n")
        .await
        .unwrap();
    fast.write_all(&body).await.unwrap();
    let r = read_response(&mut fast).await.unwrap();
    assert!(r.ends_with("got 200000"), "{r}");
    // 1 KB every 300 ms is far below 10 KB/s.
    let slow = TcpStream::connect(srv.addr).await.unwrap();
    let (mut rd, mut wr) = slow.into_split();
    let t = Instant::now();
    let writer = tokio::spawn(async move {
        let head = b"PUT /upload HTTP/1.1\r\nhost: x\r\ncontent-length: 200000\r\n\r\n";
        if wr.write_all(head).await.is_err() {
            return;
        }
        for _ in 0..200 {
            if wr.write_all(&[b'y'; 1000]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let r = tokio::time::timeout(Duration::from_secs(5), read_response(&mut rd))
        .await
        .expect("answered in time")
        .expect("the handler's answer to a failed body");
    let took = t.elapsed();
    assert!(!r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(took >= Duration::from_millis(900), "{took:?}");
    // And the connection closes.
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(3), rd.read_to_end(&mut rest))
        .await
        .expect("closed")
        .ok();
    writer.abort();
    assert_eq!(srv.timeouts("body_rate"), 1);
    srv.stop().await;
}

#[tokio::test]
async fn bodiless_requests_get_503_at_the_request_timeout() {
    let srv = Server::start(
        Limits {
            request_timeout: Some(Duration::from_millis(500)),
            idle_timeout: Duration::from_secs(30),
            ..Limits::default()
        },
        None,
    )
    .await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let t = Instant::now();
    let r = exchange(&mut s, "GET /sleep/5000 HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 503"), "{r}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let r = exchange(
        &mut TcpStream::connect(srv.addr).await.unwrap(),
        "GET /sleep/100 HTTP/1.1\r\nhost: x\r\n\r\n",
    )
    .await;
    assert!(r.ends_with("slept"), "{r}");
    assert_eq!(srv.timeouts("request"), 1);
    srv.stop().await;
}

/// A listener's own timeout answer (the S3 listener's is an S3 error document).
fn teapot() -> http::Response<axum::body::Body> {
    let mut r = http::Response::new(axum::body::Body::from("<Error>late</Error>"));
    *r.status_mut() = http::StatusCode::IM_A_TEAPOT;
    r
}

#[tokio::test]
async fn the_timeout_answer_is_the_listeners_own() {
    let srv = Server::start(
        Limits {
            request_timeout: Some(Duration::from_millis(300)),
            timed_out: teapot,
            ..Limits::default()
        },
        None,
    )
    .await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let r = exchange(&mut s, "GET /sleep/5000 HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert!(r.starts_with("HTTP/1.1 418"), "{r}");
    assert!(r.to_ascii_lowercase().contains("connection: close"), "{r}");
    assert!(r.ends_with("<Error>late</Error>"), "{r}");
    srv.stop().await;
}

#[tokio::test]
async fn shutdown_lets_requests_in_flight_finish() {
    let srv = Server::start(
        Limits {
            idle_timeout: Duration::from_secs(30),
            ..Limits::default()
        },
        None,
    )
    .await;
    let addr = srv.addr;
    let mut idle = TcpStream::connect(addr).await.unwrap();
    let mut busy = TcpStream::connect(addr).await.unwrap();
    busy.write_all(b"GET /sleep/1000 HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopping = tokio::spawn(srv.stop());
    let r = read_response(&mut busy)
        .await
        .expect("the answer in flight");
    assert!(r.ends_with("slept"), "{r}");
    closed_within(&mut busy, Duration::from_secs(2)).await;
    closed_within(&mut idle, Duration::from_secs(3)).await;
    let took = stopping.await.unwrap();
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[path = "serve/tls_peer.rs"]
mod tls_peer;
