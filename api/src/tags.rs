//! Tag sets as S3 spells and limits them: the `x-amz-tagging` header, the `<Tagging>`
//! document, and the rules S3 enforces (at most 10 tags on an object, 50 on a bucket; keys
//! of 1 to 128 and values of at most 256 Unicode characters; no key twice — `InvalidTag`
//! otherwise). The operations that use them are in `tagging` and `bucket_config`.

use axum::http::HeaderMap;
use cairn_metadata::TagSet;
use percent_encoding::percent_decode_str;
use serde::Deserialize;

use crate::error::{S3Error, S3ErrorCode};
use crate::headers::{header_str, set};
use crate::xml::{self, XmlWriter};

pub const MAX_TAGS: usize = 10;
pub const MAX_KEY_CHARS: usize = 128;
pub const MAX_VALUE_CHARS: usize = 256;

fn invalid_tag(msg: &str) -> S3Error {
    S3Error::new(S3ErrorCode::InvalidTag, msg)
}

/// Most tags on a bucket.
pub const MAX_BUCKET_TAGS: usize = 50;

/// Checks `pairs` against S3's object tag rules and collects them.
pub fn validate(pairs: Vec<(String, String)>) -> Result<TagSet, S3Error> {
    validate_at_most(pairs, MAX_TAGS)
}

/// Checks `pairs` against S3's tag rules with at most `limit` tags.
pub fn validate_at_most(pairs: Vec<(String, String)>, limit: usize) -> Result<TagSet, S3Error> {
    if pairs.len() > limit {
        return Err(invalid_tag(&format!(
            "Object tags cannot be greater than {limit}"
        )));
    }
    let mut tags = TagSet::new();
    for (k, v) in pairs {
        if k.is_empty() {
            return Err(invalid_tag("The TagKey you have provided is invalid"));
        }
        if k.chars().count() > MAX_KEY_CHARS {
            return Err(invalid_tag(
                "The TagKey you have provided is too long, max 128",
            ));
        }
        if v.chars().count() > MAX_VALUE_CHARS {
            return Err(invalid_tag(
                "The TagValue you have provided is too long, max 256",
            ));
        }
        if tags.insert(k, v).is_some() {
            return Err(invalid_tag(
                "Cannot provide multiple Tags with the same key",
            ));
        }
    }
    Ok(tags)
}

/// Parses `x-amz-tagging` (URL query form, `k1=v1&k2=v2`); `None` when absent.
pub fn from_header(h: &HeaderMap) -> Result<Option<TagSet>, S3Error> {
    let Some(raw) = header_str(h, "x-amz-tagging") else {
        return Ok(None);
    };
    let dec = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| invalid_tag("The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates."))
    };
    let mut pairs = Vec::new();
    for pair in raw.trim().split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        pairs.push((dec(k)?, dec(v)?));
    }
    validate(pairs).map(Some)
}

#[derive(Debug, Deserialize)]
struct Tagging {
    #[serde(rename = "TagSet")]
    tag_set: TagSetXml,
}

#[derive(Debug, Deserialize)]
struct TagSetXml {
    #[serde(rename = "Tag", default)]
    tags: Vec<TagXml>,
}

#[derive(Debug, Deserialize)]
struct TagXml {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Value", default)]
    value: String,
}

/// Parses an object's `<Tagging>` body.
pub fn from_xml(body: &[u8]) -> Result<TagSet, S3Error> {
    from_xml_at_most(body, MAX_TAGS)
}

/// Parses a `<Tagging>` body of at most `limit` tags.
pub fn from_xml_at_most(body: &[u8], limit: usize) -> Result<TagSet, S3Error> {
    let t: Tagging = xml::parse(body).ok_or_else(S3Error::malformed_xml)?;
    validate_at_most(
        t.tag_set
            .tags
            .into_iter()
            .map(|t| (t.key, t.value))
            .collect(),
        limit,
    )
}

/// Renders a `<Tagging>` document.
pub fn tagging_xml(tags: &TagSet) -> String {
    let mut w = XmlWriter::new();
    w.open_root("Tagging");
    w.open("TagSet");
    for (k, v) in tags {
        w.open("Tag");
        w.elem("Key", k);
        w.elem("Value", v);
        w.close("Tag");
    }
    w.close("TagSet");
    w.close("Tagging");
    w.finish()
}

/// `x-amz-tagging-count`, when the object has tags.
pub fn count_header(h: &mut HeaderMap, tags: &TagSet) {
    if !tags.is_empty() {
        set(h, "x-amz-tagging-count", &tags.len().to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(v: &str) -> Result<Option<TagSet>, S3Error> {
        let mut h = HeaderMap::new();
        h.insert("x-amz-tagging", v.parse().unwrap());
        from_header(&h)
    }

    #[test]
    fn header_form() {
        let t = header("a=1&b%20c=d+e&empty=").unwrap().unwrap();
        assert_eq!(t.get("a").map(String::as_str), Some("1"));
        assert_eq!(t.get("b c").map(String::as_str), Some("d e"));
        assert_eq!(t.get("empty").map(String::as_str), Some(""));
        assert_eq!(from_header(&HeaderMap::new()).unwrap(), None);
        assert_eq!(header("a=1&a=2").unwrap_err().code, S3ErrorCode::InvalidTag);
    }

    #[test]
    fn limits() {
        let n = |count: usize| {
            (0..count)
                .map(|i| (format!("k{i}"), "v".to_string()))
                .collect()
        };
        assert_eq!(validate(n(10)).unwrap().len(), 10);
        assert_eq!(validate(n(11)).unwrap_err().code, S3ErrorCode::InvalidTag);
        let one = |k: String, v: String| validate(vec![(k, v)]);
        // Limits count characters, not bytes.
        assert!(one("é".repeat(128), "é".repeat(256)).is_ok());
        assert_eq!(
            one("k".repeat(129), String::new()).unwrap_err().code,
            S3ErrorCode::InvalidTag
        );
        assert_eq!(
            one("k".into(), "v".repeat(257)).unwrap_err().code,
            S3ErrorCode::InvalidTag
        );
        assert_eq!(
            one(String::new(), "v".into()).unwrap_err().code,
            S3ErrorCode::InvalidTag
        );
    }

    #[test]
    fn xml_body() {
        let t = from_xml(b"<Tagging><TagSet><Tag><Key>a</Key><Value>1</Value></Tag><Tag><Key>b</Key><Value></Value></Tag></TagSet></Tagging>").unwrap();
        assert_eq!(t.len(), 2);
        assert!(from_xml(b"<Tagging><TagSet/></Tagging>")
            .unwrap()
            .is_empty());
        assert_eq!(
            from_xml(b"<Tagging><TagSet><Tag><Key>a</Key></Tag>")
                .unwrap_err()
                .code,
            S3ErrorCode::MalformedXML
        );
        assert_eq!(
            from_xml(b"<Tagging><TagSet><Tag><Key>a</Key><Value>1</Value></Tag><Tag><Key>a</Key><Value>2</Value></Tag></TagSet></Tagging>").unwrap_err().code,
            S3ErrorCode::InvalidTag
        );
    }
}
