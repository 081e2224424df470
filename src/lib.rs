//! The `istatd` daemon, by what passes through it:
//!
//! - [`ingest`]: stat lines from the stat port to their owner shard's store;
//! - [`replica`]: replication, the coordinator on shard 0 and each shard's files;
//! - [`http`], [`admin`]: the HTTP API and the admin port;
//! - [`agent`]: forwarding mode;
//! - [`graphite`]: Graphite render targets, their functions and their JSON;
//! - [`metrics`]: the daemon's own counters;
//! - [`statline`], [`options`], [`pattern`]: the stat-line protocol, the options, the
//!   counter-name pattern language;
//! - [`daemon`]: the wiring of shards, storage and listeners.

pub mod admin;
pub mod agent;
pub mod clock;
pub mod daemon;
pub mod graphite;
pub mod http;
pub mod ingest;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod options;
pub mod pattern;
pub mod replica;
pub mod statline;
