//! Sending a request as a given key: header-signed, presigned or unsigned, with the
//! independent aws-sigv4 signer.

use super::*;

/// Sends a request as `key` (`None`: unsigned), header-signed or presigned, with the
/// independent aws-sigv4 signer; returns the response.
#[allow(clippy::too_many_arguments)]
pub(super) fn send(
    server: &Server,
    key: Option<(&str, &str)>,
    presign: bool,
    method: &Method,
    path: &str,
    query: &str,
    extra: &[(String, String)],
    body: &[u8],
) -> RawResponse {
    let host = server.s3.to_string();
    let mut path_and_query = if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    };
    let mut headers: Vec<(String, String)> = vec![("host".into(), host.clone())];
    headers.extend(extra.iter().cloned());
    if let Some((ak, sk)) = key {
        let added = sigv4(
            ak,
            sk,
            method.as_str(),
            &host,
            path,
            query,
            &headers,
            body,
            presign,
        );
        if presign {
            for (k, v) in added {
                path_and_query.push(if path_and_query.contains('?') {
                    '&'
                } else {
                    '?'
                });
                path_and_query.push_str(&format!("{}={}", query_encode(&k), query_encode(&v)));
            }
        } else {
            headers.extend(added);
        }
    }
    raw_send(server, method, &path_and_query, &headers, body)
}

pub(super) fn raw_send(
    server: &Server,
    method: &Method,
    path_and_query: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> RawResponse {
    let mut req = format!("{method} {path_and_query} HTTP/1.1\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    raw_request(server.s3, &bytes).expect("request")
}

/// The query of the owner's presigned GetObject URL of `bucket/obj`, to be replayed.
pub(super) fn presigned_query(server: &Server, bucket: &str) -> String {
    presign(server, "GET", &format!("/{bucket}/obj"))
}

/// The query of the owner's presigned URL for `method path` (signed headers: `host`).
pub(super) fn presign(server: &Server, method: &str, path: &str) -> String {
    let host = server.s3.to_string();
    let headers = [("host".to_string(), host.clone())];
    sigv4(
        ACCESS_KEY, SECRET_KEY, method, &host, path, "", &headers, b"", true,
    )
    .iter()
    .map(|(k, v)| format!("{}={}", query_encode(k), query_encode(v)))
    .collect::<Vec<_>>()
    .join("&")
}
