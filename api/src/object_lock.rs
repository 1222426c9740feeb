//! Object Lock at the S3 edge: Put/GetObjectLockConfiguration (`?object-lock`),
//! Put/GetObjectRetention (`?retention`), Put/GetObjectLegalHold (`?legal-hold`), the lock a
//! new version gets from its request's `x-amz-object-lock-*` headers or the bucket's default
//! retention ([`new_version_lock`]), and who may bypass GOVERNANCE retention.
//!
//! What a lock forbids is decided once, in the metadata state machine
//! (`cairn_metadata::object_lock`): this module only parses, validates and answers.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cairn_metadata::object_lock::{
    format_timestamp, parse_timestamp, DefaultRetention, ObjectLock, ObjectLockConfig, Retention,
    RetentionMode, LEGAL_HOLD_HEADER, MODE_HEADER, UNTIL_HEADER,
};
use cairn_metadata::{BucketConfigKind, VersionSel};
use cairn_types::clock::now_ms;
use cairn_types::ObjectKey;
use serde::Deserialize;

use crate::access::Authorized;
use crate::auth::read_small_body;
use crate::error::{S3Error, S3ErrorCode};
use crate::headers::{header_str, set};
use crate::lookup::version_param;
use crate::query::Query;
use crate::xml::{self, XmlWriter};
use crate::{xml_response, ApiState};

/// Largest lock, retention or legal-hold document accepted.
const MAX_BODY: usize = 64 << 10;

/// The header asking that GOVERNANCE retention be bypassed.
pub const BYPASS_HEADER: &str = "x-amz-bypass-governance-retention";

fn malformed() -> S3Error {
    S3Error::malformed_xml()
}

fn missing_lock_configuration() -> S3Error {
    S3Error::new(
        S3ErrorCode::InvalidRequest,
        "Bucket is missing Object Lock Configuration",
    )
}

/// S3 requires a body digest on Object Lock writes: `Content-MD5` or a flexible checksum
/// (whose value the body reader checks).
fn require_digest(h: &HeaderMap) -> Result<(), S3Error> {
    let has = h.contains_key("content-md5")
        || h.contains_key("x-amz-sdk-checksum-algorithm")
        || h.contains_key("x-amz-trailer")
        || h.keys().any(|k| k.as_str().starts_with("x-amz-checksum-"));
    if has {
        Ok(())
    } else {
        Err(S3Error::new(
            S3ErrorCode::InvalidRequest,
            "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters",
        ))
    }
}

#[derive(Debug, Deserialize)]
struct LockConfigurationXml {
    #[serde(rename = "ObjectLockEnabled", default)]
    enabled: Option<String>,
    #[serde(rename = "Rule", default)]
    rule: Option<RuleXml>,
}

#[derive(Debug, Deserialize)]
struct RuleXml {
    #[serde(rename = "DefaultRetention", default)]
    default_retention: Option<DefaultRetentionXml>,
}

#[derive(Debug, Deserialize)]
struct DefaultRetentionXml {
    #[serde(rename = "Mode", default)]
    mode: Option<String>,
    #[serde(rename = "Days", default)]
    days: Option<String>,
    #[serde(rename = "Years", default)]
    years: Option<String>,
}

/// Parses a PutObjectLockConfiguration body.
pub fn parse_configuration(body: &[u8]) -> Result<ObjectLockConfig, S3Error> {
    let doc: LockConfigurationXml = xml::parse(body).ok_or_else(malformed)?;
    if doc.enabled.as_deref().map(str::trim) != Some("Enabled") {
        return Err(malformed());
    }
    let Some(rule) = doc.rule else {
        return Ok(ObjectLockConfig::default());
    };
    let d = rule.default_retention.ok_or_else(malformed)?;
    let mode = d
        .mode
        .as_deref()
        .map(str::trim)
        .and_then(RetentionMode::parse)
        .ok_or_else(malformed)?;
    let period = |v: Option<String>| -> Result<Option<u32>, S3Error> {
        let Some(v) = v else { return Ok(None) };
        let n: i64 = v.trim().parse().map_err(|_| malformed())?;
        match u32::try_from(n) {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(S3Error::new(
                S3ErrorCode::InvalidRetentionPeriod,
                "Default retention period must be a positive integer value",
            )),
        }
    };
    let (days, years) = (period(d.days)?, period(d.years)?);
    if days.is_some() == years.is_some() {
        return Err(malformed());
    }
    if years.is_some_and(|y| y > 100) || days.is_some_and(|d| d > 36_500) {
        return Err(S3Error::new(
            S3ErrorCode::InvalidRetentionPeriod,
            "Default retention period is too large (at most 100 years)",
        ));
    }
    Ok(ObjectLockConfig {
        default_retention: Some(DefaultRetention { mode, days, years }),
    })
}

/// The configuration document S3 answers with.
fn configuration_xml(cfg: &ObjectLockConfig) -> String {
    let mut w = XmlWriter::new();
    w.open_root("ObjectLockConfiguration");
    w.elem("ObjectLockEnabled", "Enabled");
    if let Some(d) = cfg.default_retention {
        w.open("Rule");
        w.open("DefaultRetention");
        w.elem("Mode", d.mode.as_str());
        if let Some(days) = d.days {
            w.elem("Days", &days.to_string());
        }
        if let Some(years) = d.years {
            w.elem("Years", &years.to_string());
        }
        w.close("DefaultRetention");
        w.close("Rule");
    }
    w.close("ObjectLockConfiguration");
    w.finish()
}

pub async fn put_configuration(
    st: &Arc<ApiState>,
    a: &Authorized,
    req: Request,
) -> Result<Response, S3Error> {
    let bucket = &a.bucket()?.name;
    require_digest(req.headers())?;
    let body = read_small_body(a.caller(), req, MAX_BODY).await?;
    let cfg = parse_configuration(&body)?;
    // The versioning state as loaded with the gate (the state machine checks again).
    if a.gate().object_lock.is_none() && !a.gate().versioned() {
        return Err(S3Error::new(
            S3ErrorCode::InvalidBucketState,
            "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration",
        ));
    }
    st.objects
        .set_bucket_config(bucket, BucketConfigKind::ObjectLock, Some(cfg.encode()))
        .await?;
    Ok(StatusCode::OK.into_response())
}

pub async fn get_configuration(a: &Authorized) -> Result<Response, S3Error> {
    match &a.gate().object_lock {
        Some(cfg) => Ok(xml_response(configuration_xml(cfg))),
        None => Err(S3Error::new(
            S3ErrorCode::ObjectLockConfigurationNotFoundError,
            "Object Lock configuration does not exist for this bucket",
        )
        .with("BucketName", a.bucket()?.name.as_str())),
    }
}

/// The lock a new version written by a request with headers `h` gets: the request's
/// `x-amz-object-lock-*` headers, else the bucket's default retention. Refused on a bucket
/// without Object Lock, and (as S3) without a body digest where `digest_required`.
pub fn new_version_lock(
    a: &Authorized,
    h: &HeaderMap,
    digest_required: bool,
) -> Result<ObjectLock, S3Error> {
    let mode = header_str(h, MODE_HEADER);
    let until = header_str(h, UNTIL_HEADER);
    let hold = header_str(h, LEGAL_HOLD_HEADER);
    let asked = mode.is_some() || until.is_some() || hold.is_some();
    let Some(cfg) = &a.gate().object_lock else {
        if asked {
            return Err(missing_lock_configuration());
        }
        return Ok(ObjectLock::default());
    };
    let invalid = |msg: &str, name: &str| {
        S3Error::new(S3ErrorCode::InvalidArgument, msg).with("ArgumentName", name.to_string())
    };
    let now = now_ms();
    let retention = match (mode, until) {
        (None, None) => cfg.default_retention.map(|d| d.at(now)),
        (Some(m), Some(u)) => {
            let mode = RetentionMode::parse(m.trim())
                .ok_or_else(|| invalid("Unknown wormMode directive.", MODE_HEADER))?;
            let until_ms = parse_timestamp(&u).ok_or_else(|| {
                invalid(
                    "The retain until date must be provided in ISO 8601 format",
                    UNTIL_HEADER,
                )
            })?;
            if until_ms <= now {
                return Err(invalid(
                    "The retain until date must be in the future!",
                    UNTIL_HEADER,
                ));
            }
            Some(Retention { mode, until_ms })
        }
        _ => return Err(invalid(
            "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied",
            MODE_HEADER,
        )),
    };
    let legal_hold = match hold.as_deref().map(str::trim) {
        None => None,
        Some("ON") => Some(true),
        Some("OFF") => Some(false),
        Some(_) => {
            return Err(invalid(
                "Legal Hold must be either of 'ON' or 'OFF'",
                LEGAL_HOLD_HEADER,
            ))
        }
    };
    let lock = ObjectLock {
        retention,
        legal_hold,
    };
    if digest_required && lock.is_locked(Some(now)) {
        require_digest(h)?;
    }
    Ok(lock)
}

/// Whether the request asks to bypass GOVERNANCE retention and its caller may (the bucket's
/// owner, or whom a policy allows `s3:BypassGovernanceRetention`; an explicit Deny wins).
pub async fn bypass_governance(
    st: &Arc<ApiState>,
    a: &Authorized,
    h: &HeaderMap,
    key: &ObjectKey,
) -> Result<bool, S3Error> {
    let asked = header_str(h, BYPASS_HEADER).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if !asked {
        return Ok(false);
    }
    a.may(st, key, "s3:BypassGovernanceRetention").await
}

#[derive(Debug, Deserialize)]
struct RetentionXml {
    #[serde(rename = "Mode", default)]
    mode: Option<String>,
    #[serde(rename = "RetainUntilDate", default)]
    until: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LegalHoldXml {
    #[serde(rename = "Status", default)]
    status: Option<String>,
}

/// A Put…Retention or Put…LegalHold request on a bucket with Object Lock: the version it
/// names, its headers and its body.
async fn lock_request<T: serde::de::DeserializeOwned>(
    a: &Authorized,
    q: &Query,
    req: Request,
) -> Result<(VersionSel, HeaderMap, T), S3Error> {
    if a.gate().object_lock.is_none() {
        return Err(missing_lock_configuration());
    }
    require_digest(req.headers())?;
    let sel = version_param(q)?;
    let headers = req.headers().clone();
    let body = read_small_body(a.caller(), req, MAX_BODY).await?;
    let doc = xml::parse(&body).ok_or_else(malformed)?;
    Ok((sel, headers, doc))
}

/// 200, naming the version changed.
fn changed(id: Option<String>) -> Response {
    let mut resp = StatusCode::OK.into_response();
    if let Some(id) = id {
        set(resp.headers_mut(), "x-amz-version-id", &id);
    }
    resp
}

pub async fn put_retention(
    st: &Arc<ApiState>,
    a: &Authorized,
    key: &ObjectKey,
    q: &Query,
    req: Request,
) -> Result<Response, S3Error> {
    let bucket = &a.bucket()?.name;
    let (sel, headers, doc): (_, _, RetentionXml) = lock_request(a, q, req).await?;
    let bypass = bypass_governance(st, a, &headers, key).await?;
    let retention = match (doc.mode, doc.until) {
        (None, None) => None,
        (Some(m), Some(u)) => {
            let mode = RetentionMode::parse(m.trim()).ok_or_else(malformed)?;
            let until_ms = parse_timestamp(&u).ok_or_else(malformed)?;
            if until_ms <= now_ms() {
                return Err(S3Error::new(
                    S3ErrorCode::InvalidArgument,
                    "The retain until date must be in the future!",
                ));
            }
            Some(Retention { mode, until_ms })
        }
        _ => return Err(malformed()),
    };
    let id = st
        .objects
        .set_object_retention(bucket, key, sel, retention, bypass)
        .await?;
    Ok(changed(id))
}

/// The lock of the version a Get…Retention or Get…LegalHold request names.
async fn version_lock(
    st: &Arc<ApiState>,
    a: &Authorized,
    key: &ObjectKey,
    q: &Query,
) -> Result<ObjectLock, S3Error> {
    let bucket = &a.bucket()?.name;
    if a.gate().object_lock.is_none() {
        return Err(missing_lock_configuration());
    }
    let found = st
        .objects
        .object_version(bucket, key, &version_param(q)?)
        .await?;
    Ok(ObjectLock::of(&found.record))
}

fn no_lock(what: &str) -> S3Error {
    S3Error::new(
        S3ErrorCode::NoSuchObjectLockConfiguration,
        format!("The specified object does not have a {what} configuration"),
    )
}

pub async fn get_retention(
    st: &Arc<ApiState>,
    a: &Authorized,
    key: &ObjectKey,
    q: &Query,
) -> Result<Response, S3Error> {
    let Some(r) = version_lock(st, a, key, q).await?.retention else {
        return Err(no_lock("ObjectLock"));
    };
    let mut w = XmlWriter::new();
    w.open_root("Retention");
    w.elem("Mode", r.mode.as_str());
    w.elem("RetainUntilDate", &format_timestamp(r.until_ms));
    w.close("Retention");
    Ok(xml_response(w.finish()))
}

pub async fn put_legal_hold(
    st: &Arc<ApiState>,
    a: &Authorized,
    key: &ObjectKey,
    q: &Query,
    req: Request,
) -> Result<Response, S3Error> {
    let bucket = &a.bucket()?.name;
    let (sel, _, doc): (_, _, LegalHoldXml) = lock_request(a, q, req).await?;
    let on = match doc.status.as_deref().map(str::trim) {
        Some("ON") => true,
        Some("OFF") => false,
        _ => return Err(malformed()),
    };
    let id = st
        .objects
        .set_object_legal_hold(bucket, key, sel, on)
        .await?;
    Ok(changed(id))
}

pub async fn get_legal_hold(
    st: &Arc<ApiState>,
    a: &Authorized,
    key: &ObjectKey,
    q: &Query,
) -> Result<Response, S3Error> {
    let Some(on) = version_lock(st, a, key, q).await?.legal_hold else {
        return Err(no_lock("LegalHold"));
    };
    let mut w = XmlWriter::new();
    w.open_root("LegalHold");
    w.elem("Status", if on { "ON" } else { "OFF" });
    w.close("LegalHold");
    Ok(xml_response(w.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(inner: &str) -> Vec<u8> {
        format!("<ObjectLockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{inner}</ObjectLockConfiguration>").into_bytes()
    }

    fn code(r: Result<ObjectLockConfig, S3Error>) -> &'static str {
        r.unwrap_err().code.as_str()
    }

    #[test]
    fn configurations() {
        let rule = |r: &str| {
            doc(&format!("<ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention>{r}</DefaultRetention></Rule>"))
        };
        let c = parse_configuration(&rule("<Mode>GOVERNANCE</Mode><Days>1</Days>")).unwrap();
        let d = c.default_retention.unwrap();
        assert_eq!(
            (d.mode, d.days, d.years),
            (RetentionMode::Governance, Some(1), None)
        );
        let xml = configuration_xml(&c);
        assert!(
            xml.contains("<Days>1</Days>") && !xml.contains("Years"),
            "{xml}"
        );
        assert!(parse_configuration(&rule("<Mode>COMPLIANCE</Mode><Years>1</Years>")).is_ok());
        assert_eq!(
            code(parse_configuration(&rule(
                "<Mode>GOVERNANCE</Mode><Days>1</Days><Years>1</Years>"
            ))),
            "MalformedXML"
        );
        assert_eq!(
            code(parse_configuration(&rule(
                "<Mode>GOVERNANCE</Mode><Days>0</Days>"
            ))),
            "InvalidRetentionPeriod"
        );
        assert_eq!(
            code(parse_configuration(&rule(
                "<Mode>GOVERNANCE</Mode><Years>-1</Years>"
            ))),
            "InvalidRetentionPeriod"
        );
        assert_eq!(
            code(parse_configuration(&rule(
                "<Mode>governance</Mode><Days>1</Days>"
            ))),
            "MalformedXML"
        );
        assert_eq!(
            code(parse_configuration(&rule("<Mode>GOVERNANCE</Mode>"))),
            "MalformedXML"
        );
        assert_eq!(
            code(parse_configuration(&doc(
                "<ObjectLockEnabled>Disabled</ObjectLockEnabled>"
            ))),
            "MalformedXML"
        );
        let bare =
            parse_configuration(&doc("<ObjectLockEnabled>Enabled</ObjectLockEnabled>")).unwrap();
        assert_eq!(bare.default_retention, None);
        assert!(parse_configuration(b"<ObjectLockConfiguration>").is_err());
    }
}
