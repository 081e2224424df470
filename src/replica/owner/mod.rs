//! What every shard does for replication: the state of its own files on the master
//! side ([`master`]: announcements, answers within the connection's window) and on the
//! slave side ([`slave`]: creation, apply, subscriptions; [`scrub`]: the anti-entropy
//! scrub), with their storage reads and writes. Messages from the coordinator are
//! handled in arrival order on one task, so per-file order is kept; a second task
//! paces the periodic work.

pub mod master;
pub mod scrub;
pub mod slave;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use istatd_replication::master::MAX_SCAN_SLOTS;
use istatd_storage::format::Bucket;
use istatd_storage::store::{FileId, Lookup, Store};

use super::messages::{Mark, ToCoordinator, ToOwner};
use super::pacing::TokenBucket;
use super::ReplStart;
use crate::clock;
use crate::daemon::{Event, ShardCore};

/// Files whose slave-link PDUs are applied at once per shard.
const APPLY_CONCURRENCY: usize = 32;

pub struct Owner {
    core: Rc<ShardCore>,
    inbox: LocalSender<ToOwner>,
    inbox_rx: RefCell<Option<LocalReceiver<ToOwner>>>,
    /// Files with PDUs being applied, and those waiting behind for the same file.
    applying: RefCell<HashMap<Vec<u8>, VecDeque<ToOwner>>>,
    /// Says that a file's PDUs are applied (room for another, or the end of a drain).
    applied_tx: LocalSender<()>,
    applied_rx: LocalReceiver<()>,
    pub master: Rc<master::MasterSide>,
    pub slave: Rc<slave::SlaveSide>,
    pub scrub: Rc<scrub::ScrubSide>,
    acting_slave_at_start: bool,
}

impl Owner {
    pub fn new(core: Rc<ShardCore>, start: &ReplStart) -> Rc<Owner> {
        // Unbounded so that the control-mesh receiver never waits on it (two shards
        // waiting on each other's full channels would deadlock); what crosses is
        // bounded at the sources: the coordinator stops reading a link while too many
        // file PDUs or Requests are in flight, and answers stay within the windows.
        let (tx, rx) = local_channel::new_unbounded();
        let (applied_tx, applied_rx) = local_channel::new_bounded(1);
        let marks = start
            .late
            .per_shard
            .get(core.id)
            .cloned()
            .unwrap_or_default();
        let master = Rc::new(master::MasterSide::new(core.clone(), marks));
        let slave = Rc::new(slave::SlaveSide::new(core.clone()));
        let scrub = Rc::new(scrub::ScrubSide::new(core.clone(), slave.clone()));
        Rc::new(Owner {
            core,
            inbox: tx,
            inbox_rx: RefCell::new(Some(rx)),
            applying: RefCell::new(HashMap::new()),
            applied_tx,
            applied_rx,
            master,
            slave,
            scrub,
            acting_slave_at_start: start.control.acting_slave(),
        })
    }

    /// A message from the coordinator (never waits). Room given back in a send window
    /// is taken at once: queued behind Requests whose storage lookups wait on the disk,
    /// it would hold answers back for no reason.
    pub fn deliver(&self, m: ToOwner) {
        match m {
            ToOwner::Credit { conn, bytes } => self.master.credit(conn, bytes),
            m => {
                let _ = self.inbox.try_send(m);
            }
        }
    }

    /// Start the message task and the pump.
    pub fn start(self: &Rc<Self>) {
        if let Some(store) = &self.core.store {
            // Flush visits and deletions feed the master side only: without a replica
            // port nobody reads them, so they are not collected.
            if self.core.cfg.repl.port != 0 {
                store.enable_replication_events();
            }
            store.set_replica_mode(self.acting_slave_at_start);
        }
        let rx = self.inbox_rx.borrow_mut().take().expect("started once");
        let me = self.clone();
        glommio::spawn_local(async move { me.dispatch(rx).await }).detach();
        let me = self.clone();
        glommio::spawn_local(async move { me.pump().await }).detach();
        let master = self.master.clone();
        glommio::spawn_local(async move { master.run().await }).detach();
    }

    /// The message loop. The slave link's file PDUs of different files are applied
    /// concurrently (their storage reads and writes overlap), those of one file in
    /// arrival order; every other message waits until they are all applied, so that a
    /// new link or a mode change never meets a half-applied PDU.
    async fn dispatch(self: Rc<Self>, rx: LocalReceiver<ToOwner>) {
        while let Some(m) = rx.recv().await {
            match m.file_pdu_name().map(<[u8]>::to_vec) {
                Some(name) => {
                    if let Some(waiting) = self.applying.borrow_mut().get_mut(&name) {
                        waiting.push_back(m);
                        continue;
                    }
                    while self.applying.borrow().len() >= APPLY_CONCURRENCY {
                        let _ = self.applied_rx.recv().await;
                    }
                    self.applying
                        .borrow_mut()
                        .insert(name.clone(), VecDeque::new());
                    let me = self.clone();
                    glommio::spawn_local(async move { me.apply_file(name, m).await }).detach();
                }
                None => {
                    if !m.is_master_side() {
                        while !self.applying.borrow().is_empty() {
                            let _ = self.applied_rx.recv().await;
                        }
                    }
                    self.handle(m).await;
                }
            }
            if self.inbox.len() == 0 {
                self.slave.flush_out().await;
            }
        }
    }

    /// Apply one file's PDUs, this one and those that arrived for it meanwhile.
    async fn apply_file(&self, name: Vec<u8>, first: ToOwner) {
        let mut next = Some(first);
        while let Some(m) = next {
            self.handle(m).await;
            next = self
                .applying
                .borrow_mut()
                .get_mut(&name)
                .and_then(VecDeque::pop_front);
        }
        self.applying.borrow_mut().remove(&name);
        let _ = self.applied_tx.try_send(());
        if self.inbox.len() == 0 {
            self.slave.flush_out().await;
        }
    }

    async fn handle(&self, m: ToOwner) {
        match m {
            ToOwner::MasterOpen(conn) => self.master.open(conn),
            ToOwner::MasterClose(conn) => self.master.close(conn),
            ToOwner::Request {
                conn,
                name,
                from,
                n,
            } => self.master.request(conn, name, from, n).await,
            ToOwner::Credit { conn, bytes } => self.master.credit(conn, bytes),
            ToOwner::MasterSuspended(on) => self.master.set_suspended(on),
            m @ (ToOwner::DigestRequest { .. } | ToOwner::RepairRequest { .. }) => {
                self.master.scrub_request(m).await
            }
            ToOwner::SlaveLink { gen, version } => {
                self.slave.link(gen, version);
                self.scrub.link_lost();
            }
            ToOwner::Discover(gen, h) => {
                if gen == self.slave.gen() {
                    self.slave.discover_from_link(gen, h).await;
                }
                self.slave.applied(gen);
            }
            ToOwner::Data { gen, name, buckets } => {
                if gen == self.slave.gen() {
                    self.slave.data(gen, name, buckets).await;
                }
                self.slave.applied(gen);
            }
            ToOwner::Digest {
                gen,
                name,
                from,
                ranges,
            } => {
                if gen == self.slave.gen() {
                    self.scrub.compare(gen, &name, from, &ranges).await;
                }
                self.slave.applied(gen);
            }
            ToOwner::RepairData { gen, name, buckets } => {
                if gen == self.slave.gen() {
                    self.scrub.repair(gen, &name, buckets).await;
                }
                self.slave.applied(gen);
            }
            ToOwner::ReplicaMode(on) => {
                if let Some(store) = &self.core.store {
                    if on {
                        if let Err(e) = store.enter_replica_mode(clock::now()).await {
                            tracing::error!(error = %e, "closing event windows before replicating");
                            store.set_replica_mode(true);
                        }
                    } else {
                        store.set_replica_mode(false);
                        self.slave.release();
                    }
                }
            }
            ToOwner::SetResume(from) => self.slave.set_resume(from),
            ToOwner::ResyncNextLink(from) => self.slave.resync_next_link(from),
        }
    }

    /// Every 20 ms: the slave side's subscriptions, retries and scrub steps; once a
    /// second the late marks. (The master side's pump runs on its own, woken by room in
    /// its windows and by Requests.)
    async fn pump(&self) {
        if self.core.store.is_none() {
            return;
        }
        let mut ticks = 0u64;
        while !self.core.shutdown.sleep(Duration::from_millis(20)).await {
            let now = clock::now();
            ticks += 1;
            if ticks.is_multiple_of(50) {
                if let Some(marks) = self.master.changed_marks() {
                    let m = ToCoordinator::LateMarks {
                        shard: self.core.id,
                        marks,
                    };
                    self.core.send_event(0, Event::ToCoordinator(m)).await;
                }
            }
            self.slave.pump(now).await;
            self.scrub.pump(now).await;
            self.slave.flush_out().await;
        }
    }

    /// At shutdown, after the store's final flush: its flush visits still count for
    /// the late marks, which the shard gives back for the final `.replication_late`.
    pub fn final_marks(&self) -> Vec<Mark> {
        self.master.final_marks()
    }

    /// `replication.*` metrics of this shard (summed by shard 0).
    pub fn stats(&self, out: &mut Vec<(String, i64)>) {
        self.master.stats(out);
        self.slave.stats(out);
        self.scrub.stats(out, self.master.scrub_answered());
    }
}

/// Bucket reads of the master side, paced by this shard's share of
/// `--replica-read-rate` (bytes of buckets scanned per second).
pub struct ReadPacing {
    budget: RefCell<TokenBucket>,
    /// Bytes scanned, reads, and times a read waited for the budget.
    stats: Cell<(u64, u64, u64)>,
}

impl ReadPacing {
    pub fn new(rate: u64, shards: usize) -> ReadPacing {
        ReadPacing {
            budget: RefCell::new(TokenBucket::share(rate, shards)),
            stats: Cell::new((0, 0, 0)),
        }
    }

    pub fn ready(&self) -> bool {
        self.budget.borrow_mut().ready()
    }

    pub fn throttled(&self) {
        let (b, o, t) = self.stats.get();
        self.stats.set((b, o, t + 1));
    }

    /// A read from `start` that went on to `next` in a file of `interval` seconds.
    pub fn spend(&self, start: i64, next: i64, interval: i64) {
        let slots = ((next - start) / interval.max(1)).clamp(1, MAX_SCAN_SLOTS as i64);
        let bytes = slots as u64 * 32;
        self.budget.borrow_mut().spend(bytes as f64);
        let (b, o, t) = self.stats.get();
        self.stats.set((b + bytes, o + 1, t));
    }

    pub fn stats(&self) -> (u64, u64, u64) {
        self.stats.get()
    }
}

/// A test hook read from the environment: tests make a bound small or a disk slow
/// to reach, on a few files, what a store of hundreds of thousands does.
fn test_knob<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Valid buckets of a file in [from, end), in reads of at most [`MAX_SCAN_SLOTS`]
/// slots; reads spend `pacing` when given.
pub async fn read_range(
    store: &Store,
    id: FileId,
    interval: i64,
    from: i64,
    end: i64,
    pacing: Option<&ReadPacing>,
) -> Result<Vec<Bucket>, ()> {
    let mut out = Vec::new();
    let mut at = from;
    while at < end {
        if let Some(p) = pacing {
            while !p.ready() {
                glommio::timer::sleep(Duration::from_millis(5)).await;
            }
        }
        let (b, next) = store
            .read_valid_buckets(id, at, end - 1, MAX_SCAN_SLOTS, MAX_SCAN_SLOTS)
            .await
            .map_err(|_| ())?;
        if let Some(p) = pacing {
            p.spend(at, next, interval);
        }
        out.extend(b);
        if next <= at {
            break;
        }
        at = next;
    }
    Ok(out)
}

/// A file of this shard's store by its wire name, with its interval.
pub async fn file_by_wire_name(store: &Store, name: &[u8]) -> Option<(FileId, i64)> {
    let rel = std::str::from_utf8(name).ok()?;
    let Lookup::Found(id) = store.lookup(rel) else {
        return None;
    };
    let h = store.load_header(id).await.ok()?;
    Some((id, i64::from(h.cfg_interval.max(1))))
}
