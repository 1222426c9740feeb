//! Object Lock (WORM) in the state machine: the retention and legal hold a version carries,
//! and the one rule of what they forbid. Every command that removes a version (deleting it
//! by id, replacing a `null` version, lifecycle expiry, admin tools — they all reach
//! [`crate::versions`]) asks [`guard_removal`]; every change of a version's retention asks
//! [`check_retention_change`]. Nothing above the state machine can get around them.
//!
//! Where the state lives: in the version's own record, under the header names S3 answers
//! GET and HEAD with (`x-amz-object-lock-mode`, `x-amz-object-lock-retain-until-date`,
//! `x-amz-object-lock-legal-hold`) in [`ObjectRecord::headers`], so that records written
//! before Object Lock existed keep their encoding and a GET returns the lock as stored.
//! [`ObjectLock::of`] is the only reader of those entries and [`ObjectLock::store`] the only
//! writer; a value that does not parse counts as locked for ever (fail closed).
//!
//! Time: a command carries the gateway's clock (`now_ms`) so that every replica decides
//! alike; commands older than Object Lock carry none, and for them any retention is in
//! force.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::records::ObjectRecord;
use crate::MetadataError;

/// Header (and stored entry) naming the retention mode.
pub const MODE_HEADER: &str = "x-amz-object-lock-mode";
/// Header (and stored entry) with the retain-until date (ISO 8601, UTC).
pub const UNTIL_HEADER: &str = "x-amz-object-lock-retain-until-date";
/// Header (and stored entry) with the legal hold status (`ON`/`OFF`).
pub const LEGAL_HOLD_HEADER: &str = "x-amz-object-lock-legal-hold";

/// A retention mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RetentionMode {
    /// Removable before its date only by callers allowed to bypass governance retention.
    Governance,
    /// Removable before its date by nobody; its date can only move later.
    Compliance,
}

impl RetentionMode {
    /// The mode as S3 spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            RetentionMode::Governance => "GOVERNANCE",
            RetentionMode::Compliance => "COMPLIANCE",
        }
    }

    /// Parses S3's spelling (exact, upper case).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "GOVERNANCE" => Some(RetentionMode::Governance),
            "COMPLIANCE" => Some(RetentionMode::Compliance),
            _ => None,
        }
    }
}

/// A version's retention: a mode and the instant (ms since the epoch) it holds until.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    pub mode: RetentionMode,
    pub until_ms: i64,
}

impl Retention {
    /// Whether it still holds at `now_ms` (`None`: the time is not known, so it does).
    pub fn in_force(&self, now_ms: Option<i64>) -> bool {
        now_ms.is_none_or(|now| self.until_ms > now)
    }
}

/// What protects one version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectLock {
    pub retention: Option<Retention>,
    /// The legal hold: on, off (set so), or never set.
    pub legal_hold: Option<bool>,
}

impl ObjectLock {
    /// The lock stored in `rec` (none for records written without one). An entry that does
    /// not parse reads as COMPLIANCE until the end of time.
    pub fn of(rec: &ObjectRecord) -> ObjectLock {
        Self::of_headers(&rec.headers)
    }

    /// [`ObjectLock::of`] over a stored header map (also an upload's).
    pub fn of_headers(headers: &BTreeMap<String, String>) -> ObjectLock {
        let locked_for_ever = Retention {
            mode: RetentionMode::Compliance,
            until_ms: i64::MAX,
        };
        let retention = match (headers.get(MODE_HEADER), headers.get(UNTIL_HEADER)) {
            (None, None) => None,
            (Some(m), Some(u)) => Some(match (RetentionMode::parse(m), parse_timestamp(u)) {
                (Some(mode), Some(until_ms)) => Retention { mode, until_ms },
                _ => locked_for_ever,
            }),
            _ => Some(locked_for_ever),
        };
        let legal_hold = match headers.get(LEGAL_HOLD_HEADER).map(String::as_str) {
            None => None,
            Some("OFF") => Some(false),
            Some(_) => Some(true),
        };
        ObjectLock {
            retention,
            legal_hold,
        }
    }

    /// Writes this lock into a stored header map, replacing what was there.
    pub fn store(&self, headers: &mut BTreeMap<String, String>) {
        headers.remove(MODE_HEADER);
        headers.remove(UNTIL_HEADER);
        headers.remove(LEGAL_HOLD_HEADER);
        if let Some(r) = self.retention {
            headers.insert(MODE_HEADER.into(), r.mode.as_str().into());
            headers.insert(UNTIL_HEADER.into(), format_timestamp(r.until_ms));
        }
        if let Some(on) = self.legal_hold {
            let v = if on { "ON" } else { "OFF" };
            headers.insert(LEGAL_HOLD_HEADER.into(), v.into());
        }
    }

    /// Whether anything protects the version at `now_ms`.
    pub fn is_locked(&self, now_ms: Option<i64>) -> bool {
        self.legal_hold == Some(true) || self.retention.is_some_and(|r| r.in_force(now_ms))
    }
}

/// The lock entries are not user-settable headers: drops them (e.g. from a copied source's
/// headers, which never carry their lock to the copy).
pub fn strip(headers: &mut BTreeMap<String, String>) {
    ObjectLock::default().store(headers);
}

/// How a removal was asked for: the caller's clock and whether it may bypass GOVERNANCE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Removal {
    pub now_ms: Option<i64>,
    pub bypass_governance: bool,
}

/// Refuses to remove a version its lock protects (see the module docs).
pub fn guard_removal(rec: &ObjectRecord, how: Removal) -> Result<(), MetadataError> {
    let lock = ObjectLock::of(rec);
    if lock.legal_hold == Some(true) {
        return Err(MetadataError::ObjectLocked(
            "the object version is under a legal hold".into(),
        ));
    }
    match lock.retention {
        Some(r) if r.in_force(how.now_ms) => match r.mode {
            RetentionMode::Compliance => Err(MetadataError::ObjectLocked(format!(
                "the object version is in COMPLIANCE retention until {}",
                format_timestamp(r.until_ms)
            ))),
            RetentionMode::Governance if !how.bypass_governance => {
                Err(MetadataError::ObjectLocked(format!(
                    "the object version is in GOVERNANCE retention until {}",
                    format_timestamp(r.until_ms)
                )))
            }
            RetentionMode::Governance => Ok(()),
        },
        _ => Ok(()),
    }
}

/// Checks that a version's retention may go from `old` to `new` at `now_ms`: a retention in
/// force may be extended in its mode; shortening, removing it or changing its mode needs a
/// GOVERNANCE retention and the bypass (as S3: even GOVERNANCE → COMPLIANCE); COMPLIANCE
/// never yields.
pub fn check_retention_change(
    old: Option<Retention>,
    new: Option<Retention>,
    now_ms: i64,
    bypass_governance: bool,
) -> Result<(), MetadataError> {
    let Some(old) = old.filter(|r| r.in_force(Some(now_ms))) else {
        return Ok(());
    };
    let extends = new.is_some_and(|n| n.until_ms >= old.until_ms && n.mode == old.mode);
    if extends {
        return Ok(());
    }
    match old.mode {
        RetentionMode::Governance if bypass_governance => Ok(()),
        mode => Err(MetadataError::ObjectLocked(format!(
            "the object version is in {} retention until {}; it can only be extended",
            mode.as_str(),
            format_timestamp(old.until_ms)
        ))),
    }
}

/// A bucket's Object Lock configuration (stored as JSON in its `ObjectLock` bucket
/// configuration; present means Object Lock is enabled, for good).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectLockConfig {
    /// The retention new versions get when their request names none.
    #[serde(default)]
    pub default_retention: Option<DefaultRetention>,
}

/// A default retention: a mode and a period in days or in years.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultRetention {
    pub mode: RetentionMode,
    pub days: Option<u32>,
    pub years: Option<u32>,
}

impl DefaultRetention {
    /// The retention a version written at `now_ms` gets (a year is 365 days, as S3 counts).
    pub fn at(&self, now_ms: i64) -> Retention {
        let days = i64::from(self.days.unwrap_or(0)) + 365 * i64::from(self.years.unwrap_or(0));
        Retention {
            mode: self.mode,
            until_ms: now_ms.saturating_add(days.saturating_mul(86_400_000)),
        }
    }
}

impl ObjectLockConfig {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("plain struct serialises")
    }

    pub fn decode(raw: &[u8]) -> Result<Self, MetadataError> {
        serde_json::from_slice(raw)
            .map_err(|e| MetadataError::Corrupt(format!("object lock configuration: {e}")))
    }
}

/// `ms` since the epoch as S3 writes lock dates (`2030-01-02T03:04:05.678Z`).
pub fn format_timestamp(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(
        if ms < 0 {
            OffsetDateTime::UNIX_EPOCH
        } else {
            time::macros::datetime!(9999-12-31 23:59:59.999 UTC)
        },
    );
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Parses an ISO 8601 / RFC 3339 timestamp (with an offset or `Z`) into ms since the epoch.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(s.trim(), &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ret(mode: RetentionMode, until_ms: i64) -> Option<Retention> {
        Some(Retention { mode, until_ms })
    }

    #[test]
    fn timestamps_round_trip() {
        let ms = parse_timestamp("2030-01-02T03:04:05.678Z").unwrap();
        assert_eq!(format_timestamp(ms), "2030-01-02T03:04:05.678Z");
        assert_eq!(
            parse_timestamp("2030-01-02T03:04:05+01:00"),
            parse_timestamp("2030-01-02T02:04:05Z")
        );
        assert_eq!(parse_timestamp("tomorrow"), None);
    }

    #[test]
    fn stored_lock_round_trips_and_unparseable_fails_closed() {
        let lock = ObjectLock {
            retention: ret(RetentionMode::Governance, 1_900_000_000_000),
            legal_hold: Some(true),
        };
        let mut h = BTreeMap::new();
        lock.store(&mut h);
        assert_eq!(ObjectLock::of_headers(&h), lock);
        h.insert(UNTIL_HEADER.into(), "garbage".into());
        let read = ObjectLock::of_headers(&h);
        assert_eq!(read.retention.unwrap().mode, RetentionMode::Compliance);
        assert!(read.is_locked(Some(i64::MAX - 1)));
        strip(&mut h);
        assert!(h.is_empty());
    }

    #[test]
    fn retention_changes() {
        use RetentionMode::*;
        let now = 1_000;
        // Expired or absent: anything goes.
        assert!(check_retention_change(None, None, now, false).is_ok());
        assert!(check_retention_change(ret(Compliance, 999), None, now, false).is_ok());
        // Extending is always allowed.
        assert!(
            check_retention_change(ret(Compliance, 2000), ret(Compliance, 3000), now, false)
                .is_ok()
        );
        // A mode change is not an extension: GOVERNANCE needs the bypass to become COMPLIANCE.
        assert!(
            check_retention_change(ret(Governance, 2000), ret(Compliance, 3000), now, false)
                .is_err()
        );
        assert!(
            check_retention_change(ret(Governance, 2000), ret(Compliance, 2000), now, true).is_ok()
        );
        // Compliance never shortens, weakens or goes, bypass or not.
        for bypass in [false, true] {
            assert!(check_retention_change(
                ret(Compliance, 2000),
                ret(Compliance, 1500),
                now,
                bypass
            )
            .is_err());
            assert!(check_retention_change(
                ret(Compliance, 2000),
                ret(Governance, 3000),
                now,
                bypass
            )
            .is_err());
            assert!(check_retention_change(ret(Compliance, 2000), None, now, bypass).is_err());
        }
        // Governance needs the bypass to shorten or go.
        assert!(
            check_retention_change(ret(Governance, 2000), ret(Governance, 1500), now, false)
                .is_err()
        );
        assert!(check_retention_change(ret(Governance, 2000), None, now, false).is_err());
        assert!(check_retention_change(ret(Governance, 2000), None, now, true).is_ok());
    }

    #[test]
    fn removal_guard() {
        let mut rec = crate::testing::fixtures::inline("e");
        let now = Some(1_000);
        let plain = Removal {
            now_ms: now,
            bypass_governance: false,
        };
        let bypass = Removal {
            now_ms: now,
            bypass_governance: true,
        };
        assert!(guard_removal(&rec, plain).is_ok());
        let set = |rec: &mut ObjectRecord, lock: ObjectLock| lock.store(&mut rec.headers);
        set(
            &mut rec,
            ObjectLock {
                retention: ret(RetentionMode::Governance, 2000),
                legal_hold: None,
            },
        );
        assert!(guard_removal(&rec, plain).is_err());
        assert!(guard_removal(&rec, bypass).is_ok());
        assert!(guard_removal(
            &rec,
            Removal {
                now_ms: Some(2000),
                bypass_governance: false
            }
        )
        .is_ok());
        // Without a clock any retention holds.
        assert!(guard_removal(&rec, Removal::default()).is_err());
        set(
            &mut rec,
            ObjectLock {
                retention: ret(RetentionMode::Compliance, 2000),
                legal_hold: None,
            },
        );
        assert!(guard_removal(&rec, bypass).is_err());
        set(
            &mut rec,
            ObjectLock {
                retention: None,
                legal_hold: Some(true),
            },
        );
        assert!(guard_removal(&rec, bypass).is_err());
    }
}
