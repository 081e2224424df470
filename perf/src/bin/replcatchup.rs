//! Replication catch-up and steady lag (replication.md §3.8, issue 5 item 7).
//!
//! cargo build --release --bin istatd
//! cargo run --release -p istatd-perf --bin replcatchup [-- --files 10000 --hours 24]
//!
//! 1. builds a master store of `--files` counter files (retention `10s:1d`, one file
//!    per counter), each holding `--hours` of 10 s buckets up to now, written directly
//!    with the storage crate's file code (not through the daemon: seeding 86 M
//!    buckets through the stat port would dominate the run);
//! 2. starts the master on it (stat 19550, admin 19551, replica 19552, `--flush 1`),
//!    then the load generator at `--rate` (60,000) updates/s over the same counters,
//!    then a fresh slave (admin 19554, HTTP 19555) with `--replica-read-rate` and
//!    `--replica-create-rate` as given;
//! 3. catch-up: until the slave has written every seeded bucket and no file is behind:
//!    seconds, MB/s received, buckets/s, and the master's ingest rate meanwhile;
//! 4. steady state, for `--steady` seconds with the load still on: once a second a
//!    probe sample (`repl.probe`, time = now, a fresh value) goes to the master, and the
//!    slave's HTTP API is polled until that bucket shows the value: p50/p99/max of the
//!    delay from sending to visible on the slave. It includes the wait for the master's
//!    flush of the probe counter (`--flush 1`: at most about 1 s);
//! 5. stops the load, waits for the slave, flushes both and runs `istatd verify`
//!    (the master's own `istatd.*` counters left out): differing buckets;
//! 6. with `--scrub N` (both daemons run with `--replica-scrub-rate N`): one
//!    anti-entropy scrub pass over the slave's whole store, load stopped: seconds,
//!    buckets compared per second, digest and repair bytes, ranges repaired (0 after
//!    a verified catch-up);
//! 7. prints a table, including the replication state bytes per file on both sides.
//!
//! Prints figures, asserts nothing.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use istatd_perf::daemon::{self, Daemon, DaemonSpec, Stats, SAMPLES};
use istatd_perf::loadgen::{counter_name, GenConfig, Generator};
use istatd_storage::format::{Bucket, CreateParams, Header, HEADER_SIZE, PAGE_SIZE};
use istatd_storage::statfile::{FileState, ImageSlots};

#[derive(Parser, Debug)]
#[command(about = "Replication catch-up throughput and steady lag between two daemons")]
struct Args {
    /// The daemon binary (default: target/release/istatd next to this binary).
    #[arg(long)]
    istatd: Option<PathBuf>,
    /// Counter files on the master (one 10 s file per counter).
    #[arg(long, default_value_t = 10_000)]
    files: usize,
    /// Hours of 10 s data in each file (at most 24).
    #[arg(long, default_value_t = 24)]
    hours: u32,
    /// Load generator rate during the run, updates/s (0: none).
    #[arg(long, default_value_t = 60_000.0)]
    rate: f64,
    /// Seconds of steady state after catch-up.
    #[arg(long, default_value_t = 30)]
    steady: u64,
    /// The slave's master's --replica-read-rate (bytes/s, 0 = unlimited).
    #[arg(long, default_value_t = 0)]
    read_rate: u64,
    /// The slave's --replica-create-rate (files/s).
    #[arg(long, default_value_t = 5000)]
    create_rate: u32,
    /// Bound on the catch-up, seconds.
    #[arg(long, default_value_t = 1800)]
    timeout: u64,
    #[arg(long, default_value_t = 2)]
    shards: usize,
    /// Both daemons' --replica-scrub-rate (buckets/s); 0: no scrub pass is timed.
    #[arg(long, default_value_t = 0)]
    scrub: u64,
    /// Parent of the temporary directory (default: the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    #[arg(long)]
    keep: bool,
}

const PREFIX: &str = "repl";
const GROUP: usize = 1000;

fn main() {
    let args = Args::parse();
    daemon::install_interrupt_handler();
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("istatd-replcatchup-{}", std::process::id()));
    let r = run(&args, &dir);
    if args.keep {
        println!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    if let Err(e) = r {
        eprintln!("replcatchup: {e}");
        std::process::exit(1);
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Write the master's store: `files` files of `hours` of 10 s buckets ending now.
fn seed(root: &Path, files: usize, hours: u32) -> Result<(u64, u64), String> {
    let now = unix_now();
    let newest = now - now % 10;
    let n = (hours.min(24) as i64 * 360).max(1);
    let first = newest - (n - 1) * 10;
    let slots = 8640i64;
    let page_count = (slots * 32 + PAGE_SIZE as i64 - 1) / PAGE_SIZE as i64;
    let threads = 2;
    let per = files.div_ceil(threads);
    let results: Vec<Result<u64, String>> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                sc.spawn(move || -> Result<u64, String> {
                    let mut bytes = 0u64;
                    for i in t * per..((t + 1) * per).min(files) {
                        let name = counter_name(PREFIX, GROUP, i);
                        let p = CreateParams {
                            interval: 10,
                            page_count,
                            flags: 0,
                            // Zero time well before the data, as a daemon-made file.
                            zero_time: first - 10 * 8640,
                            lambda: 0.0,
                            season: 0,
                            fixed_count: 0,
                            unit: String::new(),
                            name: name.clone(),
                        };
                        let mut st = FileState::new_created(Header::new_file(&p));
                        let mut img = vec![0u8; PAGE_SIZE * (page_count as usize + 1)];
                        let mut sl = ImageSlots {
                            image: &mut img,
                            page_size: PAGE_SIZE as i64,
                        };
                        let buckets: Vec<Bucket> = (0..n)
                            .map(|k| Bucket::sample(first + k * 10, ((i as i64 + k) % 100) as f64))
                            .collect();
                        st.put_overwrite(&mut sl, &buckets);
                        st.absorb_overlay(&mut sl);
                        img[..HEADER_SIZE].copy_from_slice(&st.header.to_bytes());
                        let path = root.join(name.replace('.', "/")).join("10s");
                        std::fs::create_dir_all(path.parent().expect("a parent"))
                            .map_err(|e| e.to_string())?;
                        std::fs::write(&path, &img)
                            .map_err(|e| format!("{}: {e}", path.display()))?;
                        bytes += img.len() as u64;
                    }
                    Ok(bytes)
                })
            })
            .collect();
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
    Ok((files as u64 * n as u64, bytes))
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

fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn run(args: &Args, dir: &Path) -> Result<(), String> {
    let exe = daemon::istatd_binary(args.istatd.as_deref())?;
    let mdir = dir.join("master");
    let sdir = dir.join("slave");
    std::fs::create_dir_all(mdir.join("store")).map_err(|e| e.to_string())?;
    println!(
        "machine: {} cores, load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        daemon::load_average()
    );
    let t = Instant::now();
    let (seeded, seed_bytes) = seed(&mdir.join("store"), args.files, args.hours)?;
    println!(
        "seed: {} files, {seeded} buckets, {:.0} MB written in {:.1} s",
        args.files,
        seed_bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    let mspec = DaemonSpec {
        exe: exe.clone(),
        dir: mdir.clone(),
        stat_port: 19550,
        admin_port: 19551,
        http_port: 0,
        shards: args.shards,
        retention: "10s:1d".into(),
        flush_secs: 1,
        extra: vec![
            "--replica-port".into(),
            "19552".into(),
            "--replica-read-rate".into(),
            args.read_rate.to_string(),
            "--replica-scrub-rate".into(),
            args.scrub.to_string(),
        ],
    };
    let sspec = DaemonSpec {
        exe,
        dir: sdir.clone(),
        stat_port: 19553,
        admin_port: 19554,
        http_port: 19555,
        shards: args.shards,
        retention: "10s:1d".into(),
        flush_secs: 1,
        extra: vec![
            "--replica-of".into(),
            "127.0.0.1:19552".into(),
            "--replica-create-rate".into(),
            args.create_rate.to_string(),
            "--replica-scrub-rate".into(),
            args.scrub.to_string(),
            "--replica-scrub-interval".into(),
            "0".into(),
        ],
    };
    println!("master: {}", mspec.command_line());
    println!("slave:  {}", sspec.command_line());
    let mut m = Daemon::spawn(&mspec)?;
    let start = m.wait_ready(Duration::from_secs(120))?;
    println!("master ready in {:.1} s", start.as_secs_f64());
    let stat_addr = SocketAddr::from(([127, 0, 0, 1], 19550));
    let gen = if args.rate > 0.0 {
        let mut cfg = GenConfig::new(stat_addr, 4, args.files);
        cfg.prefix = PREFIX.into();
        cfg.group = GROUP;
        cfg.rate = Some(args.rate);
        Some(Generator::start(&cfg).map_err(|e| format!("loadgen: {e}"))?)
    } else {
        None
    };
    daemon::sleep(Duration::from_secs(2))?;

    // Catch-up.
    let m0 = m.stats()?;
    let t0 = Instant::now();
    let mut s = Daemon::spawn(&sspec)?;
    s.wait_ready(Duration::from_secs(60))?;
    let mut last_print = Instant::now();
    let mut caught = None;
    let mut s_stats = s.stats()?;
    while t0.elapsed() < Duration::from_secs(args.timeout) {
        daemon::sleep(Duration::from_millis(500))?;
        m.check_alive()?;
        s.check_alive()?;
        s_stats = s.stats()?;
        let written = stat(&s_stats, "replication.slave.buckets_written");
        let behind = stat(&s_stats, "replication.slave.behind");
        let subscribed = stat(&s_stats, "replication.slave.subscribed");
        if written >= seeded && behind == 0 && subscribed as usize >= args.files {
            caught = Some(t0.elapsed());
            break;
        }
        if last_print.elapsed() >= Duration::from_secs(10) {
            last_print = Instant::now();
            println!(
                "  {:5.0} s: slave created {}, subscribed {subscribed}, behind {behind}, buckets written {written} of {seeded}, {:.1} MB received",
                t0.elapsed().as_secs_f64(),
                stat(&s_stats, "replication.slave.files_created"),
                stat(&s_stats, "replication.slave.bytes_received") as f64 / 1e6
            );
        }
    }
    let m1 = m.stats()?;
    let catch = caught.unwrap_or(t0.elapsed());
    let secs = catch.as_secs_f64();
    let rx = stat(&s_stats, "replication.slave.bytes_received");
    let catch_ingest = (stat(&m1, SAMPLES) - stat(&m0, SAMPLES)) as f64 / secs;
    println!(
        "catch-up: {} in {secs:.1} s, {:.1} MB/s received, {:.0} buckets/s written, master ingest {catch_ingest:.0} samples/s meanwhile",
        if caught.is_some() { "converged" } else { "NOT converged (bound reached)" },
        rx as f64 / 1e6 / secs,
        stat(&s_stats, "replication.slave.buckets_written") as f64 / secs
    );

    // Steady lag.
    let http = SocketAddr::from(([127, 0, 0, 1], 19555));
    let mut lags = Vec::new();
    let mut missed = 0;
    let ms0 = m.stats()?;
    let ts = Instant::now();
    let mut seq = 0u64;
    let mut probe = TcpStream::connect(stat_addr).map_err(|e| e.to_string())?;
    while ts.elapsed() < Duration::from_secs(args.steady) {
        seq += 1;
        let now = unix_now();
        let sent = Instant::now();
        probe
            .write_all(format!("repl.probe {now} {seq}\n").as_bytes())
            .map_err(|e| e.to_string())?;
        // Probe values only grow, so the bucket's max is the newest probe in it.
        let want = format!("\"max\":{seq},");
        let path = format!("/repl.probe?start={}&end={}&samples=0", now - 10, now + 10);
        let mut seen = false;
        while sent.elapsed() < Duration::from_secs(20) {
            if http_get(http, &path).is_some_and(|b| b.contains(&want)) {
                lags.push(sent.elapsed().as_secs_f64());
                seen = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if !seen {
            missed += 1;
            if missed == 1 {
                println!(
                    "  probe {seq} not seen on the slave in 20 s; last answer: {}",
                    http_get(http, &path).unwrap_or_default()
                );
            }
        }
        let wait = Duration::from_secs(1).saturating_sub(sent.elapsed());
        std::thread::sleep(wait);
    }
    let ms1 = m.stats()?;
    let steady_secs = ts.elapsed().as_secs_f64();
    let steady_ingest = (stat(&ms1, SAMPLES) - stat(&ms0, SAMPLES)) as f64 / steady_secs;
    lags.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    if let Some(g) = gen {
        g.stop();
        let _ = g.join();
    }

    // Final comparison.
    daemon::sleep(Duration::from_secs(3))?;
    let _ = m.flush()?;
    daemon::sleep(Duration::from_secs(3))?;
    let _ = s.flush()?;
    let ms = m.stats()?;
    let ss = s.stats()?;
    let verify = std::process::Command::new(&mspec.exe)
        .args(["verify", "--exclude", "istatd", "--max-report", "5"])
        .arg(mspec.store())
        .arg(sspec.store())
        .output()
        .map_err(|e| e.to_string())?;
    let verify_text = String::from_utf8_lossy(&verify.stdout).to_string();
    // One scrub pass over everything, timed.
    let scrub = if args.scrub > 0 {
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
    let mfiles = stat(&ms, "istatd.store.files").max(1);
    let sfiles = stat(&ss, "istatd.store.files").max(1);
    let (stop_m, _) = m.stop(Duration::from_secs(60));
    let (stop_s, _) = s.stop(Duration::from_secs(60));
    for p in m.problems().iter().chain(s.problems().iter()).take(10) {
        println!("daemon log: {p}");
    }

    println!(
        "\nreplication, {} files x {} h of 10 s data, {} shards, load {:.0} updates/s, read rate {}, create rate {}/s:",
        args.files,
        args.hours.min(24),
        args.shards,
        args.rate,
        if args.read_rate == 0 { "unlimited".to_string() } else { format!("{} B/s", args.read_rate) },
        args.create_rate
    );
    println!("| figure | value |\n|---|---:|");
    println!(
        "| seeded buckets | {seeded} ({:.0} MB of files) |",
        seed_bytes as f64 / 1e6
    );
    println!(
        "| catch-up seconds | {secs:.1}{} |",
        if caught.is_some() {
            ""
        } else {
            " (not converged)"
        }
    );
    println!(
        "| catch-up MB/s received by the slave | {:.1} |",
        rx as f64 / 1e6 / secs
    );
    println!("| master ingest during catch-up, samples/s | {catch_ingest:.0} |");
    println!("| steady ingest, samples/s | {steady_ingest:.0} |");
    println!(
        "| steady lag sent->visible on slave p50 / p99 / max, s | {:.2} / {:.2} / {:.2} ({} probes, {missed} not seen in 20 s) |",
        pct(&lags, 0.5),
        pct(&lags, 0.99),
        pct(&lags, 1.0),
        lags.len()
    );
    println!(
        "| replication state bytes per file, master / slave | {:.1} / {:.1} |",
        stat(&ms, "replication.master.state_bytes") as f64 / mfiles as f64,
        stat(&ss, "replication.slave.state_bytes") as f64 / sfiles as f64
    );
    println!(
        "| master bytes sent, slave bytes sent (Requests) | {} / {} |",
        stat(&ms, "replication.master.bytes_sent"),
        stat(&ss, "replication.slave.bytes_sent")
    );
    println!(
        "| stop seconds master / slave | {:.1} / {:.1} |",
        stop_m.as_secs_f64(),
        stop_s.as_secs_f64()
    );
    println!(
        "| verify (istatd.* left out) | {} |",
        verify_text.lines().last().unwrap_or("no output")
    );
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
    Ok(())
}
