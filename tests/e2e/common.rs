//! Clients for the server under test.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sdk_s3::config::{BehaviorVersion, Region};
use aws_sdk_s3::Client;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
    SignatureLocation, SigningSettings, UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
pub use cairn_tests::*;

pub fn client_with(server: &Server, access: &str, secret: &str, region: &str) -> Client {
    client_at(&server.endpoint(), access, secret, region)
}

/// A root-key client for an S3 endpoint URL (path style).
pub fn client_for(endpoint: &str) -> Client {
    client_at(endpoint, ACCESS_KEY, SECRET_KEY, "us-east-1")
}

fn client_at(endpoint: &str, access: &str, secret: &str, region: &str) -> Client {
    let creds = Credentials::new(access, secret, None, None, "cairn-tests");
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(creds)
        .force_path_style(true)
        .build();
    Client::from_conf(conf)
}

pub fn client(server: &Server) -> Client {
    client_with(server, ACCESS_KEY, SECRET_KEY, "us-east-1")
}

/// A root-key client that does not retry, so that a test sees each answer (a 503 itself).
pub fn no_retry(server: &Server) -> Client {
    let conf = client(server)
        .config()
        .to_builder()
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .build();
    Client::from_conf(conf)
}

pub fn md5_hex(data: &[u8]) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(data))
}

/// The S3 error code of an SDK error, if the server answered with one.
pub fn code_of<E, R>(err: &aws_sdk_s3::error::SdkError<E, R>) -> Option<String>
where
    E: aws_sdk_s3::error::ProvideErrorMetadata,
{
    err.as_service_error()
        .and_then(|e| e.code())
        .map(str::to_string)
}

/// PUTs `data` at `bucket/key`, panicking on failure.
pub async fn put_bytes(s3: &Client, bucket: &str, key: &str, data: &[u8]) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(aws_sdk_s3::primitives::ByteStream::from(data.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT {bucket}/{key}: {e:?}"));
}

/// GETs `bucket/key` whole, panicking on failure.
pub async fn get_bytes(s3: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let got = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {bucket}/{key}: {e:?}"));
    got.body.collect().await.unwrap().into_bytes().to_vec()
}

/// Sends a request signed with aws-sigv4 (independent of Cairn's code) as the root key at
/// `time`, with `host` as its Host header: signs `body` and then sends `sent`.
#[allow(clippy::too_many_arguments)]
pub fn signed_raw_to(
    server: &Server,
    host: &str,
    method: &str,
    path_and_query: &str,
    extra: &[(&str, &str)],
    body: &[u8],
    sent: &[u8],
    time: SystemTime,
) -> RawResponse {
    let url = format!("http://{host}{path_and_query}");
    // aws-sigv4 adds x-amz-content-sha256 (the body's SHA-256) and x-amz-date itself.
    let mut headers: Vec<(String, String)> = vec![("host".into(), host.to_string())];
    headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let identity = Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "t").into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(time)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(
        method,
        url.as_str(),
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    for (k, v) in instructions.headers() {
        headers.push((k.to_string(), v.to_string()));
    }
    let mut req = format!("{method} {path_and_query} HTTP/1.1\r\n");
    for (k, v) in &headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        sent.len()
    ));
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(sent);
    raw_request(server.s3, &bytes).unwrap()
}

/// Percent-encodes all but the unreserved characters, as a query value.
pub fn query_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// Signs a request with aws-sigv4 (independent of Cairn's code): the headers to add for
/// header signing, or the query parameters to add for a presigned URL. `headers` must hold
/// every header the signature is to cover, `host` included.
#[allow(clippy::too_many_arguments)]
pub fn sigv4(
    access: &str,
    secret: &str,
    method: &str,
    host: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    body: &[u8],
    presign: bool,
) -> Vec<(String, String)> {
    let url = if query.is_empty() {
        format!("http://{host}{path}")
    } else {
        format!("http://{host}{path}?{query}")
    };
    let identity = Credentials::new(access, secret, None, None, "cairn-tests").into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    if presign {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(900));
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let body = if presign {
        SignableBody::UnsignedPayload
    } else {
        SignableBody::Bytes(body)
    };
    let signable = SignableRequest::new(
        method,
        url.as_str(),
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        body,
    )
    .unwrap_or_else(|e| panic!("signable {method} {url}: {e}"));
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    if presign {
        instructions
            .params()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    } else {
        instructions
            .headers()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}
