//! What follows a failure (retries and resync: docs/replication-protocol.md, "Slave:
//! Discover, Requests and Data" and "Operator command rules"): a file whose apply failed
//! waits for its retry, an operator's resync starts a file or the store again, and a file
//! deleted on this node is forgotten.

use super::*;

impl SlaveFiles {
    /// A file enters state error: a retry is due after its delay (doubling per
    /// consecutive failure).
    pub(super) fn fail(&mut self, slot: u32, from: i64, now: i64) {
        let delay = match self.retry.get(&slot) {
            Some((_, d)) => (d * 2).min(RETRY_MAX),
            None => RETRY_FIRST,
        };
        let due = now + delay;
        self.retry.insert(slot, (due, delay));
        self.retry_due.push(Reverse((due, slot)));
        if let Some(e) = self.entry_mut(slot) {
            e.state = SState::Error;
            e.from = from.clamp(0, TIME_LIMIT - 1) as u32;
        }
    }

    /// The outcome of writing an [`DataAction::Apply`]: the follow-up Request, or
    /// none when the write failed (the file waits for its retry).
    pub fn applied(
        &mut self,
        slot: u32,
        buckets: &[Bucket],
        result: Result<(u32, u32), ()>,
        interval: i64,
        now: i64,
    ) -> Option<Req> {
        let n = self.cfg.chunk_buckets;
        let e = self.entry_mut(slot)?;
        e.set(ANSWERED, false);
        if e.state == SState::Draining {
            // Found to be another incarnation during the write: its answer is in, so
            // it is idle now (see take_pending).
            e.state = SState::Idle;
            return None;
        }
        if e.state != SState::Outstanding {
            return None;
        }
        let from = e.from as i64;
        match result {
            Err(()) => {
                self.counters.apply_errors += 1;
                let first = buckets.first().map_or(from, |b| b.time);
                self.fail(slot, from.min(first), now);
                None
            }
            Ok((written, too_old)) => {
                e.set(LOGGED, false);
                self.counters.buckets_written += written as u64;
                self.counters.buckets_too_old += too_old as u64;
                let last = buckets.last().map_or(from, |b| b.time);
                let mut from = from.max(last.saturating_add(interval.max(1)));
                if let Some(t) = self.resync_from.remove(&slot) {
                    from = from.min(t);
                }
                let from = from.clamp(0, TIME_LIMIT - 1);
                let e = self.entry_mut(slot).expect("checked above");
                e.from = from as u32;
                self.retry.remove(&slot);
                self.counters.requests_sent += 1;
                Some(Req { slot, from, n })
            }
        }
    }

    /// More than 10% of the subscribed files, and at least 100, are in state error:
    /// the store refuses most writes, so the link must go down (`Apply failing`,
    /// docs/replication-protocol.md, "Slave: Discover, Requests and Data").
    pub fn apply_failing(&self) -> bool {
        let (mut subscribed, mut errors) = (0usize, 0usize);
        for e in self.entries.iter().filter(|e| e.has(LIVE)) {
            match e.state {
                SState::Error => {
                    errors += 1;
                    subscribed += 1;
                }
                SState::Outstanding | SState::Draining => subscribed += 1,
                _ => {}
            }
        }
        errors >= 100 && errors * 10 > subscribed
    }

    /// Requests of files whose retry is due.
    pub fn due_retries(&mut self, now: i64) -> Vec<Req> {
        let mut out = Vec::new();
        while let Some(Reverse((due, _))) = self.retry_due.peek() {
            if *due > now {
                break;
            }
            let Some(Reverse((due, slot))) = self.retry_due.pop() else {
                break;
            };
            if self.retry.get(&slot).is_none_or(|(d, _)| *d != due) {
                continue;
            }
            let n = self.cfg.chunk_buckets;
            let Some(e) = self.entry_mut(slot) else {
                continue;
            };
            if e.state != SState::Error {
                continue;
            }
            e.state = SState::Outstanding;
            e.set(ANSWERED, false);
            let from = e.from as i64;
            self.counters.retries += 1;
            self.counters.requests_sent += 1;
            out.push(Req {
                slot,
                from,
                n: n.max(1),
            });
        }
        out
    }

    /// `replication.resync PATH[,from=TIME]` (docs/replication-protocol.md,
    /// "Operator command rules"): an idle or error file is queued again (from min(resume
    /// point, TIME)); an outstanding one keeps its Request, whose follow-up asks from TIME;
    /// a rejected one is checked again against the header in the rejected table.
    pub fn resync(&mut self, slot: u32, from: Option<i64>) -> Result<Resync, &'static str> {
        let e = self.entry(slot).ok_or("unknown file")?;
        let rejected = e.has(REJECTED);
        let state = e.state;
        match from {
            Some(t) => {
                self.resync_from.insert(slot, t);
            }
            None => {
                self.resync_from.remove(&slot);
            }
        }
        if rejected {
            let h = self
                .rejected
                .iter()
                .find(|(s, _)| *s == slot)
                .map(|(_, h)| h.clone())
                .ok_or("no header; use replication.resync all")?;
            return Ok(Resync::Recheck(h));
        }
        match state {
            SState::Idle | SState::Error => {
                self.retry.remove(&slot);
                if let Some(e) = self.entry_mut(slot) {
                    e.state = SState::Queued;
                }
                self.counters.retries += 1;
                self.queue.push_back(slot);
                Ok(Resync::Queued)
            }
            // Its next Request uses min(follow-up, TIME); a queued file subscribes
            // with it.
            _ => Ok(Resync::Flagged),
        }
    }

    /// Whether a file is rejected (its local copy differs from the master's header).
    pub fn is_rejected(&self, slot: u32) -> bool {
        self.entry(slot).is_some_and(|e| e.has(REJECTED))
    }

    /// A Discover that waited for a file's answer, once [`SlaveFiles::applied`] made it
    /// idle: the driver processes it again (as a redo).
    pub fn take_pending(&mut self, slot: u32) -> Option<Box<[u8; HEADER_SIZE]>> {
        if self.state(slot) != Some(SState::Idle) {
            return None;
        }
        self.pending.remove(&slot)
    }

    /// A local delete of a file (`name` its wire name): an outstanding one's answer is
    /// still awaited (and discarded when it comes), unless it is in already (being
    /// written); its slot is forgotten either way.
    pub fn deleted_locally(&mut self, slot: u32, name: &[u8]) {
        if let Some(e) = self.entry(slot) {
            if matches!(e.state, SState::Outstanding | SState::Draining) && !e.has(ANSWERED) {
                let waiting = self.pending.remove(&slot);
                self.deleted_outstanding.insert(name.into(), waiting);
            }
        }
        self.forget(slot);
    }
}
