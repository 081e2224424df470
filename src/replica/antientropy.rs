//! The anti-entropy scrub in the daemon (protocol version 3, `--replica-scrub-rate`):
//! the slave's shards run their [`Scrubber`](istatd_replication::scrub::Scrubber)s
//! over their own files, paced in buckets per second, and the master's shards answer
//! digests and repairs from their stores. The wire and the comparison rules are the
//! replication crate's; this module does the storage reads and writes.

use std::sync::atomic::Ordering;
use std::time::Duration;

use istatd_replication::master::MAX_SCAN_SLOTS;
use istatd_replication::name::normalise_path;
use istatd_replication::pdu::{Pdu, RangeDigest, RANGE_BUCKETS, VERSION_SCRUB};
use istatd_replication::scrub;
use istatd_storage::format::Bucket;
use istatd_storage::store::{FileId, Lookup, Store};

use super::super::Shard;
use super::{requests_inflight, shared, ReplMsg, ScrubState};

/// Seconds a link is up before an automatic pass may start (at most the interval).
const LINK_SETTLE: i64 = 30;

/// Most scrub steps (files opened, Digests and repairs sent) per pump tick.
const STEPS_PER_TICK: usize = 64;

impl Shard {
    /// Valid buckets of a file in [from, end), in slots of at most [`MAX_SCAN_SLOTS`]
    /// per read; `paced` reads spend the master's `--replica-read-rate`.
    async fn scrub_read(
        &self,
        store: &Store,
        id: FileId,
        interval: i64,
        from: i64,
        end: i64,
        paced: bool,
    ) -> Result<Vec<Bucket>, ()> {
        let r = self.repl();
        let mut out = Vec::new();
        let mut at = from;
        while at < end {
            while paced && !r.read_budget.borrow_mut().ready() {
                glommio::timer::sleep(Duration::from_millis(5)).await;
            }
            let (b, next) = store
                .read_valid_buckets(id, at, end - 1, MAX_SCAN_SLOTS, MAX_SCAN_SLOTS)
                .await
                .map_err(|_| ())?;
            if paced {
                let slots = ((next - at) / interval.max(1)).clamp(1, MAX_SCAN_SLOTS as i64);
                let bytes = slots as u64 * 32;
                r.read_budget.borrow_mut().spend(bytes as f64);
                let (rb, ro, rt) = r.read_stats.get();
                r.read_stats.set((rb + bytes, ro + 1, rt));
            }
            out.extend(b);
            if next <= at {
                break;
            }
            at = next;
        }
        Ok(out)
    }

    /// Master: answer a DigestRequest or RepairRequest of a slave connection.
    pub(super) async fn scrub_answer(&self, m: ReplMsg) {
        let Some(store) = &self.store else { return };
        let r = self.repl();
        let (conn, reply) = match m {
            ReplMsg::DigestRequest {
                conn,
                name,
                from,
                ranges,
            } => {
                let mut digests: Vec<RangeDigest> = Vec::new();
                if let Some((id, iv)) = self.scrub_file(store, &name).await {
                    let end = from + i64::from(ranges) * RANGE_BUCKETS * iv;
                    match self.scrub_read(store, id, iv, from, end, true).await {
                        Ok(b) => digests = scrub::digests(from, iv, ranges as usize, &b),
                        Err(()) => tracing::debug!("replication: scrub digest read failed"),
                    }
                }
                let (d, p) = r.scrub_answered.get();
                r.scrub_answered.set((d + 1, p));
                let reply = Pdu::Digest {
                    from,
                    ranges: digests,
                    name,
                };
                (conn, reply)
            }
            ReplMsg::RepairRequest {
                conn,
                name,
                from,
                n,
            } => {
                let mut buckets = Vec::new();
                if let Some((id, iv)) = self.scrub_file(store, &name).await {
                    let end = from + n * iv;
                    if let Ok(b) = self.scrub_read(store, id, iv, from, end, true).await {
                        buckets = b;
                    }
                }
                let (d, p) = r.scrub_answered.get();
                r.scrub_answered.set((d, p + 1));
                (conn, Pdu::RepairData { buckets, name })
            }
            _ => return,
        };
        if let Some(a) = requests_inflight(conn) {
            a.fetch_sub(1, Ordering::SeqCst);
        }
        let frames = reply.to_frame();
        self.repl_send(0, ReplMsg::Out { conn, frames }).await;
    }

    /// A file of this shard's store by its wire name, with its interval.
    async fn scrub_file(&self, store: &Store, name: &[u8]) -> Option<(FileId, i64)> {
        let rel = std::str::from_utf8(name).ok()?;
        let Lookup::Found(id) = store.lookup(rel) else {
            return None;
        };
        let h = store.load_header(id).await.ok()?;
        Some((id, i64::from(h.cfg_interval.max(1))))
    }

    /// Slave: `replication.scrub start` (a new pass over this shard's files) or `stop`.
    pub(in super::super) fn scrub_start_stop(&self, start: bool) {
        let Some(r) = &self.repl else { return };
        if start {
            let files = self.scrub_files();
            tracing::info!(files = files.len(), "replication: scrub pass starts");
            r.scrub
                .borrow_mut()
                .start(files, super::super::clock::now());
        } else {
            r.scrub.borrow_mut().stop();
        }
    }

    /// Slave: the files of a new pass (this shard's, by wire name).
    fn scrub_files(&self) -> Vec<String> {
        let Some(store) = &self.store else {
            return Vec::new();
        };
        store
            .list_files()
            .into_iter()
            .filter_map(|(rel, _)| normalise_path(&rel))
            .collect()
    }

    /// Slave: a Digest arrived; compare it with the local buckets and queue repairs.
    pub(super) async fn scrub_compare(
        &self,
        gen: u64,
        name: &[u8],
        from: i64,
        ranges: &[RangeDigest],
    ) {
        let Some(store) = &self.store else { return };
        let r = self.repl();
        let job = r.scrub.borrow_mut().digest(name, from, ranges.len());
        let job = match job {
            Ok(Some(job)) => job,
            Ok(None) => return,
            Err(e) => {
                let text = e.text();
                self.repl_send(0, ReplMsg::SlaveFatal { gen, text }).await;
                return;
            }
        };
        let local = match self.scrub_file(store, name).await {
            Some((id, iv)) => self
                .scrub_read(store, id, iv, job.from, job.end, false)
                .await
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let diff = scrub::differing(job.from, job.interval, ranges, &local);
        r.scrub.borrow_mut().compared(&job, ranges.len(), &diff);
    }

    /// Slave: RepairData arrived; write its buckets over the local ones.
    pub(super) async fn scrub_repair(&self, gen: u64, name: &[u8], buckets: Vec<Bucket>) {
        let Some(store) = &self.store else { return };
        let r = self.repl();
        let checked = r.scrub.borrow_mut().repair_data(name, buckets);
        let keep = match checked {
            Ok(keep) => keep,
            Err(e) => {
                let text = e.text();
                self.repl_send(0, ReplMsg::SlaveFatal { gen, text }).await;
                return;
            }
        };
        if keep.is_empty() {
            return;
        }
        let written = match std::str::from_utf8(name).map(|rel| store.lookup(rel)) {
            Ok(Lookup::Found(id)) => store.put_buckets_overwrite(id, &keep).await.is_ok(),
            _ => false,
        };
        if !written {
            r.scrub_apply_errors.set(r.scrub_apply_errors.get() + 1);
        }
    }

    /// Slave: this tick's scrub steps (repairs, files opened, Digests asked), encoded
    /// into `frames`; and the automatic passes of `--replica-scrub-interval`.
    pub(super) async fn scrub_pump(&self, store: &Store, now: i64, frames: &mut Vec<u8>) {
        let r = self.repl();
        if self.cfg.repl.scrub_rate == 0
            || shared().slave_version.load(Ordering::SeqCst) < VERSION_SCRUB
        {
            return;
        }
        let interval = i64::from(self.cfg.repl.scrub_interval);
        let due = {
            let sc = r.scrub.borrow();
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
        let gen = r.slave_gen.get();
        if r.scrub_link.get().0 != gen {
            r.scrub_link.set((gen, now));
        }
        let settle = LINK_SETTLE.min(interval);
        if due && r.scrub_checked_at.get() != now && now - r.scrub_link.get().1 >= settle {
            r.scrub_checked_at.set(now);
            let (_, behind, _, _, queued) = r.slave.borrow().gauges();
            if behind == 0 && queued == 0 {
                let files = self.scrub_files();
                tracing::info!(files = files.len(), "replication: scrub pass starts");
                r.scrub.borrow_mut().start(files, now);
            }
        }
        for _ in 0..STEPS_PER_TICK {
            let repair = r.scrub.borrow_mut().next_repair();
            if let Some(p) = repair {
                p.encode(frames);
                continue;
            }
            if !r.scrub_budget.borrow_mut().ready() {
                break;
            }
            let file = r.scrub.borrow_mut().next_file(now);
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
                r.scrub.borrow_mut().begin_file(&name, local);
                continue;
            }
            let digest = r.scrub.borrow_mut().next_digest();
            let Some((p, slots)) = digest else { break };
            p.encode(frames);
            r.scrub_budget.borrow_mut().spend(slots as f64);
        }
    }

    /// `replication.scrub.*` metrics of this shard.
    pub(super) fn scrub_stats(&self, out: &mut Vec<(String, i64)>) {
        let Some(r) = &self.repl else { return };
        let sc = r.scrub.borrow();
        let c = &sc.counters;
        let (done, total) = sc.progress();
        let running = u64::from(sc.state() == ScrubState::Running);
        let (digests_answered, repairs_answered) = r.scrub_answered.get();
        for (k, v) in [
            ("running", running),
            ("stopped", u64::from(sc.state() == ScrubState::Stopped)),
            ("passes_started", c.passes_started),
            ("passes_done", c.passes_done),
            ("files_total", total as u64),
            ("files_done", done as u64),
            ("files_checked", c.files_checked),
            ("files_missing", c.files_missing),
            ("digests_sent", c.digests_sent),
            ("ranges_checked", c.ranges_checked),
            ("ranges_differing", c.ranges_differing),
            ("repairs_sent", c.repairs_sent),
            ("ranges_repaired", c.ranges_repaired),
            ("buckets_repaired", c.buckets_repaired),
            ("buckets_rejected", c.buckets_rejected),
            ("apply_errors", r.scrub_apply_errors.get()),
            ("bytes", c.bytes),
            ("digests_answered", digests_answered),
            ("repairs_answered", repairs_answered),
        ] {
            out.push((format!("replication.scrub.{k}"), v as i64));
        }
    }
}
