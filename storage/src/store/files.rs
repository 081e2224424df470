//! The store's files, one file at a time: the file table, descriptor cache and page
//! cache together, and what is done to a file — loading and validating its header,
//! making its pages resident, writing buckets, flushing, and reading without filling
//! the cache.

use std::cell::{Ref, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::counters::FileIds;
use super::fd_cache::{FdCache, OpenFile};
use super::file_table::{FileTable, NO_RETENTION};
use super::flush::{join_all, FlushVisit};
use super::page_cache::{self, Page, PageCache, PageKey};
use super::slots::ViewSlots;
use super::{is_event_header, Allocation, FileId, StoreError, StoreOptions, StoreStats};
use crate::format::{Bucket, Header, HEADER_SIZE, PAGE_SIZE};
use crate::hashing::FastSet;
use crate::statfile::{FileState, Mode, NeedPage, PutReport, Slots};

mod load;

/// [`Files::put_overwrite`]: buckets of a page put through the overlay.
const FEW_BUCKETS: usize = 8;

/// Counts of file and page work (part of [`StoreStats`]).
#[derive(Debug, Default, Clone, Copy)]
struct FileStats {
    files_created: u64,
    bad_files: u64,
    too_old: u64,
    page_hits: u64,
    page_misses: u64,
    page_writes: u64,
    write_ops: u64,
    header_writes: u64,
    write_errors: u64,
}

/// Every file of a store, with the caches that serve them.
pub(super) struct Files {
    root: PathBuf,
    allocation: Allocation,
    /// [`StoreOptions::closed_cleanly`]: no tail pages to verify at load.
    closed_cleanly: bool,
    table: RefCell<FileTable>,
    pages: RefCell<PageCache>,
    fds: FdCache,
    stats: RefCell<FileStats>,
    /// Files with a flush in progress. A second flush of one waits for the first:
    /// run together, the later snapshot's header could reach the disk first and be
    /// overwritten by the older one (a header whose newest bucket is behind its
    /// pages), and the flush visits would reach replication out of order.
    flushing: RefCell<FastSet<FileId>>,
    /// Hashes header bytes for [`FileState::header_on_disk`] (keyed per shard).
    header_hash: ahash::RandomState,
    /// The retentions' file names, by index ([`FileEntry::retention`]).
    retention_names: Vec<Box<str>>,
    /// Page-cache `[hits, misses]` by retention (`istatd.pagecache.*`).
    page_counts: RefCell<Vec<[u64; 2]>>,
    write_back_log: FailureLog,
}

/// One log line for the first of a series of failures, then at most one per
/// [`FailureLog::EVERY`] with the count of those not logged: a disk that fails fails
/// every write, and the evictions of one busy second are thousands of write groups.
/// Each failure is counted in `istatd.store.write_errors` all the same.
#[derive(Default)]
struct FailureLog {
    last: std::cell::Cell<Option<std::time::Instant>>,
    unlogged: std::cell::Cell<u64>,
}

impl FailureLog {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(10);

    fn failed(&self, e: &StoreError) {
        let now = std::time::Instant::now();
        if self
            .last
            .get()
            .is_some_and(|t| now.duration_since(t) < Self::EVERY)
        {
            self.unlogged.set(self.unlogged.get() + 1);
            return;
        }
        self.last.set(Some(now));
        let unlogged = self.unlogged.replace(0);
        tracing::error!(error = %e, unlogged, "page write-back failed; the pages stay dirty");
    }
}

/// Takes a file out of [`Files::flushing`] when its flush ends, however it ends.
struct Flushing<'a> {
    set: &'a RefCell<FastSet<FileId>>,
    id: FileId,
}

impl Drop for Flushing<'_> {
    fn drop(&mut self) {
        self.set.borrow_mut().remove(&self.id);
    }
}

impl Files {
    pub(super) fn new(root: PathBuf, opts: &StoreOptions) -> Files {
        Files {
            root,
            allocation: opts.allocation,
            closed_cleanly: opts.closed_cleanly,
            table: RefCell::new(FileTable::default()),
            pages: RefCell::new(PageCache::new(opts.page_cache_pages.max(16))),
            fds: FdCache::new(opts.max_open_files.max(4), opts.io),
            stats: RefCell::new(FileStats::default()),
            flushing: RefCell::new(FastSet::default()),
            header_hash: ahash::RandomState::new(),
            retention_names: opts
                .retentions
                .iter()
                .map(|r| r.name.as_str().into())
                .collect(),
            page_counts: RefCell::new(vec![[0, 0]; opts.retentions.len()]),
            write_back_log: FailureLog::default(),
        }
    }

    /// The retention of a file by its name (the last path element).
    fn retention_of(&self, rel: &str) -> u8 {
        let name = rel.rsplit('/').next().unwrap_or(rel);
        self.retention_names
            .iter()
            .position(|r| **r == *name)
            .and_then(|i| u8::try_from(i).ok())
            .unwrap_or(NO_RETENTION)
    }

    /// Count page-cache hits and misses of a file, in all and by its retention.
    fn count_pages(&self, id: FileId, hits: u64, misses: u64) {
        let mut st = self.stats.borrow_mut();
        st.page_hits += hits;
        st.page_misses += misses;
        let r = self
            .table
            .borrow()
            .entry(id)
            .map_or(NO_RETENTION, |e| e.retention);
        if let Some(c) = self.page_counts.borrow_mut().get_mut(usize::from(r)) {
            c[0] += hits;
            c[1] += misses;
        }
    }

    /// Page-cache `[hits, misses]` by retention index.
    pub(super) fn page_counts(&self) -> Vec<[u64; 2]> {
        self.page_counts.borrow().clone()
    }

    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    pub(super) fn abs_path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub(super) fn table(&self) -> Ref<'_, FileTable> {
        self.table.borrow()
    }

    /// Fill in the counts of files, pages and descriptors.
    pub(super) fn add_stats(&self, s: &mut StoreStats) {
        let f = *self.stats.borrow();
        s.files = self.table.borrow().len() as u64;
        s.files_created = f.files_created;
        s.bad_files = f.bad_files;
        s.too_old = f.too_old;
        s.page_hits = f.page_hits;
        s.page_misses = f.page_misses;
        s.page_writes = f.page_writes;
        s.write_ops = f.write_ops;
        s.header_writes = f.header_writes;
        s.write_errors = f.write_errors;
        s.open_files = self.fds.open_now();
        s.open_files_peak = self.fds.peak();
        s.fd_opens = self.fds.opens();
        s.fd_opens_cached = self.fds.opens_cached();
        s.cached_pages = self.pages.borrow().len() as u64;
    }

    /// Index a file found on disk.
    pub(super) fn add(&self, rel: Box<str>) -> FileId {
        let r = self.retention_of(&rel);
        self.table.borrow_mut().add(rel, r)
    }

    /// Index a file this process just created (all zeros on disk but its header).
    pub(super) fn add_created(&self, rel: Box<str>, header: Header) -> FileId {
        self.stats.borrow_mut().files_created += 1;
        let r = self.retention_of(&rel);
        let mut table = self.table.borrow_mut();
        let id = table.add(rel, r);
        if let Some(e) = table.entry_mut(id) {
            e.state = Some(Box::new(FileState::new_created(header)));
        }
        id
    }

    /// Forget a file: its slot is reused with a new generation, its pages and
    /// descriptor are dropped. Returns its relative path.
    pub(super) fn remove(&self, id: FileId) -> Option<Box<str>> {
        let (rel, page_count) = self.table.borrow_mut().remove(id)?;
        self.fds.remove(id);
        self.pages.borrow_mut().remove_file(id, page_count);
        Some(rel)
    }

    /// Forget that a file was refused as bad.
    pub(super) fn forget_bad(&self, rel: &str) {
        self.table.borrow_mut().forget_bad(rel);
    }

    /// Whether a file's header is in memory.
    pub(super) fn is_loaded(&self, id: FileId) -> bool {
        self.table
            .borrow()
            .entry(id)
            .is_some_and(|e| e.state.is_some())
    }

    /// A counter's files when all exist and are loaded, with whether the finest is an
    /// event counter's; one borrow of the table.
    pub(super) fn loaded_kind(&self, files: &[Option<FileId>]) -> Option<(FileIds, bool)> {
        let table = self.table.borrow();
        let mut ids = FileIds::default();
        let mut event = false;
        for (i, f) in files.iter().enumerate() {
            let id = (*f)?;
            let st = table.entry(id)?.state.as_ref()?;
            if i == 0 {
                event = is_event_header(&st.header);
            }
            ids.push(id);
        }
        Some((ids, event))
    }

    /// A counter's key from the directory of its first file.
    pub(super) fn counter_key(&self, files: &[Option<FileId>]) -> Option<String> {
        let table = self.table.borrow();
        let rel = &table.entry(files.iter().flatten().next().copied()?)?.rel;
        let (dir, _) = rel.rsplit_once('/')?;
        Some(dir.replace('/', "."))
    }

    /// Whether a file is known, not loaded yet and not refused.
    pub(super) fn needs_load(&self, id: FileId) -> bool {
        self.table
            .borrow()
            .entry(id)
            .is_some_and(|e| e.state.is_none() && !e.bad)
    }

    /// Files with dirty pages or buckets in memory.
    pub(super) fn dirty_ids(&self) -> Vec<FileId> {
        let table = self.table.borrow();
        table
            .ids()
            .into_iter()
            .filter(|&id| {
                table.entry(id).is_some_and(|e| {
                    !e.dirty_pages.is_empty() || e.state.as_ref().is_some_and(|s| s.has_overlay())
                })
            })
            .collect()
    }

    pub(super) fn with_state<R>(
        &self,
        id: FileId,
        f: impl FnOnce(&FileState) -> R,
    ) -> Result<R, StoreError> {
        let table = self.table.borrow();
        let e = table.entry(id).ok_or(StoreError::Gone)?;
        let st = e.state.as_ref().ok_or(StoreError::Gone)?;
        Ok(f(st))
    }

    /// Change a loaded file's state in memory (no page is touched).
    pub(super) fn with_state_mut<R>(
        &self,
        id: FileId,
        f: impl FnOnce(&mut FileState) -> R,
    ) -> Result<R, StoreError> {
        let mut table = self.table.borrow_mut();
        let e = table.entry_mut(id).ok_or(StoreError::Gone)?;
        let st = e.state.as_mut().ok_or(StoreError::Gone)?;
        Ok(f(st))
    }

    /// The in-memory header of a loaded file.
    pub(super) fn header(&self, id: FileId) -> Option<Header> {
        self.with_state(id, |s| s.header.clone()).ok()
    }

    /// Run `f` on a loaded file's state with its cached pages as slots.
    fn with_slots<R>(
        &self,
        id: FileId,
        f: impl FnOnce(&mut FileState, &mut dyn Slots) -> R,
    ) -> Result<R, StoreError> {
        let mut table = self.table.borrow_mut();
        let e = table.entry_mut(id).ok_or(StoreError::Gone)?;
        let st = e.state.as_mut().ok_or(StoreError::Gone)?;
        let mut pages = self.pages.borrow_mut();
        let mut slots = pages.slots(id, &mut e.dirty_pages);
        Ok(f(st, &mut slots))
    }

    // ----- descriptors and pages -----------------------------------------------------

    async fn fd(&self, id: FileId) -> Result<Rc<OpenFile>, StoreError> {
        if let Some(f) = self.fds.cached(id) {
            return Ok(f);
        }
        let rel = self
            .table
            .borrow()
            .entry(id)
            .ok_or(StoreError::Gone)?
            .rel
            .clone();
        self.fds.open(id, &self.abs_path(&rel)).await
    }

    /// Read one bucket page from disk (or from an in-flight write of it).
    async fn read_page(&self, id: FileId, page: u32) -> Result<Box<[u8]>, StoreError> {
        if let Some(data) = self.pages.borrow().copy_in_flight(&(id, page)) {
            return Ok(data);
        }
        let fd = self.fd(id).await?;
        Ok(page_cache::read_page(&fd.file, page).await?)
    }

    /// Make `pages` of a file resident in the page cache. The pages not cached are
    /// read from disk together (one I/O each, all in flight at once).
    async fn ensure_pages(&self, id: FileId, pages: &[u32]) -> Result<(), StoreError> {
        let mut missing = Vec::new();
        for &p in pages {
            if !self.pages.borrow_mut().touch(&(id, p)) {
                missing.push(p);
            }
        }
        self.count_pages(
            id,
            (pages.len() - missing.len()) as u64,
            missing.len() as u64,
        );
        if missing.is_empty() {
            return Ok(());
        }
        let fresh = self
            .table
            .borrow()
            .entry(id)
            .and_then(|e| e.state.as_ref())
            .is_some_and(|s| s.fresh);
        let loaded: Vec<Result<Box<[u8]>, StoreError>> = if fresh {
            missing
                .iter()
                .map(|_| Ok(vec![0u8; PAGE_SIZE].into_boxed_slice()))
                .collect()
        } else {
            join_all(missing.iter().map(|&p| self.read_page(id, p)).collect()).await
        };
        for (&p, data) in missing.iter().zip(loaded) {
            let data = data?;
            let evicted = {
                let mut cache = self.pages.borrow_mut();
                if cache.contains(&(id, p)) {
                    continue; // someone else loaded it meanwhile: theirs may be newer
                }
                cache.insert((id, p), Page { data, dirty: 0 })
            };
            self.write_back_evicted(evicted).await;
        }
        Ok(())
    }

    /// Write evicted dirty pages back, consecutive whole pages of a file in one write,
    /// the writes together. A page whose write fails goes back into the cache with its
    /// sectors dirty: its data is not dropped.
    async fn write_back_evicted(&self, evicted: Vec<(PageKey, Page)>) {
        let mut dirty: Vec<(PageKey, Rc<[u8]>, u16, u64)> = Vec::new();
        for ((id, p), page) in evicted {
            if page.dirty == 0 {
                continue;
            }
            let data: Rc<[u8]> = Rc::from(page.data);
            let seq = self.pages.borrow_mut().begin_write((id, p), data.clone());
            if let Some(e) = self.table.borrow_mut().entry_mut(id) {
                e.dirty_pages.retain(|&x| x != p);
                if let Some(st) = e.state.as_mut() {
                    st.fresh = false;
                }
            }
            dirty.push(((id, p), data, page.dirty, seq));
        }
        if dirty.is_empty() {
            return;
        }
        dirty.sort_by_key(|d| d.0);
        let mut groups = Vec::new();
        let mut i = 0;
        while i < dirty.len() {
            let id = dirty[i].0 .0;
            let n = dirty[i..].iter().take_while(|d| d.0 .0 == id).count();
            let masks: Vec<(u32, u16)> = dirty[i..i + n].iter().map(|d| (d.0 .1, d.2)).collect();
            groups.extend(
                page_cache::write_groups(&masks)
                    .into_iter()
                    .map(|g| (g.start + i)..(g.end + i)),
            );
            i += n;
        }
        let writes = groups.iter().map(|g| {
            let run: Vec<(u32, &[u8], u16)> = dirty[g.clone()]
                .iter()
                .map(|d| (d.0 .1, &d.1[..], d.2))
                .collect();
            self.write_group(dirty[g.start].0 .0, run)
        });
        let results = join_all(writes.collect()).await;
        for (g, result) in groups.into_iter().zip(results) {
            for ((id, p), data, mask, seq) in &dirty[g] {
                self.pages.borrow_mut().finish_write((*id, *p), *seq);
                if result.is_err() {
                    self.pages.borrow_mut().redirty((*id, *p), data, *mask);
                    self.mark_dirty_page(*id, *p);
                }
            }
            if let Err(e) = result {
                self.stats.borrow_mut().write_errors += 1;
                self.write_back_log.failed(&e);
            }
        }
    }

    /// Note a page of a file as dirty (for the file's next flush).
    fn mark_dirty_page(&self, id: FileId, p: u32) {
        if let Some(e) = self.table.borrow_mut().entry_mut(id) {
            if !e.dirty_pages.contains(&p) {
                e.dirty_pages.push(p);
            }
        }
    }

    /// One write group of [`page_cache::write_groups`]: a run of whole pages, or one
    /// page's dirty sectors.
    async fn write_group(&self, id: FileId, run: Vec<(u32, &[u8], u16)>) -> Result<(), StoreError> {
        let fd = self.fd(id).await?;
        match run.as_slice() {
            [(p, data, mask)] => page_cache::write_page(&fd.file, *p, data, *mask).await?,
            pages => {
                let datas: Vec<&[u8]> = pages.iter().map(|r| r.1).collect();
                page_cache::write_run(&fd.file, pages[0].0, &datas).await?;
            }
        }
        let mut stats = self.stats.borrow_mut();
        stats.page_writes += run.len() as u64;
        stats.write_ops += 1;
        Ok(())
    }

    async fn write_header(&self, id: FileId, header: &[u8; HEADER_SIZE]) -> Result<(), StoreError> {
        let fd = self.fd(id).await?;
        page_cache::write_header(&fd.file, header).await?;
        self.stats.borrow_mut().header_writes += 1;
        Ok(())
    }

    // ----- writing -------------------------------------------------------------------

    /// One AGGREGATE write, loading the page it needs if any, then keeping the overlay
    /// within its bound.
    pub(super) async fn apply_write(&self, id: FileId, b: Bucket) -> Result<(), StoreError> {
        loop {
            let (r, spill) = self.with_slots(id, |st, slots| {
                let r = st.write(slots, &b, Mode::Aggregate);
                (r, st.overlay_spill_page().is_some())
            })?;
            match r {
                Ok(true) => {}
                Ok(false) => self.stats.borrow_mut().too_old += 1,
                Err(NeedPage(p)) => {
                    self.ensure_pages(id, &[p]).await?;
                    continue;
                }
            }
            if spill {
                self.spill_overlay(id).await?;
            }
            return Ok(());
        }
    }

    /// `put_buckets_overwrite` on a loaded file. The pages it writes into are made
    /// resident first, together; a page the put fills entirely is not read from disk
    /// (a replica's catch-up writes whole pages), it starts blank right before the put.
    pub(super) async fn put_overwrite(
        &self,
        id: FileId,
        buckets: &[Bucket],
    ) -> Result<PutReport, StoreError> {
        let (plan, per_page, capacity) = self.with_state(id, |st| {
            (st.put_plan(buckets), st.slots_per_page(), st.capacity())
        })?;
        // The last page of a file may hold fewer slots than a page has room for.
        let full_page =
            |p: u32, n: usize| n == per_page && (p as i64 + 1) * per_page as i64 <= capacity;
        // A few buckets of a page (a replica's steady Data: the buckets of one flush
        // round) replace their slots in the overlay, without their page; more would
        // spill at once, so their page is read first, with the others.
        let partial: Vec<u32> = plan
            .iter()
            .filter(|&&(p, n)| !full_page(p, n) && n > FEW_BUCKETS)
            .map(|&(p, _)| p)
            .collect();
        self.ensure_pages(id, &partial).await?;
        // No await from here to the put: nobody can see a blank page before it is filled.
        let mut evicted = Vec::new();
        {
            let mut cache = self.pages.borrow_mut();
            for &(p, n) in &plan {
                if full_page(p, n) && !cache.contains(&(id, p)) {
                    let data = vec![0u8; PAGE_SIZE].into_boxed_slice();
                    evicted.extend(cache.insert((id, p), Page { data, dirty: 0 }));
                }
            }
        }
        let r = self.with_slots(id, |st, slots| st.put_overwrite(slots, buckets))?;
        self.write_back_evicted(evicted).await;
        self.spill_overlay(id).await?;
        Ok(r)
    }

    /// Keep a file's overlay within its bound by moving it into pages.
    async fn spill_overlay(&self, id: FileId) -> Result<(), StoreError> {
        while let Some(p) = self.with_state(id, |st| st.overlay_spill_page())? {
            self.ensure_pages(id, &[p]).await?;
            self.with_slots(id, |st, slots| st.absorb_overlay(slots))?;
        }
        Ok(())
    }

    /// Move all of a file's overlay into pages (before a flush snapshot).
    async fn drain_overlay(&self, id: FileId) -> Result<(), StoreError> {
        let mut need = Vec::new();
        for _ in 0..8 {
            need.clear();
            self.with_state(id, |st| st.overlay_pages(&mut need))?;
            if need.is_empty() {
                return Ok(());
            }
            self.ensure_pages(id, &need).await?;
            self.with_slots(id, |st, slots| st.absorb_overlay(slots))?;
        }
        Ok(())
    }

    // ----- flushing ------------------------------------------------------------------

    /// A trailing file pushes out one entry of its window (a no-op for other files).
    pub(super) async fn trailing_flush(&self, id: FileId) -> Result<(), StoreError> {
        loop {
            let r = self.with_slots(id, |st, slots| st.trailing_flush(slots))?;
            match r {
                Ok(()) => return self.spill_overlay(id).await,
                Err(NeedPage(p)) => self.ensure_pages(id, &[p]).await?,
            }
        }
    }

    /// Write a file's dirty pages, then its header (docs/file-format.md, "Page cache and
    /// flushing", Port S-6). Returns the flush visit; `None` for a file not loaded.
    pub(super) async fn flush_file(&self, id: FileId) -> Result<Option<FlushVisit>, StoreError> {
        while self.flushing.borrow().contains(&id) {
            glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
        }
        self.flushing.borrow_mut().insert(id);
        let _flushing = Flushing {
            set: &self.flushing,
            id,
        };
        if self.with_state(id, |st| st.has_overlay()).unwrap_or(false) {
            self.drain_overlay(id).await?;
        }
        let (mut snapshot, visit) = {
            let mut table = self.table.borrow_mut();
            let e = table.entry_mut(id).ok_or(StoreError::Gone)?;
            let Some(st) = e.state.as_mut() else {
                return Ok(None);
            };
            let mut pages = self.pages.borrow_mut();
            let mut snapshot = Vec::new();
            for p in e.dirty_pages.drain(..) {
                if let Some((data, mask, seq)) = pages.take_dirty((id, p)) {
                    snapshot.push((p, data, mask, seq));
                }
            }
            if !snapshot.is_empty() {
                st.fresh = false;
            }
            let visit = FlushVisit {
                id,
                rel: e.rel.clone(),
                header: st.header.clone(),
                flushed_last: st.newest_bucket_time(),
                dirty_low: st.take_dirty_low(),
            };
            (snapshot, visit)
        };
        // Pages of one snapshot go out together, consecutive whole pages in one write;
        // the header only after all completed.
        snapshot.sort_by_key(|s| s.0);
        let masks: Vec<(u32, u16)> = snapshot.iter().map(|s| (s.0, s.2)).collect();
        let groups = page_cache::write_groups(&masks);
        let writes = groups.iter().map(|g| {
            let run = snapshot[g.clone()]
                .iter()
                .map(|(p, data, mask, _)| (*p, &data[..], *mask))
                .collect();
            self.write_group(id, run)
        });
        let written = join_all(writes.collect()).await;
        let mut result = Ok(());
        {
            let mut pages = self.pages.borrow_mut();
            for (p, _, _, seq) in &snapshot {
                pages.finish_write((id, *p), *seq);
            }
        }
        // A page that could not be written keeps its sectors dirty, and the file keeps
        // its lowest written time, so that the next flush writes them and its visit
        // tells replication of them: a failed write loses nothing.
        for (g, r) in groups.into_iter().zip(written) {
            if let Err(e) = r {
                result = Err(e);
                for (p, data, mask, _) in &snapshot[g] {
                    self.pages.borrow_mut().redirty((id, *p), data, *mask);
                    self.mark_dirty_page(id, *p);
                }
            }
        }
        if result.is_ok() {
            let bytes = visit.header.to_bytes();
            let hash = self.header_hash.hash_one(&bytes[..]).max(1);
            let on_disk = self.with_state(id, |st| st.header_on_disk).unwrap_or(0);
            if hash != on_disk {
                result = self.write_header(id, &bytes).await;
                if result.is_ok() {
                    let _ = self.with_state_mut(id, |st| st.header_on_disk = hash);
                }
            }
        }
        if result.is_err() {
            self.stats.borrow_mut().write_errors += 1;
            let _ = self.with_state_mut(id, |st| st.dirty_low = st.dirty_low.min(visit.dirty_low));
        }
        result.map(|()| Some(visit))
    }

    // ----- reading -------------------------------------------------------------------

    /// Pages of a file, from the cache or disk (those read together), without filling
    /// the cache.
    async fn page_view(
        &self,
        id: FileId,
        pages: &[u32],
    ) -> Result<HashMap<u32, Box<[u8]>>, StoreError> {
        let mut out = HashMap::with_capacity(pages.len());
        let mut missing = Vec::new();
        for &p in pages {
            match self.pages.borrow().peek_data(&(id, p)) {
                Some(d) => {
                    out.insert(p, Box::from(d));
                }
                None => missing.push(p),
            }
        }
        self.count_pages(
            id,
            (pages.len() - missing.len()) as u64,
            missing.len() as u64,
        );
        let read = join_all(missing.iter().map(|&p| self.read_page(id, p)).collect()).await;
        for (p, data) in missing.into_iter().zip(read) {
            out.insert(p, data?);
        }
        Ok(out)
    }

    /// Read a loaded file through private copies of the pages `pages_of` names, from
    /// the cache or disk, without filling the cache.
    ///
    /// The pages a read needs depend on the file's state (none for the slots its
    /// overlay holds), and the state may change while they are read (a spill moves
    /// overlay slots into their pages): the state the read sees is taken with no await
    /// after the check that every page it needs is in the view, refreshed from the
    /// cache, where pages written meanwhile are newer.
    pub(super) async fn read_view<R>(
        &self,
        id: FileId,
        pages_of: impl Fn(&FileState, &mut Vec<u32>),
        read: impl FnOnce(&FileState, &dyn Slots) -> R,
    ) -> Result<R, StoreError> {
        let mut view: HashMap<u32, Box<[u8]>> = HashMap::new();
        let mut need = Vec::new();
        loop {
            need.clear();
            let st = self.with_state(id, |st| {
                pages_of(st, &mut need);
                st.clone()
            })?;
            need.retain(|p| !view.contains_key(p));
            if need.is_empty() {
                let cache = self.pages.borrow();
                for (&p, data) in view.iter_mut() {
                    if let Some(d) = cache.peek_data(&(id, p)) {
                        if **data != *d {
                            *data = Box::from(d);
                        }
                    }
                }
                drop(cache);
                let slots = ViewSlots {
                    pages: &view,
                    st: &st,
                };
                return Ok(read(&st, &slots));
            }
            view.extend(self.page_view(id, &need).await?);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{FailureLog, StoreError};

    #[test]
    fn failure_log_logs_the_first_and_counts_the_rest() {
        let log = FailureLog::default();
        let e = StoreError::Io(std::io::Error::other("EIO"));
        log.failed(&e);
        assert!(log.last.get().is_some());
        assert_eq!(log.unlogged.get(), 0);
        for _ in 0..3000 {
            log.failed(&e);
        }
        assert_eq!(log.unlogged.get(), 3000, "within 10 s: counted, not logged");
        log.last
            .set(Some(std::time::Instant::now() - FailureLog::EVERY));
        log.failed(&e);
        assert_eq!(log.unlogged.get(), 0, "the next line reports them");
    }
}
