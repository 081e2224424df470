//! The store on a real directory: persistence across reopen, bad files left alone,
//! the descriptor bound, sparse allocation, queries and the replication operations.

use std::path::PathBuf;

use glommio::{LocalExecutorBuilder, Placement};
use istatd_storage::counter::Sample;
use istatd_storage::format::{Bucket, CreateParams, PAGE_SIZE};
use istatd_storage::query::QueryParams;
use istatd_storage::retention::parse_retentions;
use istatd_storage::store::{Allocation, IoMode, Lookup, Store, StoreOptions};
use istatd_storage::tools;

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("istatd-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn run<F: std::future::Future<Output = ()> + 'static>(f: impl FnOnce() -> F + Send + 'static) {
    LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(1 << 20)
        .spawn(move || async move { f().await })
        .unwrap()
        .join()
        .unwrap();
}

fn opts(dir: &PathBuf) -> StoreOptions {
    StoreOptions::new(dir, parse_retentions("10s:1h,5m:1d").unwrap())
}

const NOW: i64 = 1_600_000_000;

/// A 10 s file of `page_count` pages whose zero time is [`NOW`].
fn params_10s(page_count: i64) -> CreateParams {
    CreateParams {
        interval: 10,
        page_count,
        flags: 0,
        zero_time: NOW,
        lambda: 0.0,
        season: 0,
        fixed_count: 0,
        unit: String::new(),
        name: String::new(),
    }
}

/// The sums of a query's buckets that hold data.
fn nonempty_sums(r: &istatd_storage::query::QueryResult) -> Vec<f64> {
    r.buckets
        .iter()
        .filter(|b| b.count > 0)
        .map(|b| b.sum)
        .collect()
}

#[test]
fn data_survives_reopen_and_queries_see_unflushed_writes() {
    survives_reopen(IoMode::Buffered, "reopen");
}

#[test]
fn data_survives_reopen_with_o_direct() {
    survives_reopen(IoMode::Direct, "reopen-direct");
}

fn survives_reopen(io: IoMode, name: &str) {
    let dir = temp_dir(name);
    let d = dir.clone();
    let opts = move |d: &PathBuf| StoreOptions { io, ..opts(d) };
    run(move || async move {
        let store = Store::open(opts(&d)).await.unwrap();
        for k in 0..30 {
            store
                .record(
                    "a.b",
                    false,
                    Sample::value(NOW + 10 * k, k as f64),
                    NOW + 300,
                )
                .await
                .unwrap();
        }
        // Not flushed yet: the query reads the page cache.
        let q = QueryParams {
            start: NOW,
            end: NOW + 290,
            max_samples: 0,
            trailing: false,
        };
        let r = store.query("a.b", &q, NOW + 300).await.unwrap().unwrap();
        assert_eq!(r.interval, 10);
        // Every bucket in [start, end) of the normalized range, each holding its sample.
        assert_eq!(r.buckets.len() as i64, (r.end - r.start) / 10);
        assert!(r
            .buckets
            .iter()
            .all(|b| b.sum == ((b.time - NOW) / 10) as f64));
        assert_eq!(r.buckets[7].sum, 7.0);
        assert!(store.query("nope", &q, NOW).await.unwrap().is_none());
        store.close(NOW + 300).await.unwrap();
        drop(store);

        let store = Store::open(opts(&d)).await.unwrap();
        assert_eq!(
            store.counter_keys(),
            vec!["a".to_string(), "a.b".to_string()]
        );
        let r = store.query("a.b", &q, NOW + 300).await.unwrap().unwrap();
        assert_eq!(r.buckets.len() as i64, (r.end - r.start) / 10);
        assert_eq!(r.buckets[28].sum, 28.0);
        // The parent exists with empty files.
        let r = store.query("a", &q, NOW + 300).await.unwrap().unwrap();
        assert!(r.buckets.is_empty());
    });
    let dump = tools::dump_csv(&std::fs::read(dir.join("a/b/10s")).unwrap()).unwrap();
    assert_eq!(dump.lines().count(), 31);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_file_is_refused_counted_and_left_untouched() {
    let dir = temp_dir("bad");
    std::fs::create_dir_all(dir.join("x")).unwrap();
    let junk: Vec<u8> = (0..20000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(dir.join("x/10s"), &junk).unwrap();
    let d = dir.clone();
    run(move || async move {
        let store = Store::open(opts(&d)).await.unwrap();
        let Lookup::Found(id) = store.lookup("x/10s") else {
            panic!("scan should index x/10s")
        };
        let err = store.load_header(id).await.unwrap_err();
        assert!(err.to_string().contains("x/10s"), "{err}");
        assert_eq!(store.lookup("x/10s"), Lookup::Bad);
        assert!(store
            .record("x", false, Sample::value(NOW, 1.0), NOW)
            .await
            .is_err());
        assert_eq!(store.stats().bad_files, 1);
        // Other counters keep working.
        store
            .record("y", false, Sample::value(NOW, 1.0), NOW)
            .await
            .unwrap();
        store.close(NOW).await.unwrap();
    });
    assert_eq!(
        std::fs::read(dir.join("x/10s")).unwrap(),
        junk,
        "never modified"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn descriptors_stay_within_the_bound() {
    let dir = temp_dir("fds");
    let d = dir.clone();
    run(move || async move {
        let mut o = opts(&d);
        o.max_open_files = 8;
        o.page_cache_pages = 16;
        o.allocation = Allocation::Sparse;
        let store = Store::open(o).await.unwrap();
        for round in 0..3 {
            for c in 0..60 {
                let t = NOW + 10 * round;
                store
                    .record(
                        &format!("f.c{c}"),
                        false,
                        Sample::value(t, c as f64),
                        NOW + 100,
                    )
                    .await
                    .unwrap();
            }
        }
        store.flush_all(false, NOW + 100).await.unwrap();
        let st = store.stats();
        // One in-flight user may hold an evicted descriptor a moment longer.
        assert!(
            st.open_files_peak <= 8 + 2,
            "peak {} descriptors",
            st.open_files_peak
        );
        assert!(st.fd_opens > 8, "descriptors were recycled");
        // Files just made are in the directory cache: reopened without io_uring.
        assert!(
            st.fd_opens_cached > 0 && st.fd_opens_cached <= st.fd_opens,
            "{} of {} opens from the directory cache",
            st.fd_opens_cached,
            st.fd_opens
        );
        let q = QueryParams {
            start: NOW,
            end: NOW + 20,
            max_samples: 0,
            trailing: false,
        };
        for c in [0, 31, 59] {
            let r = store
                .query(&format!("f.c{c}"), &q, NOW + 100)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                r.buckets.len() as i64,
                (r.end - r.start) / 10,
                "counter {c}"
            );
            assert!(r.buckets.len() >= 2, "counter {c}");
            assert!(r.buckets.iter().all(|b| b.sum == c as f64));
        }
    });
    // Sparse: the file's blocks are mostly holes.
    let meta = std::fs::metadata(dir.join("f/c0/10s")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(meta.len(), 3 * PAGE_SIZE as u64);
    assert!(meta.blocks() * 512 < meta.len(), "sparse file has holes");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn full_allocation_reserves_every_block() {
    let dir = temp_dir("full");
    let d = dir.clone();
    run(move || async move {
        let o = StoreOptions {
            io: IoMode::Direct,
            ..opts(&d)
        };
        let store = Store::open(o).await.unwrap();
        store
            .record("g", false, Sample::value(NOW, 1.0), NOW)
            .await
            .unwrap();
        store.close(NOW).await.unwrap();
    });
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir.join("g/5m")).unwrap();
    assert!(meta.blocks() * 512 >= meta.len());
    // Created with O_DIRECT (where the file system takes it), and written since only
    // by O_DIRECT flushes (`--store-io direct`): no page of either file is left in the kernel's page cache.
    if direct_io_works(&dir) {
        for f in ["g/10s", "g/5m"] {
            assert_eq!(resident_pages(&dir.join(f)), 0, "{f}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn direct_io_works(dir: &std::path::Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(dir.join("direct-probe"))
        .is_ok()
}

/// Pages of a file in the kernel's page cache (mincore over a mapping of it).
fn resident_pages(p: &std::path::Path) -> usize {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(p).unwrap();
    let len = f.metadata().unwrap().len() as usize;
    let page = 4096;
    let mut vec = vec![0u8; len.div_ceil(page)];
    // SAFETY: a read-only shared mapping of a file we opened, unmapped below; mincore
    // writes one byte per page into `vec`, which has that many.
    unsafe {
        let addr = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        );
        assert_ne!(addr, libc::MAP_FAILED);
        assert_eq!(libc::mincore(addr, len, vec.as_mut_ptr()), 0);
        libc::munmap(addr, len);
    }
    vec.iter().filter(|&&b| b & 1 != 0).count()
}

#[test]
fn replication_operations() {
    let dir = temp_dir("repl");
    let d = dir.clone();
    run(move || async move {
        let store = Store::open(opts(&d)).await.unwrap();
        let params = params_10s(2);
        assert!(store
            .create_file_like("../evil/10s", params.clone())
            .await
            .is_err());
        assert!(store
            .create_file_like("/abs/10s", params.clone())
            .await
            .is_err());
        let bad_zero = CreateParams {
            zero_time: NOW + 3,
            ..params.clone()
        };
        assert!(store.create_file_like("r/10s", bad_zero).await.is_err());
        let id = store
            .create_file_like("r/10s", params.clone())
            .await
            .unwrap();
        assert!(
            store.create_file_like("r/10s", params).await.is_err(),
            "exists"
        );
        assert_eq!(store.newest_bucket_time(id).await.unwrap(), 0);
        let buckets: Vec<Bucket> = (0..10)
            .map(|k| Bucket::sample(NOW + 10 * k, k as f64))
            .collect();
        let r = store.put_buckets_overwrite(id, &buckets).await.unwrap();
        assert_eq!(r.written, 10);
        assert_eq!(store.newest_bucket_time(id).await.unwrap(), NOW + 90);
        store.flush_file(id).await.unwrap();
        let before = std::fs::read(d.join("r/10s")).unwrap();
        store.put_buckets_overwrite(id, &buckets).await.unwrap();
        store.flush_file(id).await.unwrap();
        assert_eq!(
            std::fs::read(d.join("r/10s")).unwrap(),
            before,
            "idempotent"
        );
        let (got, next) = store
            .read_valid_buckets(id, NOW + 25, NOW + 200, 4, 1000)
            .await
            .unwrap();
        assert_eq!(
            got.iter().map(|b| b.time).collect::<Vec<_>>(),
            vec![NOW + 30, NOW + 40, NOW + 50, NOW + 60]
        );
        assert_eq!(next, NOW + 70);
        assert_eq!(store.list_files().len(), 1);
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// Replicated chunks that fill whole pages are written without reading those pages,
/// over a file that is on disk (not fresh) and out of a tiny page cache; slots a chunk
/// does not fill keep what they held (gaps never erase).
#[test]
fn whole_page_overwrites_skip_the_read_and_keep_other_slots() {
    let dir = temp_dir("wholepage");
    let d = dir.clone();
    run(move || async move {
        let mut o = opts(&d);
        o.page_cache_pages = 2;
        let store = Store::open(o).await.unwrap();
        let params = params_10s(8);
        let id = store.create_file_like("w/10s", params).await.unwrap();
        // Old data in every slot, flushed: the file is no longer fresh.
        let old: Vec<Bucket> = (0..2048)
            .map(|k| Bucket::sample(NOW + 10 * k, -1.0))
            .collect();
        store.put_buckets_overwrite(id, &old).await.unwrap();
        store.flush_file(id).await.unwrap();
        // New data for all of pages 0-3 (256 slots each), and every other slot of
        // pages 4-7.
        let new: Vec<Bucket> = (0..2048)
            .filter(|&k| k < 1024 || k % 2 == 0)
            .map(|k| Bucket::sample(NOW + 10 * k, k as f64))
            .collect();
        let misses_before = store.stats().page_misses;
        let r = store.put_buckets_overwrite(id, &new).await.unwrap();
        assert_eq!(r.written as usize, new.len());
        let misses = store.stats().page_misses - misses_before;
        assert!(
            misses <= 4,
            "only the partly filled pages are read: {misses} misses"
        );
        store.flush_file(id).await.unwrap();
        let (got, _) = store
            .read_valid_buckets(id, NOW, NOW + 10 * 2047, 2048, 2048)
            .await
            .unwrap();
        assert_eq!(got.len(), 2048);
        for (k, b) in got.iter().enumerate() {
            let want = if k < 1024 || k % 2 == 0 {
                k as f64
            } else {
                -1.0
            };
            assert_eq!((b.time, b.sum), (NOW + 10 * k as i64, want), "slot {k}");
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// Events of other connections that arrive after their counter's window has moved past
/// them (back-to-back connections read by different shards) end up in the files as if
/// they had come in order, where the reference rejects them as from_past. An event
/// older than the finest file's ring still is, and so is one of the connection that
/// moved the window.
#[test]
fn late_events_are_merged_as_if_they_came_in_order() {
    let dir = temp_dir("lateevents");
    let d = dir.clone();
    run(move || async move {
        let sent = [(0, 10.0), (1, 10.0), (2, 10.0), (60, 100.0), (120, 100.0)];
        let sent = [
            &sent[..],
            &[(180, 100.0), (500, 1e3), (600, 1e3), (900, 1e3)],
        ]
        .concat();
        let arrivals = [3, 0, 1, 2, 4, 5, 8, 6, 7];
        let now = NOW + 1000;
        let mut files = Vec::new();
        for (name, order) in [
            ("in_order", (0..9).collect::<Vec<_>>()),
            ("late", arrivals.to_vec()),
        ] {
            let store = Store::open(opts(&d.join(name))).await.unwrap();
            for &i in &order {
                let (dt, v) = sent[i];
                // Each sample on its own connection, as back-to-back connections.
                let out = store
                    .record_from("ev", true, Sample::value(NOW + dt, v), now, i as u32 + 1)
                    .await
                    .unwrap();
                assert_eq!(out.rejected, None, "{name}: event at +{dt}");
            }
            let stats = store.stats();
            assert_eq!(stats.from_past, 0, "{name}");
            assert_eq!(
                stats.late_events,
                if name == "late" { 5 } else { 0 },
                "{name}"
            );
            if name == "late" {
                // Older than the 10s file's ring (an hour, rounded up to whole pages):
                // still from_past.
                let out = store
                    .record("ev", true, Sample::value(NOW - 6000, 1.0), now)
                    .await
                    .unwrap();
                assert_eq!(
                    out.rejected,
                    Some(istatd_storage::counter::Reject::FromPast)
                );
                // Late from the connection that moved the window (the one at +900):
                // from the past, as the reference (its own stream's order).
                let out = store
                    .record_from("ev", true, Sample::value(NOW + 400, 1.0), now, 9)
                    .await
                    .unwrap();
                assert_eq!(
                    out.rejected,
                    Some(istatd_storage::counter::Reject::FromPast)
                );
            }
            store.flush_all(true, now).await.unwrap();
            store.close(now).await.unwrap();
            let store = Store::open(opts(&d.join(name))).await.unwrap();
            let mut per_file = Vec::new();
            for f in ["ev/10s", "ev/5m"] {
                let Lookup::Found(id) = store.lookup(f) else {
                    panic!("{name}: {f}")
                };
                let (b, _) = store
                    .read_valid_buckets(id, NOW - 600, NOW + 1200, 1000, 1000)
                    .await
                    .unwrap();
                // Empty buckets differ (a window writes its empty slots, a late event
                // has no window); they read as no data either way.
                per_file.push(b.into_iter().filter(|b| b.count > 0).collect::<Vec<_>>());
            }
            files.push(per_file);
        }
        let (in_order, late) = (&files[0], &files[1]);
        assert_eq!(in_order[0], late[0], "10s buckets");
        assert!(in_order[0].iter().any(|b| b.time == NOW && b.sum == 3.0));
        // The coarse file: the same sums, squares, maxima and counts. The minimum of the
        // bucket whose slot took late events keeps that slot's first merged rate.
        assert_eq!(in_order[1].len(), late[1].len(), "5m buckets");
        for (a, b) in in_order[1].iter().zip(late[1].iter()) {
            assert_eq!(
                (a.time, a.sum, a.sum_sq, a.max, a.count),
                (b.time, b.sum, b.sum_sq, b.max, b.count),
                "5m bucket"
            );
            assert!(b.min <= a.min);
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// A store that becomes a replica closes its event windows first, and after leaving
/// replica mode (a promotion) a new window starts from the replicated buckets: no
/// empty bucket ever replaces a replicated one.
#[test]
fn event_windows_never_write_over_replicated_buckets() {
    let dir = temp_dir("eventrepl");
    let d = dir.clone();
    run(move || async move {
        let store = Store::open(opts(&d)).await.unwrap();
        // Local events, then the store becomes a replica.
        for k in 0..3 {
            let t = NOW + 10 * k;
            store
                .record("ev", true, Sample::value(t, 10.0), t)
                .await
                .unwrap();
        }
        store.enter_replica_mode(NOW + 30).await.unwrap();
        let Lookup::Found(id) = store.lookup("ev/10s") else {
            panic!("the event counter's 10s file")
        };
        // The local events were written when the window closed.
        let (local, _) = store
            .read_valid_buckets(id, NOW, NOW + 20, 10, 10)
            .await
            .unwrap();
        assert_eq!(local.len(), 3, "local events written before replicating");
        // Replicated buckets from the master, later in time.
        let t1 = NOW + 600;
        // Collated buckets as the master writes them: one value (a rate), count 1.
        let replicated: Vec<Bucket> = (0..20).map(|k| Bucket::sample(t1 + 10 * k, 0.5)).collect();
        store.put_buckets_overwrite(id, &replicated).await.unwrap();
        store.flush_all(false, t1 + 200).await.unwrap();
        // Promotion: replica mode off, then events inside the replicated range.
        store.set_replica_mode(false);
        let t = t1 + 100;
        store
            .record("ev", true, Sample::value(t, 10.0), t)
            .await
            .unwrap();
        store.flush_all(true, t + 300).await.unwrap();
        store.close(t + 300).await.unwrap();
        let (got, _) = store
            .read_valid_buckets(id, t1, t1 + 190, 100, 100)
            .await
            .unwrap();
        assert_eq!(got.len(), 20, "every replicated bucket still valid");
        for b in &got {
            assert!(
                b.count == 1 && b.sum >= 0.5,
                "bucket at {}: count {}, sum {}",
                b.time,
                b.count,
                b.sum
            );
        }
        let at_t = got.iter().find(|b| b.time == t).unwrap();
        assert_eq!(
            at_t.sum, 1.5,
            "the new event (10 / 10 s) added to the replicated rate"
        );
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_flush_with_nothing_new_writes_no_header() {
    let dir = temp_dir("idle-flush");
    let d = dir.clone();
    run(move || async move {
        let store = Store::open(opts(&d)).await.unwrap();
        store
            .record("idle.one", false, Sample::value(NOW, 1.0), NOW + 10)
            .await
            .unwrap();
        store.flush_all(false, NOW + 20).await.unwrap();
        let first = store.stats();
        assert!(first.header_writes >= 2, "both retentions' headers written");
        // Nothing changed: a second and third round write nothing.
        store.flush_all(false, NOW + 30).await.unwrap();
        store.flush_all(false, NOW + 40).await.unwrap();
        let idle = store.stats();
        assert_eq!(idle.header_writes, first.header_writes);
        assert_eq!(idle.write_ops, first.write_ops);
        // A new sample changes the header (last bucket): written again.
        store
            .record("idle.one", false, Sample::value(NOW + 50, 2.0), NOW + 60)
            .await
            .unwrap();
        store.flush_all(false, NOW + 70).await.unwrap();
        assert!(store.stats().header_writes > idle.header_writes);
        store.close(NOW + 80).await.unwrap();
        drop(store);
        // What the skipped flushes left on disk is what the last write put there.
        let store = Store::open(opts(&d)).await.unwrap();
        let q = QueryParams {
            start: NOW,
            end: NOW + 60,
            max_samples: 0,
            trailing: false,
        };
        let r = store
            .query("idle.one", &q, NOW + 80)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(nonempty_sums(&r), vec![1.0, 2.0]);
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn page_cache_hits_and_misses_are_counted_by_retention() {
    let dir = temp_dir("page-counts");
    let d = dir.clone();
    run(move || async move {
        let store = Store::open(opts(&d)).await.unwrap();
        assert_eq!(store.page_counts_by_retention(), vec![[0, 0], [0, 0]]);
        store
            .record("pc.one", false, Sample::value(NOW, 1.0), NOW + 10)
            .await
            .unwrap();
        store.flush_all(false, NOW + 20).await.unwrap();
        store.close(NOW + 30).await.unwrap();
        drop(store);
        // Reopened: the first query of the 10 s file reads its page from disk (a
        // miss of retention 0); the flush of a merge into it then finds it cached.
        let store = Store::open(opts(&d)).await.unwrap();
        let q = QueryParams {
            start: NOW,
            end: NOW + 10,
            max_samples: 0,
            trailing: false,
        };
        store.query("pc.one", &q, NOW + 40).await.unwrap().unwrap();
        let after_query = store.page_counts_by_retention();
        assert!(after_query[0][1] >= 1, "{after_query:?}");
        // Two samples in one 10 s bucket: the second merges into the first's slot.
        store
            .record("pc.one", false, Sample::value(NOW + 40, 2.0), NOW + 45)
            .await
            .unwrap();
        store
            .record("pc.one", false, Sample::value(NOW + 41, 3.0), NOW + 45)
            .await
            .unwrap();
        store.flush_all(false, NOW + 50).await.unwrap();
        let counts = store.page_counts_by_retention();
        let s = store.stats();
        assert_eq!(
            counts.iter().map(|c| c[0]).sum::<u64>(),
            s.page_hits,
            "{counts:?}"
        );
        assert_eq!(
            counts.iter().map(|c| c[1]).sum::<u64>(),
            s.page_misses,
            "{counts:?}"
        );
        assert!(counts[0][0] + counts[0][1] > after_query[0][0] + after_query[0][1]);
        assert!(
            counts[1][0] + counts[1][1] > 0,
            "the 5 m file's pages: {counts:?}"
        );
        store.close(NOW + 60).await.unwrap();
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// After a clean close, loading a file reads no page past its last bucket (half the
/// page loads or fewer here), and the data reads and grows as after an unclean one.
/// (What the tail check finds after a crash: statfile's own tests.)
#[test]
fn a_clean_close_spares_the_tail_pages_at_load() {
    let dir = temp_dir("clean-close");
    let d = dir.clone();
    run(move || async move {
        let keys: Vec<String> = (0..40).map(|i| format!("cc.k{i}")).collect();
        {
            let store = Store::open(opts(&d)).await.unwrap();
            for k in &keys {
                store
                    .record(k, false, Sample::value(NOW, 1.0), NOW)
                    .await
                    .unwrap();
            }
            store.close(NOW).await.unwrap();
        }
        // A later sample in a new bucket of each counter: load, then a write that
        // needs no page when the tail is known to be empty.
        let mut misses = Vec::new();
        for clean in [false, true] {
            let mut o = opts(&d);
            o.closed_cleanly = clean;
            let store = Store::open(o).await.unwrap();
            let t = NOW + if clean { 600 } else { 300 };
            for k in &keys {
                store
                    .record(k, false, Sample::value(t, 2.0), t)
                    .await
                    .unwrap();
            }
            misses.push(store.stats().page_misses);
            let q = QueryParams {
                start: NOW,
                end: NOW + 610,
                max_samples: 0,
                trailing: false,
            };
            let r = store.query("cc.k7", &q, t).await.unwrap().unwrap();
            let want: &[f64] = if clean { &[1.0, 2.0, 2.0] } else { &[1.0, 2.0] };
            assert_eq!(nonempty_sums(&r), want, "clean {clean}");
            store.close(t).await.unwrap();
        }
        assert!(
            misses[1] * 2 <= misses[0],
            "page loads: {} unclean, {} clean",
            misses[0],
            misses[1]
        );
    });
    let _ = std::fs::remove_dir_all(&dir);
}

/// A file whose only bucket is index 0 keeps that bucket visible to replication across
/// a reopen (`newest_bucket_time`), and opening files reads no page into the cache:
/// the first sample after a restart would dirty it and evict it, one write per file.
#[test]
fn reopen_finds_an_index0_bucket_without_caching_its_page() {
    for closed_cleanly in [true, false] {
        let dir = temp_dir(&format!("index0-{closed_cleanly}"));
        let d = dir.clone();
        run(move || async move {
            let store = Store::open(opts(&d)).await.unwrap();
            store
                .record("one.sample", false, Sample::value(NOW, 4.0), NOW + 5)
                .await
                .unwrap();
            let params = params_10s(2);
            store.create_file_like("empty/10s", params).await.unwrap();
            store.close(NOW + 5).await.unwrap();
            drop(store);

            let store = Store::open(StoreOptions {
                closed_cleanly,
                ..opts(&d)
            })
            .await
            .unwrap();
            let id_of = |rel: &str| match store.lookup(rel) {
                Lookup::Found(id) => id,
                _ => panic!("{rel} not indexed"),
            };
            let (full, empty) = (id_of("one/sample/10s"), id_of("empty/10s"));
            let header = store.load_header(full).await.unwrap();
            assert_eq!(header.last_bucket, 0, "the sample is index 0");
            assert_eq!(store.newest_bucket_time(full).await.unwrap(), NOW);
            assert_eq!(store.newest_bucket_time(empty).await.unwrap(), 0);
            if closed_cleanly {
                let s = store.stats();
                assert_eq!((s.page_misses, s.cached_pages), (0, 0), "{s:?}");
            }
            // The file still takes samples after its index 0.
            store
                .record("one.sample", false, Sample::value(NOW + 10, 6.0), NOW + 15)
                .await
                .unwrap();
            store.close(NOW + 30).await.unwrap();
        });
        let dump = tools::dump_csv(&std::fs::read(dir.join("one/sample/10s")).unwrap()).unwrap();
        assert_eq!(dump.lines().count(), 3, "{dump}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn the_quick_writer_records_what_record_does_and_only_ready_gauges() {
    let (da, db) = (temp_dir("quick-a"), temp_dir("quick-b"));
    let (a, b) = (da.clone(), db.clone());
    run(move || async move {
        let (qa, sb) = (
            Store::open(opts(&a)).await.unwrap(),
            Store::open(opts(&b)).await.unwrap(),
        );
        for st in [&qa, &sb] {
            st.record("g.one", false, Sample::value(NOW, 1.0), NOW)
                .await
                .unwrap();
            st.record("g.two", false, Sample::value(NOW, 2.0), NOW)
                .await
                .unwrap();
            st.record("ev", true, Sample::value(NOW, 1.0), NOW)
                .await
                .unwrap();
        }
        {
            let w = qa.quick_writer().await.unwrap();
            assert!(w
                .try_record("ev", Sample::value(NOW, 1.0), NOW)
                .await
                .is_none());
            assert!(w
                .try_record("new.one", Sample::value(NOW, 1.0), NOW)
                .await
                .is_none());
            assert!(w.exists("g") && w.exists("g.one") && !w.exists("new.one"));
        }
        // Samples over several buckets of both files, one from the future.
        let mut seed = 7u64;
        for i in 0..2_000i64 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let key = if seed >> 63 == 0 { "g.one" } else { "g.two" };
            let time = NOW + i / 3 + if i == 1_000 { 500 } else { 0 };
            let s = Sample::value(time, (seed >> 40) as f64 / 1e3);
            let now = NOW + i / 3;
            let quick = {
                let w = qa.quick_writer().await.unwrap();
                w.try_record(key, s, now).await.unwrap().unwrap()
            };
            let slow = sb.record(key, false, s, now).await.unwrap();
            assert_eq!(quick, slow, "sample {i}");
        }
        for st in [&qa, &sb] {
            st.close(NOW + 1_000).await.unwrap();
        }
        // A file not loaded since start-up is not the quick writer's.
        let qa = Store::open(opts(&a)).await.unwrap();
        let w = qa.quick_writer().await.unwrap();
        assert!(w
            .try_record("g.one", Sample::value(NOW, 1.0), NOW)
            .await
            .is_none());
    });
    for rel in ["g/one/10s", "g/one/5m", "g/two/10s", "g/two/5m"] {
        let dump = |d: &PathBuf| tools::dump_csv(&std::fs::read(d.join(rel)).unwrap()).unwrap();
        let (qa, sb) = (dump(&da), dump(&db));
        assert!(qa.lines().count() > 3, "{rel}: {qa}");
        assert_eq!(qa, sb, "{rel}");
    }
    let _ = std::fs::remove_dir_all(&da);
    let _ = std::fs::remove_dir_all(&db);
}

#[test]
fn counter_keys_come_from_directories_and_survive_reopen() {
    let dir = temp_dir("keys");
    let d = dir.clone();
    run(move || async move {
        let store = Store::open(opts(&d)).await.unwrap();
        for key in ["web.a.hits", "web.b", "db"] {
            store
                .record(key, false, Sample::value(NOW, 1.0), NOW)
                .await
                .unwrap();
        }
        // A directory with a file of a retention this store does not keep.
        store
            .create_file_like("odd/one/1h", params_10s(1))
            .await
            .unwrap();
        let want = ["db", "web", "web.a", "web.a.hits", "web.b"];
        assert_eq!(store.counter_keys(), want);
        assert_eq!(
            store.counters_matching(|k| k.starts_with("web.a")),
            ["web.a", "web.a.hits"]
        );
        store.close(NOW).await.unwrap();
        drop(store);

        let store = Store::open(opts(&d)).await.unwrap();
        // Both directories: the walk indexes a directory of no file as a counter too.
        let mut want: Vec<&str> = want.to_vec();
        want.splice(1..1, ["odd", "odd.one"]);
        assert_eq!(store.counter_keys(), want, "after reopen");
        // A counter known only by name keeps it until its first file exists.
        store.create_counter("odd.one", false, NOW).await.unwrap();
        assert!(store.has_counter("odd.one"));
        assert_eq!(store.counter_keys(), want);
        store.delete_counter("web.b").await.unwrap();
        want.retain(|k| *k != "web.b");
        assert_eq!(store.counter_keys(), want, "after a delete");
    });
    let _ = std::fs::remove_dir_all(&dir);
}
