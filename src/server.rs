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
use std::net::{Ipv4Addr, SocketAddr};
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

use crate::clock;

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
}

/// Set by the signal thread (or a test) to begin a clean shutdown.
pub static SHUTDOWN: AtomicBool = AtomicBool::new(false);

/// Shards that have stopped producing data for other shards.
static STOPPED_PRODUCERS: AtomicUsize = AtomicUsize::new(0);

/// Samples bound for one shard, with their names in one arena (one allocation per
/// batch, not per sample).
#[derive(Debug, Default)]
pub struct Batch {
    names: String,
    recs: Vec<(u32, u32, bool, Sample)>,
}

impl Batch {
    fn push(&mut self, key: &str, event: bool, s: Sample) {
        let start = self.names.len() as u32;
        self.names.push_str(key);
        self.recs.push((start, key.len() as u32, event, s));
    }
    fn is_empty(&self) -> bool {
        self.recs.is_empty()
    }
    fn iter(&self) -> impl Iterator<Item = (&str, bool, Sample)> {
        self.recs
            .iter()
            .map(|&(st, len, ev, s)| (&self.names[st as usize..(st + len) as usize], ev, s))
    }
}

pub enum DataMsg {
    Samples(Batch),
}

pub enum CtlMsg {
    Req { id: u64, from: usize, req: Req },
    Rep { id: u64, rep: Rep },
}

#[derive(Debug, Clone)]
pub enum Req {
    /// Flush every counter of the shard (`force`: admin flush).
    Flush { force: bool },
    /// The shard's internal counters.
    Stats,
    /// Make these counters exist (parents created on their owner shard).
    CreateCounters(Vec<(String, bool, i64)>),
}

#[derive(Debug, Clone)]
pub enum Rep {
    Done,
    Stats(Vec<(String, i64)>),
}

/// Per-shard internal counters (published as `istatd.*`).
#[derive(Debug, Default, Clone)]
pub struct ShardCounters {
    pub connects: u64,
    pub drops: u64,
    pub connected: u64,
    pub commands_bad: u64,
    pub commands_reserved: u64,
    pub samples: u64,
    pub udp_packets: u64,
    pub udp_bad: u64,
    pub from_future: u64,
    pub from_past: u64,
    pub rejected: u64,
    pub counters_created: u64,
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
}

/// What a shard reports to the main thread when its listeners are up (or failed).
pub type Ready = std::sync::mpsc::Sender<Result<(), String>>;

/// Start the shards; returns their join handles. Each shard reports on `ready`.
pub fn start(
    cfg: ServerConfig,
    ready: Ready,
) -> std::io::Result<Vec<glommio::ExecutorJoinHandle<()>>> {
    let cfg = Arc::new(cfg);
    let spec = cfg.shards.clone();
    let ready = Arc::new(std::sync::Mutex::new(ready));
    istatd_shards::spawn::<DataMsg, CtlMsg, _, _>(&spec, move |ctx| {
        let cfg = cfg.clone();
        let ready = ready.lock().map(|r| r.clone()).expect("ready channel");
        async move { shard_main(ctx, cfg, ready).await }
    })
}

async fn shard_main(ctx: ShardContext<DataMsg, CtlMsg>, cfg: Arc<ServerConfig>, ready: Ready) {
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
            o.load_incomplete = cfg.create_parents;
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
    });

    // Listeners first, so a bind failure is reported before anything else runs.
    let mut tasks = Vec::new();
    let addr = SocketAddr::from((cfg.listen, cfg.stat_port));
    let stat_tcp = if cfg.stat_port != 0 {
        match TcpListener::bind(addr) {
            Ok(l) => Some(l),
            Err(e) => {
                let _ = ready.send(Err(format!("stat port {addr}: {e}")));
                return;
            }
        }
    } else {
        None
    };
    let stat_udp = if cfg.stat_port != 0 {
        match UdpSocket::bind(addr) {
            Ok(mut u) => {
                u.set_buffer_size(65536);
                Some(u)
            }
            Err(e) => {
                let _ = ready.send(Err(format!("stat port {addr}/udp: {e}")));
                return;
            }
        }
    } else {
        None
    };
    let admin_l = if id == 0 && cfg.admin_port != 0 {
        let a = SocketAddr::from((cfg.listen, cfg.admin_port));
        match TcpListener::bind(a) {
            Ok(l) => Some(l),
            Err(e) => {
                let _ = ready.send(Err(format!("admin port {a}: {e}")));
                return;
            }
        }
    } else {
        None
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

    let active = Rc::new(Cell::new(0usize));
    let mut producers = Vec::new();
    if let Some(l) = stat_tcp {
        let sh = shard.clone();
        let active = active.clone();
        producers.push(glommio::spawn_local(async move {
            sh.accept_stat(l, active).await
        }));
    }
    if let Some(u) = stat_udp {
        let sh = shard.clone();
        producers.push(glommio::spawn_local(async move { sh.serve_udp(u).await }));
    }
    if let Some(l) = admin_l {
        let sh = shard.clone();
        glommio::spawn_local(async move { sh.accept_admin(l).await }).detach();
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
    tracing::info!(shard = id, "shard stopped");
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
            Req::Stats => Rep::Stats(self.stats()),
            Req::CreateCounters(list) => {
                if let Some(store) = &self.store {
                    for (key, event, zero) in list {
                        match store.create_counter(&key, event, zero).await {
                            Ok(true) => self.counters.borrow_mut().counters_created += 1,
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

    fn stats(&self) -> Vec<(String, i64)> {
        let c = self.counters.borrow().clone();
        let s: StoreStats = self.store.as_ref().map(|s| s.stats()).unwrap_or_default();
        vec![
            ("istatd.statserver.connects".into(), c.connects as i64),
            ("istatd.statserver.drops".into(), c.drops as i64),
            ("istatd.statserver.connected".into(), c.connected as i64),
            (
                "istatd.statserver.commands.bad".into(),
                c.commands_bad as i64,
            ),
            (
                "istatd.statserver.commands.reserved".into(),
                c.commands_reserved as i64,
            ),
            ("istatd.statserver.samples".into(), c.samples as i64),
            ("istatd.statserver.udp.packets".into(), c.udp_packets as i64),
            ("istatd.statserver.udp.bad".into(), c.udp_bad as i64),
            ("istatd.counter.from_future".into(), c.from_future as i64),
            ("istatd.counter.from_past".into(), c.from_past as i64),
            ("istatd.counter.rejected".into(), c.rejected as i64),
            (
                "istatd.counter.created".into(),
                (c.counters_created + s.counters_created) as i64,
            ),
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
        let mut parents: Vec<Vec<(String, bool, i64)>> = vec![Vec::new(); self.count];
        for (key, event, s) in batch.iter() {
            match store.record(key, event, s, now).await {
                Ok(out) => {
                    let mut c = self.counters.borrow_mut();
                    c.samples += 1;
                    match out.rejected {
                        Some(Reject::FromFuture) => c.from_future += 1,
                        Some(Reject::FromPast) => c.from_past += 1,
                        Some(Reject::Rejected) => c.rejected += 1,
                        None => {}
                    }
                    if out.created && self.cfg.create_parents {
                        let mut p = key;
                        while let Some(pos) = p.rfind('.') {
                            p = &p[..pos];
                            let owner = shard_of(p.as_bytes(), self.count);
                            parents[owner].push((p.to_string(), event, s.time));
                        }
                    }
                }
                Err(e) => tracing::warn!(counter = %key, error = %e, "cannot record"),
            }
        }
        for (owner, list) in parents.into_iter().enumerate() {
            if list.is_empty() {
                continue;
            }
            if owner == self.id {
                self.handle(Req::CreateCounters(list)).await;
            } else {
                // Never block this receive loop on another shard: a task carries it.
                let sh = self.clone();
                glommio::spawn_local(async move {
                    sh.rpc(owner, Req::CreateCounters(list)).await;
                })
                .detach();
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

    fn parse_into(&self, line: &[u8], now: i64, out: &mut [Batch]) {
        let mut c = self.counters.borrow_mut();
        match parse_simple(line, now) {
            Simple::Samples(v) => {
                for (key, event, s) in v {
                    let owner = shard_of(key.as_bytes(), self.count);
                    out[owner].push(&key, event, s);
                }
            }
            Simple::Bad => c.commands_bad += 1,
            Simple::Reserved => c.commands_reserved += 1,
            Simple::Ignore => {}
        }
    }

    // ----- stat port -----------------------------------------------------------------

    async fn accept_stat(self: Rc<Self>, l: TcpListener, active: Rc<Cell<usize>>) {
        loop {
            let conn = futures_lite::future::or(async { Some(l.accept().await) }, async {
                wait_shutdown().await;
                None
            })
            .await;
            let Some(conn) = conn else { return };
            match conn {
                Ok(stream) => {
                    self.counters.borrow_mut().connects += 1;
                    self.counters.borrow_mut().connected += 1;
                    active.set(active.get() + 1);
                    let sh = self.clone();
                    let active = active.clone();
                    glommio::spawn_local(async move {
                        sh.serve_stat_conn(stream).await;
                        sh.counters.borrow_mut().drops += 1;
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

    async fn serve_stat_conn(self: &Rc<Self>, mut stream: TcpStream) {
        let mut buf = vec![0u8; 16384];
        let mut pending: Vec<u8> = Vec::new();
        let mut batches: Vec<Batch> = (0..self.count).map(|_| Batch::default()).collect();
        loop {
            let n = futures_lite::future::or(async { Some(stream.read(&mut buf).await) }, async {
                wait_shutdown().await;
                None
            })
            .await;
            let n = match n {
                None | Some(Ok(0)) | Some(Err(_)) => break,
                Some(Ok(n)) => n,
            };
            pending.extend_from_slice(&buf[..n]);
            let now = clock::now();
            let mut start = 0;
            while let Some(pos) = pending[start..].iter().position(|&b| b == b'\n') {
                let line = &pending[start..start + pos];
                if line.len() <= MAX_LINE {
                    self.parse_into(line, now, &mut batches);
                } else {
                    self.counters.borrow_mut().commands_bad += 1;
                }
                start += pos + 1;
            }
            pending.drain(..start);
            if pending.len() > MAX_LINE {
                // Over-long line: drop what we have; the rest up to its LF is dropped too.
                pending.clear();
                self.counters.borrow_mut().commands_bad += 1;
            }
            self.route(&mut batches).await;
        }
    }

    async fn serve_udp(self: Rc<Self>, sock: UdpSocket) {
        let mut buf = vec![0u8; 65536];
        let mut batches: Vec<Batch> = (0..self.count).map(|_| Batch::default()).collect();
        loop {
            let r =
                futures_lite::future::or(async { Some(sock.recv_from(&mut buf).await) }, async {
                    wait_shutdown().await;
                    None
                })
                .await;
            let Some(r) = r else { return };
            let n = match r {
                Ok((n, _)) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "udp receive failed");
                    continue;
                }
            };
            self.counters.borrow_mut().udp_packets += 1;
            let d = &buf[..n];
            if n < 5 || d[n - 1] != b'\n' {
                self.counters.borrow_mut().udp_bad += 1;
                continue;
            }
            let now = clock::now();
            for seg in d[..n - 1].split(|&b| b == b'\n') {
                if seg.len() <= 1 {
                    if seg.len() == 1 && !seg[0].is_ascii_whitespace() {
                        self.counters.borrow_mut().commands_bad += 1;
                    }
                    continue;
                }
                self.parse_into(seg, now, &mut batches);
            }
            self.route(&mut batches).await;
        }
    }

    // ----- flush cycle ---------------------------------------------------------------

    async fn flush_loop(self: Rc<Self>) {
        let Some(store) = &self.store else { return };
        let flush_ms = self.cfg.flush_secs.max(1) * 1000;
        loop {
            let n = store.stats().counters.max(1);
            let tick = (flush_ms / (n + 1)).clamp(2, 3000);
            glommio::timer::sleep(Duration::from_millis(tick)).await;
            if let Err(e) = store.flush_next(clock::now()).await {
                tracing::error!(shard = self.id, error = %e, "periodic flush failed");
            }
        }
    }

    // ----- admin port (shard 0) ------------------------------------------------------

    async fn accept_admin(self: Rc<Self>, l: TcpListener) {
        loop {
            let conn = futures_lite::future::or(async { Some(l.accept().await) }, async {
                wait_shutdown().await;
                None
            })
            .await;
            let Some(conn) = conn else { return };
            if let Ok(stream) = conn {
                let sh = self.clone();
                glommio::spawn_local(async move { sh.serve_admin_conn(stream).await }).detach();
            }
        }
    }

    async fn serve_admin_conn(&self, mut stream: TcpStream) {
        let mut buf = vec![0u8; 4096];
        let mut pending: Vec<u8> = Vec::new();
        loop {
            let n = match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            pending.extend_from_slice(&buf[..n]);
            while let Some(pos) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=pos).collect();
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches(['\r', '\n']);
                let (reply, quit) = self.admin_command(text).await;
                if stream.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
                if quit {
                    let _ = stream.flush().await;
                    return;
                }
            }
            if pending.len() > 4096 {
                pending.clear();
                if stream.write_all(b"huh? line too long\r\n").await.is_err() {
                    return;
                }
            }
        }
    }

    async fn admin_command(&self, line: &str) -> (String, bool) {
        let mut words = line.trim().splitn(2, ' ');
        let cmd = words.next().unwrap_or("");
        let arg = words.next().unwrap_or("").trim();
        match cmd {
            "" => (String::new(), false),
            "flush" => {
                self.broadcast(Req::Flush { force: true }).await;
                ("ok\r\n".into(), false)
            }
            "stats" => {
                let mut out = String::new();
                if clock::is_fake() {
                    out.push_str(&format!("fakeTime.value: {}\r\n", clock::fake_value()));
                }
                for (k, v) in self.admin_stats().await {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("ok\r\n");
                (out, false)
            }
            "faketime" if clock::is_fake() => match arg.parse::<i64>() {
                Ok(t) if t > 0 => {
                    clock::set_fake(t);
                    ("ok\r\n".into(), false)
                }
                _ => (format!("huh? bad time {arg:?}\r\n"), false),
            },
            "quit" => ("ok\r\n".into(), true),
            _ => (format!("huh? {cmd}\r\n"), false),
        }
    }

    async fn admin_stats(&self) -> Vec<(String, i64)> {
        let mut total: Vec<(String, i64)> = Vec::new();
        for rep in self.broadcast(Req::Stats).await {
            if let Rep::Stats(v) = rep {
                for (k, val) in v {
                    match total.iter_mut().find(|(n, _)| *n == k) {
                        Some(e) if k.ends_with("_min") => e.1 = e.1.min(val),
                        Some(e) => e.1 += val,
                        None => total.push((k, val)),
                    }
                }
            }
        }
        total
    }
}

/// Longest stat line accepted (interfaces.md §2.8, Port).
const MAX_LINE: usize = 64 * 1024;

enum Simple {
    Samples(Vec<(String, bool, Sample)>),
    Bad,
    Reserved,
    Ignore,
}

/// A minimal stat line parser (interfaces.md §2.3–2.5) until the full one lands.
fn parse_simple(line: &[u8], now: i64) -> Simple {
    let Some(&first) = line.first() else {
        return Simple::Ignore;
    };
    if first == b'#' {
        return Simple::Ignore;
    }
    if matches!(first, b'@' | b'$' | b'%' | b'&' | b';' | b':') {
        return Simple::Reserved;
    }
    let text = String::from_utf8_lossy(line);
    let f: Vec<&str> = text.split_ascii_whitespace().collect();
    let num = |s: &str| -> Option<f64> {
        match s {
            "nan" | "NaN" | "-nan" | "-NaN" => Some(0.0),
            _ => s.parse::<f64>().ok(),
        }
    };
    let sample = match f.len() {
        2 => num(f[1]).map(|v| Sample::value(now, v)),
        3 => match (f[1].parse::<i64>(), num(f[2])) {
            (Ok(t), Some(v)) => Some(Sample::value(t, v)),
            _ => None,
        },
        n if n >= 7 => (|| {
            Some(Sample {
                time: f[1].parse().ok()?,
                sum: num(f[2])?,
                sum_sq: num(f[3])?,
                min: num(f[4])?,
                max: num(f[5])?,
                count: f[6].parse().ok()?,
            })
        })(),
        _ => None,
    };
    let Some(sample) = sample else {
        return Simple::Bad;
    };
    let mut out = Vec::new();
    for name in expand_carets(f[0]) {
        let (event, n) = match name.strip_prefix('*') {
            Some(rest) => (true, rest.to_string()),
            None => (false, name),
        };
        if n.is_empty() {
            continue;
        }
        let key = munge(&n);
        if key.split('.').any(str::is_empty) {
            return Simple::Bad;
        }
        out.push((key, event, sample));
    }
    Simple::Samples(out)
}

fn munge(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'/' | b':' | b'\\' | b'"' | b'\'' => '_',
            b if !(0x21..=0x7e).contains(&b) => '_',
            b => (b as char).to_ascii_lowercase(),
        })
        .collect()
}

fn expand_carets(name: &str) -> Vec<String> {
    let Some(pos) = name.find('^') else {
        return vec![name.to_string()];
    };
    let base = &name[..pos];
    let segs: Vec<&str> = name[pos + 1..].split('^').collect();
    let mut out = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        if s.is_empty() {
            if i == segs.len() - 1 && !base.is_empty() {
                out.push(base.to_string());
            }
            continue;
        }
        out.push(if base.is_empty() {
            s.to_string()
        } else {
            format!("{base}.{s}")
        });
    }
    out
}
