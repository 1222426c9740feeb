//! Browser form uploads (S3's POST Object): the form carries a base64 policy document and
//! a signature of exactly that base64 text, made with the uploader's secret. Nothing else
//! of the request is signed; what the policy allows is for the caller to check.
//!
//! * SigV4: fields `x-amz-algorithm` (`AWS4-HMAC-SHA256`), `x-amz-credential`
//!   (`AKID/YYYYMMDD/REGION/s3/aws4_request`), `x-amz-date` (`YYYYMMDDTHHMMSSZ`, on the
//!   credential's day) and `x-amz-signature`: lowercase hex
//!   `HMAC-SHA256(signing key of the credential's scope, policy)`.
//! * SigV2: fields `AWSAccessKeyId` and `signature`: `base64(HMAC-SHA1(secret, policy))`.
//!
//! The signing functions here are used by servers (to verify) and by the tools that hand
//! out signed forms (to sign), so both always agree.

use crate::canonical::{sign_hex, signatures_equal, signing_key};
use crate::dates::parse_amz_date;
use crate::verify::parse_credential;
use crate::{sigv2, AuthError, SecretLookup};

/// The one algorithm a SigV4 form may name.
pub const POST_ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The signature fields of a form, as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostSignature<'a> {
    /// `x-amz-algorithm`, `x-amz-credential`, `x-amz-date`, `x-amz-signature`.
    V4 {
        algorithm: &'a str,
        credential: &'a str,
        date: &'a str,
        signature: &'a str,
    },
    /// `AWSAccessKeyId`, `signature`.
    V2 {
        access_key: &'a str,
        signature: &'a str,
    },
}

/// The SigV4 signature of a base64 policy: lowercase hex, for the scope
/// `date` (`YYYYMMDD`) / `region` / `s3`.
pub fn sign_post_policy_v4(secret: &str, date: &str, region: &str, policy_b64: &str) -> String {
    sign_hex(
        &signing_key(secret, date, region, "s3"),
        policy_b64.as_bytes(),
    )
}

/// The SigV2 signature of a base64 policy: `base64(HMAC-SHA1(secret, policy))`.
pub fn sign_post_policy_v2(secret: &str, policy_b64: &str) -> String {
    sigv2::sign(secret, policy_b64.as_bytes())
}

/// The `x-amz-credential` of a SigV4 form: `AKID/YYYYMMDD/REGION/s3/aws4_request`.
pub fn post_credential(access_key: &str, date: &str, region: &str) -> String {
    format!("{access_key}/{date}/{region}/s3/aws4_request")
}

/// Verifies a form's signature of `policy_b64` (the `policy` field exactly as sent) and
/// returns the access key that signed it. An unknown (or disabled) key is
/// `InvalidAccessKeyId`, a wrong signature `SignatureDoesNotMatch`, malformed signature
/// fields `InvalidArgument`. Signatures are compared in constant time.
pub fn verify_post_policy(
    policy_b64: &str,
    sig: &PostSignature<'_>,
    secrets: &dyn SecretLookup,
) -> Result<String, AuthError> {
    match *sig {
        PostSignature::V4 {
            algorithm,
            credential,
            date,
            signature,
        } => {
            if algorithm != POST_ALGORITHM {
                return Err(AuthError::InvalidArgument(format!(
                    "Unsupported x-amz-algorithm {algorithm:?}: only {POST_ALGORITHM} is \
                     supported"
                )));
            }
            let cred = parse_credential(credential.trim(), |m| {
                AuthError::InvalidArgument(format!("x-amz-credential: {m}"))
            })?;
            let date = date.trim();
            if parse_amz_date(date).is_none() {
                return Err(AuthError::InvalidArgument(
                    "x-amz-date must be of the form YYYYMMDDTHHMMSSZ".into(),
                ));
            }
            if !date.starts_with(cred.date) {
                return Err(AuthError::InvalidArgument(format!(
                    "x-amz-date {date} is not on the day of the credential's scope ({})",
                    cred.date
                )));
            }
            let secret = secrets
                .secret_key(cred.access_key)
                .ok_or(AuthError::InvalidAccessKeyId)?;
            let computed = sign_post_policy_v4(&secret, cred.date, cred.region, policy_b64);
            if signatures_equal(&computed, &signature.trim().to_ascii_lowercase()) {
                Ok(cred.access_key.to_string())
            } else {
                Err(AuthError::SignatureDoesNotMatch)
            }
        }
        PostSignature::V2 {
            access_key,
            signature,
        } => {
            let access_key = access_key.trim();
            let secret = secrets
                .secret_key(access_key)
                .ok_or(AuthError::InvalidAccessKeyId)?;
            let computed = sign_post_policy_v2(&secret, policy_b64);
            if signatures_equal(&computed, signature.trim()) {
                Ok(access_key.to_string())
            } else {
                Err(AuthError::SignatureDoesNotMatch)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const AK: &str = "AKIAIOSFODNN7EXAMPLE";
    const SK: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    /// `{"expiration": "2030-01-01T00:00:00Z", "conditions": [{"bucket": "photos"}]}`
    const POLICY: &str = "eyJleHBpcmF0aW9uIjogIjIwMzAtMDEtMDFUMDA6MDA6MDBaIiwgImNvbmRpdGlvbnMiOiBbeyJidWNrZXQiOiAicGhvdG9zIn1dfQ==";
    // Known answers computed with Python's hmac/hashlib, independently of this crate.
    const V4_SIG: &str = "f54bce945c9b84e0a694ee2707aee5e71825b545b675908f6c07e0ced6d7b26d";
    const V2_SIG: &str = "sljBpcSmDMJRqcerjmMDtyBZS68=";

    fn secrets() -> HashMap<String, String> {
        HashMap::from([(AK.to_owned(), SK.to_owned())])
    }

    fn v4<'a>(credential: &'a str, date: &'a str, signature: &'a str) -> PostSignature<'a> {
        PostSignature::V4 {
            algorithm: POST_ALGORITHM,
            credential,
            date,
            signature,
        }
    }

    #[test]
    fn known_answers() {
        assert_eq!(
            sign_post_policy_v4(SK, "20291231", "us-east-1", POLICY),
            V4_SIG
        );
        assert_eq!(sign_post_policy_v2(SK, POLICY), V2_SIG);
    }

    #[test]
    fn v4_forms_verify_and_name_their_key() {
        let cred = post_credential(AK, "20291231", "us-east-1");
        let s = secrets();
        assert_eq!(
            verify_post_policy(POLICY, &v4(&cred, "20291231T120000Z", V4_SIG), &s),
            Ok(AK.to_string())
        );
        // Uppercase hex is the same signature.
        let upper = V4_SIG.to_ascii_uppercase();
        assert!(verify_post_policy(POLICY, &v4(&cred, "20291231T120000Z", &upper), &s).is_ok());
        // Another policy, another region, a flipped digit: not this signature.
        let other = POLICY.replace('Z', "Y");
        assert_eq!(
            verify_post_policy(&other, &v4(&cred, "20291231T120000Z", V4_SIG), &s),
            Err(AuthError::SignatureDoesNotMatch)
        );
        let west = post_credential(AK, "20291231", "us-west-2");
        assert_eq!(
            verify_post_policy(POLICY, &v4(&west, "20291231T120000Z", V4_SIG), &s),
            Err(AuthError::SignatureDoesNotMatch)
        );
        let mut flipped = V4_SIG.to_string();
        flipped.replace_range(0..1, "4");
        assert_eq!(
            verify_post_policy(POLICY, &v4(&cred, "20291231T120000Z", &flipped), &s),
            Err(AuthError::SignatureDoesNotMatch)
        );
    }

    #[test]
    fn v4_malformed_fields_and_unknown_keys() {
        let s = secrets();
        let cred = post_credential(AK, "20291231", "us-east-1");
        let date = "20291231T120000Z";
        let unknown = post_credential("NOBODY", "20291231", "us-east-1");
        assert_eq!(
            verify_post_policy(POLICY, &v4(&unknown, date, V4_SIG), &s),
            Err(AuthError::InvalidAccessKeyId)
        );
        for (c, d) in [
            (cred.as_str(), "2029-12-31T12:00:00Z"),
            (cred.as_str(), "20300101T000000Z"),
            ("AKID/20291231/us-east-1/ec2/aws4_request", date),
            ("AKID/20291231", date),
        ] {
            let e = verify_post_policy(POLICY, &v4(c, d, V4_SIG), &s).unwrap_err();
            assert!(matches!(e, AuthError::InvalidArgument(_)), "{c} {d}: {e:?}");
        }
        let hmac_sha1 = PostSignature::V4 {
            algorithm: "AWS4-HMAC-SHA1",
            credential: &cred,
            date,
            signature: V4_SIG,
        };
        assert!(matches!(
            verify_post_policy(POLICY, &hmac_sha1, &s),
            Err(AuthError::InvalidArgument(_))
        ));
    }

    #[test]
    fn v2_forms() {
        let s = secrets();
        let ok = PostSignature::V2 {
            access_key: AK,
            signature: V2_SIG,
        };
        assert_eq!(verify_post_policy(POLICY, &ok, &s), Ok(AK.to_string()));
        let reversed: String = V2_SIG.chars().rev().collect();
        let bad = PostSignature::V2 {
            access_key: AK,
            signature: &reversed,
        };
        assert_eq!(
            verify_post_policy(POLICY, &bad, &s),
            Err(AuthError::SignatureDoesNotMatch)
        );
        let unknown = PostSignature::V2 {
            access_key: "NOBODY",
            signature: V2_SIG,
        };
        assert_eq!(
            verify_post_policy(POLICY, &unknown, &s),
            Err(AuthError::InvalidAccessKeyId)
        );
    }
}
