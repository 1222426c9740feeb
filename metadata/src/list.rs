//! Listing with prefix, delimiter, start-after and a page size, as a range scan.
//!
//! Law: the result equals filtering the bucket's sorted keys by prefix and start-after,
//! folding keys that contain the delimiter after the prefix into their common prefix, and
//! taking the first `max_keys` entries; a folded prefix is skipped with one seek instead of
//! visiting every key under it.

use crate::MetadataError;

/// One stored entry: key (bucket prefix stripped) and value.
pub type RawEntry = (Vec<u8>, Vec<u8>);

/// A forward cursor over one bucket's keys (bucket prefix already stripped).
pub trait KeyCursor {
    /// Positions the cursor at the first key `>= key`.
    fn seek(&mut self, key: &[u8]);
    /// The entry under the cursor and advances, or `None` at the end of the bucket.
    fn next_entry(&mut self) -> Result<Option<RawEntry>, MetadataError>;
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    /// Exclusive lower bound (ListObjects' marker, V2's start-after or continuation point).
    pub start_after: Option<String>,
    pub max_keys: usize,
}

/// One listed entry: an object (key and stored value) or a common prefix.
#[derive(Debug, Clone, PartialEq)]
pub enum ListEntry<V> {
    Object(String, V),
    Prefix(String),
}

impl<V> ListEntry<V> {
    pub fn name(&self) -> &str {
        match self {
            ListEntry::Object(k, _) | ListEntry::Prefix(k) => k,
        }
    }
}

/// A page of results.
#[derive(Debug, Clone, PartialEq)]
pub struct ListPage<V> {
    pub entries: Vec<ListEntry<V>>,
    pub is_truncated: bool,
}

/// Runs a listing over `cursor`, decoding stored values with `decode`.
pub fn list<V>(
    cursor: &mut dyn KeyCursor,
    q: &ListQuery,
    decode: impl Fn(&[u8]) -> Result<V, MetadataError>,
) -> Result<ListPage<V>, MetadataError> {
    let prefix = q.prefix.as_bytes();
    let after = q.start_after.as_deref().unwrap_or("").as_bytes();
    let delim = q
        .delimiter
        .as_deref()
        .filter(|d| !d.is_empty())
        .map(str::as_bytes);
    let mut entries = Vec::new();
    if q.max_keys == 0 {
        // S3 answers max-keys=0 with an empty, untruncated page.
        return Ok(ListPage {
            entries,
            is_truncated: false,
        });
    }
    let start: &[u8] = if after >= prefix { after } else { prefix };
    cursor.seek(start);
    loop {
        let Some((key, value)) = cursor.next_entry()? else {
            return Ok(ListPage {
                entries,
                is_truncated: false,
            });
        };
        if !key.starts_with(prefix) {
            if key.as_slice() < prefix {
                continue;
            }
            return Ok(ListPage {
                entries,
                is_truncated: false,
            });
        }
        if !after.is_empty() && key.as_slice() <= after {
            continue;
        }
        let folded = delim.and_then(|d| {
            find(&key[prefix.len()..], d).map(|pos| key[..prefix.len() + pos + d.len()].to_vec())
        });
        if let Some(cp) = folded {
            // A prefix at or before the start point was returned by an earlier page.
            if !after.is_empty() && cp.as_slice() <= after {
                seek_past(cursor, &cp);
                continue;
            }
            if entries.len() == q.max_keys {
                return Ok(ListPage {
                    entries,
                    is_truncated: true,
                });
            }
            entries.push(ListEntry::Prefix(utf8(cp.clone())?));
            seek_past(cursor, &cp);
        } else {
            if entries.len() == q.max_keys {
                return Ok(ListPage {
                    entries,
                    is_truncated: true,
                });
            }
            entries.push(ListEntry::Object(utf8(key)?, decode(&value)?));
        }
    }
}

/// Moves the cursor past every key that starts with `prefix`. Keys are UTF-8, which never
/// contains the byte 0xFF, so `prefix 0xFF` sorts after all of them.
fn seek_past(cursor: &mut dyn KeyCursor, prefix: &[u8]) {
    let mut k = prefix.to_vec();
    k.push(0xFF);
    cursor.seek(&k);
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn utf8(b: Vec<u8>) -> Result<String, MetadataError> {
    String::from_utf8(b).map_err(|e| MetadataError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct VecCursor {
        keys: Vec<Vec<u8>>,
        pos: usize,
    }

    impl KeyCursor for VecCursor {
        fn seek(&mut self, key: &[u8]) {
            self.pos = self.keys.partition_point(|k| k.as_slice() < key);
        }
        fn next_entry(&mut self) -> Result<Option<RawEntry>, MetadataError> {
            let r = self.keys.get(self.pos).map(|k| (k.clone(), Vec::new()));
            self.pos += 1;
            Ok(r)
        }
    }

    /// The brute-force reference the law in the module docs describes.
    fn naive(keys: &[&str], q: &ListQuery) -> (Vec<String>, bool) {
        let after = q.start_after.clone().unwrap_or_default();
        let mut out: Vec<String> = Vec::new();
        for k in keys {
            if !k.starts_with(&q.prefix) || **k <= *after.as_str() {
                continue;
            }
            let name = match q.delimiter.as_deref().filter(|d| !d.is_empty()) {
                Some(d) => match k[q.prefix.len()..].find(d) {
                    Some(p) => k[..q.prefix.len() + p + d.len()].to_string(),
                    None => k.to_string(),
                },
                None => k.to_string(),
            };
            if name.as_str() <= after.as_str() && name != **k {
                continue;
            }
            if out.last() != Some(&name) {
                out.push(name);
            }
        }
        // max-keys=0 is an empty, untruncated page (as S3 answers it).
        let truncated = q.max_keys > 0 && out.len() > q.max_keys;
        out.truncate(q.max_keys);
        (out, truncated)
    }

    fn run(keys: &[&str], q: &ListQuery) -> (Vec<String>, bool) {
        let mut sorted: Vec<Vec<u8>> = keys.iter().map(|k| k.as_bytes().to_vec()).collect();
        sorted.sort();
        let mut c = VecCursor {
            keys: sorted,
            pos: 0,
        };
        let page = list(&mut c, q, |_| Ok(())).unwrap();
        (
            page.entries.iter().map(|e| e.name().to_string()).collect(),
            page.is_truncated,
        )
    }

    #[test]
    fn matches_naive_reference() {
        let mut keys = vec![
            "a", "a/1", "a/2", "a/b/c", "ab", "b", "b/x", "c/d/e", "c/d/f", "d", "é/1", "z",
        ];
        keys.sort();
        let prefixes = ["", "a", "a/", "c/", "c/d/", "zz"];
        let delims = [None, Some("/"), Some("d/"), Some("")];
        let afters = [
            None,
            Some("a"),
            Some("a/"),
            Some("a/1"),
            Some("b/x"),
            Some("c/d/"),
        ];
        for p in prefixes {
            for d in delims {
                for s in afters {
                    for max in [0, 1, 2, 3, 100] {
                        let q = ListQuery {
                            prefix: p.into(),
                            delimiter: d.map(Into::into),
                            start_after: s.map(Into::into),
                            max_keys: max,
                        };
                        assert_eq!(run(&keys, &q), naive(&keys, &q), "{q:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn paging_visits_everything_once() {
        let keys = ["a/1", "a/2", "b", "c/1", "c/2", "d"];
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let q = ListQuery {
                prefix: String::new(),
                delimiter: Some("/".into()),
                start_after: after.clone(),
                max_keys: 1,
            };
            let (page, truncated) = run(&keys, &q);
            seen.extend(page.clone());
            after = page.last().cloned();
            if !truncated {
                break;
            }
        }
        assert_eq!(seen, ["a/", "b", "c/", "d"]);
    }
}
