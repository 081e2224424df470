//! The pacing of a shard's flush round: every counter is flushed once per `--flush`
//! period, spread evenly over it instead of all at once (no I/O storm at the top of the
//! period), several per tick when there are more counters than ticks.

use std::future::Future;
use std::time::Duration;

use crate::shutdown::Shutdown;

/// Shortest and longest pause between two steps of a round.
const MIN_TICK_MS: u64 = 2;
const MAX_TICK_MS: u64 = 3000;

/// What a shard flushes: its store, seen as a round of items.
pub trait FlushRound {
    /// Items in a round now (counters).
    fn items(&self) -> usize;
    /// Flush up to `n` next items of the round at once, their disk writes overlapping;
    /// how many were flushed (fewer than `n`: nothing more to flush now). `n` is at
    /// most [`Self::items`], so no item comes twice in one call.
    fn flush_some(&self, n: usize) -> impl Future<Output = usize>;
}

/// Items flushed at once: one at a time, a round's pace was bound by the disk's
/// latency (25,000 counters a shard at `--flush 1` took several seconds a round).
pub const FLUSH_BATCH: usize = 32;

#[derive(Debug, Clone, Copy)]
pub struct FlushPacer {
    period_ms: u64,
}

impl FlushPacer {
    pub fn new(period: Duration) -> FlushPacer {
        FlushPacer {
            period_ms: (period.as_millis() as u64).max(1000),
        }
    }

    /// The pause between steps and the items per step for a round of `items`.
    pub fn step(&self, items: usize) -> (Duration, usize) {
        let n = items.max(1) as u64;
        let tick = (self.period_ms / (n + 1)).clamp(MIN_TICK_MS, MAX_TICK_MS);
        let per_tick = ((n + 1) * tick).div_ceil(self.period_ms).max(1);
        (Duration::from_millis(tick), per_tick as usize)
    }

    /// Flush `round` for ever, paced, until a shutdown is requested.
    ///
    /// The pace is kept against the clock, not per tick: the time the flushes
    /// themselves take counts, so a round of `items` takes about one period even when
    /// each flush waits on the disk (a fixed sleep between fixed batches made a
    /// 1-second round of 5,000 files take 1.25 s and more under load, and the
    /// replication lag with it). Behind by more than a round, it stops catching up.
    pub async fn run<F: FlushRound>(&self, round: &F, shutdown: &Shutdown) {
        let mut last = std::time::Instant::now();
        // Items owed by the clock, in thousandths of an item.
        let mut owed_milli: u64 = 0;
        loop {
            let items = round.items();
            let (tick, _) = self.step(items);
            glommio::timer::sleep(tick).await;
            if shutdown.is_requested() {
                return;
            }
            let now = std::time::Instant::now();
            let elapsed_ms = now.duration_since(last).as_millis() as u64;
            last = now;
            let per_round = (items as u64 + 1) * 1000;
            owed_milli = owed_milli
                .saturating_add(per_round.saturating_mul(elapsed_ms) / self.period_ms)
                .min(per_round);
            let due = owed_milli / 1000;
            let mut flushed = 0;
            while flushed < due {
                let n = (due - flushed)
                    .min(FLUSH_BATCH as u64)
                    .min(items.max(1) as u64);
                let done = round.flush_some(n as usize).await as u64;
                flushed += done;
                if done < n {
                    break;
                }
            }
            // Nothing to flush is no debt.
            owed_milli = if flushed < due {
                0
            } else {
                owed_milli - due * 1000
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A round of `items` whose every flush waits `latency` (the disk), counting
    /// flushes and the most at once.
    struct SlowRound {
        items: usize,
        latency: Duration,
        flushed: Cell<usize>,
        at_once_max: Cell<usize>,
    }

    impl FlushRound for SlowRound {
        fn items(&self) -> usize {
            self.items
        }

        async fn flush_some(&self, n: usize) -> usize {
            self.at_once_max.set(self.at_once_max.get().max(n));
            glommio::timer::sleep(self.latency).await;
            self.flushed.set(self.flushed.get() + n);
            n
        }
    }

    /// 5,000 items a 1 s round, each flush taking 2 ms: one at a time that is 10 s a
    /// round; with batches the round keeps to its period.
    #[test]
    fn slow_flushes_still_keep_the_round() {
        let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .spawn(|| async {
                let round = SlowRound {
                    items: 5000,
                    latency: Duration::from_millis(2),
                    flushed: Cell::new(0),
                    at_once_max: Cell::new(0),
                };
                let shutdown = Shutdown::new(1);
                let stop = shutdown.clone();
                let pacer = FlushPacer::new(Duration::from_secs(1));
                glommio::spawn_local(async move {
                    glommio::timer::sleep(Duration::from_millis(2500)).await;
                    stop.request();
                })
                .detach();
                pacer.run(&round, &shutdown).await;
                (round.flushed.get(), round.at_once_max.get())
            })
            .unwrap();
        let (flushed, at_once) = ex.join().unwrap();
        assert!(
            (9_000..=13_000).contains(&flushed),
            "{flushed} flushes in 2.5 rounds of 5,000"
        );
        assert!(at_once > 1 && at_once <= FLUSH_BATCH, "{at_once} at once");
    }

    #[test]
    fn a_round_takes_about_one_period() {
        let p = FlushPacer::new(Duration::from_secs(10));
        for items in [1usize, 10, 1000, 5000, 100_000, 500_000] {
            let (tick, per) = p.step(items);
            let ticks = (items as u64).div_ceil(per as u64);
            let round_ms = ticks * tick.as_millis() as u64;
            assert!(
                (5_000..=11_000).contains(&round_ms) || items == 1,
                "{items} items: {round_ms} ms"
            );
        }
        // Few counters: long pauses, one at a time.
        assert_eq!(p.step(1), (Duration::from_millis(3000), 1));
    }
}
