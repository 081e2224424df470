//! istatd's storage engine: counter files ("StatFiles"), aggregation, queries and the
//! on-disk store.
//!
//! Layers, from the bytes up:
//! - [`format`]: the file format, byte for byte (pure: bytes in, values out);
//! - [`numfmt`]: numbers and times printed exactly as the reference prints them;
//!
//! This crate knows nothing of sockets, stat lines, HTTP or the replication protocol.

pub mod format;
pub mod numfmt;
pub mod query;
pub mod retention;
pub mod tools;
