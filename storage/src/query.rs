//! Query semantics (docs/interfaces.md §3.5.3, docs/file-format.md "Reading"; reference
//! `StatCounter::select`, `pickStatFile`, `pickTrailingStatFile`, `normalizeRange`,
//! `readBucketsFromFile`, `reduce` in daemon/StatCounter.cpp and `readBuckets`,
//! `numBucketsBetween`, `isBucketIndexInFile` in lib/StatFile.cpp).
//!
//! A query runs in two pure phases so the caller can do its disk I/O in between:
//!
//! 1. [`plan`]: defaults, file choice, normalization and the reduction ladder, from the
//!    counter's headers alone; yields the reported start/end/interval and one range read
//!    (`read_start_index`, `read_count`, in index order, already clamped to the ring).
//! 2. [`finish`]: given the raw slots of that read, filters them (gauges) or zero-fills
//!    them (event counters) and merges them into the reported interval.
//!
//! Port decisions (the reference differs):
//! - A range read never starts outside the ring window: the start index is clamped to
//!   `last_bucket − C + 1` (docs/file-format.md "Reading", S-5), and the filter's lower
//!   bound becomes the time of that index, so slots left from an earlier lap (whose times
//!   may lie between the normalized start and the window) are not taken for data. Gauge
//!   reads also stop at `last_bucket` (slots past it are stale and would be filtered
//!   anyway). Event-counter reads do not stop there: the reference zero-fills every slot up
//!   to `end`, and so does the port.
//! - Time → index uses floor division (docs/file-format.md "Where a bucket goes", S-2),
//!   also when reading.
//! - Rounding to an interval floors (and ceils) also for negative times; the reference's
//!   truncating `%` rounds negative times toward zero.
//! - The merge never emits the empty leading group as a `"time":0` bucket
//!   (docs/interfaces.md §9 #12).
//! - `samples=1` with `start == end` does not divide by zero: it is normalized as if no
//!   single-bucket request had been made (at most one bucket comes back anyway).

use crate::format::{self, Bucket, Header, FLAG_COLLATED, FLAG_COUNTER_AGGREGATE, FLAG_TRAILING};

/// The reduction ladder: candidate merged intervals, finest first.
pub const REDUCTIONS: [i64; 18] = [
    10, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 14400, 21600, 28800, 43200,
    86400,
];

/// Default span when only one end (or neither) of the range is given.
pub const DEFAULT_SPAN: i64 = 900;

/// What the caller asked for (already validated by the HTTP layer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryParams {
    /// First second wanted; 0 = default.
    pub start: i64,
    /// Last second wanted; 0 = default.
    pub end: i64,
    /// Maximum number of buckets; 0 (or negative) = no limit; 1 = one bucket.
    pub max_samples: i64,
    /// Read the trailing (moving-average) file instead.
    pub trailing: bool,
}

/// The outcome of [`plan`]: what to report and what to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Index into the headers given to [`plan`]; `None` = no data (report an empty list).
    pub file: Option<usize>,
    /// Reported (normalized) start.
    pub start: i64,
    /// Reported (normalized) end.
    pub end: i64,
    /// Reported bucket size.
    pub interval: i64,
    /// First bucket index to read (the slot is `index mod C`).
    pub read_start_index: i64,
    /// Number of consecutive indices to read (0..=C); 0 = nothing to read.
    pub read_count: i64,
    /// `max(start, time(read_start_index))`: the lower time bound of the filter, and the
    /// time of the first zero bucket an event counter fills in. Equal to `start` unless
    /// the read was clamped to the window; then it keeps slots left over from an earlier
    /// lap (all older than the first index read) out of the result.
    pub first_expected_time: i64,
}

impl Plan {
    /// The result when nothing is read (no file, or an empty read of a gauge).
    pub fn empty_result(&self) -> QueryResult {
        QueryResult {
            start: self.start,
            end: self.end,
            interval: self.interval,
            buckets: vec![],
        }
    }
}

/// The answer to a query.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub start: i64,
    pub end: i64,
    pub interval: i64,
    pub buckets: Vec<Bucket>,
}

/// True for every file of an event counter (COLLATED finest file, COUNTER_AGGREGATE
/// coarser and trailing files).
pub fn is_event_file(h: &Header) -> bool {
    h.flags & (FLAG_COLLATED | FLAG_COUNTER_AGGREGATE) != 0
}

fn floor_to(t: i64, iv: i64) -> i64 {
    t - t.rem_euclid(iv)
}

fn ceil_to(t: i64, iv: i64) -> i64 {
    let r = t.rem_euclid(iv);
    if r == 0 {
        t
    } else {
        (t - r).saturating_add(iv)
    }
}

fn file_interval(h: &Header) -> i64 {
    (h.cfg_interval as i64).max(1)
}

/// `StatFile::isBucketIndexInFile`: the ring window `[last_bucket − C + 1, last_bucket]`,
/// plus, for a COLLATED file, any later index whose time is before `now`.
pub fn index_in_file(h: &Header, ix: i64, now: i64) -> bool {
    let c = h.capacity();
    if ix <= h.last_bucket - c {
        return false;
    }
    if ix > h.last_bucket {
        let t = h
            .file_create_time
            .saturating_add(ix.saturating_mul(file_interval(h)));
        return h.flags & FLAG_COLLATED != 0 && t < now;
    }
    true
}

/// `pickStatFile`: the first file (in retention order, trailing files included, as the
/// reference iterates them all) whose window holds the bucket of `start`. Returns the file
/// and the interval to report. With no file: the finest file's interval when `start` is
/// after its `last_time`, else the last file's interval.
fn pick_file(headers: &[&Header], start: i64, now: i64) -> (Option<usize>, i64) {
    let mut interval = 0;
    for (i, h) in headers.iter().enumerate() {
        let iv = file_interval(h);
        interval = iv;
        if index_in_file(h, format::bucket_index(start, h.file_create_time, iv), now) {
            return (Some(i), interval);
        }
    }
    if let Some(first) = headers.first() {
        if start > first.last_time {
            interval = file_interval(first);
        }
    }
    (None, interval)
}

/// `pickTrailingStatFile`: the first trailing file whose season is at least `now − start`
/// (compared unsigned, as the reference does, so a start in the future finds none). The
/// interval reported is that of the last trailing file looked at (0 when there is none).
fn pick_trailing(headers: &[&Header], start: i64, now: i64) -> (Option<usize>, i64) {
    let need = now.wrapping_sub(start) as u64;
    let mut interval = 0;
    for (i, h) in headers.iter().enumerate() {
        if h.flags & FLAG_TRAILING == 0 {
            continue;
        }
        interval = h.cfg_interval as i64;
        if h.season < need {
            continue;
        }
        return (Some(i), interval);
    }
    (None, interval)
}

/// `normalizeRange`: returns (start, end, interval).
pub fn normalize(start: i64, end: i64, interval: i64, max_samples: i64) -> (i64, i64, i64) {
    if max_samples == 1 && end > start {
        // One bucket; it may be off by up to half its size, as in the reference.
        let iv = end - start;
        let s = floor_to(start, iv);
        let e = ceil_to(end, iv);
        return (s, e, e - s);
    }
    let mut iv = if interval <= 0 { 10 } else { interval };
    let mut s = floor_to(start, iv);
    let mut e = ceil_to(end, iv);
    let span = e.saturating_sub(s);
    if max_samples <= 0 || span / iv <= max_samples {
        return (s, e, iv);
    }
    let mut target = 0;
    for &r in REDUCTIONS.iter() {
        if r <= iv || r % iv != 0 {
            continue;
        }
        target = r;
        if span / target <= max_samples {
            break;
        }
    }
    if target == 0 {
        target = span / max_samples;
        if target < iv.saturating_mul(2) {
            return (s, e, iv);
        }
    }
    iv = target;
    s = floor_to(s, iv);
    e = ceil_to(e, iv);
    (s, e, iv)
}

/// Phase 1: decide everything that needs no I/O.
///
/// `headers`: the counter's retention files in retention order (finest first, trailing
/// files included), each with its own header. `now`: the daemon clock (fake time aware).
pub fn plan(headers: &[&Header], p: &QueryParams, now: i64) -> Plan {
    let (mut start, mut end) = (p.start, p.end);
    if start == 0 && end == 0 {
        end = now;
        start = now.saturating_sub(DEFAULT_SPAN);
    } else if end == 0 {
        end = start.saturating_add(DEFAULT_SPAN);
    } else if start == 0 {
        start = end.saturating_sub(DEFAULT_SPAN);
    }
    let nothing = |start, end, interval| Plan {
        file: None,
        start,
        end,
        interval,
        read_start_index: 0,
        read_count: 0,
        first_expected_time: start,
    };
    if end < start {
        // The HTTP layer refuses this before asking; the reference returns untouched.
        return nothing(start, end, 0);
    }
    let (file, interval) = if p.trailing {
        pick_trailing(headers, start, now)
    } else {
        pick_file(headers, start, now)
    };
    let (start, end, interval) = normalize(start, end, interval, p.max_samples);
    let Some(fi) = file else {
        return nothing(start, end, interval);
    };
    let h = headers[fi];
    let iv = file_interval(h);
    let z = h.file_create_time;
    let c = h.capacity();
    // readBucketsFromFile: index of start, and numBucketsBetween(start, end).
    let start_index = format::bucket_index(start, z, iv);
    let delta = floor_to(end, iv) - floor_to(start, iv);
    let count = if delta == 0 { 1 } else { delta / iv };
    // Port S-5: clamp to the window instead of reading from slot 0.
    let lo = h.last_bucket - c + 1;
    let mut s = start_index;
    let mut n = count;
    if s < lo {
        n -= lo - s;
        s = lo;
    }
    n = n.min(c);
    if !is_event_file(h) {
        n = n.min(h.last_bucket - s + 1);
    }
    let n = n.max(0);
    let first_expected_time = start.max(z.saturating_add(s.saturating_mul(iv)));
    Plan {
        file: Some(fi),
        start,
        end,
        interval,
        read_start_index: s,
        read_count: n,
        first_expected_time,
    }
}

/// Phase 2: filter / zero-fill the slots read for `plan` from the file `header` (the
/// header of `headers[plan.file]`), then merge them into `plan.interval` buckets.
///
/// `slots`: the raw slots for indices `read_start_index .. read_start_index + read_count`,
/// in index order. With `plan.file == None` the result is empty and `header` is unused.
pub fn finish(plan: &Plan, header: &Header, slots: &[Bucket]) -> QueryResult {
    let mut res = plan.empty_result();
    if plan.file.is_none() {
        return res;
    }
    let iv = file_interval(header);
    let event = is_event_file(header);
    let mut buckets = Vec::with_capacity(slots.len());
    if event {
        // readBucketsFromFile, collated: out-of-range slots become (0 value, count 1)
        // buckets at the expected times.
        let mut expected = plan.first_expected_time;
        for b in slots {
            if b.time >= plan.first_expected_time && b.time < plan.end {
                buckets.push(*b);
                expected = b.time + iv;
            } else {
                buckets.push(Bucket {
                    time: expected,
                    count: 1,
                    ..Bucket::EMPTY
                });
                expected += iv;
            }
        }
    } else {
        let lo = plan.first_expected_time;
        buckets.extend(slots.iter().filter(|b| b.time >= lo && b.time <= plan.end));
    }
    if iv < plan.interval {
        let collated_count = if event {
            let multiplier = if header.flags & FLAG_COUNTER_AGGREGATE != 0 {
                header.fixed_count
            } else {
                1
            };
            // The reference computes this in time_t and stores it in an int.
            (plan.interval / iv).wrapping_mul(multiplier) as i32
        } else {
            0
        };
        buckets = reduce(&buckets, plan.start, plan.interval, collated_count);
    }
    res.buckets = buckets;
    res
}

/// `appendReduced`: event counters get exactly `collated_count` samples, and min/max
/// combined with 0 when fewer were present.
fn append_reduced(out: &mut Vec<Bucket>, mut r: Bucket, group_time: i64, collated_count: i32) {
    if collated_count != 0 {
        if r.count < collated_count {
            r.merge(&Bucket::empty_at(group_time));
        }
        r.count = collated_count;
    }
    out.push(r);
}

/// `StatCounter::reduce`: merge time-ordered buckets into groups of `interval` seconds
/// aligned on `start`; a group's time is its start. Groups without any bucket are skipped
/// (Port: including a leading one, which the reference emits as a `"time":0` bucket).
pub fn reduce(buckets: &[Bucket], start: i64, interval: i64, collated_count: i32) -> Vec<Bucket> {
    let mut out = Vec::new();
    if interval <= 0 {
        return buckets.to_vec();
    }
    let mut current = start;
    let mut next = start.saturating_add(interval);
    let mut red = Bucket::EMPTY;
    let mut have = false;
    for b in buckets {
        if b.time >= next {
            if have {
                append_reduced(&mut out, red, current, collated_count);
            }
            red = Bucket::EMPTY;
            let steps = (b.time - next) / interval;
            current = next + steps * interval;
            next = current.saturating_add(interval);
        }
        if red.count == 0 {
            red = Bucket {
                time: current,
                ..*b
            };
        } else {
            red.merge(b);
        }
        have = true;
    }
    if have {
        append_reduced(&mut out, red, current, collated_count);
    }
    out
}

/// Read `count` consecutive indices from `start_index` out of a whole file image (slot
/// `i mod C` at [`format::slot_offset`]), for tests and tools. At most C slots are
/// returned; a slot past the end of a short image reads as empty.
pub fn read_slots_from_image(
    header: &Header,
    image: &[u8],
    start_index: i64,
    count: i64,
) -> Vec<Bucket> {
    let c = header.capacity();
    if count <= 0 || c <= 0 || header.page_size < format::BUCKET_SIZE as i64 {
        return vec![];
    }
    (0..count.min(c))
        .map(|k| {
            let slot = format::slot_of(start_index + k, c);
            let off = format::slot_offset(slot, header.page_size) as usize;
            match image.get(off..off + format::BUCKET_SIZE) {
                Some(b) => Bucket::from_bytes(b),
                None => Bucket::EMPTY,
            }
        })
        .collect()
}

/// A whole query over in-memory file images (one per header, same order): [`plan`],
/// [`read_slots_from_image`], [`finish`].
pub fn query_images(
    headers: &[&Header],
    images: &[&[u8]],
    p: &QueryParams,
    now: i64,
) -> QueryResult {
    let pl = plan(headers, p, now);
    match pl.file {
        None => pl.empty_result(),
        Some(i) => {
            let slots =
                read_slots_from_image(headers[i], images[i], pl.read_start_index, pl.read_count);
            finish(&pl, headers[i], &slots)
        }
    }
}

#[cfg(test)]
mod tests;
