//! The on-disk store of one shard: a directory tree of counter files, read and written
//! through glommio DMA files (docs/file-format.md: "The store directory", "Page cache and
//! flushing", "Operations for replication").
//!
//! Memory per file is kept small and files stay closed when idle:
//! - every known file has an entry in the file table (its relative path, and once
//!   touched, its [`FileState`](crate::statfile::FileState): the header and a few
//!   bookkeeping fields);
//! - bucket pages live in one bounded LRU page cache per store; dirty pages stay there
//!   until a flush (or an eviction) writes them;
//! - descriptors live in a bounded LRU; a file is reopened on demand.
//!
//! A `Store` belongs to one executor (it is `!Send`); every method runs on it and never
//! blocks: disk I/O goes through glommio, directory work through `spawn_blocking`.
//!
//! [`Store`] (this file) works on counters: creating them, recording, flush rounds,
//! queries, and the operations for replication. It is made of the counter table
//! (`counters`), the files (`files`, over the file table of `file_table`, the
//! descriptors of `fd_cache` and the pages of `page_cache`, read and written through
//! `slots`) and the flush bookkeeping (`flush`). `create` and `replica_ops` hold what
//! those operations do without the store's state; `walk` lists the tree at start-up.

mod clean_mark;
mod counters;
mod create;
mod error;
mod event_windows;
mod fd_cache;
mod file_table;
mod files;
mod flush;
mod options;
mod page_cache;
mod quick;
mod replica_ops;
mod slots;
mod stats;
mod walk;

use std::cell::{Cell, RefCell};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use glommio::sync::{Permit, Semaphore};

use crate::counter::{gauge_bucket, Reject, Sample, Writes};
use crate::format::{Bucket, Grid, Header, FLAG_COLLATED};
use crate::hashing::FastSet;
use crate::query::{self, QueryParams, QueryResult};
use crate::statfile::PutReport;
use counters::{Counters, FileIds};
use create::{CounterPlan, FileJob};
use fd_cache::{prime_iopoll_probe, prime_probe_file};
use files::Files;
use flush::{EventLog, FlushCursor};

pub use clean_mark::{take_clean_mark, write_clean_mark, CLEAN_MARK};
pub use counters::{counter_dir, CounterState};
pub use error::StoreError;
pub use fd_cache::IoMode;
pub use file_table::{FileId, Lookup};
pub use flush::{join_all, FlushVisit, ReplicationEvent, FLUSH_CONCURRENCY};
pub use options::{Allocation, KeyFilter, StoreOptions};
pub use quick::QuickWriter;
pub use stats::StoreStats;
pub use walk::{walk_store, StoreListing};

/// Blocking jobs a batch of creations is split into: the daemon's blocking pool has
/// as many threads per shard (`istatd_shards::BLOCKING_THREADS`).
const CREATE_JOBS: usize = 4;

/// Counters below which a batch of creations is not split further.
const CREATE_JOB_MIN: usize = 16;

/// What `record` did with a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordOutcome {
    /// The counter did not exist before this sample.
    pub created: bool,
    /// Why the sample was not stored (counted in the store's stats).
    pub rejected: Option<Reject>,
    /// An event older than its counter's collation window, merged into the stored
    /// buckets ([`Collation::record_late`](crate::counter::Collation::record_late)).
    pub late: bool,
}

/// The store of one shard.
pub struct Store {
    opts: StoreOptions,
    files: Files,
    counters: RefCell<Counters>,
    /// Serializes mutations that await between computing and applying writes.
    write_lock: Semaphore,
    flush_cursor: FlushCursor,
    /// Flush visits and deletions for replication, collected only once enabled.
    events: EventLog,
    /// Replica mode (docs/file-format.md, "Operations for replication"): no collation or
    /// trailing logic runs on any file.
    replica: Cell<bool>,
    /// This store held replicated buckets (it was a replica in this process, or is a
    /// promoted one): new collation windows start from the files' buckets.
    seed_windows: Cell<bool>,
}

fn is_event_header(h: &Header) -> bool {
    h.flags & FLAG_COLLATED != 0
}

impl Store {
    /// Hold the write lock until the permit drops.
    async fn lock_writes(&self) -> Result<Permit<'_>, StoreError> {
        Ok(self.write_lock.acquire_permit(1).await?)
    }

    /// Open (creating if needed) the store directory and scan it.
    pub async fn open(opts: StoreOptions) -> Result<Store, StoreError> {
        if opts.retentions.is_empty() {
            return Err(StoreError::Invalid("no retention given".into()));
        }
        let root = opts.root.clone();
        let root2 = root.clone();
        let root = glommio::executor()
            .spawn_blocking(move || -> io::Result<PathBuf> {
                std::fs::create_dir_all(&root2)?;
                prime_probe_file(&root2)?;
                std::fs::canonicalize(&root2)
            })
            .await
            .map_err(|e| {
                StoreError::Io(io::Error::new(e.kind(), format!("{}: {e}", root.display())))
            })?;
        prime_iopoll_probe(&root).await;
        let seed_windows = opts.seed_windows;
        let store = Store {
            files: Files::new(root, &opts),
            counters: RefCell::new(Counters::default()),
            opts,
            write_lock: Semaphore::new(1),
            flush_cursor: FlushCursor::default(),
            events: EventLog::default(),
            replica: Cell::new(false),
            seed_windows: Cell::new(seed_windows),
        };
        store.scan().await?;
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        self.files.root()
    }

    pub fn options(&self) -> &StoreOptions {
        &self.opts
    }

    /// Page-cache `[hits, misses]` by retention, in the store's retention order:
    /// pages found in the cache and pages read from disk, for writes and reads alike.
    pub fn page_counts_by_retention(&self) -> Vec<[u64; 2]> {
        self.files.page_counts()
    }

    pub fn stats(&self) -> StoreStats {
        let counters = self.counters.borrow();
        let c = counters.stats;
        let mut s = StoreStats {
            counters: counters.len() as u64,
            counters_created: c.counters_created,
            from_future: c.from_future,
            from_past: c.from_past,
            late_events: c.late,
            rejected: c.rejected,
            flush_rounds: self.flush_cursor.rounds(),
            ..StoreStats::default()
        };
        self.files.add_stats(&mut s);
        s
    }

    /// Counter keys known to this store, sorted.
    pub fn counter_keys(&self) -> Vec<String> {
        self.keys_matching(|_| true)
    }

    /// Keys for which `f` holds, sorted.
    fn keys_matching(&self, f: impl Fn(&str) -> bool) -> Vec<String> {
        let mut keys: Vec<String> = self.all_keys().into_iter().filter(|k| f(k)).collect();
        keys.sort();
        keys
    }

    /// Every counter's key, in the table's own order: kept for a counter with none of
    /// its files, else its first file's directory.
    fn all_keys(&self) -> Vec<String> {
        let counters = self.counters.borrow();
        counters
            .entries()
            .filter_map(|(key, files)| match key {
                Some(k) => Some(k.to_string()),
                None => self.files.counter_key(files),
            })
            .collect()
    }

    /// The finest retention file of a counter, if the counter and that file exist.
    fn finest_file(&self, key: &str) -> Option<FileId> {
        self.counters
            .borrow()
            .files(key)?
            .first()
            .copied()
            .flatten()
    }

    /// Whether a counter is an event counter, loading its finest file's header if needed.
    pub async fn load_counter_kind(&self, key: &str) -> Result<bool, StoreError> {
        let id = self.finest_file(key).ok_or(StoreError::Gone)?;
        self.files.ensure_loaded(id).await?;
        self.files.with_state(id, |s| is_event_header(&s.header))
    }

    /// Whether a counter is an event counter (None when unknown or not yet loaded).
    pub fn is_event_counter(&self, key: &str) -> Option<bool> {
        let id = self.finest_file(key)?;
        self.files
            .with_state(id, |s| is_event_header(&s.header))
            .ok()
    }

    // ----- start-up scan -------------------------------------------------------------

    async fn scan(&self) -> Result<(), StoreError> {
        let root = self.root().to_path_buf();
        let started = Instant::now();
        let dirs: Arc<StoreListing> = match &self.opts.listing {
            Some(l) => l.clone(),
            None => Arc::new(
                glommio::executor()
                    .spawn_blocking(move || walk_store(&root))
                    .await
                    .map_err(StoreError::Io)?,
            ),
        };
        let mut counters = self.counters.borrow_mut();
        let nfiles = walk::index_listing(&dirs, &self.opts, &self.files, &mut counters);
        let secs = started.elapsed().as_secs_f64();
        tracing::info!(
            root = %self.root().display(),
            counters = counters.len(),
            files = nfiles,
            seconds = secs,
            "store scan done"
        );
        Ok(())
    }

    // ----- creating counters ---------------------------------------------------------

    /// Make a counter exist with all its retention files; returns whether it was new.
    async fn ensure_counter(
        &self,
        key: &str,
        event: bool,
        zero_time: i64,
    ) -> Result<bool, StoreError> {
        let Some(plan) = self.plan_counter(key, event, zero_time).await? else {
            return Ok(false);
        };
        let is_new = plan.is_new;
        self.create_planned(vec![plan]).await?;
        Ok(is_new)
    }

    /// Create many counters' missing files in one trip to the blocking pool (a batch
    /// of samples naming new counters). Each entry: key, event flag, zero time (its
    /// first sample's). Returns how many counters were new.
    pub async fn create_counters(&self, list: &[(&str, bool, i64)]) -> Result<usize, StoreError> {
        let _permit = self.lock_writes().await?;
        let mut plans = Vec::new();
        let mut planned: FastSet<&str> = FastSet::default();
        for &(key, event, zero) in list {
            if !planned.insert(key) {
                continue;
            }
            match self.plan_counter(key, event, zero).await {
                Ok(Some(p)) => plans.push(p),
                Ok(None) => {}
                Err(e) => tracing::warn!(counter = %key, error = %e, "cannot create counter"),
            }
        }
        let new = plans.iter().filter(|p| p.is_new).count();
        if !plans.is_empty() {
            self.create_planned(plans).await?;
        }
        Ok(new)
    }

    /// Load the headers of these counters' files concurrently (up to
    /// [`FLUSH_CONCURRENCY`] files in flight), so a batch naming many counters not yet
    /// touched since start-up waits for one round of reads, not one per file.
    pub async fn preload(&self, keys: &[&str]) {
        let ids: Vec<FileId> = {
            let counters = self.counters.borrow();
            keys.iter()
                .flat_map(|k| counters.existing_files(k))
                .filter(|&id| self.files.needs_load(id))
                .collect()
        };
        for chunk in ids.chunks(FLUSH_CONCURRENCY) {
            let loads = chunk
                .iter()
                .map(|&id| self.files.ensure_loaded(id))
                .collect();
            for r in join_all(loads).await {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "preload");
                }
            }
        }
    }

    /// Whether a counter exists with all its retention files.
    pub fn has_counter(&self, key: &str) -> bool {
        self.counters
            .borrow()
            .files(key)
            .is_some_and(|files| files.iter().all(Option::is_some))
    }

    /// What creating a counter's missing files takes (None: nothing is missing). A new
    /// counter is registered right away (its files follow in `create_planned`).
    async fn plan_counter(
        &self,
        key: &str,
        event: bool,
        zero_time: i64,
    ) -> Result<Option<CounterPlan>, StoreError> {
        let n = self.opts.retentions.len();
        let missing = self.counters.borrow().missing_files(key, n);
        if missing.is_empty() {
            return Ok(None);
        }
        let dir = create::checked_counter_dir(key)?;
        let is_new = !self.counters.borrow().contains(key);
        if is_new {
            self.counters.borrow_mut().register(key, n);
        }
        // The finest file's flag decides event-ness for an existing counter.
        let mut event = event;
        if let Some(id) = self.finest_file(key) {
            self.files.ensure_loaded(id).await?;
            if let Some(h) = self.files.header(id) {
                event = is_event_header(&h);
            }
        }
        let files = create::plan_files(
            &self.opts.retentions,
            &dir,
            &missing,
            event,
            zero_time,
            |rel| self.files.abs_path(rel),
        );
        Ok(Some(CounterPlan {
            key: key.into(),
            dir: self.files.abs_path(&dir),
            is_new,
            files,
        }))
    }

    /// Create the planned directories and files (one blocking call), then register them.
    async fn create_planned(&self, plans: Vec<CounterPlan>) -> Result<(), StoreError> {
        let alloc = self.opts.allocation;
        let jobs: Vec<(PathBuf, Vec<FileJob>)> = plans
            .iter()
            .map(|p| p.job(|rel| self.files.abs_path(rel)))
            .collect();
        // Each file's first bytes are a synchronous O_DIRECT write: jobs in parallel
        // keep several in the disk's queue (a first pass over 100,000 new counters
        // created 9,000 files/s with one).
        let per_job = jobs.len().div_ceil(CREATE_JOBS).max(CREATE_JOB_MIN);
        let mut parts = Vec::new();
        let mut jobs = jobs.into_iter().peekable();
        while jobs.peek().is_some() {
            let part: Vec<_> = jobs.by_ref().take(per_job).collect();
            parts.push(
                glommio::executor()
                    .spawn_blocking(move || create::create_counter_files(&part, alloc)),
            );
        }
        let results: Vec<_> = join_all(parts).await.into_iter().flatten().collect();
        let mut first_err = None;
        for (plan, result) in plans.into_iter().zip(results) {
            let (created_dir, created) = match result {
                Ok(r) => r,
                Err(e) => {
                    first_err.get_or_insert(e);
                    continue;
                }
            };
            for ((i, rel, header), new_file) in plan.files.into_iter().zip(created) {
                let id = if new_file {
                    self.files.add_created(rel.into(), header)
                } else {
                    self.files.add(rel.into())
                };
                self.counters.borrow_mut().set_file(&plan.key, i, id);
            }
            if created_dir {
                self.counters.borrow_mut().stats.counters_created += 1;
            }
        }
        match first_err {
            Some(e) => Err(StoreError::Io(e)),
            None => Ok(()),
        }
    }

    /// Load every retention file of a counter; returns their ids, whether the counter is
    /// an event counter, and the finest file's interval.
    async fn load_counter(&self, key: &str) -> Result<(FileIds, bool, i64), StoreError> {
        let ids = self
            .counters
            .borrow()
            .all_files(key)
            .ok_or(StoreError::Gone)?;
        for &id in ids.as_slice() {
            self.files.ensure_loaded(id).await?;
        }
        self.counter_kind(ids)
    }

    // ----- recording -----------------------------------------------------------------

    /// Record a sample into counter `key` (already munged, without `*`), creating it
    /// (and, with `create_parents`, its parents) on first use (docs/file-format.md, "How
    /// buckets are written", "Creation"). A rejected sample still creates the counter, as
    /// in the reference. All samples come from one source (see [`Store::record_from`]).
    pub async fn record(
        &self,
        key: &str,
        event: bool,
        s: Sample,
        now: i64,
    ) -> Result<RecordOutcome, StoreError> {
        self.record_from(key, event, s, now, 0).await
    }

    /// [`Store::record`] of a sample from `source`: a number for the stream it came in
    /// (a connection), the same for every sample of that stream. An event older than
    /// its counter's window is late, and merged, when another source (or an admin
    /// `flush`) moved the window past it; from its own source it is from the past, as
    /// in the reference ([`Collation::takes_late`](crate::counter::Collation::takes_late)).
    pub async fn record_from(
        &self,
        key: &str,
        event: bool,
        s: Sample,
        now: i64,
        source: u32,
    ) -> Result<RecordOutcome, StoreError> {
        let _permit = self.lock_writes().await?;
        // The usual case, a counter whose files are all loaded, takes one lookup.
        let (created, (ids, is_event, finest)) = match self.ready_files(key) {
            Some(ids) => (false, self.counter_kind(ids)?),
            None => {
                let created = self.ensure_counter(key, event, s.time).await?;
                if created && self.opts.create_parents {
                    let mut parent = key;
                    while let Some(pos) = parent.rfind('.') {
                        parent = &parent[..pos];
                        self.ensure_counter(parent, event, s.time).await?;
                    }
                }
                (created, self.load_counter(key).await?)
            }
        };
        let ids = ids.as_slice();
        let outcome = |rejected| {
            Ok(RecordOutcome {
                created,
                rejected,
                late: false,
            })
        };
        let writes: Writes = if is_event {
            if self.seed_windows.get() && !self.counters.borrow().has_collation(key) {
                self.open_seeded_window(key, ids[0], finest, s.time).await?;
            }
            // One lookup: a late event, or a slot that meets its replicated bucket first
            // (a promoted replica).
            let (late, wants_seed) = self
                .counters
                .borrow_mut()
                .collation(key)
                .map_or((false, false), |c| {
                    (c.takes_late(s.time, source), c.wants_seed(s.time))
                });
            if late {
                let rejected = self.record_late_event(key, ids, finest, s).await?;
                return Ok(RecordOutcome {
                    created,
                    rejected,
                    late: rejected.is_none(),
                });
            }
            let existing = if wants_seed {
                let bt = s.time - s.time.rem_euclid(finest.max(1));
                let (b, _) = self.read_valid_buckets(ids[0], bt, bt, 1, 1).await?;
                b.into_iter().next()
            } else {
                None
            };
            let mut counters = self.counters.borrow_mut();
            let col = counters
                .collation_or_new(key, finest)
                .ok_or(StoreError::Gone)?;
            match col.record_seeded(s.time, s.sum, now, ids.len(), existing.as_ref(), source) {
                Ok(w) => w,
                Err(r) => {
                    counters.count_reject(r);
                    return outcome(Some(r));
                }
            }
        } else {
            let rejected = self.record_gauge(ids, &s, now).await?;
            return outcome(rejected);
        };
        self.apply_writes(ids, &writes).await?;
        outcome(None)
    }

    /// A gauge sample into a counter's loaded files: the same bucket into every file,
    /// without a list per sample. Returns why it was refused, if it was.
    async fn record_gauge(
        &self,
        ids: &[FileId],
        s: &Sample,
        now: i64,
    ) -> Result<Option<Reject>, StoreError> {
        match gauge_bucket(s, now) {
            Ok(b) => {
                for &id in ids {
                    self.files.apply_write(id, b).await?;
                }
                Ok(None)
            }
            Err(r) => {
                self.counters.borrow_mut().count_reject(r);
                Ok(Some(r))
            }
        }
    }

    /// Make a counter exist (with empty files) without recording anything: parent
    /// creation when parents live on other shards. Returns whether it was created.
    pub async fn create_counter(
        &self,
        key: &str,
        event: bool,
        zero_time: i64,
    ) -> Result<bool, StoreError> {
        let _permit = self.lock_writes().await?;
        self.ensure_counter(key, event, zero_time).await
    }

    /// An event counter's collation writes. An empty bucket the window opened before
    /// the counter's first sample is left out of a file whose grid it does not fit:
    /// older than the file's zero time and not on its grid (docs/file-format.md, "Where a
    /// bucket goes"). The reference's truncating division writes it into the first bucket's
    /// slot, where that bucket then replaces it, so its files never show it (its own
    /// test_counter_incrementing reads `33 100 100 100` in the 5m file).
    async fn apply_writes(&self, ids: &[FileId], writes: &Writes) -> Result<(), StoreError> {
        for &(fi, b) in writes {
            let id = ids[fi];
            if b == Bucket::empty_at(b.time)
                && self.grid(id).is_some_and(|g| off_grid_before(&g, b.time))
            {
                continue;
            }
            self.files.apply_write(id, b).await?;
        }
        Ok(())
    }

    /// The in-memory header of a loaded file.
    pub fn header(&self, id: FileId) -> Option<Header> {
        self.files.header(id)
    }

    /// A loaded file's bucket grid, without copying its header.
    pub fn grid(&self, id: FileId) -> Option<Grid> {
        self.files.with_state(id, |st| Grid::of(&st.header)).ok()
    }

    // ----- flushing ------------------------------------------------------------------

    /// Flush one counter: event counters shift their collation window (admin `flush`
    /// when `force`), trailing files push out one entry, then dirty pages and headers
    /// are written (docs/file-format.md, "Page cache and flushing").
    pub async fn flush_counter(&self, key: &str, force: bool, now: i64) -> Result<(), StoreError> {
        let ids: Vec<FileId> = match self.counters.borrow().files(key) {
            Some(files) => files.iter().flatten().copied().collect(),
            None => return Ok(()),
        };
        let loaded = ids.iter().all(|&id| self.files.is_loaded(id));
        if loaded && ids.len() == self.opts.retentions.len() && !self.replica.get() {
            let _permit = self.lock_writes().await?;
            let writes = self
                .counters
                .borrow_mut()
                .flush_writes(key, force, now, ids.len());
            self.apply_writes(&ids, &writes).await?;
            for &id in &ids {
                self.files.trailing_flush(id).await?;
            }
        }
        for &id in &ids {
            self.flush_file(id).await?;
        }
        Ok(())
    }

    /// Write a file's dirty pages, then its header (docs/file-format.md, "Page cache and
    /// flushing", Port S-6). Returns the flushed header and `dirty_low` (the flush visit).
    pub async fn flush_file(&self, id: FileId) -> Result<Option<(Header, i64)>, StoreError> {
        let Some(visit) = self.files.flush_file(id).await? else {
            return Ok(None);
        };
        let flushed = (visit.header.clone(), visit.dirty_low);
        self.events.visited(visit);
        Ok(Some(flushed))
    }

    /// Start collecting flush visits and deletions for replication.
    pub fn enable_replication_events(&self) {
        self.events.enable();
    }

    /// The visits and deletions collected since the last call, oldest first.
    pub fn take_replication_events(&self) -> Vec<ReplicationEvent> {
        self.events.take()
    }

    /// Replica mode on or off (docs/file-format.md, "Operations for replication"): while
    /// on, flushes run no collation or trailing logic, so only replicated buckets change a
    /// file. For a store with collation windows, use [`Store::enter_replica_mode`] to turn
    /// it on.
    pub fn set_replica_mode(&self, on: bool) {
        if on {
            self.seed_windows.set(true);
            self.counters.borrow_mut().drop_collations();
        }
        self.replica.set(on);
    }

    /// Become a replica at run time: every event counter's collation window is closed
    /// now (its local events written, as at a clean stop) and dropped, so that no
    /// window left from before can later write over replicated buckets. Windows opened
    /// after the store leaves replica mode start from the buckets the files hold.
    pub async fn enter_replica_mode(&self, now: i64) -> Result<(), StoreError> {
        if self.replica.get() {
            return Ok(());
        }
        self.close_collations(now).await?;
        self.set_replica_mode(true);
        Ok(())
    }

    pub fn replica_mode(&self) -> bool {
        self.replica.get()
    }

    /// The periodic flush's step: flush the next counter in round-robin order
    /// (docs/file-format.md, "Page cache and flushing"). Returns the key flushed, if any.
    pub async fn flush_next(&self, now: i64) -> Result<Option<String>, StoreError> {
        let next = self
            .flush_cursor
            .next(|| self.all_keys().into_iter().map(Into::into).collect());
        let Some((key, wrapped)) = next else {
            return Ok(None);
        };
        if wrapped {
            // Once a round: files that belong to no counter's retention set (a
            // replica's files of retentions this node does not configure) flush too.
            self.flush_dirty_files().await?;
        }
        self.flush_counter(&key, false, now).await?;
        Ok(Some(key.to_string()))
    }

    /// Flush every counter (admin `flush` when `force`), then every other file, with up
    /// to [`FLUSH_CONCURRENCY`] counters in flight.
    pub async fn flush_all(&self, force: bool, now: i64) -> Result<(), StoreError> {
        // Each flush in flight may hold an evicted descriptor a moment longer.
        let concurrency = (self.opts.max_open_files / 4).clamp(1, FLUSH_CONCURRENCY);
        let keys = self.counter_keys();
        for chunk in keys.chunks(concurrency) {
            let flushes = chunk
                .iter()
                .map(|k| self.flush_counter(k, force, now))
                .collect();
            for r in join_all(flushes).await {
                r?;
            }
        }
        self.flush_dirty_files().await
    }

    /// Flush every file with dirty pages or buckets in memory.
    async fn flush_dirty_files(&self) -> Result<(), StoreError> {
        let concurrency = (self.opts.max_open_files / 4).clamp(1, FLUSH_CONCURRENCY);
        let dirty = self.files.dirty_ids();
        for chunk in dirty.chunks(concurrency) {
            for r in join_all(chunk.iter().map(|&id| self.flush_file(id)).collect()).await {
                r?;
            }
        }
        Ok(())
    }

    /// Clean shutdown: close every event counter's window (a replica has none), then
    /// flush everything.
    pub async fn close(&self, now: i64) -> Result<(), StoreError> {
        if !self.replica.get() {
            self.close_collations(now).await?;
        }
        self.flush_all(false, now).await
    }

    // ----- reading -------------------------------------------------------------------

    /// A counter query (docs/interfaces.md §3.5.3). `None` for an unknown counter.
    pub async fn query(
        &self,
        key: &str,
        p: &QueryParams,
        now: i64,
    ) -> Result<Option<QueryResult>, StoreError> {
        if !self.counters.borrow().contains(key) {
            return Ok(None);
        }
        let (ids, _, _) = match self.load_counter(key).await {
            Ok(x) => x,
            Err(StoreError::Gone) => return Ok(None),
            Err(e) => return Err(e),
        };
        let ids = ids.as_slice();
        let headers: Vec<Header> = ids.iter().filter_map(|&id| self.files.header(id)).collect();
        let refs: Vec<&Header> = headers.iter().collect();
        let plan = query::plan(&refs, p, now);
        let Some(fi) = plan.file else {
            return Ok(Some(query::finish(&plan, &headers[0], &[])));
        };
        let id = ids[fi];
        // The plan already clamped the range: to the window's low end always, to
        // `last_bucket` for gauges only (event counters read past it and zero-fill).
        let count = plan
            .read_count
            .clamp(0, self.files.with_state(id, |st| st.capacity())?);
        let (lo, hi) = (plan.read_start_index, plan.read_start_index + count - 1);
        let result = self
            .files
            .read_view(
                id,
                |st, need| st.pages_for_indices(lo, count, need),
                |st, slots| {
                    let buckets: Vec<Bucket> = (lo..=hi)
                        .map(|ix| st.read_slot(slots, st.slot_of_index(ix)))
                        .collect();
                    query::finish(&plan, &st.header, &buckets)
                },
            )
            .await?;
        Ok(Some(result))
    }
}

/// A time older than a file's zero time that is not on its grid.
fn off_grid_before(g: &Grid, t: i64) -> bool {
    t < g.zero && (g.zero - t) % i64::from(g.interval.max(1)) != 0
}
