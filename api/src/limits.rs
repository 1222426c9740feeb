//! Rate limits of the S3 front end: token buckets per access key and per client IP, for
//! requests per second and for bytes per second. A request over a limit is refused with
//! 503 `SlowDown` and a `Retry-After` header (whole seconds, rounded up, at least 1), which
//! S3 clients take as the signal to back off.
//!
//! - The defaults for every key and every client address come from `cairn server` flags
//!   ([`RateLimitConfig`]; 0: unlimited). A key's override (set with `cairn key set-limit`,
//!   kept in metadata and in the [`KeyRing`]) replaces the key default per dimension, and
//!   can also lift it (`unlimited`).
//! - The per-IP limits apply to every request, anonymous or not, before authentication; the
//!   per-key limits once the request's signature named its key. The address comes from the
//!   connection (`ConnectInfo<SocketAddr>` in the request extensions; without it the IP
//!   limits are skipped). IPv6 clients are counted per /64, the block one host usually has.
//! - Requests per second: one token each, a bucket holding one second's worth (the burst).
//! - Bytes per second: the request's declared body length is charged when it is admitted,
//!   the response's declared length when it is answered; the bucket may go into debt (one
//!   large object is never refused for being larger than a second's worth), and a request
//!   that arrives while it is in debt is refused until the debt is paid (`Retry-After` =
//!   debt / rate).
//! - Buckets live in memory and are per gateway: in a cluster each gateway enforces the
//!   limits on the requests it serves. Idle buckets that have filled up again are forgotten
//!   (a full bucket is the same as a new one); the address table is capped, and when it is
//!   full of active addresses some are forgotten.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cairn_metadata::key_limits::Limit;

use crate::auth::KeyRing;
use crate::error::{S3Error, S3ErrorCode};
use crate::ApiState;

/// The limits for every key and every client address (`cairn server` flags); 0: unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimitConfig {
    pub key_ops_per_sec: u64,
    pub key_bytes_per_sec: u64,
    pub ip_ops_per_sec: u64,
    pub ip_bytes_per_sec: u64,
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Requests per second.
    Ops,
    /// Bytes per second.
    Bytes,
}

impl Reason {
    /// The `reason` label of the throttling metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Ops => "ops",
            Reason::Bytes => "bytes",
        }
    }
}

/// A refused request: which limit, its rate, and how long until it would be admitted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Throttled {
    pub reason: Reason,
    pub rate: u64,
    pub retry_after: Duration,
}

impl Throttled {
    /// `Retry-After` in whole seconds: rounded up, at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        (self.retry_after.as_secs_f64().ceil() as u64).max(1)
    }

    fn into_error(self, who: &str) -> S3Error {
        let what = match self.reason {
            Reason::Ops => "requests",
            Reason::Bytes => "bytes",
        };
        S3Error::new(
            S3ErrorCode::SlowDown,
            format!(
                "Please reduce your request rate: {who} is limited to {} {what} per second.",
                self.rate
            ),
        )
        .with_header("retry-after", self.retry_after_secs().to_string())
    }
}

/// Fixed-point scale of bucket levels: a level is kept in billionths of a token, so that a
/// refill (nanoseconds × tokens a second) is exact integer arithmetic and no rounding drift
/// accumulates.
const SCALE: i128 = 1_000_000_000;

/// A token bucket of `rate` tokens a second that holds at most one second's worth. Its
/// level may go below zero (a debt) through [`TokenBucket::charge`].
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    rate: u64,
    /// Billionths of a token ([`SCALE`]).
    level: i128,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub(crate) fn new(rate: u64, now: Instant) -> TokenBucket {
        TokenBucket {
            rate,
            level: i128::from(rate) * SCALE,
            last: now,
        }
    }

    fn capacity(&self) -> i128 {
        i128::from(self.rate) * SCALE
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_nanos();
        let added = i128::try_from(elapsed)
            .unwrap_or(i128::MAX)
            .saturating_mul(i128::from(self.rate));
        self.level = self.level.saturating_add(added).min(self.capacity());
        self.last = self.last.max(now);
    }

    /// How long until the level reaches `tokens`.
    fn wait_for(&self, tokens: i128) -> Duration {
        let missing = (tokens * SCALE - self.level).max(0);
        let rate = i128::from(self.rate.max(1));
        let nanos = (missing + rate - 1) / rate;
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// A new rate from now on: a full bucket stays full, any other keeps its level (up to
    /// the new capacity).
    pub(crate) fn set_rate(&mut self, rate: u64, now: Instant) {
        let full = self.is_full(now);
        self.rate = rate;
        self.level = if full {
            self.capacity()
        } else {
            self.level.min(self.capacity())
        };
    }

    /// Takes one token, or says how long until there is one.
    pub(crate) fn take_one(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.level >= SCALE {
            self.level -= SCALE;
            Ok(())
        } else {
            Err(self.wait_for(1))
        }
    }

    /// Ok unless the bucket is in debt; else how long until the debt is paid.
    pub(crate) fn check_debt(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.level >= 0 {
            Ok(())
        } else {
            Err(self.wait_for(0))
        }
    }

    /// Takes `n` tokens, going into debt if there are fewer.
    pub(crate) fn charge(&mut self, n: u64, now: Instant) {
        self.refill(now);
        self.level = self
            .level
            .saturating_sub(i128::from(n).saturating_mul(SCALE));
    }

    /// Whether the bucket has filled up again (it is then the same as a new one).
    pub(crate) fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.level >= self.capacity()
    }
}

/// The rates that apply to one key or address; `None`: unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Rates {
    ops: Option<u64>,
    bytes: Option<u64>,
}

impl Rates {
    fn from_defaults(ops: u64, bytes: u64) -> Rates {
        Rates {
            ops: (ops > 0).then_some(ops),
            bytes: (bytes > 0).then_some(bytes),
        }
    }

    fn is_unlimited(&self) -> bool {
        self.ops.is_none() && self.bytes.is_none()
    }
}

/// A dimension's rate: the override, else the default.
fn effective(over: Option<Limit>, default: Option<u64>) -> Option<u64> {
    match over {
        Some(Limit::PerSecond(n)) if n > 0 => Some(n),
        Some(_) => None,
        None => default,
    }
}

/// The buckets of one key or address.
#[derive(Debug, Default)]
struct Buckets {
    ops: Option<TokenBucket>,
    bytes: Option<TokenBucket>,
}

fn reconcile(bucket: &mut Option<TokenBucket>, rate: Option<u64>, now: Instant) {
    match (bucket.as_mut(), rate) {
        (_, None) => *bucket = None,
        (None, Some(r)) => *bucket = Some(TokenBucket::new(r, now)),
        (Some(b), Some(r)) if b.rate != r => b.set_rate(r, now),
        (Some(_), Some(_)) => {}
    }
}

impl Buckets {
    /// Admits one request with a body of `declared` bytes at `rates`, or refuses it (taking
    /// nothing then).
    fn admit(&mut self, rates: Rates, declared: u64, now: Instant) -> Result<(), Throttled> {
        reconcile(&mut self.ops, rates.ops, now);
        reconcile(&mut self.bytes, rates.bytes, now);
        if let Some(b) = &mut self.bytes {
            b.check_debt(now).map_err(|retry_after| Throttled {
                reason: Reason::Bytes,
                rate: b.rate,
                retry_after,
            })?;
        }
        if let Some(b) = &mut self.ops {
            b.take_one(now).map_err(|retry_after| Throttled {
                reason: Reason::Ops,
                rate: b.rate,
                retry_after,
            })?;
        }
        if let Some(b) = &mut self.bytes {
            b.charge(declared, now);
        }
        Ok(())
    }

    fn charge(&mut self, n: u64, now: Instant) {
        if let Some(b) = &mut self.bytes {
            b.charge(n, now);
        }
    }

    fn is_idle(&mut self, now: Instant) -> bool {
        self.ops.as_mut().is_none_or(|b| b.is_full(now))
            && self.bytes.as_mut().is_none_or(|b| b.is_full(now))
    }
}

/// How often idle buckets are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(10);
/// Client addresses tracked at most.
pub const MAX_TRACKED_IPS: usize = 65_536;

/// The buckets of many keys or addresses.
struct Table<K> {
    entries: HashMap<K, Buckets>,
    cap: usize,
    last_sweep: Instant,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn new(cap: usize, now: Instant) -> Table<K> {
        Table {
            entries: HashMap::new(),
            cap,
            last_sweep: now,
        }
    }

    fn sweep(&mut self, now: Instant) {
        self.entries.retain(|_, b| !b.is_idle(now));
        self.last_sweep = now;
    }

    /// The buckets of `k`, created if need be (making room in a full table).
    fn entry(&mut self, k: &K, now: Instant) -> &mut Buckets {
        if now.saturating_duration_since(self.last_sweep) >= SWEEP_EVERY {
            self.sweep(now);
        }
        if self.entries.len() >= self.cap && !self.entries.contains_key(k) {
            self.sweep(now);
            if self.entries.len() >= self.cap {
                // Every tracked one is active: forget an eighth (arbitrary ones), so that
                // the next insertions are cheap again.
                let mut excess = self.entries.len() - self.cap / 8 * 7;
                self.entries.retain(|_, _| {
                    let keep = excess == 0;
                    excess = excess.saturating_sub(1);
                    keep
                });
            }
        }
        self.entries.entry(k.clone()).or_default()
    }

    fn charge(&mut self, k: &K, n: u64, now: Instant) {
        if let Some(b) = self.entries.get_mut(k) {
            b.charge(n, now);
        }
    }
}

/// Where the time comes from (tests move it by hand).
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// The rate limits of one gateway: the defaults, the keys' overrides (through the key
/// ring) and the buckets.
pub struct RateLimiter {
    config: RateLimitConfig,
    keys: KeyRing,
    by_key: Mutex<Table<String>>,
    by_ip: Mutex<Table<IpAddr>>,
    clock: Clock,
}

impl RateLimiter {
    pub fn new(config: RateLimitConfig, keys: KeyRing) -> RateLimiter {
        Self::with_clock(config, keys, Arc::new(Instant::now))
    }

    pub fn with_clock(config: RateLimitConfig, keys: KeyRing, clock: Clock) -> RateLimiter {
        let now = clock();
        RateLimiter {
            config,
            keys,
            by_key: Mutex::new(Table::new(usize::MAX, now)),
            by_ip: Mutex::new(Table::new(MAX_TRACKED_IPS, now)),
            clock,
        }
    }

    pub fn config(&self) -> RateLimitConfig {
        self.config
    }

    fn key_rates(&self, access_key: &str) -> Rates {
        let over = self.keys.limits(access_key);
        let default =
            Rates::from_defaults(self.config.key_ops_per_sec, self.config.key_bytes_per_sec);
        Rates {
            ops: effective(over.ops_per_sec, default.ops),
            bytes: effective(over.bytes_per_sec, default.bytes),
        }
    }

    fn ip_rates(&self) -> Rates {
        Rates::from_defaults(self.config.ip_ops_per_sec, self.config.ip_bytes_per_sec)
    }

    /// Admits a request signed by `access_key` with a body of `declared` bytes.
    pub fn admit_key(&self, access_key: &str, declared: u64) -> Result<(), Throttled> {
        let rates = self.key_rates(access_key);
        if rates.is_unlimited() {
            return Ok(());
        }
        let now = (self.clock)();
        let mut t = self.by_key.lock().unwrap_or_else(PoisonError::into_inner);
        t.entry(&access_key.to_string(), now)
            .admit(rates, declared, now)
    }

    /// Charges `n` bytes (a response body) to `access_key`.
    pub fn charge_key(&self, access_key: &str, n: u64) {
        if n == 0 || self.key_rates(access_key).bytes.is_none() {
            return;
        }
        let now = (self.clock)();
        let mut t = self.by_key.lock().unwrap_or_else(PoisonError::into_inner);
        t.charge(&access_key.to_string(), n, now);
    }

    /// Admits a request from `ip` with a body of `declared` bytes.
    pub fn admit_ip(&self, ip: IpAddr, declared: u64) -> Result<(), Throttled> {
        let rates = self.ip_rates();
        if rates.is_unlimited() {
            return Ok(());
        }
        let now = (self.clock)();
        let mut t = self.by_ip.lock().unwrap_or_else(PoisonError::into_inner);
        t.entry(&client_block(ip), now).admit(rates, declared, now)
    }

    /// Charges `n` bytes (a response body) to `ip`.
    pub fn charge_ip(&self, ip: IpAddr, n: u64) {
        if n == 0 || self.ip_rates().bytes.is_none() {
            return;
        }
        let now = (self.clock)();
        let mut t = self.by_ip.lock().unwrap_or_else(PoisonError::into_inner);
        t.charge(&client_block(ip), n, now);
    }

    /// How many keys and addresses have buckets now.
    pub fn tracked(&self) -> (usize, usize) {
        let keys = self
            .by_key
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
            .len();
        let ips = self
            .by_ip
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
            .len();
        (keys, ips)
    }
}

/// What one client is counted as: an IPv4 address (also when mapped into IPv6), or an
/// IPv6 /64.
fn client_block(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

/// The per-IP check of every request (before authentication); counts refusals.
pub(crate) fn check_ip(st: &ApiState, ip: Option<IpAddr>, declared: u64) -> Result<(), S3Error> {
    let Some(ip) = ip else { return Ok(()) };
    st.limits.admit_ip(ip, declared).map_err(|t| {
        st.metrics.throttled_ip(t.reason.as_str());
        t.into_error("this client address")
    })
}

/// The per-key check of a signed request (after authentication); counts refusals.
pub(crate) fn check_key(st: &ApiState, access_key: &str, declared: u64) -> Result<(), S3Error> {
    st.limits.admit_key(access_key, declared).map_err(|t| {
        st.metrics.throttled_key(access_key, t.reason.as_str());
        t.into_error(&format!("access key {access_key}"))
    })
}

#[cfg(test)]
#[path = "limits_tests.rs"]
mod tests;
