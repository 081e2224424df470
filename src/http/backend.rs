//! What the HTTP layer asks of the daemon. The HTTP code runs on whichever shard
//! accepted the connection; the daemon's implementation fetches counter data from the
//! owning shards over the control mesh.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

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
    /// Every counter's name, sorted; may be a few seconds old (Graphite's find and
    /// wildcard render read it for every request).
    fn names(&self) -> LocalFut<'_, Rc<NameList>> {
        Box::pin(async move {
            let names = self.counters().await.into_iter().map(|c| c.name).collect();
            Rc::new(NameList::new(names))
        })
    }
    /// Every shard's connection meta records.
    fn agents(&self) -> LocalFut<'_, Vec<AgentInfo>>;
    /// Prometheus text: the exporter's samples (`exporter`, docs/interfaces.md §4; `None`
    /// when it is off), or the daemon's own counters (`/metrics` on the HTTP port).
    fn metrics(&self, exporter: bool, layout: PromLayout) -> LocalFut<'_, Option<String>>;
}

/// Counter names sorted, in one buffer: half a million names cost their bytes plus 4
/// bytes each, not a String each.
#[derive(Debug, Default)]
pub struct NameList {
    text: String,
    ends: Vec<u32>,
}

impl NameList {
    pub fn new(mut names: Vec<String>) -> NameList {
        names.sort_unstable();
        names.dedup();
        let mut text = String::with_capacity(names.iter().map(String::len).sum());
        let mut ends = Vec::with_capacity(names.len());
        for n in &names {
            text.push_str(n);
            ends.push(u32::try_from(text.len()).unwrap_or(u32::MAX));
        }
        NameList { text, ends }
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The `i`th name in sorted order.
    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        let end = self.ends.get(i).map_or(start, |&e| e as usize);
        self.text.get(start..end).unwrap_or("")
    }

    /// The index of the first name not below `key`.
    pub fn lower_bound(&self, key: &str) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.get(mid) < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }
}
