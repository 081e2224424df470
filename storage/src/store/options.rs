//! What a store is opened with: its root, retentions, allocation strategy, cache bounds
//! and which counters it owns.

use std::path::PathBuf;
use std::sync::Arc;

use super::{IoMode, StoreListing};
use crate::retention::Retention;

/// `--allocation-strategy` (docs/file-format.md, "Creation").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// 1: reserve every block at creation.
    Full,
    /// 2: sparse; zero pages are holes.
    Sparse,
}

#[derive(Clone)]
pub struct StoreOptions {
    pub root: PathBuf,
    pub retentions: Vec<Retention>,
    pub allocation: Allocation,
    /// How file bytes move: through the kernel's page cache or O_DIRECT.
    pub io: IoMode,
    /// Descriptors this store may keep open at once.
    pub max_open_files: usize,
    /// 8 KiB pages this store may keep in memory.
    pub page_cache_pages: usize,
    /// Parent ("rollup") creation; false = `--dont-recursively-create-counters`.
    pub create_parents: bool,
    /// Load directories that lack some retention file (and create the missing files on
    /// first use); false = `--dont-recursively-create-counters`.
    pub load_incomplete: bool,
    /// Which counter keys this store owns (sharding); `None` = all.
    pub owns: Option<KeyFilter>,
    /// The directory listing from [`walk_store`](super::walk_store), when the caller
    /// walked the tree once for several stores; `None` = walk it at open.
    pub listing: Option<Arc<StoreListing>>,
    /// The files hold replicated buckets (a promoted replica): event counters' new
    /// collation windows start from the buckets already there.
    pub seed_windows: bool,
    /// The store was closed cleanly last time ([`take_clean_mark`](super::take_clean_mark)):
    /// loading a file reads no pages past its last bucket.
    pub closed_cleanly: bool,
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("root", &self.root)
            .field("retentions", &self.retentions.len())
            .field("allocation", &self.allocation)
            .field("io", &self.io)
            .field("max_open_files", &self.max_open_files)
            .field("page_cache_pages", &self.page_cache_pages)
            .field("create_parents", &self.create_parents)
            .field("load_incomplete", &self.load_incomplete)
            .field("closed_cleanly", &self.closed_cleanly)
            .field("sharded", &self.owns.is_some())
            .finish()
    }
}

/// Decides whether a store owns a counter key.
pub type KeyFilter = Arc<dyn Fn(&str) -> bool + Send + Sync>;

impl StoreOptions {
    pub fn new(root: impl Into<PathBuf>, retentions: Vec<Retention>) -> StoreOptions {
        StoreOptions {
            root: root.into(),
            retentions,
            allocation: Allocation::Full,
            io: IoMode::Buffered,
            max_open_files: 16_000,
            page_cache_pages: 4096,
            create_parents: true,
            load_incomplete: true,
            owns: None,
            listing: None,
            seed_windows: false,
            closed_cleanly: false,
        }
    }
}
