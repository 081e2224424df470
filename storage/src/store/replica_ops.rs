//! The store's operations for replication (docs/file-format.md, "Operations for
//! replication") and counter deletion, and their helpers that need none of its state:
//! checking a peer's file parameters, moving files into the backup tree `<store>.bak`, and
//! removing emptied directories.

use std::io;
use std::path::{Path, PathBuf};

use super::*;
use crate::format::CreateParams;

impl super::Store {
    pub fn lookup(&self, rel: &str) -> Lookup {
        self.files.table().lookup(rel)
    }

    /// The file in a slot now: its id and path (relative to the store root).
    pub fn file_at(&self, slot: u32) -> Option<(FileId, Box<str>)> {
        self.files
            .table()
            .at(slot)
            .map(|(id, rel)| (id, rel.into()))
    }

    /// A file's path relative to the store root.
    pub fn path_of(&self, id: FileId) -> Option<Box<str>> {
        self.files.table().entry(id).map(|e| e.rel.clone())
    }

    /// Every indexed file: relative path and id.
    pub fn list_files(&self) -> Vec<(String, FileId)> {
        self.files.table().list()
    }

    /// Header of a file, loading (and validating) it if needed.
    pub async fn load_header(&self, id: FileId) -> Result<Header, StoreError> {
        self.files.ensure_loaded(id).await?;
        self.files.header(id).ok_or(StoreError::Gone)
    }

    pub async fn newest_bucket_time(&self, id: FileId) -> Result<i64, StoreError> {
        self.files.ensure_loaded(id).await?;
        self.files.with_state(id, |s| s.newest_bucket_time())
    }

    pub async fn oldest_kept_time(&self, id: FileId) -> Result<i64, StoreError> {
        self.files.ensure_loaded(id).await?;
        self.files.with_state(id, |s| s.oldest_kept_time())
    }

    /// `read_valid_buckets`: never modifies anything.
    pub async fn read_valid_buckets(
        &self,
        id: FileId,
        start: i64,
        end: i64,
        max: usize,
        max_slots: usize,
    ) -> Result<(Vec<Bucket>, i64), StoreError> {
        self.files.ensure_loaded(id).await?;
        self.files
            .read_view(
                id,
                |st, need| st.pages_for_valid(start, end, max_slots, need),
                |st, slots| st.read_valid(slots, start, end, max, max_slots),
            )
            .await
    }

    /// `put_buckets_overwrite`: replicated buckets stored verbatim, idempotently.
    pub async fn put_buckets_overwrite(
        &self,
        id: FileId,
        buckets: &[Bucket],
    ) -> Result<PutReport, StoreError> {
        let _permit = self.lock_writes().await?;
        self.files.ensure_loaded(id).await?;
        self.files.put_overwrite(id, buckets).await
    }

    /// `create_file_like`: a new file from a peer's parameters (zero time used exactly).
    pub async fn create_file_like(&self, rel: &str, p: CreateParams) -> Result<FileId, StoreError> {
        replica_ops::check_file_like(rel, &p)?;
        if self.files.table().id_of(rel).is_some() {
            return Err(StoreError::Exists(rel.into()));
        }
        let page_count = p.page_count.max(2);
        let id = self
            .files
            .create_file(rel, CreateParams { page_count, ..p })
            .await?;
        // Register the counter when this completes a retention set.
        let (dir_rel, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        if let Some(i) = self.opts.retentions.iter().position(|r| r.name == name) {
            let key = dir_rel.replace('/', ".");
            let mut counters = self.counters.borrow_mut();
            counters.register(&key, self.opts.retentions.len());
            counters.set_file(&key, i, id);
        }
        Ok(id)
    }

    /// Delete a counter (admin `delete.ctr`): flush its files, then move each to
    /// `<store>.bak/<relative path>` by hard link and unlink, replacing an older copy
    /// there. Returns false when the counter is unknown.
    pub async fn delete_counter(&self, key: &str) -> Result<bool, StoreError> {
        let _permit = self.lock_writes().await?;
        let removed = self.counters.borrow_mut().remove(key);
        let Some(ids) = removed else {
            return Ok(false);
        };
        for id in ids {
            let _ = self.flush_file(id).await;
            if let Some(rel) = self.files.remove(id) {
                self.events.deleted(id, rel.clone());
                replica_ops::move_to_backup(self.root(), &rel).await?;
            }
        }
        replica_ops::remove_emptied_dirs(self.files.abs_path(&counter_dir(key)), self.root()).await;
        Ok(true)
    }

    /// `move_aside` (docs/file-format.md, "Operations for replication"): move a file, good
    /// or refused as bad, to the backup tree and forget it.
    pub async fn move_aside(&self, rel: &str) -> Result<(), StoreError> {
        let id = self.files.table().id_of(rel);
        if let Some(id) = id {
            if let Some(rel) = self.files.remove(id) {
                self.events.deleted(id, rel);
            }
        }
        self.files.forget_bad(rel);
        replica_ops::move_to_backup(self.root(), rel).await
    }

    /// The paths (relative to the store root) of a counter's files.
    pub fn counter_paths(&self, key: &str) -> Vec<String> {
        let ids: Vec<FileId> = match self.counters.borrow().files(key) {
            Some(files) => files.iter().flatten().copied().collect(),
            None => return Vec::new(),
        };
        let table = self.files.table();
        ids.iter()
            .filter_map(|&id| table.entry(id).map(|e| e.rel.to_string()))
            .collect()
    }

    /// Counter keys for which `f` holds.
    pub fn counters_matching(&self, f: impl Fn(&str) -> bool) -> Vec<String> {
        self.keys_matching(f)
    }

    /// Overwrite the informational cumulative fields.
    pub async fn set_cumulative(
        &self,
        id: FileId,
        sum: f64,
        sum_sq: f64,
        count: i64,
        clear_time: i64,
    ) -> Result<(), StoreError> {
        self.files.ensure_loaded(id).await?;
        self.files.with_state_mut(id, |st| {
            st.header.cumulative_sum = sum;
            st.header.cumulative_sum_sq = sum_sq;
            st.header.cumulative_count = count;
            st.header.last_cumulative_clear_time = clear_time;
        })
    }

    /// One past the highest file slot in use (or free for reuse): what per-slot arrays
    /// elsewhere need room for.
    pub fn file_slot_span(&self) -> usize {
        self.files.table().slot_span()
    }

    /// Bytes of heap this store holds per indexed file, roughly (for the perf report).
    pub fn approx_bytes_per_file(&self) -> usize {
        self.files.table().approx_bytes_per_file()
    }
}

/// Refuse a file `create_file_like` must not create: a relative path that is empty,
/// absolute or has an empty, `.` or `..` component; a zero time that is not a multiple
/// of the interval; unknown flags.
pub(super) fn check_file_like(rel: &str, p: &CreateParams) -> Result<(), StoreError> {
    if rel.is_empty()
        || rel.starts_with('/')
        || rel
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(StoreError::Invalid(format!("bad relative path {rel:?}")));
    }
    if p.interval < 1 || p.zero_time % p.interval as i64 != 0 {
        return Err(StoreError::Invalid(format!(
            "{rel}: zero time not a multiple of the interval"
        )));
    }
    if p.flags & !crate::format::FLAGS_KNOWN != 0 {
        return Err(StoreError::Invalid(format!("{rel}: unknown flags")));
    }
    Ok(())
}

/// Move a file of the store at `root` to the backup tree, `<root>.bak/<rel>`, by hard
/// link and unlink, replacing an older copy there.
pub(super) async fn move_to_backup(root: &Path, rel: &str) -> Result<(), StoreError> {
    let src = root.join(rel);
    let mut bak_root = root.as_os_str().to_owned();
    bak_root.push(".bak");
    let dst = PathBuf::from(bak_root).join(rel);
    glommio::executor()
        .spawn_blocking(move || -> io::Result<()> {
            if let Some(parent) = dst.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let _ = std::fs::remove_file(&dst);
            std::fs::hard_link(&src, &dst)?;
            std::fs::remove_file(&src)
        })
        .await
        .map_err(StoreError::Io)
}

/// After a counter's files were moved aside: its directory goes if it is empty now, and
/// so do emptied ancestors up to the store root (a parent that is still a counter keeps
/// its files).
pub(super) async fn remove_emptied_dirs(dir: PathBuf, root: &Path) {
    let root = root.to_path_buf();
    let _ = glommio::executor()
        .spawn_blocking(move || {
            let mut d = dir.as_path();
            while d != root && d.starts_with(&root) && std::fs::remove_dir(d).is_ok() {
                match d.parent() {
                    Some(p) => d = p,
                    None => break,
                }
            }
        })
        .await;
}
