//! The write and read logic of one counter file, over slots someone else holds.
//!
//! [`FileState`] is what the store keeps in memory per open file: the header fields,
//! the trailing window, and a small **overlay** of slots whose full value is known in
//! memory but not yet in a page. The bucket pages themselves live in the store's page
//! cache (or, for tools and tests, in a byte image) and are reached through [`Slots`].
//!
//! Why the overlay: with hundreds of thousands of files, the page holding a gauge's
//! current bucket is rarely in memory. A write only needs the old slot value when it
//! merges into it; a write that starts a new newest bucket (the common case for live
//! data), a replacement (event counters, replication) or a write into a slot already in
//! the overlay needs no read at all. So those go to the overlay, and pages are read only
//! when the overlay spills or the file is flushed: one read and one write per page per
//! flush cycle instead of one per sample.
//!
//! Every method is synchronous. A write that needs a page that is not resident returns
//! [`NeedPage`] **before changing anything**; the caller loads it and retries.

mod overlay;

use overlay::OverlaySlot;

use crate::format::{
    bucket_index, bucket_time, slot_of, Bucket, Header, BUCKETS_PER_PAGE, BUCKET_SIZE,
    FLAG_COLLATED, FLAG_COUNTER_AGGREGATE, FLAG_TRAILING,
};

/// How a bucket is applied to its slot (`RawUpdateMode`, docs/file-format.md, "Bucket
/// arithmetic").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Aggregate,
    Overwrite,
    FillEmpty,
    OnlyIfEmpty,
}

/// Access to the bucket slots of one file, page by page.
pub trait Slots {
    /// Whether the page holding this slot can be read and written now.
    fn has(&self, slot: i64) -> bool;
    /// The slot's bytes; only called when [`Slots::has`] is true.
    fn get(&self, slot: i64) -> Bucket;
    /// Store a slot; only called when [`Slots::has`] is true.
    fn put(&mut self, slot: i64, b: &Bucket);
    /// Store consecutive slots from `first`, all of one page; only called when
    /// [`Slots::has`] is true for `first`.
    fn put_run(&mut self, first: i64, buckets: &[Bucket]) {
        for (slot, b) in (first..).zip(buckets) {
            self.put(slot, b);
        }
    }
}

/// A whole file image in memory (tools, tests): every page is resident.
pub struct ImageSlots<'a> {
    pub image: &'a mut [u8],
    pub page_size: i64,
}

impl Slots for ImageSlots<'_> {
    fn has(&self, _slot: i64) -> bool {
        true
    }
    fn get(&self, slot: i64) -> Bucket {
        let off = crate::format::slot_offset(slot, self.page_size) as usize;
        Bucket::from_bytes(&self.image[off..off + BUCKET_SIZE])
    }
    fn put(&mut self, slot: i64, b: &Bucket) {
        let off = crate::format::slot_offset(slot, self.page_size) as usize;
        b.write_to(&mut self.image[off..off + BUCKET_SIZE]);
    }
}

/// A write could not proceed without this bucket page (0-based, after the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeedPage(pub u32);

/// Entries in a trailing file's in-memory window (docs/file-format.md, "Trailing window").
const TRAILING_WINDOW: usize = 3;

/// Overlay entries per file before it spills into pages: 32 new 10 s buckets outlast
/// the default flush round (300 s), so a live file's page is read once a round, by its
/// flush, not by spills in the path of the samples (with 8, every 10 s file of a store
/// restarted at once spilled in the same second, 80 s later, one page read each).
/// At most 32 x 40 bytes a file between flushes; a flush gives the room back.
pub const OVERLAY_MAX: usize = 32;

/// Slots past `last_bucket` checked for buckets a crash left ahead of the header.
pub const TAIL_CHECK_SLOTS: i64 = 512;

/// In-memory state of one open counter file.
#[derive(Debug, Clone)]
pub struct FileState {
    pub header: Header,
    /// Trailing files only: buckets not yet blended into the ring.
    trailing: Option<Box<[Bucket; TRAILING_WINDOW]>>,
    /// Slots whose full current value is here, not (yet) in their page; later wins.
    overlay: Vec<OverlaySlot>,
    /// Indices above this, and above `last_bucket`, are known to hold no valid bucket
    /// on disk (see [`FileState::verify_tail`]); `i64::MAX` until verified.
    pub tail_verified: i64,
    /// The file was created by this process and none of its bucket pages has been
    /// written to disk yet: every page not in the cache is all zeros. The store clears
    /// it when it issues the first page write.
    pub fresh: bool,
    /// Whether index 0 holds a bucket written by this process or found at open
    /// (`newest_bucket_time` in docs/file-format.md, "Operations for replication": the
    /// `last_time` = 0 quirk).
    pub index0_valid: bool,
    /// Lowest bucket time written since the last flush snapshot; `i64::MAX` = none.
    pub dirty_low: i64,
    /// Hash of the header bytes this process last wrote (0: unknown). A flush whose
    /// header has the same bytes does not write it again: a replica's files, and a
    /// master's idle counters, are visited every round with nothing new, and one write
    /// per file per round (with an open when descriptors are fewer than files) kept a
    /// 50,000-file slave at `--flush 1` busy enough to stall replication.
    pub header_on_disk: u64,
}

/// Counts from [`FileState::put_overwrite`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PutReport {
    pub written: u32,
    pub rejected: u32,
    pub too_old: u32,
}

impl FileState {
    /// State of a file read from disk (not fresh, tail not verified).
    pub fn new(header: Header) -> FileState {
        let trailing = if header.flags & FLAG_TRAILING != 0 {
            Some(Box::new([Bucket::EMPTY; TRAILING_WINDOW]))
        } else {
            None
        };
        FileState {
            header,
            trailing,
            overlay: Vec::new(),
            tail_verified: i64::MAX,
            fresh: false,
            index0_valid: false,
            dirty_low: i64::MAX,
            header_on_disk: 0,
        }
    }

    /// State of a file this process just created: all zeros on disk.
    pub fn new_created(header: Header) -> FileState {
        let mut st = FileState::new(header);
        st.fresh = true;
        st.tail_verified = i64::MIN;
        st
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
    /// Oldest index the ring can hold.
    pub fn window_low(&self) -> i64 {
        self.header.last_bucket - self.capacity() + 1
    }

    /// `newest_bucket_time` (docs/file-format.md, "Operations for replication"), without
    /// I/O.
    pub fn newest_bucket_time(&self) -> i64 {
        if self.header.last_bucket > 0 {
            self.time_of(self.header.last_bucket)
        } else if self.header.last_bucket == 0 && self.index0_valid {
            self.zero_time()
        } else {
            0
        }
    }

    /// `oldest_kept_time` (docs/file-format.md, "Operations for replication").
    pub fn oldest_kept_time(&self) -> i64 {
        self.time_of(self.window_low())
    }

    /// Whether a write at `t` would land in the ring (not older than its window).
    pub fn holds(&self, t: i64) -> bool {
        self.index_of(t) > self.header.last_bucket - self.capacity()
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

    /// After the store read the pages past `last_bucket` at load: anything valid there
    /// was left by a crash between a page write and its header write, and later writes
    /// must merge into it as the reference does.
    pub fn verify_tail(&mut self, slots: &dyn Slots) {
        let last = self.header.last_bucket;
        let mut high = last;
        for ix in last + 1..=last + TAIL_CHECK_SLOTS.min(self.capacity() - 1) {
            let slot = self.slot_of_index(ix);
            if slots.has(slot) && slots.get(slot).time == self.time_of(ix) {
                high = ix;
            }
        }
        self.tail_verified = high;
    }

    /// The file was closed cleanly: nothing past its last bucket is valid, so
    /// [`FileState::verify_tail`] is not needed.
    pub fn tail_is_clean(&mut self) {
        self.tail_verified = self.header.last_bucket;
    }

    /// Pages [`FileState::verify_tail`] reads.
    pub fn tail_pages(&self, out: &mut Vec<u32>) {
        let last = self.header.last_bucket;
        let n = TAIL_CHECK_SLOTS.min(self.capacity() - 1);
        self.pages_for_range_unclamped(last + 1, n, out);
    }

    // ----- writes --------------------------------------------------------------------

    /// `rawUpdateBucket` (docs/file-format.md, "Bucket arithmetic", "Where a bucket goes").
    /// `Ok(false)` when the bucket is older than the ring's window (nothing changed then);
    /// `Err(NeedPage)` when the old slot value is needed from a page that is not resident
    /// (nothing changed either).
    pub fn write(
        &mut self,
        slots: &mut dyn Slots,
        data: &Bucket,
        mode: Mode,
    ) -> Result<bool, NeedPage> {
        let interval = self.interval();
        let ix = self.index_of(data.time);
        let bt = bucket_time(data.time, interval);
        let cap = self.capacity();
        let last = self.header.last_bucket;
        if ix <= last - cap {
            return Ok(false);
        }
        let flags = self.header.flags;
        let replaces = flags & FLAG_COLLATED != 0 || mode == Mode::Overwrite;
        let slot = self.slot_of_index(ix);

        // Find the target's old value before changing anything. Trailing files write
        // into their window: `Some(Some(pos))` an existing entry, `Some(None)` a new one
        // after pushing out the oldest (whose reads are checked here).
        let trailing_pos = match &self.trailing {
            Some(w) => {
                let pos = w.iter().position(|b| b.time == bt);
                if pos.is_none() {
                    self.trailing_flush_check(slots)?;
                }
                Some(pos)
            }
            None => None,
        };
        // `pending`: the page is not resident; the samples are merged here and into
        // the page later (see [`OverlaySlot::pending`]).
        let (old, pending) = match trailing_pos {
            Some(Some(pos)) => (self.trailing.as_ref().unwrap()[pos], false),
            Some(None) => (Bucket::empty_at(bt), false),
            None if replaces => (Bucket::EMPTY, false),
            // A new newest bucket: its slot holds an older lap (or nothing).
            None if ix > last && ix > self.tail_verified => (Bucket::EMPTY, false),
            None => match self.slot_value(slots, slot) {
                Ok(b) if b.time != bt => (Bucket::EMPTY, false),
                Ok(b) => (b, false),
                // A sample of its own (count 0 would replace, not add, when merged
                // first) can wait for its page.
                Err(_) if mode == Mode::Aggregate && data.count > 0 => {
                    match self.overlay.iter().find(|o| o.at(slot)) {
                        Some(o) if o.bucket.time == bt => (o.bucket, true),
                        // Samples pending for an older lap of the slot: the slot is
                        // overwritten, its old value does not matter.
                        Some(_) => (Bucket::EMPTY, false),
                        None => (Bucket::EMPTY, true),
                    }
                }
                Err(need) => return Err(need),
            },
        };

        let h = &mut self.header;
        if ix > h.last_bucket {
            h.last_bucket = ix;
            h.last_time = bt;
            if h.first_bucket + cap <= h.last_bucket {
                h.first_bucket = h.last_bucket - cap + 1;
            }
        }
        if ix < h.first_bucket {
            h.first_bucket = ix;
        }
        let fixed_count = h.fixed_count;
        if trailing_pos == Some(None) {
            self.trailing_flush(slots)
                .expect("reads checked before any change");
            self.trailing.as_mut().unwrap()[TRAILING_WINDOW - 1] = Bucket::empty_at(bt);
        }

        let mut target = old;
        let applied = match mode {
            Mode::OnlyIfEmpty => {
                if target.count == 0 {
                    target = *data;
                    true
                } else {
                    false
                }
            }
            _ if replaces || (mode == Mode::FillEmpty && target.count == 0) => {
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
            Some(_) => {
                let w = self.trailing.as_mut().unwrap();
                let pos = w.iter().position(|b| b.time == bt).expect("entry present");
                w[pos] = target;
            }
            None => {
                if pending {
                    self.store_pending(slot, &target);
                } else {
                    self.store_slot(slots, slot, &target);
                }
                self.note_written(ix, bt);
            }
        }
        if applied {
            // The reference adds the f32 read-back getters, not the stored f64 sum.
            let h = &mut self.header;
            h.cumulative_sum += data.sum_f32() as f64;
            h.cumulative_sum_sq += data.sum_sq_f32() as f64;
            h.cumulative_count += data.count as i64;
        }
        Ok(true)
    }

    fn trailing_flush_check(&self, slots: &dyn Slots) -> Result<(), NeedPage> {
        let w = self.trailing.as_ref().expect("trailing file");
        if w[0].time > 0 {
            let oix = self.index_of(w[0].time - self.header.season as i64);
            if self.in_window(oix) {
                self.slot_value(slots, self.slot_of_index(oix))?;
            }
        }
        Ok(())
    }

    /// `flushOneExpBucket`: blend the oldest trailing entry into the ring and shift the
    /// window. Runs at every flush of a trailing file (docs/file-format.md, "Trailing
    /// window").
    pub fn trailing_flush(&mut self, slots: &mut dyn Slots) -> Result<(), NeedPage> {
        let Some(w) = self.trailing.as_ref() else {
            return Ok(());
        };
        self.trailing_flush_check(slots)?;
        let eb0 = w[0];
        if eb0.time > 0 {
            let ix = self.index_of(eb0.time);
            let oix = self.index_of(eb0.time - self.header.season as i64);
            // Port S-4: a season-ago index outside the window has no bucket.
            let old = if self.in_window(oix) {
                self.slot_value(slots, self.slot_of_index(oix))?
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
                let slot = self.slot_of_index(ix);
                self.store_slot(slots, slot, &wb);
                self.note_written(ix, eb0.time);
            }
        }
        let w = self.trailing.as_mut().unwrap();
        w.copy_within(1.., 0);
        w[TRAILING_WINDOW - 1] = Bucket::EMPTY;
        Ok(())
    }

    /// `put_buckets_overwrite` (docs/file-format.md, "Operations for replication"):
    /// replicated buckets stored verbatim. A replacement never needs the old value, so this
    /// never needs a page.
    pub fn put_overwrite(&mut self, slots: &mut dyn Slots, buckets: &[Bucket]) -> PutReport {
        let mut r = PutReport::default();
        // Accepted buckets of consecutive slots of one page, stored together.
        let mut run: Vec<Bucket> = Vec::with_capacity(buckets.len().min(BUCKETS_PER_PAGE));
        let mut run_first = 0i64;
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
            let slot = self.slot_of_index(ix);
            self.note_written(ix, b.time);
            r.written += 1;
            let extends = !run.is_empty()
                && slot == run_first + run.len() as i64
                && self.page_of_slot(slot) == self.page_of_slot(run_first);
            if !extends {
                self.store_run(slots, run_first, &run);
                run.clear();
                run_first = slot;
            }
            run.push(*b);
        }
        self.store_run(slots, run_first, &run);
        r
    }

    /// Store buckets of consecutive slots of one page: with one page lookup when the
    /// page is resident and no overlay entry holds any of them (a catch-up's whole
    /// pages), else slot by slot. The newest bucket keeps its clean overlay copy.
    fn store_run(&mut self, slots: &mut dyn Slots, first: i64, run: &[Bucket]) {
        let last = first + run.len() as i64 - 1;
        let in_overlay = || {
            self.overlay
                .iter()
                .any(|o| (first..=last).contains(&o.slot()))
        };
        if run.len() < 2 || !slots.has(first) || in_overlay() {
            for (slot, b) in (first..).zip(run) {
                self.store_slot(slots, slot, b);
            }
            return;
        }
        slots.put_run(first, run);
        let newest = self.slot_of_index(self.header.last_bucket);
        if (first..=last).contains(&newest) {
            self.push_overlay(newest, &run[(newest - first) as usize], false, false);
        }
    }

    /// The pages a [`FileState::put_overwrite`] of `buckets` would write into, each
    /// with the number of its slots the put fills, worked out as the put runs
    /// (alignment, the moving window) without changing anything. A page whose every
    /// slot is filled need not be read first.
    pub fn put_plan(&self, buckets: &[Bucket]) -> Vec<(u32, usize)> {
        let interval = self.interval();
        let cap = self.capacity();
        let (mut first, mut last) = (self.header.first_bucket, self.header.last_bucket);
        let mut slots: Vec<i64> = Vec::with_capacity(buckets.len());
        for b in buckets {
            if (b.time - self.zero_time()).rem_euclid(interval) != 0 {
                continue;
            }
            let ix = self.index_of(b.time);
            if ix <= last - cap {
                continue;
            }
            if ix > last {
                last = ix;
                if first + cap <= last {
                    first = last - cap + 1;
                }
            }
            if ix < first {
                first = ix;
            }
            slots.push(self.slot_of_index(ix));
        }
        slots.sort_unstable();
        slots.dedup();
        let mut out: Vec<(u32, usize)> = Vec::new();
        for slot in slots {
            let page = self.page_of_slot(slot);
            match out.last_mut() {
                Some((p, n)) if *p == page => *n += 1,
                _ => out.push((page, 1)),
            }
        }
        out
    }

    /// Slots in one bucket page.
    pub fn slots_per_page(&self) -> usize {
        (self.header.page_size / BUCKET_SIZE as i64) as usize
    }

    // ----- reads ---------------------------------------------------------------------

    /// Pages covering `count` indices from `lo`, as given (the caller clamped them).
    pub fn pages_for_indices(&self, lo: i64, count: i64, out: &mut Vec<u32>) {
        self.pages_for_reading(lo, count, out)
    }

    /// Pages a reader of `count` indices from `lo` needs: none for the slots whose
    /// value the overlay holds. A replica's Request and a dashboard's last minutes
    /// read a file's newest buckets, which are there; their page may be long gone
    /// from a cache that holds a fraction of 500,000 files' pages.
    fn pages_for_reading(&self, lo: i64, count: i64, out: &mut Vec<u32>) {
        if count <= 0 || count > 2 * OVERLAY_MAX as i64 || self.overlay.is_empty() {
            return self.pages_for_range_unclamped(lo, count, out);
        }
        for ix in lo..lo + count {
            let slot = self.slot_of_index(ix);
            if !self.overlay.iter().any(|o| o.at(slot) && !o.pending) {
                out.push(self.page_of_slot(slot));
            }
        }
        out.sort_unstable();
        out.dedup();
    }

    fn pages_for_range_unclamped(&self, lo: i64, count: i64, out: &mut Vec<u32>) {
        let bpp = BUCKETS_PER_PAGE as i64;
        if count <= 0 {
            return;
        }
        if count >= self.capacity() {
            out.extend(0..self.header.page_count as u32);
            return;
        }
        let hi = lo + count - 1;
        let mut ix = lo;
        while ix <= hi {
            let slot = self.slot_of_index(ix);
            out.push(self.page_of_slot(slot));
            ix += bpp - slot % bpp;
        }
        out.sort_unstable();
        out.dedup();
    }

    /// Pages covering `count` indices from `start_index` (clamped to the window).
    pub fn pages_for_range(&self, start_index: i64, count: i64, out: &mut Vec<u32>) {
        let (lo, hi) = self.clamp_range(start_index, count);
        if hi >= lo {
            self.pages_for_reading(lo, hi - lo + 1, out);
        }
    }

    /// The index range `[lo, hi]` of a read, clamped to the window (Port S-5).
    pub fn clamp_range(&self, start_index: i64, count: i64) -> (i64, i64) {
        let count = count.clamp(0, self.capacity());
        let lo = start_index.max(self.window_low());
        let hi = (start_index.saturating_add(count) - 1).min(self.header.last_bucket);
        (lo, hi)
    }

    /// A slot as a reader sees it: overlay first, then the page (zero if absent).
    pub fn read_slot(&self, slots: &dyn Slots, slot: i64) -> Bucket {
        match self.slot_value(slots, slot) {
            Ok(b) => b,
            Err(_) => Bucket::EMPTY,
        }
    }

    /// `read_valid_buckets` (docs/file-format.md, "Operations for replication"): buckets
    /// whose stored time equals the time of their index, from `start` to `end` inclusive,
    /// at most `max` kept and `max_slots` scanned. Returns the buckets and the time just
    /// past the last slot scanned.
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
        let mut ix = start.saturating_sub(z).div_euclid(interval);
        if self.time_of(ix) < start {
            ix += 1;
        }
        ix = ix.max(self.window_low());
        let last = self.index_of(end).min(self.header.last_bucket);
        let mut out = Vec::new();
        let mut scanned = 0usize;
        while ix <= last && out.len() < max && scanned < max_slots {
            let b = self.read_slot(slots, self.slot_of_index(ix));
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

    /// The slot a newly opened file must probe for [`FileState::note_index0`]: only a
    /// file whose newest index is 0 needs to know whether that slot holds a bucket
    /// ([`FileState::newest_bucket_time`]).
    pub fn index0_probe(&self) -> Option<i64> {
        (self.header.last_bucket == 0).then(|| self.slot_of_index(0))
    }

    /// What index 0's slot holds on disk (see [`FileState::index0_probe`]). A write
    /// since the file was opened only adds validity.
    pub fn note_index0(&mut self, on_disk: &Bucket) {
        if on_disk.time == self.zero_time() && on_disk.time != 0 {
            self.index0_valid = true;
        }
    }

    /// Take the lowest written time since the last snapshot (for the flush visit hook).
    pub fn take_dirty_low(&mut self) -> i64 {
        std::mem::replace(&mut self.dirty_low, i64::MAX)
    }
}

#[cfg(test)]
mod tests;
