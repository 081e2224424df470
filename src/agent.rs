//! Agent (forwarding) mode (interfaces.md §6): samples are bucketed per name into
//! 10-second slots on the shard that parsed them and forwarded every
//! `--agent-interval` seconds as 7-field lines (3-field for `*` counters) over
//! `--agentCount` connections that shard 0 keeps to the `--agent` destination. A list
//! of destinations (`--agent m:8111,s:8111`) is tried in order: when one stops taking
//! connections (a master whose stat port closed at a planned failover), the agent moves
//! to the next one.
//!
//! Port: numbers go out with `%.17g` (full precision), not `%g`; receivers accept both.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::channels::local_channel;
use istatd_storage::counter::Sample;
use istatd_storage::numfmt::push_g;

use super::{clock, CtlMsg, Shard, SHUTDOWN};

/// A connection's buffer above which the oldest half is dropped (§6.6).
const BUFFER_MAX: usize = 512 * 1024;
const BUFFER_KEEP_FROM: usize = 256 * 1024;
/// Flushes a connection may miss before it stops taking a share.
const MISSED_MAX: u32 = 3;

/// Agent settings from the options.
#[derive(Debug, Clone, Default)]
pub struct AgentConfig {
    /// Destinations in order of preference; empty: not an agent.
    pub targets: Vec<(String, u16)>,
    pub connections: usize,
    pub interval_secs: u64,
}

impl AgentConfig {
    pub fn enabled(&self) -> bool {
        !self.targets.is_empty()
    }
}

/// `--agent host:port[,host:port...]`.
pub fn parse_targets(s: &str) -> Result<Vec<(String, u16)>, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let p = p.trim();
            let (h, port) = p
                .rsplit_once(':')
                .ok_or_else(|| "open() destination must be host:port".to_string())?;
            let h = h.trim_start_matches('[').trim_end_matches(']');
            let port: u16 = port
                .parse()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| "open() destination must be host:port".to_string())?;
            if h.is_empty() {
                return Err("open() destination must be host:port".into());
            }
            Ok((h.to_string(), port))
        })
        .collect()
}

/// One 10-second slot of a name.
#[derive(Debug, Clone, Copy)]
struct Slot {
    time: i64,
    sum: f64,
    sum_sq: f64,
    min: f64,
    max: f64,
    count: u64,
}

/// A name's five slots around the time its first sample arrived (§6.3).
#[derive(Debug, Clone)]
struct Bucketizer {
    base: i64,
    event: bool,
    slots: [Option<Slot>; 5],
}

/// Counters of the agent (published as `istatd.agent.*` in `stats`).
#[derive(Debug, Default, Clone)]
pub struct AgentCounters {
    pub lines_forwarded: u64,
    pub lines_dropped: u64,
    pub samples_out_of_window: u64,
    pub bytes_written: u64,
    pub bytes_dropped: u64,
    pub connects: u64,
    pub connect_failures: u64,
    pub target_changes: u64,
}

static COUNTERS: Mutex<AgentCounters> = Mutex::new(AgentCounters {
    lines_forwarded: 0,
    lines_dropped: 0,
    samples_out_of_window: 0,
    bytes_written: 0,
    bytes_dropped: 0,
    connects: 0,
    connect_failures: 0,
    target_changes: 0,
});

fn counters() -> std::sync::MutexGuard<'static, AgentCounters> {
    COUNTERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The agent's counters as `stats` extras.
pub fn stats(out: &mut Vec<(String, i64)>, conns: &[(bool, usize)]) {
    let c = counters().clone();
    for (k, v) in [
        ("lines_forwarded", c.lines_forwarded),
        ("lines_dropped", c.lines_dropped),
        ("samples_out_of_window", c.samples_out_of_window),
        ("bytes_written", c.bytes_written),
        ("bytes_dropped", c.bytes_dropped),
        ("connects", c.connects),
        ("connect_failures", c.connect_failures),
        ("target_changes", c.target_changes),
    ] {
        out.push((format!("istatd.agent.{k}"), v as i64));
    }
    out.push((
        "istatd.agent.connected".into(),
        conns.iter().filter(|c| c.0).count() as i64,
    ));
    out.push((
        "istatd.agent.buffered_bytes".into(),
        conns.iter().map(|c| c.1).sum::<usize>() as i64,
    ));
}

/// A shard's bucketizers.
#[derive(Default)]
pub struct AgentShard {
    names: RefCell<HashMap<Box<[u8]>, Bucketizer>>,
    /// Meta lines (`#key value`) to forward as they are.
    pub meta: RefCell<Vec<u8>>,
}

impl AgentShard {
    /// Add a handled sample (name unmunged, `*` stripped; `event` says it had one).
    pub fn add(&self, name: &[u8], event: bool, s: &Sample, now: i64) {
        let name = name.strip_prefix(b"*").unwrap_or(name);
        let mut names = self.names.borrow_mut();
        // The key is copied only for a name's first sample of a forward period.
        if !names.contains_key(name) {
            names.insert(
                name.into(),
                Bucketizer {
                    base: now - now.rem_euclid(10),
                    event,
                    slots: [None; 5],
                },
            );
        }
        let b = names.get_mut(name).expect("just made sure");
        let t = s.time - s.time.rem_euclid(10);
        let ix = (t - (b.base - 30)) / 10;
        if !(0..5).contains(&ix) {
            counters().samples_out_of_window += 1;
            return;
        }
        let slot = &mut b.slots[ix as usize];
        match slot {
            None => {
                *slot = Some(Slot {
                    time: s.time,
                    sum: s.sum,
                    sum_sq: s.sum_sq,
                    min: s.min,
                    max: s.max,
                    count: s.count,
                })
            }
            Some(x) => {
                x.sum += s.sum;
                x.sum_sq += s.sum_sq;
                x.min = x.min.min(s.min);
                x.max = x.max.max(s.max);
                x.count += s.count;
            }
        }
    }

    /// Take every bucketizer and render its lines (§6.3).
    pub fn take_lines(&self) -> (String, u64) {
        let names = std::mem::take(&mut *self.names.borrow_mut());
        let mut out = String::new();
        let mut n = 0;
        for (name, b) in names {
            let name = String::from_utf8_lossy(&name);
            for s in b.slots.iter().flatten() {
                n += 1;
                if b.event {
                    out.push('*');
                    out.push_str(&name);
                    out.push_str(&format!(" {} ", s.time));
                    push_g(&mut out, s.sum, 17);
                } else {
                    out.push_str(&name);
                    out.push_str(&format!(" {} ", s.time));
                    for (i, v) in [s.sum, s.sum_sq, s.min, s.max].into_iter().enumerate() {
                        if i > 0 {
                            out.push(' ');
                        }
                        push_g(&mut out, v, 17);
                    }
                    out.push_str(&format!(" {}", s.count));
                }
                out.push_str("\r\n");
            }
        }
        (out, n)
    }
}

/// One forward connection (shard 0).
pub struct AgentConn {
    buf: RefCell<VecDeque<u8>>,
    connected: Cell<bool>,
    missed: Cell<u32>,
    wake: local_channel::LocalSender<()>,
    wake_rx: RefCell<Option<local_channel::LocalReceiver<()>>>,
}

impl AgentConn {
    fn new() -> AgentConn {
        let (tx, rx) = local_channel::new_bounded(1);
        AgentConn {
            buf: RefCell::new(VecDeque::new()),
            connected: Cell::new(false),
            missed: Cell::new(0),
            wake: tx,
            wake_rx: RefCell::new(Some(rx)),
        }
    }

    /// Append bytes, dropping the oldest half past the bound (§6.6).
    fn append(&self, bytes: &[u8]) {
        let mut b = self.buf.borrow_mut();
        b.extend(bytes);
        if b.len() > BUFFER_MAX {
            let cut = b
                .iter()
                .skip(BUFFER_KEEP_FROM)
                .position(|&c| c == b'\n')
                .map(|p| BUFFER_KEEP_FROM + p + 1)
                .unwrap_or(b.len());
            let dropped: Vec<u8> = b.drain(..cut).collect();
            let mut c = counters();
            c.bytes_dropped += dropped.len() as u64;
            c.lines_dropped += dropped.iter().filter(|&&x| x == b'\n').count() as u64;
            tracing::warn!(
                bytes = dropped.len(),
                "agent buffer full: oldest data dropped"
            );
        }
        drop(b);
        let _ = self.wake.try_send(());
    }

    fn len(&self) -> usize {
        self.buf.borrow().len()
    }
}

/// Shard 0's forward connections.
#[derive(Default)]
pub struct AgentLinks {
    pub conns: Vec<Rc<AgentConn>>,
    next: Cell<usize>,
}

impl AgentLinks {
    pub fn new(n: usize) -> AgentLinks {
        AgentLinks {
            conns: (0..n.max(1)).map(|_| Rc::new(AgentConn::new())).collect(),
            next: Cell::new(0),
        }
    }

    /// Meta lines go to every connection at once.
    pub fn broadcast(&self, text: &[u8]) {
        for c in &self.conns {
            c.append(text);
        }
    }

    /// One flush's lines: to the next eligible connection (all of one batch together,
    /// so all slots of a counter go to one connection); dropped and counted when none
    /// is eligible. Returns the connection used.
    pub fn send_batch(&self, text: &[u8], lines: u64) -> Option<Rc<AgentConn>> {
        if text.is_empty() {
            return None;
        }
        let eligible: Vec<&Rc<AgentConn>> = self
            .conns
            .iter()
            .filter(|c| c.missed.get() <= MISSED_MAX)
            .collect();
        if eligible.is_empty() {
            tracing::warn!("StatServer: agent forward server is down and data dropped");
            counters().lines_dropped += lines;
            return None;
        }
        let i = self.next.get() % eligible.len();
        self.next.set(self.next.get().wrapping_add(1));
        let c = eligible[i].clone();
        c.append(text);
        counters().lines_forwarded += lines;
        Some(c)
    }

    /// A flush happened: connections that are down have missed one more.
    pub fn note_flush(&self) {
        for c in &self.conns {
            if c.connected.get() {
                c.missed.set(0);
            } else {
                c.missed.set(c.missed.get().saturating_add(1));
            }
        }
    }

    pub fn state(&self) -> Vec<(bool, usize)> {
        self.conns
            .iter()
            .map(|c| (c.connected.get(), c.len()))
            .collect()
    }
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The lines every new connection starts with (§6.2).
fn hello() -> String {
    format!(
        "#proto x 1 1\r\n#version istatd-rs {}\r\n#hostname {}\r\n",
        env!("CARGO_PKG_VERSION"),
        hostname()
    )
}

impl Shard {
    /// Shard 0: keep one forward connection up (reconnect with the reference's
    /// back-off, move along the destination list when one refuses).
    pub(super) async fn agent_connection(self: Rc<Self>, conn: Rc<AgentConn>) {
        let targets = self.cfg.agent.targets.clone();
        let wake = conn
            .wake_rx
            .borrow_mut()
            .take()
            .expect("one task per connection");
        let mut target = 0usize;
        let mut backoff = 1u64;
        let mut good_writes = 0u32;
        loop {
            if SHUTDOWN.load(Ordering::SeqCst) {
                return;
            }
            let (host, port) = targets[target % targets.len()].clone();
            let stream = crate::net::connect_host(&host, port).await;
            let Some(stream) = stream else {
                counters().connect_failures += 1;
                if targets.len() > 1 {
                    target += 1;
                    counters().target_changes += 1;
                    tracing::warn!(host = %host, port, "agent destination refuses; trying the next one");
                }
                backoff = self.agent_backoff(backoff).await;
                continue;
            };
            counters().connects += 1;
            tracing::info!(host = %host, port, "agent connected");
            let _ = stream.set_nodelay(true);
            let (mut rd, mut wr) = futures_lite::io::split(stream);
            conn.connected.set(true);
            conn.missed.set(0);
            // The hello goes before anything buffered.
            let mut failed = wr.write_all(hello().as_bytes()).await.is_err();
            let closed = Rc::new(Cell::new(false));
            let reader = {
                let closed = closed.clone();
                glommio::spawn_local(async move {
                    let mut b = [0u8; 1024];
                    loop {
                        match rd.read(&mut b).await {
                            Ok(0) | Err(_) => break,
                            Ok(_) => tracing::error!("agent: the destination sent data; discarded"),
                        }
                    }
                    closed.set(true);
                })
            };
            while !failed && !closed.get() && !SHUTDOWN.load(Ordering::SeqCst) {
                let chunk: Vec<u8> = {
                    let b = conn.buf.borrow();
                    b.iter().take(64 * 1024).copied().collect()
                };
                if chunk.is_empty() {
                    let _ = futures_lite::future::or(
                        async {
                            let _ = wake.recv().await;
                        },
                        glommio::timer::sleep(Duration::from_millis(200)),
                    )
                    .await;
                    continue;
                }
                match wr.write_all(&chunk).await {
                    Ok(()) => {
                        conn.buf.borrow_mut().drain(..chunk.len());
                        counters().bytes_written += chunk.len() as u64;
                        good_writes += 1;
                        if good_writes >= 3 {
                            backoff = 1;
                        }
                    }
                    Err(_) => failed = true,
                }
            }
            let _ = wr.close().await;
            drop(reader);
            conn.connected.set(false);
            good_writes = 0;
            if SHUTDOWN.load(Ordering::SeqCst) {
                return;
            }
            tracing::warn!(host = %host, port, "agent connection lost");
            backoff = self.agent_backoff(backoff).await;
        }
    }

    /// Wait out one back-off step (§6.5) and return the next base.
    async fn agent_backoff(&self, prev: u64) -> u64 {
        let base = (((prev + 1) * 3) / 2).min(180);
        let jitter = rand::random::<u64>() % if base < 30 { 4 } else { 16 };
        let wait = base + jitter;
        let end = clock::monotonic_secs() + wait as i64;
        while clock::monotonic_secs() < end && !SHUTDOWN.load(Ordering::SeqCst) {
            glommio::timer::sleep(Duration::from_millis(100)).await;
        }
        wait
    }

    /// Every shard: forward its bucketizers every `--agent-interval` seconds.
    pub(super) async fn agent_flush_loop(self: Rc<Self>) {
        let every = Duration::from_secs(self.cfg.agent.interval_secs.max(1));
        loop {
            glommio::timer::sleep(every).await;
            if SHUTDOWN.load(Ordering::SeqCst) {
                return;
            }
            if let Some(links) = &self.agent_links {
                // Once per interval, on shard 0: connections that are down miss one.
                links.note_flush();
            }
            self.agent_flush_now().await;
        }
    }

    /// Meta lines received by this shard go to every connection at once.
    pub(super) async fn agent_send_meta(&self) {
        let Some(a) = &self.agent else { return };
        let meta = std::mem::take(&mut *a.meta.borrow_mut());
        if meta.is_empty() {
            return;
        }
        if self.id == 0 {
            self.agent_deliver(meta, 0, true);
        } else {
            let _ = self.ctl.send(0, CtlMsg::Agent(meta, 0, true)).await;
        }
    }

    /// Hand this shard's lines to shard 0 (which queues them on a connection).
    pub(super) async fn agent_flush_now(&self) -> Option<Rc<AgentConn>> {
        let a = self.agent.as_ref()?;
        let (text, n) = a.take_lines();
        if self.id == 0 {
            self.agent_deliver(text.into_bytes(), n, false)
        } else {
            if n > 0 {
                let _ = self
                    .ctl
                    .send(0, CtlMsg::Agent(text.into_bytes(), n, false))
                    .await;
            }
            None
        }
    }

    /// Shard 0: lines from a shard (`meta`: to every connection at once).
    pub(super) fn agent_deliver(
        &self,
        text: Vec<u8>,
        lines: u64,
        meta: bool,
    ) -> Option<Rc<AgentConn>> {
        let links = self.agent_links.as_ref()?;
        if meta {
            links.broadcast(&text);
            None
        } else {
            links.send_batch(&text, lines)
        }
    }

    /// Shard 0, admin `flush` in agent mode: every shard's lines now, and wait until
    /// what they gave is written (possibly until a reconnect).
    pub(super) async fn agent_admin_flush(&self) {
        let Some(links) = &self.agent_links else {
            return;
        };
        links.note_flush();
        self.agent_flush_now().await;
        for rep in self.broadcast(super::Req::AgentFlush).await {
            if let super::Rep::AgentLines(text, n) = rep {
                links.send_batch(&text, n);
            }
        }
        let end = std::time::Instant::now() + Duration::from_secs(600);
        while links.conns.iter().any(|c| c.len() > 0) && std::time::Instant::now() < end {
            if SHUTDOWN.load(Ordering::SeqCst) {
                return;
            }
            glommio::timer::sleep(Duration::from_millis(10)).await;
        }
    }
}
