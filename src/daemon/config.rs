//! The daemon's configuration as the shards see it: resolved from the options once,
//! before they start, and never changed after.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use istatd_shards::ShardSpec;
use istatd_storage::retention::Retention;
use istatd_storage::store::{Allocation, IoMode};

use crate::agent::AgentConfig;
use crate::ingest::meta::BlacklistConfig;
use crate::replica::ReplConfig;

/// Everything a shard needs, resolved from the options before the shards start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Absolute store directory; `None` = no local store.
    pub store: Option<PathBuf>,
    pub retentions: Vec<Retention>,
    pub allocation: Allocation,
    /// `--store-io`.
    pub io: IoMode,
    pub create_parents: bool,
    pub listen: Ipv4Addr,
    pub stat_port: u16,
    /// `--graphite-port` (0 = off).
    pub graphite_port: u16,
    pub admin_port: u16,
    pub flush_secs: u64,
    pub shards: ShardSpec,
    pub page_cache_pages: usize,
    pub max_open_files: usize,
    pub udp_buffer_bytes: usize,
    /// `--listen-overflow-backlog`.
    pub backlog: i32,
    /// `--local-stats` suffix (already normalized); `None` = off.
    pub local_stats: Option<String>,
    /// `--http-port` (0 = off).
    pub http_port: u16,
    /// `--files-dir` (resolved).
    pub files_dir: PathBuf,
    /// `--settings` directory (resolved).
    pub settings_dir: PathBuf,
    /// `--disallow-compressed-responses`.
    pub disallow_compressed: bool,
    /// `--prometheus-port` (0 = exporter off).
    pub prometheus_port: u16,
    /// The exporter's settings (per shard: the entry cap is split across shards).
    pub prom: crate::metrics::prom::PromConfig,
    /// `--blacklist-path` (resolved) and `--blacklist-period`; `None` = off.
    pub blacklist: Option<BlacklistConfig>,
    /// Agent (forwarding) mode; no targets: off.
    pub agent: AgentConfig,
    /// Replication (replica port, master to pull from, pacing).
    pub repl: ReplConfig,
    /// The log's levels (admin `loglevel`).
    pub log: crate::logging::LogControl,
}
