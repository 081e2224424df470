//! Replication in the daemon (replication.md §2.15): shard 0 owns the sockets (the
//! replica listener and the link to this node's master), decodes frames, runs the
//! handshake, heartbeats and timeouts, and routes file PDUs to the shard that owns the
//! file; each shard keeps the replication state of its own files
//! (`istatd_replication::{master, slave}`) and does their storage reads and writes.
//!
//! Messages between shards travel as [`ReplMsg`] on the control mesh; each shard
//! handles them in arrival order on one task, so per-file order is kept.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_lite::AsyncWriteExt;
use glommio::channels::local_channel;
use glommio::net::{TcpListener, TcpStream};
use istatd_replication::link::{self, Backoff, Heartbeat, RequestKind};
use istatd_replication::master::{MasterConfig, MasterFiles, Visit, MAX_SCAN_SLOTS};
use istatd_replication::name::{counter_key, normalise_path};
use istatd_replication::pdu::{self, Pdu, RangeDigest, UniqueId};
use istatd_replication::scrub::{self, ScrubConfig, ScrubState, Scrubber};
use istatd_replication::slave::{DataAction, DiscoverAction, Local, SlaveConfig, SlaveFiles};
use istatd_shards::shard_of;
use istatd_storage::format::{c_str, Bucket, CreateParams, Header, HEADER_SIZE, PAGE_SIZE};
use istatd_storage::store::{Lookup, Store};

use super::replica_admin::{self, acting_slave, control, Control};

#[path = "replica/antientropy.rs"]
mod antientropy;
#[path = "replica/link_io.rs"]
mod link_io;

use super::{clock, CtlMsg, Rep, Shard, SHUTDOWN};
use link_io::{LinkIo, ReadEnd};

/// Replication settings resolved from the options (replication.md §2.18).
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

/// Send-queue high mark per connection (§2.10).
const HIGH_MARK: usize = 1 << 20;
/// Largest single socket write.
const MAX_WRITE: usize = 64 * 1024;

/// Process-wide replication state read across shards.
pub struct Shared {
    pub id: UniqueId,
    /// Send-queue bytes per master connection (written by shard 0).
    queues: Mutex<HashMap<u64, Arc<AtomicUsize>>>,
    /// File Requests per master connection routed to a shard and not yet answered or
    /// parked: shard 0 stops reading the connection above [`REQUESTS_INFLIGHT_MAX`]
    /// (this bounds the shards' inboxes and gone queues).
    requests: Mutex<HashMap<u64, Arc<AtomicUsize>>>,
    pub master_connections: AtomicUsize,
    pub slave_connected: AtomicUsize,
    pub slave_gen: AtomicU64,
    /// The protocol version of the slave link (0 while it is down).
    pub slave_version: AtomicU32,
    /// Discover and Data PDUs routed to shards and not yet handled (slave side).
    pub slave_inflight: AtomicUsize,
    pub counters: Mutex<LinkCounters>,
}

/// File Requests of one master connection in flight (see `Shared::requests`).
const REQUESTS_INFLIGHT_MAX: usize = 4096;

fn requests_inflight(conn: u64) -> Option<Arc<AtomicUsize>> {
    shared()
        .requests
        .lock()
        .ok()
        .and_then(|m| m.get(&conn).cloned())
}

/// File PDUs in flight to the shards above which shard 0 stops reading the link.
const SLAVE_INFLIGHT_MAX: usize = 256;

/// Link-level counters of shard 0 (replication.md §2.19).
#[derive(Debug, Default, Clone)]
pub struct LinkCounters {
    pub m_accepted: u64,
    pub m_handshakes: u64,
    pub m_rejected_version: u64,
    pub m_rejected_self: u64,
    pub m_rejected_cycle: u64,
    pub m_rejected_too_many: u64,
    pub m_protocol_errors: u64,
    pub m_errors_received: u64,
    pub m_timeouts: u64,
    pub m_pings: u64,
    pub m_bytes_sent: u64,
    pub m_bytes_received: u64,
    pub s_connect_attempts: u64,
    pub s_connect_failures: u64,
    pub s_handshake_failures: u64,
    pub s_disconnects: u64,
    pub s_master_changes: u64,
    pub s_protocol_errors: u64,
    pub s_errors_received: u64,
    pub s_timeouts: u64,
    pub s_pings_sent: u64,
    pub s_bytes_sent: u64,
    pub s_bytes_received: u64,
    pub s_backoff_seconds: u64,
    pub s_state: &'static str,
    pub s_master_id: String,
    /// Since when the slave link has been down (None while connected).
    pub s_down_since: Option<std::time::Instant>,
}

static SHARED: OnceLock<Arc<Shared>> = OnceLock::new();

/// The process's replication identity and shared counters (made once).
pub fn shared() -> &'static Arc<Shared> {
    SHARED.get_or_init(|| {
        let id = UniqueId::make(std::process::id()).expect("OS random source");
        Arc::new(Shared {
            id,
            queues: Mutex::new(HashMap::new()),
            requests: Mutex::new(HashMap::new()),
            master_connections: AtomicUsize::new(0),
            slave_connected: AtomicUsize::new(0),
            slave_gen: AtomicU64::new(0),
            slave_version: AtomicU32::new(0),
            slave_inflight: AtomicUsize::new(0),
            counters: Mutex::new(LinkCounters {
                s_state: "disabled",
                ..Default::default()
            }),
        })
    })
}

fn counters() -> std::sync::MutexGuard<'static, LinkCounters> {
    shared().counters.lock().unwrap_or_else(|e| e.into_inner())
}

fn queue_bytes(conn: u64) -> usize {
    shared()
        .queues
        .lock()
        .ok()
        .and_then(|q| q.get(&conn).map(|a| a.load(Ordering::Relaxed)))
        .unwrap_or(usize::MAX)
}

/// Messages between shard 0 and the owning shards.
#[derive(Debug)]
pub enum ReplMsg {
    /// Master: a slave connection opened / closed.
    Open(u64),
    Close(u64),
    /// Master: a file Request (name checked) for the receiving shard.
    Request {
        conn: u64,
        name: Vec<u8>,
        from: i64,
        n: i64,
    },
    /// To shard 0: encoded frames for a master connection.
    Out {
        conn: u64,
        frames: Vec<u8>,
    },
    /// Slave: a new link generation (every file state starts over).
    SlaveReset(u64),
    Discover(u64, Box<[u8; HEADER_SIZE]>),
    Data {
        gen: u64,
        name: Vec<u8>,
        buckets: Vec<Bucket>,
    },
    /// To shard 0: encoded Requests for the slave link of generation `gen`.
    SlaveOut {
        gen: u64,
        frames: Vec<u8>,
    },
    /// To shard 0: the master broke the protocol; close the slave link.
    SlaveFatal {
        gen: u64,
        text: &'static str,
    },
    /// Storage replica mode on or off (`replication.of`, promotion).
    ReplicaMode(bool),
    /// The resume time R for subscriptions from now on.
    SetResume(Option<i64>),
    /// Master (v3): a checked DigestRequest / RepairRequest for the receiving shard.
    DigestRequest {
        conn: u64,
        name: Vec<u8>,
        from: i64,
        ranges: u32,
    },
    RepairRequest {
        conn: u64,
        name: Vec<u8>,
        from: i64,
        n: i64,
    },
    /// Slave (v3): a Digest / RepairData for the receiving shard.
    Digest {
        gen: u64,
        name: Vec<u8>,
        from: i64,
        ranges: Vec<RangeDigest>,
    },
    RepairData {
        gen: u64,
        name: Vec<u8>,
        buckets: Vec<Bucket>,
    },
}

/// A new connection and the files still to announce to it.
type Sweep = (u64, Vec<(String, istatd_storage::store::FileId)>);

/// Open master connections by peer id (newest wins), with their generation.
type ByPeer = Rc<RefCell<HashMap<UniqueId, (u64, Rc<SendQueue>)>>>;

/// One shard's replication state.
pub struct ReplShard {
    pub master: RefCell<MasterFiles>,
    pub slave: RefCell<SlaveFiles>,
    slave_gen: Cell<u64>,
    inbox: local_channel::LocalSender<ReplMsg>,
    inbox_rx: RefCell<Option<local_channel::LocalReceiver<ReplMsg>>>,
    /// Files still to announce to newly opened connections: (conn, files).
    sweeps: RefCell<VecDeque<Sweep>>,
    /// Shard 0 only: the master connections' send queues and the slave link's.
    links: RefCell<HashMap<u64, Rc<SendQueue>>>,
    slave_link: RefCell<Option<(u64, Rc<SendQueue>)>>,
    slave_fatal: RefCell<Option<(u64, &'static str)>>,
    /// Shard 0: the slave link task runs.
    link_running: Cell<bool>,
    /// This shard's share of `--replica-read-rate` (bytes) and `--replica-create-rate`
    /// (files).
    read_budget: RefCell<TokenBucket>,
    create_budget: RefCell<TokenBucket>,
    pub read_stats: Cell<(u64, u64, u64)>,
    /// Entries that waited more than a flush period (the last stall sweep).
    stalled: Cell<u64>,
    /// Files created for retentions this node does not configure, and the names warned.
    unknown_retention: Cell<u64>,
    warned_retentions: RefCell<std::collections::HashSet<String>>,
    /// Slave: this shard's anti-entropy scrub, paced by its share of
    /// `--replica-scrub-rate` (buckets compared per second).
    pub scrub: RefCell<Scrubber>,
    scrub_budget: RefCell<TokenBucket>,
    scrub_apply_errors: Cell<u64>,
    /// Master: digests and repairs answered; scrub requests held while suspended.
    scrub_answered: Cell<(u64, u64)>,
    scrub_held: RefCell<VecDeque<ReplMsg>>,
    /// The slave link generation the scrub saw and since when; the second of the last
    /// check for an automatic pass.
    scrub_link: Cell<(u64, i64)>,
    scrub_checked_at: Cell<i64>,
    /// Slave: Discovers whose local file could not be created (disk full), each with
    /// when to try again and its delay; the time creates started failing and when
    /// that was last said in the log.
    create_retry: RefCell<HashMap<String, CreateRetry>>,
    create_failing: Cell<Option<(i64, i64)>>,
}

/// A Discover whose file could not be created: the header, when to try again, and
/// the current delay (seconds).
type CreateRetry = (Box<[u8; HEADER_SIZE]>, i64, i64);

/// First and longest delay before a failed create is tried again, seconds.
const CREATE_RETRY_FIRST: i64 = 1;
const CREATE_RETRY_MAX: i64 = 30;

/// A token bucket refilled by elapsed time; a rate of 0 is unlimited. Tokens may go
/// below zero (a read costs what it scanned), which delays the next one.
pub struct TokenBucket {
    rate: f64,
    tokens: f64,
    at: std::time::Instant,
}

impl TokenBucket {
    pub fn new(rate: f64) -> TokenBucket {
        TokenBucket {
            rate,
            tokens: rate,
            at: std::time::Instant::now(),
        }
    }

    fn refill(&mut self) {
        let now = std::time::Instant::now();
        let dt = now.duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.rate.max(1.0));
    }

    /// Whether there is something to spend now.
    pub fn ready(&mut self) -> bool {
        if self.rate <= 0.0 {
            return true;
        }
        self.refill();
        self.tokens > 0.0
    }

    pub fn spend(&mut self, n: f64) {
        if self.rate > 0.0 {
            self.tokens -= n;
        }
    }
}

/// Bytes waiting for a socket, and a wake-up for its writer.
pub struct SendQueue {
    buf: RefCell<VecDeque<u8>>,
    bytes: Arc<AtomicUsize>,
    wake: local_channel::LocalSender<()>,
    closed: Cell<bool>,
}

impl SendQueue {
    fn new() -> (Rc<SendQueue>, local_channel::LocalReceiver<()>) {
        let (tx, rx) = local_channel::new_bounded(1);
        (
            Rc::new(SendQueue {
                buf: RefCell::new(VecDeque::new()),
                bytes: Arc::new(AtomicUsize::new(0)),
                wake: tx,
                closed: Cell::new(false),
            }),
            rx,
        )
    }

    fn push(&self, frames: &[u8]) {
        if self.closed.get() {
            return;
        }
        self.buf.borrow_mut().extend(frames);
        self.bytes.fetch_add(frames.len(), Ordering::Relaxed);
        let _ = self.wake.try_send(());
    }

    fn push_pdu(&self, p: &Pdu) {
        self.push(&p.to_frame());
    }

    fn close(&self) {
        self.closed.set(true);
        let _ = self.wake.try_send(());
    }
}

/// Write a send queue to a socket in writes of at most 64 KiB until it is closed and
/// empty (or the socket fails).
async fn writer<W: futures_lite::AsyncWrite + Unpin>(
    q: Rc<SendQueue>,
    wake: local_channel::LocalReceiver<()>,
    mut w: W,
    slave_side: bool,
) {
    let mut chunk = Vec::with_capacity(MAX_WRITE);
    loop {
        chunk.clear();
        {
            let mut b = q.buf.borrow_mut();
            let n = b.len().min(MAX_WRITE);
            chunk.extend(b.drain(..n));
        }
        if chunk.is_empty() {
            if q.closed.get() {
                break;
            }
            if wake.recv().await.is_none() {
                break;
            }
            continue;
        }
        q.bytes.fetch_sub(chunk.len(), Ordering::Relaxed);
        if w.write_all(&chunk).await.is_err() {
            q.closed.set(true);
            break;
        }
        let mut c = counters();
        if slave_side {
            c.s_bytes_sent += chunk.len() as u64;
        } else {
            c.m_bytes_sent += chunk.len() as u64;
        }
    }
    let _ = w.flush().await;
    let _ = w.close().await;
}

impl ReplShard {
    pub fn new(cfg: &ReplConfig) -> ReplShard {
        // Unbounded so that a shard's control-mesh receiver never waits on it (two
        // shards waiting on each other's full channels would deadlock); what crosses
        // is bounded at the sources: shard 0 stops reading a slave link while too
        // many file PDUs are in flight, and masters answer within the send budget.
        let (tx, rx) = local_channel::new_unbounded();
        ReplShard {
            master: RefCell::new(MasterFiles::new(MasterConfig {
                chunk_buckets: cfg.chunk_buckets.clamp(1, 2048) as u16,
                margin: cfg.overlap,
                late_window: cfg.late_window,
                ..MasterConfig::default()
            })),
            slave: RefCell::new(SlaveFiles::new(SlaveConfig {
                chunk_buckets: cfg.chunk_buckets.clamp(1, 2048) as i64,
                resume_overlap: cfg.overlap as i64,
                resume_from: cfg.from,
            })),
            slave_gen: Cell::new(0),
            inbox: tx,
            inbox_rx: RefCell::new(Some(rx)),
            sweeps: RefCell::new(VecDeque::new()),
            links: RefCell::new(HashMap::new()),
            slave_link: RefCell::new(None),
            slave_fatal: RefCell::new(None),
            link_running: Cell::new(false),
            read_budget: RefCell::new(TokenBucket::new(
                cfg.read_rate as f64 / cfg.shards.max(1) as f64,
            )),
            create_budget: RefCell::new(TokenBucket::new(
                cfg.create_rate as f64 / cfg.shards.max(1) as f64,
            )),
            read_stats: Cell::new((0, 0, 0)),
            stalled: Cell::new(0),
            unknown_retention: Cell::new(0),
            warned_retentions: RefCell::new(std::collections::HashSet::new()),
            scrub: RefCell::new(Scrubber::new(ScrubConfig {
                overlap: cfg.overlap as i64,
                ..ScrubConfig::default()
            })),
            scrub_budget: RefCell::new(TokenBucket::new(
                cfg.scrub_rate as f64 / cfg.shards.max(1) as f64,
            )),
            scrub_apply_errors: Cell::new(0),
            scrub_answered: Cell::new((0, 0)),
            scrub_held: RefCell::new(VecDeque::new()),
            scrub_link: Cell::new((0, 0)),
            scrub_checked_at: Cell::new(0),
            create_retry: RefCell::new(HashMap::new()),
            create_failing: Cell::new(None),
        }
    }
}

impl Shard {
    fn repl(&self) -> &ReplShard {
        self.repl.as_ref().expect("replication enabled")
    }

    /// Deliver a message to shard `to` (locally when it is this shard).
    pub(super) async fn repl_send(&self, to: usize, msg: ReplMsg) {
        if to == self.id {
            let _ = self.repl().inbox.try_send(msg);
        } else if self.ctl.send(to, CtlMsg::Repl(msg)).await.is_err() {
            tracing::debug!(to, "replication message to a stopped shard dropped");
        }
    }

    /// A message from another shard: queue it for this shard's replication task.
    pub(super) async fn repl_deliver(&self, msg: ReplMsg) {
        if let Some(r) = &self.repl {
            let _ = r.inbox.try_send(msg);
        }
    }

    /// Start this shard's replication tasks (every shard), and on shard 0 the replica
    /// listener's accept loop and the slave link.
    pub(super) fn start_replication(self: &Rc<Self>, listener: Option<TcpListener>) {
        let Some(r) = &self.repl else { return };
        if let Some(store) = &self.store {
            // Flush visits and deletions feed the master side only: without a replica
            // port nobody reads them, so they are not collected (a clone of the header
            // per flushed file).
            if self.cfg.repl.port != 0 {
                store.enable_replication_events();
            }
            store.set_replica_mode(acting_slave());
        }
        r.master
            .borrow_mut()
            .seed_marks(replica_admin::take_loaded_for(self.id, self.count));
        let rx = r.inbox_rx.borrow_mut().take().expect("started once");
        let sh = self.clone();
        glommio::spawn_local(async move {
            while let Some(m) = rx.recv().await {
                sh.repl_handle(m).await;
            }
        })
        .detach();
        let sh = self.clone();
        glommio::spawn_local(async move { sh.repl_pump().await }).detach();
        if self.id == 0 {
            if let Some(l) = listener {
                let sh = self.clone();
                glommio::spawn_local(async move { sh.replica_accept(l).await }).detach();
            }
            if acting_slave() {
                ensure_slave_link(self);
            }
            let sh = self.clone();
            glommio::spawn_local(async move { sh.progress_loop().await }).detach();
        }
    }

    async fn repl_handle(self: &Rc<Self>, m: ReplMsg) {
        let r = self.repl();
        match m {
            ReplMsg::Open(conn) => {
                r.master.borrow_mut().open(conn);
                if let Some(store) = &self.store {
                    r.sweeps.borrow_mut().push_back((conn, store.list_files()));
                }
            }
            ReplMsg::Close(conn) => {
                r.master.borrow_mut().close(conn);
                r.sweeps.borrow_mut().retain(|(c, _)| *c != conn);
            }
            ReplMsg::Request {
                conn,
                name,
                from,
                n,
            } => {
                let Some(store) = &self.store else { return };
                let rel = String::from_utf8_lossy(&name).into_owned();
                let file = match store.lookup(&rel) {
                    Lookup::Found(id) => match store.load_header(id).await {
                        Ok(h) => {
                            let newest = store.newest_bucket_time(id).await.unwrap_or(0);
                            Some(((id.slot, id.gen), h.cfg_interval.max(1) as u32, newest))
                        }
                        Err(_) => None,
                    },
                    _ => None,
                };
                let gone = r.master.borrow_mut().request(conn, &name, from, n, file);
                if !gone {
                    if let Some(a) = requests_inflight(conn) {
                        a.fetch_sub(1, Ordering::SeqCst);
                    }
                }
            }
            ReplMsg::Out { conn, frames } => {
                let q = r.links.borrow().get(&conn).cloned();
                if let Some(q) = q {
                    q.push(&frames);
                }
            }
            ReplMsg::SlaveReset(gen) => {
                r.slave_gen.set(gen);
                r.slave.borrow_mut().reset();
                r.scrub.borrow_mut().link_lost();
                // A new link announces every file again.
                r.create_retry.borrow_mut().clear();
            }
            m @ (ReplMsg::DigestRequest { .. } | ReplMsg::RepairRequest { .. }) => {
                if control().master_suspended {
                    // Answered on resume, like every other answer (§2.14).
                    r.scrub_held.borrow_mut().push_back(m);
                } else {
                    self.scrub_answer(m).await;
                }
            }
            ReplMsg::Digest {
                gen,
                name,
                from,
                ranges,
            } => {
                if gen == r.slave_gen.get() {
                    self.scrub_compare(gen, &name, from, &ranges).await;
                }
                shared().slave_inflight.fetch_sub(1, Ordering::SeqCst);
            }
            ReplMsg::RepairData { gen, name, buckets } => {
                if gen == r.slave_gen.get() {
                    self.scrub_repair(gen, &name, buckets).await;
                }
                shared().slave_inflight.fetch_sub(1, Ordering::SeqCst);
            }

            ReplMsg::Discover(gen, h) => {
                if gen == r.slave_gen.get() {
                    self.slave_discover(gen, h).await;
                }
                shared().slave_inflight.fetch_sub(1, Ordering::SeqCst);
            }
            ReplMsg::Data { gen, name, buckets } => {
                if gen == r.slave_gen.get() {
                    self.slave_data(gen, name, buckets).await;
                }
                shared().slave_inflight.fetch_sub(1, Ordering::SeqCst);
            }
            ReplMsg::SlaveOut { gen, frames } => {
                let link = r.slave_link.borrow().clone();
                if let Some((g, q)) = link {
                    if g == gen {
                        q.push(&frames);
                    }
                }
            }
            ReplMsg::ReplicaMode(on) => {
                if let Some(store) = &self.store {
                    store.set_replica_mode(on);
                }
            }
            ReplMsg::SetResume(from) => r.slave.borrow_mut().cfg.resume_from = from,
            ReplMsg::SlaveFatal { gen, text } => {
                // The session notices it within 50 ms and closes with this text (the
                // send queue stays open so that the Error goes out first).
                *r.slave_fatal.borrow_mut() = Some((gen, text));
            }
        }
    }

    // ----- master side, every shard --------------------------------------------------

    /// The shard's replication loop: flush visits and deletions into the master state,
    /// announcements for new connections, answers within the send-queue budget, and
    /// the slave's subscriptions and retries.
    async fn repl_pump(self: &Rc<Self>) {
        let Some(store) = &self.store else { return };
        let r = self.repl();
        let mut last_sweep = clock::now();
        let mut ticks = 0u64;
        let mut last_checkpoint = clock::monotonic_secs();
        loop {
            glommio::timer::sleep(Duration::from_millis(20)).await;
            if SHUTDOWN.load(Ordering::SeqCst) {
                return;
            }
            let now = clock::now();
            ticks += 1;
            if ticks.is_multiple_of(50) && r.master.borrow_mut().take_marks_changed() {
                replica_admin::publish_late(self.id, r.master.borrow().marks());
            }
            if self.id == 0
                && self.cfg.repl.port != 0
                && clock::monotonic_secs() - last_checkpoint >= replica_admin::LATE_CHECKPOINT_SECS
            {
                last_checkpoint = clock::monotonic_secs();
                replica_admin::checkpoint_late().await;
            }
            let suspended = control().master_suspended;
            r.master.borrow_mut().suspended = suspended;
            if !suspended {
                let held = std::mem::take(&mut *r.scrub_held.borrow_mut());
                for m in held {
                    self.scrub_answer(m).await;
                }
            }
            // Flush visits and deletions.
            let ev = store.take_replication_events();
            let mut out: Vec<(u64, Pdu)> = Vec::new();
            {
                let mut m = r.master.borrow_mut();
                for id in ev.deleted {
                    m.deleted((id.slot, id.gen));
                }
                for v in &ev.visits {
                    let name = normalise_path(&v.rel);
                    out.extend(m.visit(
                        Visit {
                            file: (v.id.slot, v.id.gen),
                            name: name.as_deref(),
                            header: &v.header,
                            flushed_last: v.flushed_last,
                            dirty_low: v.dirty_low,
                        },
                        now,
                        &queue_bytes,
                    ));
                }
                m.wake_delayed(now);
                if now - last_sweep >= self.cfg.flush_secs.max(1) as i64 {
                    last_sweep = now;
                    r.stalled.set(m.sweep() as u64);
                }
            }
            // Announce the files of a new connection, a slice per tick.
            let job = r.sweeps.borrow_mut().front_mut().map(|(conn, files)| {
                let n = files.len().min(256);
                (*conn, files.drain(..n).collect::<Vec<_>>())
            });
            if let Some((conn, batch)) = job {
                r.sweeps.borrow_mut().retain(|(_, f)| !f.is_empty());
                for (rel, id) in batch {
                    let Ok(h) = store.load_header(id).await else {
                        continue;
                    };
                    let newest = store.newest_bucket_time(id).await.unwrap_or(0);
                    let name = normalise_path(&rel);
                    let mut m = r.master.borrow_mut();
                    out.extend(
                        m.visit(
                            Visit {
                                file: (id.slot, id.gen),
                                name: name.as_deref(),
                                header: &h,
                                flushed_last: newest,
                                dirty_low: i64::MAX,
                            },
                            now,
                            &queue_bytes,
                        )
                        .into_iter()
                        .filter(|(c, _)| *c == conn),
                    );
                }
            }
            let mut frames: HashMap<u64, Vec<u8>> = HashMap::new();
            for (conn, p) in out {
                p.encode(frames.entry(conn).or_default());
            }
            // Answers.
            let conns: Vec<u64> = r.master.borrow().connections().collect();
            for conn in conns {
                let buf = frames.entry(conn).or_default();
                self.answer(store, conn, buf).await;
            }
            for (conn, f) in frames {
                if !f.is_empty() {
                    self.repl_send(0, ReplMsg::Out { conn, frames: f }).await;
                }
            }
            self.slave_pump(store, now).await;
        }
    }

    /// Gone answers, owed Discovers and Data for one connection while its send queue
    /// is below the high mark.
    async fn answer(&self, store: &Store, conn: u64, buf: &mut Vec<u8>) {
        let r = self.repl();
        if r.master.borrow().suspended {
            return;
        }
        let budget = |buf: &Vec<u8>| queue_bytes(conn).saturating_add(buf.len()) < HIGH_MARK;
        let inflight = requests_inflight(conn);
        while budget(buf) {
            let gone = r.master.borrow_mut().next_gone(conn);
            match gone {
                Some(p) => {
                    p.encode(buf);
                    if let Some(a) = &inflight {
                        a.fetch_sub(1, Ordering::SeqCst);
                    }
                }
                None => break,
            }
        }
        let mut reads = 0;
        while budget(buf) && reads < 64 {
            let owed_turn = {
                let mut m = r.master.borrow_mut();
                m.has_owed(conn)
                    && (queue_bytes(conn) + buf.len() < m.cfg.discover_mark
                        || m.discover_turn(conn))
            };
            if owed_turn {
                let owed = r.master.borrow_mut().next_owed(conn);
                if let Some(((slot, gen), name)) = owed {
                    let id = istatd_storage::store::FileId { slot, gen };
                    if let Ok(h) = store.load_header(id).await {
                        Pdu::discover(&h, &name).encode(buf);
                    }
                }
                continue;
            }
            if !r.read_budget.borrow_mut().ready() {
                let (b, o, t) = r.read_stats.get();
                r.read_stats.set((b, o, t + 1));
                break;
            }
            let job = r.master.borrow_mut().next_read(conn);
            let Some(job) = job else { break };
            reads += 1;
            let id = istatd_storage::store::FileId {
                slot: job.file.0,
                gen: job.file.1,
            };
            let res = store
                .read_valid_buckets(id, job.start, job.end, job.max, MAX_SCAN_SLOTS)
                .await
                .map_err(|_| ());
            if let Ok((_, next)) = &res {
                // What the read scanned, in bytes of buckets.
                let iv = store.header(id).map_or(1, |h| h.cfg_interval.max(1) as i64);
                let slots = ((next - job.start) / iv).clamp(1, MAX_SCAN_SLOTS as i64);
                let bytes = slots as u64 * 32;
                r.read_budget.borrow_mut().spend(bytes as f64);
                let (b, o, t) = r.read_stats.get();
                r.read_stats.set((b + bytes, o + 1, t));
            }
            let data = r.master.borrow_mut().read_done(&job, res, clock::now());
            if let Some(p) = data {
                p.encode(buf);
            }
        }
    }

    /// The shard that owns the file of a wire name.
    fn owner_of(&self, name: &[u8]) -> usize {
        let key = counter_key(&String::from_utf8_lossy(name));
        shard_of(key.as_bytes(), self.count)
    }

    /// A DigestRequest or RepairRequest checked (the Error text when it is fatal), as
    /// the message for its file's shard.
    fn scrub_request(&self, conn: u64, p: Pdu) -> Result<(usize, ReplMsg), String> {
        match p {
            Pdu::DigestRequest { from, ranges, name } => {
                scrub::check_digest_request(from, ranges, &name)?;
                let owner = self.owner_of(&name);
                let m = ReplMsg::DigestRequest {
                    conn,
                    name,
                    from,
                    ranges,
                };
                Ok((owner, m))
            }
            Pdu::RepairRequest { from, n, name } => {
                scrub::check_repair_request(from, n, &name)?;
                let owner = self.owner_of(&name);
                let m = ReplMsg::RepairRequest {
                    conn,
                    name,
                    from,
                    n,
                };
                Ok((owner, m))
            }
            other => Err(format!(
                "Unhandled PDU id {} in {}",
                other.id(),
                link::CONNECTED
            )),
        }
    }

    // ----- master side, shard 0: the replica listener ---------------------------------

    async fn replica_accept(self: Rc<Self>, l: TcpListener) {
        let next = Rc::new(Cell::new(1u64));
        let by_peer: ByPeer = Rc::default();
        loop {
            let Some(conn) = super::accept_or_shutdown(&l).await else {
                return;
            };
            let Ok(stream) = conn else { continue };
            counters().m_accepted += 1;
            let gen = next.get();
            next.set(gen + 1);
            let sh = self.clone();
            let by_peer = by_peer.clone();
            glommio::spawn_local(async move { sh.serve_slave(stream, gen, by_peer).await })
                .detach();
        }
    }

    async fn serve_slave(self: Rc<Self>, stream: TcpStream, gen: u64, by_peer: ByPeer) {
        let keepalive = self.cfg.repl.keepalive.max(1) as i64;
        let timeout = self.cfg.repl.timeout.max(2) as i64;
        let mut io = LinkIo::new(stream, keepalive, timeout, false);
        let q = io.q.clone();
        let mut pdus = Vec::new();
        let mut connected = false;
        let mut peer_id = None;
        // This connection's Requests in flight to the shards (shared with them once
        // the handshake is done).
        let inflight = Arc::new(AtomicUsize::new(0));
        let reason: Option<String> = 'conn: loop {
            // Backpressure: too many Requests of this slave not yet handled (unknown
            // names whose answers wait for room): stop reading; the idle timer pauses.
            while inflight.load(Ordering::SeqCst) > REQUESTS_INFLIGHT_MAX
                && !q.closed.get()
                && !SHUTDOWN.load(Ordering::SeqCst)
            {
                glommio::timer::sleep(Duration::from_millis(2)).await;
                io.hb.paused_until(clock::monotonic_secs());
            }
            let limit = if connected {
                timeout
            } else {
                link::HANDSHAKE_TIMEOUT
            };
            let (n, res) = match io.read(limit, &mut pdus, |_, _| false).await {
                Ok(got) => got,
                Err(ReadEnd::Closed | ReadEnd::QueueClosed | ReadEnd::Stopped) => break None,
                Err(ReadEnd::Shutdown) => break Some("Shutting down".into()),
                Err(ReadEnd::Timeout) => {
                    counters().m_timeouts += 1;
                    break Some("Timeout".into());
                }
            };
            counters().m_bytes_received += n as u64;
            self.lb
                .borrow_mut()
                .add(super::Loopback::ReplicaEvents, pdus.len() as i64);
            for p in pdus.drain(..) {
                match p {
                    Pdu::Connect { version, id } if !connected => {
                        let s = shared();
                        let master_id = slave_master_id();
                        // Newest wins: an older connection of the same peer goes.
                        if let Some((_, old)) = by_peer.borrow_mut().remove(&id) {
                            old.close();
                        }
                        let free = (s.master_connections.load(Ordering::SeqCst) as u32)
                            < self.cfg.repl.max_slaves.max(1);
                        let max = self.cfg.repl.max_version();
                        match link::master_accept_upto(max, version, id, s.id, master_id, free) {
                            Ok(reply) => {
                                if let Pdu::Connect { version, .. } = &reply {
                                    io.set_version(*version);
                                }
                                q.push_pdu(&reply);
                                connected = true;
                                peer_id = Some(id);
                                by_peer.borrow_mut().insert(id, (gen, q.clone()));
                                let n = s.master_connections.fetch_add(1, Ordering::SeqCst) + 1;
                                self.lb
                                    .borrow_mut()
                                    .set(super::Loopback::ReplicaConnections, n as i64);
                                counters().m_handshakes += 1;
                                s.queues
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .insert(gen, q.bytes.clone());
                                s.requests
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .insert(gen, inflight.clone());
                                self.repl().links.borrow_mut().insert(gen, q.clone());
                                for to in 0..self.count {
                                    self.repl_send(to, ReplMsg::Open(gen)).await;
                                }
                                tracing::info!(conn = gen, peer = %id.str(), "replication slave connected");
                            }
                            Err(refusal) => {
                                let mut c = counters();
                                match refusal {
                                    link::Refusal::Version => c.m_rejected_version += 1,
                                    link::Refusal::SelfConnect => c.m_rejected_self += 1,
                                    link::Refusal::Cycle => c.m_rejected_cycle += 1,
                                    link::Refusal::TooMany => c.m_rejected_too_many += 1,
                                }
                                break 'conn Some(refusal.text().into());
                            }
                        }
                    }
                    Pdu::Request { from, n, name } if connected => {
                        match link::check_request(from, n, &name) {
                            Ok(RequestKind::Ping) => {
                                counters().m_pings += 1;
                                q.push_pdu(&Pdu::pong());
                            }
                            Ok(RequestKind::File { from, n }) => {
                                let owner = self.owner_of(&name);
                                inflight.fetch_add(1, Ordering::SeqCst);
                                self.repl_send(
                                    owner,
                                    ReplMsg::Request {
                                        conn: gen,
                                        name,
                                        from,
                                        n,
                                    },
                                )
                                .await;
                            }
                            Err(text) => {
                                counters().m_protocol_errors += 1;
                                break 'conn Some(text);
                            }
                        }
                    }
                    // Only decoded on a version 3 link.
                    p @ (Pdu::DigestRequest { .. } | Pdu::RepairRequest { .. }) if connected => {
                        match self.scrub_request(gen, p) {
                            Ok((owner, m)) => {
                                inflight.fetch_add(1, Ordering::SeqCst);
                                self.repl_send(owner, m).await;
                            }
                            Err(text) => {
                                counters().m_protocol_errors += 1;
                                break 'conn Some(text);
                            }
                        }
                    }
                    Pdu::Error(t) => {
                        counters().m_errors_received += 1;
                        tracing::warn!(text = %pdu::escape_text(&t), "replication slave sent an error");
                        break 'conn None;
                    }
                    other => {
                        counters().m_protocol_errors += 1;
                        let state = if connected {
                            link::CONNECTED
                        } else {
                            link::START
                        };
                        break 'conn Some(format!("Unhandled PDU id {} in {state}", other.id()));
                    }
                }
            }
            if let Err(e) = res {
                counters().m_protocol_errors += 1;
                let state = if connected {
                    link::CONNECTED
                } else {
                    link::START
                };
                break Some(e.text(state));
            }
        };
        if let Some(text) = &reason {
            tracing::warn!(conn = gen, error = %text, "replication connection closed");
        }
        io.finish(reason.as_deref()).await;
        if connected {
            let s = shared();
            let n = s.master_connections.fetch_sub(1, Ordering::SeqCst) - 1;
            self.lb
                .borrow_mut()
                .set(super::Loopback::ReplicaConnections, n as i64);
            s.queues
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&gen);
            s.requests
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&gen);
            self.repl().links.borrow_mut().remove(&gen);
            if let Some(id) = peer_id {
                let mut m = by_peer.borrow_mut();
                if m.get(&id).is_some_and(|(g, _)| *g == gen) {
                    m.remove(&id);
                }
            }
            for to in 0..self.count {
                self.repl_send(to, ReplMsg::Close(gen)).await;
            }
            tracing::info!(conn = gen, "replication slave disconnected");
        }
    }

    // ----- slave side, shard 0: the link to the master --------------------------------

    /// The slave link (shard 0): connects to the master named by the control state,
    /// backs off after failures, waits while suspended or not a slave, and starts over
    /// at once when the control state changes (repointed, resumed, resync).
    async fn slave_link(self: Rc<Self>) {
        let s = shared();
        let mut backoff = Backoff::with_max(self.cfg.repl.backoff_max as u64);
        let mut last_master: Option<UniqueId> = None;
        let mut gen = 0u64;
        loop {
            if SHUTDOWN.load(Ordering::SeqCst) {
                return;
            }
            let c = control();
            let Some((host, port)) = c.of.clone().filter(|_| !c.slave_suspended) else {
                counters().s_state = if c.slave_suspended {
                    "suspended"
                } else {
                    "disabled"
                };
                backoff.reset();
                glommio::timer::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let epoch = c.epoch;
            {
                let mut lc = counters();
                lc.s_state = "connecting";
                lc.s_down_since.get_or_insert_with(std::time::Instant::now);
            }
            counters().s_connect_attempts += 1;
            let stream = crate::net::connect_host(&host, port).await;
            let mut config_failure = false;
            if let Some(stream) = stream {
                gen += 1;
                s.slave_gen.store(gen, Ordering::SeqCst);
                let (outcome, master) = self.slave_session(stream, gen, last_master, epoch).await;
                if master.is_some() {
                    last_master = master;
                }
                config_failure = outcome;
                {
                    let mut c = counters();
                    c.s_disconnects += 1;
                    if master.is_some() {
                        c.s_down_since = Some(std::time::Instant::now());
                    }
                }
                s.slave_connected.store(0, Ordering::SeqCst);
                backoff.disconnected(clock::monotonic_secs());
            } else {
                counters().s_connect_failures += 1;
            }
            if control().epoch != epoch {
                // The operator changed something: no back-off.
                backoff.reset();
                continue;
            }
            if config_failure {
                backoff.to_max();
            }
            let delay = backoff.next_delay(rand::random::<f64>());
            {
                let mut c = counters();
                c.s_state = "backoff";
                c.s_backoff_seconds = delay;
            }
            let end = clock::monotonic_secs() + delay as i64;
            while clock::monotonic_secs() < end && control().epoch == epoch {
                if SHUTDOWN.load(Ordering::SeqCst) {
                    return;
                }
                glommio::timer::sleep(Duration::from_millis(100)).await;
            }
            counters().s_backoff_seconds = 0;
        }
    }

    /// One connection to the master. Returns whether it failed for a configuration
    /// reason (back off to the maximum), and the master's id if the handshake ran.
    async fn slave_session(
        self: &Rc<Self>,
        stream: TcpStream,
        gen: u64,
        last: Option<UniqueId>,
        epoch: u64,
    ) -> (bool, Option<UniqueId>) {
        let s = shared();
        let keepalive = self.cfg.repl.keepalive.max(1) as i64;
        let timeout = self.cfg.repl.timeout.max(2) as i64;
        let mut io = LinkIo::new(stream, keepalive, timeout, true);
        let q = io.q.clone();
        *self.repl().slave_link.borrow_mut() = Some((gen, q.clone()));
        *self.repl().slave_fatal.borrow_mut() = None;
        counters().s_state = "start";
        let max_version = self.cfg.repl.max_version();
        q.push_pdu(&Pdu::Connect {
            version: max_version,
            id: s.id,
        });
        let mut pdus = Vec::new();
        let mut master = None;
        let mut config_failure = false;
        let fatal = || {
            self.repl()
                .slave_fatal
                .borrow()
                .is_some_and(|(g, _)| g == gen)
        };
        let reason: Option<String> = 'conn: loop {
            // Backpressure: the shards apply what is in flight before more is read;
            // the idle timer does not run meanwhile.
            while s.slave_inflight.load(Ordering::SeqCst) > SLAVE_INFLIGHT_MAX {
                glommio::timer::sleep(Duration::from_millis(2)).await;
                let now = clock::monotonic_secs();
                io.hb.paused_until(now);
                if io.hb.should_ping(now) {
                    counters().s_pings_sent += 1;
                    q.push_pdu(&Pdu::ping(clock::now()));
                }
                if q.closed.get() || SHUTDOWN.load(Ordering::SeqCst) {
                    break;
                }
            }
            let limit = if master.is_some() {
                timeout
            } else {
                link::HANDSHAKE_TIMEOUT
            };
            let up = master.is_some();
            // Every 50 ms while waiting: stop when the operator changed something or
            // a shard found the master breaking the protocol; ping once connected.
            let tick = |hb: &mut Heartbeat, q: &SendQueue| {
                if control().epoch != epoch || fatal() {
                    return true;
                }
                if up && hb.should_ping(clock::monotonic_secs()) {
                    counters().s_pings_sent += 1;
                    q.push_pdu(&Pdu::ping(clock::now()));
                }
                false
            };
            let (n, res) = match io.read(limit, &mut pdus, tick).await {
                Ok(got) => got,
                Err(ReadEnd::Closed | ReadEnd::QueueClosed) => break None,
                Err(ReadEnd::Shutdown) => break Some("Shutting down".into()),
                Err(ReadEnd::Stopped) if control().epoch != epoch => {
                    break Some(control().close_reason.unwrap_or("Shutting down").into())
                }
                Err(ReadEnd::Stopped) => {
                    let text = self.repl().slave_fatal.borrow_mut().take().map(|f| f.1);
                    counters().s_protocol_errors += 1;
                    break Some(text.unwrap_or("Unexpected Data").into());
                }
                Err(ReadEnd::Timeout) => {
                    counters().s_timeouts += 1;
                    break Some("Timeout".into());
                }
            };
            counters().s_bytes_received += n as u64;
            for p in pdus.drain(..) {
                match p {
                    Pdu::Connect { version, id } if master.is_none() => {
                        if let Err(refusal) =
                            link::slave_check_reply_upto(max_version, version, id, s.id)
                        {
                            counters().s_handshake_failures += 1;
                            config_failure = refusal.is_configuration();
                            break 'conn Some(refusal.text().into());
                        }
                        master = Some(id);
                        counters().s_down_since = None;
                        if last.is_some_and(|l| l != id) {
                            counters().s_master_changes += 1;
                            tracing::info!("replication master changed or restarted");
                        }
                        counters().s_master_id = id.str();
                        counters().s_state = "connected";
                        io.set_version(version);
                        s.slave_version.store(version, Ordering::SeqCst);
                        s.slave_connected.store(1, Ordering::SeqCst);
                        for to in 0..self.count {
                            self.repl_send(to, ReplMsg::SlaveReset(gen)).await;
                        }
                        tracing::info!(master = %id.str(), "replication link to the master is up");
                    }
                    Pdu::Error(t) => {
                        counters().s_errors_received += 1;
                        let text = pdu::escape_text(&t);
                        if master.is_none() {
                            counters().s_handshake_failures += 1;
                            config_failure = matches!(
                                text.as_str(),
                                "Unsupported protocol version"
                                    | "I refuse to talk to myself"
                                    | "Replication cycle"
                            );
                        }
                        tracing::warn!(text = %text, "replication master sent an error");
                        break 'conn None;
                    }
                    Pdu::Discover(h) if master.is_some() => {
                        let owner = self.owner_of(pdu::discover_name(&h));
                        s.slave_inflight.fetch_add(1, Ordering::SeqCst);
                        self.repl_send(owner, ReplMsg::Discover(gen, h)).await;
                    }
                    Pdu::Data { buckets, name } if master.is_some() => {
                        if name.is_empty() {
                            if !buckets.is_empty() || !io.hb.pong() {
                                counters().s_protocol_errors += 1;
                                break 'conn Some("Unexpected Data".into());
                            }
                            continue;
                        }
                        let owner = self.owner_of(&name);
                        s.slave_inflight.fetch_add(1, Ordering::SeqCst);
                        self.repl_send(owner, ReplMsg::Data { gen, name, buckets })
                            .await;
                    }
                    // Only decoded on a version 3 link.
                    Pdu::Digest { from, ranges, name } if master.is_some() => {
                        let owner = self.owner_of(&name);
                        s.slave_inflight.fetch_add(1, Ordering::SeqCst);
                        let m = ReplMsg::Digest {
                            gen,
                            name,
                            from,
                            ranges,
                        };
                        self.repl_send(owner, m).await;
                    }
                    Pdu::RepairData { buckets, name } if master.is_some() => {
                        let owner = self.owner_of(&name);
                        s.slave_inflight.fetch_add(1, Ordering::SeqCst);
                        let m = ReplMsg::RepairData { gen, name, buckets };
                        self.repl_send(owner, m).await;
                    }
                    other => {
                        counters().s_protocol_errors += 1;
                        let state = if master.is_some() {
                            link::CONNECTED
                        } else {
                            link::START
                        };
                        break 'conn Some(format!("Unhandled PDU id {} in {state}", other.id()));
                    }
                }
            }
            if let Err(e) = res {
                counters().s_protocol_errors += 1;
                let state = if master.is_some() {
                    link::CONNECTED
                } else {
                    link::START
                };
                break Some(e.text(state));
            }
        };
        if reason.is_none() {
            tracing::info!("replication link to the master closed");
        }
        if let Some(text) = &reason {
            tracing::warn!(error = %text, "replication link closed");
        }
        io.finish(reason.as_deref()).await;
        *self.repl().slave_link.borrow_mut() = None;
        s.slave_version.store(0, Ordering::SeqCst);
        // Every shard drops the connection's file state.
        for to in 0..self.count {
            self.repl_send(to, ReplMsg::SlaveReset(0)).await;
        }
        counters().s_state = "backoff";
        (config_failure, master)
    }

    // ----- slave side, owning shards ---------------------------------------------------

    async fn slave_discover(self: &Rc<Self>, gen: u64, h: Box<[u8; HEADER_SIZE]>) {
        let Some(store) = &self.store else { return };
        let r = self.repl();
        let name = String::from_utf8_lossy(pdu::discover_name(&h)).into_owned();
        let local = match store.lookup(&name) {
            Lookup::Found(id) => match store.load_header(id).await {
                Ok(hd) => Local::Good(Box::new(hd)),
                Err(_) => Local::Bad,
            },
            Lookup::Bad => Local::Bad,
            Lookup::Absent => Local::Absent,
        };
        let action = r.slave.borrow_mut().discover(&h, &local);
        let hd = Header::parse_raw(&h[..]);
        match action {
            DiscoverAction::Rejected(why) => {
                tracing::warn!(file = %name, why, "replication: Discover skipped");
            }
            DiscoverAction::Mismatch => {
                tracing::warn!(file = %name, "replication: header differs from the local file's; left alone");
            }
            DiscoverAction::Nothing => {}
            DiscoverAction::Known => {
                if let Lookup::Found(id) = store.lookup(&name) {
                    let _ = store
                        .set_cumulative(
                            id,
                            hd.cumulative_sum,
                            hd.cumulative_sum_sq,
                            hd.cumulative_count,
                            hd.last_cumulative_clear_time,
                        )
                        .await;
                }
                r.slave.borrow_mut().queue(&name, false);
            }
            DiscoverAction::Create { aside } => {
                let retention = name.rsplit('/').next().unwrap_or("");
                if !self.cfg.retentions.iter().any(|x| x.name == retention) {
                    r.unknown_retention.set(r.unknown_retention.get() + 1);
                    if r.warned_retentions
                        .borrow_mut()
                        .insert(retention.to_string())
                    {
                        tracing::warn!(
                            retention,
                            "replication: the master has a retention this node does not configure; its files are kept all the same"
                        );
                    }
                }
                if aside {
                    if let Err(e) = store.move_aside(&name).await {
                        tracing::warn!(file = %name, error = %e, "replication: cannot move the local file aside");
                        return;
                    }
                }
                let slots = hd.page_count.saturating_mul(hd.page_size) / 32;
                let per_page = (PAGE_SIZE / 32) as i64;
                let params = CreateParams {
                    interval: hd.cfg_interval,
                    page_count: (slots + per_page - 1) / per_page,
                    flags: hd.flags,
                    zero_time: hd.file_create_time,
                    lambda: hd.lambda,
                    season: hd.season,
                    fixed_count: hd.fixed_count,
                    unit: c_str(&hd.unit),
                    name: counter_key(&name),
                };
                // `--replica-create-rate`: Discovers for new files wait here (shard 0
                // stops reading the link while too many are in flight).
                while !r.create_budget.borrow_mut().ready() {
                    glommio::timer::sleep(Duration::from_millis(5)).await;
                }
                r.create_budget.borrow_mut().spend(1.0);
                match store.create_file_like(&name, params).await {
                    Ok(id) => {
                        self.create_succeeded(&name);
                        let _ = store
                            .set_cumulative(
                                id,
                                hd.cumulative_sum,
                                hd.cumulative_sum_sq,
                                hd.cumulative_count,
                                hd.last_cumulative_clear_time,
                            )
                            .await;
                        r.slave.borrow_mut().queue(&name, true);
                    }
                    Err(e) => self.create_failed(name, h, &e.to_string()),
                }
            }
        }
        let _ = gen;
    }

    async fn slave_data(self: &Rc<Self>, gen: u64, name: Vec<u8>, buckets: Vec<Bucket>) {
        let Some(store) = &self.store else { return };
        let r = self.repl();
        let rel = String::from_utf8_lossy(&name).into_owned();
        let found = match store.lookup(&rel) {
            Lookup::Found(id) => store.load_header(id).await.ok().map(|h| (id, h)),
            _ => None,
        };
        let (interval, zero) = found
            .as_ref()
            .map_or((1, 0), |(_, h)| (h.cfg_interval as i64, h.file_create_time));
        let action = r
            .slave
            .borrow_mut()
            .data(&rel, buckets, interval, zero, clock::now());
        match action {
            Err(e) => {
                self.repl_send(
                    0,
                    ReplMsg::SlaveFatal {
                        gen,
                        text: e.text(),
                    },
                )
                .await;
            }
            Ok(DataAction::Done) => {}
            Ok(DataAction::Rediscover(h)) => {
                Box::pin(self.slave_discover(gen, h)).await;
            }
            Ok(DataAction::Apply { buckets }) => {
                let result = match &found {
                    Some((id, _)) => store
                        .put_buckets_overwrite(*id, &buckets)
                        .await
                        .map(|rep| (rep.written, rep.too_old))
                        .map_err(|_| ()),
                    None => Err(()),
                };
                let next =
                    r.slave
                        .borrow_mut()
                        .applied(&rel, &buckets, result, interval, clock::now());
                if next.is_none() && r.slave.borrow().apply_failing() {
                    tracing::error!(
                        "replication: most writes fail on this slave; closing the link"
                    );
                    self.repl_send(
                        0,
                        ReplMsg::SlaveFatal {
                            gen,
                            text: "Apply failing",
                        },
                    )
                    .await;
                }
                let pending = r.slave.borrow_mut().take_pending(&rel);
                if let Some(h) = pending {
                    Box::pin(self.slave_discover(gen, h)).await;
                }
                if let Some(p) = next {
                    self.repl_send(
                        0,
                        ReplMsg::SlaveOut {
                            gen,
                            frames: p.to_frame(),
                        },
                    )
                    .await;
                }
            }
        }
    }

    /// A local file could not be created: try its Discover again later, say so in
    /// the log once (and once a minute while it lasts), count it.
    fn create_failed(&self, name: String, h: Box<[u8; HEADER_SIZE]>, error: &str) {
        let r = self.repl();
        r.slave.borrow_mut().create_failed(&name);
        let now = clock::now();
        let mut retry = r.create_retry.borrow_mut();
        let delay = retry.get(&name).map_or(CREATE_RETRY_FIRST, |(_, _, d)| {
            (d * 2).min(CREATE_RETRY_MAX)
        });
        retry.insert(name.clone(), (h, now + delay, delay));
        match r.create_failing.get() {
            None => {
                r.create_failing.set(Some((now, now)));
                tracing::error!(file = %name, error, "replication: cannot create files; this slave stops applying them and tries again (replication.slave.create_errors)");
            }
            Some((since, said)) if now - said >= 60 => {
                r.create_failing.set(Some((since, now)));
                tracing::error!(
                    waiting = retry.len(),
                    error,
                    seconds = now - since,
                    "replication: still cannot create files"
                );
            }
            Some(_) => {}
        }
    }

    fn create_succeeded(&self, name: &str) {
        let r = self.repl();
        let was_waiting = r.create_retry.borrow_mut().remove(name).is_some();
        if was_waiting && r.create_retry.borrow().is_empty() {
            if let Some((since, _)) = r.create_failing.take() {
                tracing::warn!(
                    seconds = clock::now() - since,
                    "replication: files can be created again; applying resumes"
                );
            }
        }
    }

    /// Subscriptions (paced by `--replica-subscribe-rate`) and due retries.
    async fn slave_pump(self: &Rc<Self>, store: &Store, now: i64) {
        let r = self.repl();
        let gen = r.slave_gen.get();
        if gen == 0 {
            return;
        }
        let per_tick =
            ((self.cfg.repl.subscribe_rate.max(1) as usize / self.count.max(1)) / 50).max(1);
        let mut frames = Vec::new();
        for _ in 0..per_tick {
            let next = r.slave.borrow_mut().next_queued();
            let Some(name) = next else { break };
            let Lookup::Found(id) = store.lookup(&name) else {
                continue;
            };
            let Ok(h) = store.load_header(id).await else {
                continue;
            };
            let newest = store.newest_bucket_time(id).await.unwrap_or(0);
            let p =
                r.slave
                    .borrow_mut()
                    .subscribe(&name, newest, h.cfg_interval as i64, h.capacity());
            if let Some(p) = p {
                p.encode(&mut frames);
            }
        }
        for p in r.slave.borrow_mut().due_retries(now) {
            p.encode(&mut frames);
        }
        // Creates that failed, a few per tick (each re-runs its Discover).
        let due: Vec<(String, Box<[u8; HEADER_SIZE]>)> = {
            let retry = r.create_retry.borrow();
            retry
                .iter()
                .filter(|(_, (_, at, _))| *at <= now)
                .take(16)
                .map(|(n, (h, _, _))| (n.clone(), h.clone()))
                .collect()
        };
        for (name, h) in due {
            if let Some(e) = r.create_retry.borrow_mut().get_mut(&name) {
                // Not due again before a new failure sets its delay.
                e.1 = i64::MAX;
            }
            self.slave_discover(gen, h).await;
            let mut retry = r.create_retry.borrow_mut();
            if retry.get(&name).is_some_and(|e| e.1 == i64::MAX) {
                // Created, or the Discover no longer asks for a creation.
                retry.remove(&name);
            }
        }
        self.scrub_pump(store, now, &mut frames).await;
        if !frames.is_empty() {
            self.repl_send(0, ReplMsg::SlaveOut { gen, frames }).await;
        }
    }

    /// Progress lines (replication.md §2.19): the slave every 10 s while it catches up
    /// or Discovers arrive, and once when it has caught up; the master every 60 s.
    async fn progress_loop(self: Rc<Self>) {
        let get =
            |v: &[(String, i64)], k: &str| v.iter().find(|(n, _)| n == k).map_or(0, |(_, x)| *x);
        let mut prev: Vec<(String, i64)> = Vec::new();
        let mut prev_at = std::time::Instant::now();
        let mut was_behind = false;
        let mut since_connect: Option<std::time::Instant> = None;
        let mut last_master_line = std::time::Instant::now();
        let mut prev_sent = 0i64;
        let mut last_scrub_line = std::time::Instant::now();
        let mut prev_scrub_ranges = 0i64;
        loop {
            glommio::timer::sleep(Duration::from_secs(10)).await;
            if SHUTDOWN.load(Ordering::SeqCst) {
                return;
            }
            let (_, v) = self.gather_stats().await;
            let dt = prev_at.elapsed().as_secs_f64().max(0.001);
            prev_at = std::time::Instant::now();
            if acting_slave() {
                let connected = shared().slave_connected.load(Ordering::SeqCst) != 0;
                if connected && since_connect.is_none() {
                    since_connect = Some(std::time::Instant::now());
                } else if !connected {
                    since_connect = None;
                }
                let behind = get(&v, "replication.slave.behind");
                let discovered = get(&v, "replication.slave.discover_received");
                let written = get(&v, "replication.slave.buckets_written");
                let rate = (written - get(&prev, "replication.slave.buckets_written")) as f64 / dt;
                if behind > 0 || discovered > get(&prev, "replication.slave.discover_received") {
                    tracing::info!(
                        discovered,
                        subscribed = get(&v, "replication.slave.subscribed"),
                        behind,
                        pending = get(&v, "replication.slave.pending_subscribe"),
                        buckets_per_s = rate.round(),
                        tail_lag_s = get(&v, "replication.slave.tail_lag_seconds"),
                        "replication catch-up"
                    );
                } else if was_behind {
                    tracing::info!(
                        seconds_since_connect = since_connect.map_or(0, |t| t.elapsed().as_secs()),
                        "replication caught up"
                    );
                }
                was_behind = behind > 0;
                // A scrub pass: a line a minute while it runs, one when it ends.
                let running = get(&v, "replication.scrub.running") > 0;
                let was_running = get(&prev, "replication.scrub.running") > 0;
                let ranges = get(&v, "replication.scrub.ranges_checked");
                let line_due = last_scrub_line.elapsed() >= Duration::from_secs(60);
                if (running && line_due) || (was_running && !running) {
                    let dt = last_scrub_line.elapsed().as_secs_f64().max(0.001);
                    last_scrub_line = std::time::Instant::now();
                    let per_s = (ranges - prev_scrub_ranges) as f64 * 64.0 / dt;
                    prev_scrub_ranges = ranges;
                    tracing::info!(
                        files_done = get(&v, "replication.scrub.files_done"),
                        files_total = get(&v, "replication.scrub.files_total"),
                        ranges_checked = ranges,
                        ranges_differing = get(&v, "replication.scrub.ranges_differing"),
                        ranges_repaired = get(&v, "replication.scrub.ranges_repaired"),
                        buckets_per_s = per_s.round(),
                        "{}",
                        if running {
                            "replication scrub"
                        } else {
                            "replication scrub pass ended"
                        }
                    );
                } else if !running {
                    last_scrub_line = std::time::Instant::now();
                    prev_scrub_ranges = ranges;
                }
            }
            if self.cfg.repl.port != 0 && last_master_line.elapsed() >= Duration::from_secs(60) {
                let sent = get(&v, "replication.master.buckets_sent");
                let dt = last_master_line.elapsed().as_secs_f64();
                last_master_line = std::time::Instant::now();
                let conns = shared().master_connections.load(Ordering::SeqCst);
                if conns > 0 {
                    tracing::info!(
                        connections = conns,
                        announced = get(&v, "replication.master.discover_sent"),
                        parked = get(&v, "replication.master.parked"),
                        ready = get(&v, "replication.master.ready"),
                        buckets_per_s = ((sent - prev_sent) as f64 / dt).round(),
                        "replication master"
                    );
                }
                prev_sent = sent;
            }
            prev = v;
        }
    }

    /// At shutdown, after the store's final flush: its flush visits still count for
    /// the late marks, which are then published for the final `.replication_late`.
    pub(super) fn repl_final(&self) {
        let (Some(r), Some(store)) = (&self.repl, &self.store) else {
            return;
        };
        let ev = store.take_replication_events();
        let mut m = r.master.borrow_mut();
        for id in ev.deleted {
            m.deleted((id.slot, id.gen));
        }
        for v in &ev.visits {
            let name = normalise_path(&v.rel);
            m.visit(
                Visit {
                    file: (v.id.slot, v.id.gen),
                    name: name.as_deref(),
                    header: &v.header,
                    flushed_last: v.flushed_last,
                    dirty_low: v.dirty_low,
                },
                clock::now(),
                &|_| usize::MAX,
            );
        }
        replica_admin::publish_late(self.id, m.marks());
    }

    /// `replication.*` metrics of this shard (summed by shard 0).
    pub(super) fn repl_stats(&self, out: &mut Vec<(String, i64)>) {
        let Some(r) = &self.repl else { return };
        let m = r.master.borrow();
        let c = &m.counters;
        let (parked, ready) = m.parked_ready();
        for (k, v) in [
            ("discover_sent", c.discover_sent),
            ("discover_deferred", c.discover_deferred),
            ("names_too_long", c.names_too_long),
            ("requests", c.requests),
            ("requests_unknown_file", c.requests_unknown_file),
            ("requests_replaced", c.requests_replaced),
            ("gone_dropped", c.gone_dropped),
            ("late_seeded", c.late_seeded),
            ("data_sent", c.data_sent),
            ("buckets_sent", c.buckets_sent),
            ("resent_buckets", c.resent_buckets),
            ("read_errors", c.read_errors),
            ("read_bytes", r.read_stats.get().0),
            ("read_ops", r.read_stats.get().1),
            ("read_throttled", r.read_stats.get().2),
            ("stalled", r.stalled.get()),
            ("late_marks", m.late_marks() as u64),
            ("parked", parked as u64),
            ("ready", ready as u64),
            ("state_bytes", m.state_bytes() as u64),
        ] {
            out.push((format!("replication.master.{k}"), v as i64));
        }
        let sl = r.slave.borrow();
        let c = &sl.counters;
        let (subscribed, behind, errors, rejected, queued) = sl.gauges();
        for (k, v) in [
            ("discover_received", c.discover_received),
            ("discover_rejected", c.discover_rejected),
            ("header_mismatch", c.header_mismatch),
            ("unknown_retention", r.unknown_retention.get()),
            ("incarnation_changed", c.incarnation_changed),
            ("bad_local_files", c.bad_local_files),
            ("files_created", c.files_created),
            ("files_gone", c.files_gone),
            ("apply_errors", c.apply_errors),
            ("create_errors", c.create_errors),
            ("create_waiting", r.create_retry.borrow().len() as u64),
            ("retries", c.retries),
            ("requests_sent", c.requests_sent),
            ("data_received", c.data_received),
            ("buckets_received", c.buckets_received),
            ("buckets_written", c.buckets_written),
            ("buckets_rejected", c.buckets_rejected),
            ("buckets_too_old", c.buckets_too_old),
            ("subscribed", subscribed as u64),
            ("behind", behind as u64),
            ("files_in_error", errors as u64),
            ("rejected", rejected as u64),
            ("pending_subscribe", queued as u64),
            ("state_bytes", sl.state_bytes() as u64),
            ("bytes_behind", sl.buckets_behind() * 32),
        ] {
            out.push((format!("replication.slave.{k}"), v as i64));
        }
        out.push(("replication.slave.tail_lag_seconds".into(), c.tail_lag));
        // Shards that never got Data report no age (the merge keeps the minimum).
        if c.last_data_at > 0 {
            let age = (clock::now() - c.last_data_at).max(0);
            out.push(("replication.slave.last_data_age_seconds".into(), age));
        }
        drop(sl);
        self.scrub_stats(out);
    }
}

/// This node's own master's id, when it is a slave with a completed handshake.
fn slave_master_id() -> Option<UniqueId> {
    let c = counters();
    if c.s_master_id.is_empty() {
        return None;
    }
    let hex: String = c.s_master_id.chars().filter(|c| *c != ':').collect();
    let mut b = [0u8; 16];
    for (i, chunk) in hex.as_bytes().chunks(2).enumerate().take(16) {
        b[i] = u8::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
    }
    Some(UniqueId(b))
}

/// Link-level metrics (shard 0) for `stats` and `/metrics`.
pub fn link_stats(out: &mut Vec<(String, i64)>) {
    let s = shared();
    let c = counters().clone();
    for (k, v) in [
        (
            "master.connections",
            s.master_connections.load(Ordering::SeqCst) as u64,
        ),
        ("master.accepted", c.m_accepted),
        ("master.handshakes", c.m_handshakes),
        ("master.rejected_version", c.m_rejected_version),
        ("master.rejected_self", c.m_rejected_self),
        ("master.rejected_cycle", c.m_rejected_cycle),
        ("master.rejected_too_many", c.m_rejected_too_many),
        ("master.protocol_errors", c.m_protocol_errors),
        ("master.errors_received", c.m_errors_received),
        ("master.timeouts", c.m_timeouts),
        ("master.pings", c.m_pings),
        ("master.unclean_starts", replica_admin::unclean_starts()),
        ("master.bytes_sent", c.m_bytes_sent),
        ("master.bytes_received", c.m_bytes_received),
        (
            "slave.connected",
            s.slave_connected.load(Ordering::SeqCst) as u64,
        ),
        ("slave.connect_attempts", c.s_connect_attempts),
        ("slave.connect_failures", c.s_connect_failures),
        ("slave.handshake_failures", c.s_handshake_failures),
        ("slave.disconnects", c.s_disconnects),
        ("slave.backoff_seconds", c.s_backoff_seconds),
        ("slave.master_changes", c.s_master_changes),
        ("slave.protocol_errors", c.s_protocol_errors),
        ("slave.errors_received", c.s_errors_received),
        ("slave.timeouts", c.s_timeouts),
        ("slave.pings_sent", c.s_pings_sent),
        ("slave.bytes_sent", c.s_bytes_sent),
        ("slave.bytes_received", c.s_bytes_received),
    ] {
        out.push((format!("replication.{k}"), v as i64));
    }
}

/// The `replication.status` lines.
pub fn status_lines(cfg: &ReplConfig, c: &Control, extras: &[(String, i64)]) -> String {
    let s = shared();
    let lc = counters().clone();
    let get = |k: &str| extras.iter().find(|(n, _)| n == k).map_or(0, |(_, v)| *v);
    let master = cfg.port != 0;
    let slave = c.of.is_some();
    let role = match (master, slave, c.promoted.is_some()) {
        (_, false, true) => "promoted",
        (true, true, _) => "master+slave",
        (true, false, _) => "master",
        (false, true, _) => "slave",
        (false, false, _) => "none",
    };
    let mut out = format!("role={role}\r\nid={}\r\n", s.id.str());
    if master {
        out.push_str(&format!(
            "master.suspended={}\r\nmaster.connections={}\r\nmaster.late_marks={}\r\n",
            u8::from(c.master_suspended),
            s.master_connections.load(Ordering::SeqCst),
            get("replication.master.late_marks")
        ));
    }
    if let Some((h, p)) = &c.of {
        // Never a lag of 0 while the link is down: "down" and for how long.
        let connected = s.slave_connected.load(Ordering::SeqCst) != 0;
        let (lag, down) = if connected {
            (get("replication.slave.tail_lag_seconds").to_string(), 0)
        } else {
            (
                "down".to_string(),
                lc.s_down_since.map_or(0, |t| t.elapsed().as_secs()),
            )
        };
        out.push_str(&format!(
            "slave.source={h}:{p}\r\nslave.state={}\r\nslave.master_id={}\r\nslave.suspended={}\r\nslave.subscribed={}\r\nslave.behind={}\r\nslave.errors={}\r\nslave.from={}\r\n",
            lc.s_state,
            lc.s_master_id,
            u8::from(c.slave_suspended),
            get("replication.slave.subscribed"),
            get("replication.slave.behind"),
            get("replication.slave.files_in_error"),
            c.from.map(|f| f.to_string()).unwrap_or_default(),
        ));
        out.push_str(&format!(
            "slave.lag_seconds={lag}\r\nslave.down_seconds={down}\r\nslave.bytes_behind={}\r\nslave.create_waiting={}\r\n",
            get("replication.slave.bytes_behind"),
            get("replication.slave.create_waiting")
        ));
    }
    if let Some(m) = &c.of_marker {
        out.push_str(&format!(
            "of.source={}\r\nof.from={}\r\nof.at={}\r\n",
            m.source, m.extra, m.at
        ));
    }
    if let Some(m) = &c.promoted {
        out.push_str(&format!(
            "promoted.at={}\r\npromoted.from={}\r\n",
            m.at, m.source
        ));
    }
    out
}

/// `replication.scrub` lines: where the scrub stands on this node, from the summed
/// `replication.scrub.*` metrics of its shards.
pub fn scrub_lines(cfg: &ReplConfig, extras: &[(String, i64)]) -> String {
    let get = |k: &str| {
        extras
            .iter()
            .find(|(n, _)| n == &format!("replication.scrub.{k}"))
            .map_or(0, |(_, v)| *v)
    };
    let version = shared().slave_version.load(Ordering::SeqCst);
    let state = if cfg.scrub_rate == 0 {
        "off"
    } else if get("running") > 0 && version < pdu::VERSION_SCRUB {
        // A pass waits for a version 3 link.
        "waiting"
    } else if get("running") > 0 {
        "running"
    } else if get("stopped") > 0 {
        "stopped"
    } else if get("passes_done") > 0 {
        "done"
    } else {
        "idle"
    };
    let mut out = format!(
        "scrub.state={state}\r\nscrub.rate={}\r\nscrub.interval={}\r\nscrub.link_version={version}\r\n",
        cfg.scrub_rate, cfg.scrub_interval
    );
    for k in [
        "passes_started",
        "passes_done",
        "files_done",
        "files_total",
        "files_missing",
        "ranges_checked",
        "ranges_differing",
        "ranges_repaired",
        "buckets_repaired",
        "apply_errors",
        "bytes",
    ] {
        out.push_str(&format!("scrub.{k}={}\r\n", get(k)));
    }
    out
}

/// The id of the master of the last handshake (empty when none).
pub fn master_id_text() -> String {
    counters().s_master_id.clone()
}

/// Start the slave link task on shard 0 unless it runs.
pub fn ensure_slave_link(sh: &Rc<Shard>) {
    let Some(r) = &sh.repl else { return };
    if sh.id != 0 || r.link_running.replace(true) {
        return;
    }
    let sh = sh.clone();
    glommio::spawn_local(async move { sh.slave_link().await }).detach();
}

impl Shard {
    /// `replication.resync PATH[,from=]` on the file's shard.
    pub(super) fn resync_file(&self, path: &str, from: Option<i64>) -> Rep {
        let Some(r) = &self.repl else {
            return Rep::Failed("unknown file".into());
        };
        match r.slave.borrow_mut().resync(path, from) {
            Ok(()) => Rep::Done,
            Err(e) => Rep::Failed(e.into()),
        }
    }
}
