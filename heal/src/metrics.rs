//! Prometheus counters of scrubbing and repair (labels: damage kind only).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::report::{DamageKind, ScrubReport};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    kind: String,
}

fn label(kind: DamageKind) -> KindLabel {
    let kind = match kind {
        DamageKind::Missing => "missing",
        DamageKind::Corrupt => "corrupt",
        DamageKind::Misplaced => "misplaced",
        DamageKind::Orphaned => "orphaned",
    };
    KindLabel { kind: kind.into() }
}

/// The healer's counters; clones share the same values.
#[derive(Clone, Debug, Default)]
pub struct HealMetrics {
    pub scrubs: Counter,
    pub shards_scrubbed: Counter,
    pub damage_found: Family<KindLabel, Counter>,
    pub repairs: Family<KindLabel, Counter>,
    pub repair_failures: Family<KindLabel, Counter>,
    pub unrecoverable: Counter,
    pub bytes_read: Counter,
    pub bytes_written: Counter,
    pub hinted_repairs: Counter,
    pub backlog: Gauge,
}

impl HealMetrics {
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("cairn_scrub");
        r.register("runs", "Scrubs finished", self.scrubs.clone());
        r.register(
            "shards",
            "Shards compared against metadata",
            self.shards_scrubbed.clone(),
        );
        r.register(
            "damage_found",
            "Damaged shards found, by kind",
            self.damage_found.clone(),
        );
        r.register(
            "unrecoverable_stripes",
            "Stripes found with fewer than k intact shards",
            self.unrecoverable.clone(),
        );
        let r = registry.sub_registry_with_prefix("cairn_repair");
        r.register(
            "done",
            "Damaged shards repaired, by kind",
            self.repairs.clone(),
        );
        r.register(
            "failed",
            "Repairs that failed, by kind",
            self.repair_failures.clone(),
        );
        r.register(
            "read_bytes",
            "Bytes read by deep scrubs and repairs",
            self.bytes_read.clone(),
        );
        r.register(
            "written_bytes",
            "Shard bytes written by repairs",
            self.bytes_written.clone(),
        );
        r.register(
            "hinted_shards",
            "Shards rewritten because a degraded read reported their stripe",
            self.hinted_repairs.clone(),
        );
        r.register(
            "backlog",
            "Damage the last scrub left unrepaired",
            self.backlog.clone(),
        );
    }

    pub(crate) fn record(&self, r: &ScrubReport) {
        self.scrubs.inc();
        self.shards_scrubbed.inc_by(r.shards_checked);
        for k in DamageKind::ALL {
            self.damage_found
                .get_or_create(&label(k))
                .inc_by(r.found.get(k));
            self.repairs
                .get_or_create(&label(k))
                .inc_by(r.repaired.get(k));
            self.repair_failures
                .get_or_create(&label(k))
                .inc_by(r.failed.get(k));
        }
        self.unrecoverable.inc_by(r.unrecoverable.len() as u64);
        self.bytes_read.inc_by(r.bytes_read);
        self.bytes_written.inc_by(r.bytes_written);
        self.backlog.set(r.damage_remaining() as i64);
    }
}
