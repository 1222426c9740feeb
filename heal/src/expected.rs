//! The expected state: from every metadata record that references shards, which datanode
//! should hold which shard with which checksum and length, and for every body (object id)
//! its stripes and the records that reference it.

use std::collections::{BTreeMap, HashMap};

use cairn_datanode::ShardInfo;
use cairn_metadata::{DataAddress, MetadataStore, ObjectData, StripeLoc};
use cairn_types::{EcScheme, NodeId, ObjectId, ShardId};

use crate::HealError;

/// Records per metadata page.
const PAGE: usize = 1000;

/// One stored body (a striped object, version or part).
#[derive(Debug, Clone)]
pub(crate) struct Body {
    pub ec: EcScheme,
    pub stripes: Vec<StripeLoc>,
    /// Every record referencing the body (a versioned bucket's current object appears in
    /// both `objects` and `versions`).
    pub addresses: Vec<DataAddress>,
    pub names: Vec<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Expected {
    pub bodies: HashMap<ObjectId, Body>,
    /// Per datanode, the shards it should hold.
    pub per_node: BTreeMap<NodeId, Vec<ShardInfo>>,
    /// The datanode metadata names for each shard.
    pub holder: HashMap<ShardId, NodeId>,
}

impl Expected {
    /// Reads every record that references shards (only those of `bucket` when given).
    pub async fn load(meta: &dyn MetadataStore, bucket: Option<&str>) -> Result<Self, HealError> {
        let mut out = Expected::default();
        let mut after = None;
        loop {
            let page = meta.scan_data(after.take(), PAGE).await?;
            for e in page.entries {
                if bucket.is_some_and(|b| b != e.bucket) {
                    continue;
                }
                out.add(&e.data, &e.address, &e.name);
            }
            match page.next {
                Some(n) => after = Some(n),
                None => return Ok(out),
            }
        }
    }

    fn add(&mut self, data: &ObjectData, address: &DataAddress, name: &str) {
        match data {
            ObjectData::Inline(_) => {}
            // Shards hold ciphertext: scrub and repair see the sealed body, never a key.
            ObjectData::Encrypted(e) => self.add(&e.data, address, name),
            ObjectData::Parts(parts) => {
                for p in parts {
                    self.add(&p.data, address, name);
                }
            }
            ObjectData::Striped {
                id, ec, stripes, ..
            } => {
                if let Some(body) = self.bodies.get_mut(id) {
                    if !body.addresses.contains(address) {
                        body.addresses.push(address.clone());
                    }
                    if !body.names.iter().any(|n| n == name) {
                        body.names.push(name.to_string());
                    }
                    return;
                }
                for (s, st) in stripes.iter().enumerate() {
                    for (i, loc) in st.shards.iter().enumerate() {
                        let sid = ShardId::new(*id, s as u32, i as u32);
                        self.per_node.entry(loc.node).or_default().push(ShardInfo {
                            id: sid,
                            len: loc.len,
                            crc32c: loc.crc32c,
                        });
                        self.holder.insert(sid, loc.node);
                    }
                }
                self.bodies.insert(
                    *id,
                    Body {
                        ec: *ec,
                        stripes: stripes.clone(),
                        addresses: vec![address.clone()],
                        names: vec![name.to_string()],
                    },
                );
            }
        }
    }

    /// The name people know the shard's object by (its first referencing record).
    pub fn name_of(&self, object: ObjectId) -> Option<String> {
        self.bodies
            .get(&object)
            .and_then(|b| b.names.first().cloned())
    }
}
