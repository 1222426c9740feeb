//! What a scrub reports: the report and its parts are kept by the metadata core
//! ([`cairn_metadata::scrub_report`], which also stores their summaries in the scrub
//! history) and re-exported here; [`Progress`], what a running scrub has done so far, is
//! this crate's own.

use serde::{Deserialize, Serialize};

pub use cairn_metadata::scrub_report::{
    Counts, DamageKind, DeepFigures, Finding, NodeScrub, ScrubReport, Unrecoverable, MAX_FINDINGS,
};

/// What a running scrub has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub id: u64,
    /// `metadata`, `scrub`, `repair` or `done`.
    pub phase: String,
    pub done: u64,
    pub total: u64,
    pub shards_checked: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub started_ms: i64,
    pub elapsed_ms: u64,
}
