//! Replication catch-up and steady lag (issue 5 item 7).
//!
//! cargo build --release --bin istatd
//! cargo run --release -p istatd-perf --bin replcatchup [-- --files 10000 --hours 24]
//! target/release/replcatchup --files 500000 --retention 10s:2h --hours 2 --rate 0 --timeout 1200
//!
//! One run per invocation, at one `--rate`: run it twice (`--rate 60000`, `--rate 0`)
//! to compare a catch-up under load with one without.
//!
//! 1. waits (at most `--port-wait` s) until its ports 19550-19555 are free: the
//!    previous run's daemons may still hold them for a moment;
//! 2. builds a master store of `--files` counters, each with one file per entry of
//!    `--retention` (default `10s:1d`: one 10 s file per counter), each file holding
//!    `--hours` of buckets up to now (default and most: the retention), written
//!    directly with the storage crate's file code on `--seed-threads` threads (not
//!    through the daemon: seeding tens of millions of buckets through the stat port
//!    would dominate the run), then `sync`s so the daemons start on a quiet disk;
//! 3. starts the master on it (stat 19550, admin 19551, replica 19552, `--flush` as
//!    given (1 by default), the same `--retention` and `--page-cache-mb`), waits until it lists every file, sends one probe sample
//!    (`repl.probe`, so that the steady phase's file exists), starts the load generator
//!    at `--rate` updates/s over the same counters (none with `--rate 0`), has it load
//!    every file (`POST /*` for one bucket of every counter on its HTTP port 19556),
//!    and takes the master's anonymous RSS (`RssAnon`) once it is steady: the baseline
//!    before any slave, counting every file's header and state as loaded;
//! 4. starts a fresh slave (admin 19554, HTTP 19555) with `--replica-create-rate` and
//!    `--replica-subscribe-rate` where given (the daemon's defaults otherwise), and
//!    follows it every 0.5 s: slave file creation (until the slave created as many files as were seeded: seconds,
//!    files/s), subscription (every file subscribed) and catch-up (the slave wrote at
//!    least every seeded bucket, every file is subscribed and none is behind: seconds,
//!    MB/s of bucket data written = buckets x 32 B, MB/s received on the link,
//!    buckets/s, the master's ingest meanwhile), bounded by `--timeout`;
//! 5. at convergence, the master's RssAnon again: replication state per file measured =
//!    (RssAnon - RssAnon before the slave - the growth of the master's page cache,
//!    `istatd.store.cached_pages` x 8 KiB) / files;
//! 6. steady state, for `--steady` seconds with the load still on: once a second a
//!    probe sample (`repl.probe`, time = now, a growing value) goes to the master, and
//!    the slave's HTTP API is polled every 20 ms until its bucket shows it (probes are
//!    not waited for before the next is sent; each is waited for at most
//!    `--probe-timeout` s): p50/p99/max of the delay from sending to visible on the
//!    slave, probes seen of sent. It includes the wait for the master's flush of the
//!    probe counter (`--flush 1`: at most about 1 s). Also the most unanswered
//!    Requests on the master and the slave's `tail_lag_seconds` meanwhile;
//! 7. stops the load, waits for the slave, flushes both and runs `istatd verify`
//!    (the master's own `istatd.*` counters left out): differing buckets (not after a
//!    catch-up that did not converge, nor with `--skip-verify`);
//! 8. with `--scrub N` (both daemons run with `--replica-scrub-rate N`): one
//!    anti-entropy scrub pass over the slave's whole store, load stopped: seconds,
//!    buckets compared per second, digest and repair bytes, ranges repaired (0 after
//!    a verified catch-up);
//! 9. restart round (unless `--skip-restart`, and only after a converged catch-up):
//!    stops both, restarts the master without load, has it load every file (RssAnon
//!    once steady), restarts the slave and waits (bounded by `--timeout`) until it has resubscribed every file
//!    and the master holds a parked Request for each: both RssAnon again. The catch-up
//!    leaves the allocator holding its peak (queued Data, read buffers), which the
//!    measurement at convergence counts; this round has only the resume overlap to copy;
//! 10. reopens the slave's store with a daemon that is not a slave (same options
//!     without `--replica-of`) and has it load every file: slave replication state
//!     per file measured = (slave RssAnon - the reopened daemon's RssAnon - the difference of their page caches) /
//!     files, at convergence and in the restart round; next to each, the daemons' own
//!     estimates (`replication.master.state_bytes`, `replication.slave.state_bytes`);
//! 11. prints a table naming the rate; a failed run prints why (and the daemons' log
//!     problems and stderr).
//!
//! Prints figures, asserts nothing.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use istatd_perf::daemon::{self, Daemon, DaemonSpec, Stats, FILES, SAMPLES};
use istatd_perf::loadgen::{counter_name, GenConfig, Generator};
use istatd_storage::format::{Bucket, CreateParams, Header, HEADER_SIZE, PAGE_SIZE};
use istatd_storage::retention::{parse_retentions, Retention};
use istatd_storage::statfile::{FileState, ImageSlots};

#[derive(Parser, Debug)]
#[command(
    about = "Replication between two daemons: slave file creation, catch-up, steady lag, \
                   replication state per file"
)]
struct Args {
    /// The daemon binary (default: target/release/istatd next to this binary).
    #[arg(long)]
    istatd: Option<PathBuf>,
    /// Counters on the master; each gets one file per --retention entry (with a
    /// one-entry retention: this many files).
    #[arg(long, default_value_t = 10_000)]
    files: usize,
    /// Both daemons' --retention; the seeder writes each entry's file (regular entries
    /// only). `10s:2h`: 32 KiB per file; `10s:1d`: 280 KiB.
    #[arg(long, default_value = "10s:1d")]
    retention: String,
    /// Hours of data in each file, at most the retention (a file whose entry keeps
    /// less gets what it keeps). Default: the longest entry of --retention.
    #[arg(long)]
    hours: Option<f64>,
    /// The load generator's updates/s on the master during the run (0: none).
    #[arg(long, default_value_t = 60_000.0)]
    rate: f64,
    /// Seconds of steady state after catch-up: one probe a second.
    #[arg(long, default_value_t = 30)]
    steady: u64,
    /// How long a probe is waited for on the slave, seconds.
    #[arg(long, default_value_t = 120)]
    probe_timeout: u64,
    /// The master's --replica-read-rate (bytes/s, 0 = unlimited).
    #[arg(long, default_value_t = 0)]
    read_rate: u64,
    /// The slave's --replica-create-rate (files/s); default: the daemon's.
    #[arg(long)]
    create_rate: Option<u32>,
    /// The slave's --replica-subscribe-rate (first Requests/s); default: the daemon's.
    #[arg(long)]
    subscribe_rate: Option<u32>,
    /// Bound on the catch-up (from the slave's start), seconds.
    #[arg(long, default_value_t = 1800)]
    timeout: u64,
    /// Shards of each daemon (master and slave share the machine's cores with the
    /// load generator).
    #[arg(long, default_value_t = 2)]
    shards: usize,
    /// Both daemons' --replica-scrub-rate (buckets/s); 0: no scrub pass is timed.
    #[arg(long, default_value_t = 0)]
    scrub: u64,
    /// Threads writing the master's store.
    #[arg(long, default_value_t = 2)]
    seed_threads: usize,
    /// Both daemons' --flush (seconds for a flush round; the steady lag includes it).
    #[arg(long, default_value_t = 1)]
    flush: u32,
    /// Both daemons' --page-cache-mb; default: the daemon's.
    #[arg(long)]
    page_cache_mb: Option<u64>,
    /// Seed the store, print how long it took and stop.
    #[arg(long)]
    seed_only: bool,
    /// Leave out `istatd verify` (it reads both stores whole).
    #[arg(long)]
    skip_verify: bool,
    /// Leave out the restart round (both daemons restarted after the run, the slave
    /// resubscribes every file: the replication state without the catch-up's
    /// transients).
    #[arg(long)]
    skip_restart: bool,
    /// Longest wait for the ports to be free before starting a daemon, seconds.
    #[arg(long, default_value_t = 60)]
    port_wait: u64,
    /// Parent of the temporary directory (default: the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    #[arg(long)]
    keep: bool,
}

const PREFIX: &str = "repl";
const GROUP: usize = 1000;
const M_STAT: u16 = 19550;
const M_ADMIN: u16 = 19551;
const M_REPLICA: u16 = 19552;
const S_STAT: u16 = 19553;
const S_ADMIN: u16 = 19554;
const S_HTTP: u16 = 19555;
const M_HTTP: u16 = 19556;
const HEAP: &str = "istatd.process.heap_bytes";
const CACHED_PAGES: &str = "istatd.store.cached_pages";

fn main() {
    let args = Args::parse();
    daemon::install_interrupt_handler();
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("istatd-replcatchup-{}", std::process::id()));
    let t = Instant::now();
    let r = run(&args, &dir);
    if let Err(e) = &r {
        let msg = format!(
            "replcatchup: FAILED after {:.0} s: {e}",
            t.elapsed().as_secs_f64()
        );
        println!("\n{msg}");
        eprintln!("{msg}");
        for sub in ["master", "slave"] {
            for l in problems(&dir.join(sub)) {
                println!("{sub}: {l}");
            }
        }
    }
    if args.keep {
        println!("kept {}", dir.display());
    } else {
        let t = Instant::now();
        remove_tree(&dir, 8);
        println!(
            "removed {} in {:.0} s",
            dir.display(),
            t.elapsed().as_secs_f64()
        );
    }
    if r.is_err() {
        std::process::exit(1);
    }
}

/// Remove the run's directory, its counter directories (`<daemon>/store/<a>/<b>`) on
/// `threads` threads: one thread unlinks 500,000 files at about 1,000 a second here.
fn remove_tree(dir: &Path, threads: usize) {
    fn collect(p: &Path, depth: u32, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(p) else {
            return;
        };
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                if depth == 0 {
                    out.push(e.path());
                } else {
                    collect(&e.path(), depth - 1, out);
                }
            }
        }
    }
    let mut units = Vec::new();
    collect(dir, 3, &mut units);
    let next = AtomicU64::new(0);
    std::thread::scope(|sc| {
        for _ in 0..threads.max(1) {
            sc.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(u) = units.get(i) else { break };
                let _ = std::fs::remove_dir_all(u);
            });
        }
    });
    let _ = std::fs::remove_dir_all(dir);
}

/// The last WARN/ERROR lines of a daemon directory's log and the last lines of its
/// stderr.
fn problems(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(text) = std::fs::read_to_string(dir.join("istatd.log")) {
        let l: Vec<&str> = text
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .collect();
        out.extend(
            l[l.len().saturating_sub(10)..]
                .iter()
                .map(|l| format!("log: {l}")),
        );
    }
    if let Ok(text) = std::fs::read_to_string(dir.join("stderr.txt")) {
        let l: Vec<&str> = text.lines().collect();
        out.extend(
            l[l.len().saturating_sub(10)..]
                .iter()
                .map(|l| format!("stderr: {l}")),
        );
    }
    out
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// What the seeder wrote.
struct Seeded {
    files: u64,
    buckets: u64,
    bytes: u64,
}

/// One retention entry's file layout for the seeder.
#[derive(Clone, Copy)]
struct Layout {
    interval: i64,
    page_count: i64,
    /// Buckets written, ending at `newest`.
    n: i64,
    newest: i64,
}

impl Layout {
    fn new(r: &Retention, data_secs: i64, now: i64) -> Layout {
        let interval = r.interval.max(1);
        Layout {
            interval,
            page_count: r.page_count(),
            n: (data_secs.min(r.keep) / interval).clamp(1, r.samples.max(1)),
            newest: now - now % interval,
        }
    }
}

/// Write the master's store: for each of `counters` counters one file per entry of
/// `rets`, each with `data_secs` (at most the entry's keep) of buckets ending now.
/// Each file is built in memory (header and pages, through the storage crate's
/// [`FileState`], as the daemon would lay it out) and written with one `write`.
fn seed(
    root: &Path,
    counters: usize,
    rets: &[Retention],
    data_secs: i64,
    threads: usize,
) -> Result<Seeded, String> {
    let now = unix_now();
    let layouts: Vec<(Layout, &str)> = rets
        .iter()
        .map(|r| (Layout::new(r, data_secs, now), r.name.as_str()))
        .collect();
    let threads = threads.max(1);
    let per = counters.div_ceil(threads);
    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let t = Instant::now();
    let results: Vec<Result<u64, String>> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..threads)
            .map(|th| {
                let (layouts, done, stop) = (&layouts, &done, &stop);
                sc.spawn(move || -> Result<u64, String> {
                    let mut bytes = 0u64;
                    let mut imgs: Vec<Vec<u8>> = layouts
                        .iter()
                        .map(|(l, _)| vec![0u8; PAGE_SIZE * (l.page_count as usize + 1)])
                        .collect();
                    let mut buckets = Vec::new();
                    for i in th * per..((th + 1) * per).min(counters) {
                        if stop.load(Ordering::Relaxed) {
                            return Err("interrupted".into());
                        }
                        let name = counter_name(PREFIX, GROUP, i);
                        let cdir = root.join(name.replace('.', "/"));
                        std::fs::create_dir_all(&cdir)
                            .map_err(|e| format!("{}: {e}", cdir.display()))?;
                        for ((l, file), img) in layouts.iter().zip(imgs.iter_mut()) {
                            let first = l.newest - (l.n - 1) * l.interval;
                            let p = CreateParams {
                                interval: l.interval as i32,
                                page_count: l.page_count,
                                flags: 0,
                                // Zero time well before the data, as a daemon-made file.
                                zero_time: first - l.interval * l.n,
                                lambda: 0.0,
                                season: 0,
                                fixed_count: 0,
                                unit: String::new(),
                                name: name.clone(),
                            };
                            let mut st = FileState::new_created(Header::new_file(&p));
                            img.fill(0);
                            let mut sl = ImageSlots {
                                image: img,
                                page_size: PAGE_SIZE as i64,
                            };
                            buckets.clear();
                            buckets.extend((0..l.n).map(|k| {
                                Bucket::sample(
                                    first + k * l.interval,
                                    ((i as i64 + k) % 100) as f64,
                                )
                            }));
                            st.put_overwrite(&mut sl, &buckets);
                            st.absorb_overlay(&mut sl);
                            img[..HEADER_SIZE].copy_from_slice(&st.header.to_bytes());
                            let path = cdir.join(file);
                            std::fs::write(&path, &img[..])
                                .map_err(|e| format!("{}: {e}", path.display()))?;
                            bytes += img.len() as u64;
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(bytes)
                })
            })
            .collect();
        let mut last = Instant::now();
        while !hs.iter().all(|h| h.is_finished()) {
            std::thread::sleep(Duration::from_millis(100));
            if daemon::interrupted() {
                stop.store(true, Ordering::Relaxed);
            }
            if last.elapsed() >= Duration::from_secs(15) {
                last = Instant::now();
                let d = done.load(Ordering::Relaxed);
                println!(
                    "  seed: {d} of {counters} counters in {:.0} s ({:.0} counters/s)",
                    t.elapsed().as_secs_f64(),
                    d as f64 / t.elapsed().as_secs_f64()
                );
            }
        }
        hs.into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("seed thread panicked".into()))
            })
            .collect()
    });
    let mut bytes = 0;
    for r in results {
        bytes += r?;
    }
    Ok(Seeded {
        files: (counters * layouts.len()) as u64,
        buckets: layouts.iter().map(|(l, _)| l.n as u64).sum::<u64>() * counters as u64,
        bytes,
    })
}

fn stat(s: &Stats, k: &str) -> u64 {
    s.get(k)
}

/// One HTTP GET; the body (the daemon closes after each answer).
fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// Have a daemon load every file of these counters (header and file state), so that a
/// baseline RSS counts what any daemon holds for a file it has touched and the
/// difference to a replicating daemon is replication's state alone: `POST /*` in
/// batches of 1,000 keys asking for one bucket each, 8 connections at once (a cold
/// store reads each file's header and page).
fn load_every_file(http: SocketAddr, names: &[String]) -> Result<Duration, String> {
    let t = Instant::now();
    let now = unix_now();
    let batches: Vec<&[String]> = names.chunks(1000).collect();
    let next = AtomicU64::new(0);
    let results: Vec<Result<(), String>> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..8)
            .map(|_| {
                sc.spawn(|| -> Result<(), String> {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                        let Some(batch) = batches.get(i) else {
                            return Ok(());
                        };
                        post_one_bucket_each(http, batch, now)?;
                    }
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("loader panicked".into())))
            .collect()
    });
    results.into_iter().collect::<Result<Vec<()>, String>>()?;
    Ok(t.elapsed())
}

/// One `POST /*` asking for the bucket before `now` of each key.
fn post_one_bucket_each(http: SocketAddr, keys: &[String], now: i64) -> Result<(), String> {
    let keys: Vec<String> = keys.iter().map(|k| format!("\"{k}\"")).collect();
    let body = format!(
        "{{\"keys\":[{}],\"start\":{},\"stop\":{now},\"maxSamples\":1}}",
        keys.join(","),
        now - 10
    );
    let mut s = TcpStream::connect_timeout(&http, Duration::from_secs(2))
        .map_err(|e| format!("load every file: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(300)))
        .map_err(|e| e.to_string())?;
    s.write_all(
        format!(
            "POST /* HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .map_err(|e| format!("load every file: {e}"))?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)
        .map_err(|e| format!("load every file: {e}"))?;
    if !out.starts_with(b"HTTP/1.1 200") {
        let head = String::from_utf8_lossy(&out[..out.len().min(200)]).into_owned();
        return Err(format!("load every file: {head}"));
    }
    Ok(())
}

/// One steady-state probe sample.
struct Probe {
    seq: u64,
    /// Its 10 s bucket.
    bucket: i64,
    sent: Instant,
    /// Seconds from sending until the slave showed it.
    lag: Option<f64>,
}

/// (time, max) of each bucket of a counter GET's JSON answer.
fn bucket_maxes(body: &str) -> Vec<(i64, f64)> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
        return Vec::new();
    };
    v["buckets"]
        .as_array()
        .map(|bs| {
            bs.iter()
                .filter_map(|b| Some((b["time"].as_i64()?, b["data"]["max"].as_f64()?)))
                .collect()
        })
        .unwrap_or_default()
}

fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Wait (at most `timeout`) until the daemon's `istatd.store.files` reaches `files`:
/// start-up lists the store after the admin port opens.
fn wait_files(d: &mut Daemon, files: u64, timeout: Duration) -> Result<Duration, String> {
    let t = Instant::now();
    loop {
        let n = stat(&d.stats()?, FILES);
        if n >= files {
            return Ok(t.elapsed());
        }
        if t.elapsed() > timeout {
            return Err(format!(
                "the daemon lists {n} files of {files} after {} s",
                timeout.as_secs()
            ));
        }
        daemon::sleep(Duration::from_millis(200))?;
    }
}

/// A daemon's anonymous RSS (KiB) once steady: sampled every second for at least
/// `min` and at most `max`, until the last three samples are within 1 MiB; with its
/// stats then.
/// An admin `flush`, timed and printed, then 3 s for what it wrote to be visited.
fn flush_daemon(name: &str, d: &mut Daemon) -> Result<bool, String> {
    let t = Instant::now();
    let ok = match d.command_timeout("flush", Duration::from_secs(600)) {
        Ok(_) => {
            println!("{name} flush: {:.1} s", t.elapsed().as_secs_f64());
            true
        }
        Err(e) => {
            println!("{name} flush failed: {e}");
            false
        }
    };
    daemon::sleep(Duration::from_secs(3))?;
    Ok(ok)
}

/// Wait until the master has no ready Request left and the slave received every Data
/// the master sent (a backlog drains after the load stops), twice in a row 0.5 s
/// apart; false when `bound` passed first.
fn drain(m: &mut Daemon, s: &mut Daemon, bound: Duration) -> Result<bool, String> {
    let t = Instant::now();
    let mut quiet = 0;
    while t.elapsed() < bound {
        let (ms, ss) = (m.stats()?, s.stats()?);
        if stat(&ms, "replication.master.ready") == 0
            && stat(&ms, "replication.master.data_sent")
                == stat(&ss, "replication.slave.data_received")
        {
            quiet += 1;
            if quiet == 2 {
                return Ok(true);
            }
        } else {
            quiet = 0;
        }
        daemon::sleep(Duration::from_millis(500))?;
    }
    Ok(false)
}

fn settled_rss(d: &mut Daemon, min: Duration, max: Duration) -> Result<(u64, Stats), String> {
    let t = Instant::now();
    let mut hist: Vec<u64> = Vec::new();
    loop {
        daemon::sleep(Duration::from_secs(1))?;
        d.check_alive()?;
        hist.push(d.rss_anon_kib().unwrap_or(0));
        let last = &hist[hist.len().saturating_sub(3)..];
        let spread = last.iter().max().unwrap_or(&0) - last.iter().min().unwrap_or(&0);
        if (t.elapsed() >= min && last.len() == 3 && spread <= 1024) || t.elapsed() >= max {
            return Ok((*hist.last().unwrap_or(&0), d.stats_heap()?));
        }
    }
}

/// A state measurement: anonymous RSS (`RssAnon`: heap, stacks; not the binary's
/// pages, which differ with the code paths a daemon ran) and cached pages of a daemon
/// at one moment.
#[derive(Clone, Copy, Default)]
struct Mem {
    rss_kib: u64,
    cached_pages: u64,
    /// The allocator's bytes in use (`istatd.process.heap_bytes`): no freed memory the
    /// allocator keeps, no page-cache pages' slack.
    heap: u64,
}

impl Mem {
    fn of(d: &Daemon, s: &Stats) -> Mem {
        Mem {
            rss_kib: d.rss_anon_kib().unwrap_or(0),
            cached_pages: stat(s, CACHED_PAGES),
            heap: stat(s, HEAP),
        }
    }
}

/// Bytes per file that `with` holds above `without`, its page cache's growth (8 KiB
/// pages) left out: (raw RSS difference in bytes, page-cache difference in bytes,
/// bytes per file).
fn state_per_file(with: Mem, without: Mem, files: u64) -> (i64, i64, f64) {
    let rss = (with.rss_kib as i64 - without.rss_kib as i64) * 1024;
    let cache = (with.cached_pages as i64 - without.cached_pages as i64) * PAGE_SIZE as i64;
    (rss, cache, (rss - cache) as f64 / files.max(1) as f64)
}

/// Heap bytes per file that `with` holds above `without`, the page cache's growth left
/// out: (heap difference in bytes, bytes per file).
fn heap_per_file(with: Mem, without: Mem, files: u64) -> (i64, f64) {
    let heap = with.heap as i64 - without.heap as i64;
    let cache = (with.cached_pages as i64 - without.cached_pages as i64) * PAGE_SIZE as i64;
    (heap, (heap - cache) as f64 / files.max(1) as f64)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Catch-up milestones, seconds from the slave's start.
#[derive(Default)]
struct Milestones {
    created: Option<f64>,
    subscribed: Option<f64>,
    converged: Option<f64>,
}

/// What the restart round measured.
struct Round2 {
    /// From the slave's restart until every file is subscribed, none behind and the
    /// master holds a parked Request for each.
    secs: f64,
    converged: bool,
    m_base: Mem,
    m_with: Mem,
    m_stats: Stats,
    /// The slave once promoted: its replication state freed, its files still loaded;
    /// and the master state it has built since (it learns its files as a master).
    s_released: Option<(Mem, u64)>,
    s_with: Mem,
    s_stats: Stats,
}

/// Restart the master (no load) on its store, take its RSS, restart the slave on its
/// store and wait until it has resubscribed every file (a parked Request on the master
/// for each, nothing behind); then both RSS.
fn restart_round(
    mspec: &DaemonSpec,
    sspec: &DaemonSpec,
    nfiles: u64,
    m_files: u64,
    names: &[String],
    port_wait: Duration,
    timeout: Duration,
) -> Result<Round2, String> {
    daemon::wait_ports_free(
        &[M_STAT, M_ADMIN, M_REPLICA, M_HTTP, S_STAT, S_ADMIN, S_HTTP],
        port_wait,
    )?;
    let mut m = Daemon::spawn(mspec)?;
    m.wait_ready(Duration::from_secs(600))
        .map_err(|e| format!("restart round, master: {e}"))?;
    wait_files(&mut m, m_files, Duration::from_secs(600))
        .map_err(|e| format!("restart round, master: {e}"))?;
    let loaded = load_every_file(SocketAddr::from(([127, 0, 0, 1], M_HTTP)), names)
        .map_err(|e| format!("restart round, master: {e}"))?;
    println!(
        "restart round: the master loaded every file in {:.1} s",
        loaded.as_secs_f64()
    );
    let (_, mst) = settled_rss(&mut m, Duration::from_secs(3), Duration::from_secs(30))?;
    let m_base = Mem::of(&m, &mst);
    let t = Instant::now();
    let mut s = Daemon::spawn(sspec)?;
    s.wait_ready(Duration::from_secs(600))
        .map_err(|e| format!("restart round, slave: {e}"))?;
    let mut last_print = Instant::now();
    let mut converged = false;
    while t.elapsed() < timeout {
        daemon::sleep(Duration::from_millis(500))?;
        m.check_alive()
            .map_err(|e| format!("restart round, master: {e}"))?;
        s.check_alive()
            .map_err(|e| format!("restart round, slave: {e}"))?;
        let ss = s.stats()?;
        let ms = m.stats()?;
        let subscribed = stat(&ss, "replication.slave.subscribed");
        let behind = stat(&ss, "replication.slave.behind");
        let parked = stat(&ms, "replication.master.parked");
        if subscribed >= nfiles && behind == 0 && parked >= nfiles {
            converged = true;
            break;
        }
        if last_print.elapsed() >= Duration::from_secs(30) {
            last_print = Instant::now();
            println!(
                "  restart round {:4.0} s: subscribed {subscribed}, behind {behind}, master parked {parked} ready {}",
                t.elapsed().as_secs_f64(),
                stat(&ms, "replication.master.ready")
            );
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let (_, s_stats) = settled_rss(&mut s, Duration::from_secs(3), Duration::from_secs(30))?;
    let s_with = Mem::of(&s, &s_stats);
    let m_stats = m.stats_heap()?;
    let m_with = Mem::of(&m, &m_stats);
    println!(
        "restart round: the slave {} in {secs:.1} s; master RssAnon {:.1} -> {:.1} MiB ({} -> {} cached pages, {} parked), slave RssAnon {:.1} MiB ({} cached pages)",
        if converged { "resubscribed every file" } else { "did NOT resubscribe every file" },
        mib(m_base.rss_kib),
        mib(m_with.rss_kib),
        m_base.cached_pages,
        m_with.cached_pages,
        stat(&m_stats, "replication.master.parked"),
        mib(s_with.rss_kib),
        s_with.cached_pages,
    );
    // The slave promoted frees its replication state (and stays a store with every
    // file loaded): the difference is that state alone.
    m.stop(Duration::from_secs(120));
    let s_released = match s.command("replication.promote") {
        Ok(_) => {
            let (_, st) = settled_rss(&mut s, Duration::from_secs(3), Duration::from_secs(30))?;
            Some((
                Mem::of(&s, &st),
                stat(&st, "replication.master.state_bytes"),
            ))
        }
        Err(e) => {
            println!("restart round: replication.promote failed: {e}");
            None
        }
    };
    s.stop(Duration::from_secs(120));
    Ok(Round2 {
        secs,
        converged,
        m_base,
        m_with,
        m_stats,
        s_released,
        s_with,
        s_stats,
    })
}

fn run(args: &Args, dir: &Path) -> Result<(), String> {
    let run_start = Instant::now();
    let exe = daemon::istatd_binary(args.istatd.as_deref())?;
    let rets = parse_retentions(&args.retention)
        .map_err(|e| format!("--retention {}: {e}", args.retention))?;
    if rets.iter().any(|r| r.is_trailing()) {
        return Err(format!(
            "--retention {}: the seeder writes regular files only; leave out the trailing (lambda) entries",
            args.retention
        ));
    }
    let longest = rets.iter().map(|r| r.keep).max().unwrap_or(0);
    let data_secs = match args.hours {
        None => longest,
        Some(h) => {
            let s = (h * 3600.0).round() as i64;
            if s < 1 || s > longest {
                return Err(format!(
                    "--hours {h}: at least 1 s and at most the retention ({} h)",
                    longest as f64 / 3600.0
                ));
            }
            s
        }
    };
    let hours = data_secs as f64 / 3600.0;
    let mdir = dir.join("master");
    let sdir = dir.join("slave");
    std::fs::create_dir_all(mdir.join("store")).map_err(|e| e.to_string())?;
    println!(
        "machine: {} cores, load average {}; daemon {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        daemon::load_average(),
        exe.display()
    );
    let port_wait = Duration::from_secs(args.port_wait);
    if !args.seed_only {
        daemon::wait_ports_free(
            &[M_STAT, M_ADMIN, M_REPLICA, M_HTTP, S_STAT, S_ADMIN, S_HTTP],
            port_wait,
        )?;
    }

    let t = Instant::now();
    let seeded = seed(
        &mdir.join("store"),
        args.files,
        &rets,
        data_secs,
        args.seed_threads,
    )
    .map_err(|e| format!("seed: {e}"))?;
    let seed_secs = t.elapsed().as_secs_f64();
    // The seeder writes through the kernel's cache: its dirty pages (GBs at 50,000
    // files) would be written back while the daemons run and slow the slave's file
    // creation several times over. The run starts on a quiet disk.
    let t_sync = Instant::now();
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    let sync_secs = t_sync.elapsed().as_secs_f64();
    let nfiles = seeded.files;
    println!(
        "seed: {} counters, {nfiles} files ({}, {hours} h of data each at most), {} buckets, {:.0} MB written in {seed_secs:.1} s ({:.0} files/s, {:.0} MB/s)",
        args.files,
        args.retention,
        seeded.buckets,
        seeded.bytes as f64 / 1e6,
        nfiles as f64 / seed_secs,
        seeded.bytes as f64 / 1e6 / seed_secs
    );
    println!("seed written back to disk (sync) in {sync_secs:.1} s");
    if args.seed_only {
        return Ok(());
    }

    let page_cache: Vec<String> = args
        .page_cache_mb
        .map(|mb| vec!["--page-cache-mb".into(), mb.to_string()])
        .unwrap_or_default();
    let mspec = DaemonSpec {
        exe: exe.clone(),
        dir: mdir.clone(),
        stat_port: M_STAT,
        admin_port: M_ADMIN,
        http_port: M_HTTP,
        shards: args.shards,
        retention: args.retention.clone(),
        flush_secs: args.flush,
        extra: vec![
            "--replica-port".into(),
            M_REPLICA.to_string(),
            "--replica-read-rate".into(),
            args.read_rate.to_string(),
            "--replica-scrub-rate".into(),
            args.scrub.to_string(),
        ]
        .into_iter()
        .chain(page_cache.clone())
        .collect(),
    };
    let mut slave_extra: Vec<String> = vec![
        "--replica-of".into(),
        format!("127.0.0.1:{M_REPLICA}"),
        "--replica-scrub-rate".into(),
        args.scrub.to_string(),
        "--replica-scrub-interval".into(),
        "0".into(),
    ];
    slave_extra.extend(page_cache);
    if let Some(r) = args.create_rate {
        slave_extra.extend(["--replica-create-rate".into(), r.to_string()]);
    }
    if let Some(r) = args.subscribe_rate {
        slave_extra.extend(["--replica-subscribe-rate".into(), r.to_string()]);
    }
    let sspec = DaemonSpec {
        exe,
        dir: sdir.clone(),
        stat_port: S_STAT,
        admin_port: S_ADMIN,
        http_port: S_HTTP,
        shards: args.shards,
        retention: args.retention.clone(),
        flush_secs: args.flush,
        extra: slave_extra,
    };
    // The slave's store reopened by a daemon that is not a slave: same options, no
    // replication.
    let rspec = DaemonSpec {
        extra: Vec::new(),
        ..sspec.clone()
    };
    println!("master: {}", mspec.command_line());
    println!("slave:  {}", sspec.command_line());
    daemon::wait_ports_free(
        &[M_STAT, M_ADMIN, M_REPLICA, M_HTTP, S_STAT, S_ADMIN, S_HTTP],
        port_wait,
    )?;
    let mut m = Daemon::spawn(&mspec)?;
    let up = m
        .wait_ready(Duration::from_secs(600))
        .map_err(|e| format!("master start: {e}"))?;
    let listed = wait_files(&mut m, nfiles, Duration::from_secs(600))
        .map_err(|e| format!("master start: {e}"))?;
    println!(
        "master ready in {:.1} s, lists its {nfiles} files {:.1} s later",
        up.as_secs_f64(),
        listed.as_secs_f64()
    );
    let stat_addr = SocketAddr::from(([127, 0, 0, 1], M_STAT));
    let names: Vec<String> = (0..args.files)
        .map(|i| counter_name(PREFIX, GROUP, i))
        .chain(std::iter::once("repl.probe".to_string()))
        .collect();
    // The probe counter, created now: the steady phase then times a file that exists.
    TcpStream::connect(stat_addr)
        .and_then(|mut c| c.write_all(format!("repl.probe {} 0\n", unix_now()).as_bytes()))
        .map_err(|e| format!("probe counter: {e}"))?;
    let gen = if args.rate > 0.0 {
        let mut cfg = GenConfig::new(stat_addr, 4, args.files);
        cfg.prefix = PREFIX.into();
        cfg.group = GROUP;
        cfg.rate = Some(args.rate);
        Some(Generator::start(&cfg).map_err(|e| format!("loadgen: {e}"))?)
    } else {
        None
    };
    // At least 10 s under load: also the master's ingest before any slave.
    let pre = (Instant::now(), stat(&m.stats()?, SAMPLES));
    let min = Duration::from_secs(if gen.is_some() { 10 } else { 3 });
    let loaded = load_every_file(SocketAddr::from(([127, 0, 0, 1], M_HTTP)), &names)
        .map_err(|e| format!("master: {e}"))?;
    println!(
        "master loaded every file (the baseline counts them) in {:.1} s",
        loaded.as_secs_f64()
    );
    let (_, m_base_stats) = settled_rss(&mut m, min, Duration::from_secs(30))?;
    let pre_ingest = (stat(&m_base_stats, SAMPLES) - pre.1) as f64 / pre.0.elapsed().as_secs_f64();
    let m_base = Mem::of(&m, &m_base_stats);
    println!(
        "master before the slave: RssAnon {:.1} MiB, {} cached pages, {} files, ingest {pre_ingest:.0} samples/s",
        mib(m_base.rss_kib),
        m_base.cached_pages,
        stat(&m_base_stats, FILES)
    );

    // Slave: file creation, subscription, catch-up.
    let m0 = m.stats()?;
    let t0 = Instant::now();
    let mut s = Daemon::spawn(&sspec)?;
    s.wait_ready(Duration::from_secs(60))
        .map_err(|e| format!("slave start: {e}"))?;
    let mut last_print = Instant::now();
    let mut ms = Milestones::default();
    let timeout = Duration::from_secs(args.timeout);
    while t0.elapsed() < timeout {
        daemon::sleep(Duration::from_millis(500))?;
        m.check_alive().map_err(|e| format!("master: {e}"))?;
        s.check_alive().map_err(|e| format!("slave: {e}"))?;
        let s_stats = s.stats()?;
        let now = t0.elapsed().as_secs_f64();
        let created = stat(&s_stats, "replication.slave.files_created");
        let written = stat(&s_stats, "replication.slave.buckets_written");
        let behind = stat(&s_stats, "replication.slave.behind");
        let subscribed = stat(&s_stats, "replication.slave.subscribed");
        if ms.created.is_none() && created >= nfiles {
            ms.created = Some(now);
            println!("  {now:5.0} s: the slave created {created} files (every seeded one)");
        }
        if ms.subscribed.is_none() && subscribed >= nfiles {
            ms.subscribed = Some(now);
            println!("  {now:5.0} s: the slave subscribed {subscribed} files (every seeded one)");
        }
        if written >= seeded.buckets && behind == 0 && subscribed >= nfiles {
            ms.converged = Some(now);
            break;
        }
        if last_print.elapsed() >= Duration::from_secs(10) {
            last_print = Instant::now();
            let mst = m.stats()?;
            println!(
                "  {now:5.0} s: slave created {created}, subscribed {subscribed}, behind {behind}, buckets written {written} of {}, {:.1} MB received, {:.1} MB still behind; master parked {} ready {}; VmRSS master {:.0} MiB, slave {:.0} MiB",
                seeded.buckets,
                stat(&s_stats, "replication.slave.bytes_received") as f64 / 1e6,
                stat(&s_stats, "replication.slave.bytes_behind") as f64 / 1e6,
                stat(&mst, "replication.master.parked"),
                stat(&mst, "replication.master.ready"),
                mib(m.rss_kib().unwrap_or(0)),
                mib(s.rss_kib().unwrap_or(0)),
            );
        }
    }
    let catch = t0.elapsed();
    let converged = ms.converged.is_some();
    // The state with the slave connected: every file announced and subscribed.
    let m1 = m.stats()?;
    let m_conv = Mem::of(&m, &m1);
    let s_stats = s.stats()?;
    let s_conv = Mem::of(&s, &s_stats);
    let secs = catch.as_secs_f64();
    let rx = stat(&s_stats, "replication.slave.bytes_received");
    let written = stat(&s_stats, "replication.slave.buckets_written");
    let catch_ingest = (stat(&m1, SAMPLES) - stat(&m0, SAMPLES)) as f64 / secs;
    let m_files = stat(&m1, FILES);
    let (m_parked, m_ready) = (
        stat(&m1, "replication.master.parked"),
        stat(&m1, "replication.master.ready"),
    );
    println!(
        "catch-up: {} in {secs:.1} s, {:.1} MB/s of bucket data written ({:.0} buckets/s), {:.1} MB/s received, master ingest {catch_ingest:.0} samples/s meanwhile",
        if converged { "converged" } else { "NOT converged (--timeout reached)" },
        written as f64 * 32.0 / 1e6 / secs,
        written as f64 / secs,
        rx as f64 / 1e6 / secs,
    );
    println!(
        "  then: master RssAnon {:.1} MiB ({} cached pages), {m_files} files, {m_parked} parked and {m_ready} ready Requests; slave RssAnon {:.1} MiB ({} cached pages), {} files, {} subscribed",
        mib(m_conv.rss_kib),
        m_conv.cached_pages,
        mib(s_conv.rss_kib),
        s_conv.cached_pages,
        stat(&s_stats, FILES),
        stat(&s_stats, "replication.slave.subscribed"),
    );

    // Steady lag: one probe a second for --steady seconds, each timed until the slave
    // shows it (polled every 20 ms), without waiting for one before sending the next.
    let http = SocketAddr::from(([127, 0, 0, 1], S_HTTP));
    let probe_timeout = Duration::from_secs(args.probe_timeout);
    let steady = Duration::from_secs(args.steady);
    let mut probes: Vec<Probe> = Vec::new();
    let ms0 = m.stats()?;
    let ts = Instant::now();
    let mut next_send = ts;
    let mut next_stats = ts;
    let (mut ready_max, mut tail_lag_max) = (0u64, 0u64);
    let mut last_answer = String::new();
    let mut probe = TcpStream::connect(stat_addr).map_err(|e| format!("probe: {e}"))?;
    loop {
        daemon::check_interrupt()?;
        let sending = ts.elapsed() < steady;
        if sending && Instant::now() >= next_send {
            let seq = probes.len() as u64 + 1;
            let now = unix_now();
            probe
                .write_all(format!("repl.probe {now} {seq}\n").as_bytes())
                .map_err(|e| format!("probe: {e}"))?;
            probes.push(Probe {
                seq,
                bucket: now - now % 10,
                sent: Instant::now(),
                lag: None,
            });
            next_send += Duration::from_secs(1);
        }
        if Instant::now() >= next_stats {
            next_stats += Duration::from_secs(5);
            m.check_alive().map_err(|e| format!("master: {e}"))?;
            s.check_alive().map_err(|e| format!("slave: {e}"))?;
            ready_max = ready_max.max(stat(&m.stats()?, "replication.master.ready"));
            tail_lag_max =
                tail_lag_max.max(stat(&s.stats()?, "replication.slave.tail_lag_seconds"));
        }
        let pending: Vec<&Probe> = probes.iter().filter(|p| p.lag.is_none()).collect();
        if !sending
            && pending
                .last()
                .is_none_or(|p| p.sent.elapsed() >= probe_timeout)
        {
            break;
        }
        if let (Some(lo), Some(hi)) = (
            pending.iter().map(|p| p.bucket).min(),
            pending.iter().map(|p| p.bucket).max(),
        ) {
            let path = format!("/repl.probe?start={}&end={}&samples=0", lo - 10, hi + 10);
            if let Some(body) = http_get(http, &path) {
                let maxes = bucket_maxes(&body);
                for p in probes.iter_mut().filter(|p| p.lag.is_none()) {
                    // Probe values only grow on one connection, so a bucket whose max
                    // is at least p's value holds p.
                    if maxes
                        .iter()
                        .any(|&(t, mx)| t == p.bucket && mx >= p.seq as f64)
                    {
                        p.lag = Some(p.sent.elapsed().as_secs_f64());
                    }
                }
                last_answer = body;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let ms1 = m.stats()?;
    let steady_secs = ts.elapsed().as_secs_f64();
    let steady_ingest = (stat(&ms1, SAMPLES) - stat(&ms0, SAMPLES)) as f64 / steady_secs;
    let mut lags: Vec<f64> = probes.iter().filter_map(|p| p.lag).collect();
    lags.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let missed = probes.len() - lags.len();
    if missed > 0 {
        println!(
            "  {missed} probes not seen on the slave within {} s; last answer: {}",
            probe_timeout.as_secs(),
            last_answer.trim_end()
        );
    }
    println!(
        "steady: {} probes sent in {} s, {} seen: lag p50 {:.2} s, p99 {:.2} s, max {:.2} s; master ready Requests at most {ready_max}, slave tail_lag_seconds at most {tail_lag_max}; RssAnon master {:.1} MiB, slave {:.1} MiB",
        probes.len(),
        args.steady,
        lags.len(),
        pct(&lags, 0.5),
        pct(&lags, 0.99),
        pct(&lags, 1.0),
        mib(m.rss_anon_kib().unwrap_or(0)),
        mib(s.rss_anon_kib().unwrap_or(0)),
    );
    if let Some(g) = gen {
        g.stop();
        let _ = g.join();
    }

    // Final comparison, after a flush of each (only after a converged catch-up: the
    // stores differ otherwise, and a flush behind a backlog can take minutes).
    let mut flushed = converged;
    if converged {
        daemon::sleep(Duration::from_secs(3))?;
        // The slave has all once the master has nothing left to answer (a backlog of
        // ready Requests drains after the load stops).
        let t = Instant::now();
        let drained = drain(&mut m, &mut s, Duration::from_secs(args.timeout))?;
        println!(
            "after the load stopped: the slave had every answer of the master in {:.1} s{}",
            t.elapsed().as_secs_f64(),
            if drained {
                ""
            } else {
                " (NOT drained: bound reached)"
            }
        );
        flushed &= flush_daemon("master", &mut m)?;
        // What the master's flush wrote is answered before the slave's flush.
        drain(&mut m, &mut s, Duration::from_secs(args.timeout))?;
        flushed &= flush_daemon("slave", &mut s)?;
    }
    let mfin = m.stats()?;
    let sfin = s.stats()?;
    let verify = if !flushed && converged {
        "skipped (a flush failed)".to_string()
    } else if converged && !args.skip_verify {
        let t = Instant::now();
        let out = std::process::Command::new(&mspec.exe)
            .args(["verify", "--exclude", "istatd", "--max-report", "5"])
            .arg(mspec.store())
            .arg(sspec.store())
            .output()
            .map_err(|e| format!("verify: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let last = text.lines().last().unwrap_or("no output").to_string();
        println!("verify ({:.0} s): {last}", t.elapsed().as_secs_f64());
        last
    } else if converged {
        "skipped (--skip-verify)".to_string()
    } else {
        "skipped (catch-up not converged)".to_string()
    };
    // One scrub pass over everything, timed.
    let scrub = if args.scrub > 0 && converged {
        let before = s.stats()?;
        let t = Instant::now();
        s.command("replication.scrub start")?;
        let deadline = t + Duration::from_secs(args.timeout);
        loop {
            daemon::sleep(Duration::from_millis(500))?;
            let st = s.stats()?;
            if stat(&st, "replication.scrub.running") == 0
                && stat(&st, "replication.scrub.passes_done")
                    > stat(&before, "replication.scrub.passes_done")
            {
                break Some((t.elapsed().as_secs_f64(), st));
            }
            if Instant::now() > deadline {
                println!("scrub pass did not end in {} s", args.timeout);
                break None;
            }
        }
    } else {
        None
    };
    let s_files = stat(&sfin, FILES);
    let s_hwm = s.hwm_kib().unwrap_or(0);
    let (stop_m, _) = m.stop(Duration::from_secs(120));
    let (stop_s, _) = s.stop(Duration::from_secs(120));
    for p in m.problems().iter().chain(s.problems().iter()).take(10) {
        println!("daemon log: {p}");
    }
    drop((m, s));

    // Second round: both restarted, the slave resubscribes every file with nothing to
    // copy but its resume overlap; the state without the catch-up's transients.
    let round2 = if !converged {
        println!("restart round skipped: the catch-up did not converge");
        None
    } else if args.skip_restart {
        None
    } else {
        Some(restart_round(
            &mspec,
            &sspec,
            nfiles,
            m_files,
            &names,
            port_wait,
            Duration::from_secs(args.timeout),
        )?)
    };

    // The slave's store reopened by a daemon that is not a slave.
    daemon::wait_ports_free(&[S_STAT, S_ADMIN, S_HTTP], port_wait)?;
    let mut r = Daemon::spawn(&rspec)?;
    r.wait_ready(Duration::from_secs(600))
        .map_err(|e| format!("slave store reopened: {e}"))?;
    wait_files(&mut r, s_files, Duration::from_secs(600))
        .map_err(|e| format!("slave store reopened: {e}"))?;
    load_every_file(http, &names).map_err(|e| format!("slave store reopened: {e}"))?;
    let role = r
        .command("replication.status")
        .ok()
        .and_then(|l| l.into_iter().find(|l| l.starts_with("role=")))
        .unwrap_or_else(|| "role unknown".into());
    let (_, r_stats) = settled_rss(&mut r, Duration::from_secs(3), Duration::from_secs(30))?;
    let s_reopen = Mem::of(&r, &r_stats);
    println!(
        "slave store reopened without --replica-of ({role}): RssAnon {:.1} MiB, {} cached pages, {} files",
        mib(s_reopen.rss_kib),
        s_reopen.cached_pages,
        stat(&r_stats, FILES)
    );
    r.stop(Duration::from_secs(60));

    let (m_rss, m_cache, m_per) = state_per_file(m_conv, m_base, m_files);
    let (s_rss, s_cache, s_per) = state_per_file(s_conv, s_reopen, stat(&s_stats, FILES));
    let not = if converged {
        ""
    } else {
        " (catch-up not converged)"
    };

    println!(
        "\nreplication at {:.0} updates/s on the master (--rate {}), {nfiles} files ({} counters, --retention {}, {hours} h of data each), {} shards, read rate {}, create rate {}, subscribe rate {}:",
        args.rate,
        args.rate,
        args.files,
        args.retention,
        args.shards,
        if args.read_rate == 0 { "unlimited".to_string() } else { format!("{} B/s", args.read_rate) },
        args.create_rate.map_or("the daemon's default".to_string(), |r| format!("{r}/s")),
        args.subscribe_rate.map_or("the daemon's default".to_string(), |r| format!("{r}/s")),
    );
    println!(
        "| figure (load {:.0} updates/s) | value |\n|---|---:|",
        args.rate
    );
    println!(
        "| seeded: files, buckets, MB, seconds | {nfiles}, {}, {:.0}, {seed_secs:.1} |",
        seeded.buckets,
        seeded.bytes as f64 / 1e6
    );
    let files_row = |label: &str, at: Option<f64>| match at {
        Some(t) => println!(
            "| {label}: seconds, files/s | {t:.1}, {:.0} |",
            nfiles as f64 / t.max(1e-3)
        ),
        None => println!(
            "| {label}: seconds, files/s | not reached in {secs:.0} s ({} files) |",
            if label.contains("creat") {
                stat(&s_stats, "replication.slave.files_created")
            } else {
                stat(&s_stats, "replication.slave.subscribed")
            }
        ),
    };
    files_row("slave file creation (every file exists)", ms.created);
    files_row("slave subscription (every file subscribed)", ms.subscribed);
    println!(
        "| catch-up: seconds to convergence | {secs:.1}{} |",
        if converged {
            ""
        } else {
            " (not converged: --timeout)"
        }
    );
    println!(
        "| catch-up: MB/s of bucket data written (buckets x 32 B), MB/s received | {:.1}, {:.1} |",
        written as f64 * 32.0 / 1e6 / secs,
        rx as f64 / 1e6 / secs
    );
    println!(
        "| catch-up: buckets/s written by the slave (written / seeded) | {:.0} ({written} / {}) |",
        written as f64 / secs,
        seeded.buckets
    );
    println!(
        "| master ingest before the slave / during catch-up / steady phase, samples/s | {pre_ingest:.0} / {catch_ingest:.0} / {steady_ingest:.0} |"
    );
    println!(
        "| steady lag sent->visible on slave p50 / p99 / max, s{not} | {:.2} / {:.2} / {:.2} ({} of {} probes seen, {missed} not within {} s) |",
        pct(&lags, 0.5),
        pct(&lags, 0.99),
        pct(&lags, 1.0),
        lags.len(),
        probes.len(),
        args.probe_timeout
    );
    println!(
        "| during the steady phase: master ready (unanswered) Requests at most, slave tail_lag_seconds at most | {ready_max}, {tail_lag_max} |"
    );
    let est = |st: &Stats, key: &str| {
        format!(
            "{:.0}",
            stat(st, key) as f64 / stat(st, FILES).max(1) as f64
        )
    };
    let r2 = round2.as_ref().map(|r| {
        (
            state_per_file(r.m_with, r.m_base, stat(&r.m_stats, FILES)),
            state_per_file(r.s_with, s_reopen, stat(&r.s_stats, FILES)),
        )
    });
    let mib_of = |b: i64| b as f64 / 1048576.0;
    println!(
        "| master replication state B/file, measured at convergence: (RssAnon {:+.1} MiB - page cache {:+.1} MiB) / {m_files} files{not} | {m_per:.0} |",
        mib_of(m_rss),
        mib_of(m_cache)
    );
    if let (Some(r), Some(((rss, cache, per), _))) = (&round2, r2) {
        println!(
            "| master replication state B/file, measured after both restarted, the slave resubscribed in {:.0} s{}: (RssAnon {:+.1} MiB - page cache {:+.1} MiB) / {} files | {per:.0} |",
            r.secs,
            if r.converged { "" } else { " (NOT every file)" },
            mib_of(rss),
            mib_of(cache),
            stat(&r.m_stats, FILES)
        );
    }
    if let Some(r) = &round2 {
        let (heap, per) = heap_per_file(r.m_with, r.m_base, stat(&r.m_stats, FILES));
        println!(
            "| master replication state B/file, heap in use after both restarted, the slave resubscribed (heap {:+.2} MiB - page cache) / {} files | {per:.1} |",
            mib_of(heap),
            stat(&r.m_stats, FILES)
        );
        if let Some((rel, master_state)) = r.s_released {
            let files = stat(&r.s_stats, FILES);
            let (heap, per) = heap_per_file(r.s_with, rel, files);
            let per = per + master_state as f64 / files.max(1) as f64;
            println!(
                "| slave replication state B/file, heap in use: resubscribed vs the same slave promoted (its slave state freed; plus the {:.2} MiB of master state it built once promoted), (heap {:+.2} MiB - page cache) / {files} files | {per:.1} |",
                mib_of(master_state as i64),
                mib_of(heap),
            );
        }
    }
    println!(
        "| master replication state B/file, daemon's estimate (replication.master.state_bytes / files) at convergence{} | {}{} |",
        if round2.is_some() { " / restart round" } else { "" },
        est(&m1, "replication.master.state_bytes"),
        round2.as_ref().map_or(String::new(), |r| format!(
            " / {}",
            est(&r.m_stats, "replication.master.state_bytes")
        ))
    );
    println!(
        "| slave replication state B/file, measured at convergence vs the store reopened by a non-slave: (RssAnon {:+.1} MiB - page cache {:+.1} MiB) / {} files{not} | {s_per:.0} |",
        mib_of(s_rss),
        mib_of(s_cache),
        stat(&s_stats, FILES)
    );
    if let (Some(r), Some((_, (rss, cache, per)))) = (&round2, r2) {
        println!(
            "| slave replication state B/file, measured after the restart, resubscribed, vs the reopened store: (RssAnon {:+.1} MiB - page cache {:+.1} MiB) / {} files | {per:.0} |",
            mib_of(rss),
            mib_of(cache),
            stat(&r.s_stats, FILES)
        );
    }
    println!(
        "| slave replication state B/file, daemon's estimate (replication.slave.state_bytes / files) at convergence{} | {}{} |",
        if round2.is_some() { " / restart round" } else { "" },
        est(&s_stats, "replication.slave.state_bytes"),
        round2.as_ref().map_or(String::new(), |r| format!(
            " / {}",
            est(&r.s_stats, "replication.slave.state_bytes")
        ))
    );
    println!(
        "| RssAnon MiB: master before the slave / at convergence; slave at convergence (VmHWM at the end) / store reopened by a non-slave | {:.1} / {:.1}; {:.1} ({:.1}) / {:.1} |",
        mib(m_base.rss_kib),
        mib(m_conv.rss_kib),
        mib(s_conv.rss_kib),
        mib(s_hwm),
        mib(s_reopen.rss_kib)
    );
    println!(
        "| master bytes sent, slave bytes sent (Requests) | {} / {} |",
        stat(&mfin, "replication.master.bytes_sent"),
        stat(&sfin, "replication.slave.bytes_sent")
    );
    println!(
        "| stop seconds master / slave | {:.1} / {:.1} |",
        stop_m.as_secs_f64(),
        stop_s.as_secs_f64()
    );
    println!("| verify (istatd.* left out) | {verify} |");
    if let Some((secs, st)) = scrub {
        let ranges = stat(&st, "replication.scrub.ranges_checked");
        let buckets = ranges * 64;
        println!(
            "| scrub pass (rate {} buckets/s): seconds, files | {secs:.1}, {} |",
            args.scrub,
            stat(&st, "replication.scrub.files_checked")
        );
        println!(
            "| scrub buckets compared per second (MB/s read on each side) | {:.0} ({:.1}) |",
            buckets as f64 / secs,
            buckets as f64 * 32.0 / 1e6 / secs
        );
        println!(
            "| scrub bytes received (digests + repairs), ranges differing / repaired | {} , {} / {} |",
            stat(&st, "replication.scrub.bytes"),
            stat(&st, "replication.scrub.ranges_differing"),
            stat(&st, "replication.scrub.ranges_repaired")
        );
    }
    println!(
        "| whole run, seconds | {:.0} |",
        run_start.elapsed().as_secs_f64()
    );
    Ok(())
}
