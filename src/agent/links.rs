//! Shard 0's forward connections (docs/interfaces.md §6.2, §6.5, §6.6): one task per
//! connection keeps it up (reconnecting with the reference's back-off, moving along the
//! destination list when one refuses) and writes what the shards' flushes queued on it.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use istatd_shards::Shutdown;

use crate::clock;

/// A connection's buffer above which the oldest half is dropped (§6.6).
const BUFFER_MAX: usize = 512 * 1024;
const BUFFER_KEEP_FROM: usize = 256 * 1024;
/// Flushes a connection may miss before it stops taking a share.
const MISSED_MAX: u32 = 3;

/// Counters of the agent's connections (published as `istatd.agent.*`).
#[derive(Debug, Default, Clone)]
struct LinkCounters {
    lines_forwarded: u64,
    lines_dropped: u64,
    bytes_written: u64,
    bytes_dropped: u64,
    connects: u64,
    connect_failures: u64,
    target_changes: u64,
}

/// One forward connection.
pub struct AgentConn {
    buf: RefCell<VecDeque<u8>>,
    connected: Cell<bool>,
    missed: Cell<u32>,
    wake: LocalSender<()>,
    wake_rx: RefCell<Option<LocalReceiver<()>>>,
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

    fn len(&self) -> usize {
        self.buf.borrow().len()
    }
}

/// Shard 0's forward connections.
pub struct AgentLinks {
    conns: Vec<Rc<AgentConn>>,
    next: Cell<usize>,
    counters: RefCell<LinkCounters>,
    targets: Vec<(String, u16)>,
    shutdown: Shutdown,
}

impl AgentLinks {
    pub fn new(targets: Vec<(String, u16)>, n: usize, shutdown: Shutdown) -> AgentLinks {
        AgentLinks {
            conns: (0..n.max(1)).map(|_| Rc::new(AgentConn::new())).collect(),
            next: Cell::new(0),
            counters: RefCell::new(LinkCounters::default()),
            targets,
            shutdown,
        }
    }

    /// One task per connection.
    pub fn start(self: &Rc<Self>) {
        for c in &self.conns {
            let (me, c) = (self.clone(), c.clone());
            glommio::spawn_local(async move { me.run_connection(c).await }).detach();
        }
    }

    /// Append bytes to a connection, dropping the oldest half past the bound (§6.6).
    fn append(&self, conn: &AgentConn, bytes: &[u8]) {
        let mut b = conn.buf.borrow_mut();
        b.extend(bytes);
        if b.len() > BUFFER_MAX {
            let cut = b
                .iter()
                .skip(BUFFER_KEEP_FROM)
                .position(|&c| c == b'\n')
                .map(|p| BUFFER_KEEP_FROM + p + 1)
                .unwrap_or(b.len());
            let dropped: Vec<u8> = b.drain(..cut).collect();
            let mut c = self.counters.borrow_mut();
            c.bytes_dropped += dropped.len() as u64;
            c.lines_dropped += dropped.iter().filter(|&&x| x == b'\n').count() as u64;
            tracing::warn!(
                bytes = dropped.len(),
                "agent buffer full: oldest data dropped"
            );
        }
        drop(b);
        let _ = conn.wake.try_send(());
    }

    /// Meta lines go to every connection at once.
    pub fn broadcast(&self, text: &[u8]) {
        for c in &self.conns {
            self.append(c, text);
        }
    }

    /// One flush's lines: to the next eligible connection (all of one batch together,
    /// so all slots of a counter go to one connection); dropped and counted when none
    /// is eligible.
    pub fn send_batch(&self, text: &[u8], lines: u64) {
        if text.is_empty() {
            return;
        }
        let eligible: Vec<&Rc<AgentConn>> = self
            .conns
            .iter()
            .filter(|c| c.missed.get() <= MISSED_MAX)
            .collect();
        if eligible.is_empty() {
            tracing::warn!("StatServer: agent forward server is down and data dropped");
            self.counters.borrow_mut().lines_dropped += lines;
            return;
        }
        let i = self.next.get() % eligible.len();
        self.next.set(self.next.get().wrapping_add(1));
        self.append(eligible[i], text);
        self.counters.borrow_mut().lines_forwarded += lines;
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

    /// Whether anything waits to be written.
    pub fn pending(&self) -> bool {
        self.conns.iter().any(|c| c.len() > 0)
    }

    /// The connections' part of the agent's `stats` extras.
    pub fn stats(&self, out: &mut Vec<(String, i64)>) {
        let c = self.counters.borrow().clone();
        for (k, v) in [
            ("lines_forwarded", c.lines_forwarded),
            ("lines_dropped", c.lines_dropped),
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
            self.conns.iter().filter(|c| c.connected.get()).count() as i64,
        ));
        out.push((
            "istatd.agent.buffered_bytes".into(),
            self.conns.iter().map(|c| c.len()).sum::<usize>() as i64,
        ));
    }

    /// Keep one forward connection up.
    async fn run_connection(&self, conn: Rc<AgentConn>) {
        let targets = &self.targets;
        let wake = conn
            .wake_rx
            .borrow_mut()
            .take()
            .expect("one task per connection");
        let mut target = 0usize;
        let mut backoff = 1u64;
        let mut good_writes = 0u32;
        loop {
            if self.shutdown.is_requested() {
                return;
            }
            let (host, port) = targets[target % targets.len()].clone();
            let stream = crate::net::connect_host(&host, port).await;
            let Some(stream) = stream else {
                self.counters.borrow_mut().connect_failures += 1;
                if targets.len() > 1 {
                    target += 1;
                    self.counters.borrow_mut().target_changes += 1;
                    tracing::warn!(host = %host, port, "agent destination refuses; trying the next one");
                }
                backoff = self.backoff(backoff).await;
                continue;
            };
            self.counters.borrow_mut().connects += 1;
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
            while !failed && !closed.get() && !self.shutdown.is_requested() {
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
                        self.counters.borrow_mut().bytes_written += chunk.len() as u64;
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
            if self.shutdown.is_requested() {
                return;
            }
            tracing::warn!(host = %host, port, "agent connection lost");
            backoff = self.backoff(backoff).await;
        }
    }

    /// Wait out one back-off step (§6.5) and return the next base.
    async fn backoff(&self, prev: u64) -> u64 {
        let base = (((prev + 1) * 3) / 2).min(180);
        let jitter = rand::random::<u64>() % if base < 30 { 4 } else { 16 };
        let wait = base + jitter;
        let end = clock::monotonic_secs() + wait as i64;
        while clock::monotonic_secs() < end && !self.shutdown.is_requested() {
            glommio::timer::sleep(Duration::from_millis(100)).await;
        }
        wait
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
