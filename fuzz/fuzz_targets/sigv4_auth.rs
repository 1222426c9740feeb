//! `authenticate` never panics on arbitrary request heads.
//!
//! Input: newline-separated pieces `method`, `path`, `query`, `authorization`,
//! `x-amz-date`, `x-amz-content-sha256`, then any number of `name:value` header lines.
//! An empty query piece means no query; an empty header piece means no such header.
//! Header values that `http` refuses are skipped.
#![no_main]

use std::collections::HashMap;

use cairn_sigv4::{authenticate, RequestParts};
use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;

fn insert(headers: &mut HeaderMap, name: &[u8], value: &[u8]) {
    if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
        headers.append(n, v);
    }
}

fuzz_target!(|data: &[u8]| {
    let mut pieces = data.split(|&b| b == b'\n');
    let mut next = || pieces.next().unwrap_or(&[]);
    let method = String::from_utf8_lossy(next()).into_owned();
    let path = String::from_utf8_lossy(next()).into_owned();
    let query = String::from_utf8_lossy(next()).into_owned();
    let mut headers = HeaderMap::new();
    for name in ["authorization", "x-amz-date", "x-amz-content-sha256"] {
        let v = next();
        if !v.is_empty() {
            insert(&mut headers, name.as_bytes(), v);
        }
    }
    for line in pieces {
        if let Some(colon) = line.iter().position(|&b| b == b':') {
            insert(&mut headers, &line[..colon], &line[colon + 1..]);
        }
    }
    let req = RequestParts {
        method: &method,
        raw_path: &path,
        raw_query: (!query.is_empty()).then_some(query.as_str()),
        headers: &headers,
    };
    let mut secrets = HashMap::new();
    secrets.insert(
        "AKIAIOSFODNN7EXAMPLE".to_owned(),
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_owned(),
    );
    // 2013-05-24T00:00:00Z, the date of the AWS documentation examples used as seeds.
    let now = OffsetDateTime::from_unix_timestamp(1_369_353_600).expect("valid timestamp");
    let _ = authenticate(&req, &secrets, now);
});
