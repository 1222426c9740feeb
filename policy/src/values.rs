//! The typed values of condition operators: numbers, dates, booleans and CIDR blocks,
//! each read the same way from the policy and from the request.

use std::cmp::Ordering;
use std::net::IpAddr;

use time::format_description::well_known::{Iso8601, Rfc3339};
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime};

/// A number of a `Numeric*` condition: integers compare exactly, anything else as `f64`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    /// Reads a decimal number: an optional sign, digits, optionally `.` and digits
    /// (no exponent, no `inf` / `NaN`).
    pub fn parse(s: &str) -> Option<Num> {
        let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
        let (int, frac) = match digits.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (digits, None),
        };
        let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(int) || frac.is_some_and(|f| !all_digits(f)) {
            return None;
        }
        if frac.is_none() {
            if let Ok(i) = s.parse::<i64>() {
                return Some(Num::Int(i));
            }
        }
        s.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Num::Float)
    }

    fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    pub fn compare(self, other: Num) -> Option<Ordering> {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => Some(a.cmp(&b)),
            (a, b) => a.as_f64().partial_cmp(&b.as_f64()),
        }
    }
}

/// Reads a date of a `Date*` condition as nanoseconds since the Unix epoch: RFC 3339 /
/// ISO 8601 date-times (without an offset: UTC), a bare `YYYY-MM-DD` (midnight UTC), or
/// whole seconds since the epoch.
pub(crate) fn parse_date(s: &str) -> Option<i128> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if !digits.is_empty() && digits.len() <= 15 && digits.bytes().all(|b| b.is_ascii_digit()) {
        let secs: i128 = s.parse().ok()?;
        return Some(secs * 1_000_000_000);
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(t.unix_timestamp_nanos());
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Iso8601::DEFAULT) {
        return Some(t.unix_timestamp_nanos());
    }
    if let Ok(t) = PrimitiveDateTime::parse(s, &Iso8601::DEFAULT) {
        return Some(t.assume_utc().unix_timestamp_nanos());
    }
    if let Ok(d) = Date::parse(s, format_description!("[year]-[month]-[day]")) {
        return Some(d.midnight().assume_utc().unix_timestamp_nanos());
    }
    None
}

/// Reads `true` / `false`, case-insensitively.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// An address block of `IpAddress` / `NotIpAddress`: IPv4 or IPv6 with a prefix length;
/// a bare address is a /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Cidr> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().ok().filter(|&p| p <= max)?
            }
            Some(_) => return None,
        };
        Some(Cidr { addr, prefix })
    }

    /// Whether the block holds `ip` (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Reads a request's IP address (an IPv4-mapped IPv6 address as IPv4).
pub(crate) fn parse_ip(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>().ok().map(canonical)
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn numbers() {
        assert_eq!(Num::parse("42"), Some(Num::Int(42)));
        assert_eq!(Num::parse("-7"), Some(Num::Int(-7)));
        assert_eq!(Num::parse("+7"), Some(Num::Int(7)));
        assert_eq!(Num::parse("1.5"), Some(Num::Float(1.5)));
        assert!(Num::parse("99999999999999999999").is_some());
        for bad in [
            "", "-", "1.", ".5", "1e3", "inf", "NaN", "0x10", " 1", "1 ", "1.2.3",
        ] {
            assert_eq!(Num::parse(bad), None, "{bad}");
        }
        let cmp = |a: &str, b: &str| Num::parse(a).unwrap().compare(Num::parse(b).unwrap());
        assert_eq!(cmp("1", "2"), Some(Ordering::Less));
        assert_eq!(cmp("2", "1.5"), Some(Ordering::Greater));
        assert_eq!(cmp("2", "2.0"), Some(Ordering::Equal));
        assert_eq!(
            cmp("9007199254740993", "9007199254740992"),
            Some(Ordering::Greater)
        );
    }

    #[test]
    fn dates() {
        let t = parse_date("2019-07-16T12:00:00Z").unwrap();
        assert_eq!(t, 1_563_278_400 * 1_000_000_000);
        assert_eq!(parse_date("1563278400"), Some(t));
        assert_eq!(parse_date("2019-07-16T14:00:00+02:00"), Some(t));
        assert_eq!(parse_date("2019-07-16T12:00:00"), Some(t));
        assert_eq!(parse_date("2019-07-16T12:00:00.5Z"), Some(t + 500_000_000));
        assert_eq!(
            parse_date("2019-07-16"),
            Some((1_563_278_400 - 12 * 3600) * 1_000_000_000)
        );
        for bad in [
            "",
            "yesterday",
            "2019-13-01",
            "2019-07-16T25:00:00Z",
            "12:00",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn cidrs() {
        let c = Cidr::parse("192.168.1.0/24").unwrap();
        assert!(c.contains("192.168.1.77".parse().unwrap()));
        assert!(!c.contains("192.168.2.1".parse().unwrap()));
        assert!(c.contains("::ffff:192.168.1.1".parse().unwrap()));
        assert!(!c.contains("2001:db8::1".parse().unwrap()));
        let host = Cidr::parse("10.1.2.3").unwrap();
        assert_eq!(host.prefix, 32);
        assert!(host.contains("10.1.2.3".parse().unwrap()));
        assert!(!host.contains("10.1.2.4".parse().unwrap()));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
        assert!(all.contains("255.255.255.255".parse().unwrap()));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
        assert!(!v6.contains("2001:db9::1".parse().unwrap()));
        assert!(Cidr::parse("::/0")
            .unwrap()
            .contains("::1".parse().unwrap()));
        assert_eq!(Cidr::parse("::1").unwrap().prefix, 128);
        for bad in [
            "",
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0/8",
            "::/129",
            "10.0.0.0/-1",
            "10.0.0.0/ 8",
            "x",
            "10.0.0.0/8/8",
        ] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
        assert_eq!(parse_ip("::ffff:1.2.3.4"), Some("1.2.3.4".parse().unwrap()));
    }

    #[test]
    fn bools() {
        assert_eq!(parse_bool("TRUE"), Some(true));
        assert_eq!(parse_bool("false"), Some(false));
        assert_eq!(parse_bool("yes"), None);
    }
}
