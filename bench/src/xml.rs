//! The little text handling S3 needs here: percent-encoding of query values and reading or
//! escaping the text of XML elements (answers are small and flat, so no XML parser).

/// Percent-encodes all but the unreserved characters (a query value; `/` too).
pub fn uri_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The text of the first `<tag>` element (XML entities decoded).
pub fn xml_value(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&close)? + start;
    Some(xml_unescape(&xml[start..end]))
}

/// The texts of every `<tag>` element, in order.
pub fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(xml_unescape(&after[..j]));
        rest = &after[j + close.len()..];
    }
    out
}

/// Escapes text for an XML element.
pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

pub fn xml_unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_helpers() {
        let x = "<R><Key>a&amp;b</Key><Key>c</Key><IsTruncated>true</IsTruncated></R>";
        assert_eq!(
            xml_values(x, "Key"),
            vec!["a&b".to_string(), "c".to_string()]
        );
        assert_eq!(xml_value(x, "IsTruncated").as_deref(), Some("true"));
        assert_eq!(xml_value(x, "Nope"), None);
        assert_eq!(xml_unescape(&xml_escape("<a&'\">")), "<a&'\">");
        assert_eq!(uri_encode("a/b c~"), "a%2Fb%20c~");
    }
}
