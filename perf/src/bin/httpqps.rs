//! HTTP query throughput while samples are being ingested.
//!
//! cargo build --release --bin istatd
//! cargo run --release -p istatd-perf --bin httpqps
//!
//! Starts `target/release/istatd` (2 shards, retention `10s:2d,5m:14d`) on a fresh store
//! under the temp dir, on stat port `--port` (19540), admin +1, HTTP +2, then:
//!
//! 1. seed: one day of 10 s buckets (8,640, timestamped lines) for `qps.day` and for the
//!    100 counters `qps.m.c0` .. `qps.m.c99`, and one sample to each of the `--counters`
//!    ingest counters; waits until the daemon recorded all of it and checks that a GET
//!    returns every seeded bucket;
//! 2. starts the load generator at `--rate` samples/s (100,000) over the ingest counters;
//! 3. phase `get-day`: `--clients` (16) threads, each sending `GET /qps.day` for the whole
//!    day with `samples=0` (all 8,640 buckets) back to back for `--duration` seconds;
//! 4. phase `post-100`: the same clients sending `POST /*` with the 100 `qps.m.*` keys
//!    over the last hour with `maxSamples` 360 (every 10 s bucket, 36,000 in all);
//! 5. phase `render-100`: Graphite's `GET /render?target=qps.m.*` over the day,
//!    `format=json`: 100 series of 8,640 points (docs/graphite.md);
//! 6. phases `find-branch` and `find-leaf`: Graphite's `GET /metrics/find` of
//!    `bench.*` (every group of the ingest counters: branches) and `bench.g1.*` (1,000
//!    leaves), over all the daemon's names (the ingest counters and their parents);
//! 7. stops everything and prints, per phase: requests, queries/s, p50/p90/p99/max
//!    latency, bytes per answer, non-200 answers, and the ingest rate the daemon recorded
//!    (admin `istatd.statserver.samples`) and the generator sent during the phase.
//!
//! `--phases` picks phases; without a day phase nothing is seeded but the ingest
//! counters, so `--counters 500000 --retention 10s:2h --phases find-branch,find-leaf`
//! measures `/metrics/find` over 500,000 names on a store that fits a small disk.
//!
//! The daemon closes every HTTP connection after its answer (as the reference does), so
//! each request includes a TCP connect. Prints figures, asserts nothing.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use istatd_perf::daemon::{self, check_interrupt, Daemon, DaemonSpec, SAMPLES};
use istatd_perf::loadgen::{GenConfig, Generator};

#[derive(Parser, Debug)]
#[command(about = "HTTP queries per second on a daemon that ingests samples meanwhile")]
struct Args {
    /// The daemon binary (default: target/release/istatd next to this binary).
    #[arg(long)]
    istatd: Option<PathBuf>,
    /// Stat port; admin is the next port, HTTP the one after (19500-19599).
    #[arg(long, default_value_t = 19540)]
    port: u16,
    /// Concurrent HTTP clients (one thread each).
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Seconds per query phase.
    #[arg(long, default_value_t = 15)]
    duration: u64,
    /// Ingest rate during the phases, samples/s (0: none).
    #[arg(long, default_value_t = 100_000.0)]
    rate: f64,
    /// Distinct counters the ingest load goes to.
    #[arg(long, default_value_t = 10_000)]
    counters: usize,
    /// Stat connections of the ingest load.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    #[arg(long, default_value_t = 2)]
    shards: usize,
    /// The daemon's --retention (the day phases need one day of 10 s buckets).
    #[arg(long, default_value = "10s:2d,5m:14d")]
    retention: String,
    /// Phases to run, in this order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "get-day,post-100,render-100,find-branch,find-leaf"
    )]
    phases: Vec<String>,
    /// Parent of the temporary directory (default: the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the temporary directory.
    #[arg(long)]
    keep: bool,
}

const DAY_BUCKETS: u64 = 8640;
const MULTI: usize = 100;

fn main() {
    let args = Args::parse();
    daemon::install_interrupt_handler();
    let code = match run(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("httpqps: {e}");
            1
        }
    };
    std::process::exit(code);
}

fn run(args: &Args) -> Result<(), String> {
    if !(19500..=19597).contains(&args.port) {
        return Err(format!(
            "--port {}: the stat, admin and HTTP ports must be in 19500-19599",
            args.port
        ));
    }
    let exe = daemon::istatd_binary(args.istatd.as_deref())?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("istatd-httpqps-{}", std::process::id()));
    let result = run_in(args, &exe, &dir);
    if args.keep {
        println!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn run_in(args: &Args, exe: &std::path::Path, dir: &std::path::Path) -> Result<(), String> {
    let spec = DaemonSpec {
        exe: exe.to_path_buf(),
        dir: dir.to_path_buf(),
        stat_port: args.port,
        admin_port: args.port + 1,
        http_port: args.port + 2,
        shards: args.shards,
        retention: args.retention.clone(),
        flush_secs: 300,
        extra: vec![],
    };
    println!("daemon: {}", spec.command_line());
    println!(
        "machine: {} cores, load average {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        daemon::load_average()
    );
    let mut d = Daemon::spawn(&spec)?;
    d.wait_ready(Duration::from_secs(30))?;
    let stat = SocketAddr::from(([127, 0, 0, 1], spec.stat_port));
    let http = SocketAddr::from(([127, 0, 0, 1], spec.http_port));

    // 1. seed
    let now = unix_now();
    let day_end = now - now % 10;
    let day_start = day_end - DAY_BUCKETS * 10;
    let base = d.stats()?.get(SAMPLES);
    let t = Instant::now();
    let day_phases = args
        .phases
        .iter()
        .any(|p| matches!(p.as_str(), "get-day" | "post-100" | "render-100"));
    let mut seeded = if day_phases {
        seed(stat, day_start)?
    } else {
        0
    };
    let mut cfg = GenConfig::new(stat, args.connections, args.counters);
    cfg.samples = Some(args.counters as u64);
    let g = Generator::start(&cfg).map_err(|e| format!("loadgen connect: {e}"))?;
    let g = g.join();
    seeded += g.sent;
    wait_recorded(
        &mut d,
        base + seeded,
        Duration::from_secs(120 + args.counters as u64 / 2000),
    )?;
    d.flush()?;
    println!(
        "seed: {seeded} samples ({} counters of one day at 10 s, {} ingest counters) recorded in {:.1} s",
        1 + MULTI,
        args.counters,
        t.elapsed().as_secs_f64()
    );
    let day_req = format!(
        "GET /qps.day?start={day_start}&end={day_end}&samples=0 HTTP/1.1\r\nHost: x\r\n\r\n"
    );
    let keys: Vec<String> = (0..MULTI).map(|i| format!("\"qps.m.c{i}\"")).collect();
    let post_body = format!(
        "{{\"keys\":[{}],\"start\":{},\"stop\":{day_end},\"maxSamples\":360}}",
        keys.join(","),
        day_end - 3600
    );
    let post_req = format!(
        "POST /* HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{post_body}",
        post_body.len()
    );
    let render_req = format!(
        "GET /render?target=qps.m.*&from={day_start}&until={day_end}&format=json HTTP/1.1\r\nHost: x\r\n\r\n"
    );
    if day_phases {
        check_day(http, &day_req, &post_req, &render_req)?;
    }
    let find_req = |q: &str| format!("GET /metrics/find?query={q} HTTP/1.1\r\nHost: x\r\n\r\n");
    let (find_branch, find_leaf) = (find_req("bench.*"), find_req("bench.g1.*"));
    for req in [&find_branch, &find_leaf] {
        let (status, body) = request(http, req.as_bytes())?;
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| format!("/metrics/find: status {status}, not JSON: {e}"))?;
        println!(
            "check: {}: status {status}, {} nodes, {} bytes",
            req.lines().next().unwrap_or(""),
            v.as_array().map_or(0, |a| a.len()),
            body.len()
        );
    }

    // 2. ingest load for the phases
    let phases_secs = args.phases.len() as u64 * args.duration + 10;
    let gen = if args.rate > 0.0 {
        let mut cfg = GenConfig::new(stat, args.connections, args.counters);
        cfg.rate = Some(args.rate);
        cfg.duration = Some(Duration::from_secs(phases_secs));
        Some(Generator::start(&cfg).map_err(|e| format!("loadgen connect: {e}"))?)
    } else {
        None
    };
    daemon::sleep(Duration::from_secs(2))?;

    let mut results = Vec::new();
    for name in &args.phases {
        let req = match name.as_str() {
            "get-day" => day_req.clone(),
            "post-100" => post_req.clone(),
            "render-100" => render_req.clone(),
            "find-branch" => find_branch.clone(),
            "find-leaf" => find_leaf.clone(),
            other => return Err(format!("no phase {other}")),
        };
        check_interrupt()?;
        d.check_alive()?;
        println!(
            "phase {name}: {} clients for {} s ...",
            args.clients, args.duration
        );
        let s0 = d.stats()?.get(SAMPLES);
        let sent0 = gen.as_ref().map_or(0, |g| g.sent());
        let cpu0 = d.cpu_secs().unwrap_or(0.0);
        let t0 = Instant::now();
        let mut r = run_phase(http, req.into_bytes(), args.clients, args.duration);
        let dt = t0.elapsed().as_secs_f64();
        r.cpu = d.cpu_secs().unwrap_or(cpu0) - cpu0;
        r.recorded_rate = (d.stats()?.get(SAMPLES) - s0) as f64 / dt;
        r.sent_rate = (gen.as_ref().map_or(0, |g| g.sent()) - sent0) as f64 / dt;
        r.name = name.clone();
        r.wall = dt;
        results.push(r);
    }
    if let Some(g) = gen {
        g.stop();
        let g = g.join();
        for e in g.errors() {
            println!("loadgen: {e}");
        }
    }
    let (stop, exited) = d.stop(Duration::from_secs(60));
    println!(
        "daemon stopped in {:.1} s{}",
        stop.as_secs_f64(),
        if exited {
            ""
        } else {
            " (killed after the bound)"
        }
    );
    for p in d.problems() {
        println!("daemon log: {p}");
    }
    print_table(args, &results);
    Ok(())
}

/// The seeded day answers in full through each day phase's request.
fn check_day(
    http: SocketAddr,
    day_req: &str,
    post_req: &str,
    render_req: &str,
) -> Result<(), String> {
    let (status, body) = request(http, day_req.as_bytes())?;
    let v: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| format!("GET /qps.day: status {status}, not JSON: {e}"))?;
    let n = v["buckets"].as_array().map_or(0, |a| a.len());
    println!(
        "check: GET /qps.day for the day: status {status}, {n} buckets, interval {}, {} bytes",
        v["interval"],
        body.len()
    );
    if status != 200 || (n as u64) < DAY_BUCKETS {
        return Err(format!(
            "the seeded day is not all there: status {status}, {n} of {DAY_BUCKETS} buckets"
        ));
    }
    let (status, body) = request(http, post_req.as_bytes())?;
    let v: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| format!("POST /*: status {status}, not JSON: {e}"))?;
    let found = (0..MULTI)
        .filter(|i| v[format!("qps.m.c{i}")]["data"].is_array())
        .count();
    let buckets: usize = (0..MULTI)
        .map(|i| {
            v[format!("qps.m.c{i}")]["data"]
                .as_array()
                .map_or(0, |a| a.len())
        })
        .sum();
    println!(
        "check: POST /* of {MULTI} keys for the last hour: status {status}, {found} counters, \
         {buckets} buckets, {} bytes",
        body.len()
    );
    if status != 200 || found != MULTI {
        return Err(format!(
            "POST answer incomplete: status {status}, {found} of {MULTI} counters"
        ));
    }

    let (status, body) = request(http, render_req.as_bytes())?;
    let v: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| format!("GET /render: status {status}, not JSON: {e}"))?;
    let series = v.as_array().map_or(0, |a| a.len());
    let points: usize = v.as_array().map_or(0, |a| {
        a.iter()
            .map(|s| s["datapoints"].as_array().map_or(0, |p| p.len()))
            .sum()
    });
    println!(
        "check: GET /render of qps.m.* for the day: status {status}, {series} series, \
         {points} points, {} bytes",
        body.len()
    );
    if status != 200 || series != MULTI || points < MULTI * DAY_BUCKETS as usize {
        return Err(format!(
            "render answer incomplete: status {status}, {series} series, {points} points"
        ));
    }
    Ok(())
}

/// Send one day of timestamped 10 s samples for `qps.day` and the `qps.m.*` counters.
fn seed(stat: SocketAddr, day_start: u64) -> Result<u64, String> {
    let mut s = TcpStream::connect(stat).map_err(|e| format!("stat port: {e}"))?;
    let mut names = vec!["qps.day".to_string()];
    names.extend((0..MULTI).map(|i| format!("qps.m.c{i}")));
    let mut sent = 0u64;
    let mut buf = String::new();
    for (k, name) in names.iter().enumerate() {
        for i in 0..DAY_BUCKETS {
            let t = day_start + 10 * i;
            buf.push_str(&format!("{name} {t} {}\n", (i + k as u64) % 97));
            sent += 1;
        }
        s.write_all(buf.as_bytes())
            .map_err(|e| format!("stat port: {e}"))?;
        buf.clear();
    }
    Ok(sent)
}

fn wait_recorded(d: &mut Daemon, target: u64, bound: Duration) -> Result<(), String> {
    let end = Instant::now() + bound;
    loop {
        let rec = d.stats()?.get(SAMPLES);
        if rec >= target {
            return Ok(());
        }
        if Instant::now() > end {
            return Err(format!("only {rec} of {target} samples recorded"));
        }
        daemon::sleep(Duration::from_millis(100))?;
    }
}

/// One request on a fresh connection; the answer is read to EOF (the daemon closes).
fn request(addr: SocketAddr, req: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("http connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    s.write_all(req).map_err(|e| format!("http write: {e}"))?;
    let mut out = Vec::with_capacity(64 * 1024);
    s.read_to_end(&mut out)
        .map_err(|e| format!("http read: {e}"))?;
    let head_end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("http answer without a header end")?;
    let status = std::str::from_utf8(&out[..head_end.min(32)])
        .ok()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or("http answer without a status line")?;
    Ok((status, out[head_end + 4..].to_vec()))
}

#[derive(Default)]
struct PhaseResult {
    name: String,
    wall: f64,
    latencies: Vec<Duration>,
    bytes: u64,
    non_200: u64,
    errors: Vec<String>,
    recorded_rate: f64,
    sent_rate: f64,
    cpu: f64,
}

fn run_phase(http: SocketAddr, req: Vec<u8>, clients: usize, secs: u64) -> PhaseResult {
    let stop = Arc::new(AtomicBool::new(false));
    let req = Arc::new(req);
    let end = Instant::now() + Duration::from_secs(secs);
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let req = req.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut r = PhaseResult::default();
                while Instant::now() < end && !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    match request(http, &req) {
                        Ok((status, body)) => {
                            r.latencies.push(t.elapsed());
                            r.bytes += body.len() as u64;
                            if status != 200 {
                                r.non_200 += 1;
                            }
                        }
                        Err(e) => {
                            if r.errors.len() < 5 {
                                r.errors.push(e);
                            }
                            std::thread::sleep(Duration::from_millis(10));
                        }
                    }
                }
                r
            })
        })
        .collect();
    let mut all = PhaseResult::default();
    for t in threads {
        if daemon::interrupted() {
            stop.store(true, Ordering::Relaxed);
        }
        if let Ok(r) = t.join() {
            all.latencies.extend(r.latencies);
            all.bytes += r.bytes;
            all.non_200 += r.non_200;
            all.errors.extend(r.errors);
        }
    }
    all.latencies.sort();
    all
}

fn pct(l: &[Duration], p: f64) -> f64 {
    if l.is_empty() {
        return f64::NAN;
    }
    let i = ((l.len() as f64 - 1.0) * p).round() as usize;
    l[i].as_secs_f64() * 1000.0
}

fn print_table(args: &Args, results: &[PhaseResult]) {
    println!(
        "\nHTTP queries, {} clients, ingest target {:.0} samples/s over {} counters, {} shards:",
        args.clients, args.rate, args.counters, args.shards
    );
    println!(
        "| phase | requests | queries/s | p50 ms | p90 ms | p99 ms | max ms | bytes/answer | non-200 | errors | ingest recorded/s | ingest sent/s | daemon CPU s/s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in results {
        let n = r.latencies.len();
        println!(
            "| {} | {n} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {:.0} | {:.0} | {:.2} |",
            r.name,
            n as f64 / r.wall,
            pct(&r.latencies, 0.5),
            pct(&r.latencies, 0.9),
            pct(&r.latencies, 0.99),
            pct(&r.latencies, 1.0),
            if n > 0 { r.bytes / n as u64 } else { 0 },
            r.non_200,
            r.errors.len(),
            r.recorded_rate,
            r.sent_rate,
            r.cpu / r.wall,
        );
    }
    for r in results {
        for e in &r.errors {
            println!("{}: {e}", r.name);
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
