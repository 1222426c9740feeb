//! The policy document of a browser form upload (POST Object): base64 JSON with an
//! `expiration` (ISO 8601, required) and `conditions` (required), each condition one of
//!
//! * `{"field": "value"}` or `["eq", "$field", "value"]`: the field is exactly `value`;
//! * `["starts-with", "$field", "prefix"]`: the field starts with `prefix` (`""`: any value);
//! * `["content-length-range", min, max]`: the file is `min..=max` bytes.
//!
//! Condition names and operators are case-insensitive, values case-sensitive; the
//! document's own keys (`expiration`, `conditions`) are case-sensitive. `$bucket` is the
//! bucket the form was posted to, `$key` the key after `${filename}` was replaced; a field
//! the form lacks has the value `""`. Every form field must be named by a condition, but
//! for the ones that cannot be ([`is_exempt`]).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::{S3Error, S3ErrorCode};

/// A form's fields (all but the file), in the order sent.
#[derive(Debug, Default, Clone)]
pub struct FormFields(Vec<(String, String)>);

impl FormFields {
    pub fn new() -> FormFields {
        FormFields(Vec::new())
    }

    /// Adds a field; a second field of the same name (case-insensitively) is an error.
    pub fn insert(&mut self, name: String, value: String) -> Result<(), S3Error> {
        if self.get(&name).is_some() {
            return Err(S3Error::new(
                S3ErrorCode::InvalidArgument,
                format!("POST requests may contain only one field named '{name}'."),
            )
            .with("ArgumentName", name));
        }
        self.0.push((name, value));
        Ok(())
    }

    /// The value of the field `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every field as `(name as sent, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// One condition of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The field (lowercase, without `$`) is exactly this value.
    Eq { field: String, value: String },
    /// The field starts with this prefix.
    StartsWith { field: String, prefix: String },
    /// The file's length is within `min..=max`.
    LengthRange { min: u64, max: u64 },
}

/// A parsed policy document.
#[derive(Debug, Clone)]
pub struct Policy {
    pub expiration: OffsetDateTime,
    pub conditions: Vec<Condition>,
}

fn invalid(msg: impl std::fmt::Display) -> S3Error {
    S3Error::new(
        S3ErrorCode::InvalidPolicyDocument,
        format!("Invalid Policy: {msg}"),
    )
}

fn denied(msg: impl std::fmt::Display) -> S3Error {
    S3Error::new(
        S3ErrorCode::AccessDenied,
        format!("Invalid according to Policy: {msg}"),
    )
}

/// Form fields no condition needs to name: the policy and its signature, the file, the
/// `x-ignore-` fields, and the checksums of the file (which only protect its content).
pub fn is_exempt(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "policy" | "awsaccesskeyid" | "signature" | "x-amz-signature" | "file"
    ) || n.starts_with("x-ignore-")
        || n.starts_with("x-amz-checksum-")
}

/// Parses the `policy` field: base64 of a JSON document.
pub fn parse(policy_b64: &str) -> Result<Policy, S3Error> {
    let compact: String = policy_b64
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let raw = BASE64
        .decode(compact.as_bytes())
        .map_err(|_| invalid("Policy could not be base64-decoded."))?;
    let doc: Value = serde_json::from_slice(&raw).map_err(|_| invalid("Invalid JSON."))?;
    let doc = doc
        .as_object()
        .ok_or_else(|| invalid("The policy is not a JSON object."))?;
    let expiration = match doc.get("expiration") {
        None => return Err(invalid("Policy missing expiration.")),
        Some(Value::String(s)) => parse_expiration(s)
            .ok_or_else(|| invalid(format!("Invalid 'expiration' value: '{s}'")))?,
        Some(other) => return Err(invalid(format!("Invalid 'expiration' value: '{other}'"))),
    };
    let list = match doc.get("conditions") {
        None => return Err(invalid("Policy missing conditions.")),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(invalid("Policy conditions must be a list.")),
    };
    let conditions = list.iter().map(condition).collect::<Result<_, _>>()?;
    Ok(Policy {
        expiration,
        conditions,
    })
}

/// An ISO 8601 date and time with a `T` between them and a zone (`Z` or an offset),
/// seconds' fractions allowed: `2030-01-01T00:00:00Z`, `2030-01-01T00:00:00.000+01:00`.
fn parse_expiration(s: &str) -> Option<OffsetDateTime> {
    if s.as_bytes().get(10) != Some(&b'T') {
        return None;
    }
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

fn condition(c: &Value) -> Result<Condition, S3Error> {
    match c {
        Value::Object(map) => {
            let mut it = map.iter();
            let (Some((name, value)), None) = (it.next(), it.next()) else {
                return Err(invalid(
                    "Invalid Simple-Condition: Simple-Conditions must have exactly one property specified.",
                ));
            };
            let Value::String(value) = value else {
                return Err(invalid(format!(
                    "Invalid Simple-Condition: the value of '{name}' must be a string."
                )));
            };
            let field = name.strip_prefix('$').unwrap_or(name).to_ascii_lowercase();
            Ok(Condition::Eq {
                field,
                value: value.clone(),
            })
        }
        Value::Array(items) => {
            let op = items
                .first()
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
                .ok_or_else(|| invalid(format!("Invalid condition {c}")))?;
            match op.as_str() {
                "eq" | "starts-with" => {
                    let [_, Value::String(name), Value::String(value)] = items.as_slice() else {
                        return Err(invalid(format!(
                            "Condition {c} must be [\"{op}\", \"$field\", \"value\"]."
                        )));
                    };
                    let field = name
                        .strip_prefix('$')
                        .ok_or_else(|| {
                            invalid(format!("Condition {c}: the field must start with '$'."))
                        })?
                        .to_ascii_lowercase();
                    Ok(if op == "eq" {
                        Condition::Eq {
                            field,
                            value: value.clone(),
                        }
                    } else {
                        Condition::StartsWith {
                            field,
                            prefix: value.clone(),
                        }
                    })
                }
                "content-length-range" => {
                    let bad = || invalid(format!("Invalid content-length-range condition {c}"));
                    let [_, min, max] = items.as_slice() else {
                        return Err(bad());
                    };
                    let (min, max) = (length(min).ok_or_else(bad)?, length(max).ok_or_else(bad)?);
                    if min > max {
                        return Err(bad());
                    }
                    Ok(Condition::LengthRange { min, max })
                }
                _ => Err(invalid(format!("Invalid condition operator in {c}"))),
            }
        }
        _ => Err(invalid(format!("Invalid condition {c}"))),
    }
}

/// A non-negative length: a JSON integer or a string of digits.
fn length(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl Policy {
    /// AccessDenied once the policy has expired.
    pub fn check_expiration(&self, now: OffsetDateTime) -> Result<(), S3Error> {
        if now >= self.expiration {
            return Err(denied("Policy expired."));
        }
        Ok(())
    }

    /// Checks every condition (but the length range, see [`Policy::length_range`]) against
    /// the form posted to `bucket` whose key is `key` (after `${filename}`), and that every
    /// field is named by a condition.
    pub fn check_fields(
        &self,
        fields: &FormFields,
        bucket: &str,
        key: &str,
    ) -> Result<(), S3Error> {
        let value = |field: &str| -> String {
            match field {
                "bucket" => bucket.to_string(),
                "key" => key.to_string(),
                f => fields.get(f).unwrap_or("").to_string(),
            }
        };
        for c in &self.conditions {
            let (ok, shown) = match c {
                Condition::Eq { field, value: want } => (
                    value(field) == *want,
                    format!("[\"eq\", \"${field}\", \"{want}\"]"),
                ),
                Condition::StartsWith { field, prefix } => (
                    value(field).starts_with(prefix.as_str()),
                    format!("[\"starts-with\", \"${field}\", \"{prefix}\"]"),
                ),
                Condition::LengthRange { .. } => continue,
            };
            if !ok {
                return Err(denied(format!("Policy Condition failed: {shown}")));
            }
        }
        for (name, _) in fields.iter() {
            if is_exempt(name) {
                continue;
            }
            let lower = name.to_ascii_lowercase();
            let named = self.conditions.iter().any(|c| match c {
                Condition::Eq { field, .. } | Condition::StartsWith { field, .. } => {
                    *field == lower
                }
                Condition::LengthRange { .. } => false,
            });
            if !named {
                return Err(denied(format!("Extra input fields: {name}")));
            }
        }
        Ok(())
    }

    /// The file lengths the policy allows (every range must hold), within `0..=max`.
    pub fn length_range(&self, max: u64) -> (u64, u64) {
        self.conditions
            .iter()
            .fold((0, max), |(lo, hi), c| match c {
                Condition::LengthRange { min, max } => (lo.max(*min), hi.min(*max)),
                _ => (lo, hi),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(json: &str) -> String {
        BASE64.encode(json)
    }

    fn policy(conditions: &str) -> Policy {
        parse(&b64(&format!(
            r#"{{"expiration": "2030-01-01T00:00:00Z", "conditions": [{conditions}]}}"#
        )))
        .unwrap()
    }

    fn form(pairs: &[(&str, &str)]) -> FormFields {
        let mut f = FormFields::new();
        for (n, v) in pairs {
            f.insert(n.to_string(), v.to_string()).unwrap();
        }
        f
    }

    fn code(r: Result<impl std::fmt::Debug, S3Error>) -> S3ErrorCode {
        r.unwrap_err().code
    }

    #[test]
    fn documents_that_are_not_policies() {
        let bad = |json: &str| code(parse(&b64(json)));
        let when = r#""expiration": "2030-01-01T00:00:00Z""#;
        assert_eq!(code(parse("%%%")), S3ErrorCode::InvalidPolicyDocument);
        assert_eq!(bad("[1]"), S3ErrorCode::InvalidPolicyDocument);
        assert_eq!(bad("{not json"), S3ErrorCode::InvalidPolicyDocument);
        assert_eq!(
            bad(r#"{"conditions": []}"#),
            S3ErrorCode::InvalidPolicyDocument
        );
        assert_eq!(
            bad(&format!("{{{when}}}")),
            S3ErrorCode::InvalidPolicyDocument
        );
        // The document's own keys are case-sensitive.
        assert_eq!(
            bad(&format!(r#"{{{when}, "CONDITIONS": []}}"#)),
            S3ErrorCode::InvalidPolicyDocument
        );
        assert_eq!(
            bad(r#"{"EXPIRATION": "2030-01-01T00:00:00Z", "conditions": []}"#),
            S3ErrorCode::InvalidPolicyDocument
        );
        // Not ISO 8601 with a T (what Python's str(datetime) gives).
        assert_eq!(
            bad(r#"{"expiration": "2030-01-01 00:00:00.123+00:00", "conditions": []}"#),
            S3ErrorCode::InvalidPolicyDocument
        );
        for c in [
            "{}",
            r#"{"a": "b", "c": "d"}"#,
            r#"{"a": 1}"#,
            r#"["eq", "key", "x"]"#,
            r#"["eq", "$key"]"#,
            r#"["starts-with", "$key", 5]"#,
            r#"["content-length-range", 0]"#,
            r#"["content-length-range", -1, 0]"#,
            r#"["content-length-range", 10, 1]"#,
            r#"["in", "$key", "x"]"#,
            "7",
        ] {
            assert_eq!(
                bad(&format!(r#"{{{when}, "conditions": [{c}]}}"#)),
                S3ErrorCode::InvalidPolicyDocument,
                "{c}"
            );
        }
        // Base64 with line breaks (as some encoders wrap it) is still the document.
        let wrapped = b64(&format!(r#"{{{when}, "conditions": []}}"#));
        let (a, b) = wrapped.split_at(10);
        assert!(parse(&format!("{a}\n{b}")).is_ok());
    }

    #[test]
    fn expiration() {
        let p = policy("");
        let before = OffsetDateTime::parse("2029-12-31T23:59:59Z", &Rfc3339).unwrap();
        assert!(p.check_expiration(before).is_ok());
        let at = OffsetDateTime::parse("2030-01-01T00:00:00Z", &Rfc3339).unwrap();
        let e = p.check_expiration(at).unwrap_err();
        assert_eq!(e.code, S3ErrorCode::AccessDenied);
        assert_eq!(e.message, "Invalid according to Policy: Policy expired.");
        // Fractions and offsets are ISO 8601 too.
        let frac = parse(&b64(
            r#"{"expiration": "2030-01-01T01:00:00.000+01:00", "conditions": []}"#,
        ))
        .unwrap();
        assert_eq!(frac.expiration, at);
    }

    #[test]
    fn conditions_hold_or_name_what_failed() {
        let p = policy(
            r#"{"bUcKeT": "photos"}, ["StArTs-WiTh", "$KeY", "user/"], {"acl": "private"},
               ["eq", "$x-amz-meta-tag", "Blue"], ["starts-with", "$Content-Type", ""]"#,
        );
        let ok = form(&[
            ("acl", "private"),
            ("X-Amz-Meta-Tag", "Blue"),
            ("content-type", "image/png"),
        ]);
        p.check_fields(&ok, "photos", "user/a.png").unwrap();
        let e = p.check_fields(&ok, "other", "user/a.png").unwrap_err();
        assert_eq!(e.code, S3ErrorCode::AccessDenied);
        assert!(
            e.message.contains(r#"["eq", "$bucket", "photos"]"#),
            "{}",
            e.message
        );
        assert!(p.check_fields(&ok, "photos", "admin/a.png").is_err());
        // Values are case-sensitive.
        let blue = form(&[("acl", "private"), ("x-amz-meta-tag", "blue")]);
        assert!(p.check_fields(&blue, "photos", "user/a").is_err());
        // A missing field is "": it fails an eq, passes an empty starts-with.
        let no_meta = form(&[("acl", "private")]);
        assert!(p.check_fields(&no_meta, "photos", "user/a").is_err());
        let meta = form(&[("acl", "private"), ("x-amz-meta-tag", "Blue")]);
        p.check_fields(&meta, "photos", "user/a").unwrap();
    }

    #[test]
    fn every_field_must_be_named() {
        let p = policy(r#"{"bucket": "b"}, ["starts-with", "$key", ""]"#);
        let f = form(&[
            ("key", "k"),
            ("Policy", "…"),
            ("X-Amz-Signature", "…"),
            ("AWSAccessKeyId", "…"),
            ("signature", "…"),
            ("x-ignore-note", "anything"),
            ("x-amz-checksum-sha256", "…"),
            ("bucket", "b"),
        ]);
        p.check_fields(&f, "b", "k").unwrap();
        let mut extra = f.clone();
        extra
            .insert("X-Amz-Meta-Color".into(), "red".into())
            .unwrap();
        let e = p.check_fields(&extra, "b", "k").unwrap_err();
        assert_eq!(e.code, S3ErrorCode::AccessDenied);
        assert_eq!(
            e.message,
            "Invalid according to Policy: Extra input fields: X-Amz-Meta-Color"
        );
        // The SigV4 fields are not exempt: the policy must name them.
        let mut v4 = form(&[("key", "k")]);
        v4.insert("x-amz-credential".into(), "AK/…".into()).unwrap();
        assert!(p.check_fields(&v4, "b", "k").is_err());
        // Field names are unique, case-insensitively.
        let mut dup = form(&[("key", "a")]);
        assert_eq!(
            dup.insert("KEY".into(), "b".into()).unwrap_err().code,
            S3ErrorCode::InvalidArgument
        );
    }

    #[test]
    fn length_ranges_intersect() {
        let p =
            policy(r#"["content-length-range", 10, 100], ["content-length-range", "20", "200"]"#);
        assert_eq!(p.length_range(1000), (20, 100));
        assert_eq!(policy("").length_range(1000), (0, 1000));
        assert_eq!(
            policy(r#"["content-length-range", 0, 5000]"#).length_range(1000),
            (0, 1000)
        );
    }
}
