//! The S3 XML of lifecycle configurations: [`parse`] reads a PutBucketLifecycleConfiguration
//! body into a [`LifecycleConfig`] (not yet validated), [`to_xml`] writes the document
//! GetBucketLifecycleConfiguration answers with (each rule in the shape it was put).

use cairn_metadata::object_lock::{format_timestamp, parse_timestamp};
use serde::Deserialize;

use crate::rules::{AndFilter, Expiration, Filter, LifecycleConfig, NoncurrentExpiration, Rule};
use crate::LifecycleError;

#[derive(Debug, Deserialize)]
struct ConfigXml {
    #[serde(rename = "Rule", default)]
    rules: Vec<RuleXml>,
}

#[derive(Debug, Deserialize)]
struct RuleXml {
    #[serde(rename = "ID", default)]
    id: Option<String>,
    #[serde(rename = "Status", default)]
    status: Option<String>,
    #[serde(rename = "Prefix", default)]
    prefix: Option<String>,
    #[serde(rename = "Filter", default)]
    filter: Option<FilterXml>,
    #[serde(rename = "Expiration", default)]
    expiration: Option<ExpirationXml>,
    #[serde(rename = "NoncurrentVersionExpiration", default)]
    noncurrent: Option<NoncurrentXml>,
    #[serde(rename = "AbortIncompleteMultipartUpload", default)]
    abort: Option<AbortXml>,
    #[serde(rename = "Transition", default)]
    transitions: Vec<TransitionXml>,
    #[serde(rename = "NoncurrentVersionTransition", default)]
    noncurrent_transitions: Vec<TransitionXml>,
}

#[derive(Debug, Default, Deserialize)]
struct FilterXml {
    #[serde(rename = "Prefix", default)]
    prefix: Option<String>,
    #[serde(rename = "Tag", default)]
    tag: Option<TagXml>,
    #[serde(rename = "ObjectSizeGreaterThan", default)]
    gt: Option<String>,
    #[serde(rename = "ObjectSizeLessThan", default)]
    lt: Option<String>,
    #[serde(rename = "And", default)]
    and: Option<AndXml>,
}

#[derive(Debug, Default, Deserialize)]
struct AndXml {
    #[serde(rename = "Prefix", default)]
    prefix: Option<String>,
    #[serde(rename = "Tag", default)]
    tags: Vec<TagXml>,
    #[serde(rename = "ObjectSizeGreaterThan", default)]
    gt: Option<String>,
    #[serde(rename = "ObjectSizeLessThan", default)]
    lt: Option<String>,
}

#[derive(Debug, Deserialize)]
struct TagXml {
    #[serde(rename = "Key")]
    key: String,
    #[serde(rename = "Value", default)]
    value: String,
}

#[derive(Debug, Default, Deserialize)]
struct ExpirationXml {
    #[serde(rename = "Days", default)]
    days: Option<String>,
    #[serde(rename = "Date", default)]
    date: Option<String>,
    #[serde(rename = "ExpiredObjectDeleteMarker", default)]
    delete_marker: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct NoncurrentXml {
    #[serde(rename = "NoncurrentDays", default)]
    days: Option<String>,
    #[serde(rename = "NewerNoncurrentVersions", default)]
    newer: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AbortXml {
    #[serde(rename = "DaysAfterInitiation", default)]
    days: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct TransitionXml {
    #[serde(rename = "Days", default)]
    days: Option<String>,
    #[serde(rename = "NoncurrentDays", default)]
    noncurrent_days: Option<String>,
    #[serde(rename = "Date", default)]
    date: Option<String>,
}

fn malformed(why: impl Into<String>) -> LifecycleError {
    LifecycleError::MalformedXml(why.into())
}

/// A day count: a non-negative integer that fits (`0` is refused later, where S3 refuses it,
/// with InvalidArgument); a negative one is InvalidArgument, anything else MalformedXML.
fn days(v: &str, what: &str) -> Result<u32, LifecycleError> {
    let n: i64 = v
        .trim()
        .parse()
        .map_err(|_| malformed(format!("{what} is not a number")))?;
    u32::try_from(n).map_err(|_| {
        LifecycleError::InvalidArgument(format!("'{what}' must be a positive integer"))
    })
}

fn size(v: &Option<String>) -> Result<Option<u64>, LifecycleError> {
    v.as_deref()
        .map(|s| {
            s.trim()
                .parse::<u64>()
                .map_err(|_| malformed("object size is not a number"))
        })
        .transpose()
}

fn date(v: &str) -> Result<i64, LifecycleError> {
    parse_timestamp(v).ok_or_else(|| {
        LifecycleError::InvalidArgument(format!(
            "Invalid date {v:?}: a date is in ISO 8601 format, at midnight GMT"
        ))
    })
}

fn tag(t: TagXml) -> (String, String) {
    (t.key, t.value)
}

/// Parses a configuration document (rules without an ID keep an empty one).
pub fn parse(body: &[u8]) -> Result<LifecycleConfig, LifecycleError> {
    let text = std::str::from_utf8(body).map_err(|_| malformed("the body is not UTF-8"))?;
    let doc: ConfigXml = quick_xml::de::from_str(text).map_err(|e| malformed(e.to_string()))?;
    let mut rules = Vec::with_capacity(doc.rules.len());
    let mut transitions = false;
    for r in doc.rules {
        let enabled = match r.status.as_deref() {
            Some("Enabled") => true,
            Some("Disabled") => false,
            _ => return Err(malformed("Status must be Enabled or Disabled")),
        };
        let filter = match r.filter {
            None => None,
            Some(f) => Some(Filter {
                prefix: f.prefix,
                tag: f.tag.map(tag),
                size_greater_than: size(&f.gt)?,
                size_less_than: size(&f.lt)?,
                and: match f.and {
                    None => None,
                    Some(a) => Some(AndFilter {
                        prefix: a.prefix,
                        size_greater_than: size(&a.gt)?,
                        size_less_than: size(&a.lt)?,
                        tags: a.tags.into_iter().map(tag).collect(),
                    }),
                },
            }),
        };
        let expiration = match r.expiration {
            None => None,
            Some(e) => Some(match (e.days, e.date, e.delete_marker) {
                (Some(d), None, None) => Expiration::Days(days(&d, "Days")?),
                (None, Some(d), None) => Expiration::Date(date(&d)?),
                (None, None, Some(m)) => match m.trim() {
                    "true" => Expiration::DeleteMarker(true),
                    "false" => Expiration::DeleteMarker(false),
                    _ => return Err(malformed("ExpiredObjectDeleteMarker is true or false")),
                },
                _ => {
                    return Err(malformed(
                        "Expiration has one of Days, Date or ExpiredObjectDeleteMarker",
                    ))
                }
            }),
        };
        let noncurrent_expiration = match r.noncurrent {
            None => None,
            Some(n) => Some(NoncurrentExpiration {
                days: days(
                    n.days
                        .as_deref()
                        .ok_or_else(|| malformed("NoncurrentDays is missing"))?,
                    "NoncurrentDays",
                )?,
                newer_noncurrent_versions: n
                    .newer
                    .as_deref()
                    .map(|v| days(v, "NewerNoncurrentVersions"))
                    .transpose()?,
            }),
        };
        let abort_incomplete_days = match r.abort {
            None => None,
            Some(a) => Some(days(
                a.days
                    .as_deref()
                    .ok_or_else(|| malformed("DaysAfterInitiation is missing"))?,
                "DaysAfterInitiation",
            )?),
        };
        for t in r.transitions.iter().chain(&r.noncurrent_transitions) {
            transitions = true;
            if let Some(d) = &t.date {
                if date(d)?.rem_euclid(86_400_000) != 0 {
                    return Err(LifecycleError::InvalidArgument(
                        "'Date' must be at midnight GMT".into(),
                    ));
                }
            }
            for d in [&t.days, &t.noncurrent_days].into_iter().flatten() {
                days(d, "Days")?;
            }
        }
        rules.push(Rule {
            id: r.id.unwrap_or_default(),
            enabled,
            prefix: r.prefix,
            filter,
            expiration,
            noncurrent_expiration,
            abort_incomplete_days,
        });
    }
    if transitions {
        return Err(LifecycleError::NotImplemented(
            "Transition and NoncurrentVersionTransition actions: Cairn does not move objects \
             between storage classes by lifecycle yet (copy an object onto itself with \
             x-amz-storage-class to change its class)"
                .into(),
        ));
    }
    Ok(LifecycleConfig { rules })
}

/// Appends `<name>text</name>`, escaped.
fn elem(out: &mut String, name: &str, text: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

fn tag_xml(out: &mut String, (k, v): &(String, String)) {
    out.push_str("<Tag>");
    elem(out, "Key", k);
    elem(out, "Value", v);
    out.push_str("</Tag>");
}

/// The configuration document, each rule as it was put.
pub fn to_xml(cfg: &LifecycleConfig) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><LifecycleConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
    );
    for r in &cfg.rules {
        out.push_str("<Rule>");
        elem(&mut out, "ID", &r.id);
        if let Some(p) = &r.prefix {
            elem(&mut out, "Prefix", p);
        }
        if let Some(f) = &r.filter {
            out.push_str("<Filter>");
            if let Some(p) = &f.prefix {
                elem(&mut out, "Prefix", p);
            }
            if let Some(t) = &f.tag {
                tag_xml(&mut out, t);
            }
            if let Some(n) = f.size_greater_than {
                elem(&mut out, "ObjectSizeGreaterThan", &n.to_string());
            }
            if let Some(n) = f.size_less_than {
                elem(&mut out, "ObjectSizeLessThan", &n.to_string());
            }
            if let Some(a) = &f.and {
                out.push_str("<And>");
                if let Some(p) = &a.prefix {
                    elem(&mut out, "Prefix", p);
                }
                for t in &a.tags {
                    tag_xml(&mut out, t);
                }
                if let Some(n) = a.size_greater_than {
                    elem(&mut out, "ObjectSizeGreaterThan", &n.to_string());
                }
                if let Some(n) = a.size_less_than {
                    elem(&mut out, "ObjectSizeLessThan", &n.to_string());
                }
                out.push_str("</And>");
            }
            out.push_str("</Filter>");
        }
        elem(
            &mut out,
            "Status",
            if r.enabled { "Enabled" } else { "Disabled" },
        );
        if let Some(e) = r.expiration {
            out.push_str("<Expiration>");
            match e {
                Expiration::Days(d) => elem(&mut out, "Days", &d.to_string()),
                Expiration::Date(ms) => elem(&mut out, "Date", &format_timestamp(ms)),
                Expiration::DeleteMarker(b) => {
                    elem(&mut out, "ExpiredObjectDeleteMarker", &b.to_string())
                }
            }
            out.push_str("</Expiration>");
        }
        if let Some(n) = r.noncurrent_expiration {
            out.push_str("<NoncurrentVersionExpiration>");
            elem(&mut out, "NoncurrentDays", &n.days.to_string());
            if let Some(v) = n.newer_noncurrent_versions {
                elem(&mut out, "NewerNoncurrentVersions", &v.to_string());
            }
            out.push_str("</NoncurrentVersionExpiration>");
        }
        if let Some(d) = r.abort_incomplete_days {
            out.push_str("<AbortIncompleteMultipartUpload>");
            elem(&mut out, "DaysAfterInitiation", &d.to_string());
            out.push_str("</AbortIncompleteMultipartUpload>");
        }
        out.push_str("</Rule>");
    }
    out.push_str("</LifecycleConfiguration>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(rules: &str) -> Vec<u8> {
        format!("<LifecycleConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{rules}</LifecycleConfiguration>").into_bytes()
    }

    #[test]
    fn parses_and_echoes_each_shape() {
        let body = doc("<Rule><ID>r1</ID><Prefix>test1/</Prefix><Status>Enabled</Status><Expiration><Days>31</Days></Expiration></Rule>\
            <Rule><Filter><And><Prefix>p/</Prefix><Tag><Key>a</Key><Value>1</Value></Tag><Tag><Key>b</Key><Value>2</Value></Tag></And></Filter><Status>Disabled</Status><NoncurrentVersionExpiration><NoncurrentDays>2</NoncurrentDays><NewerNoncurrentVersions>5</NewerNoncurrentVersions></NoncurrentVersionExpiration></Rule>\
            <Rule><ID>e</ID><Filter /><Status>Enabled</Status><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration><AbortIncompleteMultipartUpload><DaysAfterInitiation>3</DaysAfterInitiation></AbortIncompleteMultipartUpload></Rule>");
        let c = parse(&body).unwrap();
        assert_eq!(c.rules.len(), 3);
        assert_eq!(c.rules[0].prefix.as_deref(), Some("test1/"));
        assert!(c.rules[0].filter.is_none());
        assert_eq!(c.rules[0].expiration, Some(Expiration::Days(31)));
        let and = c.rules[1].filter.as_ref().unwrap().and.as_ref().unwrap();
        assert_eq!(and.tags.len(), 2);
        assert!(!c.rules[1].enabled);
        assert_eq!(
            c.rules[1]
                .noncurrent_expiration
                .unwrap()
                .newer_noncurrent_versions,
            Some(5)
        );
        assert!(c.rules[2].filter.is_some(), "an empty Filter is a filter");
        assert_eq!(c.rules[2].abort_incomplete_days, Some(3));
        let again = parse(to_xml(&c).as_bytes()).unwrap();
        assert_eq!(again, c);
        let xml = to_xml(&c);
        assert!(
            xml.contains("<Rule><ID>r1</ID><Prefix>test1/</Prefix><Status>Enabled</Status>"),
            "{xml}"
        );
    }

    #[test]
    fn refuses_what_s3_refuses() {
        let status = |s: &str| {
            parse(&doc(&format!("<Rule><Prefix>a</Prefix><Status>{s}</Status><Expiration><Days>1</Days></Expiration></Rule>")))
        };
        assert!(matches!(
            status("enabled"),
            Err(LifecycleError::MalformedXml(_))
        ));
        assert!(status("Enabled").is_ok());
        let exp = |e: &str| {
            parse(&doc(&format!("<Rule><Prefix>a</Prefix><Status>Enabled</Status><Expiration>{e}</Expiration></Rule>")))
        };
        assert!(matches!(
            exp("<Days>1</Days><Date>2030-01-01T00:00:00Z</Date>"),
            Err(LifecycleError::MalformedXml(_))
        ));
        assert!(matches!(
            exp("<Date>1970-08-22T19:08:21Z</Date>").map(|c| c.validate(&mut String::new)),
            Ok(Err(LifecycleError::InvalidArgument(_)))
        ));
        assert!(matches!(
            exp("<Days>-1</Days>"),
            Err(LifecycleError::InvalidArgument(_))
        ));
        let transition = parse(&doc("<Rule><Prefix>a</Prefix><Status>Enabled</Status><Transition><Date>1970-08-23T00:55:27Z</Date><StorageClass>GLACIER</StorageClass></Transition></Rule>"));
        assert!(matches!(
            transition,
            Err(LifecycleError::InvalidArgument(_))
        ));
        let transition = parse(&doc("<Rule><Prefix>a</Prefix><Status>Enabled</Status><Transition><Days>1</Days><StorageClass>GLACIER</StorageClass></Transition></Rule>"));
        assert!(matches!(transition, Err(LifecycleError::NotImplemented(_))));
        assert!(parse(b"<LifecycleConfiguration><Rule>").is_err());
    }
}
