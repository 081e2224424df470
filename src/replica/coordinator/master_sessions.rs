//! The master side of the coordinator: the replica listener and one session per
//! connected slave (handshake, heartbeats, the idle timer, Requests routed to the
//! shards owning their files, the shards' answers queued on the connection).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use glommio::net::{TcpListener, TcpStream};
use istatd_replication::link::{self, RequestKind};
use istatd_replication::pdu::{self, Pdu, UniqueId};
use istatd_replication::scrub;

use super::link_io::{LinkIo, ReadEnd};
use super::send_queue::{writer, SendQueue};
use super::LinkCounters;
use crate::daemon::{Event, ShardCore};
use crate::metrics::loopback::Loopback;
use crate::replica::messages::ToOwner;
use crate::replica::owner_of;

/// File Requests of one connection routed to the shards and not yet answered or
/// parked: the session stops reading above this (it bounds the shards' inboxes).
const REQUESTS_INFLIGHT_MAX: usize = 4096;

/// One connected slave.
struct Session {
    q: Rc<SendQueue>,
    /// Requests (file, digest, repair) sent to the shards and not yet answered.
    requests: Cell<usize>,
    peer: Option<std::net::IpAddr>,
    /// When the connection last received anything (monotonic seconds).
    last_received: Cell<i64>,
}

pub struct MasterSessions {
    core: Rc<ShardCore>,
    id: UniqueId,
    counters: Rc<RefCell<LinkCounters>>,
    sessions: RefCell<HashMap<u64, Rc<Session>>>,
    /// Open connections by peer id (newest wins), with their generation.
    by_peer: RefCell<HashMap<UniqueId, (u64, Rc<SendQueue>)>>,
    next_conn: Cell<u64>,
}

impl MasterSessions {
    pub fn new(
        core: Rc<ShardCore>,
        id: UniqueId,
        counters: Rc<RefCell<LinkCounters>>,
    ) -> MasterSessions {
        MasterSessions {
            core,
            id,
            counters,
            sessions: RefCell::new(HashMap::new()),
            by_peer: RefCell::new(HashMap::new()),
            next_conn: Cell::new(1),
        }
    }

    /// Connected slaves (handshake done).
    pub fn connections(&self) -> usize {
        self.sessions.borrow().len()
    }

    /// A shard's answers for connection `conn`.
    pub fn out(&self, conn: u64, shard: usize, frames: Vec<u8>, answered: u32) {
        let s = self.sessions.borrow().get(&conn).cloned();
        if let Some(s) = s {
            s.requests
                .set(s.requests.get().saturating_sub(answered as usize));
            s.q.push_from(Some(shard), frames);
        }
    }

    pub async fn accept_loop(self: Rc<Self>, l: TcpListener) {
        loop {
            let conn = futures_lite::future::or(
                async { Some(l.accept().await.map_err(std::io::Error::from)) },
                async {
                    self.core.shutdown.requested().await;
                    None
                },
            )
            .await;
            let Some(conn) = conn else { return };
            let Ok(stream) = conn else { continue };
            self.counters.borrow_mut().m_accepted += 1;
            let gen = self.next_conn.get();
            self.next_conn.set(gen + 1);
            let me = self.clone();
            glommio::spawn_local(async move { me.serve(stream, gen).await }).detach();
        }
    }

    /// Whether one more slave fits under `--replica-max-slaves`. When it would not, the
    /// connections from the same address that have received nothing for more than two
    /// keepalive intervals are closed first (docs/replication-protocol.md, "Handshake"): a
    /// live slave sends at least once per interval, so a silent one from its address is its
    /// own half-open leftover.
    fn make_room(&self, peer: Option<std::net::IpAddr>, max: usize) -> bool {
        let open = self.connections();
        if open < max {
            return true;
        }
        let Some(peer) = peer else { return false };
        let silent_for = 2 * self.core.cfg.repl.keepalive.max(1) as i64;
        let now = crate::clock::monotonic_secs();
        let mut closed = 0;
        for s in self.sessions.borrow().values() {
            if s.peer == Some(peer) && !s.q.is_closed() && now - s.last_received.get() > silent_for
            {
                s.q.close();
                closed += 1;
            }
        }
        if closed > 0 {
            tracing::warn!(closed, peer = %peer, "replication: silent connections from the same address closed for a new one");
        }
        open - closed < max
    }

    /// This node's own master's id, when it is a slave with a completed handshake.
    fn own_master_id(&self) -> Option<UniqueId> {
        let c = self.counters.borrow();
        if c.s_master_id.is_empty() {
            return None;
        }
        let hex: String = c.s_master_id.chars().filter(|c| *c != ':').collect();
        let mut b = [0u8; 16];
        for (i, chunk) in hex.as_bytes().chunks(2).enumerate().take(16) {
            b[i] = u8::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
        }
        Some(UniqueId(b))
    }

    async fn to_every_shard(&self, m: impl Fn() -> ToOwner) {
        for to in 0..self.core.count {
            self.core.send_event(to, Event::ToOwner(m())).await;
        }
    }

    async fn serve(self: Rc<Self>, stream: TcpStream, gen: u64) {
        let repl = &self.core.cfg.repl;
        let peer = stream.peer_addr().ok().map(|a| a.ip());
        let keepalive = repl.keepalive.max(1) as i64;
        let timeout = repl.timeout.max(2) as i64;
        let (core, counters) = (self.core.clone(), self.counters.clone());
        let mut io = LinkIo::new(
            stream,
            keepalive,
            timeout,
            self.core.shutdown.clone(),
            move |q, wake, wr| {
                glommio::spawn_local(writer(q, wake, wr, move |bytes, credits| {
                    counters.borrow_mut().m_bytes_sent += bytes as u64;
                    let core = core.clone();
                    async move {
                        for (shard, bytes) in credits {
                            let m = ToOwner::Credit { conn: gen, bytes };
                            core.send_event(shard, Event::ToOwner(m)).await;
                        }
                    }
                }))
            },
        );
        let q = io.q.clone();
        let session = Rc::new(Session {
            q: q.clone(),
            requests: Cell::new(0),
            peer,
            last_received: Cell::new(crate::clock::monotonic_secs()),
        });
        let mut pdus = Vec::new();
        let mut connected = false;
        let mut peer_id = None;
        let reason: Option<String> = 'conn: loop {
            // Backpressure: too many Requests of this slave not yet handled: stop
            // reading; the idle timer pauses.
            while session.requests.get() > REQUESTS_INFLIGHT_MAX
                && !q.is_closed()
                && !self.core.shutdown.is_requested()
            {
                glommio::timer::sleep(Duration::from_millis(2)).await;
                io.hb.paused_until(crate::clock::monotonic_secs());
            }
            let limit = if connected {
                timeout
            } else {
                link::HANDSHAKE_TIMEOUT
            };
            let (n, res) = match io.read(limit, &mut pdus, |_, _| false).await {
                Ok(got) => got,
                Err(ReadEnd::Closed | ReadEnd::QueueClosed | ReadEnd::Stopped) => break None,
                Err(ReadEnd::Shutdown) => break Some("Shutting down".into()),
                Err(ReadEnd::Timeout) => {
                    self.counters.borrow_mut().m_timeouts += 1;
                    break Some("Timeout".into());
                }
            };
            self.counters.borrow_mut().m_bytes_received += n as u64;
            session.last_received.set(crate::clock::monotonic_secs());
            self.core
                .lb
                .borrow_mut()
                .add(Loopback::ReplicaEvents, pdus.len() as i64);
            let state = if connected {
                link::CONNECTED
            } else {
                link::START
            };
            for p in pdus.drain(..) {
                match p {
                    Pdu::Connect { version, id } if !connected => {
                        // Newest wins: an older connection of the same peer goes.
                        if let Some((_, old)) = self.by_peer.borrow_mut().remove(&id) {
                            old.close();
                        }
                        let free = self.make_room(peer, repl.max_slaves.max(1) as usize);
                        let reply = link::master_accept_upto(
                            repl.max_version(),
                            version,
                            id,
                            self.id,
                            self.own_master_id(),
                            free,
                        );
                        match reply {
                            Ok(reply) => {
                                if let Pdu::Connect { version, .. } = &reply {
                                    io.set_version(*version);
                                }
                                q.push_pdu(&reply);
                                connected = true;
                                peer_id = Some(id);
                                self.by_peer.borrow_mut().insert(id, (gen, q.clone()));
                                self.sessions.borrow_mut().insert(gen, session.clone());
                                self.core
                                    .lb
                                    .borrow_mut()
                                    .set(Loopback::ReplicaConnections, self.connections() as i64);
                                self.counters.borrow_mut().m_handshakes += 1;
                                self.to_every_shard(|| ToOwner::MasterOpen(gen)).await;
                                tracing::info!(conn = gen, peer = %id.str(), "replication slave connected");
                            }
                            Err(refusal) => {
                                let mut c = self.counters.borrow_mut();
                                match refusal {
                                    link::Refusal::Version => c.m_rejected_version += 1,
                                    link::Refusal::SelfConnect => c.m_rejected_self += 1,
                                    link::Refusal::Cycle => c.m_rejected_cycle += 1,
                                    link::Refusal::TooMany => c.m_rejected_too_many += 1,
                                }
                                break 'conn Some(refusal.text().into());
                            }
                        }
                    }
                    Pdu::Request { from, n, name } if connected => {
                        match link::check_request(from, n, &name) {
                            Ok(RequestKind::Ping) => {
                                self.counters.borrow_mut().m_pings += 1;
                                q.push_pdu(&Pdu::pong());
                            }
                            Ok(RequestKind::File { from, n }) => {
                                let owner = owner_of(&name, self.core.count);
                                session.requests.set(session.requests.get() + 1);
                                let m = ToOwner::Request {
                                    conn: gen,
                                    name,
                                    from,
                                    n,
                                };
                                self.core.send_event(owner, Event::ToOwner(m)).await;
                            }
                            Err(e) => {
                                self.counters.borrow_mut().m_protocol_errors += 1;
                                break 'conn Some(e.to_string());
                            }
                        }
                    }
                    // Only decoded on a version 3 link.
                    Pdu::DigestRequest { from, ranges, name } if connected => {
                        if let Err(e) = scrub::check_digest_request(from, ranges, &name) {
                            self.counters.borrow_mut().m_protocol_errors += 1;
                            break 'conn Some(e.to_string());
                        }
                        let owner = owner_of(&name, self.core.count);
                        let m = ToOwner::DigestRequest {
                            conn: gen,
                            name,
                            from,
                            ranges,
                        };
                        session.requests.set(session.requests.get() + 1);
                        self.core.send_event(owner, Event::ToOwner(m)).await;
                    }
                    Pdu::RepairRequest { from, n, name } if connected => {
                        if let Err(e) = scrub::check_repair_request(from, n, &name) {
                            self.counters.borrow_mut().m_protocol_errors += 1;
                            break 'conn Some(e.to_string());
                        }
                        let owner = owner_of(&name, self.core.count);
                        let m = ToOwner::RepairRequest {
                            conn: gen,
                            name,
                            from,
                            n,
                        };
                        session.requests.set(session.requests.get() + 1);
                        self.core.send_event(owner, Event::ToOwner(m)).await;
                    }
                    Pdu::Error(t) => {
                        self.counters.borrow_mut().m_errors_received += 1;
                        tracing::warn!(text = %pdu::escape_text(&t), "replication slave sent an error");
                        break 'conn None;
                    }
                    other => {
                        self.counters.borrow_mut().m_protocol_errors += 1;
                        break 'conn Some(format!("Unhandled PDU id {} in {state}", other.id()));
                    }
                }
            }
            if let Err(e) = res {
                self.counters.borrow_mut().m_protocol_errors += 1;
                break Some(e.text(state));
            }
        };
        if let Some(text) = &reason {
            tracing::warn!(conn = gen, error = %text, "replication connection closed");
        }
        io.finish(reason.as_deref()).await;
        if connected {
            self.sessions.borrow_mut().remove(&gen);
            self.core
                .lb
                .borrow_mut()
                .set(Loopback::ReplicaConnections, self.connections() as i64);
            if let Some(id) = peer_id {
                let mut m = self.by_peer.borrow_mut();
                if m.get(&id).is_some_and(|(g, _)| *g == gen) {
                    m.remove(&id);
                }
            }
            self.to_every_shard(|| ToOwner::MasterClose(gen)).await;
            tracing::info!(conn = gen, "replication slave disconnected");
        }
    }
}
