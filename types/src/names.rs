//! Validated bucket names and object keys.
//!
//! Bucket names follow the AWS general-purpose bucket rules. Object keys are 1..=1024 bytes
//! of UTF-8 without control characters and without `.` or `..` path segments, so that a key
//! can never be read as a path that climbs out of its bucket by any tool that maps keys to
//! files (Cairn itself never does).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a bucket name or object key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidName {
    #[error("the specified bucket is not valid: {0}")]
    Bucket(&'static str),
    #[error("your key is too long (max 1024 bytes)")]
    KeyTooLong,
    #[error("the object key is not valid: {0}")]
    Key(&'static str),
}

/// A bucket name that satisfies the S3 naming rules.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BucketName(String);

impl BucketName {
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidName> {
        let name = name.into();
        validate_bucket(&name)?;
        Ok(BucketName(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn validate_bucket(n: &str) -> Result<(), InvalidName> {
    use InvalidName::Bucket;
    if n.len() < 3 || n.len() > 63 {
        return Err(Bucket(
            "bucket names must be between 3 and 63 characters long",
        ));
    }
    if !n
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return Err(Bucket(
            "bucket names may contain only lowercase letters, digits, dots and hyphens",
        ));
    }
    let first = n.as_bytes()[0];
    let last = n.as_bytes()[n.len() - 1];
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return Err(Bucket(
            "bucket names must begin and end with a letter or digit",
        ));
    }
    if n.contains("..") || n.contains(".-") || n.contains("-.") {
        return Err(Bucket(
            "bucket names must not contain adjacent dots or a dot next to a hyphen",
        ));
    }
    if n.split('.').count() == 4 && n.split('.').all(|p| p.parse::<u8>().is_ok()) {
        return Err(Bucket(
            "bucket names must not be formatted as an IP address",
        ));
    }
    for p in ["xn--", "sthree-", "amzn-s3-demo-"] {
        if n.starts_with(p) {
            return Err(Bucket("bucket names must not use a reserved prefix"));
        }
    }
    for s in ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"] {
        if n.ends_with(s) {
            return Err(Bucket("bucket names must not use a reserved suffix"));
        }
    }
    Ok(())
}

impl fmt::Display for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BucketName({:?})", self.0)
    }
}

impl TryFrom<String> for BucketName {
    type Error = InvalidName;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        BucketName::new(s)
    }
}

impl From<BucketName> for String {
    fn from(b: BucketName) -> String {
        b.0
    }
}

/// An object key: 1..=1024 bytes of UTF-8 without control characters or dot segments.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ObjectKey(String);

impl ObjectKey {
    pub const MAX_LEN: usize = 1024;

    pub fn new(key: impl Into<String>) -> Result<Self, InvalidName> {
        let key = key.into();
        if key.is_empty() {
            return Err(InvalidName::Key("the key must not be empty"));
        }
        if key.len() > Self::MAX_LEN {
            return Err(InvalidName::KeyTooLong);
        }
        if key.chars().any(|c| c.is_control()) {
            return Err(InvalidName::Key(
                "the key must not contain control characters",
            ));
        }
        if key.split('/').any(|seg| seg == ".." || seg == ".") {
            return Err(InvalidName::Key(
                "the key must not contain '.' or '..' path segments",
            ));
        }
        Ok(ObjectKey(key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectKey({:?})", self.0)
    }
}

impl TryFrom<String> for ObjectKey {
    type Error = InvalidName;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        ObjectKey::new(s)
    }
}

impl From<ObjectKey> for String {
    fn from(k: ObjectKey) -> String {
        k.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_rules() {
        for ok in ["abc", "my-bucket.1", "a".repeat(63).as_str(), "1bucket"] {
            assert!(BucketName::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            &"a".repeat(64),
            "Upper",
            "under_score",
            "-start",
            "end-",
            "a..b",
            "a.-b",
            "192.168.1.1",
            "xn--abc",
            "foo-s3alias",
            "sp ace",
        ] {
            assert!(BucketName::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn key_rules() {
        for ok in [
            "a",
            "dir/file.txt",
            "&+-é\" spaces",
            "a/.hidden",
            "x..y",
            "...",
        ] {
            assert!(ObjectKey::new(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            ObjectKey::new("a".repeat(1025)),
            Err(InvalidName::KeyTooLong)
        );
        for bad in [
            "",
            "../etc/passwd",
            "a/../b",
            "a/./b",
            "..",
            "tab\there",
            "nul\0",
        ] {
            assert!(ObjectKey::new(bad).is_err(), "{bad:?}");
        }
    }
}
