//! Counters of the data path (degraded reads, shard failures, handoffs, stripes moved) and
//! the ring's epoch,
//! registered into the process's Prometheus registry by the binary. Labels are a small fixed
//! set — never object keys or ids.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
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
    /// Shard bytes written to and read from datanodes, by direction and by whether they
    /// crossed the network (see [`ShardTraffic`]).
    pub shard_bytes: Family<ShardTraffic, Counter>,
    /// The ring's epoch and changes (kept by the [`crate::Membership`]).
    pub ring: RingMetrics,
}

/// Labels of `cairn_shard_bytes_total`: `op` is `write` or `read`, `path` is `local` (a
/// datanode of this process, called directly) or `remote` (another node's datanode, over
/// the shard protocol). The remote share is the data path's cross-node traffic.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShardTraffic {
    pub op: &'static str,
    pub path: &'static str,
}

impl ObjectMetrics {
    /// Counts `bytes` of shards moved by `op` (`write` or `read`) to or from a local or a
    /// remote datanode.
    pub(crate) fn shard_traffic(&self, op: &'static str, local: bool, bytes: u64) {
        if bytes == 0 {
            return;
        }
        let path = if local { "local" } else { "remote" };
        self.shard_bytes
            .get_or_create(&ShardTraffic { op, path })
            .inc_by(bytes);
    }
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
            "shard_bytes",
            "Shard bytes written to and read from datanodes; path=remote crossed the network to another node",
            self.shard_bytes.clone(),
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
