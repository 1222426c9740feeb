//! ListObjectVersions as a range scan over `versions`.
//!
//! Law: the result equals taking every (key, version) of the bucket in S3 order (keys
//! ascending, each key's versions newest first), keeping keys under the prefix, starting
//! after the key marker (after the named version of it when a version-id marker is given),
//! folding keys that contain the delimiter after the prefix into one common prefix each, and
//! taking the first `max_keys` entries (versions, delete markers and prefixes all count). A
//! version is the latest when it is the first of its key.

use crate::fold::{self, Item, KeyCursor, Spec, Visitor};
use crate::keys::split_version_key;
use crate::records::{decode, VersionRecord};
use crate::MetadataError;

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct VersionQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub key_marker: Option<String>,
    /// Only with `key_marker`: start after this version of it (`null` for the null version).
    pub version_id_marker: Option<String>,
    pub max_keys: usize,
}

/// One listed entry.
#[derive(Debug, Clone, PartialEq)]
pub enum VersionEntry {
    Version {
        key: String,
        is_latest: bool,
        version: Box<VersionRecord>,
    },
    Prefix(String),
}

/// A page of versions.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VersionPage {
    pub entries: Vec<VersionEntry>,
    pub is_truncated: bool,
    /// When truncated: where the next page starts.
    pub next_key_marker: Option<String>,
    pub next_version_id_marker: Option<String>,
}

/// Runs a version listing over `cursor` (over `versions` with the bucket prefix stripped).
pub fn list_versions(
    cursor: &mut dyn KeyCursor,
    q: &VersionQuery,
) -> Result<VersionPage, MetadataError> {
    let prefix = q.prefix.as_bytes();
    let marker = q.key_marker.as_deref().filter(|m| !m.is_empty());
    let vmarker = q.version_id_marker.as_deref().filter(|v| !v.is_empty());
    let start = match marker {
        // Versions of the marker key are walked when a version marker names one of them.
        Some(m) if m.as_bytes() >= prefix => {
            let mut start = m.as_bytes().to_vec();
            start.push(if vmarker.is_some() { 0 } else { 1 });
            start
        }
        _ => prefix.to_vec(),
    };
    let spec = Spec {
        prefix,
        delimiter: q.delimiter.as_deref().map(str::as_bytes),
        start: &start,
        prefix_marker: marker.map(str::as_bytes),
        max: q.max_keys,
    };
    let mut visitor = Versions {
        marker: marker.map(str::as_bytes),
        vmarker,
        skipping_marker_key: marker.is_some_and(|m| m.as_bytes() >= prefix) && vmarker.is_some(),
        in_marker_key: false,
        last_key: marker.map(|m| m.as_bytes().to_vec()),
    };
    let folded = fold::fold(cursor, &spec, &mut visitor)?;
    let mut page = VersionPage {
        entries: folded
            .items
            .into_iter()
            .map(|i| match i {
                Item::Entry(e) => e,
                Item::Prefix(p) => VersionEntry::Prefix(p),
            })
            .collect(),
        ..VersionPage::default()
    };
    if folded.truncated {
        page.is_truncated = true;
        match page.entries.last() {
            Some(VersionEntry::Version { key, version, .. }) => {
                page.next_key_marker = Some(key.clone());
                page.next_version_id_marker = Some(version.id_str().to_string());
            }
            Some(VersionEntry::Prefix(p)) => page.next_key_marker = Some(p.clone()),
            None => {}
        }
    }
    Ok(page)
}

/// Versions: several entries per key, newest first; the first of a key is its latest.
struct Versions<'q> {
    marker: Option<&'q [u8]>,
    vmarker: Option<&'q str>,
    /// Entries of the marker key up to and including the marker version are skipped.
    skipping_marker_key: bool,
    /// Set once the marker version is passed: later versions of the marker key are listed.
    in_marker_key: bool,
    last_key: Option<Vec<u8>>,
}

impl Visitor for Versions<'_> {
    type Out = VersionEntry;

    fn key<'k>(&self, raw: &'k [u8]) -> Result<&'k [u8], MetadataError> {
        split_version_key(raw)
            .map(|(key, _)| key)
            .ok_or_else(|| MetadataError::Corrupt("bad version key".into()))
    }

    fn skip(&mut self, _raw: &[u8], key: &[u8], value: &[u8]) -> Result<bool, MetadataError> {
        if self.skipping_marker_key {
            if Some(key) == self.marker {
                let v: VersionRecord = decode(value)?;
                if Some(v.id_str()) == self.vmarker {
                    self.skipping_marker_key = false;
                    self.in_marker_key = true;
                }
                return Ok(true);
            }
            // The marker version was not found: resume after the marker key.
            self.skipping_marker_key = false;
        }
        Ok(self
            .marker
            .is_some_and(|m| key < m || (key == m && !self.in_marker_key)))
    }

    fn entry(&mut self, key: &[u8], value: &[u8]) -> Result<VersionEntry, MetadataError> {
        let version: VersionRecord = decode(value)?;
        let is_latest = self.last_key.as_deref() != Some(key);
        self.last_key = Some(key.to_vec());
        Ok(VersionEntry::Version {
            key: fold::utf8(key.to_vec())?,
            is_latest,
            version: Box::new(version),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fold::VecCursor;
    use crate::records::encode;

    /// (key, version ids newest first); `null` is the null version, a `m` prefix a marker.
    fn history() -> Vec<(&'static str, Vec<&'static str>)> {
        vec![
            ("a", vec!["a3", "a2", "a1"]),
            ("a/1", vec!["null"]),
            ("a/2", vec!["m2", "x1"]),
            ("a/b/c", vec!["c1"]),
            ("ab", vec!["null", "b9", "b8"]),
            ("b", vec!["m1"]),
            ("c/d", vec!["d1", "null"]),
            ("é", vec!["e1"]),
        ]
    }

    fn rec(id: &str) -> VersionRecord {
        VersionRecord {
            version_id: (id != "null").then(|| id.to_string()),
            last_modified_ms: 0,
            object: None,
        }
    }

    fn cursor() -> VecCursor {
        let mut entries = Vec::new();
        let mut seq = 0u64;
        for (key, ids) in history() {
            // Written oldest first: each later id gets a larger sequence number.
            for id in ids.iter().rev() {
                let mut k = key.as_bytes().to_vec();
                k.push(0);
                k.extend_from_slice(&crate::keys::version_order(seq));
                seq += 1;
                entries.push((k, encode(&rec(id))));
            }
        }
        entries.sort();
        VecCursor { entries, pos: 0 }
    }

    /// Names as `key@id`, `key@id*` for latest, or `prefix/` for common prefixes.
    fn names(page: &VersionPage) -> Vec<String> {
        page.entries
            .iter()
            .map(|e| match e {
                VersionEntry::Version {
                    key,
                    is_latest,
                    version,
                } => format!(
                    "{key}@{}{}",
                    version.id_str(),
                    if *is_latest { "*" } else { "" }
                ),
                VersionEntry::Prefix(p) => p.clone(),
            })
            .collect()
    }

    /// The brute-force reference the law describes.
    fn naive(q: &VersionQuery) -> (Vec<String>, bool) {
        let mut all: Vec<(String, String, bool)> = Vec::new();
        for (key, ids) in history() {
            for (i, id) in ids.iter().enumerate() {
                all.push((key.to_string(), id.to_string(), i == 0));
            }
        }
        let marker = q.key_marker.clone().unwrap_or_default();
        let start = match (&q.key_marker, &q.version_id_marker) {
            (Some(m), Some(v)) if !m.is_empty() => all
                .iter()
                .position(|(k, id, _)| k == m && id == v)
                .map(|i| i + 1)
                .unwrap_or_else(|| all.iter().position(|(k, _, _)| k > m).unwrap_or(all.len())),
            (Some(m), _) if !m.is_empty() => {
                all.iter().position(|(k, _, _)| k > m).unwrap_or(all.len())
            }
            _ => 0,
        };
        let mut out: Vec<String> = Vec::new();
        for (key, id, latest) in &all[start..] {
            if !key.starts_with(&q.prefix) {
                continue;
            }
            let folded = q
                .delimiter
                .as_deref()
                .filter(|d| !d.is_empty())
                .and_then(|d| {
                    key[q.prefix.len()..]
                        .find(d)
                        .map(|p| key[..q.prefix.len() + p + d.len()].to_string())
                });
            match folded {
                Some(cp) => {
                    if (!marker.is_empty() && cp <= marker) || out.last() == Some(&cp) {
                        continue;
                    }
                    out.push(cp);
                }
                None => out.push(format!("{key}@{id}{}", if *latest { "*" } else { "" })),
            }
        }
        let truncated = out.len() > q.max_keys;
        out.truncate(q.max_keys);
        (out, truncated)
    }

    #[test]
    fn matches_naive_reference() {
        let prefixes = ["", "a", "a/", "c/", "zz"];
        let delims = [None, Some("/")];
        let markers = [
            (None, None),
            (Some("a"), None),
            (Some("a"), Some("a2")),
            (Some("a"), Some("a1")),
            (Some("a"), Some("nope")),
            (Some("a/2"), Some("m2")),
            (Some("ab"), Some("null")),
            (Some("a/"), None),
            (Some("c/d"), Some("d1")),
        ];
        for p in prefixes {
            for d in delims {
                for (km, vm) in markers {
                    for max in [0, 1, 2, 3, 5, 100] {
                        let q = VersionQuery {
                            prefix: p.into(),
                            delimiter: d.map(Into::into),
                            key_marker: km.map(Into::into),
                            version_id_marker: vm.map(Into::into),
                            max_keys: max,
                        };
                        let page = list_versions(&mut cursor(), &q).unwrap();
                        assert_eq!((names(&page), page.is_truncated), naive(&q), "{q:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn paging_with_next_markers_visits_everything_once() {
        let full = naive(&VersionQuery {
            max_keys: 1000,
            ..Default::default()
        })
        .0;
        for max in 1..=full.len() + 1 {
            let mut seen = Vec::new();
            let mut q = VersionQuery {
                max_keys: max,
                ..Default::default()
            };
            loop {
                let page = list_versions(&mut cursor(), &q).unwrap();
                seen.extend(names(&page));
                if !page.is_truncated {
                    break;
                }
                q.key_marker = page.next_key_marker.clone();
                q.version_id_marker = page.next_version_id_marker.clone();
            }
            assert_eq!(seen, full, "max-keys {max}");
        }
    }
}
