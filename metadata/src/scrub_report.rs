//! What a scrub found and what its repair did: the report the scrubber (`cairn-heal`) makes,
//! the admin API serves (JSON) and the CLI and console show, and whose summaries the scrub
//! history in metadata keeps ([`crate::cluster_state`], `Command::RecordScrub`). Plain data:
//! counts by kind, per-datanode figures, the findings themselves (capped) and the stripes
//! that cannot be repaired, with the objects they belong to.
//!
//! The history stores these with postcard (inside the versioned value of
//! [`crate::cluster_state`]): a change of their shape needs a new value format there, and no field
//! may be skipped when serialising (postcard is not self-describing).

use serde::{Deserialize, Serialize};

/// Kinds of damage a scrub finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DamageKind {
    /// Metadata says the datanode holds the shard; it does not.
    Missing,
    /// The datanode holds the shard with another checksum or length than metadata says, or
    /// deep verification found its bytes damaged.
    Corrupt,
    /// The shard is held by a datanode outside its stripe's ring placement (after a handoff
    /// or a ring change), or a second copy of it sits on a datanode metadata does not name.
    Misplaced,
    /// The datanode holds a shard no object, version or upload references.
    Orphaned,
}

impl DamageKind {
    pub const ALL: [DamageKind; 4] = [
        DamageKind::Missing,
        DamageKind::Corrupt,
        DamageKind::Misplaced,
        DamageKind::Orphaned,
    ];
}

/// Counts by [`DamageKind`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub missing: u64,
    pub corrupt: u64,
    pub misplaced: u64,
    pub orphaned: u64,
}

impl Counts {
    pub fn add(&mut self, kind: DamageKind, n: u64) {
        *self.get_mut(kind) += n;
    }

    pub fn add_all(&mut self, other: &Counts) {
        for k in DamageKind::ALL {
            self.add(k, other.get(k));
        }
    }

    pub fn get(&self, kind: DamageKind) -> u64 {
        match kind {
            DamageKind::Missing => self.missing,
            DamageKind::Corrupt => self.corrupt,
            DamageKind::Misplaced => self.misplaced,
            DamageKind::Orphaned => self.orphaned,
        }
    }

    fn get_mut(&mut self, kind: DamageKind) -> &mut u64 {
        match kind {
            DamageKind::Missing => &mut self.missing,
            DamageKind::Corrupt => &mut self.corrupt,
            DamageKind::Misplaced => &mut self.misplaced,
            DamageKind::Orphaned => &mut self.orphaned,
        }
    }

    pub fn total(&self) -> u64 {
        self.missing + self.corrupt + self.misplaced + self.orphaned
    }
}

/// One damaged shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: DamageKind,
    /// The datanode the finding is about.
    pub node: u32,
    /// `object/stripe/shard`.
    pub shard: String,
    /// The object (bucket/key, version or upload part) it belongs to; none for orphans.
    pub object: Option<String>,
    /// Whether the repair of this run fixed it.
    pub repaired: bool,
}

/// A stripe that lost more shards than its parity covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unrecoverable {
    /// `object-id/stripe`.
    pub stripe: String,
    pub available: usize,
    pub needed: usize,
    /// Every object name (bucket/key, version, upload part) that references the body.
    pub objects: Vec<String>,
}

/// Deep verification of one datanode.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeepFigures {
    pub shards_checked: u64,
    pub bytes_read: u64,
    pub corrupt: u64,
}

/// The scrub of one datanode.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeScrub {
    pub node: u32,
    pub reachable: bool,
    pub error: Option<String>,
    pub partitions_checked: u64,
    /// Partitions whose root hash differed from the expected one.
    pub partitions_differing: u64,
    /// Shards metadata says the node holds.
    pub shards_expected: u64,
    /// Merkle node hashes compared.
    pub hashes_compared: u64,
    /// Leaf entries compared (both sides).
    pub entries_compared: u64,
    /// Calls made to the datanode for the comparison.
    pub requests: u64,
    /// Bytes the comparison moved (hashes and entries in binary), against
    /// `listing_bytes`: what a full listing of the expected shards would move.
    pub wire_bytes: u64,
    pub listing_bytes: u64,
    pub deep: Option<DeepFigures>,
    pub found: Counts,
    pub finished_ms: i64,
}

/// A whole scrub run (and its repair, when asked).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrubReport {
    pub id: u64,
    pub started_ms: i64,
    pub duration_ms: u64,
    pub deep: bool,
    pub repair: bool,
    /// Set when the scrub was limited to one bucket (orphans are then not looked for).
    pub bucket: Option<String>,
    /// What started it: `cli`, `schedule`, `console`…
    pub trigger: String,
    pub nodes: Vec<NodeScrub>,
    pub partitions_checked: u64,
    pub shards_checked: u64,
    pub found: Counts,
    pub repaired: Counts,
    pub failed: Counts,
    /// Orphans left alone because they are younger than the grace period (or in flight).
    pub deferred_orphans: u64,
    /// Why no orphan was deleted this run although some were old enough (a gateway node
    /// could not say which bodies it is writing).
    #[serde(default)]
    pub orphans_skipped: Option<String>,
    pub unrecoverable: Vec<Unrecoverable>,
    /// Payload bytes read (deep verification and repair reads).
    pub bytes_read: u64,
    /// Shard bytes written by the repair.
    pub bytes_written: u64,
    pub findings: Vec<Finding>,
    /// True when more findings existed than [`MAX_FINDINGS`] (counts stay exact).
    pub findings_truncated: bool,
}

/// Findings kept in one report.
pub const MAX_FINDINGS: usize = 1000;

impl ScrubReport {
    /// Damage that is still there after this run: everything found when it did not repair;
    /// otherwise what its repair failed to fix (deferred orphans are not damage yet).
    pub fn damage_remaining(&self) -> u64 {
        let unreachable = self.nodes.iter().filter(|n| !n.reachable).count() as u64;
        let open = if self.repair {
            self.failed.total()
        } else {
            self.found.total()
        };
        open + self.unrecoverable.len() as u64 + unreachable
    }

    /// The same report without its findings list (for history).
    pub fn summary(&self) -> ScrubReport {
        ScrubReport {
            findings: Vec::new(),
            findings_truncated: !self.findings.is_empty() || self.findings_truncated,
            ..self.clone()
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_damage_depends_on_repair() {
        let mut r = ScrubReport::default();
        r.found.add(DamageKind::Missing, 3);
        assert_eq!(r.damage_remaining(), 3);
        r.repair = true;
        assert_eq!(r.damage_remaining(), 0);
        r.failed.add(DamageKind::Corrupt, 1);
        r.unrecoverable.push(Unrecoverable {
            stripe: "x/0".into(),
            available: 3,
            needed: 4,
            objects: vec!["b/k".into()],
        });
        assert_eq!(r.damage_remaining(), 2);
        assert_eq!(r.found.total(), 3);
    }
}
