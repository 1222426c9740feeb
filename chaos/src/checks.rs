//! The checkers: from a run's history (and the nemesis' windows), the anomalies.
//!
//! - per key, the reads and writes must be linearizable as a register with conditional
//!   writes ([`crate::linear`]);
//! - a listing includes every key whose write completed before it began and that nothing
//!   could have deleted since, and excludes every key whose delete completed before it
//!   began and that nothing could have written since;
//! - every read is byte-exact (a value this run wrote, whole);
//! - every acknowledged version of the versioned bucket reads back after the faults;
//! - no write is acknowledged by a gateway cut off with a minority of the metadata voters.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::history::{Kind, Observed, Op, Outcome};
use crate::linear::{self, Action, Event, Verdict};

/// Steps the linearizability search may take per key before it gives up.
const SEARCH_BUDGET: u64 = 20_000_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Anomaly {
    pub kind: String,
    pub detail: String,
}

fn anomaly(kind: &str, detail: String) -> Anomaly {
    Anomaly {
        kind: kind.into(),
        detail,
    }
}

/// A time window in which `nodes` were cut off from the metadata majority.
#[derive(Debug, Clone, Serialize)]
pub struct MinorityWindow {
    pub from: u64,
    pub to: u64,
    pub nodes: Vec<usize>,
}

/// What the checkers found, and how much they looked at.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub anomalies: Vec<Anomaly>,
    pub keys_checked: usize,
    pub inconclusive_keys: Vec<String>,
    pub lists_checked: usize,
    pub versions_checked: usize,
    pub minority_writes_refused: usize,
}

/// Runs every checker over `ops`.
pub fn check(ops: &[Op], minority: &[MinorityWindow]) -> Report {
    let mut report = Report::default();
    byte_exact(ops, &mut report);
    registers(ops, &mut report);
    lists(ops, &mut report);
    versions(ops, &mut report);
    minority_writes(ops, minority, &mut report);
    report
}

fn byte_exact(ops: &[Op], report: &mut Report) {
    for op in ops {
        if let Outcome::Ok(Observed::Corrupt(why)) = &op.outcome {
            report.anomalies.push(anomaly(
                "corrupt-read",
                format!(
                    "op {} {:?} {}/{} on node {}: {why}",
                    op.id, op.kind, op.bucket, op.key, op.node
                ),
            ));
        }
    }
}

/// The search's view of an operation, if it says anything about the register.
fn event(op: &Op) -> Option<Event> {
    let unknown = matches!(op.outcome, Outcome::Unknown(_));
    let applied = match &op.outcome {
        Outcome::Ok(Observed::NotApplied) => Some(false),
        Outcome::Ok(Observed::Written { .. }) => Some(true),
        Outcome::Unknown(_) => None,
        _ => return None,
    };
    let action = match (&op.kind, &op.outcome) {
        (Kind::Put { value, .. }, _) => Action::Write(Some(*value)),
        (Kind::Delete, _) => Action::Write(None),
        (Kind::PutIfAbsent { value, .. }, _) => Action::IfAbsent {
            value: *value,
            applied,
        },
        (Kind::PutIfMatch { value, expect, .. }, _) => Action::IfMatch {
            value: *value,
            expect: *expect,
            applied,
        },
        _ => return None,
    };
    Some(Event {
        op: op.id,
        call: op.invoke,
        ret: if unknown { u64::MAX } else { op.complete },
        action,
    })
}

fn read_event(op: &Op) -> Option<Event> {
    let saw = match (&op.kind, &op.outcome) {
        (Kind::Get | Kind::Head, Outcome::Ok(Observed::Value(v))) => Some(*v),
        (Kind::Get | Kind::Head, Outcome::Ok(Observed::Absent)) => None,
        _ => return None,
    };
    Some(Event {
        op: op.id,
        call: op.invoke,
        ret: op.complete,
        action: Action::Read(saw),
    })
}

fn registers(ops: &[Op], report: &mut Report) {
    let mut by_key: BTreeMap<(&str, &str), Vec<Event>> = BTreeMap::new();
    for op in ops {
        if let Some(e) = event(op).or_else(|| read_event(op)) {
            by_key
                .entry((op.bucket.as_str(), op.key.as_str()))
                .or_default()
                .push(e);
        }
    }
    for ((bucket, key), mut events) in by_key {
        report.keys_checked += 1;
        drop_unobserved_unknown_puts(&mut events);
        match linear::check(None, &events, SEARCH_BUDGET) {
            Verdict::Linearizable => {}
            Verdict::Inconclusive => report.inconclusive_keys.push(format!("{bucket}/{key}")),
            Verdict::NotLinearizable { deepest, blocking } => report.anomalies.push(anomaly(
                "not-linearizable",
                format!(
                    "{bucket}/{key}: {} operations, at most {deepest} ordered; op {blocking} \
                     cannot be placed",
                    events.len()
                ),
            )),
        }
    }
}

/// Removes plain writes of unknown outcome whose value no read saw and no If-Match named:
/// "never happened" is then always a valid place for them, and each one left in would
/// double the search. Kept when a conditional write was refused, which such a write might
/// explain.
fn drop_unobserved_unknown_puts(events: &mut Vec<Event>) {
    let refused = events.iter().any(|e| {
        matches!(
            e.action,
            Action::IfAbsent {
                applied: Some(false),
                ..
            } | Action::IfMatch {
                applied: Some(false),
                ..
            }
        )
    });
    if refused {
        return;
    }
    let mentioned: std::collections::HashSet<u64> = events
        .iter()
        .filter_map(|e| match e.action {
            Action::Read(Some(v)) => Some(v),
            Action::IfMatch { expect, .. } => Some(expect),
            _ => None,
        })
        .collect();
    events.retain(|e| {
        !(e.ret == u64::MAX
            && matches!(e.action, Action::Write(Some(v)) if !mentioned.contains(&v)))
    });
}

fn lists(ops: &[Op], report: &mut Report) {
    let mut writes: BTreeMap<(&str, &str), Vec<&Op>> = BTreeMap::new();
    for op in ops.iter().filter(|o| o.kind.is_write()) {
        writes
            .entry((op.bucket.as_str(), op.key.as_str()))
            .or_default()
            .push(op);
    }
    let creates = |o: &Op| !matches!(o.kind, Kind::Delete);
    // When an operation that may have written ends at the latest (never, when unknown).
    let end = |o: &Op| match o.outcome {
        Outcome::Unknown(_) => u64::MAX,
        _ => o.complete,
    };
    for list in ops.iter().filter(|o| o.kind == Kind::List) {
        let Outcome::Ok(Observed::Keys(seen)) = &list.outcome else {
            continue;
        };
        report.lists_checked += 1;
        for ((bucket, key), ws) in writes.range((list.bucket.as_str(), "")..) {
            if *bucket != list.bucket {
                break;
            }
            if !key.starts_with(list.key.as_str()) {
                continue;
            }
            let present = seen.iter().any(|k| k == key);
            // Must be there: an acknowledged create done before the list began, and no
            // possible delete that could land after it and before the list ended.
            let must = ws.iter().any(|w| {
                creates(w)
                    && w.acknowledged()
                    && w.complete < list.invoke
                    && !ws.iter().any(|d| {
                        !creates(d)
                            && d.may_have_written()
                            && d.invoke < list.complete
                            && end(d) > w.invoke
                    })
            });
            // Must be gone: an acknowledged delete done before the list began, and no
            // possible create that could land after it and before the list ended.
            let must_not = ws.iter().any(|d| {
                !creates(d)
                    && d.acknowledged()
                    && d.complete < list.invoke
                    && !ws.iter().any(|w| {
                        creates(w)
                            && w.may_have_written()
                            && w.invoke < list.complete
                            && end(w) > d.invoke
                    })
            });
            if must && !present {
                report.anomalies.push(anomaly(
                    "list-missing",
                    format!(
                        "list {} of {bucket}/{} on node {} lacks {key}, written before it",
                        list.id, list.key, list.node
                    ),
                ));
            }
            if must_not && present {
                report.anomalies.push(anomaly(
                    "list-stale",
                    format!(
                        "list {} of {bucket}/{} on node {} has {key}, deleted before it",
                        list.id, list.key, list.node
                    ),
                ));
            }
        }
        for k in seen {
            if !writes.contains_key(&(list.bucket.as_str(), k.as_str())) {
                report.anomalies.push(anomaly(
                    "list-invented",
                    format!("list {} has {k}, which nothing wrote", list.id),
                ));
            }
        }
    }
}

fn versions(ops: &[Op], report: &mut Report) {
    for op in ops {
        let Kind::GetVersion { version, value } = &op.kind else {
            continue;
        };
        report.versions_checked += 1;
        match &op.outcome {
            Outcome::Ok(Observed::Value(v)) if v == value => {}
            other => report.anomalies.push(anomaly(
                "lost-version",
                format!(
                    "{}/{} version {version} (value {value}, acknowledged) read back as {other:?} \
                     on node {}",
                    op.bucket, op.key, op.node
                ),
            )),
        }
    }
}

fn minority_writes(ops: &[Op], windows: &[MinorityWindow], report: &mut Report) {
    for w in windows {
        for op in ops.iter().filter(|o| {
            o.kind.is_write() && w.nodes.contains(&o.node) && o.invoke > w.from && o.complete < w.to
        }) {
            if op.acknowledged() {
                report.anomalies.push(anomaly(
                    "minority-write",
                    format!(
                        "op {} ({:?} {}/{}) was acknowledged by node {} while it was cut off \
                         with a minority ({}..{} µs)",
                        op.id, op.kind, op.bucket, op.key, op.node, w.from, w.to
                    ),
                ));
            } else {
                report.minority_writes_refused += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(id: u64, key: &str, kind: Kind, t: (u64, u64), outcome: Outcome) -> Op {
        Op {
            id,
            client: 0,
            node: 0,
            bucket: "b".into(),
            key: key.into(),
            kind,
            invoke: t.0,
            complete: t.1,
            outcome,
        }
    }
    fn put(id: u64, key: &str, t: (u64, u64)) -> Op {
        let kind = Kind::Put {
            value: id,
            size: 16,
            multipart: false,
        };
        op(
            id,
            key,
            kind,
            t,
            Outcome::Ok(Observed::Written { version: None }),
        )
    }
    fn list(id: u64, prefix: &str, t: (u64, u64), keys: &[&str]) -> Op {
        let seen = keys.iter().map(|k| k.to_string()).collect();
        op(id, prefix, Kind::List, t, Outcome::Ok(Observed::Keys(seen)))
    }
    fn kinds(r: &Report) -> Vec<&str> {
        r.anomalies.iter().map(|a| a.kind.as_str()).collect()
    }

    #[test]
    fn a_clean_history_has_no_anomalies() {
        let ops = vec![
            put(1, "p/a", (0, 10)),
            op(
                2,
                "p/a",
                Kind::Get,
                (20, 30),
                Outcome::Ok(Observed::Value(1)),
            ),
            list(3, "p/", (40, 50), &["p/a"]),
            op(
                4,
                "p/a",
                Kind::Delete,
                (60, 70),
                Outcome::Ok(Observed::Written { version: None }),
            ),
            list(5, "p/", (80, 90), &[]),
        ];
        let r = check(&ops, &[]);
        assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
        assert_eq!((r.keys_checked, r.lists_checked), (1, 2));
    }

    #[test]
    fn unseen_writes_of_unknown_outcome_are_dropped_only_when_they_explain_nothing() {
        let unknown = |id| Event {
            op: id,
            call: 0,
            ret: u64::MAX,
            action: Action::Write(Some(id)),
        };
        let read = |id, saw| Event {
            op: id,
            call: 10,
            ret: 20,
            action: Action::Read(saw),
        };
        let mut h = vec![unknown(1), unknown(2), read(3, Some(2))];
        drop_unobserved_unknown_puts(&mut h);
        assert_eq!(h.iter().map(|e| e.op).collect::<Vec<_>>(), [2, 3]);
        // A refused create may be explained by an unseen write: nothing is dropped.
        let refused = Event {
            op: 4,
            call: 30,
            ret: 40,
            action: Action::IfAbsent {
                value: 4,
                applied: Some(false),
            },
        };
        let mut h = vec![unknown(1), refused];
        drop_unobserved_unknown_puts(&mut h);
        assert_eq!(h.len(), 2);
        assert_eq!(linear::check(None, &h, 1000), Verdict::Linearizable);
    }

    #[test]
    fn each_checker_catches_its_anomaly() {
        let stale = vec![
            put(1, "k", (0, 10)),
            put(2, "k", (20, 30)),
            op(3, "k", Kind::Get, (40, 50), Outcome::Ok(Observed::Value(1))),
        ];
        assert_eq!(kinds(&check(&stale, &[])), ["not-linearizable"]);

        let missing = vec![put(1, "p/a", (0, 10)), list(2, "p/", (20, 30), &[])];
        assert_eq!(kinds(&check(&missing, &[])), ["list-missing"]);
        // A delete of unknown outcome sent before the list excuses the absence.
        let mut excused = missing.clone();
        excused.push(op(
            3,
            "p/a",
            Kind::Delete,
            (15, 16),
            Outcome::Unknown("timeout".into()),
        ));
        assert!(check(&excused, &[]).anomalies.is_empty());

        let gone = vec![
            put(1, "p/a", (0, 10)),
            op(
                2,
                "p/a",
                Kind::Delete,
                (20, 30),
                Outcome::Ok(Observed::Written { version: None }),
            ),
            list(3, "p/", (40, 50), &["p/a"]),
        ];
        assert_eq!(kinds(&check(&gone, &[])), ["list-stale"]);
        assert_eq!(
            kinds(&check(&[list(1, "p/", (0, 1), &["p/z"])], &[])),
            ["list-invented"]
        );

        let corrupt = vec![op(
            1,
            "k",
            Kind::Get,
            (0, 1),
            Outcome::Ok(Observed::Corrupt("byte 9 differs".into())),
        )];
        assert_eq!(kinds(&check(&corrupt, &[])), ["corrupt-read"]);

        let lost = vec![op(
            1,
            "k",
            Kind::GetVersion {
                version: "v1".into(),
                value: 7,
            },
            (0, 1),
            Outcome::Ok(Observed::Absent),
        )];
        assert_eq!(kinds(&check(&lost, &[])), ["lost-version"]);

        let windows = [MinorityWindow {
            from: 5,
            to: 100,
            nodes: vec![0],
        }];
        let r = check(&[put(1, "k", (10, 20))], &windows);
        assert_eq!(kinds(&r), ["minority-write"]);
        let refused = op(
            1,
            "k",
            Kind::Delete,
            (10, 20),
            Outcome::Unknown("503".into()),
        );
        let r = check(&[refused], &windows);
        assert!(r.anomalies.is_empty());
        assert_eq!(r.minority_writes_refused, 1);
    }
}
