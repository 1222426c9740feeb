//! Tests: AWS-published vectors, the `aws-sigv4` crate as an independent signer, and
//! property tests of the chunked decoder.

mod checksum_tests;
mod chunked_tests;
mod oracle;
mod sigv2_tests;
mod vectors;

use std::collections::HashMap;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::{HeaderMap, HeaderName, HeaderValue};
use time::OffsetDateTime;

pub const AK: &str = "AKIAIOSFODNN7EXAMPLE";
pub const SK: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

pub fn secrets() -> HashMap<String, String> {
    HashMap::from([(AK.to_owned(), SK.to_owned())])
}

pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in pairs {
        h.append(
            HeaderName::from_bytes(n.as_bytes()).unwrap(),
            HeaderValue::from_bytes(v.as_bytes()).unwrap(),
        );
    }
    h
}

pub fn ts(s: &str) -> OffsetDateTime {
    let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::PrimitiveDateTime::parse(s, fmt).unwrap().assume_utc()
}

pub fn identity() -> Identity {
    Credentials::new(AK, SK, None, None, "test").into()
}

/// Collects a stream synchronously.
pub fn collect<S: Stream>(s: S) -> Vec<S::Item> {
    futures::executor::block_on(s.collect::<Vec<_>>())
}

/// Concatenates the `Ok` items and returns the first error, if any.
pub fn drain<S: Stream<Item = Result<Bytes, crate::AuthError>>>(
    s: S,
) -> (Vec<u8>, Option<crate::AuthError>) {
    let mut out = Vec::new();
    for item in collect(s) {
        match item {
            Ok(b) => out.extend_from_slice(&b),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

/// A byte stream delivering `data` split at `cuts`.
pub fn split_stream(
    data: &[u8],
    cuts: &[usize],
) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    points.sort_unstable();
    let mut pieces = Vec::new();
    let mut start = 0;
    for p in points.into_iter().chain(std::iter::once(data.len())) {
        pieces.push(Ok(Bytes::copy_from_slice(&data[start..p])));
        start = p;
    }
    futures::stream::iter(pieces)
}

pub fn system_time(t: OffsetDateTime) -> SystemTime {
    SystemTime::from(t)
}
