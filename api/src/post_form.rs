//! Signing browser upload forms: what a server-side application (or `cairn presign-post`)
//! hands a browser so that it can upload one object with POST Object without ever seeing
//! a secret. The form's policy names exactly what it allows (the bucket, the key or its
//! prefix, fixed fields, fields the page fills in with a required prefix, the size range,
//! the redirect) and expires; it is signed with SigV4 ([`cairn_sigv4::sign_post_policy_v4`],
//! the function the server verifies with).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use cairn_sigv4::{post_credential, sign_post_policy_v4, POST_ALGORITHM};
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

/// What a form allows.
#[derive(Debug, Clone, Default)]
pub struct PostFormSpec {
    /// The S3 endpoint, e.g. `http://127.0.0.1:9000` (the form posts to `<endpoint>/<bucket>`).
    pub endpoint: String,
    pub bucket: String,
    /// The key; with `${filename}` in it, any key starting with what precedes it (the
    /// browser's file name takes its place).
    pub key: String,
    /// How long the form stays valid.
    pub expires_in: Duration,
    /// The sizes the file may have (`min..=max` bytes).
    pub content_length_range: Option<(u64, u64)>,
    /// Where the browser goes after an upload (303 with `bucket`, `key` and `etag`).
    pub redirect: Option<String>,
    /// 200, 201 or 204 (the default) when there is no redirect.
    pub success_action_status: Option<u16>,
    /// Fields sent as they are (`acl`, `Content-Type`, `x-amz-meta-*`, …).
    pub fields: Vec<(String, String)>,
    /// Fields the page fills in, which must start with the given prefix (`""`: any value).
    pub starts_with: Vec<(String, String)>,
    /// The signing region.
    pub region: String,
}

/// A signed form: where to post it and its fields, in order (the file goes last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPostForm {
    pub url: String,
    pub fields: Vec<(String, String)>,
    /// Fields for the page to fill in, with the prefix their value must start with.
    pub inputs: Vec<(String, String)>,
    /// The policy document, decoded (for people reading it).
    pub policy: Value,
}

/// Signs `spec` with the key `access_key`/`secret` at `now`.
pub fn sign_post_form(
    spec: &PostFormSpec,
    access_key: &str,
    secret: &str,
    now: OffsetDateTime,
) -> SignedPostForm {
    let date = format!(
        "{:04}{:02}{:02}",
        now.year(),
        u8::from(now.month()),
        now.day()
    );
    let amz_date = format!(
        "{date}T{:02}{:02}{:02}Z",
        now.hour(),
        now.minute(),
        now.second()
    );
    let credential = post_credential(access_key, &date, &spec.region);
    let expiration = now + spec.expires_in;
    let expiration = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        expiration.year(),
        u8::from(expiration.month()),
        expiration.day(),
        expiration.hour(),
        expiration.minute(),
        expiration.second()
    );

    let mut fields = vec![("key".to_string(), spec.key.clone())];
    let mut conditions = vec![json!({ "bucket": spec.bucket })];
    conditions.push(match spec.key.find("${filename}") {
        Some(at) => json!(["starts-with", "$key", &spec.key[..at]]),
        None => json!({ "key": spec.key }),
    });
    let mut fixed = spec.fields.clone();
    if let Some(url) = &spec.redirect {
        fixed.push(("success_action_redirect".into(), url.clone()));
    }
    if let Some(status) = spec.success_action_status {
        fixed.push(("success_action_status".into(), status.to_string()));
    }
    fixed.extend([
        ("x-amz-algorithm".to_string(), POST_ALGORITHM.to_string()),
        ("x-amz-credential".to_string(), credential),
        ("x-amz-date".to_string(), amz_date),
    ]);
    for (name, value) in fixed {
        conditions.push(json!({ name.clone(): value }));
        fields.push((name, value));
    }
    for (name, prefix) in &spec.starts_with {
        conditions.push(json!(["starts-with", format!("${name}"), prefix]));
    }
    if let Some((min, max)) = spec.content_length_range {
        conditions.push(json!(["content-length-range", min, max]));
    }
    let policy = json!({ "expiration": expiration, "conditions": conditions });
    let policy_b64 = BASE64.encode(policy.to_string());
    let signature = sign_post_policy_v4(secret, &date, &spec.region, &policy_b64);
    fields.push(("policy".into(), policy_b64));
    fields.push(("x-amz-signature".into(), signature));
    SignedPostForm {
        url: format!("{}/{}", spec.endpoint.trim_end_matches('/'), spec.bucket),
        fields,
        inputs: spec.starts_with.clone(),
        policy,
    }
}

impl SignedPostForm {
    /// `{"url": …, "fields": {…}, "inputs": {…}, "policy": {…}}`.
    pub fn to_json(&self) -> Value {
        let map = |pairs: &[(String, String)]| -> Value {
            Value::Object(
                pairs
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            )
        };
        json!({
            "url": self.url,
            "fields": map(&self.fields),
            "inputs": map(&self.inputs),
            "policy": self.policy,
        })
    }

    /// A page with the form: the signed fields hidden, a text input for each field the
    /// page fills in (pre-filled with its prefix), the file input (`file`, last) and a
    /// submit button (`#upload-submit`).
    pub fn to_html(&self) -> String {
        let mut out = String::from(
            "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>Upload</title></head>\n<body>\n",
        );
        out.push_str(&format!(
            "<form id=\"upload\" action=\"{}\" method=\"post\" enctype=\"multipart/form-data\">\n",
            escape(&self.url)
        ));
        for (name, value) in &self.fields {
            out.push_str(&format!(
                "  <input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
                escape(name),
                escape(value)
            ));
        }
        for (name, prefix) in &self.inputs {
            out.push_str(&format!(
                "  <label>{0} <input type=\"text\" name=\"{0}\" value=\"{1}\"></label><br>\n",
                escape(name),
                escape(prefix)
            ));
        }
        out.push_str(
            "  <input type=\"file\" name=\"file\" id=\"file\">\n  <button type=\"submit\" id=\"upload-submit\">Upload</button>\n</form>\n</body>\n</html>\n",
        );
        out
    }
}

/// Escapes text for an HTML attribute value or element content.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use cairn_sigv4::{verify_post_policy, PostSignature};

    use super::*;
    use crate::post_policy::{self, FormFields};

    fn spec() -> PostFormSpec {
        PostFormSpec {
            endpoint: "http://127.0.0.1:9000/".into(),
            bucket: "photos".into(),
            key: "uploads/${filename}".into(),
            expires_in: Duration::hours(1),
            content_length_range: Some((1, 1024)),
            redirect: Some("https://example.com/done?x=1".into()),
            success_action_status: None,
            fields: vec![("x-amz-meta-album".into(), "Summer \"24\" <b>".into())],
            starts_with: vec![("Content-Type".into(), "image/".into())],
            region: "eu-west-1".into(),
        }
    }

    /// The form the helper signs is one the server accepts (its signature verifies, its
    /// conditions hold for a browser's submission of it) and no other.
    #[test]
    fn a_signed_form_passes_the_servers_checks() {
        let now = OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap();
        let form = sign_post_form(&spec(), "AKID", "SECRET", now);
        assert_eq!(form.url, "http://127.0.0.1:9000/photos");
        let get = |n: &str| {
            form.fields
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
                .unwrap()
        };
        let sig = PostSignature::V4 {
            algorithm: get("x-amz-algorithm"),
            credential: get("x-amz-credential"),
            date: get("x-amz-date"),
            signature: get("x-amz-signature"),
        };
        let keys = HashMap::from([("AKID".to_string(), "SECRET".to_string())]);
        assert_eq!(
            verify_post_policy(get("policy"), &sig, &keys).as_deref(),
            Ok("AKID")
        );
        let policy = post_policy::parse(get("policy")).unwrap();
        policy.check_expiration(now).unwrap();
        assert!(policy.check_expiration(now + Duration::hours(1)).is_err());
        assert_eq!(policy.length_range(u64::MAX), (1, 1024));
        let mut submitted = FormFields::new();
        for (k, v) in &form.fields {
            submitted.insert(k.clone(), v.clone()).unwrap();
        }
        submitted
            .insert("Content-Type".into(), "image/png".into())
            .unwrap();
        policy
            .check_fields(&submitted, "photos", "uploads/cat.png")
            .unwrap();
        assert!(policy
            .check_fields(&submitted, "photos", "other/cat.png")
            .is_err());
        assert!(policy
            .check_fields(&submitted, "videos", "uploads/cat.png")
            .is_err());
        let mut extra = submitted.clone();
        extra.insert("acl".into(), "public-read".into()).unwrap();
        assert!(policy
            .check_fields(&extra, "photos", "uploads/cat.png")
            .is_err());

        let html = form.to_html();
        assert!(
            html.contains("action=\"http://127.0.0.1:9000/photos\""),
            "{html}"
        );
        assert!(
            html.contains("value=\"Summer &quot;24&quot; &lt;b&gt;\""),
            "{html}"
        );
        assert!(html.find("name=\"policy\"") < html.find("name=\"file\""));
        assert_eq!(form.to_json()["fields"]["key"], "uploads/${filename}");
    }
}
