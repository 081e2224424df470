//! The slave's per-file replication state on one shard (docs/replication-protocol.md,
//! "State machines", "Slave: Discover, Requests and Data"): which files are subscribed, the
//! Request outstanding for each, what a Discover asks of storage, and which buckets of a
//! Data may be written.
//!
//! Sans I/O: the driver looks files up in storage, feeds Discover and Data in, does the
//! creations and writes the core asks for, and sends the Requests it returns (naming
//! them from storage).
//!
//! Memory (see "Memory"): state is dense, indexed by the local file's slot in the store,
//! and holds no names: one 12-byte [`Entry`] per file (intervals by index into a small
//! table). What few files need more (a retry
//! due, a Discover waiting for a draining answer, a resync time, a locally deleted
//! file's outstanding Request) lives in small maps.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use istatd_storage::format::{Bucket, Header, FLAGS_KNOWN, HEADER_SIZE, MAGIC};
use istatd_storage::hashing::FastMap;

use crate::name::is_valid_name;
use crate::pdu::discover_name;

mod recovery;

/// Largest bucket time on the wire (exclusive).
const TIME_LIMIT: i64 = 1 << 32;
/// First retry of a file in error, and the cap of its doubling.
const RETRY_FIRST: i64 = 30;
const RETRY_MAX: i64 = 600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SState {
    Idle,
    Queued,
    Outstanding,
    Draining,
    Error,
}

// Flags of an entry.
const BEHIND: u8 = 1;
const REJECTED: u8 = 1 << 1;
const LOGGED: u8 = 1 << 2;
/// The slot holds a known file (an entry exists).
const LIVE: u8 = 1 << 3;
/// The outstanding Request's answer is in and being written ([`DataAction::Apply`]
/// given, [`SlaveFiles::applied`] not called yet): nothing more is awaited for it.
const ANSWERED: u8 = 1 << 4;

/// One local file's state: 12 bytes.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// fromTime of the outstanding Request (or of the retry in state error).
    from: u32,
    /// The master's newest bucket time from its Discover or Data (the subscribe clamp).
    master_newest: u32,
    /// The local file's interval, as its index in [`SlaveFiles::intervals`] (a store
    /// has a handful of distinct intervals; 0 = not known).
    interval_ix: u8,
    state: SState,
    flags: u8,
}

const _: () = assert!(std::mem::size_of::<Entry>() == 12);

impl Default for Entry {
    fn default() -> Entry {
        Entry {
            from: 0,
            master_newest: 0,
            interval_ix: 0,
            state: SState::Idle,
            flags: 0,
        }
    }
}

impl Entry {
    fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }

    fn set(&mut self, f: u8, on: bool) {
        if on {
            self.flags |= f;
        } else {
            self.flags &= !f;
        }
    }
}

fn t32(t: i64) -> u32 {
    t.clamp(0, u32::MAX as i64) as u32
}

/// What the slave holds at a Discover's path.
#[derive(Debug, Clone)]
pub enum Local {
    Absent,
    /// A file storage refused as bad.
    Bad,
    Good(Box<Header>),
}

/// What a Discover asks the driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum DiscoverAction {
    /// Skipped: a header check failed (counted in `discover_rejected`).
    Rejected(&'static str),
    /// Same file_create_time, different parameters: left alone (`header_mismatch`).
    Mismatch,
    /// Nothing to do now (already subscribed, or waiting for a draining answer).
    Nothing,
    /// The file is fine: copy the cumulative fields; it may now be queued.
    Known,
    /// Create the file from the header (after moving the local one aside if `aside`).
    Create { aside: bool },
}

/// What `replication.resync PATH` did.
#[derive(Debug, Clone, PartialEq)]
pub enum Resync {
    /// An idle or error file is queued for subscription again.
    Queued,
    /// An outstanding file's next Request asks from the resync time.
    Flagged,
    /// A rejected file: check its local copy again against the master's header kept in
    /// the rejected table, as a Discover would ([`SlaveFiles::discover`]).
    Recheck(Box<[u8; HEADER_SIZE]>),
}

/// What a Data asks the driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum DataAction {
    /// Nothing to write and nothing to send.
    Done,
    /// A Discover waited for this draining answer: process it again.
    Rediscover(Box<[u8; HEADER_SIZE]>),
    /// Write these buckets (overwrite), then call [`SlaveFiles::applied`].
    Apply { buckets: Vec<Bucket> },
}

/// A fatal violation by the master (docs/replication-protocol.md, "Errors").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlaveError {
    Unexpected,
    ExceedsRequest,
}

impl SlaveError {
    pub fn text(&self) -> &'static str {
        match self {
            SlaveError::Unexpected => "Unexpected Data",
            SlaveError::ExceedsRequest => "Data exceeds request",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SlaveConfig {
    pub chunk_buckets: i64,
    pub resume_overlap: i64,
    /// Resume time R in force (`--replica-from`, `replication.of ...,from=`).
    pub resume_from: Option<i64>,
    /// Discover headers of rejected files kept for `replication.resync` (this shard's
    /// share of 1,024).
    pub rejected_headers: usize,
}

impl Default for SlaveConfig {
    fn default() -> Self {
        SlaveConfig {
            chunk_buckets: 256,
            resume_overlap: 600,
            resume_from: None,
            rejected_headers: 1024,
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct SlaveCounters {
    pub discover_received: u64,
    pub discover_rejected: u64,
    pub header_mismatch: u64,
    pub incarnation_changed: u64,
    pub bad_local_files: u64,
    pub files_created: u64,
    pub files_gone: u64,
    pub apply_errors: u64,
    /// Local files that could not be created (disk full, permissions); each is tried
    /// again by re-running its Discover.
    pub create_errors: u64,
    pub retries: u64,
    pub requests_sent: u64,
    pub data_received: u64,
    pub buckets_received: u64,
    pub buckets_written: u64,
    pub buckets_rejected: u64,
    pub buckets_too_old: u64,
    /// Largest bucket time seen in a Data or Discover (the master's newest).
    pub master_newest: i64,
    /// Time of the last Data with buckets, and the lag then (T_master - E).
    pub last_data_at: i64,
    pub tail_lag: i64,
}

/// Check a Discover header (docs/replication-protocol.md,
/// "Slave: Discover, Requests and Data", step 1).
pub fn check_discover(h: &[u8; HEADER_SIZE]) -> Result<Header, &'static str> {
    let hd = Header::parse_raw(&h[..]);
    if hd.magic != MAGIC {
        return Err("bad magic");
    }
    if hd.cfg_interval < 1 {
        return Err("interval below 1");
    }
    if hd.flags & !FLAGS_KNOWN != 0 {
        return Err("unknown flags");
    }
    if hd.page_size < 4096 || hd.page_size % 512 != 0 {
        return Err("bad page size");
    }
    if !(2..=1 << 24).contains(&hd.page_count) {
        return Err("bad page count");
    }
    if hd.file_create_time % hd.cfg_interval as i64 != 0
        || !(0..TIME_LIMIT).contains(&hd.file_create_time)
    {
        return Err("bad file_create_time");
    }
    if !is_valid_name(discover_name(h)) {
        return Err("bad name");
    }
    Ok(hd)
}

/// The master's newest bucket time from its header: never the raw `last_time`.
pub fn master_newest(h: &Header) -> i64 {
    if h.last_bucket > 0 {
        h.file_create_time
            .saturating_add(h.last_bucket.saturating_mul(h.cfg_interval as i64))
    } else {
        h.file_create_time
    }
}

/// Same identity and parameters (docs/replication-protocol.md,
/// "Slave: Discover, Requests and Data", step 2).
fn same_kind(a: &Header, b: &Header) -> bool {
    a.cfg_interval == b.cfg_interval
        && (a.flags & FLAGS_KNOWN) == (b.flags & FLAGS_KNOWN)
        && a.lambda.to_bits() == b.lambda.to_bits()
        && a.season == b.season
        && a.fixed_count == b.fixed_count
}

/// A Request for the driver to send (it names the file from storage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Req {
    pub slot: u32,
    pub from: i64,
    pub n: i64,
}

/// One shard's slave state for the current connection.
#[derive(Debug, Default)]
pub struct SlaveFiles {
    pub cfg: SlaveConfig,
    entries: Vec<Entry>,
    /// The intervals entries name by index; index 0 is "not known".
    intervals: Vec<u32>,
    queue: VecDeque<u32>,
    /// The rejected table: each rejected file's Discover header, oldest first.
    rejected: VecDeque<(u32, Box<[u8; HEADER_SIZE]>)>,
    /// Files in state error: (retry due, current delay) by slot, and by due time
    /// soonest first (an item is stale when its file's due time is another).
    retry: FastMap<u32, (i64, i64)>,
    retry_due: BinaryHeap<Reverse<(i64, u32)>>,
    /// A Discover of a new incarnation waiting for the draining answer.
    pending: FastMap<u32, Box<[u8; HEADER_SIZE]>>,
    /// `replication.resync PATH,from=T`: the next Request asks from at most T.
    resync_from: FastMap<u32, i64>,
    /// Files deleted here while their Request was outstanding, by wire name: their
    /// answer is still to come (and a Discover may wait for it).
    deleted_outstanding: FastMap<Box<[u8]>, Option<Box<[u8; HEADER_SIZE]>>>,
    pub counters: SlaveCounters,
}

impl SlaveFiles {
    pub fn new(cfg: SlaveConfig) -> SlaveFiles {
        SlaveFiles {
            cfg,
            ..Default::default()
        }
    }

    fn entry(&self, slot: u32) -> Option<&Entry> {
        self.entries.get(slot as usize).filter(|e| e.has(LIVE))
    }

    fn entry_mut(&mut self, slot: u32) -> Option<&mut Entry> {
        self.entries.get_mut(slot as usize).filter(|e| e.has(LIVE))
    }

    /// The index of an interval in the table (added when new; 0 when the table is
    /// full, which a store with 255 distinct intervals would need).
    fn interval_ix(&mut self, iv: u32) -> u8 {
        if self.intervals.is_empty() {
            self.intervals.push(0);
        }
        if let Some(i) = self.intervals.iter().position(|&x| x == iv) {
            return i as u8;
        }
        if self.intervals.len() > u8::MAX as usize {
            return 0;
        }
        self.intervals.push(iv);
        (self.intervals.len() - 1) as u8
    }

    /// An entry's interval (0: not known).
    fn interval_of(&self, e: &Entry) -> u32 {
        self.intervals
            .get(e.interval_ix as usize)
            .copied()
            .unwrap_or(0)
    }

    fn entry_or_new(&mut self, slot: u32) -> &mut Entry {
        let i = slot as usize;
        crate::dense::grow(&mut self.entries, i + 1, Entry::default());
        let e = &mut self.entries[i];
        if !e.has(LIVE) {
            *e = Entry {
                flags: LIVE,
                ..Entry::default()
            };
        }
        e
    }

    /// A connection ended: every entry goes back to idle (rejected ones stay rejected).
    pub fn reset(&mut self) {
        self.queue.clear();
        self.retry.clear();
        self.retry_due.clear();
        self.pending.clear();
        self.resync_from.clear();
        self.deleted_outstanding.clear();
        for e in self.entries.iter_mut().filter(|e| e.has(LIVE)) {
            e.state = SState::Idle;
            e.set(ANSWERED, false);
        }
    }

    /// This node is no longer a slave (promoted, or `replication.of` undone): free all
    /// per-file state, keeping the configuration and the counters. A later link
    /// starts as a fresh slave would (its Discovers check every file again).
    pub fn release(&mut self) {
        let cfg = self.cfg.clone();
        let counters = std::mem::take(&mut self.counters);
        *self = SlaveFiles {
            cfg,
            counters,
            ..Default::default()
        };
    }

    /// The store forgot the file in a slot (moved aside): forget its state.
    pub fn forget(&mut self, slot: u32) {
        if let Some(e) = self.entries.get_mut(slot as usize) {
            *e = Entry::default();
        }
        self.retry.remove(&slot);
        self.pending.remove(&slot);
        self.resync_from.remove(&slot);
        self.rejected.retain(|(s, _)| *s != slot);
    }

    pub fn state(&self, slot: u32) -> Option<SState> {
        self.entry(slot).map(|e| e.state)
    }

    /// (subscribed, behind, in error, rejected, queued)
    pub fn gauges(&self) -> (usize, usize, usize, usize, usize) {
        let mut g = (0, 0, 0, 0, self.queue.len());
        for e in self.entries.iter().filter(|e| e.has(LIVE)) {
            if matches!(e.state, SState::Outstanding | SState::Draining) {
                g.0 += 1;
            }
            if e.has(BEHIND) && e.state == SState::Outstanding {
                g.1 += 1;
            }
            if e.state == SState::Error {
                g.2 += 1;
            }
            if e.has(REJECTED) {
                g.3 += 1;
            }
        }
        g
    }

    /// Buckets the master announced that subscribed files have not asked for yet
    /// (from each Request's fromTime to the master's newest bucket of its Discover or
    /// Data): what is still to copy, for the status.
    pub fn buckets_behind(&self) -> u64 {
        self.entries
            .iter()
            .filter(|e| {
                e.has(LIVE)
                    && matches!(e.state, SState::Outstanding | SState::Error)
                    && self.interval_of(e) > 0
            })
            .map(|e| {
                let iv = self.interval_of(e) as i128;
                let gap = (e.master_newest as i128 - e.from as i128).max(-iv);
                (gap / iv + 1).clamp(0, u32::MAX as i128) as u64
            })
            .fold(0u64, u64::saturating_add)
    }

    /// Bytes of per-file state held (entries and the small maps' items; allocator
    /// slack not counted: the perf harness measures the process).
    pub fn state_bytes(&self) -> usize {
        self.entries.len() * std::mem::size_of::<Entry>()
            + self.queue.len() * 4
            + self.retry.len() * 20
            + self.retry_due.len() * 12
            + self.pending.len() * (HEADER_SIZE + 4)
            + self.resync_from.len() * 12
            + self.rejected.len() * (HEADER_SIZE + 4)
    }

    /// A Discover (docs/replication-protocol.md, "Slave: Discover, Requests and Data"),
    /// given what storage holds at its path and, for a local file, its slot. `redo`: the
    /// driver runs a Discover again (a creation that failed, a Discover that waited for a
    /// draining answer, a resync): it is not counted as a new one.
    pub fn discover(
        &mut self,
        h: &[u8; HEADER_SIZE],
        local: &Local,
        slot: Option<u32>,
        redo: bool,
    ) -> DiscoverAction {
        if !redo {
            self.counters.discover_received += 1;
        }
        let hd = match check_discover(h) {
            Ok(hd) => hd,
            Err(why) => {
                self.counters.discover_rejected += 1;
                return DiscoverAction::Rejected(why);
            }
        };
        let newest = master_newest(&hd);
        self.counters.master_newest = self.counters.master_newest.max(newest);
        let (lh, slot) = match (local, slot) {
            (Local::Good(lh), Some(slot)) => (lh, slot),
            (Local::Bad, _) => {
                if !redo {
                    self.counters.bad_local_files += 1;
                }
                return DiscoverAction::Create { aside: true };
            }
            _ => {
                // No local file. One deleted here while its Request was outstanding
                // waits for that answer first.
                let name = discover_name(h);
                if let Some(waiting) = self.deleted_outstanding.get_mut(name) {
                    *waiting = Some(Box::new(*h));
                    return DiscoverAction::Nothing;
                }
                return DiscoverAction::Create { aside: false };
            }
        };
        let ix = self.interval_ix(lh.cfg_interval.max(1) as u32);
        let e = self.entry_or_new(slot);
        e.master_newest = t32(newest);
        e.interval_ix = ix;
        if lh.file_create_time != hd.file_create_time {
            e.set(REJECTED, false);
            if !redo {
                self.counters.incarnation_changed += 1;
            }
            self.rejected.retain(|(s, _)| *s != slot);
            let e = self.entry_or_new(slot);
            return match e.state {
                SState::Outstanding | SState::Draining => {
                    e.state = SState::Draining;
                    self.pending.insert(slot, Box::new(*h));
                    DiscoverAction::Nothing
                }
                _ => {
                    e.state = SState::Idle;
                    DiscoverAction::Create { aside: true }
                }
            };
        }
        if !same_kind(lh, &hd) {
            e.set(REJECTED, true);
            if e.state == SState::Outstanding {
                e.state = SState::Draining;
            }
            self.counters.header_mismatch += 1;
            self.rejected.retain(|(s, _)| *s != slot);
            if self.cfg.rejected_headers > 0 {
                if self.rejected.len() >= self.cfg.rejected_headers {
                    self.rejected.pop_front();
                }
                self.rejected.push_back((slot, Box::new(*h)));
            }
            return DiscoverAction::Mismatch;
        }
        if e.has(REJECTED) {
            e.set(REJECTED, false);
            self.rejected.retain(|(s, _)| *s != slot);
        }
        DiscoverAction::Known
    }

    /// The local file of a [`DiscoverAction::Create`] could not be made. The caller
    /// tries again later with the same Discover (as a redo).
    pub fn create_failed(&mut self) {
        self.counters.create_errors += 1;
    }

    /// After [`DiscoverAction::Known`] (and a successful creation: the driver runs the
    /// Discover again against the new file, then calls this with `created`): an idle
    /// file becomes queued for subscription.
    pub fn queue(&mut self, slot: u32, created: bool) {
        if created {
            self.counters.files_created += 1;
        }
        if let Some(e) = self.entry_mut(slot) {
            if e.state == SState::Idle && !e.has(REJECTED) {
                e.state = SState::Queued;
                self.queue.push_back(slot);
            }
        }
    }

    /// A queued file whose subscription could not be made now (its header unreadable
    /// for a moment) goes to the back of the queue: left out, it would stay queued
    /// and never be subscribed.
    pub fn requeue(&mut self, slot: u32) {
        if self.state(slot) == Some(SState::Queued) {
            self.queue.push_back(slot);
        }
    }

    /// The next queued file to subscribe.
    pub fn next_queued(&mut self) -> Option<u32> {
        while let Some(slot) = self.queue.pop_front() {
            if self.state(slot) == Some(SState::Queued) {
                return Some(slot);
            }
        }
        crate::dense::trim_drained(&mut self.queue);
        None
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The first Request for a queued file (docs/replication-protocol.md,
    /// "Slave: Discover, Requests and Data", "Choosing fromTime"): `local_newest` is the
    /// slave's newest bucket time (0 when none), `interval` and `capacity` the local
    /// file's.
    pub fn subscribe(
        &mut self,
        slot: u32,
        local_newest: i64,
        interval: i64,
        capacity: i64,
    ) -> Option<Req> {
        let cfg = self.cfg.clone();
        let resync = self.resync_from.remove(&slot);
        if self.entry(slot)?.state != SState::Queued {
            return None;
        }
        let iv = interval.max(1);
        let ix = self.interval_ix(iv.clamp(1, u32::MAX as i64) as u32);
        let e = self.entry_mut(slot)?;
        let m = e.master_newest as i64;
        let mut from = if local_newest > 0 {
            let k = ((cfg.resume_overlap + iv - 1) / iv).max(1);
            (local_newest.min(m) - k * iv).max(0)
        } else {
            0
        };
        if let Some(r) = cfg.resume_from {
            from = from.min(r.max(0));
        }
        if let Some(t) = resync {
            from = from.min(t.max(0));
        }
        from = from.max(m.saturating_sub((capacity - 1).max(0).saturating_mul(iv)));
        // Never a fromTime the master must refuse (times are below 2^32, "State machines").
        let from = from.clamp(0, TIME_LIMIT - 1);
        e.state = SState::Outstanding;
        e.set(ANSWERED, false);
        e.from = from as u32;
        e.interval_ix = ix;
        self.counters.requests_sent += 1;
        Some(Req {
            slot,
            from,
            n: cfg.chunk_buckets,
        })
    }

    /// A Data for a file (not a pong): `slot` is the local file of its name, if any,
    /// with its interval and zero time.
    pub fn data(
        &mut self,
        slot: Option<u32>,
        name: &[u8],
        buckets: Vec<Bucket>,
        interval: i64,
        zero: i64,
        now: i64,
    ) -> Result<DataAction, SlaveError> {
        let n = self.cfg.chunk_buckets;
        let Some(slot) = slot.filter(|&s| self.entry(s).is_some()) else {
            // The answer to a Request of a file deleted here meanwhile.
            let waiting = self
                .deleted_outstanding
                .remove(name)
                .ok_or(SlaveError::Unexpected)?;
            if buckets.len() as i64 > n {
                return Err(SlaveError::ExceedsRequest);
            }
            self.counters.data_received += 1;
            self.counters.buckets_received += buckets.len() as u64;
            return Ok(match waiting {
                Some(h) => DataAction::Rediscover(h),
                None => DataAction::Done,
            });
        };
        let state = self.entry(slot).map(|e| e.state);
        if !matches!(state, Some(SState::Outstanding | SState::Draining)) {
            return Err(SlaveError::Unexpected);
        }
        if buckets.len() as i64 > n {
            return Err(SlaveError::ExceedsRequest);
        }
        self.counters.data_received += 1;
        self.counters.buckets_received += buckets.len() as u64;
        if state == Some(SState::Draining) {
            let pending = self.pending.remove(&slot);
            if let Some(e) = self.entry_mut(slot) {
                e.state = SState::Idle;
            }
            return Ok(match pending {
                Some(h) => DataAction::Rediscover(h),
                None => DataAction::Done,
            });
        }
        if buckets.is_empty() {
            if let Some(e) = self.entry_mut(slot) {
                e.state = SState::Idle;
            }
            self.counters.files_gone += 1;
            return Ok(DataAction::Done);
        }
        let full = buckets.len() as i64 == n;
        let iv = interval.max(1);
        let mut prev = i64::MIN;
        let mut keep = Vec::with_capacity(buckets.len());
        for b in buckets {
            let ok = b.time > 0
                && b.time < TIME_LIMIT
                && (b.time - zero).rem_euclid(iv) == 0
                && b.time > prev;
            if ok {
                prev = b.time;
                keep.push(b);
            } else {
                self.counters.buckets_rejected += 1;
            }
        }
        if let Some(last) = keep.last() {
            self.counters.master_newest = self.counters.master_newest.max(last.time);
            if !full {
                self.counters.tail_lag = (self.counters.master_newest - last.time).max(0);
            }
            self.counters.last_data_at = now;
        }
        let e = self.entry_mut(slot).expect("checked above");
        if let Some(last) = keep.last() {
            e.master_newest = e.master_newest.max(t32(last.time));
        }
        e.set(BEHIND, full);
        if keep.is_empty() {
            let from = e.from as i64;
            self.fail(slot, from, now);
            return Ok(DataAction::Done);
        }
        e.set(ANSWERED, true);
        Ok(DataAction::Apply { buckets: keep })
    }
}
