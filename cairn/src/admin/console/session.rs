//! Console sessions: a signed, expiring cookie naming the logged-in access key.
//!
//! Cookie value: `<access key>.<expiry, unix seconds>.<hex HMAC-SHA256>`, keyed with a
//! session key derived from the cluster secret, so only this cluster can mint one and a
//! restart keeps sessions valid. The cookie is `HttpOnly; SameSite=Strict; Path=/` (and
//! `Secure` when the admin listener serves HTTPS, so the browser never sends it in clear); the
//! secret never reaches the browser. A session ends at its expiry, on logout (the browser
//! drops the cookie), or when its key is deleted or disabled (the cookie stays valid, but
//! `console::session` refuses a key the key ring does not accept).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub const COOKIE: &str = "cairn_session";

/// Mints and checks session cookies.
pub struct Sessions {
    key: Vec<u8>,
    pub lifetime_secs: i64,
    /// The console is served over HTTPS: cookies are marked `Secure`.
    secure: bool,
}

/// Why a cookie is not a session.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionError {
    Missing,
    Invalid,
    Expired,
}

impl Sessions {
    pub fn new(cluster_secret: &str, lifetime_secs: i64) -> Sessions {
        let mut m = Hmac::<Sha256>::new_from_slice(cluster_secret.as_bytes()).expect("any key");
        m.update(b"cairn-console-session-v1");
        Sessions {
            key: m.finalize().into_bytes().to_vec(),
            lifetime_secs,
            secure: false,
        }
    }

    /// Marks the cookies `Secure` (the console is served over HTTPS).
    pub fn secure(mut self, secure: bool) -> Sessions {
        self.secure = secure;
        self
    }

    fn attributes(&self) -> &'static str {
        if self.secure {
            "HttpOnly; SameSite=Strict; Path=/; Secure"
        } else {
            "HttpOnly; SameSite=Strict; Path=/"
        }
    }

    fn mac(&self, access_key: &str, expiry: i64) -> Vec<u8> {
        let mut m = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key");
        m.update(format!("{access_key}.{expiry}").as_bytes());
        m.finalize().into_bytes().to_vec()
    }

    /// The `Set-Cookie` value of a new session for `access_key`.
    pub fn issue(&self, access_key: &str, now: i64) -> String {
        // Saturating: a huge `--console-session-secs` means "never", not an overflow.
        let expiry = now.saturating_add(self.lifetime_secs);
        let sig = hex::encode(self.mac(access_key, expiry));
        // No Max-Age: the browser keeps the cookie for the browsing session and the server
        // enforces the expiry, so an expired login is told apart from no login.
        format!(
            "{COOKIE}={access_key}.{expiry}.{sig}; {}",
            self.attributes()
        )
    }

    /// The `Set-Cookie` value that ends a session.
    pub fn clear(&self) -> String {
        format!("{COOKIE}=; {}; Max-Age=0", self.attributes())
    }

    /// The access key of the session in a `Cookie` header.
    pub fn check(&self, cookie_header: Option<&str>, now: i64) -> Result<String, SessionError> {
        let value = cookie_header
            .into_iter()
            .flat_map(|h| h.split(';'))
            .filter_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
            .find(|v| !v.is_empty())
            .ok_or(SessionError::Missing)?;
        let mut parts = value.rsplitn(3, '.');
        let (Some(sig), Some(expiry), Some(ak)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(SessionError::Invalid);
        };
        let expiry: i64 = expiry.parse().map_err(|_| SessionError::Invalid)?;
        let sig = hex::decode(sig).map_err(|_| SessionError::Invalid)?;
        if !bool::from(self.mac(ak, expiry).ct_eq(&sig)) {
            return Err(SessionError::Invalid);
        }
        if expiry <= now {
            return Err(SessionError::Expired);
        }
        Ok(ak.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(set_cookie: &str) -> String {
        set_cookie.split(';').next().unwrap().to_string()
    }

    #[test]
    fn sessions_are_signed_and_expire() {
        let s = Sessions::new("secret", 60);
        let c = value(&s.issue("AKIA1", 1000));
        assert_eq!(s.check(Some(&c), 1001), Ok("AKIA1".into()));
        assert_eq!(
            s.check(Some(&format!("other=1; {c}")), 1001),
            Ok("AKIA1".into())
        );
        assert_eq!(s.check(Some(&c), 1060), Err(SessionError::Expired));
        assert_eq!(s.check(None, 0), Err(SessionError::Missing));
        // Another cluster, another key name, a longer expiry: all refused.
        let other = Sessions::new("other", 60);
        assert_eq!(other.check(Some(&c), 1001), Err(SessionError::Invalid));
        let forged = c.replace("AKIA1", "AKIA2");
        assert_eq!(s.check(Some(&forged), 1001), Err(SessionError::Invalid));
        let longer = c.replace(".1060.", ".9999.");
        assert_eq!(s.check(Some(&longer), 1001), Err(SessionError::Invalid));
        assert_eq!(
            s.check(Some("cairn_session=garbage"), 1),
            Err(SessionError::Invalid)
        );
        assert!(s.clear().contains("Max-Age=0"));
        assert!(!s.issue("AKIA1", 1000).contains("Secure"));
        let tls = Sessions::new("secret", 60).secure(true);
        assert!(tls.issue("AKIA1", 1000).ends_with("; Secure"));
        assert!(tls.clear().contains("; Secure;"));
    }

    #[test]
    fn huge_lifetimes_do_not_overflow() {
        let s = Sessions::new("secret", i64::MAX);
        let c = value(&s.issue("AKIA1", 1000));
        assert!(c.contains(&format!(".{}.", i64::MAX)), "{c}");
        assert_eq!(s.check(Some(&c), 1001), Ok("AKIA1".into()));
    }
}
