//! Authentication of admin API calls, shared by the server (verify) and the CLI (sign).
//!
//! Two schemes, both compared in constant time:
//!
//! - `Authorization: Bearer <token>`: the cluster secret (what datanodes and scripts on the
//!   server's host use).
//! - `Authorization: Cairn-Root <access key>:<unix seconds>:<hex signature>`: the root key,
//!   without sending its secret. The signature is HMAC-SHA256 keyed with the root secret
//!   over [`string_to_sign`] (method, path and query, the timestamp, the SHA-256 of the
//!   body); a timestamp more than [`MAX_SKEW_SECS`] away from the server's clock is refused,
//!   so a captured header is useless a few minutes later.
//!
//! The server checks what the headers alone can tell first ([`Verifier::check_header`]: a
//! bearer token entirely; for a signature, that it is well formed, names the root key and
//! is fresh), so a request refused there is refused before its body is read; only then is
//! a signed request's body read (under a small limit) to check the signature over it.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Largest clock difference accepted for a `Cairn-Root` signature.
pub const MAX_SKEW_SECS: i64 = 300;
/// The scheme name of root-key signatures.
pub const ROOT_SCHEME: &str = "Cairn-Root";

/// What a `Cairn-Root` signature covers.
pub fn string_to_sign(method: &str, path_and_query: &str, ts: i64, body: &[u8]) -> String {
    format!(
        "CAIRN-ADMIN-V1\n{method}\n{path_and_query}\n{ts}\n{}",
        hex::encode(Sha256::digest(body))
    )
}

fn mac(secret: &str, msg: &str) -> Vec<u8> {
    // HMAC accepts keys of any length.
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    m.update(msg.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// The `Authorization` value for a call signed with the root key.
pub fn sign(
    access_key: &str,
    secret: &str,
    method: &str,
    path_and_query: &str,
    ts: i64,
    body: &[u8],
) -> String {
    let sig = mac(secret, &string_to_sign(method, path_and_query, ts, body));
    format!("{ROOT_SCHEME} {access_key}:{ts}:{}", hex::encode(sig))
}

/// Why a call was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    Missing,
    Malformed,
    WrongKey,
    Skew,
    BadSignature,
    BadToken,
}

impl Refusal {
    pub fn message(&self) -> &'static str {
        match self {
            Refusal::Missing => "authentication required: Authorization: Bearer <cluster secret> or a Cairn-Root signature",
            Refusal::Malformed => "malformed Authorization header",
            Refusal::WrongKey => "the access key is not the root key",
            Refusal::Skew => "the request time is too far from the server's clock",
            Refusal::BadSignature => "the signature does not match",
            Refusal::BadToken => "wrong token",
        }
    }
}

/// What the server checks calls against.
pub struct Verifier {
    pub bearer: String,
    /// The key ring: its root key (and that key's secret) is the one `Cairn-Root`
    /// signatures must be made with. It follows rotations (`cairn key rotate-root`).
    pub keys: cairn_api::KeyRing,
}

/// What the headers alone established.
#[derive(Debug)]
pub enum HeaderCheck {
    /// The cluster secret: the call is authenticated.
    Bearer,
    /// A fresh root-key signature, still to be checked over the body.
    Signed(PendingSignature),
}

/// A `Cairn-Root` signature whose key and time were accepted; [`Self::verify`] checks it
/// over the request.
pub struct PendingSignature {
    ts: i64,
    sig: Vec<u8>,
    root_secret: String,
}

impl std::fmt::Debug for PendingSignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSignature")
            .field("ts", &self.ts)
            .finish_non_exhaustive()
    }
}

impl PendingSignature {
    pub fn verify(&self, method: &str, path_and_query: &str, body: &[u8]) -> Result<(), Refusal> {
        let want = mac(
            &self.root_secret,
            &string_to_sign(method, path_and_query, self.ts, body),
        );
        if bool::from(want.ct_eq(&self.sig)) {
            Ok(())
        } else {
            Err(Refusal::BadSignature)
        }
    }
}

impl Verifier {
    /// Everything that can be checked without the body: a bearer token entirely; a
    /// signature's form, key and time.
    pub fn check_header(
        &self,
        authorization: Option<&str>,
        now: i64,
    ) -> Result<HeaderCheck, Refusal> {
        let value = authorization.ok_or(Refusal::Missing)?;
        if let Some(token) = value.strip_prefix("Bearer ") {
            // An empty token (or an empty configured secret) never matches.
            return if cairn_net::client::secret_matches(token.as_bytes(), &self.bearer) {
                Ok(HeaderCheck::Bearer)
            } else {
                Err(Refusal::BadToken)
            };
        }
        let rest = value
            .strip_prefix(ROOT_SCHEME)
            .and_then(|r| r.strip_prefix(' '))
            .ok_or(Refusal::Malformed)?;
        let mut parts = rest.splitn(3, ':');
        let (Some(ak), Some(ts), Some(sig)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(Refusal::Malformed);
        };
        let ts: i64 = ts.parse().map_err(|_| Refusal::Malformed)?;
        let sig = hex::decode(sig).map_err(|_| Refusal::Malformed)?;
        let Some((root_access_key, root_secret)) = self.keys.root_credentials() else {
            return Err(Refusal::WrongKey);
        };
        if !bool::from(ak.as_bytes().ct_eq(root_access_key.as_bytes())) {
            return Err(Refusal::WrongKey);
        }
        // abs_diff: no timestamp (i64::MIN, i64::MAX) can overflow the comparison.
        if now.abs_diff(ts) > MAX_SKEW_SECS.unsigned_abs() {
            return Err(Refusal::Skew);
        }
        Ok(HeaderCheck::Signed(PendingSignature {
            ts,
            sig,
            root_secret,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`Verifier::check_header`], then the signature (if any) over `body`: what the
    /// server's middleware does.
    fn verify(
        v: &Verifier,
        authorization: Option<&str>,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        now: i64,
    ) -> Result<(), Refusal> {
        match v.check_header(authorization, now)? {
            HeaderCheck::Bearer => Ok(()),
            HeaderCheck::Signed(pending) => pending.verify(method, path_and_query, body),
        }
    }

    fn verifier() -> Verifier {
        let keys = cairn_api::KeyRing::default();
        keys.insert("ROOTKEY".into(), "root-secret".into());
        keys.set_root("ROOTKEY");
        Verifier {
            bearer: "cluster-secret".into(),
            keys,
        }
    }

    #[test]
    fn signatures_follow_the_root_key() {
        let v = verifier();
        let now = 1_000_000;
        let old = sign("ROOTKEY", "root-secret", "GET", "/a", now, b"");
        assert!(verify(&v, Some(&old), "GET", "/a", b"", now).is_ok());
        // Rotated: the new root signs; the old key, still an ordinary key, no longer does.
        v.keys.insert("NEWROOT".into(), "new-secret".into());
        v.keys.set_root("NEWROOT");
        let new = sign("NEWROOT", "new-secret", "GET", "/a", now, b"");
        assert!(verify(&v, Some(&new), "GET", "/a", b"", now).is_ok());
        assert_eq!(
            verify(&v, Some(&old), "GET", "/a", b"", now),
            Err(Refusal::WrongKey)
        );
    }

    #[test]
    fn bearer_tokens_and_root_signatures_are_checked() {
        let v = verifier();
        let now = 1_000_000;
        assert_eq!(
            verify(&v, None, "GET", "/a", b"", now),
            Err(Refusal::Missing)
        );
        assert!(verify(&v, Some("Bearer cluster-secret"), "GET", "/a", b"", now).is_ok());
        assert_eq!(
            verify(&v, Some("Bearer nope"), "GET", "/a", b"", now),
            Err(Refusal::BadToken)
        );
        let good = sign("ROOTKEY", "root-secret", "POST", "/admin/scrub", now, b"{}");
        assert!(verify(&v, Some(&good), "POST", "/admin/scrub", b"{}", now + 10).is_ok());
        // Another body, path, method or secret breaks it.
        for (m, p, b) in [
            ("POST", "/admin/scrub", &b"{ }"[..]),
            ("POST", "/admin/keys", b"{}"),
            ("GET", "/admin/scrub", b"{}"),
        ] {
            assert_eq!(
                verify(&v, Some(&good), m, p, b, now),
                Err(Refusal::BadSignature)
            );
        }
        let wrong_secret = sign("ROOTKEY", "other", "GET", "/a", now, b"");
        assert_eq!(
            verify(&v, Some(&wrong_secret), "GET", "/a", b"", now),
            Err(Refusal::BadSignature)
        );
        let other_key = sign("ALTKEY", "root-secret", "GET", "/a", now, b"");
        assert_eq!(
            verify(&v, Some(&other_key), "GET", "/a", b"", now),
            Err(Refusal::WrongKey)
        );
        let old = sign("ROOTKEY", "root-secret", "GET", "/a", now - 301, b"");
        assert_eq!(
            verify(&v, Some(&old), "GET", "/a", b"", now),
            Err(Refusal::Skew)
        );
        let early = sign("ROOTKEY", "root-secret", "GET", "/a", now + 301, b"");
        assert_eq!(
            verify(&v, Some(&early), "GET", "/a", b"", now),
            Err(Refusal::Skew)
        );
        let edge = sign("ROOTKEY", "root-secret", "GET", "/a", now - 300, b"");
        assert!(verify(&v, Some(&edge), "GET", "/a", b"", now).is_ok());
        for bad in [
            "Cairn-Root x",
            "Cairn-Root a:b:c",
            "Basic abc",
            "Cairn-Root ROOTKEY:1:zz",
        ] {
            assert_eq!(
                verify(&v, Some(bad), "GET", "/a", b"", now),
                Err(Refusal::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn headers_alone_settle_all_but_the_signature_over_the_body() {
        let v = verifier();
        let now = 1_000_000;
        assert!(matches!(
            v.check_header(Some("Bearer cluster-secret"), now),
            Ok(HeaderCheck::Bearer)
        ));
        assert_eq!(
            v.check_header(Some("Bearer nope"), now).unwrap_err(),
            Refusal::BadToken
        );
        // Wrong key and stale time are refused on the header, whatever the body.
        let other = sign("ALTKEY", "root-secret", "POST", "/a", now, b"x");
        assert_eq!(
            v.check_header(Some(&other), now).unwrap_err(),
            Refusal::WrongKey
        );
        let stale = sign("ROOTKEY", "root-secret", "POST", "/a", now - 1000, b"x");
        assert_eq!(
            v.check_header(Some(&stale), now).unwrap_err(),
            Refusal::Skew
        );
        // A fresh root signature waits for the body.
        let good = sign("ROOTKEY", "root-secret", "POST", "/a", now, b"body");
        let Ok(HeaderCheck::Signed(pending)) = v.check_header(Some(&good), now) else {
            panic!("a fresh root signature passes the header check");
        };
        assert!(pending.verify("POST", "/a", b"body").is_ok());
        assert_eq!(
            pending.verify("POST", "/a", b"other").unwrap_err(),
            Refusal::BadSignature
        );
    }

    #[test]
    fn extreme_timestamps_are_refused_without_overflow() {
        let v = verifier();
        for now in [i64::MIN, -1, 0, 1_000_000, i64::MAX] {
            for ts in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX] {
                let h = sign("ROOTKEY", "root-secret", "GET", "/a", ts, b"");
                let got = verify(&v, Some(&h), "GET", "/a", b"", now);
                if now.abs_diff(ts) <= 300 {
                    assert!(got.is_ok(), "now {now} ts {ts}: {got:?}");
                } else {
                    assert_eq!(got, Err(Refusal::Skew), "now {now} ts {ts}");
                }
            }
        }
        // Past i64: malformed, not a panic.
        let h = "Cairn-Root ROOTKEY:-9223372036854775809:00";
        assert_eq!(
            verify(&v, Some(h), "GET", "/a", b"", 0),
            Err(Refusal::Malformed)
        );
    }

    #[test]
    fn empty_bearer_tokens_are_refused() {
        let v = verifier();
        for h in ["Bearer ", "Bearer", "Bearer  "] {
            assert!(verify(&v, Some(h), "GET", "/a", b"", 0).is_err(), "{h:?}");
        }
        // Even when the configured secret is empty (a misconfiguration), nothing matches it.
        let empty = Verifier {
            bearer: String::new(),
            ..verifier()
        };
        assert_eq!(
            verify(&empty, Some("Bearer "), "GET", "/a", b"", 0),
            Err(Refusal::BadToken)
        );
    }
}
