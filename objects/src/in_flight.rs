//! Bookkeeping the data path shares with the scrubber: which bodies are being written but
//! not committed yet ([`InFlight`] guards), so that their shards are never taken for orphans,
//! and which stripes degraded reads found damaged ([`RepairHints`]), so that the repairer
//! fixes them without waiting for the next scrub.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use cairn_metadata::StripeLoc;
use cairn_types::{EcScheme, ObjectId};
use tokio::sync::Notify;

/// Object ids of bodies in flight, with a count (ids are random, but a count costs nothing).
#[derive(Debug, Clone, Default)]
pub(crate) struct InFlightSet {
    ids: Arc<Mutex<HashMap<ObjectId, u32>>>,
}

impl InFlightSet {
    pub(crate) fn enter(&self, id: ObjectId) -> InFlight {
        *self
            .ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(id)
            .or_default() += 1;
        InFlight {
            set: self.clone(),
            id,
        }
    }

    pub(crate) fn contains(&self, id: ObjectId) -> bool {
        self.ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&id)
    }

    /// Every id in flight now.
    pub(crate) fn ids(&self) -> Vec<ObjectId> {
        self.ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .copied()
            .collect()
    }
}

/// Marks one body's object id as in flight until dropped.
#[derive(Debug)]
pub struct InFlight {
    set: InFlightSet,
    id: ObjectId,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut ids = self.set.ids.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = ids.get_mut(&self.id) {
            *n -= 1;
            if *n == 0 {
                ids.remove(&self.id);
            }
        }
    }
}

/// A stripe a read found damaged: enough to rebuild it in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairHint {
    pub object: ObjectId,
    pub ec: EcScheme,
    pub stripe: u32,
    pub loc: StripeLoc,
}

/// Bounded queue of [`RepairHint`]s, one entry per stripe; when full, new hints are dropped
/// (the scheduled scrub finds that damage anyway).
#[derive(Debug, Clone, Default)]
pub struct RepairHints {
    inner: Arc<Mutex<HintQueue>>,
    wakeup: Arc<Notify>,
}

#[derive(Debug, Default)]
struct HintQueue {
    queue: VecDeque<RepairHint>,
    queued: HashSet<(ObjectId, u32)>,
    dropped: u64,
}

/// Most hints kept waiting.
pub const MAX_REPAIR_HINTS: usize = 10_000;

impl RepairHints {
    /// Queues a hint unless its stripe is already queued or the queue is full.
    pub fn push(&self, hint: RepairHint) {
        let mut q = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if q.queued.contains(&(hint.object, hint.stripe)) {
            return;
        }
        if q.queue.len() >= MAX_REPAIR_HINTS {
            q.dropped += 1;
            return;
        }
        q.queued.insert((hint.object, hint.stripe));
        q.queue.push_back(hint);
        drop(q);
        self.wakeup.notify_one();
    }

    /// The oldest hint, if any.
    pub fn pop(&self) -> Option<RepairHint> {
        let mut q = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let h = q.queue.pop_front()?;
        q.queued.remove(&(h.object, h.stripe));
        Some(h)
    }

    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .queue
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until a hint is pushed (returns at once if one was pushed since the last wait).
    pub async fn notified(&self) {
        self.wakeup.notified().await
    }

    /// What [`Self::notified`] waits on, for a worker's schedule.
    pub fn wakeup(&self) -> Arc<Notify> {
        self.wakeup.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_ids_are_counted_until_dropped() {
        let set = InFlightSet::default();
        let id = ObjectId(7);
        let a = set.enter(id);
        let b = set.enter(id);
        assert!(set.contains(id));
        assert_eq!(set.ids(), vec![id]);
        drop(a);
        assert!(set.contains(id));
        drop(b);
        assert!(!set.contains(id));
        assert!(set.ids().is_empty());
    }

    #[test]
    fn hints_are_deduplicated_per_stripe() {
        let q = RepairHints::default();
        let hint = |stripe| RepairHint {
            object: ObjectId(1),
            ec: EcScheme { data: 2, parity: 1 },
            stripe,
            loc: StripeLoc {
                len: 0,
                shards: vec![],
            },
        };
        q.push(hint(0));
        q.push(hint(0));
        q.push(hint(1));
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop().map(|h| h.stripe), Some(0));
        q.push(hint(0));
        assert_eq!(q.len(), 2);
    }
}
