//! Flush bookkeeping (docs/file-format.md, "Page cache and flushing", "Operations for
//! replication"): the round-robin position of the periodic flush, the flush visits and
//! deletions collected for replication, and running flushes concurrently.

use std::cell::{Cell, RefCell};

use super::FileId;
use crate::format::Header;

/// Counters flushed at once by [`Store::flush_all`](super::Store::flush_all).
pub const FLUSH_CONCURRENCY: usize = 32;

/// Poll futures concurrently on the current executor; results in input order.
pub async fn join_all<T, F: std::future::Future<Output = T>>(futs: Vec<F>) -> Vec<T> {
    use std::pin::Pin;
    use std::task::Poll;
    let mut futs: Vec<Option<Pin<Box<F>>>> = futs.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut out: Vec<Option<T>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, res) in futs.iter_mut().zip(out.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        *res = Some(v);
                        *slot = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    out.into_iter()
        .map(|v| v.expect("every future completed"))
        .collect()
}

/// A file flushed (a "flush visit", docs/file-format.md, "Page cache and flushing"): its
/// header as flushed, its newest bucket time then, and the lowest bucket time written since
/// its previous visit (`i64::MAX`: none). Clean files are visited too.
#[derive(Debug, Clone)]
pub struct FlushVisit {
    pub id: FileId,
    /// The file's path relative to the store root.
    pub rel: Box<str>,
    pub header: Header,
    pub flushed_last: i64,
    pub dirty_low: i64,
}

/// What replication takes from the store, in the order it happened: a deletion
/// followed by a visit of a new file in the same slot must not be seen the other way
/// round.
#[derive(Debug, Clone)]
pub enum ReplicationEvent {
    Visit(Box<FlushVisit>),
    /// A file left the store (deleted, or moved aside); its path as it was.
    Deleted {
        id: FileId,
        rel: Box<str>,
    },
}

/// [`ReplicationEvent`]s collected only once enabled.
#[derive(Default)]
pub(super) struct EventLog(RefCell<Option<Vec<ReplicationEvent>>>);

impl EventLog {
    pub(super) fn enable(&self) {
        let mut ev = self.0.borrow_mut();
        if ev.is_none() {
            *ev = Some(Vec::new());
        }
    }

    /// The events collected since the last call, oldest first.
    pub(super) fn take(&self) -> Vec<ReplicationEvent> {
        self.0
            .borrow_mut()
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    pub(super) fn visited(&self, visit: FlushVisit) {
        if let Some(ev) = self.0.borrow_mut().as_mut() {
            ev.push(ReplicationEvent::Visit(Box::new(visit)));
        }
    }

    pub(super) fn deleted(&self, id: FileId, rel: Box<str>) {
        if let Some(ev) = self.0.borrow_mut().as_mut() {
            ev.push(ReplicationEvent::Deleted { id, rel });
        }
    }
}

/// Round-robin position of the periodic flush: a snapshot of the counter keys and the
/// index of the next one.
#[derive(Default)]
pub(super) struct FlushCursor {
    keys: RefCell<(Vec<Box<str>>, usize)>,
    /// Completed rounds.
    rounds: Cell<u64>,
}

impl FlushCursor {
    /// The next key to flush, and whether a new round starts with it (the keys are then
    /// taken from `snapshot`). `None` when there are no keys.
    pub(super) fn next(
        &self,
        snapshot: impl FnOnce() -> Vec<Box<str>>,
    ) -> Option<(Box<str>, bool)> {
        let mut cur = self.keys.borrow_mut();
        let mut wrapped = false;
        if cur.1 >= cur.0.len() {
            wrapped = true;
            if !cur.0.is_empty() {
                self.rounds.set(self.rounds.get() + 1);
            }
            *cur = (snapshot(), 0);
        }
        if cur.0.is_empty() {
            return None;
        }
        let k = cur.0[cur.1].clone();
        cur.1 += 1;
        Some((k, wrapped))
    }

    pub(super) fn rounds(&self) -> u64 {
        self.rounds.get()
    }
}
