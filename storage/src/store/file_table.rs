//! The file table: every file a store knows, by dense slot and by relative path, with
//! the per-file state kept while the store runs (file handles: docs/file-format.md,
//! "Operations for replication").

use crate::hashing::FastMap;

use crate::statfile::FileState;

/// A file's handle: dense slot plus generation (docs/file-format.md, "Operations for
/// replication").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId {
    pub slot: u32,
    pub gen: u32,
}

/// Result of [`Store::lookup`](super::Store::lookup).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Found(FileId),
    Bad,
    Absent,
}

/// One known file: its relative path and, once touched, its [`FileState`].
pub(super) struct FileEntry {
    pub(super) gen: u32,
    pub(super) rel: Box<str>,
    pub(super) state: Option<Box<FileState>>,
    pub(super) bad: bool,
    /// The file's retention: its index in the store's retentions, or
    /// [`NO_RETENTION`] (a name no retention has).
    pub(super) retention: u8,
    /// Pages of this file with changes not yet written.
    pub(super) dirty_pages: Vec<u32>,
}

/// [`FileEntry::retention`] of a file whose name is no retention's.
pub(super) const NO_RETENTION: u8 = u8::MAX;

/// Files by slot (a removed file's slot is reused with the next generation, so a stale
/// [`FileId`] finds nothing) and by relative path.
#[derive(Default)]
pub(super) struct FileTable {
    files: Vec<Option<FileEntry>>,
    /// Freed slots with the generation their next occupant gets.
    free_slots: Vec<(u32, u32)>,
    by_rel: FastMap<Box<str>, FileId>,
    bad_rel: FastMap<Box<str>, ()>,
}

impl FileTable {
    pub(super) fn entry(&self, id: FileId) -> Option<&FileEntry> {
        match self.files.get(id.slot as usize) {
            Some(Some(e)) if e.gen == id.gen => Some(e),
            _ => None,
        }
    }

    pub(super) fn entry_mut(&mut self, id: FileId) -> Option<&mut FileEntry> {
        match self.files.get_mut(id.slot as usize) {
            Some(Some(e)) if e.gen == id.gen => Some(e),
            _ => None,
        }
    }

    /// The file in a slot now: its id and path.
    pub(super) fn at(&self, slot: u32) -> Option<(FileId, &str)> {
        match self.files.get(slot as usize) {
            Some(Some(e)) => Some((FileId { slot, gen: e.gen }, &e.rel)),
            _ => None,
        }
    }

    /// The entry in a slot, whatever its generation.
    pub(super) fn slot_mut(&mut self, slot: u32) -> Option<&mut FileEntry> {
        self.files.get_mut(slot as usize).and_then(Option::as_mut)
    }

    /// Index a file (its id if it is indexed already).
    pub(super) fn add(&mut self, rel: Box<str>, retention: u8) -> FileId {
        if let Some(id) = self.by_rel.get(&rel) {
            return *id;
        }
        let (slot, gen) = self
            .free_slots
            .pop()
            .unwrap_or((self.files.len() as u32, 0));
        let entry = FileEntry {
            gen,
            rel: rel.clone(),
            state: None,
            bad: false,
            retention,
            dirty_pages: Vec::new(),
        };
        if slot as usize == self.files.len() {
            self.files.push(Some(entry));
        } else {
            self.files[slot as usize] = Some(entry);
        }
        let id = FileId { slot, gen };
        self.by_rel.insert(rel, id);
        id
    }

    /// Forget a file: its slot is reused with a new generation. Returns its relative
    /// path and its page count (0 when it was never loaded).
    pub(super) fn remove(&mut self, id: FileId) -> Option<(Box<str>, u32)> {
        let e = self.entry(id)?;
        let rel = e.rel.clone();
        let pages = e
            .state
            .as_ref()
            .map(|s| s.header.page_count as u32)
            .unwrap_or(0);
        self.files[id.slot as usize] = None;
        self.free_slots.push((id.slot, id.gen.wrapping_add(1)));
        self.by_rel.remove(&rel);
        self.bad_rel.remove(&rel);
        Some((rel, pages))
    }

    /// Refuse a file: it keeps its slot, but is no longer found by path.
    pub(super) fn mark_bad(&mut self, id: FileId) {
        if let Some(e) = self.entry_mut(id) {
            e.bad = true;
            let rel = e.rel.clone();
            self.by_rel.remove(&rel);
            self.bad_rel.insert(rel, ());
        }
    }

    pub(super) fn forget_bad(&mut self, rel: &str) {
        self.bad_rel.remove(rel);
    }

    pub(super) fn lookup(&self, rel: &str) -> Lookup {
        if let Some(id) = self.by_rel.get(rel) {
            Lookup::Found(*id)
        } else if self.bad_rel.contains_key(rel) {
            Lookup::Bad
        } else {
            Lookup::Absent
        }
    }

    pub(super) fn id_of(&self, rel: &str) -> Option<FileId> {
        self.by_rel.get(rel).copied()
    }

    /// One past the highest slot (free slots included).
    pub(super) fn slot_span(&self) -> usize {
        self.files.len()
    }

    /// Indexed files (refused ones excluded).
    pub(super) fn len(&self) -> usize {
        self.by_rel.len()
    }

    pub(super) fn ids(&self) -> Vec<FileId> {
        self.by_rel.values().copied().collect()
    }

    /// Every indexed file: relative path and id, sorted.
    pub(super) fn list(&self) -> Vec<(String, FileId)> {
        let mut v: Vec<(String, FileId)> = self
            .by_rel
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        v.sort();
        v
    }

    /// Bytes of heap held per indexed file, roughly.
    pub(super) fn approx_bytes_per_file(&self) -> usize {
        let n = self.by_rel.len().max(1);
        let mut total = self.files.capacity() * std::mem::size_of::<Option<FileEntry>>();
        for e in self.files.iter().flatten() {
            total += e.rel.len() * 2 + 48; // path, plus its by_rel key and map slot
            if e.state.is_some() {
                total += std::mem::size_of::<FileState>();
            }
            total += e.dirty_pages.capacity() * 4;
        }
        total / n
    }
}
