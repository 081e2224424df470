//! The page cache: one bounded LRU of 8 KiB bucket pages per store, with a dirty bitmap
//! per page, the images of pages being written, and the writes of pages and headers.

use crate::hashing::FastMap;
use std::io;
use std::rc::Rc;

use super::fd_cache::StoreFile;
use super::slots::CacheSlots;
use super::FileId;
use crate::format::{HEADER_SIZE, PAGE_SIZE};
use crate::lru::Lru;

/// Sector size of the dirty bitmap: the smallest O_DIRECT unit.
pub(super) const SECTOR: usize = 512;

/// The dirty mask of a page every sector of which changed.
pub(super) const WHOLE_PAGE: u16 = u16::MAX;
const _: () = assert!(
    PAGE_SIZE / SECTOR == 16,
    "one dirty bit per sector of a u16 mask"
);

/// Most pages one write carries (256 KiB).
pub(super) const RUN_MAX: usize = 32;

pub(super) type PageKey = (FileId, u32);

/// One cached bucket page.
pub(super) struct Page {
    pub(super) data: Box<[u8]>,
    /// 512-byte sectors changed since the page was read or last written (bit i =
    /// sector i). Only those are written, so a sparse file keeps its holes and a flush
    /// writes what changed, not whole pages.
    pub(super) dirty: u16,
}

/// At most `capacity` pages; an evicted dirty page is written back by its evictor.
pub(super) struct PageCache {
    pages: Lru<PageKey, Page>,
    /// Page images being written; loads take them from here, not from disk.
    writing: FastMap<PageKey, (u64, Rc<[u8]>)>,
    write_seq: u64,
}

impl PageCache {
    pub(super) fn new(capacity: usize) -> PageCache {
        PageCache {
            pages: Lru::new(capacity),
            writing: FastMap::default(),
            write_seq: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.pages.len()
    }

    /// Whether a page is cached; a cached page becomes the most recently used.
    pub(super) fn touch(&mut self, key: &PageKey) -> bool {
        self.pages.get_mut(key).is_some()
    }

    pub(super) fn contains(&self, key: &PageKey) -> bool {
        self.pages.contains(key)
    }

    /// Cache a page; returns the pages evicted for it.
    pub(super) fn insert(&mut self, key: PageKey, page: Page) -> Vec<(PageKey, Page)> {
        self.pages.insert(key, page)
    }

    /// A cached page's bytes, leaving its recency alone.
    pub(super) fn peek_data(&self, key: &PageKey) -> Option<&[u8]> {
        self.pages.peek(key).map(|pg| &pg.data[..])
    }

    /// A copy of the image of a page being written.
    pub(super) fn copy_in_flight(&self, key: &PageKey) -> Option<Box<[u8]>> {
        self.writing
            .get(key)
            .map(|(_, data)| data.to_vec().into_boxed_slice())
    }

    /// Take a cached page's dirty sectors and an image of it for writing, which loads
    /// see until [`PageCache::finish_write`]. `None` when the page is not cached.
    pub(super) fn take_dirty(&mut self, key: PageKey) -> Option<(Rc<[u8]>, u16, u64)> {
        let page = self.pages.peek_mut(&key)?;
        let mask = std::mem::take(&mut page.dirty);
        let data: Rc<[u8]> = Rc::from(page.data.to_vec());
        let seq = self.begin_write(key, data.clone());
        Some((data, mask, seq))
    }

    /// Register the image of a page being written; returns its write sequence number.
    pub(super) fn begin_write(&mut self, key: PageKey, data: Rc<[u8]>) -> u64 {
        self.write_seq += 1;
        self.writing.insert(key, (self.write_seq, data));
        self.write_seq
    }

    /// The write `seq` of a page completed: loads read the page again, unless a later
    /// write of it is still in flight.
    pub(super) fn finish_write(&mut self, key: PageKey, seq: u64) {
        if self
            .writing
            .get(&key)
            .map(|(s, _)| *s == seq)
            .unwrap_or(false)
        {
            self.writing.remove(&key);
        }
    }

    /// A write of a page failed: its sectors are dirty again, so that a later flush or
    /// eviction writes them. A page no longer cached comes back from the image that
    /// failed, above the capacity if need be (evicting now would only start another
    /// write that may fail the same way).
    pub(super) fn redirty(&mut self, key: PageKey, image: &[u8], mask: u16) {
        if let Some(page) = self.pages.peek_mut(&key) {
            page.dirty |= mask;
            return;
        }
        let data = image.to_vec().into_boxed_slice();
        self.pages.insert_over(key, Page { data, dirty: mask });
    }

    /// Drop the cached pages of a file.
    pub(super) fn remove_file(&mut self, id: FileId, page_count: u32) {
        for p in 0..page_count {
            self.pages.remove(&(id, p));
        }
    }

    /// The cached pages of one file as slots; writes mark pages dirty in `dirty`.
    pub(super) fn slots<'a>(&'a mut self, id: FileId, dirty: &'a mut Vec<u32>) -> CacheSlots<'a> {
        CacheSlots::new(&mut self.pages, id, dirty)
    }
}

pub(super) fn page_offset(page: u32) -> u64 {
    (PAGE_SIZE as u64) * (page as u64 + 1)
}

/// Read one bucket page.
pub(super) async fn read_page(file: &StoreFile, page: u32) -> io::Result<Box<[u8]>> {
    let r = file.read_at(page_offset(page), PAGE_SIZE).await?;
    let mut data = vec![0u8; PAGE_SIZE].into_boxed_slice();
    let n = r.len().min(PAGE_SIZE);
    data[..n].copy_from_slice(&r[..n]);
    Ok(data)
}

/// Write the dirty sectors of a page (`mask`, see [`Page::dirty`]), one write per run
/// of consecutive sectors, each widened to the file's write unit (its O_DIRECT alignment, if any).
pub(super) async fn write_page(
    file: &StoreFile,
    page: u32,
    data: &[u8],
    mask: u16,
) -> io::Result<()> {
    let align = file.write_unit();
    let mut runs: Vec<(usize, usize)> = Vec::new();
    let sectors = PAGE_SIZE / SECTOR;
    let mut i = 0;
    while i < sectors {
        if mask & (1 << i) == 0 {
            i += 1;
            continue;
        }
        let start = i;
        while i < sectors && mask & (1 << i) != 0 {
            i += 1;
        }
        let lo = (start * SECTOR) / align * align;
        let hi = (i * SECTOR).div_ceil(align) * align;
        match runs.last_mut() {
            Some(last) if last.1 >= lo => last.1 = hi,
            _ => runs.push((lo, hi)),
        }
    }
    for (lo, hi) in runs {
        file.write_at(page_offset(page) + lo as u64, data[lo..hi].to_vec())
            .await?;
    }
    Ok(())
}

/// How pages of one file, sorted by page number with their dirty masks, go out: each
/// run of consecutive whole pages (at most [`RUN_MAX`]) as one write, any other page
/// alone. A replica's catch-up and a busy counter dirty whole runs; one write instead
/// of one per page is what keeps the disk's queue, not the syscalls, the limit.
pub(super) fn write_groups(pages: &[(u32, u16)]) -> Vec<std::ops::Range<usize>> {
    let mut groups: Vec<std::ops::Range<usize>> = Vec::new();
    for (i, &(p, mask)) in pages.iter().enumerate() {
        let joins = mask == WHOLE_PAGE
            && groups.last().is_some_and(|g| {
                let (last_p, last_mask) = pages[g.end - 1];
                last_mask == WHOLE_PAGE && last_p.checked_add(1) == Some(p) && g.len() < RUN_MAX
            });
        match groups.last_mut() {
            Some(g) if joins => g.end = i + 1,
            _ => groups.push(i..i + 1),
        }
    }
    groups
}

/// Write whole pages `first`, `first + 1`, ... in one write.
pub(super) async fn write_run(file: &StoreFile, first: u32, pages: &[&[u8]]) -> io::Result<()> {
    let mut buf = vec![0u8; pages.len() * PAGE_SIZE];
    for (dst, src) in buf.chunks_exact_mut(PAGE_SIZE).zip(pages) {
        dst.copy_from_slice(&src[..PAGE_SIZE]);
    }
    file.write_at(page_offset(first), buf).await
}

/// Write the header: its 464 bytes padded to one write unit (the rest of the header
/// page is zeros and never changes).
pub(super) async fn write_header(file: &StoreFile, header: &[u8; HEADER_SIZE]) -> io::Result<()> {
    let mut buf = vec![0u8; file.write_unit()];
    buf[..HEADER_SIZE].copy_from_slice(header);
    file.write_at(0, buf).await
}

#[cfg(test)]
mod write_group_tests {
    use super::*;

    #[test]
    fn whole_consecutive_pages_share_a_write() {
        let w = WHOLE_PAGE;
        let pages = [(3, w), (4, w), (5, w), (7, w), (8, 0x00ff), (9, w), (10, w)];
        assert_eq!(write_groups(&pages), vec![0..3, 3..4, 4..5, 5..7]);
    }

    #[test]
    fn a_partial_page_never_joins_and_runs_are_bounded() {
        let w = WHOLE_PAGE;
        assert_eq!(write_groups(&[(1, 0x1), (2, w)]), vec![0..1, 1..2]);
        let long: Vec<(u32, u16)> = (0..(RUN_MAX as u32 + 5)).map(|p| (p, w)).collect();
        assert_eq!(write_groups(&long), vec![0..RUN_MAX, RUN_MAX..RUN_MAX + 5]);
        assert!(write_groups(&[]).is_empty());
    }
}
