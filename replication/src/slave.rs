//! The slave's per-file replication state on one shard (replication.md §2.7, §2.9):
//! which files are subscribed, the Request outstanding for each, what a Discover asks
//! of storage, and which buckets of a Data may be written.
//!
//! Sans I/O: the driver looks files up in storage, feeds Discover and Data in, does the
//! creations and writes the core asks for, and sends the Requests it returns.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use istatd_storage::hashing::FastMap;

use istatd_storage::format::{Bucket, Header, FLAGS_KNOWN, HEADER_SIZE, MAGIC};

use crate::name::is_valid_name;
use crate::pdu::{discover_name, Pdu};

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

#[derive(Debug, Clone)]
struct Entry {
    state: SState,
    /// fromTime of the outstanding Request (or of the retry in state error).
    from: i64,
    /// numBuckets of the outstanding Request.
    n: i64,
    behind: bool,
    rejected: bool,
    logged: bool,
    /// The master's newest bucket time from its Discover (the subscribe clamp).
    master_newest: i64,
    /// The local file's interval (known once subscribed).
    interval: i64,
    retry_due: i64,
    retry_delay: i64,
    /// A Discover of a new incarnation waiting for the draining answer.
    pending: Option<Box<[u8; HEADER_SIZE]>>,
    /// The pending Discover was handed back: it was counted when it arrived.
    redo: bool,
    /// `replication.resync PATH,from=T`: the next Request asks from at most T.
    resync_from: Option<i64>,
}

impl Entry {
    fn new() -> Entry {
        Entry {
            state: SState::Idle,
            from: 0,
            n: 0,
            behind: false,
            rejected: false,
            logged: false,
            master_newest: 0,
            interval: 0,
            retry_due: 0,
            retry_delay: 0,
            pending: None,
            redo: false,
            resync_from: None,
        }
    }
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

/// A fatal violation by the master (§2.13).
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

/// Check a Discover header (§2.9 step 1).
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

/// Same identity and parameters (§2.9 step 2).
fn same_kind(a: &Header, b: &Header) -> bool {
    a.cfg_interval == b.cfg_interval
        && (a.flags & FLAGS_KNOWN) == (b.flags & FLAGS_KNOWN)
        && a.lambda.to_bits() == b.lambda.to_bits()
        && a.season == b.season
        && a.fixed_count == b.fixed_count
}

/// One shard's slave state for the current connection.
#[derive(Debug, Default)]
pub struct SlaveFiles {
    pub cfg: SlaveConfig,
    entries: FastMap<Box<str>, Entry>,
    queue: VecDeque<Box<str>>,
    /// The rejected table: each rejected file's Discover header, oldest first.
    rejected: VecDeque<(Box<str>, Box<[u8; HEADER_SIZE]>)>,
    /// Files in state error by retry time, soonest first (an item is stale when its
    /// file is no longer in error at that time).
    retry_due: BinaryHeap<Reverse<(i64, Box<str>)>>,
    pub counters: SlaveCounters,
}

impl SlaveFiles {
    pub fn new(cfg: SlaveConfig) -> SlaveFiles {
        SlaveFiles {
            cfg,
            ..Default::default()
        }
    }

    /// A connection ended: every entry goes back to idle.
    pub fn reset(&mut self) {
        self.queue.clear();
        self.retry_due.clear();
        self.entries.retain(|_, e| e.rejected);
        for e in self.entries.values_mut() {
            e.state = SState::Idle;
            e.pending = None;
            e.redo = false;
            e.resync_from = None;
        }
    }

    pub fn state(&self, name: &str) -> Option<SState> {
        self.entries.get(name).map(|e| e.state)
    }

    /// (subscribed, behind, in error, rejected, queued)
    pub fn gauges(&self) -> (usize, usize, usize, usize, usize) {
        let mut g = (0, 0, 0, 0, self.queue.len());
        for e in self.entries.values() {
            if matches!(e.state, SState::Outstanding | SState::Draining) {
                g.0 += 1;
            }
            if e.behind && e.state == SState::Outstanding {
                g.1 += 1;
            }
            if e.state == SState::Error {
                g.2 += 1;
            }
            if e.rejected {
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
            .values()
            .filter(|e| matches!(e.state, SState::Outstanding | SState::Error) && e.interval > 0)
            .map(|e| {
                let gap = (e.master_newest as i128 - e.from as i128).max(-(e.interval as i128));
                (gap / e.interval as i128 + 1).clamp(0, u32::MAX as i128) as u64
            })
            .fold(0u64, u64::saturating_add)
    }

    pub fn state_bytes(&self) -> usize {
        self.entries
            .keys()
            .map(|k| k.len() + std::mem::size_of::<Entry>() + 24)
            .sum::<usize>()
            + self.queue.len() * 16
    }

    /// A Discover (§2.9), given what storage holds at its path.
    pub fn discover(&mut self, h: &[u8; HEADER_SIZE], local: &Local) -> DiscoverAction {
        let redo = self
            .entries
            .get_mut(&*String::from_utf8_lossy(discover_name(h)))
            .is_some_and(|e| std::mem::take(&mut e.redo));
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
        let name: Box<str> = String::from_utf8_lossy(discover_name(h)).into();
        let newest = master_newest(&hd);
        self.counters.master_newest = self.counters.master_newest.max(newest);
        let e = self.entries.entry(name).or_insert_with(Entry::new);
        e.master_newest = newest;
        match local {
            Local::Good(lh) if lh.file_create_time != hd.file_create_time => {
                if !redo {
                    self.counters.incarnation_changed += 1;
                }
                e.rejected = false;
                match e.state {
                    SState::Outstanding | SState::Draining => {
                        e.state = SState::Draining;
                        e.pending = Some(Box::new(*h));
                        DiscoverAction::Nothing
                    }
                    _ => {
                        e.state = SState::Idle;
                        DiscoverAction::Create { aside: true }
                    }
                }
            }
            Local::Good(lh) if !same_kind(lh, &hd) => {
                self.counters.header_mismatch += 1;
                e.rejected = true;
                if e.state == SState::Outstanding {
                    e.state = SState::Draining;
                }
                let name: Box<str> = String::from_utf8_lossy(discover_name(h)).into();
                self.rejected.retain(|(n, _)| *n != name);
                if self.cfg.rejected_headers > 0 {
                    if self.rejected.len() >= self.cfg.rejected_headers {
                        self.rejected.pop_front();
                    }
                    self.rejected.push_back((name, Box::new(*h)));
                }
                DiscoverAction::Mismatch
            }
            Local::Good(_) => {
                if std::mem::take(&mut e.rejected) {
                    let name = String::from_utf8_lossy(discover_name(h));
                    self.rejected.retain(|(n, _)| **n != *name);
                }
                DiscoverAction::Known
            }
            Local::Bad => {
                if !redo {
                    self.counters.bad_local_files += 1;
                }
                if matches!(e.state, SState::Outstanding | SState::Draining) {
                    e.state = SState::Draining;
                    e.pending = Some(Box::new(*h));
                    return DiscoverAction::Nothing;
                }
                DiscoverAction::Create { aside: true }
            }
            Local::Absent => {
                if matches!(e.state, SState::Outstanding | SState::Draining) {
                    e.state = SState::Draining;
                    e.pending = Some(Box::new(*h));
                    return DiscoverAction::Nothing;
                }
                DiscoverAction::Create { aside: false }
            }
        }
    }

    /// The local file of a [`DiscoverAction::Create`] could not be made. The caller
    /// tries again later with the same Discover, which then does not count as a new
    /// one.
    pub fn create_failed(&mut self, name: &str) {
        self.counters.create_errors += 1;
        if let Some(e) = self.entries.get_mut(name) {
            e.redo = true;
        }
    }

    /// After [`DiscoverAction::Known`] or a successful creation: an idle file becomes
    /// queued for subscription.
    pub fn queue(&mut self, name: &str, created: bool) {
        if created {
            self.counters.files_created += 1;
        }
        if let Some(e) = self.entries.get_mut(name) {
            if e.state == SState::Idle && !e.rejected {
                e.state = SState::Queued;
                self.queue.push_back(name.into());
            }
        }
    }

    /// The next queued file to subscribe.
    pub fn next_queued(&mut self) -> Option<Box<str>> {
        while let Some(n) = self.queue.pop_front() {
            if self
                .entries
                .get(&n)
                .is_some_and(|e| e.state == SState::Queued)
            {
                return Some(n);
            }
        }
        None
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The first Request for a queued file (§2.9 "Choosing fromTime"): `local_newest`
    /// is the slave's newest bucket time (0 when none), `interval` and `capacity` the
    /// local file's.
    pub fn subscribe(
        &mut self,
        name: &str,
        local_newest: i64,
        interval: i64,
        capacity: i64,
    ) -> Option<Pdu> {
        let cfg = self.cfg.clone();
        let e = self.entries.get_mut(name)?;
        if e.state != SState::Queued {
            return None;
        }
        let iv = interval.max(1);
        let m = e.master_newest;
        let mut from = if local_newest > 0 {
            let k = ((cfg.resume_overlap + iv - 1) / iv).max(1);
            (local_newest.min(m) - k * iv).max(0)
        } else {
            0
        };
        if let Some(r) = cfg.resume_from {
            from = from.min(r.max(0));
        }
        if let Some(t) = e.resync_from.take() {
            from = from.min(t.max(0));
        }
        from = from.max(m.saturating_sub((capacity - 1).max(0).saturating_mul(iv)));
        // Never a fromTime the master must refuse (times are below 2^32, §2.7).
        let from = from.clamp(0, TIME_LIMIT - 1);
        e.state = SState::Outstanding;
        e.from = from;
        e.n = cfg.chunk_buckets;
        e.interval = iv;
        self.counters.requests_sent += 1;
        Some(Pdu::Request {
            from,
            n: e.n,
            name: name.as_bytes().to_vec(),
        })
    }

    /// A Data for a file (not a pong), with the local file's interval and zero time.
    pub fn data(
        &mut self,
        name: &str,
        buckets: Vec<Bucket>,
        interval: i64,
        zero: i64,
        now: i64,
    ) -> Result<DataAction, SlaveError> {
        let e = self.entries.get_mut(name).ok_or(SlaveError::Unexpected)?;
        if !matches!(e.state, SState::Outstanding | SState::Draining) {
            return Err(SlaveError::Unexpected);
        }
        if buckets.len() as i64 > e.n {
            return Err(SlaveError::ExceedsRequest);
        }
        self.counters.data_received += 1;
        self.counters.buckets_received += buckets.len() as u64;
        if e.state == SState::Draining {
            e.state = SState::Idle;
            return Ok(match e.pending.take() {
                Some(h) => {
                    e.redo = true;
                    DataAction::Rediscover(h)
                }
                None => DataAction::Done,
            });
        }
        if buckets.is_empty() {
            e.state = SState::Idle;
            self.counters.files_gone += 1;
            return Ok(DataAction::Done);
        }
        let full = buckets.len() as i64 == e.n;
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
            e.master_newest = e.master_newest.max(last.time);
            self.counters.master_newest = self.counters.master_newest.max(last.time);
            if !full {
                self.counters.tail_lag = (self.counters.master_newest - last.time).max(0);
            }
            self.counters.last_data_at = now;
        }
        e.behind = full;
        if keep.is_empty() {
            let due = Self::fail(e, e.from, now);
            self.retry_due.push(Reverse((due, name.into())));
            return Ok(DataAction::Done);
        }
        Ok(DataAction::Apply { buckets: keep })
    }

    fn fail(e: &mut Entry, from: i64, now: i64) -> i64 {
        e.state = SState::Error;
        e.from = from.clamp(0, TIME_LIMIT - 1);
        e.retry_delay = if e.retry_delay == 0 {
            RETRY_FIRST
        } else {
            (e.retry_delay * 2).min(RETRY_MAX)
        };
        e.retry_due = now + e.retry_delay;
        e.retry_due
    }

    /// The outcome of writing an [`DataAction::Apply`]: the follow-up Request, or
    /// none when the write failed (the file waits for its retry).
    pub fn applied(
        &mut self,
        name: &str,
        buckets: &[Bucket],
        result: Result<(u32, u32), ()>,
        interval: i64,
        now: i64,
    ) -> Option<Pdu> {
        let e = self.entries.get_mut(name)?;
        if e.state == SState::Draining {
            // Deleted locally or found to be another incarnation during the write:
            // its answer is in, so it is idle now (see take_pending).
            e.state = SState::Idle;
            return None;
        }
        if e.state != SState::Outstanding {
            return None;
        }
        match result {
            Err(()) => {
                self.counters.apply_errors += 1;
                let first = buckets.first().map_or(e.from, |b| b.time);
                let due = Self::fail(e, e.from.min(first), now);
                self.retry_due.push(Reverse((due, name.into())));
                None
            }
            Ok((written, too_old)) => {
                self.counters.buckets_written += written as u64;
                self.counters.buckets_too_old += too_old as u64;
                e.retry_delay = 0;
                e.logged = false;
                let last = buckets.last().map_or(e.from, |b| b.time);
                e.from = e.from.max(last.saturating_add(interval.max(1)));
                if let Some(t) = e.resync_from.take() {
                    e.from = e.from.min(t);
                }
                e.from = e.from.clamp(0, TIME_LIMIT - 1);
                self.counters.requests_sent += 1;
                Some(Pdu::Request {
                    from: e.from,
                    n: e.n,
                    name: name.as_bytes().to_vec(),
                })
            }
        }
    }

    /// More than 10% of the subscribed files, and at least 100, are in state error:
    /// the store refuses most writes, so the link must go down (`Apply failing`, §2.9).
    pub fn apply_failing(&self) -> bool {
        let (mut subscribed, mut errors) = (0usize, 0usize);
        for e in self.entries.values() {
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
    pub fn due_retries(&mut self, now: i64) -> Vec<Pdu> {
        let mut out = Vec::new();
        while let Some(Reverse((due, _))) = self.retry_due.peek() {
            if *due > now {
                break;
            }
            let Some(Reverse((due, name))) = self.retry_due.pop() else {
                break;
            };
            let Some(e) = self.entries.get_mut(&name) else {
                continue;
            };
            if e.state != SState::Error || e.retry_due != due {
                continue;
            }
            e.state = SState::Outstanding;
            self.counters.retries += 1;
            self.counters.requests_sent += 1;
            out.push(Pdu::Request {
                from: e.from,
                n: e.n.max(1),
                name: name.as_bytes().to_vec(),
            });
        }
        out
    }

    /// `replication.resync PATH[,from=TIME]` (§2.14): an idle or error file is queued
    /// again (from min(resume point, TIME)); an outstanding one keeps its Request,
    /// whose follow-up asks from TIME; a rejected one is checked again against the
    /// header in the rejected table.
    pub fn resync(&mut self, name: &str, from: Option<i64>) -> Result<Resync, &'static str> {
        let e = self.entries.get_mut(name).ok_or("unknown file")?;
        if e.rejected {
            let h = self
                .rejected
                .iter()
                .find(|(n, _)| **n == *name)
                .map(|(_, h)| h.clone())
                .ok_or("no header; use replication.resync all")?;
            e.resync_from = from;
            e.redo = true;
            return Ok(Resync::Recheck(h));
        }
        e.resync_from = from;
        match e.state {
            SState::Idle | SState::Error => {
                e.state = SState::Queued;
                e.retry_delay = 0;
                self.counters.retries += 1;
                self.queue.push_back(name.into());
                Ok(Resync::Queued)
            }
            // Its next Request uses min(follow-up, TIME); a queued file subscribes
            // with it.
            _ => Ok(Resync::Flagged),
        }
    }

    /// Whether a file is rejected (its local copy differs from the master's header).
    pub fn is_rejected(&self, name: &str) -> bool {
        self.entries.get(name).is_some_and(|e| e.rejected)
    }

    /// A Discover that waited for a file's answer, once [`SlaveFiles::applied`] made it
    /// idle: the driver processes it again.
    pub fn take_pending(&mut self, name: &str) -> Option<Box<[u8; HEADER_SIZE]>> {
        let e = self.entries.get_mut(name)?;
        if e.state != SState::Idle {
            return None;
        }
        let h = e.pending.take()?;
        e.redo = true;
        Some(h)
    }

    /// A local delete of a file: an outstanding one drains, any other goes idle.
    pub fn deleted_locally(&mut self, name: &str) {
        if let Some(e) = self.entries.get_mut(name) {
            e.state = match e.state {
                SState::Outstanding | SState::Draining => SState::Draining,
                _ => SState::Idle,
            };
            e.pending = None;
        }
    }
}
