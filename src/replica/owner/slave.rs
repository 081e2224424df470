//! The slave side of one shard: Discovers create or check its local files, Data is
//! written over its buckets, subscriptions and retries go out paced, and files that
//! could not be created (disk full) are tried again with back-off.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use istatd_replication::name::{counter_key, normalise_path};
use istatd_replication::pdu::{self, Pdu};
use istatd_replication::slave::{
    DataAction, DiscoverAction, Local, Req, Resync, SlaveConfig, SlaveFiles,
};
use istatd_storage::format::{c_str, Bucket, CreateParams, Grid, Header, HEADER_SIZE, PAGE_SIZE};
use istatd_storage::store::{FileId, Lookup, Store};

use crate::clock;
use crate::daemon::{Event, ShardCore};
use crate::replica::messages::ToCoordinator;
use crate::replica::pacing::TokenBucket;

/// A Discover whose file could not be created: the header, when to try again, and
/// the current delay (seconds).
type CreateRetry = (Box<[u8; HEADER_SIZE]>, i64, i64);

/// First and longest delay before a failed create is tried again, seconds.
const CREATE_RETRY_FIRST: i64 = 1;
const CREATE_RETRY_MAX: i64 = 30;
/// Failed creates tried again per pump tick.
const CREATE_RETRIES_PER_TICK: usize = 16;
/// Discovers of files to create held per shard, and the tasks creating them. Why a
/// queue: a creation takes a blocking-pool job, and while the link's PDUs waited for
/// them, the Data of files already created (and their Requests' answers on the
/// master) waited too: a fresh 50k slave moved almost no data until every file was
/// created. About 500 bytes a Discover, 8 MiB a shard at most; beyond it the link
/// waits again.
const CREATE_QUEUE_MAX: usize = 16 * 1024;
const CREATE_WORKERS: usize = 8;

pub struct SlaveSide {
    core: Rc<ShardCore>,
    files: RefCell<SlaveFiles>,
    /// The link generation whose messages count (0: the link is down) and its version.
    gen: Cell<u64>,
    version: Cell<u32>,
    /// The resume time R in force, and one for the next link only
    /// (`replication.resync all,from=T`).
    resume_from: Cell<Option<i64>>,
    next_link_from: Cell<Option<i64>>,
    /// Requests to send, and file PDUs applied since the last message to the
    /// coordinator.
    out: RefCell<Vec<u8>>,
    applied: Cell<u32>,
    /// This shard's share of `--replica-create-rate` (files per second).
    create_budget: RefCell<TokenBucket>,
    /// Files created for retentions this node does not configure, and the names warned.
    unknown_retention: Cell<u64>,
    warned_retentions: RefCell<HashSet<String>>,
    /// Discovers whose local file could not be created; the time creates started
    /// failing and when that was last said in the log.
    create_retry: RefCell<HashMap<String, CreateRetry>>,
    create_failing: Cell<Option<(i64, i64)>>,
    /// Discovers of the link (generation, header) whose file is to be created, and the
    /// tasks working through them.
    create_queue: RefCell<VecDeque<(u64, Box<[u8; HEADER_SIZE]>)>>,
    /// [`CREATE_QUEUE_MAX`]; tests make it small (`ISTATD_TEST_CREATE_QUEUE`).
    create_queue_max: usize,
    create_workers: Cell<usize>,
}

impl SlaveSide {
    pub fn new(core: Rc<ShardCore>) -> SlaveSide {
        let repl = &core.cfg.repl;
        SlaveSide {
            files: RefCell::new(SlaveFiles::new(SlaveConfig {
                chunk_buckets: repl.chunk_buckets.clamp(1, 2048) as i64,
                resume_overlap: repl.overlap as i64,
                resume_from: repl.from,
                rejected_headers: (1024 / repl.shards.max(1)).max(1),
            })),
            gen: Cell::new(0),
            version: Cell::new(0),
            resume_from: Cell::new(repl.from),
            next_link_from: Cell::new(None),
            out: RefCell::new(Vec::new()),
            applied: Cell::new(0),
            create_budget: RefCell::new(TokenBucket::share(repl.create_rate as u64, repl.shards)),
            unknown_retention: Cell::new(0),
            warned_retentions: RefCell::new(HashSet::new()),
            create_retry: RefCell::new(HashMap::new()),
            create_failing: Cell::new(None),
            create_queue: RefCell::new(VecDeque::new()),
            create_queue_max: super::test_knob("ISTATD_TEST_CREATE_QUEUE")
                .unwrap_or(CREATE_QUEUE_MAX),
            create_workers: Cell::new(0),
            core,
        }
    }

    pub fn gen(&self) -> u64 {
        self.gen.get()
    }

    /// The link's protocol version (0 while it is down).
    pub fn version(&self) -> u32 {
        self.version.get()
    }

    /// (subscribed, behind, in error, rejected, queued) of the replication state.
    pub fn gauges(&self) -> (usize, usize, usize, usize, usize) {
        self.files.borrow().gauges()
    }

    /// This node stopped being a slave: its per-file replication state goes.
    pub fn release(&self) {
        self.files.borrow_mut().release();
        self.create_retry.borrow_mut().clear();
        self.create_failing.set(None);
        self.create_queue.borrow_mut().clear();
    }

    /// A new link generation (every file state starts over), or the link is down.
    pub fn link(&self, gen: u64, version: u32) {
        self.gen.set(gen);
        self.version.set(version);
        let mut files = self.files.borrow_mut();
        files.reset();
        // A resync time for one link applies to this one, then the R in force again.
        files.cfg.resume_from = match (self.resume_from.get(), self.next_link_from.get()) {
            (r, None) => r,
            (r, Some(t)) if gen != 0 => {
                self.next_link_from.set(None);
                Some(r.map_or(t, |r| r.min(t)))
            }
            (r, Some(_)) => r,
        };
        drop(files);
        self.out.borrow_mut().clear();
        self.applied.set(0);
        // A new link announces every file again.
        self.create_retry.borrow_mut().clear();
        self.create_queue.borrow_mut().clear();
    }

    /// One file PDU of link `gen` was handled (whatever became of it).
    pub fn applied(&self, gen: u64) {
        if gen == self.gen.get() {
            self.applied.set(self.applied.get() + 1);
        }
    }

    /// The resume time R in force from now on (`replication.of ...,from=`).
    pub fn set_resume(&self, from: Option<i64>) {
        self.resume_from.set(from);
        self.files.borrow_mut().cfg.resume_from = from;
    }

    /// `replication.resync all[,from=T]`: T for every subscription of the next link.
    pub fn resync_next_link(&self, from: Option<i64>) {
        self.next_link_from.set(from);
    }

    /// `replication.resync PATH[,from=]`; a rejected file is checked again against the
    /// master's header kept for it.
    pub async fn resync(&self, path: &str, from: Option<i64>) -> Result<(), String> {
        let Some(store) = &self.core.store else {
            return Err("unknown file".into());
        };
        let Lookup::Found(id) = store.lookup(path) else {
            return Err("unknown file".into());
        };
        let action = self.files.borrow_mut().resync(id.slot, from)?;
        let Resync::Recheck(h) = action else {
            return Ok(());
        };
        let gen = self.gen.get();
        self.discover(gen, h, true).await;
        if self.files.borrow().is_rejected(id.slot) {
            return Err("the local file still differs from the master's header".into());
        }
        Ok(())
    }

    /// Files deleted on this slave (admin `delete.ctr`): outstanding ones drain, the
    /// others go idle until a later link announces them again
    /// (docs/replication-protocol.md, "Slave: Discover, Requests and Data").
    pub fn deleted_locally(&self, files: &[(u32, String)]) {
        let mut state = self.files.borrow_mut();
        for (slot, path) in files {
            let name = istatd_replication::name::normalise_path(path).unwrap_or_default();
            state.deleted_locally(*slot, name.as_bytes());
        }
    }

    /// Queue Requests for the link.
    pub fn queue_frames(&self, frames: &[u8]) {
        self.out.borrow_mut().extend_from_slice(frames);
    }

    /// Hand the queued Requests and the applied count to the coordinator.
    pub async fn flush_out(&self) {
        let gen = self.gen.get();
        if gen == 0 {
            return;
        }
        let frames = std::mem::take(&mut *self.out.borrow_mut());
        let applied = self.applied.replace(0);
        if frames.is_empty() && applied == 0 {
            return;
        }
        let m = ToCoordinator::SlaveOut {
            gen,
            frames,
            applied,
        };
        self.core.send_event(0, Event::ToCoordinator(m)).await;
    }

    /// The master broke the protocol (or most writes fail): close the link.
    pub async fn fatal(&self, gen: u64, text: &'static str) {
        let m = ToCoordinator::SlaveFatal { gen, text };
        self.core.send_event(0, Event::ToCoordinator(m)).await;
    }

    /// A Discover from the link. One whose file does not exist here yet is queued for
    /// the creating tasks (see [`CREATE_QUEUE_MAX`]) and the link goes on; the others
    /// are handled now.
    pub async fn discover_from_link(self: &Rc<Self>, gen: u64, h: Box<[u8; HEADER_SIZE]>) {
        let Some(store) = &self.core.store else {
            return;
        };
        let name = String::from_utf8_lossy(pdu::discover_name(&h));
        if !matches!(store.lookup(&name), Lookup::Absent) {
            return self.discover(gen, h, false).await;
        }
        while self.create_queue.borrow().len() >= self.create_queue_max {
            glommio::timer::sleep(Duration::from_millis(5)).await;
            if gen != self.gen.get() {
                return;
            }
        }
        self.create_queue.borrow_mut().push_back((gen, h));
        if self.create_workers.get() < CREATE_WORKERS {
            self.create_workers.set(self.create_workers.get() + 1);
            let me = self.clone();
            glommio::spawn_local(async move {
                loop {
                    let next = me.create_queue.borrow_mut().pop_front();
                    let Some((gen, h)) = next else { break };
                    // Discovers of an older link are announced again by the new one.
                    if gen == me.gen.get() {
                        me.discover(gen, h, false).await;
                    }
                }
                me.create_workers.set(me.create_workers.get() - 1);
            })
            .detach();
        }
    }

    pub async fn discover(&self, gen: u64, h: Box<[u8; HEADER_SIZE]>, redo: bool) {
        let Some(store) = &self.core.store else {
            return;
        };
        let name = String::from_utf8_lossy(pdu::discover_name(&h)).into_owned();
        let (local, slot) = match store.lookup(&name) {
            Lookup::Found(id) => match store.load_header(id).await {
                Ok(hd) => (Local::Good(Box::new(hd)), Some(id.slot)),
                Err(e) if super::master::is_transient(&e) => {
                    // Unreadable now (descriptors, I/O), not bad: moving a healthy file
                    // aside would copy it again from 0. Its Discover waits and comes back.
                    return self.create_failed(name, h, &e.to_string());
                }
                Err(_) => (Local::Bad, None),
            },
            Lookup::Bad => (Local::Bad, None),
            Lookup::Absent => (Local::Absent, None),
        };
        let action = self.files.borrow_mut().discover(&h, &local, slot, redo);
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
                    set_cumulative(store, id, &hd).await;
                    self.files.borrow_mut().queue(id.slot, false);
                }
            }
            DiscoverAction::Create { aside } => {
                self.note_retention(&name);
                if aside {
                    // Forget the slot before the store frees it: a creation running
                    // meanwhile may be given the slot, and forgetting it after that
                    // would drop the new file's queued entry (never subscribed).
                    if let Lookup::Found(id) = store.lookup(&name) {
                        self.files.borrow_mut().forget(id.slot);
                    }
                    if let Err(e) = store.move_aside(&name).await {
                        tracing::warn!(file = %name, error = %e, "replication: cannot move the local file aside");
                        return;
                    }
                }
                // `--replica-create-rate`: Discovers for new files wait here (the
                // coordinator stops reading the link while too many are in flight).
                while !self.create_budget.borrow_mut().ready() {
                    glommio::timer::sleep(Duration::from_millis(5)).await;
                }
                self.create_budget.borrow_mut().spend(1.0);
                let created = store
                    .create_file_like(&name, create_params(&name, &hd))
                    .await;
                let made = match created {
                    Ok(id) => store.load_header(id).await.map(|lh| (id, lh)),
                    Err(e) => Err(e),
                };
                if gen != self.gen.get() {
                    // The link changed (or this node was promoted) meanwhile: the file
                    // stays, and the next link's Discover finds it.
                    return;
                }
                match made {
                    Ok((id, lh)) => {
                        self.create_succeeded(&name);
                        set_cumulative(store, id, &hd).await;
                        // The new file is known now: its Discover again, then queued.
                        let mut files = self.files.borrow_mut();
                        let again =
                            files.discover(&h, &Local::Good(Box::new(lh)), Some(id.slot), true);
                        if again == DiscoverAction::Known {
                            files.queue(id.slot, true);
                        }
                    }
                    Err(e) => self.create_failed(name, h, &e.to_string()),
                }
            }
        }
        let _ = gen;
    }

    /// Count (and say once per name) a retention this node does not configure.
    fn note_retention(&self, name: &str) {
        let retention = name.rsplit('/').next().unwrap_or("");
        if self.core.cfg.retentions.iter().any(|x| x.name == retention) {
            return;
        }
        self.unknown_retention.set(self.unknown_retention.get() + 1);
        if self
            .warned_retentions
            .borrow_mut()
            .insert(retention.to_string())
        {
            tracing::warn!(
                retention,
                "replication: the master has a retention this node does not configure; its files are kept all the same"
            );
        }
    }

    pub async fn data(&self, gen: u64, name: Vec<u8>, buckets: Vec<Bucket>) {
        let Some(store) = &self.core.store else {
            return;
        };
        let rel = String::from_utf8_lossy(&name).into_owned();
        let found = match store.lookup(&rel) {
            Lookup::Found(id) => store.load_header(id).await.ok().map(|h| (id, h)),
            _ => None,
        };
        let (interval, zero) = found
            .as_ref()
            .map_or((1, 0), |(_, h)| (h.cfg_interval as i64, h.file_create_time));
        let slot = found.as_ref().map(|(id, _)| id.slot);
        let action =
            self.files
                .borrow_mut()
                .data(slot, &name, buckets, interval, zero, clock::now());
        match action {
            Err(e) => self.fatal(gen, e.text()).await,
            Ok(DataAction::Done) => {}
            Ok(DataAction::Rediscover(h)) => Box::pin(self.discover(gen, h, true)).await,
            Ok(DataAction::Apply { buckets }) => {
                let Some((id, _)) = found else { return };
                let result = store
                    .put_buckets_overwrite(id, &buckets)
                    .await
                    .map(|rep| (rep.written, rep.too_old))
                    .map_err(|_| ());
                let next = self.files.borrow_mut().applied(
                    id.slot,
                    &buckets,
                    result,
                    interval,
                    clock::now(),
                );
                if next.is_none() && self.files.borrow().apply_failing() {
                    tracing::error!(
                        "replication: most writes fail on this slave; closing the link"
                    );
                    self.fatal(gen, "Apply failing").await;
                }
                let pending = self.files.borrow_mut().take_pending(id.slot);
                if let Some(h) = pending {
                    Box::pin(self.discover(gen, h, true)).await;
                }
                if let Some(r) = next {
                    encode_request(&r, store.grid(id), &name, &mut self.out.borrow_mut());
                }
            }
        }
    }

    /// A local file could not be created: try its Discover again later, say so in
    /// the log once (and once a minute while it lasts), count it.
    fn create_failed(&self, name: String, h: Box<[u8; HEADER_SIZE]>, error: &str) {
        self.files.borrow_mut().create_failed();
        let now = clock::now();
        let mut retry = self.create_retry.borrow_mut();
        let delay = retry.get(&name).map_or(CREATE_RETRY_FIRST, |(_, _, d)| {
            (d * 2).min(CREATE_RETRY_MAX)
        });
        retry.insert(name.clone(), (h, now + delay, delay));
        match self.create_failing.get() {
            None => {
                self.create_failing.set(Some((now, now)));
                tracing::error!(file = %name, error, "replication: cannot create files; this slave stops applying them and tries again (replication.slave.create_errors)");
            }
            Some((since, said)) if now - said >= 60 => {
                self.create_failing.set(Some((since, now)));
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
        let was_waiting = self.create_retry.borrow_mut().remove(name).is_some();
        if was_waiting && self.create_retry.borrow().is_empty() {
            if let Some((since, _)) = self.create_failing.take() {
                tracing::warn!(
                    seconds = clock::now() - since,
                    "replication: files can be created again; applying resumes"
                );
            }
        }
    }

    /// One pump tick: subscriptions (paced by `--replica-subscribe-rate`), due
    /// retries, and failed creates due again.
    pub async fn pump(&self, now: i64) {
        let Some(store) = &self.core.store else {
            return;
        };
        let gen = self.gen.get();
        if gen == 0 {
            return;
        }
        let per_tick =
            ((self.core.cfg.repl.subscribe_rate.max(1) as usize / self.core.count.max(1)) / 50)
                .max(1);
        let mut frames = Vec::new();
        for _ in 0..per_tick {
            let next = self.files.borrow_mut().next_queued();
            let Some(slot) = next else { break };
            let Some((id, rel)) = store.file_at(slot) else {
                continue;
            };
            let h = match store.load_header(id).await {
                Ok(h) => h,
                Err(e) if super::master::is_transient(&e) => {
                    self.files.borrow_mut().requeue(slot);
                    break;
                }
                Err(_) => continue,
            };
            let newest = store.newest_bucket_time(id).await.unwrap_or(0);
            let r = self.files.borrow_mut().subscribe(
                slot,
                newest,
                h.cfg_interval as i64,
                h.capacity(),
            );
            if let (Some(r), Some(name)) = (r, normalise_path(&rel)) {
                encode_request(&r, Some(Grid::of(&h)), name.as_bytes(), &mut frames);
            }
        }
        let retries = self.files.borrow_mut().due_retries(now);
        for r in retries {
            let Some((id, rel)) = store.file_at(r.slot) else {
                continue;
            };
            if let Some(name) = normalise_path(&rel) {
                encode_request(&r, store.grid(id), name.as_bytes(), &mut frames);
            }
        }
        self.queue_frames(&frames);
        self.retry_creates(gen, now).await;
    }

    /// Creates that failed, a few per tick (each re-runs its Discover).
    async fn retry_creates(&self, gen: u64, now: i64) {
        let due: Vec<(String, Box<[u8; HEADER_SIZE]>)> = self
            .create_retry
            .borrow()
            .iter()
            .filter(|(_, (_, at, _))| *at <= now)
            .take(CREATE_RETRIES_PER_TICK)
            .map(|(n, (h, _, _))| (n.clone(), h.clone()))
            .collect();
        for (name, h) in due {
            if let Some(e) = self.create_retry.borrow_mut().get_mut(&name) {
                // Not due again before a new failure sets its delay.
                e.1 = i64::MAX;
            }
            self.discover(gen, h, true).await;
            let mut retry = self.create_retry.borrow_mut();
            if retry.get(&name).is_some_and(|e| e.1 == i64::MAX) {
                // Created, or the Discover no longer asks for a creation.
                retry.remove(&name);
            }
        }
    }

    pub fn stats(&self, out: &mut Vec<(String, i64)>) {
        let sl = self.files.borrow();
        let c = &sl.counters;
        let (subscribed, behind, errors, rejected, queued) = sl.gauges();
        crate::metrics::push_named(
            out,
            "replication.slave",
            "discover_received discover_rejected header_mismatch unknown_retention \
             incarnation_changed bad_local_files files_created files_gone \
             apply_errors create_errors create_waiting create_queued retries requests_sent \
             data_received buckets_received buckets_written buckets_rejected \
             buckets_too_old subscribed behind files_in_error rejected \
             pending_subscribe state_bytes bytes_behind",
            &[
                c.discover_received,
                c.discover_rejected,
                c.header_mismatch,
                self.unknown_retention.get(),
                c.incarnation_changed,
                c.bad_local_files,
                c.files_created,
                c.files_gone,
                c.apply_errors,
                c.create_errors,
                self.create_retry.borrow().len() as u64,
                self.create_queue.borrow().len() as u64,
                c.retries,
                c.requests_sent,
                c.data_received,
                c.buckets_received,
                c.buckets_written,
                c.buckets_rejected,
                c.buckets_too_old,
                subscribed as u64,
                behind as u64,
                errors as u64,
                rejected as u64,
                queued as u64,
                sl.state_bytes() as u64,
                sl.buckets_behind() * 32,
            ],
        );
        out.push(("replication.slave.tail_lag_seconds".into(), c.tail_lag));
        // Shards that never got Data report no age (the merge keeps the minimum).
        if c.last_data_at > 0 {
            let age = (clock::now() - c.last_data_at).max(0);
            out.push(("replication.slave.last_data_age_seconds".into(), age));
        }
    }
}

/// A Request of the slave core, named; `ring` is the local file's header. The count
/// asked for is cut so that the answer ends on a page boundary of the file (at most
/// an eighth less): a catch-up's next answer then starts a page, so its pages are
/// written whole, once, without reading them first.
fn encode_request(r: &Req, grid: Option<Grid>, name: &[u8], out: &mut Vec<u8>) {
    let n = grid.map_or(r.n, |g| page_aligned_count(r.from, r.n, g));
    Pdu::Request {
        from: r.from,
        n,
        name: name.to_vec(),
    }
    .encode(out);
}

/// `n` buckets from `from`, less the part of the last page they would leave unfilled
/// when that is at most an eighth of `n` (pages hold `PAGE_SIZE / 32` slots and a
/// ring a whole number of pages, so a page boundary in bucket indexes is one in
/// slots too).
fn page_aligned_count(from: i64, n: i64, g: Grid) -> i64 {
    let per_page = (PAGE_SIZE / 32) as i64;
    let iv = g.interval as i64;
    if iv <= 0 || n < per_page {
        return n;
    }
    let index = from.saturating_sub(g.zero).div_euclid(iv);
    let over = index.saturating_add(n).rem_euclid(per_page);
    if over > 0 && over <= n / 8 {
        n - over
    } else {
        n
    }
}

/// How to create the local copy of a master's file from its Discover header.
fn create_params(name: &str, hd: &Header) -> CreateParams {
    let slots = hd.page_count.saturating_mul(hd.page_size) / 32;
    let per_page = (PAGE_SIZE / 32) as i64;
    CreateParams {
        interval: hd.cfg_interval,
        page_count: (slots + per_page - 1) / per_page,
        flags: hd.flags,
        zero_time: hd.file_create_time,
        lambda: hd.lambda,
        season: hd.season,
        fixed_count: hd.fixed_count,
        unit: c_str(&hd.unit),
        name: counter_key(name),
    }
}

async fn set_cumulative(store: &Store, id: FileId, hd: &Header) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The grid of a file of this interval and zero time.
    fn grid(interval: i32, zero: i64) -> Grid {
        Grid { zero, interval }
    }

    #[test]
    fn requests_end_on_a_page_boundary_when_that_costs_little() {
        let h = grid(10, 0);
        // Index 100: 100 + 2048 = 2148 = 8 pages + 100 slots over.
        assert_eq!(page_aligned_count(1000, 2048, h), 1948);
        // Already aligned: unchanged.
        assert_eq!(page_aligned_count(0, 2048, h), 2048);
        // An eighth over at most: cut (index 255: 2303 is 255 over, 2048 / 8 = 256).
        assert_eq!(page_aligned_count(2550, 2048, h), 1793);
        // More than an eighth over: unchanged (index 200: 1224 is 200 over, 1024 / 8 = 128).
        assert_eq!(page_aligned_count(2000, 1024, h), 1024);
        // The zero time shifts the indexes.
        assert_eq!(page_aligned_count(1005, 2048, grid(10, 5)), 1948);
        // Small chunks and broken headers are left alone.
        assert_eq!(page_aligned_count(1000, 100, h), 100);
        assert_eq!(page_aligned_count(1000, 2048, grid(0, 0)), 2048);
    }
}
