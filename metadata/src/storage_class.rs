//! Storage classes: the S3 class names a client may send (`x-amz-storage-class`) and the
//! erasure coding each stands for. `STANDARD` is the cluster's erasure coding (`--ec`,
//! [`crate::cluster_state::EC_KEY`]); `REDUCED_REDUNDANCY` is built in as the same data
//! shards with one parity shard fewer (at least one); the operator sets any S3 class
//! (`cairn admin storage-class NAME --ec K+M`), including over the built-in
//! `REDUCED_REDUNDANCY`. A class nobody set is refused (`InvalidStorageClass`).
//!
//! The class an object was written in is kept with it, in its stored headers under
//! [`HEADER`] (absent: `STANDARD`), and its stripes record their own scheme, so changing a
//! class later changes new writes only.
//!
//! | key in `sys` | value | written by |
//! | --- | --- | --- |
//! | [`PREFIX`]`<NAME>` | [`EcScheme`] | [`Command::SetStorageClass`] |
//!
//! A bucket's default class (used when a write names none) is its
//! [`BucketConfigKind::StorageClass`](crate::BucketConfigKind::StorageClass) (the name as
//! text).

use std::collections::BTreeMap;

use cairn_types::EcScheme;

use crate::keys::Cf;
use crate::records::{decode_value, encode};
use crate::state::{del, put, Write};
use crate::{MetadataError, MetadataStore, Result};

#[cfg(doc)]
use crate::Command;

/// Prefix in `sys` of the operator's storage classes.
pub const PREFIX: &str = "storage-class/";
/// The stored header (and the response header) that names an object's class.
pub const HEADER: &str = "x-amz-storage-class";
/// The class of objects that name none.
pub const STANDARD: &str = "STANDARD";
/// The built-in class with fewer parity shards.
pub const REDUCED_REDUNDANCY: &str = "REDUCED_REDUNDANCY";

/// The storage class names S3 defines; only these can be given a scheme (clients know no
/// others).
pub const S3_NAMES: [&str; 11] = [
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "DEEP_ARCHIVE",
    "GLACIER_IR",
    "OUTPOSTS",
    "SNOW",
    "EXPRESS_ONEZONE",
];

/// Whether `name` is one of S3's class names.
pub fn is_s3_name(name: &str) -> bool {
    S3_NAMES.contains(&name)
}

/// The classes in force: `STANDARD`'s scheme and the operator's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageClasses {
    pub standard: EcScheme,
    /// Set by the operator (never `STANDARD`).
    pub defined: BTreeMap<String, EcScheme>,
}

impl StorageClasses {
    /// Only the built-in classes, `STANDARD` being `standard`.
    pub fn new(standard: EcScheme) -> Self {
        StorageClasses {
            standard,
            defined: BTreeMap::new(),
        }
    }

    /// The scheme of class `name`, if it has one.
    pub fn scheme(&self, name: &str) -> Option<EcScheme> {
        resolve(self.standard, &self.defined, name)
    }

    /// Every class with a scheme, by name (`STANDARD` and the built-in ones included).
    pub fn all(&self) -> BTreeMap<String, EcScheme> {
        let mut all = self.defined.clone();
        all.insert(STANDARD.into(), self.standard);
        all.entry(REDUCED_REDUNDANCY.into())
            .or_insert_with(|| reduced(self.standard));
        all
    }

    /// The most shards any class's stripe has.
    pub fn widest(&self) -> usize {
        self.all().values().map(EcScheme::total).max().unwrap_or(0)
    }
}

/// The scheme of class `name`, `STANDARD` being `standard` and `defined` the operator's.
pub fn resolve(
    standard: EcScheme,
    defined: &BTreeMap<String, EcScheme>,
    name: &str,
) -> Option<EcScheme> {
    if name == STANDARD {
        return Some(standard);
    }
    if let Some(ec) = defined.get(name) {
        return Some(*ec);
    }
    (name == REDUCED_REDUNDANCY).then(|| reduced(standard))
}

/// The built-in `REDUCED_REDUNDANCY`: one parity shard fewer, at least one (none when the
/// cluster has none).
pub fn reduced(standard: EcScheme) -> EcScheme {
    EcScheme {
        data: standard.data,
        parity: if standard.parity > 1 {
            standard.parity - 1
        } else {
            standard.parity
        },
    }
}

/// The operator's classes as stored.
pub async fn defined(meta: &dyn MetadataStore) -> Result<BTreeMap<String, EcScheme>> {
    let mut out = BTreeMap::new();
    for (k, v) in meta.scan_sys(PREFIX).await? {
        let Some(name) = k.strip_prefix(PREFIX) else {
            continue;
        };
        out.insert(name.to_string(), decode(&v)?);
    }
    Ok(out)
}

/// One stored class's scheme.
pub fn decode(raw: &[u8]) -> Result<EcScheme> {
    decode_value(raw, "storage class", |_| None)
}

/// `SetStorageClass`: an S3 class name other than `STANDARD`, at least one data shard.
pub(crate) fn set(name: &str, ec: Option<&EcScheme>, writes: &mut Vec<Write>) -> Result<()> {
    if name == STANDARD {
        return Err(MetadataError::InvalidArgument(
            "STANDARD is the cluster's erasure coding (the server's --ec)".into(),
        ));
    }
    if !is_s3_name(name) {
        return Err(MetadataError::InvalidArgument(format!(
            "{name:?} is not an S3 storage class (one of {})",
            S3_NAMES.join(", ")
        )));
    }
    let key = format!("{PREFIX}{name}").into_bytes();
    match ec {
        Some(ec) if ec.data == 0 => Err(MetadataError::InvalidArgument(
            "erasure coding needs at least one data shard".into(),
        )),
        Some(ec) => {
            writes.push(put(Cf::Sys, key, encode(ec)));
            Ok(())
        }
        None => {
            writes.push(del(Cf::Sys, key));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_and_defined_classes_resolve() {
        let mut c = StorageClasses::new(EcScheme { data: 4, parity: 2 });
        assert_eq!(c.scheme("STANDARD"), Some(EcScheme { data: 4, parity: 2 }));
        assert_eq!(
            c.scheme("REDUCED_REDUNDANCY"),
            Some(EcScheme { data: 4, parity: 1 })
        );
        assert_eq!(c.scheme("GLACIER"), None);
        assert_eq!(c.widest(), 6);
        c.defined
            .insert("GLACIER".into(), EcScheme { data: 4, parity: 4 });
        c.defined
            .insert("REDUCED_REDUNDANCY".into(), EcScheme { data: 5, parity: 1 });
        assert_eq!(c.scheme("GLACIER"), Some(EcScheme { data: 4, parity: 4 }));
        assert_eq!(
            c.scheme("REDUCED_REDUNDANCY"),
            Some(EcScheme { data: 5, parity: 1 })
        );
        assert_eq!(c.widest(), 8);
        assert_eq!(c.all().len(), 3);
        assert_eq!(reduced(EcScheme::SINGLE), EcScheme::SINGLE);
        assert_eq!(
            reduced(EcScheme { data: 2, parity: 1 }),
            EcScheme { data: 2, parity: 1 }
        );
    }

    #[test]
    fn only_s3_names_other_than_standard_can_be_set() {
        let ec = EcScheme { data: 4, parity: 3 };
        let mut w = Vec::new();
        assert!(set("GLACIER", Some(&ec), &mut w).is_ok());
        assert!(set("STANDARD", Some(&ec), &mut w).is_err());
        assert!(set("glacier", Some(&ec), &mut w).is_err());
        assert!(set("COLD", Some(&ec), &mut w).is_err());
        assert!(set("GLACIER", Some(&EcScheme { data: 0, parity: 3 }), &mut w).is_err());
        assert!(set("GLACIER", None, &mut w).is_ok());
        assert_eq!(w.len(), 2);
    }
}
