//! XML: a small writer for response documents and serde types for request bodies.

use serde::Deserialize;

/// Builds an XML document element by element, escaping text.
pub struct XmlWriter {
    out: String,
}

impl Default for XmlWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl XmlWriter {
    pub fn new() -> Self {
        XmlWriter {
            out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"),
        }
    }

    /// Opens the root element with the S3 namespace.
    pub fn open_root(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out
            .push_str(" xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    }

    pub fn open(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
    }

    /// Opens an element with attributes given verbatim (`name="value" …`, already escaped).
    pub fn open_with(&mut self, name: &str, attrs: &str) {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push(' ');
        self.out.push_str(attrs);
        self.out.push('>');
    }

    pub fn close(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }

    pub fn elem(&mut self, name: &str, text: &str) {
        self.open(name);
        escape_into(&mut self.out, text);
        self.close(name);
    }

    pub fn text(&mut self, text: &str) {
        escape_into(&mut self.out, text);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' => {
                out.push_str(&format!("&#x{:X};", c as u32))
            }
            c => out.push(c),
        }
    }
}

/// The body of DeleteObjects.
#[derive(Debug, Default)]
pub struct DeleteRequest {
    pub objects: Vec<DeleteObject>,
    pub quiet: Option<bool>,
}

#[derive(Debug, Default)]
pub struct DeleteObject {
    pub key: String,
    pub version_id: Option<String>,
}

/// Parses a DeleteObjects body keeping every key byte for byte: serde deserialisation trims
/// text, which would turn a key of spaces into another key.
pub fn parse_delete(body: &[u8]) -> Option<DeleteRequest> {
    use quick_xml::events::Event;
    let text = std::str::from_utf8(body).ok()?;
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().trim_text(false);
    let mut path: Vec<String> = Vec::new();
    let mut out = DeleteRequest::default();
    let mut object: Option<(Option<String>, Option<String>)> = None;
    let mut text = String::new();
    let local = |name: &[u8]| String::from_utf8_lossy(name).into_owned();
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => {
                let name = local(e.local_name().as_ref());
                if path.is_empty() && name != "Delete" {
                    return None;
                }
                if path.len() == 1 && name == "Object" {
                    object = Some((None, None));
                }
                path.push(name);
                text.clear();
            }
            Event::Empty(e) => {
                let name = local(e.local_name().as_ref());
                match (path.len(), name.as_str(), object.as_mut()) {
                    (2, "Key", Some(o)) => o.0 = Some(String::new()),
                    (2, "VersionId", Some(o)) => o.1 = Some(String::new()),
                    (1, "Object", _) => return None,
                    (0, _, _) => return None,
                    _ => {}
                }
            }
            Event::Text(t) => text.push_str(&t.unescape().ok()?),
            Event::CData(c) => text.push_str(std::str::from_utf8(&c).ok()?),
            Event::End(_) => {
                let name = path.pop()?;
                match (path.len(), name.as_str(), object.as_mut()) {
                    (2, "Key", Some(o)) => o.0 = Some(std::mem::take(&mut text)),
                    (2, "VersionId", Some(o)) => o.1 = Some(text.trim().to_string()),
                    (1, "Object", _) => {
                        let (key, version_id) = object.take()?;
                        out.objects.push(DeleteObject {
                            key: key?,
                            version_id,
                        });
                    }
                    (1, "Quiet", _) => {
                        out.quiet = Some(match text.trim() {
                            "true" => true,
                            "false" => false,
                            _ => return None,
                        })
                    }
                    _ => {}
                }
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    path.is_empty().then_some(out)
}

/// The optional body of CreateBucket.
#[derive(Debug, Deserialize)]
pub struct CreateBucketConfiguration {
    #[serde(rename = "LocationConstraint", default)]
    pub location_constraint: Option<String>,
}

/// The body of CompleteMultipartUpload.
#[derive(Debug, Deserialize)]
pub struct CompleteMultipartUpload {
    #[serde(rename = "Part", default)]
    pub parts: Vec<CompletedPart>,
}

#[derive(Debug, Deserialize)]
pub struct CompletedPart {
    #[serde(rename = "PartNumber")]
    pub part_number: u32,
    #[serde(rename = "ETag")]
    pub etag: String,
    #[serde(rename = "ChecksumCRC32", default)]
    pub checksum_crc32: Option<String>,
    #[serde(rename = "ChecksumCRC32C", default)]
    pub checksum_crc32c: Option<String>,
    #[serde(rename = "ChecksumCRC64NVME", default)]
    pub checksum_crc64nvme: Option<String>,
    #[serde(rename = "ChecksumSHA1", default)]
    pub checksum_sha1: Option<String>,
    #[serde(rename = "ChecksumSHA256", default)]
    pub checksum_sha256: Option<String>,
}

impl CompletedPart {
    /// The checksum the client named for this part, as (S3 algorithm name, base64 value).
    pub fn checksum(&self) -> Option<(&'static str, &str)> {
        [
            ("CRC32", &self.checksum_crc32),
            ("CRC32C", &self.checksum_crc32c),
            ("CRC64NVME", &self.checksum_crc64nvme),
            ("SHA1", &self.checksum_sha1),
            ("SHA256", &self.checksum_sha256),
        ]
        .into_iter()
        .find_map(|(alg, v)| v.as_deref().map(|v| (alg, v.trim())))
    }
}

pub fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Option<T> {
    let text = std::str::from_utf8(body).ok()?;
    quick_xml::de::from_str(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_text() {
        let mut w = XmlWriter::new();
        w.elem("Key", "a<b>&\"c'\r");
        assert!(w
            .finish()
            .ends_with("<Key>a&lt;b&gt;&amp;&quot;c&apos;&#xD;</Key>"));
    }

    #[test]
    fn parses_delete() {
        let body = br#"<?xml version="1.0"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>a&amp;b</Key></Object><Object><Key>c</Key><VersionId>v</VersionId></Object><Quiet>true</Quiet></Delete>"#;
        let d = parse_delete(body).unwrap();
        assert_eq!(d.objects.len(), 2);
        assert_eq!(d.objects[0].key, "a&b");
        assert_eq!(d.objects[1].version_id.as_deref(), Some("v"));
        assert_eq!(d.quiet, Some(true));
        assert!(parse_delete(b"<Delete><Object>").is_none());
        assert!(parse_delete(b"\xff\xfe").is_none());
        assert!(parse_delete(b"<Other><Object><Key>k</Key></Object></Other>").is_none());
        assert!(
            parse_delete(b"<Delete><Object><VersionId>v</VersionId></Object></Delete>").is_none()
        );
        // Keys are kept byte for byte: spaces, a leading newline, CDATA.
        let body = b"<Delete>\n  <Object><Key>   </Key></Object>\n  <Object><Key>\n a </Key></Object><Object><Key><![CDATA[<x>]]></Key></Object></Delete>";
        let d = parse_delete(body).unwrap();
        let keys: Vec<_> = d.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["   ", "\n a ", "<x>"]);
        assert_eq!(d.quiet, None);
    }

    #[test]
    fn parses_complete_multipart_upload() {
        let body = br#"<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Part><ETag>"a1"</ETag><PartNumber>1</PartNumber><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part><Part><PartNumber>3</PartNumber><ETag>b2</ETag></Part></CompleteMultipartUpload>"#;
        let c: CompleteMultipartUpload = parse(body).unwrap();
        assert_eq!(c.parts.len(), 2);
        assert_eq!(c.parts[0].etag, "\"a1\"");
        assert_eq!(c.parts[0].checksum(), Some(("CRC32", "AAAAAA==")));
        assert_eq!(c.parts[1].part_number, 3);
        assert_eq!(c.parts[1].checksum(), None);
        let bad = b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>e</ETag></Part></CompleteMultipartUpload>";
        assert!(parse::<CompleteMultipartUpload>(bad).is_none());
    }
}
