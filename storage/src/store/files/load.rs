//! Loading a file (its header, validated on first touch) and creating one.

use std::io;

use super::page_cache::{self, SECTOR};
use super::Files;
use crate::format::{
    Bucket, CreateParams, FormatError, Header, BUCKETS_PER_PAGE, BUCKET_SIZE, PAGE_SIZE,
};
use crate::statfile::FileState;
use crate::store::create::create_file_blocking;
use crate::store::fd_cache::OpenFile;
use crate::store::{FileId, StoreError};

impl Files {
    /// Make sure a file's header is in memory (validating it on first touch).
    pub(in crate::store) async fn ensure_loaded(&self, id: FileId) -> Result<(), StoreError> {
        {
            let table = self.table.borrow();
            let e = table.entry(id).ok_or(StoreError::Gone)?;
            if e.state.is_some() {
                return Ok(());
            }
            if e.bad {
                return Err(StoreError::Bad(e.rel.to_string(), FormatError::BadMagic));
            }
        }
        let fd = self.fd(id).await?;
        let len = fd.file.file_size().await?;
        let head = fd.file.read_at(0, SECTOR).await?;
        // The store's page cache works in 8 KiB pages, the only size the reference
        // writes on x86-64; another page size is refused like any bad header.
        let parsed = Header::parse_checked(&head, len).and_then(|h| {
            if h.page_size == PAGE_SIZE as i64 {
                Ok(h)
            } else {
                Err(FormatError::BadPageSize(h.page_size))
            }
        });
        let (tail, probe) = {
            let mut table = self.table.borrow_mut();
            let rel = table.entry(id).ok_or(StoreError::Gone)?.rel.clone();
            match parsed {
                Err(err) => {
                    tracing::error!(file = %self.abs_path(&rel).display(), %err, "refusing counter file");
                    self.stats.borrow_mut().bad_files += 1;
                    table.mark_bad(id);
                    return Err(StoreError::Bad(rel.to_string(), err));
                }
                Ok(mut h) => {
                    let e = table.entry_mut(id).ok_or(StoreError::Gone)?;
                    if e.state.is_some() {
                        return Ok(());
                    }
                    h.set_name(self.abs_path(&rel).as_os_str().as_encoded_bytes());
                    let mut st = FileState::new(h);
                    let mut tail = Vec::new();
                    if self.closed_cleanly {
                        st.tail_is_clean();
                    } else {
                        st.tail_pages(&mut tail);
                    }
                    let probe = st.index0_probe();
                    e.state = Some(Box::new(st));
                    (tail, probe)
                }
            }
        };
        if let Some(slot) = probe {
            let on_disk = self.read_slot_uncached(id, &fd, slot).await?;
            self.with_state_mut(id, |st| st.note_index0(&on_disk))?;
        }
        if tail.is_empty() {
            return Ok(());
        }
        self.ensure_pages(id, &tail).await?;
        let mut table = self.table.borrow_mut();
        if let Some(e) = table.slot_mut(id.slot) {
            if let Some(st) = e.state.as_mut() {
                let mut pages = self.pages.borrow_mut();
                let view = pages.slots(id, &mut e.dirty_pages);
                st.verify_tail(&view);
            }
        }
        Ok(())
    }

    /// One slot as it is on disk (or in a cached page), read without caching its page:
    /// a page cached for every file opened would be dirtied by the file's next sample
    /// (the next slot is on it) and written back when evicted, one read and one write
    /// per file at start-up, where the overlay needs neither.
    async fn read_slot_uncached(
        &self,
        id: FileId,
        fd: &OpenFile,
        slot: i64,
    ) -> Result<Bucket, StoreError> {
        let per_page = BUCKETS_PER_PAGE as i64;
        let (page, within) = (
            (slot / per_page) as u32,
            (slot % per_page) as usize * BUCKET_SIZE,
        );
        {
            let cache = self.pages.borrow();
            if let Some(data) = cache.peek_data(&(id, page)) {
                return Ok(Bucket::from_bytes(&data[within..within + BUCKET_SIZE]));
            }
            if let Some(data) = cache.copy_in_flight(&(id, page)) {
                return Ok(Bucket::from_bytes(&data[within..within + BUCKET_SIZE]));
            }
        }
        let r = fd
            .file
            .read_at(page_cache::page_offset(page) + within as u64, BUCKET_SIZE)
            .await?;
        // A short read (a sparse file's end) holds zeros: no bucket.
        Ok(match r.get(..BUCKET_SIZE) {
            Some(b) => Bucket::from_bytes(b),
            None => Bucket::EMPTY,
        })
    }

    /// Create a new counter file and the directories above it (blocking system calls
    /// run off the executor, all in one job).
    pub(in crate::store) async fn create_file(
        &self,
        rel: &str,
        p: CreateParams,
    ) -> Result<FileId, StoreError> {
        let path = self.abs_path(rel);
        let alloc = self.allocation;
        let header = Header::new_file(&CreateParams {
            name: path.to_string_lossy().into_owned(),
            ..p
        });
        let hdr = header.to_bytes();
        let len = header.file_len();
        let path2 = path.clone();
        glommio::executor()
            .spawn_blocking(move || {
                if let Some(dir) = path2.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                create_file_blocking(&path2, &hdr, len, alloc)
            })
            .await
            .map_err(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    StoreError::Exists(rel.to_string())
                } else {
                    StoreError::Io(io::Error::new(e.kind(), format!("{}: {e}", path.display())))
                }
            })?;
        Ok(self.add_created(rel.into(), header))
    }
}
