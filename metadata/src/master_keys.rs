//! The cluster's master keys for SSE-S3 (encryption at rest with keys Cairn manages), as
//! metadata keeps them: each sealed by the key-encryption key (see `cairn-sse`), so metadata
//! and a copy of its files never hold a master key in the clear. Raft replicates them to
//! every node; each node opens them with its own key-encryption key. The highest id is the
//! active key; older ones stay to open what they wrapped until rotation re-wraps it all.
//!
//! | key in `sys` | value | written by |
//! | --- | --- | --- |
//! | [`PREFIX`]`<id, 10 digits>` | [`StoredMasterKey`] | [`Command::AddMasterKey`] |
//! | [`REWRAP_KEY`] | [`RewrapProgress`] | [`Command::SetRewrapProgress`] |
//! | [`KMS_PREFIX`]`<name>` | [`StoredKmsKey`] | [`Command::AddKmsKey`] |
//!
//! Rotation adds a key, then re-wraps every data key wrapped by an older one
//! ([`Command::RewrapKeys`], record by record, in the scan order of [`crate::data_refs`]),
//! saving its place in [`RewrapProgress`] so that a restarted node carries on.
//!
//! The named keys of the built-in KMS (SSE-KMS) are kept the same way, sealed by the
//! key-encryption key, one per name; a name is never reused for another key.

use serde::{Deserialize, Serialize};

use crate::keys::Cf;
use crate::records::{decode_value, encode, Stored};
use crate::state::{put, StateView, Write};
use crate::{MetadataError, MetadataStore, Result};

#[cfg(doc)]
use crate::Command;

/// Prefix in `sys` of the sealed master keys.
pub const PREFIX: &str = "sse-master-key/";
/// Key in `sys` of the progress of re-wrapping data keys.
pub const REWRAP_KEY: &str = "sse-rewrap";

/// How far re-wrapping data keys under master key `target` got.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RewrapProgress {
    /// The master key data keys are re-wrapped under.
    pub target: u32,
    /// The last record handled in the current pass (`None`: the pass starts).
    pub after: Option<crate::data_refs::DataAddress>,
    /// Passes completed (a pass that re-wraps nothing ends the rotation).
    pub passes: u32,
    /// Records read and data keys re-wrapped, over all passes.
    pub scanned: u64,
    pub rewrapped: u64,
    /// Data keys re-wrapped in the current pass.
    pub pass_rewrapped: u64,
    /// Every data key is under `target`.
    pub done: bool,
}

impl Stored for RewrapProgress {}

/// The stored progress of re-wrapping, if a rotation ever ran.
pub async fn progress(meta: &dyn MetadataStore) -> Result<Option<RewrapProgress>> {
    match meta.get_sys(REWRAP_KEY).await? {
        Some(raw) => Ok(Some(decode_value(&raw, "re-wrap progress", |_| None)?)),
        None => Ok(None),
    }
}

/// The commands on the keys of encryption at rest: `AddMasterKey`, `SetRewrapProgress` and
/// `AddKmsKey` (`RewrapKeys` changes object records: [`crate::data_refs`]).
pub(crate) fn apply(
    view: &dyn StateView,
    cmd: &crate::Command,
    writes: &mut Vec<Write>,
) -> Result<crate::CommandOutput> {
    match cmd {
        crate::Command::AddMasterKey(rec) => add(view, rec, writes)?,
        crate::Command::SetRewrapProgress(p) => set_progress(p.as_ref(), writes),
        crate::Command::AddKmsKey(rec) => add_kms(view, rec, writes)?,
        other => {
            return Err(MetadataError::InvalidArgument(format!(
                "{other:?} is not a key command"
            )))
        }
    }
    Ok(crate::CommandOutput::Done)
}

/// `SetRewrapProgress`.
fn set_progress(p: Option<&RewrapProgress>, writes: &mut Vec<Write>) {
    match p {
        Some(p) => writes.push(put(Cf::Sys, REWRAP_KEY.as_bytes().to_vec(), encode(p))),
        None => writes.push(crate::state::del(Cf::Sys, REWRAP_KEY.as_bytes().to_vec())),
    }
}

/// One master key as stored: its id and its sealed bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMasterKey {
    pub id: u32,
    pub sealed: Vec<u8>,
}

impl std::fmt::Debug for StoredMasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoredMasterKey({})", self.id)
    }
}

impl Stored for StoredMasterKey {}

fn key(id: u32) -> String {
    format!("{PREFIX}{id:010}")
}

/// Every stored master key, by id.
pub async fn stored(meta: &dyn MetadataStore) -> Result<Vec<StoredMasterKey>> {
    let mut out: Vec<StoredMasterKey> = Vec::new();
    for (k, v) in meta.scan_sys(PREFIX).await? {
        if k.starts_with(PREFIX) {
            out.push(decode_value(&v, "master key", |_| None)?);
        }
    }
    out.sort_by_key(|k| k.id);
    Ok(out)
}

/// `AddMasterKey`: stores key `id`, which must be the next one (1 for the first; ids are
/// dense), so that two nodes adding a key at once cannot both succeed: the second gets
/// [`MetadataError::Conflict`] and reads the keys again.
fn add(view: &dyn StateView, rec: &StoredMasterKey, writes: &mut Vec<Write>) -> Result<()> {
    let id = rec.id;
    let taken = view.get(Cf::Sys, key(id).as_bytes())?.is_some();
    let follows = id == 1 || (id > 1 && view.get(Cf::Sys, key(id - 1).as_bytes())?.is_some());
    if taken || !follows {
        return Err(MetadataError::Conflict(format!(
            "master key {id} is not the next one"
        )));
    }
    writes.push(put(Cf::Sys, key(id).into_bytes(), encode(rec)));
    Ok(())
}

/// Prefix in `sys` of the sealed KMS keys.
pub const KMS_PREFIX: &str = "sse-kms-key/";

/// One KMS key as stored: its name, its sealed bytes and when it was made.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredKmsKey {
    pub name: String,
    pub sealed: Vec<u8>,
    pub created_ms: i64,
}

impl std::fmt::Debug for StoredKmsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoredKmsKey({})", self.name)
    }
}

impl Stored for StoredKmsKey {}

/// Every stored KMS key, by name.
pub async fn kms_stored(meta: &dyn MetadataStore) -> Result<Vec<StoredKmsKey>> {
    let mut out: Vec<StoredKmsKey> = Vec::new();
    for (k, v) in meta.scan_sys(KMS_PREFIX).await? {
        if k.starts_with(KMS_PREFIX) {
            out.push(decode_value(&v, "KMS key", |_| None)?);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// `AddKmsKey`: stores a key under a name no key has yet; a taken name is
/// [`MetadataError::Conflict`] (the key that holds it stays: data may be wrapped by it).
fn add_kms(view: &dyn StateView, rec: &StoredKmsKey, writes: &mut Vec<Write>) -> Result<()> {
    if rec.name.is_empty() || rec.name.len() > 256 {
        return Err(MetadataError::InvalidArgument(format!(
            "bad KMS key name {:?}",
            rec.name
        )));
    }
    let key = format!("{KMS_PREFIX}{}", rec.name);
    if view.get(Cf::Sys, key.as_bytes())?.is_some() {
        return Err(MetadataError::Conflict(format!(
            "KMS key {:?} exists",
            rec.name
        )));
    }
    writes.push(put(Cf::Sys, key.into_bytes(), encode(rec)));
    Ok(())
}
