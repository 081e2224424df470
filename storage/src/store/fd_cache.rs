//! Descriptors: a bounded LRU of open DMA files (a file is reopened on demand), and the
//! probe file that makes glommio's polled-I/O check answer truthfully.

use std::cell::{Cell, RefCell};
use std::io;
use std::path::Path;
use std::rc::Rc;

use glommio::io::{DmaFile, OpenOptions};

use super::{FileId, StoreError};
use crate::lru::SegmentedLru;

/// An open descriptor; counts itself so the peak can be reported.
pub(super) struct OpenFile {
    pub(super) file: DmaFile,
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
}

impl FdCache {
    pub(super) fn new(capacity: usize) -> FdCache {
        FdCache {
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
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .dma_open(path)
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
