//! The daemon's own counters across shards: each shard answers `Stats` with its share
//! of the reference's loopback counters and its port-specific extras; shard 0 merges
//! them (sums, except `*_min` and ages as minimums and lags as maximums).

use istatd_storage::store::StoreStats;

use super::loopback::LoopbackCounters;
use crate::daemon::{Rep, Req, ShardCore};

/// The value of `key` in a list of extras (0 when absent).
pub fn get(v: &[(String, i64)], key: &str) -> i64 {
    v.iter().find(|(n, _)| n == key).map_or(0, |(_, x)| *x)
}

/// Every shard's counters: the merged loopback counters and the merged extras.
pub async fn gather(core: &ShardCore) -> (LoopbackCounters, Vec<(String, i64)>) {
    let names: Vec<String> = core.cfg.retentions.iter().map(|r| r.name.clone()).collect();
    let mut lb = LoopbackCounters::new(&names);
    let mut total: Vec<(String, i64)> = Vec::new();
    for rep in core.rpc.broadcast(Req::Stats).await {
        if let Rep::Stats(shard_lb, v) = rep {
            lb.merge(&shard_lb);
            merge_extras(&mut total, v);
        }
    }
    (lb, total)
}

/// Bytes the allocator has handed out and not had back (glibc's mallinfo2: chunks in
/// use in the arenas plus mmapped ones). Unlike the RSS it leaves out freed memory the
/// allocator keeps, so the perf harness measures per-file state with it. Only on
/// request (admin `stats heap`): mallinfo2 walks every free chunk with the arena
/// locked, ~150 ms on a 2 GB heap (a third of a 500k-file master's CPU when it was
/// part of every `stats`). Off the executor.
pub async fn heap_in_use() -> Option<i64> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let m = glommio::executor()
            .spawn_blocking(|| {
                // SAFETY: mallinfo2 takes no arguments and only reads the allocator's
                // statistics.
                unsafe { libc::mallinfo2() }
            })
            .await;
        Some((m.uordblks + m.hblkhd) as i64)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

/// Add one shard's extras into the total.
pub fn merge_extras(total: &mut Vec<(String, i64)>, shard: Vec<(String, i64)>) {
    for (k, val) in shard {
        match total.iter_mut().find(|(n, _)| *n == k) {
            Some(e) if k.ends_with("_min") || k.ends_with("data_age_seconds") => e.1 = e.1.min(val),
            Some(e) if k.ends_with("lag_seconds") => e.1 = e.1.max(val),
            Some(e) => e.1 += val,
            None => total.push((k, val)),
        }
    }
}

/// A store's counters as extras, `istatd.store.<name>`.
pub fn store_stats(s: &StoreStats, out: &mut Vec<(String, i64)>) {
    // `flush_rounds_min` is merged across shards as a minimum.
    let names = "counters files bad_files too_old page_hits page_misses page_writes \
                 write_ops header_writes write_errors open_files open_files_peak cached_pages \
                 file_opens file_opens_cached flush_rounds_min";
    let values = [
        s.counters,
        s.files,
        s.bad_files,
        s.too_old,
        s.page_hits,
        s.page_misses,
        s.page_writes,
        s.write_ops,
        s.header_writes,
        s.write_errors,
        s.open_files,
        s.open_files_peak,
        s.cached_pages,
        s.fd_opens,
        s.fd_opens_cached,
        s.flush_rounds,
    ];
    for (k, v) in names.split_whitespace().zip(values) {
        out.push((format!("istatd.store.{k}"), v as i64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extras_merge_by_their_kind() {
        let mut t = Vec::new();
        merge_extras(
            &mut t,
            vec![
                ("a".into(), 2),
                ("x_min".into(), 5),
                ("l.lag_seconds".into(), 3),
                ("last_data_age_seconds".into(), 9),
            ],
        );
        merge_extras(
            &mut t,
            vec![
                ("a".into(), 3),
                ("x_min".into(), 4),
                ("l.lag_seconds".into(), 7),
                ("last_data_age_seconds".into(), 2),
                ("b".into(), 1),
            ],
        );
        assert_eq!(get(&t, "a"), 5);
        assert_eq!(get(&t, "x_min"), 4);
        assert_eq!(get(&t, "l.lag_seconds"), 7);
        assert_eq!(get(&t, "last_data_age_seconds"), 2);
        assert_eq!(get(&t, "b"), 1);
        assert_eq!(get(&t, "nothing"), 0);
    }
}
