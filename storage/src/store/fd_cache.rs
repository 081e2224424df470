//! Descriptors: a bounded LRU of open counter files (a file is reopened on demand),
//! the two ways their bytes move ([`IoMode`]), and the probe file that makes glommio's
//! polled-I/O check answer truthfully.

use std::cell::{Cell, RefCell};
use std::io;
use std::path::Path;
use std::rc::Rc;

use glommio::io::{BufferedFile, DmaFile, OpenOptions, ReadResult};

use super::page_cache::SECTOR;
use super::{FileId, StoreError};
use crate::format::PAGE_SIZE;
use crate::lru::SegmentedLru;

/// How a store reads and writes its files (`--store-io`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoMode {
    /// Through the kernel's page cache, as the reference does: a page read again soon
    /// is a copy from memory, a write is a copy that the kernel writes back later in
    /// large runs, and the memory is the kernel's, shared and reclaimable, not the
    /// daemon's RSS.
    Buffered,
    /// O_DIRECT: every miss of the store's own page cache is a disk read, every flush a
    /// disk write.
    Direct,
}

/// The kernel's page size on the machines this runs on (x86-64, and aarch64 with 4 KiB
/// pages); on a larger one, writes are still correct, only partial.
const KERNEL_PAGE: usize = 4096;

/// One open counter file.
pub(super) enum StoreFile {
    Buffered(BufferedFile),
    Direct(DmaFile),
}

impl StoreFile {
    async fn open(path: &Path, mode: IoMode) -> glommio::Result<StoreFile, ()> {
        let mut o = OpenOptions::new();
        o.read(true).write(true);
        Ok(match mode {
            IoMode::Buffered => StoreFile::Buffered(o.buffered_open(path).await?),
            IoMode::Direct => StoreFile::Direct(o.dma_open(path).await?),
        })
    }

    pub(super) async fn file_size(&self) -> io::Result<u64> {
        Ok(match self {
            StoreFile::Buffered(f) => f.file_size().await?,
            StoreFile::Direct(f) => f.file_size().await?,
        })
    }

    /// Up to `len` bytes at `pos` (fewer at the end of the file).
    pub(super) async fn read_at(&self, pos: u64, len: usize) -> io::Result<ReadResult> {
        Ok(match self {
            StoreFile::Buffered(f) => f.read_at(pos, len).await?,
            // glommio widens the read to the file's O_DIRECT alignment.
            StoreFile::Direct(f) => f.read_at(pos, len).await?,
        })
    }

    /// The unit writes are widened to: with O_DIRECT, the device's logical block;
    /// through the page cache, the kernel's page, since a write of part of a page that
    /// is not resident first reads it from disk.
    pub(super) fn write_unit(&self) -> usize {
        match self {
            StoreFile::Buffered(_) => KERNEL_PAGE,
            StoreFile::Direct(f) => (f.alignment() as usize).clamp(SECTOR, PAGE_SIZE),
        }
    }

    /// Write `data` at `pos`; with O_DIRECT both are multiples of [`Self::write_unit`].
    pub(super) async fn write_at(&self, pos: u64, data: &[u8]) -> io::Result<()> {
        match self {
            StoreFile::Buffered(f) => {
                let mut done = 0;
                while done < data.len() {
                    let n = f.write_at(data[done..].to_vec(), pos + done as u64).await?;
                    if n == 0 {
                        return Err(io::Error::new(io::ErrorKind::WriteZero, "short write"));
                    }
                    done += n;
                }
            }
            StoreFile::Direct(f) => {
                let mut buf = f.alloc_dma_buffer(data.len());
                buf.as_bytes_mut().copy_from_slice(data);
                let n = f.write_at(buf, pos).await?;
                if n < data.len() {
                    return Err(io::Error::new(io::ErrorKind::WriteZero, "short write"));
                }
            }
        }
        Ok(())
    }
}

/// An open descriptor; counts itself so the peak can be reported.
pub(super) struct OpenFile {
    pub(super) file: StoreFile,
    open: Rc<Cell<u64>>,
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        self.open.set(self.open.get() - 1);
    }
}

/// At most `capacity` cached descriptors, scan-resistant (a store of more files than
/// descriptors is flushed and replicated in rounds over all of them); an evicted one
/// closes when its last user drops it.
pub(super) struct FdCache {
    fds: RefCell<SegmentedLru<FileId, Rc<OpenFile>>>,
    /// Descriptors open now, cached or still held by an in-flight user.
    open: Rc<Cell<u64>>,
    opens: Cell<u64>,
    peak: Cell<u64>,
    mode: IoMode,
}

impl FdCache {
    pub(super) fn new(capacity: usize, mode: IoMode) -> FdCache {
        FdCache {
            mode,
            fds: RefCell::new(SegmentedLru::new(capacity)),
            open: Rc::new(Cell::new(0)),
            opens: Cell::new(0),
            peak: Cell::new(0),
        }
    }

    /// The cached descriptor of a file, if any (it becomes the most recently used).
    pub(super) fn cached(&self, id: FileId) -> Option<Rc<OpenFile>> {
        self.fds.borrow_mut().get_mut(&id).cloned()
    }

    /// Open a file's descriptor and cache it; another open of the same file that
    /// completed meanwhile wins.
    pub(super) async fn open(&self, id: FileId, path: &Path) -> Result<Rc<OpenFile>, StoreError> {
        let file = StoreFile::open(path, self.mode)
            .await
            .map_err(|e| StoreError::Io(io::Error::other(format!("{}: {e}", path.display()))))?;
        self.open.set(self.open.get() + 1);
        let of = Rc::new(OpenFile {
            file,
            open: self.open.clone(),
        });
        self.opens.set(self.opens.get() + 1);
        self.peak.set(self.peak.get().max(self.open.get()));
        let mut fds = self.fds.borrow_mut();
        if let Some(existing) = fds.get_mut(&id) {
            return Ok(existing.clone());
        }
        // Evicted descriptors close when their last in-flight user drops them.
        fds.insert(id, of.clone());
        Ok(of)
    }

    pub(super) fn remove(&self, id: FileId) {
        self.fds.borrow_mut().remove(&id);
    }

    pub(super) fn open_now(&self) -> u64 {
        self.open.get()
    }

    pub(super) fn opens(&self) -> u64 {
        self.opens.get()
    }

    pub(super) fn peak(&self) -> u64 {
        self.peak.get()
    }
}

/// Name of a small file at the store root that every executor reads once with O_DIRECT.
const PROBE_FILE: &str = ".istatd-io-probe";

/// Blocking: make sure the probe file holds data.
pub(super) fn prime_probe_file(root: &Path) -> io::Result<()> {
    let p = root.join(PROBE_FILE);
    match std::fs::metadata(&p) {
        Ok(m) if m.len() >= 4096 => Ok(()),
        _ => std::fs::write(&p, vec![b'i'; 4096]),
    }
}

/// glommio decides once per executor and device whether the device supports polled
/// I/O, by reading offset 0 of the first DMA file opened. On an empty file that read
/// succeeds trivially, and later reads then fail with EOPNOTSUPP on devices without
/// polling. Opening a file with data first makes the probe answer truthfully.
pub(super) async fn prime_iopoll_probe(root: &Path) {
    match DmaFile::open(root.join(PROBE_FILE)).await {
        Ok(f) => {
            let _ = f.close().await;
        }
        Err(e) => tracing::warn!(error = %e, "could not prime the O_DIRECT probe"),
    }
}
