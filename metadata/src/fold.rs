//! The one prefix/delimiter fold behind every listing (objects, versions, multipart
//! uploads), over a [`KeyCursor`].
//!
//! Law: walking stored entries in key order from a start point, an entry whose object key
//! does not start with the prefix is skipped (before the prefix) or ends the listing (after
//! it); an entry the listing's own rule says is before the page ([`Visitor::skip`]) is
//! skipped; an object key that contains the delimiter after the prefix is folded into its
//! common prefix (prefix + up to and including the first delimiter), which is listed once
//! and then skipped with one seek past every key under it, and skipped outright when it is
//! at or before the page's prefix marker (an earlier page listed it); every other entry is
//! listed through [`Visitor::entry`]. At most `max` entries and prefixes are listed; the page
//! is truncated when another one would follow.

use crate::MetadataError;

/// One stored entry: key (the cursor's prefix stripped) and value.
pub type RawEntry = (Vec<u8>, Vec<u8>);

/// A forward cursor over the keys under one prefix of a column family (the prefix already
/// stripped from the keys it returns).
pub trait KeyCursor {
    /// Positions the cursor at the first key `>= key`.
    fn seek(&mut self, key: &[u8]);
    /// The entry under the cursor and advances, or `None` at the end of the range.
    fn next_entry(&mut self) -> Result<Option<RawEntry>, MetadataError>;
}

/// What one listing does with the stored entries the fold walks.
pub(crate) trait Visitor {
    /// What a listed entry becomes.
    type Out;
    /// The object key inside a stored key (the part the prefix and delimiter apply to).
    fn key<'k>(&self, raw: &'k [u8]) -> Result<&'k [u8], MetadataError>;
    /// Whether the entry lies before the page (a marker's rule); called in key order for
    /// every entry under the prefix.
    fn skip(&mut self, raw: &[u8], key: &[u8], value: &[u8]) -> Result<bool, MetadataError>;
    /// The listed form of an entry that is not folded.
    fn entry(&mut self, key: &[u8], value: &[u8]) -> Result<Self::Out, MetadataError>;
}

/// The page bounds of one fold.
pub(crate) struct Spec<'q> {
    pub prefix: &'q [u8],
    /// Empty counts as none.
    pub delimiter: Option<&'q [u8]>,
    /// Where the walk starts (a stored key).
    pub start: &'q [u8],
    /// Common prefixes at or before this one were listed by an earlier page.
    pub prefix_marker: Option<&'q [u8]>,
    pub max: usize,
}

/// A listed entry or common prefix.
#[derive(Debug)]
pub(crate) enum Item<T> {
    Entry(T),
    Prefix(String),
}

/// The result of a fold: the items, and whether more would follow.
pub(crate) struct Folded<T> {
    pub items: Vec<Item<T>>,
    pub truncated: bool,
}

/// Runs the fold (see the module docs).
pub(crate) fn fold<V: Visitor>(
    cursor: &mut dyn KeyCursor,
    spec: &Spec<'_>,
    visitor: &mut V,
) -> Result<Folded<V::Out>, MetadataError> {
    let prefix = spec.prefix;
    let delim = spec.delimiter.filter(|d| !d.is_empty());
    let mut items = Vec::new();
    cursor.seek(spec.start);
    let done = |items, truncated| Ok(Folded { items, truncated });
    loop {
        let Some((raw, value)) = cursor.next_entry()? else {
            return done(items, false);
        };
        let key = visitor.key(&raw)?;
        if !key.starts_with(prefix) {
            if key < prefix {
                continue;
            }
            return done(items, false);
        }
        if visitor.skip(&raw, key, &value)? {
            continue;
        }
        let folded = delim.and_then(|d| {
            find(&key[prefix.len()..], d).map(|pos| key[..prefix.len() + pos + d.len()].to_vec())
        });
        if let Some(cp) = folded {
            if spec.prefix_marker.is_some_and(|m| cp.as_slice() <= m) {
                seek_past(cursor, &cp);
                continue;
            }
            if items.len() == spec.max {
                return done(items, true);
            }
            seek_past(cursor, &cp);
            items.push(Item::Prefix(utf8(cp)?));
            continue;
        }
        if items.len() == spec.max {
            return done(items, true);
        }
        items.push(Item::Entry(visitor.entry(key, &value)?));
    }
}

/// Moves the cursor past every key that starts with `prefix`. Keys are UTF-8 (and upload
/// ids hex, version orders after a 0x00), which never puts the byte 0xFF right after a
/// common prefix, so `prefix 0xFF` sorts after all of them.
fn seek_past(cursor: &mut dyn KeyCursor, prefix: &[u8]) {
    let mut k = prefix.to_vec();
    k.push(0xFF);
    cursor.seek(&k);
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub(crate) fn utf8(b: Vec<u8>) -> Result<String, MetadataError> {
    String::from_utf8(b).map_err(|e| MetadataError::Corrupt(e.to_string()))
}

/// A cursor over sorted in-memory entries, for the listings' tests.
#[cfg(test)]
pub(crate) struct VecCursor {
    pub entries: Vec<RawEntry>,
    pub pos: usize,
}

#[cfg(test)]
impl KeyCursor for VecCursor {
    fn seek(&mut self, key: &[u8]) {
        self.pos = self.entries.partition_point(|(k, _)| k.as_slice() < key);
    }
    fn next_entry(&mut self) -> Result<Option<RawEntry>, MetadataError> {
        let r = self.entries.get(self.pos).cloned();
        self.pos += 1;
        Ok(r)
    }
}
