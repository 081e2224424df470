//! The master's per-file replication state on one shard (replication.md §2.7, §2.8):
//! which files each slave connection was told about, each file's parked Request, what
//! is ready to be answered, and the late writes still owed.
//!
//! Sans I/O: the shard's driver feeds flush visits, Requests and read results in, and
//! takes Discover/Data PDUs and read jobs out. Times are u32 seconds with
//! [`INF`] meaning "none"; arithmetic saturates.

use std::collections::VecDeque;

use istatd_storage::hashing::{FastMap, FastSet};

use istatd_storage::format::{Bucket, Header};

use crate::pdu::Pdu;

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

#[derive(Debug, Clone)]
struct Entry {
    gen: u32,
    state: MState,
    f: u32,
    n: u16,
    resend_from: u32,
    read_low: u32,
    errors: u8,
    swept: bool,
    /// A Request that arrived while reading: (F, N) to continue with.
    replaced: Option<(u32, u16)>,
}

/// What the shard knows of one of its files from flush visits.
#[derive(Debug, Clone)]
struct FileInfo {
    gen: u32,
    name: Box<str>,
    interval: u32,
    flushed_last: u32,
    late_low: u32,
    late_at: u32,
}

#[derive(Debug, Default)]
struct Conn {
    entries: FastMap<u32, Entry>,
    announced: FastSet<u32>,
    owed: VecDeque<FileKey>,
    owed_set: FastSet<u32>,
    ready: VecDeque<u32>,
    /// Slots with an item in `ready` (kept across a delete and a reuse of the slot,
    /// so a file never has two items: replication.md §2.8 `in_queue`).
    in_ready: FastSet<u32>,
    /// Owed "no such file" answers: the name, and whether it answers a Request the
    /// connection still counts in flight (an unknown file's) rather than one already
    /// parked (a deleted file's).
    gone: VecDeque<(Vec<u8>, bool)>,
    delayed: Vec<(i64, u32)>,
    reads: usize,
    data_since_discover: u32,
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
}

impl Default for MasterConfig {
    fn default() -> Self {
        MasterConfig {
            chunk_buckets: 256,
            margin: 600,
            late_window: 86_400,
            discover_mark: 256 * 1024,
            max_reads: 4,
        }
    }
}

/// Counters of one shard's master side (replication.md §2.19).
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
}

/// A read the driver is to do: valid buckets of `file` from `start` to `end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadJob {
    pub conn: u64,
    pub file: FileKey,
    pub name: Box<str>,
    pub start: i64,
    pub end: i64,
    pub max: usize,
    /// The scan began at `resend_from` (below F).
    from_resend: bool,
}

/// A flush visit (storage.md §8).
#[derive(Debug, Clone, Copy)]
pub struct Visit<'a> {
    pub file: FileKey,
    /// The wire name (§2.5); None when the file cannot be replicated.
    pub name: Option<&'a str>,
    pub header: &'a Header,
    pub flushed_last: i64,
    pub dirty_low: i64,
}

/// One shard's master state for every connection.
#[derive(Debug, Default)]
pub struct MasterFiles {
    pub cfg: MasterConfig,
    files: FastMap<u32, FileInfo>,
    conns: FastMap<u64, Conn>,
    /// Files counted in `names_too_long` (each once).
    too_long: FastSet<FileKey>,
    /// Late marks loaded at start-up, by name, until the file is first seen.
    seeded: FastMap<Box<str>, (u32, u32)>,
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
        self.conns.entry(conn).or_default();
    }

    pub fn close(&mut self, conn: u64) {
        self.conns.remove(&conn);
    }

    pub fn connections(&self) -> impl Iterator<Item = u64> + '_ {
        self.conns.keys().copied()
    }

    /// Files with a live late mark.
    pub fn late_marks(&self) -> usize {
        self.files.values().filter(|f| f.late_low != INF).count() + self.seeded.len()
    }

    /// Every live late mark: (name, low, at), for `.replication_late`.
    pub fn marks(&self) -> Vec<(Box<str>, u32, u32)> {
        let mut v: Vec<(Box<str>, u32, u32)> = self
            .files
            .values()
            .filter(|f| f.late_low != INF)
            .map(|f| (f.name.clone(), f.late_low, f.late_at))
            .chain(self.seeded.iter().map(|(n, &(l, a))| (n.clone(), l, a)))
            .collect();
        v.sort();
        v
    }

    /// Late marks loaded at start-up (by name); they apply when the file is first
    /// visited or requested.
    pub fn seed_marks(&mut self, marks: impl IntoIterator<Item = (Box<str>, u32, u32)>) {
        for (n, l, a) in marks {
            self.seeded.insert(n, (l, a));
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
            for e in c.entries.values() {
                match e.state {
                    MState::Parked => p.0 += 1,
                    MState::Ready | MState::Reading => p.1 += 1,
                    MState::Answered => {}
                }
            }
        }
        p
    }

    /// Bytes held for per-file and per-connection state (an estimate for metrics).
    pub fn state_bytes(&self) -> usize {
        let per_file = std::mem::size_of::<FileInfo>() + 24;
        let mut n = self.files.len() * per_file;
        for c in self.conns.values() {
            n += c.entries.len() * (std::mem::size_of::<Entry>() + 8)
                + c.announced.len() * 8
                + c.owed.len() * 12
                + c.ready.len() * 4;
        }
        n
    }

    /// A flush visit: late mark, then for each connection Discover, late updates and
    /// readiness (§2.8). `send_queue` gives a connection's send-queue bytes. Returns the
    /// Discovers to send now.
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
        let (slot, gen) = v.file;
        let Some(name) = v.name else {
            if self.too_long.insert(v.file) {
                self.counters.names_too_long += 1;
                tracing::warn!(slot, "a counter file's path is too long to replicate");
            }
            return Vec::new();
        };
        let interval = v.header.cfg_interval.max(1) as u32;
        let flushed_last = sat_u32(v.flushed_last);
        let dirty_low = if v.dirty_low == i64::MAX {
            INF
        } else {
            sat_u32(v.dirty_low)
        };
        let now32 = sat_u32(now);
        if self.files.get(&slot).is_none_or(|i| i.gen != gen) {
            let (late_low, late_at) = self.seeded.remove(name).unwrap_or((INF, 0));
            self.files.insert(
                slot,
                FileInfo {
                    gen,
                    name: name.into(),
                    interval,
                    flushed_last,
                    late_low,
                    late_at,
                },
            );
        }
        let info = self.files.get_mut(&slot).expect("just made sure");
        info.interval = interval;
        info.flushed_last = flushed_last;
        if dirty_low != INF && (dirty_low as i64) < flushed_last as i64 - self.cfg.margin as i64 {
            info.late_low = info.late_low.min(dirty_low);
            info.late_at = now32;
            self.marks_changed = true;
        }
        if info.late_low != INF && now32.saturating_sub(info.late_at) > self.cfg.late_window {
            info.late_low = INF;
            self.marks_changed = true;
        }
        let mut out = Vec::new();
        for (&cid, c) in self.conns.iter_mut() {
            if only.is_some_and(|o| o != cid) {
                continue;
            }
            if !c.announced.contains(&slot) && !c.owed_set.contains(&slot) {
                if send_queue(cid) < self.cfg.discover_mark && !self.suspended {
                    c.announced.insert(slot);
                    self.counters.discover_sent += 1;
                    out.push((cid, Pdu::discover(v.header, name)));
                } else {
                    c.owed_set.insert(slot);
                    c.owed.push_back(v.file);
                    if !self.suspended {
                        self.counters.discover_deferred += 1;
                    }
                }
            }
            let Some(e) = c.entries.get_mut(&slot) else {
                continue;
            };
            if e.gen != gen {
                c.entries.remove(&slot);
                continue;
            }
            // A write during a read may be missing from what is read, wherever it
            // lies: step 7 of answering folds it in against the F after the answer.
            if e.state == MState::Reading {
                e.read_low = e.read_low.min(dirty_low);
            } else if dirty_low < e.f {
                e.resend_from = e.resend_from.min(dirty_low);
            }
            if e.state == MState::Parked && (flushed_last >= e.f || e.resend_from < e.f) {
                e.state = MState::Ready;
                if c.in_ready.insert(slot) {
                    c.ready.push_back(slot);
                }
            }
        }
        out
    }

    /// The next owed Discover of a connection (build it from the file's header).
    pub fn next_owed(&mut self, conn: u64) -> Option<(FileKey, Box<str>)> {
        if self.suspended {
            return None;
        }
        let c = self.conns.get_mut(&conn)?;
        while let Some((slot, gen)) = c.owed.pop_front() {
            c.owed_set.remove(&slot);
            match self.files.get(&slot) {
                Some(info) if info.gen == gen => {
                    c.announced.insert(slot);
                    self.counters.discover_sent += 1;
                    return Some(((slot, gen), info.name.clone()));
                }
                _ => continue,
            }
        }
        None
    }

    /// A Discover handed out by [`MasterFiles::next_owed`] could not be built (its
    /// header could not be read): owe it again, at the back.
    pub fn owe_again(&mut self, conn: u64, file: FileKey) {
        let (slot, gen) = file;
        if self.files.get(&slot).is_none_or(|i| i.gen != gen) {
            return;
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.announced.remove(&slot);
            if c.owed_set.insert(slot) {
                c.owed.push_back(file);
            }
            self.counters.discover_sent = self.counters.discover_sent.saturating_sub(1);
        }
    }

    /// Whether a connection has owed Discovers.
    pub fn has_owed(&self, conn: u64) -> bool {
        self.conns.get(&conn).is_some_and(|c| !c.owed.is_empty())
    }

    /// A file Request (name already checked). `file` is the file if it exists, with its
    /// interval and newest bucket time if no flush visit has told of it yet. Returns
    /// true when the answer went to the gone queue ("no such file").
    pub fn request(
        &mut self,
        conn: u64,
        name: &[u8],
        from: i64,
        n: i64,
        file: Option<(FileKey, u32, i64)>,
    ) -> bool {
        self.counters.requests += 1;
        let Some(c) = self.conns.get_mut(&conn) else {
            return false;
        };
        let Some(((slot, gen), interval, newest)) = file else {
            self.counters.requests_unknown_file += 1;
            c.gone.push_back((name.to_vec(), true));
            return true;
        };
        let info = match self.files.get_mut(&slot) {
            Some(i) if i.gen == gen => i,
            _ => {
                let name: Box<str> = String::from_utf8_lossy(name).into();
                let (late_low, late_at) = self.seeded.remove(&name).unwrap_or((INF, 0));
                self.files.insert(
                    slot,
                    FileInfo {
                        gen,
                        name,
                        interval: interval.max(1),
                        flushed_last: sat_u32(newest),
                        late_low,
                        late_at,
                    },
                );
                self.files.get_mut(&slot).expect("just inserted")
            }
        };
        let iv = info.interval.max(1);
        let f = if from <= 0 {
            0
        } else {
            sat_u32(from) / iv * iv
        };
        let n = n.clamp(1, self.cfg.chunk_buckets.max(1) as i64) as u16;
        let flushed_last = info.flushed_last;
        let late_low = info.late_low;
        let created = c.entries.get(&slot).is_none_or(|e| e.gen != gen);
        let e = match c.entries.get_mut(&slot) {
            Some(e) if e.gen == gen => e,
            _ => {
                let resend_from = if late_low < f {
                    self.counters.late_seeded += 1;
                    late_low
                } else {
                    INF
                };
                c.entries.insert(
                    slot,
                    Entry {
                        gen,
                        state: MState::Parked,
                        f,
                        n,
                        resend_from,
                        read_low: INF,
                        errors: 0,
                        swept: false,
                        replaced: None,
                    },
                );
                c.entries.get_mut(&slot).expect("just inserted")
            }
        };
        match e.state {
            MState::Reading => {
                self.counters.requests_replaced += 1;
                e.replaced = Some((f, n));
                return false;
            }
            MState::Parked | MState::Ready if !created => {
                self.counters.requests_replaced += 1;
            }
            _ => {}
        }
        e.f = f;
        e.n = n;
        Self::readiness(c, slot, flushed_last);
        false
    }

    fn readiness(c: &mut Conn, slot: u32, flushed_last: u32) {
        let Some(e) = c.entries.get_mut(&slot) else {
            return;
        };
        if flushed_last >= e.f || e.resend_from < e.f {
            e.state = MState::Ready;
            if c.in_ready.insert(slot) {
                c.ready.push_back(slot);
            }
        } else {
            e.state = MState::Parked;
        }
    }

    /// The next owed "no such file" answer of a connection, and whether it answers a
    /// Request still in flight (see [`MasterFiles::request`]; a deleted file's answer
    /// does not: its Request was parked when it came).
    pub fn next_gone(&mut self, conn: u64) -> Option<(Pdu, bool)> {
        let (name, in_flight) = self.conns.get_mut(&conn)?.gone.pop_front()?;
        Some((
            Pdu::Data {
                buckets: Vec::new(),
                name,
            },
            in_flight,
        ))
    }

    pub fn gone_len(&self, conn: u64) -> usize {
        self.conns.get(&conn).map_or(0, |c| c.gone.len())
    }

    /// Move delayed (read-error) entries whose time came back to ready.
    pub fn wake_delayed(&mut self, now: i64) {
        for c in self.conns.values_mut() {
            let due: Vec<u32> = c
                .delayed
                .iter()
                .filter(|(t, _)| *t <= now)
                .map(|(_, s)| *s)
                .collect();
            c.delayed.retain(|(t, _)| *t > now);
            for slot in due {
                if let Some(e) = c.entries.get_mut(&slot) {
                    if e.state == MState::Ready && c.in_ready.insert(slot) {
                        c.ready.push_back(slot);
                    }
                }
            }
        }
    }

    /// The next read to do for a connection, within the read limit.
    pub fn next_read(&mut self, conn: u64) -> Option<ReadJob> {
        if self.suspended {
            return None;
        }
        let c = self.conns.get_mut(&conn)?;
        if c.reads >= self.cfg.max_reads {
            return None;
        }
        while let Some(slot) = c.ready.pop_front() {
            c.in_ready.remove(&slot);
            let Some(e) = c.entries.get_mut(&slot) else {
                continue;
            };
            if e.state != MState::Ready {
                continue;
            }
            let Some(info) = self.files.get(&slot).filter(|i| i.gen == e.gen) else {
                continue;
            };
            let from_resend = e.resend_from < e.f;
            let start = e.f.min(e.resend_from);
            e.state = MState::Reading;
            e.read_low = INF;
            c.reads += 1;
            return Some(ReadJob {
                conn,
                file: (slot, e.gen),
                name: info.name.clone(),
                start: start as i64,
                end: info.flushed_last as i64,
                max: e.n as usize,
                from_resend,
            });
        }
        None
    }

    /// Whether a connection has ready entries.
    pub fn has_ready(&self, conn: u64) -> bool {
        self.conns.get(&conn).is_some_and(|c| !c.ready.is_empty())
    }

    /// A read finished: `Ok((buckets, time just past the last slot scanned))`. Returns
    /// the Data to send, if any.
    pub fn read_done(
        &mut self,
        job: &ReadJob,
        result: Result<(Vec<Bucket>, i64), ()>,
        now: i64,
    ) -> Option<Pdu> {
        let c = self.conns.get_mut(&job.conn)?;
        c.reads = c.reads.saturating_sub(1);
        let (slot, gen) = job.file;
        let info = self.files.get(&slot).filter(|i| i.gen == gen)?;
        let iv = info.interval.max(1);
        let flushed_last = info.flushed_last;
        let e = c.entries.get_mut(&slot).filter(|e| e.gen == gen)?;
        if e.state != MState::Reading {
            return None;
        }
        let mut out = None;
        // Parked until the next flush visit, whatever readiness says.
        let mut hold = false;
        if let Some((f, n)) = e.replaced.take() {
            e.f = f;
            e.n = n;
            e.state = MState::Parked;
        } else {
            match result {
                Err(()) => {
                    self.counters.read_errors += 1;
                    e.errors += 1;
                    if e.errors >= READ_ERROR_LIMIT {
                        tracing::error!(file = %job.name, "replication reads keep failing; retried at the next flush");
                        e.errors = 0;
                        e.state = MState::Parked;
                        hold = true;
                    } else {
                        e.state = MState::Ready;
                        c.delayed.push((now + (1i64 << e.errors), slot));
                    }
                }
                Ok((buckets, next)) => {
                    e.errors = 0;
                    let next32 = sat_u32(next);
                    let reached_end = next > job.end || next <= job.start;
                    if buckets.is_empty() && !reached_end {
                        if job.from_resend {
                            e.resend_from = if next32 >= e.f { INF } else { next32 };
                        } else {
                            e.f = e.f.max(next32);
                        }
                        e.state = MState::Ready;
                    } else if buckets.is_empty() {
                        e.f = e.f.max(add(sat_u32(job.end), iv));
                        e.resend_from = INF;
                        e.state = MState::Parked;
                    } else {
                        let last = buckets.last().map_or(0, |b| b.time);
                        let past = add(sat_u32(last), iv);
                        let resent = buckets.iter().filter(|b| b.time < e.f as i64).count();
                        if e.resend_from < e.f && past < e.f {
                            e.resend_from = past;
                        } else {
                            e.resend_from = INF;
                        }
                        e.f = e.f.max(past);
                        e.state = MState::Answered;
                        self.counters.data_sent += 1;
                        self.counters.buckets_sent += buckets.len() as u64;
                        self.counters.resent_buckets += resent as u64;
                        c.data_since_discover += 1;
                        out = Some(Pdu::Data {
                            buckets,
                            name: job.name.as_bytes().to_vec(),
                        });
                    }
                }
            }
        }
        if e.read_low < e.f {
            e.resend_from = e.resend_from.min(e.read_low);
        }
        e.read_low = INF;
        match e.state {
            MState::Parked if hold => {}
            MState::Parked => Self::readiness(c, slot, flushed_last),
            MState::Ready
                if c.delayed.iter().all(|(_, s)| *s != slot) && c.in_ready.insert(slot) =>
            {
                c.ready.push_back(slot);
            }
            _ => {}
        }
        out
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

    /// A file was deleted (or its slot reused): owed answers go to the gone queue, the
    /// entries and the late mark are forgotten.
    pub fn deleted(&mut self, file: FileKey) {
        let (slot, _gen) = file;
        let name = self.files.remove(&slot).map(|i| {
            if i.late_low != INF {
                self.marks_changed = true;
            }
            i.name
        });
        for c in self.conns.values_mut() {
            c.announced.remove(&slot);
            if c.owed_set.remove(&slot) {
                c.owed.retain(|(s, _)| *s != slot);
            }
            if let Some(e) = c.entries.remove(&slot) {
                if matches!(e.state, MState::Parked | MState::Ready | MState::Reading) {
                    if let Some(n) = &name {
                        if c.gone.len() < GONE_QUEUE_MAX {
                            c.gone.push_back((n.as_bytes().to_vec(), false));
                        } else {
                            self.counters.gone_dropped += 1;
                        }
                    }
                }
            }
        }
    }

    /// Entries that waited more than one flush period (the stall sweep of §2.8).
    pub fn sweep(&mut self) -> usize {
        let mut stalled = 0;
        for c in self.conns.values_mut() {
            for e in c.entries.values_mut() {
                if matches!(e.state, MState::Ready | MState::Reading) {
                    if e.swept {
                        stalled += 1;
                    }
                    e.swept = true;
                } else {
                    e.swept = false;
                }
            }
        }
        stalled
    }

    /// For tests: the state of a file's entry on a connection.
    pub fn entry_state(&self, conn: u64, slot: u32) -> Option<(MState, u32, u32)> {
        let e = self.conns.get(&conn)?.entries.get(&slot)?;
        Some((e.state, e.f, e.resend_from))
    }
}
