//! The `stats` answer (§5.4).

use std::fmt;
use std::fmt::Write as _;

use super::reply::OK;

/// Main HTTP listener (present when `--http-port` ≠ 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpStats {
    pub port: u16,
    /// Requests in flight.
    pub current: i64,
}

/// Replica server (present when `--replica-port` ≠ 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaServerStats {
    pub port: u16,
    /// Connected slaves.
    pub current: i64,
}

/// Replica-of link (present when the node is a slave).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaOfStats {
    /// `host:port` as configured.
    pub source: String,
    /// Printed as 1/0 (port: 1 only after the handshake, docs/replication-protocol.md,
    /// "Metrics").
    pub connected: bool,
    /// Port: files waiting for subscription or creation (reference: always 0).
    pub queue: u64,
}

/// What `stats` reports; `None` fields are features that are off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsInfo {
    pub http: Option<HttpStats>,
    pub replica_server: Option<ReplicaServerStats>,
    pub replica_of: Option<ReplicaOfStats>,
    /// The fake clock's current value (present when started with `--fake-time`).
    pub fake_time: Option<i64>,
}

/// The whole `stats` answer: the reference's keys in the reference's order (§5.4), then
/// every `extra` pair as `<name>=<value>` in the order given, then `ok`.
///
/// Port extension: the daemon passes [`LoopbackCounters::stats`] (names `istatd.<name>`;
/// event counters: total since start; counted: current level; gauges: last value, summed
/// over shards) followed by the `replication.*` metrics (docs/replication-protocol.md,
/// "Metrics"). Names are printed as given.
pub fn render_stats<I, N, V>(info: &StatsInfo, extra: I) -> String
where
    I: IntoIterator<Item = (N, V)>,
    N: AsRef<str>,
    V: fmt::Display,
{
    let mut s = String::new();
    if let Some(h) = &info.http {
        let _ = write!(s, "http.port={}\r\nhttp.current={}\r\n", h.port, h.current);
    }
    if let Some(r) = &info.replica_server {
        let _ = write!(
            s,
            "replicaServer.port={}\r\nreplicaServer.current={}\r\n",
            r.port, r.current
        );
    }
    if let Some(r) = &info.replica_of {
        let _ = write!(
            s,
            "replicaOf.source={}\r\nreplicaOf.connected={}\r\nreplicaOf.queue={}\r\n",
            r.source,
            u8::from(r.connected),
            r.queue
        );
    }
    if let Some(t) = info.fake_time {
        let _ = write!(s, "fakeTime.value={t}\r\n");
    }
    for (name, value) in extra {
        let _ = write!(s, "{}={}\r\n", name.as_ref(), value);
    }
    s.push_str(OK);
    s
}

/// `stats`: every shard's counters and the replication links'.
pub async fn run(shard: &std::rc::Rc<crate::daemon::Shard>, heap: bool) -> String {
    use crate::metrics::loopback::Loopback;
    let (lb, mut extras) = shard.all_stats().await;
    if heap {
        if let Some(bytes) = crate::metrics::gather::heap_in_use().await {
            extras.push(("istatd.process.heap_bytes".into(), bytes));
        }
    }
    let cfg = &shard.core.cfg;
    let coordinator = shard.coordinator.as_ref();
    let info = StatsInfo {
        http: (cfg.http_port != 0).then(|| HttpStats {
            port: cfg.http_port,
            current: lb.get(Loopback::HttpCurrent),
        }),
        replica_server: (cfg.repl.port != 0).then(|| ReplicaServerStats {
            port: cfg.repl.port,
            current: coordinator.map_or(0, |c| c.master.connections() as i64),
        }),
        replica_of: coordinator.and_then(|c| {
            let of = c.control().of?;
            Some(ReplicaOfStats {
                source: format!("{}:{}", of.0, of.1),
                connected: c.slave.is_connected(),
                queue: crate::metrics::gather::get(&extras, "replication.slave.pending_subscribe")
                    as u64,
            })
        }),
        fake_time: crate::clock::is_fake().then(crate::clock::fake_value),
    };
    render_stats(&info, lb.stats().into_iter().chain(extras))
}
