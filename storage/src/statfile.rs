//! The write and read logic of one counter file, over slots someone else holds.
//!
//! [`FileState`] is what the store keeps in memory per open file: the header fields
//! and the trailing window. The bucket pages themselves live in the store's page cache
//! (or, for tools and tests, in a byte image); they are reached through [`Slots`]. The
//! caller makes the pages named by the `pages_for_*` methods resident first, so every
//! method here is synchronous and pure.

use crate::format::{
    bucket_index, bucket_time, slot_of, Bucket, Header, BUCKETS_PER_PAGE, BUCKET_SIZE,
    FLAG_COLLATED, FLAG_COUNTER_AGGREGATE, FLAG_TRAILING,
};

/// How a bucket is applied to its slot (`RawUpdateMode`, storage.md §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Aggregate,
    Overwrite,
    FillEmpty,
    OnlyIfEmpty,
}

/// Access to the bucket slots of one file. The pages holding the slots must be
/// resident; implementations may panic otherwise (a caller bug, not bad input).
pub trait Slots {
    fn get(&self, slot: i64) -> Bucket;
    fn put(&mut self, slot: i64, b: &Bucket);
}

/// A whole file image in memory (tools, tests).
pub struct ImageSlots<'a> {
    pub image: &'a mut [u8],
    pub page_size: i64,
}

impl Slots for ImageSlots<'_> {
    fn get(&self, slot: i64) -> Bucket {
        let off = crate::format::slot_offset(slot, self.page_size) as usize;
        Bucket::from_bytes(&self.image[off..off + BUCKET_SIZE])
    }
    fn put(&mut self, slot: i64, b: &Bucket) {
        let off = crate::format::slot_offset(slot, self.page_size) as usize;
        b.write_to(&mut self.image[off..off + BUCKET_SIZE]);
    }
}

/// Entries in a trailing file's in-memory window (storage.md §3.9).
const TRAILING_WINDOW: usize = 3;

/// In-memory state of one open counter file.
#[derive(Debug, Clone)]
pub struct FileState {
    pub header: Header,
    /// Trailing files only: buckets not yet blended into the ring.
    trailing: Option<Box<[Bucket; TRAILING_WINDOW]>>,
    /// Whether index 0 holds a bucket written by this process or found at open
    /// (storage.md §8 `newest_bucket_time`, the `last_time` = 0 quirk).
    pub index0_valid: bool,
    /// Lowest bucket time written since the last flush snapshot; `i64::MAX` = none.
    pub dirty_low: i64,
}

/// Counts from [`FileState::put_overwrite`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PutReport {
    pub written: u32,
    pub rejected: u32,
    pub too_old: u32,
}

impl FileState {
    pub fn new(header: Header) -> FileState {
        let trailing = if header.flags & FLAG_TRAILING != 0 {
            Some(Box::new([Bucket::EMPTY; TRAILING_WINDOW]))
        } else {
            None
        };
        FileState {
            header,
            trailing,
            index0_valid: false,
            dirty_low: i64::MAX,
        }
    }

    pub fn interval(&self) -> i64 {
        self.header.cfg_interval as i64
    }
    pub fn zero_time(&self) -> i64 {
        self.header.file_create_time
    }
    pub fn capacity(&self) -> i64 {
        self.header.capacity()
    }
    pub fn is_trailing(&self) -> bool {
        self.header.flags & FLAG_TRAILING != 0
    }
    pub fn index_of(&self, t: i64) -> i64 {
        bucket_index(t, self.zero_time(), self.interval())
    }
    pub fn time_of(&self, index: i64) -> i64 {
        self.zero_time()
            .saturating_add(index.saturating_mul(self.interval()))
    }
    pub fn slot_of_index(&self, index: i64) -> i64 {
        slot_of(index, self.capacity())
    }
    /// Bucket page (0-based, not counting the header page) holding a slot.
    pub fn page_of_slot(&self, slot: i64) -> u32 {
        (slot / (self.header.page_size / BUCKET_SIZE as i64)) as u32
    }
    fn page_of_index(&self, index: i64) -> u32 {
        self.page_of_slot(self.slot_of_index(index))
    }
    /// Oldest index the ring can hold.
    pub fn window_low(&self) -> i64 {
        self.header.last_bucket - self.capacity() + 1
    }

    /// `newest_bucket_time` of storage.md §8, without I/O.
    pub fn newest_bucket_time(&self) -> i64 {
        if self.header.last_bucket > 0 {
            self.time_of(self.header.last_bucket)
        } else if self.header.last_bucket == 0 && self.index0_valid {
            self.zero_time()
        } else {
            0
        }
    }

    /// `oldest_kept_time` of storage.md §8.
    pub fn oldest_kept_time(&self) -> i64 {
        self.time_of(self.window_low())
    }

    /// Pages that [`FileState::write`] of a bucket at time `t` may touch.
    pub fn pages_for_write(&self, t: i64, out: &mut Vec<u32>) {
        let ix = self.index_of(t);
        match &self.trailing {
            None => out.push(self.page_of_index(ix)),
            Some(w) => {
                let bt = bucket_time(t, self.interval());
                if !w.iter().any(|b| b.time == bt) {
                    self.pages_for_trailing_flush(out);
                }
            }
        }
    }

    /// Pages that pushing out the oldest trailing window entry touches.
    pub fn pages_for_trailing_flush(&self, out: &mut Vec<u32>) {
        if let Some(w) = &self.trailing {
            if w[0].time > 0 {
                let ix = self.index_of(w[0].time);
                out.push(self.page_of_index(ix));
                let oix = self.index_of(w[0].time - self.header.season as i64);
                if self.in_window(oix) {
                    out.push(self.page_of_index(oix));
                }
            }
        }
    }

    fn in_window(&self, ix: i64) -> bool {
        ix > self.header.last_bucket - self.capacity() && ix <= self.header.last_bucket
    }

    fn note_written(&mut self, ix: i64, bt: i64) {
        if ix == 0 {
            self.index0_valid = true;
        }
        self.dirty_low = self.dirty_low.min(bt);
    }

    /// `rawUpdateBucket` (storage.md §3.1, §2.6). Returns false when the bucket is older
    /// than the ring's window (nothing changed then).
    pub fn write(&mut self, slots: &mut dyn Slots, data: &Bucket, mode: Mode) -> bool {
        let interval = self.interval();
        let ix = self.index_of(data.time);
        let bt = bucket_time(data.time, interval);
        let cap = self.capacity();
        let h = &mut self.header;
        if ix > h.last_bucket {
            h.last_bucket = ix;
            h.last_time = bt;
            if h.first_bucket + cap <= h.last_bucket {
                h.first_bucket = h.last_bucket - cap + 1;
            }
        }
        if ix <= h.last_bucket - cap {
            return false;
        }
        if ix < h.first_bucket {
            h.first_bucket = ix;
        }
        let flags = h.flags;
        let fixed_count = h.fixed_count;

        // The target: a trailing window entry, or the ring slot (reset when stale).
        let mut target;
        let slot = self.slot_of_index(ix);
        let trailing_pos = if self.trailing.is_some() {
            let pos = self.trailing_entry(slots, bt);
            target = self.trailing.as_ref().unwrap()[pos];
            Some(pos)
        } else {
            target = slots.get(slot);
            if target.time != bt {
                target = Bucket::EMPTY;
            }
            None
        };

        let applied = match mode {
            Mode::OnlyIfEmpty => {
                if target.count == 0 {
                    target = *data;
                    true
                } else {
                    false
                }
            }
            _ if flags & FLAG_COLLATED != 0
                || mode == Mode::Overwrite
                || (mode == Mode::FillEmpty && target.count == 0) =>
            {
                target = *data;
                true
            }
            _ => {
                target.merge(&Bucket { time: bt, ..*data });
                if flags & FLAG_COUNTER_AGGREGATE != 0 {
                    target.count = fixed_count as i32;
                }
                true
            }
        };
        match trailing_pos {
            Some(pos) => self.trailing.as_mut().unwrap()[pos] = target,
            None => {
                slots.put(slot, &target);
                self.note_written(ix, bt);
            }
        }
        if applied {
            let h = &mut self.header;
            // The reference adds the f32 read-back getters, not the stored f64 sum.
            h.cumulative_sum += data.sum_f32() as f64;
            h.cumulative_sum_sq += data.sum_sq_f32() as f64;
            h.cumulative_count += data.count as i64;
        }
        true
    }

    /// `getTrailingBucket`: the window entry for `bt`, pushing out the oldest if needed.
    fn trailing_entry(&mut self, slots: &mut dyn Slots, bt: i64) -> usize {
        let w = self.trailing.as_ref().expect("trailing file");
        if let Some(pos) = w.iter().position(|b| b.time == bt) {
            return pos;
        }
        self.trailing_flush(slots);
        self.trailing.as_mut().unwrap()[TRAILING_WINDOW - 1] = Bucket::empty_at(bt);
        TRAILING_WINDOW - 1
    }

    /// `flushOneExpBucket`: blend the oldest trailing entry into the ring and shift the
    /// window. Runs at every flush of a trailing file (storage.md §3.9).
    pub fn trailing_flush(&mut self, slots: &mut dyn Slots) {
        let Some(w) = self.trailing.as_ref() else {
            return;
        };
        let eb0 = w[0];
        if eb0.time > 0 {
            let ix = self.index_of(eb0.time);
            let oix = self.index_of(eb0.time - self.header.season as i64);
            // Port S-4: a season-ago index outside the window has no bucket.
            let old = if self.in_window(oix) {
                slots.get(self.slot_of_index(oix))
            } else {
                Bucket::EMPTY
            };
            let wb = if old.time > 0 {
                let mut o = old;
                o.exp_update(&eb0, self.header.lambda);
                o
            } else {
                eb0
            };
            if self.in_window(ix) {
                slots.put(self.slot_of_index(ix), &wb);
                self.note_written(ix, eb0.time);
            }
        }
        let w = self.trailing.as_mut().unwrap();
        w.copy_within(1.., 0);
        w[TRAILING_WINDOW - 1] = Bucket::EMPTY;
    }

    /// Pages touched by [`FileState::put_overwrite`] of these buckets.
    pub fn pages_for_put(&self, buckets: &[Bucket], out: &mut Vec<u32>) {
        for b in buckets {
            out.push(self.page_of_index(self.index_of(b.time)));
        }
        out.sort_unstable();
        out.dedup();
    }

    /// `put_buckets_overwrite` (storage.md §8): replicated buckets stored verbatim.
    pub fn put_overwrite(&mut self, slots: &mut dyn Slots, buckets: &[Bucket]) -> PutReport {
        let mut r = PutReport::default();
        let interval = self.interval();
        for b in buckets {
            if (b.time - self.zero_time()).rem_euclid(interval) != 0 {
                r.rejected += 1;
                continue;
            }
            let ix = self.index_of(b.time);
            let cap = self.capacity();
            let h = &mut self.header;
            if ix <= h.last_bucket - cap {
                r.too_old += 1;
                continue;
            }
            if ix > h.last_bucket {
                h.last_bucket = ix;
                h.last_time = b.time;
                if h.first_bucket + cap <= h.last_bucket {
                    h.first_bucket = h.last_bucket - cap + 1;
                }
            }
            if ix < h.first_bucket {
                h.first_bucket = ix;
            }
            slots.put(self.slot_of_index(ix), b);
            self.note_written(ix, b.time);
            r.written += 1;
        }
        r
    }

    /// Pages covering `count` indices from `start_index` (clamped to the window).
    pub fn pages_for_range(&self, start_index: i64, count: i64, out: &mut Vec<u32>) {
        let (lo, hi) = self.clamp_range(start_index, count);
        let bpp = BUCKETS_PER_PAGE as i64;
        if hi < lo {
            return;
        }
        if hi - lo + 1 >= self.capacity() {
            out.extend(0..self.header.page_count as u32);
            return;
        }
        let mut ix = lo;
        while ix <= hi {
            let slot = self.slot_of_index(ix);
            out.push(self.page_of_slot(slot));
            ix += bpp - slot % bpp;
        }
        out.sort_unstable();
        out.dedup();
    }

    /// The index range `[lo, hi]` of a read, clamped to the window (Port S-5).
    pub fn clamp_range(&self, start_index: i64, count: i64) -> (i64, i64) {
        let count = count.clamp(0, self.capacity());
        let lo = start_index.max(self.window_low());
        let hi = (start_index + count - 1).min(self.header.last_bucket);
        (lo, hi)
    }

    /// `read_valid_buckets` (storage.md §8): buckets whose stored time equals the time
    /// of their index, from `start` to `end` inclusive, at most `max` kept and
    /// `max_slots` scanned. Returns the buckets and the time just past the last slot
    /// scanned.
    pub fn read_valid(
        &self,
        slots: &dyn Slots,
        start: i64,
        end: i64,
        max: usize,
        max_slots: usize,
    ) -> (Vec<Bucket>, i64) {
        let interval = self.interval();
        let z = self.zero_time();
        // Start rounded up to a multiple of the interval relative to Z.
        let mut ix = (start - z).div_euclid(interval);
        if self.time_of(ix) < start {
            ix += 1;
        }
        ix = ix.max(self.window_low());
        let last = self.index_of(end).min(self.header.last_bucket);
        let mut out = Vec::new();
        let mut scanned = 0usize;
        while ix <= last && out.len() < max && scanned < max_slots {
            let b = slots.get(self.slot_of_index(ix));
            if b.time == self.time_of(ix) && b.time != 0 {
                out.push(b);
            }
            scanned += 1;
            ix += 1;
        }
        (out, self.time_of(ix))
    }

    /// Pages that [`FileState::read_valid`] with these bounds may touch.
    pub fn pages_for_valid(&self, start: i64, end: i64, max_slots: usize, out: &mut Vec<u32>) {
        let first = self.index_of(start).max(self.window_low());
        let last = self.index_of(end).min(self.header.last_bucket);
        if last >= first {
            let count = (last - first + 1).min(max_slots as i64);
            self.pages_for_range(first, count, out);
        }
    }

    /// Whether index 0's slot holds a valid bucket (established when a file is opened).
    pub fn detect_index0(&mut self, slots: &dyn Slots) {
        if self.header.last_bucket - self.capacity() < 0 && self.header.last_bucket >= 0 {
            let b = slots.get(self.slot_of_index(0));
            self.index0_valid = b.time == self.zero_time() && b.time != 0;
        }
    }

    /// Page of index 0, for [`FileState::detect_index0`].
    pub fn page_of_index0(&self) -> u32 {
        self.page_of_index(0)
    }

    /// Take the lowest written time since the last snapshot (for the flush visit hook).
    pub fn take_dirty_low(&mut self) -> i64 {
        std::mem::replace(&mut self.dirty_low, i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{CreateParams, PAGE_SIZE};

    fn file(interval: i32, flags: i32, zero: i64) -> (FileState, Vec<u8>) {
        let h = Header::new_file(&CreateParams {
            interval,
            page_count: 2,
            flags,
            zero_time: zero,
            lambda: if flags & FLAG_TRAILING != 0 { 0.9 } else { 0.0 },
            season: if flags & FLAG_TRAILING != 0 { 600 } else { 0 },
            fixed_count: if flags & FLAG_COUNTER_AGGREGATE != 0 {
                30
            } else {
                0
            },
            unit: String::new(),
            name: "t".into(),
        });
        (FileState::new(h), vec![0u8; PAGE_SIZE * 3])
    }

    #[test]
    fn gauge_write_merges_and_tracks_window() {
        let (mut f, mut img) = file(10, 0, 1600000000);
        let mut s = ImageSlots {
            image: &mut img,
            page_size: 8192,
        };
        assert!(f.write(&mut s, &Bucket::sample(1600000003, 2.0), Mode::Aggregate));
        assert!(f.write(&mut s, &Bucket::sample(1600000007, 4.0), Mode::Aggregate));
        let b = s.get(0);
        assert_eq!(
            (b.time, b.sum, b.count, b.min, b.max),
            (1600000000, 6.0, 2, 2.0, 4.0)
        );
        assert_eq!(
            (f.header.last_bucket, f.header.last_time),
            (0, 0),
            "index 0 keeps last_time 0"
        );
        assert_eq!(f.newest_bucket_time(), 1600000000);
        assert!(f.write(
            &mut s,
            &Bucket::sample(1600000000 + 10 * 600, 1.0),
            Mode::Aggregate
        ));
        assert_eq!(f.header.last_bucket, 600);
        assert_eq!(f.header.first_bucket, 600 - 512 + 1);
        // Older than the window: refused, nothing changes.
        let before = f.header.clone();
        assert!(!f.write(
            &mut s,
            &Bucket::sample(1600000000 + 10 * 88, 1.0),
            Mode::Aggregate
        ));
        assert_eq!(f.header, before);
        // A stale slot is reset, not merged into.
        assert!(f.write(
            &mut s,
            &Bucket::sample(1600000000 + 10 * 512, 9.0),
            Mode::Aggregate
        ));
        let b = s.get(0);
        assert_eq!((b.sum, b.count), (9.0, 1));
        assert_eq!(f.header.cumulative_count, 4);
    }

    #[test]
    fn counter_aggregate_forces_count_and_collated_replaces() {
        let (mut f, mut img) = file(300, FLAG_COUNTER_AGGREGATE, 1600002600);
        let mut s = ImageSlots {
            image: &mut img,
            page_size: 8192,
        };
        f.write(&mut s, &Bucket::empty_at(1600002620), Mode::Aggregate);
        let mut b = Bucket::empty_at(1600002630);
        b.collated_update(0.5, 1600002630);
        f.write(&mut s, &b, Mode::Aggregate);
        let got = s.get(0);
        assert_eq!(
            (got.count, got.min, got.sum, got.time),
            (30, 0.0, 0.5, 1600002600)
        );

        let (mut c, mut img) = file(10, FLAG_COLLATED, 1600000000);
        let mut s = ImageSlots {
            image: &mut img,
            page_size: 8192,
        };
        c.write(&mut s, &Bucket::sample(1600000010, 3.0), Mode::Aggregate);
        c.write(&mut s, &Bucket::sample(1600000010, 5.0), Mode::Aggregate);
        assert_eq!(s.get(1).sum, 5.0);
        assert_eq!(c.header.cumulative_sum, 8.0);
    }

    #[test]
    fn trailing_window_blends_season_ago() {
        let (mut f, mut img) = file(10, FLAG_TRAILING, 1600000000);
        let mut s = ImageSlots {
            image: &mut img,
            page_size: 8192,
        };
        // Fill a bucket a season (600 s) before, then push it through the window.
        for k in 0..4 {
            f.write(
                &mut s,
                &Bucket::sample(1600000000 + 10 * k, 10.0),
                Mode::Aggregate,
            );
        }
        assert_eq!(
            s.get(0).sum,
            10.0,
            "first entry pushed out by the fourth time"
        );
        for k in 0..4 {
            f.write(
                &mut s,
                &Bucket::sample(1600000600 + 10 * k, 20.0),
                Mode::Aggregate,
            );
        }
        let b = s.get(60);
        assert!((b.sum - (10.0 * 0.9 + 20.0 * 0.1)).abs() < 1e-9);
        assert_eq!((b.count, b.time), (1, 1600000600));
    }

    #[test]
    fn put_overwrite_is_idempotent_and_never_regresses() {
        let (mut f, mut img) = file(10, 0, 1600000000);
        let buckets: Vec<Bucket> = (0..5)
            .map(|k| Bucket::sample(1600000000 + 10 * k, k as f64))
            .collect();
        let mut s = ImageSlots {
            image: &mut img,
            page_size: 8192,
        };
        let r = f.put_overwrite(&mut s, &buckets);
        assert_eq!(r.written, 5);
        let snapshot = img.clone();
        let h = f.header.clone();
        let mut s = ImageSlots {
            image: &mut img,
            page_size: 8192,
        };
        f.put_overwrite(&mut s, &buckets);
        assert_eq!(img, snapshot);
        assert_eq!(f.header, h);
        let mut s = ImageSlots {
            image: &mut img,
            page_size: 8192,
        };
        let r = f.put_overwrite(&mut s, &[Bucket::sample(1600000005, 1.0)]);
        assert_eq!(r.rejected, 1);
        f.put_overwrite(&mut s, &[Bucket::sample(1600000010, 7.0)]);
        assert_eq!(
            f.header.last_bucket, 4,
            "an older put never moves last_bucket back"
        );
        let (got, next) = f.read_valid(&s, 1600000000, 1600000040, 100, 100);
        assert_eq!(got.len(), 5);
        assert_eq!(got[1].sum, 7.0);
        assert_eq!(next, 1600000050);
    }
}
