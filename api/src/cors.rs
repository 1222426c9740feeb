//! Bucket CORS: the configuration document (parse, validate, render), preflight (`OPTIONS`)
//! evaluation, and the `Access-Control-*` headers added to actual requests from an allowed
//! origin. The first rule matching origin, method and requested headers wins, as in S3.

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use cairn_metadata::BucketConfigKind;
use cairn_types::BucketName;
use serde::{Deserialize, Serialize};

use crate::access::Authorized;
use crate::error::{S3Error, S3ErrorCode};
use crate::xml::XmlWriter;
use crate::ApiState;

/// Most rules in one configuration (as S3).
pub const MAX_RULES: usize = 100;
const METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "HEAD"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CorsRule {
    pub id: Option<String>,
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<String>,
    pub allowed_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age_seconds: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct ConfigXml {
    #[serde(rename = "CORSRule", default)]
    rules: Vec<RuleXml>,
}

#[derive(Debug, Deserialize)]
struct RuleXml {
    #[serde(rename = "ID", default)]
    id: Option<String>,
    #[serde(rename = "AllowedOrigin", default)]
    allowed_origins: Vec<String>,
    #[serde(rename = "AllowedMethod", default)]
    allowed_methods: Vec<String>,
    #[serde(rename = "AllowedHeader", default)]
    allowed_headers: Vec<String>,
    #[serde(rename = "ExposeHeader", default)]
    expose_headers: Vec<String>,
    #[serde(rename = "MaxAgeSeconds", default)]
    max_age_seconds: Option<u32>,
}

fn invalid(msg: impl Into<String>) -> S3Error {
    S3Error::new(S3ErrorCode::InvalidRequest, msg)
}

/// Parses and validates a `CORSConfiguration` document.
pub fn parse_config(body: &[u8]) -> Result<Vec<CorsRule>, S3Error> {
    let doc: ConfigXml = crate::xml::parse(body).ok_or_else(S3Error::malformed_xml)?;
    if doc.rules.is_empty() || doc.rules.len() > MAX_RULES {
        return Err(S3Error::malformed_xml());
    }
    let mut rules = Vec::new();
    for r in doc.rules {
        if r.allowed_origins.is_empty() || r.allowed_methods.is_empty() {
            return Err(S3Error::malformed_xml());
        }
        for m in &r.allowed_methods {
            if !METHODS.contains(&m.as_str()) {
                return Err(invalid(format!(
                    "Found unsupported HTTP method in CORS config. Unsupported method is {m}"
                )));
            }
        }
        for o in &r.allowed_origins {
            if o.matches('*').count() > 1 {
                return Err(invalid(format!(
                    "AllowedOrigin \"{o}\" can not have more than one wildcard."
                )));
            }
        }
        for h in &r.allowed_headers {
            if h.matches('*').count() > 1 {
                return Err(invalid(format!(
                    "AllowedHeader \"{h}\" can not have more than one wildcard."
                )));
            }
        }
        rules.push(CorsRule {
            id: r.id,
            allowed_origins: r.allowed_origins,
            allowed_methods: r.allowed_methods,
            allowed_headers: r.allowed_headers,
            expose_headers: r.expose_headers,
            max_age_seconds: r.max_age_seconds,
        });
    }
    Ok(rules)
}

pub fn config_xml(rules: &[CorsRule]) -> String {
    let mut w = XmlWriter::new();
    w.open_root("CORSConfiguration");
    for r in rules {
        w.open("CORSRule");
        if let Some(id) = &r.id {
            w.elem("ID", id);
        }
        for (name, list) in [
            ("AllowedHeader", &r.allowed_headers),
            ("AllowedMethod", &r.allowed_methods),
            ("AllowedOrigin", &r.allowed_origins),
            ("ExposeHeader", &r.expose_headers),
        ] {
            for v in list {
                w.elem(name, v);
            }
        }
        if let Some(age) = r.max_age_seconds {
            w.elem("MaxAgeSeconds", &age.to_string());
        }
        w.close("CORSRule");
    }
    w.close("CORSConfiguration");
    w.finish()
}

/// Whether `value` matches `pattern`, which may hold one `*` standing for any run of
/// characters.
fn wildcard(pattern: &str, value: &str, ignore_case: bool) -> bool {
    let (p, v) = if ignore_case {
        (pattern.to_ascii_lowercase(), value.to_ascii_lowercase())
    } else {
        (pattern.to_string(), value.to_string())
    };
    match p.split_once('*') {
        None => p == v,
        Some((pre, post)) => {
            v.len() >= pre.len() + post.len() && v.starts_with(pre) && v.ends_with(post)
        }
    }
}

impl CorsRule {
    fn allows(&self, origin: &str, method: &str, headers: &[String]) -> bool {
        self.allowed_origins
            .iter()
            .any(|o| wildcard(o, origin, false))
            && self.allowed_methods.iter().any(|m| m == method)
            && headers.iter().all(|h| {
                self.allowed_headers
                    .iter()
                    .any(|pattern| wildcard(pattern, h, true))
            })
    }

    /// The `Access-Control-*` headers for an allowed request from `origin`.
    fn headers(&self, origin: &str, requested_headers: &[String]) -> Vec<(&'static str, String)> {
        let any_origin = self.allowed_origins.iter().any(|o| o == "*");
        let mut out = vec![
            (
                "access-control-allow-origin",
                if any_origin {
                    "*".to_string()
                } else {
                    origin.to_string()
                },
            ),
            (
                "access-control-allow-methods",
                self.allowed_methods.join(", "),
            ),
            (
                "vary",
                "Origin, Access-Control-Request-Headers, Access-Control-Request-Method".into(),
            ),
        ];
        if !any_origin {
            out.push(("access-control-allow-credentials", "true".into()));
        }
        if !requested_headers.is_empty() {
            out.push(("access-control-allow-headers", requested_headers.join(", ")));
        }
        if !self.expose_headers.is_empty() {
            out.push((
                "access-control-expose-headers",
                self.expose_headers.join(", "),
            ));
        }
        if let Some(age) = self.max_age_seconds {
            out.push(("access-control-max-age", age.to_string()));
        }
        out
    }
}

pub async fn load_rules(
    st: &Arc<ApiState>,
    bucket: &BucketName,
) -> Result<Option<Vec<CorsRule>>, S3Error> {
    match st
        .objects
        .bucket_config(bucket, BucketConfigKind::Cors)
        .await?
    {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| S3Error::new(S3ErrorCode::InternalError, format!("stored CORS: {e}"))),
    }
}

fn forbidden(msg: &str) -> S3Error {
    S3Error::new(S3ErrorCode::CorsForbidden, msg)
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// Answers a preflight `OPTIONS` request for `bucket` (unauthenticated, as browsers send
/// it without credentials).
pub async fn preflight(
    st: &Arc<ApiState>,
    _: &Authorized,
    bucket: &BucketName,
    headers: &HeaderMap,
) -> Result<Response, S3Error> {
    let (Some(origin), Some(method)) = (
        header(headers, "origin"),
        header(headers, "access-control-request-method"),
    ) else {
        return Err(S3Error::new(
            S3ErrorCode::BadRequest,
            "Insufficient information. Origin request header needed.",
        ));
    };
    crate::access::load_bucket(st, bucket).await?;
    let Some(rules) = load_rules(st, bucket).await? else {
        return Err(forbidden(
            "CORSResponse: CORS is not enabled for this bucket.",
        ));
    };
    let requested: Vec<String> = header(headers, "access-control-request-headers")
        .map(|v| {
            v.split(',')
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let Some(rule) = rules.iter().find(|r| r.allows(origin, method, &requested)) else {
        return Err(forbidden(
            "CORSResponse: This CORS request is not allowed. This is usually because the evaluation of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
        ));
    };
    let mut resp = StatusCode::OK.into_response();
    for (name, value) in rule.headers(origin, &requested) {
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(name, v);
        }
    }
    Ok(resp)
}

/// Adds `Access-Control-*` headers to the response of an actual request that carries an
/// `Origin` allowed by the bucket's rules for its method.
pub async fn decorate(
    st: &Arc<ApiState>,
    bucket: &BucketName,
    origin: &str,
    method: &Method,
    resp: &mut Response,
) {
    let Ok(Some(rules)) = load_rules(st, bucket).await else {
        return;
    };
    if let Some(rule) = rules
        .iter()
        .find(|r| r.allows(origin, method.as_str(), &[]))
    {
        for (name, value) in rule.headers(origin, &[]) {
            if let Ok(v) = HeaderValue::from_str(&value) {
                resp.headers_mut().insert(name, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard("*", "http://a.example", false));
        assert!(wildcard(
            "http://*.example.com",
            "http://www.example.com",
            false
        ));
        assert!(!wildcard(
            "http://*.example.com",
            "https://www.example.com",
            false
        ));
        assert!(!wildcard(
            "http://a.example",
            "http://a.example.evil",
            false
        ));
        assert!(wildcard("x-amz-*", "X-Amz-Date", true));
        assert!(!wildcard("ab*ba", "aba", false));
    }

    #[test]
    fn parses_validates_and_matches() {
        let body = br#"<CORSConfiguration><CORSRule><AllowedOrigin>http://*.example.com</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod><AllowedHeader>x-amz-*</AllowedHeader><ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>600</MaxAgeSeconds></CORSRule><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>HEAD</AllowedMethod></CORSRule></CORSConfiguration>"#;
        let rules = parse_config(body).unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(parse_config(config_xml(&rules).as_bytes()).unwrap(), rules);
        let h = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(rules[0].allows("http://app.example.com", "PUT", &h(&["x-amz-date"])));
        assert!(!rules[0].allows("http://app.example.com", "PUT", &h(&["authorization"])));
        assert!(!rules[0].allows("http://app.example.com", "DELETE", &[]));
        assert!(rules[1].allows("http://anything", "HEAD", &[]));
        let hdrs = rules[1].headers("http://anything", &[]);
        assert!(hdrs.contains(&("access-control-allow-origin", "*".into())));

        let bad_method = br#"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>"#;
        assert_eq!(
            parse_config(bad_method).unwrap_err().code,
            S3ErrorCode::InvalidRequest
        );
        let no_origin = br#"<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>"#;
        assert_eq!(
            parse_config(no_origin).unwrap_err().code,
            S3ErrorCode::MalformedXML
        );
        assert!(parse_config(b"<CORSConfiguration></CORSConfiguration>").is_err());
        let two_stars = br#"<CORSConfiguration><CORSRule><AllowedOrigin>*.*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>"#;
        assert!(parse_config(two_stars).is_err());
    }
}
