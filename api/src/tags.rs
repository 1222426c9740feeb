//! Tag sets (`<Tagging><TagSet><Tag><Key/><Value/></Tag>…`) as S3 validates them: at most
//! `limit` tags, keys 1–128 and values 0–256 Unicode characters, no duplicate keys.

use serde::{Deserialize, Serialize};

use crate::error::{S3Error, S3ErrorCode};
use crate::xml::XmlWriter;

/// Most tags on a bucket.
pub const MAX_BUCKET_TAGS: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Deserialize)]
struct TaggingXml {
    #[serde(rename = "TagSet")]
    tag_set: TagSetXml,
}

#[derive(Debug, Deserialize, Default)]
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

fn invalid(msg: impl Into<String>) -> S3Error {
    S3Error::new(S3ErrorCode::InvalidTag, msg)
}

/// Checks the S3 rules on `tags`.
pub fn validate(tags: &[Tag], limit: usize) -> Result<(), S3Error> {
    if tags.len() > limit {
        return Err(S3Error::new(
            S3ErrorCode::InvalidTag,
            format!("Object tags cannot be greater than {limit}"),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for t in tags {
        let klen = t.key.chars().count();
        if klen == 0 || klen > 128 {
            return Err(invalid("The TagKey you have provided is invalid"));
        }
        if t.value.chars().count() > 256 {
            return Err(invalid("The TagValue you have provided is invalid"));
        }
        if t.key.starts_with("aws:") {
            return Err(invalid("Your TagKey cannot be prefixed with aws:"));
        }
        if !seen.insert(t.key.as_str()) {
            return Err(invalid("Cannot provide multiple Tags with the same key"));
        }
    }
    Ok(())
}

/// Parses and validates a `Tagging` document.
pub fn parse_tagging(body: &[u8], limit: usize) -> Result<Vec<Tag>, S3Error> {
    let doc: TaggingXml = crate::xml::parse(body).ok_or_else(S3Error::malformed_xml)?;
    let tags: Vec<Tag> = doc
        .tag_set
        .tags
        .into_iter()
        .map(|t| Tag {
            key: t.key,
            value: t.value,
        })
        .collect();
    validate(&tags, limit)?;
    Ok(tags)
}

/// Renders a `Tagging` document.
pub fn tagging_xml(tags: &[Tag]) -> String {
    let mut w = XmlWriter::new();
    w.open_root("Tagging");
    w.open("TagSet");
    for t in tags {
        w.open("Tag");
        w.elem("Key", &t.key);
        w.elem("Value", &t.value);
        w.close("Tag");
    }
    w.close("TagSet");
    w.close("Tagging");
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(tags: &[(&str, &str)]) -> Vec<u8> {
        let t: Vec<Tag> = tags
            .iter()
            .map(|(k, v)| Tag {
                key: k.to_string(),
                value: v.to_string(),
            })
            .collect();
        tagging_xml(&t).into_bytes()
    }

    #[test]
    fn round_trips_and_validates() {
        let tags = parse_tagging(&doc(&[("a", "1"), ("b & c", "")]), 10).unwrap();
        assert_eq!(tags[1].key, "b & c");
        assert_eq!(tags[1].value, "");
        let code = |r: Result<Vec<Tag>, S3Error>| r.unwrap_err().code;
        assert_eq!(
            code(parse_tagging(&doc(&[("a", "1"), ("a", "2")]), 10)),
            S3ErrorCode::InvalidTag
        );
        let long = "k".repeat(129);
        assert_eq!(
            code(parse_tagging(&doc(&[(&long, "1")]), 10)),
            S3ErrorCode::InvalidTag
        );
        let many: Vec<(String, String)> =
            (0..11).map(|i| (format!("k{i}"), String::new())).collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            code(parse_tagging(&doc(&many), 10)),
            S3ErrorCode::InvalidTag
        );
        assert!(parse_tagging(&doc(&many), 50).is_ok());
        assert_eq!(
            code(parse_tagging(b"<Tagging>", 10)),
            S3ErrorCode::MalformedXML
        );
        // An empty tag set is valid (it clears the tags).
        assert!(parse_tagging(b"<Tagging><TagSet></TagSet></Tagging>", 10)
            .unwrap()
            .is_empty());
    }
}
