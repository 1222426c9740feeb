//! Counters of the data path (degraded reads, shard failures, handoffs, stripes moved) and
//! the ring's epoch,
//! registered into the process's Prometheus registry by the binary. Labels are a small fixed
//! set — never object keys or ids.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;

use crate::RingMetrics;

/// The data path's counters; clones share the same values.
#[derive(Clone, Debug, Default)]
pub struct ObjectMetrics {
    /// Stripe reads that had to decode from parity.
    pub degraded_reads: Counter,
    /// Shard reads that failed or returned bytes that differ from metadata.
    pub shard_read_failures: Counter,
    /// Shard writes refused by the placed datanode.
    pub shard_write_failures: Counter,
    /// Shards stored on a spare datanode instead of the placed one.
    pub handoffs: Counter,
    /// Stripes written to datanodes.
    pub stripes_written: Counter,
    /// Stripes read from datanodes.
    pub stripes_read: Counter,
    /// The ring's epoch and changes (kept by the [`crate::Membership`]).
    pub ring: RingMetrics,
}

impl ObjectMetrics {
    /// Registers every counter under the `cairn_` prefix.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("cairn");
        r.register(
            "degraded_reads",
            "Stripe reads decoded from parity because a shard was missing, unreachable or corrupt",
            self.degraded_reads.clone(),
        );
        r.register(
            "shard_read_failures",
            "Shard reads that failed or did not match the checksum in metadata",
            self.shard_read_failures.clone(),
        );
        r.register(
            "shard_write_failures",
            "Shard writes refused by the datanode they were placed on",
            self.shard_write_failures.clone(),
        );
        r.register(
            "shard_handoffs",
            "Shards written to a spare datanode because the placed one failed",
            self.handoffs.clone(),
        );
        r.register(
            "stripes_written",
            "Stripes erasure-coded and written to datanodes",
            self.stripes_written.clone(),
        );
        r.register(
            "stripes_read",
            "Stripes read back from datanodes",
            self.stripes_read.clone(),
        );
        r.register(
            "ring_epoch",
            "Epoch of the placement ring: equal on gateways that see the same datanodes and drained set",
            self.ring.epoch.clone(),
        );
        r.register(
            "ring_changes",
            "Times this process replaced its placement ring with one of another epoch",
            self.ring.changes.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_exposed_with_the_cairn_prefix() {
        let m = ObjectMetrics::default();
        let mut reg = Registry::default();
        m.register(&mut reg);
        m.degraded_reads.inc();
        m.degraded_reads.inc();
        m.ring.epoch.set(12345);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &reg).unwrap();
        assert!(out.contains("cairn_degraded_reads_total 2"), "{out}");
        assert!(out.contains("cairn_shard_handoffs_total 0"), "{out}");
        assert!(out.contains("cairn_ring_epoch 12345"), "{out}");
        assert!(out.contains("cairn_ring_changes_total 0"), "{out}");
    }
}
