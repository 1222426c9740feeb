//! Building blocks of AWS Signature Version 4: URI encoding, the canonical request parts,
//! the signing-key chain and constant-time signature comparison.

use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Hex SHA-256 of the empty string (the "empty payload" hash of aws-chunked signatures).
pub const EMPTY_SHA256_HEX: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        unreachable!("HMAC accepts keys of any length")
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The SigV4 signing key: `HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service),
/// "aws4_request")`.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_secret = format!("AWS4{secret}");
    let k_date = hmac_sha256(k_secret.as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, b"aws4_request")
}

/// Lowercase hex signature of `string_to_sign` under `key`.
pub fn sign_hex(key: &[u8; 32], string_to_sign: &[u8]) -> String {
    hex::encode(hmac_sha256(key, string_to_sign))
}

/// Constant-time comparison of a computed hex signature with the one the client sent.
pub fn signatures_equal(computed_hex: &str, provided: &str) -> bool {
    computed_hex.len() == provided.len()
        && bool::from(computed_hex.as_bytes().ct_eq(provided.as_bytes()))
}

/// Whether `s` is exactly 64 lowercase-or-uppercase hex digits.
pub fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// URI-encodes `bytes` the AWS way: everything except `A-Za-z0-9-_.~` (and `/` when
/// `keep_slash`) becomes `%XX` with uppercase hex.
pub fn uri_encode_into(bytes: &[u8], keep_slash: bool, out: &mut String) {
    for &b in bytes {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
            out.push(char::from(HEX_UPPER[usize::from(b & 0xf)]));
        }
    }
}

/// Percent-decodes `s`; a `%` not followed by two hex digits is kept literally. When
/// `plus_is_space`, `+` decodes to a space (form encoding, used for query strings).
pub fn percent_decode(s: &str, plus_is_space: bool) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|c| char::from(*c).to_digit(16));
                let lo = bytes.get(i + 2).and_then(|c| char::from(*c).to_digit(16));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => {
                        // hi, lo < 16, so the value fits in a byte.
                        out.push(u8::try_from(hi * 16 + lo).unwrap_or(0));
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            _ => out.push(b),
        }
        i += 1;
    }
    out
}

/// The canonical URI: the path exactly as received (S3 neither normalises nor
/// double-encodes); an empty path is `/`.
pub fn canonical_uri(raw_path: &str) -> &str {
    if raw_path.is_empty() {
        "/"
    } else {
        raw_path
    }
}

/// The path decoded and re-encoded with the AWS rules (`/` kept). Used as a second chance
/// when a client sent characters raw (e.g. `!`, `*`, non-ASCII) but signed their encoded
/// form; both forms denote the same decoded key.
pub fn reencoded_uri(raw_path: &str) -> String {
    let mut out = String::with_capacity(raw_path.len() + 8);
    uri_encode_into(&percent_decode(raw_path, false), true, &mut out);
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// Splits a raw query string into decoded `(name, value)` pairs. `+` means space (as
/// S3 and the AWS SDK signers treat it); empty `&&` pieces are skipped; `name` without `=`
/// has an empty value.
pub fn parse_query(raw_query: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((n, v)) => (percent_decode(n, true), percent_decode(v, true)),
            None => (percent_decode(p, true), Vec::new()),
        })
        .collect()
}

/// The canonical query string of `params`, leaving out any parameter whose decoded name
/// equals `skip` (the presigned `X-Amz-Signature`): each name and value URI-encoded, sorted
/// by encoded name then encoded value, joined as `n=v&n=v`.
pub fn canonical_query(params: &[(Vec<u8>, Vec<u8>)], skip: Option<&str>) -> String {
    let mut encoded: Vec<(String, String)> = params
        .iter()
        .filter(|(n, _)| skip.is_none_or(|s| n.as_slice() != s.as_bytes()))
        .map(|(n, v)| {
            let mut en = String::with_capacity(n.len());
            uri_encode_into(n, false, &mut en);
            let mut ev = String::with_capacity(v.len());
            uri_encode_into(v, false, &mut ev);
            (en, ev)
        })
        .collect();
    encoded.sort();
    let mut out = String::new();
    for (i, (n, v)) in encoded.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(n);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Appends the canonical headers block (`name:value\n` per signed header) to `out`.
///
/// Values are trimmed of spaces and runs of spaces collapse to one; repeated headers are
/// joined with `,`. A signed header absent from the request contributes an empty value
/// (the signature then simply fails to match).
pub fn canonical_headers_into(headers: &HeaderMap, signed: &[&str], out: &mut Vec<u8>) {
    for name in signed {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        for (i, value) in headers.get_all(*name).iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            trim_all_into(value.as_bytes(), out);
        }
        out.push(b'\n');
    }
}

fn trim_all_into(value: &[u8], out: &mut Vec<u8>) {
    let start = value.iter().position(|&b| b != b' ').unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|&b| b != b' ')
        .map_or(start, |e| e + 1);
    let mut prev_space = false;
    for &b in &value[start..end] {
        if b == b' ' {
            if !prev_space {
                out.push(b);
            }
            prev_space = true;
        } else {
            out.push(b);
            prev_space = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_and_decode() {
        let mut s = String::new();
        uri_encode_into("a b/c~d+é".as_bytes(), false, &mut s);
        assert_eq!(s, "a%20b%2Fc~d%2B%C3%A9");
        assert_eq!(percent_decode("a%20b+c%zz%4", true), b"a b c%zz%4");
        assert_eq!(percent_decode("a+b", false), b"a+b");
        assert_eq!(reencoded_uri("/a b!/%7e"), "/a%20b%21/~");
        assert_eq!(reencoded_uri(""), "/");
    }

    #[test]
    fn query_is_sorted_and_encoded() {
        let p = parse_query("b=2&a=1&uploads&&a=0&x=%2b+y");
        assert_eq!(canonical_query(&p, None), "a=0&a=1&b=2&uploads=&x=%2B%20y");
        let p = parse_query("X-Amz-Signature=abc&k=v");
        assert_eq!(canonical_query(&p, Some("X-Amz-Signature")), "k=v");
    }

    #[test]
    fn header_values_are_trimmed() {
        let mut h = HeaderMap::new();
        h.append("x-a", "  one   two  ".parse().unwrap());
        h.append("x-a", "three".parse().unwrap());
        let mut out = Vec::new();
        canonical_headers_into(&h, &["x-a", "x-missing"], &mut out);
        assert_eq!(out, b"x-a:one two,three\nx-missing:\n");
    }
}
