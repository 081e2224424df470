//! What the HTTP layer asks of the daemon. The HTTP code runs on whichever shard
//! accepted the connection; the daemon's implementation fetches counter data from the
//! owning shards over the control mesh.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use istatd_storage::query::{QueryParams, QueryResult};

use crate::metrics::prom::PromLayout;

/// A future running on the current executor.
pub type LocalFut<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// One counter's answer to a query.
#[derive(Debug, Clone)]
pub struct CounterData {
    pub result: QueryResult,
    /// Event (`*`) counter: its finest file is COLLATED.
    pub is_event: bool,
}

/// An entry of the counter list (`GET /?q=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterInfo {
    /// The counter key (munged name).
    pub name: String,
    pub is_event: bool,
}

/// A stat connection's meta record (`GET /?a=`, docs/interfaces.md §2.7, §3.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentInfo {
    /// `ip:port` of the client.
    pub peer: String,
    pub online: bool,
    pub blacklisted: bool,
    /// Meta keys and values (`#key value` lines).
    pub keys: BTreeMap<String, String>,
    /// Clock time of the connection's last command.
    pub last_seen: i64,
    /// Clock time the record was created (the connection's first data).
    pub connected: i64,
}

pub trait Backend {
    /// False in agent mode (no local store): data requests answer 503.
    fn has_store(&self) -> bool;
    /// The daemon clock (fake time aware).
    fn now(&self) -> i64;
    /// Query one counter by key (already munged, no `*`). `Ok(None)`: no such counter.
    fn query<'a>(
        &'a self,
        key: &'a str,
        params: QueryParams,
    ) -> LocalFut<'a, Result<Option<CounterData>, String>>;
    /// Every counter of every shard, in no particular order.
    fn counters(&self) -> LocalFut<'_, Vec<CounterInfo>>;
    /// Every shard's connection meta records.
    fn agents(&self) -> LocalFut<'_, Vec<AgentInfo>>;
    /// Prometheus text: the exporter's samples (`exporter`, docs/interfaces.md §4; `None`
    /// when it is off), or the daemon's own counters (`/metrics` on the HTTP port).
    fn metrics(&self, exporter: bool, layout: PromLayout) -> LocalFut<'_, Option<String>>;
}
