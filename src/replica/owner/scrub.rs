//! The anti-entropy scrub on a slave's shard (protocol version 3,
//! `--replica-scrub-rate`): the shard's [`Scrubber`] walks its own files, asks the
//! master for digests of ranges below the resume overlap, compares them with its own
//! buckets and re-requests the ranges that differ, paced in buckets compared per
//! second. The wire and the comparison rules are the replication crate's; this does
//! the storage reads and writes. (The master's answers are [`super::master`]'s.)

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use istatd_replication::name::normalise_path;
use istatd_replication::pdu::{RangeDigest, VERSION_SCRUB};
use istatd_replication::scrub::{self, ScrubConfig, ScrubState, Scrubber};
use istatd_storage::format::Bucket;
use istatd_storage::store::Lookup;

use super::slave::SlaveSide;
use super::{file_by_wire_name, read_range};
use crate::daemon::ShardCore;
use crate::replica::pacing::TokenBucket;

/// Seconds a link is up before an automatic pass may start (at most the interval).
const LINK_SETTLE: i64 = 30;

/// Most scrub steps (files opened, Digests and repairs sent) per pump tick.
const STEPS_PER_TICK: usize = 64;

pub struct ScrubSide {
    core: Rc<ShardCore>,
    slave: Rc<SlaveSide>,
    scrubber: RefCell<Scrubber>,
    /// This shard's share of `--replica-scrub-rate` (buckets compared per second).
    budget: RefCell<TokenBucket>,
    apply_errors: Cell<u64>,
    /// The slave link generation the scrub saw and since when; the second of the last
    /// check for an automatic pass.
    link_seen: Cell<(u64, i64)>,
    checked_at: Cell<i64>,
}

impl ScrubSide {
    pub fn new(core: Rc<ShardCore>, slave: Rc<SlaveSide>) -> ScrubSide {
        let repl = &core.cfg.repl;
        ScrubSide {
            scrubber: RefCell::new(Scrubber::new(ScrubConfig {
                overlap: repl.overlap as i64,
                ..ScrubConfig::default()
            })),
            budget: RefCell::new(TokenBucket::share(repl.scrub_rate, repl.shards)),
            apply_errors: Cell::new(0),
            link_seen: Cell::new((0, 0)),
            checked_at: Cell::new(0),
            core,
            slave,
        }
    }

    pub fn link_lost(&self) {
        self.scrubber.borrow_mut().link_lost();
    }

    /// `replication.scrub start` (a new pass over this shard's files) or `stop`.
    pub fn start_stop(&self, start: bool, now: i64) {
        if start {
            let files = self.files();
            tracing::info!(files = files.len(), "replication: scrub pass starts");
            self.scrubber.borrow_mut().start(files, now);
        } else {
            self.scrubber.borrow_mut().stop();
        }
    }

    /// The files of a new pass (this shard's, by wire name).
    fn files(&self) -> Vec<String> {
        let Some(store) = &self.core.store else {
            return Vec::new();
        };
        store
            .list_files()
            .into_iter()
            .filter_map(|(rel, _)| normalise_path(&rel))
            .collect()
    }

    /// A Digest arrived; compare it with the local buckets and queue repairs.
    pub async fn compare(&self, gen: u64, name: &[u8], from: i64, ranges: &[RangeDigest]) {
        let Some(store) = &self.core.store else {
            return;
        };
        let job = self.scrubber.borrow_mut().digest(name, from, ranges.len());
        let job = match job {
            Ok(Some(job)) => job,
            Ok(None) => return,
            Err(e) => return self.slave.fatal(gen, e.text()).await,
        };
        let local = match file_by_wire_name(store, name).await {
            Some((id, iv)) => read_range(store, id, iv, job.from, job.end, None)
                .await
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let diff = scrub::differing(job.from, job.interval, ranges, &local);
        self.scrubber
            .borrow_mut()
            .compared(&job, ranges.len(), &diff);
    }

    /// RepairData arrived; write its buckets over the local ones.
    pub async fn repair(&self, gen: u64, name: &[u8], buckets: Vec<Bucket>) {
        let Some(store) = &self.core.store else {
            return;
        };
        let checked = self.scrubber.borrow_mut().repair_data(name, buckets);
        let keep = match checked {
            Ok(keep) => keep,
            Err(e) => return self.slave.fatal(gen, e.text()).await,
        };
        if keep.is_empty() {
            return;
        }
        let written = match std::str::from_utf8(name).map(|rel| store.lookup(rel)) {
            Ok(Lookup::Found(id)) => store.put_buckets_overwrite(id, &keep).await.is_ok(),
            _ => false,
        };
        if !written {
            self.apply_errors.set(self.apply_errors.get() + 1);
        }
    }

    /// This tick's scrub steps (repairs, files opened, Digests asked) queued on the
    /// slave link; and the automatic passes of `--replica-scrub-interval`.
    pub async fn pump(&self, now: i64) {
        let Some(store) = &self.core.store else {
            return;
        };
        let cfg = &self.core.cfg.repl;
        if cfg.scrub_rate == 0 || self.slave.version() < VERSION_SCRUB {
            return;
        }
        let interval = i64::from(cfg.scrub_interval);
        let due = {
            let sc = self.scrubber.borrow();
            interval > 0
                && match sc.state() {
                    ScrubState::Idle => true,
                    ScrubState::Done => now - sc.ended_at.unwrap_or(0) >= interval,
                    ScrubState::Running | ScrubState::Stopped => false,
                }
        };
        // An automatic pass waits until the link has been up for a while (Discovers of
        // a new link keep coming for some seconds) and this shard's files have caught
        // up; checked once a second.
        let gen = self.slave.gen();
        if self.link_seen.get().0 != gen {
            self.link_seen.set((gen, now));
        }
        let settle = LINK_SETTLE.min(interval);
        if due && self.checked_at.get() != now && now - self.link_seen.get().1 >= settle {
            self.checked_at.set(now);
            let (_, behind, _, _, queued) = self.slave.gauges();
            if behind == 0 && queued == 0 {
                self.start_stop(true, now);
            }
        }
        let mut frames = Vec::new();
        for _ in 0..STEPS_PER_TICK {
            let repair = self.scrubber.borrow_mut().next_repair();
            if let Some(p) = repair {
                p.encode(&mut frames);
                continue;
            }
            if !self.budget.borrow_mut().ready() {
                break;
            }
            let file = self.scrubber.borrow_mut().next_file(now);
            if let Some(name) = file {
                let local = match store.lookup(&name) {
                    Lookup::Found(id) => match store.load_header(id).await {
                        Ok(h) => {
                            let oldest = store.oldest_kept_time(id).await.unwrap_or(0);
                            let newest = store.newest_bucket_time(id).await.unwrap_or(0);
                            Some((
                                i64::from(h.cfg_interval.max(1)),
                                h.file_create_time,
                                oldest,
                                newest,
                            ))
                        }
                        Err(_) => None,
                    },
                    _ => None,
                };
                self.scrubber.borrow_mut().begin_file(&name, local);
                continue;
            }
            let digest = self.scrubber.borrow_mut().next_digest();
            let Some((p, slots)) = digest else { break };
            p.encode(&mut frames);
            self.budget.borrow_mut().spend(slots as f64);
        }
        self.slave.queue_frames(&frames);
    }

    /// `replication.scrub.*` metrics of this shard (`answered`: the master side's
    /// digests and repairs answered).
    pub fn stats(&self, out: &mut Vec<(String, i64)>, answered: (u64, u64)) {
        let sc = self.scrubber.borrow();
        let c = &sc.counters;
        let (done, total) = sc.progress();
        let running = u64::from(sc.state() == ScrubState::Running);
        crate::metrics::push_named(
            out,
            "replication.scrub",
            "running stopped passes_started passes_done files_total files_done \
             files_checked files_missing digests_sent ranges_checked ranges_differing \
             repairs_sent ranges_repaired buckets_repaired buckets_rejected \
             apply_errors bytes digests_answered repairs_answered",
            &[
                running,
                u64::from(sc.state() == ScrubState::Stopped),
                c.passes_started,
                c.passes_done,
                total as u64,
                done as u64,
                c.files_checked,
                c.files_missing,
                c.digests_sent,
                c.ranges_checked,
                c.ranges_differing,
                c.repairs_sent,
                c.ranges_repaired,
                c.buckets_repaired,
                c.buckets_rejected,
                self.apply_errors.get(),
                c.bytes,
                answered.0,
                answered.1,
            ],
        );
    }
}
