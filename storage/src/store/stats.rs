//! [`StoreStats`]: what a store counts about itself.

/// Internal counters of a store (published as `istatd.store.*` / `istatd.counter.*`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StoreStats {
    pub files: u64,
    pub counters: u64,
    pub counters_created: u64,
    pub files_created: u64,
    pub bad_files: u64,
    pub from_future: u64,
    pub from_past: u64,
    /// Events older than their collation window, merged into stored buckets.
    pub late_events: u64,
    pub rejected: u64,
    pub too_old: u64,
    pub page_hits: u64,
    pub page_misses: u64,
    pub page_writes: u64,
    /// Writes of bucket pages (consecutive whole pages of a file share one).
    pub write_ops: u64,
    pub header_writes: u64,
    pub write_errors: u64,
    pub open_files: u64,
    pub open_files_peak: u64,
    /// Descriptors opened (a store larger than the descriptor cache reopens files).
    pub fd_opens: u64,
    /// Of those, opened from the kernel's directory cache on the executor.
    pub fd_opens_cached: u64,
    pub cached_pages: u64,
    /// Completed rounds of the periodic round-robin flush.
    pub flush_rounds: u64,
}
