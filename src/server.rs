//! The running daemon: one glommio executor per shard, each with its slice of the
//! store, its stat-port listeners (TCP and UDP, shared with SO_REUSEPORT), its share of
//! the flush cycle and its internal counters; shard 0 also runs the admin port.
//!
//! Data flow: a stat connection is parsed on the shard that accepted it; samples are
//! batched per owning shard (`istatd_shards::shard_of`) and sent over the data mesh;
//! the owner records them into its store. Requests between shards (flush, stats,
//! parent creation, shutdown steps) go over the control mesh, whose receivers never
//! block: each request runs in its own task.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::channels::local_channel;
use glommio::net::{TcpListener, TcpStream, UdpSocket};
use istatd_shards::{shard_of, Mesh, ShardContext, ShardSpec};
use istatd_storage::counter::{Reject, Sample};
use istatd_storage::retention::Retention;
use istatd_storage::store::{Allocation, Store, StoreOptions, StoreStats};

use crate::admin::{
    self, AdminCommand, AdminFramer, AdminInput, AdminReply, DebugOptions, Loopback,
    LoopbackCounters, LoopbackRecorder,
};
use crate::clock;
use crate::http::backend::{AgentInfo, Backend, CounterData, CounterInfo, LocalFut};
use crate::meta::{BlacklistConfig, MetaHandle, MetaRegistry, SharedBlacklist};
use crate::statline::{self, Frame, LineOutcome, LineSplitter, ParsedBatch};

/// Everything a shard needs, resolved from the options before the shards start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Absolute store directory; `None` = no local store.
    pub store: Option<PathBuf>,
    pub retentions: Vec<Retention>,
    pub allocation: Allocation,
    pub create_parents: bool,
    pub listen: Ipv4Addr,
    pub stat_port: u16,
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
    pub prom: crate::prom::PromConfig,
    /// `--blacklist-path` (resolved) and `--blacklist-period`; `None` = off.
    pub blacklist: Option<BlacklistConfig>,
    /// Agent (forwarding) mode; no targets: off.
    pub agent: AgentConfig,
    /// Replication (replica port, master to pull from, pacing).
    pub repl: ReplConfig,
}

#[path = "agent.rs"]
mod agent;
pub use agent::{parse_targets as parse_agent_targets, AgentConfig};
#[path = "replica.rs"]
mod replica;
#[path = "replica_admin.rs"]
mod replica_admin;
pub use replica::ReplConfig;

/// Set the start-up replication roles from the options and the store's markers.
pub fn init_replication(cfg: &mut ReplConfig, store: Option<&std::path::Path>, shards: usize) {
    replica_admin::init(cfg, store, shards);
}

/// After the shards stopped: the master's late marks are written as of a clean stop.
pub fn finish_replication(cfg_port: u16) {
    if cfg_port != 0 {
        if let Err(e) = replica_admin::write_late("clean") {
            tracing::error!(error = %e, "cannot write {}", replica_admin::LATE_FILE);
        }
    }
}

/// The settings store every shard's HTTP server shares (interfaces.md §3.11).
static SETTINGS: std::sync::OnceLock<Arc<crate::http::settings::SettingsStore>> =
    std::sync::OnceLock::new();

/// The blacklist in force (loaded and reloaded by shard 0).
pub static BLACKLIST: SharedBlacklist = SharedBlacklist::new();

/// Set by the signal thread (or a test) to begin a clean shutdown.
pub static SHUTDOWN: AtomicBool = AtomicBool::new(false);

/// Shards that have stopped producing data for other shards.
static STOPPED_PRODUCERS: AtomicUsize = AtomicUsize::new(0);

/// What a batch record asks of the owner shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// Record the sample.
    Record,
    /// Make the counter exist (a parent), with the sample's time as zero time.
    Ensure,
    /// Record an internal (`istatd.*`) counter sample.
    Internal,
}

/// Work bound for one shard, with the names in one arena (one allocation per batch,
/// not per sample). Records keep the order of the input stream.
#[derive(Debug, Default)]
pub struct Batch {
    names: String,
    recs: Vec<(u32, u32, bool, Op, Sample)>,
}

impl Batch {
    fn push(&mut self, key: &str, event: bool, op: Op, s: Sample) {
        let start = self.names.len() as u32;
        self.names.push_str(key);
        self.recs.push((start, key.len() as u32, event, op, s));
    }
    fn is_empty(&self) -> bool {
        self.recs.is_empty()
    }
    fn iter(&self) -> impl Iterator<Item = (&str, bool, Op, Sample)> {
        self.recs
            .iter()
            .map(|&(st, len, ev, op, s)| (&self.names[st as usize..(st + len) as usize], ev, op, s))
    }
}

pub enum DataMsg {
    Samples(Batch),
}

pub enum CtlMsg {
    Req {
        id: u64,
        from: usize,
        req: Req,
    },
    Rep {
        id: u64,
        rep: Rep,
    },
    /// One-way replication traffic (handled in arrival order by the receiving shard).
    Repl(replica::ReplMsg),
    /// To shard 0 in agent mode: forward lines (text, line count, meta: to every
    /// connection).
    Agent(Vec<u8>, u64, bool),
}

#[derive(Debug, Clone)]
pub enum Req {
    /// Flush every counter of the shard (`force`: admin flush).
    Flush { force: bool },
    /// The shard's internal counters.
    Stats,
    /// Make these counters exist (parents created on their owner shard).
    CreateCounters(Vec<(String, bool, i64)>),
    /// Admin `purge maxOld,maxAge` of connection meta records.
    Purge { max_old: u64, max_age: i64 },
    /// Query one counter owned by the receiving shard (HTTP).
    Query(String, istatd_storage::query::QueryParams),
    /// The receiving shard's counters with their kind (HTTP counter list).
    Counters,
    /// The receiving shard's connection meta records (HTTP agent list).
    Agents,
    /// A copy of the receiving shard's Prometheus exporter samples.
    PromSnapshot,
    /// Delete these counters (owned by the receiving shard).
    Delete(Vec<String>),
    /// Delete every counter of the receiving shard matching one of the patterns.
    DeletePattern(Vec<String>),
    /// Open the stat port (TCP and UDP) on the receiving shard, listeners of this
    /// generation (after a promotion).
    OpenStat(u64),
    /// `replication.resync PATH[,from=]` for a file of the receiving shard.
    Resync(String, Option<i64>),
    /// `replication.scrub start|stop` for the receiving shard's files.
    Scrub(bool),
    /// Agent mode, admin `flush`: the receiving shard's bucketed lines, now.
    AgentFlush,
}

#[derive(Debug, Clone)]
pub enum Rep {
    Done,
    /// A shard's loopback counters and its port-specific extras.
    Stats(Box<LoopbackCounters>, Vec<(String, i64)>),
    Query(Result<Option<CounterData>, String>),
    Counters(Vec<CounterInfo>),
    Agents(Vec<AgentInfo>),
    Prom(Box<crate::prom::PromStore>),
    Failed(String),
    /// Forward lines and their count (agent mode).
    AgentLines(Vec<u8>, u64),
}

/// Per-shard counters of the port's own (published after the reference's `istatd.*`
/// loopback counters in `stats`).
#[derive(Debug, Default, Clone)]
pub struct ShardCounters {
    /// Samples from the stat port recorded by this shard (owner side).
    pub samples: u64,
    /// Open stat connections accepted by this shard.
    pub connected: u64,
    pub udp_packets: u64,
    pub udp_bad: u64,
    /// Samples the store could not record (a refused or unwritable file).
    pub record_errors: u64,
    /// When "cannot record" was last logged (monotonic seconds).
    pub record_error_logged: i64,
}

struct Shard {
    id: usize,
    count: usize,
    cfg: Arc<ServerConfig>,
    store: Option<Store>,
    data: Mesh<DataMsg>,
    ctl: Mesh<CtlMsg>,
    pending: RefCell<HashMap<u64, local_channel::LocalSender<Rep>>>,
    next_id: Cell<u64>,
    counters: RefCell<ShardCounters>,
    /// The reference's internal counters, this shard's share.
    lb: RefCell<LoopbackCounters>,
    /// Turns loopback totals into `istatd.*` samples (shard 0).
    recorder: RefCell<LoopbackRecorder>,
    /// Prometheus exporter samples fed by this shard's stat lines.
    prom: RefCell<crate::prom::PromStore>,
    /// The exporter's listener configuration.
    prom_http: Option<Rc<crate::http::HttpConfig>>,
    /// This shard's HTTP configuration and request counters.
    http: Option<Rc<crate::http::HttpConfig>>,
    /// HTTP counter values already added to `lb`.
    http_reported: Cell<(u64, u64, u64)>,
    /// Meta records of this shard's stat connections.
    meta: RefCell<MetaRegistry>,
    /// The record all of this shard's UDP traffic shares.
    udp_meta: RefCell<Option<MetaHandle>>,
    /// Admin `debug` options (shard 0).
    debug: RefCell<DebugOptions>,
    /// Keys this shard has routed at least once (for parent creation).
    known: RefCell<std::collections::HashSet<Box<str>>>,
    /// Replication state of this shard's files (whenever there is a store).
    repl: Option<replica::ReplShard>,
    /// Stat connections being served by this shard.
    stat_active: Rc<Cell<usize>>,
    /// This shard itself (for tasks started from `&self` handlers).
    me: RefCell<std::rc::Weak<Shard>>,
    /// Agent mode: this shard's bucketizers.
    agent: Option<agent::AgentShard>,
    /// Agent mode, shard 0: the forward connections.
    agent_links: Option<agent::AgentLinks>,
}

/// Bound of [`Shard::known`]; past it the set starts over (parents are then only
/// re-checked, which is harmless).
const KNOWN_KEYS_MAX: usize = 1 << 20;

/// What a shard reports to the main thread when its listeners are up (or failed).
pub type Ready = std::sync::mpsc::Sender<Result<(), String>>;

/// Start the shards; returns their join handles. Each shard reports on `ready`.
pub fn start(
    cfg: ServerConfig,
    ready: Ready,
) -> std::io::Result<Vec<glommio::ExecutorJoinHandle<()>>> {
    // Walk the store once here (not on an executor) and give every shard the listing;
    // each keeps the counters it owns.
    let listing = match &cfg.store {
        Some(root) => {
            std::fs::create_dir_all(root)?;
            let started = std::time::Instant::now();
            let l = istatd_storage::store::walk_store(root)?;
            let files: usize = l.iter().map(|(_, f)| f.len()).sum();
            tracing::info!(
                directories = l.len(),
                files,
                seconds = started.elapsed().as_secs_f64(),
                "store scanned"
            );
            Some(Arc::new(l))
        }
        None => None,
    };
    if cfg.http_port != 0 {
        std::fs::create_dir_all(&cfg.settings_dir)?;
        let settings = Arc::new(crate::http::settings::SettingsStore::new(&cfg.settings_dir));
        settings.load_all_blocking()?;
        let _ = SETTINGS.set(settings);
    }
    let cfg = Arc::new(cfg);
    let spec = cfg.shards.clone();
    let ready = Arc::new(std::sync::Mutex::new(ready));
    istatd_shards::spawn::<DataMsg, CtlMsg, _, _>(&spec, move |ctx| {
        let cfg = cfg.clone();
        let listing = listing.clone();
        let ready = ready.lock().map(|r| r.clone()).expect("ready channel");
        async move { shard_main(ctx, cfg, listing, ready).await }
    })
}

async fn shard_main(
    ctx: ShardContext<DataMsg, CtlMsg>,
    cfg: Arc<ServerConfig>,
    listing: Option<Arc<istatd_storage::store::StoreListing>>,
    ready: Ready,
) {
    let id = ctx.id;
    let count = ctx.count;
    let (mut data, mut ctl) = match ctx.join().await {
        Ok(m) => m,
        Err(e) => {
            let _ = ready.send(Err(format!("shard {id}: {e}")));
            return;
        }
    };
    let store = match &cfg.store {
        None => None,
        Some(root) => {
            let mut o = StoreOptions::new(root, cfg.retentions.clone());
            o.allocation = cfg.allocation;
            // Parents may belong to other shards: the server creates them by message.
            o.create_parents = false;
            // A replica indexes every file it holds (replication.md §2.2).
            o.load_incomplete = cfg.create_parents || replica_admin::acting_slave();
            o.listing = listing;
            o.page_cache_pages = (cfg.page_cache_pages / count).max(64);
            o.max_open_files = (cfg.max_open_files / count).max(16);
            if count > 1 {
                o.owns = Some(Arc::new(move |key: &str| {
                    shard_of(key.as_bytes(), count) == id
                }));
            }
            match Store::open(o).await {
                Ok(s) => Some(s),
                Err(e) => {
                    let _ = ready.send(Err(format!("store {}: {e}", root.display())));
                    return;
                }
            }
        }
    };
    let data_mesh_rx = data.take_receivers();
    let ctl_mesh_rx = ctl.take_receivers();
    let shard = Rc::new(Shard {
        id,
        count,
        cfg: cfg.clone(),
        store,
        data,
        ctl,
        pending: RefCell::new(HashMap::new()),
        next_id: Cell::new(1),
        counters: RefCell::new(ShardCounters::default()),
        lb: RefCell::new(LoopbackCounters::new(
            &cfg.retentions
                .iter()
                .map(|r| r.name.clone())
                .collect::<Vec<_>>(),
        )),
        known: RefCell::new(std::collections::HashSet::new()),
        debug: RefCell::new(DebugOptions::new()),
        meta: RefCell::new(MetaRegistry::default()),
        http: SETTINGS.get().map(|settings| {
            Rc::new(crate::http::HttpConfig::new(
                cfg.files_dir.clone(),
                settings.clone(),
                cfg.disallow_compressed,
            ))
        }),
        http_reported: Cell::new((0, 0, 0)),
        prom: RefCell::new(crate::prom::PromStore::default()),
        prom_http: (cfg.prometheus_port != 0).then(|| {
            let settings = SETTINGS.get().cloned().unwrap_or_else(|| {
                Arc::new(crate::http::settings::SettingsStore::new(&cfg.settings_dir))
            });
            let mut c = crate::http::HttpConfig::new(
                cfg.files_dir.clone(),
                settings,
                cfg.disallow_compressed,
            );
            c.prometheus_only = true;
            Rc::new(c)
        }),
        udp_meta: RefCell::new(None),
        recorder: RefCell::new(LoopbackRecorder::new()),
        repl: cfg
            .store
            .is_some()
            .then(|| replica::ReplShard::new(&cfg.repl)),
        stat_active: Rc::new(Cell::new(0)),
        me: RefCell::new(std::rc::Weak::new()),
        agent: cfg.agent.enabled().then(agent::AgentShard::default),
        agent_links: (cfg.agent.enabled() && id == 0)
            .then(|| agent::AgentLinks::new(cfg.agent.connections)),
    });

    *shard.me.borrow_mut() = Rc::downgrade(&shard);
    // Listeners first, so a bind failure is reported before anything else runs.
    let mut tasks = Vec::new();
    let tcp = |what: &str, port: u16, here: bool| -> Result<Option<TcpListener>, String> {
        if port == 0 || !here {
            return Ok(None);
        }
        let a = std::net::SocketAddrV4::new(cfg.listen, port);
        crate::net::tcp_listener(a, cfg.backlog)
            .map(Some)
            .map_err(|e| format!("{what} port {a}: {e}"))
    };
    // A slave's store is written only by replication: no stat port until promotion.
    let stat_epoch = replica_admin::STAT_EPOCH.load(Ordering::SeqCst);
    let stat_port = if replica_admin::STAT_OPEN.load(Ordering::SeqCst) {
        cfg.stat_port
    } else {
        0
    };
    let listeners = (|| {
        let stat = tcp("stat", stat_port, true)?;
        let udp = if stat_port != 0 {
            let a = std::net::SocketAddrV4::new(cfg.listen, cfg.stat_port);
            let mut u = crate::net::udp_socket(a, cfg.udp_buffer_bytes)
                .map_err(|e| format!("stat port {a}/udp: {e}"))?;
            u.set_buffer_size(65536);
            Some(u)
        } else {
            None
        };
        let admin = tcp("admin", cfg.admin_port, id == 0)?;
        let http = tcp("http", cfg.http_port, true)?;
        let prom = tcp("prometheus", cfg.prometheus_port, true)?;
        let replica = tcp("replica", cfg.repl.port, id == 0)?;
        Ok::<_, String>((stat, udp, admin, http, prom, replica))
    })();
    let (stat_tcp, stat_udp, admin_l, http_l, prom_l, replica_l) = match listeners {
        Ok(l) => l,
        Err(msg) => {
            let _ = ready.send(Err(msg));
            return;
        }
    };

    // Receivers of both meshes.
    for (_, rx) in data_mesh_rx {
        let sh = shard.clone();
        tasks.push(glommio::spawn_local(async move {
            while let Some(DataMsg::Samples(batch)) = rx.recv().await {
                sh.record_batch(&batch).await;
            }
        }));
    }
    for (_, rx) in ctl_mesh_rx {
        let sh = shard.clone();
        glommio::spawn_local(async move {
            while let Some(msg) = rx.recv().await {
                match msg {
                    CtlMsg::Rep { id, rep } => {
                        if let Some(tx) = sh.pending.borrow_mut().remove(&id) {
                            let _ = tx.try_send(rep);
                        }
                    }
                    CtlMsg::Repl(m) => sh.repl_deliver(m).await,
                    CtlMsg::Agent(text, n, meta) => {
                        sh.agent_deliver(text, n, meta);
                    }
                    CtlMsg::Req { id, from, req } => {
                        let sh2 = sh.clone();
                        glommio::spawn_local(async move {
                            let rep = sh2.handle(req).await;
                            let _ = sh2.ctl.send(from, CtlMsg::Rep { id, rep }).await;
                        })
                        .detach();
                    }
                }
            }
        })
        .detach();
    }

    let active = shard.stat_active.clone();
    let mut producers = Vec::new();
    if let Some(l) = stat_tcp {
        let sh = shard.clone();
        let active = active.clone();
        producers.push(glommio::spawn_local(async move {
            sh.accept_stat(l, active, stat_epoch).await
        }));
    }
    if let Some(u) = stat_udp {
        let sh = shard.clone();
        producers.push(glommio::spawn_local(async move {
            sh.serve_udp(u, stat_epoch).await
        }));
    }
    if let Some(l) = admin_l {
        let sh = shard.clone();
        glommio::spawn_local(async move { sh.accept_admin(l).await }).detach();
    }
    if let Some(l) = http_l {
        let sh = shard.clone();
        let cfg = sh.http.clone();
        producers.push(glommio::spawn_local(
            async move { sh.accept_http(l, cfg).await },
        ));
    }
    if let Some(l) = prom_l {
        let sh = shard.clone();
        let cfg = sh.prom_http.clone();
        producers.push(glommio::spawn_local(
            async move { sh.accept_http(l, cfg).await },
        ));
        let sh = shard.clone();
        glommio::spawn_local(async move { sh.prom_cleanup_loop().await }).detach();
    }
    shard.start_replication(replica_l);
    if cfg.agent.enabled() {
        let sh = shard.clone();
        glommio::spawn_local(async move { sh.agent_flush_loop().await }).detach();
        if let Some(links) = &shard.agent_links {
            for c in &links.conns {
                let sh = shard.clone();
                let c = c.clone();
                glommio::spawn_local(async move { sh.agent_connection(c).await }).detach();
            }
        }
    }
    if id == 0 {
        if let Some(bl) = cfg.blacklist.clone() {
            glommio::spawn_local(blacklist_loop(bl)).detach();
        }
        if let Some(suffix) = cfg.local_stats.clone() {
            let sh = shard.clone();
            glommio::spawn_local(async move { sh.local_stats_loop(suffix).await }).detach();
        }
    }
    {
        // Automatic purge of offline meta records (interfaces.md §2.7, port rule).
        let sh = shard.clone();
        glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(Duration::from_secs(300)).await;
                if SHUTDOWN.load(Ordering::SeqCst) {
                    return;
                }
                sh.meta.borrow_mut().purge(100, 90_000, clock::now());
            }
        })
        .detach();
    }
    if id == 0 && cfg.store.is_some() {
        let sh = shard.clone();
        glommio::spawn_local(async move { sh.loopback_loop().await }).detach();
    }
    let flusher = {
        let sh = shard.clone();
        glommio::spawn_local(async move { sh.flush_loop().await })
    };
    let _ = ready.send(Ok(()));
    tracing::info!(shard = id, "shard ready");

    // Shutdown: stop producing, wait until every shard stopped, then drain the data
    // mesh (closing our senders ends the peers' receive loops once drained).
    wait_shutdown().await;
    for p in producers {
        p.await;
    }
    while active.get() > 0 {
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
    STOPPED_PRODUCERS.fetch_add(1, Ordering::SeqCst);
    while STOPPED_PRODUCERS.load(Ordering::SeqCst) < count {
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
    shard.data.close();
    for t in tasks {
        t.await;
    }
    flusher.cancel().await;
    if let Some(store) = &shard.store {
        if let Err(e) = store.close(clock::now()).await {
            tracing::error!(shard = id, error = %e, "flush at shutdown failed");
        }
    }
    shard.repl_final();
    if id == 0 {
        if let Some(settings) = SETTINGS.get() {
            settings.flush_all().await;
        }
    }
    tracing::info!(shard = id, "shard stopped");
}

/// The next connection, or `None` once a shutdown was requested.
async fn accept_or_shutdown(l: &TcpListener) -> Option<std::io::Result<TcpStream>> {
    futures_lite::future::or(
        async { Some(l.accept().await.map_err(std::io::Error::from)) },
        async {
            wait_shutdown().await;
            None
        },
    )
    .await
}

/// Resolves when a shutdown was requested or the stat port of generation `epoch` was
/// closed (this node became a slave).
async fn wait_stat_closed(epoch: u64) {
    while !SHUTDOWN.load(Ordering::SeqCst)
        && replica_admin::STAT_EPOCH.load(Ordering::SeqCst) == epoch
    {
        glommio::timer::sleep(Duration::from_millis(50)).await;
    }
}

/// Resolves when a shutdown was requested.
async fn wait_shutdown() {
    while !SHUTDOWN.load(Ordering::SeqCst) {
        glommio::timer::sleep(Duration::from_millis(50)).await;
    }
}

impl Shard {
    // ----- requests between shards -------------------------------------------------

    async fn rpc(&self, to: usize, req: Req) -> Rep {
        if to == self.id {
            return self.handle(req).await;
        }
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let (tx, rx) = local_channel::new_bounded(1);
        self.pending.borrow_mut().insert(id, tx);
        if self
            .ctl
            .send(
                to,
                CtlMsg::Req {
                    id,
                    from: self.id,
                    req,
                },
            )
            .await
            .is_err()
        {
            self.pending.borrow_mut().remove(&id);
            return Rep::Done;
        }
        rx.recv().await.unwrap_or(Rep::Done)
    }

    /// Send a request to every shard (this one included) and collect the replies.
    async fn broadcast(&self, req: Req) -> Vec<Rep> {
        let futs = (0..self.count)
            .map(|to| self.rpc(to, req.clone()))
            .collect();
        istatd_storage::store::join_all(futs).await
    }

    async fn handle(&self, req: Req) -> Rep {
        match req {
            Req::Flush { force } => {
                if let Some(store) = &self.store {
                    if let Err(e) = store.flush_all(force, clock::now()).await {
                        tracing::error!(shard = self.id, error = %e, "flush failed");
                    }
                }
                Rep::Done
            }
            Req::Query(key, params) => {
                let Some(store) = &self.store else {
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
            Req::Counters => {
                let Some(store) = &self.store else {
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
            Req::PromSnapshot => Rep::Prom(Box::new(self.prom.borrow().clone())),
            Req::Agents => Rep::Agents(
                self.meta
                    .borrow()
                    .records()
                    .map(|r| {
                        let r = r.borrow();
                        AgentInfo {
                            peer: r.peer.clone(),
                            online: r.online,
                            blacklisted: r.blacklisted,
                            keys: r.keys.clone(),
                            last_seen: r.last_seen,
                            connected: r.connected,
                        }
                    })
                    .collect(),
            ),
            Req::Purge { max_old, max_age } => {
                self.meta.borrow_mut().purge(max_old, max_age, clock::now());
                Rep::Done
            }
            Req::Stats => {
                self.sync_http_counters();
                let connected = self.counters.borrow().connected as i64;
                self.lb
                    .borrow_mut()
                    .set(Loopback::StatServerConnected, connected);
                let mut extras = self.stats();
                self.repl_stats(&mut extras);
                Rep::Stats(Box::new(self.lb.borrow().clone()), extras)
            }
            Req::Delete(keys) => {
                if let Some(store) = &self.store {
                    for k in keys {
                        self.delete_one(store, &k).await;
                    }
                }
                Rep::Done
            }
            Req::AgentFlush => match &self.agent {
                Some(a) => {
                    let (text, n) = a.take_lines();
                    Rep::AgentLines(text.into_bytes(), n)
                }
                None => Rep::Done,
            },
            Req::OpenStat(epoch) => match self.open_stat(epoch) {
                Ok(()) => Rep::Done,
                Err(e) => Rep::Failed(e),
            },
            Req::Resync(path, from) => self.resync_file(&path, from),
            Req::Scrub(start) => {
                self.scrub_start_stop(start);
                Rep::Done
            }
            Req::DeletePattern(patterns) => {
                if let Some(store) = &self.store {
                    let keys = store
                        .counters_matching(|k| patterns.iter().any(|p| admin::pattern_match(p, k)));
                    for k in keys {
                        self.delete_one(store, &k).await;
                    }
                }
                Rep::Done
            }
            Req::CreateCounters(list) => {
                if let Some(store) = &self.store {
                    for (key, event, zero) in list {
                        match store.create_counter(&key, event, zero).await {
                            Ok(true) => self.lb.borrow_mut().incr(Loopback::CounterCreated),
                            Ok(false) => {}
                            Err(e) => {
                                tracing::warn!(counter = %key, error = %e, "cannot create counter")
                            }
                        }
                    }
                }
                Rep::Done
            }
        }
    }

    async fn delete_one(&self, store: &Store, key: &str) {
        match store.delete_counter(key).await {
            Ok(true) => self.lb.borrow_mut().incr(Loopback::CounterClosed),
            Ok(false) => {}
            Err(e) => tracing::error!(counter = %key, error = %e, "delete failed"),
        }
    }

    /// The port's own counters (the reference's are in `lb`).
    fn stats(&self) -> Vec<(String, i64)> {
        let c = self.counters.borrow().clone();
        let s: StoreStats = self.store.as_ref().map(|s| s.stats()).unwrap_or_default();
        vec![
            ("istatd.statserver.samples".into(), c.samples as i64),
            ("istatd.store.record_errors".into(), c.record_errors as i64),
            ("istatd.statserver.udp.packets".into(), c.udp_packets as i64),
            ("istatd.statserver.udp.bad".into(), c.udp_bad as i64),
            ("istatd.store.counters".into(), s.counters as i64),
            ("istatd.store.files".into(), s.files as i64),
            ("istatd.store.bad_files".into(), s.bad_files as i64),
            ("istatd.store.too_old".into(), s.too_old as i64),
            ("istatd.store.page_hits".into(), s.page_hits as i64),
            ("istatd.store.page_misses".into(), s.page_misses as i64),
            ("istatd.store.page_writes".into(), s.page_writes as i64),
            ("istatd.store.header_writes".into(), s.header_writes as i64),
            ("istatd.store.write_errors".into(), s.write_errors as i64),
            ("istatd.store.open_files".into(), s.open_files as i64),
            (
                "istatd.store.open_files_peak".into(),
                s.open_files_peak as i64,
            ),
            ("istatd.store.cached_pages".into(), s.cached_pages as i64),
            // Aggregated across shards as a minimum (see admin_stats).
            (
                "istatd.store.flush_rounds_min".into(),
                s.flush_rounds as i64,
            ),
        ]
    }

    // ----- recording -----------------------------------------------------------------

    async fn record_batch(self: &Rc<Self>, batch: &Batch) {
        let Some(store) = &self.store else { return };
        let now = clock::now();
        // Counters this batch names for the first time are created together, in one
        // trip to the blocking pool, each with its first sample's time and kind.
        let mut new: Vec<(&str, bool, i64)> = Vec::new();
        for (key, event, _, s) in batch.iter() {
            if !store.has_counter(key) && !new.iter().any(|(k, _, _)| *k == key) {
                new.push((key, event, s.time));
            }
        }
        if !new.is_empty() {
            match store.create_counters(&new).await {
                Ok(n) => self.lb.borrow_mut().add(Loopback::CounterCreated, n as i64),
                Err(e) => tracing::warn!(error = %e, "cannot create counters"),
            }
        }
        // Counters on disk but not touched since start-up: read their headers together.
        let mut cold: Vec<&str> = Vec::new();
        for (key, _, _, _) in batch.iter() {
            if !store.is_loaded(key) && !cold.contains(&key) {
                cold.push(key);
            }
        }
        if !cold.is_empty() {
            store.preload(&cold).await;
        }
        for (key, event, op, s) in batch.iter() {
            if op == Op::Ensure {
                match store.create_counter(key, event, s.time).await {
                    Ok(true) => self.lb.borrow_mut().incr(Loopback::CounterCreated),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(counter = %key, error = %e, "cannot create counter"),
                }
                continue;
            }
            match store.record(key, event, s, now).await {
                Ok(out) => {
                    let mut lb = self.lb.borrow_mut();
                    lb.incr(Loopback::CounterDequeue);
                    if op == Op::Record {
                        self.counters.borrow_mut().samples += 1;
                    }
                    if out.created {
                        lb.incr(Loopback::CounterCreated);
                    }
                    match out.rejected {
                        Some(Reject::FromFuture) => lb.incr(Loopback::CounterFromFuture),
                        Some(Reject::FromPast) => lb.incr(Loopback::CounterFromPast),
                        Some(Reject::Rejected) => lb.incr(Loopback::CounterRejected),
                        None => {}
                    }
                }
                Err(e) => {
                    // Counted; logged once a minute per shard, not once per sample.
                    let mut c = self.counters.borrow_mut();
                    c.record_errors += 1;
                    let now = clock::monotonic_secs();
                    if now - c.record_error_logged >= 60 || c.record_errors == 1 {
                        c.record_error_logged = now;
                        tracing::warn!(
                            counter = %key,
                            error = %e,
                            refused_so_far = c.record_errors,
                            "cannot record (samples refused: istatd.store.record_errors)"
                        );
                    }
                }
            }
        }
    }

    /// Route parsed samples: local ones now, others batched per owner shard.
    async fn route(self: &Rc<Self>, batch: &mut [Batch]) {
        for (owner, b) in batch.iter_mut().enumerate() {
            if b.is_empty() {
                continue;
            }
            let b = std::mem::take(b);
            if owner == self.id {
                self.record_batch(&b).await;
            } else if self.data.send(owner, DataMsg::Samples(b)).await.is_err() {
                tracing::warn!(shard = owner, "data channel closed; samples dropped");
            }
        }
    }

    fn parse_into(
        &self,
        line: &[u8],
        now: i64,
        parsed: &mut ParsedBatch,
        out: &mut [Batch],
        meta: Option<&MetaHandle>,
    ) {
        parsed.clear();
        let outcome = statline::parse_line(line, now, parsed);
        match outcome {
            LineOutcome::Meta { key, value } => {
                if let Some(a) = &self.agent {
                    let mut m = a.meta.borrow_mut();
                    m.push(b'#');
                    m.extend_from_slice(key);
                    m.push(b' ');
                    m.extend_from_slice(value);
                    m.extend_from_slice(b"\r\n");
                }
                if let Some(m) = meta {
                    let mut m = m.borrow_mut();
                    m.keys.insert(
                        String::from_utf8_lossy(key).into_owned(),
                        String::from_utf8_lossy(value).into_owned(),
                    );
                }
            }
            LineOutcome::Samples { name, .. } => {
                if self.prom_http.is_some() {
                    if let Some(r) = parsed.records().last() {
                        let sample = r.sample;
                        self.prom
                            .borrow_mut()
                            .record_sample(&self.cfg.prom, name, &sample, now);
                    }
                }
                if let Some(a) = &self.agent {
                    for r in parsed.iter() {
                        a.add(r.name, r.event, &r.sample, now);
                    }
                    if self.store_less() {
                        // An agent keeps nothing: a sample is handled once bucketed.
                        self.counters.borrow_mut().samples += parsed.len() as u64;
                        return;
                    }
                }
                for r in parsed.iter() {
                    self.ensure_parents(r.key, r.event, r.sample.time, out);
                    let owner = shard_of(r.key.as_bytes(), self.count);
                    out[owner].push(r.key, r.event, Op::Record, r.sample);
                    self.lb.borrow_mut().incr(Loopback::CounterEnqueue);
                }
            }
            LineOutcome::Reserved => self
                .lb
                .borrow_mut()
                .incr(Loopback::StatServerCommandsReserved),
            other => {
                let n = other.bad_commands() as i64;
                if n > 0 {
                    self.lb.borrow_mut().add(Loopback::StatServerCommandsBad, n);
                }
            }
        }
    }

    /// Parent ("rollup") creation, in input order: the first time this shard sees a
    /// key, it asks each parent's owner to make the parent exist with this sample's
    /// time and kind, ahead of anything later in the stream (interfaces.md §2.5 step 4).
    fn ensure_parents(&self, key: &str, event: bool, time: i64, out: &mut [Batch]) {
        if !self.cfg.create_parents || self.store_less() {
            return;
        }
        let mut known = self.known.borrow_mut();
        if known.contains(key) {
            return;
        }
        if known.len() >= KNOWN_KEYS_MAX {
            known.clear();
        }
        known.insert(key.into());
        let mut p = key;
        while let Some(pos) = p.rfind('.') {
            p = &p[..pos];
            if !known.insert(p.into()) {
                break;
            }
            let owner = shard_of(p.as_bytes(), self.count);
            out[owner].push(p, event, Op::Ensure, Sample::value(time, 0.0));
        }
    }

    /// Bind the stat port (TCP and UDP) on this shard after a promotion.
    fn open_stat(&self, epoch: u64) -> Result<(), String> {
        let me = self.me.borrow().upgrade().ok_or("shard is stopping")?;
        let a = std::net::SocketAddrV4::new(self.cfg.listen, self.cfg.stat_port);
        let l = crate::net::tcp_listener(a, self.cfg.backlog).map_err(|e| e.to_string())?;
        let mut u = crate::net::udp_socket(a, self.cfg.udp_buffer_bytes)
            .map_err(|e| format!("{a}/udp: {e}"))?;
        u.set_buffer_size(65536);
        let sh = me.clone();
        let active = self.stat_active.clone();
        glommio::spawn_local(async move { sh.accept_stat(l, active, epoch).await }).detach();
        glommio::spawn_local(async move { me.serve_udp(u, epoch).await }).detach();
        Ok(())
    }

    fn store_less(&self) -> bool {
        self.cfg.store.is_none()
    }

    // ----- stat port -----------------------------------------------------------------

    async fn accept_stat(self: Rc<Self>, l: TcpListener, active: Rc<Cell<usize>>, epoch: u64) {
        loop {
            let conn = futures_lite::future::or(
                async { Some(l.accept().await.map_err(std::io::Error::from)) },
                async {
                    wait_stat_closed(epoch).await;
                    None
                },
            )
            .await;
            let Some(conn) = conn else { return };
            match conn {
                Ok(stream) => {
                    self.lb.borrow_mut().incr(Loopback::StatServerConnects);
                    self.lb.borrow_mut().incr(Loopback::CounterEagerconns);
                    self.counters.borrow_mut().connected += 1;
                    active.set(active.get() + 1);
                    let sh = self.clone();
                    let active = active.clone();
                    glommio::spawn_local(async move {
                        sh.serve_stat_conn(stream, epoch).await;
                        sh.lb.borrow_mut().incr(Loopback::StatServerDrops);
                        sh.lb.borrow_mut().decr(Loopback::CounterEagerconns);
                        sh.counters.borrow_mut().connected -= 1;
                        active.set(active.get() - 1);
                    })
                    .detach();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "stat accept failed");
                    glommio::timer::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }

    async fn serve_stat_conn(self: &Rc<Self>, mut stream: TcpStream, epoch: u64) {
        let mut buf = vec![0u8; 16384];
        let mut splitter = LineSplitter::new();
        let mut parsed = ParsedBatch::new();
        let mut batches: Vec<Batch> = (0..self.count).map(|_| Batch::default()).collect();
        let peer = stream
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let mut record: Option<MetaHandle> = None;
        loop {
            let n = futures_lite::future::or(async { Some(stream.read(&mut buf).await) }, async {
                wait_stat_closed(epoch).await;
                None
            })
            .await;
            let n = match n {
                None | Some(Ok(0)) | Some(Err(_)) => break,
                Some(Ok(n)) => n,
            };
            let now = clock::now();
            let rec = record
                .get_or_insert_with(|| self.meta.borrow_mut().open(peer.clone(), now))
                .clone();
            rec.borrow_mut().last_seen = now;
            let blacklist = BLACKLIST.get();
            let flow = splitter.try_push(&buf[..n], |frame| {
                if let Some(bl) = &blacklist {
                    if is_blacklisted(&rec, bl) {
                        return std::ops::ControlFlow::Break(());
                    }
                }
                match frame {
                    Frame::Line(line) => {
                        self.parse_into(line, now, &mut parsed, &mut batches, Some(&rec))
                    }
                    Frame::Bad(_) => self.lb.borrow_mut().incr(Loopback::StatServerCommandsBad),
                }
                std::ops::ControlFlow::Continue(())
            });
            self.route(&mut batches).await;
            self.agent_send_meta().await;
            if flow.is_break() {
                self.lb.borrow_mut().incr(Loopback::BlacklistCount);
                rec.borrow_mut().blacklisted = true;
                tracing::info!(peer = %peer, "closing a blacklisted host's connection");
                break;
            }
        }
        if let Some(rec) = record {
            let mut r = rec.borrow_mut();
            r.online = false;
            r.last_seen = clock::now();
        }
    }

    async fn serve_udp(self: Rc<Self>, sock: UdpSocket, epoch: u64) {
        let mut buf = vec![0u8; 65536];
        let mut parsed = ParsedBatch::new();
        let mut batches: Vec<Batch> = (0..self.count).map(|_| Batch::default()).collect();
        loop {
            let r =
                futures_lite::future::or(async { Some(sock.recv_from(&mut buf).await) }, async {
                    wait_stat_closed(epoch).await;
                    None
                })
                .await;
            let Some(r) = r else { return };
            let (n, from) = match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "udp receive failed");
                    continue;
                }
            };
            self.counters.borrow_mut().udp_packets += 1;
            let now = clock::now();
            match statline::split_datagram(&buf[..n]) {
                Err(_) => {
                    self.counters.borrow_mut().udp_bad += 1;
                    continue;
                }
                Ok(frames) => {
                    let rec = self
                        .udp_meta
                        .borrow_mut()
                        .get_or_insert_with(|| self.meta.borrow_mut().open(from.to_string(), now))
                        .clone();
                    rec.borrow_mut().last_seen = now;
                    let blacklist = BLACKLIST.get();
                    for frame in frames {
                        if blacklist
                            .as_ref()
                            .is_some_and(|bl| is_blacklisted(&rec, bl))
                        {
                            self.lb.borrow_mut().incr(Loopback::BlacklistCount);
                            continue;
                        }
                        match frame {
                            Frame::Line(line) => {
                                self.parse_into(line, now, &mut parsed, &mut batches, Some(&rec))
                            }
                            Frame::Bad(_) => {
                                self.lb.borrow_mut().incr(Loopback::StatServerCommandsBad)
                            }
                        }
                    }
                }
            }
            self.route(&mut batches).await;
            self.agent_send_meta().await;
        }
    }

    // ----- flush cycle ---------------------------------------------------------------

    async fn flush_loop(self: Rc<Self>) {
        let Some(store) = &self.store else { return };
        let flush_ms = self.cfg.flush_secs.max(1) * 1000;
        loop {
            let n = store.stats().counters.max(1);
            let tick = (flush_ms / (n + 1)).clamp(2, 3000);
            // With more counters than 2 ms ticks in a flush period, several go per
            // tick, so that a round still takes about `--flush` seconds.
            let per_tick = ((n + 1) * tick).div_ceil(flush_ms.max(1)).max(1);
            glommio::timer::sleep(Duration::from_millis(tick)).await;
            for _ in 0..per_tick {
                match store.flush_next(clock::now()).await {
                    Ok(Some(_)) => {
                        let n = self.cfg.retentions.len() as i64;
                        self.lb.borrow_mut().add(Loopback::CounterFlushed, n);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::error!(shard = self.id, error = %e, "periodic flush failed");
                        break;
                    }
                }
            }
        }
    }

    // ----- HTTP (every shard) ---------------------------------------------------------

    async fn accept_http(self: Rc<Self>, l: TcpListener, cfg: Option<Rc<crate::http::HttpConfig>>) {
        let Some(cfg) = cfg else { return };
        let backend: Rc<dyn Backend> = Rc::new(ShardBackend(self.clone()));
        loop {
            let conn = accept_or_shutdown(&l).await;
            match conn {
                None => return,
                Some(Ok(stream)) => {
                    let cfg = cfg.clone();
                    let backend = backend.clone();
                    glommio::spawn_local(crate::http::serve_connection(stream, cfg, backend))
                        .detach();
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "http accept failed");
                    glommio::timer::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }

    /// Expire exporter gauges every `--metrics-cleanup-period` and stale counters daily.
    async fn prom_cleanup_loop(self: Rc<Self>) {
        let period = self.cfg.prom.cleanup_period.max(1) as u64;
        let mut elapsed = 0u64;
        loop {
            glommio::timer::sleep(Duration::from_secs(period)).await;
            if SHUTDOWN.load(Ordering::SeqCst) {
                return;
            }
            let now = clock::now();
            let mut p = self.prom.borrow_mut();
            p.expire_gauges(&self.cfg.prom, now);
            elapsed += period;
            if elapsed >= 86_400 {
                elapsed = 0;
                p.expire_counters(now);
            }
        }
    }

    /// Bring the HTTP counters into the loopback counters (events as totals).
    fn sync_http_counters(&self) {
        let Some(cfg) = &self.http else { return };
        let st = &cfg.stats;
        let (r0, h0, s0) = self.http_reported.get();
        let (r, h, sv) = (
            st.requests.get(),
            st.http_errors.get(),
            st.server_errors.get(),
        );
        let mut lb = self.lb.borrow_mut();
        lb.add(Loopback::HttpRequests, (r - r0) as i64);
        lb.add(Loopback::HttpErrorsHttp, (h - h0) as i64);
        lb.add(Loopback::HttpErrorsServer, (sv - s0) as i64);
        lb.set(Loopback::HttpCurrent, st.current.get());
        self.http_reported.set((r, h, sv));
    }

    // ----- admin port (shard 0) ------------------------------------------------------

    async fn accept_admin(self: Rc<Self>, l: TcpListener) {
        loop {
            let conn = accept_or_shutdown(&l).await;
            let Some(conn) = conn else { return };
            if let Ok(stream) = conn {
                let sh = self.clone();
                glommio::spawn_local(async move { sh.serve_admin_conn(stream).await }).detach();
            }
        }
    }

    async fn serve_admin_conn(self: &Rc<Self>, mut stream: TcpStream) {
        self.lb.borrow_mut().incr(Loopback::AdminConnections);
        let mut buf = vec![0u8; 4096];
        let mut framer = AdminFramer::new();
        loop {
            let n = match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            framer.push(&buf[..n]);
            while let Some(input) = framer.next_input() {
                let (reply, quit) = match input {
                    AdminInput::TooLong => {
                        self.lb.borrow_mut().incr(Loopback::AdminCommands);
                        (AdminReply::line_too_long().render(), false)
                    }
                    AdminInput::Line(line) => self.admin_command(&line).await,
                };
                if stream.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
                if quit {
                    let _ = stream.flush().await;
                    return;
                }
            }
        }
    }

    async fn admin_command(self: &Rc<Self>, line: &str) -> (String, bool) {
        self.lb.borrow_mut().incr(Loopback::AdminCommands);
        let cmd = match admin::parse_command(line) {
            Ok(c) => c,
            Err(reply) => return (reply.render(), false),
        };
        let has_store = self.cfg.store.is_some();
        let reply = match cmd {
            AdminCommand::Help => admin::help_text(),
            AdminCommand::Quit => return (String::new(), true),
            AdminCommand::Flush => {
                self.record_loopback().await;
                self.agent_admin_flush().await;
                self.broadcast(Req::Flush { force: true }).await;
                if let Some(settings) = SETTINGS.get() {
                    settings.flush_all().await;
                }
                admin::OK.to_string()
            }
            AdminCommand::Stats => {
                let (lb, extras) = self.all_stats().await;
                let control = replica_admin::control();
                let rs = replica::shared();
                let info = admin::StatsInfo {
                    http: (self.cfg.http_port != 0).then(|| admin::HttpStats {
                        port: self.cfg.http_port,
                        current: lb.get(Loopback::HttpCurrent),
                    }),
                    replica_server: (self.cfg.repl.port != 0).then(|| admin::ReplicaServerStats {
                        port: self.cfg.repl.port,
                        current: rs.master_connections.load(Ordering::SeqCst) as i64,
                    }),
                    replica_of: control.of.as_ref().map(|(h, p)| admin::ReplicaOfStats {
                        source: format!("{h}:{p}"),
                        connected: rs.slave_connected.load(Ordering::SeqCst) != 0,
                        queue: extras
                            .iter()
                            .find(|(k, _)| k == "replication.slave.pending_subscribe")
                            .map_or(0, |(_, v)| *v as u64),
                    }),
                    fake_time: clock::is_fake().then(clock::fake_value),
                };
                admin::render_stats(&info, lb.stats().into_iter().chain(extras))
            }
            AdminCommand::Debug(d) => self.debug.borrow_mut().run(&d),
            AdminCommand::LogLevel(l) => match l.error {
                Some(e) => e.render(),
                None => admin::render_loglevel(l.file.unwrap_or(2), l.stderr.unwrap_or(1)),
            },
            AdminCommand::FakeTime(_) if !clock::is_fake() => AdminReply::not_fake_time().render(),
            AdminCommand::FakeTime(Err(r)) => r.render(),
            AdminCommand::FakeTime(Ok(t)) => {
                clock::set_fake(t);
                admin::OK.to_string()
            }
            AdminCommand::DeleteCtr(_) if !has_store => AdminReply::no_store("delete.ctr").render(),
            AdminCommand::DeletePattern(_) if !has_store => {
                AdminReply::no_store("delete.pattern").render()
            }
            AdminCommand::DeleteCtr(names) => {
                let mut out = String::new();
                for name in names {
                    out.push_str(&admin::echo_line(&name));
                    let key = statline::munge(name.as_bytes());
                    let owner = shard_of(key.as_bytes(), self.count);
                    self.rpc(owner, Req::Delete(vec![key])).await;
                }
                out.push_str(admin::OK);
                out
            }
            AdminCommand::DeletePattern(patterns) => {
                let mut out = String::new();
                for p in &patterns {
                    out.push_str(&admin::echo_line(p));
                }
                self.broadcast(Req::DeletePattern(patterns)).await;
                out.push_str(admin::OK);
                out
            }
            AdminCommand::Purge { .. }
            | AdminCommand::FlushSetting(_)
            | AdminCommand::LoadSetting(_) => admin::OK.to_string(),
            AdminCommand::Replication(cmd) => self.replication_command(cmd).await,
        };
        (reply, false)
    }

    /// [`Shard::gather_stats`] with the replication link's counters; the
    /// `replication.*` metrics only when this node replicates (or was promoted).
    async fn all_stats(&self) -> (LoopbackCounters, Vec<(String, i64)>) {
        let (lb, mut extras) = self.gather_stats().await;
        if let Some(links) = &self.agent_links {
            agent::stats(&mut extras, &links.state());
        }
        let control = replica_admin::control();
        if self.cfg.repl.port != 0 || control.of.is_some() || control.promoted.is_some() {
            replica::link_stats(&mut extras);
        } else {
            extras.retain(|(k, _)| !k.starts_with("replication."));
        }
        (lb, extras)
    }

    /// Every shard's counters: the merged loopback counters and the summed extras
    /// (`*_min` extras are the minimum over shards).
    async fn gather_stats(&self) -> (LoopbackCounters, Vec<(String, i64)>) {
        let mut lb = LoopbackCounters::new(
            &self
                .cfg
                .retentions
                .iter()
                .map(|r| r.name.clone())
                .collect::<Vec<_>>(),
        );
        let mut total: Vec<(String, i64)> = Vec::new();
        for rep in self.broadcast(Req::Stats).await {
            if let Rep::Stats(shard_lb, v) = rep {
                lb.merge(&shard_lb);
                for (k, val) in v {
                    match total.iter_mut().find(|(n, _)| *n == k) {
                        Some(e) if k.ends_with("_min") || k.ends_with("data_age_seconds") => {
                            e.1 = e.1.min(val)
                        }
                        Some(e) if k.ends_with("lag_seconds") => e.1 = e.1.max(val),
                        Some(e) => e.1 += val,
                        None => total.push((k, val)),
                    }
                }
            }
        }
        (lb, total)
    }

    /// Record the internal counters into the store as `istatd.*` counters (shard 0,
    /// every 500 ms and at admin `flush`), as the reference's LoopbackCounter does.
    async fn record_loopback(self: &Rc<Self>) {
        // A slave's store is written only by replication (replication.md §2.2).
        if self.store_less() || replica_admin::acting_slave() {
            return;
        }
        let (total, _) = self.gather_stats().await;
        let samples = self.recorder.borrow_mut().samples(&total);
        if samples.is_empty() {
            return;
        }
        let now = clock::now();
        let mut batches: Vec<Batch> = (0..self.count).map(|_| Batch::default()).collect();
        for smp in samples {
            let (event, key) = match smp.key.strip_prefix('*') {
                Some(k) => (true, k),
                None => (false, smp.key.as_str()),
            };
            self.ensure_parents(key, event, now, &mut batches);
            let owner = shard_of(key.as_bytes(), self.count);
            batches[owner].push(
                key,
                event,
                Op::Internal,
                Sample::value(now, smp.value as f64),
            );
        }
        self.route(&mut batches).await;
    }

    /// `--local-stats`: sample the host every 5 s (aligned) and feed the lines through
    /// the stat-line handler (interfaces.md §2.11). The first sample only initializes.
    async fn local_stats_loop(self: Rc<Self>, suffix: String) {
        let mut sampler = crate::localstats::Sampler::new();
        let mut first = true;
        let mut parsed = ParsedBatch::new();
        let mut batches: Vec<Batch> = (0..self.count).map(|_| Batch::default()).collect();
        loop {
            if !first {
                let now = clock::now();
                let wait = (statline::next_local_stats_time(now) - now).max(1) as u64;
                glommio::timer::sleep(Duration::from_secs(wait)).await;
            }
            if SHUTDOWN.load(Ordering::SeqCst) {
                return;
            }
            if replica_admin::acting_slave() {
                // A slave's store is written only by replication.
                continue;
            }
            let texts = glommio::executor()
                .spawn_blocking(crate::localstats::read_proc)
                .await;
            let Ok(texts) = texts else { continue };
            let metrics = sampler.sample_from(&texts);
            if std::mem::take(&mut first) {
                continue;
            }
            let now = clock::now();
            let rec = self.udp_meta.borrow().clone();
            for line in crate::localstats::lines(&metrics, &suffix, now) {
                self.parse_into(
                    line.as_bytes(),
                    now,
                    &mut parsed,
                    &mut batches,
                    rec.as_ref(),
                );
            }
            self.route(&mut batches).await;
            self.agent_send_meta().await;
        }
    }

    async fn loopback_loop(self: Rc<Self>) {
        let mut ticks = 0u64;
        loop {
            glommio::timer::sleep(Duration::from_millis(admin::RECORD_INTERVAL_MS)).await;
            if SHUTDOWN.load(Ordering::SeqCst) {
                return;
            }
            ticks += 1;
            if ticks.is_multiple_of(10) {
                if let Some((vmsize, vmrss)) = process_memory() {
                    let mut lb = self.lb.borrow_mut();
                    lb.set(Loopback::AppMemoryVmsize, vmsize);
                    lb.set(Loopback::AppMemoryVmrss, vmrss);
                }
            }
            self.record_loopback().await;
        }
    }
}

/// Whether a record's `hostname` is on the blacklist (lower-cased comparison).
fn is_blacklisted(rec: &MetaHandle, bl: &statline::Blacklist) -> bool {
    let r = rec.borrow();
    if r.blacklisted {
        return true;
    }
    r.hostname().is_some_and(|h| bl.contains(h))
}

/// Load the blacklist now and whenever its file's mtime changes (interfaces.md §2.10).
async fn blacklist_loop(cfg: BlacklistConfig) {
    let mut last_mtime = None;
    loop {
        let path = cfg.path.clone();
        let seen = last_mtime;
        let loaded = glommio::executor()
            .spawn_blocking(move || {
                let mtime = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
                if Some(mtime) == seen {
                    return None;
                }
                let text = std::fs::read(&path).ok()?;
                Some((mtime, statline::Blacklist::parse_bytes(&text)))
            })
            .await;
        if let Some((mtime, list)) = loaded {
            tracing::info!(path = %cfg.path.display(), hosts = list.len(), "blacklist loaded");
            BLACKLIST.set(list);
            last_mtime = Some(mtime);
        }
        glommio::timer::sleep(Duration::from_secs(cfg.period_secs.max(1))).await;
        if SHUTDOWN.load(Ordering::SeqCst) {
            return;
        }
    }
}

/// (VmSize, VmRSS) in bytes from /proc/self/statm.
fn process_memory() -> Option<(i64, i64)> {
    let text = std::fs::read_to_string("/proc/self/statm").ok()?;
    let mut it = text.split_whitespace().map(|v| v.parse::<i64>().ok());
    let page = 4096;
    Some((it.next()?? * page, it.next()?? * page))
}

/// The HTTP layer's view of the daemon, from the shard that accepted the connection.
pub struct ShardBackend(Rc<Shard>);

impl Backend for ShardBackend {
    fn has_store(&self) -> bool {
        self.0.store.is_some()
    }

    fn now(&self) -> i64 {
        clock::now()
    }

    fn query<'a>(
        &'a self,
        key: &'a str,
        params: istatd_storage::query::QueryParams,
    ) -> LocalFut<'a, Result<Option<CounterData>, String>> {
        Box::pin(async move {
            let owner = shard_of(key.as_bytes(), self.0.count);
            match self.0.rpc(owner, Req::Query(key.to_string(), params)).await {
                Rep::Query(r) => r,
                _ => Err("shard did not answer".into()),
            }
        })
    }

    fn counters(&self) -> LocalFut<'_, Vec<CounterInfo>> {
        Box::pin(async move {
            let mut out = Vec::new();
            for rep in self.0.broadcast(Req::Counters).await {
                if let Rep::Counters(v) = rep {
                    out.extend(v);
                }
            }
            out
        })
    }

    fn metrics(&self, exporter: bool) -> LocalFut<'_, Option<String>> {
        Box::pin(async move {
            if exporter {
                self.0.prom_http.as_ref()?;
                let mut all = crate::prom::PromStore::default();
                for rep in self.0.broadcast(Req::PromSnapshot).await {
                    if let Rep::Prom(p) = rep {
                        all.merge_from(&p);
                    }
                }
                Some(all.render(clock::now()))
            } else {
                let (lb, extras) = self.0.all_stats().await;
                let all: Vec<(String, i64)> = lb.stats().into_iter().chain(extras).collect();
                Some(crate::prom::render_internal(&all))
            }
        })
    }

    fn agents(&self) -> LocalFut<'_, Vec<AgentInfo>> {
        Box::pin(async move {
            let mut out = Vec::new();
            for rep in self.0.broadcast(Req::Agents).await {
                if let Rep::Agents(v) = rep {
                    out.extend(v);
                }
            }
            out
        })
    }
}
