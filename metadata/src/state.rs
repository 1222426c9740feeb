//! The state machine's view of storage, engine-free: [`StateView`] (what
//! [`crate::command::apply`] reads) and [`Write`] (what it returns), with the two
//! constructors every state-machine module uses. A leaf: it uses nothing of the crate but
//! the key families and the error type.

use crate::keys::Cf;
use crate::MetadataError;

/// A write produced by [`crate::command::apply`]; `None` deletes the key.
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
    /// Every entry of `cf` whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, cf: Cf, prefix: &[u8]) -> Result<Vec<RawKv>, MetadataError>;
}

/// A stored key and value.
pub type RawKv = (Vec<u8>, Vec<u8>);

pub(crate) fn put(cf: Cf, key: Vec<u8>, value: Vec<u8>) -> Write {
    Write {
        cf,
        key,
        value: Some(value),
    }
}

pub(crate) fn del(cf: Cf, key: Vec<u8>) -> Write {
    Write {
        cf,
        key,
        value: None,
    }
}
