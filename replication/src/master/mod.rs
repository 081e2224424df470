//! The master's per-file replication state on one shard (docs/replication-protocol.md,
//! "State machines", "Master: discovery and answering"): which files each slave connection
//! was told about, each file's parked Request, what is ready to be answered, and the late
//! writes still owed.
//!
//! Sans I/O: the shard's driver feeds flush visits, Requests and read results in, and
//! takes Discovers, read jobs and answers out. Times are u32 seconds with [`INF`]
//! meaning "none"; arithmetic saturates.
//!
//! Memory (see "Memory"): state is dense, indexed by the store's file slot, and holds no
//! names (the driver reads them from the store). Per file: its generation and newest
//! flushed bucket time, 8 bytes. Per file and connection: one 8-byte [`Entry`] (the
//! Request's fromTime, its numBuckets and a word of state bits, the announce and
//! owed-Discover bits among them). What few files need more (a resend below the
//! Request, a read in flight, a late mark, a name too long) lives in small maps.

use std::collections::VecDeque;

use istatd_storage::format::{Bucket, Header};
use istatd_storage::hashing::{FastMap, FastSet};

use crate::pdu::Pdu;

mod answer;

/// "No time" for the u32 times of an entry.
pub const INF: u32 = u32::MAX;
/// Buckets scanned at most by one answer's read.
pub const MAX_SCAN_SLOTS: usize = 2048;
/// Owed "no such file" answers held per connection.
pub const GONE_QUEUE_MAX: usize = 4096;
/// Consecutive read failures before an entry is parked until the next flush visit.
pub const READ_ERROR_LIMIT: u8 = 5;

/// A file's handle on its shard (storage's slot and generation).
pub type FileKey = (u32, u32);

fn sat_u32(t: i64) -> u32 {
    t.clamp(0, INF as i64 - 1) as u32
}

fn add(t: u32, d: u32) -> u32 {
    t.checked_add(d).filter(|&v| v != INF).unwrap_or(INF)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MState {
    Parked,
    Ready,
    Reading,
    Answered,
}

// The bits of an entry's state word.
const STATE_MASK: u16 = 0b111;
const S_PARKED: u16 = 1;
const S_READY: u16 = 2;
const S_READING: u16 = 3;
const S_ANSWERED: u16 = 4;
/// The file was announced (Discover sent) on this connection.
const ANNOUNCED: u16 = 1 << 3;
/// A Discover is owed to the file's current incarnation.
const OWED: u16 = 1 << 4;
/// The slot has an item in the ready queue (kept across a delete and a reuse of the
/// slot, so a file never has two items: `in_queue` in docs/replication-protocol.md,
/// "State machines").
const IN_READY: u16 = 1 << 5;
/// Seen by the last stall sweep while waiting.
const SWEPT: u16 = 1 << 6;
/// Waiting in the delayed list after a read error.
const DELAYED: u16 = 1 << 7;
const ERRORS_SHIFT: u16 = 8;
/// The slot has an item in the owed FIFO (kept across a delete and a reuse of the
/// slot, as `IN_READY`: a slot owed again after a delete reuses its item, so the FIFO
/// never holds two for one slot).
const IN_OWED: u16 = 1 << 11;
const ERRORS_MASK: u16 = 0b111 << ERRORS_SHIFT;

/// One file's state on one connection: 8 bytes.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    /// fromTime F of the Request.
    f: u32,
    /// numBuckets of the Request.
    n: u16,
    bits: u16,
}

impl Entry {
    fn state(&self) -> Option<MState> {
        match self.bits & STATE_MASK {
            S_PARKED => Some(MState::Parked),
            S_READY => Some(MState::Ready),
            S_READING => Some(MState::Reading),
            S_ANSWERED => Some(MState::Answered),
            _ => None,
        }
    }

    fn set_state(&mut self, s: MState) {
        let v = match s {
            MState::Parked => S_PARKED,
            MState::Ready => S_READY,
            MState::Reading => S_READING,
            MState::Answered => S_ANSWERED,
        };
        self.bits = (self.bits & !STATE_MASK) | v;
    }

    fn has(&self, bit: u16) -> bool {
        self.bits & bit != 0
    }

    fn set(&mut self, bit: u16, on: bool) {
        if on {
            self.bits |= bit;
        } else {
            self.bits &= !bit;
        }
    }

    fn errors(&self) -> u8 {
        ((self.bits & ERRORS_MASK) >> ERRORS_SHIFT) as u8
    }

    fn set_errors(&mut self, e: u8) {
        self.bits = (self.bits & !ERRORS_MASK) | ((e.min(7) as u16) << ERRORS_SHIFT);
    }

    /// Forget the Request and its state; keep whether the file was announced or is
    /// owed a Discover, and whether the slot has a ready-queue or owed-FIFO item.
    fn clear(&mut self) {
        *self = Entry {
            bits: self.bits & (ANNOUNCED | OWED | IN_READY | IN_OWED),
            ..Entry::default()
        };
    }
}

/// What a file's read in flight needs beyond its entry.
#[derive(Debug, Clone, Copy)]
struct Reading {
    /// The lowest time written during the read (INF: none).
    read_low: u32,
    /// A Request that arrived while reading: (F, N) to continue with.
    replaced: Option<(u32, u16)>,
}

/// What the shard knows of one of its files from flush visits: 8 bytes.
#[derive(Debug, Clone, Copy, Default)]
struct FileSlot {
    /// The file's generation plus one (0: no file known in this slot).
    gen1: u32,
    flushed_last: u32,
}

#[derive(Debug, Default)]
struct Conn {
    entries: Vec<Entry>,
    /// Resend-from times below F, for the few entries that have one.
    resend: FastMap<u32, u32>,
    reading: FastMap<u32, Reading>,
    /// Slots owed a Discover (each Discover is of the slot's incarnation when sent).
    owed: VecDeque<u32>,
    ready: VecDeque<u32>,
    /// Owed "no such file" answers: the name, and whether it answers a Request the
    /// connection still counts in flight (an unknown file's) rather than one already
    /// parked (a deleted file's).
    gone: VecDeque<(Vec<u8>, bool)>,
    delayed: Vec<(i64, u32)>,
    reads: usize,
    data_since_discover: u32,
    /// Discovers sent whose file has had no Request yet: the Discovers the slave still
    /// has to work through (creations, subscriptions), bounded by
    /// [`MasterConfig::discover_window`].
    unanswered: u32,
    /// When the window was last seen full with no Request coming back (0: not full).
    full_since: i64,
}

impl Conn {
    fn entry(&self, slot: u32) -> Entry {
        self.entries.get(slot as usize).copied().unwrap_or_default()
    }

    fn entry_mut(&mut self, slot: u32) -> &mut Entry {
        let i = slot as usize;
        crate::dense::grow(&mut self.entries, i + 1, Entry::default());
        &mut self.entries[i]
    }

    fn resend_from(&self, slot: u32) -> u32 {
        self.resend.get(&slot).copied().unwrap_or(INF)
    }

    fn set_resend_from(&mut self, slot: u32, t: u32) {
        if t == INF {
            self.resend.remove(&slot);
        } else {
            self.resend.insert(slot, t);
        }
    }

    fn push_ready(&mut self, slot: u32) {
        let e = self.entry_mut(slot);
        if !e.has(IN_READY) {
            e.set(IN_READY, true);
            self.ready.push_back(slot);
        }
    }

    /// Owe the slot's file a Discover, at the back of the FIFO unless its item is
    /// still there.
    fn owe(&mut self, slot: u32) {
        let e = self.entry_mut(slot);
        e.set(OWED, true);
        if !e.has(IN_OWED) {
            e.set(IN_OWED, true);
            self.owed.push_back(slot);
        }
    }

    /// Clear a file's announce and owed bits (its file is gone or replaced). A
    /// Discover that had no Request yet leaves the window: none will come for it.
    fn unannounce(&mut self, slot: u32) {
        let e = self.entry(slot);
        if e.has(ANNOUNCED) && e.state().is_none() {
            self.unanswered = self.unanswered.saturating_sub(1);
        }
        let e = self.entry_mut(slot);
        e.set(ANNOUNCED, false);
        e.set(OWED, false);
    }

    /// A Discover was sent. It enters the window unless the file already has a
    /// Request (the slave ignores a Discover of a file it asks for).
    fn announced(&mut self, slot: u32) {
        if self.entry(slot).state().is_none() {
            self.unanswered += 1;
        }
        self.entry_mut(slot).set(ANNOUNCED, true);
    }

    /// Forget a file's Request on this connection.
    fn forget(&mut self, slot: u32) {
        if let Some(e) = self.entries.get_mut(slot as usize) {
            e.clear();
        }
        self.resend.remove(&slot);
        self.reading.remove(&slot);
    }
}

/// Settings of the master side.
#[derive(Debug, Clone)]
pub struct MasterConfig {
    pub chunk_buckets: u16,
    /// The late-mark margin (`--replica-resume-overlap`).
    pub margin: u32,
    /// `--replica-late-window`.
    pub late_window: u32,
    /// Send-queue bytes above which Discover is deferred.
    pub discover_mark: usize,
    /// Replication reads in flight per shard and connection.
    pub max_reads: usize,
    /// Discovers a connection may have unanswered (no Request for the file yet).
    ///
    /// Why: a fresh slave creates files at the disk's pace and stops reading the link
    /// while its creation queue is full. Without a bound, every Discover is sent at
    /// once, fills the socket buffers in front of the Data that the slave's Requests
    /// ask for, and the link carries little but Discovers until the last file is
    /// created (500,000 files: 8 Data a second for the first 110 s). The window keeps
    /// the Discovers in flight to what the slave works through, and the rest owed.
    pub discover_window: u32,
}

/// Seconds a full Discover window may go without a Request before it is opened
/// again: a Discover the slave answers with no Request (a rejected file) must not
/// close the window for good.
pub const DISCOVER_WINDOW_STALL_SECS: i64 = 5;

impl Default for MasterConfig {
    fn default() -> Self {
        MasterConfig {
            chunk_buckets: 256,
            margin: 600,
            late_window: 86_400,
            discover_mark: 256 * 1024,
            max_reads: 4,
            discover_window: 1024,
        }
    }
}

/// Counters of one shard's master side (docs/replication-protocol.md, "Metrics").
#[derive(Debug, Default, Clone)]
pub struct MasterCounters {
    pub discover_sent: u64,
    pub discover_deferred: u64,
    pub names_too_long: u64,
    pub requests: u64,
    pub requests_unknown_file: u64,
    pub requests_replaced: u64,
    pub gone_dropped: u64,
    pub late_seeded: u64,
    pub data_sent: u64,
    pub buckets_sent: u64,
    pub resent_buckets: u64,
    pub read_errors: u64,
    /// Discover windows opened after a stall ([`MasterFiles::reopen_stalled_windows`]).
    pub discover_window_reopened: u64,
}

/// A read the driver is to do: valid buckets of `file` from `start` to `end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadJob {
    pub conn: u64,
    pub file: FileKey,
    pub start: i64,
    pub end: i64,
    pub max: usize,
    /// The scan began at `resend_from` (below F).
    from_resend: bool,
}

/// A flush visit (docs/file-format.md, "Page cache and flushing").
#[derive(Debug, Clone, Copy)]
pub struct Visit<'a> {
    pub file: FileKey,
    /// The wire name (docs/replication-protocol.md, "File names"); None when the file
    /// cannot be replicated.
    pub name: Option<&'a str>,
    pub header: &'a Header,
    pub flushed_last: i64,
    pub dirty_low: i64,
}

/// One shard's master state for every connection.
#[derive(Debug, Default)]
pub struct MasterFiles {
    pub cfg: MasterConfig,
    files: Vec<FileSlot>,
    conns: FastMap<u64, Conn>,
    /// Late marks (lowest late bucket time, when marked) of the files that have one.
    late: FastMap<u32, (u32, u32)>,
    /// Files counted in `names_too_long` (each once).
    too_long: FastSet<FileKey>,
    /// A late mark was set or cleared since [`MasterFiles::take_marks_changed`].
    marks_changed: bool,
    pub counters: MasterCounters,
    pub suspended: bool,
}

impl MasterFiles {
    pub fn new(cfg: MasterConfig) -> MasterFiles {
        MasterFiles {
            cfg,
            ..Default::default()
        }
    }

    pub fn open(&mut self, conn: u64) {
        let span = self.files.capacity();
        let c = self.conns.entry(conn).or_default();
        crate::dense::reserve_to(&mut c.entries, span);
    }

    /// Room for `slots` file slots (the store's slot count), exactly, in the per-file
    /// array and every connection's (and, through [`MasterFiles::open`], later
    /// connections'): replication state is budgeted at 16 bytes a file and connection,
    /// and arrays grown by an eighth at a time held up to 2 bytes a file unused.
    pub fn reserve_slots(&mut self, slots: usize) {
        crate::dense::reserve_to(&mut self.files, slots);
        for c in self.conns.values_mut() {
            crate::dense::reserve_to(&mut c.entries, slots);
        }
    }

    pub fn close(&mut self, conn: u64) {
        self.conns.remove(&conn);
    }

    pub fn connections(&self) -> impl Iterator<Item = u64> + '_ {
        self.conns.keys().copied()
    }

    /// The file known in a slot, if it is this one.
    fn known(&self, (slot, gen): FileKey) -> Option<&FileSlot> {
        self.files
            .get(slot as usize)
            .filter(|f| f.gen1 != 0 && f.gen1 == gen.wrapping_add(1))
    }

    /// Make a file known in its slot (a new file there forgets the old one's state).
    fn learn(&mut self, (slot, gen): FileKey, flushed_last: u32) {
        let i = slot as usize;
        crate::dense::grow(&mut self.files, i + 1, FileSlot::default());
        let f = &mut self.files[i];
        if f.gen1 != gen.wrapping_add(1) {
            if f.gen1 != 0 {
                for c in self.conns.values_mut() {
                    c.unannounce(slot);
                    c.forget(slot);
                }
                if self.late.remove(&slot).is_some() {
                    self.marks_changed = true;
                }
            }
            *f = FileSlot {
                gen1: gen.wrapping_add(1),
                flushed_last,
            };
        }
    }

    /// Files with a live late mark.
    pub fn late_marks(&self) -> usize {
        self.late.len()
    }

    /// Every live late mark: (file, low, at), for `.replication_late`.
    pub fn marks(&self) -> Vec<(FileKey, u32, u32)> {
        let mut v: Vec<(FileKey, u32, u32)> = self
            .late
            .iter()
            .filter_map(|(&slot, &(low, at))| {
                let f = self.files.get(slot as usize)?;
                Some(((slot, f.gen1.wrapping_sub(1)), low, at))
            })
            .collect();
        v.sort();
        v
    }

    /// Late marks loaded at start-up.
    pub fn seed_marks(&mut self, marks: impl IntoIterator<Item = (FileKey, u32, u32)>) {
        for (file, low, at) in marks {
            if self.known(file).is_none() {
                self.learn(file, 0);
            }
            self.late.insert(file.0, (low, at));
        }
        self.marks_changed = true;
    }

    /// Whether a mark changed since the last call.
    pub fn take_marks_changed(&mut self) -> bool {
        std::mem::take(&mut self.marks_changed)
    }

    /// Entries per state over every connection: (parked, ready).
    pub fn parked_ready(&self) -> (usize, usize) {
        let mut p = (0, 0);
        for c in self.conns.values() {
            for e in &c.entries {
                match e.state() {
                    Some(MState::Parked) => p.0 += 1,
                    Some(MState::Ready | MState::Reading) => p.1 += 1,
                    _ => {}
                }
            }
        }
        p
    }

    /// Bytes of per-file and per-connection state held (the dense arrays' entries,
    /// the maps' and queues' items; allocator slack not counted: the perf harness
    /// measures the process). The gone queues, bounded on their own, and the late marks
    /// (8 bytes a marked file) are not counted.
    pub fn state_bytes(&self) -> usize {
        let mut n = self.files.len() * std::mem::size_of::<FileSlot>();
        for c in self.conns.values() {
            n += c.entries.len() * std::mem::size_of::<Entry>()
                + c.resend.len() * 8
                + c.reading.len() * 16
                + c.owed.len() * 4
                + c.ready.len() * 4
                + c.delayed.len() * 12;
        }
        n
    }

    /// A flush visit: late mark, then for each connection Discover, late updates and
    /// readiness (docs/replication-protocol.md, "Master: discovery and answering").
    /// `send_queue` gives a connection's send-queue bytes. Returns the Discovers to send
    /// now.
    pub fn visit(
        &mut self,
        v: Visit<'_>,
        now: i64,
        send_queue: &dyn Fn(u64) -> usize,
    ) -> Vec<(u64, Pdu)> {
        self.visit_inner(v, now, send_queue, None)
    }

    /// A file announced to one new connection only (the sweep of its files): the
    /// file's state is updated as by a visit, the other connections are not touched.
    /// The Discover to send now, if any (else it is owed).
    pub fn announce_to(
        &mut self,
        conn: u64,
        v: Visit<'_>,
        now: i64,
        send_queue: &dyn Fn(u64) -> usize,
    ) -> Option<Pdu> {
        self.visit_inner(v, now, send_queue, Some(conn))
            .into_iter()
            .next()
            .map(|(_, p)| p)
    }

    fn visit_inner(
        &mut self,
        v: Visit<'_>,
        now: i64,
        send_queue: &dyn Fn(u64) -> usize,
        only: Option<u64>,
    ) -> Vec<(u64, Pdu)> {
        let (slot, _) = v.file;
        let Some(name) = v.name else {
            if self.too_long.insert(v.file) {
                self.counters.names_too_long += 1;
                tracing::warn!(slot, "a counter file's path is too long to replicate");
            }
            return Vec::new();
        };
        let flushed_last = sat_u32(v.flushed_last);
        let dirty_low = if v.dirty_low == i64::MAX {
            INF
        } else {
            sat_u32(v.dirty_low)
        };
        let now32 = sat_u32(now);
        self.learn(v.file, flushed_last);
        self.files[slot as usize].flushed_last = flushed_last;
        let late = self.late.get(&slot).copied();
        let mut mark = late.unwrap_or((INF, 0));
        if dirty_low != INF && (dirty_low as i64) < flushed_last as i64 - self.cfg.margin as i64 {
            mark = (mark.0.min(dirty_low), now32);
        }
        if mark.0 != INF && now32.saturating_sub(mark.1) > self.cfg.late_window {
            mark = (INF, 0);
        }
        if Some(mark) != late && !(late.is_none() && mark.0 == INF) {
            self.marks_changed = true;
            if mark.0 == INF {
                self.late.remove(&slot);
            } else {
                self.late.insert(slot, mark);
            }
        }
        let mut out = Vec::new();
        for (&cid, c) in self.conns.iter_mut() {
            if only.is_some_and(|o| o != cid) {
                continue;
            }
            let e = c.entry(slot);
            if !e.has(ANNOUNCED) && !e.has(OWED) {
                if send_queue(cid) < self.cfg.discover_mark
                    && !self.suspended
                    && c.unanswered < self.cfg.discover_window
                {
                    c.announced(slot);
                    self.counters.discover_sent += 1;
                    out.push((cid, Pdu::discover(v.header, name)));
                } else {
                    c.owe(slot);
                    if !self.suspended {
                        self.counters.discover_deferred += 1;
                    }
                }
            }
            let Some(state) = e.state() else {
                continue;
            };
            // A write during a read may be missing from what is read, wherever it
            // lies: step 7 of answering folds it in against the F after the answer.
            if state == MState::Reading {
                if let Some(r) = c.reading.get_mut(&slot) {
                    r.read_low = r.read_low.min(dirty_low);
                }
            } else if dirty_low < e.f {
                let rf = c.resend_from(slot).min(dirty_low);
                c.set_resend_from(slot, rf);
            }
            if state == MState::Parked && (flushed_last >= e.f || c.resend_from(slot) < e.f) {
                c.entry_mut(slot).set_state(MState::Ready);
                c.push_ready(slot);
            }
        }
        out
    }

    /// The next owed Discover of a connection (the driver builds it from the file's
    /// header and name).
    pub fn next_owed(&mut self, conn: u64) -> Option<FileKey> {
        if self.suspended {
            return None;
        }
        let c = self.conns.get_mut(&conn)?;
        if c.unanswered >= self.cfg.discover_window {
            return None;
        }
        while let Some(slot) = c.owed.pop_front() {
            let e = c.entry_mut(slot);
            e.set(IN_OWED, false);
            if !e.has(OWED) {
                continue;
            }
            e.set(OWED, false);
            let gen1 = self.files.get(slot as usize).map_or(0, |f| f.gen1);
            if gen1 != 0 {
                c.announced(slot);
                self.counters.discover_sent += 1;
                return Some((slot, gen1 - 1));
            }
        }
        crate::dense::trim_drained(&mut c.owed);
        None
    }

    /// A Discover handed out by [`MasterFiles::next_owed`] could not be built (its
    /// header could not be read): owe it again, at the back.
    pub fn owe_again(&mut self, conn: u64, file: FileKey) {
        if self.known(file).is_none() {
            return;
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.unannounce(file.0);
            c.owe(file.0);
            self.counters.discover_sent = self.counters.discover_sent.saturating_sub(1);
        }
    }

    /// Whether a connection has owed Discovers that its window lets go now.
    pub fn has_owed(&self, conn: u64) -> bool {
        self.conns
            .get(&conn)
            .is_some_and(|c| !c.owed.is_empty() && c.unanswered < self.cfg.discover_window)
    }

    /// Discovers sent and not yet answered by a Request, over every connection.
    pub fn discovers_unanswered(&self) -> u64 {
        self.conns.values().map(|c| u64::from(c.unanswered)).sum()
    }

    /// Open the Discover window of a connection whose window has been full, with
    /// Discovers owed, for [`DISCOVER_WINDOW_STALL_SECS`] without a Request for an
    /// announced file (the slave dropped some Discovers without asking: rejected
    /// files). Called every pump tick.
    pub fn reopen_stalled_windows(&mut self, now: i64) {
        for c in self.conns.values_mut() {
            if c.unanswered < self.cfg.discover_window || c.owed.is_empty() {
                c.full_since = 0;
            } else if c.full_since == 0 {
                c.full_since = now;
            } else if now - c.full_since >= DISCOVER_WINDOW_STALL_SECS {
                self.counters.discover_window_reopened += 1;
                c.unanswered = 0;
                c.full_since = 0;
            }
        }
    }

    /// Whether an owed Discover should go before more Data (one in every 9 sends).
    pub fn discover_turn(&mut self, conn: u64) -> bool {
        let Some(c) = self.conns.get_mut(&conn) else {
            return false;
        };
        if c.data_since_discover >= 8 && !c.owed.is_empty() {
            c.data_since_discover = 0;
            true
        } else {
            false
        }
    }

    /// A file was deleted (or its slot reused): owed answers go to the gone queue
    /// (under the file's wire name, as it was), the entries and the late mark are
    /// forgotten.
    pub fn deleted(&mut self, file: FileKey, name: &[u8]) {
        let (slot, _) = file;
        if self.known(file).is_none() {
            return;
        }
        self.files[slot as usize] = FileSlot::default();
        if self.late.remove(&slot).is_some() {
            self.marks_changed = true;
        }
        for c in self.conns.values_mut() {
            let e = c.entry(slot);
            if matches!(
                e.state(),
                Some(MState::Parked | MState::Ready | MState::Reading)
            ) {
                if c.gone.len() < GONE_QUEUE_MAX {
                    c.gone.push_back((name.to_vec(), false));
                } else {
                    self.counters.gone_dropped += 1;
                }
            }
            c.unannounce(slot);
            c.forget(slot);
        }
    }

    /// Entries that waited more than one flush period (the stall sweep of
    /// docs/replication-protocol.md, "Master: discovery and answering").
    pub fn sweep(&mut self) -> usize {
        let mut stalled = 0;
        for c in self.conns.values_mut() {
            for e in c.entries.iter_mut() {
                if matches!(e.state(), Some(MState::Ready | MState::Reading)) {
                    if e.has(SWEPT) {
                        stalled += 1;
                    }
                    e.set(SWEPT, true);
                } else {
                    e.set(SWEPT, false);
                }
            }
        }
        stalled
    }

    /// For tests: the state of a file's entry on a connection, with its F and its
    /// resend-from time.
    pub fn entry_state(&self, conn: u64, slot: u32) -> Option<(MState, u32, u32)> {
        let c = self.conns.get(&conn)?;
        let e = c.entries.get(slot as usize)?;
        Some((e.state()?, e.f, c.resend_from(slot)))
    }
}

#[cfg(test)]
mod room_tests {
    use super::*;

    /// With the store's slot count reserved, the dense arrays hold no unused room once
    /// every slot is known, for a connection opened before or after.
    #[test]
    fn reserved_slots_leave_no_room_unused() {
        let mut m = MasterFiles::new(MasterConfig::default());
        m.open(1);
        m.reserve_slots(10_000);
        m.open(2);
        for slot in 0..10_000u32 {
            m.learn((slot, 0), 0);
            for c in m.conns.values_mut() {
                c.entry_mut(slot);
            }
        }
        assert_eq!((m.files.len(), m.files.capacity()), (10_000, 10_000));
        for c in m.conns.values() {
            assert_eq!((c.entries.len(), c.entries.capacity()), (10_000, 10_000));
        }
    }
}
