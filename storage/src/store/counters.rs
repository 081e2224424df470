//! The counter table: every counter key a store knows, with its retention files and,
//! for event counters, its collation window.

use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, Hasher};

use crate::hashing::{FastMap, FastState};

use super::FileId;
use crate::counter::{Collation, Reject, Writes};

/// Relative directory of a counter key: dots become slashes.
pub fn counter_dir(key: &str) -> String {
    key.replace('.', "/")
}

/// Where a counter stands for recording ([`Store::counter_state`](super::Store::counter_state)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterState {
    /// Unknown, or some retention file is not on disk yet: recording creates it.
    Missing,
    /// On disk, some file's header not read since start-up.
    Cold,
    /// Every file on disk and loaded.
    Ready,
}

/// One counter: its retention files and, for an event counter, its collation window.
/// Its key is not kept here: the files' directory is the key ([`counter_dir`]), as at
/// start-up (a key's bytes cost 32 B of heap per counter).
struct CounterEntry {
    /// Retention files in `--retention` order; `None` = not on disk yet.
    files: CounterFiles,
    collation: Option<Box<Collation>>,
}

/// Counts of what happened to counters and their samples (part of
/// [`StoreStats`](super::StoreStats)).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct CounterStats {
    pub(super) counters_created: u64,
    pub(super) from_future: u64,
    pub(super) from_past: u64,
    /// Events older than their window, merged into stored buckets.
    pub(super) late: u64,
    pub(super) rejected: u64,
}

/// A counter key's 128-bit keyed hash, the counter table's index.
///
/// Looking a key up by its bytes costs a second cache miss once the table outgrows
/// the caches (the entry points at the key's bytes, elsewhere on the heap), and the
/// owner shard looks up every sample's counter: at 100,000 counters that compare was
/// an eighth of the daemon's CPU. So the lookup compares hashes only: two keys would
/// share a counter if they shared 128 bits of a per-process random hash, about
/// 10^-28 at 500,000 counters, far below the odds of a memory error, and nobody can
/// precompute such keys (the hash is keyed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeyHash(u64, u64);

impl std::hash::Hash for KeyHash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.1);
    }
}

/// The table hashes [`KeyHash`]es with their own low bits: they are random already.
#[derive(Default)]
struct LowBits(u64);

impl Hasher for LowBits {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// Counter keys with their files; lookups by key, in no order.
pub(super) struct Counters {
    map: std::collections::HashMap<KeyHash, CounterEntry, BuildHasherDefault<LowBits>>,
    /// Keys of counters with none of their retention files (being created, or a
    /// directory holding files of other retentions only): no file names them.
    keyless: FastMap<KeyHash, Box<str>>,
    hashers: [FastState; 2],
    pub(super) stats: CounterStats,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            map: Default::default(),
            keyless: FastMap::default(),
            hashers: [FastState::new(), FastState::new()],
            stats: CounterStats::default(),
        }
    }
}

impl Counters {
    fn hash(&self, key: &str) -> KeyHash {
        let [a, b] = &self.hashers;
        KeyHash(a.hash_one(key), b.hash_one(key))
    }

    fn get(&self, key: &str) -> Option<&CounterEntry> {
        self.map.get(&self.hash(key))
    }

    fn get_mut(&mut self, key: &str) -> Option<&mut CounterEntry> {
        let h = self.hash(key);
        self.map.get_mut(&h)
    }

    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    pub(super) fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// A counter's retention files in `--retention` order; `None` = not on disk yet.
    pub(super) fn files(&self, key: &str) -> Option<&[Option<FileId>]> {
        self.get(key).map(|c| c.files.as_slice())
    }

    /// Retention indices of a counter's files not on disk yet (all of them for an
    /// unknown counter).
    pub(super) fn missing_files(&self, key: &str, retentions: usize) -> Vec<usize> {
        match self.files(key) {
            Some(files) => files
                .iter()
                .enumerate()
                .filter(|(_, f)| f.is_none())
                .map(|(i, _)| i)
                .collect(),
            None => (0..retentions).collect(),
        }
    }

    /// Every retention file of a counter; `None` when the counter is unknown or some
    /// file is not on disk yet.
    pub(super) fn all_files(&self, key: &str) -> Option<FileIds> {
        let mut ids = FileIds::default();
        for f in self.files(key)? {
            ids.push((*f)?);
        }
        Some(ids)
    }

    /// The files of a counter that exist (empty for an unknown counter).
    pub(super) fn existing_files(&self, key: &str) -> Vec<FileId> {
        self.files(key)
            .map(|f| f.iter().flatten().copied().collect())
            .unwrap_or_default()
    }

    /// Every counter's files, with its key when no file names it.
    pub(super) fn entries(&self) -> impl Iterator<Item = (Option<&str>, &[Option<FileId>])> {
        self.map
            .iter()
            .map(|(h, c)| (self.keyless.get(h).map(|k| &**k), c.files.as_slice()))
    }

    /// Set a counter's files, replacing any earlier entry.
    pub(super) fn insert(&mut self, key: Box<str>, files: Vec<Option<FileId>>) {
        let h = self.hash(&key);
        if files.iter().all(Option::is_none) {
            self.keyless.insert(h, key);
        } else {
            self.keyless.remove(&h);
        }
        self.map.insert(
            h,
            CounterEntry {
                files: CounterFiles::new(files),
                collation: None,
            },
        );
    }

    /// Make a counter known with `retentions` files none of which exists yet, unless it
    /// is known already.
    pub(super) fn register(&mut self, key: &str, retentions: usize) {
        let h = self.hash(key);
        if let Entry::Vacant(slot) = self.map.entry(h) {
            slot.insert(CounterEntry {
                files: CounterFiles::new(vec![None; retentions]),
                collation: None,
            });
            self.keyless.insert(h, key.into());
        }
    }

    /// Record that retention file `i` of a known counter exists.
    pub(super) fn set_file(&mut self, key: &str, i: usize, id: FileId) {
        let h = self.hash(key);
        if let Some(c) = self.map.get_mut(&h) {
            c.files.as_mut_slice()[i] = Some(id);
            self.keyless.remove(&h);
        }
    }

    /// Forget a counter; returns its files that exist.
    pub(super) fn remove(&mut self, key: &str) -> Option<Vec<FileId>> {
        let h = self.hash(key);
        self.keyless.remove(&h);
        self.map
            .remove(&h)
            .map(|c| c.files.as_slice().iter().flatten().copied().collect())
    }

    /// The files of an event counter with a collation window that exist; `None` for
    /// other counters.
    pub(super) fn collated_files(&self, key: &str) -> Option<Vec<FileId>> {
        let c = self.get(key)?;
        c.collation.as_ref()?;
        Some(c.files.as_slice().iter().flatten().copied().collect())
    }

    /// The writes of shifting an event counter's collation window at a flush (`force`:
    /// admin `flush`) into its `n` files; none for other counters.
    pub(super) fn flush_writes(&mut self, key: &str, force: bool, now: i64, n: usize) -> Writes {
        match self.collation(key) {
            Some(col) if force => col.force_flush(now, n),
            Some(col) => col.flush(now, n),
            None => Writes::new(),
        }
    }

    /// An event counter's collation window, if it has one.
    pub(super) fn collation(&mut self, key: &str) -> Option<&mut Collation> {
        self.get_mut(key)?.collation.as_deref_mut()
    }

    /// Whether an event counter has a collation window.
    pub(super) fn has_collation(&self, key: &str) -> bool {
        self.get(key).is_some_and(|c| c.collation.is_some())
    }

    /// Open an event counter's collation window as given.
    pub(super) fn set_collation(&mut self, key: &str, col: Collation) {
        if let Some(c) = self.get_mut(key) {
            c.collation = Some(Box::new(col));
        }
    }

    /// Drop every collation window (nothing is written).
    pub(super) fn drop_collations(&mut self) {
        for c in self.map.values_mut() {
            c.collation = None;
        }
    }

    /// An event counter's collation window, opened with `interval` on first use.
    pub(super) fn collation_or_new(&mut self, key: &str, interval: i64) -> Option<&mut Collation> {
        let c = self.get_mut(key)?;
        Some(
            c.collation
                .get_or_insert_with(|| Box::new(Collation::new(interval))),
        )
    }

    pub(super) fn count_reject(&mut self, r: Reject) {
        match r {
            Reject::FromFuture => self.stats.from_future += 1,
            Reject::FromPast => self.stats.from_past += 1,
            Reject::Rejected => self.stats.rejected += 1,
        }
    }
}

/// A counter's retention files: inline for up to 8 retentions, so recording a sample
/// does not allocate.
#[derive(Default)]
pub(super) struct FileIds {
    inline: [FileId; 8],
    len: usize,
    heap: Vec<FileId>,
}

impl FileIds {
    pub(super) fn push(&mut self, id: FileId) {
        if self.heap.is_empty() && self.len < self.inline.len() {
            self.inline[self.len] = id;
            self.len += 1;
        } else {
            if self.heap.is_empty() {
                self.heap.extend_from_slice(&self.inline[..self.len]);
            }
            self.heap.push(id);
        }
    }

    pub(super) fn as_slice(&self) -> &[FileId] {
        if self.heap.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.heap
        }
    }
}

/// How many retention files a counter keeps inline (more go to the heap).
const INLINE_FILES: usize = 4;

/// A counter's retention files, inline for up to [`INLINE_FILES`] retentions: every
/// sample's lookup reads them, and a separate allocation was one more cache miss per
/// sample at 100,000 counters (16 bytes more per counter than a boxed slice).
enum CounterFiles {
    Inline(u8, [Option<FileId>; INLINE_FILES]),
    Heap(Box<[Option<FileId>]>),
}

impl CounterFiles {
    fn new(files: Vec<Option<FileId>>) -> CounterFiles {
        if files.len() <= INLINE_FILES {
            let mut inline = [None; INLINE_FILES];
            inline[..files.len()].copy_from_slice(&files);
            CounterFiles::Inline(files.len() as u8, inline)
        } else {
            CounterFiles::Heap(files.into())
        }
    }

    fn as_slice(&self) -> &[Option<FileId>] {
        match self {
            CounterFiles::Inline(n, ids) => &ids[..*n as usize],
            CounterFiles::Heap(ids) => ids,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [Option<FileId>] {
        match self {
            CounterFiles::Inline(n, ids) => &mut ids[..*n as usize],
            CounterFiles::Heap(ids) => ids,
        }
    }
}
