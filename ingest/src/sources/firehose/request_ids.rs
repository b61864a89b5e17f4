//! The Firehose request ids a source has stored recently, so that a request Firehose retries
//! (its 200 was lost or late) is answered 200 without being stored a second time.
//!
//! Durability: each new request carries one checkpoint, `firehose:<source>:request:<slot>` with
//! `offset` = the request's sequence number and `state` = `{"request_id": …}`, in the same WAL
//! append as its records; so an id is known after a crash exactly when its records are stored.
//! Slots are a ring (`seq % SLOTS`): the ledger holds the last [`SLOTS`] ids, a fixed number of
//! small keys, and nothing grows with time.
//!
//! Invariants: ids are recorded and handed on under one lock, so checkpoints reach the WAL in
//! sequence order and a slot's last write is its newest id. An id is answered as a duplicate
//! only once its records are confirmed stored (before a restart: its ack said so; after: its
//! checkpoint was in the ledger); while its first delivery is still unconfirmed a retry is told
//! to come back later, and a delivery that failed is forgotten, so a retry stores it.
//!
//! Limits: a retry after more than [`SLOTS`] newer requests is stored again (Firehose retries
//! within its retry duration, at most two hours; at one request a second that is still more
//! than an hour of requests).

use std::collections::{BTreeMap, HashMap};

use crate::pipeline::{Checkpoint, Checkpoints};

/// Request ids remembered per source.
pub const SLOTS: u64 = 4096;

/// What is known of a request id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Not seen (or forgotten): store it.
    New,
    /// Handed on, not yet confirmed stored: ask the sender to retry later.
    Pending,
    /// Confirmed stored: answer 200 and store nothing.
    Stored,
}

#[derive(Debug)]
pub struct RequestIds {
    prefix: String,
    next: u64,
    /// id → (seq, confirmed stored).
    ids: HashMap<String, (u64, bool)>,
    /// slot → id, to evict what a slot held before.
    slots: BTreeMap<u64, String>,
}

impl RequestIds {
    /// The ids the ledger holds for source `name` (all confirmed stored).
    pub fn recover(name: &str, checkpoints: &Checkpoints) -> RequestIds {
        let prefix = format!("firehose:{name}:request:");
        let mut out = RequestIds {
            prefix: prefix.clone(),
            next: 0,
            ids: HashMap::new(),
            slots: BTreeMap::new(),
        };
        for cp in checkpoints.with_prefix(&prefix) {
            if let Some(id) = cp.state.get("request_id").and_then(|v| v.as_str()) {
                out.next = out.next.max(cp.offset + 1);
                out.ids.insert(id.to_owned(), (cp.offset, true));
                out.slots.insert(cp.offset % SLOTS, id.to_owned());
            }
        }
        out
    }

    pub fn seen(&self, id: &str) -> Seen {
        match self.ids.get(id) {
            None => Seen::New,
            Some((_, false)) => Seen::Pending,
            Some((_, true)) => Seen::Stored,
        }
    }

    /// Records a new id and returns the checkpoint its delivery carries.
    pub fn record(&mut self, id: &str) -> Checkpoint {
        let seq = self.next;
        self.next += 1;
        let slot = seq % SLOTS;
        if let Some(old) = self.slots.insert(slot, id.to_owned())
            && self.ids.get(&old).is_some_and(|(s, _)| s % SLOTS == slot)
        {
            self.ids.remove(&old);
        }
        self.ids.insert(id.to_owned(), (seq, false));
        Checkpoint {
            key: format!("{}{slot:04}", self.prefix),
            offset: seq,
            state: serde_json::json!({ "request_id": id }),
        }
    }

    /// The delivery of `id` is confirmed stored.
    pub fn stored(&mut self, id: &str) {
        if let Some((_, done)) = self.ids.get_mut(id) {
            *done = true;
        }
    }

    /// The delivery of `id` was not stored (or never handed on): a retry stores it.
    pub fn forget(&mut self, id: &str) {
        self.ids.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_a_duplicate_once_stored_and_survives_recovery() {
        let mut ids = RequestIds::recover("aws", &Checkpoints::default());
        assert_eq!(ids.seen("a"), Seen::New);
        let cp = ids.record("a");
        assert_eq!(cp.key, "firehose:aws:request:0000");
        assert_eq!(ids.seen("a"), Seen::Pending);
        ids.stored("a");
        assert_eq!(ids.seen("a"), Seen::Stored);
        let cp_b = ids.record("b");
        ids.forget("b");
        assert_eq!(ids.seen("b"), Seen::New);
        // After a restart: what the ledger had.
        let ledger = Checkpoints([(cp.key.clone(), cp)].into_iter().collect());
        let ids = RequestIds::recover("aws", &ledger);
        assert_eq!(ids.seen("a"), Seen::Stored);
        assert_eq!(ids.seen("b"), Seen::New);
        assert_eq!(ids.next, 1);
        assert_eq!(cp_b.offset, 1);
    }

    #[test]
    fn the_ring_forgets_the_oldest_only() {
        let mut ids = RequestIds::recover("aws", &Checkpoints::default());
        let mut ledger = BTreeMap::new();
        for i in 0..SLOTS + 10 {
            let id = format!("r{i}");
            let cp = ids.record(&id);
            ids.stored(&id);
            ledger.insert(cp.key.clone(), cp);
        }
        assert_eq!(ledger.len() as u64, SLOTS);
        let recovered = RequestIds::recover("aws", &Checkpoints(ledger));
        for ids in [&ids, &recovered] {
            assert_eq!(ids.seen("r0"), Seen::New);
            assert_eq!(ids.seen("r9"), Seen::New);
            assert_eq!(ids.seen("r10"), Seen::Stored);
            assert_eq!(ids.seen(&format!("r{}", SLOTS + 9)), Seen::Stored);
            assert_eq!(ids.ids.len() as u64, SLOTS);
        }
        assert_eq!(recovered.next, SLOTS + 10);
    }
}
