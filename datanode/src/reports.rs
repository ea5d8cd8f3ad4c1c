//! Incremental block reports waiting to be sent to the namenode.
//!
//! Events are kept per block id, the newest winning, so the queue never holds
//! more entries than the node has replicas however long the namenode is
//! away, and the data path never waits for the namenode.

use std::collections::BTreeMap;

use dfs_proto::{ExtendedBlock, ReplicaReport, ReplicaState};
use parking_lot::Mutex;
use tokio::sync::Notify;

/// One change to tell the namenode about.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A replica was received or changed state (finalized, corrupt).
    Received(ReplicaReport),
    /// A replica was deleted.
    Deleted(ExtendedBlock),
}

/// The queue of incremental report events.
#[derive(Debug, Default)]
pub struct Reporter {
    pending: Mutex<BTreeMap<u64, Event>>,
    notify: Notify,
}

impl Reporter {
    /// A replica was finalized.
    pub fn finalized(&self, block: ExtendedBlock) {
        self.received(block, ReplicaState::Finalized);
    }

    /// A replica was found corrupt.
    pub fn corrupt(&self, block: ExtendedBlock) {
        self.received(block, ReplicaState::Corrupt);
    }

    fn received(&self, block: ExtendedBlock, state: ReplicaState) {
        let id = block.id;
        self.push(
            id,
            Event::Received(ReplicaReport {
                block: Some(block),
                state: state as i32,
            }),
        );
    }

    /// A replica was deleted.
    pub fn deleted(&self, block: ExtendedBlock) {
        self.push(block.id, Event::Deleted(block));
    }

    fn push(&self, id: u64, event: Event) {
        self.pending.lock().insert(id, event);
        self.notify.notify_one();
    }

    /// Takes at most `max` pending events (lowest block ids first), so one
    /// incremental report stays far below the message size limit.
    pub fn take(&self, max: usize) -> Vec<(u64, Event)> {
        let mut pending = self.pending.lock();
        if pending.len() <= max {
            return std::mem::take(&mut *pending).into_iter().collect();
        }
        let mut out = Vec::with_capacity(max);
        while out.len() < max {
            match pending.pop_first() {
                Some(e) => out.push(e),
                None => break,
            }
        }
        out
    }

    /// Puts back events that could not be sent, unless a newer event for the
    /// same block arrived meanwhile.
    pub fn restore(&self, events: Vec<(u64, Event)>) {
        let mut pending = self.pending.lock();
        for (id, event) in events {
            pending.entry(id).or_insert(event);
        }
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.pending.lock().len()
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.lock().is_empty()
    }

    /// Waits until an event is pushed (returns at once if one was pushed
    /// since the last wait).
    pub async fn wait(&self) {
        self.notify.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blk(id: u64, gs: u64) -> ExtendedBlock {
        ExtendedBlock {
            id,
            generation_stamp: gs,
            length: 10,
        }
    }

    #[test]
    fn take_is_bounded() {
        let r = Reporter::default();
        for id in 1..=5 {
            r.finalized(blk(id, 1));
        }
        let first: Vec<u64> = r.take(2).into_iter().map(|(id, _)| id).collect();
        assert_eq!(first, vec![1, 2]);
        assert_eq!(r.len(), 3);
        assert_eq!(r.take(10).len(), 3);
        assert!(r.is_empty());
    }

    #[test]
    fn newest_event_wins_and_restore_keeps_it() {
        let r = Reporter::default();
        r.finalized(blk(1, 1));
        r.deleted(blk(1, 1));
        r.corrupt(blk(2, 1));
        let batch = r.take(usize::MAX);
        assert_eq!(batch.len(), 2);
        assert!(matches!(batch[0].1, Event::Deleted(_)));
        assert!(r.is_empty());
        r.finalized(blk(2, 2));
        r.restore(batch);
        assert_eq!(r.len(), 2);
        let again = r.take(usize::MAX);
        match &again[1].1 {
            Event::Received(rep) => {
                assert_eq!(rep.block.as_ref().map(|b| b.generation_stamp), Some(2))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
