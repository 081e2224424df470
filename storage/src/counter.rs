//! Per-counter aggregation: which buckets a sample writes into which retention file
//! (docs/file-format.md, "How buckets are written": gauges, event counters and their
//! collation window).
//!
//! The logic here is pure: it turns samples and flush ticks into an ordered list of
//! `(retention file index, bucket)` AGGREGATE writes, which the store applies in order.
//! Issuing exactly the reference's sequence of writes is what makes the headers'
//! cumulative fields come out identical.

use crate::format::Bucket;

/// Collation window length (the reference's `BUCKETS_PER_COLLATION_WINDOW`).
pub const WINDOW: usize = 5;

/// A sample as it reaches a counter: a single value or a pre-aggregated bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub time: i64,
    pub sum: f64,
    pub sum_sq: f64,
    pub min: f64,
    pub max: f64,
    pub count: u64,
}

impl Sample {
    pub fn value(time: i64, v: f64) -> Sample {
        Sample {
            time,
            sum: v,
            sum_sq: v * v,
            min: v,
            max: v,
            count: 1,
        }
    }
}

/// Why a sample was not recorded (each maps to an `istatd.counter.*` counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    FromFuture,
    FromPast,
    /// Zero count or inconsistent min/avg/max (`counter.rejected`).
    Rejected,
}

/// Writes produced by one step: `(file index, bucket)`, applied in order with AGGREGATE.
pub type Writes = Vec<(usize, Bucket)>;

#[derive(Debug, Clone, Copy)]
struct Slot {
    bucket: Bucket,
    writes: u32,
    time: i64,
    /// The rate the slot started from (a replicated bucket; 0 otherwise).
    base: f64,
    /// Seed mode: the slot's disk bucket was looked at (a slot opened by a shift was
    /// not: it may cover a replicated bucket).
    seeded: bool,
}

impl Slot {
    const UNSET: Slot = Slot {
        bucket: Bucket::EMPTY,
        writes: 0,
        time: 0,
        base: 0.0,
        seeded: false,
    };
    fn at(t: i64) -> Slot {
        Slot {
            bucket: Bucket::empty_at(t),
            writes: 0,
            time: t,
            base: 0.0,
            seeded: false,
        }
    }

    /// Start from a bucket a file already holds at this slot's time.
    fn seed(&mut self, existing: Option<&Bucket>) {
        if let Some(b) = existing.filter(|b| b.time == self.time && b.count > 0) {
            self.bucket = *b;
            self.base = b.sum;
        }
        self.seeded = true;
    }
}

/// What last moved a window forward. It decides what becomes of an event older than
/// the window ([`Collation::takes_late`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mover {
    /// Time: nothing yet, a periodic flush or a close.
    Clock,
    /// A sample from this source (a connection of the stat port, see
    /// [`Store::record_from`](crate::store::Store::record_from)) opened or shifted it.
    Source(u32),
    /// An admin `flush` moved it five slots ahead.
    AdminFlush,
}

/// The 5-bucket collation window of an event counter (memory only).
///
/// In seed mode (a promoted replica, whose files hold the former master's buckets),
/// a window never writes over a bucket it did not start from: slots start from the
/// finest file's buckets (see [`Collation::seeded`], [`Collation::record_seeded`]), a
/// slot without local events is not written at all, and the coarser files get only
/// what local events added.
#[derive(Debug, Clone)]
pub struct Collation {
    interval: i64,
    slots: [Slot; WINDOW],
    seed_mode: bool,
    moved_by: Mover,
}

impl Collation {
    pub fn new(finest_interval: i64) -> Collation {
        Collation {
            interval: finest_interval.max(1),
            slots: [Slot::UNSET; WINDOW],
            seed_mode: false,
            moved_by: Mover::Clock,
        }
    }

    /// A window over buckets a file already holds (a promoted replica's): the window
    /// that the first sample at `t` opens starts from the buckets `existing` has at its
    /// times instead of empty ones, so that shifting it writes them back with what was
    /// added, never an empty bucket over a replicated one.
    pub fn seeded(finest_interval: i64, t: i64, existing: &[Bucket]) -> Collation {
        let mut c = Collation::new(finest_interval);
        c.seed_mode = true;
        let f = c.interval;
        let t = t - t.rem_euclid(f);
        for k in 0..WINDOW {
            let mut slot = Slot::at(t - k as i64 * f);
            slot.seed(existing.iter().find(|b| b.time == slot.time));
            c.slots[WINDOW - 1 - k] = slot;
        }
        c
    }

    /// Seed mode: whether a sample at `t` lands in a slot whose disk bucket has not been
    /// looked at (the caller then reads it and passes it to
    /// [`Collation::record_seeded`]).
    pub fn wants_seed(&self, t: i64) -> bool {
        if !self.seed_mode {
            return false;
        }
        let i = self.find(t - t.rem_euclid(self.interval));
        i == WINDOW || !self.slots[i].seeded
    }

    /// [`Collation::record`], the sample's slot starting from `existing` (the finest
    /// file's bucket at the sample's time) when it was not seeded yet.
    pub fn record_seeded(
        &mut self,
        t: i64,
        v: f64,
        now: i64,
        files: usize,
        existing: Option<&Bucket>,
        source: u32,
    ) -> Result<Writes, Reject> {
        self.record_inner(t, v, now, files, existing, source)
    }

    /// Whether the window has started (its first sample came).
    pub fn started(&self) -> bool {
        self.slots[0].time != 0
    }

    /// Times of the window buckets (0 when not started).
    pub fn times(&self) -> [i64; WINDOW] {
        self.slots.map(|s| s.time)
    }

    /// Whether an event at `t` from `source` is late rather than from the past: older
    /// than the window, which something else than its own stream moved past it.
    ///
    /// The reference refuses every event older than the window (from_past), and its
    /// own golden files show it for samples of one connection. Samples of different
    /// connections have no order, though: back-to-back connections of one client are
    /// often read by different shards, and the later connection's samples can reach
    /// the counter first. And an admin `flush` moves every window five slots ahead,
    /// so the reference refuses the next samples of the current time. Such an event
    /// is merged into the stored buckets ([`Collation::record_late`]). An event whose
    /// own source moved the window, or older than where the clock moved it, stays
    /// from the past.
    pub fn takes_late(&self, t: i64, source: u32) -> bool {
        self.started()
            && t < self.slots[0].time
            && match self.moved_by {
                Mover::Clock => false,
                Mover::Source(s) => s != source,
                Mover::AdminFlush => true,
            }
    }

    /// The writes that merge a late event (see [`Collation::takes_late`]) into what the
    /// files already hold, where the reference rejects it as from_past.
    ///
    /// `stored` is the finest file's bucket at the event's time. The finest file is
    /// collated (a write replaces): it gets `stored` plus the event's rate. A bucket
    /// older than the window has already gone to the coarser files once, as one
    /// rate, so they get only the difference: the added rate in `sum`, the change of
    /// the square in `sum_sq`, and the new rate as `min` and `max`. Their count is the
    /// file's fixed count whatever is merged. With nothing stored at the event's time
    /// that is exactly what a window holding only this event would have written.
    /// Otherwise the maximum is right and the minimum keeps its value, which is the
    /// slot's old rate when that was the coarse bucket's minimum (the other slots'
    /// rates are not known here).
    pub fn record_late(&self, t: i64, v: f64, files: usize, stored: Option<&Bucket>) -> Writes {
        let f = self.interval;
        let bt = t - t.rem_euclid(f);
        let old = stored.filter(|b| b.time == bt && b.count > 0).copied();
        let mut finest = old.unwrap_or(Bucket::empty_at(bt));
        finest.collated_update(v / f as f64, bt);
        let mut writes = Writes::with_capacity(files);
        writes.push((0, finest));
        let (o, n) = (old.map_or(0.0, |b| b.sum), finest.sum);
        let delta = Bucket {
            time: bt,
            sum: n - o,
            sum_sq: (n * n - o * o) as f32,
            min: n as f32,
            max: n as f32,
            count: 1,
        };
        for file in 1..files {
            writes.push((file, delta));
        }
        writes
    }

    /// Record an event sample into a counter with `files` retention files.
    pub fn record(&mut self, t: i64, v: f64, now: i64, files: usize) -> Result<Writes, Reject> {
        self.record_inner(t, v, now, files, None, 0)
    }

    fn record_inner(
        &mut self,
        t: i64,
        v: f64,
        now: i64,
        files: usize,
        existing: Option<&Bucket>,
        source: u32,
    ) -> Result<Writes, Reject> {
        let f = self.interval;
        if t > now + f {
            return Err(Reject::FromFuture);
        }
        if t < self.slots[0].time {
            return Err(Reject::FromPast);
        }
        let t = t - t % f;
        let mut writes = Writes::new();
        let mut i = self.find(t);
        if i == WINDOW {
            if self.slots[0].time == 0 {
                for k in 0..WINDOW {
                    self.slots[WINDOW - 1 - k] = Slot::at(t - k as i64 * f);
                }
            } else {
                self.maybe_shift(t, files, &mut writes);
            }
            self.moved_by = Mover::Source(source);
            i = self.find(t);
        }
        if i == WINDOW {
            // Cannot happen for t >= slots[0].time after a shift; be safe.
            return Err(Reject::FromPast);
        }
        let seed_mode = self.seed_mode;
        let slot = &mut self.slots[i];
        if seed_mode && !slot.seeded {
            slot.seed(existing);
        }
        slot.bucket.collated_update(v / f as f64, t);
        slot.writes += 1;
        if slot.writes & (slot.writes - 1) == 0 {
            writes.push((0, slot.bucket));
        }
        Ok(writes)
    }

    fn find(&self, t: i64) -> usize {
        self.slots
            .iter()
            .position(|s| s.time <= t && t < s.time + self.interval)
            .unwrap_or(WINDOW)
    }

    fn maybe_shift(&mut self, t: i64, files: usize, writes: &mut Writes) {
        while t >= self.slots[WINDOW - 1].time + self.interval {
            if !self.shift(files, writes) {
                break;
            }
        }
    }

    fn shift(&mut self, files: usize, writes: &mut Writes) -> bool {
        if self.slots[0].time == 0 {
            return false;
        }
        for s in &self.slots {
            if !self.seed_mode || s.writes > 0 {
                writes.push((0, s.bucket));
            }
        }
        let out = &self.slots[0];
        if !self.seed_mode {
            for file in 1..files {
                writes.push((file, out.bucket));
            }
        } else if out.writes > 0 {
            // Only what local events added: the coarser files already hold the rest.
            let mut local = out.bucket;
            local.sum -= out.base;
            local.min = local.sum as f32;
            local.max = local.min;
            local.sum_sq = (local.sum * local.sum) as f32;
            for file in 1..files {
                writes.push((file, local));
            }
        }
        self.slots.copy_within(1.., 0);
        let top = self.slots[WINDOW - 2].time + self.interval;
        self.slots[WINDOW - 1] = Slot::at(top);
        true
    }

    /// Periodic flush: shift until the top bucket is past `now + 2F`.
    pub fn flush(&mut self, now: i64, files: usize) -> Writes {
        let mut w = Writes::new();
        let top = self.slots[WINDOW - 1].time;
        self.maybe_shift(now + self.interval * (WINDOW as i64 / 2), files, &mut w);
        if self.slots[WINDOW - 1].time != top {
            self.moved_by = Mover::Clock;
        }
        w
    }

    /// Admin `flush`: five more shifts, then the periodic rule.
    pub fn force_flush(&mut self, now: i64, files: usize) -> Writes {
        let mut w = Writes::new();
        let target = self.slots[WINDOW - 1].time + self.interval * WINDOW as i64;
        self.maybe_shift(target, files, &mut w);
        w.extend(self.flush(now, files));
        if self.started() {
            self.moved_by = Mover::AdminFlush;
        }
        w
    }

    /// Counter close (the reference's destructor).
    pub fn close(&mut self, now: i64, files: usize) -> Writes {
        let mut w = Writes::new();
        self.moved_by = Mover::Clock;
        if now - self.slots[WINDOW - 1].time > 60 * 5 {
            let target = self.slots[WINDOW - 1].time + self.interval * WINDOW as i64;
            self.maybe_shift(target, files, &mut w);
        } else {
            self.maybe_shift(now + self.interval * (WINDOW as i64 / 2), files, &mut w);
        }
        w
    }
}

/// Gauge acceptance (daemon/StatCounter.cpp `record`, non-collated branch): the bucket
/// written into every retention file, or why it was rejected.
pub fn gauge_bucket(s: &Sample, now: i64) -> Result<Bucket, Reject> {
    if s.time > now + 60 {
        return Err(Reject::FromFuture);
    }
    if s.count == 0 {
        return Err(Reject::Rejected);
    }
    let avg = s.sum / s.count as f64;
    let eps = |x: f64| x.abs() * 0.0001;
    if s.min > s.max + eps(s.max) || avg + eps(avg) < s.min || avg > s.max + eps(s.max) {
        return Err(Reject::Rejected);
    }
    Ok(Bucket {
        time: s.time,
        sum: s.sum,
        sum_sq: s.sum_sq as f32,
        min: s.min as f32,
        max: s.max as f32,
        count: s.count as i32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sample_opens_window_and_writes_once() {
        let mut c = Collation::new(10);
        let w = c.record(1600000000, 2.0, 1600002700, 2).unwrap();
        assert_eq!(
            c.times(),
            [1599999960, 1599999970, 1599999980, 1599999990, 1600000000]
        );
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].1.sum, 0.2);
        // Second write to the same bucket (writes = 2, a power of two) writes again;
        // the third does not.
        assert_eq!(c.record(1600000001, 1.0, 1600002700, 2).unwrap().len(), 1);
        assert_eq!(c.record(1600000002, 1.0, 1600002700, 2).unwrap().len(), 0);
        assert_eq!(
            c.record(1599999950, 1.0, 1600002700, 2),
            Err(Reject::FromPast)
        );
        assert_eq!(
            c.record(1600002711, 1.0, 1600002700, 2),
            Err(Reject::FromFuture)
        );
    }

    #[test]
    fn late_events_merge_into_the_stored_bucket() {
        let mut c = Collation::new(10);
        c.record_seeded(160, 10.0, 1000, 3, None, 7).unwrap();
        // Older than the window, which source 7 moved: late for any other source.
        assert!(c.takes_late(119, 8));
        assert!(
            !c.takes_late(119, 7),
            "its own stream's order: from the past"
        );
        assert!(!c.takes_late(120, 8), "in the window");
        assert!(
            !Collation::new(10).takes_late(0, 8),
            "a window that has not started"
        );
        // Nothing stored at 100: what a window with only this event writes.
        let w = c.record_late(105, 20.0, 3, None);
        let first = Bucket {
            time: 100,
            sum: 2.0,
            sum_sq: 4.0,
            min: 2.0,
            max: 2.0,
            count: 1,
        };
        assert_eq!(w, vec![(0, first), (1, first), (2, first)]);
        // A stored bucket of another time (an older lap) counts as nothing.
        let lap = Bucket { time: 40, ..first };
        assert_eq!(c.record_late(105, 20.0, 3, Some(&lap)), w);
        // Stored rate 2 at 100, plus 3: the finest file gets 5, the coarser ones the
        // difference.
        let w = c.record_late(101, 30.0, 3, Some(&first));
        assert_eq!(w[0].1.sum, 5.0);
        assert_eq!(w[0].1.count, 1);
        let delta = w[1].1;
        assert_eq!(
            (delta.sum, delta.sum_sq, delta.min, delta.max),
            (3.0, 21.0, 5.0, 5.0)
        );
        assert_eq!(w[2].1, delta);
        // Merged into a coarse bucket holding the old rate, that is the new rate.
        let mut coarse = first;
        coarse.merge(&delta);
        assert_eq!((coarse.sum, coarse.sum_sq, coarse.max), (5.0, 25.0, 5.0));
        // The window itself is untouched.
        assert_eq!(c.times(), [120, 130, 140, 150, 160]);
    }

    #[test]
    fn what_moved_the_window_decides_late_or_from_past() {
        let mut c = Collation::new(10);
        c.record_seeded(100, 1.0, 100, 2, None, 1).unwrap();
        c.record_seeded(200, 1.0, 200, 2, None, 2).unwrap();
        assert!(c.takes_late(100, 1), "moved by source 2");
        assert!(!c.takes_late(100, 2));
        // A periodic flush that shifts: the clock moved it, nothing is late.
        c.flush(300, 2);
        assert!(!c.takes_late(250, 1));
        // A periodic flush with nothing to shift leaves the mover.
        c.record_seeded(330, 1.0, 330, 2, None, 3).unwrap();
        c.flush(300, 2);
        assert!(c.takes_late(250, 1));
        // An admin flush moves it five slots ahead: the next samples of now are late,
        // whoever sends them, until a sample or the clock moves it again.
        c.force_flush(300, 2);
        assert!(c.takes_late(300, 3));
        c.flush(300, 2);
        assert!(c.takes_late(300, 3));
        c.close(300, 2);
        assert!(!c.takes_late(300, 3));
    }

    #[test]
    fn shift_writes_window_then_coarse() {
        let mut c = Collation::new(10);
        c.record(100, 10.0, 1000, 3).unwrap();
        let w = c.record(110, 10.0, 1000, 3).unwrap();
        // One shift: 5 finest writes, oldest to each of 2 coarser files, then the
        // first collation of the new bucket.
        assert_eq!(
            w.iter().map(|x| x.0).collect::<Vec<_>>(),
            vec![0, 0, 0, 0, 0, 1, 2, 0]
        );
        assert_eq!(w[5].1.time, 60);
        assert_eq!(c.times(), [70, 80, 90, 100, 110]);
        let w = c.flush(110, 3);
        // Shift until top + F > now + 2F: top becomes 130.
        assert_eq!(c.times()[4], 130);
        assert_eq!(w.len(), 2 * 7);
        let w = c.force_flush(110, 3);
        assert_eq!(c.times()[4], 180);
        assert_eq!(w.len(), 5 * 7);
    }

    #[test]
    fn gauge_rules() {
        let now = 1000;
        assert!(gauge_bucket(&Sample::value(1060, 1.0), now).is_ok());
        assert_eq!(
            gauge_bucket(&Sample::value(1061, 1.0), now),
            Err(Reject::FromFuture)
        );
        let bad = Sample {
            time: 1,
            sum: 10.0,
            sum_sq: 100.0,
            min: 20.0,
            max: 30.0,
            count: 1,
        };
        assert_eq!(gauge_bucket(&bad, now), Err(Reject::Rejected));
        let zero = Sample {
            count: 0,
            ..Sample::value(1, 1.0)
        };
        assert_eq!(gauge_bucket(&zero, now), Err(Reject::Rejected));
        let b = gauge_bucket(&Sample::value(5, 0.1), now).unwrap();
        assert_eq!(
            (b.sum, b.sum_sq, b.min),
            (0.1, (0.1f64 * 0.1) as f32, 0.1f32)
        );
    }
}
