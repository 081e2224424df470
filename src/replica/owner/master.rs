//! The master side of one shard: its files' announcements (Discovers) to every
//! connected slave, the answers to their Requests (Data within each connection's send
//! window), the late marks, and the scrub's digests and repairs.
//!
//! A connection's window is this shard's share of the coordinator's send-queue high
//! mark: frames handed to the coordinator count against it until the coordinator's
//! writer puts them on the wire and gives the room back ([`ToOwner::Credit`]).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};

use istatd_replication::master::{MasterConfig, MasterFiles, Visit, MAX_SCAN_SLOTS};
use istatd_replication::name::normalise_path;
use istatd_replication::pdu::{Pdu, RangeDigest, RANGE_BUCKETS};
use istatd_replication::scrub;
use istatd_storage::store::{
    join_all, FileId, FlushVisit, Lookup, ReplicationEvent, Store, StoreError,
};

use super::{file_by_wire_name, read_range, ReadPacing};
use crate::clock;
use crate::daemon::{Event, ShardCore};
use crate::replica::messages::{Mark, ToCoordinator, ToOwner};

/// The coordinator's send-queue high mark per connection (docs/replication-protocol.md,
/// "Flow control"), shared out among the shards.
const HIGH_MARK: usize = 1 << 20;
/// Most bucket reads per connection per pump round.
const READS_PER_TICK: usize = 256;
/// Bucket reads of one connection in flight at once (queue depth for the disk).
pub const READS_IN_FLIGHT: usize = 8;
/// The largest Data frame: 2,048 buckets and a name.
const MAX_DATA_FRAME: usize = 66 * 1024;
/// Files of a new connection announced per pump tick.
const SWEEP_PER_TICK: usize = 256;

/// What this shard owes one connection.
#[derive(Debug, Default)]
struct Window {
    /// Bytes handed to the coordinator and not yet written to the socket.
    outstanding: usize,
    /// Frames not yet handed over.
    frames: Vec<u8>,
    /// Requests answered (or parked) since the last message to the coordinator.
    answered: u32,
}

/// A new connection and the files still to announce to it.
type Sweep = (u64, Vec<(String, FileId)>);

pub struct MasterSide {
    core: Rc<ShardCore>,
    files: RefCell<MasterFiles>,
    sweeps: RefCell<VecDeque<Sweep>>,
    windows: RefCell<HashMap<u64, Window>>,
    pub pacing: Rc<ReadPacing>,
    suspended: Cell<bool>,
    /// Entries that waited more than a flush period (the last stall sweep).
    stalled: Cell<u64>,
    last_stall_sweep: Cell<i64>,
    /// Digests and repairs answered; scrub requests held while suspended.
    scrub_answered: Cell<(u64, u64)>,
    scrub_held: RefCell<VecDeque<ToOwner>>,
    /// Requests whose file could not be read (oldest first).
    retry_requests: RefCell<VecDeque<PendingRequest>>,
    /// Wakes the pump before its next tick: room came back in a window, a Request came.
    wake: LocalSender<()>,
    /// `ISTATD_TEST_REPLICA_READ_DELAY_MS`: tests make replication reads this slow.
    test_read_delay: Option<Duration>,
    wake_rx: RefCell<Option<LocalReceiver<()>>>,
}

/// A Request that waits for its file to be readable again.
struct PendingRequest {
    due: i64,
    conn: u64,
    name: Vec<u8>,
    from: i64,
    n: i64,
}

/// A file's interval and newest bucket time.
async fn file_facts(store: &Store, id: FileId) -> Result<(u32, i64), StoreError> {
    let h = store.load_header(id).await?;
    let newest = store.newest_bucket_time(id).await?;
    Ok((h.cfg_interval.max(1) as u32, newest))
}

/// A store error that may go away by itself (descriptors, I/O), unlike a bad file or
/// one that is gone.
pub fn is_transient(e: &StoreError) -> bool {
    matches!(e, StoreError::Io(_))
}

/// The master state's view of a flush visit.
fn visit_of<'a>(v: &'a FlushVisit, name: Option<&'a str>) -> Visit<'a> {
    Visit {
        file: (v.id.slot, v.id.gen),
        name,
        header: &v.header,
        flushed_last: v.flushed_last,
        dirty_low: v.dirty_low,
    }
}

impl MasterSide {
    pub fn new(core: Rc<ShardCore>, marks: Vec<Mark>) -> MasterSide {
        let repl = &core.cfg.repl;
        let mut files = MasterFiles::new(MasterConfig {
            chunk_buckets: repl.chunk_buckets.clamp(1, 2048) as u16,
            margin: repl.overlap,
            late_window: repl.late_window,
            max_reads: READS_IN_FLIGHT,
            // Tests make the window small (`ISTATD_TEST_DISCOVER_WINDOW`).
            discover_window: super::test_knob("ISTATD_TEST_DISCOVER_WINDOW")
                .unwrap_or(MasterConfig::default().discover_window),
            ..MasterConfig::default()
        });
        // Late marks name files; the state keeps them by the store's file slot.
        if let Some(store) = &core.store {
            files.reserve_slots(store.file_slot_span());
            files.seed_marks(marks.into_iter().filter_map(|(name, low, at)| {
                match store.lookup(&name) {
                    Lookup::Found(id) => Some(((id.slot, id.gen), low, at)),
                    _ => None,
                }
            }));
        }
        let (wake, wake_rx) = local_channel::new_bounded(1);
        MasterSide {
            pacing: Rc::new(ReadPacing::new(repl.read_rate, repl.shards)),
            files: RefCell::new(files),
            sweeps: RefCell::new(VecDeque::new()),
            windows: RefCell::new(HashMap::new()),
            suspended: Cell::new(false),
            stalled: Cell::new(0),
            last_stall_sweep: Cell::new(clock::now()),
            scrub_answered: Cell::new((0, 0)),
            scrub_held: RefCell::new(VecDeque::new()),
            retry_requests: RefCell::new(VecDeque::new()),
            wake,
            wake_rx: RefCell::new(Some(wake_rx)),
            test_read_delay: super::test_knob("ISTATD_TEST_REPLICA_READ_DELAY_MS")
                .map(Duration::from_millis),
            core,
        }
    }

    fn window_size(&self) -> usize {
        HIGH_MARK / self.core.count.max(1)
    }

    /// The connection's send queue as this shard sees it: its own share, scaled to
    /// the whole queue (every shard fills its share alike).
    fn queue_estimate(&self, conn: u64) -> usize {
        self.windows.borrow().get(&conn).map_or(usize::MAX, |w| {
            w.outstanding.saturating_mul(self.core.count)
        })
    }

    fn has_room(&self, conn: u64, pending: usize) -> bool {
        self.room(conn) > pending
    }

    /// Bytes a connection's window still has room for.
    fn room(&self, conn: u64) -> usize {
        self.windows.borrow().get(&conn).map_or(0, |w| {
            self.window_size()
                .saturating_sub(w.outstanding + w.frames.len())
        })
    }

    fn push_frames(&self, conn: u64, p: &Pdu, answers: u32) {
        if let Some(w) = self.windows.borrow_mut().get_mut(&conn) {
            p.encode(&mut w.frames);
            w.answered += answers;
        }
    }

    pub fn open(&self, conn: u64) {
        let mut files = self.files.borrow_mut();
        files.open(conn);
        if let Some(store) = &self.core.store {
            // Files created since start-up count too.
            files.reserve_slots(store.file_slot_span());
        }
        drop(files);
        self.windows.borrow_mut().insert(conn, Window::default());
        if let Some(store) = &self.core.store {
            self.sweeps
                .borrow_mut()
                .push_back((conn, store.list_files()));
        }
    }

    pub fn close(&self, conn: u64) {
        self.files.borrow_mut().close(conn);
        self.windows.borrow_mut().remove(&conn);
        self.sweeps.borrow_mut().retain(|(c, _)| *c != conn);
    }

    pub fn credit(&self, conn: u64, bytes: usize) {
        if let Some(w) = self.windows.borrow_mut().get_mut(&conn) {
            w.outstanding = w.outstanding.saturating_sub(bytes);
        }
        self.wake();
    }

    fn wake(&self) {
        let _ = self.wake.try_send(());
    }

    /// The pump: every 20 ms, and at once when woken.
    pub async fn run(&self) {
        let Some(rx) = self.wake_rx.borrow_mut().take() else {
            return;
        };
        loop {
            futures_lite::future::or(
                async {
                    let _ = rx.recv().await;
                },
                glommio::timer::sleep(Duration::from_millis(20)),
            )
            .await;
            if self.core.shutdown.is_requested() {
                return;
            }
            self.pump(clock::now()).await;
        }
    }

    pub fn set_suspended(&self, on: bool) {
        self.suspended.set(on);
        self.files.borrow_mut().suspended = on;
    }

    /// A file Request: served from the store, or parked as an answer for later.
    pub async fn request(&self, conn: u64, name: Vec<u8>, from: i64, n: i64) {
        let Some(store) = &self.core.store else {
            return;
        };
        let rel = String::from_utf8_lossy(&name).into_owned();
        let file = match store.lookup(&rel) {
            Lookup::Found(id) => match file_facts(store, id).await {
                Ok(facts) => Some((id, facts)),
                Err(e) if is_transient(&e) => {
                    // The file is there but could not be read now (descriptors, I/O):
                    // the Request waits and comes back, instead of a "no such file"
                    // that would leave the slave's copy idle for the whole link.
                    tracing::debug!(file = %rel, error = %e, "replication: Request retried");
                    self.retry_requests.borrow_mut().push_back(PendingRequest {
                        due: clock::monotonic_secs() + 1,
                        conn,
                        name,
                        from,
                        n,
                    });
                    return;
                }
                Err(_) => None,
            },
            _ => None,
        };
        // The lookups above waited on the store: a file deleted meanwhile (its
        // deletion already seen, or its slot already reused) is no such file.
        let file = file
            .filter(|(id, _)| store.lookup(&rel) == Lookup::Found(*id))
            .map(|(id, (interval, newest))| ((id.slot, id.gen), interval, newest));
        let gone = self.files.borrow_mut().request(conn, &name, from, n, file);
        if !gone {
            if let Some(w) = self.windows.borrow_mut().get_mut(&conn) {
                w.answered += 1;
            }
        }
        self.wake();
    }

    /// Requests whose file could not be read, due again.
    async fn retry_due_requests(&self) {
        let now = clock::monotonic_secs();
        let due: Vec<PendingRequest> = {
            let mut q = self.retry_requests.borrow_mut();
            let n = q.iter().take_while(|r| r.due <= now).count();
            q.drain(..n).collect()
        };
        for r in due {
            if self.windows.borrow().contains_key(&r.conn) {
                self.request(r.conn, r.name, r.from, r.n).await;
            }
        }
    }

    /// A DigestRequest or RepairRequest (held while suspended, like Data).
    pub async fn scrub_request(&self, m: ToOwner) {
        if self.suspended.get() {
            self.scrub_held.borrow_mut().push_back(m);
        } else {
            self.scrub_answer(m).await;
        }
    }

    async fn scrub_answer(&self, m: ToOwner) {
        let Some(store) = &self.core.store else {
            return;
        };
        let pacing = Some(&*self.pacing);
        let (conn, reply) = match m {
            ToOwner::DigestRequest {
                conn,
                name,
                from,
                ranges,
            } => {
                let mut digests: Vec<RangeDigest> = Vec::new();
                if let Some((id, iv)) = file_by_wire_name(store, &name).await {
                    let end = from + i64::from(ranges) * RANGE_BUCKETS * iv;
                    match read_range(store, id, iv, from, end, pacing).await {
                        Ok(b) => digests = scrub::digests(from, iv, ranges as usize, &b),
                        Err(()) => tracing::debug!("replication: scrub digest read failed"),
                    }
                }
                let (d, p) = self.scrub_answered.get();
                self.scrub_answered.set((d + 1, p));
                let reply = Pdu::Digest {
                    from,
                    ranges: digests,
                    name,
                };
                (conn, reply)
            }
            ToOwner::RepairRequest {
                conn,
                name,
                from,
                n,
            } => {
                let mut buckets = Vec::new();
                if let Some((id, iv)) = file_by_wire_name(store, &name).await {
                    if let Ok(b) = read_range(store, id, iv, from, from + n * iv, pacing).await {
                        buckets = b;
                    }
                }
                let (d, p) = self.scrub_answered.get();
                self.scrub_answered.set((d, p + 1));
                (conn, Pdu::RepairData { buckets, name })
            }
            _ => return,
        };
        self.push_frames(conn, &reply, 1);
        self.hand_over(conn).await;
    }

    /// Hand a connection's frames and answer count to the coordinator.
    async fn hand_over(&self, conn: u64) {
        let taken = self.windows.borrow_mut().get_mut(&conn).and_then(|w| {
            if w.frames.is_empty() && w.answered == 0 {
                return None;
            }
            w.outstanding += w.frames.len();
            Some((
                std::mem::take(&mut w.frames),
                std::mem::take(&mut w.answered),
            ))
        });
        if let Some((frames, answered)) = taken {
            let m = ToCoordinator::MasterOut {
                conn,
                shard: self.core.id,
                frames,
                answered,
            };
            self.core.send_event(0, Event::ToCoordinator(m)).await;
        }
    }

    /// One pump tick: flush visits and deletions into the state, announcements for new
    /// connections, then the answers of every connection within its window.
    pub async fn pump(&self, now: i64) {
        let Some(store) = &self.core.store else {
            return;
        };
        if !self.suspended.get() {
            let held = std::mem::take(&mut *self.scrub_held.borrow_mut());
            for m in held {
                self.scrub_answer(m).await;
            }
        }
        self.retry_due_requests().await;
        let mut out: Vec<(u64, Pdu)> = Vec::new();
        {
            let queue = |c: u64| self.queue_estimate(c);
            let mut m = self.files.borrow_mut();
            for ev in store.take_replication_events() {
                match ev {
                    ReplicationEvent::Deleted { id, rel } => {
                        let name = normalise_path(&rel).unwrap_or_default();
                        m.deleted((id.slot, id.gen), name.as_bytes());
                    }
                    ReplicationEvent::Visit(v) => {
                        let name = normalise_path(&v.rel);
                        out.extend(m.visit(visit_of(&v, name.as_deref()), now, &queue));
                    }
                }
            }
            m.wake_delayed(now);
            m.reopen_stalled_windows(now);
            if now - self.last_stall_sweep.get() >= self.core.cfg.flush_secs.max(1) as i64 {
                self.last_stall_sweep.set(now);
                self.stalled.set(m.sweep() as u64);
            }
        }
        self.sweep_step(store, now, &mut out).await;
        for (conn, p) in out {
            self.push_frames(conn, &p, 0);
        }
        let conns: Vec<u64> = self.files.borrow().connections().collect();
        for conn in conns {
            self.answer(conn).await;
            self.hand_over(conn).await;
        }
    }

    /// Announce a slice of a new connection's files to that connection only.
    async fn sweep_step(&self, store: &Store, now: i64, out: &mut Vec<(u64, Pdu)>) {
        let job = self.sweeps.borrow_mut().front_mut().map(|(conn, files)| {
            let n = files.len().min(SWEEP_PER_TICK);
            (*conn, files.drain(..n).collect::<Vec<_>>())
        });
        let Some((conn, batch)) = job else { return };
        self.sweeps.borrow_mut().retain(|(_, f)| !f.is_empty());
        let mut again = Vec::new();
        for (rel, id) in batch {
            let h = match store.load_header(id).await {
                Ok(h) => h,
                Err(e) if is_transient(&e) => {
                    again.push((rel, id));
                    continue;
                }
                Err(_) => continue,
            };
            let newest = store.newest_bucket_time(id).await.unwrap_or(0);
            let name = normalise_path(&rel);
            let v = Visit {
                file: (id.slot, id.gen),
                name: name.as_deref(),
                header: &h,
                flushed_last: newest,
                dirty_low: i64::MAX,
            };
            let queue = |c: u64| self.queue_estimate(c);
            let p = self.files.borrow_mut().announce_to(conn, v, now, &queue);
            out.extend(p.map(|p| (conn, p)));
        }
        if !again.is_empty() {
            // Files that could not be read now are announced at the end of the sweep.
            let mut sweeps = self.sweeps.borrow_mut();
            match sweeps.iter_mut().find(|(c, _)| *c == conn) {
                Some((_, files)) => files.extend(again),
                None => sweeps.push_back((conn, again)),
            }
        }
    }

    /// Gone answers, owed Discovers and Data for one connection while its window has
    /// room.
    async fn answer(&self, conn: u64) {
        let Some(store) = &self.core.store else {
            return;
        };
        if self.suspended.get() {
            return;
        }
        while self.has_room(conn, 0) {
            let gone = self.files.borrow_mut().next_gone(conn);
            match gone {
                Some((p, in_flight)) => self.push_frames(conn, &p, u32::from(in_flight)),
                None => break,
            }
        }
        let mut reads = 0;
        while self.has_room(conn, 0) && reads < READS_PER_TICK {
            let owed_turn = {
                let queue = self.queue_estimate(conn);
                let mut m = self.files.borrow_mut();
                m.has_owed(conn) && (queue < m.cfg.discover_mark || m.discover_turn(conn))
            };
            if owed_turn {
                let owed = self.files.borrow_mut().next_owed(conn);
                if let Some((slot, gen)) = owed {
                    let id = FileId { slot, gen };
                    let name = store.path_of(id).and_then(|rel| normalise_path(&rel));
                    let header = store.load_header(id).await;
                    match (header, name) {
                        (Ok(h), Some(name)) => self.push_frames(conn, &Pdu::discover(&h, &name), 0),
                        (Err(e), _) if is_transient(&e) => {
                            self.files.borrow_mut().owe_again(conn, (slot, gen));
                            break;
                        }
                        _ => {}
                    }
                }
                continue;
            }
            if !self.pacing.ready() {
                self.pacing.throttled();
                break;
            }
            // A batch of reads, as many as the window has room for, run together.
            let batch = (self.room(conn) / MAX_DATA_FRAME).clamp(1, READS_IN_FLIGHT);
            let mut jobs = Vec::with_capacity(batch);
            while jobs.len() < batch {
                match self.files.borrow_mut().next_read(conn) {
                    Some(job) => jobs.push(job),
                    None => break,
                }
            }
            if jobs.is_empty() {
                break;
            }
            reads += jobs.len();
            if let Some(delay) = self.test_read_delay {
                // Test hook: a slow disk, so that flushes land while reads are in flight.
                glommio::timer::sleep(delay).await;
            }
            let results = join_all(
                jobs.iter()
                    .map(|job| {
                        let id = FileId {
                            slot: job.file.0,
                            gen: job.file.1,
                        };
                        store.read_valid_buckets(id, job.start, job.end, job.max, MAX_SCAN_SLOTS)
                    })
                    .collect(),
            )
            .await;
            for (job, res) in jobs.iter().zip(results) {
                let res = res.map_err(|_| ());
                let id = FileId {
                    slot: job.file.0,
                    gen: job.file.1,
                };
                let iv = store.grid(id).map_or(1, |g| g.interval.max(1) as u32);
                if let Ok((_, next)) = &res {
                    self.pacing.spend(job.start, *next, iv as i64);
                }
                let answer = self
                    .files
                    .borrow_mut()
                    .read_done(job, iv, res, clock::now());
                let named = answer.and_then(|buckets| {
                    let name = store.path_of(id).and_then(|rel| normalise_path(&rel))?;
                    Some(Pdu::Data {
                        buckets,
                        name: name.into_bytes(),
                    })
                });
                if let Some(p) = named {
                    self.push_frames(conn, &p, 0);
                }
            }
        }
    }

    /// The late marks, when they changed since last asked.
    pub fn changed_marks(&self) -> Option<Vec<Mark>> {
        let changed = self.files.borrow_mut().take_marks_changed();
        changed.then(|| self.named_marks())
    }

    /// The late marks by wire name (as `.replication_late` keeps them).
    fn named_marks(&self) -> Vec<Mark> {
        let Some(store) = &self.core.store else {
            return Vec::new();
        };
        let marks = self.files.borrow().marks();
        marks
            .into_iter()
            .filter_map(|((slot, gen), low, at)| {
                let rel = store.path_of(FileId { slot, gen })?;
                Some((normalise_path(&rel)?.into(), low, at))
            })
            .collect()
    }

    /// The late marks after the store's final flush (its visits still count).
    pub fn final_marks(&self) -> Vec<Mark> {
        let Some(store) = &self.core.store else {
            return Vec::new();
        };
        let mut m = self.files.borrow_mut();
        for ev in store.take_replication_events() {
            match ev {
                ReplicationEvent::Deleted { id, rel } => {
                    let name = normalise_path(&rel).unwrap_or_default();
                    m.deleted((id.slot, id.gen), name.as_bytes());
                }
                ReplicationEvent::Visit(v) => {
                    let name = normalise_path(&v.rel);
                    m.visit(visit_of(&v, name.as_deref()), clock::now(), &|_| usize::MAX);
                }
            }
        }
        drop(m);
        self.named_marks()
    }

    pub fn stats(&self, out: &mut Vec<(String, i64)>) {
        let m = self.files.borrow();
        let c = &m.counters;
        let (parked, ready) = m.parked_ready();
        let (read_bytes, read_ops, read_throttled) = self.pacing.stats();
        crate::metrics::push_named(
            out,
            "replication.master",
            "discover_sent discover_deferred names_too_long requests \
             requests_unknown_file requests_replaced gone_dropped late_seeded \
             data_sent buckets_sent resent_buckets read_errors read_bytes read_ops \
             read_throttled stalled late_marks parked ready state_bytes \
             discover_unanswered discover_window_reopened",
            &[
                c.discover_sent,
                c.discover_deferred,
                c.names_too_long,
                c.requests,
                c.requests_unknown_file,
                c.requests_replaced,
                c.gone_dropped,
                c.late_seeded,
                c.data_sent,
                c.buckets_sent,
                c.resent_buckets,
                c.read_errors,
                read_bytes,
                read_ops,
                read_throttled,
                self.stalled.get(),
                m.late_marks() as u64,
                parked as u64,
                ready as u64,
                m.state_bytes() as u64,
                m.discovers_unanswered(),
                c.discover_window_reopened,
            ],
        );
    }

    /// Digests and repairs answered (published with the scrub's metrics).
    pub fn scrub_answered(&self) -> (u64, u64) {
        self.scrub_answered.get()
    }
}
