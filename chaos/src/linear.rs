//! Linearizability of one key's history, as a register with conditional writes.
//!
//! The search is the one Porcupine uses (Lowe's just-in-time linearization with a cache of
//! visited states): operations are call and return entries in time order; an operation may
//! be linearized when its call is reached and the model accepts it in the current state,
//! and the search backtracks when it reaches the return of an operation not yet
//! linearized. An operation of unknown outcome returns at infinity: it may take effect at
//! any point after its call, or never (linearized after everything else, it changes
//! nothing anyone saw).

use std::collections::HashSet;

use crate::history::OpId;

/// The register: the value the key holds, or none.
pub type State = Option<OpId>;

/// What an operation did to or saw of the register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// PUT of a value (`Some`) or DELETE (`None`), acknowledged or of unknown outcome.
    Write(State),
    /// PUT with `If-None-Match: *`: `applied` is what the answer said (`None`: unknown).
    IfAbsent { value: OpId, applied: Option<bool> },
    /// PUT with `If-Match` of value `expect`'s ETag.
    IfMatch {
        value: OpId,
        expect: OpId,
        applied: Option<bool>,
    },
    /// A read that saw this state.
    Read(State),
}

/// One operation for the search: its call and return times (µs; `u64::MAX` when the
/// outcome is unknown) and what it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub op: OpId,
    pub call: u64,
    pub ret: u64,
    pub action: Action,
}

/// The model: the state after `action` in `state`, or `None` when the action could not
/// have happened in that state.
pub fn step(state: State, action: &Action) -> Option<State> {
    let conditional = |holds: bool, value: OpId, applied: &Option<bool>| match (holds, applied) {
        (true, Some(true) | None) => Some(Some(value)),
        (false, Some(false) | None) => Some(state),
        _ => None,
    };
    match action {
        Action::Write(s) => Some(*s),
        Action::IfAbsent { value, applied } => conditional(state.is_none(), *value, applied),
        Action::IfMatch {
            value,
            expect,
            applied,
        } => conditional(state == Some(*expect), *value, applied),
        Action::Read(s) => (state == *s).then_some(state),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    /// No order fits. `deepest` operations could be ordered at most; `blocking` is the
    /// operation whose return the deepest attempt could not get past.
    NotLinearizable {
        deepest: usize,
        blocking: OpId,
    },
    /// The search gave up after its step budget (neither proven nor refuted).
    Inconclusive,
}

#[derive(Clone, Copy)]
struct Entry {
    /// Index into the events.
    ev: usize,
    call: bool,
}

/// Whether `events` (one key's operations) are linearizable from `initial`, searching at
/// most `budget` steps.
pub fn check(initial: State, events: &[Event], budget: u64) -> Verdict {
    let n = events.len();
    if n == 0 {
        return Verdict::Linearizable;
    }
    let mut entries: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * n);
    for (i, e) in events.iter().enumerate() {
        entries.push((e.call, true, i));
        entries.push((e.ret.max(e.call), false, i));
    }
    // Time order; at equal times calls first, so that touching operations overlap.
    entries.sort_by_key(|&(t, call, i)| (t, !call, i));
    let entries: Vec<Entry> = entries
        .into_iter()
        .map(|(_, call, ev)| Entry { ev, call })
        .collect();
    let m = entries.len();
    // A doubly linked list over the entries; index m is the head sentinel and the end.
    let head = m;
    let mut next: Vec<usize> = (1..=m).chain([0]).collect();
    let mut prev: Vec<usize> = std::iter::once(m).chain(0..m).collect();
    next[m - 1] = head;
    next[head] = 0;
    prev[0] = head;
    prev[head] = m - 1;
    let mut ret_of = vec![0usize; n];
    for (i, e) in entries.iter().enumerate() {
        if !e.call {
            ret_of[e.ev] = i;
        }
    }
    let unlink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, i: usize| {
        let (p, q) = (prev[i], next[i]);
        next[p] = q;
        prev[q] = p;
    };
    let relink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, i: usize| {
        let (p, q) = (prev[i], next[i]);
        next[p] = i;
        prev[q] = i;
    };

    let words = n.div_ceil(64);
    let mut done = vec![0u64; words];
    let mut cache: HashSet<(Vec<u64>, State)> = HashSet::new();
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut state = initial;
    let mut at = next[head];
    let (mut deepest, mut blocking) = (0usize, events[0].op);
    let mut steps = 0u64;
    loop {
        if next[head] == head {
            return Verdict::Linearizable;
        }
        steps += 1;
        if steps > budget {
            return Verdict::Inconclusive;
        }
        let e = entries[at];
        if e.call {
            if let Some(after) = step(state, &events[e.ev].action) {
                done[e.ev / 64] |= 1 << (e.ev % 64);
                if cache.insert((done.clone(), after)) {
                    stack.push((at, state));
                    state = after;
                    unlink(&mut next, &mut prev, at);
                    unlink(&mut next, &mut prev, ret_of[e.ev]);
                    at = next[head];
                    continue;
                }
                done[e.ev / 64] &= !(1 << (e.ev % 64));
            }
            at = next[at];
        } else {
            if stack.len() >= deepest {
                deepest = stack.len();
                blocking = events[e.ev].op;
            }
            let Some((call_at, before)) = stack.pop() else {
                return Verdict::NotLinearizable { deepest, blocking };
            };
            let ev = entries[call_at].ev;
            done[ev / 64] &= !(1 << (ev % 64));
            state = before;
            relink(&mut next, &mut prev, ret_of[ev]);
            relink(&mut next, &mut prev, call_at);
            at = next[call_at];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const U: u64 = u64::MAX;

    fn ev(op: OpId, call: u64, ret: u64, action: Action) -> Event {
        Event {
            op,
            call,
            ret,
            action,
        }
    }
    fn put(op: OpId, call: u64, ret: u64) -> Event {
        ev(op, call, ret, Action::Write(Some(op)))
    }
    fn read(op: OpId, call: u64, ret: u64, saw: State) -> Event {
        ev(op, call, ret, Action::Read(saw))
    }
    fn ok(events: &[Event]) -> bool {
        check(None, events, 1_000_000) == Verdict::Linearizable
    }

    #[test]
    fn sequential_histories() {
        assert!(ok(&[put(1, 0, 10), read(2, 20, 30, Some(1))]));
        assert!(ok(&[
            read(1, 0, 5, None),
            put(2, 10, 20),
            read(3, 30, 40, Some(2))
        ]));
        // A read of a value before its write began.
        assert!(!ok(&[read(1, 0, 5, Some(2)), put(2, 10, 20)]));
        // A stale read: b replaced a before the read began.
        assert!(!ok(&[
            put(1, 0, 10),
            put(2, 20, 30),
            read(3, 40, 50, Some(1))
        ]));
        // Deleted, then seen again.
        assert!(!ok(&[
            put(1, 0, 10),
            ev(2, 20, 30, Action::Write(None)),
            read(3, 40, 50, Some(1))
        ]));
        assert!(ok(&[
            put(1, 0, 10),
            ev(2, 20, 30, Action::Write(None)),
            read(3, 40, 50, None)
        ]));
    }

    #[test]
    fn concurrent_writes_may_land_in_either_order_but_only_one() {
        let w = [put(1, 0, 100), put(2, 0, 100)];
        for (a, b) in [(1, 2), (2, 1)] {
            let mut h = w.to_vec();
            h.push(read(3, 10, 20, Some(a)));
            h.push(read(4, 30, 40, Some(b)));
            assert!(ok(&h), "{a} then {b}");
            h.push(read(5, 50, 60, Some(a)));
            assert!(!ok(&h), "{a}, {b}, then {a} again");
        }
        // After both completed, reads must agree.
        let mut h = w.to_vec();
        h.push(read(3, 200, 210, Some(1)));
        h.push(read(4, 220, 230, Some(2)));
        assert!(!ok(&h));
    }

    #[test]
    fn unknown_writes_may_land_late_or_never() {
        let lost = put(1, 0, U);
        assert!(ok(&[lost.clone(), read(2, 50, 60, None)]));
        assert!(ok(&[
            lost.clone(),
            read(2, 50, 60, None),
            read(3, 900, 910, Some(1))
        ]));
        // Once seen it stays (nothing else wrote).
        assert!(!ok(&[
            lost.clone(),
            read(2, 50, 60, Some(1)),
            read(3, 900, 910, None)
        ]));
        // But not before it was sent.
        assert!(!ok(&[read(0, 0, 1, Some(1)), put(1, 5, U)]));
    }

    #[test]
    fn conditional_creates_have_one_winner() {
        let ia = |op, applied| {
            ev(
                op,
                0,
                100,
                Action::IfAbsent {
                    value: op,
                    applied: Some(applied),
                },
            )
        };
        assert!(ok(&[ia(1, true), ia(2, false), read(3, 200, 210, Some(1))]));
        assert!(!ok(&[ia(1, true), ia(2, true)]));
        assert!(!ok(&[
            ia(1, true),
            ia(2, false),
            read(3, 200, 210, Some(2))
        ]));
        // Refused although the key was empty all along.
        assert!(!ok(&[ia(1, false), read(2, 200, 210, None)]));
    }

    #[test]
    fn if_match_applies_only_over_the_expected_value() {
        let im = |op, call, ret, expect, applied| {
            ev(
                op,
                call,
                ret,
                Action::IfMatch {
                    value: op,
                    expect,
                    applied,
                },
            )
        };
        assert!(ok(&[
            put(1, 0, 10),
            im(2, 20, 30, 1, Some(true)),
            read(3, 40, 50, Some(2))
        ]));
        assert!(!ok(&[put(1, 0, 10), im(2, 20, 30, 9, Some(true))]));
        assert!(!ok(&[put(1, 0, 10), im(2, 20, 30, 1, Some(false))]));
        // Two If-Match on the same ETag: at most one applies.
        assert!(!ok(&[
            put(1, 0, 10),
            im(2, 20, 30, 1, Some(true)),
            im(3, 20, 30, 1, Some(true))
        ]));
        // Unknown: may or may not have applied.
        assert!(ok(&[
            put(1, 0, 10),
            im(2, 20, U, 1, None),
            read(3, 40, 50, Some(1))
        ]));
        assert!(ok(&[
            put(1, 0, 10),
            im(2, 20, U, 1, None),
            read(3, 40, 50, Some(2))
        ]));
    }

    #[test]
    fn the_budget_makes_a_search_inconclusive_not_wrong() {
        let mut h: Vec<Event> = (1..=12).map(|i| put(i, 0, U)).collect();
        h.push(read(100, 10, 20, Some(12)));
        assert_eq!(check(None, &h, 3), Verdict::Inconclusive);
        assert_eq!(check(None, &h, 1_000_000), Verdict::Linearizable);
    }

    /// A register driven by real linearization points: each operation takes effect at a
    /// point inside its [call, return] window and reads see the state at their point.
    fn simulated(spec: &[(u8, u16, u16, u16, bool)]) -> Vec<Event> {
        let mut ops: Vec<(u64, u64, u64, u8, bool, OpId)> = spec
            .iter()
            .enumerate()
            .map(|(i, &(kind, point, before, after, unknown))| {
                let point = u64::from(point) * 10 + 1000;
                // Windows of up to 3 s among points 10 s apart: a few operations overlap,
                // as with a handful of clients.
                let call = point - u64::from(before % 300);
                let ret = if unknown {
                    U
                } else {
                    point + u64::from(after % 300)
                };
                (point, call, ret, kind % 5, unknown, i as OpId + 1)
            })
            .collect();
        ops.sort_by_key(|o| o.0);
        let mut state: State = None;
        let mut out = Vec::new();
        for (_, call, ret, kind, unknown, id) in ops {
            let action = match kind {
                0 | 1 => {
                    state = Some(id);
                    Action::Write(Some(id))
                }
                2 => {
                    state = None;
                    Action::Write(None)
                }
                3 => {
                    let applied = state.is_none();
                    if applied {
                        state = Some(id);
                    }
                    Action::IfAbsent {
                        value: id,
                        applied: (!unknown).then_some(applied),
                    }
                }
                _ if unknown => continue, // unknown reads say nothing
                _ => Action::Read(state),
            };
            out.push(Event {
                op: id,
                call,
                ret,
                action,
            });
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn histories_of_a_real_register_are_linearizable(
            spec in proptest::collection::vec(
                (0u8..5, 0u16..400, 0u16..2000, 0u16..2000, proptest::bool::weighted(0.1)),
                1..40,
            )
        ) {
            let h = simulated(&spec);
            prop_assert_eq!(check(None, &h, 5_000_000), Verdict::Linearizable);
        }
    }
}
