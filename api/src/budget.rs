//! The budget for request-body memory in flight on the S3 listener (`--max-inflight-bytes`).
//!
//! Before a request's body is read, it reserves what handling the body will hold in memory:
//! its declared length, but at most the per-request working set of the data path
//! ([`cairn_objects::ObjectService::write_working_set`]: a streamed PUT or part holds a few
//! stripes, whatever its length), and that working set when the length is not declared. A
//! request that finds the budget spent waits for room, first come first served, at most
//! the configured wait (`--max-inflight-wait`; its body stays unread meanwhile, so the
//! client is held back by TCP flow control, not by memory); still no room, it is answered
//! 503 `SlowDown` with `Retry-After: 1`, its body unread and its connection closed (so
//! that the server does not drain the body). The reservation is given back when the
//! request's handling ends, however it ends (RAII: also on errors and when the client goes
//! away, which also takes a waiting request out of the queue).

use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderMap};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{S3Error, S3ErrorCode};

/// The budget is counted in units of this many bytes (so that one reservation fits the
/// semaphore's `u32` permits for any working set).
const UNIT: u64 = 1024;

/// The shared budget; clones share it.
#[derive(Clone, Debug)]
pub struct BodyBudget {
    units: Arc<Semaphore>,
    /// The whole budget, in units.
    total_units: u64,
    /// What one body holds at most (the data path's working set), in bytes.
    per_request: u64,
    /// How long a request may wait for room before it is refused.
    wait: Duration,
    refused: Counter,
    reserved: Gauge,
    /// Requests waiting for room now.
    waiting: Gauge,
}

/// Budget held by one request until it is dropped.
#[derive(Debug)]
pub struct Reservation {
    _permit: OwnedSemaphorePermit,
    bytes: i64,
    reserved: Gauge,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.reserved.dec_by(self.bytes);
    }
}

impl BodyBudget {
    /// A budget of `total` bytes for bodies that each hold at most `per_request` bytes;
    /// `refused` counts the requests turned away, `reserved` shows the bytes reserved.
    pub fn new(total: u64, per_request: u64, refused: Counter, reserved: Gauge) -> BodyBudget {
        let total_units = total.div_ceil(UNIT).clamp(1, Semaphore::MAX_PERMITS as u64);
        BodyBudget {
            units: Arc::new(Semaphore::new(total_units as usize)),
            total_units,
            per_request: per_request.max(1),
            wait: Duration::ZERO,
            refused,
            reserved,
            waiting: Gauge::default(),
        }
    }

    /// Lets a request that finds the budget spent wait up to `wait` for room (first come,
    /// first served) before it is refused; `waiting` shows how many wait. Default: no wait.
    pub fn with_wait(mut self, wait: Duration, waiting: Gauge) -> BodyBudget {
        self.wait = wait;
        self.waiting = waiting;
        self
    }

    /// The bytes a request with these headers will hold while its body is handled; `None`
    /// when it has no body.
    pub fn charge(&self, headers: &HeaderMap) -> Option<u64> {
        let number = |name: &str| -> Option<u64> {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok())
        };
        // An aws-chunked body holds its decoded bytes (plus a chunk); otherwise the length.
        let declared = number("x-amz-decoded-content-length")
            .or_else(|| number(header::CONTENT_LENGTH.as_str()));
        match declared {
            Some(0) => None,
            Some(n) => Some(n.min(self.per_request)),
            None if headers.contains_key(header::TRANSFER_ENCODING) => Some(self.per_request),
            None => None,
        }
    }

    /// Reserves `bytes` (at most the whole budget) once that much is free, waiting at most
    /// the configured wait; `None` (counted as refused) if it did not come free in time.
    pub async fn reserve(&self, bytes: u64) -> Option<Reservation> {
        let units = bytes.div_ceil(UNIT).clamp(1, self.total_units);
        // `total_units` may exceed u32 only when `bytes` could not: checked anyway.
        let n = u32::try_from(units).ok()?;
        let permit = match self.units.clone().try_acquire_many_owned(n) {
            Ok(permit) => Some(permit),
            Err(_) if self.wait.is_zero() => None,
            Err(_) => {
                self.waiting.inc();
                let _done = waiting_guard(&self.waiting);
                tokio::time::timeout(self.wait, self.units.clone().acquire_many_owned(n))
                    .await
                    .ok()
                    .and_then(Result::ok)
            }
        };
        let Some(permit) = permit else {
            self.refused.inc();
            return None;
        };
        let bytes = (units * UNIT) as i64;
        self.reserved.inc_by(bytes);
        Some(Reservation {
            _permit: permit,
            bytes,
            reserved: self.reserved.clone(),
        })
    }

    /// Reserves what a request with these headers will hold: `Ok(None)` for a request
    /// without a body, the 503 `SlowDown` to answer when the budget stayed spent.
    pub async fn admit(&self, headers: &HeaderMap) -> Result<Option<Reservation>, S3Error> {
        let Some(bytes) = self.charge(headers) else {
            return Ok(None);
        };
        self.reserve(bytes).await.map(Some).ok_or_else(slow_down)
    }
}

/// Takes one from `waiting` when dropped (the wait ended, however it ended).
fn waiting_guard(waiting: &Gauge) -> impl Drop + '_ {
    struct Done<'a>(&'a Gauge);
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            self.0.dec();
        }
    }
    Done(waiting)
}

/// The answer to a request refused for the budget.
fn slow_down() -> S3Error {
    S3Error::new(S3ErrorCode::SlowDown, "Please reduce your request rate.")
        .with_header("retry-after", "1")
        .with_header("connection", "close")
}

/// Parses a size: plain bytes (`1048576`) or a number with a unit, binary (`KiB`, `MiB`,
/// `GiB`, `TiB`) or decimal (`KB`, `MB`, `GB`, `TB`), case-insensitive (`256MiB`, `1 GiB`).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim().to_ascii_lowercase();
    let mult: u64 = match unit.as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => {
            return Err(format!(
                "{s:?}: unknown unit {unit:?} (use bytes, KiB, MiB, GiB or TiB)"
            ))
        }
    };
    if num.is_empty() {
        return Err(format!(
            "{s:?}: expected a size such as 256MiB, 1GiB or 1048576"
        ));
    }
    let bytes = if let Ok(n) = num.parse::<u64>() {
        n.checked_mul(mult)
    } else {
        num.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| f * mult as f64)
            .filter(|b| *b < u64::MAX as f64)
            .map(|b| b as u64)
    };
    bytes.ok_or_else(|| format!("{s:?}: not a size in bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn budget(total: u64, per_request: u64) -> BodyBudget {
        BodyBudget::new(total, per_request, Counter::default(), Gauge::default())
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size(" 1 gib "), Ok(1 << 30));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("2k"), Ok(2048));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_size("0"), Ok(0));
        for bad in [
            "",
            "MiB",
            "12 parsecs",
            "-1",
            "1..2G",
            "99999999999999999999",
            "1e3",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
        assert!(parse_size("20000000TiB").is_err(), "overflow");
    }

    #[test]
    fn requests_are_charged_what_their_body_holds() {
        let b = budget(1 << 30, 36 << 20);
        assert_eq!(b.charge(&headers(&[])), None);
        assert_eq!(b.charge(&headers(&[("content-length", "0")])), None);
        assert_eq!(
            b.charge(&headers(&[("content-length", "1000")])),
            Some(1000)
        );
        // A streamed body holds the working set, whatever its length.
        assert_eq!(
            b.charge(&headers(&[("content-length", "104857600")])),
            Some(36 << 20)
        );
        // aws-chunked: the decoded length counts, not the framing.
        assert_eq!(
            b.charge(&headers(&[
                ("content-length", "70000"),
                ("x-amz-decoded-content-length", "65536")
            ])),
            Some(65536)
        );
        // Length unknown: the working set.
        assert_eq!(
            b.charge(&headers(&[("transfer-encoding", "chunked")])),
            Some(36 << 20)
        );
    }

    #[tokio::test]
    async fn the_budget_refuses_when_spent_and_comes_back_on_drop() {
        let refused = Counter::<u64>::default();
        let reserved = Gauge::<i64>::default();
        let b = BodyBudget::new(100 << 20, 36 << 20, refused.clone(), reserved.clone());
        let big = headers(&[("content-length", "104857600")]);
        let first = b.admit(&big).await.unwrap().expect("a reservation");
        let second = b.admit(&big).await.unwrap().expect("a reservation");
        assert_eq!(reserved.get(), 72 << 20);
        let err = b.admit(&big).await.unwrap_err();
        assert_eq!(err.code, S3ErrorCode::SlowDown);
        assert!(err.headers.contains(&("retry-after", "1".into())));
        assert!(err.headers.contains(&("connection", "close".into())));
        assert_eq!(refused.get(), 1);
        // A small body still fits in what is left.
        let small = b
            .admit(&headers(&[("content-length", "1000")]))
            .await
            .unwrap()
            .expect("fits");
        drop(first);
        assert_eq!(reserved.get(), (36 << 20) + 1024);
        let third = b.admit(&big).await.unwrap().expect("room again");
        drop((second, third, small));
        assert_eq!(reserved.get(), 0);
        // No body, no charge.
        assert!(b.admit(&headers(&[])).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_budget_below_one_working_set_still_lets_one_body_through() {
        let b = budget(8 << 20, 36 << 20);
        let big = headers(&[("content-length", "104857600")]);
        let one = b.admit(&big).await.unwrap().expect("one at a time");
        assert!(b.admit(&big).await.is_err());
        drop(one);
        assert!(b.admit(&big).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_request_waits_for_room_in_turn_then_is_refused_when_none_comes() {
        let refused = Counter::<u64>::default();
        let waiting = Gauge::<i64>::default();
        let b = BodyBudget::new(36 << 20, 36 << 20, refused.clone(), Gauge::default())
            .with_wait(Duration::from_secs(5), waiting.clone());
        let big = headers(&[("content-length", "104857600")]);
        let first = b.admit(&big).await.unwrap().expect("room");
        let b2 = b.clone();
        let big2 = big.clone();
        let second = tokio::spawn(async move {
            b2.admit(&big2)
                .await
                .map(|r| r.is_some())
                .map_err(|e| e.code)
        });
        for _ in 0..100 {
            if waiting.get() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(waiting.get(), 1, "the second request waits");
        drop(first);
        assert_eq!(second.await.unwrap(), Ok(true), "admitted once room came");
        assert_eq!(waiting.get(), 0);
        assert_eq!(refused.get(), 0);

        // Room that never comes: refused after the wait.
        let short = b
            .clone()
            .with_wait(Duration::from_millis(100), waiting.clone());
        let held = short.admit(&big).await.unwrap().expect("room");
        let t = std::time::Instant::now();
        let err = short.admit(&big).await.unwrap_err();
        assert!(t.elapsed() >= Duration::from_millis(100));
        assert_eq!(err.code, S3ErrorCode::SlowDown);
        assert_eq!(refused.get(), 1);
        assert_eq!(waiting.get(), 0);
        drop(held);
    }
}
