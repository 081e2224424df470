//! What shards send each other: sample batches on the data mesh; requests, replies and
//! one-way events on the control mesh.

use std::sync::Arc;

use istatd_storage::query::QueryParams;

use crate::http::backend::{AgentInfo, CounterData, CounterInfo};
use crate::ingest::SampleBatch;
use crate::metrics::loopback::LoopbackCounters;
use crate::metrics::prom::PromStore;
use crate::replica::messages::{ToCoordinator, ToOwner};
use crate::statline::Blacklist;

/// The data mesh: samples for the counters the receiving shard owns.
pub enum DataMsg {
    Samples(SampleBatch),
}

/// A request to one shard (or all of them).
#[derive(Debug, Clone)]
pub enum Req {
    /// Flush every counter of the shard (`force`: admin flush).
    Flush { force: bool },
    /// The shard's internal counters.
    Stats,
    /// To shard 0: every shard's internal counters with the replication links' and the
    /// agent's, as `stats` shows them.
    AllStats,
    /// Admin `purge maxOld,maxAge` of connection meta records.
    Purge { max_old: u64, max_age: i64 },
    /// Query one counter owned by the receiving shard (HTTP).
    Query(String, QueryParams),
    /// The receiving shard's counters with their kind (HTTP counter list).
    Counters,
    /// The shard's counter keys, sorted (no kinds: nothing is read from disk).
    CounterNames,
    /// The receiving shard's connection meta records (HTTP agent list).
    Agents,
    /// A copy of the receiving shard's Prometheus exporter samples.
    PromSnapshot,
    /// Delete these counters (owned by the receiving shard).
    Delete(Vec<String>),
    /// Delete every counter of the receiving shard matching one of the patterns.
    DeletePattern(Vec<String>),
    /// Open the stat port (TCP and UDP) on the receiving shard as generation `epoch`
    /// (after a promotion).
    OpenStat(u64),
    /// Close the stat port as of generation `epoch` (this node became a slave).
    CloseStat(u64),
    /// `replication.resync PATH[,from=]` for a file of the receiving shard.
    Resync(String, Option<i64>),
    /// `replication.scrub start|stop` for the receiving shard's files.
    Scrub(bool),
    /// Agent mode, admin `flush`: the receiving shard's bucketed lines, now.
    AgentFlush,
    /// The blacklist in force from now on.
    Blacklist(Arc<Blacklist>),
}

#[derive(Debug)]
pub enum Rep {
    Done,
    /// A shard's loopback counters and its port-specific extras.
    Stats(Box<LoopbackCounters>, Vec<(String, i64)>),
    Query(Result<Option<CounterData>, String>),
    Counters(Vec<CounterInfo>),
    CounterNames(Vec<String>),
    Agents(Vec<AgentInfo>),
    Prom(Box<PromStore>),
    Failed(String),
    /// Forward lines and their count (agent mode).
    AgentLines(Vec<u8>, u64),
}

/// One-way traffic, handled in arrival order by the receiving shard.
#[derive(Debug)]
pub enum Event {
    /// Replication, coordinator to the shard owning the files.
    ToOwner(ToOwner),
    /// Replication, an owning shard to the coordinator (shard 0).
    ToCoordinator(ToCoordinator),
    /// To shard 0 in agent mode: forward lines (`meta`: to every connection).
    AgentLines {
        text: Vec<u8>,
        lines: u64,
        meta: bool,
    },
}
