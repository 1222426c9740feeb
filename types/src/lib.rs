//! Plain value types shared by every Cairn crate: validated bucket names and object keys,
//! identifiers for objects, shards and nodes, the erasure-coding scheme, the one CRC32C
//! function ([`crc32c`]) and the one wall clock ([`clock::now_ms`]).
//!
//! Invariants: a [`BucketName`] or [`ObjectKey`] that exists has passed validation, so no
//! other crate re-checks them. This crate does no I/O and depends on no other Cairn crate.

use std::fmt;

use serde::{Deserialize, Serialize};

mod checksum;
pub mod clock;
mod names;

pub use checksum::crc32c;
pub use names::{BucketName, InvalidName, ObjectKey};

/// Identifies one stored object version's data. Random, never reused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectId(pub u128);

impl ObjectId {
    /// A fresh random id.
    pub fn random() -> Self {
        ObjectId(uuid::Uuid::new_v4().as_u128())
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({:032x})", self.0)
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// Identifies one shard on a datanode: the object's data id, the stripe index within the
/// object and the shard index within the stripe (0..k+m).
///
/// Its 24-byte big-endian encoding ([`ShardId::to_bytes`]) sorts shards of one object
/// together, stripe by stripe, which the datanode index and later Merkle partitions rely on.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ShardId {
    pub object: ObjectId,
    pub stripe: u32,
    pub shard: u32,
}

impl ShardId {
    pub const ENCODED_LEN: usize = 24;

    pub fn new(object: ObjectId, stripe: u32, shard: u32) -> Self {
        ShardId {
            object,
            stripe,
            shard,
        }
    }

    pub fn to_bytes(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        out[..16].copy_from_slice(&self.object.0.to_be_bytes());
        out[16..20].copy_from_slice(&self.stripe.to_be_bytes());
        out[20..].copy_from_slice(&self.shard.to_be_bytes());
        out
    }

    pub fn from_bytes(b: &[u8; Self::ENCODED_LEN]) -> Self {
        let mut o = [0u8; 16];
        o.copy_from_slice(&b[..16]);
        let mut s = [0u8; 4];
        s.copy_from_slice(&b[16..20]);
        let mut i = [0u8; 4];
        i.copy_from_slice(&b[20..]);
        ShardId {
            object: ObjectId(u128::from_be_bytes(o)),
            stripe: u32::from_be_bytes(s),
            shard: u32::from_be_bytes(i),
        }
    }
}

impl fmt::Debug for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShardId({}/{}/{})", self.object, self.stripe, self.shard)
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.object, self.stripe, self.shard)
    }
}

/// Identifies a datanode (one per data directory) within a cluster.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct NodeId(pub u32);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dn{}", self.0)
    }
}

/// Reed-Solomon layout of a stripe: `data` data shards plus `parity` parity shards.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct EcScheme {
    pub data: u8,
    pub parity: u8,
}

impl EcScheme {
    /// No erasure coding: one shard per stripe (the single-datanode layout).
    pub const SINGLE: EcScheme = EcScheme { data: 1, parity: 0 };

    pub fn total(&self) -> usize {
        self.data as usize + self.parity as usize
    }
}

/// `4+2`.
impl fmt::Display for EcScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}+{}", self.data, self.parity)
    }
}

/// `DATA+PARITY` (such as `4+2`), at least one data shard.
impl std::str::FromStr for EcScheme {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (k, m) = s
            .split_once('+')
            .ok_or_else(|| format!("expected DATA+PARITY such as 4+2, got {s:?}"))?;
        let data: u8 = k
            .trim()
            .parse()
            .map_err(|_| format!("bad data shard count {k:?}"))?;
        let parity: u8 = m
            .trim()
            .parse()
            .map_err(|_| format!("bad parity shard count {m:?}"))?;
        if data == 0 {
            return Err("at least one data shard is needed".into());
        }
        Ok(EcScheme { data, parity })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_schemes_parse_and_print() {
        let ec: EcScheme = " 6 + 3".parse().unwrap();
        assert_eq!(ec, EcScheme { data: 6, parity: 3 });
        assert_eq!(ec.to_string(), "6+3");
        for bad in ["4", "0+2", "a+1", "4+", "300+1", "4+-1"] {
            assert!(bad.parse::<EcScheme>().is_err(), "{bad}");
        }
    }

    #[test]
    fn shard_id_bytes_round_trip_and_order() {
        let a = ShardId::new(ObjectId(5), 1, 2);
        let b = ShardId::new(ObjectId(5), 2, 0);
        let c = ShardId::new(ObjectId(6), 0, 0);
        for s in [a, b, c] {
            assert_eq!(ShardId::from_bytes(&s.to_bytes()), s);
        }
        assert!(a.to_bytes() < b.to_bytes());
        assert!(b.to_bytes() < c.to_bytes());
    }
}
