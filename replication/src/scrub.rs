//! The anti-entropy scrub (protocol version 3, opt-in): a paced background pass on the
//! slave that compares digests of bucket ranges older than the resume overlap with the
//! master's and re-requests only the ranges that differ.
//!
//! Why: version 2 resumes each file from its newest bucket minus an overlap, and the
//! master's late marks cover older late writes only for `--replica-late-window`. The
//! residual risks of docs/replication-protocol.md (a long partition, an unclean master
//! restart, a failover) can leave a slave bucket different from the master's with no error;
//! the scrub finds and repairs those.
//!
//! ```text
//! slave                                   master
//!   DigestRequest{from, ranges, name}  ->   reads [from, from + ranges*64 slots)
//!                                      <-   Digest{from, [mask, hash]*ranges, name}
//!   compares with its own buckets
//!   RepairRequest{from, 64, name}      ->   for each range that differs
//!                                      <-   RepairData{valid buckets, name}
//!   writes them (overwrite)
//! ```
//!
//! A range is [`RANGE_BUCKETS`] slots of the file's interval, aligned on its
//! `file_create_time`. Its digest is the set of slots where the sender holds a valid
//! bucket (the mask) and a hash of those buckets' 32 bytes. The slave hashes its own
//! buckets at exactly the master's slots, so a range matches when the replica-equality
//! rule ("Replica equality and residual risks") holds for it: slave buckets where the
//! master has none (gaps never erase) do not count as differences.
//!
//! [`Scrubber`] is one shard's slave-side state: the files of the current pass, a cursor
//! in the current file, one Digest outstanding, and the repairs to send and awaited. It
//! is sans I/O like the rest of the crate: the daemon reads local buckets and writes
//! repaired ones.

use std::collections::VecDeque;

use istatd_storage::format::Bucket;

use crate::link::BadRequest;
use crate::name::is_valid_name;
use crate::pdu::{
    Pdu, RangeDigest, DIGEST_REQUEST, MAX_BUCKETS, MAX_RANGES, RANGE_BUCKETS, REPAIR_REQUEST,
};

/// Times on the wire stay below 2^32 (as for Request).
const TIME_LIMIT: i64 = 1 << 32;

/// One bucket's hash: FNV-1a over its 32 bytes, then a final mix so that the sum of
/// several hashes does not cancel out low bits.
fn bucket_hash(b: &Bucket) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in b.to_bytes() {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// Slot index of a bucket time in the ranges from `from`, or None when the time is not
/// on the grid or outside `ranges` ranges.
fn slot_of(t: i64, from: i64, interval: i64, ranges: usize) -> Option<(usize, u32)> {
    let iv = interval.max(1);
    if t < from || (t - from) % iv != 0 {
        return None;
    }
    let idx = (t - from) / iv;
    let r = idx / RANGE_BUCKETS;
    if r >= ranges as i64 {
        return None;
    }
    Some((r as usize, (idx % RANGE_BUCKETS) as u32))
}

/// The digests of `ranges` ranges from `from` over a file's valid buckets (the master's
/// answer). Buckets off the grid or outside the ranges are ignored; order does not
/// matter (the hash of a range is the sum of its buckets' hashes, and each bucket's
/// bytes carry its time).
pub fn digests(from: i64, interval: i64, ranges: usize, buckets: &[Bucket]) -> Vec<RangeDigest> {
    let mut out = vec![RangeDigest::default(); ranges];
    for b in buckets {
        if let Some((r, bit)) = slot_of(b.time, from, interval, ranges) {
            if out[r].mask & (1 << bit) == 0 {
                out[r].mask |= 1 << bit;
                out[r].hash = out[r].hash.wrapping_add(bucket_hash(b));
            }
        }
    }
    out
}

/// The indexes of the master's ranges that the local buckets do not match: a range
/// differs when a slot the master holds is missing locally or holds other bytes. Local
/// buckets at slots the master does not hold are ignored (replica equality).
pub fn differing(from: i64, interval: i64, remote: &[RangeDigest], local: &[Bucket]) -> Vec<usize> {
    let mut mine = vec![RangeDigest::default(); remote.len()];
    for b in local {
        if let Some((r, bit)) = slot_of(b.time, from, interval, remote.len()) {
            let m = 1u64 << bit;
            if remote[r].mask & m != 0 && mine[r].mask & m == 0 {
                mine[r].mask |= m;
                mine[r].hash = mine[r].hash.wrapping_add(bucket_hash(b));
            }
        }
    }
    (0..remote.len())
        .filter(|&i| mine[i] != remote[i])
        .collect()
}

/// The master's check of a DigestRequest.
pub fn check_digest_request(from: i64, ranges: u32, name: &[u8]) -> Result<(), BadRequest> {
    if !(0..TIME_LIMIT).contains(&from) || ranges == 0 || ranges as usize > MAX_RANGES {
        return Err(BadRequest::Malformed(DIGEST_REQUEST));
    }
    if !is_valid_name(name) {
        return Err(BadRequest::BadName);
    }
    Ok(())
}

/// The master's check of a RepairRequest.
pub fn check_repair_request(from: i64, n: i64, name: &[u8]) -> Result<(), BadRequest> {
    if !(0..TIME_LIMIT).contains(&from) || !(1..=MAX_BUCKETS as i64).contains(&n) {
        return Err(BadRequest::Malformed(REPAIR_REQUEST));
    }
    if !is_valid_name(name) {
        return Err(BadRequest::BadName);
    }
    Ok(())
}

/// A reply the slave did not ask for: fatal for the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScrubError {
    UnexpectedDigest,
    UnexpectedRepair,
}

impl ScrubError {
    pub fn text(self) -> &'static str {
        match self {
            ScrubError::UnexpectedDigest => "Unexpected Digest",
            ScrubError::UnexpectedRepair => "Unexpected RepairData",
        }
    }
}

/// Slave-side scrub settings.
#[derive(Debug, Clone)]
pub struct ScrubConfig {
    /// Seconds below each file's newest bucket that the scrub leaves to the resume
    /// overlap (the slave's `--replica-resume-overlap`).
    pub overlap: i64,
    /// Repairs sent and not answered above which no new Digest is asked for.
    pub max_repairs: usize,
}

impl Default for ScrubConfig {
    fn default() -> Self {
        ScrubConfig {
            overlap: 600,
            max_repairs: 64,
        }
    }
}

/// What one shard's scrub has done (summed across shards for `replication.scrub.*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScrubCounters {
    pub passes_started: u64,
    pub passes_done: u64,
    pub files_checked: u64,
    /// Files the master said it does not have.
    pub files_missing: u64,
    pub digests_sent: u64,
    pub ranges_checked: u64,
    pub ranges_differing: u64,
    pub repairs_sent: u64,
    pub ranges_repaired: u64,
    pub buckets_repaired: u64,
    /// Repaired buckets dropped as off the grid or outside their range.
    pub buckets_rejected: u64,
    /// Payload bytes of Digest and RepairData received.
    pub bytes: u64,
}

/// The part of the current file still to compare.
#[derive(Debug, Clone)]
struct Cursor {
    name: String,
    interval: i64,
    next: i64,
    hi: i64,
}

/// The Digest awaited.
#[derive(Debug, Clone)]
struct Outstanding {
    name: String,
    from: i64,
    ranges: u32,
    interval: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Repair {
    name: String,
    from: i64,
    n: i64,
    interval: i64,
}

/// A Digest matched with its request: compare the local buckets in `[from, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestJob {
    pub name: String,
    pub from: i64,
    pub end: i64,
    pub interval: i64,
}

/// Where a pass stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScrubState {
    /// No pass yet.
    Idle,
    Running,
    /// The last pass ended.
    Done,
    /// Stopped by the operator.
    Stopped,
}

/// One shard's slave-side scrub (see the module documentation).
#[derive(Debug)]
pub struct Scrubber {
    pub cfg: ScrubConfig,
    state: ScrubState,
    files: VecDeque<String>,
    files_total: usize,
    cursor: Option<Cursor>,
    waiting: Option<Outstanding>,
    repairs_todo: VecDeque<Repair>,
    repairs_out: Vec<Repair>,
    pub counters: ScrubCounters,
    /// When the last pass started and ended (caller's clock).
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
}

impl Scrubber {
    pub fn new(cfg: ScrubConfig) -> Scrubber {
        Scrubber {
            cfg,
            state: ScrubState::Idle,
            files: VecDeque::new(),
            files_total: 0,
            cursor: None,
            waiting: None,
            repairs_todo: VecDeque::new(),
            repairs_out: Vec::new(),
            counters: ScrubCounters::default(),
            started_at: None,
            ended_at: None,
        }
    }

    pub fn state(&self) -> ScrubState {
        self.state
    }

    /// Files of the current (or last) pass done and in all.
    pub fn progress(&self) -> (usize, usize) {
        let left = self.files.len() + usize::from(self.cursor.is_some());
        (self.files_total.saturating_sub(left), self.files_total)
    }

    /// Start a pass over `files` (relative paths), replacing a running one.
    pub fn start(&mut self, files: Vec<String>, now: i64) {
        self.files_total = files.len();
        self.files = files.into();
        self.cursor = None;
        self.repairs_todo.clear();
        self.state = ScrubState::Running;
        self.started_at = Some(now);
        self.counters.passes_started += 1;
    }

    /// Stop the pass, and automatic passes until the next [`Self::start`]. Replies
    /// still on their way are accepted and applied.
    pub fn stop(&mut self) {
        self.state = ScrubState::Stopped;
        self.files.clear();
        self.cursor = None;
        self.repairs_todo.clear();
    }

    /// The link went down: what was asked and not answered is asked again on the next
    /// link (the current range from its start, the repairs in order).
    pub fn link_lost(&mut self) {
        if let Some(w) = self.waiting.take() {
            if let Some(c) = self.cursor.as_mut().filter(|c| c.name == w.name) {
                c.next = c.next.min(w.from);
            }
        }
        let out = std::mem::take(&mut self.repairs_out);
        if self.state == ScrubState::Running {
            for r in out.into_iter().rev() {
                self.repairs_todo.push_front(r);
            }
        }
    }

    /// The next file to look at, when the pass needs one; None also ends a pass whose
    /// files are all done (at `now`).
    pub fn next_file(&mut self, now: i64) -> Option<String> {
        if self.state != ScrubState::Running || self.cursor.is_some() || self.waiting.is_some() {
            return None;
        }
        let next = self.files.pop_front();
        if next.is_none() && self.repairs_todo.is_empty() && self.repairs_out.is_empty() {
            self.state = ScrubState::Done;
            self.ended_at = Some(now);
            self.counters.passes_done += 1;
        }
        next
    }

    /// The local facts of the file [`Self::next_file`] gave: its interval and
    /// `file_create_time`, its oldest kept bucket time and its newest bucket time. The
    /// scrub covers the aligned slots from the oldest up to the newest minus the
    /// overlap, in whole ranges (the last one ends at that limit). `None` (no such
    /// local file any more) skips it.
    pub fn begin_file(&mut self, name: &str, local: Option<(i64, i64, i64, i64)>) {
        let Some((interval, zero, oldest, newest)) = local else {
            self.counters.files_checked += 1;
            return;
        };
        let iv = interval.max(1);
        let align_up = |t: i64| zero + (t - zero + iv - 1).div_euclid(iv) * iv;
        let lo = align_up(oldest.max(1));
        let hi = align_up(newest - self.cfg.overlap).min(TIME_LIMIT);
        // Shorter than one range: the range would reach into the overlap, where
        // buckets are still on their way and would look different.
        if hi - lo < RANGE_BUCKETS * iv || newest <= 0 {
            self.counters.files_checked += 1;
            return;
        }
        self.cursor = Some(Cursor {
            name: name.to_string(),
            interval: iv,
            next: lo,
            hi,
        });
    }

    /// The next DigestRequest and the slots it covers (what the pacing spends), when one
    /// may go: a file is open, no Digest is awaited and the repairs are not too many.
    pub fn next_digest(&mut self) -> Option<(Pdu, i64)> {
        if self.waiting.is_some()
            || self.repairs_out.len() + self.repairs_todo.len() >= self.cfg.max_repairs
        {
            return None;
        }
        let c = self.cursor.as_mut()?;
        let span = RANGE_BUCKETS * c.interval;
        let whole = (c.hi - c.next) / span;
        let (from, ranges) = if whole >= 1 {
            let ranges = whole.min(MAX_RANGES as i64);
            let from = c.next;
            c.next += ranges * span;
            (from, ranges as u32)
        } else {
            // The tail: one range ending at the limit (it overlaps the previous one).
            c.next = c.hi;
            (c.hi - span, 1)
        };
        self.waiting = Some(Outstanding {
            name: c.name.clone(),
            from,
            ranges,
            interval: c.interval,
        });
        self.counters.digests_sent += 1;
        Some((
            Pdu::DigestRequest {
                from,
                ranges,
                name: c.name.as_bytes().to_vec(),
            },
            i64::from(ranges) * RANGE_BUCKETS,
        ))
    }

    /// A Digest arrived. `Ok(None)`: the master has no such file (it is skipped), or
    /// the pass was stopped meanwhile; `Ok(Some(job))`: compare the local buckets of
    /// the job with [`differing`] and report with [`Self::compared`].
    pub fn digest(
        &mut self,
        name: &[u8],
        from: i64,
        ranges: usize,
    ) -> Result<Option<DigestJob>, ScrubError> {
        let w = self.waiting.as_ref().ok_or(ScrubError::UnexpectedDigest)?;
        if w.name.as_bytes() != name
            || w.from != from
            || (ranges != 0 && ranges != w.ranges as usize)
        {
            return Err(ScrubError::UnexpectedDigest);
        }
        let w = self.waiting.take().expect("checked above");
        self.counters.bytes += 12 + ranges as u64 * 16 + name.len() as u64 + 1;
        let open = self.cursor.as_ref().is_some_and(|c| c.name == w.name);
        if ranges == 0 {
            if open {
                self.cursor = None;
                self.counters.files_missing += 1;
                self.counters.files_checked += 1;
            }
            return Ok(None);
        }
        if !open {
            return Ok(None);
        }
        Ok(Some(DigestJob {
            name: w.name,
            from: w.from,
            end: w.from + ranges as i64 * RANGE_BUCKETS * w.interval,
            interval: w.interval,
        }))
    }

    /// The comparison of a Digest: `ranges` ranges checked, the indexes in `diff`
    /// differ and are queued for repair.
    pub fn compared(&mut self, job: &DigestJob, ranges: usize, diff: &[usize]) {
        self.counters.ranges_checked += ranges as u64;
        self.counters.ranges_differing += diff.len() as u64;
        let span = RANGE_BUCKETS * job.interval;
        for &i in diff {
            self.repairs_todo.push_back(Repair {
                name: job.name.clone(),
                from: job.from + i as i64 * span,
                n: RANGE_BUCKETS,
                interval: job.interval,
            });
        }
        if let Some(c) = &self.cursor {
            if c.name == job.name && c.next >= c.hi {
                self.cursor = None;
                self.counters.files_checked += 1;
            }
        }
    }

    /// The next RepairRequest to send.
    pub fn next_repair(&mut self) -> Option<Pdu> {
        let r = self.repairs_todo.pop_front()?;
        let p = Pdu::RepairRequest {
            from: r.from,
            n: r.n,
            name: r.name.as_bytes().to_vec(),
        };
        self.repairs_out.push(r);
        self.counters.repairs_sent += 1;
        Some(p)
    }

    /// RepairData arrived: the buckets to write (on the range's grid, ascending, inside
    /// it; others are dropped and counted). Answers for one file come in the order
    /// asked; files may interleave.
    pub fn repair_data(
        &mut self,
        name: &[u8],
        buckets: Vec<Bucket>,
    ) -> Result<Vec<Bucket>, ScrubError> {
        let i = self
            .repairs_out
            .iter()
            .position(|r| r.name.as_bytes() == name)
            .ok_or(ScrubError::UnexpectedRepair)?;
        if buckets.len() as i64 > self.repairs_out[i].n {
            return Err(ScrubError::UnexpectedRepair);
        }
        let r = self.repairs_out.remove(i);
        self.counters.bytes += 8 + buckets.len() as u64 * 32 + name.len() as u64 + 1;
        let end = r.from + r.n * r.interval;
        let mut prev = i64::MIN;
        let mut keep = Vec::with_capacity(buckets.len());
        for b in buckets {
            if b.time >= r.from
                && b.time < end
                && (b.time - r.from) % r.interval == 0
                && b.time > prev
            {
                prev = b.time;
                keep.push(b);
            } else {
                self.counters.buckets_rejected += 1;
            }
        }
        self.counters.ranges_repaired += 1;
        self.counters.buckets_repaired += keep.len() as u64;
        Ok(keep)
    }

    /// Nothing sent and unanswered.
    pub fn is_quiet(&self) -> bool {
        self.waiting.is_none() && self.repairs_out.is_empty()
    }

    /// Bytes of state held (for the memory budget).
    pub fn state_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.files.iter().map(|f| f.capacity() + 24).sum::<usize>()
            + (self.repairs_todo.len() + self.repairs_out.len())
                * (std::mem::size_of::<Repair>() + 64)
    }
}
