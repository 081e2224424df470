//! istatd's storage engine: counter files ("StatFiles"), aggregation, queries and the
//! on-disk store.
//!
//! Layers, from the bytes up:
//! - [`format`]: the file format, byte for byte (pure: bytes in, values out);
//! - [`numfmt`]: numbers and times printed exactly as the reference prints them;
//! - [`statfile`]: the write/read logic of one file over slots held elsewhere;
//! - [`counter`]: per-counter aggregation (gauges, event collation windows);
//! - [`store`]: the directory tree of one shard, through glommio DMA files, with a
//!   bounded descriptor cache and page cache.
//!
//! `testimage`, built for tests only (the crate's own, and with the `test-fixtures`
//! feature other crates'), writes counter-file images in memory without the store.
//!
//! This crate knows nothing of sockets, stat lines, HTTP or the replication protocol.

pub mod counter;
pub mod format;
pub mod hashing;
pub mod lru;
pub mod numfmt;
pub mod query;
pub mod retention;
pub mod statfile;
pub mod store;
#[cfg(any(test, feature = "test-fixtures"))]
pub mod testimage;
pub mod tools;
pub mod verify;
