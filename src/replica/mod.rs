//! Replication in the daemon (docs/architecture.md), by direction and by owner.
//!
//! - [`coordinator`] runs on shard 0 and owns everything per connection: the replica
//!   listener and one session per slave, the link to this node's master, the send
//!   queues and their writers, the handshake, heartbeats and timeouts, the operator's
//!   control state, and the late-marks book. It routes file PDUs to the shard that owns
//!   the file.
//! - [`owner`] runs on every shard and owns the replication state of that shard's files
//!   (`istatd_replication::{master, slave, scrub}`) and their storage reads and writes.
//!
//! They talk only through the two message enums of [`messages`], one per direction.
//! What the coordinator needs to know of the owners' progress (Requests answered, bytes
//! given back to a connection's window, file PDUs applied) travels in those messages;
//! nothing is shared between shards but the messages.
//!
//! The sans-I/O state machines and the wire format are the replication crate's; this
//! module is their I/O.

pub mod control;
pub mod coordinator;
pub mod late;
pub mod messages;
pub mod owner;
pub mod pacing;

use istatd_replication::pdu::{self, UniqueId};

pub use control::Control;
pub use late::LateStart;

/// Replication settings resolved from the options (docs/replication-protocol.md,
/// "Options").
#[derive(Debug, Clone, Default)]
pub struct ReplConfig {
    pub port: u16,
    pub of: Option<(String, u16)>,
    pub chunk_buckets: u32,
    pub max_slaves: u32,
    pub overlap: u32,
    pub late_window: u32,
    pub from: Option<i64>,
    pub keepalive: u32,
    pub timeout: u32,
    pub subscribe_rate: u32,
    pub create_rate: u32,
    pub read_rate: u64,
    /// Shards the rates are split across.
    pub shards: usize,
    /// `--replica-backoff-max`, seconds.
    pub backoff_max: u32,
    /// `--replica-scrub-rate`, buckets per second (0: no scrub, version 2 only).
    pub scrub_rate: u64,
    /// `--replica-scrub-interval`, seconds (0: passes only by the admin command).
    pub scrub_interval: u32,
}

impl ReplConfig {
    /// Configured as a slave at start-up (after the store's markers).
    pub fn is_slave(&self) -> bool {
        self.of.is_some()
    }

    /// The highest protocol version this node speaks: 3 with the scrub on.
    pub fn max_version(&self) -> u32 {
        if self.scrub_rate > 0 {
            pdu::VERSION_SCRUB
        } else {
            pdu::VERSION
        }
    }
}

/// What replication starts with, decided once before the shards run: this process's
/// identity on the wire, the roles from the options and the store's markers, and the
/// late marks read back from the store.
#[derive(Debug, Clone)]
pub struct ReplStart {
    pub id: UniqueId,
    pub control: Control,
    pub late: LateStart,
}

/// Decide the start-up roles (and read the late marks of a master): plain file I/O,
/// before any shard runs. `cfg.of` and `cfg.from` are updated to what the markers say.
pub fn start(
    cfg: &mut ReplConfig,
    store: Option<&std::path::Path>,
    shards: usize,
) -> std::io::Result<ReplStart> {
    let late = match (store, cfg.port != 0) {
        (Some(root), true) => late::load(root, cfg.late_window, shards),
        _ => LateStart::empty(shards),
    };
    let control = control::init(cfg, store);
    Ok(ReplStart {
        id: UniqueId::make(std::process::id())?,
        control,
        late,
    })
}

/// The shard that owns the file of a wire name.
pub fn owner_of(name: &[u8], shards: usize) -> usize {
    let key = istatd_replication::name::counter_key(&String::from_utf8_lossy(name));
    istatd_shards::shard_of(key.as_bytes(), shards)
}
