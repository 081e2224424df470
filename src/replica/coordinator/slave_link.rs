//! The slave side of the coordinator: the link to this node's master. It connects to
//! the master the control state names, backs off after failures, waits while suspended
//! or not a slave, starts over at once when the control state changes (repointed,
//! resumed, resync), and routes the master's file PDUs to the shards owning the files.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use glommio::net::TcpStream;
use istatd_replication::link::{self, Backoff, Heartbeat};
use istatd_replication::pdu::{self, Pdu, UniqueId};

use super::link_io::{LinkIo, ReadEnd};
use super::send_queue::{writer, SendQueue};
use super::LinkCounters;
use crate::clock;
use crate::daemon::{Event, ShardCore};
use crate::replica::control::Control;
use crate::replica::messages::ToOwner;
use crate::replica::owner_of;

/// File PDUs in flight to the shards above which the link is not read.
const INFLIGHT_MAX: usize = 256;

pub struct SlaveLink {
    core: Rc<ShardCore>,
    id: UniqueId,
    control: Rc<RefCell<Control>>,
    counters: Rc<RefCell<LinkCounters>>,
    /// The link generation (bumped per connection) and its state.
    gen: Cell<u64>,
    version: Cell<u32>,
    connected: Cell<bool>,
    /// Discover, Data, Digest and RepairData routed to shards and not yet applied.
    inflight: Cell<usize>,
    queue: RefCell<Option<(u64, Rc<SendQueue>)>>,
    /// A shard found the master breaking the protocol: close with this text.
    fatal: RefCell<Option<(u64, &'static str)>>,
    running: Cell<bool>,
}

impl SlaveLink {
    pub fn new(
        core: Rc<ShardCore>,
        id: UniqueId,
        control: Rc<RefCell<Control>>,
        counters: Rc<RefCell<LinkCounters>>,
    ) -> SlaveLink {
        SlaveLink {
            core,
            id,
            control,
            counters,
            gen: Cell::new(0),
            version: Cell::new(0),
            connected: Cell::new(false),
            inflight: Cell::new(0),
            queue: RefCell::new(None),
            fatal: RefCell::new(None),
            running: Cell::new(false),
        }
    }

    /// Start the link task unless it runs.
    pub fn ensure_running(self: &Rc<Self>) {
        if self.running.replace(true) {
            return;
        }
        let me = self.clone();
        glommio::spawn_local(async move { me.run().await }).detach();
    }

    pub fn is_connected(&self) -> bool {
        self.connected.get()
    }

    /// The protocol version of the link (0 while it is down).
    pub fn version(&self) -> u32 {
        self.version.get()
    }

    pub fn inflight(&self) -> usize {
        self.inflight.get()
    }

    /// A shard's Requests for the link of generation `gen`, and the file PDUs it
    /// applied meanwhile.
    pub fn out(&self, gen: u64, frames: Vec<u8>, applied: u32) {
        if gen == self.gen.get() {
            self.inflight
                .set(self.inflight.get().saturating_sub(applied as usize));
        }
        if let Some((g, q)) = self.queue.borrow().as_ref() {
            if *g == gen {
                q.push_from(None, frames);
            }
        }
    }

    /// The session notices it within 50 ms and closes with this text (the send queue
    /// stays open so that the Error goes out first).
    pub fn fatal(&self, gen: u64, text: &'static str) {
        *self.fatal.borrow_mut() = Some((gen, text));
    }

    fn control(&self) -> Control {
        self.control.borrow().clone()
    }

    async fn to_every_shard(&self, m: impl Fn() -> ToOwner) {
        for to in 0..self.core.count {
            self.core.send_event(to, Event::ToOwner(m())).await;
        }
    }

    async fn run(self: Rc<Self>) {
        let mut backoff = Backoff::with_max(self.core.cfg.repl.backoff_max as u64);
        let mut last_master: Option<UniqueId> = None;
        loop {
            if self.core.shutdown.is_requested() {
                return;
            }
            let c = self.control();
            let Some((host, port)) = c.of.clone().filter(|_| !c.slave_suspended) else {
                self.counters.borrow_mut().s_state = if c.slave_suspended {
                    "suspended"
                } else {
                    "disabled"
                };
                backoff.reset();
                glommio::timer::sleep(Duration::from_millis(100)).await;
                continue;
            };
            let epoch = c.epoch;
            {
                let mut lc = self.counters.borrow_mut();
                lc.s_state = "connecting";
                lc.s_down_since.get_or_insert_with(std::time::Instant::now);
                lc.s_connect_attempts += 1;
            }
            let stream = crate::net::connect_host(&host, port).await;
            let mut config_failure = false;
            if let Some(stream) = stream {
                let gen = self.gen.get() + 1;
                self.gen.set(gen);
                let (outcome, master) = self.session(stream, gen, last_master, epoch).await;
                if master.is_some() {
                    last_master = master;
                }
                config_failure = outcome;
                {
                    let mut c = self.counters.borrow_mut();
                    c.s_disconnects += 1;
                    if master.is_some() {
                        c.s_down_since = Some(std::time::Instant::now());
                    }
                }
                self.connected.set(false);
                backoff.disconnected(clock::monotonic_secs());
            } else {
                self.counters.borrow_mut().s_connect_failures += 1;
            }
            if self.control.borrow().epoch != epoch {
                // The operator changed something: no back-off.
                backoff.reset();
                continue;
            }
            if config_failure {
                backoff.to_max();
            }
            let delay = backoff.next_delay(rand::random::<f64>());
            {
                let mut c = self.counters.borrow_mut();
                c.s_state = "backoff";
                c.s_backoff_seconds = delay;
            }
            let end = clock::monotonic_secs() + delay as i64;
            while clock::monotonic_secs() < end && self.control.borrow().epoch == epoch {
                if self.core.shutdown.is_requested() {
                    return;
                }
                glommio::timer::sleep(Duration::from_millis(100)).await;
            }
            self.counters.borrow_mut().s_backoff_seconds = 0;
        }
    }

    /// One connection to the master. Returns whether it failed for a configuration
    /// reason (back off to the maximum), and the master's id if the handshake ran.
    async fn session(
        &self,
        stream: TcpStream,
        gen: u64,
        last: Option<UniqueId>,
        epoch: u64,
    ) -> (bool, Option<UniqueId>) {
        let repl = &self.core.cfg.repl;
        let keepalive = repl.keepalive.max(1) as i64;
        let timeout = repl.timeout.max(2) as i64;
        let counters = self.counters.clone();
        let mut io = LinkIo::new(
            stream,
            keepalive,
            timeout,
            self.core.shutdown.clone(),
            move |q, wake, wr| {
                glommio::spawn_local(writer(q, wake, wr, move |bytes, _| {
                    counters.borrow_mut().s_bytes_sent += bytes as u64;
                    async {}
                }))
            },
        );
        let q = io.q.clone();
        *self.queue.borrow_mut() = Some((gen, q.clone()));
        *self.fatal.borrow_mut() = None;
        self.inflight.set(0);
        self.counters.borrow_mut().s_state = "start";
        let max_version = repl.max_version();
        q.push_pdu(&Pdu::Connect {
            version: max_version,
            id: self.id,
        });
        let mut pdus = Vec::new();
        let mut master = None;
        let mut config_failure = false;
        let fatal = || self.fatal.borrow().is_some_and(|(g, _)| g == gen);
        let reason: Option<String> = 'conn: loop {
            // Backpressure: the shards apply what is in flight before more is read;
            // the idle timer does not run meanwhile.
            while self.inflight.get() > INFLIGHT_MAX {
                glommio::timer::sleep(Duration::from_millis(2)).await;
                let now = clock::monotonic_secs();
                io.hb.paused_until(now);
                if io.hb.should_ping(now) {
                    self.counters.borrow_mut().s_pings_sent += 1;
                    q.push_pdu(&Pdu::ping(clock::now()));
                }
                if q.is_closed() || self.core.shutdown.is_requested() || fatal() {
                    break;
                }
            }
            let limit = if master.is_some() {
                timeout
            } else {
                link::HANDSHAKE_TIMEOUT
            };
            let up = master.is_some();
            // Every 50 ms while waiting: stop when the operator changed something or
            // a shard found the master breaking the protocol; ping once connected.
            let tick = |hb: &mut Heartbeat, q: &SendQueue| {
                if self.control.borrow().epoch != epoch || fatal() {
                    return true;
                }
                if up && hb.should_ping(clock::monotonic_secs()) {
                    self.counters.borrow_mut().s_pings_sent += 1;
                    q.push_pdu(&Pdu::ping(clock::now()));
                }
                false
            };
            let (n, res) = match io.read(limit, &mut pdus, tick).await {
                Ok(got) => got,
                Err(ReadEnd::Closed | ReadEnd::QueueClosed) => break None,
                Err(ReadEnd::Shutdown) => break Some("Shutting down".into()),
                Err(ReadEnd::Stopped) if self.control.borrow().epoch != epoch => {
                    let why = self.control.borrow().close_reason;
                    break Some(why.unwrap_or("Shutting down").into());
                }
                Err(ReadEnd::Stopped) => {
                    let text = self.fatal.borrow_mut().take().map(|f| f.1);
                    self.counters.borrow_mut().s_protocol_errors += 1;
                    break Some(text.unwrap_or("Unexpected Data").into());
                }
                Err(ReadEnd::Timeout) => {
                    self.counters.borrow_mut().s_timeouts += 1;
                    break Some("Timeout".into());
                }
            };
            self.counters.borrow_mut().s_bytes_received += n as u64;
            let state = if master.is_some() {
                link::CONNECTED
            } else {
                link::START
            };
            for p in pdus.drain(..) {
                match p {
                    Pdu::Connect { version, id } if master.is_none() => {
                        if let Err(refusal) =
                            link::slave_check_reply_upto(max_version, version, id, self.id)
                        {
                            self.counters.borrow_mut().s_handshake_failures += 1;
                            config_failure = refusal.is_configuration();
                            break 'conn Some(refusal.text().into());
                        }
                        master = Some(id);
                        {
                            let mut c = self.counters.borrow_mut();
                            c.s_down_since = None;
                            if last.is_some_and(|l| l != id) {
                                c.s_master_changes += 1;
                                tracing::info!("replication master changed or restarted");
                            }
                            c.s_master_id = id.str();
                            c.s_state = "connected";
                        }
                        io.set_version(version);
                        self.version.set(version);
                        self.connected.set(true);
                        self.to_every_shard(|| ToOwner::SlaveLink { gen, version })
                            .await;
                        tracing::info!(master = %id.str(), "replication link to the master is up");
                    }
                    Pdu::Error(t) => {
                        let text = pdu::escape_text(&t);
                        let mut c = self.counters.borrow_mut();
                        c.s_errors_received += 1;
                        if master.is_none() {
                            c.s_handshake_failures += 1;
                            config_failure = matches!(
                                text.as_str(),
                                "Unsupported protocol version"
                                    | "I refuse to talk to myself"
                                    | "Replication cycle"
                            );
                        }
                        tracing::warn!(text = %text, "replication master sent an error");
                        break 'conn None;
                    }
                    Pdu::Discover(h) if master.is_some() => {
                        let owner = owner_of(pdu::discover_name(&h), self.core.count);
                        self.route(owner, ToOwner::Discover(gen, h)).await;
                    }
                    Pdu::Data { buckets, name } if master.is_some() => {
                        if name.is_empty() {
                            if !buckets.is_empty() || !io.hb.pong() {
                                self.counters.borrow_mut().s_protocol_errors += 1;
                                break 'conn Some("Unexpected Data".into());
                            }
                            continue;
                        }
                        let owner = owner_of(&name, self.core.count);
                        self.route(owner, ToOwner::Data { gen, name, buckets })
                            .await;
                    }
                    // Only decoded on a version 3 link.
                    Pdu::Digest { from, ranges, name } if master.is_some() => {
                        let owner = owner_of(&name, self.core.count);
                        let m = ToOwner::Digest {
                            gen,
                            name,
                            from,
                            ranges,
                        };
                        self.route(owner, m).await;
                    }
                    Pdu::RepairData { buckets, name } if master.is_some() => {
                        let owner = owner_of(&name, self.core.count);
                        self.route(owner, ToOwner::RepairData { gen, name, buckets })
                            .await;
                    }
                    other => {
                        self.counters.borrow_mut().s_protocol_errors += 1;
                        break 'conn Some(format!("Unhandled PDU id {} in {state}", other.id()));
                    }
                }
            }
            if let Err(e) = res {
                self.counters.borrow_mut().s_protocol_errors += 1;
                break Some(e.text(state));
            }
        };
        match &reason {
            None => tracing::info!("replication link to the master closed"),
            Some(text) => tracing::warn!(error = %text, "replication link closed"),
        }
        io.finish(reason.as_deref()).await;
        *self.queue.borrow_mut() = None;
        self.version.set(0);
        // Every shard drops the connection's file state.
        self.to_every_shard(|| ToOwner::SlaveLink { gen: 0, version: 0 })
            .await;
        self.counters.borrow_mut().s_state = "backoff";
        (config_failure, master)
    }

    /// A file PDU to its owner, counted in flight until the owner says it applied it.
    async fn route(&self, owner: usize, m: ToOwner) {
        self.inflight.set(self.inflight.get() + 1);
        self.core.send_event(owner, Event::ToOwner(m)).await;
    }
}
