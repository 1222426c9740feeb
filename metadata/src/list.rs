//! Listing with prefix, delimiter, start-after and a page size, as a range scan.
//!
//! Law: the result equals filtering the bucket's sorted keys by prefix and start-after,
//! folding keys that contain the delimiter after the prefix into their common prefix, and
//! taking the first `max_keys` entries; a folded prefix is skipped with one seek instead of
//! visiting every key under it.

use crate::fold::{self, Item, Spec, Visitor};
pub use crate::fold::{KeyCursor, RawEntry};
use crate::MetadataError;

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
    if q.max_keys == 0 {
        // S3 answers max-keys=0 with an empty, untruncated page.
        return Ok(ListPage {
            entries: Vec::new(),
            is_truncated: false,
        });
    }
    let prefix = q.prefix.as_bytes();
    let after = q.start_after.as_deref().unwrap_or("").as_bytes();
    let spec = Spec {
        prefix,
        delimiter: q.delimiter.as_deref().map(str::as_bytes),
        start: if after >= prefix { after } else { prefix },
        prefix_marker: (!after.is_empty()).then_some(after),
        max: q.max_keys,
    };
    let mut visitor = Objects {
        after,
        decode,
        value: std::marker::PhantomData,
    };
    let folded = fold::fold(cursor, &spec, &mut visitor)?;
    Ok(ListPage {
        entries: folded
            .items
            .into_iter()
            .map(|i| match i {
                Item::Entry((k, v)) => ListEntry::Object(k, v),
                Item::Prefix(p) => ListEntry::Prefix(p),
            })
            .collect(),
        is_truncated: folded.truncated,
    })
}

/// Objects: one entry per key, keys after the start point.
struct Objects<'q, V, D> {
    after: &'q [u8],
    decode: D,
    value: std::marker::PhantomData<fn() -> V>,
}

impl<V, D: Fn(&[u8]) -> Result<V, MetadataError>> Visitor for Objects<'_, V, D> {
    type Out = (String, V);

    fn key<'k>(&self, raw: &'k [u8]) -> Result<&'k [u8], MetadataError> {
        Ok(raw)
    }

    fn skip(&mut self, _raw: &[u8], key: &[u8], _value: &[u8]) -> Result<bool, MetadataError> {
        Ok(!self.after.is_empty() && key <= self.after)
    }

    fn entry(&mut self, key: &[u8], value: &[u8]) -> Result<(String, V), MetadataError> {
        Ok((fold::utf8(key.to_vec())?, (self.decode)(value)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::fold::VecCursor;

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
        let mut sorted: Vec<RawEntry> = keys
            .iter()
            .map(|k| (k.as_bytes().to_vec(), Vec::new()))
            .collect();
        sorted.sort();
        let mut c = VecCursor {
            entries: sorted,
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
