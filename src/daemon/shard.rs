//! One shard: the parts it is made of, what it answers to the other shards, and its
//! life from start to clean stop.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Duration;

use glommio::net::TcpListener;
use istatd_shards::flush::{FlushPacer, FlushRound};
use istatd_shards::rpc::{Handler, LocalBoxFuture, Rpc};
use istatd_shards::{shard_of, ShardContext, Shutdown};
use istatd_storage::store::{Store, StoreListing, StoreOptions};

use super::config::ServerConfig;
use super::core::{CtlMsg, ShardCore};
use super::messages::{DataMsg, Event, Rep, Req};
use crate::admin::DebugOptions;
use crate::agent::{AgentForwarder, AgentLinks, AgentShard};
use crate::clock;
use crate::http::backend::{AgentInfo, CounterData, CounterInfo};
use crate::http::{HttpConfig, SettingsStore};
use crate::ingest::stat_port::{Proto, StatPort};
use crate::ingest::Ingest;

use crate::metrics::loopback::{Loopback, LoopbackCounters};
use crate::metrics::recording::Recording;
use crate::replica::coordinator::Coordinator;
use crate::replica::messages::Mark;
use crate::replica::owner::Owner;
use crate::replica::ReplStart;

mod stats;

/// What every shard is started with.
#[derive(Clone)]
pub struct Startup {
    pub cfg: Arc<ServerConfig>,
    /// The store's directories and files, walked once before the shards start.
    pub listing: Option<Arc<StoreListing>>,
    /// The previous run closed the store cleanly (its clean-close mark was there).
    pub store_closed_cleanly: bool,
    /// The settings store the HTTP servers of every shard share.
    pub settings: Option<Arc<SettingsStore>>,
    pub repl: Arc<ReplStart>,
    pub shutdown: Shutdown,
    /// Where a shard reports that its listeners are up (or why not).
    pub ready: std::sync::mpsc::Sender<Result<(), StartError>>,
}

/// Why a shard could not start.
#[derive(Debug)]
pub enum StartError {
    Mesh(usize, std::io::Error),
    Store(std::path::PathBuf, istatd_storage::store::StoreError),
    Bind(BindError),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Mesh(id, e) => write!(f, "shard {id}: {e}"),
            StartError::Store(root, e) => write!(f, "store {}: {e}", root.display()),
            StartError::Bind(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for StartError {}

/// A port that could not be bound.
#[derive(Debug)]
pub struct BindError {
    what: &'static str,
    addr: std::net::SocketAddrV4,
    udp: bool,
    error: std::io::Error,
}

impl BindError {
    pub fn new(what: &'static str, addr: std::net::SocketAddrV4, error: std::io::Error) -> Self {
        BindError {
            what,
            addr,
            udp: false,
            error,
        }
    }

    /// The UDP socket of the port.
    pub fn udp(mut self) -> Self {
        self.udp = true;
        self
    }
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let udp = if self.udp { "/udp" } else { "" };
        write!(f, "{} port {}{udp}: {}", self.what, self.addr, self.error)
    }
}

impl std::error::Error for BindError {}

/// What a shard gives back when it stops.
#[derive(Debug, Default)]
pub struct ShardExit {
    /// Its files' late marks after the final flush (for `.replication_late`).
    pub late_marks: Vec<Mark>,
    /// Its store (if any) flushed everything and closed without error.
    pub store_closed: bool,
}

pub struct Shard {
    pub core: Rc<ShardCore>,
    pub ingest: Rc<Ingest>,
    pub stat_port: Rc<StatPort>,
    /// The Graphite plaintext port (`--graphite-port`; port 0: off); it opens and
    /// closes with the stat port.
    pub graphite_port: Rc<StatPort>,
    /// Replication of this shard's files (whenever there is a store).
    pub owner: Option<Rc<Owner>>,
    /// Shard 0 with a store: the replication connections and control.
    pub coordinator: Option<Rc<Coordinator>>,
    /// Agent mode.
    pub agent: Option<Rc<AgentForwarder>>,
    /// Shard 0: the recording of internal counters and local stats.
    pub recording: Option<Rc<Recording>>,
    pub http: Option<Rc<HttpConfig>>,
    pub prom_http: Option<Rc<HttpConfig>>,
    /// HTTP counter values already added to the loopback counters.
    http_reported: Cell<(u64, u64, u64)>,
    /// Settings operations already added to the loopback counters (shard 0).
    settings_reported: Cell<[u64; 4]>,
    /// When the page-cache counters were last audited (monotonic seconds).
    pagecache_audit: Cell<Option<i64>>,
    /// Admin `debug` options (shard 0).
    pub debug: RefCell<DebugOptions>,
    pub settings: Option<Arc<SettingsStore>>,
}

impl Handler<Req, Rep, Event> for Shard {
    fn request(self: Rc<Self>, req: Req) -> LocalBoxFuture<Rep> {
        Box::pin(async move { self.answer(req).await })
    }

    fn event(&self, ev: Event) {
        match ev {
            Event::ToOwner(m) => {
                if let Some(o) = &self.owner {
                    o.deliver(m);
                }
            }
            Event::ToCoordinator(m) => {
                if let Some(c) = &self.coordinator {
                    c.event(m);
                }
            }
            Event::AgentLines { text, lines, meta } => {
                let links = self.agent.as_ref().and_then(|a| a.links.as_ref());
                if let Some(links) = links {
                    if meta {
                        links.broadcast(&text);
                    } else {
                        links.send_batch(&text, lines);
                    }
                }
            }
        }
    }
}

impl Shard {
    /// The line-protocol ports this daemon listens on (the stat port, the Graphite
    /// port), those not switched off.
    fn line_ports(&self) -> impl Iterator<Item = &Rc<StatPort>> {
        [&self.stat_port, &self.graphite_port]
            .into_iter()
            .filter(|p| p.port() != 0)
    }

    pub fn id(&self) -> usize {
        self.core.id
    }

    pub fn store(&self) -> Option<&Store> {
        self.core.store.as_ref()
    }

    /// Whether this node is a slave now.
    pub fn acting_slave(&self) -> bool {
        self.coordinator.as_ref().is_some_and(|c| c.acting_slave())
    }

    async fn answer(self: Rc<Self>, req: Req) -> Rep {
        let store = self.core.store.as_ref();
        match req {
            Req::Flush { force } => {
                if let Some(store) = store {
                    if let Err(e) = store.flush_all(force, clock::now()).await {
                        tracing::error!(shard = self.id(), error = %e, "flush failed");
                    }
                }
                Rep::Done
            }
            Req::Query(key, params) => {
                let Some(store) = store else {
                    return Rep::Query(Ok(None));
                };
                match store.query(&key, &params, clock::now()).await {
                    Ok(Some(result)) => {
                        let is_event = store.is_event_counter(&key).unwrap_or(false);
                        Rep::Query(Ok(Some(CounterData { result, is_event })))
                    }
                    Ok(None) => Rep::Query(Ok(None)),
                    Err(e) => Rep::Query(Err(e.to_string())),
                }
            }
            Req::CounterNames => {
                Rep::CounterNames(store.map(|s| s.counter_keys()).unwrap_or_default())
            }
            Req::Counters => {
                let Some(store) = store else {
                    return Rep::Counters(Vec::new());
                };
                let mut out = Vec::new();
                for name in store.counter_keys() {
                    let is_event = match store.is_event_counter(&name) {
                        Some(e) => e,
                        None => store.load_counter_kind(&name).await.unwrap_or(false),
                    };
                    out.push(CounterInfo { name, is_event });
                }
                Rep::Counters(out)
            }
            Req::PromSnapshot => match &self.ingest.prom {
                Some(p) => Rep::Prom(Box::new(p.borrow().clone())),
                None => Rep::Prom(Box::default()),
            },
            Req::Agents => Rep::Agents(
                self.ingest
                    .meta_records()
                    .into_iter()
                    .map(|r| AgentInfo {
                        peer: r.peer,
                        online: r.online,
                        blacklisted: r.blacklisted,
                        keys: r.keys,
                        last_seen: r.last_seen,
                        connected: r.connected,
                    })
                    .collect(),
            ),
            Req::Purge { max_old, max_age } => {
                self.ingest.purge_meta(max_old, max_age);
                Rep::Done
            }
            Req::Stats => {
                let (lb, extras) = self.shard_stats();
                Rep::Stats(Box::new(lb), extras)
            }
            Req::AllStats => {
                let (lb, extras) = self.all_stats().await;
                Rep::Stats(Box::new(lb), extras)
            }
            Req::Delete(keys) => {
                if let Some(store) = store {
                    for k in keys {
                        self.delete_one(store, &k).await;
                    }
                }
                Rep::Done
            }
            Req::DeletePattern(patterns) => {
                if let Some(store) = store {
                    let keys = store.counters_matching(|k| {
                        patterns.iter().any(|p| crate::pattern::pattern_match(p, k))
                    });
                    for k in keys {
                        self.delete_one(store, &k).await;
                    }
                }
                Rep::Done
            }
            Req::AgentFlush => match &self.agent {
                Some(a) => {
                    let (text, n) = a.shard.take_lines();
                    Rep::AgentLines(text.into_bytes(), n)
                }
                None => Rep::Done,
            },
            Req::OpenStat(epoch) => {
                let mut failed = Vec::new();
                for port in self.line_ports() {
                    match port.bind() {
                        Ok(sockets) => {
                            for t in port.serve(sockets, epoch) {
                                t.detach();
                            }
                        }
                        Err(e) => failed.push(e.to_string()),
                    }
                }
                if failed.is_empty() {
                    Rep::Done
                } else {
                    Rep::Failed(failed.join("; "))
                }
            }
            Req::CloseStat(epoch) => {
                for port in self.line_ports() {
                    port.close(epoch);
                }
                Rep::Done
            }
            Req::Resync(path, from) => match &self.owner {
                Some(o) => match o.slave.resync(&path, from).await {
                    Ok(()) => Rep::Done,
                    Err(e) => Rep::Failed(e),
                },
                None => Rep::Failed("unknown file".into()),
            },
            Req::Scrub(start) => {
                if let Some(o) = &self.owner {
                    o.scrub.start_stop(start, clock::now());
                }
                Rep::Done
            }
            Req::Blacklist(list) => {
                self.ingest.set_blacklist(list);
                Rep::Done
            }
        }
    }

    async fn delete_one(&self, store: &Store, key: &str) {
        let files: Vec<(u32, String)> = store
            .counter_paths(key)
            .into_iter()
            .filter_map(|p| match store.lookup(&p) {
                istatd_storage::store::Lookup::Found(id) => Some((id.slot, p)),
                _ => None,
            })
            .collect();
        match store.delete_counter(key).await {
            Ok(true) => {
                self.core.lb.borrow_mut().incr(Loopback::CounterClosed);
                if let Some(o) = &self.owner {
                    o.slave.deleted_locally(&files);
                }
            }
            Ok(false) => {}
            Err(e) => tracing::error!(counter = %key, error = %e, "delete failed"),
        }
    }
}

/// The store seen as a flush round: one counter per step.
struct StoreFlush<'a> {
    core: &'a ShardCore,
    store: &'a Store,
    /// Failed flushes, and when that was last said in the log (a failing disk fails
    /// every counter's flush: one line a minute, not one per counter).
    failures: Cell<u64>,
    said_at: Cell<i64>,
}

impl FlushRound for StoreFlush<'_> {
    fn items(&self) -> usize {
        self.store.stats().counters as usize
    }

    async fn flush_some(&self, n: usize) -> usize {
        let now = clock::now();
        let flushes = (0..n).map(|_| self.store.flush_next(now)).collect();
        let results = istatd_storage::store::join_all(flushes).await;
        let mut flushed = 0;
        for r in results {
            if self.counted(r) {
                flushed += 1;
            }
        }
        flushed
    }
}

impl StoreFlush<'_> {
    /// Count one flush's outcome; whether a counter was flushed.
    fn counted(&self, r: Result<Option<String>, istatd_storage::store::StoreError>) -> bool {
        match r {
            Ok(Some(_)) => {
                let n = self.core.cfg.retentions.len() as i64;
                self.core.lb.borrow_mut().add(Loopback::CounterFlushed, n);
                true
            }
            Ok(None) => false,
            Err(e) => {
                self.failures.set(self.failures.get() + 1);
                let now = clock::monotonic_secs();
                if self.failures.get() == 1 || now - self.said_at.get() >= 60 {
                    self.said_at.set(now);
                    tracing::error!(
                        shard = self.core.id,
                        error = %e,
                        failed_so_far = self.failures.get(),
                        "periodic flush failed; the data stays in memory and is written when it can be (istatd.store.write_errors)"
                    );
                }
                false
            }
        }
    }
}

/// The listeners a shard opens at start-up (a bind failure stops the start).
struct Listeners {
    stat: Option<(TcpListener, glommio::net::UdpSocket)>,
    graphite: Option<(TcpListener, glommio::net::UdpSocket)>,
    admin: Option<TcpListener>,
    http: Option<TcpListener>,
    prom: Option<TcpListener>,
    replica: Option<TcpListener>,
}

fn bind_listeners(shard: &Shard, stat_open: bool) -> Result<Listeners, BindError> {
    let cfg = &shard.core.cfg;
    let id = shard.id();
    let tcp =
        |what: &'static str, port: u16, here: bool| -> Result<Option<TcpListener>, BindError> {
            if port == 0 || !here {
                return Ok(None);
            }
            let a = std::net::SocketAddrV4::new(cfg.listen, port);
            crate::net::tcp_listener(a, cfg.backlog)
                .map(Some)
                .map_err(|e| BindError::new(what, a, e))
        };
    let stat = if stat_open && cfg.stat_port != 0 {
        Some(shard.stat_port.bind()?)
    } else {
        None
    };
    let graphite = if stat_open && cfg.graphite_port != 0 {
        Some(shard.graphite_port.bind()?)
    } else {
        None
    };
    Ok(Listeners {
        stat,
        graphite,
        admin: tcp("admin", cfg.admin_port, id == 0)?,
        http: tcp("http", cfg.http_port, true)?,
        prom: tcp("prometheus", cfg.prometheus_port, true)?,
        replica: tcp("replica", cfg.repl.port, id == 0)?,
    })
}

/// Open this shard's slice of the store.
async fn open_store(
    ctx_id: usize,
    count: usize,
    st: &Startup,
) -> Result<Option<Store>, StartError> {
    let cfg = &st.cfg;
    let Some(root) = &cfg.store else {
        return Ok(None);
    };
    let mut o = StoreOptions::new(root, cfg.retentions.clone());
    o.allocation = cfg.allocation;
    o.io = cfg.io;
    // Parents may belong to other shards: they are created by message.
    o.create_parents = false;
    // A replica indexes every file it holds (docs/replication-protocol.md,
    // "Roles and replica mode").
    o.load_incomplete = cfg.create_parents || st.repl.control.acting_slave();
    // A promoted replica's files hold replicated buckets: event windows start from them.
    o.seed_windows = st.repl.control.promoted.is_some();
    o.listing = st.listing.clone();
    o.closed_cleanly = st.store_closed_cleanly;
    o.page_cache_pages = (cfg.page_cache_pages / count).max(64);
    o.max_open_files = (cfg.max_open_files / count).max(16);
    if count > 1 {
        o.owns = Some(Arc::new(move |key: &str| {
            shard_of(key.as_bytes(), count) == ctx_id
        }));
    }
    Store::open(o)
        .await
        .map(Some)
        .map_err(|e| StartError::Store(root.clone(), e))
}

/// A shard's whole life.
pub async fn shard_main(ctx: ShardContext<DataMsg, CtlMsg>, st: Startup) -> ShardExit {
    let (id, count) = (ctx.id, ctx.count);
    let (mut data, mut ctl) = match ctx.join().await {
        Ok(m) => m,
        Err(e) => {
            let _ = st.ready.send(Err(StartError::Mesh(id, e)));
            return ShardExit::default();
        }
    };
    let store = match open_store(id, count, &st).await {
        Ok(s) => s,
        Err(e) => {
            let _ = st.ready.send(Err(e));
            return ShardExit::default();
        }
    };
    let data_rx = data.take_receivers();
    let ctl_rx = ctl.take_receivers();
    let cfg = st.cfg.clone();
    let core = Rc::new(ShardCore {
        id,
        count,
        cfg: cfg.clone(),
        store,
        rpc: Rc::new(Rpc::new(ctl)),
        data,
        shutdown: st.shutdown.clone(),
        lb: RefCell::new(LoopbackCounters::new(
            &cfg.retentions
                .iter()
                .map(|r| r.name.clone())
                .collect::<Vec<_>>(),
        )),
    });
    let shard = build(core.clone(), &st);
    let handler: Rc<dyn Handler<Req, Rep, Event>> = shard.clone();
    core.rpc
        .set_handler(Rc::downgrade(&handler) as Weak<dyn Handler<Req, Rep, Event>>);
    drop(handler);
    // Listeners first, so a bind failure is reported before anything else runs.
    let listeners = match bind_listeners(&shard, !st.repl.control.acting_slave()) {
        Ok(l) => l,
        Err(e) => {
            let _ = st.ready.send(Err(StartError::Bind(e)));
            return ShardExit::default();
        }
    };
    core.rpc.serve(ctl_rx);
    let mut consumers = Vec::new();
    for (_, rx) in data_rx {
        let ingest = shard.ingest.clone();
        consumers.push(glommio::spawn_local(async move {
            while let Some(DataMsg::Samples(batch)) = rx.recv().await {
                ingest.record_batch(&batch).await;
            }
        }));
    }
    let producers = start_tasks(&shard, listeners);
    let flusher = core.store.as_ref().map(|_| {
        let core = core.clone();
        glommio::spawn_local(async move {
            let Some(store) = &core.store else { return };
            let pacer = FlushPacer::new(Duration::from_secs(core.cfg.flush_secs.max(1)));
            pacer
                .run(
                    &StoreFlush {
                        core: &core,
                        store,
                        failures: Cell::new(0),
                        said_at: Cell::new(0),
                    },
                    &core.shutdown,
                )
                .await;
        })
    });
    let _ = st.ready.send(Ok(()));
    tracing::info!(shard = id, "shard ready");

    // Shutdown: stop producing, wait until every shard stopped, then drain the data
    // mesh (closing our senders ends the peers' receive loops once drained).
    core.shutdown.requested().await;
    for p in producers {
        p.await;
    }
    while shard.stat_port.active() + shard.graphite_port.active() > 0 {
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
    core.shutdown.quiesce().await;
    core.data.close();
    for t in consumers {
        t.await;
    }
    if let Some(f) = flusher {
        f.cancel().await;
    }
    let mut store_closed = true;
    if let Some(store) = &core.store {
        if let Err(e) = store.close(clock::now()).await {
            tracing::error!(shard = id, error = %e, "flush at shutdown failed");
            store_closed = false;
        }
        // Conservative: after any failed write the next start checks every tail.
        store_closed &= store.stats().write_errors == 0;
    }
    let late_marks = shard
        .owner
        .as_ref()
        .map(|o| o.final_marks())
        .unwrap_or_default();
    if let (0, Some(settings)) = (id, &shard.settings) {
        settings.flush_all().await;
    }
    tracing::info!(shard = id, "shard stopped");
    ShardExit {
        late_marks,
        store_closed,
    }
}

/// Make the parts of a shard.
fn build(core: Rc<ShardCore>, st: &Startup) -> Rc<Shard> {
    let cfg = &st.cfg;
    let id = core.id;
    let agent = cfg.agent.enabled().then(|| {
        let links = (id == 0).then(|| {
            Rc::new(AgentLinks::new(
                cfg.agent.targets.clone(),
                cfg.agent.connections,
                core.shutdown.clone(),
            ))
        });
        Rc::new(AgentForwarder::new(
            core.clone(),
            Rc::new(AgentShard::default()),
            links,
        ))
    });
    let ingest = Rc::new(Ingest::new(core.clone(), agent.clone()));
    let has_store = cfg.store.is_some();
    let coordinator = (id == 0 && has_store).then(|| Coordinator::new(core.clone(), &st.repl));
    let recording = (id == 0).then(|| {
        let c = coordinator.clone();
        let acting_slave = Box::new(move || c.as_ref().is_some_and(|c| c.acting_slave()));
        Rc::new(Recording::new(core.clone(), ingest.clone(), acting_slave))
    });
    let http = st.settings.as_ref().map(|settings| {
        Rc::new(HttpConfig::new(
            cfg.files_dir.clone(),
            settings.clone(),
            cfg.disallow_compressed,
        ))
    });
    let prom_http = (cfg.prometheus_port != 0).then(|| {
        let settings = st
            .settings
            .clone()
            .unwrap_or_else(|| Arc::new(SettingsStore::new(&cfg.settings_dir)));
        let mut c = HttpConfig::new(cfg.files_dir.clone(), settings, cfg.disallow_compressed);
        c.prometheus_only = true;
        Rc::new(c)
    });
    Rc::new(Shard {
        stat_port: Rc::new(StatPort::new(core.clone(), ingest.clone(), Proto::Istatd)),
        graphite_port: Rc::new(StatPort::new(core.clone(), ingest.clone(), Proto::Graphite)),
        owner: has_store.then(|| Owner::new(core.clone(), &st.repl)),
        coordinator,
        agent,
        recording,
        http,
        prom_http,
        http_reported: Cell::new((0, 0, 0)),
        pagecache_audit: Cell::new(None),
        settings_reported: Cell::new([0; 4]),
        debug: RefCell::new(DebugOptions::new()),
        settings: st.settings.clone(),
        ingest,
        core,
    })
}

/// Start every task of the shard; the producers (listeners whose end the shutdown
/// waits for) are returned.
fn start_tasks(shard: &Rc<Shard>, l: Listeners) -> Vec<glommio::Task<()>> {
    let core = &shard.core;
    let cfg = &core.cfg;
    let id = core.id;
    let mut producers = Vec::new();
    let epoch = shard.coordinator.as_ref().map_or(1, |c| c.stat_epoch());
    if let Some(sockets) = l.stat {
        producers.extend(shard.stat_port.serve(sockets, epoch));
    }
    if let Some(sockets) = l.graphite {
        producers.extend(shard.graphite_port.serve(sockets, epoch));
    }
    if let Some(l) = l.admin {
        let sh = shard.clone();
        glommio::spawn_local(async move { crate::admin::server::accept_loop(sh, l).await })
            .detach();
    }
    if let Some(l) = l.http {
        let (sh, c) = (shard.clone(), shard.http.clone());
        producers.push(glommio::spawn_local(async move {
            super::http_backend::accept_loop(sh, l, c).await
        }));
    }
    if let Some(l) = l.prom {
        let (sh, c) = (shard.clone(), shard.prom_http.clone());
        producers.push(glommio::spawn_local(async move {
            super::http_backend::accept_loop(sh, l, c).await
        }));
        let ingest = shard.ingest.clone();
        glommio::spawn_local(async move { ingest.prom_cleanup_loop().await }).detach();
    }
    if let Some(o) = &shard.owner {
        o.start();
    }
    if let Some(c) = &shard.coordinator {
        c.start(l.replica);
    }
    if let Some(a) = &shard.agent {
        let a2 = a.clone();
        glommio::spawn_local(async move { a2.flush_loop().await }).detach();
        if let Some(links) = &a.links {
            links.start();
        }
    }
    if let Some(r) = &shard.recording {
        if let Some(suffix) = cfg.local_stats.clone() {
            let r = r.clone();
            glommio::spawn_local(async move { r.local_stats_loop(suffix).await }).detach();
        }
        if cfg.store.is_some() {
            let r = r.clone();
            glommio::spawn_local(async move { r.loopback_loop().await }).detach();
        }
    }
    if let (0, Some(bl)) = (id, cfg.blacklist.clone()) {
        let core = core.clone();
        glommio::spawn_local(async move { crate::ingest::meta::blacklist_loop(core, bl).await })
            .detach();
    }
    let ingest = shard.ingest.clone();
    glommio::spawn_local(async move { ingest.meta_purge_loop().await }).detach();
    producers
}
