//! Storage benchmark: prints figures, asserts nothing.
//!
//! `cargo run --release -p istatd-perf -- storage [--files N] [--updates M] [--dir D]`
//!
//! Prints: time to create N counter files, bucket updates per second through the
//! storage API over those files, heap bytes per idle file, and the most descriptors
//! held at once.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use glommio::{LocalExecutorBuilder, Placement};
use istatd_storage::counter::Sample;
use istatd_storage::retention::parse_retentions;
use istatd_storage::store::{Allocation, Store, StoreOptions};

/// Counts live heap bytes so the report can state memory per file.
struct CountingAlloc;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        System.dealloc(p, l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        System.realloc(p, l, new)
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.windows(2)
        .find(|w| w[0] == name)
        .map(|w| w[1].clone())
        .unwrap_or_else(|| default.to_string())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let files: usize = arg(&args, "--files", "100000").parse().expect("--files N");
    let updates: usize = arg(&args, "--updates", "1000000")
        .parse()
        .expect("--updates M");
    let dir = arg(&args, "--dir", "/tmp/istatd-perf-store");
    let sparse = args.iter().any(|a| a == "--sparse");
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "# istatd storage benchmark: {} cores, {files} files, {updates} updates",
        num_cpus()
    );
    LocalExecutorBuilder::new(Placement::Fixed(0))
        .io_memory(2 << 20)
        .make()
        .expect("executor")
        .run(async move {
            // Two retentions (10s:1h, 5m:1d): two 24 KiB files per counter.
            let mut opts = StoreOptions::new(&dir, parse_retentions("10s:1h,5m:1d").unwrap());
            opts.allocation = if sparse { Allocation::Sparse } else { Allocation::Full };
            let counters = files.div_ceil(2);
            let heap0 = LIVE.load(Ordering::Relaxed);
            let store = Store::open(opts.clone()).await.expect("open store");
            let now = 1_600_000_000i64;
            let t0 = Instant::now();
            for c in 0..counters {
                let key = format!("perf.c{}.n{c}", c % 100);
                store.record(&key, false, Sample::value(now, 1.0), now).await.expect("record");
            }
            store.flush_all(false, now).await.expect("flush");
            let create = t0.elapsed().as_secs_f64();
            let st = store.stats();
            println!(
                "create: {} files ({} counters + parents) in {create:.2} s = {:.0} files/s",
                st.files_created,
                counters,
                st.files_created as f64 / create
            );

            let t1 = Instant::now();
            for i in 0..updates {
                let c = (i * 7919) % counters;
                let key = format!("perf.c{}.n{c}", c % 100);
                let t = now + (i / counters) as i64 % 3000;
                store.record(&key, false, Sample::value(t, i as f64), now + 3600).await.expect("record");
                if (i + 1) % 250_000 == 0 {
                    eprintln!(
                        "  {} updates, {:.0}/s so far",
                        i + 1,
                        (i + 1) as f64 / t1.elapsed().as_secs_f64()
                    );
                }
            }
            store.flush_all(false, now + 3600).await.expect("flush");
            let upd = t1.elapsed().as_secs_f64();
            let st = store.stats();
            println!(
                "updates: {updates} samples = {} bucket updates in {upd:.2} s = {:.0} samples/s, {:.0} bucket updates/s",
                updates * 2,
                updates as f64 / upd,
                (updates * 2) as f64 / upd
            );
            println!(
                "page cache: {} hits, {} misses, {} page writes, {} header writes",
                st.page_hits, st.page_misses, st.page_writes, st.header_writes
            );
            println!(
                "descriptors: at most {} open at once (cache limit {}), {} opens",
                st.open_files_peak,
                opts.max_open_files,
                st.fd_opens
            );
            drop(store);

            // Idle memory: reopen the store, touch every file's header, evict pages.
            let heap_before = LIVE.load(Ordering::Relaxed);
            let store = Store::open(opts.clone()).await.expect("reopen");
            let list = store.list_files();
            let t2 = Instant::now();
            for (_, id) in &list {
                store.load_header(*id).await.expect("header");
            }
            let load = t2.elapsed().as_secs_f64();
            let heap_after = LIVE.load(Ordering::Relaxed);
            let st = store.stats();
            println!(
                "reopen: {} files, headers loaded in {load:.2} s; heap {} bytes per idle file \
                 (store estimate {} bytes), {} pages cached ({} KiB), base heap {} KiB",
                list.len(),
                (heap_after - heap_before) / list.len().max(1) as isize,
                store.approx_bytes_per_file(),
                st.cached_pages,
                st.cached_pages * 8,
                heap0 / 1024
            );
            println!("descriptors after reopen: at most {} open at once", st.open_files_peak);
        });
}

fn num_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
