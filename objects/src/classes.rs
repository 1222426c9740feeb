//! Which erasure coding a write uses: the storage class it names (or its bucket's default,
//! or `STANDARD`) looked up in the classes this gateway knows, kept current by the cluster
//! watcher ([`ObjectService::set_storage_classes`]) and re-read from metadata when a write
//! names a class the gateway has not seen yet (so a class set through another node works at
//! once). See [`cairn_metadata::storage_class`].

use std::collections::BTreeMap;

use cairn_erasure::StripeCodec;
use cairn_metadata::storage_class::{self, StorageClasses};
use cairn_types::EcScheme;

use crate::{ObjectService, ObjectsError};

/// The operator's classes as this gateway last saw them.
#[derive(Debug, Default)]
pub(crate) struct ClassTable {
    defined: std::sync::RwLock<BTreeMap<String, EcScheme>>,
}

impl ClassTable {
    fn get(&self) -> BTreeMap<String, EcScheme> {
        self.defined
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The scheme of class `name` (see [`StorageClasses::scheme`]), without copying the
    /// table: this runs for every write.
    fn scheme(&self, standard: EcScheme, name: &str) -> Option<EcScheme> {
        let defined = self
            .defined
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        storage_class::resolve(standard, &defined, name)
    }

    fn set(&self, defined: BTreeMap<String, EcScheme>) {
        *self
            .defined
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = defined;
    }
}

impl ObjectService {
    /// The classes in force as this gateway knows them.
    pub fn storage_classes(&self) -> StorageClasses {
        StorageClasses {
            standard: self.codec.scheme(),
            defined: self.classes.get(),
        }
    }

    /// Replaces the operator's classes (from metadata).
    pub fn set_storage_classes(&self, defined: BTreeMap<String, EcScheme>) {
        self.classes.set(defined);
    }

    /// Re-reads the operator's classes from metadata.
    pub async fn refresh_storage_classes(&self) -> Result<(), ObjectsError> {
        let defined = storage_class::defined(self.meta.as_ref()).await?;
        self.classes.set(defined);
        Ok(())
    }

    /// The erasure coding of class `name` (`None`: `STANDARD`). A class this gateway does
    /// not know is looked up in metadata once before it is refused
    /// ([`ObjectsError::InvalidStorageClass`]).
    pub async fn class_scheme(&self, name: Option<&str>) -> Result<EcScheme, ObjectsError> {
        let name = name.unwrap_or(storage_class::STANDARD);
        let standard = self.codec.scheme();
        if let Some(ec) = self.classes.scheme(standard, name) {
            return Ok(ec);
        }
        if storage_class::is_s3_name(name) {
            self.refresh_storage_classes().await?;
            if let Some(ec) = self.classes.scheme(standard, name) {
                return Ok(ec);
            }
        }
        Err(ObjectsError::InvalidStorageClass(name.to_string()))
    }

    /// The codec that writes stripes in `ec`.
    pub(crate) fn codec_for(&self, ec: EcScheme) -> Result<StripeCodec, ObjectsError> {
        if ec == self.codec.scheme() {
            return Ok(self.codec.clone());
        }
        StripeCodec::new(ec).map_err(|e| ObjectsError::Config(e.to_string()))
    }

    /// Shards of a stripe in `ec` that must be durable before it counts as written: the
    /// configured quorum for the cluster's scheme, k+1 (capped at k+m) for the others.
    pub(crate) fn write_quorum_for(&self, ec: EcScheme) -> usize {
        if ec == self.codec.scheme() {
            self.config.write_quorum()
        } else {
            (ec.data as usize + 1).min(ec.total())
        }
    }
}

/// The class named in stored `headers` (absent: `STANDARD`).
pub fn class_of(headers: &BTreeMap<String, String>) -> &str {
    headers
        .get(storage_class::HEADER)
        .map_or(storage_class::STANDARD, String::as_str)
}

/// Records `class` in stored `headers` (`STANDARD` is the absence of the header, as S3
/// leaves it out of responses).
pub fn set_class(headers: &mut BTreeMap<String, String>, class: &str) {
    if class == storage_class::STANDARD {
        headers.remove(storage_class::HEADER);
    } else {
        headers.insert(storage_class::HEADER.to_string(), class.to_string());
    }
}
