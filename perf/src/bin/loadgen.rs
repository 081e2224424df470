//! Stat-port load generator.
//!
//! `cargo run --release -p istatd-perf --bin loadgen -- --port 19501 --counters 2000
//! --connections 4 --duration 20` sends `name value` lines over K TCP connections as fast
//! as the daemon reads them (or `--rate R` samples/s), for `--duration S` seconds and/or
//! `--samples M` samples, then prints the samples sent and the achieved rate.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use clap::Parser;
use istatd_perf::loadgen::{GenConfig, Generator};

#[derive(Parser, Debug)]
#[command(name = "loadgen", about = "istatd stat-port load generator (TCP)")]
struct Args {
    /// Daemon host.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Daemon stat port.
    #[arg(long, default_value_t = 8111)]
    port: u16,
    /// TCP connections (one sender thread each).
    #[arg(long, short = 'k', default_value_t = 4)]
    connections: usize,
    /// Distinct counter names.
    #[arg(long, short = 'n', default_value_t = 1000)]
    counters: usize,
    /// Name prefix: counter i is `<prefix>.g<i/group>.c<i>`.
    #[arg(long, default_value = "bench")]
    prefix: String,
    /// Counters per middle name component (0: `<prefix>.c<i>`).
    #[arg(long, default_value_t = 1000)]
    group: usize,
    /// Target samples/s over all connections; 0: as fast as possible.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Seconds to send (0: no time limit; then --samples is required).
    #[arg(long, short = 'd', default_value_t = 10.0)]
    duration: f64,
    /// Samples to send in all (0: no count limit).
    #[arg(long, short = 's', default_value_t = 0)]
    samples: u64,
    /// Event counters (`*name value`).
    #[arg(long)]
    event: bool,
    /// Print the running total every second.
    #[arg(long)]
    progress: bool,
}

fn main() {
    let a = Args::parse();
    if a.duration <= 0.0 && a.samples == 0 {
        eprintln!("loadgen: give --duration or --samples");
        std::process::exit(2);
    }
    let addr: SocketAddr = match (a.host.as_str(), a.port).to_socket_addrs() {
        Ok(mut it) => match it.next() {
            Some(x) => x,
            None => {
                eprintln!("loadgen: {}: no address", a.host);
                std::process::exit(2);
            }
        },
        Err(e) => {
            eprintln!("loadgen: {}: {e}", a.host);
            std::process::exit(2);
        }
    };
    let cfg = GenConfig {
        addr,
        connections: a.connections.max(1),
        counters: a.counters,
        prefix: a.prefix.clone(),
        group: a.group,
        rate: (a.rate > 0.0).then_some(a.rate),
        duration: (a.duration > 0.0).then(|| Duration::from_secs_f64(a.duration)),
        samples: (a.samples > 0).then_some(a.samples),
        event: a.event,
    };
    println!(
        "loadgen: {addr}, {} connections, {} counters, {}, {}{}",
        cfg.connections,
        cfg.counters,
        cfg.rate.map_or("max rate".to_string(), |r| format!(
            "target {r:.0} samples/s"
        )),
        cfg.duration
            .map_or("no time limit".to_string(), |d| format!(
                "{:.1} s",
                d.as_secs_f64()
            )),
        cfg.samples
            .map_or(String::new(), |s| format!(", at most {s} samples"))
    );
    let gen = match Generator::start(&cfg) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("loadgen: connecting to {addr}: {e}");
            std::process::exit(1);
        }
    };
    if a.progress {
        let mut last = (Instant::now(), 0u64);
        while !gen.is_finished() {
            std::thread::sleep(Duration::from_millis(100));
            if last.0.elapsed() >= Duration::from_secs(1) {
                let s = gen.sent();
                println!(
                    "  {:6.1} s  {s} sent  {:.0}/s",
                    gen.elapsed().as_secs_f64(),
                    (s - last.1) as f64 / last.0.elapsed().as_secs_f64()
                );
                last = (Instant::now(), s);
            }
        }
    }
    let r = gen.join();
    println!(
        "sent {} samples in {:.2} s = {:.0} samples/s",
        r.sent,
        r.elapsed.as_secs_f64(),
        r.rate()
    );
    let errors = r.errors();
    for e in &errors {
        eprintln!("loadgen: {e}");
    }
    if !errors.is_empty() {
        std::process::exit(1);
    }
}
