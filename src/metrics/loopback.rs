//! The reference's internal counters (docs/interfaces.md §5.5, daemon/LoopbackCounter.cpp):
//! each shard bumps its own share, shard 0 merges them and records them into the store as
//! `istatd.*` counters.

/// How often internal counters are recorded into the store (the reference's 500 ms
/// timer); admin `flush` records them at once as well.
pub const RECORD_INTERVAL_MS: u64 = 500;

/// The three kinds of the reference (`CounterType` in LoopbackCounter.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopbackKind {
    /// `TypeEvent`: increments summed; each recording stores the non-zero sum since the
    /// previous recording as one sample of the event counter `*istatd.<name>`.
    Event,
    /// `TypeCounted`: a level moved by ++/−−; each recording stores a non-zero level as a
    /// sample of the gauge `istatd.<name>` (not reset).
    Counted,
    /// `TypeGauge`: a value set by its owner; stored as the gauge `istatd.<name>`.
    Gauge,
}

macro_rules! loopbacks {
    ($($variant:ident => $name:literal, $kind:ident, $doc:literal;)*) => {
        /// Every internal counter of the reference (§5.5). `pagecache.*` (one pair per
        /// retention) are in [`LoopbackCounters`] separately.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Loopback {
            $(#[doc = $doc] $variant,)*
        }

        impl Loopback {
            /// All of them, in listing and recording order.
            pub const ALL: &'static [Loopback] = &[$(Loopback::$variant,)*];

            /// The name without the `istatd.` prefix, e.g. `admin.commands`.
            pub fn name(self) -> &'static str {
                match self { $(Loopback::$variant => $name,)* }
            }

            pub fn kind(self) -> LoopbackKind {
                match self { $(Loopback::$variant => LoopbackKind::$kind,)* }
            }
        }
    };
}

loopbacks! {
    Exceptions => "exceptions", Event, "Exceptions caught at the worker loop (daemon/main.cpp).";
    MmOpens => "mm.opens", Gauge, "File open total (audit timer, every 10 s).";
    MmCloses => "mm.closes", Gauge, "File close total (audit timer, every 10 s).";
    MmMaps => "mm.maps", Gauge, "mmap total (audit timer, every 10 s).";
    MmUnmaps => "mm.unmaps", Gauge, "munmap total (audit timer, every 10 s).";
    StatServerConnects => "statserver.connects", Event, "Stat TCP connections opened.";
    StatServerDrops => "statserver.drops", Event, "Stat TCP connections closed.";
    StatServerConnected => "statserver.connected", Gauge, "Open stat connections (every 5 s).";
    StatServerCommandsReserved => "statserver.commands.reserved", Event, "Reserved stat commands (§2.9).";
    StatServerCommandsBad => "statserver.commands.bad", Event, "Bad stat lines (§2.9).";
    AppMemoryVmsize => "app.memory.vmsize", Gauge, "Bytes from /proc/self/statm (every 5 s).";
    AppMemoryVmrss => "app.memory.vmrss", Gauge, "Bytes from /proc/self/statm (every 5 s).";
    HttpCurrent => "http.current", Gauge, "HTTP requests in flight (main and Prometheus listeners).";
    HttpRequests => "http.requests", Event, "HTTP requests.";
    HttpErrorsServer => "http.errors.server", Event, "HTTP server errors (§3.12).";
    HttpErrorsHttp => "http.errors.http", Event, "HTTP protocol errors (§3.12).";
    AdminConnections => "admin.connections", Event, "Admin connections accepted.";
    AdminCommands => "admin.commands", Event, "Admin command lines.";
    SettingsGet => "settings.get", Event, "Settings reads.";
    SettingsSet => "settings.set", Event, "Settings writes.";
    SettingsMatch => "settings.match", Event, "Settings matches.";
    SettingsSave => "settings.save", Event, "Settings file saves.";
    BlacklistCount => "blacklist.count", Event, "Blacklist hits.";
    ReplicaConnections => "replica.connections", Gauge, "Connected slaves.";
    ReplicaEvents => "replica.events", Event, "PDUs received on replica connections (port; never counted by the reference).";
    CounterEnqueue => "counter.enqueue", Event, "Samples queued to counter workers.";
    CounterDequeue => "counter.dequeue", Event, "Samples taken by counter workers.";
    CounterQueuelen => "counter.queuelen", Counted, "Samples waiting.";
    CounterEagerconns => "counter.eagerconns", Counted, "Live TCP connection objects of all kinds.";
    CounterFromFuture => "counter.from_future", Event, "Samples rejected as too far in the future.";
    CounterFromPast => "counter.from_past", Event, "Samples rejected as too old.";
    CounterLate => "counter.late", Event, "Events older than their collation window, merged into the stored buckets (port; the reference rejects them as from_past).";
    CounterRejected => "counter.rejected", Event, "Samples rejected as inconsistent.";
    CounterClosed => "counter.closed", Event, "Counter objects closed.";
    CounterCreated => "counter.created", Event, "Counter directories created.";
    CounterFlushed => "counter.flushed", Event, "Counter files flushed.";
}

const N_LOOPBACK: usize = Loopback::ALL.len();

/// One shard's (or the merged) internal counters: plain integers, cheap to bump.
///
/// Every shard owns one and only ever moves it forward; it never resets anything. To
/// publish, shard 0 merges the latest copy from every shard into a fresh total
/// ([`merge`](LoopbackCounters::merge) adds field by field) and hands that total to its
/// [`LoopbackRecorder`] every [`RECORD_INTERVAL_MS`] and on admin `flush`, and to
/// [`render_stats`] through [`stats`](LoopbackCounters::stats).
///
/// Values: an event counter holds its total since start; a counted one its level (the
/// sum of ++/−−); a gauge its last value plus how many times it was set. Merged gauges
/// are summed over shards: right for per-shard levels (`statserver.connected`,
/// `http.current`, `replica.connections`); process-wide gauges (`app.memory.*`, `mm.*`)
/// must be set on one shard only.
///
/// The reference feeds some of them on timers, which the daemon keeps: `mm.*` and
/// `pagecache.*` every 10 s (the pagecache hits/misses since the previous audit are
/// added then), `statserver.connected` and `app.memory.*` every 5 s, `http.current` at
/// every request start and end, `replica.connections` at every replica connect and
/// disconnect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopbackCounters {
    values: [i64; N_LOOPBACK],
    sets: [u64; N_LOOPBACK],
    retentions: Vec<String>,
    /// `[hits, misses]` per retention, event totals.
    pagecache: Vec<[i64; 2]>,
    /// Audits of the page-cache totals ([`LoopbackCounters::audit_pagecache`]): the
    /// recording after one records every retention's pair, zeros included, as the
    /// reference's 10 s audit timer does.
    pagecache_audits: u64,
    /// The highest `counter.queuelen` level since [`LoopbackCounters::take_queuelen_peak`]:
    /// samples wait microseconds, so the level at a recording's instant is nearly
    /// always 0; the recording shows the most that waited since the previous one.
    queuelen_peak: i64,
}

impl Default for LoopbackCounters {
    fn default() -> LoopbackCounters {
        LoopbackCounters::new::<&str>(&[])
    }
}

impl LoopbackCounters {
    /// All zero. `retention_names` are the retention intervals' names in `--retention`
    /// order (the name defaults to the interval text, e.g. `10s`); each gets the event
    /// counters `pagecache.hits.time_<name>` and `pagecache.misses.time_<name>`.
    pub fn new<S: AsRef<str>>(retention_names: &[S]) -> LoopbackCounters {
        LoopbackCounters {
            values: [0; N_LOOPBACK],
            sets: [0; N_LOOPBACK],
            retentions: retention_names
                .iter()
                .map(|s| s.as_ref().to_owned())
                .collect(),
            pagecache: vec![[0, 0]; retention_names.len()],
            pagecache_audits: 0,
            queuelen_peak: 0,
        }
    }

    /// Event +1 / counted level +1.
    pub fn incr(&mut self, c: Loopback) {
        self.add(c, 1);
    }

    /// Counted level −1.
    pub fn decr(&mut self, c: Loopback) {
        self.add(c, -1);
    }

    /// Event: `n` more events; counted: level += `n` (the reference's `value(n)`). For a
    /// gauge this adds to the value and counts as a set.
    pub fn add(&mut self, c: Loopback, n: i64) {
        let i = c as usize;
        self.values[i] = self.values[i].wrapping_add(n);
        if c.kind() == LoopbackKind::Gauge {
            self.sets[i] += 1;
        }
        if c == Loopback::CounterQueuelen {
            self.queuelen_peak = self.queuelen_peak.max(self.values[i]);
        }
    }

    /// Start a new `counter.queuelen` peak from the level now (after this shard's
    /// counters were taken for a recording).
    pub fn take_queuelen_peak(&mut self) {
        self.queuelen_peak = self.values[Loopback::CounterQueuelen as usize];
    }

    /// Gauge: the new value, recorded at the next recording. For an event or counted
    /// counter whose source keeps its own running total: replaces the total / level.
    pub fn set(&mut self, c: Loopback, v: i64) {
        let i = c as usize;
        self.values[i] = v;
        if c.kind() == LoopbackKind::Gauge {
            self.sets[i] += 1;
        }
    }

    /// Current value: event total since start, counted level, or last gauge value.
    pub fn get(&self, c: Loopback) -> i64 {
        self.values[c as usize]
    }

    /// Page-cache hits and misses of retention `index` (ignored when out of range).
    pub fn add_pagecache(&mut self, index: usize, hits: i64, misses: i64) {
        if let Some(p) = self.pagecache.get_mut(index) {
            p[0] = p[0].wrapping_add(hits);
            p[1] = p[1].wrapping_add(misses);
        }
    }

    /// Replaces the page-cache totals of retention `index` (for a source that keeps its
    /// own running totals; ignored when out of range).
    pub fn set_pagecache(&mut self, index: usize, hits: i64, misses: i64) {
        if let Some(p) = self.pagecache.get_mut(index) {
            *p = [hits, misses];
        }
    }

    /// The audit timer: the page-cache `[hits, misses]` totals of every retention,
    /// by index, from a source that keeps running totals (the store).
    pub fn audit_pagecache(&mut self, totals: &[[u64; 2]]) {
        for (i, t) in totals.iter().enumerate() {
            self.set_pagecache(i, t[0] as i64, t[1] as i64);
        }
        self.pagecache_audits += 1;
    }

    /// `(hits, misses)` totals of retention `index`.
    pub fn pagecache(&self, index: usize) -> Option<(i64, i64)> {
        self.pagecache.get(index).map(|p| (p[0], p[1]))
    }

    /// Adds `other` into `self` field by field. Retentions are matched by position; ones
    /// `self` lacks are taken over from `other`.
    pub fn merge(&mut self, other: &LoopbackCounters) {
        for i in 0..N_LOOPBACK {
            self.values[i] = self.values[i].wrapping_add(other.values[i]);
            self.sets[i] = self.sets[i].wrapping_add(other.sets[i]);
        }
        self.pagecache_audits = self.pagecache_audits.wrapping_add(other.pagecache_audits);
        self.queuelen_peak = self.queuelen_peak.wrapping_add(other.queuelen_peak);
        for (i, p) in other.pagecache.iter().enumerate() {
            if let Some(mine) = self.pagecache.get_mut(i) {
                mine[0] = mine[0].wrapping_add(p[0]);
                mine[1] = mine[1].wrapping_add(p[1]);
            } else {
                self.retentions.push(other.retentions[i].clone());
                self.pagecache.push(*p);
            }
        }
    }

    /// Every counter as `(kind, name without "istatd.", value)`, in recording order:
    /// [`Loopback::ALL`], then per retention `pagecache.hits.time_<r>` and
    /// `pagecache.misses.time_<r>`.
    pub fn iter(&self) -> impl Iterator<Item = (LoopbackKind, String, i64)> + '_ {
        let fixed = Loopback::ALL
            .iter()
            .map(|&c| (c.kind(), c.name().to_owned(), self.get(c)));
        let pages = self
            .retentions
            .iter()
            .zip(&self.pagecache)
            .flat_map(|(r, p)| {
                [
                    (
                        LoopbackKind::Event,
                        format!("pagecache.hits.time_{r}"),
                        p[0],
                    ),
                    (
                        LoopbackKind::Event,
                        format!("pagecache.misses.time_{r}"),
                        p[1],
                    ),
                ]
            });
        fixed.chain(pages)
    }

    /// `(istatd.<name>, value)` for the `stats` extension lines (see [`render_stats`]).
    pub fn stats(&self) -> Vec<(String, i64)> {
        self.iter()
            .map(|(_, name, v)| (format!("istatd.{name}"), v))
            .collect()
    }
}

/// A sample to record into the local store at the current time (fake time when set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopbackSample {
    /// `*istatd.<name>` for event counters, `istatd.<name>` for counted and gauges.
    pub key: String,
    pub value: i64,
}

/// Turns successive merged totals into the samples the reference records
/// (`LoopbackCounter::forceUpdates`, run every 500 ms and at admin `flush`).
///
/// Nothing is recorded without a store (agents) nor on a replication slave; the daemon
/// then simply does not call [`samples`](LoopbackRecorder::samples).
#[derive(Debug, Clone, Default)]
pub struct LoopbackRecorder {
    last: Option<LoopbackCounters>,
}

impl LoopbackRecorder {
    pub fn new() -> LoopbackRecorder {
        LoopbackRecorder::default()
    }

    /// The samples for this recording, given the current merged totals:
    ///
    /// - event: the increase since the previous call, if non-zero, as `*istatd.<name>`;
    /// - counted: the level, if non-zero, as `istatd.<name>` (every call);
    /// - gauge: the current value as `istatd.<name>` if it was set since the previous
    ///   call (the reference records every set at once; the port records the latest
    ///   value at the next recording).
    pub fn samples(&mut self, now: &LoopbackCounters) -> Vec<LoopbackSample> {
        let empty = LoopbackCounters::default();
        let last = self.last.as_ref().unwrap_or(&empty);
        let mut out = Vec::new();
        for &c in Loopback::ALL {
            let i = c as usize;
            let v = now.values[i];
            let sample = match c.kind() {
                LoopbackKind::Event => {
                    let d = v.wrapping_sub(last.values[i]);
                    (d != 0).then(|| (format!("*istatd.{}", c.name()), d))
                }
                LoopbackKind::Counted => {
                    let v = if c == Loopback::CounterQueuelen {
                        v.max(now.queuelen_peak)
                    } else {
                        v
                    };
                    (v != 0).then(|| (format!("istatd.{}", c.name()), v))
                }
                LoopbackKind::Gauge => {
                    (now.sets[i] != last.sets[i]).then(|| (format!("istatd.{}", c.name()), v))
                }
            };
            if let Some((key, value)) = sample {
                out.push(LoopbackSample { key, value });
            }
        }
        let audited = now.pagecache_audits != last.pagecache_audits;
        for (i, (r, p)) in now.retentions.iter().zip(&now.pagecache).enumerate() {
            let before = last.pagecache.get(i).copied().unwrap_or([0, 0]);
            for (what, k) in [("hits", 0), ("misses", 1)] {
                let d = p[k].wrapping_sub(before[k]);
                if d != 0 || audited {
                    out.push(LoopbackSample {
                        key: format!("*istatd.pagecache.{what}.time_{r}"),
                        value: d,
                    });
                }
            }
        }
        self.last = Some(now.clone());
        out
    }
}

#[cfg(test)]
mod tests;
