//! Stat-port load generator: K TCP connections, each sending `name value` lines over
//! its share of N counter names, as fast as the daemon takes them or at a target rate,
//! for a duration and/or a sample count.
//!
//! Lines are built once per connection before the clock starts; the send loop only
//! writes slices of that buffer (up to [`CHUNK_BYTES`] per write). Only whole lines
//! that reached the kernel are counted as sent.
//!
//! Counter `i` (0-based) is named `<prefix>.g<i / group>.c<i>` (`<prefix>.c<i>` when
//! `group` is 0), so with the daemon's default parent creation the store also gets the
//! parents `<prefix>` and `<prefix>.g<k>`: `1 + ceil(N / group)` extra counters.
//! Connection `k` sends counters `k, k + K, k + 2K, ...` round-robin.

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Bytes per write at most.
pub const CHUNK_BYTES: usize = 256 * 1024;

/// How long a connection keeps trying to finish the line it was writing when the
/// deadline or a stop request came (the daemon may be slow to read), before giving up.
pub const STOP_GRACE: Duration = Duration::from_secs(30);

/// What to send.
#[derive(Debug, Clone)]
pub struct GenConfig {
    /// The daemon's stat port.
    pub addr: SocketAddr,
    /// K: TCP connections (one thread each).
    pub connections: usize,
    /// N: distinct counter names.
    pub counters: usize,
    /// Name prefix (see the module text for the names).
    pub prefix: String,
    /// Counters per middle name component; 0: flat names.
    pub group: usize,
    /// Samples per second over all connections; `None`: as fast as possible.
    pub rate: Option<f64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop after this many samples in all.
    pub samples: Option<u64>,
    /// Send event counters (`*name value`).
    pub event: bool,
}

impl GenConfig {
    /// Max rate, `counters` names, no limit yet.
    pub fn new(addr: SocketAddr, connections: usize, counters: usize) -> GenConfig {
        GenConfig {
            addr,
            connections,
            counters,
            prefix: "bench".into(),
            group: 1000,
            rate: None,
            duration: None,
            samples: None,
            event: false,
        }
    }

    /// The extra parent counters the daemon creates for these names.
    pub fn parent_counters(&self) -> usize {
        if self.group == 0 {
            1
        } else {
            1 + self.counters.div_ceil(self.group)
        }
    }
}

/// Counter `i`'s name.
pub fn counter_name(prefix: &str, group: usize, i: usize) -> String {
    match i.checked_div(group) {
        None => format!("{prefix}.c{i}"),
        Some(g) => format!("{prefix}.g{g}.c{i}"),
    }
}

/// One connection's outcome.
#[derive(Debug, Clone, Default)]
pub struct ConnResult {
    pub sent: u64,
    pub elapsed: Duration,
    pub error: Option<String>,
}

/// The whole run's outcome.
#[derive(Debug, Clone, Default)]
pub struct GenResult {
    /// Whole lines written to the sockets.
    pub sent: u64,
    /// From the common start to the end of the last connection's last write.
    pub elapsed: Duration,
    pub connections: Vec<ConnResult>,
}

impl GenResult {
    /// Samples per second sent.
    pub fn rate(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Connection errors, one line each.
    pub fn errors(&self) -> Vec<String> {
        self.connections
            .iter()
            .enumerate()
            .filter_map(|(k, c)| c.error.as_ref().map(|e| format!("connection {k}: {e}")))
            .collect()
    }
}

struct Shared {
    sent: AtomicU64,
    stop: AtomicBool,
}

/// A running generator.
pub struct Generator {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<ConnResult>>,
    started: Instant,
}

impl Generator {
    /// Connect every connection, build the lines, then start all senders together.
    pub fn start(cfg: &GenConfig) -> io::Result<Generator> {
        let k = cfg.connections.max(1);
        if cfg.counters == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "no counters"));
        }
        let mut streams = Vec::with_capacity(k);
        for _ in 0..k {
            let s = TcpStream::connect(cfg.addr)?;
            s.set_write_timeout(Some(Duration::from_millis(200)))?;
            streams.push(s);
        }
        let shared = Arc::new(Shared {
            sent: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let barrier = Arc::new(Barrier::new(k + 1));
        let mut threads = Vec::with_capacity(k);
        for (i, stream) in streams.into_iter().enumerate() {
            let plan = Plan {
                index: i,
                step: k,
                rate: cfg.rate.map(|r| r / k as f64),
                budget: cfg
                    .samples
                    .map(|s| s / k as u64 + u64::from((i as u64) < s % k as u64)),
                duration: cfg.duration,
            };
            let cfg = cfg.clone();
            let shared = shared.clone();
            let barrier = barrier.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("loadgen-{i}"))
                    .spawn(move || {
                        let lines = Lines::build(&cfg, plan.index, plan.step);
                        barrier.wait();
                        send_loop(stream, &lines, &plan, &shared)
                    })?,
            );
        }
        barrier.wait();
        Ok(Generator {
            shared,
            threads,
            started: Instant::now(),
        })
    }

    /// Whole lines written so far.
    pub fn sent(&self) -> u64 {
        self.shared.sent.load(Ordering::Relaxed)
    }

    /// Since the common start.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Ask every connection to stop after its current write.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }

    /// Whether every connection has finished.
    pub fn is_finished(&self) -> bool {
        self.threads.iter().all(|t| t.is_finished())
    }

    /// Wait for every connection (they close their sockets) and sum up.
    pub fn join(self) -> GenResult {
        let mut r = GenResult::default();
        for t in self.threads {
            let c = t.join().unwrap_or_else(|_| ConnResult {
                error: Some("sender thread panicked".into()),
                ..ConnResult::default()
            });
            r.sent += c.sent;
            r.elapsed = r.elapsed.max(c.elapsed);
            r.connections.push(c);
        }
        r
    }
}

struct Plan {
    index: usize,
    step: usize,
    /// Samples per second for this connection.
    rate: Option<f64>,
    /// Samples for this connection.
    budget: Option<u64>,
    duration: Option<Duration>,
}

/// A connection's lines, repeated so that one pass is at least [`CHUNK_BYTES`] long.
struct Lines {
    buf: Vec<u8>,
    /// End offset of each line.
    ends: Vec<usize>,
}

impl Lines {
    fn build(cfg: &GenConfig, first: usize, step: usize) -> Lines {
        let mut buf = Vec::new();
        let mut ends = Vec::new();
        let mine: Vec<usize> = (first..cfg.counters).step_by(step).collect();
        if mine.is_empty() {
            return Lines { buf, ends };
        }
        let mut pass = 0usize;
        while buf.len() < CHUNK_BYTES || pass == 0 {
            for &i in &mine {
                if cfg.event {
                    buf.push(b'*');
                }
                buf.extend_from_slice(counter_name(&cfg.prefix, cfg.group, i).as_bytes());
                // Small varying values: integer text, 1..=100.
                let _ = writeln!(&mut buf, " {}", 1 + (i + pass) % 100);
                ends.push(buf.len());
            }
            pass += 1;
        }
        Lines { buf, ends }
    }

    fn start_of(&self, line: usize) -> usize {
        if line == 0 {
            0
        } else {
            self.ends[line - 1]
        }
    }
}

fn send_loop(mut stream: TcpStream, lines: &Lines, plan: &Plan, shared: &Shared) -> ConnResult {
    let t0 = Instant::now();
    let mut res = ConnResult::default();
    let n_lines = lines.ends.len();
    if n_lines == 0 {
        return res;
    }
    let chunk_lines = (CHUNK_BYTES * n_lines / lines.buf.len()).max(1) as u64;
    // At a target rate, write at least ~2 ms worth at a time (and at least one line).
    let min_batch = plan.rate.map_or(1, |r| ((r * 0.002) as u64).max(1));
    let mut pos = 0usize;
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let el = t0.elapsed();
        if plan.duration.is_some_and(|d| el >= d) {
            break;
        }
        let remaining = plan.budget.map_or(u64::MAX, |b| b - res.sent);
        if remaining == 0 {
            break;
        }
        let mut n = remaining.min(chunk_lines);
        if let Some(r) = plan.rate {
            let due = (el.as_secs_f64() * r) as u64;
            let owed = due.saturating_sub(res.sent);
            if owed < min_batch.min(remaining) {
                // Sleep until the next batch is due (at most 5 ms at a time).
                let at = (res.sent + min_batch) as f64 / r;
                let wait = (at - el.as_secs_f64()).clamp(0.0002, 0.005);
                std::thread::sleep(Duration::from_secs_f64(wait));
                continue;
            }
            n = n.min(owed);
        }
        let m = (n as usize).min(n_lines - pos);
        let start = lines.start_of(pos);
        let end = lines.ends[pos + m - 1];
        let slice = &lines.buf[start..end];
        let mut off = 0;
        let mut len = slice.len();
        let mut failed = false;
        // When the end (deadline or stop) came during this write.
        let mut ended: Option<Instant> = None;
        while off < len {
            if ended.is_none()
                && (shared.stop.load(Ordering::Relaxed)
                    || plan.duration.is_some_and(|d| t0.elapsed() >= d))
            {
                // Past the end: finish only the line being written, so that the daemon
                // never sees a cut line and the count stays exact.
                ended = Some(Instant::now());
                let whole = lines.ends[pos..pos + m].partition_point(|&e| e <= start + off);
                let boundary = if whole == 0 {
                    start
                } else {
                    lines.ends[pos + whole - 1]
                };
                len = if start + off == boundary {
                    off
                } else {
                    lines.ends[pos + whole] - start
                };
                continue;
            }
            match stream.write(&slice[off..len]) {
                Ok(0) => {
                    res.error = Some("connection closed by the daemon".into());
                    failed = true;
                    break;
                }
                Ok(k) => off += k,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    if ended.is_some_and(|t| t.elapsed() > STOP_GRACE) {
                        res.error = Some(format!(
                            "gave up {} s after the end: the daemon read too little of this \
                             connection to take one more line (the kernel wakes a blocked \
                             writer only when a third of the send buffer is free)",
                            STOP_GRACE.as_secs()
                        ));
                        failed = true;
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    res.error = Some(format!("write: {e}"));
                    failed = true;
                    break;
                }
            }
        }
        // Whole lines that reached the socket.
        let done = lines.ends[pos..pos + m].partition_point(|&e| e <= start + off);
        res.sent += done as u64;
        shared.sent.fetch_add(done as u64, Ordering::Relaxed);
        pos = (pos + done) % n_lines;
        if failed || ended.is_some() {
            break;
        }
    }
    res.elapsed = t0.elapsed();
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Write);
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    fn sink() -> (SocketAddr, JoinHandle<Vec<u8>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut v = Vec::new();
            s.read_to_end(&mut v).unwrap();
            v
        });
        (addr, h)
    }

    #[test]
    fn sample_budget_is_exact_and_cycles_names() {
        let (addr, h) = sink();
        let mut cfg = GenConfig::new(addr, 1, 3);
        cfg.samples = Some(7);
        cfg.group = 2;
        let r = Generator::start(&cfg).unwrap().join();
        assert_eq!(r.sent, 7);
        let text = String::from_utf8(h.join().unwrap()).unwrap();
        let names: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap()).collect();
        assert_eq!(
            names,
            [
                "bench.g0.c0",
                "bench.g0.c1",
                "bench.g1.c2",
                "bench.g0.c0",
                "bench.g0.c1",
                "bench.g1.c2",
                "bench.g0.c0"
            ]
        );
        assert_eq!(cfg.parent_counters(), 3);
    }

    #[test]
    fn stops_at_the_deadline_on_a_line_boundary_with_a_slow_reader() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let h = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut v = Vec::new();
            let mut buf = [0u8; 3001];
            loop {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => return v,
                    Ok(n) => v.extend_from_slice(&buf[..n]),
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        let mut cfg = GenConfig::new(addr, 1, 50_000);
        cfg.duration = Some(Duration::from_millis(300));
        let t = Instant::now();
        let r = Generator::start(&cfg).unwrap().join();
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert!(r.errors().is_empty(), "{:?}", r.errors());
        let got = h.join().unwrap();
        assert_eq!(got.last(), Some(&b'\n'));
        assert_eq!(got.iter().filter(|&&b| b == b'\n').count() as u64, r.sent);
    }

    #[test]
    fn rate_limit_holds_roughly() {
        let (addr, h) = sink();
        let mut cfg = GenConfig::new(addr, 1, 10);
        cfg.rate = Some(5000.0);
        cfg.duration = Some(Duration::from_millis(400));
        let r = Generator::start(&cfg).unwrap().join();
        let got = h.join().unwrap().iter().filter(|&&b| b == b'\n').count() as u64;
        assert_eq!(got, r.sent);
        assert!((1500..=2300).contains(&r.sent), "{}", r.sent);
    }
}
