//! The overlay of one file: slot values held in memory instead of in their page
//! (see the module above for why), and the merges still pending over a page that is
//! not resident.

use super::{FileState, NeedPage, Slots, OVERLAY_MAX};
use crate::format::{Bucket, Header, FLAG_COUNTER_AGGREGATE};

/// A slot's value held in memory. `dirty`: not yet in its page. A clean entry is
/// kept for the newest bucket, so merges into the current bucket never read a page.
///
/// `pending`: `bucket` is not the slot's value but samples still to be merged into
/// whatever the page holds ([`FileState::resolve_pending`]). An aggregate write into
/// a slot whose page is not resident (a coarse retention's current bucket, written
/// again after a restart or after its page left a busy cache) needs the old value
/// only to add to it; merging is associative, so the read waits for the next spill
/// or flush, which reads the page once for all such samples.
///
/// 40 bytes (the slot as a u32: a file has far fewer than 2^32 slots).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct OverlaySlot {
    pub(super) slot: u32,
    pub(super) bucket: Bucket,
    pub(super) dirty: bool,
    pub(super) pending: bool,
}

const _: () = assert!(std::mem::size_of::<OverlaySlot>() == 40);

/// Slots a flush leaves in the overlay as clean copies, newest first: what a replica
/// asks for next (the buckets since its last answer, at most a flush round's) and a
/// dashboard's last minute are read without their page, which a cache holding a
/// fraction of 500,000 files' pages has often dropped (a master re-reading them
/// answered 50,000 files' Requests 25-35 s late with 256 MiB of cache).
/// 8 x 40 bytes a live file at most.
const KEEP_NEWEST: i64 = 8;

impl OverlaySlot {
    pub(super) fn slot(&self) -> i64 {
        self.slot as i64
    }

    pub(super) fn at(&self, slot: i64) -> bool {
        self.slot() == slot
    }
}

impl FileState {
    /// The current value of a slot: overlay, else page, else zero for a fresh file.
    pub(super) fn slot_value(&self, slots: &dyn Slots, slot: i64) -> Result<Bucket, NeedPage> {
        let entry = self.overlay.iter().find(|o| o.at(slot));
        if let Some(o) = entry.filter(|o| !o.pending) {
            return Ok(o.bucket);
        }
        let on_disk = if slots.has(slot) {
            slots.get(slot)
        } else if self.fresh {
            Bucket::EMPTY
        } else {
            return Err(NeedPage(self.page_of_slot(slot)));
        };
        Ok(match entry {
            Some(o) => Self::resolve_pending(&self.header, &on_disk, &o.bucket),
            None => on_disk,
        })
    }

    /// Store a slot's full value: into its page when resident, else the overlay.
    pub(super) fn store_slot(&mut self, slots: &mut dyn Slots, slot: i64, b: &Bucket) {
        if let Some(o) = self.overlay.iter_mut().find(|o| o.at(slot)) {
            o.bucket = *b;
            o.dirty = true;
            o.pending = false;
        } else if slots.has(slot) {
            slots.put(slot, b);
            // Keep a clean copy of the newest bucket: the next samples merge into it
            // without its page, which a busy cache may evict before they come.
            if slot == self.slot_of_index(self.header.last_bucket) {
                self.push_overlay(slot, b, false, false);
            }
        } else {
            self.push_overlay(slot, b, true, false);
        }
    }

    /// Add an entry for a slot the overlay does not hold, keeping it within its bound.
    pub(super) fn push_overlay(&mut self, slot: i64, bucket: &Bucket, dirty: bool, pending: bool) {
        self.overlay.push(OverlaySlot {
            slot: slot as u32,
            bucket: *bucket,
            dirty,
            pending,
        });
        self.trim_overlay();
    }

    /// Store samples still to be merged into a slot whose page is not resident (see
    /// [`OverlaySlot::pending`]).
    pub(super) fn store_pending(&mut self, slot: i64, merged: &Bucket) {
        if let Some(o) = self.overlay.iter_mut().find(|o| o.at(slot)) {
            o.bucket = *merged;
            o.dirty = true;
            o.pending = true;
        } else {
            self.push_overlay(slot, merged, true, true);
        }
    }

    /// A slot's value once its pending samples are merged into what its page holds: the
    /// same as merging them one by one (an older lap on disk counts as empty).
    pub(super) fn resolve_pending(header: &Header, on_disk: &Bucket, pending: &Bucket) -> Bucket {
        let mut v = if on_disk.time == pending.time {
            *on_disk
        } else {
            Bucket::EMPTY
        };
        v.merge(pending);
        if header.flags & FLAG_COUNTER_AGGREGATE != 0 {
            v.count = header.fixed_count as i32;
        }
        v
    }

    /// Over the bound, drop the oldest clean entry (it costs nothing to drop); dirty ones
    /// wait for a spill.
    pub(super) fn trim_overlay(&mut self) {
        if self.overlay.len() > OVERLAY_MAX {
            if let Some(pos) = self.overlay.iter().position(|o| !o.dirty) {
                self.overlay.remove(pos);
            }
        }
    }

    /// Whether the overlay holds anything not yet in a page.
    pub fn has_overlay(&self) -> bool {
        self.overlay.iter().any(|o| o.dirty)
    }

    /// Pages holding dirty overlay slots (to make resident before
    /// [`FileState::absorb_overlay`]).
    pub fn overlay_pages(&self, out: &mut Vec<u32>) {
        for o in self.overlay.iter().filter(|o| o.dirty) {
            out.push(self.page_of_slot(o.slot()));
        }
        out.sort_unstable();
        out.dedup();
    }

    /// The page to load when the overlay is over its bound.
    pub fn overlay_spill_page(&self) -> Option<u32> {
        if self.overlay.len() <= OVERLAY_MAX {
            return None;
        }
        self.overlay
            .iter()
            .find(|o| o.dirty)
            .map(|o| self.page_of_slot(o.slot()))
    }

    /// Move every dirty overlay slot whose page is resident into the page; keep clean
    /// copies of the newest [`KEEP_NEWEST`] slots.
    pub fn absorb_overlay(&mut self, slots: &mut dyn Slots) {
        let newest = self.slot_of_index(self.header.last_bucket);
        let cap = self.capacity();
        let header = &self.header;
        self.overlay.retain_mut(|o| {
            if !slots.has(o.slot()) {
                return true;
            }
            if o.pending {
                let on_disk = slots.get(o.slot());
                let v = Self::resolve_pending(header, &on_disk, &o.bucket);
                o.bucket = v;
                o.pending = false;
            }
            if o.dirty {
                slots.put(o.slot(), &o.bucket);
                o.dirty = false;
            }
            (newest - o.slot()).rem_euclid(cap.max(1)) < KEEP_NEWEST
        });
        // A file holds its peak's room otherwise, for good: up to 1,280 bytes.
        if self.overlay.capacity() > 2 * self.overlay.len().max(1) {
            self.overlay.shrink_to_fit();
        }
    }
}
