//! The counter table: every counter key a store knows, with its retention files and,
//! for event counters, its collation window.

use crate::hashing::FastMap;

use super::FileId;
use crate::counter::{Collation, Reject, Writes};

/// Relative directory of a counter key: dots become slashes.
pub fn counter_dir(key: &str) -> String {
    key.replace('.', "/")
}

/// One counter: its retention files and, for an event counter, its collation window.
struct CounterEntry {
    /// Retention files in `--retention` order; `None` = not on disk yet.
    files: Vec<Option<FileId>>,
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

/// Counter keys with their files; lookups by key, in no order.
#[derive(Default)]
pub(super) struct Counters {
    map: FastMap<Box<str>, CounterEntry>,
    pub(super) stats: CounterStats,
}

impl Counters {
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    pub(super) fn contains(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// A counter's retention files in `--retention` order; `None` = not on disk yet.
    pub(super) fn files(&self, key: &str) -> Option<&[Option<FileId>]> {
        self.map.get(key).map(|c| c.files.as_slice())
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

    /// Keys for which `f` holds, sorted.
    pub(super) fn keys_matching(&self, f: impl Fn(&str) -> bool) -> Vec<String> {
        let mut v: Vec<String> = self
            .map
            .keys()
            .filter(|k| f(k))
            .map(|k| k.to_string())
            .collect();
        v.sort();
        v
    }

    /// Every key, in the table's own order.
    pub(super) fn key_snapshot(&self) -> Vec<Box<str>> {
        self.map.keys().cloned().collect()
    }

    /// Set a counter's files, replacing any earlier entry.
    pub(super) fn insert(&mut self, key: Box<str>, files: Vec<Option<FileId>>) {
        self.map.insert(
            key,
            CounterEntry {
                files,
                collation: None,
            },
        );
    }

    /// Make a counter known with `retentions` files none of which exists yet, unless it
    /// is known already.
    pub(super) fn register(&mut self, key: &str, retentions: usize) {
        self.map.entry(key.into()).or_insert_with(|| CounterEntry {
            files: vec![None; retentions],
            collation: None,
        });
    }

    /// Record that retention file `i` of a known counter exists.
    pub(super) fn set_file(&mut self, key: &str, i: usize, id: FileId) {
        if let Some(c) = self.map.get_mut(key) {
            c.files[i] = Some(id);
        }
    }

    /// Forget a counter; returns its files that exist.
    pub(super) fn remove(&mut self, key: &str) -> Option<Vec<FileId>> {
        self.map
            .remove(key)
            .map(|c| c.files.into_iter().flatten().collect())
    }

    /// The files of an event counter with a collation window that exist; `None` for
    /// other counters.
    pub(super) fn collated_files(&self, key: &str) -> Option<Vec<FileId>> {
        let c = self.map.get(key)?;
        c.collation.as_ref()?;
        Some(c.files.iter().flatten().copied().collect())
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
        self.map.get_mut(key)?.collation.as_deref_mut()
    }

    /// Whether an event counter has a collation window.
    pub(super) fn has_collation(&self, key: &str) -> bool {
        self.map.get(key).is_some_and(|c| c.collation.is_some())
    }

    /// Open an event counter's collation window as given.
    pub(super) fn set_collation(&mut self, key: &str, col: Collation) {
        if let Some(c) = self.map.get_mut(key) {
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
        let c = self.map.get_mut(key)?;
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
