//! Request authentication: `Authorization: AWS4-HMAC-SHA256 ...` headers and presigned
//! (`X-Amz-*` query parameter) URLs.

use std::collections::HashMap;

use http::HeaderMap;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::canonical::{
    canonical_headers_into, canonical_query, canonical_uri, is_hex64, parse_query, reencoded_uri,
    sign_hex, signatures_equal, signing_key,
};
use crate::dates::{parse_amz_date, parse_http_date, MAX_PRESIGNED_EXPIRES, MAX_SKEW};
use crate::{sigv2, AuthError};

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
const STREAMING_SIGNED: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
const STREAMING_SIGNED_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
const STREAMING_UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
const UNSUPPORTED_MECHANISM: &str =
    "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.";
const QUERY_PARAMS_REQUIRED: &str = "Query-string authentication version 4 requires the \
     X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, \
     and X-Amz-Expires parameters.";

/// The parts of an HTTP request that authentication looks at.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// The method, e.g. `PUT`.
    pub method: &'a str,
    /// The path exactly as received, still percent-encoded (e.g. `/bucket/a%20b`).
    pub raw_path: &'a str,
    /// The query string exactly as received, without the `?`.
    pub raw_query: Option<&'a str>,
    /// All request headers (must include `host` when the client signed it).
    pub headers: &'a HeaderMap,
}

/// Looks up the secret key of an access key id.
pub trait SecretLookup {
    /// The secret key for `access_key`, or `None` if the key is unknown.
    fn secret_key(&self, access_key: &str) -> Option<String>;
}

impl SecretLookup for HashMap<String, String> {
    fn secret_key(&self, access_key: &str) -> Option<String> {
        self.get(access_key).cloned()
    }
}

impl<F: Fn(&str) -> Option<String>> SecretLookup for F {
    fn secret_key(&self, access_key: &str) -> Option<String> {
        self(access_key)
    }
}

/// How the request body is protected, from `x-amz-content-sha256`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadMode {
    /// `UNSIGNED-PAYLOAD` (or a presigned URL without `x-amz-content-sha256`).
    Unsigned,
    /// A hex SHA-256 of the body was signed: the caller must verify the body hashes to it
    /// (see [`crate::verify_body`]).
    Sha256([u8; 32]),
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: aws-chunked body with signed chunks.
    StreamingSigned,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`: signed chunks plus a signed trailer.
    StreamingSignedTrailer,
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: aws-chunked body, unsigned chunks, trailer.
    StreamingUnsignedTrailer,
}

impl PayloadMode {
    /// Parses an `x-amz-content-sha256` value; unknown values are `InvalidArgument`.
    pub fn parse(value: &str) -> Result<Self, AuthError> {
        match value {
            UNSIGNED_PAYLOAD => Ok(PayloadMode::Unsigned),
            STREAMING_SIGNED => Ok(PayloadMode::StreamingSigned),
            STREAMING_SIGNED_TRAILER => Ok(PayloadMode::StreamingSignedTrailer),
            STREAMING_UNSIGNED_TRAILER => Ok(PayloadMode::StreamingUnsignedTrailer),
            v if is_hex64(v) => {
                let mut out = [0u8; 32];
                hex::decode_to_slice(v, &mut out).map_err(|_| bad_content_sha256())?;
                Ok(PayloadMode::Sha256(out))
            }
            _ => Err(bad_content_sha256()),
        }
    }

    /// Whether the body uses `aws-chunked` framing (decode it with
    /// [`crate::decode_aws_chunked`]).
    pub fn is_streaming(&self) -> bool {
        matches!(
            self,
            PayloadMode::StreamingSigned
                | PayloadMode::StreamingSignedTrailer
                | PayloadMode::StreamingUnsignedTrailer
        )
    }
}

fn bad_content_sha256() -> AuthError {
    AuthError::InvalidArgument(
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, \
         STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, or a \
         valid sha256 value."
            .into(),
    )
}

/// What verifying `aws-chunked` chunk signatures needs from the request signature.
#[derive(Clone, PartialEq, Eq)]
pub struct ChunkSigningContext {
    /// The SigV4 signing key derived from the secret, scope date, region and service.
    pub signing_key: [u8; 32],
    /// The request timestamp, `YYYYMMDDTHHMMSSZ`.
    pub datetime: String,
    /// The credential scope, `date/region/s3/aws4_request`.
    pub scope: String,
    /// The request's own signature, which seeds the chunk signature chain.
    pub seed_signature: String,
}

impl ChunkSigningContext {
    /// Builds a context from a secret key and the request's scope and signature.
    pub fn new(secret: &str, datetime: &str, region: &str, seed_signature: &str) -> Self {
        let date = datetime.get(..8).unwrap_or(datetime);
        ChunkSigningContext {
            signing_key: signing_key(secret, date, region, "s3"),
            datetime: datetime.to_owned(),
            scope: format!("{date}/{region}/s3/aws4_request"),
            seed_signature: seed_signature.to_owned(),
        }
    }
}

impl std::fmt::Debug for ChunkSigningContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkSigningContext")
            .field("signing_key", &"<redacted>")
            .field("datetime", &self.datetime)
            .field("scope", &self.scope)
            .field("seed_signature", &self.seed_signature)
            .finish()
    }
}

/// The outcome of a successful [`authenticate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authenticated {
    /// The request carried no authentication at all; the caller decides (normally it
    /// answers `AccessDenied`).
    Anonymous,
    /// A valid SigV4 or SigV2 signature (header or presigned URL).
    Signed {
        /// The access key id that signed.
        access_key: String,
        /// The region from the credential scope (not checked against any configuration);
        /// empty for SigV2, which has no scope.
        region: String,
        /// How the body is protected; the caller must enforce it.
        payload: PayloadMode,
        /// For the signed streaming modes, what chunk verification needs.
        chunk_ctx: Option<ChunkSigningContext>,
    },
}

pub(crate) struct Credential<'a> {
    pub(crate) access_key: &'a str,
    pub(crate) date: &'a str,
    pub(crate) region: &'a str,
}

/// Authenticates a request signed with AWS Signature Version 4 (or the legacy Version 2)
/// for S3.
///
/// * `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`
///   with `x-amz-date` (or `Date`) within 15 minutes of `now` and a mandatory
///   `x-amz-content-sha256`;
/// * presigned URLs (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`, `X-Amz-Expires`,
///   `X-Amz-SignedHeaders`, `X-Amz-Signature`), payload `UNSIGNED-PAYLOAD` unless an
///   `x-amz-content-sha256` header is sent;
/// * SigV2: `Authorization: AWS AKID:signature` (with `Date` or `x-amz-date` within 15
///   minutes of `now`) or query-string authentication (`AWSAccessKeyId`, `Signature`,
///   `Expires` in unix seconds, refused once past). Signed with HMAC-SHA1, which covers
///   neither the body nor the region: the result has an empty `region` and
///   [`PayloadMode::Unsigned`];
/// * none of these: `Ok(Authenticated::Anonymous)`.
///
/// The canonical URI is `raw_path` as received; if that fails, the path decoded and
/// re-encoded with the AWS rules is tried too (same key, so this widens nothing).
///
/// As AWS does, SigV4 requests (header-signed and presigned) must sign `host` and every
/// `x-amz-*` header they carry, `x-amz-content-sha256` excepted (its value is the payload
/// line of the canonical request, so it is covered anyway); otherwise the answer is
/// `AccessDenied`. Without this, headers added to a presigned URL after signing (e.g.
/// `x-amz-copy-source`, `x-amz-acl`) would change what the request does. SigV2 signs all
/// `x-amz-*` headers by construction.
pub fn authenticate(
    req: &RequestParts<'_>,
    secrets: &dyn SecretLookup,
    now: OffsetDateTime,
) -> Result<Authenticated, AuthError> {
    let params = req.raw_query.map(parse_query).unwrap_or_default();
    let has_param = |name: &str| params.iter().any(|(n, _)| n.as_slice() == name.as_bytes());
    let query_auth = has_param("X-Amz-Algorithm");
    let v2_query = sigv2::has_v2_query(&params);
    match req.headers.get(http::header::AUTHORIZATION) {
        Some(_) if query_auth || v2_query => Err(AuthError::InvalidArgument(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, \
             Signature query string parameter or the Authorization header should be specified"
                .into(),
        )),
        Some(value) => {
            let value = value
                .to_str()
                .map_err(|_| malformed("invalid characters"))?;
            if sigv2::is_v2_authorization(value) {
                sigv2::header_auth(req, value, secrets, now)
            } else {
                header_auth(req, &params, value, secrets, now)
            }
        }
        None if query_auth => presigned_auth(req, &params, secrets, now),
        None if v2_query => sigv2::query_auth(req, &params, secrets, now),
        None => Ok(Authenticated::Anonymous),
    }
}

fn malformed(msg: &str) -> AuthError {
    AuthError::AuthorizationHeaderMalformed(msg.to_owned())
}

fn query_error(msg: &str) -> AuthError {
    AuthError::AuthorizationQueryParametersError(msg.to_owned())
}

pub(crate) fn parse_credential<'a>(
    value: &'a str,
    err: fn(&str) -> AuthError,
) -> Result<Credential<'a>, AuthError> {
    let mut parts = value.rsplitn(5, '/');
    let (Some(terminator), Some(service), Some(region), Some(date), Some(access_key)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(err("the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\"."));
    };
    if access_key.is_empty() || region.is_empty() || date.len() != 8 {
        return Err(err("the Credential is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\"."));
    }
    if service != "s3" {
        return Err(err(&format!(
            "incorrect service \"{service}\". This endpoint belongs to \"s3\"."
        )));
    }
    if terminator != "aws4_request" {
        return Err(err(&format!(
            "incorrect terminal \"{terminator}\". This endpoint uses \"aws4_request\"."
        )));
    }
    Ok(Credential {
        access_key,
        date,
        region,
    })
}

fn format_amz_date(t: OffsetDateTime) -> String {
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The request timestamp of a header-signed request, as `(parsed, YYYYMMDDTHHMMSSZ)`.
fn request_datetime(headers: &HeaderMap) -> Result<(OffsetDateTime, String), AuthError> {
    let denied = || {
        AuthError::AccessDenied(
            "AWS authentication requires a valid Date or x-amz-date header".into(),
        )
    };
    if let Some(v) = headers.get("x-amz-date") {
        let s = v.to_str().map_err(|_| denied())?.trim();
        let t = parse_amz_date(s).ok_or_else(denied)?;
        return Ok((t, s.to_owned()));
    }
    let v = headers.get(http::header::DATE).ok_or_else(denied)?;
    let t = parse_http_date(v.to_str().map_err(|_| denied())?).ok_or_else(denied)?;
    Ok((t, format_amz_date(t)))
}

fn header_auth(
    req: &RequestParts<'_>,
    params: &[(Vec<u8>, Vec<u8>)],
    value: &str,
    secrets: &dyn SecretLookup,
    now: OffsetDateTime,
) -> Result<Authenticated, AuthError> {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if scheme != ALGORITHM {
        return Err(if scheme.starts_with("AWS") {
            AuthError::InvalidRequest(UNSUPPORTED_MECHANISM.into())
        } else {
            AuthError::InvalidArgument("Unsupported Authorization Type".into())
        });
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (k, v) = part.split_once('=').ok_or_else(|| {
            malformed(&format!(
                "the authorization component \"{part}\" is malformed."
            ))
        })?;
        match k.trim() {
            "Credential" => credential = Some(v.trim()),
            "SignedHeaders" => signed_headers = Some(v.trim()),
            "Signature" => signature = Some(v.trim()),
            _ => {}
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(malformed(
            "the authorization header requires Credential, SignedHeaders and Signature.",
        ));
    };
    let cred = parse_credential(credential, malformed)?;
    let (when, datetime) = request_datetime(req.headers)?;
    if (now - when).abs() > MAX_SKEW {
        return Err(AuthError::RequestTimeTooSkewed);
    }
    if datetime.get(..8) != Some(cred.date) {
        return Err(malformed(
            "Invalid credential date. Date is not the same as X-Amz-Date.",
        ));
    }
    let payload_hash = match req.headers.get("x-amz-content-sha256") {
        Some(v) => v.to_str().map_err(|_| bad_content_sha256())?.trim(),
        None => {
            return Err(AuthError::InvalidRequest(
                "Missing required header for this request: x-amz-content-sha256".into(),
            ))
        }
    };
    let payload = PayloadMode::parse(payload_hash)?;
    let secret = secrets
        .secret_key(cred.access_key)
        .ok_or(AuthError::InvalidAccessKeyId)?;
    let key = signing_key(&secret, cred.date, cred.region, "s3");
    let scope = format!("{}/{}/s3/aws4_request", cred.date, cred.region);
    let check = Check {
        req,
        params,
        skip_param: None,
        signed_headers,
        payload_hash,
        datetime: &datetime,
        scope: &scope,
        key: &key,
    };
    check.verify(signature)?;
    let chunk_ctx = matches!(
        payload,
        PayloadMode::StreamingSigned | PayloadMode::StreamingSignedTrailer
    )
    .then(|| ChunkSigningContext {
        signing_key: key,
        datetime: datetime.clone(),
        scope: scope.clone(),
        seed_signature: signature.to_owned(),
    });
    Ok(Authenticated::Signed {
        access_key: cred.access_key.to_owned(),
        region: cred.region.to_owned(),
        payload,
        chunk_ctx,
    })
}

fn presigned_auth(
    req: &RequestParts<'_>,
    params: &[(Vec<u8>, Vec<u8>)],
    secrets: &dyn SecretLookup,
    now: OffsetDateTime,
) -> Result<Authenticated, AuthError> {
    let get = |name: &str| -> Result<&str, AuthError> {
        let (_, v) = params
            .iter()
            .find(|(n, _)| n.as_slice() == name.as_bytes())
            .ok_or_else(|| query_error(QUERY_PARAMS_REQUIRED))?;
        std::str::from_utf8(v).map_err(|_| query_error(&format!("{name} is not valid UTF-8")))
    };
    if get("X-Amz-Algorithm")? != ALGORITHM {
        return Err(query_error(
            "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"",
        ));
    }
    let (credential, datetime, expires, signed_headers, signature) = (
        get("X-Amz-Credential")?,
        get("X-Amz-Date")?,
        get("X-Amz-Expires")?,
        get("X-Amz-SignedHeaders")?,
        get("X-Amz-Signature")?,
    );
    let cred = parse_credential(credential, query_error)?;
    let when = parse_amz_date(datetime).ok_or_else(|| {
        query_error("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
    })?;
    if datetime.get(..8) != Some(cred.date) {
        return Err(query_error(
            "Invalid credential date. Date is not the same as X-Amz-Date.",
        ));
    }
    let expires: i64 = expires
        .parse()
        .map_err(|_| query_error("X-Amz-Expires should be a number"))?;
    if expires < 0 {
        // A URL that expired before it was signed (botocore writes a negative ExpiresIn as is).
        return Err(AuthError::AccessDenied("Request has expired".into()));
    }
    if expires > MAX_PRESIGNED_EXPIRES as i64 {
        return Err(query_error(
            "X-Amz-Expires must be less than a week (in seconds) that is 604800",
        ));
    }
    if when - now > MAX_SKEW {
        return Err(AuthError::AccessDenied("Request is not valid yet".into()));
    }
    // `expires` is within 0..=604800; the sum can only overflow near year 9999, where `when`
    // is far in the future and was refused above.
    let expiry = when.checked_add(Duration::seconds(expires));
    if expiry.is_none_or(|expiry| now > expiry) {
        return Err(AuthError::AccessDenied("Request has expired".into()));
    }
    let payload_hash = match req.headers.get("x-amz-content-sha256") {
        Some(v) => v.to_str().map_err(|_| bad_content_sha256())?.trim(),
        None => UNSIGNED_PAYLOAD,
    };
    let payload = PayloadMode::parse(payload_hash)?;
    let secret = secrets
        .secret_key(cred.access_key)
        .ok_or(AuthError::InvalidAccessKeyId)?;
    let key = signing_key(&secret, cred.date, cred.region, "s3");
    let scope = format!("{}/{}/s3/aws4_request", cred.date, cred.region);
    let check = Check {
        req,
        params,
        skip_param: Some("X-Amz-Signature"),
        signed_headers,
        payload_hash,
        datetime,
        scope: &scope,
        key: &key,
    };
    check.verify(signature)?;
    Ok(Authenticated::Signed {
        access_key: cred.access_key.to_owned(),
        region: cred.region.to_owned(),
        payload,
        chunk_ctx: None,
    })
}

/// Everything needed to recompute one request signature.
struct Check<'a> {
    req: &'a RequestParts<'a>,
    params: &'a [(Vec<u8>, Vec<u8>)],
    skip_param: Option<&'a str>,
    signed_headers: &'a str,
    payload_hash: &'a str,
    datetime: &'a str,
    scope: &'a str,
    key: &'a [u8; 32],
}

/// The message AWS answers with when a header the request carries is not signed.
const UNSIGNED_HEADERS: &str = "There were headers present in the request which were not signed";

/// A header of the request that need not be listed in `SignedHeaders` although it starts
/// with `x-amz-`: its value is the payload line of the canonical request.
const UNSIGNED_ALLOWED: &str = "x-amz-content-sha256";

/// Refuses a request whose signed header `names` (lowercase) leave out `host` or an
/// `x-amz-*` header present in `headers` (except [`UNSIGNED_ALLOWED`]).
fn check_signed_headers(headers: &HeaderMap, names: &[&str]) -> Result<(), AuthError> {
    if !names.contains(&"host") {
        return Err(AuthError::AccessDenied("host must be signed".into()));
    }
    // `HeaderMap` names are lowercase; each distinct name is looked at once.
    let unsigned = headers.keys().any(|name| {
        let name = name.as_str();
        name.starts_with("x-amz-") && name != UNSIGNED_ALLOWED && !names.contains(&name)
    });
    if unsigned {
        return Err(AuthError::AccessDenied(UNSIGNED_HEADERS.into()));
    }
    Ok(())
}

impl Check<'_> {
    fn verify(&self, provided: &str) -> Result<(), AuthError> {
        let names: Vec<String> = self
            .signed_headers
            .split(';')
            .map(|n| n.trim().to_ascii_lowercase())
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        check_signed_headers(self.req.headers, &names)?;
        if names.iter().any(|n| n.is_empty()) {
            return Err(AuthError::SignatureDoesNotMatch);
        }
        let query = canonical_query(self.params, self.skip_param);
        let raw_uri = canonical_uri(self.req.raw_path);
        if signatures_equal(&self.signature(raw_uri, &query, &names), provided) {
            return Ok(());
        }
        let reencoded = reencoded_uri(self.req.raw_path);
        if reencoded != raw_uri
            && signatures_equal(&self.signature(&reencoded, &query, &names), provided)
        {
            return Ok(());
        }
        Err(AuthError::SignatureDoesNotMatch)
    }

    fn signature(&self, uri: &str, query: &str, names: &[&str]) -> String {
        let creq = self.canonical_request(uri, query, names);
        let sts = format!(
            "{ALGORITHM}\n{}\n{}\n{}",
            self.datetime,
            self.scope,
            hex::encode(Sha256::digest(&creq))
        );
        sign_hex(self.key, sts.as_bytes())
    }

    fn canonical_request(&self, uri: &str, query: &str, names: &[&str]) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(self.req.method.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(uri.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(query.as_bytes());
        out.push(b'\n');
        canonical_headers_into(self.req.headers, names, &mut out);
        out.push(b'\n');
        out.extend_from_slice(names.join(";").as_bytes());
        out.push(b'\n');
        out.extend_from_slice(self.payload_hash.as_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse() {
        let t = parse_http_date("Fri, 24 May 2013 00:00:00 GMT").unwrap();
        assert_eq!(format_amz_date(t), "20130524T000000Z");
        assert_eq!(parse_amz_date("20130524T000000Z"), Some(t));
        assert_eq!(parse_amz_date("2013-05-24T00:00:00Z"), None);
        assert_eq!(parse_http_date("yesterday"), None);
    }
}
