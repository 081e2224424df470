//! The path of a sample: bytes from the stat port (TCP and UDP alike, [`stat_port`])
//! are split into lines and parsed on the shard that received them; every sample is
//! batched for the shard owning its counter and sent once per read; the owner records
//! its batches into its store. Parents ("rollups") are created ahead of their first
//! child's sample, on their own owners, in input order.

pub mod meta;
pub mod stat_port;

use std::cell::{Cell, RefCell};
use std::ops::ControlFlow;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use istatd_shards::{Batch, Router};
use istatd_storage::counter::{Reject, Sample};
use istatd_storage::hashing::{FastSet, FastState};
use istatd_storage::store::{CounterState, RecordOutcome, Store, StoreError};

use crate::agent::AgentForwarder;
use crate::clock;
use crate::daemon::{DataMsg, ShardCore};
use crate::metrics::loopback::Loopback;
use crate::metrics::prom::PromStore;
use crate::statline::{self, Blacklist, Frame, LineOutcome, ParsedBatch};
use meta::{MetaHandle, MetaRegistry};

/// What a sample record asks of the owner shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Record the sample.
    Record,
    /// Make the counter exist (a parent), with the sample's time as zero time.
    Ensure,
    /// Record an internal (`istatd.*`) counter sample.
    Internal,
}

/// One sample bound for its owner.
#[derive(Debug, Clone, Copy)]
pub struct SampleRec {
    pub event: bool,
    pub op: Op,
    /// The stream it came in ([`Ingest::new_source`]): an event older than its
    /// counter's window is merged when another stream moved the window, refused as
    /// from the past when its own did (`Store::record_from`).
    pub source: Source,
    pub sample: Sample,
}

/// A stream of samples: a stat connection (unique among the daemon's connections:
/// the shard's index in the top 8 bits, a serial below), a shard's UDP socket, or
/// [`INTERNAL_SOURCE`].
pub type Source = u32;

/// The daemon's own samples (internal counters, local stats, parents).
pub const INTERNAL_SOURCE: Source = 0;

pub type SampleBatch = Batch<SampleRec>;
pub type SampleRouter = Router<SampleRec>;

/// Bound of the keys a shard remembers having routed (for parent creation); past it
/// the set starts over (parents are then only re-checked, which is harmless).
const KNOWN_KEYS_MAX: usize = 1 << 20;

/// This shard's ingest counters (published after the reference's loopback counters).
#[derive(Debug, Default, Clone)]
struct IngestCounters {
    /// Samples from the stat port recorded by this shard (owner side).
    samples: u64,
    /// Samples the store could not record (a refused or unwritable file).
    record_errors: u64,
    /// When "cannot record" was last logged (monotonic seconds).
    record_error_logged: i64,
}

pub struct Ingest {
    core: Rc<ShardCore>,
    counters: RefCell<IngestCounters>,
    /// Keys this shard has routed at least once (for parent creation), by their keyed
    /// 64-bit hash: a lookup per sample with no key compared (a pointer chase and a
    /// cache miss each at 100,000 counters), and 8 bytes a key. Two keys sharing a
    /// hash would only skip a parent check: the owner creates a new counter's parents
    /// itself (`Store::record_from`).
    known: RefCell<FastSet<u64>>,
    known_hasher: FastState,
    /// Meta records of this shard's stat connections, and the one all of its UDP
    /// traffic shares.
    meta: RefCell<MetaRegistry>,
    udp_meta: RefCell<Option<MetaHandle>>,
    /// The blacklist in force (sent by shard 0 whenever it reloads the file).
    blacklist: RefCell<Option<Arc<Blacklist>>>,
    /// Prometheus exporter samples fed by this shard's stat lines (exporter on).
    pub prom: Option<RefCell<PromStore>>,
    /// Agent mode: this shard's bucketizers and forwarding.
    agent: Option<Rc<AgentForwarder>>,
    /// Serial of the last [`Source`] given out.
    sources: Cell<u32>,
}

impl Ingest {
    pub fn new(core: Rc<ShardCore>, agent: Option<Rc<AgentForwarder>>) -> Ingest {
        let prom = (core.cfg.prometheus_port != 0).then(|| RefCell::new(PromStore::default()));
        Ingest {
            core,
            counters: RefCell::new(IngestCounters::default()),
            known: RefCell::new(FastSet::default()),
            known_hasher: FastState::new(),
            meta: RefCell::new(MetaRegistry::default()),
            udp_meta: RefCell::new(None),
            sources: Cell::new(0),
            blacklist: RefCell::new(None),
            prom,
            agent,
        }
    }

    pub fn router(&self) -> SampleRouter {
        Router::new(self.core.id, self.core.count)
    }

    // ----- connections' meta records ---------------------------------------------

    /// A new stat connection's meta record.
    pub fn open_meta(&self, peer: String, now: i64) -> MetaHandle {
        self.meta.borrow_mut().open(peer, now)
    }

    /// The record all of this shard's UDP traffic (and the local stats) shares.
    pub fn udp_meta(&self, from: impl FnOnce() -> String, now: i64) -> MetaHandle {
        self.udp_meta
            .borrow_mut()
            .get_or_insert_with(|| self.meta.borrow_mut().open(from(), now))
            .clone()
    }

    pub fn existing_udp_meta(&self) -> Option<MetaHandle> {
        self.udp_meta.borrow().clone()
    }

    pub fn purge_meta(&self, max_old: u64, max_age: i64) {
        self.meta.borrow_mut().purge(max_old, max_age, clock::now());
    }

    pub fn meta_records(&self) -> Vec<meta::MetaRecord> {
        self.meta
            .borrow()
            .records()
            .map(|r| r.borrow().clone())
            .collect()
    }

    /// Offline meta records purged every 300 s (docs/interfaces.md §2.7, port rule).
    pub async fn meta_purge_loop(&self) {
        while !self.core.shutdown.sleep(Duration::from_secs(300)).await {
            self.meta.borrow_mut().purge(100, 90_000, clock::now());
        }
    }

    /// Exporter gauges expired every `--metrics-cleanup-period`, stale counters daily.
    pub async fn prom_cleanup_loop(&self) {
        let Some(prom) = &self.prom else { return };
        let cfg = &self.core.cfg.prom;
        let period = cfg.cleanup_period.max(1) as u64;
        let mut elapsed = 0u64;
        while !self.core.shutdown.sleep(Duration::from_secs(period)).await {
            let now = clock::now();
            let mut p = prom.borrow_mut();
            p.expire_gauges(cfg, now);
            elapsed += period;
            if elapsed >= 86_400 {
                elapsed = 0;
                p.expire_counters(now);
            }
        }
    }

    /// A [`Source`] for a new stat connection (or this shard's UDP socket).
    pub fn new_source(&self) -> Source {
        let serial = self.sources.get() % 0x00FF_FFFF + 1;
        self.sources.set(serial);
        ((self.core.id as u32 & 0xFF) << 24) | serial
    }

    pub fn set_blacklist(&self, list: Arc<Blacklist>) {
        *self.blacklist.borrow_mut() = Some(list);
    }

    // ----- parsing (the shard that received the bytes) ----------------------------

    /// One frame of a stat connection or datagram: parsed into `router`. `Break`
    /// when its sender is blacklisted (nothing parsed).
    pub fn frame(
        &self,
        frame: Frame<'_>,
        now: i64,
        source: Source,
        parsed: &mut ParsedBatch,
        router: &mut SampleRouter,
        rec: &MetaHandle,
    ) -> ControlFlow<()> {
        if let Some(bl) = self.blacklist.borrow().as_ref() {
            if meta::is_blacklisted(rec, bl) {
                return ControlFlow::Break(());
            }
        }
        match frame {
            Frame::Line(line) => self.parse_line(line, now, source, parsed, router, Some(rec)),
            Frame::Bad(_) => self
                .core
                .lb
                .borrow_mut()
                .incr(Loopback::StatServerCommandsBad),
        }
        ControlFlow::Continue(())
    }

    /// Parse one line into `router` (samples), the meta record (meta lines), the
    /// exporter and the agent's bucketizers.
    pub fn parse_line(
        &self,
        line: &[u8],
        now: i64,
        source: Source,
        parsed: &mut ParsedBatch,
        router: &mut SampleRouter,
        meta: Option<&MetaHandle>,
    ) {
        parsed.clear();
        match statline::parse_line(line, now, parsed) {
            LineOutcome::Meta { key, value } => {
                if let Some(a) = &self.agent {
                    let mut m = a.shard.meta.borrow_mut();
                    m.push(b'#');
                    m.extend_from_slice(key);
                    m.push(b' ');
                    m.extend_from_slice(value);
                    m.extend_from_slice(b"\r\n");
                }
                if let Some(m) = meta {
                    m.borrow_mut().keys.insert(
                        String::from_utf8_lossy(key).into_owned(),
                        String::from_utf8_lossy(value).into_owned(),
                    );
                }
            }
            LineOutcome::Samples { name, .. } => {
                if let (Some(prom), Some(r)) = (&self.prom, parsed.records().last()) {
                    let sample = r.sample;
                    prom.borrow_mut()
                        .record_sample(&self.core.cfg.prom, name, &sample, now);
                }
                if let Some(a) = &self.agent {
                    for r in parsed.iter() {
                        a.shard.add(r.name, r.event, &r.sample, now);
                    }
                    if self.core.store_less() {
                        // An agent keeps nothing: a sample is handled once bucketed.
                        self.counters.borrow_mut().samples += parsed.len() as u64;
                        return;
                    }
                }
                for r in parsed.iter() {
                    self.ensure_parents(r.key, r.event, r.sample.time, router);
                    let rec = SampleRec {
                        event: r.event,
                        op: Op::Record,
                        source,
                        sample: r.sample,
                    };
                    router.push(r.key, rec);
                    self.core.lb.borrow_mut().incr(Loopback::CounterEnqueue);
                }
            }
            LineOutcome::Reserved => self
                .core
                .lb
                .borrow_mut()
                .incr(Loopback::StatServerCommandsReserved),
            other => {
                let n = other.bad_commands() as i64;
                if n > 0 {
                    self.core
                        .lb
                        .borrow_mut()
                        .add(Loopback::StatServerCommandsBad, n);
                }
            }
        }
    }

    /// Parent ("rollup") creation, in input order: the first time this shard sees a
    /// key, it asks each parent's owner to make the parent exist with this sample's
    /// time and kind, ahead of anything later in the stream (docs/interfaces.md §2.5
    /// step 4).
    pub fn ensure_parents(&self, key: &str, event: bool, time: i64, router: &mut SampleRouter) {
        if !self.core.cfg.create_parents || self.core.store_less() {
            return;
        }
        let mut known = self.known.borrow_mut();
        let hash = |k: &str| self.known_hasher.hash_one(k);
        if known.contains(&hash(key)) {
            return;
        }
        if known.len() >= KNOWN_KEYS_MAX {
            known.clear();
        }
        known.insert(hash(key));
        let mut p = key;
        while let Some(pos) = p.rfind('.') {
            p = &p[..pos];
            if !known.insert(hash(p)) {
                break;
            }
            let rec = SampleRec {
                event,
                op: Op::Ensure,
                source: INTERNAL_SOURCE,
                sample: Sample::value(time, 0.0),
            };
            router.push(p, rec);
        }
    }

    /// Send the batches of one read to their owners (this shard's own recorded here),
    /// and the agent's meta lines to shard 0.
    pub async fn dispatch(&self, router: &mut SampleRouter) {
        let (local, dropped) = router.send(&self.core.data, DataMsg::Samples).await;
        for shard in dropped {
            tracing::warn!(shard, "data channel closed; samples dropped");
        }
        if let Some(b) = local {
            self.record_batch(&b).await;
        }
        if let Some(a) = &self.agent {
            a.send_meta().await;
        }
    }

    // ----- recording (the owner) --------------------------------------------------

    pub async fn record_batch(&self, batch: &SampleBatch) {
        let Some(store) = &self.core.store else {
            return;
        };
        let now = clock::now();
        // `counter.queuelen`: the batch's samples wait until each is recorded.
        let waiting = batch.iter().filter(|(_, r)| r.op != Op::Ensure).count() as i64;
        self.core
            .lb
            .borrow_mut()
            .add(Loopback::CounterQueuelen, waiting);
        // Gauge samples of counters whose files are all loaded, the usual case, are
        // recorded at once. The rest wait, with every later sample of their counters
        // (each counter's samples stay in order), for the slow path below.
        let mut waiting_keys: FastSet<&str> = FastSet::default();
        let mut deferred: Vec<(&str, SampleRec)> = Vec::new();
        match store.quick_writer().await {
            Ok(writer) => {
                for (key, r) in batch.iter() {
                    if !waiting_keys.is_empty() && waiting_keys.contains(key) {
                        deferred.push((key, r));
                        continue;
                    }
                    let done = match r.op {
                        Op::Ensure => writer.exists(key),
                        _ => match writer.try_record(key, r.sample, now).await {
                            Some(recorded) => {
                                self.note_recorded(key, &r, recorded);
                                true
                            }
                            None => false,
                        },
                    };
                    if !done {
                        waiting_keys.insert(key);
                        deferred.push((key, r));
                    }
                }
            }
            Err(_) => deferred.extend(batch.iter()),
        }
        if !deferred.is_empty() {
            self.record_slowly(store, &deferred, now).await;
        }
    }

    /// Samples that create counters, load their files or are events. Counters this
    /// batch names for the first time are created together, in one trip to the
    /// blocking pool, each with its first sample's time and kind; counters on disk but
    /// not touched since start-up have their headers read together.
    async fn record_slowly(&self, store: &Store, batch: &[(&str, SampleRec)], now: i64) {
        let mut new: Vec<(&str, bool, i64)> = Vec::new();
        let mut cold: Vec<&str> = Vec::new();
        let mut seen: FastSet<&str> = FastSet::default();
        for &(key, r) in batch {
            match store.counter_state(key) {
                CounterState::Ready => {}
                CounterState::Missing if seen.insert(key) => {
                    new.push((key, r.event, r.sample.time))
                }
                CounterState::Cold if seen.insert(key) => cold.push(key),
                _ => {}
            }
        }
        if !new.is_empty() {
            match store.create_counters(&new).await {
                Ok(n) => self
                    .core
                    .lb
                    .borrow_mut()
                    .add(Loopback::CounterCreated, n as i64),
                Err(e) => tracing::warn!(error = %e, "cannot create counters"),
            }
        }
        if !cold.is_empty() {
            store.preload(&cold).await;
        }
        for &(key, r) in batch {
            if r.op == Op::Ensure {
                match store.create_counter(key, r.event, r.sample.time).await {
                    Ok(true) => self.core.lb.borrow_mut().incr(Loopback::CounterCreated),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(counter = %key, error = %e, "cannot create counter"),
                }
                continue;
            }
            let recorded = store
                .record_from(key, r.event, r.sample, now, r.source)
                .await;
            self.note_recorded(key, &r, recorded);
        }
    }

    /// Count what recording one sample did.
    fn note_recorded(&self, key: &str, r: &SampleRec, recorded: Result<RecordOutcome, StoreError>) {
        self.core.lb.borrow_mut().decr(Loopback::CounterQueuelen);
        match recorded {
            Ok(out) => {
                let mut lb = self.core.lb.borrow_mut();
                lb.incr(Loopback::CounterDequeue);
                if r.op == Op::Record {
                    self.counters.borrow_mut().samples += 1;
                }
                if out.created {
                    lb.incr(Loopback::CounterCreated);
                }
                if out.late {
                    lb.incr(Loopback::CounterLate);
                }
                match out.rejected {
                    Some(Reject::FromFuture) => lb.incr(Loopback::CounterFromFuture),
                    Some(Reject::FromPast) => lb.incr(Loopback::CounterFromPast),
                    Some(Reject::Rejected) => lb.incr(Loopback::CounterRejected),
                    None => {}
                }
            }
            Err(e) => self.record_failed(key, &e.to_string()),
        }
    }

    /// Counted; logged once a minute per shard, not once per sample.
    fn record_failed(&self, key: &str, error: &str) {
        let mut c = self.counters.borrow_mut();
        c.record_errors += 1;
        let now = clock::monotonic_secs();
        if now - c.record_error_logged >= 60 || c.record_errors == 1 {
            c.record_error_logged = now;
            tracing::warn!(
                counter = %key,
                error,
                refused_so_far = c.record_errors,
                "cannot record (samples refused: istatd.store.record_errors)"
            );
        }
    }

    pub fn stats(&self, out: &mut Vec<(String, i64)>) {
        let c = self.counters.borrow();
        out.push(("istatd.statserver.samples".into(), c.samples as i64));
        out.push(("istatd.store.record_errors".into(), c.record_errors as i64));
    }
}
