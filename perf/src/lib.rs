//! istatd benchmark harness (library part shared by the `loadgen` and `report`
//! binaries): a stat-port load generator and a driver for a daemon process.
//! The storage benchmark is the package's default binary (`src/main.rs`).

pub mod daemon;
pub mod loadgen;
