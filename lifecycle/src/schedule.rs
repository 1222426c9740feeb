//! When lifecycle actions fall due: the length of a lifecycle day ([`DayLength`]), the
//! `x-amz-expiration` answer for an object ([`expiration_header`]), and what the rules ask
//! of one key's versions now ([`plan_key`]). Pure functions of the rules, the versions and
//! the clock: the worker runs them, tests drive them directly.
//!
//! Timing: an action falls due `days` lifecycle days after its start — the version's write
//! (Expiration), the moment it became noncurrent, i.e. when its successor was written
//! (NoncurrentVersionExpiration), the marker's write (a sole delete marker under
//! Expiration Days), the upload's start (AbortIncompleteMultipartUpload). Real days end at the
//! following midnight UTC, as S3 rounds; shortened days (tests) are exact. A `Date` is an
//! instant.

use std::collections::BTreeMap;

use cairn_metadata::VersionRecord;

use crate::rules::{Candidate, Expiration, LifecycleConfig};

/// Milliseconds in a real day.
pub const DAY_MS: i64 = 86_400_000;

/// How long a lifecycle day lasts: a real day, or (for tests, like RGW's
/// `rgw_lc_debug_interval`) a few seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayLength {
    ms: i64,
}

impl Default for DayLength {
    fn default() -> Self {
        DayLength::real()
    }
}

impl DayLength {
    pub fn real() -> Self {
        DayLength { ms: DAY_MS }
    }

    /// A day of `secs` seconds (`0`: a real day).
    pub fn secs(secs: u64) -> Self {
        match secs {
            0 => DayLength::real(),
            s => DayLength {
                ms: i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX),
            },
        }
    }

    pub fn ms(self) -> i64 {
        self.ms
    }

    /// When `days` days counted from `from_ms` are over.
    pub fn due(self, from_ms: i64, days: u32) -> i64 {
        let span = i64::from(days).saturating_mul(self.ms);
        if self.ms == DAY_MS {
            // The midnight UTC that ends the day `days` days after `from_ms`.
            from_ms
                .div_euclid(DAY_MS)
                .saturating_add(i64::from(days) + 1)
                .saturating_mul(DAY_MS)
        } else {
            from_ms.saturating_add(span)
        }
    }
}

/// The `x-amz-expiration` of an object written at `mtime_ms`: the earliest expiry of the
/// enabled Expiration rules that name it, with that rule's id, counted in real days (as S3
/// reports it, whatever the worker's day length).
pub fn expiration_header(
    cfg: &LifecycleConfig,
    c: &Candidate<'_>,
    mtime_ms: i64,
) -> Option<(i64, String)> {
    cfg.rules
        .iter()
        .filter(|r| r.enabled && r.matches(c))
        .filter_map(|r| {
            let at = match r.expiration? {
                Expiration::Days(d) => DayLength::real().due(mtime_ms, d),
                Expiration::Date(ms) => ms,
                Expiration::DeleteMarker(_) => return None,
            };
            Some((at, r.id.clone()))
        })
        .min_by_key(|(at, _)| *at)
}

/// One thing the rules ask of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Expire the current object: deleted in an unversioned bucket, hidden behind a delete
    /// marker in a versioned one.
    ExpireCurrent { rule: String },
    /// Remove one version (or delete marker) for good. `expired_marker`: the key's delete
    /// marker left alone by the removals before it (done only if they all were).
    DeleteVersion {
        version_id: Option<String>,
        rule: String,
        expired_marker: bool,
    },
}

/// What the rules ask of one key now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub actions: Vec<Action>,
}

fn no_tags() -> &'static BTreeMap<String, String> {
    static EMPTY: std::sync::OnceLock<BTreeMap<String, String>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(BTreeMap::new)
}

fn candidate<'a>(key: &'a str, v: &'a VersionRecord) -> Candidate<'a> {
    match &v.object {
        Some(o) => Candidate {
            key,
            size: o.size,
            tags: &o.tags,
        },
        None => Candidate {
            key,
            size: 0,
            tags: no_tags(),
        },
    }
}

/// What the enabled rules of `cfg` ask of `key` at `now_ms`, given its versions newest
/// first (an unversioned key: its one object as the `null` version).
pub fn plan_key(
    cfg: &LifecycleConfig,
    key: &str,
    versions: &[VersionRecord],
    now_ms: i64,
    day: DayLength,
) -> Plan {
    let mut plan = Plan::default();
    let Some(current) = versions.first() else {
        return plan;
    };
    let rules: Vec<_> = cfg.rules.iter().filter(|r| r.enabled).collect();
    // Expiration of the current object.
    if current.object.is_some() {
        let c = candidate(key, current);
        let due = rules.iter().find(|r| {
            r.matches(&c)
                && match r.expiration {
                    Some(Expiration::Days(d)) => now_ms >= day.due(current.last_modified_ms, d),
                    Some(Expiration::Date(at)) => now_ms >= at,
                    _ => false,
                }
        });
        if let Some(r) = due {
            plan.actions
                .push(Action::ExpireCurrent { rule: r.id.clone() });
        }
    }
    // Noncurrent versions: each became noncurrent when the one above it was written.
    let mut removed = 0;
    for (i, v) in versions.iter().enumerate().skip(1) {
        let since = versions[i - 1].last_modified_ms;
        let c = candidate(key, v);
        let rank = i - 1; // noncurrent versions newer than this one
        let due = rules.iter().find(|r| {
            let Some(n) = r.noncurrent_expiration else {
                return false;
            };
            r.matches(&c)
                && n.newer_noncurrent_versions
                    .is_none_or(|keep| rank >= keep as usize)
                && now_ms >= day.due(since, n.days)
        });
        if let Some(r) = due {
            removed += 1;
            plan.actions.push(Action::DeleteVersion {
                version_id: v.version_id.clone(),
                rule: r.id.clone(),
                expired_marker: false,
            });
        }
    }
    // A delete marker that is (or is about to be) its key's only version.
    if current.object.is_none() && removed == versions.len() - 1 {
        let c = candidate(key, current);
        let due = rules.iter().find(|r| {
            r.matches(&c)
                && match r.expiration {
                    Some(Expiration::DeleteMarker(true)) => true,
                    Some(Expiration::Days(d)) => now_ms >= day.due(current.last_modified_ms, d),
                    _ => false,
                }
        });
        if let Some(r) = due {
            plan.actions.push(Action::DeleteVersion {
                version_id: current.version_id.clone(),
                rule: r.id.clone(),
                expired_marker: true,
            });
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Filter, NoncurrentExpiration, Rule};
    use cairn_metadata::{ObjectData, ObjectRecord};

    fn obj(id: &str, ms: i64) -> VersionRecord {
        VersionRecord {
            version_id: Some(id.into()),
            last_modified_ms: ms,
            object: Some(ObjectRecord {
                size: 5,
                etag: "e".into(),
                last_modified_ms: ms,
                content_type: None,
                headers: Default::default(),
                user_meta: Default::default(),
                checksum: None,
                data: ObjectData::Inline(b"hello".to_vec()),
                version_id: Some(id.into()),
                tags: Default::default(),
                acl: None,
                upload_id: None,
            }),
        }
    }

    fn marker(id: &str, ms: i64) -> VersionRecord {
        VersionRecord {
            version_id: Some(id.into()),
            last_modified_ms: ms,
            object: None,
        }
    }

    fn cfg(rule: Rule) -> LifecycleConfig {
        LifecycleConfig { rules: vec![rule] }
    }

    fn rule() -> Rule {
        Rule {
            id: "r".into(),
            enabled: true,
            prefix: None,
            filter: Some(Filter::default()),
            expiration: None,
            noncurrent_expiration: None,
            abort_incomplete_days: None,
        }
    }

    const DAY: i64 = 10_000;

    fn day() -> DayLength {
        DayLength::secs(10)
    }

    #[test]
    fn real_days_round_to_midnight_and_short_days_do_not() {
        let noon = 10 * DAY_MS + DAY_MS / 2;
        assert_eq!(DayLength::real().due(noon, 1), 12 * DAY_MS);
        assert_eq!(day().due(5, 2), 5 + 2 * DAY);
        let c = Candidate {
            key: "k",
            size: 1,
            tags: no_tags(),
        };
        let mut r = rule();
        r.expiration = Some(Expiration::Days(1));
        assert_eq!(
            expiration_header(&cfg(r.clone()), &c, noon),
            Some((12 * DAY_MS, "r".into()))
        );
        r.enabled = false;
        assert_eq!(expiration_header(&cfg(r), &c, noon), None);
    }

    #[test]
    fn current_expires_on_its_day_never_before() {
        let mut r = rule();
        r.expiration = Some(Expiration::Days(2));
        let c = cfg(r);
        let v = [obj("a", 0)];
        assert!(plan_key(&c, "k", &v, 2 * DAY - 1, day()).actions.is_empty());
        assert_eq!(
            plan_key(&c, "k", &v, 2 * DAY, day()).actions,
            vec![Action::ExpireCurrent { rule: "r".into() }]
        );
        // A current delete marker with history: Expiration Days does nothing.
        let v = [marker("m", 0), obj("a", 0)];
        assert!(plan_key(&c, "k", &v, 100 * DAY, day()).actions.is_empty());
    }

    #[test]
    fn noncurrent_versions_keep_the_newest_and_count_from_their_successor() {
        let mut r = rule();
        r.noncurrent_expiration = Some(NoncurrentExpiration {
            days: 1,
            newer_noncurrent_versions: Some(2),
        });
        let c = cfg(r);
        // Newest first: current v5, then v4..v1 written a day apart.
        let v: Vec<_> = (1..=5)
            .rev()
            .map(|i| obj(&format!("v{i}"), i * DAY))
            .collect();
        let plan = plan_key(&c, "k", &v, 10 * DAY, day());
        let gone: Vec<_> = plan
            .actions
            .iter()
            .map(|a| match a {
                Action::DeleteVersion { version_id, .. } => version_id.clone().unwrap(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            gone,
            vec!["v2", "v1"],
            "v4 and v3 are the two newest noncurrent"
        );
        // v2 became noncurrent when v3 was written (3 days): due at 4 days, not before.
        let plan = plan_key(&c, "k", &v, 4 * DAY - 1, day());
        assert_eq!(plan.actions.len(), 1, "{plan:?}");
    }

    #[test]
    fn sole_delete_markers_go() {
        let mut r = rule();
        r.expiration = Some(Expiration::DeleteMarker(true));
        r.noncurrent_expiration = Some(NoncurrentExpiration {
            days: 1,
            newer_noncurrent_versions: None,
        });
        let c = cfg(r);
        let v = [marker("m", DAY), obj("a", 0)];
        assert!(plan_key(&c, "k", &v, DAY + 1, day()).actions.is_empty());
        let plan = plan_key(&c, "k", &v, 2 * DAY, day());
        assert_eq!(plan.actions.len(), 2);
        assert!(matches!(
            &plan.actions[1],
            Action::DeleteVersion {
                expired_marker: true,
                ..
            }
        ));
        // Under Expiration Days, a sole marker goes once it is that old.
        let mut r = rule();
        r.expiration = Some(Expiration::Days(5));
        let v = [marker("m", 0)];
        assert!(plan_key(&cfg(r.clone()), "k", &v, 5 * DAY - 1, day())
            .actions
            .is_empty());
        assert_eq!(plan_key(&cfg(r), "k", &v, 5 * DAY, day()).actions.len(), 1);
    }
}
