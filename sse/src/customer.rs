//! SSE-C: the key a client sends with a request (`…-customer-algorithm: AES256`, the key in
//! base64, and its MD5 in base64). The key wraps the body's data key; what is stored to
//! recognize the key again is a random salt and HMAC-SHA256(salt, key), compared in constant
//! time. The key itself is never stored.

use aws_lc_rs::hmac;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use md5::{Digest, Md5};

use crate::keys::{unwrap, wrap};
use crate::{random, DataKey, SseError};

const AAD: &[u8] = b"cairn data key under a customer key";

/// A customer-provided key, checked against its MD5.
#[derive(Clone, PartialEq, Eq)]
pub struct CustomerKey {
    key: [u8; 32],
    md5_b64: String,
}

impl std::fmt::Debug for CustomerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CustomerKey(md5 {})", self.md5_b64)
    }
}

impl CustomerKey {
    /// The key from the three request headers' values; `Ok(None)` when none is given. Any
    /// other combination, an algorithm other than `AES256`, a key that is not 32 bytes of
    /// base64 or an MD5 that does not match is [`SseError::InvalidCustomerKey`].
    pub fn from_headers(
        algorithm: Option<&str>,
        key_b64: Option<&str>,
        md5_b64: Option<&str>,
    ) -> Result<Option<CustomerKey>, SseError> {
        let bad = |m: &str| Err(SseError::InvalidCustomerKey(m.to_string()));
        let (algorithm, key_b64, md5_b64) = match (algorithm, key_b64, md5_b64) {
            (None, None, None) => return Ok(None),
            (Some(a), Some(k), Some(m)) => (a, k, m),
            (None, _, _) => return bad("Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm."),
            (Some(_), None, _) => return bad("Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key."),
            (Some(_), Some(_), None) => return bad("Requests specifying Server Side Encryption with Customer provided keys must provide the client calculated MD5 of the secret key."),
        };
        if algorithm != "AES256" {
            return bad("The encryption algorithm specified is not valid.");
        }
        let key: [u8; 32] = match B64.decode(key_b64.trim()).ok().map(<[u8; 32]>::try_from) {
            Some(Ok(k)) => k,
            _ => return bad("The secret key was invalid for the specified algorithm."),
        };
        let expected = B64.encode(Md5::digest(key));
        if md5_b64.trim() != expected {
            return bad(
                "The calculated MD5 hash of the key did not match the hash that was provided.",
            );
        }
        Ok(Some(CustomerKey {
            key,
            md5_b64: expected,
        }))
    }

    /// The key's MD5 in base64 (what responses echo).
    pub fn key_md5(&self) -> &str {
        &self.md5_b64
    }

    /// A fresh salt and HMAC-SHA256(salt, key), to store.
    pub fn fingerprint(&self) -> Result<(Vec<u8>, Vec<u8>), SseError> {
        let mut salt = vec![0u8; 16];
        random(&mut salt)?;
        let mac = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &salt), &self.key);
        Ok((salt, mac.as_ref().to_vec()))
    }

    /// Whether this is the key a stored fingerprint was made from (constant time).
    pub fn matches(&self, salt: &[u8], mac: &[u8]) -> bool {
        hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, salt), &self.key, mac).is_ok()
    }

    /// Wraps a data key with this key.
    pub fn wrap(&self, dk: &DataKey) -> Result<Vec<u8>, SseError> {
        wrap(&self.key, AAD, dk.bytes())
    }

    /// Opens a data key this key wrapped; another key is [`SseError::WrongKey`].
    pub fn unwrap(&self, wrapped: &[u8]) -> Result<DataKey, SseError> {
        Ok(DataKey::from_bytes(unwrap(&self.key, AAD, wrapped)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(key: &[u8; 32]) -> (String, String) {
        (B64.encode(key), B64.encode(Md5::digest(key)))
    }

    #[test]
    fn a_key_is_checked_against_its_md5_and_recognized_only_by_itself() {
        let (k, m) = headers(&[7u8; 32]);
        let ck = CustomerKey::from_headers(Some("AES256"), Some(&k), Some(&m))
            .unwrap()
            .unwrap();
        assert_eq!(ck.key_md5(), m);
        let (salt, mac) = ck.fingerprint().unwrap();
        assert!(ck.matches(&salt, &mac));
        let (k2, m2) = headers(&[8u8; 32]);
        let other = CustomerKey::from_headers(Some("AES256"), Some(&k2), Some(&m2))
            .unwrap()
            .unwrap();
        assert!(!other.matches(&salt, &mac));
        let dk = DataKey::generate().unwrap();
        let w = ck.wrap(&dk).unwrap();
        assert_eq!(ck.unwrap(&w).unwrap(), dk);
        assert!(matches!(other.unwrap(&w), Err(SseError::WrongKey)));
        assert!(!format!("{ck:?}").contains(&k));
    }

    #[test]
    fn incomplete_or_wrong_headers_are_refused() {
        let (k, m) = headers(&[7u8; 32]);
        assert!(CustomerKey::from_headers(None, None, None)
            .unwrap()
            .is_none());
        for (a, k, m) in [
            (Some("AES256"), Some(k.as_str()), None),
            (None, Some(k.as_str()), Some(m.as_str())),
            (Some("AES256"), None, Some(m.as_str())),
            (Some("aes:kms"), Some(k.as_str()), Some(m.as_str())),
            (Some("AES256"), Some("c2hvcnQ="), Some(m.as_str())),
            (
                Some("AES256"),
                Some(k.as_str()),
                Some("AAAAAAAAAAAAAAAAAAAAAA=="),
            ),
        ] {
            assert!(
                CustomerKey::from_headers(a, k, m).is_err(),
                "{a:?} {k:?} {m:?}"
            );
        }
    }
}
