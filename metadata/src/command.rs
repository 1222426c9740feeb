//! Every metadata mutation is a [`Command`]; [`apply`] is the one deterministic state machine
//! that turns a command plus the current state into a set of writes and an output.
//!
//! `apply` reads through [`StateView`] and returns [`Write`]s instead of touching an engine,
//! so the single-node RocksDB store and a replicated (Raft) store run exactly the same logic.
//! Determinism: `apply` reads no clock and no randomness; timestamps and ids travel inside the
//! command.

use cairn_types::{BucketName, ObjectKey};
use serde::{Deserialize, Serialize};

use crate::keys::{self, Cf};
use crate::records::{
    decode, encode, AccessKeyRecord, BucketConfigKind, BucketRecord, GcEntry, ObjectRecord,
};
use crate::MetadataError;

/// A metadata mutation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    CreateBucket(BucketRecord),
    DeleteBucket {
        name: BucketName,
    },
    /// Creates or replaces the object at `key`. The replaced object's shards are queued for GC.
    PutObject {
        bucket: BucketName,
        key: ObjectKey,
        record: ObjectRecord,
    },
    /// Deletes the object at `key` (absent is not an error). Its shards are queued for GC.
    DeleteObject {
        bucket: BucketName,
        key: ObjectKey,
    },
    PutAccessKey(AccessKeyRecord),
    /// Removes GC entries whose shards have been deleted.
    GcDone {
        seqs: Vec<u64>,
    },
    /// Sets (`Some`) or removes (`None`) one configuration document of a bucket.
    SetBucketConfig {
        bucket: BucketName,
        kind: BucketConfigKind,
        value: Option<Vec<u8>>,
    },
    /// Sets a small system value (cluster configuration and the like).
    SetSys {
        key: String,
        value: Vec<u8>,
    },
}

/// What a command returned.
#[derive(Debug, Clone, PartialEq)]
pub enum CommandOutput {
    Done,
    /// The object that a put or delete replaced, if any.
    Replaced(Option<Box<ObjectRecord>>),
}

/// A write produced by [`apply`]; `None` deletes the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub cf: Cf,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// Read access to the current state, as `apply` needs it.
pub trait StateView {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, MetadataError>;
    /// Whether any key in `cf` starts with `prefix`.
    fn any_with_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<bool, MetadataError>;
}

const GC_SEQ_KEY: &[u8] = b"gc-next-seq";

/// Applies `cmd` to the state seen through `view`.
pub fn apply(
    view: &dyn StateView,
    cmd: &Command,
) -> Result<(Vec<Write>, CommandOutput), MetadataError> {
    let mut writes = Vec::new();
    let out = match cmd {
        Command::CreateBucket(rec) => {
            let k = keys::bucket(&rec.name);
            if let Some(existing) = view.get(Cf::Buckets, &k)? {
                let existing: BucketRecord = decode(&existing)?;
                return Err(MetadataError::BucketExists {
                    owner: existing.owner,
                });
            }
            writes.push(put(Cf::Buckets, k, encode(rec)));
            CommandOutput::Done
        }
        Command::DeleteBucket { name } => {
            let k = keys::bucket(name);
            if view.get(Cf::Buckets, &k)?.is_none() {
                return Err(MetadataError::NoSuchBucket);
            }
            if view.any_with_prefix(Cf::Objects, &keys::object_prefix(name))? {
                return Err(MetadataError::BucketNotEmpty);
            }
            writes.push(Write {
                cf: Cf::Buckets,
                key: k,
                value: None,
            });
            for kind in BucketConfigKind::ALL {
                writes.push(Write {
                    cf: Cf::BucketConfig,
                    key: keys::bucket_config(name, kind),
                    value: None,
                });
            }
            CommandOutput::Done
        }
        Command::PutObject {
            bucket,
            key,
            record,
        } => {
            require_bucket(view, bucket)?;
            let k = keys::object(bucket, key.as_str());
            let old = replaced(view, &k, &mut writes)?;
            writes.push(put(Cf::Objects, k, encode(record)));
            CommandOutput::Replaced(old)
        }
        Command::DeleteObject { bucket, key } => {
            require_bucket(view, bucket)?;
            let k = keys::object(bucket, key.as_str());
            let old = replaced(view, &k, &mut writes)?;
            if old.is_some() {
                writes.push(Write {
                    cf: Cf::Objects,
                    key: k,
                    value: None,
                });
            }
            CommandOutput::Replaced(old)
        }
        Command::PutAccessKey(rec) => {
            writes.push(put(
                Cf::Keys,
                rec.access_key.as_bytes().to_vec(),
                encode(rec),
            ));
            CommandOutput::Done
        }
        Command::SetBucketConfig {
            bucket,
            kind,
            value,
        } => {
            require_bucket(view, bucket)?;
            writes.push(Write {
                cf: Cf::BucketConfig,
                key: keys::bucket_config(bucket, *kind),
                value: value.clone(),
            });
            CommandOutput::Done
        }
        Command::SetSys { key, value } => {
            writes.push(put(Cf::Sys, key.as_bytes().to_vec(), value.clone()));
            CommandOutput::Done
        }
        Command::GcDone { seqs } => {
            for s in seqs {
                writes.push(Write {
                    cf: Cf::Gc,
                    key: s.to_be_bytes().to_vec(),
                    value: None,
                });
            }
            CommandOutput::Done
        }
    };
    Ok((writes, out))
}

fn put(cf: Cf, key: Vec<u8>, value: Vec<u8>) -> Write {
    Write {
        cf,
        key,
        value: Some(value),
    }
}

fn require_bucket(view: &dyn StateView, bucket: &BucketName) -> Result<(), MetadataError> {
    match view.get(Cf::Buckets, &keys::bucket(bucket))? {
        Some(_) => Ok(()),
        None => Err(MetadataError::NoSuchBucket),
    }
}

/// Reads the object at `k` (if any) and queues its shards for GC.
fn replaced(
    view: &dyn StateView,
    k: &[u8],
    writes: &mut Vec<Write>,
) -> Result<Option<Box<ObjectRecord>>, MetadataError> {
    let Some(bytes) = view.get(Cf::Objects, k)? else {
        return Ok(None);
    };
    let old: ObjectRecord = decode(&bytes)?;
    let shards = old.data.shards();
    if !shards.is_empty() {
        let seq = match view.get(Cf::Sys, GC_SEQ_KEY)? {
            Some(v) if v.len() == 8 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&v);
                u64::from_be_bytes(b)
            }
            _ => 0,
        };
        writes.push(put(
            Cf::Gc,
            seq.to_be_bytes().to_vec(),
            encode(&GcEntry { shards }),
        ));
        writes.push(put(
            Cf::Sys,
            GC_SEQ_KEY.to_vec(),
            (seq + 1).to_be_bytes().to_vec(),
        ));
    }
    Ok(Some(Box::new(old)))
}
