//! Shard 0 records the daemon's own counters into its store, as the reference's
//! LoopbackCounter does (every 500 ms and at admin `flush`), and samples the host for
//! `--local-stats` every 5 s; both go through the same path as stat lines.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use istatd_storage::counter::Sample;

use super::gather;
use super::loopback::{Loopback, LoopbackRecorder, RECORD_INTERVAL_MS};
use crate::clock;
use crate::daemon::ShardCore;
use crate::ingest::{Ingest, Op, SampleRec, INTERNAL_SOURCE};
use crate::statline::ParsedBatch;

pub struct Recording {
    core: Rc<ShardCore>,
    ingest: Rc<Ingest>,
    recorder: RefCell<LoopbackRecorder>,
    /// Whether this node is a slave now (its store is written only by replication).
    acting_slave: Box<dyn Fn() -> bool>,
}

impl Recording {
    pub fn new(
        core: Rc<ShardCore>,
        ingest: Rc<Ingest>,
        acting_slave: Box<dyn Fn() -> bool>,
    ) -> Recording {
        Recording {
            core,
            ingest,
            recorder: RefCell::new(LoopbackRecorder::new()),
            acting_slave,
        }
    }

    /// Record the internal counters now as `istatd.*` counters.
    pub async fn record_loopback(&self) {
        if self.core.store_less() || (self.acting_slave)() {
            return;
        }
        let (total, _) = gather::gather(&self.core).await;
        let samples = self.recorder.borrow_mut().samples(&total);
        if samples.is_empty() {
            return;
        }
        let now = clock::now();
        let mut router = self.ingest.router();
        for smp in samples {
            let (event, key) = match smp.key.strip_prefix('*') {
                Some(k) => (true, k),
                None => (false, smp.key.as_str()),
            };
            self.ingest.ensure_parents(key, event, now, &mut router);
            let rec = SampleRec {
                event,
                op: Op::Internal,
                source: INTERNAL_SOURCE,
                sample: Sample::value(now, smp.value as f64),
            };
            router.push(key, rec);
        }
        self.ingest.dispatch(&mut router).await;
    }

    /// Every 500 ms: the process's memory (every 5 s) and a recording.
    pub async fn loopback_loop(&self) {
        let mut ticks = 0u64;
        let every = Duration::from_millis(RECORD_INTERVAL_MS);
        while !self.core.shutdown.sleep(every).await {
            ticks += 1;
            if ticks.is_multiple_of(10) {
                let mem = glommio::executor().spawn_blocking(process_memory).await;
                if let Some((vmsize, vmrss)) = mem {
                    let mut lb = self.core.lb.borrow_mut();
                    lb.set(Loopback::AppMemoryVmsize, vmsize);
                    lb.set(Loopback::AppMemoryVmrss, vmrss);
                }
            }
            self.record_loopback().await;
        }
    }

    /// `--local-stats`: sample the host every 5 s (aligned) and feed the lines through
    /// the stat-line path (docs/interfaces.md §2.11). The first sample only initializes.
    pub async fn local_stats_loop(&self, suffix: String) {
        let mut sampler = crate::metrics::localstats::Sampler::new();
        let mut first = true;
        let mut parsed = ParsedBatch::new();
        let mut router = self.ingest.router();
        loop {
            if !first {
                let now = clock::now();
                let wait =
                    (crate::metrics::localstats::next_local_stats_time(now) - now).max(1) as u64;
                glommio::timer::sleep(Duration::from_secs(wait)).await;
            }
            if self.core.shutdown.is_requested() {
                return;
            }
            if (self.acting_slave)() {
                continue;
            }
            let texts = glommio::executor()
                .spawn_blocking(crate::metrics::localstats::read_proc)
                .await;
            let Ok(texts) = texts else { continue };
            let metrics = sampler.sample_from(&texts);
            if std::mem::take(&mut first) {
                continue;
            }
            let now = clock::now();
            let rec = self.ingest.existing_udp_meta();
            for line in crate::metrics::localstats::lines(&metrics, &suffix, now) {
                self.ingest.parse_line(
                    line.as_bytes(),
                    now,
                    INTERNAL_SOURCE,
                    &mut parsed,
                    &mut router,
                    rec.as_ref(),
                );
            }
            self.ingest.dispatch(&mut router).await;
        }
    }
}

/// (VmSize, VmRSS) in bytes from /proc/self/statm. Blocking: off the executors.
fn process_memory() -> Option<(i64, i64)> {
    let text = std::fs::read_to_string("/proc/self/statm").ok()?;
    let mut it = text.split_whitespace().map(|v| v.parse::<i64>().ok());
    let page = 4096;
    Some((it.next()?? * page, it.next()?? * page))
}
