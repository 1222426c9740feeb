//! Small helpers: request ids, S3 time formats, URL encoding of listed names.

use std::sync::atomic::{AtomicU64, Ordering};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique request id: time-ordered and cheap.
pub fn new_request_id() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = OffsetDateTime::now_utc().unix_timestamp_nanos() as u64;
    format!("{t:016X}{n:08X}")
}

fn datetime(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `2026-11-22T06:08:46.123Z`, as S3 XML documents write times.
pub fn iso8601(ms: i64) -> String {
    let t = datetime(ms);
    let base = t
        .replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default();
    // Rfc3339 without fractional seconds ends in "Z"; insert milliseconds.
    match base.strip_suffix('Z') {
        Some(b) => format!("{b}.{:03}Z", ms.rem_euclid(1000)),
        None => base,
    }
}

/// `Sun, 22 Nov 2026 06:08:46 GMT`, as HTTP headers write times.
pub fn http_date(ms: i64) -> String {
    let secs = ms.div_euclid(1000).max(0) as u64;
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// Characters S3 leaves unencoded with `encoding-type=url`.
const URL_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

pub fn url_encode(s: &str) -> String {
    utf8_percent_encode(s, URL_ENCODE).to_string()
}

/// The client's address, when the listener recorded it.
pub(crate) fn client_ip(req: &axum::extract::Request) -> Option<std::net::IpAddr> {
    req.extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times() {
        assert_eq!(iso8601(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(
            http_date(1_700_000_000_123),
            "Tue, 14 Nov 2023 22:13:20 GMT"
        );
        assert_eq!(url_encode("a b/é+"), "a%20b/%C3%A9%2B");
    }
}
