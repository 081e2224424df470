//! Query semantics (interfaces.md §3.5.3, storage.md §6; reference `StatCounter::select`,
//! `pickStatFile`, `pickTrailingStatFile`, `normalizeRange`, `readBucketsFromFile`, `reduce`
//! in daemon/StatCounter.cpp and `readBuckets`, `numBucketsBetween`, `isBucketIndexInFile`
//! in lib/StatFile.cpp).
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
//!   `last_bucket − C + 1` (storage.md §6.1, S-5), and the filter's lower bound becomes
//!   the time of that index, so slots left from an earlier lap (whose times may lie
//!   between the normalized start and the window) are not taken for data. Gauge reads
//!   also stop at `last_bucket` (slots past it are stale and would be filtered anyway).
//!   Event-counter reads do not stop there: the reference zero-fills every slot up to
//!   `end`, and so does the port.
//! - Time → index uses floor division (storage.md §2.4, S-2), also when reading.
//! - Rounding to an interval floors (and ceils) also for negative times; the reference's
//!   truncating `%` rounds negative times toward zero.
//! - The merge never emits the empty leading group as a `"time":0` bucket (interfaces.md
//!   §9 #12).
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
mod tests {
    use super::*;
    use crate::format::{CreateParams, BUCKET_SIZE};
    use crate::numfmt::{g17, g6, iso8601};
    use std::fmt::Write;

    /// An in-memory counter file with a minimal writer (storage.md §2.6, §3.1).
    struct Img {
        h: Header,
        bytes: Vec<u8>,
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Mode {
        /// Gauge files: merge into the bucket.
        Merge,
        /// Event counters' finest file: replace the bucket.
        Replace,
    }

    impl Img {
        fn new(interval: i32, page_count: i64, flags: i32, zero: i64, fixed_count: i64) -> Img {
            let zero = zero - zero.rem_euclid(interval as i64);
            let h = Header::new_file(&CreateParams {
                interval,
                page_count,
                flags,
                zero_time: zero,
                lambda: 0.0,
                season: 0,
                fixed_count,
                unit: String::new(),
                name: "test".into(),
            });
            let bytes = vec![0u8; h.file_len() as usize];
            Img { h, bytes }
        }

        fn put(&mut self, b: Bucket, mode: Mode) {
            let iv = self.h.cfg_interval as i64;
            let ix = format::bucket_index(b.time, self.h.file_create_time, iv);
            let bt = format::bucket_time(b.time, iv);
            let c = self.h.capacity();
            if ix > self.h.last_bucket {
                self.h.last_bucket = ix;
                self.h.last_time = bt;
                if self.h.first_bucket + c <= self.h.last_bucket {
                    self.h.first_bucket = self.h.last_bucket - c + 1;
                }
            }
            if ix <= self.h.last_bucket - c {
                return;
            }
            if ix < self.h.first_bucket {
                self.h.first_bucket = ix;
            }
            let off = format::slot_offset(format::slot_of(ix, c), self.h.page_size) as usize;
            let slot = &mut self.bytes[off..off + BUCKET_SIZE];
            let mut cur = Bucket::from_bytes(slot);
            if cur.time != bt {
                cur = Bucket::EMPTY;
            }
            match mode {
                Mode::Merge => cur.merge(&Bucket { time: bt, ..b }),
                Mode::Replace => cur = Bucket { time: bt, ..b },
            }
            cur.write_to(slot);
        }
    }

    fn query(files: &[&Img], start: i64, end: i64, samples: i64, now: i64) -> QueryResult {
        let headers: Vec<&Header> = files.iter().map(|f| &f.h).collect();
        let images: Vec<&[u8]> = files.iter().map(|f| f.bytes.as_slice()).collect();
        let p = QueryParams {
            start,
            end,
            max_samples: samples,
            trailing: false,
        };
        query_images(&headers, &images, &p, now)
    }

    /// tool/istatd_query.py's output for a GET (what ftest/expected holds, minus the URL).
    fn render(r: &QueryResult) -> String {
        let mut s = String::new();
        writeln!(s, "start:    {:10}", r.start).unwrap();
        writeln!(s, "end:      {:10}", r.end).unwrap();
        writeln!(s, "interval: {:10}", r.interval).unwrap();
        for b in &r.buckets {
            writeln!(
                s,
                "{:10} {:.2} {:.2} {:.2} {} {:.2} {:.2}",
                b.time,
                b.avg() as f64,
                b.min_f32() as f64,
                b.max_f32() as f64,
                b.count,
                b.sum_f32() as f64,
                b.sum_sq_f32() as f64
            )
            .unwrap();
        }
        s
    }

    fn head(start: i64, end: i64, interval: i64) -> String {
        format!("start:    {start:10}\nend:      {end:10}\ninterval: {interval:10}\n")
    }

    fn ones(times: impl IntoIterator<Item = i64>) -> String {
        times
            .into_iter()
            .map(|t| format!("{t:10} 1.00 1.00 1.00 1 1.00 1.00\n"))
            .collect()
    }

    fn twos(times: impl IntoIterator<Item = i64>) -> String {
        times
            .into_iter()
            .map(|t| format!("{t:10} 1.00 1.00 1.00 2 2.00 2.00\n"))
            .collect()
    }

    /// ftest/test_json_interface.sh: `create_stat_files single foo.bar A B` runs
    /// `istatd_nums2file --num-samples 1000` (4 pages) for 10s, 5m and 1h with one sample
    /// `t 1` every interval from A to B; the zero time is the first call's A.
    fn foo_bar() -> (Img, Img, Img) {
        let mut f10 = Img::new(10, 4, 0, 1000, 0);
        let mut f5m = Img::new(300, 4, 0, 1000, 0);
        let mut f1h = Img::new(3600, 4, 0, 1000, 0);
        for (a, b) in [(1000, 1100), (1200, 1300), (1390, 1500), (1610, 2570)] {
            for (img, step) in [(&mut f10, 10), (&mut f5m, 300), (&mut f1h, 3600)] {
                for t in (a..=b).step_by(step) {
                    img.put(Bucket::sample(t, 1.0), Mode::Merge);
                }
            }
        }
        (f10, f5m, f1h)
    }

    #[test]
    fn ftest_json_interface_get() {
        let (a, b, c) = foo_bar();
        let files = [&a, &b, &c];
        let now = 2600;
        let q = |s, e, n| render(&query(&files, s, e, n, now));
        // GET_returns_15_minutes_only_when_end_is_specified / _start_is_specified
        let expect = head(1610, 2510, 10) + &ones((1610..=2500).step_by(10));
        assert_eq!(q(0, 2510, 0), expect);
        assert_eq!(q(1610, 0, 0), expect);
        assert_eq!(q(0, 2510, 1000), expect);
        // GET_returns_last_15_minutes_of_data_when_start_and_end_is_not_specified
        assert_eq!(
            q(0, 0, 1000),
            head(1700, 2600, 10) + &ones((1700..=2570).step_by(10))
        );
        // GET_returns_1_bucket_when_diff_of_end_and_start_is_less_than_interval
        assert_eq!(q(1391, 1398, 1000), head(1390, 1400, 10) + &ones([1390]));
        // GET_returns_empty_data_when_start_and_end_are_before_than_oldest_data_in_file
        assert_eq!(q(500, 600, 1000), head(500, 600, 10));
        // GET_returns_empty_data_when_start_and_end_are_more_than_an_hour_later_than_...
        assert_eq!(q(10000, 12000, 1000), head(10000, 12000, 10));
        // GET_returns_normalized_start_and_stop_when_data_missing_from_both_ends
        let data: Vec<i64> = (1000..=1100)
            .step_by(10)
            .chain((1200..=1300).step_by(10))
            .collect();
        assert_eq!(q(955, 1345, 1000), head(950, 1350, 10) + &ones(data));
        // GET_returns_finest_resolution_when_max_samples_is_greater_than_number_of_samples
        assert_eq!(
            q(1000, 1100, 100),
            head(1000, 1100, 10) + &ones((1000..=1090).step_by(10))
        );
        // GET_increases_size_of_bucket_when_max_samples_is_limited_by_the_caller
        assert_eq!(
            q(1000, 1100, 5),
            head(1000, 1100, 20) + &twos((1000..=1080).step_by(20))
        );
        // GET_buckets_on_interval_boundry_when_limiting_number_of_samples_and_start_time_...
        let expect = head(1600, 2520, 20)
            + "      1600 1.00 1.00 1.00 1 1.00 1.00\n"
            + &twos((1620..=2500).step_by(20));
        assert_eq!(q(1611, 2509, 45), expect);
        // GET_does_not_return_buckets_where_there_are_gaps
        let data: Vec<i64> = (1000..=1100)
            .step_by(10)
            .chain((1200..=1300).step_by(10))
            .chain((1390..=1500).step_by(10))
            .collect();
        assert_eq!(q(1000, 1600, 600), head(1000, 1600, 10) + &ones(data));
        // GET_does_not_return_buckets_where_there_are_gaps_and_when_samples_are_limited
        let expect = head(1000, 1600, 20)
            + &twos((1000..=1080).step_by(20))
            + &ones([1100])
            + &twos((1200..=1280).step_by(20))
            + &ones([1300, 1380])
            + &twos((1400..=1480).step_by(20))
            + &ones([1500]);
        assert_eq!(q(1000, 1600, 30), expect);
        // POST_works_with_*: start 1001, stop 1598, maxSamples 2 (foo.bar part).
        let r = query(&files, 1001, 1598, 2, now);
        assert_eq!((r.start, r.end, r.interval), (900, 1800, 300));
        let rows: Vec<(i64, i32, f64)> =
            r.buckets.iter().map(|b| (b.time, b.count, b.sum)).collect();
        assert_eq!(rows, [(900, 11, 11.0), (1200, 22, 22.0), (1500, 20, 20.0)]);
    }

    /// ftest/test_reduction.sh: event counter `*test.counter`, retention
    /// `10s:1h,5m:2h,1h:3h`, fake time 7000; value 10 (a rate of 1/s) at 2550 and
    /// 2570..2600 and 6800; the collation window wrote every 10 s bucket from 2510 (four
    /// empty ones before the first sample) to 7060 (periodic flush then admin flush).
    fn test_counter() -> (Img, Img, Img) {
        let mut f10 = Img::new(10, 2, FLAG_COLLATED, 2550, 0);
        let f5m = Img::new(300, 2, FLAG_COUNTER_AGGREGATE, 2550, 30);
        let f1h = Img::new(3600, 2, FLAG_COUNTER_AGGREGATE, 2550, 360);
        for t in (2510..=7060).step_by(10) {
            let mut b = Bucket::empty_at(t);
            if [2550, 2570, 2580, 2590, 2600, 6800].contains(&t) {
                b.collated_update(1.0, t);
            }
            f10.put(b, Mode::Replace);
        }
        (f10, f5m, f1h)
    }

    #[test]
    fn ftest_reduction() {
        let (a, b, c) = test_counter();
        let files = [&a, &b, &c];
        let zeros = |r: std::ops::RangeInclusive<i64>, step, n| -> String {
            r.step_by(step)
                .map(|t| format!("{t:10} 0.00 0.00 0.00 {n} 0.00 0.00\n"))
                .collect()
        };
        // reduction_test_10s
        let expect = head(2560, 3160, 20)
            + "      2560 0.50 0.00 1.00 2 1.00 1.00\n"
            + "      2580 1.00 1.00 1.00 2 2.00 2.00\n"
            + "      2600 0.50 0.00 1.00 2 1.00 1.00\n"
            + &zeros(2620..=3140, 20, 2);
        assert_eq!(render(&query(&files, 2560, 3160, 30, 7000)), expect);
        // reduction_test_5m
        let expect = head(2400, 6600, 600)
            + "      2400 0.08 0.00 1.00 60 5.00 5.00\n"
            + &zeros(3000..=6000, 600, 60);
        assert_eq!(render(&query(&files, 2560, 6160, 6, 7000)), expect);
    }

    /// ftest/test_recent_buckets_returned_for_occasional_counters.sh: a range past the
    /// event counter's last bucket (but before now) still comes back zero-filled.
    #[test]
    fn recent_buckets_for_occasional_counters() {
        let t0 = 1325394000;
        let mut f10 = Img::new(10, 2, FLAG_COLLATED, t0, 0);
        for t in (t0 - 40..=1325395060).step_by(10) {
            let mut b = Bucket::empty_at(t);
            if t == t0 {
                b.collated_update(1.0, t);
            }
            f10.put(b, Mode::Replace);
        }
        let f5m = Img::new(300, 2, FLAG_COUNTER_AGGREGATE, t0, 30);
        let lt = 1325395100;
        let r = query(&[&f10, &f5m], lt + 20, lt + 80, 0, lt + 80);
        assert_eq!((r.start, r.end, r.interval), (lt + 20, lt + 80, 10));
        let rows: Vec<(i64, i32, f64)> =
            r.buckets.iter().map(|b| (b.time, b.count, b.sum)).collect();
        let expect: Vec<(i64, i32, f64)> = (lt + 20..lt + 80)
            .step_by(10)
            .map(|t| (t, 1, 0.0))
            .collect();
        assert_eq!(rows, expect);
        // A gauge file gives nothing there.
        let mut g = Img::new(10, 2, 0, t0, 0);
        g.put(Bucket::sample(t0, 1.0), Mode::Merge);
        let r = query(&[&g], lt + 20, lt + 80, 0, lt + 80);
        assert_eq!((r.interval, r.buckets.len()), (10, 0));
    }

    #[test]
    fn normalization_rules() {
        // Ladder, including "last multiple tried" and the fallback.
        assert_eq!(normalize(1611, 2509, 10, 45), (1600, 2520, 20));
        assert_eq!(normalize(1000, 1100, 10, 0), (1000, 1100, 10));
        assert_eq!(normalize(0, 86400 * 100, 10, 5), (0, 86400 * 100, 86400));
        assert_eq!(normalize(0, 7000, 7, 10), (0, 7000, 700)); // no multiple of 7
        assert_eq!(normalize(0, 70, 7, 9), (0, 70, 7)); // fallback below 2 × interval
        assert_eq!(normalize(1000, 1100, 0, 0), (1000, 1100, 10)); // interval 0 → 10
                                                                   // One bucket.
        assert_eq!(normalize(1000, 1100, 10, 1), (1000, 1100, 100));
        assert_eq!(normalize(1611, 2509, 10, 1), (898, 2694, 1796));
        assert_eq!(normalize(1391, 1398, 10, 1), (1386, 1400, 14));
        assert_eq!(normalize(1000, 1000, 10, 1), (1000, 1000, 10)); // Port: no division by 0
                                                                    // Negative max_samples = no limit (size_t in the reference).
        assert_eq!(normalize(0, 100000, 10, -3), (0, 100000, 10));
    }

    #[test]
    fn file_choice() {
        let (a, b, c) = foo_bar();
        let hs = [&a.h, &b.h, &c.h];
        let p = |start, end| QueryParams {
            start,
            end,
            max_samples: 0,
            trailing: false,
        };
        // 10s ring: C = 1024, last_bucket 157 → window from index −866 (time −7660).
        assert_eq!(plan(&hs, &p(1000, 1100), 2600).file, Some(0));
        assert_eq!(plan(&hs, &p(-7660, 1100), 2600).file, Some(0));
        // Older than the 10s ring: the 5m file (Z 900, last_bucket 5) covers it.
        let pl = plan(&hs, &p(-7670, 1100), 2600);
        assert_eq!((pl.file, pl.interval, pl.start), (Some(1), 300, -7800));
        // Older than every ring: the last file's interval, no data.
        let pl = plan(&hs, &p(-307_200 - 900 - 3600 * 1024, -1000), 2600);
        assert_eq!((pl.file, pl.interval), (None, 3600));
        // After the newest bucket: the finest interval, no data.
        let pl = plan(&hs, &p(10000, 12000), 2600);
        assert_eq!((pl.file, pl.interval, pl.read_count), (None, 10, 0));
    }

    #[test]
    fn read_clamp_to_window() {
        // A gauge ring of 512 slots whose window is indices 488..=999.
        let mut g = Img::new(10, 2, 0, 0, 0);
        for t in (0..10000).step_by(10) {
            g.put(Bucket::sample(t, t as f64), Mode::Merge);
        }
        assert_eq!((g.h.last_bucket, g.h.first_bucket), (999, 488));
        // Reduced: start rounded down to 600 s falls before the window.
        let p = QueryParams {
            start: 4890,
            end: 9990,
            max_samples: 8,
            trailing: false,
        };
        let pl = plan(&[&g.h], &p, 10000);
        assert_eq!((pl.start, pl.end, pl.interval), (4800, 10200, 600));
        // Index 480 (4800) is before the window: the read starts at 488 (4880).
        assert_eq!((pl.read_start_index, pl.read_count), (488, 512));
        let r = query(&[&g], 4890, 9990, 8, 10000);
        assert_eq!(r.buckets[0].time, 4800);
        assert_eq!(r.buckets[0].count, 52); // 4880 ..= 5390
        assert_eq!(r.buckets.iter().map(|b| b.count).sum::<i32>(), 512);
        // Gauge reads stop at last_bucket.
        let p = QueryParams {
            start: 9900,
            end: 20000,
            max_samples: 0,
            trailing: false,
        };
        let pl = plan(&[&g.h], &p, 10000);
        assert_eq!((pl.read_start_index, pl.read_count), (990, 10));
        assert_eq!(read_slots_from_image(&g.h, &g.bytes, 990, 10).len(), 10);
        assert_eq!(read_slots_from_image(&g.h, &g.bytes, 0, 100000).len(), 512);
    }

    #[test]
    fn clamped_read_ignores_earlier_laps() {
        // Indices 0..=999 except a gap at 600..=609, whose slots still hold 88..=97
        // (times 880..=970) from the first lap.
        let mut g = Img::new(10, 2, 0, 0, 0);
        for t in (0..10000).step_by(10).filter(|t| !(6000..6100).contains(t)) {
            g.put(Bucket::sample(t, 1.0), Mode::Merge);
        }
        // One bucket: interval 5100 rounds start down to 0, far before the window (4880).
        let p = QueryParams {
            start: 4890,
            end: 9990,
            max_samples: 1,
            trailing: false,
        };
        let pl = plan(&[&g.h], &p, 10000);
        assert_eq!((pl.start, pl.end, pl.interval), (0, 10200, 10200));
        assert_eq!(
            (pl.read_start_index, pl.read_count, pl.first_expected_time),
            (488, 512, 4880)
        );
        let r = query(&[&g], 4890, 9990, 1, 10000);
        let rows: Vec<(i64, i32)> = r.buckets.iter().map(|b| (b.time, b.count)).collect();
        assert_eq!(rows, [(0, 502)]);
    }

    #[test]
    fn event_counter_merge_details() {
        // A 5m aggregate file (fixed_count 30) read at 1200 s: count = 1200/300 × 30.
        let mut f = Img::new(300, 2, FLAG_COUNTER_AGGREGATE, 2400, 30);
        for (t, v) in [(2400, -2.0), (2700, 4.0)] {
            f.put(
                Bucket {
                    count: 30,
                    ..Bucket::sample(t, v)
                },
                Mode::Replace,
            );
        }
        let r = query(&[&f], 2400, 3600, 1, 3600);
        assert_eq!((r.start, r.end, r.interval), (2400, 3600, 1200));
        assert_eq!(r.buckets.len(), 1);
        let b = r.buckets[0];
        // Slots 3000 and 3300 are zero-filled (count 1 each); 62 < 120, so min and max are
        // combined with 0 (no change here), then the count is forced to 120.
        assert_eq!(
            (b.time, b.count, b.sum, b.min, b.max),
            (2400, 120, 2.0, -2.0, 4.0)
        );
        // A finest (COLLATED) file counts 1 per slot; a valid empty slot (count 0) leaves
        // the group short, so max is combined with 0.
        let mut f = Img::new(10, 2, FLAG_COLLATED, 990, 0);
        f.put(Bucket::empty_at(990), Mode::Replace);
        for t in [1000, 1010] {
            let mut b = Bucket::empty_at(t);
            b.collated_update(-5.0, t);
            f.put(b, Mode::Replace);
        }
        let r = query(&[&f], 990, 1020, 1, 1020);
        assert_eq!((r.start, r.end, r.interval), (990, 1020, 30));
        let b = r.buckets[0];
        assert_eq!(
            (b.time, b.count, b.sum, b.min, b.max),
            (990, 3, -10.0, -5.0, 0.0)
        );
    }

    #[test]
    fn no_time_zero_bucket() {
        // The first reduced group is empty: the reference would emit {"time":0}.
        let mut g = Img::new(10, 2, 0, 0, 0);
        for t in [1250, 1260, 1390] {
            g.put(Bucket::sample(t, 1.0), Mode::Merge);
        }
        let r = query(&[&g], 1000, 1400, 2, 1400);
        assert_eq!(r.interval, 300);
        let rows: Vec<(i64, i32)> = r.buckets.iter().map(|b| (b.time, b.count)).collect();
        assert_eq!(rows, [(1200, 3)]);
        assert!(r.buckets.iter().all(|b| b.time != 0));
    }

    #[test]
    fn trailing_choice() {
        let mut g = Img::new(10, 2, 0, 0, 0);
        g.put(Bucket::sample(100000, 1.0), Mode::Merge);
        let mut t1 = Img::new(300, 8, FLAG_TRAILING, 0, 0);
        t1.h.season = 3600;
        t1.put(Bucket::sample(100000, 2.0), Mode::Merge);
        let mut t2 = Img::new(600, 8, FLAG_TRAILING, 0, 0);
        t2.h.season = 86400;
        t2.put(Bucket::sample(100000, 3.0), Mode::Merge);
        let hs = [&g.h, &t1.h, &t2.h];
        let p = |start| QueryParams {
            start,
            end: 100500,
            max_samples: 0,
            trailing: true,
        };
        let now = 100500;
        let pl = plan(&hs, &p(99000), now);
        assert_eq!((pl.file, pl.interval, pl.start), (Some(1), 300, 99000));
        let pl = plan(&hs, &p(90000), now);
        assert_eq!((pl.file, pl.interval, pl.start), (Some(2), 600, 90000));
        let pl = plan(&hs, &p(1000), now);
        assert_eq!((pl.file, pl.interval), (None, 600));
        // A start in the future finds no file (unsigned comparison in the reference).
        let future = QueryParams {
            start: 100600,
            end: 101000,
            max_samples: 0,
            trailing: true,
        };
        assert_eq!(plan(&hs, &future, now).file, None);
        // No trailing file at all: interval 0 → normalized with 10.
        let pl = plan(&[&g.h], &p(99000), now);
        assert_eq!((pl.file, pl.interval), (None, 10));
        let r = query_images(&hs, &[&g.bytes, &t1.bytes, &t2.bytes], &p(99000), now);
        assert_eq!(r.buckets.iter().map(|b| b.sum).collect::<Vec<_>>(), [2.0]);
    }

    #[test]
    fn defaults_and_bad_range() {
        let g = Img::new(10, 2, 0, 0, 0);
        let p = |start, end| QueryParams {
            start,
            end,
            max_samples: 0,
            trailing: false,
        };
        let pl = plan(&[&g.h], &p(0, 0), 5000);
        assert_eq!((pl.start, pl.end), (4100, 5000));
        let pl = plan(&[&g.h], &p(0, 3000), 5000);
        assert_eq!((pl.start, pl.end), (2100, 3000));
        let pl = plan(&[&g.h], &p(3000, 0), 5000);
        assert_eq!((pl.start, pl.end), (3000, 3900));
        let pl = plan(&[&g.h], &p(3000, 2000), 5000);
        assert_eq!(
            (pl.file, pl.start, pl.end, pl.interval),
            (None, 3000, 2000, 0)
        );
        assert_eq!(plan(&[], &p(3000, 4000), 5000).interval, 10);
    }

    // ---- golden case "basic" (reference daemon output) ----

    fn golden_dir() -> Option<std::path::PathBuf> {
        let d = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/golden/basic");
        if d.is_dir() {
            Some(d)
        } else {
            eprintln!("golden case not found at {}; skipped", d.display());
            None
        }
    }

    fn load(dir: &std::path::Path, name: &str) -> (Header, Vec<u8>) {
        let bytes = std::fs::read(dir.join("files").join(format!("{name}.bin"))).unwrap();
        let h = Header::parse_checked(&bytes, bytes.len() as u64).unwrap();
        (h, bytes)
    }

    fn golden_query(
        dir: &std::path::Path,
        counter: &str,
        start: i64,
        end: i64,
        n: i64,
    ) -> QueryResult {
        let f10 = load(dir, &format!("{counter}.10s"));
        let f5m = load(dir, &format!("{counter}.5m"));
        let p = QueryParams {
            start,
            end,
            max_samples: n,
            trailing: false,
        };
        query_images(&[&f10.0, &f5m.0], &[&f10.1, &f5m.1], &p, 1600002700)
    }

    fn get_json(r: &QueryResult) -> String {
        let mut s = String::from("{\"buckets\":[");
        for (i, b) in r.buckets.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            write!(
                s,
                "{{\"data\":{{\"avg\":{},\"count\":{},\"max\":{},\"min\":{},\"sdev\":{},\"sum\":{},\"sumsq\":{}}},\"time\":{}}}",
                g17(b.avg() as f64),
                b.count,
                g17(b.max_f32() as f64),
                g17(b.min_f32() as f64),
                g17(b.sdev() as f64),
                g17(b.sum_f32() as f64),
                g17(b.sum_sq_f32() as f64),
                b.time
            )
            .unwrap();
        }
        writeln!(
            s,
            "],\"end\":{},\"interval\":{},\"start\":{}}}",
            r.end, r.interval, r.start
        )
        .unwrap();
        s
    }

    #[test]
    fn golden_basic_get_json() {
        let Some(dir) = golden_dir() else { return };
        let body = |n: u32| std::fs::read_to_string(dir.join(format!("http/{n}.body"))).unwrap();
        let r = golden_query(&dir, "web.latency.server1", 1600000000, 1600002700, 30);
        assert_eq!(get_json(&r), body(1));
        let r = golden_query(&dir, "logins", 1600000000, 1600002700, 10);
        assert_eq!(get_json(&r), body(2));
    }

    #[test]
    fn golden_basic_get_csv() {
        let Some(dir) = golden_dir() else { return };
        let r = golden_query(&dir, "queue.depth.dc.east", 1600000000, 1600002700, 4);
        let mut s = String::from("ISO Time,Unix Timestamp,Sample Count,Minimum,Maximum,Sum,Sum Squared,Average,Standard Deviation\r\n");
        for b in &r.buckets {
            write!(
                s,
                "{},{},{},{},{},{},{},{},{}\r\n",
                iso8601(b.time),
                b.time,
                b.count,
                g6(b.min_f32() as f64),
                g6(b.max_f32() as f64),
                g6(b.sum_f32() as f64),
                g6(b.sum_sq_f32() as f64),
                g6(b.avg() as f64),
                g6(b.sdev() as f64)
            )
            .unwrap();
        }
        assert_eq!(s, std::fs::read_to_string(dir.join("http/3.body")).unwrap());
    }

    #[test]
    fn golden_basic_post() {
        let Some(dir) = golden_dir() else { return };
        let body = std::fs::read_to_string(dir.join("http/post.body")).unwrap();
        for counter in ["web.latency.server1", "logins"] {
            let r = golden_query(&dir, counter, 1600000000, 1600002700, 5);
            let mut s = format!(
                "\"{counter}\":{{\"start\":{},\"end\":{},\"interval\":{},\"data\":[",
                r.start, r.end, r.interval
            );
            for (i, b) in r.buckets.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                write!(
                    s,
                    "{{\"time\":{},\"count\":{},\"min\":{},\"max\":{},\"sum\":{},\"sumsq\":{},\"avg\":{},\"sdev\":{}}}",
                    b.time,
                    b.count,
                    g6(b.min_f32() as f64),
                    g6(b.max_f32() as f64),
                    g6(b.sum_f32() as f64),
                    g6(b.sum_sq_f32() as f64),
                    g6(b.avg() as f64),
                    g6(b.sdev() as f64)
                )
                .unwrap();
            }
            s.push_str("]}");
            assert!(body.contains(&s), "{counter}: {s}\nnot in\n{body}");
        }
    }
}
