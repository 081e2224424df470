//! Descriptors: a bounded LRU of open counter files (a file is reopened on demand),
//! the two ways their bytes move ([`IoMode`]), and the probe file that makes glommio's
//! polled-I/O check answer truthfully.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{FromRawFd, RawFd};
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
    /// Open a file; true when it came from the directory cache ([`open_from_dcache`]).
    async fn open(path: &Path, mode: IoMode) -> glommio::Result<(StoreFile, bool), ()> {
        let mut o = OpenOptions::new();
        o.read(true).write(true);
        Ok(match mode {
            IoMode::Buffered => match open_from_dcache(path) {
                // SAFETY: a descriptor just opened, owned by nothing else.
                Some(fd) => (
                    StoreFile::Buffered(unsafe { BufferedFile::from_raw_fd(fd) }),
                    true,
                ),
                None => (StoreFile::Buffered(o.buffered_open(path).await?), false),
            },
            IoMode::Direct => (StoreFile::Direct(o.dma_open(path).await?), false),
        })
    }

    pub(super) async fn file_size(&self) -> io::Result<u64> {
        Ok(match self {
            // fstat of an open descriptor reads the inode in memory (glommio's
            // file_size is a statx by path, which a descriptor from
            // `open_from_dcache` has not).
            StoreFile::Buffered(f) => {
                use std::os::fd::AsRawFd;
                // SAFETY: fstat into a zeroed stat of a descriptor this file owns.
                let mut st: libc::stat = unsafe { std::mem::zeroed() };
                if unsafe { libc::fstat(f.as_raw_fd(), &mut st) } != 0 {
                    return Err(io::Error::last_os_error());
                }
                st.st_size as u64
            }
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
    /// Owned, so that a buffered write hands the kernel the caller's bytes uncopied. A
    /// short write (a full disk) is an error: the flush keeps the pages dirty and tries
    /// them whole again.
    pub(super) async fn write_at(&self, pos: u64, data: Vec<u8>) -> io::Result<()> {
        match self {
            StoreFile::Buffered(f) => {
                let len = data.len();
                if f.write_at(data, pos).await? < len {
                    return Err(io::Error::new(io::ErrorKind::WriteZero, "short write"));
                }
            }
            StoreFile::Direct(f) => {
                let mut buf = f.alloc_dma_buffer(data.len());
                buf.as_bytes_mut().copy_from_slice(&data);
                let n = f.write_at(buf, pos).await?;
                if n < data.len() {
                    return Err(io::Error::new(io::ErrorKind::WriteZero, "short write"));
                }
            }
        }
        Ok(())
    }
}

/// Open a file for reading and writing if the kernel can resolve its path from the
/// directory cache alone (`openat2` with `RESOLVE_CACHED`, Linux 5.12+), which never
/// waits for the disk; `None` otherwise (not cached, older kernel, any error), and the
/// caller opens it through io_uring. The flush round reopens every file of a store
/// larger than the descriptor cache each period: this takes the open from two trips
/// through io_uring's worker threads (glommio's openat, then its statx) to one system
/// call of a few microseconds.
fn open_from_dcache(path: &Path) -> Option<RawFd> {
    use std::os::unix::ffi::OsStrExt;
    let cpath = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: open_how is plain integers; zero is "no flags".
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_RDWR | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_CACHED;
    // SAFETY: a NUL-terminated path and an open_how of the size passed, both alive for
    // the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            cpath.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    (fd >= 0).then_some(fd as RawFd)
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
    /// Opens that resolved the path from the directory cache, on the executor.
    opens_cached: Cell<u64>,
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
            opens_cached: Cell::new(0),
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
        let (file, cached) = StoreFile::open(path, self.mode)
            .await
            .map_err(|e| StoreError::Io(io::Error::other(format!("{}: {e}", path.display()))))?;
        self.open.set(self.open.get() + 1);
        let of = Rc::new(OpenFile {
            file,
            open: self.open.clone(),
        });
        self.opens.set(self.opens.get() + 1);
        self.opens_cached
            .set(self.opens_cached.get() + u64::from(cached));
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

    pub(super) fn opens_cached(&self) -> u64 {
        self.opens_cached.get()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_path_opens_without_io_uring_and_a_missing_one_falls_back() {
        let dir = std::env::temp_dir().join(format!("istatd-dcache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("f");
        std::fs::write(&p, b"abcd").unwrap();
        assert_eq!(open_from_dcache(&dir.join("missing")), None);
        let q = p.clone();
        glommio::LocalExecutor::default().run(async move {
            // Just written: its dentry is cached.
            let fd = open_from_dcache(&q).expect("cached path opens");
            // SAFETY: the descriptor just opened; the file owns it.
            let f = StoreFile::Buffered(unsafe { BufferedFile::from_raw_fd(fd) });
            assert_eq!(f.file_size().await.unwrap(), 4);
            f.write_at(1, b"xy".to_vec()).await.unwrap();
            assert_eq!(&f.read_at(0, 4).await.unwrap()[..], b"axyd");
        });
        assert_eq!(std::fs::read(&p).unwrap(), b"axyd");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
