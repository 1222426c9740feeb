//! Tests of the rate limits, on a clock moved by hand.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, Ipv6Addr};

use cairn_metadata::key_limits::KeyLimits;

use super::*;
use crate::auth::KeySnapshot;

/// A clock that only moves when told.
#[derive(Clone)]
struct Manual(Arc<Mutex<Instant>>);

impl Manual {
    fn new() -> Manual {
        Manual(Arc::new(Mutex::new(Instant::now())))
    }

    fn now(&self) -> Instant {
        *self.0.lock().unwrap()
    }

    fn advance(&self, d: Duration) {
        *self.0.lock().unwrap() += d;
    }

    fn clock(&self) -> Clock {
        let me = self.clone();
        Arc::new(move || me.now())
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn a_bucket_allows_its_burst_then_its_rate() {
    let t = Manual::new();
    let mut b = TokenBucket::new(20, t.now());
    for _ in 0..20 {
        b.take_one(t.now()).unwrap();
    }
    // Empty: the next token is 1/20 s away.
    let wait = b.take_one(t.now()).unwrap_err();
    assert_eq!(wait, ms(50));
    t.advance(ms(49));
    assert!(b.take_one(t.now()).is_err());
    t.advance(ms(1));
    b.take_one(t.now()).unwrap();
    // Over ten seconds at most the rate gets through, the burst does not come back twice.
    let mut admitted = 0;
    for _ in 0..1000 {
        t.advance(ms(10));
        if b.take_one(t.now()).is_ok() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 200);
    // Idle for long: full again, never fuller than one second's worth.
    t.advance(Duration::from_secs(60));
    assert!(b.is_full(t.now()));
    for _ in 0..20 {
        b.take_one(t.now()).unwrap();
    }
    assert!(b.take_one(t.now()).is_err());
}

#[test]
fn a_byte_bucket_goes_into_debt_and_refuses_until_it_is_paid() {
    let t = Manual::new();
    let mut b = TokenBucket::new(1000, t.now());
    b.check_debt(t.now()).unwrap();
    // One body of five seconds' worth is admitted, and leaves a debt of four seconds.
    b.charge(5000, t.now());
    assert_eq!(b.check_debt(t.now()).unwrap_err(), Duration::from_secs(4));
    t.advance(ms(2500));
    assert_eq!(b.check_debt(t.now()).unwrap_err(), ms(1500));
    t.advance(ms(1500));
    b.check_debt(t.now()).unwrap();
    assert!(!b.is_full(t.now()));
    t.advance(Duration::from_secs(1));
    assert!(b.is_full(t.now()));
}

#[test]
fn a_new_rate_keeps_the_level_up_to_the_new_capacity() {
    let t = Manual::new();
    let mut b = TokenBucket::new(100, t.now());
    b.set_rate(5, t.now());
    for _ in 0..5 {
        b.take_one(t.now()).unwrap();
    }
    assert_eq!(b.take_one(t.now()).unwrap_err(), ms(200));
    b.set_rate(50, t.now());
    t.advance(ms(20));
    b.take_one(t.now()).unwrap();
}

#[test]
fn retry_after_is_whole_seconds_rounded_up_at_least_one() {
    let secs = |d: Duration| {
        Throttled {
            reason: Reason::Ops,
            rate: 1,
            retry_after: d,
        }
        .retry_after_secs()
    };
    assert_eq!(secs(Duration::ZERO), 1);
    assert_eq!(secs(ms(10)), 1);
    assert_eq!(secs(ms(1000)), 1);
    assert_eq!(secs(ms(1001)), 2);
    assert_eq!(secs(ms(3999)), 4);
}

fn ring_with(limits: &[(&str, KeyLimits)]) -> KeyRing {
    let ring = KeyRing::default();
    let snapshot = KeySnapshot {
        keys: ["ROOT", "ALICE", "BOB", "CAROL"]
            .iter()
            .map(|k| (k.to_string(), format!("secret-of-{k}")))
            .collect(),
        disabled: HashSet::new(),
        root: Some("ROOT".into()),
        limits: limits.iter().map(|(k, l)| (k.to_string(), *l)).collect(),
    };
    ring.sync(&snapshot, ring.generation());
    ring
}

fn ops(n: Limit) -> KeyLimits {
    KeyLimits {
        ops_per_sec: Some(n),
        bytes_per_sec: None,
    }
}

/// Admitted requests out of `n`, one every `every`.
fn drive(l: &RateLimiter, t: &Manual, key: &str, n: usize, every: Duration) -> usize {
    let mut ok = 0;
    for _ in 0..n {
        if l.admit_key(key, 0).is_ok() {
            ok += 1;
        }
        t.advance(every);
    }
    ok
}

#[test]
fn a_key_over_its_limit_is_refused_and_other_keys_are_not() {
    let t = Manual::new();
    let ring = ring_with(&[("ALICE", ops(Limit::PerSecond(20)))]);
    let l = RateLimiter::with_clock(RateLimitConfig::default(), ring, t.clock());
    // Alice at 200 requests a second for five seconds: the burst, then 20 a second.
    assert_eq!(drive(&l, &t, "ALICE", 1000, ms(5)), 20 + 20 * 5 - 1);
    // The last refill (to the five-second mark) brought one more token.
    l.admit_key("ALICE", 0).unwrap();
    let refused = l.admit_key("ALICE", 0).unwrap_err();
    assert_eq!(refused.reason, Reason::Ops);
    assert_eq!(refused.rate, 20);
    assert_eq!(refused.retry_after_secs(), 1);
    // Bob has no override and no default applies: all admitted, and no bucket kept.
    assert_eq!(drive(&l, &t, "BOB", 1000, ms(5)), 1000);
    assert_eq!(l.tracked(), (1, 0));
}

#[test]
fn defaults_apply_to_keys_without_an_override_and_overrides_win() {
    let t = Manual::new();
    let ring = ring_with(&[
        ("ROOT", ops(Limit::Unlimited)),
        ("ALICE", ops(Limit::PerSecond(50))),
    ]);
    let config = RateLimitConfig {
        key_ops_per_sec: 10,
        ..RateLimitConfig::default()
    };
    let l = RateLimiter::with_clock(config, ring.clone(), t.clock());
    assert_eq!(drive(&l, &t, "BOB", 200, ms(10)), 10 + 20 - 1);
    assert_eq!(drive(&l, &t, "ALICE", 200, ms(25)), 200);
    assert_eq!(drive(&l, &t, "ROOT", 500, ms(1)), 500);
    // The override changes (through the ring): the next request sees the new rate.
    ring.set_limits("ALICE", ops(Limit::PerSecond(5)));
    t.advance(Duration::from_secs(5));
    assert_eq!(drive(&l, &t, "ALICE", 100, ms(10)), 5 + 5 - 1);
    // Cleared: the default again.
    ring.set_limits("ALICE", KeyLimits::default());
    t.advance(Duration::from_secs(5));
    assert_eq!(drive(&l, &t, "ALICE", 100, ms(10)), 10 + 10 - 1);
}

#[test]
fn bytes_are_charged_up_front_and_after_the_response() {
    let t = Manual::new();
    let ring = ring_with(&[(
        "ALICE",
        KeyLimits {
            ops_per_sec: None,
            bytes_per_sec: Some(Limit::PerSecond(100_000)),
        },
    )]);
    let l = RateLimiter::with_clock(RateLimitConfig::default(), ring, t.clock());
    // A 300 kB PUT is admitted (the bucket is full) and leaves two seconds of debt.
    l.admit_key("ALICE", 300_000).unwrap();
    let r = l.admit_key("ALICE", 0).unwrap_err();
    assert_eq!(r.reason, Reason::Bytes);
    assert_eq!(r.retry_after, Duration::from_secs(2));
    assert_eq!(r.retry_after_secs(), 2);
    t.advance(Duration::from_secs(2));
    // A GET of it: admitted, and its 300 kB response charged afterwards.
    l.admit_key("ALICE", 0).unwrap();
    l.charge_key("ALICE", 300_000);
    assert_eq!(
        l.admit_key("ALICE", 0).unwrap_err().retry_after,
        Duration::from_secs(3)
    );
    // Refused requests take nothing.
    t.advance(Duration::from_secs(3));
    l.admit_key("ALICE", 0).unwrap();
}

#[test]
fn addresses_are_limited_each_and_ipv6_per_slash_64() {
    let t = Manual::new();
    let config = RateLimitConfig {
        ip_ops_per_sec: 3,
        ..RateLimitConfig::default()
    };
    let l = RateLimiter::with_clock(config, KeyRing::default(), t.clock());
    let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let b = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    for _ in 0..3 {
        l.admit_ip(a, 0).unwrap();
    }
    assert_eq!(l.admit_ip(a, 0).unwrap_err().reason, Reason::Ops);
    // The same address mapped into IPv6 is the same client.
    let mapped = IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
    assert!(l.admit_ip(mapped, 0).is_err());
    l.admit_ip(b, 0).unwrap();
    // Two addresses of one /64 share a bucket; another /64 has its own.
    let v6 = |s: &str| IpAddr::V6(s.parse::<Ipv6Addr>().unwrap());
    for i in 0..3 {
        l.admit_ip(v6(&format!("2001:db8:0:1::{i}")), 0).unwrap();
    }
    assert!(l.admit_ip(v6("2001:db8:0:1:ffff::9"), 0).is_err());
    l.admit_ip(v6("2001:db8:0:2::1"), 0).unwrap();
}

#[test]
fn idle_buckets_are_forgotten_and_the_address_table_is_capped() {
    let t = Manual::new();
    let config = RateLimitConfig {
        ip_ops_per_sec: 100,
        ip_bytes_per_sec: 1000,
        key_ops_per_sec: 100,
        ..RateLimitConfig::default()
    };
    let l = RateLimiter::with_clock(config, ring_with(&[]), t.clock());
    for i in 0..1000u32 {
        l.admit_ip(IpAddr::V4(Ipv4Addr::from(i)), 0).unwrap();
    }
    // One address uploads a megabyte: a thousand seconds of debt.
    let busy = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    l.admit_ip(busy, 1_000_000).unwrap();
    l.admit_key("ALICE", 0).unwrap();
    assert_eq!(l.tracked(), (1, 1001));
    // Once refilled, buckets are forgotten at the next sweep; the one in debt is kept.
    t.advance(SWEEP_EVERY);
    l.admit_ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)), 0)
        .unwrap();
    l.admit_key("BOB", 0).unwrap();
    assert_eq!(l.tracked(), (1, 2));
    assert_eq!(l.admit_ip(busy, 0).unwrap_err().reason, Reason::Bytes);

    // A table full of active entries forgets some to make room, never growing past its cap.
    let mut table: Table<u32> = Table::new(64, t.now());
    let rates = Rates {
        ops: Some(1),
        bytes: None,
    };
    for i in 0..1000u32 {
        table.entry(&i, t.now()).admit(rates, 0, t.now()).unwrap();
        assert!(table.entries.len() <= 64);
    }
    assert!(table.entries.contains_key(&999));
}

#[test]
fn the_ring_follows_metadata_limits_and_keeps_a_local_change_over_a_stale_read() {
    let ring = ring_with(&[("ALICE", ops(Limit::PerSecond(20)))]);
    assert_eq!(ring.limits("ALICE"), ops(Limit::PerSecond(20)));
    assert_eq!(ring.limits("BOB"), KeyLimits::default());
    assert_eq!(ring.limits("NOBODY"), KeyLimits::default());

    let keys: HashMap<String, String> = ["ROOT", "ALICE", "BOB", "CAROL"]
        .iter()
        .map(|k| (k.to_string(), format!("secret-of-{k}")))
        .collect();
    let snap = |limits: &[(&str, KeyLimits)]| KeySnapshot {
        keys: keys.clone(),
        disabled: HashSet::new(),
        root: Some("ROOT".into()),
        limits: limits.iter().map(|(k, l)| (k.to_string(), *l)).collect(),
    };
    // Another node cleared Alice's and set Bob's.
    let r = ring.sync(&snap(&[("BOB", ops(Limit::Unlimited))]), ring.generation());
    assert_eq!(r.limits, ["ALICE", "BOB"]);
    assert_eq!(ring.limits("ALICE"), KeyLimits::default());
    assert_eq!(ring.limits("BOB"), ops(Limit::Unlimited));

    // This node sets Carol's after a read started; that read does not undo it.
    let started = ring.generation();
    let stale = snap(&[("BOB", ops(Limit::Unlimited))]);
    ring.set_limits("CAROL", ops(Limit::PerSecond(7)));
    assert!(ring.sync(&stale, started).is_empty());
    assert_eq!(ring.limits("CAROL"), ops(Limit::PerSecond(7)));
    // Disabling and enabling a key keeps its override; deleting it drops it.
    ring.disable("CAROL");
    ring.insert("CAROL".into(), "secret-of-CAROL".into());
    assert_eq!(ring.limits("CAROL"), ops(Limit::PerSecond(7)));
    ring.remove("CAROL");
    assert_eq!(ring.limits("CAROL"), KeyLimits::default());
}
