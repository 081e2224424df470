//! The store's two [`Slots`]: the page cache itself (reads and writes, marking pages
//! dirty), and private copies of some pages (reads that must not fill the cache).

use std::collections::HashMap;

use super::page_cache::{Page, PageKey, SECTOR};
use super::FileId;
use crate::format::{Bucket, PAGE_SIZE};
use crate::lru::Lru;
use crate::statfile::{FileState, Slots};

/// Slots backed by the page cache; writes mark pages dirty.
pub(super) struct CacheSlots<'a> {
    pages: &'a mut Lru<PageKey, Page>,
    id: FileId,
    dirty: &'a mut Vec<u32>,
}

impl<'a> CacheSlots<'a> {
    pub(super) fn new(
        pages: &'a mut Lru<PageKey, Page>,
        id: FileId,
        dirty: &'a mut Vec<u32>,
    ) -> CacheSlots<'a> {
        CacheSlots { pages, id, dirty }
    }

    fn locate(&self, slot: i64) -> (u32, usize) {
        let bpp = (PAGE_SIZE / 32) as i64;
        ((slot / bpp) as u32, ((slot % bpp) * 32) as usize)
    }
}

impl Slots for CacheSlots<'_> {
    fn has(&self, slot: i64) -> bool {
        let (p, _) = self.locate(slot);
        self.pages.contains(&(self.id, p))
    }
    fn get(&self, slot: i64) -> Bucket {
        let (p, off) = self.locate(slot);
        let page = self
            .pages
            .peek(&(self.id, p))
            .expect("page made resident before use");
        Bucket::from_bytes(&page.data[off..off + 32])
    }
    fn put(&mut self, slot: i64, b: &Bucket) {
        let (p, off) = self.locate(slot);
        let page = self
            .pages
            .get_mut(&(self.id, p))
            .expect("page made resident before use");
        b.write_to(&mut page.data[off..off + 32]);
        if page.dirty == 0 && !self.dirty.contains(&p) {
            self.dirty.push(p);
        }
        page.dirty |= 1 << (off / SECTOR);
    }
    fn put_run(&mut self, first: i64, buckets: &[Bucket]) {
        if buckets.is_empty() {
            return;
        }
        let (p, off) = self.locate(first);
        let end = off + 32 * buckets.len();
        debug_assert!(end <= PAGE_SIZE, "a run stays within its page");
        let page = self
            .pages
            .get_mut(&(self.id, p))
            .expect("page made resident before use");
        for (dst, b) in page.data[off..end].chunks_exact_mut(32).zip(buckets) {
            b.write_to(dst);
        }
        if page.dirty == 0 && !self.dirty.contains(&p) {
            self.dirty.push(p);
        }
        for sector in off / SECTOR..=(end - 1) / SECTOR {
            page.dirty |= 1 << sector;
        }
    }
}

/// Read-only slots over a private copy of some pages.
pub(super) struct ViewSlots<'a> {
    pub(super) pages: &'a HashMap<u32, Box<[u8]>>,
    pub(super) st: &'a FileState,
}

impl Slots for ViewSlots<'_> {
    fn has(&self, slot: i64) -> bool {
        self.pages.contains_key(&self.st.page_of_slot(slot))
    }
    fn get(&self, slot: i64) -> Bucket {
        let p = self.st.page_of_slot(slot);
        let bpp = (self.st.header.page_size / 32) as usize;
        let off = (slot as usize % bpp) * 32;
        match self.pages.get(&p) {
            Some(d) => Bucket::from_bytes(&d[off..off + 32]),
            None => Bucket::EMPTY,
        }
    }
    fn put(&mut self, _slot: i64, _b: &Bucket) {
        unreachable!("read-only view")
    }
}
